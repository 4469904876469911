"""The synthetic retail world: the embedded demo warehouse, with its exact ground truth.

`generate_world` draws a seeded catalogue, daily sales history and the true parameters behind it, in
the long format of the data contract (DESIGN section 3). Everything is vectorised over products and
days, so 10,000 products x 730 days take a few seconds.

The expected units of product p on day d at shelf price x are (one formula, `_daily_mean`, serves
both the simulation and `true_daily_mean`, so the truth is exact, not approximate):

    mu = exp(log_base + trend_per_day * (d - origin) + log(weekly_<weekday(d)>)
             + holiday_log_peak * peak(d) + holiday_log_dip * dip(d) + summer_log_peak * summer(d))
         * (x / ref_price) ** elasticity

and 0 before `launched_on`, where `peak` ramps linearly from 0 on 15 November to 1 on 24 December,
`dip` falls linearly from 1 on 25 December to 0 three weeks later, and `summer` is a Gaussian bump
(sd 28 days) centred on mid-July. Promotions act only through the price: there is no extra promo
lift, so demand is exactly a constant-elasticity curve. Sold units are negative-binomial draws
around `mu` (variance mu + dispersion * mu^2), thinned on stockout days (censored sales).
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl


@dataclass(frozen=True)
class _Category:
    name: str
    share: float  # of product groups
    weekly: tuple[float, ...]  # log demand shift Monday..Sunday, before per-product jitter
    price_range: tuple[float, float]  # regular price of the smallest size, log-uniform
    summer_uplift: tuple[float, float]  # multiplicative uplift at mid-July, uniform
    nouns: tuple[str, ...]
    sizes: tuple[str, str, str]  # size labels, smallest first


_CATEGORIES = (
    _Category(
        "beverages", 0.20, (-0.10, -0.10, -0.05, 0.0, 0.10, 0.25, 0.10), (0.8, 3.5), (0.3, 0.7),
        ("Sparkling water", "Still water", "Orange juice", "Apple juice", "Cola", "Iced tea",
         "Lemonade", "Energy drink", "Cold brew coffee", "Ginger beer"),
        ("330ml", "1L", "2L"),
    ),
    _Category(
        "snacks", 0.20, (-0.10, -0.10, -0.05, 0.0, 0.12, 0.25, 0.08), (1.0, 5.0), (0.0, 0.0),
        ("Salted crisps", "Paprika crisps", "Tortilla chips", "Salted peanuts", "Pretzels",
         "Chocolate cookies", "Oat biscuits", "Popcorn", "Trail mix", "Rice cakes"),
        ("100g", "200g", "400g"),
    ),
    _Category(
        "household", 0.15, (0.05, 0.0, 0.0, 0.0, 0.02, 0.10, -0.05), (2.0, 15.0), (0.0, 0.0),
        ("Dish soap", "Laundry liquid", "Kitchen towels", "Toilet paper", "Bin bags",
         "Glass cleaner", "Sponges", "Fabric softener", "Bleach", "Aluminium foil"),
        ("1-pack", "3-pack", "6-pack"),
    ),
    _Category(
        "personal_care", 0.15, (0.02, 0.0, 0.0, 0.0, 0.03, 0.08, -0.03), (2.0, 15.0), (0.0, 0.0),
        ("Shampoo", "Conditioner", "Shower gel", "Toothpaste", "Hand soap", "Deodorant",
         "Body lotion", "Mouthwash", "Face cream", "Sunscreen"),
        ("50ml", "250ml", "500ml"),
    ),
    _Category(
        "frozen", 0.12, (-0.08, -0.08, -0.04, 0.0, 0.08, 0.20, 0.12), (2.0, 12.0), (0.3, 0.8),
        ("Pepperoni pizza", "Vanilla ice cream", "Garden peas", "Fish fingers",
         "Chicken nuggets", "Berry mix", "French fries", "Spinach", "Chocolate ice cream",
         "Veggie burgers"),
        ("400g", "1kg", "2kg"),
    ),
    _Category(
        "fresh", 0.18, (-0.05, -0.08, -0.05, 0.0, 0.10, 0.20, -0.10), (1.0, 10.0), (0.0, 0.15),
        ("Greek yoghurt", "Cheddar", "Butter", "Cream cheese", "Hummus", "Mozzarella", "Bananas",
         "Tomatoes", "Apples", "Smoked salmon"),
        ("250g", "500g", "1kg"),
    ),
)  # fmt: skip
_BRANDS = ("Northfield", "Brightwell", "Cedar & Co", "Harbour", "Green Valley", "Maple", "Summit",
           "Riverside", "Oakridge", "Bluebell", "Value")  # fmt: skip

# Quantity of each size tier relative to the smallest; price grows as quantity ** 0.75, so a larger
# size costs more in total but less per unit.
_SIZE_QUANTITY = np.array([1.0, 2.5, 5.0])
_SIZE_PRICE_EXPONENT = 0.75
# A group is a family (2-3 sizes) with this probability: ~30% of products end up in families.
_FAMILY_GROUP_PROB = 0.15
_FIXED_PRICE_SHARE = 0.10
_RECENT_LAUNCH_SHARE = 0.08
_KVI_SHARE = 0.10
_PROMO_SLOT_DAYS = 45  # at most one promotion per slot, so promotions never overlap
_STOCKOUT_RUN_MAX = 5
_DIP_DAYS = 21
_SUMMER_CENTRE_DOY, _SUMMER_SD_DAYS = 196.0, 28.0
_WEEKDAY_COLUMNS = tuple(f"weekly_{k}" for k in range(7))


@dataclass(frozen=True)
class World:
    """A generated world: the warehouse inputs and the ground truth behind them.

    Attributes:
        products: the catalogue, one row per product (the `products` contract table).
        sales: daily history from each product's launch to `end_date`, sorted by product_id, ds.
        truth: one row per product with the true demand parameters (never read by the model).
    """

    products: pl.DataFrame
    sales: pl.DataFrame
    truth: pl.DataFrame


@dataclass(frozen=True)
class _Catalogue:
    category: np.ndarray  # [P] index into _CATEGORIES
    group: np.ndarray  # [P] product group (a family or a single product)
    size_rank: np.ndarray  # [P] 1 = smallest; 0 for products outside families
    family_id: list[str | None]
    name: list[str]
    start_price: np.ndarray  # [P] regular price before rounding to shelf endings
    fixed_price: np.ndarray  # [P] bool: the price never changes, no promotions


@dataclass(frozen=True)
class _Prices:
    regular: np.ndarray  # [P, T] regular shelf price
    paid: np.ndarray  # [P, T] price paid (promotional on promo days)
    promo: np.ndarray  # [P, T] bool


@dataclass(frozen=True)
class _Demand:
    """The truth columns `_daily_mean` needs, as arrays (product order = truth row order)."""

    log_base: np.ndarray
    trend_per_day: np.ndarray
    log_weekly: np.ndarray  # [P, 7]
    holiday_log_peak: np.ndarray
    holiday_log_dip: np.ndarray
    summer_log_peak: np.ndarray
    elasticity: np.ndarray
    ref_price: np.ndarray
    origin: np.ndarray  # datetime64[D]
    launched_on: np.ndarray  # datetime64[D]


def generate_world(
    n_products: int = 200,
    n_days: int = 730,
    seed: int = 0,
    end_date: datetime.date = datetime.date(2026, 10, 31),
) -> World:
    """Generate a seeded synthetic retail world with its exact ground truth.

    Args:
        n_products: number of products (>= 1).
        n_days: days of history ending at `end_date` for products not launched recently (>= 30).
        seed: seed of `numpy.random.default_rng`; the same seed gives identical frames.
        end_date: last day of the sales history.

    Returns:
        The products, sales and truth frames.

    Raises:
        ValueError: if `n_products` or `n_days` is too small.
    """
    if n_products < 1:
        raise ValueError(f"n_products must be >= 1, got {n_products}")
    if n_days < 30:
        raise ValueError(f"n_days must be >= 30, got {n_days}")
    rng = np.random.default_rng(seed)
    days = np.arange(n_days) + np.datetime64(end_date, "D") - (n_days - 1)
    catalogue = _draw_catalogue(rng, n_products)
    launch = _draw_launch_index(rng, n_products, n_days)
    prices = _draw_prices(rng, catalogue, n_days)
    ids = _product_ids(n_products)
    truth = _draw_truth(rng, catalogue, prices, launch, days, ids)
    mean = _daily_mean(_demand_from_truth(truth), days, prices.paid)
    stockout = _draw_stockouts(rng, truth["stockout_rate"].to_numpy(), n_days)
    units = _draw_units(rng, mean, truth["dispersion"].to_numpy(), stockout)
    sales = _sales_frame(ids, days, launch, units, prices, stockout)
    products = _products_frame(rng, ids, catalogue, prices, days[launch])
    return World(products=products, sales=sales, truth=truth)


def true_daily_mean(
    truth: pl.DataFrame, dates: Sequence[datetime.date], prices: np.ndarray
) -> np.ndarray:
    """Expected units per product and day if product i is sold at prices[i] on every day of `dates`.

    Args:
        truth: the `World.truth` frame (or a subset of its rows).
        dates: the days to evaluate, any dates (past or future).
        prices: shape [P], one price per truth row.

    Returns:
        Array [P, len(dates)] in truth row order; days before a product's launch give 0.

    Raises:
        ValueError: if `prices` does not have one entry per truth row.
    """
    price = np.asarray(prices, dtype=np.float64)
    if price.shape != (truth.height,):
        raise ValueError(f"prices must have shape ({truth.height},), got {price.shape}")
    return _daily_mean(_demand_from_truth(truth), _as_days(dates), price[:, None])


def true_expected_units(
    truth: pl.DataFrame, dates: Sequence[datetime.date], prices: np.ndarray
) -> np.ndarray:
    """Expected units summed over `dates` at constant candidate prices.

    Args:
        truth: the `World.truth` frame (or a subset of its rows).
        dates: the days to sum over.
        prices: shape [P] (one price per product) or [P, C] (C candidate prices per product).

    Returns:
        Array of the same shape as `prices`: expected total units over `dates`.

    Raises:
        ValueError: if `prices` is not [P] or [P, C] with P = truth rows.
    """
    price = np.asarray(prices, dtype=np.float64)
    if price.ndim not in (1, 2) or price.shape[0] != truth.height:
        raise ValueError(f"prices must have shape ({truth.height},) or ({truth.height}, C)")
    demand = _demand_from_truth(truth)
    # The price factor is constant over the days, so the sum factorises: sum_d baseline * factor.
    baseline_total = _baseline(demand, _as_days(dates)).sum(axis=1)
    units = baseline_total[:, None] * _price_factor(demand, price.reshape(truth.height, -1))
    return units if price.ndim == 2 else units[:, 0]


# ---------------------------------------------------------------------------------------------
# The demand formula (shared by the simulation and the truth functions).


def _daily_mean(demand: _Demand, days: np.ndarray, prices: np.ndarray) -> np.ndarray:
    """Expected units [P, T]; `prices` broadcasts to [P, T]."""
    return _baseline(demand, days) * _price_factor(demand, prices)


def _price_factor(demand: _Demand, prices: np.ndarray) -> np.ndarray:
    """(price / ref_price) ** elasticity for prices [P, k]."""
    return (prices / demand.ref_price[:, None]) ** demand.elasticity[:, None]


def _baseline(demand: _Demand, days: np.ndarray) -> np.ndarray:
    """Expected units [P, T] at the reference price; 0 before launch."""
    age = (days[None, :] - demand.origin[:, None]).astype(np.float64)
    peak, dip, summer = _yearly_shapes(days)
    log_mean = (
        demand.log_base[:, None]
        + demand.trend_per_day[:, None] * age
        + demand.log_weekly[:, _weekday(days)]
        + demand.holiday_log_peak[:, None] * peak[None, :]
        + demand.holiday_log_dip[:, None] * dip[None, :]
        + demand.summer_log_peak[:, None] * summer[None, :]
    )
    launched = days[None, :] >= demand.launched_on[:, None]
    return np.where(launched, np.exp(log_mean), 0.0)


def _weekday(days: np.ndarray) -> np.ndarray:
    """Monday = 0; 1970-01-01 (day 0 of datetime64) was a Thursday."""
    return (days.astype(np.int64) + 3) % 7


def _yearly_shapes(days: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Christmas ramp, post-Christmas dip and summer bump, each in [0, 1], for any dates."""
    year = days.astype("datetime64[Y]")
    months = year.astype("datetime64[M]")
    nov15 = (months + 10).astype("datetime64[D]") + 14
    dec24 = (months + 11).astype("datetime64[D]") + 23
    ramp = ((days - nov15) / (dec24 - nov15)).astype(np.float64)
    peak = np.where((days >= nov15) & (days <= dec24), ramp, 0.0)
    # Days since the most recent 25 December (this year's, or last year's in early January).
    since = (days - (dec24 + 1)).astype(np.int64)
    last_year_dec25 = ((months - 12) + 11).astype("datetime64[D]") + 24
    since = np.where(since < 0, (days - last_year_dec25).astype(np.int64), since)
    dip = np.clip(1.0 - since / _DIP_DAYS, 0.0, 1.0)
    day_of_year = (days - year.astype("datetime64[D]")).astype(np.float64)
    summer = np.exp(-0.5 * ((day_of_year - _SUMMER_CENTRE_DOY) / _SUMMER_SD_DAYS) ** 2)
    return peak, dip, summer


