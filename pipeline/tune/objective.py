"""A configuration's score: rolling-origin backtest WAPE on a sample of products.

Fold f trains the batched model (`pipeline.model.train`) on the history cut at its end
`n_days - (FOLDS - 1 - f) * validation_days`; `train` holds out that history's last
`validation_days` days, fits the network and its scales on the days before them and forecasts
them (`TrainResult.backtest_log_units`), which are scored at three weekly origins
(`forecast.backtest_origins`, as the night's backtest). Nothing fitted for a fold sees the days it
scores, and the folds' scored windows do not overlap: `FOLDS` folds give `3 * FOLDS` origins per
product. A product's WAPE pools its errors over the origins scored so far; the score is the
median over the sample's products (the figure `model_versions.backtest_wape` reports per
product). No Optuna here: `study` reports each fold's running score to its pruner.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from pipeline import model
from pipeline.config import ModelConfig
from pipeline.errors import UserError
from pipeline.features import Panel, panel_until
from pipeline.forecast import backtest_errors, backtest_origins, wape

FOLDS = 2


class TuneError(UserError, ValueError):
    """`pricing tune` cannot run as asked (the message says what to change)."""


@dataclass(frozen=True)
class Sample:
    """The products a study scores: their history and their categories.

    Attributes:
        panel: the sampled products' history (the night's panel, these products only).
        groups: [P] each product's category (the regression pools within it).
        category: the category tuned on (None: all categories).
    """

    panel: Panel
    groups: np.ndarray
    category: str | None = None


@dataclass(frozen=True)
class Score:
    """A configuration's backtest: the median product WAPE, and seasonal-naive's beside it."""

    wape: float
    naive_wape: float
    folds: tuple[float, ...]  # the running score after each fold


def fold_ends(n_days: int, cfg: ModelConfig, folds: int = FOLDS) -> list[int]:
    """Where each fold's history ends (day index, oldest fold first).

    Raises:
        TuneError: no backtest can be held out (validation_days = 0) or the history is too
            short for `folds` folds.
    """
    if cfg.validation_days < cfg.horizon:
        raise TuneError(
            f"model.validation_days is {cfg.validation_days}: tuning scores backtests on the "
            f"held-out days, so set it to at least model.horizon ({cfg.horizon})"
        )
    ends = [n_days - k * cfg.validation_days for k in range(folds - 1, -1, -1)]
    # The oldest fold holds out its backtest and, before it, early stopping's window, with
    # two horizons of history left before those (`model.training`).
    needed = (folds + 1) * cfg.validation_days + 2 * cfg.horizon
    if n_days < needed:
        raise TuneError(
            f"the history has {n_days} days; tuning on {folds} backtest folds of "
            f"{cfg.validation_days} days needs at least {needed}"
        )
    return ends


def median_wape(abs_error: np.ndarray, actual: np.ndarray) -> float:
    """The median over products of each product's pooled WAPE (NaN when none sold anything)."""
    per_product = wape(abs_error, actual)
    return float(np.nanmedian(per_product)) if np.isfinite(per_product).any() else float("nan")


def backtest_fold(
    sample: Sample, cfg: ModelConfig, end: int, progress: model.ProgressFn | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Train on the history before day `end`, holding out its last days, and score them.

    Returns:
        The model's and seasonal-naive's absolute errors and the actual units, per product,
        summed over the fold's origins (uncensored days only).
    """
    history = panel_until(sample.panel, end)
    result = model.train(history, cfg, progress, sample.groups)
    if result.backtest_log_units is None:  # fold_ends checked the length: a bug if reached
        raise RuntimeError(f"no backtest held out of {end} days")
    origins = backtest_origins(history.n_days, result.cutoff, cfg.horizon)
    model_err, naive_err, actual, _ = backtest_errors(
        result.backtest_log_units, history, origins, cfg.horizon
    )
    return model_err, naive_err, actual


def evaluate(
    sample: Sample,
    cfg: ModelConfig,
    on_fold: Callable[[int, float], None] | None = None,
    progress: model.ProgressFn | None = None,
) -> Score:
    """Score `cfg` on the sample's rolling-origin backtests.

    Args:
        sample: the products scored.
        cfg: the configuration trained in every fold.
        on_fold: called after each fold with (fold index, running score); it may raise to stop
            (the study's pruner does).
        progress: called after each epoch of each fold's training (it may raise to stop).
    """
    p = len(sample.panel.product_ids)
    model_err, naive_err, actual = np.zeros(p), np.zeros(p), np.zeros(p)
    running: list[float] = []
    for fold, end in enumerate(fold_ends(sample.panel.n_days, cfg)):
        errors = backtest_fold(sample, cfg, end, progress)
        model_err, naive_err, actual = (
            model_err + errors[0],
            naive_err + errors[1],
            actual + errors[2],
        )
        running.append(median_wape(model_err, actual))
        if on_fold is not None:
            on_fold(fold, running[-1])
    return Score(running[-1], median_wape(naive_err, actual), tuple(running))
