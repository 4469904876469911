"""The switchable features of a synthetic world, each drawn from a random stream of its own.

A feature's stream is seeded by the world's seed and the feature's number, so switching one
feature on changes nothing the others draw (see spec.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from pipeline.synth import spec as specs
from pipeline.synth.demand import LATENT_WAVES, latent_columns
from pipeline.synth.spec import WorldSpec

_STREAMS = {
    "moves": 1, "launches": 2, "promo_lift": 3, "latent": 4, "peaks": 5, "breaks": 6,
    "delisted": 7, "slow": 8, "elasticity": 9, "stockouts": 10, "costs": 11,
}  # fmt: skip
_DELIST_TAIL_DAYS = (14, 120)
_DELIST_MIN_HISTORY = 150  # only products with this much history stop selling
_SLOW_LEVEL = (0.05, 1.0)  # units a day of a slow mover at its reference price
_CATEGORY_SPREAD = 0.25  # sd of elasticities around their category's mean


def _dates_or_null(keep: np.ndarray, dates: np.ndarray) -> pl.Series:
    """A Date series: `dates` where `keep`, null elsewhere."""
    return pl.Series(np.where(keep, dates, np.datetime64("NaT", "D")), dtype=pl.Date)


def stream(seed: int, feature: str) -> np.random.Generator:
    """The random stream of one feature of the world drawn with `seed`."""
    return np.random.default_rng([seed, _STREAMS[feature]])


def draw_launch_index(
    rng: np.random.Generator, n_products: int, n_days: int, share: float, history: tuple[int, int]
) -> np.ndarray:
    """Index of each product's first sales day: most have the full history, `share` are recent."""
    low, high = history
    days = rng.integers(low, max(min(high, n_days), low) + 1, n_products)
    recent = rng.random(n_products) < share
    return np.where(recent, np.maximum(n_days - days, 0), 0)


def launch_index(rng: np.random.Generator, spec: WorldSpec, seed: int) -> np.ndarray:
    """Launch days: the demo draw from `rng`, redrawn from the launch stream when switched."""
    demo = draw_launch_index(
        rng, spec.n_products, spec.n_days, specs.DEMO_LAUNCH_SHARE, specs.DEMO_LAUNCH_HISTORY
    )
    if (spec.launch_share, spec.launch_history) == (
        specs.DEMO_LAUNCH_SHARE,
        specs.DEMO_LAUNCH_HISTORY,
    ):
        return demo
    return draw_launch_index(
        stream(seed, "launches"), spec.n_products, spec.n_days, spec.launch_share,
        spec.launch_history,
    )  # fmt: skip


@dataclass(frozen=True)
class Latent:
    """Latent demand and the prices that follow it.

    Attributes:
        endogenous: [P] bool, the price follows the latent demand.
        response: [P] log price change per unit of latent log demand (0 where exogenous).
        amp, period, phase: [P, W] the waves (every product has them; only the endogenous
            products' prices follow them).
    """

    endogenous: np.ndarray
    response: np.ndarray
    amp: np.ndarray
    period: np.ndarray
    phase: np.ndarray

    def columns(self) -> dict[str, np.ndarray]:
        """The truth columns that record it."""
        out: dict[str, np.ndarray] = {
            "endogenous": self.endogenous,
            "price_response": self.response,
        }
        for k in range(LATENT_WAVES):
            amp, period, phase = latent_columns(k + 1)
            out |= {amp: self.amp[:, k], period: self.period[:, k], phase: self.phase[:, k]}
        return out


def draw_latent(seed: int, spec: WorldSpec, fixed_price: np.ndarray) -> Latent | None:
    """Waves of 0.10-0.25 in log demand with periods of 30-90 and 120-300 days; prices of the
    endogenous products (never fixed-price ones) respond with 0.3-0.6 of the wave."""
    if not spec.has_latent_demand:
        return None
    rng, n = stream(seed, "latent"), spec.n_products
    endogenous = (rng.random(n) < spec.endogenous_share) & ~fixed_price
    response = np.where(endogenous, rng.uniform(0.3, 0.6, n), 0.0)
    amp = rng.uniform(0.10, 0.25, (n, LATENT_WAVES))
    period = np.stack([rng.uniform(30.0, 90.0, n), rng.uniform(120.0, 300.0, n)], axis=1)
    phase = rng.uniform(0.0, 2.0 * np.pi, (n, LATENT_WAVES))
    return Latent(endogenous, response, amp, period, phase)


