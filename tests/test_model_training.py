"""Tests of pipeline/model/training.py: batched training and per-product early stopping."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from pipeline import model
from pipeline.config import ModelConfig
from pipeline.features import panel_until
from pipeline.model import training
from tests.worlds import trainable_panel

CFG = ModelConfig(
    epochs=3, min_epochs=0, hidden_units=8, segment_days=64, warmup_days=8, horizon=7,
    validation_days=14, patience=2, segments_per_batch=8,
)  # fmt: skip


@pytest.fixture(scope="module")
def world_panel():
    return trainable_panel(n_products=30, n_days=300, seed=5, min_observed=250)


def test_training_learns_and_elasticities_are_never_positive(world_panel) -> None:
    world, panel = world_panel
    cfg = dataclasses.replace(CFG, epochs=4)
    net = model.build_net(len(panel.product_ids), cfg)
    batch = model.make_batch(
        panel, model.segment_starts(panel.n_days, cfg.segment_days, cfg.warmup_days),
        cfg.segment_days, cfg.horizon, (0, panel.n_days - 14), cfg.warmup_days,
    )  # fmt: skip
    untrained = np.nanmean(model.per_product_nll(net, batch))
    # With the products' categories, as the nightly run trains them (the regression pools within).
    category = dict(zip(world.truth["product_id"], world.truth["category"], strict=True))
    result = model.train(panel, cfg, groups=np.array([category[p] for p in panel.product_ids]))
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


def test_early_stopping_restores_a_products_best_weights_while_another_trains_on(
    world_panel, monkeypatch
) -> None:
    # Of this seeded pair, product 0's validation loss is best after epoch 3 and worse after it;
    # product 1's improves every epoch. Record every epoch's weights and validation losses.
    _, panel = world_panel
    pair = panel.select(np.array([0, 5]))
    cfg = dataclasses.replace(CFG, epochs=6, hidden_units=4)
    nets: list[model.DemandNet] = []

    def build_and_keep(n_products: int, config: ModelConfig) -> model.DemandNet:
        nets.append(model.build_net(n_products, config))
        return nets[-1]

    monkeypatch.setattr(training, "build_net", build_and_keep)
    # Early stopping watches the validation_days before the backtest's tail, on the model's
    # scales (those of the days before the tail).
    cutoff = pair.n_days - cfg.validation_days
    window = (cutoff - cfg.validation_days, cutoff)
    before = panel_until(pair, cutoff)
    scaled = dataclasses.replace(pair, ref_price=before.ref_price, level=before.level)
    start = np.array([cutoff - cfg.segment_days])
    val_batch = model.make_batch(scaled, start, cfg.segment_days, cfg.horizon, window, 0)
    weights, losses = [], []

    def progress(epoch: int, epochs: int, loss: float, learning: int) -> None:
        # Called after the epoch's early-stopping step (a stopped product is already reset).
        weights.append([v.numpy().copy() for v in nets[0].trainable_weights])
        losses.append(model.per_product_nll(nets[0], val_batch))

    result = model.train(pair, cfg, progress)
    losses = np.array(losses)  # [epochs run, 2]
    final = [v.numpy() for v in result.net.trainable_weights]

    best = int(np.argmin(losses[:, 0]))  # product 0's best epoch (0-based)
    assert losses[best + 1, 0] > losses[best, 0]  # it got worse after its best epoch...
    assert any(_moved(weights[best + 1], weights[best], 0))  # ...with other weights...
    assert result.stopped_epoch[0] < result.epochs_run  # ...and stopped early,
    assert not any(_moved(final, weights[best], 0))  # restored to its best epoch's weights
    assert result.best_val_loss[0] == pytest.approx(losses[best, 0], rel=1e-6)

    # Product 1 was still improving: it trained every epoch and kept its last weights.
    assert result.epochs_run == cfg.epochs
    assert result.stopped_epoch[1] == result.epochs_run
    assert (np.diff(losses[:, 1]) < 0).all()
    assert not any(_moved(final, weights[-1], 1))
    assert any(_moved(final, weights[best], 1))
    assert result.best_val_loss[1] == pytest.approx(losses[-1, 1], rel=1e-6)


def _moved(now: list[np.ndarray], then: list[np.ndarray], product: int) -> list[bool]:
    """For each weight tensor, whether `product`'s slice differs between two snapshots."""
    return [not np.array_equal(a[product], b[product]) for a, b in zip(now, then, strict=True)]


@pytest.mark.slow
def test_the_backtest_never_sees_the_days_it_scores(world_panel) -> None:
    # Two histories that differ only on the backtest's tail (its units, then its prices too):
    # everything the backtest's model knows must be identical, and so must its forecasts from
    # the first origin, which only the tail's own (known in advance) prices could move.
    _, panel = world_panel
    six = panel.select(np.arange(6))
    cfg = dataclasses.replace(CFG, epochs=2)
    tail = np.arange(six.n_days) >= six.n_days - cfg.validation_days
    busier = dataclasses.replace(six, units=np.where(tail, six.units * 3 + 5, six.units))
    dearer = dataclasses.replace(busier, price=np.where(tail, six.price * 1.2, six.price))
    groups = np.array(["a", "a", "a", "b", "b", "b"])
    results = [model.train(p, cfg, groups=groups) for p in (six, busier, dearer)]
    first, second, third = results
    assert first.cutoff == six.n_days - cfg.validation_days
    row = first.cutoff - 1 - (six.n_days - cfg.segment_days)  # the first origin's forecast
    for other in (second, third):
        np.testing.assert_array_equal(other.panel.ref_price, first.panel.ref_price)
        np.testing.assert_array_equal(other.panel.level, first.panel.level)
        for mine, theirs in zip(
            first.net.trainable_weights, other.net.trainable_weights, strict=True
        ):
            np.testing.assert_allclose(theirs.numpy(), mine.numpy(), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(
        second.backtest_log_units[:, row], first.backtest_log_units[:, row], rtol=1e-6, atol=1e-6
    )
    # The tail's prices enter only as the prices the forecast is made at: dearer days, fewer
    # units forecast, by exactly the (negative) elasticity the backtest's model used.
    moved = third.backtest_log_units[:, row] - first.backtest_log_units[:, row]
    used = moved[:, 0] / np.log(1.2)
    assert ((used >= -5.0) & (used <= -0.05)).all()
    np.testing.assert_allclose(moved, np.repeat(moved[:, :1], cfg.horizon, axis=1), atol=1e-5)
    # The published elasticities are refitted on the whole history, the tail included.
    assert not np.allclose(third.regression.elasticity, first.regression.elasticity)
