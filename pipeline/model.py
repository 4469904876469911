"""The batched per-product LSTM demand forecaster (Keras 3, backend-neutral `keras.ops`).

Every weight carries a leading product axis, so each product has its own LSTM and head while all
products train as one computation (DESIGN section 4). For product p, day t (the origin) and horizon
k = 1..K the model predicts

    log E[units_{t+k}] = level_p + bias_{p,k} + W_{p,k} . h_{p,t}          (history, via the LSTM)
                         + V_p . calendar_{t+k} + promo_p * promo_{t+k}     (known in advance)
                         + elasticity_p * log(price_{t+k} / ref_price_p)    (the price response)

with elasticity_p = -softplus(theta_p) <= 0 by construction. The loss is the Poisson negative
log-likelihood (it handles zeros), stockout days are masked out (their sales are censored), and each
product's loss is its own mean, summed over products: with Adam (element-wise) every product trains
exactly as it would alone. Nothing outside this module imports keras or tensorflow.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras
import numpy as np
from keras import ops

from pipeline.config import ModelConfig
from pipeline.features import (
    N_CALENDAR,
    N_HISTORY,
    Panel,
    calendar_features,
    glm_elasticity,
    history_features,
    shrink_elasticities,
)

ARTEFACT_FORMAT = 2  # bump when the model's layout changes: older artefacts are refused
MODEL_FILE = "model.keras"
META_FILE = "meta.json"


class ModelArtefactError(RuntimeError):
    """A saved model does not match this code or config; retrain it (`pricing retrain`)."""


def _uniform(limit: float) -> keras.initializers.Initializer:
    # Glorot-style limit computed per product: Keras' own fan computation would count the product
    # axis as a receptive field and shrink every product's weights by sqrt(P).
    # An explicit seed from numpy's generator (seeded by keras.utils.set_random_seed in `train`):
    # unseeded Keras initializers draw from Python's global `random`, which other threads of the
    # process (Dask's and Prefect's) also draw from, so the same shard got other initial weights,
    # and another model, in a Dask worker than in the flow's own process.
    seed = int(np.random.randint(1, 2**31 - 1))
    return keras.initializers.RandomUniform(-limit, limit, seed=seed)


@keras.saving.register_keras_serializable(package="pricing")
class PerProductLSTM(keras.layers.Layer):
    """An LSTM whose weights have a leading product axis: input [S, P, L, F] -> states [S, P, L, H].

    S independent sequences (segments) of each of the P products run in parallel; product p's
    sequences use only product p's weights.
    """

    def __init__(self, n_products: int, units: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.n_products = n_products
        self.units = units

    def build(self, input_shape: tuple) -> None:
        p, h, f = self.n_products, self.units, input_shape[-1]
        self.kernel = self.add_weight(
            shape=(p, f, 4 * h), initializer=_uniform(np.sqrt(6 / (f + 4 * h))), name="kernel"
        )
        self.recurrent = self.add_weight(
            shape=(p, h, 4 * h), initializer=_uniform(np.sqrt(3 / h)), name="recurrent"
        )
        # Forget-gate bias of 1 so the state remembers by default (Jozefowicz et al., 2015).
        bias = np.zeros((p, 4 * h), dtype="float32")
        bias[:, h : 2 * h] = 1.0
        self.bias = self.add_weight(
            shape=(p, 4 * h), initializer=keras.initializers.Constant(bias), name="bias"
        )

    def call(self, x):
        h = self.units
        # The input projection of every step at once (one large batched matmul), time-major.
        xw = ops.einsum("splf,pfg->lpsg", x, self.kernel) + self.bias[None, :, None]
        s, p = ops.shape(x)[0], ops.shape(x)[1]
        carry0 = ops.zeros((p, s, 2 * h), dtype=x.dtype)

        def step(carry, z):
            # One concatenated carry: a tuple (h, c) fails to trace on the TF backend (Keras 3.15).
            h_prev, c_prev = carry[..., :h], carry[..., h:]
            z = z + ops.matmul(h_prev, self.recurrent)
            i, f, g, o = ops.split(z, 4, axis=-1)
            c = ops.sigmoid(f) * c_prev + ops.sigmoid(i) * ops.tanh(g)
            h_new = ops.sigmoid(o) * ops.tanh(c)
            new = ops.concatenate([h_new, c], axis=-1)
            # The TF backend's scan wants the per-step output shaped like the carry (Keras 3.15).
            return new, new

        _, states = ops.scan(step, carry0, xw)
        return ops.transpose(states[..., :h], (2, 1, 0, 3))

    def get_config(self) -> dict:
        return {**super().get_config(), "n_products": self.n_products, "units": self.units}


@keras.saving.register_keras_serializable(package="pricing")
class DemandNet(keras.Model):
    """Per-product demand model; see the module docstring for the equation.

    Inputs (a dict): `history` [S, P, L, N_HISTORY], `calendar` [S, L + K, N_CALENDAR],
    `promo` [S, P, L + K] and `log_price` [S, P, L + K] (log of price / ref_price), where index j of
    the last two describes day (segment start + j). Output: log expected units [S, P, L, K].
    """

    def __init__(
        self, n_products: int, units: int, horizon: int, promo_lift: bool = False, **kwargs
    ) -> None:
        super().__init__(**kwargs)
        self.n_products, self.units, self.horizon = n_products, units, horizon
        self.promo_lift = promo_lift
        p, h, k = n_products, units, horizon
        self.lstm = PerProductLSTM(n_products, units)
        zeros = keras.initializers.Zeros()
        self.head = self.add_weight(shape=(p, h, k), initializer=_uniform(0.05), name="head")
        self.head_bias = self.add_weight(shape=(p, k), initializer=zeros, name="head_bias")
        self.calendar_coef = self.add_weight(shape=(p, N_CALENDAR), initializer=zeros, name="cal")
        # Lift of a promotion beyond its price cut (display, feature); trained only when the
        # config asks for it, since it competes with the elasticity for the same variation.
        self.promo_coef = self.add_weight(
            shape=(p,), initializer=zeros, trainable=promo_lift, name="promo_coef"
        )
        # softplus(0.5413) = 1: every product starts at unit elasticity.
        self.theta = self.add_weight(
            shape=(p,), initializer=keras.initializers.Constant(0.5413), name="theta"
        )
        # Standard error of a fixed (regression) elasticity; 0 = derive it from the fit.
        self.elasticity_se = self.add_weight(
            shape=(p,), initializer=zeros, trainable=False, name="elasticity_se"
        )
        self.log_level = self.add_weight(
            shape=(p,), initializer=zeros, trainable=False, name="log_level"
        )
        # 1 = product still learning; 0 = stopped early (its gradients are cut).
        self.active = self.add_weight(
            shape=(p,), initializer=keras.initializers.Ones(), trainable=False, name="active"
        )

    def elasticity(self):
        """Per-product price elasticity, <= 0 by construction: [P]."""
        return -ops.softplus(self.theta)

    def encoder_inputs(self, history):
        """The LSTM's view of the history: units with the price effect taken out.

        The encoder never sees prices: it sees each day's scaled log units minus
        elasticity * log(price / ref_price) (the demand the day would have had at the reference
        price). Prices therefore reach the forecast only through the elasticity term, which keeps
        the elasticity identified instead of letting the LSTM learn its own price response.
        """
        good = history[..., 2] * (1.0 - history[..., 1])
        elasticity = self.elasticity()[None, :, None]
        units = history[..., 0] - elasticity * history[..., 3] * good
        return ops.concatenate([units[..., None], history[..., 1:3], history[..., 5:]], axis=-1)

    def baseline(self, inputs):
        """Log expected units at the reference price: [S, P, L, K]."""
        states = self.lstm(self.encoder_inputs(inputs["history"]))
        seg_len = ops.shape(states)[2]
        from_history = (
            ops.einsum("splh,phk->splk", states, self.head) + self.head_bias[None, :, None]
        )
        known = ops.einsum("sjc,pc->spj", inputs["calendar"], self.calendar_coef)
        known = known + inputs["promo"] * self.promo_coef[None, :, None]
        ahead = _shift_horizon(known, seg_len, self.horizon)
        return self.log_level[None, :, None, None] + from_history + ahead

    def call(self, inputs):
        price_term = inputs["log_price"] * self.elasticity()[None, :, None]
        seg_len = ops.shape(inputs["history"])[2]
        # A stopped product's baseline passes no gradient (per-product early stopping guards the
        # network, which can overfit); its elasticity, one scalar fitted on the whole history,
        # trains to convergence.
        base = self.baseline(inputs)
        active = self.active[None, :, None, None]
        base = base * active + ops.stop_gradient(base) * (1.0 - active)
        return base + _shift_horizon(price_term, seg_len, self.horizon)

    def get_config(self) -> dict:
        return {
            "n_products": self.n_products,
            "units": self.units,
            "horizon": self.horizon,
            "promo_lift": self.promo_lift,
        }


def _shift_horizon(per_day, seg_len, horizon: int):
    """[S, P, L + K] per-day values -> [S, P, L, K]: entry (l, k) is the value of day l + k + 1."""
    return ops.stack([per_day[:, :, k : k + seg_len] for k in range(1, horizon + 1)], axis=-1)


@keras.saving.register_keras_serializable(package="pricing")
class MaskedPoisson(keras.losses.Loss):
    """Poisson negative log-likelihood, weighted: y_true[..., 0] = units, y_true[..., 1] = weight.

    Weights are 0 for censored, unobserved or held-out targets and 1 / (valid targets of the
    product) otherwise, so each product contributes its mean loss and the total sums over products.
    """

    def __init__(self, name: str = "masked_poisson", **kwargs) -> None:
        super().__init__(name=name, reduction="sum", **kwargs)

    def call(self, y_true, y_pred):
        eta = ops.clip(y_pred, -20.0, 15.0)
        nll = ops.exp(eta) - y_true[..., 0] * eta
        return ops.sum(y_true[..., 1] * nll, axis=(1, 2, 3))


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


# --------------------------------------------------------------------------- training


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
    eta = np.clip(net.predict_on_batch(batch.inputs), -20, 15)
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


def build_net(n_products: int, cfg: ModelConfig) -> DemandNet:
    """A DemandNet with its weights created (called once on a dummy segment)."""
    net = DemandNet(n_products, cfg.hidden_units, cfg.horizon, cfg.promo_lift)
    seg, k = 2, cfg.horizon
    net(
        {
            "history": np.zeros((1, n_products, seg, N_HISTORY), "float32"),
            "calendar": np.zeros((1, seg + k, N_CALENDAR), "float32"),
            "promo": np.zeros((1, n_products, seg + k), "float32"),
            "log_price": np.zeros((1, n_products, seg + k), "float32"),
        }
    )
    return net


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
    n_days, seg_len = panel.n_days, cfg.segment_days
    val_days = cfg.validation_days if n_days - cfg.validation_days >= cfg.horizon * 2 else 0
    cutoff = n_days - val_days
    starts = segment_starts(cutoff, seg_len, cfg.warmup_days)
    train_batch = make_batch(panel, starts, seg_len, cfg.horizon, (0, cutoff), cfg.warmup_days)
    targets = normalise_weights(train_batch.targets)
    val_batch = None
    if val_days:
        val_batch = make_batch(
            panel, np.array([n_days - seg_len]), seg_len, cfg.horizon, (cutoff, n_days), 0
        )
    net = build_net(len(panel.product_ids), cfg)
    net.log_level.assign(np.log(panel.level + 0.05).astype("float32"))
    if cfg.elasticity in ("regression", "joint"):
        start, se = glm_elasticity(panel, calendar_features(panel.start, panel.n_days), groups)
        if groups is not None:
            start, se = shrink_elasticities(start, se, groups)
        net.theta.assign(_inverse_softplus(-start).astype("float32"))
        net.elasticity_se.assign(se.astype("float32"))
    # "regression": the elasticity stays at the whole-history Poisson regression estimate and the
    # network learns the baseline around it; "joint"/"network": the network trains it too.
    net.theta.trainable = cfg.elasticity != "regression"
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
        targets,
        batch_size=min(cfg.segments_per_batch, len(starts)),
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


# --------------------------------------------------------------------------- inference


def predict_segment(
    net: DemandNet, panel: Panel, cfg: ModelConfig, future_at_ref: bool
) -> np.ndarray:
    """Log expected units of the segment ending the day before `panel.end`: [P, L, K].

    Entry (l, k) is the forecast made at origin (end - L + l) for k + 1 days later. With
    `future_at_ref`, days on or after panel.end are priced at the reference price with no promo
    (the baseline a pricing decision starts from); earlier days use the prices actually paid.
    """
    seg_len = cfg.segment_days
    batch = make_batch(panel, np.array([panel.n_days - seg_len]), seg_len, cfg.horizon, (0, 0), 0)
    inputs = dict(batch.inputs)
    if future_at_ref:
        future = (np.arange(seg_len + cfg.horizon) >= seg_len)[None, None, :]
        inputs["log_price"] = np.where(future, 0.0, inputs["log_price"]).astype("float32")
        inputs["promo"] = np.where(future, 0.0, inputs["promo"]).astype("float32")
    return ops.convert_to_numpy(net(inputs))[0]


def elasticities(net: DemandNet) -> np.ndarray:
    """Each product's elasticity as a numpy array: [P], <= 0."""
    return ops.convert_to_numpy(net.elasticity())


