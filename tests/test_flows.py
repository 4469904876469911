"""End to end: the nightly and retrain flows on a tiny demo world under a Prefect test harness."""

from __future__ import annotations

import datetime as dt
import shutil

import polars as pl
import pytest

from flows.nightly import nightly, retrain
from pipeline import synth
from pipeline import warehouse as wh
from pipeline.config import PricingConfig
from pipeline.errors import UserError

pytestmark = pytest.mark.slow  # whole flows under the Prefect test harness

EPOCHS = 3


@pytest.fixture(scope="module")
def demo_warehouse(tmp_path_factory, prefect_harness):
    path = tmp_path_factory.mktemp("wh") / "pricing.duckdb"
    world = synth.generate_world(n_products=24, n_days=300, seed=3)
    wh.write_inputs(path, world.products, world.sales, world.truth)
    summary = nightly(warehouse_path=str(path), epochs=EPOCHS)
    return path, world, summary


@pytest.fixture()
def own_warehouse(demo_warehouse, tmp_path):
    """A copy of the module's warehouse after its first night, for a test that writes to it.

    The shared warehouse stays as the first night left it, so the tests that only read it pass
    in any order. The copy's model versions still point at the first night's artefacts, which
    are only read.
    """
    path, world, summary = demo_warehouse
    copy = tmp_path / "pricing.duckdb"
    shutil.copy(path, copy)
    return copy, world, summary


def test_nightly_writes_a_recommendation_or_reasoned_hold_for_every_product(demo_warehouse):
    path, world, summary = demo_warehouse
    recs = wh.query_readonly(path, "select * from latest_recommendations")
    active = set(world.products.filter("is_active")["product_id"])
    assert set(recs["product_id"]) == active
    assert summary["n_products"] == len(active)
    holds = recs.filter(pl.col("action") == "hold")
    assert holds["reason"].str.len_chars().min() > 10
    assert recs["run_id"].n_unique() == 1
    as_of = world.sales["ds"].max() + dt.timedelta(days=1)
    assert (recs["effective_date"] == as_of).all()


def test_recommended_prices_obey_the_rules(demo_warehouse):
    path, world, _ = demo_warehouse
    cfg = PricingConfig()
    recs = wh.query_readonly(path, "select * from latest_recommendations")
    moved = recs.join(world.products, on="product_id").filter(
        pl.col("recommended_price") != pl.col("current_price_right")
    )
    assert moved.height > 0
    assert (moved["recommended_price"] >= moved["min_price"] - 1e-9).all()
    assert (moved["recommended_price"] <= moved["max_price"] + 1e-9).all()
    ratio = moved["recommended_price"] / moved["current_price"]
    assert (ratio <= 1 + cfg.max_change_up + 1e-9).all()
    assert (ratio >= 1 - cfg.max_change_down - 1e-9).all()
    margin = moved["recommended_price"] >= moved["unit_cost_right"] * (1 + cfg.margin_floor)
    assert margin.all()
    cents = (moved["recommended_price"] * 100).round().cast(pl.Int64) % 100
    assert (cents == 99).all()


def test_models_forecasts_and_run_record_are_written(demo_warehouse):
    path, _, summary = demo_warehouse
    versions = wh.read_model_versions(path)
    assert versions.height > 0
    assert (versions["elasticity"] <= 0).all()
    assert (versions["elasticity_lo"] <= versions["elasticity"] + 1e-9).all()
    forecasts = wh.query_readonly(
        path, "select * from forecasts where run_id = ?", [summary["run_id"]]
    )
    assert forecasts.height == summary["n_products"] * 14
    assert (forecasts["units_p10"] <= forecasts["units_p90"]).all()
    runs = wh.query_readonly(path, "select * from run_summary")
    assert runs.filter(pl.col("run_id") == summary["run_id"])["status"].item() == "completed"


def test_rerunning_a_night_reuses_models_and_replaces_not_duplicates(own_warehouse):
    path, _world, first = own_warehouse
    second = nightly(warehouse_path=str(path), epochs=EPOCHS)
    assert second["n_trained"] == 0  # current models were reused
    count = wh.query_readonly(
        path, "select count(*) as n from recommendations where effective_date = ?", [first["as_of"]]
    )
    assert count["n"].item() == first["n_products"]
    recs = wh.query_readonly(path, "select * from latest_recommendations")
    assert set(recs["run_id"]) == {second["run_id"]}


def test_retrain_a_category_registers_new_models(own_warehouse):
    path, world, _ = own_warehouse
    category = world.products["category"][0]
    before = wh.read_model_versions(path, latest_only=False).height
    summary = retrain(warehouse_path=str(path), category=category, epochs=EPOCHS)
    after = wh.read_model_versions(path, latest_only=False)
    assert summary["n_trained"] > 0
    assert after.height == before + summary["n_trained"]
    newest = after.filter(pl.col("model_version") == summary["model_version"])
    in_category = world.products.filter(pl.col("category") == category)["product_id"]
    assert set(newest["product_id"]) <= set(in_category)


def test_retrain_unknown_product_fails_with_a_clear_message(own_warehouse):
    path, _, _ = own_warehouse
    with pytest.raises(UserError, match="unknown or inactive product id"):
        retrain(warehouse_path=str(path), product_ids=["NOPE-1"], epochs=EPOCHS)


def test_cli_refuses_an_unknown_product_before_starting_a_run(demo_warehouse):
    from typer.testing import CliRunner

    from pipeline.cli import app

    path, _, _ = demo_warehouse
    runs_before = wh.query_readonly(path, "select count(*) as n from runs")["n"].item()
    result = CliRunner().invoke(app, ["retrain", "--products", "NOPE-1", "--warehouse", str(path)])
    assert result.exit_code == 1
    assert "unknown or inactive product id(s): NOPE-1" in result.output
    assert "Traceback" not in result.output
    runs_after = wh.query_readonly(path, "select count(*) as n from runs")["n"].item()
    assert runs_after == runs_before
