"""Tests for pipeline/pricing/ end to end (`recommend`): rules, holds, the choice, explanations.

The steps on their own are tested in test_pricing_ladder.py, test_pricing_scoring.py and, for the
coupled choice, test_pricing_portfolio.py; coupling rules and the hold policy in
test_pricing_rules.py.
"""

from __future__ import annotations

import math
from dataclasses import replace
from types import SimpleNamespace
from typing import Any

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.config import ConfigError, PricingConfig
from pipeline.contract import RECOMMENDATION_COLUMNS
from pipeline.pricing import allowed_range, candidate_ladders, recommend, score_candidates
from pipeline.pricing.limits import resolve
from pipeline.pricing.portfolio import milp as milp_method

RULE_NAMES = {
    "trust_region",
    "inelastic",
    "min_price",
    "max_price",
    "max_change_up",
    "max_change_down",
    "margin_floor",
    "price_ending",
    "family_order",
    "max_changes",
    "revenue_floor",
    "none",
}

# Rules wide enough that only the demand model decides (changes up to 50% each way).
WIDE = PricingConfig(max_change_up=0.5, max_change_down=0.5, margin_floor=0.0)
# Inelastic estimates priced like any other (held by default): to test the caps on them.
PRICE_INELASTIC = PricingConfig(hold_inelastic=False)


def product(
    product_id: str = "p1",
    current_price: float = 9.49,
    unit_cost: float = 5.0,
    min_price: float = 0.5,
    max_price: float = 1000.0,
    is_kvi: bool | None = False,
) -> dict[str, Any]:
    """One products row."""
    return {
        "product_id": product_id,
        "current_price": current_price,
        "unit_cost": unit_cost,
        "min_price": min_price,
        "max_price": max_price,
        "is_kvi": is_kvi,
    }


def forecast(
    product_id: str = "p1",
    elasticity: float = -2.0,
    base_units: float = 100.0,
    ref_price: float = 10.0,
    hold_reason: str | None = None,
    interval: tuple[float, float] | None = None,
    seen: tuple[float, float] | None = None,
) -> dict[str, Any]:
    """One demand row (`seen`: the prices it has sold at, the trust region; None: unknown)."""
    lo, hi = interval if interval is not None else (None, None)
    seen_lo, seen_hi = seen if seen is not None else (None, None)
    return {
        "product_id": product_id,
        "base_units": base_units,
        "ref_price": ref_price,
        "elasticity": elasticity,
        "elasticity_lo": lo,
        "elasticity_hi": hi,
        "hold_reason": hold_reason,
        "price_seen_lo": seen_lo,
        "price_seen_hi": seen_hi,
    }


PRODUCT_SCHEMA = {
    "product_id": pl.String,
    "current_price": pl.Float64,
    "unit_cost": pl.Float64,
    "min_price": pl.Float64,
    "max_price": pl.Float64,
    "is_kvi": pl.Boolean,
}
DEMAND_SCHEMA = {
    "product_id": pl.String,
    "base_units": pl.Float64,
    "ref_price": pl.Float64,
    "elasticity": pl.Float64,
    "elasticity_lo": pl.Float64,
    "elasticity_hi": pl.Float64,
    "hold_reason": pl.String,
    "price_seen_lo": pl.Float64,
    "price_seen_hi": pl.Float64,
}


def run(
    products: list[dict[str, Any]], demand: list[dict[str, Any]], cfg: PricingConfig
) -> dict[str, dict[str, Any]]:
    """recommend() on row dicts; the result keyed by product_id."""
    out = recommend(
        pl.DataFrame(products, schema=PRODUCT_SCHEMA),
        pl.DataFrame(demand, schema=DEMAND_SCHEMA),
        cfg,
    )
    return {row["product_id"]: row for row in out.iter_rows(named=True)}


# --- the known cases -----------------------------------------------------------------------------


