"""Attention over a handful of modality tokens: the four forms compared in Table 3 of the paper.

Every form maps ``tokens [B, N, d]`` and a token mask ``[B, N]`` (True = token present) to
``(outputs [B, N, d], weights [B, N, N])``; ``weights[b, i, j]`` is the attention query token i
pays to key token j, averaged over heads. Masking rules, shared by all forms:

* absent tokens are masked as keys (zero weight);
* an absent query token outputs zeros and has an all-zero weight row;
* a step where every key is masked produces zeros, never NaN.

The paper's appendix with the exact attention details is not available; the forms below are
the standard ones from the cited works, and each choice is written next to its code. The core
(logits and softmax in float32 whatever the compute dtype, the masking) is
`jaxaffect.nn.attention`; the scales below are the ones these forms always used.
"""

from __future__ import annotations

import math
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxaffect.families.perr.linear import Dense
from jaxaffect.nn.attention import dot_product_attention, merge_heads, split_heads

Array = jax.Array

ATTENTION_KINDS: tuple[str, ...] = ("dot", "nonlocal", "multihead", "transformer")


def _dense(features: int, dtype: Any, name: str, use_bias: bool = True) -> nn.Dense:
    return nn.Dense(features, use_bias=use_bias, dtype=dtype, param_dtype=jnp.float32, name=name)


def _attend(q: Array, k: Array, v: Array, mask: Array, scale: float) -> tuple[Array, Array]:
    """Self-attention over tokens, absent ones masked as keys and queries: q, k [B, N, H, dk],
    v [B, N, H, dv] -> (outputs [B, N, H*dv], float32 weights [B, H, N, N])."""
    out, weights = dot_product_attention(q, k, v, mask, query_mask=mask, scale=scale,
                                         return_weights=True)
    return merge_heads(out), weights


def _zero_absent(x: Array, mask: Array) -> Array:
    return jnp.where(mask[..., None], x, jnp.zeros((), x.dtype))


class DotProductAttention(nn.Module):
    """Single-head scaled dot-product attention with learned Q/K/V projections (d -> d).

    No output projection (the form of Vaswani et al.'s single attention head).
    """

    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, tokens: Array, mask: Array, *, deterministic: bool = True
                 ) -> tuple[Array, Array]:
        d = tokens.shape[-1]
        x = tokens.astype(self.dtype)
        q, k, v = (split_heads(_dense(d, self.dtype, n)(x), 1) for n in ("query", "key", "value"))
        out, w = _attend(q, k, v, mask, 1.0 / math.sqrt(d))
        return _zero_absent(out, mask), w.mean(axis=1)


