"""Price tests (pipeline/pricing/explore.py): alternation, stopping, budget, guardrails."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import polars as pl
from warehouse_rows import load, make_recommendations, warehouse_file

from pipeline import catalog
from pipeline import warehouse as wh
from pipeline.config import PricingConfig
from pipeline.pricing import explore
from pipeline.pricing.explore_room import step_room
from pipeline.warehouse.connection import read_frame

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
    # Whatever the draw, its way is the recorded direction and its target lies inside the rules
    # (here a max_price at today's price: a draw upwards targets today's price).
    capped = products.with_columns(max_price=pl.lit(49.99))
    for seed in range(8):
        draw = explore.recommend(capped, demand, replace(cfg, explore_seed=seed), None, AS_OF)
        row = draw.row(0, named=True)
        assert row["test_direction"] == (1 if row["test_arm"] == "up" else -1)
        assert row["allowed_min"] - 1e-9 <= row["test_target_price"] <= row["allowed_max"] + 1e-9


def _narrow(demand: pl.DataFrame, status: str = "gate_failed") -> pl.DataFrame:
    """A product whose own interval is narrow (identified), with the status given."""
    return demand.with_columns(
        status=pl.lit(status),
        elasticity_lo=pl.lit(-2.3),
        elasticity_hi=pl.lit(-1.7),
        hold_reason=pl.lit("forecast lost to seasonal-naive in the backtest (WAPE 0.4 vs 0.3)"),
    )


def test_identified_test_releases_a_gate_failed_product_from_hold_statuses() -> None:
    products, demand = _frames(1)
    gate_failed = _narrow(demand)
    cfg = PricingConfig()
    # Never tested: hold_statuses holds it, and no test starts (its interval is already narrow).
    never = explore.recommend(products, gate_failed, cfg, None, AS_OF).row(0, named=True)
    assert never["action"] == "hold" and "(hold_statuses)" in never["reason"]
    assert never["test_status"] is None
    # A running test whose model now gives a narrow own interval ends identified, released.
    running = _state(AS_OF - dt.timedelta(14))
    done = explore.recommend(products, gate_failed, cfg, running, AS_OF).row(0, named=True)
    assert done["test_status"] == "identified" and done["action"] != "hold"
    # On later nights its own estimate prices it, though its status is still gate_failed.
    found = _state(AS_OF - dt.timedelta(21), explore.IDENTIFIED).with_columns(
        effective_date=pl.lit(AS_OF - dt.timedelta(7))
    )
    later = explore.recommend(products, gate_failed, cfg, found, AS_OF).row(0, named=True)
    assert later["action"] != "hold" and later["test_status"] is None
    assert "identified by its price test" in later["reason"]
    assert later["recommended_price"] < 49.99  # its own optimum (cost 20, e = -2: 40) is below


def test_stopped_test_retries_after_the_cool_off() -> None:
    products, demand = _frames(1)
    cfg = PricingConfig(explore_retry_days=28)
    stopped = _state(AS_OF - dt.timedelta(40), explore.STOPPED)
    soon = stopped.with_columns(effective_date=pl.lit(AS_OF - dt.timedelta(10)))
    held = explore.recommend(products, demand, cfg, soon, AS_OF).row(0, named=True)
    assert held["test_status"] is None and held["action"] == "hold"
    cooled = stopped.with_columns(effective_date=pl.lit(AS_OF - dt.timedelta(28)))
    again = explore.recommend(products, demand, cfg, cooled, AS_OF).row(0, named=True)
    assert (again["test_status"], again["test_phase"], again["test_attempt"]) == ("testing", 1, 2)
    assert again["test_started"] == AS_OF
    assert again["reason"].startswith("price test 1 of 4 (attempt 2): learning the elasticity")
    # A history without the last night (older rows): the test ran its 28 days, then cools off.
    old = explore.recommend(products, demand, cfg, stopped, AS_OF).row(0, named=True)
    assert old["test_status"] is None


def _cheap(price: float, seen_hi: float) -> tuple[pl.DataFrame, pl.DataFrame]:
    products, demand = _frames(1)
    products = products.with_columns(current_price=pl.lit(price), unit_cost=pl.lit(2.0))
    demand = demand.with_columns(
        ref_price=pl.lit(price),
        elasticity=pl.lit(-1.2),  # optimum 12: a step up gains, no risk
        price_seen_lo=pl.lit(price),
        price_seen_hi=pl.lit(seen_hi),
    )
    return products, demand


def test_test_step_is_at_least_one_ladder_step_inside_the_guardrails() -> None:
    # 4.99 with .99 endings: the nearest prices are 3.99 and 5.99, 20% away.
    products, demand = _cheap(4.99, seen_hi=5.99)
    wide = PricingConfig(max_change_up=0.25)
    row = explore.recommend(products, demand, wide, None, AS_OF).row(0, named=True)
    assert row["test_status"] == "testing" and row["test_direction"] == 1
    assert row["recommended_price"] == 5.99  # a 5% step (5.24) would round back to 4.99
    assert row["allowed_min"] <= row["recommended_price"] <= row["allowed_max"]
    # Within 10% of 4.99 (and the trust region) no ladder price exists: no test, and why.
    products, demand = _cheap(4.99, seen_hi=4.99)
    row = explore.recommend(products, demand, PricingConfig(), None, AS_OF).row(0, named=True)
    assert row["test_status"] is None and row["action"] == "hold"
    assert "no price test: no ladder price one step from 4.99" in row["reason"]


def test_a_step_against_the_estimate_must_be_able_to_step_back() -> None:
    # The estimate (-1.2, cost 2: optimum 12) points up, but the trust region leaves no room up.
    # 10.99 -> 9.99 is a 9.1% cut, and the way back a 10.01% raise: a cut that is never undone.
    products, demand = _cheap(10.99, seen_hi=10.99)
    demand = demand.with_columns(price_seen_lo=pl.lit(8.99))
    tight = PricingConfig(trust_widening=0.0)
    room = step_room(products, demand, tight).row(0, named=True)
    assert (room["room_up"], room["room_down"], room["back_down"]) == (None, 9.99, False)
    row = explore.recommend(products, demand, tight, None, AS_OF).row(0, named=True)
    assert row["test_status"] is None and "with a way back" in row["reason"]
    # At 11.99 the cut to 10.99 (8.3%) comes back with a 9.1% raise: the test steps down.
    products, demand = _cheap(11.99, seen_hi=11.99)
    demand = demand.with_columns(price_seen_lo=pl.lit(8.99))
    row = explore.recommend(products, demand, tight, None, AS_OF).row(0, named=True)
    assert (row["test_status"], row["test_direction"]) == ("testing", -1)
    assert row["recommended_price"] == 10.99
    # A cut the estimate favours (-3.0: optimum 3) is taken, way back or not.
    products, demand = _cheap(10.99, seen_hi=10.99)
    demand = demand.with_columns(elasticity=pl.lit(-3.0), price_seen_lo=pl.lit(8.99))
    row = explore.recommend(products, demand, tight, None, AS_OF).row(0, named=True)
    assert (row["test_status"], row["recommended_price"]) == ("testing", 9.99)


def test_a_step_phase_stays_at_its_step() -> None:
    products, demand = _frames(1)
    demand = demand.with_columns(price_seen_lo=pl.lit(39.99))
    cfg = PricingConfig()
    first = explore.recommend(products, demand, cfg, None, AS_OF).row(0, named=True)
    assert first["test_arm"] == "step" and first["test_direction"] == -1
    stepped = first["recommended_price"]
    assert stepped < 49.99
    # Two nights on, in the same phase, the shelf sits at the step: the test holds it there.
    # Aiming a ladder step from tonight's price would cut once more, every night of the phase.
    state = _state(AS_OF).with_columns(test_direction=pl.lit(-1))
    later = products.with_columns(current_price=pl.lit(stepped))
    day = AS_OF + dt.timedelta(2)
    row = explore.recommend(later, demand, cfg, state, day).row(0, named=True)
    assert (row["test_status"], row["test_phase"], row["test_arm"]) == ("testing", 1, "step")
    assert row["test_target_price"] == stepped and row["recommended_price"] == stepped


def _test_run(path, day: dt.date, status: str, started: dt.date, attempt: int) -> None:
    run_id = f"run-{day:%d}"
    recs = make_recommendations(run_id, day, 2.19).with_columns(
        test_status=pl.Series([status, None]),
        test_started=pl.Series([started, None]),
        test_base_price=pl.Series([2.0, None]),
        test_direction=pl.Series([1, None]),
        test_attempt=pl.Series([attempt, None]),
        test_reach_width=pl.Series([4.0 + attempt, None]),
    )
    wh.record_run_start(path, run_id, "nightly", day, {"as_of": day})
    wh.write_run_outputs(path, run_id, day, recommendations=recs, counts={}, message="ok")


def test_attempts_are_recorded_and_read_back(tmp_path) -> None:
    path = load(warehouse_file(tmp_path))
    first, again = dt.date(2025, 3, 1), dt.date(2025, 4, 2)
    _test_run(path, first, explore.STOPPED, first - dt.timedelta(27), 1)
    _test_run(path, again, explore.TESTING, again, 2)
    state = catalog.read_price_tests(path, again)
    read = state.select("test_status", "test_attempt", "test_reach_width", "effective_date")
    assert read.rows() == [(explore.STOPPED, 1, 5.0, first)]
    assert catalog.read_price_tests(path, again + dt.timedelta(1))["test_attempt"].to_list() == [2]
    view = read_frame(
        path, "select product_id, attempt, status, reach_width from price_tests order by attempt"
    )
    assert view.rows() == [("A1", 1, explore.STOPPED, 5.0), ("A1", 2, explore.TESTING, 6.0)]


def test_the_view_counts_only_the_nights_a_test_set_the_price(tmp_path) -> None:
    """The night a test ends sets no test price (the engine prices the product): the view's
    nights and price moves leave it out, and its last row has no arm, target or probability."""
    path = load(warehouse_file(tmp_path))
    start = dt.date(2025, 3, 1)
    _test_run(path, start, explore.TESTING, start, 1)
    _test_run(path, start + dt.timedelta(1), explore.STOPPED, start, 1)  # price moved too
    view = read_frame(path, "select nights, price_moves, status, last_night from price_tests")
    assert view.rows() == [(1, 1, explore.STOPPED, start + dt.timedelta(1))]
    products, demand = _frames(1)
    ended = explore.recommend(products, demand, PricingConfig(), _state(AS_OF - dt.timedelta(28)),
                              AS_OF).row(0, named=True)  # fmt: skip
    assert ended["test_status"] == explore.STOPPED and ended["test_phase"] == 4
    assert ended["test_arm"] is None and ended["test_target_price"] is None
    assert ended["test_probability"] is None and ended["binding_rule"] != "price_test"


def test_a_test_too_costly_for_the_risk_left_does_not_stop_a_cheaper_one() -> None:
    products, demand = _frames(3)
    # At the estimate's optimum every step gives up profit, in proportion to the units.
    e = -49.99 / 29.99
    demand = demand.with_columns(elasticity=pl.lit(e), base_units=pl.Series([100.0, 101.0, 300.0]))
    plan = explore.plan_tests(products, demand, PricingConfig(), explore.no_tests(), AS_OF)
    risk = dict(zip(plan["product_id"], plan["risk"], strict=True))
    assert 0 < risk["P0"] < risk["P1"] < risk["P2"]
    # Room for P1's test, not for P2's (ranked first: the most value) nor for both P1's and P0's.
    total = sum((49.99 - 20.0) * b for b in demand["base_units"])
    cfg = PricingConfig(explore_max_risk=1.5 * risk["P1"] / total)
    started = explore.plan_tests(products, demand, cfg, explore.no_tests(), AS_OF)
    assert started.filter(pl.col("test_status") == explore.TESTING)["product_id"].to_list() == [
        "P1"
    ]


def test_a_product_held_for_stockouts_does_not_test_and_a_running_test_stops() -> None:
    """A test there could never move the price: the engine holds the product whatever its
    status, and the hold's reason, not a test's, is what the row says."""
    products, demand = _frames(2)
    demand = demand.with_columns(stockout_share=pl.Series([0.9, 0.0]))
    fresh = explore.recommend(products, demand, PricingConfig(), None, AS_OF).sort("product_id")
    assert fresh["test_status"].to_list() == [None, explore.TESTING]
    running = explore.recommend(products, demand, PricingConfig(), _state(AS_OF - dt.timedelta(7)),
                                AS_OF).sort("product_id")  # fmt: skip
    row = running.row(0, named=True)
    assert row["test_status"] == explore.STOPPED and row["action"] == "hold"
    assert row["binding_rule"] != "price_test" and not row["reason"].startswith("price test")
    # A trained product's own hold says why: its stockouts.
    trained = demand.with_columns(status=pl.lit("trained"), hold_reason=pl.lit(None, pl.String))
    held = explore.recommend(products, trained, PricingConfig(), None, AS_OF).sort("product_id")
    assert held["reason"][0].startswith("hold 49.99: heavy stockouts: 90% of recent days")


# --- inelastic estimates: a price test proves them, then the price walks -------------------------


def _inelastic(n: int = 1, status: str = "trained") -> tuple[pl.DataFrame, pl.DataFrame]:
    """A trained product whose estimate is inelastic and already narrow (identified)."""
    products, demand = _frames(n, status=status)
    return products.with_columns(max_price=pl.lit(69.99)), demand.with_columns(
        elasticity=pl.lit(-0.7),
        elasticity_lo=pl.lit(-0.9),
        elasticity_hi=pl.lit(-0.5),
        hold_reason=pl.lit(None, pl.String),
        price_seen_hi=pl.lit(49.99),
    )


def test_an_inelastic_estimate_is_tested_although_narrow_for_its_step_and_way_back() -> None:
    products, demand = _inelastic()
    first = explore.recommend(products, demand, PricingConfig(), None, AS_OF).row(0, named=True)
    assert (first["test_status"], first["test_phase"], first["test_direction"]) == ("testing", 1, 1)
    # Identified from night 2 on, it still runs `walk_test_phases` (2: the step up and the way
    # back, 14 days) of its test: the walk stands on them.
    for phases, days, status in ((2, 8, "testing"), (2, 13, "testing"), (2, 14, "identified")):
        state = _state(AS_OF - dt.timedelta(days))
        cfg = PricingConfig(walk_test_phases=phases)
        recs = explore.recommend(products, demand, cfg, state, AS_OF)
        assert recs["test_status"].to_list() == [status], days
    for days, status in ((14, "testing"), (27, "testing"), (28, "identified")):
        state = _state(AS_OF - dt.timedelta(days))
        cfg = PricingConfig(walk_test_phases=4)
        recs = explore.recommend(products, demand, cfg, state, AS_OF)
        assert recs["test_status"].to_list() == [status], days
    # Without the walk, the estimate is held within the prices sold at and never tested.
    off = explore.recommend(products, demand, PricingConfig(inelastic_walk=False), None, AS_OF)
    assert off["test_status"].to_list() == [None]
    assert off["recommended_price"].to_list() == [49.99]
    assert "demand looks inelastic" in off["reason"][0]


def test_a_tested_inelastic_product_walks_one_trust_region_step() -> None:
    products, demand = _inelastic()
    found = _state(AS_OF - dt.timedelta(40), explore.IDENTIFIED)
    cfg = PricingConfig(price_endings=(), max_change_up=0.2)
    row = explore.recommend(products, demand, cfg, found, AS_OF).row(0, named=True)
    # One step past the prices sold at (49.99 * 1.10 = 54.989, to the cent below), not the
    # maximum change towards the cap.
    assert row["recommended_price"] == 54.98 and row["binding_rule"] == "trust_region"
    assert "demand found inelastic by its price test" in row["reason"]
    assert "the demand curve is not known beyond them" in row["reason"]
    assert row["test_status"] is None  # the test is over: no new test row
    # Untested, it tests (a 5% step up) rather than walks.
    untested = explore.recommend(products, demand, cfg, None, AS_OF)
    assert untested.select("test_status", "recommended_price").row(0) == ("testing", 52.49)
    # Without the walk, confounded, or without a max_price of its own (the default cap is a
    # factor of tonight's price, and would move up with each step), it stays within the prices
    # sold at.
    for cfg_, status, top in (
        (replace(cfg, inelastic_walk=False), "trained", 69.99),
        (replace(cfg, hold_statuses=()), "confounded", 69.99),
        (cfg, "trained", None),
    ):
        products, demand = _inelastic(status=status)
        products = products.with_columns(max_price=pl.lit(top, pl.Float64))
        recs = explore.recommend(products, demand, cfg_, found, AS_OF)
        assert recs["recommended_price"].to_list() == [49.99], (cfg_.inelastic_walk, status, top)