def test_known_optimum_elasticity_minus_two_gives_9_99() -> None:
    # Profit optimum of constant elasticity -2 at unit cost 5: 5 * -2 / (1 - 2) = 10.00.
    row = run([product()], [forecast(interval=(-2.4, -1.6))], WIDE)["p1"]
    assert row["recommended_price"] == 9.99
    assert row["action"] == "increase"
    assert row["binding_rule"] == "none"
    # Expected units average over the elasticity's uncertainty: sd = 0.4 / z(0.95), and
    # E[x ** e] = x ** e_hat * exp((sd * log x) ** 2 / 2) for a price ratio x.
    sd = 0.4 / 1.6448536269514722

    def mean_units(ratio: float) -> float:
        return 100 * ratio**-2 * math.exp((sd * math.log(ratio)) ** 2 / 2)

    assert row["expected_units"] == pytest.approx(mean_units(0.999))
    assert row["expected_profit"] == pytest.approx(500.00, abs=0.005)
    assert row["current_expected_profit"] == pytest.approx(mean_units(0.949) * 4.49, abs=0.005)
    assert row["profit_uplift"] == pytest.approx(
        row["expected_profit"] - row["current_expected_profit"], abs=1e-9
    )
    assert row["reason"] == (
        "raise 9.49 -> 9.99 (+5.3%): expected profit +1.40 over the horizon; best price inside "
        "the allowed range (elasticity -2.00, interval -2.40 to -1.60)"
    )


def test_known_optimum_with_any_cent_ending_is_exactly_10() -> None:
    # Every cent of the range is a candidate (949 of them), so the optimum itself is one.
    cfg = replace(WIDE, price_endings=(), n_candidates=1000)
    row = run([product()], [forecast()], cfg)["p1"]
    assert row["recommended_price"] == 10.00
    assert row["binding_rule"] == "none"


def test_inelastic_product_released_goes_to_allowed_max_capped_by_max_change_up() -> None:
    cfg = PRICE_INELASTIC  # 10% per run
    row = run([product(current_price=20.0)], [forecast(elasticity=-0.5, ref_price=20.0)], cfg)["p1"]
    assert row["allowed_max"] == pytest.approx(22.0)
    assert row["recommended_price"] == 21.99
    assert row["binding_rule"] == "max_change_up"
    assert row["reason"].startswith("raise 20.00 -> 21.99 (+9.9%)")
    assert "capped by max_change_up (elasticity -0.50)" in row["reason"]


def test_margin_floor_binds_below_the_floor_optimum() -> None:
    # Elasticity -3 at cost 10 wants 15.00, but a 60% margin floor needs at least 16.00.
    cfg = PricingConfig(max_change_down=0.2, margin_floor=0.6)
    row = run([product(current_price=17.99, unit_cost=10.0)], [forecast(elasticity=-3.0)], cfg)[
        "p1"
    ]
    assert row["allowed_min"] == pytest.approx(16.0)
    assert row["recommended_price"] == 16.99
    assert row["action"] == "decrease"
    assert row["binding_rule"] == "margin_floor"
    assert "floored by margin_floor" in row["reason"]


def test_kvi_products_get_the_tighter_change_limit_both_ways() -> None:
    cfg = replace(PRICE_INELASTIC, margin_floor=0.0)  # 10% per run, 5% for key-value items
    products = [
        product("up", current_price=20.0, is_kvi=False),
        product("up_kvi", current_price=20.0, is_kvi=True),
        product("down", current_price=20.5, unit_cost=10.0, is_kvi=False),
        product("down_kvi", current_price=20.5, unit_cost=10.0, is_kvi=True),
        product("up_null", current_price=20.0, is_kvi=None),
    ]
    demand = [
        forecast("up", elasticity=-0.5),
        forecast("up_kvi", elasticity=-0.5),
        forecast("down", elasticity=-3.0),
        forecast("down_kvi", elasticity=-3.0),
        forecast("up_null", elasticity=-0.5),
    ]
    rows = run(products, demand, cfg)
    assert rows["up"]["recommended_price"] == 21.99
    assert rows["up_kvi"]["recommended_price"] == 20.99
    assert rows["up_kvi"]["allowed_max"] == pytest.approx(21.0)
    assert rows["up_kvi"]["binding_rule"] == "max_change_up"
    assert rows["down"]["recommended_price"] == 18.99
    assert rows["down_kvi"]["recommended_price"] == 19.99
    assert rows["down_kvi"]["allowed_min"] == pytest.approx(20.5 * 0.95)
    assert rows["down_kvi"]["binding_rule"] == "max_change_down"
    assert rows["up_null"]["recommended_price"] == 21.99  # a null is_kvi is not a KVI


