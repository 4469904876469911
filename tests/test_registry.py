"""Tests of pipeline/registry.py: saving shards, reusing them, and the staleness rules."""

from __future__ import annotations

import dataclasses
import datetime as dt

import numpy as np
import polars as pl
import pytest

from pipeline import model, registry, synth
from pipeline.config import ModelConfig
from pipeline.features import build_panel

CFG = ModelConfig(
    epochs=1, min_epochs=0, hidden_units=4, segment_days=64, warmup_days=8, horizon=7,
    validation_days=14,
)  # fmt: skip


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    world = synth.generate_world(n_products=6, n_days=200, seed=11)
    as_of = world.sales["ds"].max() + dt.timedelta(days=1)
    panel = build_panel(world.sales, world.products["product_id"].to_list(), as_of)
    panel = panel.select(np.where(panel.n_observed >= 150)[0])
    folder = tmp_path_factory.mktemp("models") / "v1" / "shard-000"
    outputs, _ = registry.train_shard(panel, CFG, folder)
    versions = pl.DataFrame(
        {
            "product_id": list(panel.product_ids),
            "trained_at": [dt.datetime.combine(as_of, dt.time())] * len(panel.product_ids),
            "artefact": [str(folder)] * len(panel.product_ids),
        }
    )
    return panel, folder, outputs, versions, as_of


def test_a_saved_shard_reproduces_its_forecast(trained) -> None:
    panel, folder, outputs, _, _ = trained
    again = registry.load_shard(folder, panel, CFG)
    assert again.product_ids == outputs.product_ids
    np.testing.assert_allclose(again.base_daily, outputs.base_daily, rtol=1e-4)
    np.testing.assert_allclose(again.elasticity, outputs.elasticity, rtol=1e-5)
    np.testing.assert_allclose(again.model_abs_error, outputs.model_abs_error)


def test_current_models_are_reused_and_stale_ones_retrained(trained) -> None:
    panel, folder, _, versions, as_of = trained
    ids, ok = list(panel.product_ids), np.ones(len(panel.product_ids), bool)
    to_train, reuse = registry.plan_training(ids, ok, versions, as_of, 7, False, panel, CFG)
    assert to_train == [] and reuse == {str(folder): ids}
    # Too old.
    later = as_of + dt.timedelta(days=8)
    to_train, reuse = registry.plan_training(ids, ok, versions, later, 7, False, panel, CFG)
    assert to_train == ids and reuse == {}
    # Forced.
    assert registry.plan_training(ids, ok, versions, as_of, 7, True)[0] == ids
    # Demand drifted: one product's recent sales tripled.
    units = panel.units.copy()
    units[0, -28:] *= 3.0
    moved = dataclasses.replace(panel, units=units)
    to_train, reuse = registry.plan_training(ids, ok, versions, as_of, 7, False, moved, CFG)
    assert to_train == ids and reuse == {}
    # Too little history: neither trained nor reused.
    few = ok.copy()
    few[0] = False
    to_train, _ = registry.plan_training(ids, few, versions, later, 7, False, panel, CFG)
    assert to_train == ids[1:]


def test_an_artefact_of_another_format_or_shape_is_retrained_not_loaded(trained) -> None:
    panel, folder, _, versions, as_of = trained
    ids, ok = list(panel.product_ids), np.ones(len(panel.product_ids), bool)
    other = dataclasses.replace(CFG, hidden_units=8)
    to_train, reuse = registry.plan_training(ids, ok, versions, as_of, 7, False, panel, other)
    assert to_train == ids and reuse == {}
    with pytest.raises(model.ModelArtefactError, match="hidden_units=4"):
        registry.load_shard(folder, panel, other)
