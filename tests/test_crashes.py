"""Crashes lose nothing and leave nothing running (issues 6 and 14).

Each test copies the baseline warehouse (tests/baseline.py: a tiny world with one completed
night) and injects one fault:

- SIGKILL of a real `pricing` process (`python -m pipeline.cli`, run as the program) at each of
  KILL_POINTS: the command paused by pipeline/faults.py at a stage of loading, training,
  forecasting, optimising, writing or publishing. The commands use the session's Prefect server
  (tests/test_processes.py kills commands that start their own);
- a full disk (an injected `OSError(ENOSPC)`) inside the write's transaction;
- a model artefact corrupted, truncated, or of another format;
- a warehouse file an older release left (the first migration only).

Each ends the same way: the previous night intact, the next run succeeds, no row lost or
duplicated, and nothing left running (every process a test starts carries a tag; see
tests/processes.py). Kill points and processes left running are counted into the session's
reliability report (tests/conftest.py).
"""

from __future__ import annotations

import datetime as dt
import errno
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pytest
from typer.testing import CliRunner

from pipeline import faults
from pipeline import model as model_lib
from pipeline import warehouse as wh
from pipeline.cli import app
from pipeline.config import ModelConfig
from pipeline.warehouse.schema import apply_migrations
from tests import processes as proc
from tests.baseline import (
    EPOCHS,
    assert_nothing_lost,
    copy_warehouse,
    latest,
    run_nightly,
    scalar,
)


@dataclass(frozen=True)
class KillPoint:
    """Where a `pricing` command is killed: the command, its arguments, the stage it pauses at."""

    command: str
    stage: str
    args: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return f"{self.command}@{self.stage}"

    @property
    def committed(self) -> bool:
        """Killed after its transaction committed (while publishing the analysts' snapshot)."""
        return self.stage == "publish"


KILL_POINTS = (
    KillPoint("load", "load"),
    KillPoint("load", "publish"),
    KillPoint("demo", "load", ("--no-run",)),
    KillPoint("nightly", "read"),
    KillPoint("nightly", "train", ("--retrain",)),
    KillPoint("nightly", "forecast"),
    KillPoint("nightly", "optimise"),
    KillPoint("nightly", "write"),
    KillPoint("nightly", "publish"),
    KillPoint("retrain", "train", ("--all",)),
    KillPoint("retrain", "write", ("--all",)),
)


def next_day(path: Path, folder: Path) -> tuple[Path, int]:
    """A CSV of one more day of sales for every product (what a nightly ETL appends)."""
    last = scalar(path, "select max(ds) from sales")
    day = wh.read_sales(path, after=last - dt.timedelta(days=1)).with_columns(
        ds=pl.lit(last + dt.timedelta(days=1))
    )
    file = folder / "next-day.csv"
    day.write_csv(file)
    return file, day.height


def command_args(point: KillPoint, path: Path, day: Path) -> list[str]:
    where = ["--warehouse", str(path)]
    if point.command == "load":
        return ["load", "--sales", str(day), *where]
    if point.command == "demo":
        return ["demo", "--products", "3", "--days", "40", *point.args, *where]
    config = ["--config", str(path.with_name("settings.toml")), "--epochs", str(EPOCHS)]
    return [point.command, *point.args, *config, *where]


def kill_at(point: KillPoint, path: Path, folder: Path, day: Path, ledger: Any) -> None:
    """Run the command as a separate program, SIGKILL it at its stage; nothing may outlive it."""
    from prefect.settings import PREFECT_API_URL

    env = proc.cli_env(api_url=str(PREFECT_API_URL.value()))
    started = proc.start(command_args(point, path, day), folder, env, point.stage)
    try:
        proc.wait_paused(started)
        proc.kill(started)
        left = proc.left_running(started.tag)
        ledger.killed(point.name, len(left))
        assert left == [], left
    finally:
        proc.stop_all(started.tag)


