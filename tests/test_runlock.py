"""The warehouse run lock, exercised by real processes: waiting, giving up, surviving a kill -9."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from pipeline import synth
from pipeline import warehouse as wh
from pipeline.runlock import WarehouseBusyError, lock_path, warehouse_lock

ROOT = Path(__file__).resolve().parent.parent


def _holder(path: Path) -> subprocess.Popen:
    """Another process that takes the lock as a 'nightly' run and holds it until stdin closes."""
    code = textwrap.dedent(
        f"""
        import sys
        from pipeline.runlock import warehouse_lock
        with warehouse_lock({str(path)!r}, "nightly", "holder-run", 0):
            print("locked", flush=True)
            sys.stdin.read()
        """
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code], cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
    return proc


def test_lock_file_sits_next_to_the_warehouse(tmp_path):
    assert lock_path(tmp_path / "pricing.duckdb") == tmp_path / "pricing.duckdb.lock"


def test_a_second_run_waits_for_the_first_to_finish(tmp_path):
    path = tmp_path / "pricing.duckdb"
    holder = _holder(path)
    waited_for: list[str] = []
    order: list[str] = []

    def waiting(holder_text: str) -> None:
        # The waiter found the lock taken: only now does the first run finish.
        waited_for.append(holder_text)
        order.append("waiting")
        assert holder.stdin is not None
        holder.stdin.close()

    with warehouse_lock(path, "retrain", "waiting-run", 60, waiting):
        order.append("locked")
    holder.wait(timeout=30)
    assert order == ["waiting", "locked"]
    assert "nightly run holder-run" in waited_for[0]


def test_a_run_that_waits_too_long_names_the_holder(tmp_path):
    path = tmp_path / "pricing.duckdb"
    holder = _holder(path)
    try:
        with (
            pytest.raises(WarehouseBusyError, match=r"busy: nightly run holder-run \(pid \d+"),
            warehouse_lock(path, "retrain", "late-run", 0.3),
        ):
            pass
    finally:
        holder.kill()
        holder.wait()


def test_a_killed_holder_never_leaves_a_stale_lock(tmp_path):
    path = tmp_path / "pricing.duckdb"
    holder = _holder(path)
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()
    waited: list[str] = []
    # No wait allowed at all: the kernel released the dead holder's lock.
    with warehouse_lock(path, "nightly", "next-run", 0, waited.append):
        assert waited == []


@pytest.mark.slow
def test_a_busy_warehouse_ends_the_nightly_command_with_one_clear_line(tmp_path, prefect_harness):
    from prefect.settings import PREFECT_API_URL

    path = tmp_path / "pricing.duckdb"
    world = synth.generate_world(n_products=4, n_days=120, seed=1)
    wh.write_inputs(path, world.products, world.sales)
    config = tmp_path / "settings.toml"
    config.write_text("[run]\nlock_wait_s = 1.0\n")
    env = {**os.environ, "PREFECT_API_URL": PREFECT_API_URL.value()}
    holder = _holder(path)
    try:
        done = subprocess.run(
            [sys.executable, "-m", "pipeline.cli", "nightly", "--warehouse", str(path),
             "--config", str(config), "--epochs", "1"],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=240,
        )  # fmt: skip
    finally:
        holder.kill()
        holder.wait()
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: warehouse {path} is busy: nightly run holder-run (pid")
    assert "waited 1 s (run.lock_wait_s)" in last
    runs = wh.query_readonly(path, "select status, message from runs")
    assert runs.rows() == [("failed", last.removeprefix("error: "))]
