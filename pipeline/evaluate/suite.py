"""The scenario suite: every named world x seed through the night, measured against its truth.

For each scenario and seed the suite draws the world (`synth.generate`), runs the night in this
process with the pure functions of `pipeline.night` (no Prefect, no DuckDB; model artefacts in a
temporary folder) and measures it with `measures.night_report`, the code `pricing evaluate` uses.

The fast path (`forecast=False`) skips the LSTM: it fits only the whole-history regression
elasticities, exactly as training fixes them (`model.elasticity = "regression"`), so its
elasticity figures are the full night's; it cannot give the forecast WAPE, the model's profit
capture, holds, prices below cost or raises to a cap (the log-log baseline's figures it gives).
"""

from __future__ import annotations

import datetime as dt
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import polars as pl

from pipeline import night, stats, synth
from pipeline.config import Settings
from pipeline.errors import UserError
from pipeline.evaluate.capture import baseline_policy
from pipeline.evaluate.elasticity import elasticity_report, exogenous
from pipeline.evaluate.measures import endogenous_report, night_report, product_rows
from pipeline.features import calendar_features

ProgressFn = Callable[[str], None]


class SuiteError(UserError, ValueError):
    """The suite was asked for something it cannot run (the message says what to change)."""


@dataclass(frozen=True)
class SuiteOptions:
    """What the suite runs.

    Attributes:
        scenarios: scenario names (`synth.SCENARIOS`), in the order to run them.
        seeds: worlds per scenario, drawn with seeds 0 .. seeds - 1.
        n_products: products per world.
        n_days: days of history per world.
        epochs: training epochs of the night's models (also their minimum).
        forecast: False takes the fast path (regression elasticities only, no LSTM).
    """

    scenarios: tuple[str, ...] = field(default_factory=lambda: tuple(synth.SCENARIOS))
    seeds: int = 3
    n_products: int = 200
    n_days: int = 730
    epochs: int = 6
    forecast: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "scenarios", tuple(self.scenarios))
        unknown = [s for s in self.scenarios if s not in synth.SCENARIOS]
        if unknown or not self.scenarios:
            raise SuiteError(
                f"unknown scenario(s) {', '.join(unknown) or '(none given)'}; "
                f"known: {', '.join(synth.SCENARIOS)}"
            )
        if self.seeds < 1 or self.n_products < 1 or self.epochs < 1:
            raise SuiteError("--seeds, --products and --epochs must be at least 1")
        if self.n_days < 30:
            raise SuiteError(f"--days must be at least 30, got {self.n_days}")


def suite_settings(settings: Settings, epochs: int, folder: Path) -> Settings:
    """`settings` with the suite's epochs and the model artefacts under `folder`."""
    model = replace(
        settings.model, epochs=epochs, min_epochs=min(epochs, settings.model.min_epochs)
    )
    return replace(settings, warehouse=folder / "suite.duckdb", model=model)


def run_suite(
    options: SuiteOptions, settings: Settings | None = None, progress: ProgressFn | None = None
) -> dict[str, Any]:
    """Run every scenario x seed and measure each night.

    Args:
        options: scenarios, seeds, sizes, epochs and whether to train the network.
        settings: model and pricing settings (defaults if None); the warehouse is not used.
        progress: called with one line as each world starts and finishes.

    Returns:
        JSON-ready: "options", "runs" (one per scenario and seed: its figures, seconds and
        per-product rows), "seconds" (the whole suite's wall time) and "machine" (CPUs and the
        load average at the start and the end).
    """
    settings = settings or Settings()
    if not options.forecast and settings.model.elasticity != "regression":
        raise SuiteError("--no-forecast needs model.elasticity = 'regression' (the network's own "
                         "elasticity needs the network)")  # fmt: skip
    say = progress or (lambda _line: None)
    started, runs, load = time.perf_counter(), [], list(os.getloadavg())
    total = len(options.scenarios) * options.seeds
    for name in options.scenarios:
        spec = synth.scaled(synth.SCENARIOS[name].spec, options.n_products, options.n_days)
        for seed in range(options.seeds):
            say(f"[{len(runs) + 1}/{total}] {name} seed {seed} ...")
            run = run_world(synth.generate(spec, seed), seed, settings, options)
            runs.append(run)
            say(f"[{len(runs)}/{total}] {name} seed {seed}: {run_line(run)}")
    return {
        "options": {**options.__dict__, "scenarios": list(options.scenarios)},
        "runs": runs,
        "seconds": time.perf_counter() - started,
        # Wall times mean little without the machine and how busy it was.
        "machine": {
            "cpus": os.cpu_count(),
            "load_average_start": load,
            "load_average_end": list(os.getloadavg()),
        },
    }


