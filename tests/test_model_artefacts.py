"""Tests of pipeline/model/artefacts.py: saving, loading and refusing model artefacts."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from pipeline import model
from pipeline.config import ModelConfig
from pipeline.errors import UserError
from tests.worlds import trainable_panel

CFG = ModelConfig(
    epochs=3, min_epochs=0, hidden_units=8, segment_days=64, warmup_days=8, horizon=7,
    validation_days=14, patience=2, segments_per_batch=8,
)  # fmt: skip


@pytest.fixture(scope="module")
def world_panel():
    return trainable_panel(n_products=30, n_days=300, seed=5, min_observed=250)


def test_save_load_round_trip_and_refusals(world_panel, tmp_path) -> None:
    _, panel = world_panel
    result = model.train(panel, dataclasses.replace(CFG, epochs=1))
    folder = model.save(result, tmp_path / "shard-000", CFG)
    net, meta = model.load(folder, CFG)
    assert meta["product_ids"] == list(panel.product_ids)
    before = model.predict_segment(result.net, panel, CFG, future_at_ref=True)
    after = model.predict_segment(net, panel, CFG, future_at_ref=True)
    np.testing.assert_allclose(after, before, rtol=1e-5, atol=1e-5)
    with pytest.raises(model.ModelArtefactError, match="horizon"):
        model.load(folder, dataclasses.replace(CFG, horizon=5))
    meta["format"] = 999
    (folder / model.META_FILE).write_text(json.dumps(meta))
    with pytest.raises(model.ModelArtefactError, match="format 999"):
        model.load(folder, CFG)


def test_an_unreadable_artefact_is_a_one_line_user_error(world_panel, tmp_path) -> None:
    _, panel = world_panel
    untrained = model.TrainResult(
        net=model.build_net(len(panel.product_ids), CFG), panel=panel, epochs_run=0, seconds=0.0,
        best_val_loss=np.full(len(panel.product_ids), np.nan),
        stopped_epoch=np.zeros(len(panel.product_ids), int), cutoff=panel.n_days,
    )  # fmt: skip
    folder = model.save(untrained, tmp_path / "shard-000", CFG)
    (folder / model.MODEL_FILE).write_bytes(b"not a keras file")
    with pytest.raises(model.ModelArtefactError) as caught:
        model.load(folder, CFG)
    # The CLI prints a UserError as its message: one line that says what to do.
    assert isinstance(caught.value, UserError) and isinstance(caught.value, RuntimeError)
    assert "\n" not in str(caught.value) and "pricing retrain" in str(caught.value)
    (folder / model.META_FILE).write_text("{not json")
    with pytest.raises(UserError, match="no readable metadata"):
        model.read_meta(folder)
