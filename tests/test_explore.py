"""Price tests (pipeline/pricing/explore.py): alternation, stopping, budget, guardrails."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import polars as pl

from pipeline.config import PricingConfig
from pipeline.pricing import explore

AS_OF = dt.date(2026, 11, 1)


def _frames(n: int = 3, status: str = "not_identified") -> tuple[pl.DataFrame, pl.DataFrame]:
    ids = [f"P{i}" for i in range(n)]
    products = pl.DataFrame(
        {
            "product_id": ids,
            "current_price": [49.99] * n,
            "unit_cost": [20.0] * n,
            "category": ["snacks"] * n,
            "is_kvi": [False] * n,
        }
    )
    demand = pl.DataFrame(
        {
            "product_id": ids,
            "base_units": [100.0 + i for i in range(n)],
            "ref_price": [49.99] * n,
            "elasticity": [-2.0] * n,
            "elasticity_lo": [None] * n,
            "elasticity_hi": [None] * n,
            "hold_reason": ["price never varied: elasticity not identifiable"] * n,
            "status": [status] * n,
            "n_train_days": [300] * n,
            "price_seen_lo": [44.99] * n,
            "price_seen_hi": [54.99] * n,
        },
        schema_overrides={"elasticity_lo": pl.Float64, "elasticity_hi": pl.Float64},
    )
    return products, demand


def _state(started: dt.date, status: str = explore.TESTING) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "product_id": ["P0"],
            "test_status": [status],
            "test_started": [started],
            "test_base_price": [49.99],
            "test_direction": [1],
        }
    )


def test_off_holds_and_records_no_test() -> None:
    products, demand = _frames()
    recs = explore.recommend(products, demand, PricingConfig(explore="off"), None, AS_OF)
    assert recs["action"].to_list() == ["hold"] * 3
    assert recs["test_status"].null_count() == 3


def test_first_phase_steps_inside_the_allowed_range() -> None:
    products, demand = _frames(1)
    recs = explore.recommend(products, demand, PricingConfig(), None, AS_OF)
    row = recs.row(0, named=True)
    assert row["test_status"] == "testing" and row["test_phase"] == 1
    assert row["test_rule"] == "alternate" and row["test_probability"] == 1.0
    # The estimate's optimum (cost 20, elasticity -2: 40) is below: -5% aims at 47.49.
    assert (row["test_direction"], row["recommended_price"]) == (-1, 47.99)
    assert row["allowed_min"] <= row["recommended_price"] <= row["allowed_max"]
    assert row["reason"].startswith("price test 1 of 4: learning the elasticity")


def test_second_phase_returns_to_the_base_price() -> None:
    products, demand = _frames(1)
    products = products.with_columns(current_price=pl.lit(52.99))
    recs = explore.recommend(products, demand, PricingConfig(), _state(AS_OF - dt.timedelta(7)),
                             AS_OF)  # fmt: skip
    row = recs.row(0, named=True)
    assert (row["test_phase"], row["test_arm"]) == (2, "base")
    assert row["recommended_price"] == 49.99


def test_stops_when_identified_and_after_four_weeks() -> None:
    products, demand = _frames(1, status="trained")
    demand = demand.with_columns(
        elasticity_lo=pl.lit(-2.3), elasticity_hi=pl.lit(-1.7), hold_reason=pl.lit(None, pl.String)
    )
    recs = explore.recommend(products, demand, PricingConfig(), _state(AS_OF - dt.timedelta(14)),
                             AS_OF)  # fmt: skip
    assert recs["test_status"].to_list() == ["identified"]
    assert recs["action"].to_list() != ["hold"]
    _, unidentified = _frames(1)
    recs = explore.recommend(products, unidentified, PricingConfig(),
                             _state(AS_OF - dt.timedelta(28)), AS_OF)  # fmt: skip
    assert recs["test_status"].to_list() == ["stopped"]
    assert recs["action"].to_list() == ["hold"]  # hold_statuses keeps its meaning after a test


def test_budget_caps_products_and_risk() -> None:
    products, demand = _frames(5)
    recs = explore.recommend(products, demand, PricingConfig(explore_max_products=2), None, AS_OF)
    assert recs["test_status"].drop_nulls().to_list() == ["testing", "testing"]
    assert set(recs.filter(pl.col("test_status").is_not_null())["product_id"]) == {"P4", "P3"}
    # At its estimate's optimum (cost 20, e = -49.99 / 29.99) any step gives up profit.
    at_best = demand.with_columns(elasticity=pl.lit(-49.99 / 29.99))
    none = explore.recommend(products, at_best, PricingConfig(explore_max_risk=0.0), None, AS_OF)
    assert none["test_status"].null_count() == 5
    some = explore.recommend(products, at_best, PricingConfig(explore_max_risk=0.05), None, AS_OF)
    assert 0 < some["test_status"].drop_nulls().len() <= 5


def test_kvi_without_step_never_tests() -> None:
    products, demand = _frames(1)
    products = products.with_columns(is_kvi=pl.lit(True))
    cfg = replace(PricingConfig(), explore_kvi_step=0.0)
    recs = explore.recommend(products, demand, cfg, None, AS_OF)
    assert recs["test_status"].null_count() == 1


def test_thompson_records_rule_and_probability() -> None:
    products, demand = _frames(1)
    cfg = PricingConfig(explore="thompson", explore_seed=3)
    first = explore.recommend(products, demand, cfg, None, AS_OF)
    again = explore.recommend(products, demand, cfg, None, AS_OF)
    assert first.equals(again)
    row = first.row(0, named=True)
    assert row["test_rule"] == "thompson" and 0.0 < row["test_probability"] <= 1.0
    assert row["allowed_min"] <= row["recommended_price"] <= row["allowed_max"]
