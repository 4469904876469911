"""Tests of the demo world (pipeline/synth/) on small seeded worlds, and of `WorldSpec`.

The named scenarios' own features are tested in tests/test_synth_scenarios.py.
"""

from __future__ import annotations

import datetime
import hashlib

import numpy as np
import polars as pl
import pytest

from pipeline import synth
from pipeline.synth import World, generate_world, true_daily_mean, true_expected_units

END = datetime.date(2026, 10, 31)
N_PRODUCTS, N_DAYS = 60, 400


@pytest.fixture(scope="module")
def world() -> World:
    return generate_world(n_products=N_PRODUCTS, n_days=N_DAYS, seed=7, end_date=END)


@pytest.fixture(scope="module")
def sales_with_truth(world: World) -> pl.DataFrame:
    return _with_true_mean(world)


def _with_true_mean(world: World) -> pl.DataFrame:
    """Sales rows with `true_mean`: the exact expected units at the price actually paid that day.

    Uses only the public `true_daily_mean`, one call per product and distinct price paid.
    """
    parts = []
    for (product_id,), rows in world.sales.group_by("product_id", maintain_order=True):
        truth_row = world.truth.filter(pl.col("product_id") == product_id)
        for (price,), at_price in rows.group_by("price", maintain_order=True):
            mean = true_daily_mean(truth_row, at_price["ds"].to_list(), np.array([price]))[0]
            parts.append(at_price.with_columns(true_mean=pl.Series(mean)))
    return pl.concat(parts).sort("product_id", "ds")


def test_same_seed_is_identical_and_other_seed_differs() -> None:
    first = generate_world(n_products=15, n_days=90, seed=1)
    again = generate_world(n_products=15, n_days=90, seed=1)
    other = generate_world(n_products=15, n_days=90, seed=2)
    for name in ("products", "sales", "truth"):
        assert getattr(first, name).equals(getattr(again, name)), name
    assert not first.sales.equals(other.sales)
    assert not first.truth.equals(other.truth)


def test_products_columns_and_dtypes(world: World) -> None:
    assert world.products.schema == pl.Schema(
        {
            "product_id": pl.String,
            "name": pl.String,
            "category": pl.String,
            "family_id": pl.String,
            "size_rank": pl.Int32,
            "unit_cost": pl.Float64,
            "current_price": pl.Float64,
            "min_price": pl.Float64,
            "max_price": pl.Float64,
            "is_active": pl.Boolean,
            "is_kvi": pl.Boolean,
            "launched_on": pl.Date,
        }
    )
    assert world.products.height == N_PRODUCTS


def test_sales_and_truth_columns_and_dtypes(world: World) -> None:
    assert world.sales.schema == pl.Schema(
        {
            "product_id": pl.String,
            "ds": pl.Date,
            "units": pl.Float64,
            "price": pl.Float64,
            "promo": pl.Boolean,
            "stockout": pl.Boolean,
        }
    )
    truth = world.truth.schema
    expected = {
        "product_id": pl.String,
        "elasticity": pl.Float64,
        "ref_price": pl.Float64,
        "dispersion": pl.Float64,
        "price_varied": pl.Boolean,
        "launched_on": pl.Date,
        "origin": pl.Date,
        "log_base": pl.Float64,
        "trend_per_day": pl.Float64,
        **{f"weekly_{k}": pl.Float64 for k in range(7)},
    }
    assert {name: truth[name] for name in expected} == expected
    # Scalar columns only, so the frame stores as a plain database table.
    assert all(
        dtype.is_numeric() or dtype in (pl.String, pl.Boolean, pl.Date) for dtype in truth.dtypes()
    )
    assert world.truth["product_id"].to_list() == world.products["product_id"].to_list()


def test_catalogue_is_a_plausible_retail_assortment(world: World) -> None:
    products = world.products
    ids = products["product_id"].to_list()
    assert ids == sorted(ids) and len(set(ids)) == N_PRODUCTS
    assert ids[0] == "P00001"
    assert products["name"].n_unique() == N_PRODUCTS
    assert 4 <= products["category"].n_unique() <= 6
    assert products["is_active"].all()
    assert 0 < products["is_kvi"].sum() < N_PRODUCTS // 2
    assert ((products["family_id"].is_null()) == (products["size_rank"].is_null())).all()
    assert (products["min_price"] <= products["current_price"]).all()
    assert (products["current_price"] <= products["max_price"]).all()
    assert (products["unit_cost"] > 0).all()
    assert (products["unit_cost"] < products["max_price"] / 1.5 * 0.71).all()


