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
    and define `build` and `_step(carry, projected_input) -> (carry, carry)`, the step that the
    scan runs and autodiff differentiates (or `_states`, the whole scan, with its own gradient).
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
        if initial_state is None:
            s, p = ops.shape(x)[0], ops.shape(x)[1]
            carry0 = ops.zeros((p, s, self.carry_size), dtype=x.dtype)
        else:
            carry0 = ops.transpose(initial_state, (1, 0, 2))
        return ops.transpose(self._states(x, carry0, return_carry), (2, 1, 0, 3))

    def _states(self, x, carry0, return_carry: bool):
        """Time-major states [L, P, S, H] (with `return_carry`, the carry [.., C]) of x."""
        # The input projection of every step at once (one large batched matmul), time-major.
        xw = ops.einsum("splf,pfg->lpsg", x, self.kernel) + self.bias[None, :, None]
        # One concatenated carry: a tuple carry fails to trace on the TF backend (Keras 3.15).
        states = _scan(self._step, carry0, xw)[1]
        return states if return_carry else states[..., : self.units]

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

    def _states(self, x, carry0, return_carry: bool):
        # Copies of the weights, not the variables: a custom gradient differentiates by its inputs.
        weights = (ops.copy(self.kernel), ops.copy(self.bias), ops.copy(self.recurrent))
        return _lstm_states(x, weights, carry0, return_carry)


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


def _lstm_states(x, weights: tuple, carry0, return_carry: bool):
    """The LSTM's states [L, P, S, H] (or carries [h, c], 2H) of x [S, P, L, F], by hand-derived
    gradients.

    `weights` are the kernel [P, F, 4H], bias [P, 4H] and recurrent [P, H, 4H] (gates i, f, g,
    o); carry0 [P, S, 2H] is the carry before the first step. The forward pass is the LSTM as
    always (the same operations, the same values). Autodiff of the scan adds the recurrent
    weights' gradient up one step at a time, keeps every intermediate of every step, and forms
    the projection's gradients with einsums and reductions over the whole [L, P, S, 4H] gate
    gradient that took 0.3 to 0.9 s each at 939 products; this backward pass runs one reverse
    scan for each step's gate gradients, from the activations the forward pass kept, then forms
    every weight's gradient as one product-major batched matmul over all steps (a training step
    takes about a third less time; the gradients agree with autodiff's to float round-off,
    tests/test_architectures.py).
    """
    h = weights[2].shape[1]

    @ops.custom_gradient
    def run(x, kernel, bias, recurrent, carry0):
        xw = ops.einsum("splf,pfg->lpsg", x, kernel) + bias[None, :, None]

        def step(carry, z):
            h_prev, c_prev = carry[..., :h], carry[..., h:]
            z = z + ops.matmul(h_prev, recurrent)
            i, f, g, o = ops.split(z, 4, axis=-1)
            i, f, g, o = ops.sigmoid(i), ops.sigmoid(f), ops.tanh(g), ops.sigmoid(o)
            c = f * c_prev + i * g
            new = ops.concatenate([o * ops.tanh(c), c], axis=-1)
            return new, ops.concatenate([new, i, f, g, o], axis=-1)

        out = _scan(step, carry0, xw)[1]  # [L, P, S, 6H]: the carry, then the gates' activations
        states, gates = out[..., : 2 * h], out[..., 2 * h :]

        def grad(*args, upstream=None):
            if upstream is None:  # TensorFlow passes it positionally, JAX by name
                (upstream,) = args
            previous = ops.concatenate([carry0[None], states[:-1]], axis=0)  # each step's input

            def back(d_next, step_values):
                # d_next: the loss's gradient by the carry after this step, through later steps.
                d_out, state, prev, gate = step_values
                i, f, g, o = ops.split(gate, 4, axis=-1)
                tanh_c = ops.tanh(state[..., h:])
                dh = d_out[..., :h] + d_next[..., :h]
                dc = d_next[..., h:] + dh * o * (1.0 - tanh_c * tanh_c)
                if return_carry:
                    dc = dc + d_out[..., h:]
                dz = ops.concatenate(
                    [
                        dc * g * i * (1.0 - i),
                        dc * prev[..., h:] * f * (1.0 - f),
                        dc * i * (1.0 - g * g),
                        dh * tanh_c * o * (1.0 - o),
                    ],
                    axis=-1,
                )
                return ops.concatenate([ops.matmul(dz, recurrent_t), dc * f], axis=-1), dz

            recurrent_t = ops.transpose(recurrent, (0, 2, 1))
            d_carry0, dz = _scan(
                back, ops.zeros_like(carry0), (upstream, states, previous, gates), reverse=True
            )  # dz [L, P, S, 4H]: the gradient by each step's gate inputs
            p, length, f = kernel.shape[0], dz.shape[0], kernel.shape[1]
            # Product-major, the (step, segment) pairs as one axis: [P, L * S, 4H].
            flat = ops.reshape(ops.transpose(dz, (1, 0, 2, 3)), (p, -1, 4 * h))
            h_prev = ops.reshape(ops.transpose(previous[..., :h], (1, 3, 0, 2)), (p, h, -1))
            x_by_step = ops.reshape(ops.transpose(x, (1, 3, 2, 0)), (p, f, -1))
            d_x = ops.matmul(flat, ops.transpose(kernel, (0, 2, 1)))  # [P, L * S, F]
            d_x = ops.transpose(ops.reshape(d_x, (p, length, -1, f)), (2, 0, 1, 3))
            d_bias = ops.sum(ops.sum(dz, axis=0), axis=1)
            return d_x, ops.matmul(x_by_step, flat), d_bias, ops.matmul(h_prev, flat), d_carry0

        return (states if return_carry else states[..., :h]), grad

    return run(x, *weights, carry0)


def _scan(step, carry0, xs, reverse: bool = False):
    """`ops.scan(step, carry0, xs, reverse=reverse)`: the last carry and the stacked outputs.

    xs is a tensor or a tuple of tensors, all of the same length (their first axis). On
    TensorFlow, a while loop that carries the tensor itself: Keras' TensorFlow scan (3.15) keeps
    the carry in a TensorArray that every step, and every step of the gradient, reads and writes
    again, and it refuses outputs of another shape than the carry's. Same operations on the same
    values.
    """
    if keras.backend.backend() != "tensorflow":
        return ops.scan(step, carry0, xs, reverse=reverse)
    import tensorflow as tf

    sequences = xs if isinstance(xs, tuple) else (xs,)
    n = sequences[0].shape[0]
    arrays = [
        tf.TensorArray(a.dtype, size=n, element_shape=a.shape[1:]).unstack(a) for a in sequences
    ]
    outputs = tf.TensorArray(carry0.dtype, size=n)

    def body(i, carry, outputs):
        t = n - 1 - i if reverse else i
        values = tuple(a.read(t) for a in arrays)
        carry, out = step(carry, values if isinstance(xs, tuple) else values[0])
        return i + 1, carry, outputs.write(t, out)

    _, carry, outputs = tf.while_loop(
        lambda i, *_: i < n, body, (tf.constant(0), carry0, outputs), maximum_iterations=n
    )
    return carry, outputs.stack()


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
