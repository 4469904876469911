"""Draw a synthetic world from a `WorldSpec`: catalogue, prices, truth, stockouts and sales.

Everything is vectorised over products and days, so 10,000 products x 730 days take seconds.
Sold units are negative-binomial draws around the true mean (variance mu + dispersion * mu^2),
thinned on stockout days (censored sales).
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field, replace

import numpy as np
import polars as pl

from pipeline.synth import features
from pipeline.synth import spec as specs
from pipeline.synth.catalogue import Catalogue, draw_catalogue, product_ids, products_frame
from pipeline.synth.demand import daily_mean, demand_from_truth, latent_wave, weekday
from pipeline.synth.prices import Prices, demand_driven, draw_prices
from pipeline.synth.spec import WorldSpec
from pipeline.synth.truth import draw_truth


@dataclass(frozen=True)
class World:
    """A generated world: the warehouse inputs and the ground truth behind them.

    Attributes:
        products: the catalogue, one row per product (the `products` contract table).
        sales: daily history from each product's launch to `end_date`, sorted by product_id, ds.
        truth: one row per product with the true demand parameters (never read by the model).
        spec: what the world was drawn from.
    """

    products: pl.DataFrame
    sales: pl.DataFrame
    truth: pl.DataFrame
    spec: WorldSpec = field(default_factory=WorldSpec)


def generate_world(
    n_products: int = 200,
    n_days: int = 730,
    seed: int = 0,
    end_date: datetime.date = datetime.date(2026, 10, 31),
) -> World:
    """Generate the seeded demo world (`WorldSpec()` at this size) with its exact ground truth.

    Args:
        n_products: number of products (>= 1).
        n_days: days of history ending at `end_date` for products not launched recently (>= 30).
        seed: seed of `numpy.random.default_rng`; the same seed gives identical frames.
        end_date: last day of the sales history.

    Raises:
        ValueError: if `n_products` or `n_days` is too small.
    """
    if n_products < 1:
        raise ValueError(f"n_products must be >= 1, got {n_products}")
    if n_days < 30:
        raise ValueError(f"n_days must be >= 30, got {n_days}")
    return generate(WorldSpec(n_products=n_products, n_days=n_days, end_date=end_date), seed)


def generate(spec: WorldSpec, seed: int = 0) -> World:
    """Generate a seeded world from `spec`, with its exact ground truth.

    The demo's draws all come from `numpy.random.default_rng(seed)` in a fixed order; each
    switched-on feature draws from its own stream (features.stream), so the same seed gives the
    same catalogue and base parameters whatever the features.

    Args:
        spec: the world's switches (`WorldSpec()` is the demo world).
        seed: a non-negative seed; the same spec and seed give identical frames.
    """
    rng = np.random.default_rng(seed)
    drawn = _draw(rng, spec, seed)
    demo = demo_spec(spec)
    if replace(spec, name=demo.name) != demo:
        # The products' cost shares and KVI flags are the base stream's last draws, after the
        # sales, whose draws depend on the demand: take them where the demo world does, so every
        # scenario keeps the demo's catalogue.
        rng = np.random.default_rng(seed)
        _draw(rng, demo, seed)
    regular, paid = drawn.prices.regular, drawn.prices.paid
    products = products_frame(
        rng, drawn.ids, drawn.catalogue, regular[:, -1], paid[:, -1], drawn.days[drawn.launch]
    )
    if spec.cost_above_price_share > 0:
        products = features.costs_above_price(seed, spec, products)
    return World(products=products, sales=drawn.sales, truth=drawn.truth, spec=spec)


def demo_spec(spec: WorldSpec) -> WorldSpec:
    """The demo world at `spec`'s size and end date."""
    return WorldSpec(n_products=spec.n_products, n_days=spec.n_days, end_date=spec.end_date)


@dataclass(frozen=True)
class _Drawn:
    days: np.ndarray
    ids: pl.Series
    catalogue: Catalogue
    launch: np.ndarray
    prices: Prices
    truth: pl.DataFrame
    sales: pl.DataFrame


