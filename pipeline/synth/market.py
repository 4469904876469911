"""The market of a synthetic world after its history: one day's sales for given shelf prices.

A closed loop (`pipeline.simulate`) puts a policy's prices on the shelf and asks the world what
sold. The answer uses the generator's noise model (`world._draw_units`): negative-binomial units
(gamma-Poisson, variance mu + dispersion * mu^2) around the true mean (`demand.daily_mean`), thinned
to 0-50% on stockout days. Promotions and stockouts go on as in the history: promotions of 3-14
days at 10-30% off for the products that ran them, about four a year; stockouts at each product's
true rate in runs of 1-3 days.

The day's events (promotions, stockouts, the noise's uniforms) are drawn once per day
(`draw_events`) and shared by every policy priced on that day, so two policies differ by their
prices, not by their luck (common random numbers).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import polars as pl

from pipeline.synth.demand import Demand, daily_mean, demand_from_truth

_PROMOS_PER_DAY = 4.0 / 365.25
_PROMO_DAYS = (3, 14)
_PROMO_DEPTH = (0.10, 0.30)
_STOCKOUT_RUN_MAX = 3


@dataclass(frozen=True)
class Market:
    """What the world needs to answer a price: its demand, noise and cost, in product_id order.

    Attributes:
        product_ids: the products, sorted.
        demand: the true demand formula's arrays (rows in `product_ids` order).
        dispersion: negative-binomial dispersion per product.
        stockout_rate: share of stockout days per product.
        promotes: whether the product ran promotions in its history.
        unit_cost: unit cost per product.
    """

    product_ids: list[str]
    demand: Demand
    dispersion: np.ndarray
    stockout_rate: np.ndarray
    promotes: np.ndarray
    unit_cost: np.ndarray


@dataclass(frozen=True)
class DayEvents:
    """One day's draws, shared by every policy: promotions, stockouts and the noise's seeds."""

    day: dt.date
    promo_depth: np.ndarray  # 0 where no promotion
    stockout: np.ndarray  # bool
    seed: int


@dataclass
class EventState:
    """Promotions and stockout runs in progress (days left), carried from day to day."""

    promo_left: np.ndarray
    promo_depth: np.ndarray
    stockout_left: np.ndarray


def market_of(truth: pl.DataFrame, products: pl.DataFrame, sales: pl.DataFrame) -> Market:
    """The market of a world from its truth, catalogue and history (any row order)."""
    truth = truth.sort("product_id")
    ids = truth["product_id"].to_list()
    cost = products.sort("product_id").filter(pl.col("product_id").is_in(ids))["unit_cost"]
    promoted = set(sales.filter(pl.col("promo"))["product_id"].unique().to_list())
    return Market(
        product_ids=ids,
        demand=demand_from_truth(truth),
        dispersion=truth["dispersion"].to_numpy().astype(np.float64),
        stockout_rate=truth["stockout_rate"].to_numpy().astype(np.float64),
        promotes=np.array([pid in promoted for pid in ids]),
        unit_cost=cost.to_numpy().astype(np.float64),
    )


def start_events(n_products: int) -> EventState:
    """No promotion and no stockout in progress."""
    zeros = np.zeros(n_products, dtype=np.int64)
    return EventState(zeros.copy(), np.zeros(n_products), zeros.copy())


def draw_events(
    market: Market, state: EventState, day: dt.date, rng: np.random.Generator
) -> DayEvents:
    """The day's promotions and stockouts (updating `state`) and the seed of its noise."""
    n = len(market.product_ids)
    start = (state.promo_left == 0) & market.promotes & (rng.random(n) < _PROMOS_PER_DAY)
    state.promo_left = np.where(start, rng.integers(_PROMO_DAYS[0], _PROMO_DAYS[1] + 1, n),
                                state.promo_left)  # fmt: skip
    state.promo_depth = np.where(start, rng.uniform(*_PROMO_DEPTH, n), state.promo_depth)
    on_promo = state.promo_left > 0
    mean_run = (1 + _STOCKOUT_RUN_MAX) / 2
    begins = (state.stockout_left == 0) & (rng.random(n) < market.stockout_rate / mean_run)
    state.stockout_left = np.where(
        begins, rng.integers(1, _STOCKOUT_RUN_MAX + 1, n), state.stockout_left
    )
    events = DayEvents(
        day=day,
        promo_depth=np.where(on_promo, state.promo_depth, 0.0),
        stockout=state.stockout_left > 0,
        seed=int(rng.integers(2**31)),
    )
    state.promo_left = np.maximum(state.promo_left - 1, 0)
    state.stockout_left = np.maximum(state.stockout_left - 1, 0)
    return events


def paid_prices(shelf: np.ndarray, events: DayEvents) -> np.ndarray:
    """The prices paid: the shelf price, cut on promotion days (ending in .09 as in the history)."""
    cut = np.round(shelf * (1.0 - events.promo_depth) - 0.09, 1) + 0.09
    promo = np.maximum(np.minimum(cut, shelf - 0.10), 0.09)
    return np.where(events.promo_depth > 0, np.round(promo, 2), shelf)


def expected_units(market: Market, events: DayEvents, shelf: np.ndarray) -> np.ndarray:
    """True expected demand on the day at these shelf prices (promotions included)."""
    days = np.array([np.datetime64(events.day, "D")])
    promo = (events.promo_depth > 0)[:, None]
    paid = paid_prices(shelf, events)
    return daily_mean(market.demand, days, paid[:, None], promo)[:, 0]


def draw_sales(market: Market, events: DayEvents, shelf: np.ndarray) -> pl.DataFrame:
    """One day's sales rows (the sales contract) for the shelf prices, drawn from the truth.

    The same events give the same random numbers, so policies with the same prices sell the same.
    """
    rng = np.random.default_rng(events.seed)
    mean = expected_units(market, events, shelf)
    shape = 1.0 / market.dispersion
    demand = rng.poisson(rng.gamma(shape, np.maximum(mean, 1e-12) / shape))
    kept = rng.uniform(0.0, 0.5, demand.shape[0])
    sold = np.where(events.stockout, rng.binomial(demand, kept), demand)
    sold = np.where(mean > 0, sold, 0)
    on_sale = _on_sale(market, events.day)
    return pl.DataFrame(
        {
            "product_id": np.asarray(market.product_ids)[on_sale],
            "ds": pl.Series([events.day] * int(on_sale.sum()), dtype=pl.Date),
            "units": sold[on_sale].astype(np.float64),
            "price": paid_prices(shelf, events)[on_sale],
            "promo": (events.promo_depth > 0)[on_sale],
            "stockout": events.stockout[on_sale],
        }
    )


def _on_sale(market: Market, day: dt.date) -> np.ndarray:
    today = np.datetime64(day, "D")
    on = market.demand.launched_on <= today
    if market.demand.delisted_on is not None:
        on &= today < market.demand.delisted_on
    return on
