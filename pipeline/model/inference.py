"""Using a trained net: the forecast of the latest segment, elasticities and their intervals."""

from __future__ import annotations

import numpy as np
from keras import ops

from pipeline.arrays import Z90, exp_clipped
from pipeline.config import ModelConfig
from pipeline.features import Panel
from pipeline.model.batching import make_batch, segment_starts
from pipeline.model.layers import DemandNet


def predict_segment(
    net: DemandNet, panel: Panel, cfg: ModelConfig, future_at_ref: bool
) -> np.ndarray:
    """Log expected units of the segment ending the day before `panel.end`: [P, L, K].

    Entry (l, k) is the forecast made at origin (end - L + l) for k + 1 days later. With
    `future_at_ref`, days on or after panel.end are priced at the reference price with no promo
    (the baseline a pricing decision starts from); earlier days use the prices actually paid.
    """
    seg_len = cfg.segment_days
    batch = make_batch(panel, np.array([panel.n_days - seg_len]), seg_len, cfg.horizon, (0, 0), 0)
    inputs = dict(batch.inputs)
    if future_at_ref:
        future = (np.arange(seg_len + cfg.horizon) >= seg_len)[None, None, :]
        inputs["log_price"] = np.where(future, 0.0, inputs["log_price"]).astype("float32")
        inputs["promo"] = np.where(future, 0.0, inputs["promo"]).astype("float32")
    return ops.convert_to_numpy(net(inputs))[0]


def elasticities(net: DemandNet) -> np.ndarray:
    """Each product's elasticity as a numpy array: [P], <= 0."""
    return ops.convert_to_numpy(net.elasticity())


def fit_statistics(net: DemandNet, panel: Panel, cfg: ModelConfig, z: float = Z90) -> dict:
    """Elasticity with an approximate ~90% interval (+- Z90 se) and residual dispersion per product.

    Computed over the one-day-ahead forecasts of the whole history. The standard error is the
    inverse Poisson Fisher information of the elasticity with the price term centred (the baseline
    absorbs its mean), inflated by the product's overdispersion (Pearson chi2 / n, at least 1).

    Returns:
        dict of [P] arrays: elasticity, elasticity_lo, elasticity_hi (<= 0), dispersion (the
        negative-binomial alpha, variance = mu + alpha mu^2).
    """
    elasticity = elasticities(net)
    starts = segment_starts(panel.n_days, cfg.segment_days, cfg.warmup_days)
    batch = make_batch(
        panel, starts, cfg.segment_days, cfg.horizon, (0, panel.n_days), cfg.warmup_days
    )
    mu = exp_clipped(ops.convert_to_numpy(net(batch.inputs))[..., 0])
    y, w = batch.targets[..., 0, 0], batch.targets[..., 0, 1]
    x = batch.inputs["log_price"][:, :, 1 : cfg.segment_days + 1]
    n = np.maximum(w.sum(axis=(0, 2)), 1.0)
    x_mean = (w * mu * x).sum(axis=(0, 2)) / np.maximum((w * mu).sum(axis=(0, 2)), 1e-9)
    info = (w * mu * (x - x_mean[None, :, None]) ** 2).sum(axis=(0, 2))
    pearson = (w * (y - mu) ** 2 / np.maximum(mu, 1e-6)).sum(axis=(0, 2)) / n
    se = np.sqrt(np.maximum(pearson, 1.0) / np.maximum(info, 1e-9))
    fixed_se = ops.convert_to_numpy(net.elasticity_se)
    se = np.where(fixed_se > 0, fixed_se, se)
    # Method-of-moments NB dispersion: E[(y - mu)^2 - mu] = alpha mu^2.
    excess = (w * ((y - mu) ** 2 - mu)).sum(axis=(0, 2))
    alpha = np.clip(excess / np.maximum((w * mu**2).sum(axis=(0, 2)), 1e-9), 1e-3, 5.0)
    return {
        "elasticity": elasticity,
        "elasticity_lo": elasticity - z * se,
        "elasticity_hi": np.minimum(elasticity + z * se, 0.0),
        "dispersion": alpha,
    }
