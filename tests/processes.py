"""Real `pricing` processes for the crash tests: start one, pause it at a fault point, kill it,
and count what it left running.

Every process a test starts carries `PRICING_TEST_TAG=<uuid>` in its environment, and so does
everything that process starts (the watchdog, Prefect's temporary server, Dask workers), so
`tagged(tag)` finds them all in /proc, whoever their parent is now. Linux only.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from pipeline import faults

ROOT = Path(__file__).resolve().parent.parent
TAG_ENV = "PRICING_TEST_TAG"
PROC = Path("/proc")


@dataclass(frozen=True)
class Found:
    """A live process carrying a test's tag."""

    pid: int
    command: str


def _environ(pid: str) -> list[bytes]:
    try:
        return (PROC / pid / "environ").read_bytes().split(b"\0")
    except OSError:
        return []


def _command(pid: str) -> str:
    try:
        return (PROC / pid / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _alive(pid: str) -> bool:
    try:
        stat = (PROC / pid / "stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] not in "ZX"  # a zombie has ended


def tagged(tag: str) -> list[Found]:
    """Live processes whose environment carries `tag` (zombies excluded)."""
    marker = f"{TAG_ENV}={tag}".encode()
    return [
        Found(int(entry.name), _command(entry.name))
        for entry in PROC.iterdir()
        if entry.name.isdigit() and marker in _environ(entry.name) and _alive(entry.name)
    ]


def left_running(tag: str, within_s: float = 15.0) -> list[Found]:
    """The tagged processes still alive after waiting up to `within_s` for them to end."""
    deadline = time.monotonic() + within_s
    while (found := tagged(tag)) and time.monotonic() < deadline:
        time.sleep(0.2)
    return found


def wait_for(tag: str, count: int, within_s: float = 30.0) -> list[Found]:
    """The tagged processes, once there are `count` of them (or whatever there is by then)."""
    deadline = time.monotonic() + within_s
    while len(found := tagged(tag)) < count and time.monotonic() < deadline:
        time.sleep(0.1)
    return found


def is_prefect_server(found: Found) -> bool:
    return "uvicorn" in found.command and "prefect.server.api.server" in found.command


def cli_env(extra: dict[str, str] | None = None, api_url: str | None = None) -> dict[str, str]:
    """A `pricing` subprocess's environment; without `api_url` it starts its own Prefect server."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PRICING_TEST_")}
    env.pop("PREFECT_API_URL", None)
    if api_url:
        env["PREFECT_API_URL"] = api_url
    return {**env, **(extra or {})}


@dataclass
class Started:
    """A `pricing` process started by a test, with its tag and the marker it pauses on."""

    process: subprocess.Popen[str]
    tag: str
    marker: Path


def start(args: list[str], folder: Path, env: dict[str, str], stage: str | None) -> Started:
    """Run `python -m pipeline.cli ARGS` (as the `pricing` program), pausing at `stage`."""
    tag = uuid.uuid4().hex
    marker = folder / f"paused-{tag}"
    extra = {TAG_ENV: tag}
    if stage is not None:
        extra |= {faults.PAUSE_ENV: stage, faults.MARKER_ENV: str(marker)}
    process = subprocess.Popen(
        [sys.executable, "-m", "pipeline.cli", *args],
        cwd=ROOT,
        env={**env, **extra},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    return Started(process, tag, marker)


def wait_paused(started: Started, timeout_s: float = 300) -> None:
    """Wait until the process paused at its fault point (wrote the marker)."""
    process = started.process
    deadline = time.monotonic() + timeout_s
    while not started.marker.exists():
        if process.poll() is not None:
            output = process.stdout.read() if process.stdout else ""
            pytest.fail(f"exited with {process.returncode} before pausing:\n{output[-3000:]}")
        if time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"did not reach its fault point in {timeout_s} s")
        time.sleep(0.1)


def kill(started: Started) -> None:
    """SIGKILL the paused process and reap it."""
    process = started.process
    try:
        process.send_signal(signal.SIGKILL)
        assert process.wait(timeout=60) == -signal.SIGKILL
    finally:
        if process.poll() is None:
            process.kill()
        if process.stdout:
            process.stdout.close()


def stop_all(tag: str) -> None:
    """Kill whatever a failed test left running (never needed when the guard works)."""
    for found in tagged(tag):
        with contextlib.suppress(OSError):
            os.kill(found.pid, signal.SIGKILL)
