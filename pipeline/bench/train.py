"""`pricing bench train`: the batched per-product LSTM against the naive per-product Keras loop.

Both sides see the same synthetic world, the same history features, the same epochs and the same
horizon, and both are backtested at the same origins on the held-out tail. The naive side builds and
fits one `keras.Sequential` LSTM per product in a Python loop on 28-day windows (the usual way);
it is timed on a subset of products (its cost per product does not depend on how many there are)
and its products per second are compared with the batched model's on the whole world.

The architecture options (`[model]` cell, layers, dropout, decoder) are each timed too, one at a
time, on the smallest world: their cost per product-epoch beside the default's there.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

import numpy as np

from pipeline import forecast, model, synth
from pipeline.bench import machine, median_seconds
from pipeline.bench.naive import naive_loop
from pipeline.config import ModelConfig
from pipeline.features import Panel, build_panel

# Each option alone, the rest of the config at its default.
OPTIONS: dict[str, dict[str, object]] = {
    "gru": {"cell": "gru"},
    "layers2": {"layers": 2},
    "layers3": {"layers": 3},
    "dropout": {"dropout": 0.2},
    "seq2seq": {"decoder": "seq2seq"},
    "local_level": {"local_level_days": 28},
}


def run(
    sizes: list[int],
    days: int,
    epochs: int,
    naive_products: int,
    repeats: int,
    options: bool = True,
) -> dict[str, object]:
    """Benchmark both sides at each world size (and, with `options`, each architecture option on
    the smallest); returns a JSON-able dict."""
    cfg = ModelConfig(epochs=epochs, min_epochs=epochs, patience=epochs + 1)
    results = [_one_size(n, days, cfg, naive_products, repeats) for n in sizes]
    out = {"benchmark": "train", "machine": machine(), "config": _cfg(cfg), "sizes": results}
    if options and sizes:
        smallest = min(range(len(sizes)), key=lambda i: sizes[i])
        default_ms = results[smallest]["batched"]["ms_per_product_epoch"]
        out["options"] = _options(sizes[smallest], days, cfg, repeats, default_ms)
    return out


def _options(n_products: int, days: int, cfg: ModelConfig, repeats: int, default_ms: float) -> dict:
    """Each option's median ms per product-epoch on one world, beside the default's there."""
    panel, categories = _world_panel(n_products, days)
    ms = {"default": default_ms}
    for name, change in OPTIONS.items():
        option = dataclasses.replace(cfg, **change)
        seconds, _, _ = median_seconds(
            lambda option=option: model.train(panel, option, None, categories), repeats
        )
        ms[name] = round(1000 * seconds / len(panel.product_ids) / cfg.epochs, 2)
    return {
        "products": len(panel.product_ids),
        "ms_per_product_epoch": ms,
        "relative_to_default": {name: round(v / default_ms, 2) for name, v in ms.items()},
    }


def _cfg(cfg: ModelConfig) -> dict:
    keys = ("horizon", "hidden_units", "segment_days", "epochs", "validation_days", "elasticity")
    keys += ("cell", "layers", "dropout", "decoder", "local_level_days")
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
    outputs = forecast.summarise(result, cfg)
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
