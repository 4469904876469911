"""Prefect flows: the nightly forecast-and-price run and the manual retrain.

Thin wiring of `pipeline/` functions into coarse tasks: read the night's inputs (retried),
train shards of products (mapped, one task each), price (`pipeline.night.price_night`), write
the run's outputs in one transaction (retried), publish a summary. Nightly and retrain share every
step but the last: the nightly prices, the retrain only registers its models. What every run
shares (settings, clock, lock, failure record) is in flows/run.py, the shards' runner in
flows/shards.py.
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
from prefect import flow, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.logging import get_run_logger
from prefect.task_runners import ThreadPoolTaskRunner

from flows.run import (
    RunState,
    ShardsFailedError,
    fail_run,
    json_text,
    run_params,
    settings_for,
    warehouse_guard,
)
from flows.shards import run_shards
from pipeline import catalog, faults, night, registry, summary, warehouse
from pipeline.config import ModelConfig, Settings
from pipeline.features import Panel
from pipeline.forecast import ModelOutputs
from pipeline.night import Models, NightInputs, NightOutputs, PreparedNight, RunInfo
from pipeline.stats import ElasticityPool

# Only tasks that talk to the warehouse retry: a lock held a moment too long or a full disk
# freed by an operator may pass on a later try; the pure steps would only fail again.
IO_RETRIES = {"retries": 3, "retry_delay_seconds": [2, 10, 30]}

# ----------------------------------------------------------------------------------- tasks


@task(name="migrate-warehouse", **IO_RETRIES)
def migrate_warehouse(path: str) -> None:
    """Bring the warehouse's schema up to date (a write, before anything is read)."""
    warehouse.migrate(path)


@task(name="read-history", **IO_RETRIES)
def read_history(path: str, as_of: dt.date | None, product_ids: list[str] | None) -> NightInputs:
    """The night's inputs: products, sales before `as_of`, model versions, rows to check."""
    return catalog.read_night(path, as_of, product_ids)


@task(name="record-run-start", **IO_RETRIES)
def record_start(path: str, run_id: str, flow_name: str, as_of: dt.date, params: dict) -> None:
    """Insert the run's row with status 'running'; mark runs left 'running' by dead processes.

    Called under the warehouse's run lock (`flows.run.warehouse_guard`), so no other run is alive.
    """
    warehouse.record_run_start(path, run_id, flow_name, as_of, params, abandon_others=True)


@task(name="validate-history")
def prepare(inputs: NightInputs) -> PreparedNight:
    """Check the history (bad rows quarantined, products held) and build the model panel."""
    faults.pause_point("read")  # crash tests only (off unless PRICING_TEST_PAUSE_AT=read)
    return night.prepare_night(inputs)


@task(name="train-shard")
def train_shard(
    panel: Panel,
    cfg: ModelConfig,
    folder: str,
    shard: str,
    groups: np.ndarray,
    pool: ElasticityPool | None = None,
) -> ModelOutputs:
    """Train one shard of products as one batched model and save it."""
    logger = get_run_logger()
    started = time.perf_counter()

    def progress(epoch: int, epochs: int, loss: float, active: int) -> None:
        elapsed = time.perf_counter() - started
        eta = elapsed / epoch * (epochs - epoch)
        logger.info(
            "%s: epoch %d/%d, loss %.4f, %d/%d products still improving, ETA %.0fs at most",
            shard, epoch, epochs, loss, active, len(panel.product_ids), eta,
        )  # fmt: skip
        faults.pause_point("train")  # crash tests only (off unless PRICING_TEST_PAUSE_AT=train)

    outputs, seconds = registry.train_shard(panel, cfg, Path(folder), progress, groups, pool)
    logger.info("%s: %d products trained in %.1fs", shard, len(panel.product_ids), seconds)
    return outputs


@task(name="load-models")
def load_models(
    tonight: PreparedNight,
    plan: night.TrainingPlan,
    trained: list[tuple[night.ShardJob, ModelOutputs]],
    failures: list[str],
    settings: Settings,
) -> Models:
    """The finished shards' outputs and the forecasts of the reused saved models."""
    faults.pause_point("forecast")  # crash tests only (off unless PRICING_TEST_PAUSE_AT set)
    return night.combine_models(tonight, plan, trained, failures, settings)


@task(name="optimise-prices")
def price(tonight: PreparedNight, models: Models, settings: Settings, run: RunInfo) -> NightOutputs:
    """Pick every product's price under the business rules; tonight's outputs."""
    faults.pause_point("optimise")  # crash tests only (off unless PRICING_TEST_PAUSE_AT=optimise)
    return night.price_night(tonight, models, settings, run)


@task(name="write-outputs", **IO_RETRIES)
def write_outputs(
    path: str, run_id: str, as_of: dt.date, outputs: NightOutputs, stages: dict[str, float]
) -> None:
    """Write the run's outputs and end it, in one transaction."""
    catalog.write_night(path, run_id, as_of, outputs, stages)


@task(name="record-stage-times", **IO_RETRIES)
def record_stages(path: str, run_id: str, stages: dict[str, float]) -> None:
    """Store the run's seconds per stage again, now that the write's own time is known."""
    warehouse.record_stage_seconds(path, run_id, json_text(stages))


@task(name="publish-summary")
def publish(outputs: NightOutputs, as_of: dt.date, stages: dict[str, float]) -> None:
    """Prefect artefacts: a markdown summary and the largest changes."""
    recs = outputs.recommendations
    if recs is None:
        return
    markdown = summary.summary_markdown(recs, outputs.counts, as_of, stages)
    create_markdown_artifact(markdown, key="nightly-summary")
    create_table_artifact(summary.largest_changes(recs).to_dicts(), key="nightly-largest-changes")