def clustered_elasticities(
    seed: int, category: np.ndarray, n_categories: int, bounds: tuple[float, float]
) -> np.ndarray:
    """Each category's mean drawn from `bounds`, each product's around it (sd 0.25), clipped."""
    rng = stream(seed, "elasticity")
    means = rng.uniform(bounds[0], bounds[1], n_categories)
    spread = rng.normal(0.0, _CATEGORY_SPREAD, category.size)
    return np.clip(means[category] + spread, bounds[0], bounds[1])


def peak_columns(seed: int, spec: WorldSpec) -> dict[str, np.ndarray]:
    """Log uplifts of the other seasonal peaks: Black Friday 30-120%, Easter 20-80%."""
    rng, n, out = stream(seed, "peaks"), spec.n_products, {}
    bf, easter = rng.uniform(0.30, 1.20, n), rng.uniform(0.20, 0.80, n)
    if specs.BLACK_FRIDAY in spec.peaks:
        out["black_friday_log_peak"] = np.log1p(bf)
    if specs.EASTER in spec.peaks:
        out["easter_log_peak"] = np.log1p(easter)
    return out


def break_columns(
    seed: int, spec: WorldSpec, launch: np.ndarray, days: np.ndarray
) -> dict[str, object]:
    """One level break per chosen product, 30-90% into its history: a log shift of 0.25-0.6
    either way and a change of trend slope of up to 0.5 per year."""
    rng, n = stream(seed, "breaks"), spec.n_products
    chosen = rng.random(n) < spec.trend_break_share
    at = launch + (rng.uniform(0.3, 0.9, n) * (spec.n_days - launch)).astype(np.int64)
    shift = rng.uniform(0.25, 0.60, n) * rng.choice([-1.0, 1.0], n)
    slope = rng.uniform(-0.5, 0.5, n) / 365.25
    return {
        "break_on": _dates_or_null(chosen, days[np.minimum(at, days.size - 1)]),
        "break_log_shift": np.where(chosen, shift, 0.0),
        "break_trend_change": np.where(chosen, slope, 0.0),
    }  # fmt: skip


def delisted_column(seed: int, spec: WorldSpec, launch: np.ndarray, days: np.ndarray) -> pl.Series:
    """The first day without demand of the products that stop selling (null for the others)."""
    rng, n = stream(seed, "delisted"), spec.n_products
    chosen = (rng.random(n) < spec.delisted_share) & (spec.n_days - launch >= _DELIST_MIN_HISTORY)
    tail = rng.integers(_DELIST_TAIL_DAYS[0], _DELIST_TAIL_DAYS[1] + 1, n)
    first_zero = days[np.maximum(days.size - tail, 0)]
    return _dates_or_null(chosen, first_zero).alias("delisted_on")


def slow_movers(seed: int, spec: WorldSpec) -> tuple[np.ndarray, np.ndarray]:
    """Which products are slow movers, and their log level (0.05-1 units a day)."""
    rng, n = stream(seed, "slow"), spec.n_products
    slow = rng.random(n) < spec.slow_mover_share
    return slow, rng.uniform(np.log(_SLOW_LEVEL[0]), np.log(_SLOW_LEVEL[1]), n)


def promo_lifts(seed: int, spec: WorldSpec) -> np.ndarray:
    """Each product's promotion lift beyond the price cut (a fraction)."""
    return stream(seed, "promo_lift").uniform(*spec.promo_lift, spec.n_products)


def costs_above_price(seed: int, spec: WorldSpec, products: pl.DataFrame) -> pl.DataFrame:
    """`products` with the unit cost of a `cost_above_price_share` of them raised 2-15% above
    their current price (a supplier's increase the shelf price has not followed yet)."""
    rng, n = stream(seed, "costs"), products.height
    chosen = rng.random(n) < spec.cost_above_price_share
    raised = np.round(products["current_price"].to_numpy() * rng.uniform(1.02, 1.15, n), 2)
    cost = np.where(chosen, raised, products["unit_cost"].to_numpy())
    return products.with_columns(unit_cost=pl.Series(cost, dtype=pl.Float64))
