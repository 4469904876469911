"""Processes a `pricing` command starts die with it, however it dies.

Without `PREFECT_API_URL`, running a flow starts Prefect's temporary server (a `uvicorn ...
prefect.server.api.server:create_app` subprocess). Prefect stops it from an `atexit` hook, which
never runs when the command is killed (the OOM killer, a scheduler's timeout, `kill -9`): the
server then lived on, holding its memory and a port, until stopped by hand. Local Dask workers and
the flow runs of `pricing serve` are subprocesses too.

`guard_children()` ties them all to the command's life, without touching how anyone starts them:

1. It starts a watchdog, this file run as a script with the standard library only (`python -I -S`,
   about 10 ms), in its own session so that signals meant for the command's process group
   (Ctrl-C, a group kill) do not reach it.
2. It puts a token, `PRICING_PROCESS_GUARD=<pid>:<start ticks>:<random>`, into this process's
   environment. Every process started afterwards inherits it (Prefect starts its server with
   `os.environ`, Dask and multiprocessing pass it on), and so do their children.
3. The watchdog waits until the command has ended: the end of a pipe only the command holds (EOF
   the moment the kernel closes its files), checked against `/proc/<pid>/stat` (a zombie or a
   reused pid counts as ended) at least once a second, since a forked child could hold the pipe.
4. Then it sends SIGTERM to every live process whose `/proc/<pid>/environ` carries the token
   (nothing else can carry it: it names this run's pid, start time and 64 random bits), waits up
   to `GRACE_S` for them to exit, SIGKILLs the rest, and exits itself.

At a normal exit Prefect has already stopped its server, so the watchdog finds nothing and exits
at once. Linux only (it reads `/proc`); elsewhere `guard_children` does nothing. `/proc/<pid>/
environ` shows the environment a process was exec'd with, so a child this process forks without
exec'ing (multiprocessing's "fork" method) is not found; nothing here starts one (Dask's local
workers are spawned, Prefect's server is exec'd).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

TOKEN_ENV = "PRICING_PROCESS_GUARD"
GRACE_S = 5.0  # how long a SIGTERM'd process may take to exit before it is SIGKILLed
_POLL_S = 1.0  # the longest the watchdog goes without checking that the command lives
_PROC = Path("/proc")
# The watchdog and the pipe's write end, held for this process's life (None until started).
_watchdog: subprocess.Popen[bytes] | None = None
_pipe_end: int | None = None


def _start_ticks(pid: int) -> str | None:
    """A live process's start time in clock ticks since boot (`/proc/PID/stat` field 22).

    None when the process is gone or a zombie: a zombie has ended, only its exit status remains.
    """
    try:
        stat = (_PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses; the fields after it do not.
    fields = stat[stat.rindex(")") + 2 :].split()
    return None if fields[0] in ("Z", "X") else fields[19]


def _carries(pid: int, marker: bytes) -> bool:
    try:
        environ = (_PROC / str(pid) / "environ").read_bytes()
    except OSError:  # gone, or another user's process (which cannot be ours)
        return False
    return marker in environ.split(b"\0")


def marked_processes(token: str) -> list[int]:
    """The pids of live processes whose environment carries `token` (this one excluded)."""
    marker = f"{TOKEN_ENV}={token}".encode()
    own = os.getpid()
    pids = (int(entry.name) for entry in _PROC.iterdir() if entry.name.isdigit())
    return [pid for pid in pids if pid != own and _carries(pid, marker)]


def _signal_all(pids: list[int], signum: int) -> None:
    for pid in pids:
        with contextlib.suppress(OSError):  # ended meanwhile
            os.kill(pid, signum)


def stop_marked(token: str, grace_s: float = GRACE_S) -> int:
    """SIGTERM every process carrying `token`, SIGKILL those still alive after `grace_s`.

    Returns:
        How many processes were found and stopped.
    """
    found: set[int] = set()
    deadline = time.monotonic() + grace_s
    while True:
        # Looked up again every round: a process may start another while it is being stopped.
        alive = marked_processes(token)
        if not alive:
            return len(found)
        fresh = [pid for pid in alive if pid not in found]
        found.update(alive)
        if time.monotonic() >= deadline:
            _signal_all(alive, signal.SIGKILL)
        else:
            _signal_all(fresh, signal.SIGTERM)
        time.sleep(0.1)


def _wait_for_end(pid: int, ticks: str, pipe: int) -> None:
    """Return once process `pid` (started at `ticks`) has ended."""
    pipe_open = True
    while _start_ticks(pid) == ticks:
        if not pipe_open:
            # The kernel closes a dying process's files a moment before it becomes a zombie.
            time.sleep(0.05)
            continue
        readable, _, _ = select.select([pipe], [], [], _POLL_S)
        if readable and not os.read(pipe, 4096):
            pipe_open = False


def guard_children(grace_s: float = GRACE_S) -> None:
    """Stop every process this one starts from now on when this one ends (see the module doc).

    Safe to call more than once: only the first call starts a watchdog. Does nothing where there is
    no `/proc` (not Linux).

    Args:
        grace_s: how long a process may take to exit after SIGTERM before it is SIGKILLed.
    """
    global _watchdog, _pipe_end
    if _watchdog is not None or not (_PROC / "self" / "environ").exists():
        return
    pid = os.getpid()
    ticks = _start_ticks(pid)
    if ticks is None:
        return
    token = f"{pid}:{ticks}:{secrets.token_hex(8)}"
    read_end, write_end = os.pipe()  # not inheritable: only this process holds the write end
    script = str(Path(__file__).resolve())
    _watchdog = subprocess.Popen(
        [sys.executable, "-I", "-S", script, str(pid), ticks, token, str(grace_s)],
        stdin=read_end,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    os.close(read_end)
    # Kept open until this process ends; the kernel closes it then, whatever ends it.
    _pipe_end = write_end
    os.environ[TOKEN_ENV] = token


def _watch(argv: list[str]) -> int:
    """The watchdog: wait for command `pid` (`ticks`, `token`) to end, then stop its processes."""
    pid, ticks, token, grace_s = int(argv[0]), argv[1], argv[2], float(argv[3])
    _wait_for_end(pid, ticks, sys.stdin.fileno())
    stop_marked(token, grace_s)
    return 0


if __name__ == "__main__":
    sys.exit(_watch(sys.argv[1:]))
