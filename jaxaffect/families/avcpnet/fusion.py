"""AV-CPNet's two-stage cross-modal fusion (TS-CF module, Sec. 4.2) and the fusion strategies of
its Table 8.

CAF layer (Eqs. 4-7), :class:`CAFLayer`. For each direction (visual queries over audio, audio
queries over visual) a 4-head attention ``MHSA(Q=W_q x, K=W_k y, V=W_v y) W_o`` (Eqs. 4-5) gives
attended features; the query features and the attended ones are concatenated along the feature
axis (``[N, 2 C1]``), averaged over the query tokens (sigma) and mapped back to C1 by a linear
layer (delta), plus the residual: ``F'_{v2} = delta(sigma([F'_v; MHSA_v])) + F'_v`` (Eq. 6), and
the same for audio (Eq. 7). Token modes (chosen by the caller, see the model):

* ``"single"`` -- the paper's literal reading: ``F_v^1`` and ``F_a^2`` unsqueezed to one token
  each. Softmax over a single key is exactly 1, so the attended features are
  ``W_o(W_v y + b_v) + b_o`` whatever the queries and keys: ``W_q``, ``W_k`` (and their biases)
  get no gradient and the layer is a learned linear mixing of the two vectors plus the residual.
  We implement it as written (the Table 7/8 rows are defined by it) and say so.
* ``"segments"`` -- ours: visual segment tokens ``[B, s, C1]`` and audio segment tokens
  ``[B, t, C1]`` (before temporal pooling), so the attention has something to choose between;
  sigma averages the present query tokens and the residual is the pooled vector
  (``F_v^1`` / ``F_a^2``).

Choices: the projections have biases (the usual multi-head attention layout); no dropout (the
paper names none); each direction has its own projections ("MHSA layers"); concatenation along
the feature axis (then delta maps ``2 C1 -> C1``). Masks (True = present): a query with no present
key gets attended features exactly 0 (an absent audio track contributes nothing to the visual
side), and absent queries are left out of sigma. Attention weights are float32 (the project's one
attention core) and are sown as ``intermediates/caf_visual_to_audio`` and
``caf_audio_to_visual`` ``[B, H, Nq, Nk]``.

Tensor parallelism (:mod:`jaxaffect.nn.partitioning`): the CAF attention's Q/K/V projections
are split by heads on their output axis, its output projection on its input axis; the small
delta and fusion layers carry no rule (FSDP only).

SF layer (Eq. 8) and the other Table 8 strategies map ``(f_v, f_a) [B, C1]`` to a fused
``[B, features]`` on which the model puts its linear "fused" head. The paper defines only
SumFusion; the others are simple standard forms of ours:

* ``sum`` (:class:`SumFusion`, Eq. 8): ``W_1 f_v + b_1 + W_2 f_a + b_2`` ("two FC layers, then
  sumfusion").
* ``concat`` (:class:`ConcatFusion`): ``W [f_v; f_a] + b``. With linear layers this is the same
  function class as ``sum`` (a concatenation times a matrix is the sum of two products); the two
  differ only in parametrisation and initialisation.
* ``ew_sum`` (:class:`EWSumFusion`): ``f_v + f_a``, no parameters.
* ``neural`` (:class:`NeuralFusion`): a learned non-linear fusion, ``ReLU(W [f_v; f_a] + b)``
  (with the linear head: a one-hidden-layer MLP on the concatenation).
* ``gated`` (:class:`GatedFusion`): multiplicative gating in the manner of Kiela et al. (2018),
  one modality gating the projection of the other: ``sigmoid(W_g f_v + b_g) * (W f_a + b)``
  (``gate_by="visual"``, default: the stronger modality, Table 7, decides which audio features
  pass; ``"audio"`` swaps the roles).
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxaffect.nn.attention import dot_product_attention, merge_heads, split_heads
from jaxaffect.nn.partitioning import EMBED, HEADS, param_axes
from jaxaffect.nn.transformer import constrain_heads

Array = jax.Array


def masked_mean(x: Array, mask: Array) -> Array:
    """Mean of ``x [B, N, d]`` over the tokens where ``mask [B, N]`` is True (0 if none),
    accumulated in float32, returned in ``x.dtype``."""
    m = mask.astype(jnp.float32)[..., None]
    total = jnp.sum(x.astype(jnp.float32) * m, axis=1)
    return (total / jnp.maximum(jnp.sum(m, axis=1), 1.0)).astype(x.dtype)


class CrossAttention(nn.Module):
    """Multi-head attention of queries ``x [B, Nq, d]`` over keys/values ``y [B, Nk, d]``:
    ``concat_h(softmax(Q_h K_h^T / sqrt(d_h)) V_h) W_o`` (Eqs. 4-5), width kept at d.

    Returns (``[B, Nq, d]`` in ``dtype``, float32 weights ``[B, H, Nq, Nk]``). Rows whose query is
    absent or which have no present key are exactly 0 (after the output projection too).
    """

    num_heads: int = 4
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: Array, y: Array, key_mask: Array, query_mask: Array
                 ) -> tuple[Array, Array]:
        d = x.shape[-1]

        def dense(name: str, axes: tuple[str, str] = (EMBED, HEADS)) -> nn.Dense:
            return nn.Dense(d, dtype=self.dtype, name=name,
                            kernel_init=param_axes(nn.linear.default_kernel_init, axes),
                            bias_init=param_axes(nn.initializers.zeros_init(), axes[1:]))

        def heads(z: Array) -> Array:
            return constrain_heads(split_heads(z, self.num_heads))

        q, k, v = heads(dense("query")(x)), heads(dense("key")(y)), heads(dense("value")(y))
        out, w = dot_product_attention(q, k, v, key_mask, query_mask=query_mask,
                                       return_weights=True)
        out = dense("out", (HEADS, EMBED))(merge_heads(constrain_heads(out)))
        live = query_mask & jnp.any(key_mask, axis=-1, keepdims=True)  # [B, Nq]
        return jnp.where(live[..., None], out, jnp.zeros((), out.dtype)), w


class CAFLayer(nn.Module):
    """Cross-attention fusion (Eqs. 4-7): tokens ``x_v [B, Nv, C1]``, ``x_a [B, Na, C1]`` ->
    ``(F'_{v2}, F'_{a2})`` each ``[B, C1]`` (module docstring).

    ``res_v`` / ``res_a`` ``[B, C1]``: the residual vectors (default: the masked token means,
    i.e. the token itself in single-token mode). ``mask_v [B, Nv]`` / ``mask_a [B, Na]``: present
    tokens (default all).
    """

    num_heads: int = 4
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x_v: Array, x_a: Array, *, res_v: Array | None = None,
                 res_a: Array | None = None, mask_v: Array | None = None,
                 mask_a: Array | None = None) -> tuple[Array, Array]:
        c1 = x_v.shape[-1]
        if x_a.shape[-1] != c1:
            raise ValueError(f"CAF needs equal widths, got {x_v.shape} and {x_a.shape}")
        mask_v = jnp.ones(x_v.shape[:2], bool) if mask_v is None else mask_v.astype(bool)
        mask_a = jnp.ones(x_a.shape[:2], bool) if mask_a is None else mask_a.astype(bool)
        x_v, x_a = x_v.astype(self.dtype), x_a.astype(self.dtype)
        att_v, w_va = CrossAttention(self.num_heads, self.dtype, name="attend_visual")(
            x_v, x_a, mask_a, mask_v)
        att_a, w_av = CrossAttention(self.num_heads, self.dtype, name="attend_audio")(
            x_a, x_v, mask_v, mask_a)
        self.sow("intermediates", "caf_visual_to_audio", w_va)
        self.sow("intermediates", "caf_audio_to_visual", w_av)
        res_v = masked_mean(x_v, mask_v) if res_v is None else res_v.astype(self.dtype)
        res_a = masked_mean(x_a, mask_a) if res_a is None else res_a.astype(self.dtype)
        f_v1 = jnp.concatenate([x_v, att_v], axis=-1)  # F'_{v1} [B, Nv, 2 C1]
        f_a1 = jnp.concatenate([x_a, att_a], axis=-1)
        f_v2 = nn.Dense(c1, dtype=self.dtype, name="delta_visual")(masked_mean(f_v1, mask_v))
        f_a2 = nn.Dense(c1, dtype=self.dtype, name="delta_audio")(masked_mean(f_a1, mask_a))
        return f_v2 + res_v, f_a2 + res_a


# --- Table 8 fusion strategies: (f_v [B, C1], f_a [B, C1]) -> [B, features] --------------------

class SumFusion(nn.Module):
    """SF layer (Eq. 8): ``delta_1(f_v) + delta_1'(f_a)``, one FC layer per modality."""

    features: int
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, f_v: Array, f_a: Array) -> Array:
        return (nn.Dense(self.features, dtype=self.dtype, name="fc_visual")(f_v)
                + nn.Dense(self.features, dtype=self.dtype, name="fc_audio")(f_a))


