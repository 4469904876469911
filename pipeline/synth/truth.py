"""The truth frame of a synthetic world: every parameter of its demand, one row per product."""

from __future__ import annotations

import numpy as np
import polars as pl

from pipeline.synth import features
from pipeline.synth import spec as specs
from pipeline.synth.catalogue import CATEGORIES, Catalogue, category_names
from pipeline.synth.demand import WEEKDAY_COLUMNS
from pipeline.synth.prices import Prices
from pipeline.synth.spec import WorldSpec


def draw_truth(
    rng: np.random.Generator,
    seed: int,
    spec: WorldSpec,
    catalogue: Catalogue,
    prices: Prices,
    launch: np.ndarray,
    days: np.ndarray,
    ids: pl.Series,
    latent: features.Latent | None,
) -> pl.DataFrame:
    """The demo world's parameters drawn from `rng`, then the switched-on features' own.

    The demo columns come first, in the demo's order; a feature adds its columns only when it is
    on, so the demo world's truth is exactly what it always was.
    """
    base = _base_truth(rng, spec, catalogue, prices, launch, days, ids)
    return pl.DataFrame(_with_features(base, seed, spec, catalogue, launch, days, latent))


def _base_truth(
    rng: np.random.Generator,
    spec: WorldSpec,
    catalogue: Catalogue,
    prices: Prices,
    launch: np.ndarray,
    days: np.ndarray,
    ids: pl.Series,
) -> dict[str, object]:
    n = ids.len()
    category = catalogue.category
    weekly = np.array([c.weekly for c in CATEGORIES])[category] + rng.normal(0.0, 0.04, (n, 7))
    weekly -= weekly.mean(axis=1, keepdims=True)  # geometric mean 1: log_base is the week's level
    summer_lo, summer_hi = np.array([c.summer_uplift for c in CATEGORIES])[category].T
    launched = np.arange(days.size)[None, :] >= launch[:, None]
    paid_max = np.where(launched, prices.paid, -np.inf).max(axis=1)
    paid_min = np.where(launched, prices.paid, np.inf).min(axis=1)
    # The uniform draws take one number each whatever their bounds, so the bounds are switches
    # that leave the rest of the stream, and of the world, as it was.
    return {
        "product_id": ids,
        "category": category_names(category),
        "elasticity": rng.uniform(*spec.elasticity, n),
        "ref_price": prices.regular[np.arange(n), launch],  # the first regular price
        "dispersion": rng.uniform(*spec.dispersion, n),
        "price_varied": paid_max > paid_min,
        "launched_on": pl.Series(days[launch], dtype=pl.Date),
        "origin": pl.Series(np.full(n, days[-1]), dtype=pl.Date),
        # Level at the origin (end of history) on an average weekday outside the seasons.
        "log_base": rng.uniform(np.log(0.3), np.log(150.0), n),
        "trend_per_day": rng.uniform(-0.30, 0.40, n) / 365.25,
        **{name: np.exp(weekly[:, k]) for k, name in enumerate(WEEKDAY_COLUMNS)},
        "holiday_log_peak": np.log1p(rng.uniform(0.30, 0.80, n)),
        "holiday_log_dip": np.log1p(-rng.uniform(0.10, 0.25, n)),
        "summer_log_peak": np.log1p(rng.uniform(summer_lo, summer_hi)),
        "stockout_rate": rng.uniform(*spec.stockout_rate, n),
    }


def _with_features(
    truth: dict[str, object],
    seed: int,
    spec: WorldSpec,
    catalogue: Catalogue,
    launch: np.ndarray,
    days: np.ndarray,
    latent: features.Latent | None,
) -> dict[str, object]:
    """The base columns changed and extended by the features `spec` switches on."""
    out = dict(truth)
    n = spec.n_products
    if spec.elasticity_by_category:
        out["elasticity"] = features.clustered_elasticities(
            seed, catalogue.category, len(CATEGORIES), spec.elasticity
        )
    if specs.CHRISTMAS not in spec.peaks:
        out["holiday_log_peak"], out["holiday_log_dip"] = np.zeros(n), np.zeros(n)
    if specs.SUMMER not in spec.peaks:
        out["summer_log_peak"] = np.zeros(n)
    out |= features.peak_columns(seed, spec)
    if spec.slow_mover_share > 0:
        slow, log_level = features.slow_movers(seed, spec)
        out["log_base"] = np.where(slow, log_level, out["log_base"])
        out["slow_mover"] = slow
    if spec.has_promo_lift:
        out["promo_lift"] = features.promo_lifts(seed, spec)
    if spec.trend_break_share > 0:
        out |= features.break_columns(seed, spec, launch, days)
    if spec.delisted_share > 0:
        out["delisted_on"] = features.delisted_column(seed, spec, launch, days)
    if latent is not None:
        out |= latent.columns()
    return out
