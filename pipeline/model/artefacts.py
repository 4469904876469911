"""Model artefacts on disk: Keras' `.keras` file plus a JSON sidecar, and the checks on reading.

An artefact records the format and model shape it was made with; one made by another format or
shape is refused with a `ModelArtefactError` that says to retrain, never loaded half-way.
"""

from __future__ import annotations

import dataclasses
import json
import zipfile
from pathlib import Path

import keras
import numpy as np

from pipeline.config import ModelConfig
from pipeline.errors import UserError, first_line
from pipeline.features import Panel
from pipeline.model.layers import DemandNet
from pipeline.model.training import TrainResult

ARTEFACT_FORMAT = 4  # bump when what a saved model means changes: older artefacts are refused
MODEL_FILE = "model.keras"
# What a saved model was made with that `cfg` must match for it to be used (or reused by the
# nightly run): anything else is retrained. Dropout changes only training, but a model trained
# without it is not the model the config asks for.
ARCHITECTURE_KEYS = (
    "hidden_units",
    "horizon",
    "promo_lift",
    "elasticity",
    "cell",
    "layers",
    "dropout",
    "decoder",
    "local_level_days",
)
META_FILE = "meta.json"
_DEFAULTS = dataclasses.asdict(ModelConfig())


class ModelArtefactError(UserError, RuntimeError):
    """A saved model does not match this code or config; retrain it (`pricing retrain`)."""


def save(result: TrainResult, folder: Path, cfg: ModelConfig, extra: dict | None = None) -> Path:
    """Save the model (Keras' .keras format) and the metadata needed to use it again."""
    folder.mkdir(parents=True, exist_ok=True)
    result.net.save(folder / MODEL_FILE)
    meta = {
        "format": ARTEFACT_FORMAT,
        "keras_version": keras.__version__,
        "product_ids": list(result.panel.product_ids),
        "ref_price": result.panel.ref_price.tolist(),
        "level": result.panel.level.tolist(),
        "recent_level": recent_level(result.panel).tolist(),
        "model_config": dataclasses.asdict(cfg),
        **(extra or {}),
    }
    (folder / META_FILE).write_text(json.dumps(meta, indent=1))
    return folder


def recent_level(panel: Panel, days: int = 28) -> np.ndarray:
    """Mean units per day over each product's last `days` observed, uncensored days: [P]."""
    out = np.zeros(len(panel.product_ids))
    good = panel.observed & ~panel.stockout
    for i in range(len(out)):
        recent = panel.units[i][good[i]][-days:]
        out[i] = recent.mean() if recent.size else 0.0
    return out


def read_meta(folder: Path) -> dict:
    """The JSON metadata saved beside a model (product ids, scales, config, backtest)."""
    try:
        return json.loads((folder / META_FILE).read_text())
    except (OSError, ValueError) as exc:
        raise ModelArtefactError(
            f"model artefact {folder} has no readable metadata: {exc}"
        ) from None


def _check_intact(model_file: Path) -> None:
    """A `.keras` file is a zip archive with a CRC-32 per member: a file cut short or with
    changed bytes fails here, before anything relies on it being loadable."""
    try:
        with zipfile.ZipFile(model_file) as archive:
            member = archive.testzip()
        problem = None if member is None else f"{member} fails its checksum"
    except (zipfile.BadZipFile, OSError) as exc:
        problem = f"not a whole zip archive: {first_line(exc)}"
    if problem is not None:
        raise ModelArtefactError(
            f"model artefact {model_file.parent} is damaged ({problem}): run `pricing retrain`"
        )


def check_artefact(folder: Path, cfg: ModelConfig, meta: dict | None = None) -> dict:
    """The artefact's metadata, if it is complete and was made by this format and model shape.

    `meta`: its metadata where the caller has already read it (read here otherwise).

    Raises:
        ModelArtefactError: missing or damaged files, another artefact format, or another shape
            than `cfg`.
    """
    if not (folder / META_FILE).is_file() or not (folder / MODEL_FILE).is_file():
        raise ModelArtefactError(f"model artefact {folder} is incomplete: run `pricing retrain`")
    _check_intact(folder / MODEL_FILE)
    meta = read_meta(folder) if meta is None else meta
    saved = meta.get("model_config", {})
    if meta.get("format") != ARTEFACT_FORMAT:
        raise ModelArtefactError(
            f"model artefact {folder} has format {meta.get('format')}, this code reads "
            f"{ARTEFACT_FORMAT}: run `pricing retrain`"
        )
    for key in ARCHITECTURE_KEYS:
        # A key newer than the artefact: it was made before the option, as with its default.
        was = saved.get(key, _DEFAULTS[key])
        if was != getattr(cfg, key):
            raise ModelArtefactError(
                f"model artefact {folder} was trained with {key}={was}, config says "
                f"{getattr(cfg, key)}: run `pricing retrain`"
            )
    return meta


def load(folder: Path, cfg: ModelConfig) -> tuple[DemandNet, dict]:
    """Load a saved model; refuse one made by another artefact format or model shape.

    The .keras file is loaded in Keras' safe mode: only the registered model classes of this
    module can be rebuilt, no arbitrary code (lambdas) is deserialised.

    Raises:
        ModelArtefactError: missing files, another format, or another shape than `cfg`.
    """
    meta = check_artefact(folder, cfg)
    try:
        net = keras.saving.load_model(folder / MODEL_FILE, compile=False, safe_mode=True)
    except (ValueError, TypeError, OSError, zipfile.BadZipFile) as exc:
        raise ModelArtefactError(
            f"model artefact {folder} cannot be loaded ({first_line(exc)}): run `pricing retrain`"
        ) from None
    if not isinstance(net, DemandNet) or net.n_products != len(meta["product_ids"]):
        raise ModelArtefactError(f"model artefact {folder} does not match its metadata: retrain")
    return net, meta


def with_saved_scales(panel: Panel, meta: dict) -> Panel:
    """The panel with the reference prices and levels the model was trained with."""
    index = {pid: i for i, pid in enumerate(meta["product_ids"])}
    order = np.array([index[p] for p in panel.product_ids])
    return dataclasses.replace(
        panel,
        ref_price=np.asarray(meta["ref_price"], dtype=np.float32)[order],
        level=np.asarray(meta["level"], dtype=np.float32)[order],
    )