def fit_statistics(net: DemandNet, panel: Panel, cfg: ModelConfig, z: float = 1.645) -> dict:
    """Elasticity with an approximate ~90% interval (z=1.645), and residual dispersion, per product.

    Computed over the one-day-ahead forecasts of the whole history. The standard error is the
    inverse Poisson Fisher information of the elasticity with the price term centred (the baseline
    absorbs its mean), inflated by the product's overdispersion (Pearson chi2 / n, at least 1).

    Returns:
        dict of [P] arrays: elasticity, elasticity_lo, elasticity_hi (<= 0), dispersion (the
        negative-binomial alpha, variance = mu + alpha mu^2).
    """
    elasticity = elasticities(net)
    starts = segment_starts(panel.n_days, cfg.segment_days, cfg.warmup_days)
    batch = make_batch(
        panel, starts, cfg.segment_days, cfg.horizon, (0, panel.n_days), cfg.warmup_days
    )
    mu = np.exp(np.clip(ops.convert_to_numpy(net(batch.inputs))[..., 0], -20, 15))
    y, w = batch.targets[..., 0, 0], batch.targets[..., 0, 1]
    x = batch.inputs["log_price"][:, :, 1 : cfg.segment_days + 1]
    n = np.maximum(w.sum(axis=(0, 2)), 1.0)
    x_mean = (w * mu * x).sum(axis=(0, 2)) / np.maximum((w * mu).sum(axis=(0, 2)), 1e-9)
    info = (w * mu * (x - x_mean[None, :, None]) ** 2).sum(axis=(0, 2))
    pearson = (w * (y - mu) ** 2 / np.maximum(mu, 1e-6)).sum(axis=(0, 2)) / n
    se = np.sqrt(np.maximum(pearson, 1.0) / np.maximum(info, 1e-9))
    fixed_se = ops.convert_to_numpy(net.elasticity_se)
    se = np.where(fixed_se > 0, fixed_se, se)
    # Method-of-moments NB dispersion: E[(y - mu)^2 - mu] = alpha mu^2.
    excess = (w * ((y - mu) ** 2 - mu)).sum(axis=(0, 2))
    alpha = np.clip(excess / np.maximum((w * mu**2).sum(axis=(0, 2)), 1e-9), 1e-3, 5.0)
    return {
        "elasticity": elasticity,
        "elasticity_lo": elasticity - z * se,
        "elasticity_hi": np.minimum(elasticity + z * se, 0.0),
        "dispersion": alpha,
    }