def test_a_floor_out_of_reach_tonight_moves_as_far_as_max_change_up_allows() -> None:
    # The floor 12 * 1.05 = 12.60 lies above the 10% cap 11.00: the price rises to 10.99, and
    # the catalogue's own conflict (min_price above max_price) still holds.
    rows = run(
        [
            product("floor", current_price=10.0, unit_cost=12.0),
            product("catalogue", current_price=10.0, min_price=9.0, max_price=8.0),
        ],
        [forecast("floor"), forecast("catalogue")],
        PricingConfig(),
    )
    row = rows["floor"]
    assert row["action"] == "increase"
    assert row["recommended_price"] == 10.99
    assert row["binding_rule"] == "max_change_up"
    assert row["reason"].startswith("raise 10.00 -> 10.99 (+9.9%): expected profit +")
    assert row["reason"].endswith(
        "; below unit cost 12.00 (margin floor 12.60): max_change_up allows at most 11.00 "
        "tonight (elasticity -2.00)"
    )
    # No .99 price reaches 11.00: the range widens down to the nearest one toward the floor.
    assert (row["allowed_min"], row["allowed_max"]) == pytest.approx((10.99, 11.0))
    assert row["profit_uplift"] > 0
    assert rows["catalogue"]["action"] == "hold"
    assert rows["catalogue"]["binding_rule"] == "min_price"
    assert rows["catalogue"]["allowed_min"] is None
    assert "min_price" in rows["catalogue"]["reason"]
    assert "max_price" in rows["catalogue"]["reason"]


def test_hold_reason_is_passed_through_at_the_current_price() -> None:
    rows = run(
        [product(current_price=7.49)],
        [forecast(hold_reason="cold start: 30 days of history")],
        WIDE,
    )
    row = rows["p1"]
    assert row["action"] == "hold"
    assert row["recommended_price"] == 7.49
    assert row["reason"] == "hold 7.49: cold start: 30 days of history"
    assert row["binding_rule"] == "none"
    assert row["profit_uplift"] == 0.0
    assert row["expected_units"] == pytest.approx(100 * 0.749**-2)
    assert row["expected_profit"] == row["current_expected_profit"]


def test_product_without_forecast_is_held() -> None:
    rows = run(
        [product("a"), product("b", current_price=3.0, unit_cost=2.0)], [forecast("a")], WIDE
    )
    assert rows["b"]["action"] == "hold"
    assert rows["b"]["reason"] == "hold 3.00: no forecast"
    assert rows["b"]["recommended_price"] == 3.0
    assert rows["b"]["expected_profit"] is None
    assert rows["a"]["action"] == "increase"


def test_invalid_forecast_is_held_not_crashed() -> None:
    rows = run([product()], [forecast(elasticity=0.4)], WIDE)
    assert rows["p1"]["action"] == "hold"
    assert "elasticity" in rows["p1"]["reason"]


def test_no_ending_in_range_keeps_price_with_price_ending() -> None:
    # A 5% limit around 5.50 allows 5.225 .. 5.775: no .99 price fits.
    row = run(
        [product(current_price=5.5, unit_cost=2.0)],
        [forecast(elasticity=-1.2)],
        PricingConfig(max_change_up=0.05, max_change_down=0.05),
    )["p1"]
    assert row["action"] == "keep"
    assert row["recommended_price"] == 5.5
    assert row["binding_rule"] == "price_ending"
    assert row["reason"].startswith("keep 5.50: no price ending in .99 fits the allowed range")
    assert "5.23-5.77" in row["reason"]


def test_change_below_min_change_keeps_the_price() -> None:
    # Optimum 10.00 is only +0.2% from 9.98: not worth a relabel at min_change 0.5%.
    cfg = replace(WIDE, price_endings=(), min_change=0.005, n_candidates=1000)
    row = run([product(current_price=9.98)], [forecast()], cfg)["p1"]
    assert row["action"] == "keep"
    assert row["recommended_price"] == 9.98
    assert row["profit_uplift"] == 0.0
    assert (
        "best allowed price 10.00 (+0.2%) is a smaller change than min_change 0.5%"
        in (row["reason"])
    )


