"""One writing run per warehouse: an OS file lock next to the warehouse file.

DuckDB's own lock covers a single connection, and the flows open and close connections many times
per run. A nightly run and a retrain interleaving those connections would each read the other's
half-written model registry, so every flow run holds `<warehouse>.lock` (an exclusive `flock`) for
its whole duration. The lock is released by the kernel when the holder exits, even on a crash or a
kill -9, so a stale lock file never blocks the next run. The file's text names the holder (flow,
run, process, host, start time) for the message the waiting run prints.

POSIX only (fcntl), like the deployment targets (Linux workers and containers).
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from pipeline.errors import UserError, retry


class WarehouseBusyError(UserError, RuntimeError):
    """Another run held the warehouse for longer than this run was willing to wait."""


class _LockHeld(Exception):
    """One try found the lock held by another run (retried until the wait is over)."""


def lock_path(warehouse: str | Path) -> Path:
    """The lock file of a warehouse: `pricing.duckdb` -> `pricing.duckdb.lock`."""
    path = Path(warehouse)
    return path.with_name(path.name + ".lock")


def _try_lock(handle: IO[str]) -> bool:
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _holder_text(path: Path) -> str:
    """Who holds the lock, as the holder wrote it (best effort: it may be mid-write)."""
    try:
        holder = json.loads(path.read_text() or "{}")
    except (OSError, ValueError):
        return "another run"
    if not holder:
        return "another run"
    return (
        f"{holder.get('flow', 'a')} run {holder.get('run', '?')} (pid {holder.get('pid', '?')} "
        f"on {holder.get('host', '?')}, since {holder.get('since', '?')} UTC)"
    )


def _write_holder(handle: IO[str], flow: str, run: str) -> None:
    holder = {
        "flow": flow,
        "run": run,
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "since": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S"),
    }
    handle.seek(0)
    handle.truncate()
    handle.write(json.dumps(holder))
    handle.flush()


@contextmanager
def warehouse_lock(
    warehouse: str | Path,
    flow: str,
    run: str,
    wait_s: float,
    on_wait: Callable[[str], None] | None = None,
) -> Iterator[None]:
    """Hold the warehouse's run lock for the body; wait up to `wait_s` seconds for it.

    Args:
        warehouse: the DuckDB file (the lock file sits next to it; its folder is created).
        flow: the flow taking the lock ("nightly", "retrain"), for the waiting run's message.
        run: an id of the run taking the lock, for the same message.
        wait_s: how long to wait while another run holds it; 0 fails at once.
        on_wait: called once with the holder's description when this run has to wait.

    Raises:
        WarehouseBusyError: the lock was still held after `wait_s` seconds.
    """
    path = lock_path(warehouse)
    path.parent.mkdir(parents=True, exist_ok=True)
    # "a+" neither truncates the holder's text nor fails when the file is missing.
    with open(path, "a+") as handle:
        _acquire(handle, path, wait_s, on_wait)
        try:
            _write_holder(handle, flow, run)
            yield
        finally:
            handle.seek(0)
            handle.truncate()
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _acquire(
    handle: IO[str], path: Path, wait_s: float, on_wait: Callable[[str], None] | None
) -> None:
    """Take the lock, retrying with backoff for up to `wait_s` seconds; tell `on_wait` once."""
    told = False

    def take() -> None:
        nonlocal told
        if _try_lock(handle):
            return
        # Told only when this run will really wait (never with wait_s = 0).
        if not told and on_wait is not None and wait_s > 0:
            on_wait(_holder_text(path))
            told = True
        raise _LockHeld

    retry(
        take,
        retry_on=lambda exc: isinstance(exc, _LockHeld),
        timeout_s=wait_s,
        on_timeout=lambda _: WarehouseBusyError(
            f"warehouse {path.with_suffix('')} is busy: {_holder_text(path)} is writing it; "
            f"waited {wait_s:.0f} s (run.lock_wait_s), try again when it has finished"
        ),
        max_delay_s=2.0,
    )