def _as_days(dates: Sequence[datetime.date]) -> np.ndarray:
    return np.asarray(dates, dtype="datetime64[D]").reshape(-1)


def _demand_from_truth(truth: pl.DataFrame) -> _Demand:
    columns = (
        "log_base", "trend_per_day", "holiday_log_peak", "holiday_log_dip", "summer_log_peak",
        "elasticity", "ref_price", "origin", "launched_on", *_WEEKDAY_COLUMNS,
    )  # fmt: skip
    missing = [c for c in columns if c not in truth.columns]
    if missing:
        raise ValueError(f"truth frame lacks columns {missing}; pass World.truth")

    def col(name: str) -> np.ndarray:
        return truth[name].to_numpy()

    return _Demand(
        log_base=col("log_base").astype(np.float64),
        trend_per_day=col("trend_per_day").astype(np.float64),
        log_weekly=np.log(truth.select(_WEEKDAY_COLUMNS).to_numpy().astype(np.float64)),
        holiday_log_peak=col("holiday_log_peak").astype(np.float64),
        holiday_log_dip=col("holiday_log_dip").astype(np.float64),
        summer_log_peak=col("summer_log_peak").astype(np.float64),
        elasticity=col("elasticity").astype(np.float64),
        ref_price=col("ref_price").astype(np.float64),
        origin=col("origin").astype("datetime64[D]"),
        launched_on=col("launched_on").astype("datetime64[D]"),
    )


