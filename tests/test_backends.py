"""The model code is backend-neutral (keras.ops): it also trains on Keras' JAX backend.

Runs only where JAX is installed (`pip install "jax[cpu]"`); the suite itself runs on TensorFlow.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = """
import datetime as dt, numpy as np, keras
from pipeline import model, synth
from pipeline.config import ModelConfig
from pipeline.features import build_panel
assert keras.backend.backend() == "jax"
w = synth.generate_world(8, 200, 1)
as_of = w.sales["ds"].max() + dt.timedelta(days=1)
panel = build_panel(w.sales, w.products["product_id"].to_list(), as_of)
panel = panel.select(np.where(panel.n_observed >= 150)[0])
cfg = ModelConfig(epochs=2, min_epochs=0, hidden_units=4, segment_days=64, horizon=7)
result = model.train(panel, cfg)
assert (np.asarray(result.net.elasticity()) <= 0).all()
print("ok", result.epochs_run)
"""


def _run_on_jax(script: str) -> None:
    """Run `script` in a fresh Python with Keras on JAX; it must exit 0 and print "ok"."""
    env = {**os.environ, "KERAS_BACKEND": "jax", "PYTHONPATH": str(Path(__file__).parents[1])}
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.startswith("ok")


@pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="JAX is not installed")
def test_the_model_trains_on_the_jax_backend() -> None:
    _run_on_jax(SCRIPT)


# The LSTM's hand-derived backward pass (`cells._lstm_states`) against JAX's autodiff of the plain
# step: the same gradients by inputs, weights and the starting carry (the GPU path is JAX).
GRADIENTS = """
import numpy as np, jax, jax.numpy as jnp
from keras import ops
from pipeline.model.cells import _lstm_states
rng = np.random.default_rng(0)
S, P, L, F, H = 3, 2, 9, 4, 5
x = jnp.asarray(rng.normal(size=(S, P, L, F)), jnp.float32)
c0 = jnp.asarray(0.5 * rng.normal(size=(P, S, 2 * H)), jnp.float32)
k = jnp.asarray(rng.normal(size=(P, F, 4 * H)) * 0.5, jnp.float32)
b = jnp.asarray(rng.normal(size=(P, 4 * H)) * 0.5, jnp.float32)
r = jnp.asarray(rng.normal(size=(P, H, 4 * H)) * 0.5, jnp.float32)
for rc in (False, True):
    wt = jnp.asarray(rng.normal(size=(L, P, S, 2 * H if rc else H)), jnp.float32)
    def ref(x, k, b, r, c0):
        xw = jnp.einsum("splf,pfg->lpsg", x, k) + b[None, :, None]
        def step(carry, z):
            z = z + jnp.matmul(carry[..., :H], r)
            i, f, g, o = jnp.split(z, 4, axis=-1)
            c = jax.nn.sigmoid(f) * carry[..., H:] + jax.nn.sigmoid(i) * jnp.tanh(g)
            new = jnp.concatenate([jax.nn.sigmoid(o) * jnp.tanh(c), c], -1)
            return new, new
        s = jax.lax.scan(step, c0, xw)[1]
        return s if rc else s[..., :H]
    def mine(x, k, b, r, c0):
        return _lstm_states(x, (k, b, r), c0, rc)
    loss = lambda fn: (lambda *a: jnp.sum(fn(*a) * wt) + jnp.sum(jnp.sin(fn(*a))))
    g1 = jax.grad(loss(mine), argnums=(0, 1, 2, 3, 4))(x, k, b, r, c0)
    g2 = jax.grad(loss(ref), argnums=(0, 1, 2, 3, 4))(x, k, b, r, c0)
    same = (np.asarray(mine(x, k, b, r, c0)), np.asarray(ref(x, k, b, r, c0)))
    np.testing.assert_allclose(*same, rtol=1e-5, atol=1e-6)
    for a, bb in zip(g1, g2):
        np.testing.assert_allclose(np.asarray(a), np.asarray(bb), rtol=1e-4, atol=1e-5)
print("ok")
"""


@pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="JAX is not installed")
def test_the_lstm_backward_pass_gives_jax_autodiffs_gradients() -> None:
    _run_on_jax(GRADIENTS)