# -------------------------------------------------------------------------------- steps


def _train(run: RunState, tonight: PreparedNight, info: RunInfo, force: bool) -> Models:
    """Train the products that need it (in shards) and reload current models for the rest.

    Raises:
        ShardsFailedError: a training shard failed; the finished shards' models were registered
            first, so the next run trains only the products still without a current model.
    """
    plan = night.plan_training(tonight, run.settings, info, force)
    with run.clock("train"):
        trained, failures = run_shards(
            train_shard, plan.jobs, run.settings.model, run.settings.run, get_run_logger().info
        )
    with run.clock("forecast"):
        models = load_models(tonight, plan, trained, failures, run.settings)
    if failures:
        outputs = night.failed_training_outputs(tonight, models, run.settings, info, len(plan.jobs))
        write_outputs(run.path, run.run_id, tonight.inputs.as_of, outputs, run.clock.rounded())
        raise ShardsFailedError(outputs.message)
    return models


def _run(
    run: RunState,
    flow_name: str,
    params: dict,
    read: Callable[[], NightInputs],
    force: bool,
    finish: Callable[[PreparedNight, Models, RunInfo], NightOutputs],
) -> dict:
    """The steps every run takes: lock, read, record, check, train, finish, write, publish."""
    with warehouse_guard(run.path, flow_name, run.run_id, run.settings, params):
        with run.clock("read"):
            migrate_warehouse(run.path)
            inputs = read()
        record_start(run.path, run.run_id, flow_name, inputs.as_of, params)
        try:
            return _steps(run, inputs, force, finish)
        except BaseException as exc:
            fail_run(run, exc)
            raise


def _steps(
    run: RunState,
    inputs: NightInputs,
    force: bool,
    finish: Callable[[PreparedNight, Models, RunInfo], NightOutputs],
) -> dict:
    info = RunInfo.new(run.run_id, inputs.as_of)
    with run.clock("read"):
        tonight = prepare(inputs)
    models = _train(run, tonight, info, force)
    outputs = finish(tonight, models, info)
    with run.clock("write"):
        write_outputs(run.path, run.run_id, inputs.as_of, outputs, run.clock.rounded())
    stages = run.clock.rounded()
    record_stages(run.path, run.run_id, stages)
    publish(outputs, inputs.as_of, stages)
    get_run_logger().info("%s; seconds per stage %s", outputs.message, stages)
    result = {"run_id": run.run_id, "as_of": str(inputs.as_of), **outputs.counts}
    if outputs.recommendations is None:
        result["model_version"] = info.model_version
    return {**result, "stage_seconds": stages}


# -------------------------------------------------------------------------------- flows


@flow(name="nightly", task_runner=ThreadPoolTaskRunner(max_workers=1))
def nightly(
    warehouse_path: str | None = None,
    as_of: dt.date | None = None,
    config_file: str | None = None,
    retrain: bool = False,
    epochs: int | None = None,
    dask_address: str | None = None,
) -> dict:
    """Forecast demand and recommend prices for every active product; write them to the warehouse.

    Args:
        warehouse_path: the DuckDB file (default $PRICING_WAREHOUSE or warehouse/pricing.duckdb).
        as_of: first day of the priced horizon; only sales before it are used (default: the day
            after the latest sale), so a past night can be replayed.
        config_file: optional TOML settings.
        retrain: retrain every model instead of reusing current ones.
        epochs: override the configured maximum epochs (quick runs and tests).
        dask_address: train the shards on the Dask cluster at this scheduler address
            (overrides `run.dask_address`).

    Returns:
        A summary: run_id, as_of, counts, the expected profit uplift and seconds per stage.
    """
    settings = settings_for(warehouse_path, config_file, epochs, dask_address)
    run = RunState(str(settings.warehouse), str(uuid.uuid4()), settings)
    params = run_params(
        settings, as_of=as_of, retrain=retrain, config_file=config_file, epochs=epochs
    )

    def finish(tonight: PreparedNight, models: Models, info: RunInfo) -> NightOutputs:
        with run.clock("optimise"):
            return price(tonight, models, settings, info)

    def read() -> NightInputs:
        return read_history(run.path, as_of, None)

    return _run(run, "nightly", params, read, retrain, finish)


@flow(name="retrain", task_runner=ThreadPoolTaskRunner(max_workers=1))
def retrain(
    warehouse_path: str | None = None,
    category: str | None = None,
    product_ids: list[str] | None = None,
    as_of: dt.date | None = None,
    config_file: str | None = None,
    epochs: int | None = None,
    dask_address: str | None = None,
) -> dict:
    """Retrain the models of all products, one category, or a list of products, by hand.

    New models are registered in `model_versions`; the next nightly run uses them. Prices are not
    changed by a retrain. Takes the same warehouse lock as the nightly run, so the two never
    write at once. Arguments as for `nightly`, plus the selection (`category` or `product_ids`;
    neither means every active product).
    """
    settings = settings_for(warehouse_path, config_file, epochs, dask_address)
    run = RunState(str(settings.warehouse), str(uuid.uuid4()), settings)
    params = run_params(
        settings, category=category, product_ids=product_ids, as_of=as_of,
        config_file=config_file, epochs=epochs,
    )  # fmt: skip

    def finish(tonight: PreparedNight, models: Models, info: RunInfo) -> NightOutputs:
        with run.clock("forecast"):
            return night.retrain_outputs(tonight, models, settings, info)

    def read() -> NightInputs:
        inputs = read_history(run.path, as_of, product_ids)
        return replace(
            inputs, products=night.select_products(inputs.products, category, product_ids)
        )

    return _run(run, "retrain", params, read, True, finish)
