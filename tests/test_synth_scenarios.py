"""Every named scenario draws a valid world whose switched-on feature is really there."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest

from pipeline import synth
from pipeline.synth.demand import daily_mean, demand_from_truth, easter_sunday, latent_wave

N_PRODUCTS, N_DAYS, SEED = 40, 730, 3
BASE_TRUTH = synth.generate_world(3, 30, 0).truth.columns


def _world(name: str, n_products: int = N_PRODUCTS) -> synth.World:
    spec = synth.scaled(synth.SCENARIOS[name].spec, n_products, N_DAYS)
    return synth.generate(spec, SEED)


@pytest.fixture(scope="module")
def worlds() -> dict[str, synth.World]:
    return {name: _world(name) for name in synth.SCENARIOS}


def _dense(world: synth.World, column: str, fill: object) -> np.ndarray:
    """A sales column as [P, T] over the world's days (before launch: `fill`)."""
    days = pl.DataFrame({"ds": pl.date_range(_first_day(world), world.spec.end_date, eager=True)})
    grid = world.products.select("product_id").join(days, how="cross")
    full = grid.join(world.sales, on=["product_id", "ds"], how="left").sort("product_id", "ds")
    return full[column].fill_null(fill).to_numpy().reshape(world.products.height, -1)


def _first_day(world: synth.World) -> dt.date:
    return world.spec.end_date - dt.timedelta(days=world.spec.n_days - 1)


def _days(world: synth.World) -> np.ndarray:
    return np.arange(np.datetime64(_first_day(world)), np.datetime64(world.spec.end_date) + 1)


def _true_mean(world: synth.World, promo: bool = True) -> np.ndarray:
    """The exact expected units [P, T] at the prices paid (with the promotions' lift, if any)."""
    price = _dense(world, "price", 1.0).astype(np.float64)
    flags = _dense(world, "promo", False).astype(bool) if promo else None
    return daily_mean(demand_from_truth(world.truth), _days(world), price, flags)


@pytest.mark.parametrize("name", list(synth.SCENARIOS))
def test_every_scenario_is_a_valid_world(worlds: dict[str, synth.World], name: str) -> None:
    world, demo = worlds[name], worlds["demo"]
    assert world.spec.name == name
    assert world.products.schema == demo.products.schema
    assert world.sales.schema == demo.sales.schema
    assert world.truth.columns[: len(BASE_TRUTH)] == BASE_TRUTH
    ids = world.products["product_id"].to_list()
    assert world.truth["product_id"].to_list() == ids and len(set(ids)) == N_PRODUCTS
    sales = world.sales
    assert sales.select("product_id", "ds").is_unique().all()
    assert (sales["price"] > 0).all() and (sales["units"] >= 0).all()
    assert (sales["units"] == sales["units"].round()).all()
    last = sales.group_by("product_id").agg(pl.col("price").last()).sort("product_id")
    assert last["price"].to_list() == world.products["current_price"].to_list()
    products = world.products
    assert (products["min_price"] <= products["current_price"]).all()
    assert (products["current_price"] <= products["max_price"]).all()
    assert (world.truth["elasticity"] < 0).all()


@pytest.mark.parametrize("name", list(synth.SCENARIOS))
def test_every_scenario_sells_what_its_truth_expects(
    worlds: dict[str, synth.World], name: str
) -> None:
    world = worlds[name]
    mean = _true_mean(world)
    sold = _dense(world, "units", 0.0)
    shelf = ~_dense(world, "stockout", True).astype(bool)  # observed, not out of stock
    assert sold[shelf].sum() / mean[shelf].sum() == pytest.approx(1.0, abs=0.08)
    # The public truth function gives the same numbers at a constant price.
    prices = world.truth["ref_price"].to_numpy()
    public = synth.true_daily_mean(world.truth, list(_days(world)[-30:]), prices)
    inner = daily_mean(demand_from_truth(world.truth), _days(world)[-30:], prices[:, None])
    np.testing.assert_array_equal(public, inner)


