"""recommend() on the evidence it has: the trust region, inelastic and confounded estimates, the
margin floor under every hold, and nights replayed on their own recommendations (DESIGN section 5).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from typing import Any

import numpy as np
import polars as pl
import pytest

from pipeline import forecast
from pipeline.config import ModelConfig, PricingConfig
from pipeline.evaluate.baseline import loglog_table
from pipeline.features import Panel, price_seen_range
from pipeline.pricing import recommend
from pipeline.rules import Rules, RuleSet

PRODUCTS = {
    "product_id": pl.String,
    "current_price": pl.Float64,
    "unit_cost": pl.Float64,
    "min_price": pl.Float64,
    "max_price": pl.Float64,
}
DEMAND = {
    "product_id": pl.String,
    "status": pl.String,
    "hold_reason": pl.String,
    "base_units": pl.Float64,
    "ref_price": pl.Float64,
    "elasticity": pl.Float64,
    "elasticity_lo": pl.Float64,
    "elasticity_hi": pl.Float64,
    "price_seen_lo": pl.Float64,
    "price_seen_hi": pl.Float64,
}
# Any cent, changes up to 50%, no margin floor: only the rule under test binds.
FREE = PricingConfig(
    max_change_up=0.5, max_change_down=0.5, margin_floor=0.0, price_endings=(), n_candidates=1000
)


def item(pid: str = "a", **overrides: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """A product at 3.49 that sold at 3.49-3.99, cost 2.50, elasticity -2 (optimum 5.00)."""
    product = {
        "product_id": pid,
        "current_price": 3.49,
        "unit_cost": 2.5,
        "min_price": 1.0,
        "max_price": 10.0,
    }
    demand = {
        "product_id": pid,
        "status": "trained",
        "hold_reason": None,
        "base_units": 100.0,
        "ref_price": 3.49,
        "elasticity": -2.0,
        "elasticity_lo": None,
        "elasticity_hi": None,
        "price_seen_lo": 3.49,
        "price_seen_hi": 3.99,
    }
    for key, value in overrides.items():
        (product if key in PRODUCTS else demand)[key] = value
    return product, demand


def run(cfg: PricingConfig, *items: tuple[dict, dict]) -> dict[str, dict[str, Any]]:
    out = recommend(
        pl.DataFrame([p for p, _ in items], schema=PRODUCTS),
        pl.DataFrame([d for _, d in items], schema=DEMAND),
        cfg,
    )
    return {row["product_id"]: row for row in out.iter_rows(named=True)}


def one(cfg: PricingConfig, **overrides: Any) -> dict[str, Any]:
    return run(cfg, item(**overrides))["a"]


# --- the trust region ----------------------------------------------------------------------------


def test_the_price_rises_to_the_edge_of_the_prices_it_has_sold_at_and_no_further() -> None:
    row = one(replace(FREE, trust_widening=0.0))
    assert row["recommended_price"] == 3.99
    assert row["allowed_max"] == pytest.approx(3.99)
    assert row["binding_rule"] == "trust_region"
    assert row["reason"].startswith("raise 3.49 -> 3.99 (+14.3%): expected profit +")
    assert row["reason"].endswith(
        "; held within the prices it has sold at (3.49-3.99): the demand curve is not known "
        "beyond them (elasticity -2.00)"
    )
    widened = one(replace(FREE, trust_widening=0.1))
    assert widened["allowed_max"] == pytest.approx(3.99 * 1.1)
    assert widened["recommended_price"] == 4.38
    assert "held within 10% of the prices it has sold at (3.49-3.99)" in widened["reason"]


def test_the_trust_region_bounds_a_cut_too() -> None:
    # Cost 1 and elasticity -3 want 1.50; the region reaches down to 3.29 * 0.9 = 2.961.
    row = one(FREE, unit_cost=1.0, elasticity=-3.0, price_seen_lo=3.29)
    assert row["allowed_min"] == pytest.approx(2.961)
    assert row["recommended_price"] == 2.97
    assert row["binding_rule"] == "trust_region"
    assert "held within 10% of the prices it has sold at (3.29-3.99)" in row["reason"]


def test_a_price_already_outside_the_region_stays_and_is_not_pushed_back() -> None:
    row = one(FREE, current_price=4.99)
    assert row["allowed_max"] == pytest.approx(4.99)
    assert row["action"] == "keep"
    assert row["binding_rule"] == "trust_region"
    assert row["reason"].startswith("keep 4.99: already the best allowed price; held within 10%")


def test_without_the_prices_seen_there_is_no_trust_region() -> None:
    row = one(FREE, price_seen_lo=None, price_seen_hi=None)
    assert row["recommended_price"] == 5.0
    assert row["binding_rule"] == "none"


def test_a_margin_floor_above_the_region_still_lifts_the_price_to_it() -> None:
    # Cost 4 at a 5% floor needs 4.20, above the 3.59 edge: the floor sets the price, no more.
    row = one(
        replace(FREE, margin_floor=0.05, trust_widening=0.0), unit_cost=4.0, price_seen_hi=3.59
    )
    assert row["recommended_price"] == 4.2
    assert row["binding_rule"] == "margin_floor"
    assert row["reason"].endswith("floored by margin_floor (elasticity -2.00)")
    # With .49/.99 endings the floor needs 4.49, the first allowed price above it.
    ends = replace(FREE, margin_floor=0.05, trust_widening=0.0, price_endings=(0.49, 0.99))
    row = one(ends, unit_cost=4.0, price_seen_hi=3.59)
    assert (row["recommended_price"], row["binding_rule"]) == (4.49, "margin_floor")
    assert row["reason"].endswith("; floored by margin_floor (elasticity -2.00)")


# --- inelastic and confounded estimates ----------------------------------------------------------


def test_an_inelastic_estimate_moves_only_within_the_prices_sold_at_and_says_why() -> None:
    # As on hotel data, where prices follow demand: -0.05 with an interval up to 0. Profit would
    # rise without bound; inside the prices sold at (3.49-3.99) the estimate is evidence.
    cfg = replace(PricingConfig(), price_endings=())
    row = one(cfg, elasticity=-0.05, elasticity_lo=-0.4, elasticity_hi=0.0, current_price=3.59)
    assert (row["action"], row["recommended_price"]) == ("increase", 3.94)  # 10% a night
    row = one(cfg, elasticity=-0.05, elasticity_lo=-0.4, elasticity_hi=0.0, current_price=3.89)
    assert (row["action"], row["recommended_price"]) == ("increase", 3.99)  # the top sold at
    assert row["binding_rule"] == "trust_region"
    assert row["reason"] == (
        "raise 3.89 -> 3.99 (+2.6%): expected profit +9.79 over the horizon; held within the "
        "prices it has sold at (3.49-3.99): demand looks inelastic, so profit would rise without "
        "bound with price and the price is not raised beyond them on this evidence; a price test "
        "would identify it (elasticity -0.05, interval -0.40 to 0.00)"
    )
    # Without any price sold at (no uncensored day) nothing bounds it: it holds.
    row = one(PricingConfig(), elasticity=-0.05, price_seen_lo=None, price_seen_hi=None)
    assert (row["action"], row["binding_rule"]) == ("hold", "inelastic")
    assert "demand looks inelastic (-0.05" in row["reason"]
    assert row["reason"].endswith("a price test would identify it")
    # The point estimate decides: an interval reaching above -1 does not limit it on its own.
    assert one(FREE, elasticity=-1.5, elasticity_lo=-2.5, elasticity_hi=-0.5)["action"] == (
        "increase"
    )
    # Unit elasticity still has no interior profit optimum; -1.01 has one (at 101 x cost).
    assert one(FREE, elasticity=-1.0)["allowed_max"] == pytest.approx(3.99)
    assert one(FREE, elasticity=-1.01)["allowed_max"] == pytest.approx(3.99 * 1.1)


def test_released_inelastic_estimates_stop_at_the_trust_region_edge() -> None:
    row = one(replace(FREE, hold_inelastic=False, trust_widening=0.0), elasticity=-0.05)
    assert row["recommended_price"] == 3.99
    assert row["binding_rule"] == "trust_region"


def test_a_confounded_price_is_held_by_default_with_a_reason_that_names_it() -> None:
    rows = run(
        FREE,
        item("own", status="confounded"),
        item("given", status="confounded", hold_reason="price follows bookings (r = 0.8)"),
    )
    assert rows["own"]["action"] == "hold"
    assert rows["own"]["reason"] == (
        "hold 3.49: price moves with demand (confounded): the elasticity cannot be trusted; a "
        "price test (prices set independently of demand) would identify it (hold_statuses)"
    )
    assert rows["given"]["reason"] == "hold 3.49: price follows bookings (r = 0.8) (hold_statuses)"
    released = run(
        replace(FREE, hold_statuses=()),
        item("given", status="confounded", hold_reason="price follows bookings"),
    )["given"]
    assert released["action"] == "increase"
    assert released["reason"].endswith(
        "; priced although price follows bookings (not in hold_statuses)"
    )


# --- the margin floor is a floor -----------------------------------------------------------------

FLOORED = replace(FREE, margin_floor=0.05, trust_widening=10.0)


def test_a_price_below_its_floor_rises_to_it_even_when_the_demand_model_wants_lower() -> None:
    # Elasticity -30 at cost 4 wants 4.14, under the floor 4.20.
    row = one(FLOORED, current_price=3.99, unit_cost=4.0, elasticity=-30.0)
    assert row["recommended_price"] == 4.2
    assert row["binding_rule"] == "margin_floor"
    assert "floored by margin_floor" in row["reason"]
    # Under the revenue objective the floor used to keep today's price as a candidate.
    revenue = one(replace(FLOORED, objective="revenue"), current_price=3.99, unit_cost=4.0)
    assert revenue["recommended_price"] == 4.2


def test_a_move_forced_by_the_floor_ignores_min_change() -> None:
    row = one(
        replace(FLOORED, min_change=0.05), current_price=4.19, unit_cost=4.0, elasticity=-30.0
    )
    assert row["recommended_price"] == 4.2
    assert row["action"] == "increase"


def test_max_price_under_cost_stops_the_rise_and_the_reason_names_the_conflict() -> None:
    row = one(PricingConfig(), current_price=3.79, unit_cost=4.2, max_price=3.99)
    assert row["recommended_price"] == 3.99
    assert row["binding_rule"] == "max_price"
    assert row["reason"].endswith(
        "; below unit cost 4.20 (margin floor 4.41): max_price 3.99 is under it (elasticity -2.00)"
    )


def test_no_ending_on_the_way_up_keeps_the_price_and_says_why() -> None:
    row = one(PricingConfig(), current_price=3.0, unit_cost=4.0)  # .99 only, at most 3.30
    assert row["action"] == "keep"
    assert row["binding_rule"] == "price_ending"
    assert row["reason"] == (
        "keep 3.00: below unit cost 4.00 (margin floor 4.20): no price ending in .99 fits between "
        "3.00 and 3.30 (elasticity -2.00)"
    )


def test_no_ending_at_the_floor_moves_to_the_nearest_one_short_of_it() -> None:
    cfg = PricingConfig(max_change_up=0.12, price_endings=(0.49, 0.99))  # floor 3.78, up to 3.864
    row = one(cfg, current_price=3.45, unit_cost=3.6)
    assert (row["recommended_price"], row["binding_rule"]) == (3.49, "price_ending")
    assert row["allowed_min"] == pytest.approx(3.49)
    assert row["reason"].endswith(
        "; below unit cost 3.60 (margin floor 3.78): no price ending in .49/.99 fits between "
        "3.78 and 3.86 (elasticity -2.00)"
    )


def test_a_price_above_max_price_falls_toward_it() -> None:
    row = one(PricingConfig(price_endings=()), current_price=12.0, max_price=10.5, unit_cost=5.0)
    assert row["recommended_price"] == 10.8
    assert row["binding_rule"] == "max_change_down"
    assert row["reason"].endswith(
        "; above max_price 10.50: max_change_down allows at least 10.80 tonight (elasticity -2.00)"
    )


def test_a_hold_for_the_evidence_still_moves_toward_the_floor() -> None:
    rows = run(
        PricingConfig(),
        item("new", status="cold_start", hold_reason="cold start: 30 days of history",
             current_price=3.79, unit_cost=4.2, max_price=3.99),
        # Inelastic, and no price sold at to move within: held for the evidence.
        item("flat", elasticity=-0.5, current_price=3.49, unit_cost=3.6, min_price=1.0,
             price_seen_lo=None, price_seen_hi=None),
    )  # fmt: skip
    assert rows["new"]["action"] == "increase"
    assert rows["new"]["recommended_price"] == 3.99
    assert rows["new"]["binding_rule"] == "max_price"
    assert rows["new"]["reason"] == (
        "raise 3.79 -> 3.99 (+5.3%) toward its margin floor; below unit cost 4.20 (margin floor "
        "4.41): max_price 3.99 is under it; otherwise held: cold start: 30 days of history"
    )
    flat = rows["flat"]  # floor 3.78, but 10% a night reaches 3.84 and no .99 price lies below
    assert flat["action"] == "hold"
    assert flat["reason"].endswith(
        "a price test would identify it; below unit cost 3.60 (margin floor 3.78): no price "
        "ending in .99 fits between 3.49 and 3.84"
    )
    cent = run(
        replace(PricingConfig(), price_endings=()),
        item("flat", elasticity=-0.5, current_price=3.49, unit_cost=3.6, price_seen_lo=None,
             price_seen_hi=None),
    )["flat"]  # fmt: skip
    assert cent["recommended_price"] == 3.78
    assert cent["binding_rule"] == "margin_floor"
    assert cent["reason"].startswith(
        "raise 3.49 -> 3.78 (+8.3%): below its margin floor 3.78 (unit cost 3.60) today; "
        "otherwise held: demand looks inelastic (-0.50)"
    )


def test_a_data_issue_or_a_rules_hold_keeps_the_price_and_says_it_is_below_cost() -> None:
    rules = RuleSet(products=(("contract", Rules(hold="supplier contract")),))
    rows = run(
        replace(PricingConfig(), rules=rules),
        item("bad", hold_reason="data issue: price_positive (1 row)", unit_cost=4.0),
        item("contract", unit_cost=4.0),
    )
    assert rows["bad"]["action"] == rows["contract"]["action"] == "hold"
    assert rows["bad"]["reason"] == (
        "hold 3.49: data issue: price_positive (1 row); below unit cost 4.00 (margin floor 4.20): "
        "kept by this hold"
    )
    assert rows["contract"]["reason"] == (
        "hold 3.49: held by the rules of product contract: supplier contract; below unit cost "
        "4.00 (margin floor 4.20): kept by this hold"
    )


def test_moves_the_floor_forces_do_not_use_the_change_budget() -> None:
    rows = run(
        replace(FLOORED, max_changes=0),
        item("below", current_price=3.99, unit_cost=4.0, elasticity=-30.0),
        item("free"),
    )
    assert rows["below"]["recommended_price"] == 4.2
    assert rows["free"]["action"] == "keep"
    assert rows["free"]["binding_rule"] == "max_changes"


# --- nights replayed on their own recommendations ------------------------------------------------


def replay(cfg: PricingConfig, nights: int, **overrides: Any) -> list[float]:
    """The price after each night, each night starting from the last night's recommendation."""
    price, prices = 3.49, []
    for _ in range(nights):
        row = one(cfg, current_price=price, max_price=6.0, **overrides)
        price = row["recommended_price"]
        prices.append(price)
    return prices


