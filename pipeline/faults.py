"""Fault injection for the crash tests: pause a run at a named stage so a test can kill it there.

Off by default: nothing happens unless the environment variable `PRICING_TEST_PAUSE_AT` names the
stage being passed. Then the process writes `<pid> <stage>` to the file named by
`PRICING_TEST_MARKER` (if set) and sleeps, so that a test waiting for that file can send SIGKILL at
exactly that point. A paused process nobody kills gives up after `PRICING_TEST_PAUSE_S` seconds
(default 300) with an error, so a broken test fails instead of hanging.

Stages (where `pause_point` is called):

| stage | where |
|---|---|
| `train` | after the first training epoch of a shard (flows/nightly.py) |
| `optimise` | before the pricing engine runs (flows/nightly.py) |
| `write` | inside the final write's transaction, after the inserts, before the commit (warehouse) |
| `publish` | after the commit, with the analysts' snapshot copied but not yet renamed (warehouse) |
"""

from __future__ import annotations

import os
import time
from pathlib import Path

PAUSE_ENV = "PRICING_TEST_PAUSE_AT"
MARKER_ENV = "PRICING_TEST_MARKER"
TIMEOUT_ENV = "PRICING_TEST_PAUSE_S"
STAGES = ("train", "optimise", "write", "publish")


class PauseTimeout(RuntimeError):
    """A test paused the run and never killed it."""


def pause_point(stage: str) -> None:
    """Pause here when `PRICING_TEST_PAUSE_AT` names `stage`; otherwise return at once.

    Raises:
        PauseTimeout: paused for `PRICING_TEST_PAUSE_S` seconds without being killed.
    """
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
