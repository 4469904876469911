"""Sales history (polars, long format) -> dense per-product tensors for the batched forecaster.

No I/O here. Every array has the product axis first (`[P, T]`), dates run from the first sales day
to the day before `as_of`, and days a product did not exist (before launch, or missing rows) are
marked unobserved rather than invented.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import polars as pl

# Features of a calendar day that are known in advance (shared by every product).
N_CALENDAR = 16
# History features per product and day: scaled log units, stockout, observed, log price ratio,
# promo, then the calendar.
N_HISTORY = 5 + N_CALENDAR


@dataclass(frozen=True)
class Panel:
    """Dense daily history of a set of products, aligned on one calendar.

    Attributes:
        product_ids: product order of every `[P, ...]` array.
        start: the first day of the calendar (index 0).
        units: [P, T] units sold (0 where unobserved).
        observed: [P, T] a sales row exists for that product and day.
        stockout: [P, T] the day's sales were censored by a stockout.
        price: [P, T] shelf price (carried forward over gaps, back-filled before launch).
        promo: [P, T] promotion flag.
        ref_price: [P] reference price: the median price paid (elasticity is relative to it).
        level: [P] mean units per day on observed, uncensored days (the scale of the product).
        n_observed: [P] observed days.
        price_varied: [P] the price paid changed at least once (elasticity identifiable).
    """

    product_ids: tuple[str, ...]
    start: dt.date
    units: np.ndarray
    observed: np.ndarray
    stockout: np.ndarray
    price: np.ndarray
    promo: np.ndarray
    ref_price: np.ndarray
    level: np.ndarray
    n_observed: np.ndarray
    price_varied: np.ndarray

    @property
    def n_days(self) -> int:
        """Days in the calendar (T)."""
        return int(self.units.shape[1])

    @property
    def end(self) -> dt.date:
        """The day after the last day of history (the forecast origin)."""
        return self.start + dt.timedelta(days=self.n_days)

    def dates(self, offset: int = 0, count: int | None = None) -> list[dt.date]:
        """Calendar days from index `offset`, `count` of them (default: to the end)."""
        count = self.n_days - offset if count is None else count
        return [self.start + dt.timedelta(days=offset + i) for i in range(count)]

    def select(self, index: np.ndarray) -> Panel:
        """The panel restricted to the products at `index` (same calendar)."""
        fields = {
            name: getattr(self, name)[index]
            for name in (
                "units",
                "observed",
                "stockout",
                "price",
                "promo",
                "ref_price",
                "level",
                "n_observed",
                "price_varied",
            )
        }
        ids = tuple(self.product_ids[i] for i in np.asarray(index))
        return Panel(product_ids=ids, start=self.start, **fields)


def build_panel(sales: pl.DataFrame, product_ids: list[str], as_of: dt.date) -> Panel:
    """Pivot long sales rows into a dense panel ending the day before `as_of`.

    Args:
        sales: rows with product_id, ds, units, price, promo, stockout.
        product_ids: products to include, in this order (a product without sales is all
            unobserved).
        as_of: first day that is NOT history; rows on or after it are ignored (no leakage).

    Returns:
        The panel; its calendar starts at the earliest sales day of these products.
    """
    rows = sales.filter(pl.col("ds") < as_of, pl.col("product_id").is_in(product_ids))
    start = rows["ds"].min() if rows.height else as_of - dt.timedelta(days=1)
    n_days = (as_of - start).days
    index = {pid: i for i, pid in enumerate(product_ids)}
    p_idx = np.array([index[p] for p in rows["product_id"].to_list()], dtype=np.int64)
    # Day index from the epoch of the calendar: integer days since 1970 minus the start's.
    epoch_days = rows["ds"].cast(pl.Int32).to_numpy().astype(np.int64)
    t_idx = epoch_days - (start - dt.date(1970, 1, 1)).days
    shape = (len(product_ids), n_days)

    def dense(column: str, dtype: type) -> np.ndarray:
        out = np.zeros(shape, dtype=dtype)
        out[p_idx, t_idx] = rows[column].fill_null(0).to_numpy().astype(dtype)
        return out

    observed = np.zeros(shape, dtype=bool)
    observed[p_idx, t_idx] = True
    units = dense("units", np.float32)
    stockout = dense("stockout", bool) & observed
    promo = dense("promo", bool) & observed
    price = _fill_prices(dense("price", np.float64), observed)
    return Panel(
        product_ids=tuple(product_ids),
        start=start,
        units=units,
        observed=observed,
        stockout=stockout,
        price=price.astype(np.float32),
        promo=promo,
        **_summaries(units, observed, stockout, price),
    )


def _summaries(
    units: np.ndarray, observed: np.ndarray, stockout: np.ndarray, price: np.ndarray
) -> dict[str, np.ndarray]:
    """A panel's per-product scales and flags from its days (see `Panel`)."""
    good = observed & ~stockout
    n_good = good.sum(axis=1)
    level = np.where(n_good > 0, (units * good).sum(axis=1) / np.maximum(n_good, 1), 0.0)
    rows = range(units.shape[0])
    ref_price = np.array(
        [np.median(price[i, observed[i]]) if observed[i].any() else 1.0 for i in rows]
    )
    log_price = np.log(np.maximum(price, 1e-12))
    varied = [
        np.ptp(log_price[i, observed[i]]) > 1e-3 if observed[i].any() else False for i in rows
    ]
    return {
        "ref_price": ref_price.astype(np.float32),
        "level": level.astype(np.float32),
        "n_observed": observed.sum(axis=1),
        "price_varied": np.array(varied, dtype=bool),
    }