# --------------------------------------------------------------------------- artefacts


def save(result: TrainResult, folder: Path, cfg: ModelConfig, extra: dict | None = None) -> Path:
    """Save the model (Keras' .keras format) and the metadata needed to use it again."""
    folder.mkdir(parents=True, exist_ok=True)
    result.net.save(folder / MODEL_FILE)
    meta = {
        "format": ARTEFACT_FORMAT,
        "keras_version": keras.__version__,
        "product_ids": list(result.panel.product_ids),
        "ref_price": result.panel.ref_price.tolist(),
        "level": result.panel.level.tolist(),
        "recent_level": recent_level(result.panel).tolist(),
        "model_config": dataclasses.asdict(cfg),
        **(extra or {}),
    }
    (folder / META_FILE).write_text(json.dumps(meta, indent=1))
    return folder


def recent_level(panel: Panel, days: int = 28) -> np.ndarray:
    """Mean units per day over each product's last `days` observed, uncensored days: [P]."""
    out = np.zeros(len(panel.product_ids))
    good = panel.observed & ~panel.stockout
    for i in range(len(out)):
        recent = panel.units[i][good[i]][-days:]
        out[i] = recent.mean() if recent.size else 0.0
    return out


def read_meta(folder: Path) -> dict:
    """The JSON metadata saved beside a model (product ids, scales, config, backtest)."""
    try:
        return json.loads((folder / META_FILE).read_text())
    except (OSError, ValueError) as exc:
        raise ModelArtefactError(
            f"model artefact {folder} has no readable metadata: {exc}"
        ) from None