# ---------------------------------------------------------------------------------------------
# Catalogue.


def _draw_groups(rng: np.random.Generator, n_products: int) -> tuple[np.ndarray, np.ndarray]:
    """Group index and rank within the group (1-based) of each product, in product order."""
    sizes = np.where(rng.random(n_products) < _FAMILY_GROUP_PROB, rng.integers(2, 4, n_products), 1)
    group = np.repeat(np.arange(n_products), sizes)[:n_products]
    first = np.cumsum(sizes) - sizes
    return group, np.arange(n_products) - first[group] + 1


def _draw_catalogue(rng: np.random.Generator, n_products: int) -> _Catalogue:
    group, rank = _draw_groups(rng, n_products)
    n_groups = int(group[-1]) + 1
    members = np.bincount(group)[group]  # the last group may have been cut short
    in_family = members > 1
    shares = np.array([c.share for c in _CATEGORIES])
    g_category = rng.choice(len(_CATEGORIES), size=n_groups, p=shares / shares.sum())
    g_noun = rng.integers(0, 10, n_groups)
    g_brand = rng.integers(0, len(_BRANDS), n_groups)
    # Families of two take sizes 1-2 or 2-3; single products get any size.
    g_size_offset = rng.integers(0, 2, n_groups)
    size = np.where(in_family, rank - 1 + (members == 2) * g_size_offset[group], 0)
    size = np.where(in_family, size, rng.integers(0, 3, n_products))
    lo, hi = np.log([[c.price_range[k] for c in _CATEGORIES] for k in (0, 1)])
    g_price = np.exp(rng.uniform(lo[g_category], hi[g_category]))
    category = g_category[group]
    family_number = np.cumsum(in_family & (rank == 1))
    return _Catalogue(
        category=category,
        group=group,
        size_rank=np.where(in_family, rank, 0),
        family_id=[
            f"F{n:05d}" if f else None for n, f in zip(family_number, in_family, strict=True)
        ],
        name=_names(category, g_brand[group], g_noun[group], size),
        start_price=g_price[group] * _SIZE_QUANTITY[size] ** _SIZE_PRICE_EXPONENT,
        fixed_price=(rng.random(n_groups) < _FIXED_PRICE_SHARE)[group],
    )


