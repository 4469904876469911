"""Prefect flows: the nightly forecast-and-price run and the manual retrain.

Thin wiring of `pipeline/` functions into coarse tasks: shards of products train as one task each,
only warehouse I/O retries, and a run's outputs are written in one transaction with its run_id.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import time
import uuid
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from prefect import flow, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.logging import get_run_logger
from prefect.task_runners import ThreadPoolTaskRunner

from pipeline import pricing, registry, warehouse
from pipeline.config import ModelConfig, Settings, load_settings
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
    latest = warehouse.latest_sales_date(path)
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
    return pricing.recommend(products, table, settings.pricing)


@task(name="write-outputs", **IO_RETRIES)
def write_outputs(path: str, run_id: str, as_of: dt.date | None, **frames: Any) -> None:
    """Write the run's outputs and mark it completed, in one transaction."""
    warehouse.write_run_outputs(path, run_id, as_of, **frames)


@task(name="record-run-start", **IO_RETRIES)
def record_start(path: str, run_id: str, flow_name: str, as_of: dt.date, params: dict) -> None:
    """Insert the run's row with status 'running'."""
    warehouse.record_run_start(path, run_id, flow_name, as_of, params)


# ------------------------------------------------------------------------------ helpers


def _settings(warehouse_path: str | None, config_file: str | None, epochs: int | None) -> Settings:
    settings = load_settings(
        Path(config_file) if config_file else None,
        Path(warehouse_path) if warehouse_path else None,
    )
    if epochs is not None:
        model_cfg = replace(
            settings.model, epochs=epochs, min_epochs=min(epochs, settings.model.min_epochs)
        )
        settings = replace(settings, model=model_cfg)
    return settings


def _shards(ids: list[str], size: int) -> list[list[str]]:
    return [ids[i : i + size] for i in range(0, len(ids), size)]


def _model_outputs(
    panel: Panel, history: History, settings: Settings, run_id: str, force: bool
) -> tuple[ModelOutputs, dict[str, str], str]:
    """Train the products that need it (in shards) and reload current models for the rest."""
    cfg = settings.model
    trainable = panel.n_observed >= cfg.min_history_days
    to_train, reuse = registry.plan_training(
        list(panel.product_ids), trainable, history.versions, history.as_of,
        settings.run.max_model_age_days, force,
    )  # fmt: skip
    version = registry.new_model_version(history.as_of, run_id)
    index = {pid: i for i, pid in enumerate(panel.product_ids)}
    shards = _shards(to_train, settings.run.shard_size)
    folders = [str(settings.model_dir / version / f"shard-{n:03d}") for n in range(len(shards))]
    panels = [panel.select(np.array([index[p] for p in shard])) for shard in shards]
    category = dict(zip(*history.products.select("product_id", "category"), strict=True))
    groups = [np.array([category[p] or "" for p in shard]) for shard in shards]
    trained = train_shard.map(
        panels, cfg, folders, [f"shard {n + 1}/{len(shards)}" for n in range(len(shards))], groups
    ).result()
    loaded = [load_shard(panel, cfg, folder) for folder in reuse]
    artefacts = {
        pid: folder for shard, folder in zip(shards, folders, strict=True) for pid in shard
    }
    return registry.concat_outputs([*trained, *loaded]), artefacts, version


def _fail(path: str, run_id: str, exc: BaseException) -> None:
    message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    # The run's own failure is the one to report, not a failure to record it.
    with contextlib.suppress(Exception):
        warehouse.record_run_end(path, run_id, "failed", message=message[:500])


# -------------------------------------------------------------------------------- flows


@flow(name="nightly", task_runner=ThreadPoolTaskRunner(max_workers=1))
def nightly(
    warehouse_path: str | None = None,
    as_of: dt.date | None = None,
    config_file: str | None = None,
    retrain: bool = False,
    epochs: int | None = None,
) -> dict:
    """Forecast demand and recommend prices for every active product; write them to the warehouse.

    Args:
        warehouse_path: the DuckDB file (default $PRICING_WAREHOUSE or warehouse/pricing.duckdb).
        as_of: first day of the priced horizon; only sales before it are used (default: the day
            after the latest sale), so a past night can be replayed.
        config_file: optional TOML settings.
        retrain: retrain every model instead of reusing current ones.
        epochs: override the configured maximum epochs (quick runs and tests).

    Returns:
        A summary: run_id, as_of, counts and the expected profit uplift.
    """
    settings = _settings(warehouse_path, config_file, epochs)
    path = str(settings.warehouse)
    history = read_history(path, as_of, None)
    run_id = str(uuid.uuid4())
    params = {"as_of": str(history.as_of), "retrain": retrain, "config_file": config_file}
    record_start(path, run_id, "nightly", history.as_of, params)
    try:
        return _nightly(path, run_id, history, settings, retrain)
    except BaseException as exc:
        _fail(path, run_id, exc)
        raise


