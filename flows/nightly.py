"""Prefect flows: the nightly forecast-and-price run and the manual retrain.

Thin wiring of `pipeline/` functions into coarse tasks: shards of products train as one task each,
only warehouse I/O retries, and a run's outputs are written in one transaction with its run_id.
What every run shares (settings, clock, lock, failure record) is in flows/run.py; the summary
and Prefect artefacts of a finished run in flows/summary.py.
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, NoReturn

import numpy as np
import polars as pl
from prefect import flow, task
from prefect.logging import get_run_logger
from prefect.task_runners import ThreadPoolTaskRunner

from flows.run import (
    RunState,
    ShardsFailedError,
    StageClock,
    fail_run,
    json_text,
    run_params,
    settings_for,
    warehouse_guard,
)
from flows.shards import ShardJob, ShardResults, run_shards
from flows.summary import counts_of, one_line, publish
from pipeline import faults, pricing, registry, validate, warehouse
from pipeline.config import ModelConfig, Settings
from pipeline.features import Panel, build_panel
from pipeline.forecast import ModelOutputs, daily_forecasts, product_table

IO_RETRIES = {"retries": 3, "retry_delay_seconds": [2, 10, 30]}


@dataclass(frozen=True)
class History:
    """What a run reads from the warehouse."""

    products: pl.DataFrame
    sales: pl.DataFrame
    versions: pl.DataFrame
    as_of: dt.date


# ----------------------------------------------------------------------------------- tasks


@task(name="read-history", **IO_RETRIES)
def read_history(path: str, as_of: dt.date | None, product_ids: list[str] | None) -> History:
    """Products, sales before `as_of` (default: the day after the latest sale), model versions."""
    warehouse.migrate(path)
    # A sale dated in the future (a bad row) must not move the priced horizon there.
    latest = warehouse.latest_sales_date(path, not_after=validate.latest_plausible_day())
    if latest is None:
        raise warehouse.WarehouseError(
            f"warehouse {path} has no sales: run `pricing demo` or `pricing load` first"
        )
    as_of = as_of or latest + dt.timedelta(days=1)
    products = warehouse.read_products(path, active_only=True)
    if product_ids is not None:
        products = products.filter(pl.col("product_id").is_in(product_ids))
    ids = products["product_id"].to_list()
    sales = warehouse.read_sales(path, before=as_of, product_ids=ids)
    versions = warehouse.read_model_versions(path, latest_only=True)
    return History(products, sales, versions, as_of)


@task(name="validate-history", **IO_RETRIES)
def validate_history(path: str, history: History) -> validate.Checked:
    """Check the history read: bad rows are dropped, their products held (pipeline/validate.py)."""
    limit = validate.latest_plausible_day()
    later = warehouse.read_sales(path, after=max(limit, history.as_of - dt.timedelta(days=1)))
    orphans = warehouse.read_orphan_sales(path)
    return validate.check_history(history.products, history.sales, later, orphans, limit)


@task(name="train-shard")
def train_shard(
    panel: Panel, cfg: ModelConfig, folder: str, shard: str, groups: np.ndarray | None = None
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

    outputs, seconds = registry.train_shard(panel, cfg, Path(folder), progress, groups)
    logger.info("%s: %d products trained in %.1fs", shard, len(panel.product_ids), seconds)
    return outputs


@task(name="load-shard")
def load_shard(panel: Panel, cfg: ModelConfig, folder: str) -> ModelOutputs:
    """Forecast with a current saved model instead of training."""
    return registry.load_shard(Path(folder), panel, cfg)


@task(name="optimise-prices")
def optimise(products: pl.DataFrame, table: pl.DataFrame, settings: Settings) -> pl.DataFrame:
    """Pick every product's price under the business rules."""
    faults.pause_point("optimise")  # crash tests only (off unless PRICING_TEST_PAUSE_AT=optimise)
    return pricing.recommend(products, table, settings.pricing)


@task(name="write-outputs", **IO_RETRIES)
def write_outputs(path: str, run_id: str, as_of: dt.date | None, **frames: Any) -> None:
    """Write the run's outputs and mark it completed, in one transaction."""
    warehouse.write_run_outputs(path, run_id, as_of, **frames)


@task(name="record-run-start", **IO_RETRIES)
def record_start(path: str, run_id: str, flow_name: str, as_of: dt.date, params: dict) -> None:
    """Insert the run's row with status 'running'; mark runs left 'running' by dead processes.

    Called under the warehouse's run lock (`flows.run.warehouse_guard`), so no other run is alive.
    """
    warehouse.record_run_start(path, run_id, flow_name, as_of, params, abandon_others=True)