INELASTIC = {"elasticity": -0.05, "elasticity_lo": -0.4, "elasticity_hi": 0.0}


def test_replayed_nights_on_an_inelastic_estimate_do_not_walk_the_price_to_its_cap() -> None:
    cfg = PricingConfig(price_endings=())  # 10% a night, any cent
    # Without the evidence rules, each night takes the full 10% until max_price stops it.
    ratchet = replay(replace(cfg, hold_inelastic=False, trust_widening=10.0), 10, **INELASTIC)
    assert ratchet[:3] == [3.83, 4.21, 4.63] and ratchet[-1] == 6.0
    # Within the prices sold at (3.49-3.99), never beyond them.
    assert replay(cfg, 10, **INELASTIC) == [3.83] + [3.99] * 9
    released = replay(replace(cfg, hold_inelastic=False), 10, **INELASTIC)
    assert released == [3.83, 4.21] + [4.38] * 8  # the region's edge: 3.99 * 1.1 = 4.389


def test_replayed_nights_learn_the_region_only_from_sales_at_the_new_price() -> None:
    # 200 days at 3.49-3.99; each night's price then sells for a day. A new price counts as seen
    # once it sold on a week of days, so the edge widens the region only after a week there.
    days = [3.49] * 150 + [3.99] * 50
    cfg = PricingConfig(price_endings=(), hold_inelastic=False)
    price, prices, his = 3.49, [], []
    for _ in range(10):
        sales = pl.DataFrame({"product_id": ["a"] * len(days), "price": days})
        seen = price_seen_range(sales).drop("product_id").row(0, named=True)
        row = one(cfg, current_price=price, max_price=6.0, **INELASTIC, **seen)
        price = row["recommended_price"]
        prices.append(price)
        his.append(seen["price_seen_hi"])
        days.append(price)
    # Night 9 has a week of days at 4.21 or more (4.21 once, 4.38 six times), night 10 at 4.38.
    assert his == [3.99] * 8 + [4.21, 4.38]
    assert prices == [3.83, 4.21] + [4.38] * 6 + [4.63, 4.81]