def panel_until(panel: Panel, n_days: int) -> Panel:
    """The panel's first `n_days` days, with every scale and flag computed from those days only.

    What a model fitted before day `n_days` may know: its reference prices, levels, observed
    days and whether the price varied come from the days before it (a backtest scoring the
    later days must not see them, DESIGN section 4).
    """
    days = slice(0, n_days)
    arrays = {
        name: getattr(panel, name)[:, days]
        for name in ("units", "observed", "stockout", "price", "promo")
    }
    return Panel(
        product_ids=panel.product_ids,
        start=panel.start,
        **arrays,
        **_summaries(arrays["units"], arrays["observed"], arrays["stockout"], arrays["price"]),
    )


def _fill_prices(price: np.ndarray, observed: np.ndarray) -> np.ndarray:
    """Carry the last observed price forward over gaps and back-fill before the first one."""
    idx = np.where(observed, np.arange(price.shape[1])[None, :], 0)
    np.maximum.accumulate(idx, axis=1, out=idx)
    filled = np.take_along_axis(price, idx, axis=1)
    first = np.where(observed.any(axis=1), observed.argmax(axis=1), 0)
    first_price = price[np.arange(price.shape[0]), first]
    before = np.arange(price.shape[1])[None, :] < first[:, None]
    filled = np.where(before, first_price[:, None], filled)
    return np.where(filled > 0, filled, 1.0)


def calendar_features(start: dt.date, n_days: int) -> np.ndarray:
    """Known-in-advance features of each day: [n_days, N_CALENDAR] float32.

    Day of week (7 one-hot), three yearly Fourier pairs (smooth seasons such as summer), and three
    holiday-season shapes: the run-up to Christmas (Nov 15 -> Dec 24, rising), the three weeks
    after it (fading from 1 on Dec 25 to 0 on Jan 15, across the new year), and the Black Friday
    weekend. Units: dimensionless.
    """
    days = np.array([start + dt.timedelta(days=i) for i in range(n_days)])
    ordinal = np.array([d.toordinal() for d in days], dtype=np.float64)
    weekday = np.array([d.weekday() for d in days])
    doy = np.array([d.timetuple().tm_yday for d in days], dtype=np.float64)
    out = np.zeros((n_days, N_CALENDAR), dtype=np.float32)
    out[np.arange(n_days), weekday] = 1.0
    for k in range(3):
        angle = 2 * np.pi * (k + 1) * doy / 365.25
        out[:, 7 + 2 * k] = np.sin(angle)
        out[:, 8 + 2 * k] = np.cos(angle)
    years = np.array([d.year for d in days])
    xmas = np.array([dt.date(y, 12, 24).toordinal() for y in years], dtype=np.float64)
    to_xmas = xmas - ordinal
    out[:, 13] = np.clip(1.0 - to_xmas / 39.0, 0.0, 1.0) * (to_xmas >= 0)
    # Days since the most recent 25 December: this year's, or last year's in January.
    last_xmas = np.array([dt.date(y - 1, 12, 24).toordinal() for y in years], dtype=np.float64)
    since = np.where(to_xmas < 0, -to_xmas, ordinal - last_xmas) - 1
    out[:, 14] = np.clip(1.0 - since / 21.0, 0.0, 1.0)
    out[:, 15] = np.array([_is_black_friday_weekend(d) for d in days], dtype=np.float32)
    return out


def _is_black_friday_weekend(day: dt.date) -> bool:
    """Friday to Monday after the fourth Thursday of November."""
    if day.month not in (11, 12):
        return False
    nov1 = dt.date(day.year, 11, 1)
    thanksgiving = nov1 + dt.timedelta(days=(3 - nov1.weekday()) % 7 + 21)
    return 1 <= (day - thanksgiving).days <= 4