def _names(
    category: np.ndarray, brand: np.ndarray, noun: np.ndarray, size: np.ndarray
) -> list[str]:
    """Readable names such as 'Brightwell sparkling water 1L'; repeats get ' (2)', ' (3)'..."""
    seen: dict[str, int] = {}
    names = []
    for c, b, n, s in zip(category, brand, noun, size, strict=True):
        cat = _CATEGORIES[c]
        name = f"{_BRANDS[b]} {cat.nouns[n].lower()} {cat.sizes[s]}"
        seen[name] = seen.get(name, 0) + 1
        names.append(name if seen[name] == 1 else f"{name} ({seen[name]})")
    return names


def _product_ids(n_products: int) -> pl.Series:
    width = max(5, len(str(n_products)))  # zero-padded so ids sort like numbers
    return pl.Series("product_id", [f"P{i:0{width}d}" for i in range(1, n_products + 1)])


def _draw_launch_index(rng: np.random.Generator, n_products: int, n_days: int) -> np.ndarray:
    """Index of each product's first sales day: most have the full history, ~8% are recent."""
    history = rng.integers(20, min(120, n_days) + 1, n_products)
    recent = rng.random(n_products) < _RECENT_LAUNCH_SHARE
    return np.where(recent, n_days - history, 0)


# ---------------------------------------------------------------------------------------------
# Prices.