def test_promotions_lift_demand_beyond_their_price_cut(worlds: dict[str, synth.World]) -> None:
    world = worlds["promo_lift"]
    lift = world.truth["promo_lift"]
    assert lift.min() >= 0 and lift.max() <= 0.4 and lift.std() > 0.08
    promo = _dense(world, "promo", False).astype(bool)
    days = promo & ~_dense(world, "stockout", True).astype(bool)
    sold = _dense(world, "units", 0.0)[days].sum()
    assert sold / _true_mean(world)[days].sum() == pytest.approx(1.0, abs=0.08)
    assert sold / _true_mean(world, promo=False)[days].sum() > 1.12
    # true_daily_mean applies the lift on the promotion days it is given, and only there.
    one = world.truth.head(1)
    flags = np.array([[False, True]])
    pair = synth.true_daily_mean(one, [world.spec.end_date] * 2, one["ref_price"].to_numpy(), flags)
    assert pair[0, 1] / pair[0, 0] == pytest.approx(1.0 + lift[0])


def _regular_moves(world: synth.World) -> pl.Series:
    """Changes of the regular (non-promotion) price per product."""
    regular = world.sales.filter(~pl.col("promo"))
    moves = regular.group_by("product_id", maintain_order=True).agg(
        (pl.col("price").diff().fill_null(0) != 0).sum().alias("moves")
    )
    return moves.sort("product_id")["moves"]


def test_regular_price_moves_are_rare_or_frequent_as_asked(
    worlds: dict[str, synth.World],
) -> None:
    demo, rare, frequent = (
        _regular_moves(worlds[n]) for n in ("demo", "rare_moves", "frequent_moves")
    )
    assert rare.max() <= 2 and rare.filter(rare > 0).min() >= 1
    assert 3 <= demo.filter(demo > 0).median() <= 10
    assert frequent.filter(frequent > 0).median() >= 20
    # Products whose price never moved: more of them where moves are rare.
    never = {n: int((~worlds[n].truth["price_varied"]).sum()) for n in ("demo", "rare_moves")}
    assert 0 < never["demo"] < never["rare_moves"]


def test_seasonal_peaks_fall_on_black_friday_and_easter(worlds: dict[str, synth.World]) -> None:
    truth = worlds["seasonal_peaks"].truth
    assert (truth["holiday_log_peak"] == 0).all() and (truth["holiday_log_dip"] == 0).all()
    assert (truth["black_friday_log_peak"] > 0).all() and (truth["easter_log_peak"] > 0).all()
    prices = truth["ref_price"].to_numpy()

    def mean(day: dt.date) -> np.ndarray:
        return synth.true_daily_mean(truth, [day], prices)[:, 0]

    # The same weekdays: Good Friday 2026 against three weeks before (products on sale on both),
    # Black Friday 2025 against the Friday before.
    before, easter = mean(dt.date(2026, 3, 13)), mean(dt.date(2026, 4, 3))
    on_sale = before > 0
    assert on_sale.sum() >= N_PRODUCTS // 2
    assert (easter[on_sale] > 1.15 * before[on_sale]).all()
    before, black_friday = mean(dt.date(2025, 11, 21)), mean(dt.date(2025, 11, 28))
    assert (black_friday[before > 0] > 1.25 * before[before > 0]).all()
    assert easter_sunday(np.array([2024, 2025, 2026, 2027])).tolist() == [
        dt.date(2024, 3, 31), dt.date(2025, 4, 20), dt.date(2026, 4, 5), dt.date(2027, 3, 28),
    ]  # fmt: skip


def test_noisy_slow_movers_are_zero_heavy(worlds: dict[str, synth.World]) -> None:
    world, demo = worlds["noisy_slow"], worlds["demo"]
    assert (world.truth["dispersion"] >= 0.5).all()
    slow = world.truth.filter(pl.col("slow_mover"))
    assert slow.height >= N_PRODUCTS // 5 and (slow["log_base"].exp() <= 1.0).all()
    zero = {n: float((w.sales["units"] == 0).mean()) for n, w in (("slow", world), ("demo", demo))}
    assert zero["slow"] > zero["demo"] + 0.15


def test_stockouts_run_long_and_levels_break(worlds: dict[str, synth.World]) -> None:
    world = worlds["stockouts_breaks"]
    assert 0.04 <= world.sales["stockout"].mean() <= 0.12
    runs = world.sales.group_by("product_id").agg(run=pl.col("stockout").rle()).explode("run")
    assert runs.unnest("run").filter(pl.col("value"))["len"].max() > 5
    truth = world.truth.filter(pl.col("break_on").is_not_null())
    assert truth.height >= N_PRODUCTS // 5
    unbroken = truth.drop("break_on", "break_log_shift", "break_trend_change")
    prices = truth["ref_price"].to_numpy()
    for row, (on, shift, change) in enumerate(
        truth.select("break_on", "break_log_shift", "break_trend_change").iter_rows()
    ):
        days = [on - dt.timedelta(days=1), on]
        ratio = (
            synth.true_daily_mean(truth, days, prices)
            / synth.true_daily_mean(unbroken, days, prices)
        )[row]
        np.testing.assert_allclose(ratio, [np.exp(-shift + change), 1.0], rtol=1e-12)


