"""The closed loop: every night each policy prices the day, the world answers, history grows.

Policies (`ARMS`): `engine` (the night of `pipeline.night`, models retrained on the configured
cadence, with the configured price tests), `engine_off` (the same with `explore = "off"`),
`loglog` (the log-log baseline priced by the same engine), `oracle` (the same engine fed the true
demand over the horizon, so it too moves at most the maximum change per run), `cautious` (the
oracle under the engine's evidence rules as well: the true curves priced within the trust region
of the prices its own shelf has sold at; a true elasticity of -1 or above walks it one step at a
time, as the engine's do once a price test found them inelastic, `cautious_config`) and
`keep` (today's prices kept). The gap between `oracle` and `cautious` is what the evidence rules
cost on a world whose true curves hold at every price; the gap between `cautious` and `engine` is
what learning the curves costs. Each learning policy has its own history: it learns only from
the sales its own prices made. Every policy meets the same day's promotions, stockouts and noise
(common random numbers, `market.draw_events`).
"""

from __future__ import annotations

import datetime as dt
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from pipeline import night, pricing, synth
from pipeline.config import PricingConfig, Settings
from pipeline.contract import STATUS_GATE_FAILED, STATUS_TRAINED
from pipeline.evaluate import loglog_table, true_demand
from pipeline.features import price_seen_range
from pipeline.pricing import explore
from pipeline.pricing.ladder import HALF_CENT, ending_extremes
from pipeline.pricing.limits import Endings
from pipeline.synth import market as mk

ARMS = ("engine", "engine_off", "loglog", "oracle", "cautious", "keep")
ENGINE_ARMS = ("engine", "engine_off")
# Policies whose prices depend on the sales they made (their history grows night by night).
HISTORY_ARMS = (*ENGINE_ARMS, "loglog", "cautious")


@dataclass(frozen=True)
class SimConfig:
    """A simulation: the world, how many nights, and which policies run.

    Attributes:
        nights: simulated nights (days priced and sold).
        products: products in the world.
        days: days of history before the first night.
        scenario: the world's scenario name (`synth.SCENARIOS`).
        seed: the world's and the market's seed.
        arms: the policies to run (a subset of `ARMS`; `engine` always runs).
    """

    nights: int = 56
    products: int = 200
    days: int = 730
    scenario: str = "demo"
    seed: int = 0
    arms: tuple[str, ...] = ARMS


@dataclass
class _Arm:
    """One policy's shelf, history and (for the engine) models and price-test history."""

    name: str
    products: pl.DataFrame
    sales: pl.DataFrame
    settings: Settings | None = None
    versions: pl.DataFrame | None = None
    tests: pl.DataFrame = field(default_factory=explore.no_tests)
    last_recs: pl.DataFrame | None = None


def world_of(cfg: SimConfig) -> synth.World:
    """The world a simulation runs on: the scenario scaled to its size, shelf at regular prices."""
    spec = synth.scaled(synth.scenario(cfg.scenario).spec, cfg.products, cfg.days)
    world = synth.generate(spec, cfg.seed)
    return replace(world, products=_regular_shelf(world.products, world.sales))


def _regular_shelf(products: pl.DataFrame, sales: pl.DataFrame) -> pl.DataFrame:
    """The catalogue with each product's shelf price at its regular price.

    A world's history can end in a promotion, and its catalogue then carries the promotional
    price as today's (`synth.catalogue.products_frame`). The loop's market runs promotions on top
    of the shelf price (`market.paid_prices`), so a shelf left at a promotional price would be
    cut again by every later promotion and kept as a regular price by every policy. The shelf
    starts instead at the price of each product's last day without a promotion (today's price
    where it never had one), inside its guardrails.
    """
    regular = (
        sales.filter(~pl.col("promo").fill_null(False))
        .sort("ds")
        .group_by("product_id")
        .agg(pl.col("price").last().alias("_regular"))
    )
    shelf = pl.coalesce("_regular", "current_price")
    low = pl.coalesce("min_price", shelf)
    high = pl.coalesce("max_price", shelf)
    return (
        products.join(regular, on="product_id", how="left")
        .with_columns(pl.min_horizontal(pl.max_horizontal(shelf, low), high).alias("current_price"))
        .drop("_regular")
    )


def _engine_settings(settings: Settings, folder: Path, name: str) -> Settings:
    pricing_cfg = settings.pricing
    if name == "engine_off":
        pricing_cfg = replace(pricing_cfg, explore="off")
    return replace(settings, warehouse=folder / name / "pricing.duckdb", pricing=pricing_cfg)


def _latest_versions(old: pl.DataFrame | None, new: pl.DataFrame) -> pl.DataFrame:
    both = new if old is None else pl.concat([old, new], how="diagonal_relaxed")
    return both.sort("trained_at").unique("product_id", keep="last").sort("product_id")


