"""Statistics of the sales history: the negative-binomial regression elasticity and its pooling.

A whole-history per-product regression (trend, calendar, holidays, log price ratio) fitted by
batched IRLS, with empirical-Bayes pooling of its nuisance coefficients and of the elasticity itself
within categories (DESIGN section 4). The forecaster holds these elasticities fixed while it learns
the baseline around them. No I/O and no Keras here.
"""

from __future__ import annotations

import numpy as np

from pipeline.arrays import LOG_MAX, LOG_MIN
from pipeline.features import Panel


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
        return np.clip(np.matmul(x, b[..., None])[..., 0], LOG_MIN, LOG_MAX)

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