# --- where the prices seen come from -------------------------------------------------------------


def test_prices_seen_leave_out_stockouts_promotions_and_rare_prices() -> None:
    sales = pl.DataFrame(
        {
            "product_id": ["a"] * 100 + ["b"] * 14 + ["c"] * 3,
            "price": [3.49] * 90
            + [3.99] * 8
            + [9.99] * 2
            + [1.0] * 7
            + [3.0] * 7
            + [1.0, 2.0, 3.0],
            "stockout": [False] * 89 + [True] + [False] * 27,
            "promo": [False] * 100 + [True] * 14 + [False] * 3,
        }
    )
    seen = price_seen_range(sales)
    # a: 2 days of 9.99 are under a week; b sold only on promotion: all its prices count;
    # c has under two weeks of days: the middle of its prices.
    assert seen.rows() == [("a", 3.49, 3.99), ("b", 1.0, 3.0), ("c", 2.0, 2.0)]


def test_a_new_price_counts_as_seen_after_a_week_whatever_the_history_length() -> None:
    for history in (30, 700):
        days = [5.0] * history
        for week in (6, 7):
            sales = pl.DataFrame({"product_id": "a", "price": days + [5.5] * week})
            hi = price_seen_range(sales)["price_seen_hi"].item()
            assert hi == (5.5 if week == 7 else 5.0), (history, week)
    with pytest.raises(ValueError, match="min_days"):
        price_seen_range(sales, min_days=0)