def _nightly(path: str, run_id: str, history: History, settings: Settings, retrain: bool) -> dict:
    logger = get_run_logger()
    started = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    ids = history.products["product_id"].to_list()
    panel = build_panel(history.sales, ids, history.as_of)
    outputs, artefacts, version = _model_outputs(panel, history, settings, run_id, retrain)
    categories = dict(zip(ids, history.products["category"].to_list(), strict=True))
    table = product_table(outputs, panel, categories, settings.model)
    recs = optimise(history.products, table, settings)
    base_daily = dict(zip(outputs.product_ids, outputs.base_daily, strict=True))
    prices = recs.select("product_id", pl.col("recommended_price").alias("price"))
    forecasts = daily_forecasts(table, base_daily, prices, history.as_of, settings.model.horizon)
    versions = registry.model_version_rows(table, version, run_id, artefacts, started)
    used = _used_versions(history.versions, artefacts, version)
    recs = recs.with_columns(
        run_id=pl.lit(run_id),
        effective_date=pl.lit(history.as_of),
        model_version=pl.col("product_id").replace_strict(
            used, default=None, return_dtype=pl.String
        ),
    )
    counts = _counts(recs, len(artefacts))
    write_outputs(
        path, run_id, history.as_of, model_versions=versions, recommendations=recs,
        forecasts=forecasts.with_columns(run_id=pl.lit(run_id)), counts=counts,
        message=_one_line(counts),
    )  # fmt: skip
    _publish(recs, counts, history.as_of)
    logger.info(_one_line(counts))
    return {"run_id": run_id, "as_of": str(history.as_of), **counts}


def _used_versions(versions: pl.DataFrame, artefacts: dict[str, str], version: str) -> dict:
    used = dict(
        zip(versions["product_id"].to_list(), versions["model_version"].to_list(), strict=True)
    )
    used.update({pid: version for pid in artefacts})
    return used


def _counts(recs: pl.DataFrame, n_trained: int) -> dict:
    return {
        "n_products": recs.height,
        "n_trained": n_trained,
        "n_recommendations": recs.height,
        "n_changes": recs.filter(pl.col("action").is_in(["increase", "decrease"])).height,
        "n_holds": recs.filter(pl.col("action") == "hold").height,
        "n_data_issues": 0,
        "expected_profit_uplift": float(recs["profit_uplift"].fill_null(0).sum()),
    }


def _one_line(counts: dict) -> str:
    return (
        f"{counts['n_products']} products priced: {counts['n_changes']} changes, "
        f"{counts['n_holds']} holds, expected profit uplift {counts['expected_profit_uplift']:,.2f}"
    )


def _publish(recs: pl.DataFrame, counts: dict, as_of: dt.date) -> None:
    """Prefect artefacts: a markdown summary and the largest changes."""
    holds = recs.filter(pl.col("action") == "hold")
    # Reasons read "hold 4.99: cold start: 30 days ..."; group by the first clause after the price.
    why = pl.col("reason").str.split(": ").list.get(1, null_on_oob=True)
    by_reason = holds.group_by(why.alias("why")).len()
    lines = [f"# Nightly pricing for {as_of}", "", _one_line(counts), ""]
    lines += ["| hold reason | products |", "|---|---|"]
    lines += [f"| {row['why']} | {row['len']} |" for row in by_reason.iter_rows(named=True)]
    create_markdown_artifact("\n".join(lines), key="nightly-summary")
    top = recs.sort(pl.col("profit_uplift").abs(), descending=True).head(20)
    table = top.select(
        "product_id", "current_price", "recommended_price", "profit_uplift", "reason"
    )
    create_table_artifact(table.to_dicts(), key="nightly-largest-changes")


@flow(name="retrain", task_runner=ThreadPoolTaskRunner(max_workers=1))
def retrain(
    warehouse_path: str | None = None,
    category: str | None = None,
    product_ids: list[str] | None = None,
    as_of: dt.date | None = None,
    config_file: str | None = None,
    epochs: int | None = None,
) -> dict:
    """Retrain the models of all products, one category, or a list of products, by hand.

    New models are registered in `model_versions`; the next nightly run uses them. Prices are not
    changed by a retrain.
    """
    settings = _settings(warehouse_path, config_file, epochs)
    path = str(settings.warehouse)
    history = read_history(path, as_of, product_ids)
    products = history.products
    if category is not None:
        products = products.filter(pl.col("category") == category)
    _check_selection(products, category, product_ids)
    history = replace(history, products=products)
    run_id = str(uuid.uuid4())
    params = {"category": category, "product_ids": product_ids, "as_of": str(history.as_of)}
    record_start(path, run_id, "retrain", history.as_of, params)
    try:
        return _retrain(path, run_id, history, settings)
    except BaseException as exc:
        _fail(path, run_id, exc)
        raise


def _check_selection(
    products: pl.DataFrame, category: str | None, product_ids: list[str] | None
) -> None:
    if product_ids is not None:
        unknown = sorted(set(product_ids) - set(products["product_id"].to_list()))
        if unknown:
            raise ValueError(f"unknown or inactive product id(s): {', '.join(unknown[:5])}")
    if products.is_empty():
        what = f"category '{category}'" if category else "the selection"
        raise ValueError(f"no active products in {what}: check `pricing sql` for valid values")


def _retrain(path: str, run_id: str, history: History, settings: Settings) -> dict:
    started = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    ids = history.products["product_id"].to_list()
    panel = build_panel(history.sales, ids, history.as_of)
    outputs, artefacts, version = _model_outputs(panel, history, settings, run_id, force=True)
    categories = dict(zip(ids, history.products["category"].to_list(), strict=True))
    table = product_table(outputs, panel, categories, settings.model)
    versions = registry.model_version_rows(table, version, run_id, artefacts, started)
    counts = {"n_products": len(ids), "n_trained": len(artefacts)}
    message = f"retrained {len(artefacts)} of {len(ids)} products as model version {version}"
    write_outputs(
        path, run_id, history.as_of, model_versions=versions, counts=counts, message=message
    )
    get_run_logger().info(message)
    return {"run_id": run_id, "model_version": version, **counts}
