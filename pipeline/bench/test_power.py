"""`pricing bench test-power`: what one price test can teach, on worlds that know the truth.

A price test (`pipeline.pricing.explore`) moves a product's price so that its elasticity
becomes identified: its own ~90% interval narrower than `explore_width`. Whether one test of
`explore_phases` x `explore_min_days` days can do that depends on the product's sales and their
noise, and on how far the test moves the price. This benchmark measures it with the estimator
the forecaster uses (`stats.regression_elasticities`, the product's own estimate before any
pooling) on a synthetic world: its history as generated, then one test on every product
appended, its sales drawn from the world's true demand and noise (`synth.market`) on the same
days' events for every design (common random numbers).

Designs (price offsets from today's price, one per phase of `explore_min_days` days):

- `configured`: the engine's test, a step of `explore_step` and back, alternating;
- `double_step`: the same with twice the step;
- `symmetric`: a step up and a step down of `explore_step`, alternating (twice the spread at
  the same distance from today's price);
- `none`: no test (the days at today's price), the reference.

Offsets are exact fractions: the engine's ladder rounds a step to a price ending, which can make
it larger. For each design the JSON gives (`results`), for the products whose history never
moved their regular price (`never_moved`: those a test is for) and for all products, by their
expected units a day: how many the test identified, the median standard error, the interval's
coverage of the truth, and, for `never_moved`, the days of testing the median product would need
at that design (the standard error falls as the square root of the days).

What each world's history allows whatever the method (`pipeline.bench.floors`), over the
products the suite scores: `history_bound` and `oracle_bound`, the elasticity error the
regression's standard errors imply and the least any estimator could reach; `capture_reach`,
the profit capture of the engine fed the truth, or estimates at that floor, under the trust
region and without it.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass

import numpy as np
import polars as pl

from pipeline.arrays import Z90
from pipeline.bench import floors
from pipeline.config import PricingConfig
from pipeline.evaluate.figures import percent, rounded
from pipeline.features import build_panel, calendar_features
from pipeline.pricing.reach import reach_width
from pipeline.simulate.loop import SimConfig, world_of
from pipeline.stats import (
    IDENTIFIED_BOTH,
    IDENTIFIED_REGULAR,
    identification,
    regression_elasticities,
)
from pipeline.synth import market as mk

# Expected units a day at today's price: the bands the results are split by (lower bounds).
VOLUME_BANDS = ((0.0, "<3"), (3.0, "3-10"), (10.0, "10-30"), (30.0, ">=30"))


@dataclass(frozen=True)
class Design:
    """A test design: the price offset (fraction of today's price) of each phase."""

    name: str
    offsets: tuple[float, ...]


def designs(cfg: PricingConfig) -> list[Design]:
    """The configured test and the alternatives measured beside it."""
    step, phases = cfg.explore_step, cfg.explore_phases
    alternate = tuple(step if k % 2 == 0 else 0.0 for k in range(phases))
    return [
        Design("configured", alternate),
        Design("double_step", tuple(2 * o for o in alternate)),
        Design("symmetric", tuple(step if k % 2 == 0 else -step for k in range(phases))),
        Design("none", (0.0,) * phases),
    ]


def run(scenario: str, products: int, seeds: list[int], cfg: PricingConfig) -> dict:
    """Every design on every seed's world; per-seed figures and their medians over the seeds.

    Args:
        scenario: the world's scenario (`synth.SCENARIOS`).
        products: products per world.
        seeds: the worlds' seeds.
        cfg: pricing rules (`explore_step`, `explore_phases`, `explore_min_days`,
            `explore_width`).
    """
    started = time.perf_counter()
    per_seed = [_one_world(scenario, products, seed, cfg) for seed in seeds]
    rows = pl.concat([r for r, _ in per_seed])
    summary = _summary(rows, cfg)
    return {
        "benchmark": "test-power",
        "scenario": scenario,
        "products": products,
        "seeds": seeds,
        "test_days": cfg.explore_phases * cfg.explore_min_days,
        "explore_width": cfg.explore_width,
        "designs": {d.name: list(d.offsets) for d in designs(cfg)},
        "results": summary,
        **floors.bounds(rows.filter(pl.col("design") == "none")),
        "capture_reach": floors.median_captures([c for _, c in per_seed]),
        "seconds": round(time.perf_counter() - started, 1),
    }


def _one_world(
    scenario: str, products: int, seed: int, cfg: PricingConfig
) -> tuple[pl.DataFrame, dict]:
    """One row per design and product (the own estimate after the test, and the truth), and
    the world's `floors.capture_reach`."""
    world = world_of(SimConfig(products=products, seed=seed, scenario=scenario))
    market = mk.market_of(world.truth, world.products, world.sales)
    ids = market.product_ids
    catalogue = world.products.sort("product_id")
    shelf = catalogue["current_price"].to_numpy().astype(np.float64)
    groups = catalogue["category"].to_numpy()
    first = world.sales["ds"].max() + dt.timedelta(days=1)
    n_days = cfg.explore_phases * cfg.explore_min_days
    days = [first + dt.timedelta(days=k) for k in range(n_days)]
    rng = np.random.default_rng(seed)
    state = mk.start_events(len(ids))
    events = [mk.draw_events(market, state, day, rng) for day in days]
    history = build_panel(world.sales, ids, first)
    moved_before = np.isin(identification(history), [IDENTIFIED_REGULAR, IDENTIFIED_BOTH])
    scored = floors.scored_products(
        moved_before, history.n_observed, world.truth.sort("product_id")
    )
    oracle_se = floors.oracle_se(market, history, floors.lift_spread(market, groups))
    products_frame = pl.DataFrame(
        {
            "product_id": ids,
            "truth": market.demand.elasticity,
            "volume": np.mean([mk.expected_units(market, e, shelf) for e in events], axis=0),
            "moved_before": moved_before,
            "scored": scored,
            "category": groups,
            "varied_before": np.asarray(history.price_varied, dtype=bool),
            "dispersion": market.dispersion,
            "history_days": (history.observed & ~history.stockout).sum(axis=1),
            "oracle_se": oracle_se,
            **floors.elasticity_law(world.spec, groups, market.demand.elasticity),
        }
    )
    frames = []
    for design in designs(cfg):
        offsets = np.repeat(np.asarray(design.offsets), cfg.explore_min_days)
        rows = [
            mk.draw_sales(market, e, shelf * (1 + o)) for e, o in zip(events, offsets, strict=True)
        ]
        sales = pl.concat([world.sales, *rows], how="diagonal_relaxed")
        panel = build_panel(sales, ids, days[-1] + dt.timedelta(days=1))
        fit = regression_elasticities(panel, calendar_features(panel.start, panel.n_days), groups)
        frames.append(
            products_frame.with_columns(
                pl.lit(seed).alias("seed"),
                pl.lit(design.name).alias("design"),
                pl.lit(_alternating_step(design), pl.Float64).alias("step"),
                pl.Series("estimate", fit.raw_elasticity),
                pl.Series("se", fit.raw_se),
            )
        )
    # Only products on sale every day of the test (the same days whatever the prices).
    on_sale = pl.concat(rows).group_by("product_id").len().filter(pl.col("len") == n_days)
    rows = pl.concat(frames).join(on_sale.select("product_id"), on="product_id", how="semi")
    return rows, floors.capture_reach(world, market, oracle_se, scored, seed, cfg)


def _alternating_step(design: Design) -> float | None:
    """The step of a design that alternates a step and today's price (as the engine's test does)."""
    steps, bases = design.offsets[::2], design.offsets[1::2]
    alternates = len(set(steps)) == 1 and steps[0] != 0 and not any(bases)
    return steps[0] if alternates else None


def _summary(rows: pl.DataFrame, cfg: PricingConfig) -> list[dict]:
    """Per design, population and volume band (and all bands): medians over seeds of the
    per-seed figures. Populations: `never_moved` (the products whose history never moved their
    regular price, those a test is for) and `all`."""
    n_days = cfg.explore_phases * cfg.explore_min_days
    width = 2 * Z90 * pl.col("se")
    band = pl.lit(VOLUME_BANDS[0][1])
    for low, label in VOLUME_BANDS[1:]:
        band = pl.when(pl.col("volume") >= low).then(pl.lit(label)).otherwise(band)
    rows = rows.with_columns(band.alias("units_a_day"), pl.lit("all").alias("population"))
    rows = pl.concat(
        [
            rows,
            rows.filter(~pl.col("moved_before")).with_columns(
                pl.lit("never_moved").alias("population")
            ),
        ]
    )
    rows = pl.concat([rows, rows.with_columns(pl.lit("all").alias("units_a_day"))])
    # What the engine predicts before a test (`reach.reach_width`), from the true units and
    # dispersion: for products whose test is all their evidence, and designs it covers.
    predicted = reach_width(
        pl.col("volume"), pl.col("dispersion"), pl.col("step"), pl.col("history_days"),
        pl.lit(None, pl.Float64), cfg,
    ) / (2 * Z90)  # fmt: skip
    rows = rows.with_columns(
        pl.when(pl.col("population") == "never_moved").then(predicted).alias("predicted_se")
    )
    keys = ("design", "population", "units_a_day")
    per_seed = rows.group_by(*keys, "seed").agg(
        pl.len().alias("products"),
        (width < cfg.explore_width).mean().alias("identified"),
        pl.col("se").median().alias("median_se"),
        pl.col("predicted_se").median().alias("predicted_se"),
        ((pl.col("estimate") - pl.col("truth")).abs() <= Z90 * pl.col("se")).mean()
        .alias("coverage"),
        (n_days * (width / cfg.explore_width) ** 2).median().alias("days_needed"),
    )  # fmt: skip
    # Days needed scale a test's own days: only where the test is all the product's evidence.
    scaled = (pl.col("design") != "none") & (pl.col("population") == "never_moved")
    per_seed = per_seed.with_columns(
        pl.when(scaled).then(pl.col("days_needed")).alias("days_needed")
    )
    order = {d.name: k for k, d in enumerate(designs(cfg))}
    bands = {label: k for k, (_, label) in enumerate(VOLUME_BANDS)} | {"all": len(VOLUME_BANDS)}
    table = (
        per_seed.group_by(*keys)
        .agg(
            pl.col("products").sum(),
            *[
                pl.col(c).median()
                for c in ("identified", "median_se", "predicted_se", "coverage", "days_needed")
            ],
        )
        .sort(
            pl.col("population").replace_strict({"never_moved": 0, "all": 1}),
            pl.col("design").replace_strict(order),
            pl.col("units_a_day").replace_strict(bands),
        )
    )
    return [{k: _number(v) for k, v in row.items()} for row in table.to_dicts()]


def _number(value: object) -> object:
    """Floats rounded for the JSON; an infinite or undefined one (no test) as null."""
    return rounded(value) if isinstance(value, float) else value


def table(result: dict) -> str:
    """The summary as a terminal table: one line per population, design and band."""
    head = (
        f"{result['test_days']}-day test, {result['scenario']} x seeds {result['seeds']}, "
        f"identified: own 90% interval < {result['explore_width']}"
    )
    titles = ("population", "design", "units/day", "products", "identified", "median se",
              "predicted", "coverage", "days needed")  # fmt: skip
    widths = (11, 12, 9, 8, 10, 9, 9, 8, 11)
    pairs = enumerate(zip(titles, widths, strict=True))
    lines = [head, " ".join(t.ljust(w) if k < 2 else t.rjust(w) for k, (t, w) in pairs)]
    for row in result["results"]:
        days = "-" if row["days_needed"] is None else f"{row['days_needed']:,.0f}"
        cells = (
            row["population"].ljust(11),
            row["design"].ljust(12),
            row["units_a_day"].rjust(9),
            f"{row['products']:>8}",
            f"{row['identified']:>10.0%}",
            f"{row['median_se']:>9.2f}",
            "-".rjust(9) if row["predicted_se"] is None else f"{row['predicted_se']:>9.2f}",
            f"{row['coverage']:>8.0%}",
            days.rjust(11),
        )
        lines.append(" ".join(cells))
    for key, label in (("history_bound", "regression"), ("oracle_bound", "oracle")):
        bound = result[key]
        lines.append(
            f"history alone, {label}: median standard error {bound['median_se']:.3f}, true "
            f"elasticities' spread in a category {bound['prior_sd']:.3f}, median absolute "
            f"error {bound['mae_bound']:.3f} ({bound['products']} product-worlds)"
        )
    labels = {
        "cautious": "told the truth, trust region",
        "floor": "estimates at the oracle's error, trust region",
        "floor_no_trust": "estimates at the oracle's error, no trust region",
    }
    for arm, label in labels.items():
        figures = result["capture_reach"][arm]
        lines.append(
            f"engine {label}: capture {percent(figures['capture'])}, on the estimate "
            f"{percent(figures['capture_priced'])}, against the cautious oracle "
            f"{percent(figures['capture_cautious'])}"
        )
    return "\n".join(lines)
