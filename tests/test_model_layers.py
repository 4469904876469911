"""Tests of pipeline/model/layers.py: the batched per-product LSTM keeps its products apart."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline import model
from pipeline.config import ModelConfig
from tests.worlds import trainable_panel

CFG = ModelConfig(
    epochs=3, min_epochs=0, hidden_units=8, segment_days=64, warmup_days=8, horizon=7,
    validation_days=14, patience=2, segments_per_batch=8,
)  # fmt: skip


@pytest.fixture(scope="module")
def world_panel():
    return trainable_panel(n_products=30, n_days=300, seed=5, min_observed=250)


def _fit(net: model.DemandNet, batch: model.Batch, epochs: int) -> None:
    import keras

    net.compile(optimizer=keras.optimizers.Adam(0.05), loss=model.MaskedPoisson())
    targets = model.normalise_weights(batch.targets)
    net.fit(batch.inputs, targets, batch_size=len(batch.starts), epochs=epochs, shuffle=False,
            verbose=0)  # fmt: skip


def test_each_product_trains_exactly_as_it_would_alone(world_panel) -> None:
    _, panel = world_panel
    pair = panel.select(np.array([0, 1]))
    solo = panel.select(np.array([0]))
    starts = model.segment_starts(pair.n_days, CFG.segment_days, CFG.warmup_days)

    def batch(p):
        return model.make_batch(p, starts, CFG.segment_days, CFG.horizon, (0, p.n_days), 8)

    joint_net, solo_net = model.build_net(2, CFG), model.build_net(1, CFG)
    for joint_var, solo_var in zip(joint_net.weights, solo_net.weights, strict=True):
        solo_var.assign(joint_var.numpy()[:1])
    _fit(joint_net, batch(pair), epochs=3)
    _fit(solo_net, batch(solo), epochs=3)
    for joint_var, solo_var in zip(joint_net.weights, solo_net.weights, strict=True):
        np.testing.assert_allclose(joint_var.numpy()[:1], solo_var.numpy(), rtol=2e-3, atol=2e-4)


def test_products_do_not_leak_into_each_other(world_panel) -> None:
    _, panel = world_panel
    pair = panel.select(np.array([0, 1]))
    net = model.build_net(2, CFG)
    start = np.array([pair.n_days - CFG.segment_days])
    inputs = model.make_batch(pair, start, CFG.segment_days, CFG.horizon, (0, 0), 0).inputs
    before = np.asarray(net(inputs))
    changed = {k: v.copy() for k, v in inputs.items()}
    changed["history"][:, 1] += 3.0
    changed["log_price"][:, 1] -= 0.5
    after = np.asarray(net(changed))
    np.testing.assert_allclose(after[:, 0], before[:, 0], rtol=1e-5, atol=1e-5)
    assert not np.allclose(after[:, 1], before[:, 1])