class ConcatFusion(nn.Module):
    """``W [f_v; f_a] + b``."""

    features: int
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, f_v: Array, f_a: Array) -> Array:
        return nn.Dense(self.features, dtype=self.dtype, name="fc")(
            jnp.concatenate([f_v.astype(self.dtype), f_a.astype(self.dtype)], axis=-1))


class EWSumFusion(nn.Module):
    """``f_v + f_a`` (element-wise, no parameters; ``features`` must equal their width)."""

    features: int
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, f_v: Array, f_a: Array) -> Array:
        if f_v.shape[-1] != self.features or f_a.shape[-1] != self.features:
            raise ValueError(f"ew_sum fusion needs width {self.features} inputs, got "
                             f"{f_v.shape} and {f_a.shape}")
        return f_v.astype(self.dtype) + f_a.astype(self.dtype)


class NeuralFusion(nn.Module):
    """``ReLU(W [f_v; f_a] + b)``: a learned non-linear fusion of the concatenation."""

    features: int
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, f_v: Array, f_a: Array) -> Array:
        return nn.relu(nn.Dense(self.features, dtype=self.dtype, name="fc")(
            jnp.concatenate([f_v.astype(self.dtype), f_a.astype(self.dtype)], axis=-1)))


class GatedFusion(nn.Module):
    """``sigmoid(W_g f_g + b_g) * (W f_o + b)`` with ``f_g`` the gating modality (``gate_by``)
    and ``f_o`` the other one (module docstring)."""

    features: int
    gate_by: str = "visual"
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, f_v: Array, f_a: Array) -> Array:
        if self.gate_by not in ("visual", "audio"):
            raise ValueError(f"gate_by={self.gate_by!r}: one of 'visual', 'audio'")
        gate_in, value_in = (f_v, f_a) if self.gate_by == "visual" else (f_a, f_v)
        gate = nn.Dense(self.features, dtype=self.dtype, name="fc_gate")(gate_in)
        value = nn.Dense(self.features, dtype=self.dtype, name="fc_value")(value_in)
        return jax.nn.sigmoid(gate.astype(jnp.float32)).astype(self.dtype) * value


FUSIONS: dict[str, type[nn.Module]] = {
    "sum": SumFusion, "concat": ConcatFusion, "ew_sum": EWSumFusion, "neural": NeuralFusion,
    "gated": GatedFusion,
}


def make_fusion(kind: str, features: int, *, dtype: Any = jnp.float32,
                name: str | None = None) -> nn.Module:
    """The Table 8 fusion module called ``kind`` (one of :data:`FUSIONS`), output width
    ``features``."""
    if kind not in FUSIONS:
        raise ValueError(f"fusion={kind!r}: one of {sorted(FUSIONS)}")
    return FUSIONS[kind](features=features, dtype=dtype, name=name)