def _engine_night(arm: _Arm, day: dt.date, shared: dict[str, night.Models] | None) -> pl.DataFrame:
    """The night of `pipeline.night` as of `day` on the arm's own history.

    `shared` (None: train alone) holds the night's models of an engine arm whose history and
    models are identical to this one's (`_twins`): training the same data twice would give the
    same models, so the first arm trains and the second reuses its models.
    """
    assert arm.settings is not None
    inputs = night.inputs_from_frames(
        arm.products, arm.sales, as_of=day, versions=arm.versions,
        plausible_until=day - dt.timedelta(days=1), price_tests=arm.tests,
    )  # fmt: skip
    prepared = night.prepare_night(inputs)
    run_id = str(uuid.uuid4())
    # Training time is the simulated night's, so models age on the simulated calendar.
    trained_at = dt.datetime.combine(day, dt.time(2))
    run = night.RunInfo(run_id, f"{day:%Y%m%d}-{run_id[:8]}", trained_at)
    if shared is not None and "models" in shared:
        models = shared["models"]
    else:
        plan = night.plan_training(prepared, arm.settings, run, force=False)
        models = night.train_models(prepared, plan, arm.settings)
        if shared is not None:
            shared["models"] = models
    outputs = night.price_night(prepared, models, arm.settings, run)
    if outputs.model_versions.height:
        arm.versions = _latest_versions(arm.versions, outputs.model_versions)
    recs = outputs.recommendations
    assert recs is not None
    rows = recs.filter(pl.col("test_status").is_not_null()).with_columns(
        pl.lit(day).alias("effective_date")
    )
    if rows.height:
        state = pl.concat([arm.tests, rows.select(explore.STATE_COLUMNS)], how="vertical_relaxed")
        arm.tests = state.unique("product_id", keep="last").sort("product_id")
    return recs


def _twins(arms: list[_Arm]) -> bool:
    """Whether the engine arms have the same history and the same models (so far)."""
    engines = [a for a in arms if a.name in ENGINE_ARMS]
    if len(engines) < 2:
        return False
    first, second = engines
    if not first.sales.equals(second.sales):
        return False
    if first.versions is None or second.versions is None:
        return first.versions is None and second.versions is None
    same = ["product_id", "trained_at", "artefact"]
    return first.versions.select(same).equals(second.versions.select(same))


def _policy_night(arm: _Arm, day: dt.date, truth: pl.DataFrame, settings: Settings) -> pl.DataFrame:
    """Tonight's recommendations of a policy that does not train (loglog, the oracles, keep)."""
    active = arm.products.filter(pl.col("is_active"))
    if arm.name == "keep":
        return active.select("product_id", pl.col("current_price").alias("recommended_price"))
    horizon = settings.model.horizon
    history = arm.sales.filter(pl.col("ds") < day)
    if arm.name in ("oracle", "cautious"):
        table = true_demand(truth.join(active, on="product_id", how="semi"), day, horizon)
        if arm.name == "oracle":
            # The oracle knows the true curves: the rules about evidence (trust region, inelastic
            # holds) go.
            return pricing.recommend(active, table, pricing.oracle_config(settings.pricing))
        # The cautious oracle keeps them: its trust region is the prices its shelf sold at.
        table = table.join(price_seen_range(history), on="product_id", how="left")
        return pricing.recommend(active, table, cautious_config(settings.pricing))
    table = loglog_table(history, active, horizon, settings.model.min_history_days)
    return pricing.recommend(active, table, settings.pricing)


def cautious_config(cfg: PricingConfig) -> PricingConfig:
    """The cautious oracle's rules: the engine's, for a product whose elasticity is identified.

    It knows every elasticity, so where the engine lets a price test's finding walk an
    inelastic product (`inelastic_walk`, with tests on) it walks every inelastic product, one
    trust-region step at a time; otherwise inelastic products stay within the prices sold at.
    """
    walks = cfg.inelastic_walk and cfg.explore != "off"
    return replace(cfg, hold_inelastic=False) if walks else cfg


def _put_on_shelf(arm: _Arm, recs: pl.DataFrame) -> np.ndarray:
    """The recommended prices become the arm's current prices; returns them in product order."""
    new = dict(zip(recs["product_id"], recs["recommended_price"], strict=True))
    arm.products = arm.products.with_columns(
        pl.col("product_id")
        .replace_strict(new, default=None, return_dtype=pl.Float64)
        .fill_null(pl.col("current_price"))
        .alias("current_price")
    )
    return arm.products.sort("product_id")["current_price"].to_numpy()


