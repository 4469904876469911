"""Tests of pipeline/model.py: the batched per-product LSTM, its training and its artefacts."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json

import numpy as np
import pytest

from pipeline import model, synth
from pipeline.config import ModelConfig
from pipeline.features import build_panel

CFG = ModelConfig(
    epochs=3, min_epochs=0, hidden_units=8, segment_days=64, warmup_days=8, horizon=7,
    validation_days=14, patience=2, segments_per_batch=8,
)  # fmt: skip


@pytest.fixture(scope="module")
def world_panel():
    world = synth.generate_world(n_products=30, n_days=300, seed=5)
    as_of = world.sales["ds"].max() + dt.timedelta(days=1)
    panel = build_panel(world.sales, world.products["product_id"].to_list(), as_of)
    full = np.where(panel.n_observed >= 250)[0]
    return world, panel.select(full)


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


def test_stockout_and_held_out_days_carry_no_loss(world_panel) -> None:
    _, panel = world_panel
    starts = model.segment_starts(panel.n_days, CFG.segment_days, CFG.warmup_days)
    cutoff = panel.n_days - 14
    batch = model.make_batch(panel, starts, CFG.segment_days, CFG.horizon, (0, cutoff), 8)
    weight = batch.targets[..., 1]
    # Target day of every (segment, product, origin, horizon) entry.
    day = (
        starts[:, None, None] + np.arange(CFG.segment_days)[None, :, None]
        + np.arange(1, CFG.horizon + 1)[None, None, :]
    )[:, None]  # fmt: skip
    day = np.broadcast_to(day, weight.shape)
    assert weight[day >= cutoff].sum() == 0
    inside = np.minimum(day, panel.n_days - 1)
    stockout = panel.stockout[np.arange(panel.units.shape[0])[None, :, None, None], inside]
    assert stockout.any()
    assert weight[stockout & (day < cutoff)].sum() == 0
    assert weight.sum() > 0


def test_training_learns_and_elasticities_are_never_positive(world_panel) -> None:
    world, panel = world_panel
    cfg = dataclasses.replace(CFG, epochs=4)
    net = model.build_net(len(panel.product_ids), cfg)
    batch = model.make_batch(
        panel, model.segment_starts(panel.n_days, cfg.segment_days, cfg.warmup_days),
        cfg.segment_days, cfg.horizon, (0, panel.n_days - 14), cfg.warmup_days,
    )  # fmt: skip
    untrained = np.nanmean(model.per_product_nll(net, batch))
    result = model.train(panel, cfg)
    trained = np.nanmean(model.per_product_nll(result.net, batch))
    assert trained < untrained
    stats = model.fit_statistics(result.net, panel, cfg)
    assert (stats["elasticity"] <= 0).all()
    assert (stats["elasticity_lo"] <= stats["elasticity"]).all()
    assert (stats["elasticity_hi"] >= stats["elasticity"] - 1e-6).all()
    truth = dict(zip(world.truth["product_id"], world.truth["elasticity"], strict=True))
    varied = panel.price_varied
    true = np.array([truth[p] for p in panel.product_ids])
    assert np.median(np.abs(stats["elasticity"] - true)[varied]) < 0.5


def test_network_mode_keeps_elasticity_nonpositive_on_perverse_data(world_panel) -> None:
    _, panel = world_panel
    one = panel.select(np.array([0]))
    # Sales that rise with price: the model must answer "elasticity 0", never positive.
    perverse = dataclasses.replace(one, units=(one.units * (one.price / one.ref_price) ** 3))
    cfg = dataclasses.replace(CFG, elasticity="network", epochs=3, validation_days=0)
    result = model.train(perverse, cfg)
    assert float(np.asarray(result.net.elasticity())[0]) <= 0.0


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
