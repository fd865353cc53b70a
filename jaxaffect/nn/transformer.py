"""Transformer building blocks shared by the CTM fusion module and its Table 2 baselines.

Conventions:

* Activations are laid out ``[B, G, N, d]``: G groups (modalities, or time positions for the
  divided attention's cross-modal step), N tokens per group.
* A layer may own one set of weights for all groups (``groups=0``) or one per group
  (``groups=G``), stored stacked with a leading ``[G, ...]`` axis so that per-modality weights
  cost one einsum, not a Python loop.
* Parameters are float32; compute runs in ``dtype`` (e.g. bfloat16). Attention logits, softmax
  and LayerNorm statistics are always float32.
* Attention masks mark keys only (True = real token). A query whose keys are all masked gets a
  zero output, never NaN.
* Layers used under :func:`stack_layers` have the signature ``(x, mask) -> (x, None)``.
* Tensor-parallel rules (:mod:`jaxaffect.nn.partitioning`): Q/K/V projections are split by
  heads on their output axis and the attention output projection on its input axis; the FFN's
  ``dense_in`` on its hidden (output) axis, ``dense_out`` on its hidden (input) axis.
  LayerNorms carry no rule. The activations between the two halves (per-head Q/K/V and
  attention outputs, the FFN hidden units) are constrained to the same split.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxaffect.nn.attention import dot_product_attention, merge_heads, split_heads
from jaxaffect.nn.partitioning import EMBED, HEADS, LAYERS, MLP, batch_axes, constrain, param_axes

Array = jax.Array


class GroupDense(nn.Module):
    """Dense layer with shared (``groups=0``) or per-group (``groups=G``) weights.

    Input ``[..., G, N, din]`` when ``groups`` > 0 (G must equal ``groups``), else ``[..., din]``.
    Params: ``kernel [din, dout]`` or ``[G, din, dout]``; ``bias [dout]`` or ``[G, dout]``.
    ``axes``: the logical names of (din, dout) for tensor parallelism (none by default).
    """

    features: int
    groups: int = 0
    use_bias: bool = True
    dtype: Any = jnp.float32
    axes: tuple[str | None, str | None] = (None, None)

    @nn.compact
    def __call__(self, x: Array) -> Array:
        din = x.shape[-1]
        group_axis = (None,) if self.groups else ()
        if self.groups:
            if x.ndim < 3 or x.shape[-3] != self.groups:
                raise ValueError(f"expected [..., {self.groups}, N, d] input, got {x.shape}")
            init = param_axes(nn.initializers.lecun_normal(batch_axis=(0,)),
                              group_axis + self.axes)
            kernel = self.param("kernel", init, (self.groups, din, self.features), jnp.float32)
            y = jnp.einsum("...gnd,gde->...gne", x.astype(self.dtype), kernel.astype(self.dtype))
        else:
            kernel = self.param("kernel", param_axes(nn.initializers.lecun_normal(), self.axes),
                                (din, self.features), jnp.float32)
            y = jnp.einsum("...d,de->...e", x.astype(self.dtype), kernel.astype(self.dtype))
        if self.use_bias:
            shape = (self.groups, self.features) if self.groups else (self.features,)
            bias = self.param("bias", param_axes(nn.initializers.zeros_init(),
                                                 group_axis + self.axes[1:]),
                              shape, jnp.float32)
            y = y + (bias[:, None, :] if self.groups else bias).astype(self.dtype)
        return y


class GroupLayerNorm(nn.Module):
    """LayerNorm over the last axis with float32 statistics; shared or per-group scale/bias.

    Per-group input layout as in :class:`GroupDense`. Output in ``dtype``.
    """

    groups: int = 0
    epsilon: float = 1e-6
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: Array) -> Array:
        d = x.shape[-1]
        shape = (self.groups, d) if self.groups else (d,)
        scale = self.param("scale", nn.initializers.ones_init(), shape, jnp.float32)
        bias = self.param("bias", nn.initializers.zeros_init(), shape, jnp.float32)
        if self.groups:
            scale, bias = scale[:, None, :], bias[:, None, :]
        x32 = x.astype(jnp.float32)
        mean = x32.mean(axis=-1, keepdims=True)
        var = jnp.square(x32 - mean).mean(axis=-1, keepdims=True)
        y = (x32 - mean) * jax.lax.rsqrt(var + self.epsilon)
        return (y * scale + bias).astype(self.dtype)


class FeedForward(nn.Module):
    """Position-wise FFN ``W2 Drop(GELU(W1 x + b1)) + b2`` (shared or per-group weights)."""

    mlp_dim: int
    groups: int = 0
    dropout_rate: float = 0.0
    deterministic: bool = True
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: Array) -> Array:
        d = x.shape[-1]
        h = GroupDense(self.mlp_dim, self.groups, dtype=self.dtype, axes=(EMBED, MLP),
                       name="dense_in")(x)
        h = constrain(h, batch_axes(h.ndim, MLP))
        h = nn.Dropout(self.dropout_rate, deterministic=self.deterministic)(
            nn.gelu(h, approximate=False))
        return GroupDense(d, self.groups, dtype=self.dtype, axes=(MLP, EMBED),
                          name="dense_out")(h)


def constrain_heads(x: Array) -> Array:
    """``x [B, ..., H, dh]`` split over heads under activation sharding (else unchanged)."""
    return constrain(x, batch_axes(x.ndim, HEADS, None))


def head_projection(x: Array, width: int, num_heads: int, groups: int, dtype: Any,
                    name: str) -> Array:
    """A bias-free Q/K/V projection of ``x [..., d]`` to ``[..., H, width // H]``, its output
    axis split by heads for tensor parallelism. Call inside a compact method."""
    y = GroupDense(width, groups, use_bias=False, dtype=dtype, axes=(EMBED, HEADS),
                   name=name)(x)
    return constrain_heads(split_heads(y, num_heads))


class SelfAttention(nn.Module):
    """Multi-head self-attention within each group of ``x [B, G, N, d]``.

    ``key_mask`` is broadcastable to ``[B, G, N]``. Q/K/V and output projections have no bias
    (as in the paper's Eqs. 2 and 5; kept identical for the baselines so that Table 2 compares
    attention patterns only). ``groups`` > 0 gives each group its own projections.
    """

    num_heads: int
    groups: int = 0
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: Array, key_mask: Array) -> Array:
        d = x.shape[-1]
        q, k, v = (head_projection(x, d, self.num_heads, self.groups, self.dtype, n)
                   for n in ("query", "key", "value"))
        key_mask = jnp.broadcast_to(key_mask, x.shape[:-1])
        out = merge_heads(constrain_heads(dot_product_attention(q, k, v, key_mask)))
        return GroupDense(d, self.groups, use_bias=False, dtype=self.dtype, axes=(HEADS, EMBED),
                          name="out")(out)


class TransformerLayer(nn.Module):
    """Pre-norm transformer encoder layer over each group of ``x [B, G, N, d]``.

    ``x + Drop(MHSA(LN(x)))`` then ``x + Drop(FFN(LN(x)))``. ``mask`` broadcastable to
    ``[B, G, N]`` (keys). Returns ``(x, None)`` for :func:`stack_layers`.
    """

    num_heads: int
    mlp_dim: int
    groups: int = 0
    dropout_rate: float = 0.0
    deterministic: bool = True
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: Array, mask: Array) -> tuple[Array, None]:
        drop = nn.Dropout(self.dropout_rate, deterministic=self.deterministic)
        h = GroupLayerNorm(self.groups, dtype=self.dtype, name="norm_attention")(x)
        h = SelfAttention(self.num_heads, self.groups, self.dtype, name="attention")(h, mask)
        x = x + drop(h)
        h = GroupLayerNorm(self.groups, dtype=self.dtype, name="norm_mlp")(x)
        h = FeedForward(self.mlp_dim, self.groups, self.dropout_rate, self.deterministic,
                        self.dtype, name="mlp")(h)
        return (x + drop(h)).astype(self.dtype), None


def stack_layers(layer_cls: type[nn.Module], *, num_layers: int, remat: bool = False,
                 name: str = "layers", **layer_fields: Any) -> nn.Module:
    """``num_layers`` copies of ``layer_cls`` with stacked params, applied with ``nn.scan``.

    Params get a leading ``[num_layers]`` axis, so compile time does not grow with depth.
    ``remat`` recomputes each layer's activations in the backward pass. The layer's call is
    ``(x, mask) -> (x, None)``; ``mask`` is broadcast to every layer. Call the result as
    ``stack(x, mask)`` inside a compact method; it returns ``(x, None)``.
    """
    if num_layers < 1:
        raise ValueError(f"num_layers must be >= 1, got {num_layers}")
    cls = nn.remat(layer_cls, prevent_cse=False) if remat else layer_cls
    scanned = nn.scan(cls, variable_axes={"params": 0},
                      split_rngs={"params": True, "dropout": True},
                      in_axes=nn.broadcast, length=num_layers,
                      metadata_params={nn.PARTITION_NAME: LAYERS})
    return scanned(name=name, **layer_fields)