@pytest.mark.slow
@pytest.mark.parametrize("point", KILL_POINTS, ids=lambda p: p.name)
def test_a_killed_command_loses_nothing_and_the_next_run_succeeds(
    baseline: dict[str, Any], tmp_path: Path, point: KillPoint
) -> None:
    path = copy_warehouse(baseline, tmp_path / "wh")
    day, n_day = next_day(path, tmp_path)
    kill_at(point, path, tmp_path, day, baseline["ledger"])

    with wh.connect(path, read_only=True, lock_timeout_s=5) as con:  # the file opens at once
        assert con.execute("select count(*) from runs where status = 'completed'").fetchone() == (
            1 + (point.committed and point.command == "nightly"),
        )
    # Analysts see the previous night, whole; so does the warehouse unless the kill came after
    # the new night's commit.
    assert latest(wh.analyst_path(path)).equals(baseline["latest"])
    new_night = point.committed and point.command == "nightly"
    assert latest(path).equals(baseline["latest"]) != new_night
    loaded = point.committed and point.command == "load"
    assert_nothing_lost(path, baseline, baseline["n_sales"] + n_day * loaded)

    # The next run succeeds: the load again (when it had not committed), then a nightly run.
    if point.command == "load" and not loaded:
        result = CliRunner().invoke(app, command_args(point, path, day))
        assert result.exit_code == 0, result.output
        loaded = True
    summary = run_nightly(path)
    assert set(latest(path)["run_id"]) == {summary["run_id"]}
    assert latest(wh.analyst_path(path)).equals(latest(path))
    abandoned = wh.query_readonly(path, "select * from runs where status = 'running'")
    assert abandoned.height == 0  # a killed run's row is marked failed by the next run
    assert_nothing_lost(path, baseline, baseline["n_sales"] + n_day * loaded)


def test_the_kill_points_cover_every_stage_of_the_night() -> None:
    stages = {point.stage for point in KILL_POINTS}
    print(
        f"\ncrash tests: {len(KILL_POINTS)} kill points "
        f"({', '.join(p.name for p in KILL_POINTS)}), every fault stage: {sorted(stages)}"
    )
    assert len(KILL_POINTS) >= 10 and len({p.name for p in KILL_POINTS}) == len(KILL_POINTS)
    assert stages == set(faults.STAGES)


# --------------------------------------------------------------------------- a full disk


@pytest.mark.slow
def test_a_full_disk_during_the_write_loses_nothing_and_the_retry_succeeds(
    baseline: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = copy_warehouse(baseline, tmp_path)
    # The first try of the final write fails inside its transaction; Prefect retries the task
    # (as an operator freeing space would let it) and the second try finds the disk free.
    monkeypatch.setenv(faults.FAIL_ENV, "write")
    monkeypatch.setenv(faults.FAIL_TIMES_ENV, "1")
    monkeypatch.setattr(faults, "_failed", {})
    summary = run_nightly(path)
    assert faults._failed == {"write": 1}
    assert set(latest(path)["run_id"]) == {summary["run_id"]}
    assert_nothing_lost(path, baseline)  # the failed try wrote nothing, the retry all of it


def test_a_full_disk_during_a_load_is_one_line_and_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sales, products = tmp_path / "sales.csv", tmp_path / "products.csv"
    sales.write_text("product_id,ds,units,price\nA1,2025-01-01,2,2.0\n")
    products.write_text("product_id,unit_cost\nA1,1.0\n")
    path = tmp_path / "pricing.duckdb"
    args = ["load", "--sales", str(sales), "--products", str(products), "--warehouse", str(path)]
    monkeypatch.setenv(faults.FAIL_ENV, "load")
    monkeypatch.setattr(faults, "_failed", {})
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        f"error: [Errno {errno.ENOSPC}] No space left on device (injected at stage 'load'): "
        "free disk space and rerun"
    ]
    assert wh.read_sales(path).height == 0
    monkeypatch.delenv(faults.FAIL_ENV)
    assert CliRunner().invoke(app, args).exit_code == 0  # space freed: the same load succeeds
    assert wh.read_sales(path).height == 1


# --------------------------------------------------------------------------- damaged artefacts


