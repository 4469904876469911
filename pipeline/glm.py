"""Batched negative-binomial regression: the fit and its robust variances, for all products at once.

Every array has the product axis first: a design [P, T, F], counts [P, T] and a mask of the days
that count. `nb_glm` fits every product's coefficients by iteratively reweighted least squares
(batched normal equations through BLAS) with an optional normal prior per coefficient;
`robust_variance` and `drift_variance` say how uncertain they are when days are not independent.
`pipeline.stats` builds the elasticity model on it. No I/O here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.arrays import LOG_MAX, LOG_MIN

# Days per cluster of the robust standard error: neighbouring days share unmodelled demand (a
# local event, a competitor's promotion), so their scores are summed over blocks before squaring.
CLUSTER_DAYS = 28
# Weeks of lag over which slow demand drift the model misses is allowed to correlate residuals.
DRIFT_WEEKS = 26

# A normal prior on regression coefficients: (mean [P, F], precision [P, F]); None = flat.
Prior = tuple[np.ndarray, np.ndarray] | None


@dataclass(frozen=True)
class GlmFit:
    """A converged batched IRLS fit: coefficients and what the standard errors need."""

    beta: np.ndarray  # [P, F]
    bread: np.ndarray  # [P, F, F] inverse penalised information
    precision: np.ndarray  # [P, F, F] the prior's (and ridge's) precision
    pull: np.ndarray  # [P, F] precision times the prior's mean
    mu: np.ndarray  # [P, T]
    alpha: np.ndarray  # [P, 1]
    phi: np.ndarray  # [P] Pearson dispersion of the negative-binomial model (at least 1)

    @property
    def weights(self) -> np.ndarray:
        """IRLS weights mu / (1 + alpha mu) of every day (before the `good` mask): [P, T]."""
        return self.mu / (1.0 + self.alpha * self.mu)


def nb_glm(
    x: np.ndarray,
    y: np.ndarray,
    good: np.ndarray,
    log_level: np.ndarray,
    prior: Prior,
    iterations: int,
) -> GlmFit:
    """Batched negative-binomial IRLS (Poisson, then negative-binomial) with a normal prior.

    Args:
        x: [P, T, F] design; y: [P, T] counts; good: [P, T] 1 on days that count.
        log_level: [P] starting intercept.
        prior: per-product prior mean and precision of each coefficient, or None.
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
            alpha = local_alpha(y, mu, good)
        w = good * mu / (1.0 + alpha * mu)
        z = eta + (y - mu) / np.maximum(mu, 1e-9)
        rhs = np.matmul(xt, (w * z)[..., None])[..., 0] + pull
        beta = np.linalg.solve(gram(w), rhs[..., None])[..., 0]
    mu = np.exp(linear(beta))
    dof = np.maximum(good.sum(axis=1) - f, 1.0)
    phi = np.maximum((good * (y - mu) ** 2 / (mu + alpha * mu**2)).sum(axis=1) / dof, 1.0)
    bread = np.linalg.inv(gram(good * mu / (1.0 + alpha * mu)))
    return GlmFit(beta, bread, precision, pull, mu, alpha, phi)


def local_alpha(y: np.ndarray, mu: np.ndarray, good: np.ndarray) -> np.ndarray:
    """Negative-binomial dispersion from neighbouring days, blind to slow misfit: [P, 1].

    With u_t = y_t / mu_t, Var(u_t) = 1 / mu_t + alpha; slow movements of demand the model
    misses (a break, a wave) are nearly equal on neighbouring days and cancel in u_t - u_(t-1),
    so E[(u_t - u_(t-1))^2 - 1 / mu_t - 1 / mu_(t-1)] = 2 alpha. The misfit is left to the
    standard error's drift term instead of flattening every day's weight.
    """
    u = y / np.maximum(mu, 1e-9)
    inverse = 1.0 / np.maximum(mu, 1e-9)
    both = good[:, 1:] * good[:, :-1]
    excess = (u[:, 1:] - u[:, :-1]) ** 2 - inverse[:, 1:] - inverse[:, :-1]
    # Days with more sales weigh more: their Poisson part (1 / mu) is less noisy.
    weight = both / (inverse[:, 1:] + inverse[:, :-1] + 0.5) ** 2
    alpha = (weight * excess).sum(axis=1) / np.maximum(2.0 * weight.sum(axis=1), 1e-12)
    return np.clip(alpha, 0.0, 5.0)[:, None]


def influence(fit: GlmFit, x: np.ndarray, columns: slice = slice(None)) -> np.ndarray:
    """Each day's weight in the estimates of `columns` (all by default): bread x_t w_t [P, T, C]."""
    return np.matmul(x, fit.bread[:, :, columns]) * fit.weights[..., None]


