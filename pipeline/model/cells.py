"""Per-product recurrent layers (LSTM, GRU) and per-product dropout, with `keras.ops` only.

Every weight carries a leading product axis: input [S, P, L, F] -> states [S, P, L, H], where S
independent sequences (segments) of each of the P products run in parallel and product p's
sequences use only product p's weights. A layer runs its whole sequence as one `ops.scan`, forward
in time only: the state at day t has read days <= t and nothing after (README, "Why no
bidirectional layers").
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

_HASH_MULTIPLIER = 0x45D9F3B  # the multiplier of a well-mixing 32-bit integer hash
_GOLDEN = 0x9E3779B9  # 2^32 / golden ratio: spreads consecutive salts over the 32 bits


def _uniform(limit: float) -> keras.initializers.Initializer:
    # Glorot-style limit computed per product: Keras' own fan computation would count the product
    # axis as a receptive field and shrink every product's weights by sqrt(P).
    # An explicit seed from numpy's generator (seeded by keras.utils.set_random_seed in `train`):
    # unseeded Keras initializers draw from Python's global `random`, which other threads of the
    # process (Dask's and Prefect's) also draw from, so the same shard got other initial weights,
    # and another model, in a Dask worker than in the flow's own process.
    seed = int(np.random.randint(1, 2**31 - 1))
    return keras.initializers.RandomUniform(-limit, limit, seed=seed)


class _PerProductRecurrent(keras.layers.Layer):
    """What the per-product LSTM and GRU share: the batched input projection and the scan.

    Subclasses set `gates` (input projections per unit) and `carry_units` (carry size per unit)
    and define `build` and `_step(carry, projected_input) -> (carry, carry)`.
    """

    gates = 1
    carry_units = 1

    def __init__(self, n_products: int, units: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.n_products = n_products
        self.units = units

    @property
    def carry_size(self) -> int:
        """Width of the recurrent carry: 2H for an LSTM (h and c), H for a GRU."""
        return self.carry_units * self.units

    def call(self, x, initial_state=None, return_carry: bool = False):
        """States [S, P, L, H] of x [S, P, L, F] (with `return_carry`, the whole carry [.., C]).

        `initial_state` [S, P, C] starts each sequence from a given carry instead of zeros.
        """
        h = self.units
        # The input projection of every step at once (one large batched matmul), time-major.
        xw = ops.einsum("splf,pfg->lpsg", x, self.kernel) + self.bias[None, :, None]
        if initial_state is None:
            s, p = ops.shape(x)[0], ops.shape(x)[1]
            carry0 = ops.zeros((p, s, self.carry_size), dtype=x.dtype)
        else:
            carry0 = ops.transpose(initial_state, (1, 0, 2))
        # One concatenated carry, and a per-step output shaped like it: a tuple carry fails to
        # trace, and another output shape is refused, on the TF backend's scan (Keras 3.15).
        _, states = ops.scan(self._step, carry0, xw)
        if not return_carry:
            states = states[..., :h]
        return ops.transpose(states, (2, 1, 0, 3))

    def get_config(self) -> dict:
        return {**super().get_config(), "n_products": self.n_products, "units": self.units}


@keras.saving.register_keras_serializable(package="pricing")
class PerProductLSTM(_PerProductRecurrent):
    """An LSTM whose weights have a leading product axis: input [S, P, L, F] -> states [S, P, L, H].

    The carry is [h, c] concatenated (2H).
    """

    gates = 4
    carry_units = 2

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

    def _step(self, carry, z):
        h = self.units
        h_prev, c_prev = carry[..., :h], carry[..., h:]
        z = z + ops.matmul(h_prev, self.recurrent)
        i, f, g, o = ops.split(z, 4, axis=-1)
        c = ops.sigmoid(f) * c_prev + ops.sigmoid(i) * ops.tanh(g)
        h_new = ops.sigmoid(o) * ops.tanh(c)
        new = ops.concatenate([h_new, c], axis=-1)
        return new, new


@keras.saving.register_keras_serializable(package="pricing")
class PerProductGRU(_PerProductRecurrent):
    """A GRU whose weights have a leading product axis: input [S, P, L, F] -> states [S, P, L, H].

    The reset gate applies after the recurrent projection (as Keras' GRU with reset_after=True and
    cuDNN): n = tanh(W_n x + b_n + r * (U_n h + b'_n)), h' = u * h + (1 - u) * n. The carry is h.
    """

    gates = 3
    carry_units = 1

    def build(self, input_shape: tuple) -> None:
        p, h, f = self.n_products, self.units, input_shape[-1]
        zeros = keras.initializers.Zeros()
        self.kernel = self.add_weight(
            shape=(p, f, 3 * h), initializer=_uniform(np.sqrt(6 / (f + 3 * h))), name="kernel"
        )
        self.recurrent = self.add_weight(
            shape=(p, h, 3 * h), initializer=_uniform(np.sqrt(3 / h)), name="recurrent"
        )
        self.bias = self.add_weight(shape=(p, 3 * h), initializer=zeros, name="bias")
        self.recurrent_bias = self.add_weight(
            shape=(p, 3 * h), initializer=zeros, name="recurrent_bias"
        )

    def _step(self, carry, z):
        hu = ops.matmul(carry, self.recurrent) + self.recurrent_bias[:, None]
        xu, xr, xn = ops.split(z, 3, axis=-1)
        hu_, hr, hn = ops.split(hu, 3, axis=-1)
        update = ops.sigmoid(xu + hu_)
        reset = ops.sigmoid(xr + hr)
        candidate = ops.tanh(xn + reset * hn)
        new = update * carry + (1.0 - update) * candidate
        return new, new


CELLS: dict[str, type[_PerProductRecurrent]] = {"lstm": PerProductLSTM, "gru": PerProductGRU}


def _u32(value) -> object:
    return ops.convert_to_tensor(np.uint32(value), dtype="uint32")


def _index(n) -> object:
    # TF has no uint32 range kernel on CPU: count in int32, then cast.
    return ops.cast(ops.arange(n, dtype="int32"), "uint32")


def _mix(v):
    """A 32-bit integer hash (uint32 in, uint32 out; multiplication wraps modulo 2^32)."""
    v = ops.bitwise_xor(v, ops.right_shift(v, 16)) * _HASH_MULTIPLIER
    v = ops.bitwise_xor(v, ops.right_shift(v, 16)) * _HASH_MULTIPLIER
    return ops.bitwise_xor(v, ops.right_shift(v, 16))


def per_product_dropout(x, rate: float, step_seed, salt: int):
    """Inverted dropout of x [S, P, L, F] whose mask is each product's own.

    Mask entry (s, p, l, f) is a hash of (step seed, salt, product p, s, l, f): product p's mask
    does not depend on how many other products share the batch, so a product trains with dropout
    exactly as it would alone (a mask drawn for the whole [S, P, L, F] tensor at once would differ
    with P). `step_seed` is a fresh `SeedGenerator` state per training step; `salt` tells the
    dropout sites of one step apart.
    """
    s, p, length, f = (ops.shape(x)[i] for i in range(4))
    seed = ops.cast(step_seed, "uint32")
    base = _mix(ops.bitwise_xor(_mix(seed[0] + _u32(salt) * _GOLDEN), seed[1]))
    key = _mix(ops.bitwise_xor(base, _index(p)))[None, :, None, None]
    key = _mix(ops.bitwise_xor(key, _index(s)[:, None, None, None]))
    key = _mix(ops.bitwise_xor(key, _index(length)[None, None, :, None]))
    key = _mix(ops.bitwise_xor(key, _index(f)[None, None, None, :]))
    keep = key >= _u32(min(int(rate * 2**32), 2**32 - 1))
    return x * ops.cast(keep, x.dtype) / (1.0 - rate)
