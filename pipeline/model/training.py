"""Training: all products in one batched fit, with per-product early stopping.

Each product's loss is its own mean, summed over products, so with Adam (element-wise) every
product trains exactly as it would alone; a product whose validation loss stops improving has its
updates cut and its best weights restored while the others go on (DESIGN section 4).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import keras
import numpy as np

from pipeline.arrays import LOG_MAX, LOG_MIN
from pipeline.config import ModelConfig
from pipeline.features import Panel, calendar_features
from pipeline.model.batching import Batch, make_batch, normalise_weights, segment_starts
from pipeline.model.layers import DemandNet, MaskedPoisson, build_net
from pipeline.stats import glm_elasticity, shrink_elasticities


@dataclass(frozen=True)
class TrainResult:
    """A trained model and what happened while training it."""

    net: DemandNet
    panel: Panel
    epochs_run: int
    seconds: float
    best_val_loss: np.ndarray  # [P] per-product validation loss (NaN without a validation tail)
    stopped_epoch: (
        np.ndarray
    )  # [P] epoch at which each product stopped (epochs_run if it never did)
    cutoff: int  # first day index of the validation tail (= n_days without one)


ProgressFn = Callable[
    [int, int, float, int], None
]  # (epoch, epochs, loss, products still learning)


def per_product_nll(net: DemandNet, batch: Batch) -> np.ndarray:
    """Mean Poisson NLL per product on `batch` (NaN where it has no target): [P].

    Runs as the backend's compiled predict function (traced once, reused every epoch while the
    batch keeps its shape), several times faster than calling the net eagerly.
    """
    eta = np.clip(net.predict_on_batch(batch.inputs), LOG_MIN, LOG_MAX)
    y, w = batch.targets[..., 0], batch.targets[..., 1]
    nll = (w * (np.exp(eta) - y * eta)).sum(axis=(0, 2, 3))
    count = w.sum(axis=(0, 2, 3))
    return np.where(count > 0, nll / np.maximum(count, 1e-9), np.nan)


class PerProductEarlyStopping(keras.callbacks.Callback):
    """Per-product early stopping on a validation tail, keeping each product's best weights.

    After each epoch every product's validation loss is computed; a product that has not improved
    for `patience` epochs stops: its gradients are cut (DemandNet.active) and its weights are reset
    to its best epoch, while the other products go on. Training ends when every product stopped.
    """

    def __init__(
        self,
        val_batch: Batch | None,
        patience: int,
        progress: ProgressFn | None,
        min_epochs: int = 0,
    ) -> None:
        super().__init__()
        self.val_batch, self.patience, self.progress = val_batch, patience, progress
        # The elasticities go on learning after every baseline stopped, up to this many epochs.
        self.min_epochs = min_epochs

    def on_train_begin(self, logs: dict | None = None) -> None:
        p = self.model.n_products
        self.best = np.full(p, np.inf)
        self.wait = np.zeros(p, dtype=int)
        self.stopped_epoch = np.zeros(p, dtype=int)
        self.best_weights = [v.numpy().copy() for v in self.model.trainable_weights]
        self.epochs_run = 0

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.epochs_run = epoch + 1
        active = self.model.active.numpy() > 0.5
        if self.val_batch is not None:
            loss = per_product_nll(self.model, self.val_batch)
            loss = np.where(np.isnan(loss), 0.0, loss)
            improved = active & (loss < self.best - 1e-4 * np.abs(loss))
            self.best = np.where(improved, loss, self.best)
            self.wait = np.where(improved, 0, self.wait + 1)
            stop = active & (self.wait >= self.patience)
            self.stopped_epoch[stop] = epoch + 1
            active &= ~stop
            for var, best in zip(self.model.trainable_weights, self.best_weights, strict=True):
                if var is self.model.theta:
                    continue
                current = var.numpy()
                best[improved] = current[improved]
                current[~active] = best[~active]
                var.assign(current)
            self.model.active.assign(active.astype("float32"))
            if not active.any() and epoch + 1 >= self.min_epochs:
                self.model.stop_training = True
        if self.progress is not None:
            self.progress(
                epoch + 1, self.params["epochs"], float(logs.get("loss", np.nan)), int(active.sum())
            )

    def on_train_end(self, logs: dict | None = None) -> None:
        still = self.model.active.numpy() > 0.5
        self.stopped_epoch[still] = self.epochs_run
        if self.val_batch is not None:
            for var, best in zip(self.model.trainable_weights, self.best_weights, strict=True):
                if var is not self.model.theta:
                    var.assign(best)
        self.model.active.assign(np.ones(self.model.n_products, dtype="float32"))


def _inverse_softplus(x: np.ndarray) -> np.ndarray:
    return np.log(np.expm1(np.maximum(x, 1e-6)))


def train(
    panel: Panel,
    cfg: ModelConfig,
    progress: ProgressFn | None = None,
    groups: np.ndarray | None = None,
) -> TrainResult:
    """Train one model per product of `panel`, all products in one batched computation.

    `groups` (e.g. category codes, [P]) lets the regression elasticities borrow strength within a
    group (partial pooling); without it each product stands alone.

    The last `cfg.validation_days` days are held out of the loss: they drive per-product early
    stopping and the backtest. Returns the trained net with each product at its best epoch.
    """
    started = time.perf_counter()
    keras.utils.set_random_seed(cfg.seed)
    train_batch, val_batch, cutoff = _train_and_validation_batches(panel, cfg)
    net = build_net(len(panel.product_ids), cfg)
    net.log_level.assign(np.log(panel.level + 0.05).astype("float32"))
    _set_elasticities(net, panel, cfg, groups)
    net.compile(
        optimizer=keras.optimizers.Adam(cfg.learning_rate),
        loss=MaskedPoisson(),
        # XLA compilation of the scan failed on the TensorFlow backend (Keras 3.15, TF 2.21).
        jit_compile=False,
    )
    # Elasticities that train need their epochs even after every baseline has stopped.
    min_epochs = cfg.min_epochs if net.theta.trainable else 0
    stopper = PerProductEarlyStopping(val_batch, cfg.patience, progress, min_epochs)
    net.fit(
        train_batch.inputs,
        normalise_weights(train_batch.targets),
        batch_size=min(cfg.segments_per_batch, len(train_batch.starts)),
        epochs=cfg.epochs,
        shuffle=True,
        verbose=0,
        callbacks=[stopper],
    )
    best = np.where(np.isfinite(stopper.best), stopper.best, np.nan)
    return TrainResult(
        net=net,
        panel=panel,
        epochs_run=stopper.epochs_run,
        seconds=time.perf_counter() - started,
        best_val_loss=best,
        stopped_epoch=stopper.stopped_epoch,
        cutoff=cutoff,
    )


def _train_and_validation_batches(
    panel: Panel, cfg: ModelConfig
) -> tuple[Batch, Batch | None, int]:
    """The training segments, the validation tail's segment (None without one) and the cutoff.

    The tail is the last `cfg.validation_days` days, held out only when at least two horizons of
    history remain before it; the cutoff is its first day index (n_days without one).
    """
    n_days, seg_len = panel.n_days, cfg.segment_days
    val_days = cfg.validation_days if n_days - cfg.validation_days >= cfg.horizon * 2 else 0
    cutoff = n_days - val_days
    starts = segment_starts(cutoff, seg_len, cfg.warmup_days)
    train_batch = make_batch(panel, starts, seg_len, cfg.horizon, (0, cutoff), cfg.warmup_days)
    val_batch = None
    if val_days:
        val_batch = make_batch(
            panel, np.array([n_days - seg_len]), seg_len, cfg.horizon, (cutoff, n_days), 0
        )
    return train_batch, val_batch, cutoff


def _set_elasticities(
    net: DemandNet, panel: Panel, cfg: ModelConfig, groups: np.ndarray | None
) -> None:
    """Start (or fix) each product's elasticity at its regression estimate, as `cfg` says."""
    if cfg.elasticity in ("regression", "joint"):
        start, se = glm_elasticity(panel, calendar_features(panel.start, panel.n_days), groups)
        if groups is not None:
            start, se = shrink_elasticities(start, se, groups)
        net.theta.assign(_inverse_softplus(-start).astype("float32"))
        net.elasticity_se.assign(se.astype("float32"))
    # "regression": the elasticity stays at the whole-history Poisson regression estimate and the
    # network learns the baseline around it; "joint"/"network": the network trains it too.
    net.theta.trainable = cfg.elasticity != "regression"