@task(name="record-stage-times", **IO_RETRIES)
def record_stages(path: str, run_id: str, stages: dict[str, float]) -> None:
    """Store the completed run's seconds per stage, the write included (ends it again, now)."""
    warehouse.record_run_end(path, run_id, "completed", counts={"stage_seconds": json_text(stages)})


# ------------------------------------------------------------------------------ helpers


def _shards(ids: list[str], size: int) -> list[list[str]]:
    return [ids[i : i + size] for i in range(0, len(ids), size)]


def _categories(history: History) -> dict[str, str]:
    return dict(zip(*history.products.select("product_id", "category"), strict=True))


def _model_outputs(
    run: RunState, panel: Panel, history: History, force: bool
) -> tuple[ModelOutputs, dict[str, str], str]:
    """Train the products that need it (in shards) and reload current models for the rest.

    Returns:
        The outputs of every modelled product, product -> artefact folder of those trained now,
        and the model version they were registered under.

    Raises:
        ShardsFailedError: a training shard failed; the finished shards' models were registered
            first, so the next run trains only the products still without a current model.
    """
    cfg, settings = run.settings.model, run.settings
    trainable = panel.n_observed >= cfg.min_history_days
    to_train, reuse = registry.plan_training(
        list(panel.product_ids), trainable, history.versions, history.as_of,
        settings.run.max_model_age_days, force, panel, cfg,
    )  # fmt: skip
    version = registry.new_model_version(history.as_of, run.run_id)
    folder = settings.model_dir / version
    jobs = _shard_jobs(panel, history, to_train, folder, settings.run.shard_size)
    with run.clock("train"):
        results = run_shards(train_shard, jobs, cfg, settings.run, get_run_logger().info)
    if results.failures:
        _keep_finished_shards(run, panel, history, results, version, len(jobs))
    with run.clock("forecast"):
        loaded = [load_shard(panel, cfg, folder) for folder in reuse]
    trained = [outputs for _, outputs in results.finished]
    return registry.concat_outputs([*trained, *loaded]), results.artefacts, version


def _shard_jobs(
    panel: Panel, history: History, to_train: list[str], folder: Path, size: int
) -> list[ShardJob]:
    index = {pid: i for i, pid in enumerate(panel.product_ids)}
    category = _categories(history)
    shards = _shards(to_train, size)
    return [
        ShardJob(
            name=f"shard {n + 1}/{len(shards)}",
            panel=panel.select(np.array([index[p] for p in shard])),
            folder=str(folder / f"shard-{n:03d}"),
            extra={"groups": np.array([category[p] or "" for p in shard])},
        )
        for n, shard in enumerate(shards)
    ]


def _keep_finished_shards(
    run: RunState,
    panel: Panel,
    history: History,
    results: ShardResults,
    version: str,
    n_shards: int,
) -> NoReturn:
    """Register the finished shards' models in a failed run, then fail the run visibly."""
    outputs = registry.concat_outputs([out for _, out in results.finished])
    table = product_table(outputs, panel, _categories(history), run.settings.model)
    rows = registry.model_version_rows(
        table, version, run.run_id, results.artefacts, run.trained_at
    )
    message = (
        f"{len(results.failures)} of {n_shards} training shards failed; the models of the "
        f"{len(results.finished)} finished shards ({rows.height} products) are registered and "
        f"the next nightly run trains only the rest. First failure: {results.failures[0]}"
    )
    counts = {"n_trained": rows.height, "stage_seconds": json_text(run.clock.rounded())}
    write_outputs(
        run.path, run.run_id, history.as_of, model_versions=rows, counts=counts,
        message=message[:500], status="failed",
    )  # fmt: skip
    raise ShardsFailedError(message)


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
    run = RunState(str(settings.warehouse), str(uuid.uuid4()), settings, StageClock())
    params = run_params(
        settings, as_of=as_of, retrain=retrain, config_file=config_file, epochs=epochs
    )
    with warehouse_guard(run.path, "nightly", run.run_id, settings, params):
        with run.clock("read"):
            history = read_history(run.path, as_of, None)
        record_start(run.path, run.run_id, "nightly", history.as_of, params)
        try:
            return _nightly(run, history, retrain)
        except BaseException as exc:
            fail_run(run, exc)
            raise