def run_world(
    world: synth.World, seed: int, settings: Settings, options: SuiteOptions
) -> dict[str, Any]:
    """One world's night (or its regression only, on the fast path), measured."""
    started = time.perf_counter()
    as_of = world.spec.end_date + dt.timedelta(days=1)
    inputs = night.inputs_from_frames(
        world.products, world.sales, as_of=as_of, plausible_until=world.spec.end_date
    )
    with tempfile.TemporaryDirectory(prefix="pricing-suite-") as folder:
        run_settings = suite_settings(settings, options.epochs, Path(folder))
        if options.forecast:
            report = _full_night(world, inputs, run_settings, seed)
        else:
            report = _regression_only(world, inputs, run_settings)
    return {
        "scenario": world.spec.name,
        "seed": seed,
        "n_products": world.products.height,
        "seconds": time.perf_counter() - started,
        **report,
    }


def _full_night(
    world: synth.World, inputs: night.NightInputs, settings: Settings, seed: int
) -> dict[str, Any]:
    tonight = night.prepare_night(inputs)
    run = night.RunInfo.new(f"suite-{world.spec.name}-{seed}", inputs.as_of)
    plan = night.plan_training(tonight, settings, run, force=True)
    models = night.train_models(tonight, plan, settings)
    outputs = night.price_night(tonight, models, settings, run)
    assert outputs.recommendations is not None
    cfg = settings.model
    report = night_report(
        outputs.model_versions, outputs.recommendations, inputs.products, inputs.sales,
        world.truth, inputs.as_of, cfg.horizon, cfg.min_history_days, settings.pricing,
    )  # fmt: skip
    rows = product_rows(outputs.model_versions, outputs.recommendations, world.truth)
    return {**report, "products": rows.to_dicts()}


def regression_versions(
    tonight: night.PreparedNight, settings: Settings, run: night.RunInfo
) -> pl.DataFrame:
    """What model_versions would say of the elasticities, without training the network.

    The same shards as the night, each fitted as training fixes its elasticities under
    `model.elasticity = "regression"`: the category-pooled negative-binomial regression, then
    the partial pooling of the elasticity itself. Statuses are the regression's
    (`stats.evidence_statuses`: not_identified, confounded or trained); the backtest gate needs
    the network, and gate failures keep their own elasticity anyway.
    """
    plan = night.plan_training(tonight, settings, run, force=True)
    rows = []
    for job in plan.jobs:
        panel = job.panel
        fit = stats.regression_elasticities(
            panel, calendar_features(panel.start, panel.n_days), job.groups
        )
        rows.append(
            pl.DataFrame(
                {
                    "product_id": list(panel.product_ids),
                    "elasticity": fit.elasticity,
                    "elasticity_lo": fit.lo,
                    "elasticity_hi": fit.hi,
                    "status": stats.evidence_statuses(fit, panel.price_varied).tolist(),
                }
            )
        )
    return pl.concat(rows) if rows else pl.DataFrame(schema=_VERSION_SCHEMA)


_VERSION_SCHEMA = {
    "product_id": pl.String, "elasticity": pl.Float64, "elasticity_lo": pl.Float64,
    "elasticity_hi": pl.Float64, "status": pl.String,
}  # fmt: skip


def _regression_only(
    world: synth.World, inputs: night.NightInputs, settings: Settings
) -> dict[str, Any]:
    tonight = night.prepare_night(inputs)
    run = night.RunInfo.new(f"suite-{world.spec.name}", inputs.as_of)
    versions = regression_versions(tonight, settings, run)
    truth, cfg = world.truth, settings.model
    baseline = baseline_policy(
        inputs.products, inputs.sales, truth, inputs.as_of, cfg.horizon, cfg.min_history_days,
        settings.pricing,
    )  # fmt: skip
    return {
        "elasticity": elasticity_report(versions, exogenous(truth)),
        "endogenous": endogenous_report(versions, None, truth),
        "forecast": None,
        "policies": {"model": None, "loglog": baseline},
        "decisions": None,
        "products": product_rows(versions, None, truth).to_dicts(),
    }


def run_line(run: dict[str, Any]) -> str:
    """One run's headline figures in one line (the suite's progress)."""
    e = run["elasticity"]
    parts = [f"{run['seconds']:.0f} s", f"elasticity MAE {_fmt(e['median_abs_error'])}",
             f"bias {_fmt(e['median_bias'], '+.3f')}",
             f"coverage {_fmt(e['interval_coverage'], '.0%')}"]  # fmt: skip
    model = run["policies"]["model"]
    if model is not None:
        parts.append(f"capture on priced {_fmt(model['overall']['capture_priced'], '.0%')}")
    return ", ".join(parts)


def _fmt(value: float | None, spec: str = ".3f") -> str:
    return "n/a" if value is None else format(value, spec)