def test_families_have_two_or_three_sizes_priced_by_size(world: World) -> None:
    families = world.products.filter(pl.col("family_id").is_not_null())
    assert 0.1 <= families.height / N_PRODUCTS <= 0.55
    summary = families.group_by("family_id").agg(
        n=pl.len(),
        ranks=pl.col("size_rank").sort(),
        # max_price is 1.5x the current regular price, so it orders the regular prices.
        rising=(pl.col("max_price").sort_by("size_rank").diff().drop_nulls() > 0).all(),
        categories=pl.col("category").n_unique(),
    )
    assert set(summary["n"].to_list()) <= {2, 3}
    assert all(r == list(range(1, len(r) + 1)) for r in summary["ranks"].to_list())
    assert summary["rising"].all()
    assert (summary["categories"] == 1).all()


def test_one_row_per_product_and_day_from_launch_to_end(world: World) -> None:
    sales = world.sales
    assert sales.select("product_id", "ds").is_unique().all()
    assert sales.equals(sales.sort("product_id", "ds"))
    spans = (
        sales.group_by("product_id")
        .agg(first=pl.col("ds").min(), last=pl.col("ds").max(), n=pl.len())
        .join(world.products.select("product_id", "launched_on"), on="product_id")
    )
    assert spans.height == N_PRODUCTS
    assert (spans["last"] == END).all()
    assert (spans["first"] == spans["launched_on"]).all()
    assert ((spans["last"] - spans["first"]).dt.total_days() + 1 == spans["n"]).all()
    assert spans["n"].max() == N_DAYS


def test_units_and_prices_are_well_formed(world: World) -> None:
    sales = world.sales
    assert (sales["units"] >= 0).all()
    assert (sales["units"] == sales["units"].round()).all()
    assert (sales["price"] == sales["price"].round(2)).all()
    assert sales["price"].min() > 0.2 and sales["price"].max() < 80
    cents = (sales["price"] * 100).round().cast(pl.Int64) % 100
    assert cents.is_in([49, 99]).mean() > 0.5  # mostly .49/.99 endings


def test_current_price_is_last_price_paid(world: World) -> None:
    last = world.sales.group_by("product_id").agg(pl.col("price").last()).sort("product_id")
    assert last["price"].to_list() == world.products["current_price"].to_list()


def test_truth_parameter_ranges(world: World) -> None:
    truth = world.truth
    assert truth["elasticity"].is_between(-3.5, -0.5).all()
    assert truth["dispersion"].is_between(0.05, 0.3).all()
    assert (truth["origin"] == END).all()
    assert truth["launched_on"].to_list() == world.products["launched_on"].to_list()
    weekly = truth.select(f"weekly_{k}" for k in range(7)).to_numpy()
    np.testing.assert_allclose(np.log(weekly).mean(axis=1), 0.0, atol=1e-12)


def test_fixed_price_products_are_flagged(world: World) -> None:
    distinct = world.sales.group_by("product_id").agg(
        n_prices=pl.col("price").n_unique(), promo_days=pl.col("promo").sum()
    )
    joined = world.truth.join(distinct, on="product_id")
    assert (joined["price_varied"] == (joined["n_prices"] > 1)).all()
    fixed = joined.filter(~pl.col("price_varied"))
    assert 1 <= fixed.height <= N_PRODUCTS // 4
    assert (fixed["promo_days"] == 0).all()
    assert joined["price_varied"].sum() > N_PRODUCTS // 2


def test_some_products_launched_recently(world: World) -> None:
    history = (END - world.products["launched_on"]).dt.total_days() + 1
    short = history.filter(history < N_DAYS)
    assert 1 <= short.len() <= N_PRODUCTS // 4
    assert short.is_between(20, 120).all()


def test_promotions_cut_the_price(world: World) -> None:
    sales = world.sales
    assert 0.01 < sales["promo"].mean() < 0.2
    # The regular price around each promotion: the last non-promo price before and the next after.
    regular = pl.when(~pl.col("promo")).then(pl.col("price"))
    promo_days = sales.with_columns(
        before=regular.forward_fill().over("product_id"),
        after=regular.backward_fill().over("product_id"),
    ).filter(pl.col("promo") & pl.col("before").is_not_null() & pl.col("after").is_not_null())
    # The regular price may change during a promotion (at most once: changes are 60+ days apart).
    below = promo_days.select(pl.col("price") < pl.max_horizontal("before", "after")).to_series()
    assert below.all()
    steady = promo_days.filter(pl.col("before") == pl.col("after"))
    assert steady.height > 0
    ratio = steady["price"] / steady["before"]
    assert ratio.min() > 0.55 and ratio.max() < 0.95  # 10-30% off, snapped to .x9 endings


