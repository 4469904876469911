"""The warehouse connection (pipeline/warehouse/connection.py): opening, locks, the snapshot."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from warehouse_rows import AS_OF, load, make_recommendations, nightly, warehouse_file

from pipeline import errors
from pipeline import warehouse as wh
from pipeline.errors import UserError


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return warehouse_file(tmp_path)


@pytest.fixture
def loaded(path: Path) -> Path:
    return load(path)


def test_missing_warehouse_message(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "pricing.duckdb"
    expected = f"warehouse {missing} not found: run `pricing demo` or `pricing load` first"
    for call in (
        lambda: wh.read_products(missing),
        lambda: wh.read_sales(missing),
        lambda: wh.query_readonly(missing, "select 1"),
    ):
        with pytest.raises(wh.WarehouseError) as info:
            call()
        assert str(info.value) == expected
    assert not missing.parent.exists()  # reading never creates folders


def test_a_lock_held_by_another_process_times_out_with_a_message(
    loaded: Path, write_lock_holder, monkeypatch
) -> None:
    waits: list[float] = []
    real_sleep = errors.time.sleep

    def counted_sleep(seconds: float) -> None:
        waits.append(seconds)
        real_sleep(seconds)

    monkeypatch.setattr(errors.time, "sleep", counted_sleep)
    with (
        write_lock_holder(loaded),
        pytest.raises(wh.WarehouseError, match="another process holds it"),
        # Long enough for two tries with a backoff between them on a loaded 2-core machine.
        wh.connect(loaded, read_only=True, lock_timeout_s=3.0),
    ):
        pass
    # It waited and tried again (backing off) before giving up, instead of failing at once.
    assert len(waits) >= 2 and waits[1] > waits[0]
    with wh.connect(loaded, read_only=True) as con:  # free again once the holder is gone
        assert con.execute("select count(*) from products").fetchone() == (3,)


def test_connect_creates_the_folder_and_closes(path: Path) -> None:
    with wh.connect(path) as con:
        con.execute("select 1")
    assert path.is_file()
    with pytest.raises(Exception, match="closed"):
        con.execute("select 1")


def test_every_finished_write_publishes_the_analysts_snapshot(loaded: Path) -> None:
    snapshot = wh.analyst_path(loaded)
    assert snapshot.name == "pricing.analyst.duckdb"
    assert wh.reading_path(loaded) == snapshot
    assert wh.query_readonly(snapshot, "select count(*) as n from sales")["n"].item() == 30
    nightly(loaded, "night-1", AS_OF, 2.19)
    assert wh.read_recommendations(snapshot)["run_id"].to_list() == ["night-1", "night-1"]
    wh.record_run_start(loaded, "night-2", "nightly", AS_OF, {})
    broken = make_recommendations("night-2", AS_OF, 2.29).drop("action")
    with pytest.raises(wh.WarehouseError, match="nothing was written"):
        wh.write_run_outputs(loaded, "night-2", AS_OF, recommendations=broken)
    assert wh.read_recommendations(snapshot)["run_id"].to_list() == ["night-1", "night-1"]
    wh.record_run_end(loaded, "night-2", "failed", message="broken frame")
    runs = wh.query_readonly(snapshot, "select run_id, status from runs order by run_id")
    assert runs.rows() == [("night-1", "completed"), ("night-2", "failed")]
    assert not snapshot.with_name(snapshot.name + ".partial").exists()


def _no_waiting(seconds: float) -> None:
    raise AssertionError(f"the writer waited {seconds} s for a lock")


def test_a_reader_holding_the_snapshot_never_blocks_the_writer(loaded: Path) -> None:
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys; c = duckdb.connect(sys.argv[1], read_only=True); "
            "print(c.execute('select count(*) from sales').fetchone()[0], flush=True); "
            "sys.stdin.readline(); "
            "print(c.execute('select count(*) from recommendations').fetchone()[0], flush=True)",
            str(wh.analyst_path(loaded)),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "30"
        with pytest.MonkeyPatch.context() as patch:
            # Any wait for a lock fails the test: the writer must never wait for this reader.
            patch.setattr(errors.time, "sleep", _no_waiting)
            nightly(loaded, "night-1", AS_OF, 2.19)
        assert wh.read_recommendations(wh.analyst_path(loaded)).height == 2
        out, _ = holder.communicate("go\n", timeout=30)
        assert out.strip() == "0"  # the held connection still reads the night it opened
    finally:
        holder.kill()
        holder.wait()


def test_warehouse_errors_are_user_errors(tmp_path: Path) -> None:
    # The CLI prints a UserError as its one line; code that caught RuntimeError still does.
    with pytest.raises(UserError) as info:
        wh.read_products(tmp_path / "missing.duckdb")
    assert isinstance(info.value, wh.WarehouseError) and isinstance(info.value, RuntimeError)
