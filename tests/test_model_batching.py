"""Tests of pipeline/model/batching.py: segments, and which targets carry loss."""

from __future__ import annotations

import numpy as np

from pipeline import model
from pipeline.config import ModelConfig
from tests.worlds import trainable_panel

CFG = ModelConfig(horizon=7, segment_days=64, warmup_days=8)


def test_stockout_and_held_out_days_carry_no_loss() -> None:
    _, panel = trainable_panel(n_products=30, n_days=300, seed=5, min_observed=250)
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
