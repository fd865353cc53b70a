"""The one attention core every family's attention is built on: masked softmax and heads.

Conventions:

* Masks are boolean, True = present. ``key_mask`` broadcasts to the logits ``[..., Nq, Nk]``
  (e.g. ``[B, 1, 1, Nk]``); an optional ``query_mask`` broadcasts to ``[..., Nq, 1]``.
* Masked keys get weight exactly 0; a row whose query is absent, or that has no present key,
  is all zeros (never NaN, never a uniform average of padding).
* Logits and the softmax are float32 whatever the compute dtype; the weighted sum runs in the
  dtype of the values.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

Array = jax.Array
NEG_LOGIT = -1e30  # finite, so an all-masked row gives a (discarded) uniform softmax, not NaN


def masked_softmax(logits: Array, key_mask: Array, query_mask: Array | None = None) -> Array:
    """Float32 softmax over the last axis with masked keys (weight 0) and masked rows (all 0)."""
    logits = logits.astype(jnp.float32)
    key_mask = jnp.broadcast_to(key_mask, logits.shape)
    weights = jax.nn.softmax(jnp.where(key_mask, logits, NEG_LOGIT), axis=-1)
    keep = key_mask if query_mask is None else key_mask & query_mask
    return jnp.where(keep, weights, 0.0)


def split_heads(x: Array, num_heads: int) -> Array:
    """``[..., d] -> [..., H, d // H]`` (raises if H does not divide d)."""
    d = x.shape[-1]
    if d % num_heads:
        raise ValueError(f"width {d} is not divisible by num_heads={num_heads}")
    return x.reshape(*x.shape[:-1], num_heads, d // num_heads)


def merge_heads(x: Array) -> Array:
    """``[..., H, dh] -> [..., H * dh]``."""
    return x.reshape(*x.shape[:-2], x.shape[-2] * x.shape[-1])


def attention_weights(q: Array, k: Array, key_mask: Array, *, query_mask: Array | None = None,
                      scale: float | None = None) -> Array:
    """Masked attention weights ``[..., H, Nq, Nk]`` (float32) of ``q [..., Nq, H, dh]`` and
    ``k [..., Nk, H, dh]``; ``key_mask`` broadcasts to ``[..., Nk]`` and ``query_mask`` to
    ``[..., Nq]``. ``scale`` defaults to ``1/sqrt(dh)``."""
    scale = q.shape[-1] ** -0.5 if scale is None else scale
    logits = jnp.einsum("...qhd,...khd->...hqk", q, k,
                        preferred_element_type=jnp.float32) * scale
    qm = None if query_mask is None else query_mask[..., None, :, None]
    return masked_softmax(logits, key_mask[..., None, None, :], qm)


def dot_product_attention(q: Array, k: Array, v: Array, key_mask: Array, *,
                          query_mask: Array | None = None, scale: float | None = None,
                          return_weights: bool = False) -> Array | tuple[Array, Array]:
    """Multi-head scaled dot-product attention over any leading axes.

    ``q [..., Nq, H, dh]``, ``k [..., Nk, H, dh]``, ``v [..., Nk, H, dv]``. Returns
    ``[..., Nq, H, dv]`` in ``v.dtype`` (and the float32 weights ``[..., H, Nq, Nk]`` when
    ``return_weights``).
    """
    weights = attention_weights(q, k, key_mask, query_mask=query_mask, scale=scale)
    out = jnp.einsum("...hqk,...khd->...qhd", weights.astype(v.dtype), v)
    return (out, weights) if return_weights else out
