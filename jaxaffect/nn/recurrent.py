"""LSTM cell and masked time scans for recurrent models (e.g. a fusion stage and a temporal stage).

Layout conventions (batch-major, time second):

* sequences are ``[B, T, ...]`` and ``step_mask`` is ``bool [B, T]`` (False on padded steps);
* an LSTM carry is ``(c, h)``, both ``float32 [B, H]`` (or ``[B, M, H]`` for M per-modality
  LSTMs run side by side);
* the input-to-gate projection ``W_x x_t + b`` does not depend on the recurrence, so it is
  computed for the whole sequence OUTSIDE the scan (one big matmul) with
  :func:`gate_projection`; the scanned :class:`LSTMCell` only adds ``W_h h_{t-1}``.

Masking: on a step whose mask is False the carry is passed through unchanged
(:func:`keep_where`), so after the scan the carry is the state at the last real step and
trailing padding cannot change anything downstream.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

Array = jax.Array
Carry = tuple[Array, Array]

# Forget-gate bias initialised to 1.0 (Jozefowicz et al., 2015); the paper does not say how its
# LSTMs are initialised, this is the common default that helps early gradient flow.
FORGET_BIAS = 1.0
NUM_GATES = 4  # gate order along the last axis: i (input), f (forget), g (candidate), o (output)


def lstm_bias_init(forget_bias: float = FORGET_BIAS) -> Callable[..., Array]:
    """Bias initialiser for a ``[.., 4H]`` gate projection: zeros, forget slice = forget_bias."""

    def init(key: Array, shape: tuple[int, ...], dtype: Any = jnp.float32) -> Array:
        del key
        hidden = shape[-1] // NUM_GATES
        bias = jnp.zeros(shape, dtype)
        return bias.at[..., hidden:2 * hidden].set(forget_bias)

    return init


def gate_projection(features: int, *, dtype: Any = jnp.float32, name: str | None = None
                    ) -> nn.Dense:
    """The input half of an LSTM's gates, ``W_x x + b`` -> ``[..., 4 * features]``.

    Apply it to the whole ``[B, T, k]`` sequence before the scan.
    """
    return nn.Dense(NUM_GATES * features, dtype=dtype, param_dtype=jnp.float32,
                    bias_init=lstm_bias_init(), name=name)


def keep_where(mask: Array, new: Any, old: Any) -> Any:
    """Per-example select over pytrees: ``new`` where ``mask`` ([B] bool) else ``old``.

    The mask is broadcast over trailing axes, so leaves may be [B, H] or [B, M, H].
    """

    def select(n: Array, o: Array) -> Array:
        m = mask.reshape(mask.shape + (1,) * (n.ndim - mask.ndim))
        return jnp.where(m, n, o)

    return jax.tree.map(select, new, old)


def zero_carry(batch_shape: tuple[int, ...], features: int) -> Carry:
    """All-zero float32 LSTM carry ``(c, h)`` of shape ``batch_shape + (features,)``."""
    z = jnp.zeros(batch_shape + (features,), jnp.float32)
    return z, z


def lstm_update(carry: Carry, gates: Array) -> Carry:
    """The LSTM state update from pre-activation gates ``[.., 4H]`` (order i, f, g, o).

    Gate non-linearities and the cell state are computed in float32.
    """
    c, _ = carry
    i, f, g, o = jnp.split(gates.astype(jnp.float32), NUM_GATES, axis=-1)
    c_new = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
    h_new = jax.nn.sigmoid(o) * jnp.tanh(c_new)
    return c_new, h_new


class LSTMCell(nn.Module):
    """One masked LSTM step on pre-projected inputs.

    ``__call__(carry, (x_gates, step_mask)) -> (carry', h')`` where ``x_gates`` [B, 4H] is
    ``W_x x_t + b`` from :func:`gate_projection` and ``step_mask`` [B] bool. Where the mask is
    False the carry is returned unchanged and ``h'`` is the carried hidden state. The
    recurrent kernel ``W_h`` has no bias (the bias lives in the input projection).
    """

    features: int
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, carry: Carry, inputs: tuple[Array, Array]) -> tuple[Carry, Array]:
        x_gates, step_mask = inputs
        _, h = carry
        recurrent = nn.Dense(NUM_GATES * self.features, use_bias=False, dtype=self.dtype,
                             param_dtype=jnp.float32, name="hh")
        gates = x_gates.astype(jnp.float32) + recurrent(h.astype(self.dtype)).astype(jnp.float32)
        new = keep_where(step_mask, lstm_update(carry, gates), carry)
        return new, new[1]


def scan_over_time(cell_cls: type[nn.Module], *, unroll: int = 1) -> type[nn.Module]:
    """Lifts a cell ``(carry, xs_t) -> (carry, ys_t)`` to a scan over axis 1 of [B, T, ...].

    Parameters are shared across steps (``variable_broadcast``); dropout keys are split per
    step. Every leaf of ``xs`` must have time on axis 1, and the ``ys`` come back the same way.
    """
    return nn.scan(cell_cls, variable_broadcast="params", split_rngs={"params": False,
                                                                      "dropout": True},
                   in_axes=1, out_axes=1, unroll=unroll)


def per_modality(cell_cls: type[nn.Module], *, in_axes: Any, out_axes: Any = 1
                 ) -> type[nn.Module]:
    """Vmaps a module over a modality axis with SEPARATE parameters per modality.

    Parameters gain a leading axis of size M (``variable_axes={"params": 0}``) and are
    initialised with independent keys.
    """
    return nn.vmap(cell_cls, in_axes=in_axes, out_axes=out_axes, variable_axes={"params": 0},
                   split_rngs={"params": True, "dropout": True})


class MaskedLSTM(nn.Module):
    """A single masked LSTM over ``[B, T, k]``: returns (all hidden states [B, T, H], carry).

    Hidden states on padded steps repeat the last real state.
    """

    features: int
    dtype: Any = jnp.float32
    unroll: int = 1

    @nn.compact
    def __call__(self, x: Array, step_mask: Array) -> tuple[Array, Carry]:
        x_gates = gate_projection(self.features, dtype=self.dtype, name="ih")(x)
        scan = scan_over_time(LSTMCell, unroll=self.unroll)(self.features, self.dtype,
                                                            name="cell")
        carry = zero_carry((x.shape[0],), self.features)
        carry, hs = scan(carry, (x_gates, step_mask))
        return hs, carry


class PerModalityLSTMs(nn.Module):
    """M independent masked LSTMs over ``[B, T, M, k]`` (separate weights per modality).

    Implemented as ONE scan over time whose cell is vmapped over the modality axis; the input
    projections (one Dense per modality) are applied to the whole sequence outside the scan.
    Returns (hidden states [B, T, M, H], final carry ``(c, h)`` with leaves [B, M, H]).
    """

    features: int
    dtype: Any = jnp.float32
    unroll: int = 1

    @nn.compact
    def __call__(self, x: Array, step_mask: Array) -> tuple[Array, Carry]:
        num_modalities = x.shape[2]
        ih = per_modality(nn.Dense, in_axes=2, out_axes=2)(
            NUM_GATES * self.features, dtype=self.dtype, param_dtype=jnp.float32,
            bias_init=lstm_bias_init(), name="ih")
        x_gates = ih(x)  # [B, T, M, 4H]
        # vmap over modalities: carry leaves [B, M, H] -> axis 1; gates [B, M, 4H] -> axis 1;
        # the step mask [B] is shared by every modality.
        cell_cls = per_modality(LSTMCell, in_axes=(1, (1, None)), out_axes=1)
        scan = scan_over_time(cell_cls, unroll=self.unroll)(self.features, self.dtype,
                                                            name="cell")
        carry = zero_carry((x.shape[0], num_modalities), self.features)
        carry, hs = scan(carry, (x_gates, step_mask))
        return hs, carry
