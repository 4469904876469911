"""The true demand of a synthetic world: one formula for the simulation and for the truth functions.

The expected units of product p on day d at shelf price x are

    mu = exp(log_base + trend_per_day * (d - origin) + log(weekly_<weekday(d)>)
             + holiday_log_peak * christmas(d) + holiday_log_dip * dip(d)
             + summer_log_peak * summer(d)
             [+ black_friday_log_peak * black_friday(d) + easter_log_peak * easter(d)]
             [+ latent(d)]  [+ break(d)])
         * (x / ref_price) ** elasticity  [* (1 + promo_lift) on promotion days]

and 0 before `launched_on` [and from `delisted_on`]. The bracketed terms exist only in worlds whose
truth frame has their columns (the demo world has none of them):

- `christmas` ramps linearly from 0 on 15 November to 1 on 24 December; `dip` falls linearly from
  1 on 25 December to 0 three weeks later; `summer` is a Gaussian bump (sd 28 days) on mid-July;
- `black_friday` is 1 from Black Friday to the Monday after it, then 0.5 until 24 December;
- `easter` ramps from 0 fourteen days before Easter Sunday to 1 on Good Friday, and stays 1 to
  Easter Monday;
- `latent` is a demand wave the model cannot see, two sinusoids with their own amplitude, period
  and phase (`latent_amp_k`, `latent_period_k`, `latent_phase_k`, in days since `origin`);
- `break` shifts the log level before `break_on` by -`break_log_shift` and tilts the slope there
  by -`break_trend_change` per day, so the level at and after the break is the one drawn.

Promotions lift demand only through the price unless the truth has `promo_lift`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl

_DIP_DAYS = 21
_SUMMER_CENTRE_DOY, _SUMMER_SD_DAYS = 196.0, 28.0
_EASTER_RAMP_DAYS = 12
WEEKDAY_COLUMNS = tuple(f"weekly_{k}" for k in range(7))
LATENT_WAVES = 2
# Stand-ins for a missing date: no delisting (far future), no break (far past).
_NEVER = np.datetime64("9999-12-31", "D")
_LONG_AGO = np.datetime64("1900-01-01", "D")


@dataclass(frozen=True)
class Demand:
    """The truth columns the formula needs, as arrays (product order = truth row order).

    Optional features are None when the truth frame lacks their columns.
    """

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
    black_friday_log_peak: np.ndarray | None = None
    easter_log_peak: np.ndarray | None = None
    delisted_on: np.ndarray | None = None  # datetime64[D], _NEVER where not delisted
    break_on: np.ndarray | None = None  # datetime64[D], _LONG_AGO where no break
    break_log_shift: np.ndarray | None = None
    break_trend_change: np.ndarray | None = None
    latent: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None  # amp, period, phase [P, W]
    promo_lift: np.ndarray | None = None


def daily_mean(
    demand: Demand, days: np.ndarray, prices: np.ndarray, promo: np.ndarray | None = None
) -> np.ndarray:
    """Expected units [P, T]; `prices` (and `promo`, a bool mask) broadcast to [P, T]."""
    mean = baseline(demand, days) * price_factor(demand, prices)
    if promo is not None and demand.promo_lift is not None:
        mean = mean * np.where(promo, 1.0 + demand.promo_lift[:, None], 1.0)
    return mean


def price_factor(demand: Demand, prices: np.ndarray) -> np.ndarray:
    """(price / ref_price) ** elasticity for prices [P, k]."""
    return (prices / demand.ref_price[:, None]) ** demand.elasticity[:, None]


def baseline(demand: Demand, days: np.ndarray) -> np.ndarray:
    """Expected units [P, T] at the reference price, outside promotions; 0 when not on sale."""
    age = (days[None, :] - demand.origin[:, None]).astype(np.float64)
    peak, dip, summer = yearly_shapes(days)
    log_mean = (
        demand.log_base[:, None]
        + demand.trend_per_day[:, None] * age
        + demand.log_weekly[:, weekday(days)]
        + demand.holiday_log_peak[:, None] * peak[None, :]
        + demand.holiday_log_dip[:, None] * dip[None, :]
        + demand.summer_log_peak[:, None] * summer[None, :]
    )
    log_mean = log_mean + _feature_terms(demand, days)
    on_sale = days[None, :] >= demand.launched_on[:, None]
    if demand.delisted_on is not None:
        on_sale &= days[None, :] < demand.delisted_on[:, None]
    return np.where(on_sale, np.exp(log_mean), 0.0)


def _feature_terms(demand: Demand, days: np.ndarray) -> np.ndarray | float:
    """The optional log terms (other peaks, the latent wave, trend breaks); 0.0 when none."""
    terms: np.ndarray | float = 0.0
    if demand.black_friday_log_peak is not None:
        terms = terms + demand.black_friday_log_peak[:, None] * black_friday_shape(days)[None, :]
    if demand.easter_log_peak is not None:
        terms = terms + demand.easter_log_peak[:, None] * easter_shape(days)[None, :]
    if demand.latent is not None:
        terms = terms + latent_wave(demand.latent, demand.origin, days)
    if demand.break_on is not None:
        assert demand.break_log_shift is not None and demand.break_trend_change is not None
        before = (demand.break_on[:, None] - days[None, :]).astype(np.float64)  # days to the break
        shift = -demand.break_log_shift[:, None] + demand.break_trend_change[:, None] * before
        terms = terms + np.where(before > 0, shift, 0.0)
    return terms


def latent_wave(
    waves: tuple[np.ndarray, np.ndarray, np.ndarray], origin: np.ndarray, days: np.ndarray
) -> np.ndarray:
    """The latent log-demand wave [P, T]: the sum of amp * sin(2 pi age / period + phase).

    Args:
        waves: amplitude, period (days) and phase, each [P, W].
        origin: [P] datetime64[D], the day the age is counted from.
        days: [T] datetime64[D].
    """
    amp, period, phase = waves
    age = (days[None, :] - origin[:, None]).astype(np.float64)
    angle = 2.0 * np.pi * age[:, None, :] / period[:, :, None] + phase[:, :, None]
    return (amp[:, :, None] * np.sin(angle)).sum(axis=1)


def weekday(days: np.ndarray) -> np.ndarray:
    """Monday = 0; 1970-01-01 (day 0 of datetime64) was a Thursday."""
    return (days.astype(np.int64) + 3) % 7


def yearly_shapes(days: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
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


def black_friday_shape(days: np.ndarray) -> np.ndarray:
    """1 from Black Friday to the Monday after, 0.5 from then to 24 December, else 0."""
    months = days.astype("datetime64[Y]").astype("datetime64[M]")
    nov1 = (months + 10).astype("datetime64[D]")
    thanksgiving = nov1 + (3 - weekday(nov1)) % 7 + 21  # the fourth Thursday of November
    since = (days - (thanksgiving + 1)).astype(np.int64)
    dec24 = (months + 11).astype("datetime64[D]") + 23
    return np.where(
        (since >= 0) & (since <= 3), 1.0, np.where((since > 3) & (days <= dec24), 0.5, 0.0)
    )


def easter_sunday(years: np.ndarray) -> np.ndarray:
    """Easter Sunday (datetime64[D]) of each Gregorian year (the anonymous Gregorian computus)."""
    y = np.asarray(years, dtype=np.int64)
    a, b, c = y % 19, y // 100, y % 100
    d, e = b // 4, b % 4
    g = (b - (b + 8) // 25 + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = c // 4, c % 4
    el = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * el) // 451
    month, day = (h + el - 7 * m + 114) // 31, (h + el - 7 * m + 114) % 31 + 1
    first = (y - 1970).astype("datetime64[Y]").astype("datetime64[M]") + (month - 1)
    return first.astype("datetime64[D]") + (day - 1)


def easter_shape(days: np.ndarray) -> np.ndarray:
    """Ramps from 0 fourteen days before Easter Sunday to 1 on Good Friday; 1 to Easter Monday."""
    years = days.astype("datetime64[Y]").astype(np.int64) + 1970
    to_easter = (days - easter_sunday(years)).astype(np.int64)  # negative before Easter
    ramp = np.clip((to_easter + 14) / _EASTER_RAMP_DAYS, 0.0, 1.0)
    return np.where((to_easter >= -14) & (to_easter <= 1), ramp, 0.0)


def as_days(dates: Sequence[dt.date] | np.ndarray) -> np.ndarray:
    """Dates as a flat datetime64[D] array."""
    return np.asarray(dates, dtype="datetime64[D]").reshape(-1)


_REQUIRED = (
    "log_base", "trend_per_day", "holiday_log_peak", "holiday_log_dip", "summer_log_peak",
    "elasticity", "ref_price", "origin", "launched_on", *WEEKDAY_COLUMNS,
)  # fmt: skip


def demand_from_truth(truth: pl.DataFrame) -> Demand:
    """The formula's arrays from a truth frame (optional features where their columns exist).

    Raises:
        ValueError: if a required column is missing.
    """
    missing = [c for c in _REQUIRED if c not in truth.columns]
    if missing:
        raise ValueError(f"truth frame lacks columns {missing}; pass World.truth")

    def col(name: str) -> np.ndarray:
        return truth[name].to_numpy().astype(np.float64)

    def optional(name: str) -> np.ndarray | None:
        return col(name) if name in truth.columns else None

    def date(name: str, default: np.datetime64) -> np.ndarray | None:
        if name not in truth.columns:
            return None
        values = truth[name].to_numpy().astype("datetime64[D]")
        return np.where(np.isnat(values), default, values)

    return Demand(
        log_base=col("log_base"),
        trend_per_day=col("trend_per_day"),
        log_weekly=np.log(truth.select(WEEKDAY_COLUMNS).to_numpy().astype(np.float64)),
        holiday_log_peak=col("holiday_log_peak"),
        holiday_log_dip=col("holiday_log_dip"),
        summer_log_peak=col("summer_log_peak"),
        elasticity=col("elasticity"),
        ref_price=col("ref_price"),
        origin=truth["origin"].to_numpy().astype("datetime64[D]"),
        launched_on=truth["launched_on"].to_numpy().astype("datetime64[D]"),
        black_friday_log_peak=optional("black_friday_log_peak"),
        easter_log_peak=optional("easter_log_peak"),
        delisted_on=date("delisted_on", _NEVER),
        break_on=date("break_on", _LONG_AGO),
        break_log_shift=optional("break_log_shift"),
        break_trend_change=optional("break_trend_change"),
        latent=_latent_from_truth(truth),
        promo_lift=optional("promo_lift"),
    )


def latent_columns(k: int) -> tuple[str, str, str]:
    """The truth columns of latent wave k (1-based): amplitude, period in days, phase."""
    return f"latent_amp_{k}", f"latent_period_{k}", f"latent_phase_{k}"


def _latent_from_truth(truth: pl.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    if latent_columns(1)[0] not in truth.columns:
        return None
    parts = [
        np.stack([truth[latent_columns(k)[j]].to_numpy() for k in range(1, LATENT_WAVES + 1)], 1)
        for j in range(3)
    ]
    amp, period, phase = (p.astype(np.float64) for p in parts)
    return amp, period, phase


def true_daily_mean(
    truth: pl.DataFrame,
    dates: Sequence[dt.date],
    prices: np.ndarray,
    promo: np.ndarray | None = None,
) -> np.ndarray:
    """Expected units per product and day if product i is sold at prices[i] on every day of `dates`.

    Args:
        truth: the `World.truth` frame (or a subset of its rows).
        dates: the days to evaluate, any dates (past or future).
        prices: shape [P], one price per truth row.
        promo: optional bool mask [P, len(dates)] of promotion days (their lift applies where the
            world has one); None: no promotions, as on the days the engine prices.

    Returns:
        Array [P, len(dates)] in truth row order; days before a product's launch (or from its
        delisting) give 0.

    Raises:
        ValueError: if `prices` does not have one entry per truth row.
    """
    price = np.asarray(prices, dtype=np.float64)
    if price.shape != (truth.height,):
        raise ValueError(f"prices must have shape ({truth.height},), got {price.shape}")
    return daily_mean(demand_from_truth(truth), as_days(dates), price[:, None], promo)


def true_expected_units(
    truth: pl.DataFrame, dates: Sequence[dt.date], prices: np.ndarray
) -> np.ndarray:
    """Expected units summed over `dates` at constant candidate prices (no promotions).

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
    demand = demand_from_truth(truth)
    # The price factor is constant over the days, so the sum factorises: sum_d baseline * factor.
    baseline_total = baseline(demand, as_days(dates)).sum(axis=1)
    units = baseline_total[:, None] * price_factor(demand, price.reshape(truth.height, -1))
    return units if price.ndim == 2 else units[:, 0]
