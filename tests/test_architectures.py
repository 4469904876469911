"""Tests of the forecaster's architecture options (`[model]` cell, layers, dropout, decoder).

Each option keeps products apart (a product trains batched exactly as alone), reads no day after
its origin, and is saved with the artefact; a bidirectional layer would read the future.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json

import numpy as np
import polars as pl
import pytest
from keras import ops

from pipeline import model, registry
from pipeline.config import ConfigError, ModelConfig
from tests.worlds import trainable_panel

CFG = ModelConfig(
    epochs=3, min_epochs=0, hidden_units=8, segment_days=64, warmup_days=8, horizon=7,
    validation_days=14, patience=2, segments_per_batch=8,
)  # fmt: skip
OPTIONS = {
    "gru": {"cell": "gru"},
    "layers2": {"layers": 2},
    "dropout": {"dropout": 0.3},
    "seq2seq": {"decoder": "seq2seq"},
    "local_level": {"local_level_days": 21},
    # With promo_lift the decoder reads the planned promotions too.
    "all": {
        "cell": "gru",
        "layers": 3,
        "dropout": 0.2,
        "decoder": "seq2seq",
        "promo_lift": True,
        "local_level_days": 21,
    },
}


@pytest.fixture(scope="module")
def world_panel():
    return trainable_panel(n_products=30, n_days=300, seed=5, min_observed=250)


def _fit(net: model.DemandNet, batch: model.Batch, epochs: int) -> None:
    import keras

    net.compile(optimizer=keras.optimizers.Adam(0.05), loss=model.MaskedPoisson())
    targets = model.normalise_weights(batch.targets)
    # One batch per step: one traced shape (each further shape is traced again, seconds each).
    size = len(batch.starts)
    net.fit(batch.inputs, targets, batch_size=size, epochs=epochs, shuffle=False, verbose=0)


def _latest_inputs(panel, cfg: ModelConfig) -> dict[str, np.ndarray]:
    start = np.array([panel.n_days - cfg.segment_days])
    return model.make_batch(panel, start, cfg.segment_days, cfg.horizon, (0, 0), 0).inputs


@pytest.mark.parametrize("name", list(OPTIONS))
def test_each_option_trains_every_product_exactly_as_alone(world_panel, name) -> None:
    # Dropout included: its masks are hashed per product, so they do not depend on the batch.
    cfg = dataclasses.replace(CFG, **OPTIONS[name])
    _, panel = world_panel
    pair, solo = panel.select(np.array([0, 1])), panel.select(np.array([0]))
    starts = model.segment_starts(pair.n_days, cfg.segment_days, cfg.warmup_days)

    def batch(p):
        return model.make_batch(p, starts, cfg.segment_days, cfg.horizon, (0, p.n_days), 8)

    joint_net, solo_net = model.build_net(2, cfg), model.build_net(1, cfg)
    initial = [w.numpy().copy() for w in joint_net.weights]
    for joint_var, solo_var in zip(joint_net.weights, solo_net.weights, strict=True):
        solo_var.assign(joint_var.numpy()[:1])
    _fit(joint_net, batch(pair), epochs=2)
    _fit(solo_net, batch(solo), epochs=2)
    moved = False
    for joint_var, solo_var, start in zip(
        joint_net.weights, solo_net.weights, initial, strict=True
    ):
        np.testing.assert_allclose(joint_var.numpy()[:1], solo_var.numpy(), rtol=2e-3, atol=2e-4)
        moved |= not np.allclose(joint_var.numpy(), start)
    assert moved


def test_dropout_is_per_product_seeded_and_off_at_inference(world_panel) -> None:
    _, panel = world_panel
    x = np.ones((4, 3, 50, 20), "float32")
    seed = np.array([7, 0], "int64")
    masked = ops.convert_to_numpy(model.per_product_dropout(x, 0.3, seed, salt=0))
    assert set(np.unique(masked)) == {0.0, np.float32(1 / 0.7)}
    assert abs((masked == 0).mean() - 0.3) < 0.02
    # Product 0's mask is the same whatever else shares the batch; other salts and seeds differ.
    alone = ops.convert_to_numpy(model.per_product_dropout(x[:, :1], 0.3, seed, salt=0))
    np.testing.assert_array_equal(alone, masked[:, :1])
    assert not np.array_equal(masked[:, 0], masked[:, 1])
    assert not np.array_equal(
        ops.convert_to_numpy(model.per_product_dropout(x, 0.3, seed, 1)), masked
    )
    # In a net: training steps differ from each other and from inference; inference is the
    # plain network (the same as the same weights without dropout).
    cfg = dataclasses.replace(CFG, dropout=0.3, layers=2)
    net = model.build_net(2, cfg)
    plain = model.build_net(2, dataclasses.replace(cfg, dropout=0.0))
    for mine, theirs in zip(net.weights, plain.weights, strict=True):
        theirs.assign(mine.numpy())
    inputs = _latest_inputs(panel.select(np.array([0, 1])), cfg)
    infer = ops.convert_to_numpy(net(inputs))
    np.testing.assert_array_equal(ops.convert_to_numpy(net(inputs)), infer)
    np.testing.assert_allclose(ops.convert_to_numpy(plain(inputs)), infer, rtol=1e-6, atol=1e-6)
    first = ops.convert_to_numpy(net(inputs, training=True))
    second = ops.convert_to_numpy(net(inputs, training=True))
    assert not np.allclose(first, infer) and not np.allclose(first, second)


@pytest.mark.parametrize("name", ["default", *OPTIONS])
def test_forecasts_read_nothing_after_their_origin(world_panel, name) -> None:
    cfg = dataclasses.replace(CFG, **OPTIONS.get(name, {}))
    _, panel = world_panel
    net = model.build_net(2, cfg)
    if cfg.local_level_days:  # its weight starts at 0: give the recent level a say
        net.level_coef.assign(np.ones(net.level_coef.shape, "float32"))
    inputs = _latest_inputs(panel.select(np.array([0, 1])), cfg)
    t, k = 40, cfg.horizon
    later = {key: value.copy() for key, value in inputs.items()}
    later["history"][:, :, t + 1 :] += np.random.default_rng(0).normal(size=(1, 2, 23, 21))
    # Known inputs (calendar, promotions, prices) are read up to the horizon's last day, t + k.
    later["calendar"][:, t + k + 1 :] += 1.0
    later["promo"][:, :, t + k + 1 :] = 1.0
    later["log_price"][:, :, t + k + 1 :] -= 0.5
    before, after = ops.convert_to_numpy(net(inputs)), ops.convert_to_numpy(net(later))
    np.testing.assert_allclose(after[:, :, : t + 1], before[:, :, : t + 1], rtol=0, atol=1e-6)
    assert not np.allclose(after[:, :, t + 1 :], before[:, :, t + 1 :])


def test_the_window_level_is_the_mean_of_the_last_good_days() -> None:
    rng = np.random.default_rng(2)
    history = rng.normal(size=(2, 3, 30, 6)).astype("float32")
    history[..., 1] = rng.uniform(size=(2, 3, 30)) < 0.2  # stockout
    history[..., 2] = rng.uniform(size=(2, 3, 30)) < 0.9  # observed
    history[0, 0, :12, 2] = 0.0  # nothing observed yet: no level
    elasticity = np.array([-1.5, -0.5, -2.0], "float32")
    good = history[..., 2] * (1 - history[..., 1])
    at_ref = history[..., 0] - elasticity[None, :, None] * history[..., 3]
    got = ops.convert_to_numpy(model.layers.window_level(at_ref, good, 7))
    for s, p, t in np.ndindex(2, 3, 30):
        days = slice(max(0, t - 6), t + 1)
        n = good[s, p, days].sum()
        want = (at_ref[s, p, days] * good[s, p, days]).sum() / n if n else 0.0
        assert got[s, p, t] == pytest.approx(want, abs=1e-5)
    assert (got[0, 0, :12] == 0).all()


@pytest.mark.parametrize("name", ["lstm", "gru"])
def test_each_cell_computes_what_the_keras_layer_of_its_kind_computes(name) -> None:
    import keras

    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 1, 9, 3)).astype("float32")
    mine = model.PerProductGRU(1, 4) if name == "gru" else model.PerProductLSTM(1, 4)
    mine(x)
    if name == "gru":
        ref = keras.layers.GRU(4, return_sequences=True, reset_after=True)
        biases = rng.normal(size=(2, 1, 12)).astype("float32")
        mine.bias.assign(biases[0])
        mine.recurrent_bias.assign(biases[1])
        weights = [mine.kernel.numpy()[0], mine.recurrent.numpy()[0], biases[:, 0]]
    else:
        ref = keras.layers.LSTM(4, return_sequences=True)
        weights = [mine.kernel.numpy()[0], mine.recurrent.numpy()[0], mine.bias.numpy()[0]]
    ref(x[:, 0])
    ref.set_weights(weights)
    np.testing.assert_allclose(
        ops.convert_to_numpy(mine(x))[:, 0], ops.convert_to_numpy(ref(x[:, 0])), atol=1e-6
    )


@pytest.mark.parametrize("return_carry", [False, True])
def test_the_lstm_backward_pass_gives_autodiffs_gradients(return_carry) -> None:
    """The LSTM's hand-derived backward pass (`cells._lstm_states`) against autodiff of its step:
    the same forward values, and the same gradients by inputs, starting carry and weights."""
    import keras

    if keras.backend.backend() != "tensorflow":
        pytest.skip("the gradient tape here is TensorFlow's")
    import tensorflow as tf

    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, 2, 9, 4)).astype("float32")
    start = (0.5 * rng.normal(size=(3, 2, 10))).astype("float32")
    weight = rng.normal(size=(3, 2, 9, 10 if return_carry else 5)).astype("float32")
    layer = model.PerProductLSTM(2, 5)
    layer(x)

    def autodiff_states(x, carry0, return_carry):
        h = layer.units
        xw = ops.einsum("splf,pfg->lpsg", x, layer.kernel) + layer.bias[None, :, None]

        def step(carry, z):
            z = z + ops.matmul(carry[..., :h], layer.recurrent)
            i, f, g, o = ops.split(z, 4, axis=-1)
            c = ops.sigmoid(f) * carry[..., h:] + ops.sigmoid(i) * ops.tanh(g)
            new = ops.concatenate([ops.sigmoid(o) * ops.tanh(c), c], axis=-1)
            return new, new

        states = ops.scan(step, carry0, xw)[1]
        return states if return_carry else states[..., :h]

    def gradients():
        inputs = [tf.constant(x), tf.constant(start)]
        with tf.GradientTape() as tape:
            tape.watch(inputs)
            out = layer(inputs[0], initial_state=inputs[1], return_carry=return_carry)
            loss = tf.reduce_sum(out * weight) + tf.reduce_sum(tf.sin(out))
        return out, tape.gradient(loss, inputs + list(layer.trainable_variables))

    mine = gradients()
    layer._states = autodiff_states
    reference = gradients()
    np.testing.assert_array_equal(mine[0], reference[0])
    for got, want in zip(mine[1], reference[1], strict=True):
        # float32 sums in another order: round-off on the scale of the largest gradient (a
        # fixed atol of 1e-6 failed once, by 1.7e-6, on an element of -0.013 beside others of 8).
        scale = float(np.abs(np.asarray(want)).max())
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6 * max(scale, 1.0))


def test_a_backward_layer_would_read_the_future_of_every_origin() -> None:
    # What a bidirectional layer adds is a pass from the segment's end back to each origin: on
    # whole-history training segments its state at origin t has read days after t, which the
    # forecast made at t cannot know. The offered (forward) layers' state at t has not.
    rng = np.random.default_rng(1)
    x = rng.normal(size=(1, 1, 30, 3)).astype("float32")
    changed = x.copy()
    changed[:, :, 21:] += 1.0  # days after origin t = 20
    for cell in (model.PerProductLSTM(1, 4), model.PerProductGRU(1, 4)):
        forward = [ops.convert_to_numpy(cell(v))[0, 0, 20] for v in (x, changed)]
        backward = [
            ops.convert_to_numpy(ops.flip(cell(ops.flip(v, 2)), 2))[0, 0, 20] for v in (x, changed)
        ]
        np.testing.assert_array_equal(forward[0], forward[1])
        assert np.abs(backward[0] - backward[1]).max() > 1e-3


def test_every_option_is_saved_and_a_change_retrains(world_panel, tmp_path) -> None:
    _, panel = world_panel
    cfg = dataclasses.replace(CFG, epochs=1, **OPTIONS["all"])
    small = panel.select(np.arange(3))
    folder = tmp_path / "v1" / "shard-000"
    registry.train_shard(small, cfg, folder)
    net, meta = model.load(folder, cfg)
    assert meta["format"] == model.ARTEFACT_FORMAT == 4
    assert (net.cell, net.n_layers, net.dropout, net.decoder) == ("gru", 3, 0.2, "seq2seq")
    assert net.local_level_days == 21
    assert len(net.encoder) == 3 and isinstance(net.decoder_cell, model.PerProductGRU)
    ids, ok = list(small.product_ids), np.ones(3, bool)
    versions = pl.DataFrame(
        {"product_id": ids, "trained_at": [dt.datetime.combine(small.end, dt.time())] * 3,
         "artefact": [str(folder)] * 3}
    )  # fmt: skip
    plan = registry.plan_training(ids, ok, versions, small.end, 7, False, small, cfg)
    assert plan == ([], {str(folder): ids})
    changes = (
        ("cell", "lstm"), ("layers", 2), ("dropout", 0.0), ("decoder", "head"),
        ("local_level_days", 0),
    )  # fmt: skip
    for key, value in changes:
        other = dataclasses.replace(cfg, **{key: value})
        with pytest.raises(model.ModelArtefactError, match=f"{key}="):
            model.load(folder, other)
        plan = registry.plan_training(ids, ok, versions, small.end, 7, False, small, other)
        assert plan == (ids, {})
    # An artefact of the format before these options (3) is refused and retrained.
    meta["format"] = 3
    (folder / model.META_FILE).write_text(json.dumps(meta))
    with pytest.raises(model.ModelArtefactError, match="format 3"):
        model.load(folder, cfg)
    assert registry.plan_training(ids, ok, versions, small.end, 7, False, small, cfg) == (ids, {})


def test_an_artefact_older_than_the_local_level_reads_as_without_it(world_panel, tmp_path):
    _, panel = world_panel
    cfg = dataclasses.replace(CFG, epochs=1)
    folder = tmp_path / "shard-000"
    registry.train_shard(panel.select(np.arange(2)), cfg, folder)
    meta = json.loads((folder / model.META_FILE).read_text())
    del meta["model_config"]["local_level_days"]
    (folder / model.META_FILE).write_text(json.dumps(meta))
    model.load(folder, cfg)
    with pytest.raises(model.ModelArtefactError, match="local_level_days=0"):
        model.load(folder, dataclasses.replace(cfg, local_level_days=28))


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("cell", "rnn", "must be 'lstm' or 'gru'"),
        ("layers", 0, "between 1 and 3"),
        ("layers", 4, "between 1 and 3"),
        ("dropout", 1.0, "below 1"),
        ("dropout", -0.1, ">= 0"),
        ("decoder", "bidirectional", "must be 'head' or 'seq2seq'"),
        ("local_level_days", -1, "at most model.segment_days"),
        ("local_level_days", 129, "at most model.segment_days"),
    ],
)
def test_bad_options_are_refused_naming_the_key(key, value, message) -> None:
    with pytest.raises(ConfigError, match=f"model.{key}.*{message}"):
        ModelConfig(**{key: value})