def damage(folder: Path, how: str) -> None:
    """Damage a saved model the ways a disk or a copy can."""
    model_file = folder / model_lib.MODEL_FILE
    if how == "truncated":
        data = model_file.read_bytes()
        model_file.write_bytes(data[: len(data) // 2])
    elif how == "corrupted":
        data = bytearray(model_file.read_bytes())
        middle = len(data) // 2
        data[middle : middle + 64] = bytes(255 - b for b in data[middle : middle + 64])
        model_file.write_bytes(bytes(data))
    else:  # another artefact format
        meta_file = folder / model_lib.META_FILE
        meta_file.write_text(json.dumps({**json.loads(meta_file.read_text()), "format": 0}))


@pytest.mark.slow
@pytest.mark.parametrize("how", ["truncated", "corrupted", "another format"])
def test_a_damaged_model_artefact_is_refused_and_retrained(
    baseline: dict[str, Any], tmp_path: Path, how: str
) -> None:
    path = copy_warehouse(baseline, tmp_path)
    # The copy's models point at the baseline's artefacts: give one shard a private copy to break.
    shared = scalar(path, "select artefact from model_quality where artefact is not null")
    in_shard = scalar(path, "select count(*) from model_quality where artefact = ?", [shared])
    folder = shutil.copytree(shared, tmp_path / "artefact")
    with duckdb.connect(str(path)) as con:
        moved = "update model_versions set artefact = ? where artefact = ?"
        con.execute(moved, [str(folder), shared])
    cfg = ModelConfig(**json.loads((folder / model_lib.META_FILE).read_text())["model_config"])
    damage(folder, how)
    with pytest.raises(model_lib.ModelArtefactError, match=r"pricing retrain"):
        model_lib.load(folder, cfg)
    assert latest(path).equals(baseline["latest"])
    # The nightly run does not load it: it retrains that shard and goes on.
    summary = run_nightly(path)
    assert summary["n_trained"] == in_shard > 0  # that shard alone; the others were loaded
    failed = wh.query_readonly(path, "select * from runs where status = 'failed'")
    assert failed.height == 0
    assert_nothing_lost(path, baseline)


# --------------------------------------------------------------------------- an older warehouse


INPUT_TABLES = ("products", "sales")
OUTPUT_TABLES = ("runs", "model_versions", "forecasts", "recommendations", "data_issues")


def first_schema_copy(baseline: dict[str, Any], folder: Path) -> Path:
    """The baseline as the first release would have stored it: migration 001 only."""
    folder.mkdir()
    path = folder / "pricing.duckdb"
    shutil.copy2(baseline["path"].with_name("settings.toml"), folder / "settings.toml")
    first, *_ = wh.migration_files()
    with duckdb.connect(str(path)) as con:
        assert apply_migrations(con, [first]) == ["001_core_tables"]
        con.execute(f"attach '{baseline['path']}' as base (read_only)")
        for table in (*INPUT_TABLES, *OUTPUT_TABLES):
            columns = con.execute(
                "select column_name from duckdb_columns() where database_name = 'pricing' "
                "and table_name = ? order by column_index",
                [table],
            ).fetchall()
            names = ", ".join(f'"{name}"' for (name,) in columns)
            con.execute(f"insert into {table} ({names}) select {names} from base.{table}")
    return path


@pytest.mark.slow
def test_a_warehouse_of_an_older_release_upgrades_and_keeps_its_night(
    baseline: dict[str, Any], tmp_path: Path
) -> None:
    path = first_schema_copy(baseline, tmp_path / "old")
    assert wh.schema_version(path) == 1
    wh.migrate(path)  # what the next command does first
    assert wh.schema_version(path) == wh.SCHEMA_VERSION
    # The night the old release wrote reads the same through the new schema and views.
    columns = ["run_id", "product_id", "recommended_price", "action", "reason"]
    assert latest(path).select(columns).equals(baseline["latest"].select(columns))
    summary = run_nightly(path)  # the next run succeeds (replacing that date's night)
    assert set(latest(path)["run_id"]) == {summary["run_id"]}
    assert_nothing_lost(path, baseline)