def robust_variance(
    fit: GlmFit,
    influence: np.ndarray,
    y: np.ndarray,
    good: np.ndarray,
    columns: slice = slice(None),
    block: int = CLUSTER_DAYS,
) -> np.ndarray:
    """Cluster-robust (sandwich) variance of the coefficients `columns`, clustered by `block` days.

    `influence` [P, T, C] is theirs (`influence(fit, x, columns)`); returns [P, C]. Each day's
    pull on the coefficients is its influence times its working residual; pulls are
    summed within blocks of `block` consecutive days, and their squares summed (times G / (G - 1)
    for G blocks). It is never below the model-based variance (bread x Pearson dispersion),
    which it matches for a well-specified model with independent days, and which it replaces
    where the data say nothing (a price that never moved).
    """
    p, t, c = influence.shape
    diag = np.arange(fit.bread.shape[-1])[columns]
    model_based = fit.bread[:, diag, diag] * fit.phi[:, None]
    resid = good * (y - fit.mu) / np.maximum(fit.mu, 1e-9)
    n_blocks = -(-t // block)
    pulls = np.zeros((p, n_blocks * block, c))
    pulls[:, :t] = influence * resid[..., None]
    sums = pulls.reshape(p, n_blocks, block, c).sum(axis=2)  # [P, G, C]
    used = np.zeros((p, n_blocks * block), dtype=bool)
    used[:, :t] = good > 0
    g = used.reshape(p, n_blocks, block).any(axis=2).sum(axis=1)
    sandwich = (sums**2).sum(axis=1) * (g / np.maximum(g - 1, 1))[:, None]
    return np.maximum(sandwich, model_based)


def working_residuals(fit: GlmFit, y: np.ndarray, good: np.ndarray) -> np.ndarray:
    """IRLS working residuals (y - mu) / mu on the days that count, 0 elsewhere: [P, T]."""
    return np.where(good > 0, (y - fit.mu) / np.maximum(fit.mu, 1e-9), 0.0)


def whole_weeks(a: np.ndarray) -> np.ndarray:
    """Sums of `a` [P, T, ...] over whole weeks ending at the last day: [P, T // 7, ...]."""
    p, t = a.shape[:2]
    n_weeks = t // 7
    return a[:, t - n_weeks * 7 :].reshape(p, n_weeks, 7, *a.shape[2:]).sum(axis=2)


def drift_variance(
    fit: GlmFit, influence: np.ndarray, y: np.ndarray, good: np.ndarray
) -> np.ndarray:
    """Variance that slow demand drift the model does not describe adds to estimates: [P, C].

    The model misses slow movements of demand (a break, a wave, a competitor); they make
    residuals weeks apart alike, which neither the model-based nor the blocked sandwich
    variance sees. An estimate moves by sum_t h_t r_t (h_t: a day's influence, [P, T, C]; r_t:
    its working residual). With R_w a week's mean residual (its day noise averages out), the
    drift's covariance at a lag of k >= 1 weeks is the mean of R_w R_(w+k) (at lag 0 that of
    lag 1), and the variance it adds is sum_(w,v) H_w H_v c(|w - v|), H_w the week's summed
    influence, over lags up to DRIFT_WEEKS (Bartlett-tapered; negative totals count as 0).
    """
    p, t, c = influence.shape
    w = good * fit.weights
    resid = working_residuals(fit, y, good)
    n_weeks = t // 7
    if n_weeks < 2:
        return np.zeros((p, c))
    weight = whole_weeks(w)
    mean_resid, seen = whole_weeks(w * resid) / np.maximum(weight, 1e-12), weight > 0
    h_week = whole_weeks(influence * good[..., None])
    lags = min(DRIFT_WEEKS, n_weeks - 1)
    cov = np.zeros((p, lags + 1))
    for k in range(1, lags + 1):
        both = seen[:, k:] & seen[:, :-k]
        cov[:, k] = (mean_resid[:, k:] * mean_resid[:, :-k] * both).sum(axis=1)
        cov[:, k] /= np.maximum(both.sum(axis=1), 1)
    cov[:, 0] = np.maximum(cov[:, 1], 0.0)
    extra = np.zeros((p, c))
    for k in range(lags + 1):
        pair = (h_week[:, k:] * h_week[:, : n_weeks - k]).sum(axis=1)  # [P, C]
        extra += (1.0 if k == 0 else 2.0) * (1.0 - k / (lags + 1)) * cov[:, k, None] * pair
    return np.maximum(extra, 0.0)
