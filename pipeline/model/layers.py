"""The batched per-product demand network and its loss, written with `keras.ops` only.

Every weight carries a leading product axis, so each product has its own recurrent encoder and
head while all products run as one computation; see the package docstring for the model's
equation and `cells` for the recurrent layers.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from pipeline.arrays import LOG_MAX, LOG_MIN
from pipeline.config import ModelConfig
from pipeline.features import N_CALENDAR, N_HISTORY
from pipeline.model.cells import CELLS, _uniform, per_product_dropout


@keras.saving.register_keras_serializable(package="pricing")
class DemandNet(keras.Model):
    """Per-product demand model; see the module docstring for the equation.

    Inputs (a dict): `history` [S, P, L, N_HISTORY], `calendar` [S, L + K, N_CALENDAR],
    `promo` [S, P, L + K] and `log_price` [S, P, L + K] (log of price / ref_price), where index j of
    the last two describes day (segment start + j). Output: log expected units [S, P, L, K].
    """

    def __init__(
        self,
        n_products: int,
        units: int,
        horizon: int,
        promo_lift: bool = False,
        cell: str = "lstm",
        layers: int = 1,
        dropout: float = 0.0,
        decoder: str = "head",
        seed: int = 0,
        local_level_days: int = 0,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.n_products, self.units, self.horizon = n_products, units, horizon
        self.promo_lift = promo_lift
        self.cell, self.n_layers, self.dropout, self.decoder = cell, layers, dropout, decoder
        self.seed = seed
        self.local_level_days = local_level_days
        p, h, k = n_products, units, horizon
        # Stacked layers, each reading the sequence of states of the one below.
        self.encoder = [CELLS[cell](n_products, units) for _ in range(layers)]
        # The decoder starts from the top layer's carry, so it is the same kind of cell.
        self.decoder_cell = CELLS[cell](n_products, units) if decoder == "seq2seq" else None
        # Dropout's masks change every training step: one seed state per step (not per call of
        # the net outside training, where dropout is off).
        self.seed_generator = keras.random.SeedGenerator(seed) if dropout > 0 else None
        zeros = keras.initializers.Zeros()
        self.head = self.add_weight(shape=(p, h, k), initializer=_uniform(0.05), name="head")
        self.head_bias = self.add_weight(shape=(p, k), initializer=zeros, name="head_bias")
        if local_level_days > 0:  # the recent level's weight per horizon day, from 0
            self.level_coef = self.add_weight(shape=(p, k), initializer=zeros, name="level")
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
        good = _good(history)
        elasticity = self.elasticity()[None, :, None]
        units = history[..., 0] - elasticity * history[..., 3] * good
        return ops.concatenate([units[..., None], history[..., 1:3], history[..., 5:]], axis=-1)

    def baseline(self, inputs, training: bool = False):
        """Log expected units at the reference price: [S, P, L, K]."""
        x = self.encoder_inputs(inputs["history"])
        at_reference = x[..., 0]  # the encoder's units, before any dropout
        step_seed = None
        if training and self.seed_generator is not None:
            step_seed = self.seed_generator.next()
        seq2seq = self.decoder == "seq2seq"
        for i, layer in enumerate(self.encoder):
            if step_seed is not None:  # on the inputs, then between stacked layers
                x = per_product_dropout(x, self.dropout, step_seed, salt=i)
            top = i == len(self.encoder) - 1
            x = layer(x, return_carry=True) if top and seq2seq else layer(x)
        seg_len = ops.shape(x)[2]
        if seq2seq:
            from_history = self.decode(x, inputs, seg_len)
        else:
            from_history = ops.einsum("splh,phk->splk", x, self.head)
        from_history = from_history + self.head_bias[None, :, None]
        if self.local_level_days > 0:
            good = _good(inputs["history"])
            recent = window_level(at_reference, good, self.local_level_days)
            from_history = from_history + recent[..., None] * self.level_coef[None, :, None, :]
        known = ops.einsum("sjc,pc->spj", inputs["calendar"], self.calendar_coef)
        known = known + inputs["promo"] * self.promo_coef[None, :, None]
        ahead = _shift_horizon(known, seg_len, self.horizon)
        return self.log_level[None, :, None, None] + from_history + ahead

    def decode(self, carry, inputs, seg_len):
        """The seq2seq decoder's contribution [S, P, L, K] from the encoder's carry [S, P, L, C].

        From every origin l the decoder runs K steps over the known inputs of days l+1 .. l+K,
        starting from the encoder's carry at l; its state at step k gives the forecast for day
        l + k + 1 through a per-product, per-horizon projection (the head's weights). The known
        inputs are the calendar (weekdays, seasons, holidays) and, where the network may learn a
        promotion's lift (`promo_lift`), the planned promotions; never sales or prices. Without
        `promo_lift` a promotion acts only through its fixed lift, as in the encoder, which
        never sees the flag: a lift learned beside the elasticity competes with it.
        """
        s, p, k = ops.shape(carry)[0], self.n_products, self.horizon
        calendar = ops.stack(
            [inputs["calendar"][:, j : j + seg_len] for j in range(1, k + 1)], axis=2
        )  # [S, L, K, N_CALENDAR]
        known = ops.broadcast_to(calendar[:, :, None], (s, seg_len, p, k, N_CALENDAR))
        if self.promo_lift:
            promo = ops.transpose(_shift_horizon(inputs["promo"], seg_len, k), (0, 2, 1, 3))
            known = ops.concatenate([known, promo[..., None]], axis=-1)  # [S, L, P, K, F]
        # Every (segment, origin) pair is one decoder sequence: [S * L, P, K, F].
        known = ops.reshape(known, (s * seg_len, p, k, N_CALENDAR + int(self.promo_lift)))
        start = ops.reshape(ops.transpose(carry, (0, 2, 1, 3)), (s * seg_len, p, -1))
        states = self.decoder_cell(known, initial_state=start)  # [S * L, P, K, H]
        states = ops.reshape(states, (s, seg_len, p, k, self.units))
        return ops.einsum("slpkh,phk->splk", states, self.head)

    def call(self, inputs, training: bool = False):
        price_term = inputs["log_price"] * self.elasticity()[None, :, None]
        seg_len = ops.shape(inputs["history"])[2]
        # A stopped product's baseline passes no gradient (per-product early stopping guards the
        # network, which can overfit); its elasticity, one scalar fitted on the whole history,
        # trains to convergence.
        base = self.baseline(inputs, training)
        active = self.active[None, :, None, None]
        base = base * active + ops.stop_gradient(base) * (1.0 - active)
        return base + _shift_horizon(price_term, seg_len, self.horizon)

    def get_config(self) -> dict:
        return {
            "n_products": self.n_products,
            "units": self.units,
            "horizon": self.horizon,
            "promo_lift": self.promo_lift,
            "cell": self.cell,
            "layers": self.n_layers,
            "dropout": self.dropout,
            "decoder": self.decoder,
            "seed": self.seed,
            "local_level_days": self.local_level_days,
        }


def _good(history):
    """[S, P, L] 1 on observed, in-stock days (whose units say what demand was), else 0."""
    return history[..., 2] * (1.0 - history[..., 1])


def window_level(units, good, days: int):
    """[S, P, L] at each origin, the mean of `units` ([S, P, L]: the encoder's scaled log units
    at the reference price) over the `good` days among the last `days` (0 where there are none).

    The window reads days <= the origin inside the segment (fewer at its start).
    """
    units = units * good
    total, count = ops.cumsum(units, axis=2), ops.cumsum(good, axis=2)
    seg_len = ops.shape(units)[2]
    # The running sums `days` days earlier: shifted right by `days`, zeros before the segment.
    pad = ops.zeros_like(ops.repeat(total[:, :, :1], days, axis=2))
    total_before = ops.concatenate([pad, total], axis=2)[:, :, :seg_len]
    count_before = ops.concatenate([pad, count], axis=2)[:, :, :seg_len]
    n = count - count_before
    return ops.where(n > 0, (total - total_before) / ops.maximum(n, 1.0), 0.0)


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
    net = DemandNet(
        n_products,
        cfg.hidden_units,
        cfg.horizon,
        cfg.promo_lift,
        cell=cfg.cell,
        layers=cfg.layers,
        dropout=cfg.dropout,
        decoder=cfg.decoder,
        seed=cfg.seed,
        local_level_days=cfg.local_level_days,
    )
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
