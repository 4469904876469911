"""The batched per-product LSTM and its loss, written with `keras.ops` only (backend-neutral).

Every weight carries a leading product axis, so each product has its own LSTM and head while all
products run as one computation; see the package docstring for the model's equation.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from pipeline.arrays import LOG_MAX, LOG_MIN
from pipeline.config import ModelConfig
from pipeline.features import N_CALENDAR, N_HISTORY


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
        eta = ops.clip(y_pred, LOG_MIN, LOG_MAX)
        nll = ops.exp(eta) - y_true[..., 0] * eta
        return ops.sum(y_true[..., 1] * nll, axis=(1, 2, 3))


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
