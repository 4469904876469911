"""Statistics of the sales history: the negative-binomial regression elasticity and its pooling.

A whole-history per-product regression (trend, calendar, holidays, a promotion term, log price
ratio) fitted by batched IRLS, with empirical-Bayes pooling of its nuisance coefficients and of
the elasticity itself within categories (DESIGN section 4); a robust standard error that
widens for overdispersion, misfit and slow demand drift; and a test that names prices set in
response to demand. The forecaster holds these elasticities fixed while it learns the baseline
around them. No I/O and no Keras here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline import glm
from pipeline.arrays import Z90
from pipeline.contract import STATUS_CONFOUNDED, STATUS_NOT_IDENTIFIED, STATUS_TRAINED
from pipeline.features import Panel

# Which price moves identify a product's elasticity (`ElasticityFit.identified_by`).
IDENTIFIED_REGULAR = "regular"  # regular (non-promotional) price moves, no promotions
IDENTIFIED_BOTH = "regular_and_promo"  # regular moves and promotions (their lift estimated)
IDENTIFIED_PROMO_ONLY = "promo_only"  # only promotions moved the price: lift and cut confounded
IDENTIFIED_NONE = "none"  # the price never moved

# The clip of a reported elasticity: demand never rises with price, and beyond -5 a product is
# priced as if it were -5 anyway (a 1% price change moving units by 5%).
ELASTICITY_MIN, ELASTICITY_MAX = -5.0, -0.05
# A product is confounded when its price moves across weeks read demand as this many standard
# errors less elastic than its moves within weeks (one-sided: prices set in response to demand
# bias the estimate up), or when its own estimate says demand does not fall with price at all
# (at least ELASTICITY_MAX) with a standard error below CONFOUNDED_SE (a noisy estimate there is
# only noise).
CONFOUNDED_Z, CONFOUNDED_SE = 3.0, 0.5
# Smallest spread of a category's elasticities assumed by the pooling (sd 0.22).
SHRINK_TAU2_MIN = 0.05
# Products with fewer usable days do not shape their group's prior (their season is mostly noise).
_POOLING_MIN_DAYS = 180
# A level break (`level_breaks`): the product's weekly mean residual shifts by more than BREAK_Z
# times its week-to-week noise, with at least BREAK_MIN_WEEKS weeks of sales on either side.
BREAK_Z, BREAK_MIN_WEEKS = 4.0, 8


@dataclass(frozen=True)
class ElasticityFit:
    """What the regression says about each product's price response ([P] arrays).

    Attributes:
        elasticity: the partially pooled elasticity, clipped to [ELASTICITY_MIN, ELASTICITY_MAX].
        se: its standard deviation (robust to overdispersion, misfit and slow demand drift,
            with the pooling's own uncertainty).
        promo_effect: log lift of a promotion beyond its price cut (0.18 = 20% more units);
            NaN for a product without promotion days.
        identified_by: which price moves identify the elasticity (the IDENTIFIED_* names).
        confounding_z: how many standard errors less elastic demand reads across weeks than
            within them (NaN where no price moved within a week); see `_confounding_z`.
        raw_elasticity, raw_se: the product's own estimate before pooling, and its error.
    """

    elasticity: np.ndarray
    se: np.ndarray
    promo_effect: np.ndarray
    identified_by: np.ndarray
    confounding_z: np.ndarray
    raw_elasticity: np.ndarray
    raw_se: np.ndarray

    @property
    def lo(self) -> np.ndarray:
        """Lower end of the ~90% interval."""
        return self.elasticity - Z90 * self.se

    @property
    def hi(self) -> np.ndarray:
        """Upper end of the ~90% interval (<= 0)."""
        return np.minimum(self.elasticity + Z90 * self.se, 0.0)

    @property
    def confounded(self) -> np.ndarray:
        """[P] Its price moves with its demand (or with what drives it): not to be trusted."""
        return confounded(self.confounding_z, self.raw_elasticity, self.raw_se, self.identified_by)


@dataclass(frozen=True)
class ElasticityPool:
    """Own (unpooled) estimates of products not in the fit, that shape its groups' priors.

    A night retrains only the products whose model expired, often a few at a time: pooled only
    among themselves, a category with fewer than 3 identified estimates tonight would not be
    pooled at all, and a noisy estimate would be priced as it stands. The night passes its
    other products' own estimates (their current models', `raw_elasticity` and `raw_se`), so
    every product is pooled against its whole category.

    Attributes:
        estimate, se, groups: [Q] each product's own estimate, its standard error and group.
    """

    estimate: np.ndarray
    se: np.ndarray
    groups: np.ndarray


def confounded(
    confounding_z: np.ndarray,
    raw_elasticity: np.ndarray,
    raw_se: np.ndarray,
    identified_by: np.ndarray,
) -> np.ndarray:
    """[P] Whether each product's price moves with its demand, by either sign of it.

    Its price moves across weeks read demand as more than CONFOUNDED_Z standard errors less
    elastic than its moves within weeks (`_confounding_z`), or its own estimate says demand
    does not fall with price at all (at least ELASTICITY_MAX, with a standard error below
    CONFOUNDED_SE). A product whose price never moved is not identified rather than confounded.
    """
    moves_with_demand = np.nan_to_num(np.asarray(confounding_z, dtype=np.float64)) > CONFOUNDED_Z
    not_falling = (raw_elasticity >= ELASTICITY_MAX) & (raw_se < CONFOUNDED_SE)
    return (moves_with_demand | not_falling) & (np.asarray(identified_by) != IDENTIFIED_NONE)


def evidence_statuses(fit: ElasticityFit, price_varied: np.ndarray) -> np.ndarray:
    """[P] What the price history lets each product's elasticity be: a status per product.

    `not_identified` where the price never moved, moved only on promotions (a promotion's own
    lift cannot be told from its cut) or only on days it sold out (censored days say nothing of
    demand), `confounded` where it moves with demand (`confounded`), `trained` otherwise (the
    quality gate, which needs the network, may still fail it).
    """
    unidentified = ~np.asarray(price_varied, dtype=bool) | np.isin(
        np.asarray(fit.identified_by), [IDENTIFIED_PROMO_ONLY, IDENTIFIED_NONE]
    )
    return np.select(
        [unidentified, fit.confounded],
        [STATUS_NOT_IDENTIFIED, STATUS_CONFOUNDED],
        STATUS_TRAINED,
    ).astype(object)


def regression_elasticities(
    panel: Panel,
    calendar: np.ndarray,
    groups: np.ndarray | None = None,
    iterations: int = 10,
    pool: ElasticityPool | None = None,
) -> ElasticityFit:
    """Each product's elasticity as training fixes it: the regression, then partial pooling.

    Args:
        panel: the history to fit on.
        calendar: [>= T, N_CALENDAR] calendar features of the panel's days.
        groups: [P] labels (categories) to pool within, or None (each product alone).
        iterations: IRLS iterations.
        pool: other products' own estimates that shape each group's prior as well (with groups).
    """
    fit = _fit(panel, calendar, groups, iterations)
    estimate, se = fit.elasticity, fit.se
    if groups is not None:
        estimate, se = shrink_elasticities(estimate, se, np.asarray(groups), pool=pool)
    return ElasticityFit(
        elasticity=np.clip(estimate, ELASTICITY_MIN, ELASTICITY_MAX),
        se=se,
        promo_effect=fit.promo_effect,
        identified_by=fit.identified_by,
        confounding_z=fit.confounding_z,
        raw_elasticity=fit.elasticity,
        raw_se=fit.se,
    )


def glm_elasticity(
    panel: Panel,
    calendar: np.ndarray,
    groups: np.ndarray | None = None,
    iterations: int = 10,
) -> tuple[np.ndarray, np.ndarray]:
    """Per-product negative-binomial regression estimate of the elasticity, with its std error.

    log E[units_t] = a + b * trend_t + c . calendar_t + g * promo_t + e * log(price_t / ref),
    fitted by iteratively reweighted least squares for all products at once (batched normal
    equations) on observed, uncensored days. It uses every price movement of the whole history
    (regular changes as well as promotions) with season and trend held fixed. The promotion
    term g takes a promotion's display and feature lift beyond its price cut, which would
    otherwise be read as price response; regular price moves and the promotions' varying depth
    tell the two apart. The first half of the iterations fit a Poisson model; the dispersion
    alpha is then estimated from neighbouring days (`glm.local_alpha`) and the rest use
    negative-binomial weights mu / (1 + alpha mu).

    With `groups` ([P] labels such as categories), the trend, calendar (weekday, season,
    holidays) and promotion coefficients are pooled: a first fit gives each group's mean and
    spread of them (random effects), and a second fit shrinks each product's toward its group.
    Products of a category share most of their weekly and seasonal shape and much of their
    promotions' lift, so a slow seller no longer spends its few sales on estimating them. The
    level and the elasticity stay each product's own. Without groups only the promotion's lift
    is pooled (over all products): a product's promotions mostly move its price along with its
    lift, so estimating the lift alone costs its elasticity dearly.

    The standard error is robust: a sandwich over blocks of glm.CLUSTER_DAYS days plus the variance
    that slow demand drift the model misses adds (`glm.drift_variance`).

    Returns:
        elasticity [P] (not clipped; `shrink_elasticities` pools and clips it), and its
        standard error [P].
    """
    fit = _fit(panel, calendar, groups, iterations)
    return fit.elasticity, fit.se


@dataclass(frozen=True)
class _RawFit:
    elasticity: np.ndarray
    se: np.ndarray
    promo_effect: np.ndarray
    identified_by: np.ndarray
    confounding_z: np.ndarray


def _fit(panel: Panel, calendar: np.ndarray, groups: np.ndarray | None, iterations: int) -> _RawFit:
    good = (panel.observed & ~panel.stockout).astype(np.float64)
    x = design(panel, calendar)
    y = panel.units.astype(np.float64)
    start = np.log(panel.level + 0.05)
    source = identification(panel)
    has_promo = (good * panel.promo).sum(axis=1) > 0
    last = slice(-1, None)  # the elasticity's column
    fit = glm.nb_glm(x, y, good, start, None, iterations)
    unbroken = np.zeros(len(y))  # the elasticity's variance without the breaks
    breaks = level_breaks(fit, x, y, good)
    if (breaks >= 0).any():
        h = glm.influence(fit, x, last)
        unbroken = _variance(fit, h, y, good, last)[:, 0]
        x = with_breaks(x, breaks)
        fit = glm.nb_glm(x, y, good, start, None, iterations)
    variance = _variance(fit, glm.influence(fit, x), y, good, slice(None))
    columns = np.r_[np.arange(1, calendar.shape[1] + 1), x.shape[-1] - 2]
    mask = np.repeat((good.sum(axis=1) >= _POOLING_MIN_DAYS)[:, None], columns.size, axis=1)
    # Only products with promotions and regular moves tell the promotion's lift apart.
    mask[:, -1] &= has_promo & (source == IDENTIFIED_BOTH)
    # A product with a break fits its trend and season beside it: they do not shape its group's.
    mask[:, :-1] &= (breaks < 0)[:, None]
    if groups is None:
        # Each product keeps its own calendar; the promotion's lift, which costs a product's
        # elasticity dearly to estimate alone, still borrows from all products.
        mask[:, :-1] = False
        groups = np.zeros(len(y), dtype=int)
    prior = _group_prior(fit.beta, variance, np.asarray(groups), mask, columns)
    if prior[1].any():
        fit = glm.nb_glm(x, y, good, start, prior, iterations)
    # Only the elasticity's (last) column is needed from here on.
    variance = _variance(fit, glm.influence(fit, x, last), y, good, last)
    # A break found may be slow drift instead (which the variance without it allows for): the
    # estimate takes the break, its error the larger of the two.
    variance = np.maximum(variance[:, 0], np.where(breaks >= 0, unbroken, 0.0))
    return _RawFit(
        elasticity=fit.beta[:, -1],
        se=np.sqrt(variance),
        promo_effect=np.where(has_promo, fit.beta[:, -2], np.nan),
        identified_by=source,
        confounding_z=_confounding_z(
            fit, x, y, good, np.cumsum(calendar[: x.shape[1], 0]).astype(int)
        ),
    )


def _variance(
    fit: glm.GlmFit, h: np.ndarray, y: np.ndarray, good: np.ndarray, columns: slice
) -> np.ndarray:
    """Robust variance of the coefficients `columns` (influence `h`): blocks plus slow drift."""
    return glm.robust_variance(fit, h, y, good, columns) + glm.drift_variance(fit, h, y, good)


def design(panel: Panel, calendar: np.ndarray) -> np.ndarray:
    """The regression's design [P, T, F]: 1, trend, calendar (Monday dropped), promo, log price.

    The elasticity's column is the last, the promotion's the one before it.
    """
    p, t = panel.units.shape
    trend = np.linspace(-1.0, 1.0, t)
    shared = np.concatenate([np.ones((t, 1)), trend[:, None], calendar[:t, 1:]], axis=1)
    log_ratio = np.log(panel.price / panel.ref_price[:, None]).astype(np.float64)
    own = np.stack([panel.promo.astype(np.float64), log_ratio], axis=-1)
    return np.concatenate([np.broadcast_to(shared, (p, t, shared.shape[1])), own], axis=-1)


def level_breaks(fit: glm.GlmFit, x: np.ndarray, y: np.ndarray, good: np.ndarray) -> np.ndarray:
    """[P] The first day after each product's level break, -1 where it has none.

    Demand can shift for good (a competitor opens, the product is listed in more stores): a
    linear trend then misfits the whole history, and a price move near the shift reads it as
    price response. The fit's working residuals are summed by week (whole weeks ending at the
    last day); for every split of the weeks, a score test asks whether a level step there
    (beyond every column the fit already has: trend and season take up part of a shift)
    explains them, in units of their week-to-week noise (the median absolute difference of
    successive standardised weeks, which one shift barely moves). The best split is a break
    where its score exceeds BREAK_Z, with BREAK_MIN_WEEKS weeks of sales on either side.
    """
    p, t = y.shape
    n_weeks = t // 7
    if n_weeks < 2 * BREAK_MIN_WEEKS:
        return np.full(p, -1)
    first = t - n_weeks * 7
    w = good * fit.weights
    weight = glm.whole_weeks(w)  # [P, W]
    total = glm.whole_weeks(w * glm.working_residuals(fit, y, good))
    seen = weight > 1e-9
    z = np.where(seen, total / np.sqrt(np.maximum(weight, 1e-12)), np.nan)
    step = np.abs(np.diff(z, axis=1))
    noise = 1.4826 * np.nanmedian(np.where(np.isfinite(step), step, np.nan), axis=1) / np.sqrt(2)
    noise = np.where(np.isfinite(noise) & (noise > 0), noise, np.inf)
    # The score of a step after each week, and its variance once made orthogonal (in the fit's
    # weights) to every column the fit already has: only what they cannot take up is evidence.
    week_x = glm.whole_weeks(w[..., None] * x)  # [P, W, F]

    def after(a: np.ndarray) -> np.ndarray:  # sums over the weeks after each split: [P, W-1, ...]
        return a.sum(axis=1, keepdims=True) - np.cumsum(a, axis=1)[:, :-1]

    cross = after(week_x)
    spread = after(weight) - np.einsum("pkf,pfg,pkg->pk", cross, fit.bread, cross)
    with np.errstate(divide="ignore", invalid="ignore"):
        z_split = np.abs(after(total)) / (noise[:, None] * np.sqrt(np.maximum(spread, 1e-12)))
    before_n = np.cumsum(seen, axis=1)[:, :-1]
    allowed = (before_n >= BREAK_MIN_WEEKS) & (
        seen.sum(axis=1, keepdims=True) - before_n >= BREAK_MIN_WEEKS
    )
    z_split = np.where(allowed & np.isfinite(z_split), z_split, 0.0)
    best = z_split.argmax(axis=1)  # the split after week `best`
    found = z_split[np.arange(p), best] > BREAK_Z
    return np.where(found, first + (best + 1) * 7, -1)


def with_breaks(x: np.ndarray, breaks: np.ndarray) -> np.ndarray:
    """The design with a level step and a trend change from each product's break (`breaks`).

    Two columns before the promotion's and the elasticity's (which stay the last two): 1 from
    the break on, and the days since the break over the history's length; 0 for a product
    without a break (the fit's small ridge holds their coefficients at 0).
    """
    t = x.shape[1]
    day = np.arange(t)[None, :]
    after = (day >= breaks[:, None]) & (breaks[:, None] >= 0)
    extra = np.stack([after, np.where(after, (day - breaks[:, None]) / t, 0.0)], axis=-1)
    return np.concatenate([x[..., :-2], extra.astype(np.float64), x[..., -2:]], axis=-1)


def identification(panel: Panel) -> np.ndarray:
    """Which price moves identify each product's elasticity (IDENTIFIED_*), over uncensored days.

    Regular moves are changes of the price paid outside promotions; a product whose price moved
    only on promotion days cannot tell the promotion's own lift from its price cut.
    """
    good = panel.observed & ~panel.stockout
    log_price = np.log(np.maximum(panel.price, 1e-9))

    def spread(days: np.ndarray) -> np.ndarray:
        high = np.where(days, log_price, -np.inf).max(axis=1)
        low = np.where(days, log_price, np.inf).min(axis=1)
        return np.where(days.any(axis=1), high - low, 0.0)

    regular = spread(good & ~panel.promo) > 1e-3
    moved = spread(good) > 1e-3
    promo = (good & panel.promo).any(axis=1)
    return np.select(
        [regular & promo, regular, moved],
        [IDENTIFIED_BOTH, IDENTIFIED_REGULAR, IDENTIFIED_PROMO_ONLY],
        IDENTIFIED_NONE,
    ).astype(object)


def _confounding_z(
    fit: glm.GlmFit, x: np.ndarray, y: np.ndarray, good: np.ndarray, week: np.ndarray
) -> np.ndarray:
    """How much less elastic demand reads across weeks than within them, in standard errors: [P].

    Prices set in response to demand (as hotels and events do) follow its swings from week to
    week, which makes the regression read demand as less elastic than it is. A second estimate
    gives every week its own level (one Newton step of the fit with week fixed effects, by
    weighted within-week demeaning): it uses only the price moves inside a week (a regular move
    on a Wednesday, a promotion's start), which week-to-week swings of demand cannot explain.
    The difference of the two, in standard errors of the difference (day noise and slow drift,
    `glm.drift_variance`), is about N(0, 1) when prices move independently of demand, and large
    and positive when they follow it. NaN where no price moved within a week.

    Args:
        week: [T] week index of each day (weeks start on Monday).
    """
    w = good * fit.weights
    total = np.maximum(_weekly_sums(w, week), 1e-12)  # [P, W]
    z = np.log(np.maximum(fit.mu, 1e-300)) + (y - fit.mu) / np.maximum(fit.mu, 1e-9)
    z_within = z - (_weekly_sums(w * z, week) / total)[:, week]
    x_within = x - (_weekly_sums(x * w[..., None], week) / total[..., None])[:, week]
    xt = np.swapaxes(x_within, 1, 2)
    bread = np.linalg.inv(np.matmul(xt * w[:, None, :], x_within) + fit.precision)
    rhs = np.matmul(xt, (w * z_within)[..., None]) + fit.pull[..., None]
    within = (bread @ rhs)[:, -1, 0]
    # Each day's weight in the difference of the two estimates.
    diff = (np.matmul(x, fit.bread[:, :, -1:]) - np.matmul(x_within, bread[:, :, -1:])) * w[
        ..., None
    ]
    noise = fit.phi * (diff[..., 0] ** 2 / np.maximum(w, 1e-12)).sum(axis=1)
    variance = noise + glm.drift_variance(fit, diff, y, good)[:, 0]
    moved = (w * x_within[..., -1] ** 2).sum(axis=1) > 1e-6
    z_stat = (fit.beta[:, -1] - within) / np.sqrt(np.maximum(variance, 1e-12))
    return np.where(moved, z_stat, np.nan)


def _weekly_sums(a: np.ndarray, week: np.ndarray) -> np.ndarray:
    """Sums of `a` [P, T, ...] over each week's days: [P, W, ...], W = week.max() + 1.

    `week` [T] is nondecreasing (days in order); a week without days sums to 0.
    """
    starts = np.flatnonzero(np.r_[True, np.diff(week) != 0])
    sums = np.zeros((a.shape[0], week.max() + 1, *a.shape[2:]))
    sums[:, week[starts]] = np.add.reduceat(a, starts, axis=1)
    return sums


def _group_prior(
    beta: np.ndarray,
    variance: np.ndarray,
    groups: np.ndarray,
    eligible: np.ndarray,
    columns: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Each group's random-effects mean of `columns` and, as precision, 1 / their spread.

    `eligible` [P, len(columns)] says which products shape each column's prior; a group with
    fewer than 5 of them uses all groups' values (and a column with fewer than 5 overall gets
    no prior). Other columns get a zero precision (no prior).
    """
    mean, precision = np.zeros(beta.shape), np.zeros(beta.shape)
    for k, column in enumerate(columns):
        usable = eligible[:, k]
        if usable.sum() < 5:
            continue
        b, v = beta[:, column], np.maximum(variance[:, column], 1e-9)
        overall = _random_effects(b[usable], v[usable], 1e-3)
        for group in np.unique(groups):
            members = groups == group
            known = members & usable
            centre, prec = (
                _random_effects(b[known], v[known], 1e-3) if known.sum() >= 5 else overall
            )
            mean[members, column] = centre
            precision[members, column] = prec
    return mean, precision


def _random_effects(
    estimate: np.ndarray, variance: np.ndarray, floor: float
) -> tuple[float, float]:
    """Random-effects mean and precision 1 / tau^2 of estimates with known sampling variances.

    tau^2 is DerSimonian and Laird's moment estimate of the spread beyond the estimates' own
    noise (at least `floor`); the mean weights each estimate by 1 / (variance + tau^2). Unlike
    the plain variance minus a typical noise, it is not inflated when a few estimates are much
    noisier than the rest.
    """
    w = 1.0 / variance
    fixed = float(np.sum(w * estimate) / np.sum(w))
    q = float(np.sum(w * (estimate - fixed) ** 2))
    c = float(np.sum(w) - np.sum(w**2) / np.sum(w))
    tau2 = max((q - (estimate.size - 1)) / max(c, 1e-12), floor)
    centre = float(np.average(estimate, weights=1.0 / (variance + tau2)))
    return centre, 1.0 / tau2


def shrink_elasticities(
    estimate: np.ndarray,
    se: np.ndarray,
    groups: np.ndarray,
    identified_se: float = 1.0,
    pool: ElasticityPool | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Partial pooling: shrink each product's elasticity toward its group's (category's) mean.

    Empirical Bayes with a normal prior per group: its spread tau^2 beyond the estimates' own
    noise (DerSimonian and Laird, at least SHRINK_TAU2_MIN) and its mean (each estimate
    weighted by 1 / (se^2 + tau^2)), both from the group's identified estimates only (standard
    error below `identified_se`: a product whose price never moved says nothing about the
    spread), the pool's included. A precise estimate barely moves; a noisy one (an intermittent
    product) moves toward its category. The posterior's standard deviation carries the
    uncertainty of the group's mean too. Estimates are pooled unclipped (a noisy estimate above
    zero still pulls its group's mean as far as it should) and clipped to [ELASTICITY_MIN,
    ELASTICITY_MAX] after.

    Returns:
        The posterior means and standard deviations, [P] each.
    """
    post, post_se = estimate.astype(np.float64).copy(), se.astype(np.float64).copy()
    precision = 1.0 / np.maximum(se, 1e-6) ** 2
    every, every_se, every_group = estimate, se, groups
    if pool is not None and len(pool.estimate):
        every = np.concatenate([estimate, np.asarray(pool.estimate, dtype=np.float64)])
        every_se = np.concatenate([se, np.asarray(pool.se, dtype=np.float64)])
        every_group = np.concatenate([np.asarray(groups, dtype=object), pool.groups.astype(object)])
    usable = np.isfinite(every) & (every_se < identified_se)
    for group in np.unique(groups):
        members = groups == group
        known = (every_group == group) & usable
        if known.sum() < 3:
            continue
        prior, tau_precision = _random_effects(every[known], every_se[known] ** 2, SHRINK_TAU2_MIN)
        prior_var = 1.0 / np.sum(1.0 / (every_se[known] ** 2 + 1.0 / tau_precision))
        weight = precision[members] / (precision[members] + tau_precision)
        post[members] = weight * estimate[members] + (1.0 - weight) * prior
        post_se[members] = np.sqrt(
            1.0 / (precision[members] + tau_precision) + (1.0 - weight) ** 2 * prior_var
        )
    return np.clip(post, ELASTICITY_MIN, ELASTICITY_MAX), post_se