def test_the_product_table_and_the_log_log_baseline_carry_the_same_prices_seen() -> None:
    n_days, start = 60, dt.date(2025, 1, 1)
    price = np.where(np.arange(n_days) < 40, 3.49, 3.99)[None, :].repeat(2, axis=0)
    promo = np.zeros((2, n_days), dtype=bool)
    promo[0, :5] = True
    price[0, :5] = 2.49  # promotions: not a price the product has sold at as a regular one
    units = np.full((2, n_days), 10.0)
    observed = np.ones((2, n_days), dtype=bool)
    observed[1, :50] = False  # a cold start with 10 days at 3.99
    panel = Panel(
        product_ids=("A", "B"), start=start, units=units, observed=observed,
        stockout=np.zeros_like(observed), price=price, promo=promo,
        ref_price=np.array([3.49, 3.99]), level=np.array([10.0, 10.0]),
        n_observed=observed.sum(axis=1), price_varied=np.array([True, False]),
    )  # fmt: skip
    outputs = forecast.ModelOutputs(
        product_ids=("A",), base_daily=np.full((1, 7), 10.0), elasticity=np.array([-2.0]),
        elasticity_lo=np.array([-2.5]), elasticity_hi=np.array([-1.5]),
        dispersion=np.array([0.1]), model_abs_error=np.array([1.0]),
        naive_abs_error=np.array([2.0]), actual_units=np.array([70.0]),
        n_points=np.array([7.0]), naive_scale=np.array([1.0]),
    )  # fmt: skip
    table = forecast.product_table(outputs, panel, {}, ModelConfig(horizon=7, min_history_days=30))
    assert table.select("product_id", "price_seen_lo", "price_seen_hi").rows() == [
        ("A", 3.49, 3.99),
        ("B", 3.99, 3.99),
    ]
    days = [start + dt.timedelta(days=t) for t in range(n_days)]
    sales = pl.DataFrame(
        {
            "product_id": [
                pid for i, pid in enumerate("AB") for t in range(n_days) if observed[i, t]
            ],
            "ds": [d for i in range(2) for t, d in enumerate(days) if observed[i, t]],
            "units": units[observed],
            "price": price[observed],
            "promo": promo[observed],
            "stockout": np.zeros(int(observed.sum()), dtype=bool),
        }
    )
    products = pl.DataFrame({"product_id": ["A", "B"], "category": ["c", "c"],
                             "current_price": [3.99, 3.99]})  # fmt: skip
    baseline = loglog_table(sales, products, horizon=7, min_history_days=30)
    assert baseline.select("product_id", "price_seen_lo", "price_seen_hi").sort(
        "product_id"
    ).rows() == [("A", 3.49, 3.99), ("B", 3.99, 3.99)]
