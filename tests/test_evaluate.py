"""Tests for pipeline/evaluate.py: the log-log baseline and profit capture against the truth."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest

from pipeline import evaluate, pricing, synth
from pipeline.config import PricingConfig
from pipeline.contract import RULE_PRICE_TEST
from pipeline.features import price_seen_range

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
    truth = evaluate.true_demand(world.truth, start, 14)
    oracle = pricing.recommend(world.products, truth, pricing.oracle_config(cfg))
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


def test_the_cautious_oracle_takes_the_cost_of_the_evidence_rules_out(world: synth.World) -> None:
    cfg = PricingConfig()
    start = start_of(world)
    seen = price_seen_range(world.sales)
    demand = evaluate.true_demand(world.truth, start, 14)
    # The engine on the true curves and the trust region: the cautious oracle's own prices.
    cautious = pricing.recommend(world.products, demand.join(seen, on="product_id"), cfg)
    overall, per_category = evaluate.profit_capture(
        cautious, world.products, world.truth, start, 14, cfg, seen
    )
    assert overall["capture_cautious"] == pytest.approx(1.0)
    assert per_category["capture_cautious"].is_not_null().all()
    # The evidence rules cost something on this world: the oracle free of them makes more.
    assert overall["oracle_cautious_profit"] < overall["oracle_priced_profit"]
    assert overall["capture_priced"] < 1.0
    # Without the prices sold at there is no cautious oracle, and no figure for it.
    overall, _ = evaluate.profit_capture(cautious, world.products, world.truth, start, 14, cfg)
    assert "capture_cautious" not in overall and "oracle_cautious_profit" not in overall


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
        pricing.oracle_config(cfg),
    )
    overall, _ = evaluate.profit_capture(partial, world.products, world.truth, start, 14, cfg)
    assert overall["n_held"] == 10
    assert overall["capture"] < 1.0
    assert overall["capture_priced"] == pytest.approx(1.0)


def test_price_tests_count_in_capture_but_not_in_capture_on_the_estimate(
    world: synth.World,
) -> None:
    cfg = PricingConfig()
    start = start_of(world)
    demand = evaluate.true_demand(world.truth, start, 14)
    oracle = pricing.recommend(world.products, demand, pricing.oracle_config(cfg))
    tested = oracle["product_id"].head(8).to_list()
    # Tests move those 8 products 10% the wrong way from the oracle's price.
    wrong = 2.0 * pl.col("current_price") - pl.col("recommended_price")
    recs = oracle.with_columns(
        recommended_price=pl.when(pl.col("product_id").is_in(tested))
        .then(wrong)
        .otherwise(pl.col("recommended_price")),
        binding_rule=pl.when(pl.col("product_id").is_in(tested))
        .then(pl.lit(RULE_PRICE_TEST))
        .otherwise(pl.col("binding_rule")),
    )
    overall, _ = evaluate.profit_capture(recs, world.products, world.truth, start, 14, cfg)
    assert overall["n_tested"] == 8 and overall["n_held"] == 0
    assert overall["capture"] < 1.0 and overall["tests_share"] < 0.0
    # The products priced on the estimate were priced as the oracle prices them.
    assert overall["capture_priced"] == pytest.approx(1.0)
    # What was made = the estimate's part (against the oracle that holds the tested products)
    # plus the tests' part (against tonight's whole available gain).
    current = overall["current_profit"]
    estimate_part = overall["capture_priced"] * (overall["oracle_priced_profit"] - current)
    tests_part = overall["tests_share"] * (overall["oracle_profit"] - current)
    assert overall["recommended_profit"] - current == pytest.approx(estimate_part + tests_part)


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
    assert "against a cautious oracle" in text  # the sales give each product's prices sold at
    assert report["model"]["overall"]["capture_cautious"] is not None
    for category in world.products["category"].unique():
        assert f"  {category}" in text


def _versions(rows: list[tuple]) -> pl.DataFrame:
    return pl.DataFrame(
        rows,
        schema=["product_id", "status", "elasticity", "elasticity_lo", "elasticity_hi"],
        orient="row",
    )


def test_elasticity_report_counts_own_estimates_of_varied_prices_only() -> None:
    truth = pl.DataFrame(
        {
            "product_id": ["a", "b", "c", "d", "e"],
            "elasticity": [-2.0, -1.0, -3.0, -1.5, -2.0],
            "price_varied": [True, True, True, True, False],
        }
    )
    versions = _versions(
        [
            ("a", "trained", -2.2, -2.5, -2.1),  # error -0.2, truth outside
            ("b", "gate_failed", -0.9, -1.2, -0.6),  # +0.1, inside: its own estimate counts
            ("c", "trained", -2.6, -3.1, -2.1),  # +0.4, inside
            ("d", "not_identified", -1.0, None, None),  # pooled: left out
            ("e", "trained", -1.0, -1.5, -0.5),  # price never varied: left out
        ]
    )
    report = evaluate.elasticity_report(versions, truth)
    assert report["n_products"] == 3
    assert report["median_bias"] == pytest.approx(0.1)
    assert report["median_abs_error"] == pytest.approx(0.2)
    assert report["mean_abs_error"] == pytest.approx(0.7 / 3)
    assert report["interval_coverage"] == pytest.approx(2 / 3)
    assert report["median_interval_width"] == pytest.approx(0.6)


def test_forecast_report_takes_medians_over_backtested_models() -> None:
    versions = pl.DataFrame(
        {
            "status": ["trained", "gate_failed", "trained", "trained"],
            "backtest_wape": [0.2, 0.6, 0.4, None],
            "baseline_wape": [0.4, 0.5, 0.8, 0.3],
        }
    )
    report = evaluate.forecast_report(versions)
    assert (report["n_models"], report["n_backtested"], report["n_gate_failed"]) == (4, 3, 1)
    assert report["median_wape"] == pytest.approx(0.4)
    assert report["median_naive_wape"] == pytest.approx(0.5)
    assert report["wape_ratio"] == pytest.approx(0.8)


def test_decision_report_counts_holds_prices_below_cost_and_capped_raises() -> None:
    recs = pl.DataFrame(
        {
            "product_id": ["a", "b", "c", "d", "e"],
            "action": ["hold", "hold", "raise", "raise", "keep"],
            "current_price": [2.0, 3.0, 4.0, 5.0, 1.0],
            "recommended_price": [2.0, 3.0, 4.4, 5.2, 1.0],
            "elasticity": [-2.0, -2.0, -0.5, -2.5, -1.5],
            "reason": [
                "hold 2.00: cold start: 30 days of history (minimum 90)",
                "hold 3.00: price never varied: elasticity not identifiable",
                "raise 4.00 -> 4.40 (+10.0%): expected profit +1.00; capped by max_change_up",
                "raise 5.00 -> 5.20 (+4.0%): expected profit +1.00; best price inside the range",
                "keep 1.00: below unit cost 1.20, held there by a rules-file hold",
            ],
        }
    )
    products = pl.DataFrame(
        {"product_id": ["a", "b", "c", "d", "e"], "unit_cost": [2.5, 1.0, 1.0, 1.0, 1.2]}
    )
    report = evaluate.decision_report(recs, products)
    assert report["holds"] == {"cold start": 1, "price never varied": 1}
    assert report["n_held"] == 2 and report["n_raised"] == 2 and report["n_lowered"] == 0
    assert (report["below_cost"], report["below_cost_explained"]) == (2, 1)
    assert report["current_below_cost"] == 2
    assert (report["capped_raises"], report["capped_raises_inelastic"]) == (1, 1)


def test_endogenous_report_follows_the_products_whose_price_follows_demand() -> None:
    truth = pl.DataFrame(
        {
            "product_id": ["a", "b", "c"],
            "elasticity": [-2.0, -1.5, -2.0],
            "price_varied": [True, True, True],
            "endogenous": [True, True, False],
        }
    )
    versions = _versions(
        [
            ("a", "trained", -0.05, -0.4, 0.0),
            ("b", "confounded", -0.3, -0.9, 0.0),
            ("c", "trained", -2.0, -2.3, -1.7),
        ]
    )
    recs = pl.DataFrame(
        {
            "product_id": ["a", "b", "c"],
            "current_price": [10.0, 10.0, 10.0],
            "recommended_price": [11.0, 10.0, 9.5],
            "reason": ["raise ...; capped by max_change_up", "hold 10.00: confounded", "lower"],
        }
    )
    report = evaluate.endogenous_report(versions, recs, truth)
    assert report is not None
    assert (report["n_products"], report["n_flagged"]) == (2, 1)
    assert (report["n_raised"], report["capped_raises"]) == (1, 1)
    assert report["median_change"] == pytest.approx(0.05)
    assert report["elasticity"]["median_bias"] == pytest.approx((1.95 + 1.2) / 2)
    assert evaluate.endogenous_report(versions, None, truth)["n_raised"] is None
    assert evaluate.endogenous_report(versions, recs, truth.drop("endogenous")) is None


def test_the_night_report_measures_a_priced_world_and_prints_it(world: synth.World) -> None:
    cfg = PricingConfig()
    start = start_of(world)
    table = evaluate.loglog_table(world.sales, world.products, 14, 90)
    versions = table.filter(pl.col("status") != "cold_start").with_columns(
        backtest_wape=pl.lit(0.3), baseline_wape=pl.lit(0.4)
    )
    recs = pricing.recommend(world.products, table, cfg)
    report = evaluate.night_report(
        versions, recs, world.products, world.sales, world.truth, start, 14, 90, cfg
    )
    assert report["elasticity"] == report["policies"]["loglog"]["elasticity"]
    assert report["policies"]["model"]["overall"] == report["policies"]["loglog"]["overall"]
    assert report["forecast"]["median_wape"] == pytest.approx(0.3)
    assert report["decisions"]["n_products"] == world.products.height
    assert report["endogenous"] is None
    text = evaluate.night_text(report)
    assert "median bias" in text and "prices below unit cost" in text
    assert "profit capture (oracle prices every product)" in text
