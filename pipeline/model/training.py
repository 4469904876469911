"""Training: all products in one batched fit, with per-product early stopping.

Each product's loss is its own mean, summed over products, so with Adam (element-wise) every
product trains exactly as it would alone; a product whose validation loss stops improving has its
updates cut and its best weights restored while the others go on (DESIGN section 4).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass

import keras
import numpy as np
from keras import ops

from pipeline.arrays import LOG_MAX, LOG_MIN
from pipeline.config import ModelConfig
from pipeline.features import Panel, calendar_features, panel_until
from pipeline.model.batching import Batch, make_batch, normalise_weights, segment_starts
from pipeline.model.inference import predict_segment
from pipeline.model.layers import DemandNet, MaskedPoisson, build_net
from pipeline.stats import ElasticityFit, ElasticityPool, regression_elasticities


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
    cutoff: int  # first day index of the backtest's tail (= n_days without one)
    # Log expected units [P, L, K] of the segment ending at panel.end, from the model fitted
    # on the days before `cutoff` (None without a tail): what the backtest scores.
    backtest_log_units: np.ndarray | None = None
    regression: ElasticityFit | None = None  # the whole-history regression the net uses


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
    pool: ElasticityPool | None = None,
) -> TrainResult:
    """Train one model per product of `panel`, all products in one batched computation.

    `groups` (e.g. category codes, [P]) lets the regression elasticities borrow strength within a
    group (partial pooling); without it each product stands alone. `pool` adds other products'
    own estimates to each group's prior (the night's products not trained now).

    The last `cfg.validation_days` days are the backtest's: nothing fitted for it sees them. The
    network's weights, its scales (reference prices, levels) and the elasticities it trains
    with come from the days before them, and per-product early stopping watches the
    `cfg.validation_days` days before those. The backtest's forecasts are made with exactly
    that model (`TrainResult.backtest_log_units`); then, in the default "regression" mode, the
    elasticities (and promotion lifts) are refitted on the whole history for pricing, since a
    regression's estimate only gains from the latest price moves. Returns the trained net with
    each product at its best epoch.
    """
    started = time.perf_counter()
    keras.utils.set_random_seed(cfg.seed)
    cutoff, stop = backtest_cutoffs(panel.n_days, cfg)
    # Scales from the days before the backtest: the net is trained and saved with them.
    before = panel_until(panel, cutoff)
    scaled = dataclasses.replace(panel, ref_price=before.ref_price, level=before.level)
    net = build_net(len(panel.product_ids), cfg)
    net.log_level.assign(np.log(before.level + 0.05).astype("float32"))
    # "regression" (default): the elasticities stay at the regression's while the network
    # learns the baseline around them; "joint": they start there and train with the network;
    # "network": the network learns them from -1.
    net.theta.trainable = cfg.elasticity != "regression"
    if cfg.elasticity != "network":
        _use_regression(net, _regression(before, groups, pool), trained=False)
    stopper = _fit_net(net, scaled, cfg, (stop, cutoff), progress)
    backtest = None
    if cutoff < panel.n_days:
        backtest = predict_segment(net, scaled, cfg, future_at_ref=False)
    regression = _regression(panel, groups, pool)
    if cfg.elasticity == "regression":
        _use_regression(net, regression, trained=True)
    best = np.where(np.isfinite(stopper.best), stopper.best, np.nan)
    return TrainResult(
        net=net,
        panel=scaled,
        epochs_run=stopper.epochs_run,
        seconds=time.perf_counter() - started,
        best_val_loss=best,
        stopped_epoch=stopper.stopped_epoch,
        cutoff=cutoff,
        backtest_log_units=backtest,
        regression=regression,
    )


def backtest_cutoffs(n_days: int, cfg: ModelConfig) -> tuple[int, int]:
    """The backtest's first day and early stopping's first day (each = the next without one).

    Each window is `cfg.validation_days` long and held out only while at least two horizons
    of history remain before it.
    """

    def window_start(end: int) -> int:
        return end - cfg.validation_days if end - cfg.validation_days >= cfg.horizon * 2 else end

    cutoff = window_start(n_days) if cfg.validation_days else n_days
    stop = window_start(cutoff) if cutoff < n_days else cutoff
    return cutoff, stop


def _fit_net(
    net: DemandNet,
    panel: Panel,
    cfg: ModelConfig,
    window: tuple[int, int],
    progress: ProgressFn | None,
) -> PerProductEarlyStopping:
    """Fit `net` on the days before `window` = [stop, cutoff), early stopping on the window.

    Nothing on or after `cutoff` enters a loss (the validation segment ends the day before it).
    """
    stop, cutoff = window
    seg_len = cfg.segment_days
    starts = segment_starts(stop, seg_len, cfg.warmup_days)
    train_batch = make_batch(panel, starts, seg_len, cfg.horizon, (0, stop), cfg.warmup_days)
    val_batch = None
    if stop < cutoff:
        val_batch = make_batch(panel, np.array([cutoff - seg_len]), seg_len, cfg.horizon, window, 0)
    net.compile(
        optimizer=keras.optimizers.Adam(cfg.learning_rate),
        loss=MaskedPoisson(),
        # XLA compilation of the scan failed on the TensorFlow backend (Keras 3.15, TF 2.21).
        jit_compile=False,
    )
    # Elasticities that train need their epochs even after every baseline has stopped.
    min_epochs = cfg.min_epochs if net.theta.trainable else 0
    stopper = PerProductEarlyStopping(val_batch, cfg.patience, progress, min_epochs)
    targets = normalise_weights(train_batch.targets)
    if len(train_batch.starts) <= cfg.segments_per_batch:
        _fit_one_batch(net, train_batch.inputs, targets, cfg.epochs, stopper)
    else:
        net.fit(
            train_batch.inputs,
            targets,
            batch_size=cfg.segments_per_batch,
            epochs=cfg.epochs,
            shuffle=True,
            verbose=0,
            callbacks=[stopper],
        )
    return stopper


def _fit_one_batch(
    net: DemandNet,
    inputs: dict[str, np.ndarray],
    targets: np.ndarray,
    epochs: int,
    stopper: PerProductEarlyStopping,
) -> None:
    """What `net.fit` does when the whole history is one batch: a training step per epoch, with
    `stopper` called as fit calls its callbacks, but the segments in their own order.

    Shuffling a single batch only reorders its segments (the same sums in another order, so
    float round-off), and fit's per-epoch input pipeline cost idle wall time: on TensorFlow,
    releasing the previous epoch's tf.data iterator waited up to 2 s with the CPU idle, at 939
    products about half a training step (Keras 3.15, TF 2.21).
    """
    inputs = {name: ops.convert_to_tensor(value) for name, value in inputs.items()}
    targets = ops.convert_to_tensor(targets)
    stopper.set_model(net)
    stopper.set_params({"epochs": epochs, "steps": 1, "verbose": 0})
    net.stop_training = False
    stopper.on_train_begin()
    for epoch in range(epochs):
        stopper.on_epoch_begin(epoch)
        logs = net.train_on_batch(inputs, targets, return_dict=True)
        stopper.on_epoch_end(epoch, logs)
        if net.stop_training:
            break
    stopper.on_train_end()


def _regression(
    panel: Panel, groups: np.ndarray | None, pool: ElasticityPool | None
) -> ElasticityFit:
    """The category-pooled regression elasticities of `panel` (`stats.regression_elasticities`)."""
    calendar = calendar_features(panel.start, panel.n_days)
    return regression_elasticities(panel, calendar, groups, pool=pool)


def _use_regression(net: DemandNet, fit: ElasticityFit, trained: bool) -> None:
    """Set each product's elasticity, its standard error and its promotion lift from `fit`.

    The promotion's lift enters the forecast's known inputs; where the network learns it
    (`model.promo_lift`) it starts there and, once `trained`, keeps what it learned.
    """
    net.theta.assign(_inverse_softplus(-fit.elasticity).astype("float32"))
    net.elasticity_se.assign(fit.se.astype("float32"))
    if not (trained and net.promo_coef.trainable):
        net.promo_coef.assign(np.nan_to_num(fit.promo_effect).astype("float32"))
