"""The naive per-product Keras loop, the baseline the batched forecaster is benchmarked against.

This *is* the naive Keras model (DESIGN section 8): one `keras.Sequential` LSTM built and fitted per
product in a Python loop on 28-day windows, the usual way, so it imports keras itself. It is not
part of the product; only `pricing bench train` (pipeline.bench.train) uses it.
"""

from __future__ import annotations

import time

# The forecaster's package first: it sets TensorFlow's environment (log level, oneDNN kernels)
# before TensorFlow loads, so this baseline runs on the kernels the batched model is timed on.
import pipeline.model  # noqa: F401

# isort: split
import keras
import numpy as np

from pipeline import forecast
from pipeline.config import ModelConfig
from pipeline.features import Panel, calendar_features, history_features

WINDOW = 28  # days of history the naive model sees per sample


def naive_product_model(window: int, n_features: int, cfg: ModelConfig) -> keras.Model:
    """The usual one-model-per-product LSTM (benchmark baseline): window -> next `horizon` days.

    Compiled with a Poisson loss on targets scaled by the product's level; built fresh for each
    product in a Python loop by `naive_loop`.
    """
    keras.utils.set_random_seed(cfg.seed)
    net = keras.Sequential(
        [
            keras.Input((window, n_features)),
            keras.layers.LSTM(cfg.hidden_units),
            keras.layers.Dense(cfg.horizon, activation="softplus"),
        ]
    )
    net.compile(optimizer=keras.optimizers.Adam(0.005), loss="poisson")
    return net


def clear_session() -> None:
    """Free Keras' global state between the naive loop's per-product models."""
    keras.backend.clear_session()


def naive_loop(panel: Panel, cfg: ModelConfig, cutoff: int) -> tuple[float, np.ndarray]:
    """Fit one Sequential LSTM per product in a loop: seconds taken, backtest WAPE per product."""
    features = history_features(panel, calendar_features(panel.start, panel.n_days))
    origins = forecast.backtest_origins(panel.n_days, cutoff, cfg.horizon)
    started = time.perf_counter()
    wapes = []
    for i in range(len(panel.product_ids)):
        net = naive_product_model(WINDOW, features.shape[-1], cfg)
        x, y = _windows(panel, features, i, cutoff, cfg.horizon)
        scale = max(float(panel.level[i]), 0.05)
        net.fit(x, y / scale, epochs=cfg.epochs, batch_size=64, verbose=0)
        wapes.append(_naive_wape(net, panel, features, i, origins, cfg.horizon, scale))
        clear_session()
    return time.perf_counter() - started, np.array(wapes)


def _windows(
    panel: Panel, features: np.ndarray, i: int, cutoff: int, horizon: int
) -> tuple[np.ndarray, np.ndarray]:
    """Training windows of product i whose targets are all observed and uncensored."""
    good = panel.observed[i] & ~panel.stockout[i]
    ends = np.arange(WINDOW, cutoff - horizon + 1)
    target_idx = ends[:, None] + np.arange(horizon)[None, :]
    keep = good[target_idx].all(axis=1) & panel.observed[i][ends - 1]
    ends = ends[keep]
    x = np.stack([features[i, e - WINDOW : e] for e in ends]) if ends.size else None
    if x is None:
        return np.zeros((1, WINDOW, features.shape[-1]), "float32"), np.zeros((1, horizon))
    return x.astype("float32"), panel.units[i][ends[:, None] + np.arange(horizon)[None, :]]


def _naive_wape(net, panel: Panel, features, i: int, origins, horizon: int, scale: float) -> float:
    x = np.stack([features[i, o - WINDOW : o] for o in origins]).astype("float32")
    predicted = net.predict(x, verbose=0) * scale
    err = actual = 0.0
    for row, origin in enumerate(origins):
        truth = panel.units[i, origin : origin + horizon]
        good = (panel.observed[i] & ~panel.stockout[i])[origin : origin + horizon]
        err += float((np.abs(truth - predicted[row]) * good).sum())
        actual += float((truth * good).sum())
    return err / actual if actual > 0 else float("nan")
