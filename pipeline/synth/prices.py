"""Shelf prices of a synthetic world: regular price paths, promotions and demand-driven prices."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.synth.catalogue import Catalogue

_PROMO_SLOT_DAYS = 45  # at most one promotion per slot, so promotions never overlap
_FIRST_MOVE_DAY = 20  # the first regular move comes 20 days in at the earliest


@dataclass(frozen=True)
class Prices:
    """Daily prices [P, T]."""

    regular: np.ndarray  # regular shelf price
    paid: np.ndarray  # price paid (promotional on promo days)
    promo: np.ndarray  # bool


def shelf_price(x: np.ndarray) -> np.ndarray:
    """Snap to shelf endings: .x9 below 3, otherwise .49 or .99."""
    dimes = np.round(x - 0.09, 1) + 0.09
    halves = np.round((x - 0.49) * 2.0) / 2.0 + 0.49
    return np.round(np.maximum(np.where(x < 3.0, dimes, halves), 0.19), 2)


def draw_prices(
    rng: np.random.Generator,
    catalogue: Catalogue,
    n_days: int,
    gap_days: tuple[int, int],
    moves: np.random.Generator | None = None,
) -> Prices:
    """Regular price paths and promotions (2-6 a year, 3-14 days, 10-30% off).

    The regular paths are drawn from `rng` with `gap_days`; with `moves` given they are drawn
    again from that stream (the draw from `rng` still happens, so the rest of `rng`'s sequence,
    and with it the rest of the world, does not depend on how often regular prices move).
    """
    regular = draw_regular_prices(rng, catalogue, n_days, gap_days)
    if moves is not None:
        regular = draw_regular_prices(moves, catalogue, n_days, gap_days)
    promo, depth = _draw_promotions(rng, ~catalogue.fixed_price, n_days)
    # Promo prices end in .x9 and are always at least 10 cents below the regular price.
    promo_price = np.minimum(np.round(regular * (1.0 - depth) - 0.09, 1) + 0.09, regular - 0.10)
    promo_price = np.round(np.maximum(promo_price, 0.09), 2)
    return Prices(regular=regular, paid=np.where(promo, promo_price, regular), promo=promo)


def draw_regular_prices(
    rng: np.random.Generator, catalogue: Catalogue, n_days: int, gap_days: tuple[int, int]
) -> np.ndarray:
    """Regular price [P, T]: a step path moving every `gap_days` (uniform) by 3-15%.

    Products of a family change together (same days, same percentage) so sizes stay ordered.
    """
    group, n_groups = catalogue.group, catalogue.n_groups
    low, high = gap_days
    n_changes = n_days // low + 1
    gaps = rng.integers(low, high + 1, (n_groups, n_changes))
    gaps[:, 0] = rng.integers(_FIRST_MOVE_DAY, high + 1, n_groups)
    change_day = np.cumsum(gaps, axis=1)[group]
    change_day[catalogue.fixed_price] = n_days  # never inside the history
    step = rng.uniform(0.03, 0.15, (n_groups, n_changes)) * rng.choice(
        [-1.0, 1.0], (n_groups, n_changes)
    )
    levels = np.empty((group.size, n_changes + 1))
    levels[:, 0] = shelf_price(catalogue.start_price)
    for k in range(n_changes):  # over change slots, not products
        move = step[group, k]
        # Mean-revert: a change that would leave 0.75x..1.4x of the first price goes the other way.
        ratio = levels[:, k] * (1.0 + move) / levels[:, 0]
        move = np.where((ratio > 1.4) | (ratio < 0.75), -move, move)
        levels[:, k + 1] = shelf_price(levels[:, k] * (1.0 + move))
    t = np.arange(n_days)
    level_index = np.zeros((group.size, n_days), dtype=np.int64)
    for k in range(n_changes):
        level_index += t[None, :] >= change_day[:, k, None]
    return np.take_along_axis(levels, level_index, axis=1)


def _draw_promotions(
    rng: np.random.Generator, allowed: np.ndarray, n_days: int
) -> tuple[np.ndarray, np.ndarray]:
    """Promo flag and discount depth [P, T]: 2-6 promotions a year, 3-14 days, 10-30% off."""
    n_products = allowed.size
    n_slots = -(-n_days // _PROMO_SLOT_DAYS)
    per_year = rng.uniform(2.0, 6.0, n_products) * allowed
    active = rng.random((n_products, n_slots)) < (per_year * _PROMO_SLOT_DAYS / 365.0)[:, None]
    length = rng.integers(3, 15, (n_products, n_slots))
    offset = rng.integers(0, _PROMO_SLOT_DAYS - length + 1)
    depth = rng.uniform(0.10, 0.30, (n_products, n_slots))
    t = np.arange(n_days)
    slot, position = t // _PROMO_SLOT_DAYS, t % _PROMO_SLOT_DAYS
    start = offset[:, slot]
    promo = active[:, slot] & (position >= start) & (position < start + length[:, slot])
    return promo, np.where(promo, depth[:, slot], 0.0)


def demand_driven(
    prices: Prices, endogenous: np.ndarray, response: np.ndarray, weekly_wave: np.ndarray
) -> Prices:
    """Prices of `endogenous` products set from latent demand, as revenue managers do.

    Each week the shelf price is the regular price times exp(response * wave), the latent
    log-demand wave at the start of the week: raised when demand runs high, cut when it runs low.
    These products run no promotions.

    Args:
        prices: the drawn prices.
        endogenous: [P] bool.
        response: [P] log price change per unit of log latent demand (>= 0).
        weekly_wave: [P, T] latent log-demand wave on the Monday of each day's week.
    """
    driven = shelf_price(prices.regular * np.exp(response[:, None] * weekly_wave))
    rows = endogenous[:, None]
    return Prices(
        regular=prices.regular,
        paid=np.where(rows, driven, prices.paid),
        promo=prices.promo & ~rows,
    )