def _day_figures(
    arm: _Arm,
    market: mk.Market,
    events: mk.DayEvents,
    shelf: np.ndarray,
    recs: pl.DataFrame,
    before: np.ndarray,
    top: np.ndarray,
) -> dict[str, Any]:
    """Sell the day at the shelf prices; the arm's realised and expected profit and changes."""
    sales = mk.draw_sales(market, events, shelf)
    if arm.name in HISTORY_ARMS:
        arm.sales = pl.concat([arm.sales, sales], how="vertical_relaxed")
    paid = mk.paid_prices(shelf, events)
    expected = mk.expected_units(market, events, shelf)
    on_sale = np.isin(np.asarray(market.product_ids), sales["product_id"].to_numpy())
    margin = np.where(on_sale, paid - market.unit_cost, 0.0)
    sold = dict(zip(sales["product_id"], sales["units"], strict=True))
    units = np.array([sold.get(pid, 0.0) for pid in market.product_ids])
    profit = margin * expected
    figures: dict[str, Any] = {
        "expected_profit": float(profit.sum()),
        # The products whose true elasticity is below -1: their best price is inside the range.
        "expected_profit_elastic": float(profit[market.demand.elasticity < -1].sum()),
        "realised_profit": float((margin * units).sum()),
        "price_changes": int((np.abs(shelf - before) > 1e-9).sum()),
        # Shelf prices at the highest allowed ending under max_price: where walks end.
        "at_max_price": int((shelf >= top - HALF_CENT).sum()),
    }
    if arm.name in ENGINE_ARMS and "test_status" in recs.columns:
        figures["testing"] = int((recs["test_status"] == explore.TESTING).sum())
        figures["tests_finished"] = int(
            recs["test_status"].is_in([explore.IDENTIFIED, explore.STOPPED]).sum()
        )
        figures["identified"] = _identified(arm)
    return figures


def _top_prices(products: pl.DataFrame, settings: Settings) -> np.ndarray:
    """Each product's highest allowed ending at or below its max_price, in product order (inf
    where none): the world's max_price is fixed, so this is computed once per simulation."""
    top = products.sort("product_id")["max_price"].cast(pl.Float64).to_numpy()
    endings = Endings.uniform(settings.pricing.price_endings, top.shape[0])
    _, highest = ending_extremes(top / 2, top, endings)
    return np.nan_to_num(highest, nan=np.inf)


def _identified(arm: _Arm) -> int:
    """Products whose latest model has its own interval narrower than explore_width.

    Its own interval: trained or gate_failed (a gate failure keeps its own elasticity), as a
    price test counts a product identified (`pricing.explore`).
    """
    if arm.versions is None or arm.settings is None:
        return 0
    width = pl.col("elasticity_hi") - pl.col("elasticity_lo")
    own = pl.col("status").is_in([STATUS_TRAINED, STATUS_GATE_FAILED])
    ok = own & (width < arm.settings.pricing.explore_width)
    return int(arm.versions.filter(ok).height)


def simulate(
    cfg: SimConfig,
    settings: Settings,
    on_night: Callable[[dict[str, Any]], None] | None = None,
    workdir: Path | None = None,
) -> dict[str, Any]:
    """Run the closed loop and return every night's figures per policy.

    Args:
        cfg: the world, the nights and the policies.
        settings: model, pricing and run settings (the engine's; `engine_off` turns tests off).
        on_night: called after each night with its record (progress, the terminal table).
        workdir: where models are saved (default: a temporary folder, removed afterwards).

    Returns:
        {"config": ..., "nights": [per-night records], "seconds": wall time}.
    """
    world = world_of(cfg)
    market = mk.market_of(world.truth, world.products, world.sales)
    with tempfile.TemporaryDirectory(prefix="pricing-sim-") as tmp:
        folder = Path(workdir or tmp)
        arms = _arms(cfg, world, settings, folder)
        return _run(cfg, world, market, arms, settings, on_night)


def _arms(cfg: SimConfig, world: synth.World, settings: Settings, folder: Path) -> list[_Arm]:
    names = ["engine", *[a for a in cfg.arms if a != "engine" and a in ARMS]]
    return [
        _Arm(
            name,
            world.products,
            world.sales,
            settings=_engine_settings(settings, folder, name) if name in ENGINE_ARMS else None,
        )
        for name in names
    ]


def _run(
    cfg: SimConfig,
    world: synth.World,
    market: mk.Market,
    arms: list[_Arm],
    settings: Settings,
    on_night: Callable[[dict[str, Any]], None] | None,
) -> dict[str, Any]:
    start = time.perf_counter()
    first = world.sales["ds"].max() + dt.timedelta(days=1)
    state = mk.start_events(len(market.product_ids))
    rng = np.random.default_rng([cfg.seed, 12])
    nights, twins = [], True
    top = _top_prices(world.products, settings)
    for k in range(cfg.nights):
        day = first + dt.timedelta(days=k)
        events = mk.draw_events(market, state, day, rng)
        record: dict[str, Any] = {"night": k + 1, "day": day.isoformat()}
        # Until their first different price (a test's), the engine arms share their training.
        twins = twins and _twins(arms)
        shared: dict[str, night.Models] | None = {} if twins else None
        for arm in arms:
            tick = time.perf_counter()
            before = arm.products.sort("product_id")["current_price"].to_numpy()
            if arm.name in ENGINE_ARMS:
                recs = _engine_night(arm, day, shared)
            else:
                recs = _policy_night(arm, day, world.truth, settings)
            shelf = _put_on_shelf(arm, recs)
            record[arm.name] = _day_figures(arm, market, events, shelf, recs, before, top)
            record[arm.name]["seconds"] = round(time.perf_counter() - tick, 2)
        nights.append(record)
        if on_night is not None:
            on_night(record)
    config = {**cfg.__dict__, "arms": [a.name for a in arms]}
    return {"config": config, "nights": nights, "seconds": round(time.perf_counter() - start, 1)}
