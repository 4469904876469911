"""`pricing bench nightly`: the whole nightly flow timed at several catalogue sizes.

At each size a seeded synthetic world is written to a fresh warehouse, then the nightly flow runs
twice: first retraining every model (`retrain=True`), then with the models it just trained (the
usual night). Each run reports its wall time and its seconds per stage (read, train, forecast,
optimise, write) from the flow's own stage clock, the numbers stored in `runs.stage_seconds`.

How a stage grows with the number of products is summarised by the exponent b of
seconds ~ a * products ** b, fitted on the sizes measured (b = 1 is linear; below 1, fixed costs
still dominate). A tiny warm-up run first pays TensorFlow's and Prefect's one-off start-up costs,
so that they do not land on the smallest size.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from pipeline import synth, warehouse
from pipeline.bench import machine

STAGES = ("read", "train", "forecast", "optimise", "write")
TARGETS_S = {"current": 60.0, "retrain": 360.0}  # at 1,000 products x 2 years on 2 cores


def _timed_night(path: Path, retrain: bool, epochs: int | None) -> dict[str, Any]:
    # Imported here: the flows pull in TensorFlow and Prefect.
    from flows.nightly import nightly

    started = time.perf_counter()
    summary = nightly(warehouse_path=str(path), retrain=retrain, epochs=epochs)
    return {
        "total_s": round(time.perf_counter() - started, 2),
        "stages_s": summary["stage_seconds"],
        "n_trained": summary["n_trained"],
    }


def measure_size(folder: Path, products: int, days: int, epochs: int | None, seed: int) -> dict:
    """Write a world of `products` x `days`, then time a retraining night and a usual night."""
    world = synth.generate_world(products, days, seed)
    path = folder / f"bench-{products}" / "pricing.duckdb"
    warehouse.write_inputs(path, world.products, world.sales)
    return {
        "products": products,
        "retrain": _timed_night(path, retrain=True, epochs=epochs),
        "current": _timed_night(path, retrain=False, epochs=epochs),
    }


def growth_exponent(products: list[int], seconds: list[float]) -> float | None:
    """b of seconds ~ a * products ** b, least squares in logs; None with fewer than 2 sizes."""
    points = [(n, s) for n, s in zip(products, seconds, strict=True) if n > 0 and s > 0]
    if len({n for n, _ in points}) < 2:
        return None
    x, y = np.log([n for n, _ in points]), np.log([s for _, s in points])
    return round(float(np.polyfit(x, y, 1)[0]), 2) + 0.0  # + 0.0: no "-0.0" for flat stages


def growth(results: list[dict]) -> dict[str, dict[str, Any]]:
    """Per kind of night and stage: seconds per product at each size and the growth exponent."""
    sizes = [r["products"] for r in results]
    summary: dict[str, dict[str, Any]] = {}
    for kind in ("retrain", "current"):
        summary[kind] = {}
        for stage in (*STAGES, "total"):
            seconds = [_seconds(r[kind], stage) for r in results]
            summary[kind][stage] = {
                "exponent": growth_exponent(sizes, seconds),
                "ms_per_product": [
                    round(1000 * s / n, 1) for s, n in zip(seconds, sizes, strict=True)
                ],
            }
    return summary


def _seconds(night: dict, stage: str) -> float:
    return night["total_s"] if stage == "total" else night["stages_s"].get(stage, 0.0)


def run(
    sizes: list[int], days: int = 730, epochs: int | None = None, seed: int = 0
) -> dict[str, Any]:
    """Time the nightly flow at each size, with and without retraining.

    Args:
        sizes: product counts, e.g. [100, 300, 1000].
        days: days of history per product.
        epochs: maximum training epochs (None: the configured default, as a real night runs).
        seed: seed of the synthetic worlds.

    Returns:
        JSON-ready results: the machine, each size's two nights with stage seconds, the growth
        with products, and whether the largest size met the targets when it is 1,000 or more.
    """
    if not sizes or min(sizes) < 1:
        raise ValueError("--sizes needs product counts >= 1, e.g. 100,300,1000")
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="pricing-bench-") as tmp:
        measure_size(Path(tmp) / "warm-up", 8, min(days, 200), 1, seed)
        results = [measure_size(Path(tmp), n, days, epochs, seed) for n in sorted(sizes)]
    largest = results[-1]
    return {
        "benchmark": "nightly",
        # Other processes' load inflates every time here: compare runs made at similar loads.
        "machine": {**machine(), "load_average_1m": [load_before[0], os.getloadavg()[0]]},
        "days": days,
        "epochs": epochs if epochs is not None else "configured",
        "sizes": results,
        "growth": growth(results),
        "targets_s": TARGETS_S,
        "targets_met": (
            {kind: largest[kind]["total_s"] < limit for kind, limit in TARGETS_S.items()}
            if largest["products"] >= 1000 and days >= 730
            else "not measured (needs a size >= 1000 and --days >= 730)"
        ),
    }


def table(result: dict[str, Any]) -> str:
    """The stage seconds as a plain text table, one line per size and kind of night."""
    lines = [f"{'products':>8} {'night':<8} " + " ".join(f"{s:>9}" for s in (*STAGES, "total"))]
    for size in result["sizes"]:
        for kind in ("retrain", "current"):
            night = size[kind]
            cells = " ".join(f"{_seconds(night, s):9.2f}" for s in (*STAGES, "total"))
            lines.append(f"{size['products']:>8} {kind:<8} {cells}")
    for kind in ("retrain", "current"):
        exps = " ".join(f"{result['growth'][kind][s]['exponent']!s:>9}" for s in (*STAGES, "total"))
        lines.append(f"{'exponent':>8} {kind:<8} {exps}")
    return "\n".join(lines)