def check_artefact(folder: Path, cfg: ModelConfig) -> dict:
    """The artefact's metadata, if it is complete and was made by this format and model shape.

    Raises:
        ModelArtefactError: missing files, another artefact format, or another shape than `cfg`.
    """
    if not (folder / META_FILE).is_file() or not (folder / MODEL_FILE).is_file():
        raise ModelArtefactError(f"model artefact {folder} is incomplete: run `pricing retrain`")
    meta = read_meta(folder)
    saved = meta.get("model_config", {})
    if meta.get("format") != ARTEFACT_FORMAT:
        raise ModelArtefactError(
            f"model artefact {folder} has format {meta.get('format')}, this code reads "
            f"{ARTEFACT_FORMAT}: run `pricing retrain`"
        )
    for key in ("hidden_units", "horizon", "promo_lift", "elasticity"):
        if saved.get(key) != getattr(cfg, key):
            raise ModelArtefactError(
                f"model artefact {folder} was trained with {key}={saved.get(key)}, config says "
                f"{getattr(cfg, key)}: run `pricing retrain`"
            )
    return meta


def load(folder: Path, cfg: ModelConfig) -> tuple[DemandNet, dict]:
    """Load a saved model; refuse one made by another artefact format or model shape.

    The .keras file is loaded in Keras' safe mode: only the registered model classes of this
    module can be rebuilt, no arbitrary code (lambdas) is deserialised.

    Raises:
        ModelArtefactError: missing files, another format, or another shape than `cfg`.
    """
    meta = check_artefact(folder, cfg)
    try:
        net = keras.saving.load_model(folder / MODEL_FILE, compile=False, safe_mode=True)
    except (ValueError, TypeError, OSError) as exc:
        raise ModelArtefactError(
            f"model artefact {folder} cannot be loaded ({str(exc).splitlines()[0]}): "
            "run `pricing retrain`"
        ) from None
    if not isinstance(net, DemandNet) or net.n_products != len(meta["product_ids"]):
        raise ModelArtefactError(f"model artefact {folder} does not match its metadata: retrain")
    return net, meta


