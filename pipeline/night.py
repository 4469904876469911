"""One night of pricing as pure functions: what the warehouse holds in, what it should hold out.

A run is read -> prepare -> train -> price -> write:

- `pipeline.catalog.read_night` reads a `NightInputs` from the warehouse (the only read);
- `prepare_night` checks the history and builds the model panel (`PreparedNight`);
- `plan_training` says which products train tonight, in which shards, and which saved models are
  reused; the shards train with `registry.train_shard` (in-process with `train_models`, or as
  Prefect tasks mapped over the shards in flows/);
- `price_night` turns the models' outputs into the night's recommendations, forecasts and model
  versions (`NightOutputs`), and `retrain_outputs` into a retrain's;
- `pipeline.catalog.write_night` writes a `NightOutputs` in one transaction (the only write).

Nothing here touches the warehouse or Prefect, so the flows, the benchmarks and tests all call the
same functions.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl

from pipeline import registry, validate
from pipeline.config import Settings
from pipeline.contract import RUN_COMPLETED, RUN_FAILED
from pipeline.errors import UserError
from pipeline.features import Panel, build_panel
from pipeline.forecast import ModelOutputs, daily_forecasts, product_table
from pipeline.model import ProgressFn
from pipeline.pricing import explore
from pipeline.stats import ElasticityPool
from pipeline.summary import counts_of, one_line


@dataclass(frozen=True)
class NightInputs:
    """Everything a night reads from the warehouse.

    Attributes:
        products: the active products to price (or retrain).
        sales: their sales before `as_of`.
        versions: the latest model version of each product.
        as_of: the first priced day; only sales before it are used.
        later_sales: sales dated after the latest plausible day (checked as future dates only).
        orphan_sales: sales of products missing from the products table.
        plausible_until: the latest plausible sales day (today in UTC plus a day's slack).
        price_tests: the latest price-test row of each product (`pricing.explore.STATE_COLUMNS`;
            empty: no test history).
    """

    products: pl.DataFrame
    sales: pl.DataFrame
    versions: pl.DataFrame
    as_of: dt.date
    later_sales: pl.DataFrame
    orphan_sales: pl.DataFrame
    plausible_until: dt.date
    price_tests: pl.DataFrame = field(default_factory=explore.no_tests)

    @property
    def categories(self) -> dict[str, str]:
        """product_id -> category of the products to price."""
        return dict(zip(*self.products.select("product_id", "category"), strict=True))


def inputs_from_frames(
    products: pl.DataFrame,
    sales: pl.DataFrame,
    as_of: dt.date | None = None,
    versions: pl.DataFrame | None = None,
    plausible_until: dt.date | None = None,
    price_tests: pl.DataFrame | None = None,
) -> NightInputs:
    """A night's inputs from frames in the data contract, as `catalog.read_night` reads them.

    For callers that hold the data in memory (tests, benchmarks, simulations): the active
    products, their sales before `as_of` (default: the day after the latest plausible sale),
    and the rows the checks need.
    """
    plausible_until = plausible_until or validate.latest_plausible_day()
    if as_of is None:
        as_of = sales.filter(pl.col("ds") <= plausible_until)["ds"].max() + dt.timedelta(days=1)
    active = products.filter(pl.col("is_active"))
    known = pl.col("product_id").is_in(products["product_id"].implode())
    history = sales.filter(pl.col("product_id").is_in(active["product_id"].implode()))
    return NightInputs(
        products=active.sort("product_id"),
        sales=history.filter(pl.col("ds") < as_of).sort("product_id", "ds"),
        versions=versions if versions is not None else _NO_VERSIONS,
        as_of=as_of,
        later_sales=sales.filter(
            pl.col("ds") > max(plausible_until, as_of - dt.timedelta(days=1))
        ).sort("product_id", "ds"),
        orphan_sales=sales.filter(~known).sort("product_id", "ds"),
        plausible_until=plausible_until,
        price_tests=price_tests if price_tests is not None else explore.no_tests(),
    )


_NO_VERSIONS = pl.DataFrame(
    schema={
        "product_id": pl.String,
        "model_version": pl.String,
        "trained_at": pl.Datetime,
        "artefact": pl.String,
    }
)


@dataclass(frozen=True)
class RunInfo:
    """Who a run is: its id, the model version it trains under and when it started training."""

    run_id: str
    model_version: str
    trained_at: dt.datetime

    @classmethod
    def new(cls, run_id: str, as_of: dt.date) -> RunInfo:
        """A run's identity, its model version derived from `as_of` and the run id."""
        trained_at = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        return cls(run_id, registry.new_model_version(as_of, run_id), trained_at)


@dataclass(frozen=True)
class PreparedNight:
    """A night's inputs after the data checks: the usable history as a model panel."""

    inputs: NightInputs
    checked: validate.Checked
    panel: Panel


@dataclass(frozen=True)
class ShardJob:
    """One training shard: its products' history, a label, where its artefact goes, its
    products' groups, and the own estimates of the products whose models are reused tonight
    (`registry.reused_pool`: each group's prior stands on its whole category)."""

    name: str
    panel: Panel
    folder: str
    groups: np.ndarray
    pool: ElasticityPool | None = None


@dataclass(frozen=True)
class TrainingPlan:
    """Which products train tonight (in shards) and which saved models are reused."""

    jobs: list[ShardJob]
    reuse: dict[str, list[str]]


@dataclass(frozen=True)
class Models:
    """What training and reuse produced for a night.

    Attributes:
        outputs: the outputs of every modelled product (trained now or reloaded).
        artefacts: product_id -> artefact folder, for the products trained now.
        failures: one line per training shard that failed (empty when all trained).
    """

    outputs: ModelOutputs
    artefacts: dict[str, str]
    failures: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class NightOutputs:
    """What a run writes, in one transaction, and what it reports.

    Attributes:
        model_versions: rows for the products trained in this run.
        recommendations, forecasts: tonight's prices and daily forecasts (None for a retrain
            or a failed run).
        data_issues: the rows the checks quarantined.
        counts: the run's counts (`runs` columns).
        message: the run's one-line message.
        status: the run's end status.
    """

    model_versions: pl.DataFrame
    recommendations: pl.DataFrame | None
    forecasts: pl.DataFrame | None
    data_issues: pl.DataFrame | None
    counts: dict
    message: str
    status: str = RUN_COMPLETED


def prepare_night(inputs: NightInputs) -> PreparedNight:
    """Check the history (bad rows quarantined, their products held) and build the panel."""
    checked = validate.check_history(
        inputs.products, inputs.sales, inputs.later_sales, inputs.orphan_sales,
        inputs.plausible_until,
    )  # fmt: skip
    ids = inputs.products["product_id"].to_list()
    return PreparedNight(inputs, checked, build_panel(checked.sales, ids, inputs.as_of))


def plan_training(
    night: PreparedNight, settings: Settings, run: RunInfo, force: bool
) -> TrainingPlan:
    """Split the products into shards to train now and saved models to reuse.

    A product trains when it has enough history and no current model (or `force`); see
    `registry.plan_training` for what makes a model current. Shards of `run.shard_size`
    products each save under `<model_dir>/<model_version>/shard-NNN`.
    """
    cfg, panel = settings.model, night.panel
    trainable = panel.n_observed >= cfg.min_history_days
    to_train, reuse = registry.plan_training(
        list(panel.product_ids), trainable, night.inputs.versions, night.inputs.as_of,
        settings.run.max_model_age_days, force, panel, cfg,
    )  # fmt: skip
    folder = settings.model_dir / run.model_version
    pool = registry.reused_pool(reuse, night.inputs.categories) if to_train else None
    jobs = _shard_jobs(night, to_train, folder, settings.run.shard_size, pool)
    return TrainingPlan(jobs, reuse)


def _shard_jobs(
    night: PreparedNight, to_train: list[str], folder: Path, size: int, pool: ElasticityPool | None
) -> list[ShardJob]:
    index = {pid: i for i, pid in enumerate(night.panel.product_ids)}
    category = night.inputs.categories
    shards = [to_train[i : i + size] for i in range(0, len(to_train), size)]
    return [
        ShardJob(
            name=f"shard {n + 1}/{len(shards)}",
            panel=night.panel.select(np.array([index[p] for p in shard])),
            folder=str(folder / f"shard-{n:03d}"),
            groups=np.array([category[p] or "" for p in shard]),
            pool=pool,
        )
        for n, shard in enumerate(shards)
    ]


def train_models(
    night: PreparedNight,
    plan: TrainingPlan,
    settings: Settings,
    progress: ProgressFn | None = None,
) -> Models:
    """Train the plan's shards one after another in this process and reload the reused models.

    The flows map the same `registry.train_shard` over the shards as Prefect tasks instead; this
    is the in-process path for benchmarks, simulations and tests. A failing shard raises.
    """
    trained = [
        (job, registry.train_shard(job.panel, settings.model, Path(job.folder), progress,
                                   job.groups, job.pool)[0])
        for job in plan.jobs
    ]  # fmt: skip
    return combine_models(night, plan, trained, [], settings)


def combine_models(
    night: PreparedNight,
    plan: TrainingPlan,
    trained: list[tuple[ShardJob, ModelOutputs]],
    failures: list[str],
    settings: Settings,
) -> Models:
    """The night's models: the finished shards' outputs, then the reused models' forecasts.

    When a shard failed the night will not be priced, so saved models are not reloaded.
    """
    reuse = {} if failures else plan.reuse
    loaded = [
        registry.load_shard(Path(folder), night.panel, settings.model, products)
        for folder, products in reuse.items()
    ]
    artefacts = {pid: job.folder for job, _ in trained for pid in job.panel.product_ids}
    outputs = registry.concat_outputs([*(out for _, out in trained), *loaded])
    return Models(outputs, artefacts, failures)


def _product_table(night: PreparedNight, models: Models, settings: Settings) -> pl.DataFrame:
    return product_table(models.outputs, night.panel, night.inputs.categories, settings.model)


def _version_rows(table: pl.DataFrame, models: Models, run: RunInfo) -> pl.DataFrame:
    return registry.model_version_rows(
        table, run.model_version, run.run_id, models.artefacts, run.trained_at
    )


def _with_run_id(frame: pl.DataFrame, run: RunInfo) -> pl.DataFrame:
    return frame.with_columns(run_id=pl.lit(run.run_id))


def price_night(
    night: PreparedNight, models: Models, settings: Settings, run: RunInfo
) -> NightOutputs:
    """Tonight's recommendations, daily forecasts at the recommended prices and model versions.

    Args:
        night: the checked inputs (`prepare_night`).
        models: the outputs of the models trained now or reused (`train_models`).
        settings: model and pricing settings.
        run: the run's identity (ids and training time recorded on the rows).
    """
    inputs = night.inputs
    table = validate.hold(_product_table(night, models, settings), night.checked.holds)
    recs = explore.recommend(
        inputs.products, table, settings.pricing, inputs.price_tests, inputs.as_of,
        settings.model.horizon,
    )  # fmt: skip
    base_daily = dict(zip(models.outputs.product_ids, models.outputs.base_daily, strict=True))
    prices = recs.select("product_id", pl.col("recommended_price").alias("price"))
    forecasts = daily_forecasts(table, base_daily, prices, inputs.as_of, settings.model.horizon)
    used = _used_versions(inputs.versions, models.artefacts, run.model_version)
    recs = recs.with_columns(
        run_id=pl.lit(run.run_id),
        effective_date=pl.lit(inputs.as_of),
        model_version=pl.col("product_id").replace_strict(
            used, default=None, return_dtype=pl.String
        ),
    )
    counts = counts_of(recs, len(models.artefacts), night.checked.issues.height)
    return NightOutputs(
        model_versions=_version_rows(table, models, run),
        recommendations=recs,
        forecasts=_with_run_id(forecasts, run),
        data_issues=_with_run_id(night.checked.issues, run),
        counts=counts,
        message=one_line(counts),
    )


def _used_versions(versions: pl.DataFrame, artefacts: dict[str, str], version: str) -> dict:
    """product_id -> the model version its forecast came from tonight."""
    used = dict(
        zip(versions["product_id"].to_list(), versions["model_version"].to_list(), strict=True)
    )
    used.update({pid: version for pid in artefacts})
    return used


def retrain_outputs(
    night: PreparedNight, models: Models, settings: Settings, run: RunInfo
) -> NightOutputs:
    """A manual retrain's outputs: the new model versions (prices are not touched)."""
    table = _product_table(night, models, settings)
    n_products, n_trained = len(night.panel.product_ids), len(models.artefacts)
    counts = {
        "n_products": n_products, "n_trained": n_trained,
        "n_data_issues": night.checked.issues.height,
    }  # fmt: skip
    return NightOutputs(
        model_versions=_version_rows(table, models, run),
        recommendations=None,
        forecasts=None,
        data_issues=_with_run_id(night.checked.issues, run),
        counts=counts,
        message=f"retrained {n_trained} of {n_products} products as model version "
        f"{run.model_version}",
    )


def failed_training_outputs(
    night: PreparedNight, models: Models, settings: Settings, run: RunInfo, n_shards: int
) -> NightOutputs:
    """A run whose training shards partly failed: register the finished shards' models only.

    The run ends failed; the next nightly run trains only the products still without a current
    model.
    """
    rows = _version_rows(_product_table(night, models, settings), models, run)
    finished = n_shards - len(models.failures)
    message = (
        f"{len(models.failures)} of {n_shards} training shards failed; the models of the "
        f"{finished} finished shards ({rows.height} products) are registered and "
        f"the next nightly run trains only the rest. First failure: {models.failures[0]}"
    )
    return NightOutputs(
        model_versions=rows,
        recommendations=None,
        forecasts=None,
        data_issues=None,
        counts={"n_trained": rows.height},
        message=message,
        status=RUN_FAILED,
    )


class SelectionError(UserError, ValueError):
    """A retrain's selection names no active product."""


def select_products(
    products: pl.DataFrame, category: str | None, product_ids: list[str] | None
) -> pl.DataFrame:
    """The active products a retrain selects (a category and/or ids), or a one-line error.

    Args:
        products: active products (already limited to `product_ids` when they are given).
        category: only this category, if given.
        product_ids: the ids asked for, if given; each must be an active product.

    Raises:
        SelectionError: an id is unknown or inactive, or nothing is selected.
    """
    if category is not None:
        products = products.filter(pl.col("category") == category)
    if product_ids is not None:
        unknown = sorted(set(product_ids) - set(products["product_id"].to_list()))
        if unknown:
            raise SelectionError(f"unknown or inactive product id(s): {', '.join(unknown[:5])}")
    if products.is_empty():
        what = f"category '{category}'" if category else "the selection"
        raise SelectionError(f"no active products in {what}: check `pricing sql` for valid values")
    return products
