"""Model artefacts: train-and-save a shard, reload it, and decide which products need training.

Artefacts live under `<model_dir>/<model_version>/shard-NNN/` in Keras' own weights format with a
JSON sidecar (pipeline.model.save); their metadata rows go to `model_versions` via the flows.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import polars as pl

from pipeline import model
from pipeline.config import ModelConfig
from pipeline.contract import STATUS_TRAINED
from pipeline.features import Panel
from pipeline.forecast import REGRESSION_FIELDS, ModelOutputs, baseline_daily, summarise
from pipeline.stats import ElasticityPool

# Backtest results, intervals and what the regression said, computed at training time and
# reused with the saved model.
_STORED = (
    "elasticity_lo",
    "elasticity_hi",
    "dispersion",
    "model_abs_error",
    "naive_abs_error",
    "actual_units",
    "n_points",
    "naive_scale",
)
# Stored where the model has them; absent in older artefacts (read back as None).
_OPTIONAL = (*REGRESSION_FIELDS, "error_gap_se")
# ModelOutputs' per-product arrays (every field but the ids), for selecting and concatenating.
_ARRAYS = tuple(name for name in ModelOutputs.__dataclass_fields__ if name != "product_ids")


def new_model_version(as_of: dt.date, run_id: str) -> str:
    """A sortable, unique model version id such as '20261101-1a2b3c4d'."""
    return f"{as_of:%Y%m%d}-{run_id.replace('-', '')[:8]}"


def train_shard(
    panel: Panel,
    cfg: ModelConfig,
    folder: Path,
    progress: model.ProgressFn | None = None,
    groups: np.ndarray | None = None,
    pool: ElasticityPool | None = None,
) -> tuple[ModelOutputs, float]:
    """Train the products of `panel` as one batched model, backtest it and save it to `folder`.

    `groups` ([P] category labels) lets elasticities borrow strength within a category, and
    `pool` (other products' own estimates) adds to each category's prior.

    Returns:
        The model's outputs for these products and the training time in seconds.
    """
    result = model.train(panel, cfg, progress, groups, pool)
    outputs = summarise(result, cfg)
    extra = {name: getattr(outputs, name).tolist() for name in _STORED}
    extra |= {
        name: _json_list(getattr(outputs, name))
        for name in _OPTIONAL
        if getattr(outputs, name) is not None
    }
    model.save(result, folder, cfg, extra)
    return outputs, result.seconds


def _json_list(values: np.ndarray) -> list:
    """An array as a JSON-ready list (NaN as null; text stays text)."""
    if values.dtype == object:
        return [str(v) for v in values]
    return [None if not np.isfinite(v) else float(v) for v in values]


def _from_json(values: list) -> np.ndarray:
    """`_json_list` read back: text as an object array, numbers as floats (null as NaN)."""
    if values and isinstance(values[0], str):
        return np.array(values, dtype=object)
    return np.array([np.nan if v is None else v for v in values], dtype=np.float64)


def load_shard(
    folder: Path, panel: Panel, cfg: ModelConfig, products: list[str] | None = None
) -> ModelOutputs:
    """Forecast with a saved shard on today's history, reusing its stored backtest and interval.

    Args:
        folder: the shard's artefact folder.
        panel: history that contains (at least) every product of the shard.
        cfg: the current model config (the artefact must match it).
        products: the shard's products whose outputs are wanted (None: all); a product
            retrained since in another shard is left out, so it is not forecast twice.

    Raises:
        pipeline.model.ModelArtefactError: the artefact is missing, of another format or shape.
    """
    net, meta = model.load(folder, cfg)
    index = {pid: i for i, pid in enumerate(panel.product_ids)}
    missing = [p for p in meta["product_ids"] if p not in index]
    if missing:
        raise model.ModelArtefactError(
            f"model artefact {folder} covers products without history now ({missing[0]}, ...): "
            "run `pricing retrain`"
        )
    sub = model.with_saved_scales(
        panel.select(np.array([index[p] for p in meta["product_ids"]])), meta
    )
    # Only the forecast is new tonight; the backtest and intervals were stored at training time.
    stored = {name: np.asarray(meta[name]) for name in _STORED}
    optional = {name: _from_json(meta[name]) if name in meta else None for name in _OPTIONAL}
    out = ModelOutputs(
        product_ids=sub.product_ids,
        base_daily=baseline_daily(net, sub, cfg),
        elasticity=model.elasticities(net),
        ref_price=sub.ref_price.astype(np.float64),
        **stored,
        **optional,
    )
    return out if products is None else select_outputs(out, products)


def select_outputs(out: ModelOutputs, products: list[str]) -> ModelOutputs:
    """The outputs of `products` only (in `out`'s order; products it lacks are ignored)."""
    wanted = set(products)
    index = np.array([i for i, pid in enumerate(out.product_ids) if pid in wanted], dtype=np.int64)
    arrays = {
        name: None if getattr(out, name) is None else getattr(out, name)[index] for name in _ARRAYS
    }
    return ModelOutputs(product_ids=tuple(out.product_ids[i] for i in index), **arrays)


def concat_outputs(parts: list[ModelOutputs]) -> ModelOutputs:
    """Several shards' outputs as one (products in shard order)."""
    if not parts:
        return ModelOutputs((), np.zeros((0, 1)), *(np.zeros(0) for _ in range(9)))
    ids = tuple(pid for part in parts for pid in part.product_ids)
    arrays = {
        name: _concat([getattr(part, name) for part in parts], [len(p.product_ids) for p in parts])
        for name in _ARRAYS
    }
    return ModelOutputs(product_ids=ids, **arrays)


def _concat(values: list[np.ndarray | None], sizes: list[int]) -> np.ndarray | None:
    """Shards' arrays as one; a shard without the field (None) gives NaN (or None as text)."""
    if all(v is None for v in values):
        return None
    text = any(v is not None and v.dtype == object for v in values)
    filler = (lambda n: np.full(n, None, dtype=object)) if text else (lambda n: np.full(n, np.nan))
    return np.concatenate(
        [filler(n) if v is None else v for v, n in zip(values, sizes, strict=True)]
    )


def plan_training(
    product_ids: list[str],
    trainable: np.ndarray,
    versions: pl.DataFrame,
    as_of: dt.date,
    max_age_days: int,
    force: bool,
    panel: Panel | None = None,
    cfg: ModelConfig | None = None,
) -> tuple[list[str], dict[str, list[str]]]:
    """Split products into those to train now and those whose current model can be reused.

    A model is current when its artefact still exists, it was trained at most `max_age_days`
    before `as_of`, and (given the model `cfg`) it was made by this artefact format and model
    shape, and (given the `panel`) no product of its shard drifted: recent mean units moved by
    more than `cfg.drift_ratio` since it was trained. Other models are retrained, not refused.
    Products with too little history (`trainable` False) are in neither list.

    Returns:
        (products to train, {artefact folder: products reusing it}).
    """
    candidates = [pid for pid, ok in zip(product_ids, trainable, strict=True) if ok]
    if force or versions.is_empty():
        return candidates, {}
    oldest = dt.datetime.combine(as_of - dt.timedelta(days=max_age_days), dt.time())
    current = versions.filter(
        pl.col("artefact").is_not_null(),
        pl.col("trained_at") >= oldest,
        pl.col("product_id").is_in(candidates),
    )
    reuse: dict[str, list[str]] = {}
    for artefact, group in current.group_by("artefact"):
        folder = str(artefact[0])
        meta = _meta_or_none(Path(folder))  # read once for both checks
        usable = meta is not None and _usable(meta, set(candidates), cfg)
        if usable and _current(Path(folder), meta, panel, cfg):
            reuse[folder] = group["product_id"].to_list()
    # A shard is reusable only whole: its products' histories are re-read together.
    reused = {pid for pids in reuse.values() for pid in pids}
    return [pid for pid in candidates if pid not in reused], reuse


def reused_pool(reuse: dict[str, list[str]], categories: dict[str, str]) -> ElasticityPool | None:
    """The own (unpooled) estimates of the products whose saved models are reused tonight.

    Read from each artefact's metadata, with the products' categories: tonight's shards pool
    their elasticities against them as well (`stats.ElasticityPool`). None where there are none
    (every product trains, or the artefacts predate the stored regression fields).
    """
    estimate, se, groups = [], [], []
    for folder, pids in reuse.items():
        meta = model.read_meta(Path(folder))
        if "raw_elasticity" not in meta or "raw_se" not in meta:
            continue
        where = {pid: i for i, pid in enumerate(meta["product_ids"])}
        raw, raw_se = _from_json(meta["raw_elasticity"]), _from_json(meta["raw_se"])
        for pid in (p for p in pids if p in where):
            estimate.append(raw[where[pid]])
            se.append(raw_se[where[pid]])
            groups.append(categories.get(pid) or "")
    if not estimate:
        return None
    return ElasticityPool(np.array(estimate), np.array(se), np.array(groups, dtype=object))


def _meta_or_none(folder: Path) -> dict | None:
    """The shard's metadata, or None where it is missing or unreadable (it is retrained)."""
    try:
        return model.read_meta(folder)
    except model.ModelArtefactError:
        return None


def _usable(meta: dict, candidates: set[str], cfg: ModelConfig | None) -> bool:
    """Can the shard forecast tonight: is every product it covers still one with history to
    forecast from, and (given `cfg`) does it hold what tonight's statuses read?

    The batched model runs on all its products' histories at once, so a product no longer sold
    (or with too little history now) makes the shard's other products train again, rather than
    stop the night. Its products retrained since in another shard are no obstacle: the shard
    forecasts them, and `load_shard` keeps only the products whose latest model it is. A model
    saved before the regression's fields were stored (`forecast.REGRESSION_FIELDS`; every
    elasticity mode runs the regression) cannot say which products are not identified or
    confounded, so it trains again too, rather than call them trained.
    """
    if cfg is not None and any(name not in meta for name in REGRESSION_FIELDS):
        return False
    return "product_ids" in meta and set(meta["product_ids"]) <= candidates


def _current(folder: Path, meta: dict, panel: Panel | None, cfg: ModelConfig | None) -> bool:
    """Is the artefact usable (format, shape) and have its products not drifted (`meta`: its
    metadata, read by the caller)?"""
    if cfg is None:
        return Path(folder, model.MODEL_FILE).is_file()
    try:
        model.check_artefact(folder, cfg, meta)
    except model.ModelArtefactError:
        return False
    return not _drifted(meta, panel, cfg.drift_ratio)


def _drifted(meta: dict, panel: Panel | None, ratio: float) -> bool:
    """Did any product of this shard move away from the recent level it was trained on?

    Compares each product's mean units over its last 28 uncensored days now with the same figure
    when the model was trained (seasonal swings over a model's few days of life are small; a
    sudden jump or collapse is not).
    """
    if panel is None:
        return False
    then = dict(zip(meta["product_ids"], meta.get("recent_level", meta["level"]), strict=True))
    index = np.array([i for i, pid in enumerate(panel.product_ids) if pid in then])
    if index.size == 0:
        return False
    now = model.recent_level(panel.select(index))
    before = np.array([then[panel.product_ids[i]] for i in index])
    low, high = np.minimum(now, before) + 0.1, np.maximum(now, before) + 0.1
    return bool((high / low > ratio).any())


# What the regression estimated, recorded per model (sql/migrations/004_regression_terms.sql).
VERSION_REGRESSION_COLUMNS = ("promo_effect", "identified_by", "confounding_z")


def model_version_rows(
    table: pl.DataFrame,
    model_version: str,
    run_id: str,
    artefacts: dict[str, str],
    trained_at: dt.datetime,
) -> pl.DataFrame:
    """Rows for the `model_versions` table of the products trained in this run.

    Args:
        table: forecast.product_table() output.
        model_version: id of this training run's models.
        run_id: the run that trained them.
        artefacts: product_id -> artefact folder, for the products trained now.
        trained_at: UTC time of training.
    """
    trained = table.filter(pl.col("product_id").is_in(list(artefacts)))
    return trained.select(
        pl.lit(model_version).alias("model_version"),
        "product_id",
        pl.lit(run_id).alias("run_id"),
        pl.lit(trained_at).alias("trained_at"),
        pl.col("n_train_days").cast(pl.Int32),
        "backtest_wape",
        "baseline_wape",
        "backtest_mase",
        "baseline_mase",
        "dispersion",
        "elasticity",
        "elasticity_lo",
        "elasticity_hi",
        (pl.col("status") == STATUS_TRAINED).alias("gate_passed"),
        "status",
        pl.col("product_id").replace_strict(artefacts, return_dtype=pl.String).alias("artefact"),
        *(pl.col(name) for name in VERSION_REGRESSION_COLUMNS),
    )