def test_already_best_price_is_kept() -> None:
    row = run([product(current_price=9.99)], [forecast()], WIDE)["p1"]
    assert row["action"] == "keep"
    assert row["binding_rule"] == "none"
    assert row["reason"] == "keep 9.99: already the best allowed price (elasticity -2.00)"


def test_keep_at_the_catalogue_max_names_the_cap() -> None:
    cfg = replace(WIDE, hold_inelastic=False)
    row = run([product(current_price=9.99, max_price=9.99)], [forecast(elasticity=-0.5)], cfg)["p1"]
    assert row["action"] == "keep"
    assert row["binding_rule"] == "max_price"
    assert "already the best allowed price; capped by max_price" in row["reason"]


def test_revenue_objective_moves_to_the_ends_and_ignores_unit_elasticity() -> None:
    cfg = PricingConfig(objective="revenue", margin_floor=0.0, hold_inelastic=False)
    rows = run(
        [
            product("inelastic", current_price=20.0, unit_cost=1.0),
            product("elastic", current_price=20.0, unit_cost=1.0),
            product("unit", current_price=20.0, unit_cost=1.0),
        ],
        [
            forecast("inelastic", elasticity=-0.5),
            forecast("elastic", elasticity=-2.0),
            forecast("unit", elasticity=-1.0),
        ],
        cfg,
    )
    assert rows["inelastic"]["recommended_price"] == 21.99
    assert rows["inelastic"]["binding_rule"] == "max_change_up"
    assert rows["elastic"]["recommended_price"] == 18.99
    assert rows["elastic"]["binding_rule"] == "max_change_down"
    assert "expected revenue +" in rows["elastic"]["reason"]
    # Revenue is flat in price at elasticity -1: nothing pays for a relabel.
    assert rows["unit"]["action"] == "keep"
    assert rows["unit"]["binding_rule"] == "none"


def test_output_has_the_contract_columns_one_row_per_product_sorted() -> None:
    products = [product(pid) for pid in ("c", "a", "b")]
    out = recommend(
        pl.DataFrame(products, schema=PRODUCT_SCHEMA),
        pl.DataFrame([forecast(pid) for pid in ("b", "c", "a")], schema=DEMAND_SCHEMA),
        WIDE,
    )
    assert tuple(out.columns) == RECOMMENDATION_COLUMNS
    assert out["product_id"].to_list() == ["a", "b", "c"]
    assert out.schema["recommended_price"] == pl.Float64
    assert out.schema["reason"] == pl.String


def test_empty_catalogue_gives_an_empty_frame() -> None:
    out = recommend(pl.DataFrame(schema=PRODUCT_SCHEMA), pl.DataFrame(schema=DEMAND_SCHEMA), WIDE)
    assert out.height == 0
    assert tuple(out.columns) == RECOMMENDATION_COLUMNS


def test_missing_column_and_duplicate_ids_are_one_line_errors() -> None:
    products = pl.DataFrame([product()], schema=PRODUCT_SCHEMA)
    demand = pl.DataFrame([forecast()], schema=DEMAND_SCHEMA)
    with pytest.raises(ValueError, match="demand is missing column"):
        recommend(products, demand.drop("elasticity"), WIDE)
    with pytest.raises(ValueError, match="duplicate product_id 'p1'"):
        recommend(pl.concat([products, products]), demand, WIDE)


def test_config_rejects_unknown_solver() -> None:
    with pytest.raises(ConfigError, match=r"pricing\.solver"):
        PricingConfig(solver="simplex")
    with pytest.raises(ConfigError, match=r"pricing\.milp_time_limit"):
        PricingConfig(milp_time_limit=0)


# --- the scipy choice ----------------------------------------------------------------------------


def test_milp_failure_holds_every_product_with_the_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    def failing_milp(**_: Any) -> SimpleNamespace:
        return SimpleNamespace(status=4, x=None, message="solver failed")

    monkeypatch.setattr(milp_method, "milp", failing_milp)
    rows = run(
        [product("a"), product("b")], [forecast("a"), forecast("b")], replace(WIDE, solver="milp")
    )
    for row in rows.values():
        assert row["action"] == "hold"
        assert row["recommended_price"] == 9.49
        assert (
            row["reason"]
            == "hold 9.49: milp found no solution (solver failed): today's prices kept"
        )


