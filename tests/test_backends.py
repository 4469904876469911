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


@pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="JAX is not installed")
def test_the_model_trains_on_the_jax_backend() -> None:
    env = {**os.environ, "KERAS_BACKEND": "jax", "PYTHONPATH": str(Path(__file__).parents[1])}
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.startswith("ok")
