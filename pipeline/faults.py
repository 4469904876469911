"""Fault injection for the crash tests: pause a run at a named stage, or fail it there.

Off by default: nothing happens unless an environment variable names the stage being passed.

- `PRICING_TEST_PAUSE_AT=<stage>`: the process writes `<pid> <stage>` to the file named by
  `PRICING_TEST_MARKER` (if set) and sleeps, so that a test waiting for that file can send SIGKILL
  at exactly that point. A paused process nobody kills gives up after `PRICING_TEST_PAUSE_S`
  seconds (default 300) with an error, so a broken test fails instead of hanging.
- `PRICING_TEST_FAIL_AT=<stage>`: raises `OSError(ENOSPC)` there, as a full disk would, the first
  `PRICING_TEST_FAIL_TIMES` times the process passes it (default: every time), so a test can
  check that the failure loses nothing and that a retry after the disk is freed succeeds.

Stages (where `pause_point` is called):

| stage | where |
|---|---|
| `load` | inside the transaction writing inputs (`pricing load`, `demo`), before its commit |
| `read` | a flow run has read its inputs and recorded itself as running (flows/nightly.py) |
| `train` | after the first training epoch of a shard (flows/nightly.py) |
| `forecast` | before the saved models are loaded to forecast tonight (flows/nightly.py) |
| `optimise` | before the pricing engine runs (flows/nightly.py) |
| `write` | inside the final write's transaction, after the inserts, before the commit |
| `publish` | after a commit, with the analysts' snapshot copied but not yet renamed (warehouse) |
"""

from __future__ import annotations

import errno
import os
import time
from pathlib import Path

PAUSE_ENV = "PRICING_TEST_PAUSE_AT"
MARKER_ENV = "PRICING_TEST_MARKER"
TIMEOUT_ENV = "PRICING_TEST_PAUSE_S"
FAIL_ENV = "PRICING_TEST_FAIL_AT"
FAIL_TIMES_ENV = "PRICING_TEST_FAIL_TIMES"
STAGES = ("load", "read", "train", "forecast", "optimise", "write", "publish")
# How many injected failures each stage has raised in this process.
_failed: dict[str, int] = {}


class PauseTimeout(RuntimeError):
    """A test paused the run and never killed it."""


def _fail(stage: str) -> None:
    """Raise the injected full-disk error, while this stage's failure budget lasts."""
    times = os.environ.get(FAIL_TIMES_ENV)
    if times is not None and _failed.get(stage, 0) >= int(times):
        return
    _failed[stage] = _failed.get(stage, 0) + 1
    raise OSError(errno.ENOSPC, f"No space left on device (injected at stage {stage!r})")


def pause_point(stage: str) -> None:
    """Pause or fail here when the test variables name `stage`; otherwise return at once.

    Raises:
        OSError: ENOSPC, when `PRICING_TEST_FAIL_AT` names `stage`.
        PauseTimeout: paused for `PRICING_TEST_PAUSE_S` seconds without being killed.
    """
    if os.environ.get(FAIL_ENV) == stage:
        _fail(stage)
    if os.environ.get(PAUSE_ENV) != stage:
        return
    marker = os.environ.get(MARKER_ENV)
    if marker:
        # Written whole, then renamed: a test that sees the file sees its text.
        partial = Path(marker + ".partial")
        partial.write_text(f"{os.getpid()} {stage}\n")
        os.replace(partial, marker)
    deadline = time.monotonic() + float(os.environ.get(TIMEOUT_ENV, "300"))
    while time.monotonic() < deadline:
        time.sleep(0.1)
    raise PauseTimeout(f"paused at stage {stage!r} and nobody killed the process")