def history_features(panel: Panel, calendar: np.ndarray) -> np.ndarray:
    """Per-product inputs of each history day: [P, T, N_HISTORY] float32.

    Units enter as log1p scaled by the product's own level so products of any volume share one
    numeric range; censored (stockout) and unobserved days carry flags instead of their units.
    """
    good = panel.observed & ~panel.stockout
    scaled = np.log1p(panel.units) - np.log1p(panel.level)[:, None]
    log_ratio = np.log(panel.price / panel.ref_price[:, None])
    p, t = panel.units.shape
    own = np.stack(
        [
            np.where(good, scaled, 0.0),
            panel.stockout.astype(np.float32),
            panel.observed.astype(np.float32),
            log_ratio,
            panel.promo.astype(np.float32),
        ],
        axis=-1,
    ).astype(np.float32)
    cal = np.broadcast_to(calendar[None, :t, :], (p, t, N_CALENDAR))
    return np.concatenate([own, cal], axis=-1)


def seasonal_naive(units: np.ndarray, origin: int, horizon: int, season: int = 7) -> np.ndarray:
    """Seasonal-naive forecast from `origin` (first forecast day index): the same weekday last week.

    Args:
        units: [P, T] history (only days before `origin` are used).
        origin: index of the first forecast day.
        horizon: days to forecast.
        season: season length in days.

    Returns:
        [P, horizon] forecasts.
    """
    k = np.arange(horizon)
    source = origin - season + (k % season)
    return units[:, source]


# A price counts as one a product has sold at once it was paid on this many regular days: a week
# at a price covers every weekday once, and one-day glitches stay out. A count, not a share of the
# history: a product with two years of history learns a new price as fast as one with two months,
# so the trust region widens a week after each step beyond it.
PRICE_SEEN_DAYS = 7


def price_seen_range(sales: pl.DataFrame, min_days: int = PRICE_SEEN_DAYS) -> pl.DataFrame:
    """The prices each product has sold at: the range the pricing engine's trust region keeps to.

    Over each product's uncensored rows (no stockout) without a promotion, the `min_days`-th
    lowest and the `min_days`-th highest price paid (each an actual price paid): a price paid on
    fewer days at either end is not yet evidence of demand there. A product with fewer than
    2 * `min_days` such rows keeps the middle of its prices (the median, at its fewest). A
    promotion's display lifts demand beyond its price cut, so a promotional price is no evidence
    of demand at that price as a regular one; a product sold only on promotion falls back to all
    uncensored rows. The forecaster's product table and the evaluation's log-log baseline both
    call this, so the model and the baseline are priced under the same trust region.

    Args:
        sales: product_id, price, and optionally stockout, promo (one row per observed day).
        min_days: days a price must be paid on to count at either end (at least 1).

    Returns:
        product_id, price_seen_lo, price_seen_hi: one row per product with an uncensored day.
    """
    if min_days < 1:
        raise ValueError(f"min_days must be at least 1, got {min_days}")
    flag = {
        name: pl.col(name).fill_null(False) if name in sales.columns else pl.lit(False)
        for name in ("stockout", "promo")
    }
    rows = sales.filter(~flag["stockout"], pl.col("price") > 0, pl.col("price").is_finite())
    rows = rows.select("product_id", "price", flag["promo"].alias("_promo"))

    def bounds(frame: pl.DataFrame, suffix: str) -> pl.DataFrame:
        n = pl.len()
        k = pl.min_horizontal(pl.lit(min_days, pl.UInt32), (n + 1) // 2)
        price = pl.col("price").sort()
        return frame.group_by("product_id").agg(
            price.get(k - 1).alias(f"lo{suffix}"), price.get(n - k).alias(f"hi{suffix}")
        )

    regular = bounds(rows.filter(~pl.col("_promo")), "_regular")
    return (
        bounds(rows, "_all")
        .join(regular, on="product_id", how="left")
        .select(
            "product_id",
            pl.coalesce("lo_regular", "lo_all").alias("price_seen_lo"),
            pl.coalesce("hi_regular", "hi_all").alias("price_seen_hi"),
        )
        .sort("product_id")
    )


def panel_price_seen_range(panel: Panel) -> pl.DataFrame:
    """`price_seen_range` over a panel's observed days (the same definition as over sales rows)."""
    days = panel.observed
    ids = np.repeat(np.asarray(panel.product_ids, dtype=object), panel.n_days).reshape(days.shape)
    rows = pl.DataFrame(
        {
            "product_id": pl.Series(ids[days], dtype=pl.String),
            "price": panel.price[days].astype(np.float64),
            "stockout": panel.stockout[days].astype(bool),
            "promo": panel.promo[days].astype(bool),
        }
    )
    return price_seen_range(rows)
