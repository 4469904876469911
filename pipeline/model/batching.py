"""Cutting a panel into whole-sequence segments: the model's inputs and its weighted targets.

The state runs along each segment once and predicts the next `horizon` days at every origin, so a
segment is the unit of a batch (DESIGN section 4). Pure numpy; no Keras here.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np

from pipeline.features import Panel, calendar_features, history_features


@dataclass(frozen=True)
class Batch:
    """Model inputs and targets of a set of segments (leading axis S)."""

    inputs: dict[str, np.ndarray]
    targets: np.ndarray  # [S, P, L, K, 2]: units and weight
    starts: np.ndarray  # [S] day index of each segment's first day


def segment_starts(n_days: int, seg_len: int, warmup: int) -> np.ndarray:
    """Start indices of segments covering days [0, n_days), neighbours overlapping by `warmup`."""
    if n_days <= seg_len:
        return np.array([n_days - seg_len])
    stride = seg_len - warmup
    starts = list(range(0, n_days - seg_len + 1, stride))
    if starts[-1] + seg_len < n_days:
        starts.append(n_days - seg_len)
    return np.array(starts)


def make_batch(
    panel: Panel,
    starts: np.ndarray,
    seg_len: int,
    horizon: int,
    target_days: tuple[int, int],
    warmup: int,
) -> Batch:
    """Cut the panel into segments and attach targets for days inside `target_days` = [lo, hi).

    A segment may start before day 0 (a short history): those days are zero-padded and unobserved.
    The first `warmup` origins of segments that start after day 0 carry no loss while their state
    warms up from zero.
    """
    n_days = panel.n_days
    pad = max(0, -int(starts.min()))
    cal = calendar_features(panel.start - _days(pad), n_days + pad + horizon + 1)
    hist = history_features(panel, cal[pad:])
    hist = np.pad(hist, ((0, 0), (pad, horizon + 1), (0, 0)))
    promo = np.pad(panel.promo.astype(np.float32), ((0, 0), (pad, horizon + 1)))
    log_price = np.log(panel.price / panel.ref_price[:, None]).astype(np.float32)
    log_price = np.pad(log_price, ((0, 0), (pad, horizon + 1)), mode="edge")
    good = np.pad(panel.observed & ~panel.stockout, ((0, 0), (pad, horizon + 1)))
    units = np.pad(panel.units, ((0, 0), (pad, horizon + 1)))
    day = np.arange(n_days + pad + horizon + 1) - pad
    in_range = (day >= target_days[0]) & (day < target_days[1])

    s0 = starts + pad
    seg = s0[:, None] + np.arange(seg_len)[None, :]  # [S, L] padded day index of origins
    ext = s0[:, None] + np.arange(seg_len + horizon)[None, :]  # [S, L + K]
    tgt = seg[:, :, None] + np.arange(1, horizon + 1)[None, None, :]  # [S, L, K]
    weight = good[:, tgt] & in_range[tgt][None]  # [P, S, L, K]
    warm = (np.arange(seg_len) < warmup)[None, :] & (starts > 0)[:, None]
    weight &= ~warm[None, :, :, None]
    inputs = {
        "history": hist[:, seg].transpose(1, 0, 2, 3),
        "calendar": cal[ext],
        "promo": promo[:, ext].transpose(1, 0, 2),
        "log_price": log_price[:, ext].transpose(1, 0, 2),
    }
    targets = np.stack([units[:, tgt], weight.astype(np.float32)], axis=-1).transpose(1, 0, 2, 3, 4)
    return Batch(inputs=inputs, targets=targets.astype(np.float32), starts=starts)


def _days(n: int) -> dt.timedelta:
    return dt.timedelta(days=n)


def normalise_weights(targets: np.ndarray) -> np.ndarray:
    """Scale each product's weights to sum to 1, so each product's loss is its own mean."""
    totals = targets[..., 1].sum(axis=(0, 2, 3))
    scale = np.where(totals > 0, 1.0 / np.maximum(totals, 1e-9), 0.0).astype(np.float32)
    out = targets.copy()
    out[..., 1] *= scale[None, :, None, None]
    return out
