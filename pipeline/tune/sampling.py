"""The products a study scores: the night's history, a category, a seeded sample.

The history is what the nightly run reads and checks (`catalog.read_night`, then
`night.prepare_night`: quarantined rows left out), and only products with the history training
needs (`model.min_history_days` observed days, as `night.plan_training` asks) can be sampled.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pipeline.catalog import read_night
from pipeline.config import ModelConfig
from pipeline.night import PreparedNight, prepare_night
from pipeline.tune.objective import Sample, TuneError


def read_history(warehouse: Path) -> PreparedNight:
    """The checked history of every active product, as the night reads it.

    Raises:
        WarehouseError: the warehouse is missing or has no sales.
    """
    return prepare_night(read_night(warehouse, None, None))


def categories(night: PreparedNight) -> list[str]:
    """The categories of the active products, sorted."""
    return sorted({c or "" for c in night.inputs.categories.values()})


def _groups(night: PreparedNight) -> np.ndarray:
    """Each panel product's category ("" for none)."""
    of = night.inputs.categories
    return np.array([of.get(pid) or "" for pid in night.panel.product_ids])


def trainable_counts(night: PreparedNight, cfg: ModelConfig) -> dict[str, int]:
    """Products per category with the history training needs (categories without any left out)."""
    group = _groups(night)[night.panel.n_observed >= cfg.min_history_days]
    names, counts = np.unique(group, return_counts=True)
    return {str(n): int(c) for n, c in zip(names, counts, strict=True)}


def draw_sample(
    night: PreparedNight,
    cfg: ModelConfig,
    size: int,
    category: str | None,
    seed: int,
    exclude: tuple[str, ...] = (),
) -> Sample:
    """`size` products drawn at random (seeded) among those that can train.

    Args:
        night: the checked history.
        cfg: the configuration tuned from (its `min_history_days`).
        size: products in the sample.
        category: only this category's products (None: all).
        seed: the draw's seed.
        exclude: products not to draw (another sample's).

    Raises:
        TuneError: the category is unknown, or fewer than `size` products can train.
    """
    known = categories(night)
    if category is not None and category not in known:
        raise TuneError(f"unknown category '{category}': choose one of {', '.join(known)}")
    eligible = candidates(night, cfg, category, exclude)
    if size > len(eligible):
        where = f" in category '{category}'" if category is not None else ""
        raise TuneError(
            f"--products {size} is more than the {len(eligible)} products{where} with the "
            f"{cfg.min_history_days} days of history training needs: sample fewer"
        )
    index = np.sort(np.random.default_rng(seed).choice(eligible, size=size, replace=False))
    return Sample(night.panel.select(index), _groups(night)[index], category)


def candidates(
    night: PreparedNight, cfg: ModelConfig, category: str | None, exclude: tuple[str, ...] = ()
) -> np.ndarray:
    """Panel indices of the products a sample can draw: with the history training needs, in
    `category` (None: any), not in `exclude`."""
    panel = night.panel
    eligible = panel.n_observed >= cfg.min_history_days
    if category is not None:
        eligible &= _groups(night) == category
    if exclude:
        eligible &= ~np.isin(np.asarray(panel.product_ids), list(exclude))
    return np.flatnonzero(eligible)
