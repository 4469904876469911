"""Tests for pipeline/evaluate.py: the log-log baseline and profit capture against the truth."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest

from pipeline import evaluate, pricing, synth
from pipeline.config import PricingConfig

START = dt.date(2026, 1, 1)


def sales_frame(
    product_id: str, prices: np.ndarray, elasticity: float, level: float, seed: int
) -> pl.DataFrame:
    """Daily sales with constant elasticity and log-normal noise at the given prices."""
    rng = np.random.default_rng(seed)
    units = level * prices**elasticity * np.exp(rng.normal(0.0, 0.1, prices.size))
    return pl.DataFrame(
        {
            "product_id": product_id,
            "ds": [START - dt.timedelta(days=prices.size - k) for k in range(prices.size)],
            "units": units,
            "price": prices,
            "stockout": np.zeros(prices.size, dtype=bool),
        }
    )


def test_loglog_recovers_a_known_elasticity_and_flags_what_it_cannot_fit() -> None:
    rng = np.random.default_rng(0)
    varied = rng.choice([3.0, 4.0, 5.0, 6.0, 7.0], 200)
    sales = pl.concat(
        [
            sales_frame("fit", varied, -2.0, 1000.0, seed=1),
            sales_frame("flat", np.full(200, 5.0), -2.0, 1000.0, seed=2),
            sales_frame("new", varied[:30], -2.0, 1000.0, seed=3),
        ]
    )
    products = pl.DataFrame(
        {
            "product_id": ["fit", "flat", "new", "unsold"],
            "category": ["a"] * 4,
            "current_price": [5.0] * 4,
        }
    )
    table = evaluate.loglog_table(sales, products, horizon=14, min_history_days=90)
    rows = {row["product_id"]: row for row in table.iter_rows(named=True)}
    fit = rows["fit"]
    assert fit["status"] == "trained" and fit["hold_reason"] is None
    assert fit["elasticity"] == pytest.approx(-2.0, abs=0.1)
    assert fit["elasticity_lo"] < fit["elasticity"] < fit["elasticity_hi"]
    assert fit["base_units"] == pytest.approx(14 * 1000.0 * 5.0**-2.0, rel=0.05)
    assert rows["flat"]["status"] == "not_identified"
    assert rows["new"]["status"] == "cold_start"
    assert rows["new"]["hold_reason"] == "cold start: 30 days of history (minimum 90)"
    assert rows["unsold"]["status"] == "cold_start"


@pytest.fixture(scope="module")
def world() -> synth.World:
    return synth.generate_world(n_products=30, n_days=300, seed=5)


def start_of(world: synth.World) -> dt.date:
    return world.sales["ds"].max() + dt.timedelta(days=1)


def test_oracle_prices_capture_everything_and_today_s_capture_nothing(world: synth.World) -> None:
    cfg = PricingConfig()
    start = start_of(world)
    oracle = pricing.recommend(world.products, evaluate.true_demand(world.truth, start, 14), cfg)
    overall, per_category = evaluate.profit_capture(
        oracle, world.products, world.truth, start, 14, cfg
    )
    assert overall["capture"] == pytest.approx(1.0)
    assert overall["capture_priced"] == pytest.approx(1.0)
    assert overall["n_held"] == 0
    assert overall["oracle_profit"] > overall["current_profit"]
    assert set(per_category["category"]) == set(world.products["category"])
    today = oracle.with_columns(recommended_price=pl.col("current_price"), action=pl.lit("keep"))
    overall, _ = evaluate.profit_capture(today, world.products, world.truth, start, 14, cfg)
    assert overall["capture"] == pytest.approx(0.0)


def test_holding_products_lowers_capture_but_not_capture_on_the_priced(world: synth.World) -> None:
    cfg = PricingConfig()
    start = start_of(world)
    demand = evaluate.true_demand(world.truth, start, 14)
    held = world.products["product_id"].head(10).to_list()
    partial = pricing.recommend(
        world.products,
        demand.with_columns(
            hold_reason=pl.when(pl.col("product_id").is_in(held)).then(pl.lit("held"))
        ),
        cfg,
    )
    overall, _ = evaluate.profit_capture(partial, world.products, world.truth, start, 14, cfg)
    assert overall["n_held"] == 10
    assert overall["capture"] < 1.0
    assert overall["capture_priced"] == pytest.approx(1.0)


def test_the_baseline_is_measured_beside_the_model_in_one_report(world: synth.World) -> None:
    cfg = PricingConfig()
    start = start_of(world)
    baseline = evaluate.loglog_table(world.sales, world.products, 14, 90)
    recs = pricing.recommend(world.products, baseline, cfg)  # the baseline as "the model"
    report = evaluate.evaluate_policies(
        recs, world.products, world.sales, world.truth, start, 14, 90, cfg
    )
    assert report["model"]["overall"] == report["loglog"]["overall"]
    assert report["loglog"]["elasticity"]["n_products"] > 0
    text = evaluate.capture_text(report)
    assert "profit capture (oracle prices every product)" in text
    assert "capture on the products priced" in text
    for category in world.products["category"].unique():
        assert f"  {category}" in text