def _shelf_price(x: np.ndarray) -> np.ndarray:
    """Snap to shelf endings: .x9 below 3, otherwise .49 or .99."""
    dimes = np.round(x - 0.09, 1) + 0.09
    halves = np.round((x - 0.49) * 2.0) / 2.0 + 0.49
    return np.round(np.maximum(np.where(x < 3.0, dimes, halves), 0.19), 2)


def _draw_prices(rng: np.random.Generator, catalogue: _Catalogue, n_days: int) -> _Prices:
    regular = _draw_regular_prices(rng, catalogue, n_days)
    promo, depth = _draw_promotions(rng, ~catalogue.fixed_price, n_days)
    # Promo prices end in .x9 and are always at least 10 cents below the regular price.
    promo_price = np.minimum(np.round(regular * (1.0 - depth) - 0.09, 1) + 0.09, regular - 0.10)
    promo_price = np.round(np.maximum(promo_price, 0.09), 2)
    return _Prices(regular=regular, paid=np.where(promo, promo_price, regular), promo=promo)


def _draw_regular_prices(
    rng: np.random.Generator, catalogue: _Catalogue, n_days: int
) -> np.ndarray:
    """Regular price [P, T]: a step path changing every 60-150 days by 3-15%.

    Products of a family change together (same days, same percentage) so sizes stay ordered.
    """
    group, n_groups = catalogue.group, int(catalogue.group[-1]) + 1
    n_changes = n_days // 60 + 1
    gaps = rng.integers(60, 151, (n_groups, n_changes))
    gaps[:, 0] = rng.integers(20, 151, n_groups)
    change_day = np.cumsum(gaps, axis=1)[group]
    change_day[catalogue.fixed_price] = n_days  # never inside the history
    step = rng.uniform(0.03, 0.15, (n_groups, n_changes)) * rng.choice(
        [-1.0, 1.0], (n_groups, n_changes)
    )
    levels = np.empty((group.size, n_changes + 1))
    levels[:, 0] = _shelf_price(catalogue.start_price)
    for k in range(n_changes):  # over change slots, not products
        move = step[group, k]
        # Mean-revert: a change that would leave 0.75x..1.4x of the first price goes the other way.
        ratio = levels[:, k] * (1.0 + move) / levels[:, 0]
        move = np.where((ratio > 1.4) | (ratio < 0.75), -move, move)
        levels[:, k + 1] = _shelf_price(levels[:, k] * (1.0 + move))
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


# ---------------------------------------------------------------------------------------------
# Truth, stockouts and units.


