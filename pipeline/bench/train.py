"""`pricing bench train`: the batched per-product LSTM against the naive per-product Keras loop.

Both sides see the same synthetic world, the same history features, the same epochs and the same
horizon, and both are backtested at the same origins on the held-out tail. The naive side builds and
fits one `keras.Sequential` LSTM per product in a Python loop on 28-day windows (the usual way);
it is timed on a subset of products (its cost per product does not depend on how many there are)
and its products per second are compared with the batched model's on the whole world.
"""

from __future__ import annotations

import datetime as dt
import time

import numpy as np

from pipeline import forecast, model, synth
from pipeline.bench import machine, median_seconds
from pipeline.config import ModelConfig
from pipeline.features import Panel, build_panel, calendar_features, history_features

WINDOW = 28  # days of history the naive model sees per sample


def run(
    sizes: list[int], days: int, epochs: int, naive_products: int, repeats: int
) -> dict[str, object]:
    """Benchmark both sides at each world size; returns a JSON-able dict."""
    cfg = ModelConfig(epochs=epochs, min_epochs=epochs, patience=epochs + 1)
    results = [_one_size(n, days, cfg, naive_products, repeats) for n in sizes]
    return {"benchmark": "train", "machine": machine(), "config": _cfg(cfg), "sizes": results}


def _cfg(cfg: ModelConfig) -> dict:
    keys = ("horizon", "hidden_units", "segment_days", "epochs", "validation_days", "elasticity")
    return {k: getattr(cfg, k) for k in keys}


def _world_panel(n_products: int, days: int) -> tuple[Panel, np.ndarray]:
    """The trainable products of a synthetic world, and their categories (as the nightly uses)."""
    world = synth.generate_world(n_products, days, seed=0)
    ids = world.products["product_id"].to_list()
    panel = build_panel(world.sales, ids, world.sales["ds"].max() + dt.timedelta(days=1))
    keep = np.where(panel.n_observed >= 90)[0]
    return panel.select(keep), world.products["category"].to_numpy()[keep]


def _one_size(
    n_products: int, days: int, cfg: ModelConfig, naive_products: int, repeats: int
) -> dict:
    panel, categories = _world_panel(n_products, days)
    # The batched side pays for everything the nightly training does, the category-pooled
    # regression elasticities included; the naive loop learns its price response in the network.
    seconds, runs, result = median_seconds(
        lambda: model.train(panel, cfg, None, categories), repeats
    )
    outputs = forecast.model_outputs(result.net, panel, cfg, result.cutoff)
    batched_wape = forecast.wape(outputs.model_abs_error, outputs.actual_units)
    subset = np.arange(min(naive_products, len(panel.product_ids)))
    naive_seconds, naive_wape = naive_loop(panel.select(subset), cfg, result.cutoff)
    batched_rate = len(panel.product_ids) / seconds
    naive_rate = len(subset) / naive_seconds
    return {
        "products": len(panel.product_ids),
        "days": panel.n_days,
        "batched": {
            "seconds_median": round(seconds, 2),
            "seconds_runs": [round(s, 2) for s in runs],
            "products_per_s": round(batched_rate, 2),
            "ms_per_product_epoch": round(1000 * seconds / len(panel.product_ids) / cfg.epochs, 2),
            "backtest_wape_median": _median(batched_wape),
            "backtest_wape_median_naive_subset": _median(batched_wape[subset]),
        },
        "naive_loop": {
            "products_timed": len(subset),
            "seconds": round(naive_seconds, 2),
            "products_per_s": round(naive_rate, 3),
            "ms_per_product_epoch": round(1000 * naive_seconds / len(subset) / cfg.epochs, 1),
            "backtest_wape_median": _median(naive_wape),
        },
        "speedup_products_per_s": round(batched_rate / naive_rate, 1),
    }


def _median(values: np.ndarray) -> float | None:
    finite = values[np.isfinite(values)]
    return round(float(np.median(finite)), 4) if finite.size else None


def naive_loop(panel: Panel, cfg: ModelConfig, cutoff: int) -> tuple[float, np.ndarray]:
    """Fit one Sequential LSTM per product in a loop: seconds taken, backtest WAPE per product."""
    features = history_features(panel, calendar_features(panel.start, panel.n_days))
    origins = forecast.backtest_origins(panel.n_days, cutoff, cfg.horizon)
    started = time.perf_counter()
    wapes = []
    for i in range(len(panel.product_ids)):
        net = model.naive_product_model(WINDOW, features.shape[-1], cfg)
        x, y = _windows(panel, features, i, cutoff, cfg.horizon)
        scale = max(float(panel.level[i]), 0.05)
        net.fit(x, y / scale, epochs=cfg.epochs, batch_size=64, verbose=0)
        wapes.append(_naive_wape(net, panel, features, i, origins, cfg.horizon, scale))
        model.clear_session()
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
