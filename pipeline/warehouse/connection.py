"""Connections to the warehouse file: open with a lock wait, transactions, the analysts' snapshot.

Every function of the package opens the warehouse file, does its work and closes it again, so that
the file lock (one writing process, or many reading ones) is held only as long as the work takes.

Analysts read a snapshot, not the warehouse itself: DuckDB lets one process write a file or several
read it, never both, so an analyst holding a connection would make the nightly writer wait and
fail. Every write that finishes a unit of work (loading inputs, a run's outputs or end, a schema
migration) checkpoints, copies the file to `<name>.analyst.duckdb.partial` while it still holds
the write lock, and renames the copy over `<name>.analyst.duckdb` (`analyst_path`). The rename is
atomic: a reader who opened the old snapshot keeps reading that night's file (its inode) until it
reconnects, a new reader gets the new night, and nobody sees a mix. A crash before the rename
leaves the previous snapshot in place; the next write publishes again.

Frames travel through DuckDB's Arrow scan. Timestamps are stored as naive UTC (`timestamp`
columns); time-zone-aware input is converted to UTC first, because DuckDB would otherwise convert
it to the machine's local wall time.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from pipeline import faults
from pipeline.errors import UserError, first_line, retry

_log = logging.getLogger("pipeline.warehouse")


class WarehouseError(UserError, RuntimeError):
    """A user-facing warehouse problem; the message is one line that says what to do."""


def _is_lock_error(exc: Exception) -> bool:
    """Whether opening failed because another process holds a conflicting lock on the file."""
    return isinstance(exc, duckdb.IOException) and "lock" in str(exc).lower()


def _open(
    path: Path, read_only: bool, lock_timeout_s: float, config: dict[str, Any]
) -> duckdb.DuckDBPyConnection:
    """Open the file, waiting with backoff while another process holds a conflicting lock."""
    if read_only and not path.is_file():
        raise WarehouseError(
            f"warehouse {path} not found: run `pricing demo` or `pricing load` first"
        )
    if not read_only:
        path.parent.mkdir(parents=True, exist_ok=True)
    try:
        return retry(
            lambda: duckdb.connect(str(path), read_only=read_only, config=config),
            retry_on=_is_lock_error,
            timeout_s=lock_timeout_s,
            on_timeout=lambda _: WarehouseError(
                f"warehouse {path} is locked: another process holds it (a nightly run, "
                f"`pricing load` or a long query); wait for it to finish and retry"
            ),
        )
    except duckdb.IOException as exc:
        raise WarehouseError(f"cannot open warehouse {path}: {first_line(exc)}") from None
    except duckdb.ConnectionException as exc:
        raise WarehouseError(
            f"warehouse {path} is already open in this process with other settings "
            f"({first_line(exc)}): close that connection first"
        ) from None


@contextmanager
def open_connection(
    path: str | Path,
    read_only: bool = False,
    lock_timeout_s: float = 30.0,
    config: dict[str, Any] | None = None,
) -> Iterator[duckdb.DuckDBPyConnection]:
    """`connect` with DuckDB settings for the connection (the analysts' locked-down one)."""
    con = _open(Path(path), read_only, lock_timeout_s, dict(config or {}))
    try:
        yield con
    finally:
        con.close()


@contextmanager
def connect(
    path: str | Path, read_only: bool = False, lock_timeout_s: float = 30.0
) -> Iterator[duckdb.DuckDBPyConnection]:
    """Open the warehouse file as a context manager; the connection is closed on exit.

    Args:
        path: the DuckDB file. Its folder is created for writing connections.
        read_only: open for reading only (many processes may read at once).
        lock_timeout_s: how long to keep retrying while another process holds the file.

    Raises:
        WarehouseError: the file is missing (read_only), still locked after lock_timeout_s, or
            not a DuckDB file.
    """
    with open_connection(path, read_only, lock_timeout_s) as con:
        yield con


@contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """All statements inside commit together, or none do."""
    con.begin()
    try:
        yield
    except BaseException:
        con.rollback()
        raise
    con.commit()


def analyst_path(path: str | Path) -> Path:
    """The analysts' snapshot of a warehouse: `pricing.duckdb` -> `pricing.analyst.duckdb`."""
    path = Path(path)
    return path.with_name(f"{path.stem}.analyst{path.suffix}")


def reading_path(path: str | Path) -> Path:
    """The file an analyst should open: the snapshot once published, else the warehouse itself."""
    snapshot = analyst_path(path)
    return snapshot if snapshot.is_file() else Path(path)


def publish_snapshot(con: duckdb.DuckDBPyConnection, path: Path) -> None:
    """Copy the committed warehouse to the analysts' snapshot and swap it in atomically.

    `con` is the write connection: holding it keeps other writers out while the file is copied,
    and CHECKPOINT first moves every committed change from the write-ahead log into the file.
    A failure is logged, not raised: the outputs are committed, and the next write publishes again.
    """
    snapshot = analyst_path(path)
    partial = snapshot.with_name(snapshot.name + ".partial")
    try:
        con.execute("checkpoint")
        shutil.copyfile(path, partial)
        with open(partial, "rb") as handle:
            os.fsync(handle.fileno())  # the rename must never expose a half-written file
        faults.pause_point("publish")
        os.replace(partial, snapshot)
    except (OSError, duckdb.Error) as exc:
        _log.warning("analysts' snapshot %s not refreshed: %s", snapshot, first_line(exc))


@contextmanager
def publishing(path: str | Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """A write connection that republishes the analysts' snapshot when its body succeeds."""
    with connect(path) as con:
        yield con
        publish_snapshot(con, Path(path))


def naive_utc(frame: pl.DataFrame) -> pl.DataFrame:
    """Convert time-zone-aware datetime columns to naive UTC (the warehouse's convention)."""
    aware = [
        name
        for name, dtype in frame.schema.items()
        if isinstance(dtype, pl.Datetime) and dtype.time_zone is not None
    ]
    if not aware:
        return frame
    return frame.with_columns(
        pl.col(name).dt.convert_time_zone("UTC").dt.replace_time_zone(None) for name in aware
    )


def insert_frame(
    con: duckdb.DuckDBPyConnection, table: str, frame: pl.DataFrame, replace: bool = False
) -> None:
    """Insert a frame by column name through DuckDB's Arrow scan (no per-row Python work).

    Columns the frame lacks get the table default (or null, which a not-null column refuses);
    a column the table lacks is an error, so a misspelt name cannot silently lose data.
    """
    view = f"_incoming_{table}"
    con.register(view, naive_utc(frame))
    try:
        verb = "insert or replace" if replace else "insert"
        con.execute(f"{verb} into {table} by name select * from {view}")
    finally:
        unregister_frame(con, view)


def unregister_frame(con: duckdb.DuckDBPyConnection, view: str) -> None:
    """Drop a registered frame; after a failed statement inside a transaction DuckDB refuses
    (the transaction is aborted), and that refusal must not hide the statement's own error."""
    with contextlib.suppress(duckdb.Error):
        con.unregister(view)


def now_utc() -> datetime:
    """The current time as naive UTC, the warehouse's timestamp convention."""
    return datetime.now(UTC).replace(tzinfo=None)


def read_frame(path: str | Path, sql: str, params: Sequence[Any] | None = None) -> pl.DataFrame:
    """Run one read query on a read-only connection and return a polars frame.

    Raises:
        WarehouseError: the warehouse is missing, lacks the schema, or the query failed.
    """
    with connect(path, read_only=True) as con:
        try:
            return con.sql(sql, params=list(params) if params else None).pl()
        except duckdb.CatalogException as exc:
            raise WarehouseError(
                f"warehouse {path} lacks the schema ({first_line(exc)}): "
                f"run `pricing demo` or `pricing load` first"
            ) from None
        except duckdb.Error as exc:
            raise WarehouseError(f"reading {path} failed: {first_line(exc)}") from None