def test_recommend_with_milp_solver_matches_auto() -> None:
    products, demand = random_world(40, seed=3)
    by_auto = recommend(products, demand, WIDE)
    by_milp = recommend(products, demand, replace(WIDE, solver="milp"))
    assert by_milp.equals(by_auto)


def random_world(n: int, seed: int) -> tuple[pl.DataFrame, pl.DataFrame]:
    """A seeded catalogue with demand, all products priceable."""
    rng = np.random.default_rng(seed)
    cur = np.round(rng.uniform(1, 100, n), 2)
    ids = [f"p{i:03d}" for i in range(n)]
    products = pl.DataFrame(
        {
            "product_id": ids,
            "current_price": cur,
            "unit_cost": cur * rng.uniform(0.2, 0.9, n),
            "min_price": cur * 0.6,
            "max_price": cur * 1.8,
            "is_kvi": rng.random(n) < 0.2,
        }
    )
    demand = pl.DataFrame(
        {
            "product_id": ids,
            "base_units": rng.uniform(1, 500, n),
            "ref_price": cur * rng.uniform(0.8, 1.2, n),
            "elasticity": -rng.uniform(0.1, 5, n),
        }
    )
    return products, demand


def test_chosen_profit_is_the_max_over_the_ladder() -> None:
    products, demand = random_world(200, seed=7)
    cfg = replace(WIDE, min_change=0.0, hold_inelastic=False)
    out = recommend(products, demand, cfg)
    limits = resolve(
        products["product_id"].to_list(),
        ["c"] * products.height,
        products["is_kvi"].to_numpy(),
        products["min_price"].to_numpy(),
        products["max_price"].to_numpy(),
        cfg,
    )
    prange = allowed_range(
        products["current_price"].to_numpy(), products["unit_cost"].to_numpy(), limits
    )
    ladder = candidate_ladders(
        products["current_price"].to_numpy(), prange.lower, prange.upper, cfg
    )
    profit = score_candidates(
        ladder,
        demand["base_units"].to_numpy(),
        demand["ref_price"].to_numpy(),
        demand["elasticity"].to_numpy(),
        products["unit_cost"].to_numpy(),
    ).profit
    best = np.nanmax(profit, axis=1)
    np.testing.assert_allclose(out["expected_profit"].to_numpy(), best, atol=0.006)
    assert (out["profit_uplift"].to_numpy() >= 0).all()


# --- properties over random catalogues, rules and demand -----------------------------------------

ENDING_CHOICES = (0.0, 0.49, 0.95, 0.99)


def seen_prices(cur: float) -> st.SearchStrategy[tuple[float, float]]:
    """A range of prices sold at around today's (it may leave today's price outside)."""
    return st.tuples(st.floats(0.5, 1.2), st.floats(0.0, 0.5)).map(
        lambda r: (round(cur * r[0], 2), round(cur * r[0] * (1 + r[1]), 2))
    )


@st.composite
def pricing_cases(draw: st.DrawFn) -> tuple[pl.DataFrame, pl.DataFrame, PricingConfig]:
    """A random catalogue, its demand (some products missing or held) and random rules."""
    n = draw(st.integers(1, 10))
    unit = st.floats(0.0, 1.0)
    products, demand = [], []
    for i in range(n):
        cur = draw(st.one_of(st.integers(5, 50_000).map(lambda c: c / 100), st.floats(0.05, 500)))
        products.append(
            product(
                f"p{i}",
                current_price=cur,
                unit_cost=cur * draw(st.floats(0.0, 1.5)),
                min_price=cur * draw(st.floats(0.3, 1.2)),
                max_price=cur * draw(st.floats(0.8, 3.0)),
                is_kvi=draw(st.sampled_from([True, False, None])),
            )
        )
        if draw(st.integers(0, 9)) == 0:
            continue  # no forecast for this one
        demand.append(
            forecast(
                f"p{i}",
                elasticity=-draw(st.floats(0.0, 6.0)),
                base_units=draw(st.floats(0.0, 1000.0)),
                ref_price=cur * draw(st.floats(0.5, 2.0)),
                hold_reason="cold start" if draw(st.integers(0, 9)) == 0 else None,
                seen=draw(st.none() | seen_prices(cur)),
            )
        )
    cfg = PricingConfig(
        max_change_up=draw(unit.map(lambda u: round(u * 0.5, 3))),
        max_change_down=draw(unit.map(lambda u: round(u * 0.5, 3))),
        kvi_max_change=draw(unit.map(lambda u: round(u * 0.2, 3))),
        margin_floor=draw(st.floats(-0.5, 1.0)),
        price_endings=tuple(draw(st.lists(st.sampled_from(ENDING_CHOICES), unique=True))),
        n_candidates=draw(st.integers(2, 40)),
        min_change=draw(st.floats(0.0, 0.05)),
        objective=draw(st.sampled_from(["profit", "revenue"])),
        trust_widening=draw(st.sampled_from([0.0, 0.1, 10.0])),
        hold_inelastic=draw(st.booleans()),
    )
    return (
        pl.DataFrame(products, schema=PRODUCT_SCHEMA),
        pl.DataFrame(demand, schema=DEMAND_SCHEMA),
        cfg,
    )