def with_saved_scales(panel: Panel, meta: dict) -> Panel:
    """The panel with the reference prices and levels the model was trained with."""
    index = {pid: i for i, pid in enumerate(meta["product_ids"])}
    order = np.array([index[p] for p in panel.product_ids])
    return dataclasses.replace(
        panel,
        ref_price=np.asarray(meta["ref_price"], dtype=np.float32)[order],
        level=np.asarray(meta["level"], dtype=np.float32)[order],
    )


# --------------------------------------------------------------------------- the naive baseline


def naive_product_model(window: int, n_features: int, cfg: ModelConfig) -> keras.Model:
    """The usual one-model-per-product LSTM (benchmark baseline): window -> next `horizon` days.

    Compiled with a Poisson loss on targets scaled by the product's level; built fresh for each
    product in a Python loop by `pipeline.bench.train`.
    """
    keras.utils.set_random_seed(cfg.seed)
    net = keras.Sequential(
        [
            keras.Input((window, n_features)),
            keras.layers.LSTM(cfg.hidden_units),
            keras.layers.Dense(cfg.horizon, activation="softplus"),
        ]
    )
    net.compile(optimizer=keras.optimizers.Adam(0.005), loss="poisson")
    return net


def clear_session() -> None:
    """Free Keras' global state between the naive loop's per-product models."""
    keras.backend.clear_session()
