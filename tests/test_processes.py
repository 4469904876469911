"""Nothing a `pricing` command starts outlives it, however the command ends (pipeline/procguard.py).

Real processes: a `pricing` command runs as the program (`python -m pipeline.cli`) without
`PREFECT_API_URL`, so it starts Prefect's temporary server as a user's would; the test SIGKILLs it
at a fault point (pipeline/faults.py) and counts, in /proc, the processes carrying its tag before
and after (tests/processes.py). Before the guard, the temporary server of a killed command kept
running, holding its memory and a port, until stopped by hand. Linux only.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from pipeline import procguard, synth
from pipeline import warehouse as wh
from tests import processes as proc

pytestmark = pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="needs /proc")

# A parent that guards its children, starts a child that starts a grandchild and one child that
# ignores SIGTERM, says "ready", and sleeps until killed.
PARENT = textwrap.dedent(
    """
    import subprocess, sys, time
    from pipeline import procguard
    procguard.guard_children(grace_s=1.0)
    subprocess.Popen([sys.executable, "-c",
        "import subprocess, time; subprocess.Popen(['sleep', '600']); time.sleep(600)"])
    subprocess.Popen([sys.executable, "-c",
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)"])
    print("ready", flush=True)
    time.sleep(600)
    """
)


def test_the_guard_stops_children_and_grandchildren_of_a_killed_process(tmp_path: Path) -> None:
    tag = "guard-" + tmp_path.name
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT],
        cwd=proc.ROOT,
        env=proc.cli_env({proc.TAG_ENV: tag}),
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert parent.stdout is not None and parent.stdout.readline().strip() == "ready"
        # The parent, its watchdog, two children, one grandchild.
        before = proc.wait_for(tag, 5)
        assert len(before) == 5 and sum("procguard.py" in p.command for p in before) == 1
        parent.kill()
        parent.wait(timeout=30)
        assert proc.left_running(tag, within_s=10) == []
    finally:
        proc.stop_all(tag)
        if parent.stdout:
            parent.stdout.close()


def test_the_guard_does_nothing_at_a_normal_exit_and_stops_what_is_left() -> None:
    code = (
        "import subprocess, sys; from pipeline import procguard; procguard.guard_children(1.0); "
        "subprocess.Popen(['sleep', '600'])"
    )
    tag = "normal-exit"
    env = proc.cli_env({proc.TAG_ENV: tag})
    done = subprocess.run([sys.executable, "-c", code], cwd=proc.ROOT, env=env, timeout=60)
    assert done.returncode == 0
    assert proc.left_running(tag, within_s=10) == []  # the orphaned sleep was stopped too


def test_only_processes_carrying_the_token_are_stopped() -> None:
    other = subprocess.Popen(["sleep", "600"])
    try:
        assert procguard.marked_processes("no-such-token") == []
        assert procguard.stop_marked("no-such-token", grace_s=0.1) == 0
        assert other.poll() is None
    finally:
        other.kill()
        other.wait()


# --------------------------------------------------------------------------- real commands


@pytest.fixture(scope="module")
def warehouse_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("processes") / "pricing.duckdb"
    world = synth.generate_world(n_products=6, n_days=120, seed=7)
    wh.write_inputs(path, world.products, world.sales)
    return path


@pytest.fixture(scope="module")
def prefect_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Prefect's home for the temporary servers of these tests (not the user's database)."""
    return tmp_path_factory.mktemp("prefect-home")


def run_and_kill(
    args: list[str], folder: Path, stage: str, home: Path, ledger: Any
) -> tuple[list[proc.Found], list[proc.Found]]:
    """Start `pricing ARGS`, SIGKILL it at `stage`; the tagged processes before and after."""
    env = proc.cli_env({"PREFECT_HOME": str(home)})
    started = proc.start(args, folder, env, stage)
    try:
        proc.wait_paused(started)
        before = proc.tagged(started.tag)
        proc.kill(started)
        after = proc.left_running(started.tag)
        ledger.killed(f"{args[0]}@{stage}", len(after))
        return before, after
    finally:
        proc.stop_all(started.tag)


@pytest.mark.slow
@pytest.mark.parametrize(("stage", "server"), [("train", True), ("publish", True)])
def test_a_killed_nightly_leaves_no_prefect_server_running(
    warehouse_file: Path,
    prefect_home: Path,
    tmp_path: Path,
    reliability_ledger: Any,
    stage: str,
    server: bool,
) -> None:
    args = ["nightly", "--warehouse", str(warehouse_file), "--epochs", "1", "--retrain"]
    before, after = run_and_kill(args, tmp_path, stage, prefect_home, reliability_ledger)
    servers = [p for p in before if proc.is_prefect_server(p)]
    assert len(servers) == int(server), before  # the temporary server was running ...
    assert after == []  # ... and nothing the command started outlived it


@pytest.mark.slow
def test_a_demo_killed_while_loading_leaves_nothing(
    tmp_path: Path, prefect_home: Path, reliability_ledger: Any
) -> None:
    args = ["demo", "--products", "3", "--days", "60", "--warehouse", str(tmp_path / "w.duckdb")]
    before, after = run_and_kill(args, tmp_path, "load", prefect_home, reliability_ledger)
    assert any("procguard.py" in p.command for p in before)  # the watchdog was there
    assert after == []


# A command that finishes normally leaves nothing either: tests/test_console.py runs `pricing demo`
# with its own temporary server and checks that.