def test_launches_are_recent_and_delisted_products_stop_selling() -> None:
    world = _world("launches", n_products=200)
    history = (world.spec.end_date - world.products["launched_on"]).dt.total_days() + 1
    assert 0.2 <= float((history < N_DAYS).mean()) <= 0.4
    assert history.filter(history < N_DAYS).max() <= 300
    gone = world.truth.filter(pl.col("delisted_on").is_not_null())
    assert gone.height >= 5
    tail = world.sales.join(gone.select("product_id", "delisted_on"), on="product_id")
    assert (tail.filter(pl.col("ds") >= pl.col("delisted_on"))["units"] == 0).all()
    last = [world.spec.end_date]
    assert (synth.true_daily_mean(gone, last, gone["ref_price"].to_numpy()) == 0).all()


def test_endogenous_prices_follow_latent_demand(worlds: dict[str, synth.World]) -> None:
    world = worlds["endogenous"]
    truth = world.truth
    demand = demand_from_truth(truth)
    assert demand.latent is not None
    wave = latent_wave(demand.latent, demand.origin, _days(world))
    log_price = np.log(_dense(world, "price", 1.0).astype(np.float64))
    corr = np.array([np.corrcoef(log_price[i], wave[i])[0, 1] for i in range(truth.height)])
    endogenous = truth["endogenous"].to_numpy()
    assert 0.3 * N_PRODUCTS <= endogenous.sum() <= 0.7 * N_PRODUCTS
    assert np.median(corr[endogenous]) > 0.6 and corr[endogenous].min() > 0.2
    assert abs(np.median(corr[~endogenous & truth["price_varied"].to_numpy()])) < 0.2
    on_promo = world.sales.filter(pl.col("promo"))["product_id"].unique()
    assert not set(on_promo) & set(truth.filter(pl.col("endogenous"))["product_id"])


def test_elasticities_cluster_by_category_only_when_asked(worlds: dict[str, synth.World]) -> None:
    def within_sd(truth: pl.DataFrame) -> float:
        return truth.group_by("category").agg(pl.col("elasticity").std())["elasticity"].median()

    assert within_sd(worlds["clustered_elasticities"].truth) < 0.35
    assert within_sd(worlds["demo"].truth) > 0.6


@pytest.mark.parametrize(
    "name", ["promo_lift", "seasonal_peaks", "noisy_slow", "clustered_elasticities"]
)
def test_a_scenario_shares_the_demo_world_s_catalogue(
    worlds: dict[str, synth.World], name: str
) -> None:
    world, demo = worlds[name], worlds["demo"]
    assert world.products.equals(demo.products)
    assert world.sales.select("product_id", "ds", "price", "promo").equals(
        demo.sales.select("product_id", "ds", "price", "promo")
    )
    # What no switch of these scenarios changes: the products' launch, price and base shape.
    changed = {"elasticity", "dispersion", "log_base", "holiday_log_peak", "holiday_log_dip",
               "summer_log_peak", "stockout_rate"}  # fmt: skip
    kept = [c for c in BASE_TRUTH if c not in changed]
    assert world.truth.select(kept).equals(demo.truth.select(kept))


def test_some_costs_rose_above_the_price_where_moves_are_rare(
    worlds: dict[str, synth.World],
) -> None:
    def above(world: synth.World) -> pl.DataFrame:
        return world.products.filter(pl.col("unit_cost") > pl.col("current_price"))

    rare, demo = worlds["rare_moves"], worlds["demo"]
    assert above(demo).height == 0
    risen = above(_world("rare_moves", n_products=200))
    assert 4 <= risen.height <= 20
    assert (risen["unit_cost"] <= (risen["current_price"] * 1.15).round(2)).all()
    # Only those costs changed: every other product keeps the demo's cost share.
    same = rare.products.filter(pl.col("unit_cost") <= pl.col("current_price"))
    assert same.height >= N_PRODUCTS - 5
