"""What every `pricing` command shares: its common options and how it reports failures.

`run_command` turns a user's mistake (`UserError`, a full disk) into one line on stderr and exit
code 1, and anything else into a line saying it is a bug (exit code 70), with the traceback
behind `--debug`. Used by pipeline/cli.py and the `pricing bench` commands
(pipeline/bench/commands.py).
"""

from __future__ import annotations

import datetime as dt
import errno
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from pipeline.errors import UserError, first_line, named_first_line

WarehouseOpt = Annotated[
    Path | None,
    typer.Option("--warehouse", envvar="PRICING_WAREHOUSE", help="DuckDB warehouse file."),
]
ConfigOpt = Annotated[Path | None, typer.Option("--config", help="TOML settings file.")]
DebugOpt = Annotated[bool, typer.Option("--debug", help="Show tracebacks on errors.")]
AsOfOpt = Annotated[
    dt.datetime | None,
    typer.Option("--as-of", formats=["%Y-%m-%d"], help="First priced day (YYYY-MM-DD)."),
]
EpochsOpt = Annotated[int | None, typer.Option("--epochs", min=1, help="Override max epochs.")]
DaskOpt = Annotated[
    str | None,
    typer.Option("--dask-address", help="Train shards on this Dask scheduler (tcp://host:8786)."),
]


class CommandError(UserError):
    """A command was called in a way that cannot work (the message says how to call it)."""


# Exit codes: 1 for a problem the user can fix, 70 (EX_SOFTWARE) for a bug in this package.
EXIT_USER, EXIT_BUG = 1, 70
# A full disk or quota, or a read-only file system: the operator's to fix.
_DISK_ERRORS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS)


def run_command(debug: bool, action: Callable[[], Any]) -> Any:
    """Run `action`; a user's mistake becomes one line on stderr, a bug says it is one.

    `UserError`s (bad files, config, selection, a locked warehouse, ...) print their one-line
    message and exit 1. Anything else is a programming error: it prints a line saying so, with a
    hint to rerun with --debug (which shows the traceback) and report it, and exits 70.
    """
    try:
        return action()
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        raise typer.Exit(130) from None
    except (typer.Exit, typer.Abort):
        raise
    except UserError as exc:
        if debug:
            raise
        typer.echo(f"error: {first_line(exc)}", err=True)
        raise typer.Exit(EXIT_USER) from None
    except OSError as exc:
        if debug or exc.errno not in _DISK_ERRORS:
            raise
        # An operator's problem, not a bug: every write is one transaction, so nothing is lost.
        typer.echo(f"error: {first_line(exc)}: free disk space and rerun", err=True)
        raise typer.Exit(EXIT_USER) from None
    except Exception as exc:
        if debug:
            raise
        typer.echo(
            f"internal error (a bug in pricing, not in your input): {named_first_line(exc)}\n"
            "rerun with --debug to see the traceback, and please report it with that traceback",
            err=True,
        )
        raise typer.Exit(EXIT_BUG) from None


def settings_of(warehouse: Path | None, config: Path | None) -> Any:
    """The settings of `--config`, with `--warehouse` (or $PRICING_WAREHOUSE) applied."""
    from pipeline.config import load_settings

    return load_settings(config, warehouse)


def date_of(value: dt.datetime | None) -> dt.date | None:
    """A `--as-of` option's day."""
    return value.date() if value is not None else None