def test_stockouts_present_and_censored(sales_with_truth: pl.DataFrame) -> None:
    share = sales_with_truth["stockout"].mean()
    assert 0.005 < share < 0.05
    runs = (
        sales_with_truth.group_by("product_id")
        .agg(run=pl.col("stockout").rle())
        .explode("run")
        .unnest("run")
    )
    run_lengths = runs.filter(pl.col("value"))["len"]
    assert run_lengths.max() <= 10  # runs of 1-5 days, two runs may touch
    ratio = sales_with_truth.group_by("stockout").agg(
        sold_per_expected=pl.col("units").sum() / pl.col("true_mean").sum()
    )
    by_flag = dict(zip(ratio["stockout"], ratio["sold_per_expected"], strict=True))
    assert by_flag[True] < 0.5  # thinned to 0-50% of demand
    assert 0.9 < by_flag[False] < 1.1


def test_simulated_mean_matches_truth(world: World, sales_with_truth: pl.DataFrame) -> None:
    totals = (
        sales_with_truth.filter(~pl.col("stockout"))
        .join(world.truth.select("product_id", "dispersion"), on="product_id")
        .group_by("product_id")
        .agg(
            sold=pl.col("units").sum(),
            expected=pl.col("true_mean").sum(),
            # Negative-binomial variance of the sum: mu + dispersion * mu^2 per day.
            variance=(pl.col("true_mean") + pl.col("dispersion") * pl.col("true_mean") ** 2).sum(),
            days=pl.len(),
        )
        .filter(pl.col("expected") > 500)
    )
    z = (totals["sold"] - totals["expected"]) / totals["variance"].sqrt()
    assert z.abs().max() < 4.5
    long_history = totals.filter((pl.col("expected") > 2000) & (pl.col("days") >= 350))
    assert long_history.height >= 10
    relative_error = (long_history["sold"] / long_history["expected"] - 1).abs()
    assert relative_error.max() < 0.10


def test_true_daily_mean_zero_before_launch_and_positive_after(world: World) -> None:
    truth = world.truth
    launch = truth["launched_on"].to_numpy()
    dates = [END - datetime.timedelta(days=k) for k in range(N_DAYS + 30)][::-1]
    mean = true_daily_mean(truth, dates, truth["ref_price"].to_numpy())
    assert mean.shape == (N_PRODUCTS, len(dates))
    before = np.array(dates, dtype="datetime64[D]")[None, :] < launch[:, None]
    assert before.any()
    assert (mean[before] == 0).all() and (mean[~before] > 0).all()


def test_true_daily_mean_has_a_christmas_peak(world: World) -> None:
    truth = world.truth
    prices = truth["ref_price"].to_numpy()
    week = [datetime.timedelta(days=k) for k in range(7)]
    october = true_daily_mean(truth, [datetime.date(2026, 10, 18) + d for d in week], prices)
    december = true_daily_mean(truth, [datetime.date(2026, 12, 18) + d for d in week], prices)
    assert (december.sum(axis=1) > october.sum(axis=1)).all()


def test_true_expected_units_falls_with_price_and_matches_its_forms(world: World) -> None:
    truth = world.truth
    horizon = [END + datetime.timedelta(days=k) for k in range(1, 15)]
    ladder = truth["ref_price"].to_numpy()[:, None] * np.linspace(0.7, 1.5, 9)[None, :]
    units = true_expected_units(truth, horizon, ladder)
    assert units.shape == ladder.shape
    assert (np.diff(units, axis=1) < 0).all()
    for c in range(ladder.shape[1]):
        single = true_expected_units(truth, horizon, ladder[:, c])
        np.testing.assert_allclose(units[:, c], single, rtol=1e-12)
        daily = true_daily_mean(truth, horizon, ladder[:, c]).sum(axis=1)
        np.testing.assert_allclose(single, daily, rtol=1e-10)
    # Constant elasticity: the ratio of units equals the price ratio to the elasticity power.
    expected_ratio = (ladder[:, -1] / ladder[:, 0]) ** truth["elasticity"].to_numpy()
    np.testing.assert_allclose(units[:, -1] / units[:, 0], expected_ratio, rtol=1e-10)