def _nightly(run: RunState, history: History, retrain: bool) -> dict:
    logger = get_run_logger()
    path, run_id, settings, clock = run.path, run.run_id, run.settings, run.clock
    ids = history.products["product_id"].to_list()
    with clock("read"):
        checked = validate_history(path, history)
        panel = build_panel(checked.sales, ids, history.as_of)
    outputs, artefacts, version = _model_outputs(run, panel, history, retrain)
    with clock("forecast"):
        table = product_table(outputs, panel, _categories(history), settings.model)
        table = validate.hold(table, checked.holds)
    with clock("optimise"):
        recs = optimise(history.products, table, settings)
    with clock("forecast"):
        base_daily = dict(zip(outputs.product_ids, outputs.base_daily, strict=True))
        prices = recs.select("product_id", pl.col("recommended_price").alias("price"))
        forecasts = daily_forecasts(
            table, base_daily, prices, history.as_of, settings.model.horizon
        )
    versions = registry.model_version_rows(table, version, run_id, artefacts, run.trained_at)
    used = _used_versions(history.versions, artefacts, version)
    recs = recs.with_columns(
        run_id=pl.lit(run_id),
        effective_date=pl.lit(history.as_of),
        model_version=pl.col("product_id").replace_strict(
            used, default=None, return_dtype=pl.String
        ),
    )
    counts = counts_of(recs, len(artefacts), checked.issues.height)
    with clock("write"):
        write_outputs(
            path, run_id, history.as_of, model_versions=versions, recommendations=recs,
            forecasts=forecasts.with_columns(run_id=pl.lit(run_id)), counts=counts,
            data_issues=checked.issues.with_columns(run_id=pl.lit(run_id)),
            message=one_line(counts),
        )  # fmt: skip
    record_stages(path, run_id, clock.rounded())
    publish(recs, counts, history.as_of, clock.rounded())
    logger.info("%s; seconds per stage %s", one_line(counts), clock.rounded())
    return {
        "run_id": run_id, "as_of": str(history.as_of), **counts,
        "stage_seconds": clock.rounded(),
    }  # fmt: skip


def _used_versions(versions: pl.DataFrame, artefacts: dict[str, str], version: str) -> dict:
    used = dict(
        zip(versions["product_id"].to_list(), versions["model_version"].to_list(), strict=True)
    )
    used.update({pid: version for pid in artefacts})
    return used


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
    run = RunState(str(settings.warehouse), str(uuid.uuid4()), settings, StageClock())
    params = run_params(
        settings, category=category, product_ids=product_ids, as_of=as_of,
        config_file=config_file, epochs=epochs,
    )  # fmt: skip
    with warehouse_guard(run.path, "retrain", run.run_id, settings, params):
        with run.clock("read"):
            history = read_history(run.path, as_of, product_ids)
        products = select_products(history.products, category, product_ids)
        history = replace(history, products=products)
        record_start(run.path, run.run_id, "retrain", history.as_of, params)
        try:
            return _retrain(run, history)
        except BaseException as exc:
            fail_run(run, exc)
            raise


def select_products(
    products: pl.DataFrame, category: str | None, product_ids: list[str] | None
) -> pl.DataFrame:
    """The active products a retrain selects (a category and/or ids), or a one-line ValueError.

    Args:
        products: active products (already limited to `product_ids` when they are given).
        category: only this category, if given.
        product_ids: the ids asked for, if given; each must be an active product.
    """
    if category is not None:
        products = products.filter(pl.col("category") == category)
    if product_ids is not None:
        unknown = sorted(set(product_ids) - set(products["product_id"].to_list()))
        if unknown:
            raise ValueError(f"unknown or inactive product id(s): {', '.join(unknown[:5])}")
    if products.is_empty():
        what = f"category '{category}'" if category else "the selection"
        raise ValueError(f"no active products in {what}: check `pricing sql` for valid values")
    return products


def _retrain(run: RunState, history: History) -> dict:
    ids = history.products["product_id"].to_list()
    with run.clock("read"):
        checked = validate_history(run.path, history)
        panel = build_panel(checked.sales, ids, history.as_of)
    outputs, artefacts, version = _model_outputs(run, panel, history, force=True)
    with run.clock("forecast"):
        table = product_table(outputs, panel, _categories(history), run.settings.model)
    versions = registry.model_version_rows(table, version, run.run_id, artefacts, run.trained_at)
    counts = {
        "n_products": len(ids), "n_trained": len(artefacts),
        "n_data_issues": checked.issues.height,
    }  # fmt: skip
    message = f"retrained {len(artefacts)} of {len(ids)} products as model version {version}"
    with run.clock("write"):
        write_outputs(
            run.path, run.run_id, history.as_of, model_versions=versions, counts=counts,
            data_issues=checked.issues.with_columns(run_id=pl.lit(run.run_id)),
            message=message,
        )  # fmt: skip
    record_stages(run.path, run.run_id, run.clock.rounded())
    get_run_logger().info("%s; seconds per stage %s", message, run.clock.rounded())
    return {
        "run_id": run.run_id, "model_version": version, **counts,
        "stage_seconds": run.clock.rounded(),
    }  # fmt: skip