def _draw(rng: np.random.Generator, spec: WorldSpec, seed: int) -> _Drawn:
    """Everything but the products frame, in the demo's order of draws from `rng`."""
    n, n_days = spec.n_products, spec.n_days
    days = np.arange(n_days) + np.datetime64(spec.end_date, "D") - (n_days - 1)
    catalogue = draw_catalogue(rng, n, spec.fixed_price_share)
    launch = features.launch_index(rng, spec, seed)
    moves = None
    if spec.regular_gap_days != specs.DEMO_REGULAR_GAP_DAYS:
        moves = features.stream(seed, "moves")
    prices = draw_prices(rng, catalogue, n_days, spec.regular_gap_days, moves)
    latent = features.draw_latent(seed, spec, catalogue.fixed_price)
    if latent is not None:
        prices = _follow_latent_demand(prices, latent, days)
    ids = product_ids(n)
    truth = draw_truth(rng, seed, spec, catalogue, prices, launch, days, ids, latent)
    mean = daily_mean(demand_from_truth(truth), days, prices.paid, prices.promo)
    stockout = _stockouts(rng, seed, spec, truth["stockout_rate"].to_numpy())
    units = _draw_units(rng, mean, truth["dispersion"].to_numpy(), stockout)
    sales = _sales_frame(ids, days, launch, units, prices, stockout)
    return _Drawn(days, ids, catalogue, launch, prices, truth, sales)


def _follow_latent_demand(prices: Prices, latent: features.Latent, days: np.ndarray) -> Prices:
    """Endogenous products' prices set each Monday from the latent wave of that day."""
    mondays = days - weekday(days)
    waves = (latent.amp, latent.period, latent.phase)
    weekly = latent_wave(waves, np.full(latent.amp.shape[0], days[-1]), mondays)
    return demand_driven(prices, latent.endogenous, latent.response, weekly)


def _stockouts(
    rng: np.random.Generator, seed: int, spec: WorldSpec, rate: np.ndarray
) -> np.ndarray:
    """The demo's stockout draw from `rng`; redrawn with longer runs from their own stream."""
    stockout = _draw_stockouts(rng, rate, spec.n_days, specs.DEMO_STOCKOUT_RUN_MAX)
    if spec.stockout_run_max == specs.DEMO_STOCKOUT_RUN_MAX:
        return stockout
    return _draw_stockouts(features.stream(seed, "stockouts"), rate, spec.n_days,
                           spec.stockout_run_max)  # fmt: skip


def _draw_stockouts(
    rng: np.random.Generator, rate: np.ndarray, n_days: int, run_max: int
) -> np.ndarray:
    """Stockout flag [P, T] in runs of 1 to `run_max` days, about `rate` of the days."""
    mean_run = (1 + run_max) / 2
    start = rng.random((rate.size, n_days)) < (rate / mean_run)[:, None]
    run = rng.integers(1, run_max + 1, (rate.size, n_days))
    stockout = start.copy()
    for lag in range(1, run_max):
        stockout[:, lag:] |= start[:, :-lag] & (run[:, :-lag] > lag)
    return stockout


def _draw_units(
    rng: np.random.Generator, mean: np.ndarray, dispersion: np.ndarray, stockout: np.ndarray
) -> np.ndarray:
    """Negative-binomial sales (gamma-Poisson mixture), thinned on stockout days."""
    shape = 1.0 / dispersion[:, None]
    demand = rng.poisson(rng.gamma(shape, mean / shape))
    # Censoring: the shelf ran empty, so only part (0-50%) of the demand was sold.
    sold = demand.copy()
    sold[stockout] = rng.binomial(demand[stockout], rng.uniform(0.0, 0.5, int(stockout.sum())))
    return sold.astype(np.float64)


def _sales_frame(
    ids: pl.Series,
    days: np.ndarray,
    launch: np.ndarray,
    units: np.ndarray,
    prices: Prices,
    stockout: np.ndarray,
) -> pl.DataFrame:
    n_products, n_days = units.shape
    keep = (np.arange(n_days)[None, :] >= launch[:, None]).ravel()
    product = np.repeat(np.arange(n_products), n_days)[keep]
    return pl.DataFrame(
        {
            "product_id": ids.gather(product),
            "ds": pl.Series(np.tile(days, n_products)[keep], dtype=pl.Date),
            "units": units.ravel()[keep],
            "price": prices.paid.ravel()[keep],
            "promo": prices.promo.ravel()[keep],
            "stockout": stockout.ravel()[keep],
        }
    )


def scaled(spec: WorldSpec, n_products: int | None = None, n_days: int | None = None) -> WorldSpec:
    """`spec` at another size (None keeps its own)."""
    return replace(
        spec,
        n_products=spec.n_products if n_products is None else n_products,
        n_days=spec.n_days if n_days is None else n_days,
    )