def test_truth_functions_reject_mis_shaped_prices(world: World) -> None:
    with pytest.raises(ValueError, match="prices"):
        true_daily_mean(world.truth, [END], np.ones(3))
    with pytest.raises(ValueError, match="prices"):
        true_expected_units(world.truth, [END], np.ones((N_PRODUCTS, 2, 2)))


def test_generate_world_rejects_tiny_sizes() -> None:
    with pytest.raises(ValueError, match="n_products"):
        generate_world(n_products=0)
    with pytest.raises(ValueError, match="n_days"):
        generate_world(n_days=5)


def frame_digest(frame: pl.DataFrame) -> str:
    """A digest of a frame's names, types, nulls and values (bytes, not printed text)."""
    digest = hashlib.sha256()
    for name in frame.columns:
        column = frame[name]
        digest.update(name.encode())
        digest.update(str(column.dtype).encode())
        digest.update(column.is_null().to_numpy().astype(np.uint8).tobytes())
        if column.dtype == pl.String:
            digest.update("\x00".join(column.fill_null("").to_list()).encode())
        elif column.dtype == pl.Date:
            digest.update(column.cast(pl.Int32).fill_null(0).to_numpy().astype("<i4").tobytes())
        elif column.dtype == pl.Boolean:
            digest.update(column.fill_null(False).to_numpy().astype(np.uint8).tobytes())
        else:
            values = column.cast(pl.Float64).fill_null(0.0).to_numpy()
            digest.update(values.astype("<f8").tobytes())
    return digest.hexdigest()[:16]


# Digests of the demo world as `generate_world` drew it before the scenario suite existed
# (pipeline/synth.py at commit df8a0e8): products, sales, truth.
DEMO_DIGESTS = {
    (40, 400, 3): ("1eb241af38ad0565", "594eaaad45bfb901", "21eddb90cfbbc70f"),
    (15, 90, 1): ("3fcb96d20c9c82bd", "362ea7d32a9dd373", "77328b5e9aee943e"),
    (200, 730, 0): ("83371aea143972b7", "e3e73cb612d5138b", "0c257681428b6490"),
    (7, 30, 11): ("c9a403b3ad6f6c22", "2eb8ae78b97dd7da", "ba20e35671f96fec"),
}


@pytest.mark.parametrize("size", list(DEMO_DIGESTS))
def test_the_demo_world_is_bit_for_bit_what_it_always_was(size: tuple[int, int, int]) -> None:
    n_products, n_days, seed = size
    demo = synth.scaled(synth.SCENARIOS["demo"].spec, n_products, n_days)
    for world in (generate_world(n_products, n_days, seed), synth.generate(demo, seed)):
        digests = tuple(frame_digest(f) for f in (world.products, world.sales, world.truth))
        assert digests == DEMO_DIGESTS[size]


def test_the_demo_spec_is_the_default_spec() -> None:
    assert synth.SCENARIOS["demo"].spec == synth.WorldSpec()
    assert generate_world(12, 60, 5).spec == synth.WorldSpec(n_products=12, n_days=60)


@pytest.mark.parametrize(
    ("switches", "field"),
    [
        ({"n_products": 0}, "n_products"),
        ({"n_days": 29}, "n_days"),
        ({"regular_gap_days": (5, 40)}, "regular_gap_days"),
        ({"regular_gap_days": (30, 10)}, "regular_gap_days"),
        ({"launch_history": (0, 10)}, "launch_history"),
        ({"stockout_run_max": 0}, "stockout_run_max"),
        ({"fixed_price_share": 1.5}, "fixed_price_share"),
        ({"endogenous_share": -0.1}, "endogenous_share"),
        ({"promo_lift": (0.4, 0.1)}, "promo_lift"),
        ({"elasticity": (-2.0, 0.5)}, "elasticity"),
        ({"dispersion": (0.0, 1.0)}, "dispersion"),
        ({"stockout_rate": (0.1, 0.9)}, "stockout_rate"),
        ({"peaks": ("christmas", "diwali")}, "peaks"),
    ],
)
def test_world_spec_rejects_bad_values_naming_the_field(switches: dict, field: str) -> None:
    with pytest.raises(synth.SpecError, match=f"WorldSpec.{field}"):
        synth.WorldSpec(**switches)


def test_unknown_scenarios_are_named_with_the_known_ones() -> None:
    with pytest.raises(synth.UnknownScenarioError, match="known: demo, promo_lift"):
        synth.scenario("hotel")
    assert synth.scenario("endogenous").spec.endogenous_share > 0