class NonLocalAttention(nn.Module):
    """Non-local block, embedded-Gaussian form (Wang et al., 2018) over the token axis.

    ``y = softmax(theta(x) phi(x)^T) g(x)``, ``z = x + W_z y``. Choices: inner width d/2 as in
    the original block; no 1/sqrt(d) scaling (the embedded-Gaussian form is exp(theta^T phi));
    W_z is a plain Dense with default initialisation (the original zero-initialises a BatchNorm
    after W_z so the block starts as the identity; there is no BatchNorm over 6 tokens here).
    """

    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, tokens: Array, mask: Array, *, deterministic: bool = True
                 ) -> tuple[Array, Array]:
        d = tokens.shape[-1]
        inner = max(d // 2, 1)
        x = tokens.astype(self.dtype)
        theta, phi, g = (split_heads(_dense(inner, self.dtype, n)(x), 1)
                         for n in ("theta", "phi", "g"))
        y, w = _attend(theta, phi, g, mask, 1.0)
        z = x + _dense(d, self.dtype, "w_z")(y)
        return _zero_absent(z, mask), w.mean(axis=1)


class MultiHeadAttention(nn.Module):
    """Multi-head scaled dot-product self-attention (Vaswani et al., 2017) with an output
    projection; ``num_heads`` must divide d (ValueError otherwise). Dropout on the attention
    weights is not used (so the returned weights are the ones applied)."""

    num_heads: int = 4
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, tokens: Array, mask: Array, *, deterministic: bool = True
                 ) -> tuple[Array, Array]:
        d = tokens.shape[-1]  # split_heads raises unless num_heads divides d
        x = tokens.astype(self.dtype)
        q, k, v = (split_heads(_dense(d, self.dtype, n)(x), self.num_heads)
                   for n in ("query", "key", "value"))
        out, w = _attend(q, k, v, mask, 1.0 / math.sqrt(d // self.num_heads))
        out = _dense(d, self.dtype, "out")(out)
        return _zero_absent(out, mask), w.mean(axis=1)


class TransformerEncoderLayer(nn.Module):
    """One post-norm transformer encoder layer (Vaswani et al., 2017).

    ``x1 = LN(x + Drop(MHA(x)))``, ``x2 = LN(x1 + Drop(W2 Drop(relu(W1 x1))))`` with FFN width
    4d and ReLU, the defaults of the original (and of PyTorch's TransformerEncoderLayer, which
    the paper's PyTorch code most likely used), except that FFN width is 4d rather than a fixed
    2048. Dropout is on the residual branches and after the FFN activation, not on the
    attention weights. LayerNorm statistics are computed in float32.
    """

    num_heads: int = 4
    dropout_rate: float = 0.1
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, tokens: Array, mask: Array, *, deterministic: bool = True
                 ) -> tuple[Array, Array]:
        d = tokens.shape[-1]
        x = tokens.astype(self.dtype)
        drop = nn.Dropout(self.dropout_rate, deterministic=deterministic)
        attn, w = MultiHeadAttention(self.num_heads, self.dtype, name="self_attention")(x, mask)
        x = nn.LayerNorm(dtype=self.dtype, param_dtype=jnp.float32, name="norm1")(x + drop(attn))
        y = _dense(4 * d, self.dtype, "ffn_in")(x)
        y = _dense(d, self.dtype, "ffn_out")(drop(nn.relu(y)))
        x = nn.LayerNorm(dtype=self.dtype, param_dtype=jnp.float32, name="norm2")(x + drop(y))
        return _zero_absent(x, mask), w


class _PrefixSelfAttention(nn.Module):
    """:class:`MultiHeadAttention` (same parameters) with outputs for the first ``num_out``
    tokens only; the weights cover every query."""

    num_heads: int = 4
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: Array, mask: Array, num_out: int) -> tuple[Array, Array]:
        d = x.shape[-1]
        q, k, v = (split_heads(Dense(d, self.dtype, name=n)(x), self.num_heads)
                   for n in ("query", "key", "value"))
        out, w = _attend(q, k, v, mask, 1.0 / math.sqrt(d // self.num_heads))
        return Dense(d, self.dtype, name="out")(out[:, :num_out]), w.mean(axis=1)


class _PrefixDropout(nn.Module):
    """The mask ``nn.Dropout`` draws at this path for an input of ``full_shape``, applied to
    ``x``, the first ``x.shape[1]`` tokens of such an input (so the draws do not depend on
    how many tokens are computed)."""

    rate: float

    @nn.compact
    def __call__(self, x: Array, full_shape: tuple[int, ...], deterministic: bool) -> Array:
        if self.rate == 0.0 or deterministic:
            return x
        if self.rate == 1.0:
            return jnp.zeros_like(x)
        keep = 1.0 - self.rate
        mask = jax.random.bernoulli(self.make_rng("dropout"), keep, full_shape)[:, :x.shape[1]]
        return jax.lax.select(mask, x / keep, jnp.zeros_like(x))


class PrefixTransformerLayer(nn.Module):
    """:class:`TransformerEncoderLayer` (same parameters, same dropout draws) computing the
    outputs of the first ``num_out`` tokens only.

    In SMTA the output of the last token (``h~_t``) is discarded: that token is a key and a
    value, so its key, value (and query, for the returned weights) projections are needed, but
    not its output projection, LayerNorms and FFN, which this layer skips (1/(M+1) of those
    matmuls). ``(tokens [B, N, d], mask [B, N], num_out)`` -> ``(outputs [B, num_out, d],
    weights [B, N, N])``.
    """

    num_heads: int = 4
    dropout_rate: float = 0.1
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, tokens: Array, mask: Array, num_out: int, *, deterministic: bool = True
                 ) -> tuple[Array, Array]:
        b, n, d = tokens.shape
        x = tokens.astype(self.dtype)
        drop = _PrefixDropout(self.dropout_rate, name="Dropout_0")
        attn, w = _PrefixSelfAttention(self.num_heads, self.dtype, name="self_attention")(
            x, mask, num_out)
        x = nn.LayerNorm(dtype=self.dtype, param_dtype=jnp.float32, name="norm1")(
            x[:, :num_out] + drop(attn, (b, n, d), deterministic))
        y = Dense(4 * d, self.dtype, name="ffn_in")(x)
        y = Dense(d, self.dtype, name="ffn_out")(drop(nn.relu(y), (b, n, 4 * d), deterministic))
        x = nn.LayerNorm(dtype=self.dtype, param_dtype=jnp.float32, name="norm2")(
            x + drop(y, (b, n, d), deterministic))
        return _zero_absent(x, mask[:, :num_out]), w


def make_attention(kind: str, *, num_heads: int = 4, dropout_rate: float = 0.1,
                   dtype: Any = jnp.float32, name: str | None = None) -> nn.Module:
    """Builds one of :data:`ATTENTION_KINDS` (unbound module, optionally named)."""
    if kind == "dot":
        return DotProductAttention(dtype=dtype, name=name)
    if kind == "nonlocal":
        return NonLocalAttention(dtype=dtype, name=name)
    if kind == "multihead":
        return MultiHeadAttention(num_heads=num_heads, dtype=dtype, name=name)
    if kind == "transformer":
        return TransformerEncoderLayer(num_heads=num_heads, dropout_rate=dropout_rate,
                                       dtype=dtype, name=name)
    raise ValueError(f"unknown attention {kind!r}; one of {', '.join(ATTENTION_KINDS)}")
