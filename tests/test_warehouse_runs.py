"""Runs and their outputs in the warehouse (pipeline/warehouse/runs.py)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pytest
from warehouse_rows import (
    AS_OF,
    load,
    make_forecasts,
    make_model_versions,
    make_recommendations,
    nightly,
    warehouse_file,
)

from pipeline import warehouse as wh


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return warehouse_file(tmp_path)


@pytest.fixture
def loaded(path: Path) -> Path:
    return load(path)


def test_runs_are_recorded(loaded: Path) -> None:
    wh.record_run_start(loaded, "r1", "retrain", None, {"category": "fruit"})
    with pytest.raises(wh.WarehouseError, match="already recorded"):
        wh.record_run_start(loaded, "r1", "retrain", None, {})
    wh.record_run_end(loaded, "r1", "failed", {"n_trained": 0}, "out of memory")
    run = wh.query_readonly(loaded, "select * from run_summary").row(0, named=True)
    assert run["status"] == "failed" and run["message"] == "out of memory"
    assert run["n_trained"] == 0 and run["parameters"] == '{"category": "fruit"}'
    span = (run["finished_at"] - run["started_at"]).total_seconds()
    assert run["duration_s"] == pytest.approx(span, abs=1e-3)
    started = run["started_at"]
    assert abs((dt.datetime.now(dt.UTC).replace(tzinfo=None) - started).total_seconds()) < 60
    with pytest.raises(wh.WarehouseError, match="never started"):
        wh.record_run_end(loaded, "unknown", "completed")


def test_rerunning_a_date_replaces_instead_of_duplicating(loaded: Path) -> None:
    nightly(loaded, "night-1", AS_OF, 2.19)
    with wh.connect(loaded) as con:  # finished_at orders the runs: night-1 ended a minute earlier
        con.execute(
            "update runs set finished_at = finished_at - interval 1 minute where run_id = ?",
            ["night-1"],
        )
    nightly(loaded, "night-2", AS_OF, 2.29)
    recs = wh.query_readonly(loaded, "select * from recommendations")
    assert recs.height == 2 and set(recs["run_id"]) == {"night-2"}
    forecasts = wh.query_readonly(loaded, "select * from forecasts")
    assert forecasts.height == 2 and set(forecasts["run_id"]) == {"night-2"}
    latest = wh.read_recommendations(loaded)
    assert latest["run_id"].to_list() == ["night-2", "night-2"]
    a1 = latest.row(0, named=True)
    assert a1["recommended_price"] == 2.29 and a1["name"] == "apple"
    assert a1["price_change_pct"] == pytest.approx(14.5)
    assert a1["as_of"] == AS_OF
    history = wh.read_recommendations(loaded, latest_only=False)
    assert history.height == 2 and set(history["flow"]) == {"nightly"}
    runs = wh.query_readonly(loaded, "select * from runs order by run_id")
    assert runs["status"].to_list() == ["completed", "completed"]
    assert runs["n_recommendations"].to_list() == [2, 2]


def test_latest_recommendations_follow_the_latest_date(loaded: Path) -> None:
    nightly(loaded, "night-1", AS_OF, 2.19)
    nightly(loaded, "night-2", AS_OF + dt.timedelta(days=1), 2.09)
    assert wh.read_recommendations(loaded)["run_id"].unique().to_list() == ["night-2"]
    assert wh.read_recommendations(loaded, latest_only=False).height == 4


def test_a_failed_write_leaves_the_previous_night_intact(loaded: Path) -> None:
    nightly(loaded, "night-1", AS_OF, 2.19)
    wh.record_run_start(loaded, "night-2", "nightly", AS_OF, {})
    broken = make_recommendations("night-2", AS_OF, 2.29).with_columns(
        pl.Series("reason", ["fine", None])  # reason is not null: fails after the deletes
    )
    with pytest.raises(wh.WarehouseError, match="nothing was written"):
        wh.write_run_outputs(
            loaded,
            "night-2",
            AS_OF,
            forecasts=make_forecasts("night-2", AS_OF),
            recommendations=broken,
            counts={"n_products": 2},
        )
    missing_column = make_recommendations("night-2", AS_OF, 2.29).drop("action")
    with pytest.raises(wh.WarehouseError, match="nothing was written"):
        wh.write_run_outputs(loaded, "night-2", AS_OF, recommendations=missing_column)
    latest = wh.read_recommendations(loaded)
    assert latest["run_id"].to_list() == ["night-1", "night-1"]
    assert wh.query_readonly(loaded, "select * from forecasts")["run_id"].unique().to_list() == [
        "night-1"
    ]
    status = wh.query_readonly(loaded, "select status from runs where run_id = 'night-2'")
    assert status["status"][0] == "running"


def test_model_versions_replace_and_latest(loaded: Path) -> None:
    old = dt.datetime(2025, 2, 1, 3, 0)
    new = dt.datetime(2025, 3, 1, 3, 0, tzinfo=dt.UTC)
    wh.record_run_start(loaded, "t1", "retrain", None, {})
    wh.write_run_outputs(loaded, "t1", None, model_versions=make_model_versions("v1", old, 0.3))
    wh.record_run_start(loaded, "t2", "retrain", None, {})
    wh.write_run_outputs(loaded, "t2", None, model_versions=make_model_versions("v2", new, 0.2))
    wh.record_run_start(loaded, "t3", "retrain", None, {})
    wh.write_run_outputs(loaded, "t3", None, model_versions=make_model_versions("v2", new, 0.1))
    everything = wh.read_model_versions(loaded, latest_only=False)
    assert everything.height == 4  # v2 was replaced, not duplicated
    latest = wh.read_model_versions(loaded)
    assert latest["model_version"].to_list() == ["v2", "v2"]
    assert latest["backtest_wape"].to_list() == [0.1, 0.5]
    # Aware timestamps are stored as naive UTC, whatever the machine's time zone.
    assert latest["trained_at"][0] == dt.datetime(2025, 3, 1, 3, 0)
    quality = wh.query_readonly(loaded, "select * from model_quality order by product_id")
    assert quality["wape_improvement"].to_list() == pytest.approx([0.75, -0.25])


def test_data_issues_are_written_once_per_run(loaded: Path) -> None:
    issues = pl.DataFrame(
        {"run_id": ["n1"], "product_id": ["A1"], "ds": [AS_OF], "check": ["units"], "detail": ["x"]}
    )
    wh.record_run_start(loaded, "n1", "nightly", AS_OF, {})
    wh.write_run_outputs(loaded, "n1", AS_OF, data_issues=issues)
    wh.write_run_outputs(loaded, "n1", AS_OF, data_issues=issues)  # a retried write task
    assert wh.query_readonly(loaded, 'select "check" from data_issues').height == 1


def test_a_new_run_can_abandon_runs_left_running(loaded: Path) -> None:
    assert wh.record_run_start(loaded, "dead", "nightly", AS_OF, {}) == 0
    assert wh.record_run_start(loaded, "alive", "nightly", AS_OF, {}, abandon_others=True) == 1
    runs = wh.query_readonly(loaded, "select run_id, status, message from runs order by run_id")
    assert runs["status"].to_list() == ["running", "failed"]
    assert runs["message"][1] == (
        "abandoned: the process running it stopped before it finished (killed or crashed); "
        "found by run alive"
    )