def _draw_truth(
    rng: np.random.Generator,
    catalogue: _Catalogue,
    prices: _Prices,
    launch: np.ndarray,
    days: np.ndarray,
    ids: pl.Series,
) -> pl.DataFrame:
    """The truth frame: every parameter of `_daily_mean`, plus dispersion and stockout rate."""
    n = ids.len()
    category = catalogue.category
    weekly = np.array([c.weekly for c in _CATEGORIES])[category] + rng.normal(0.0, 0.04, (n, 7))
    weekly -= weekly.mean(axis=1, keepdims=True)  # geometric mean 1: log_base is the week's level
    summer_lo, summer_hi = np.array([c.summer_uplift for c in _CATEGORIES])[category].T
    launched = np.arange(days.size)[None, :] >= launch[:, None]
    paid_max = np.where(launched, prices.paid, -np.inf).max(axis=1)
    paid_min = np.where(launched, prices.paid, np.inf).min(axis=1)
    return pl.DataFrame(
        {
            "product_id": ids,
            "category": [_CATEGORIES[c].name for c in category],
            "elasticity": rng.uniform(-3.5, -0.5, n),
            "ref_price": prices.regular[np.arange(n), launch],  # the first regular price
            "dispersion": rng.uniform(0.05, 0.30, n),
            "price_varied": paid_max > paid_min,
            "launched_on": pl.Series(days[launch], dtype=pl.Date),
            "origin": pl.Series(np.full(n, days[-1]), dtype=pl.Date),
            # Level at the origin (end of history) on an average weekday outside the seasons.
            "log_base": rng.uniform(np.log(0.3), np.log(150.0), n),
            "trend_per_day": rng.uniform(-0.30, 0.40, n) / 365.25,
            **{name: np.exp(weekly[:, k]) for k, name in enumerate(_WEEKDAY_COLUMNS)},
            "holiday_log_peak": np.log1p(rng.uniform(0.30, 0.80, n)),
            "holiday_log_dip": np.log1p(-rng.uniform(0.10, 0.25, n)),
            "summer_log_peak": np.log1p(rng.uniform(summer_lo, summer_hi)),
            "stockout_rate": rng.uniform(0.01, 0.03, n),
        }
    )


def _draw_stockouts(rng: np.random.Generator, rate: np.ndarray, n_days: int) -> np.ndarray:
    """Stockout flag [P, T] in runs of 1-5 days, about `rate` of the days."""
    mean_run = (1 + _STOCKOUT_RUN_MAX) / 2
    start = rng.random((rate.size, n_days)) < (rate / mean_run)[:, None]
    run = rng.integers(1, _STOCKOUT_RUN_MAX + 1, (rate.size, n_days))
    stockout = start.copy()
    for lag in range(1, _STOCKOUT_RUN_MAX):
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


# ---------------------------------------------------------------------------------------------
# Frames.


def _sales_frame(
    ids: pl.Series,
    days: np.ndarray,
    launch: np.ndarray,
    units: np.ndarray,
    prices: _Prices,
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


def _products_frame(
    rng: np.random.Generator,
    ids: pl.Series,
    catalogue: _Catalogue,
    prices: _Prices,
    launched_on: np.ndarray,
) -> pl.DataFrame:
    n = ids.len()
    regular, current = prices.regular[:, -1], prices.paid[:, -1]
    cost_share = rng.uniform(0.35, 0.70, int(catalogue.group[-1]) + 1)[catalogue.group]
    # The guardrails always contain the current price, even when the history ends in a promotion.
    return pl.DataFrame(
        {
            "product_id": ids,
            "name": catalogue.name,
            "category": [_CATEGORIES[c].name for c in catalogue.category],
            "family_id": pl.Series(catalogue.family_id, dtype=pl.String),
            "size_rank": pl.Series(catalogue.size_rank, dtype=pl.Int32),
            "unit_cost": np.round(cost_share * regular, 2),
            "current_price": current,
            "min_price": np.round(np.minimum(0.7 * regular, current), 2),
            "max_price": np.round(np.maximum(1.5 * regular, current), 2),
            "is_active": np.ones(n, dtype=bool),
            "is_kvi": rng.random(n) < _KVI_SHARE,
            "launched_on": pl.Series(launched_on, dtype=pl.Date),
        }
    ).with_columns(size_rank=pl.when(pl.col("size_rank") > 0).then(pl.col("size_rank")))
