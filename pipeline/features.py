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
    good = observed & ~stockout
    n_good = good.sum(axis=1)
    level = np.where(n_good > 0, (units * good).sum(axis=1) / np.maximum(n_good, 1), 0.0)
    ref_price = np.array(
        [np.median(price[i, observed[i]]) if observed[i].any() else 1.0 for i in range(shape[0])]
    )
    price_varied = np.array(
        [
            np.ptp(np.log(price[i, observed[i]])) > 1e-3 if observed[i].any() else False
            for i in range(shape[0])
        ]
    )
    return Panel(
        product_ids=tuple(product_ids),
        start=start,
        units=units,
        observed=observed,
        stockout=stockout,
        price=price.astype(np.float32),
        promo=promo,
        ref_price=ref_price.astype(np.float32),
        level=level.astype(np.float32),
        n_observed=observed.sum(axis=1),
        price_varied=price_varied,
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


def glm_elasticity(
    panel: Panel,
    calendar: np.ndarray,
    groups: np.ndarray | None = None,
    iterations: int = 10,
) -> tuple[np.ndarray, np.ndarray]:
    """Per-product negative-binomial regression estimate of the elasticity, with its std error.

    log E[units_t] = a + b * trend_t + c . calendar_t + e * log(price_t / ref_price), fitted by
    iteratively reweighted least squares for all products at once (batched normal equations) on
    observed, uncensored days. It uses every price movement of the whole history (regular changes
    as well as promotions) with season and trend held fixed, which is where the elasticity is best
    identified. The first half of the iterations fit a Poisson model; the dispersion alpha is then
    estimated from its residuals and the rest use negative-binomial weights mu / (1 + alpha mu),
    which are far more efficient than Poisson weights for overdispersed, high-volume products.

    With `groups` ([P] labels such as categories), the trend and calendar coefficients (weekday,
    season, holidays) are pooled: a first fit gives each group's mean and spread of them, and a
    second fit shrinks each product's toward its group (a normal prior, empirical Bayes; a
    coefficient that really differs between products has a wide spread and barely moves).
    Products of a category share most of their weekly and seasonal shape, so a slow seller no
    longer spends its few sales on estimating them, and less of the slow regular price movements
    leaks into a noisy trend or season. The level and the elasticity stay each product's own.

    Returns:
        elasticity [P] clipped to [-5, -0.05], and its standard error [P].
    """
    good = (panel.observed & ~panel.stockout).astype(np.float64)
    p, t = panel.units.shape
    trend = np.linspace(-1.0, 1.0, t)
    shared = np.concatenate([np.ones((t, 1)), trend[:, None], calendar[:t, 1:]], axis=1)
    log_ratio = np.log(panel.price / panel.ref_price[:, None]).astype(np.float64)
    x = np.concatenate([np.broadcast_to(shared, (p, t, shared.shape[1])), log_ratio[..., None]], -1)
    y = panel.units.astype(np.float64)
    start = np.log(panel.level + 0.05)
    beta, cov = _nb_glm(x, y, good, start, None, iterations)
    if groups is not None:
        pooled = np.arange(1, x.shape[-1] - 1)  # the trend and calendar columns
        eligible = good.sum(axis=1) >= _POOLING_MIN_DAYS
        prior = _group_prior(beta, cov, np.asarray(groups), eligible, pooled)
        beta, cov = _nb_glm(x, y, good, start, prior, iterations)
    se = np.sqrt(np.maximum(cov[:, -1, -1], 0.0))
    return np.clip(beta[:, -1], -5.0, -0.05), se


# Products with fewer usable days do not shape their group's prior (their season is mostly noise).
_POOLING_MIN_DAYS = 180
# A normal prior on regression coefficients: (mean [P, F], precision [P, F]); None = flat.
_Prior = tuple[np.ndarray, np.ndarray] | None


def _nb_glm(
    x: np.ndarray,
    y: np.ndarray,
    good: np.ndarray,
    log_level: np.ndarray,
    prior: _Prior,
    iterations: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Batched negative-binomial IRLS (Poisson first, see `glm_elasticity`) with a normal prior.

    Args:
        x: [P, T, F] design; y: [P, T] counts; good: [P, T] 1 on days that count.
        log_level: [P] starting intercept.
        prior: per-product prior mean and precision of each coefficient, or None.

    Returns:
        The coefficients [P, F] and their covariance [P, F, F] (scaled by the Pearson dispersion).
    """
    p, _, f = x.shape
    precision = np.broadcast_to(1e-3 * np.eye(f), (p, f, f)).copy()  # a tiny ridge everywhere
    prior_mean = np.zeros((p, f))
    if prior is not None:
        prior_mean, prior_precision = prior
        precision[:, np.arange(f), np.arange(f)] += prior_precision
    pull = np.einsum("pfg,pg->pf", precision, prior_mean)
    beta = np.zeros((p, f))
    beta[:, 0] = log_level
    alpha = np.zeros((p, 1))
    xt = np.swapaxes(x, 1, 2)  # [P, F, T]: batched matrix products go through BLAS

    def linear(b: np.ndarray) -> np.ndarray:
        return np.clip(np.matmul(x, b[..., None])[..., 0], -20, 15)

    def gram(w: np.ndarray) -> np.ndarray:
        return np.matmul(xt * w[:, None, :], x) + precision

    for step in range(iterations):
        eta = linear(beta)
        mu = np.exp(eta)
        if step == iterations // 2:
            alpha = _nb_alpha(y, mu, good)
        w = good * mu / (1.0 + alpha * mu)
        z = eta + (y - mu) / np.maximum(mu, 1e-9)
        rhs = np.matmul(xt, (w * z)[..., None])[..., 0] + pull
        beta = np.linalg.solve(gram(w), rhs[..., None])[..., 0]
    mu = np.exp(linear(beta))
    var_y = mu + alpha * mu**2
    dof = np.maximum(good.sum(axis=1) - f, 1.0)
    phi = np.maximum((good * (y - mu) ** 2 / var_y).sum(axis=1) / dof, 1.0)
    return beta, np.linalg.inv(gram(good * mu / (1.0 + alpha * mu))) * phi[:, None, None]


def _group_prior(
    beta: np.ndarray, cov: np.ndarray, groups: np.ndarray, eligible: np.ndarray, columns: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Each group's precision-weighted mean of `columns` and, as precision, 1 / their spread.

    The spread tau^2 of a coefficient is the variance of the eligible estimates beyond their own
    noise (at least 1e-3). A group with fewer than 5 eligible products uses all groups' values.
    Other columns get a zero precision (no prior).
    """
    mean, precision = np.zeros(beta.shape), np.zeros(beta.shape)

    def moments(members: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        b = beta[members][:, columns]
        v = np.maximum(cov[members][:, columns, columns], 1e-9)
        centre = np.average(b, weights=1.0 / v, axis=0)
        tau2 = np.maximum(b.var(axis=0) - np.median(v, axis=0), 1e-3)
        return centre, 1.0 / tau2

    if eligible.sum() < 5:
        return mean, precision
    overall = moments(eligible)
    for group in np.unique(groups):
        members = groups == group
        known = members & eligible
        centre, prec = moments(known) if known.sum() >= 5 else overall
        mean[np.ix_(members, columns)] = centre
        precision[np.ix_(members, columns)] = prec
    return mean, precision


def _nb_alpha(y: np.ndarray, mu: np.ndarray, good: np.ndarray) -> np.ndarray:
    """Method-of-moments negative-binomial dispersion per product: E[(y-mu)^2 - mu] = alpha mu^2."""
    excess = (good * ((y - mu) ** 2 - mu)).sum(axis=1)
    alpha = excess / np.maximum((good * mu**2).sum(axis=1), 1e-9)
    return np.clip(alpha, 0.0, 5.0)[:, None]


def shrink_elasticities(
    estimate: np.ndarray, se: np.ndarray, groups: np.ndarray, identified_se: float = 1.0
) -> tuple[np.ndarray, np.ndarray]:
    """Partial pooling: shrink each product's elasticity toward its group's (category's) mean.

    Empirical Bayes with a normal prior per group: mean = precision-weighted group mean, variance
    tau^2 = the group's spread of estimates beyond their own noise (at least 0.05), both computed
    from the group's identified estimates only (standard error below `identified_se`: a product
    whose price never moved says nothing about the spread). A precise estimate barely moves; a
    noisy one (an intermittent product) moves toward its category.

    Returns:
        The posterior means (<= -0.05) and standard deviations, [P] each.
    """
    post, post_se = estimate.astype(np.float64).copy(), se.astype(np.float64).copy()
    precision = 1.0 / np.maximum(se, 1e-6) ** 2
    for group in np.unique(groups):
        members = groups == group
        known = members & (se < identified_se)
        if known.sum() < 3:
            continue
        prior = np.average(estimate[known], weights=precision[known])
        tau2 = max(float(np.var(estimate[known]) - np.mean(se[known] ** 2)), 0.05)
        weight = precision[members] / (precision[members] + 1.0 / tau2)
        post[members] = weight * estimate[members] + (1.0 - weight) * prior
        post_se[members] = np.sqrt(1.0 / (precision[members] + 1.0 / tau2))
    return np.minimum(post, -0.05), post_se