@pytest.mark.slow
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pricing_cases())
def test_recommended_price_never_breaks_a_guardrail(
    case: tuple[pl.DataFrame, pl.DataFrame, PricingConfig],
) -> None:
    products, demand, cfg = case
    out = recommend(products, demand, cfg)
    assert out["product_id"].to_list() == sorted(products["product_id"].to_list())
    assert tuple(out.columns) == RECOMMENDATION_COLUMNS
    rules = {r["product_id"]: r for r in products.iter_rows(named=True)}
    seen_by_id = {
        r["product_id"]: (r["price_seen_lo"], r["price_seen_hi"])
        for r in demand.iter_rows(named=True)
    }
    ends = {round(e * 100) for e in cfg.price_endings}
    tol = 1e-7
    for row in out.iter_rows(named=True):
        assert row["binding_rule"] in RULE_NAMES
        assert row["reason"]
        rule, price, cur = rules[row["product_id"]], row["recommended_price"], row["current_price"]
        need = max(rule["min_price"], rule["unit_cost"] * (1 + cfg.margin_floor))
        assert_outside_explained(row["reason"], price, rule["unit_cost"], need, rule["max_price"])
        if row["action"] in ("hold", "keep"):
            assert price == cur
            assert row["profit_uplift"] == 0.0
            continue
        assert row["action"] == ("increase" if price > cur else "decrease")
        kvi = bool(rule["is_kvi"])
        up = min(cfg.max_change_up, cfg.kvi_max_change) if kvi else cfg.max_change_up
        down = min(cfg.max_change_down, cfg.kvi_max_change) if kvi else cfg.max_change_down
        assert price <= rule["max_price"] + tol or cur > rule["max_price"]
        assert cur * (1 - down) - tol <= price <= cur * (1 + up) + tol
        assert row["allowed_min"] - tol <= price <= row["allowed_max"] + tol
        cents = round(price * 100)
        assert abs(price * 100 - cents) < 1e-6
        assert not ends or cents % 100 in ends
        if cur > rule["max_price"] + tol or cur < need - tol:
            # A price outside its bounds today only moves toward them (the floor is a floor).
            assert (price < cur) == (cur > rule["max_price"] + tol)
            continue
        seen = seen_by_id.get(row["product_id"])
        if seen is not None and seen[0] is not None:
            # Inside the trust region, which never excludes today's price.
            assert min(cur, seen[0] * (1 - cfg.trust_widening)) - tol <= price
            assert price <= max(cur, seen[1] * (1 + cfg.trust_widening)) + tol
        assert rule["min_price"] - tol <= price
        assert price >= rule["unit_cost"] * (1 + cfg.margin_floor) - tol
        assert abs(price - cur) >= cfg.min_change * cur - tol
        if cfg.objective == "profit":
            assert row["expected_profit"] >= row["current_expected_profit"]
        else:
            assert row["expected_revenue"] >= row["current_expected_revenue"]


def assert_outside_explained(
    reason: str, price: float, cost: float, need: float, max_price: float
) -> None:
    """No price, hold included, sits below cost or outside its bounds without saying why."""
    tol = 1e-7 * max(1.0, price)
    if price < cost - tol:
        assert "below unit cost" in reason
    elif price < need - tol:
        assert "below the margin floor" in reason or "below min_price" in reason
    if price > max_price + tol:
        assert "above max_price" in reason
