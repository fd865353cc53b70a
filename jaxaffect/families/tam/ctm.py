"""Cross-temporal multimodal (CTM) fusion of TAM (Sec. 4.1, Eqs. 1-6, Fig. 3) and its heads.

Per modality m (image, motion, audio by default), per-segment features ``[B, T, d_m]`` are
projected to the model width d by their own Dense (Sec. 5.2), and then:

* Eq. 1  ``Z^m = [X_0^m; X_1^m; ...; X_T^m] + P_e``: a learnable token per modality, prepended,
  plus ONE learned position table ``P_e`` shared by the modalities (the equation has no m on
  ``P_e``), initialised N(0, 0.02^2) like ViT's; it has ``max_segments + 1`` rows.
* Eq. 2  ``Q^m, K^m, V^m = Z^m W_q^m, Z^m W_k^m, Z^m W_v^m``: per-modality weights, no bias.
* Eq. 3  inner-modal ``I^m = softmax(Q^m K^mT / s) V^m``.
* Eq. 4  cross-modal ``C^m = 1/(M-1) sum_{n != m} softmax(Q^m K^nT / s) V^n`` (one softmax per
  pair (m, n), then the mean over the other modalities).
* Eq. 5  ``O^m = (I^m (+) C^m) W_o``, ``W_o`` in R^{2d x d}, no bias.
* then an FFN; the block is stacked L times (``nn.scan`` over stacked params).
* Eq. 6  ``f = 1/M sum_m O^m``: the mean over modalities of the last layer's tokens; the
  classifier / regressor reads ``f^0``, the learnable-token position.

Choices where the paper is silent or ambiguous (also in the README table):

* Multi-head: Q/K/V are split into H heads and ``s = sqrt(d / H)`` (Eqs. 3-4 are written for a
  single head with ``s = sqrt(d)``). I^m and C^m are the concatenated heads.
* ``W_o``, the FFN and the LayerNorms are shared by the modalities (the paper says "for the
  m-th modality" only of W_q, W_k, W_v); ``share_across_modalities=False`` gives each modality
  its own.
* Pre-norm residual blocks ``x + Drop(CTM(LN(x)))``, ``x + Drop(FFN(LN(x)))`` plus a final
  LayerNorm, as in ViT, which the paper follows for the token and position embedding; the
  paper only says "FFN [22]". FFN width 4d with exact GELU (ViT's).
* Eq. 6 averages the output of the last block AFTER its FFN and the final LayerNorm (reading
  "the output of the last module" as the output of the last layer, not the pre-FFN ``O^m``).
* Padded segments (``segment_mask`` False) are zeroed before and after the projection and
  masked as keys in every attention; the learnable tokens are always keys. Outputs at padded
  positions are zero.
* Dropout (``dropout_rate``) on the embedded tokens and on the residual branches; the paper
  gives no regularisation. The head is a single Dense (optional dropout before it).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxaffect.nn.attention import masked_softmax, merge_heads
from jaxaffect.nn.partitioning import EMBED, HEADS
from jaxaffect.nn.transformer import (
    FeedForward,
    GroupDense,
    GroupLayerNorm,
    constrain_heads,
    head_projection,
    stack_layers,
)

Array = jax.Array
MODALITIES: tuple[str, ...] = ("image", "motion", "audio")
ATTENTION_MODES: tuple[str, ...] = ("both", "inner", "cross")
READOUTS: tuple[str, ...] = ("mean", "concat")


class MultimodalEmbedding(nn.Module):
    """Per-modality projection to ``width``, learnable token and position embedding (Eq. 1).

    Returns ``(x [B, M, T+1, d] in dtype, mask [B, T+1] bool)``; the token at position 0 is
    the learnable one (always present). Padded segments are zero before ``P_e`` is added.
    """

    modalities: Sequence[str] = MODALITIES
    width: int = 32
    max_segments: int = 64
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, features: Mapping[str, Array], segment_mask: Array
                 ) -> tuple[Array, Array]:
        missing = [m for m in self.modalities if m not in features]
        if missing:
            raise KeyError(f"features lack modalities {missing}; have {sorted(features)}")
        b, t = segment_mask.shape
        if t > self.max_segments:
            raise ValueError(f"{t} segments exceed max_segments={self.max_segments}")
        segment_mask = segment_mask.astype(bool)
        projected = []
        for m in self.modalities:
            f = features[m]
            if f.shape[:2] != (b, t):
                raise ValueError(f"features[{m!r}] has shape {f.shape}; expected ({b}, {t}, d)")
            # zero padded input first: padding may hold anything (even NaN) without reaching
            # outputs or gradients
            f = jnp.where(segment_mask[:, :, None], f, jnp.zeros((), f.dtype))
            p = nn.Dense(self.width, dtype=self.dtype, param_dtype=jnp.float32,
                         name=f"project_{m}")(f.astype(self.dtype))
            projected.append(p)
        x = jnp.stack(projected, axis=1)  # [B, M, T, d]
        x = jnp.where(segment_mask[:, None, :, None], x, jnp.zeros((), x.dtype))
        init = nn.initializers.normal(stddev=0.02)
        tokens = self.param("modality_token", init, (len(self.modalities), self.width),
                            jnp.float32)
        pos = self.param("position_embedding", init, (self.max_segments + 1, self.width),
                         jnp.float32)
        first = jnp.broadcast_to(tokens.astype(self.dtype)[None, :, None, :],
                                 (b, len(self.modalities), 1, self.width))
        x = jnp.concatenate([first, x], axis=2) + pos[: t + 1].astype(self.dtype)
        mask = jnp.concatenate([jnp.ones((b, 1), bool), segment_mask], axis=1)
        return x, mask


class CTMAttention(nn.Module):
    """Inner- and cross-modal attention of one CTM block (Eqs. 2-5), multi-head.

    ``x [B, M, N, d]``, ``key_mask [B, N]`` -> ``O [B, M, N, d]``. ``mode``: "both" (Eq. 5),
    "inner" (``O^m = I^m W_o``, Table 2's inner-only) or "cross" (``O^m = C^m W_o``).
    Params: ``query``/``key``/``value`` kernels ``[M, d, d]``; ``out`` kernel ``[2d, d]``
    ("both") or ``[d, d]`` (``[M, ., d]`` when not shared). Tensor parallelism
    (:mod:`jaxaffect.nn.partitioning`): Q/K/V kernels split by heads on their output axis,
    ``out`` on its input axis (the ``I (+) C`` rows in contiguous blocks).
    """

    num_heads: int = 4
    mode: str = "both"
    share_across_modalities: bool = True
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: Array, key_mask: Array) -> Array:
        if self.mode not in ATTENTION_MODES:
            raise ValueError(f"unknown mode {self.mode!r}; one of {ATTENTION_MODES}")
        b, m, n, d = x.shape
        if self.mode != "inner" and m < 2:
            raise ValueError("cross-modal attention needs at least two modalities")
        q, k, v = (head_projection(x, d, self.num_heads, m, self.dtype, nm)
                   for nm in ("query", "key", "value"))  # [B, M, N, H, dh]
        scale = (d // self.num_heads) ** -0.5
        parts = []
        if self.mode in ("both", "inner"):  # Eq. 3, pairs (m, m) only
            logits = jnp.einsum("bmqhc,bmkhc->bmhqk", q, k,
                                preferred_element_type=jnp.float32) * scale
            w = masked_softmax(logits, key_mask[:, None, None, None, :])
            parts.append(jnp.einsum("bmhqk,bmkhc->bmqhc", w.astype(self.dtype), v))
        if self.mode in ("both", "cross"):  # Eq. 4, all pairs, diagonal weighted 0
            logits = jnp.einsum("bmqhc,bnkhc->bmnhqk", q, k,
                                preferred_element_type=jnp.float32) * scale
            w = masked_softmax(logits, key_mask[:, None, None, None, None, :])
            others = (1.0 - jnp.eye(m, dtype=jnp.float32)) / (m - 1)
            w = w * others[None, :, :, None, None, None]
            parts.append(jnp.einsum("bmnhqk,bnkhc->bmqhc", w.astype(self.dtype), v))
        o = jnp.concatenate([merge_heads(constrain_heads(p)) for p in parts],
                            axis=-1)  # I (+) C, [B, M, N, kd]
        groups = 0 if self.share_across_modalities else m
        return GroupDense(d, groups, use_bias=False, dtype=self.dtype, axes=(HEADS, EMBED),
                          name="out")(o)


class CTMLayer(nn.Module):
    """One pre-norm CTM block + FFN: ``(x [B, M, N, d], key_mask [B, N]) -> (x, None)``."""

    num_heads: int = 4
    mlp_dim: int = 128
    mode: str = "both"
    share_across_modalities: bool = True
    dropout_rate: float = 0.0
    deterministic: bool = True
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: Array, key_mask: Array) -> tuple[Array, None]:
        groups = 0 if self.share_across_modalities else x.shape[1]
        drop = nn.Dropout(self.dropout_rate, deterministic=self.deterministic)
        h = GroupLayerNorm(groups, dtype=self.dtype, name="norm_attention")(x)
        h = CTMAttention(self.num_heads, self.mode, self.share_across_modalities, self.dtype,
                         name="attention")(h, key_mask)
        x = x + drop(h)
        h = GroupLayerNorm(groups, dtype=self.dtype, name="norm_mlp")(x)
        h = FeedForward(self.mlp_dim, groups, self.dropout_rate, self.deterministic,
                        self.dtype, name="mlp")(h)
        return (x + drop(h)).astype(self.dtype), None


def fusion_outputs(x: Array, mask: Array, modalities: Sequence[str], readout: str
                   ) -> dict[str, Any]:
    """Encoder outputs from final tokens ``x [B, M, N, d]`` and ``mask [B, N]`` (float32).

    ``tokens {m: [B, N, d]}``, ``video`` = Eq. 6 mean over modalities ``[B, N, d]``, and
    ``pooled``: ``video[:, 0]`` (``readout="mean"``, [B, d]) or the modalities' first tokens
    concatenated (``"concat"``, [B, M*d]). Padded positions are zero.
    """
    if readout not in READOUTS:
        raise ValueError(f"unknown readout {readout!r}; one of {READOUTS}")
    x = jnp.where(mask[:, None, :, None], x.astype(jnp.float32), 0.0)
    video = x.mean(axis=1)
    if readout == "mean":
        pooled = video[:, 0]
    else:
        pooled = x[:, :, 0].reshape(x.shape[0], -1)
    tokens = {m: x[:, i] for i, m in enumerate(modalities)}
    return {"tokens": tokens, "video": video, "pooled": pooled}


class CTMEncoder(nn.Module):
    """The CTM fusion module: features ``{m: [B, T, d_m]}`` + ``segment_mask [B, T]`` ->
    ``dict(tokens={m: [B, T+1, d]}, video=[B, T+1, d], pooled=[B, d])`` (float32).

    Paper sizes: ``width=768, num_layers=12, num_heads=12, max_segments=64``. ``attention``
    selects Table 2's ablations ("inner", "cross"). Params are float32, compute in ``dtype``.
    """

    modalities: Sequence[str] = MODALITIES
    width: int = 32
    num_layers: int = 2
    num_heads: int = 4
    mlp_dim: int | None = None  # None -> 4 * width
    max_segments: int = 64
    attention: str = "both"
    share_across_modalities: bool = True
    dropout_rate: float = 0.1
    readout: str = "mean"
    remat: bool = False
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, features: Mapping[str, Array], segment_mask: Array, *,
                 train: bool = False) -> dict[str, Any]:
        x, mask = MultimodalEmbedding(self.modalities, self.width, self.max_segments,
                                      self.dtype, name="embedding")(features, segment_mask)
        x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)
        layers = stack_layers(
            CTMLayer, num_layers=self.num_layers, remat=self.remat, name="layers",
            num_heads=self.num_heads, mlp_dim=self.mlp_dim or 4 * self.width,
            mode=self.attention, share_across_modalities=self.share_across_modalities,
            dropout_rate=self.dropout_rate, deterministic=not train, dtype=self.dtype)
        x, _ = layers(x, mask)
        groups = 0 if self.share_across_modalities else len(self.modalities)
        x = GroupLayerNorm(groups, dtype=self.dtype, name="final_norm")(x)
        return fusion_outputs(x, mask, self.modalities, self.readout)


class VideoHead(nn.Module):
    """Classifier / regressor on the pooled video feature: ``[B, D] -> [B, num_outputs]``.

    A single float32 Dense (logits for classification, values for regression; no activation).
    """

    num_outputs: int
    dropout_rate: float = 0.0

    @nn.compact
    def __call__(self, pooled: Array, *, train: bool = False) -> Array:
        h = nn.Dropout(self.dropout_rate, deterministic=not train)(pooled.astype(jnp.float32))
        return nn.Dense(self.num_outputs, dtype=jnp.float32, param_dtype=jnp.float32,
                        name="out")(h)


class CTMClassifier(nn.Module):
    """CTM encoder + :class:`VideoHead`: ``(features, segment_mask) -> [B, num_outputs]``.

    ``encoder`` defaults to ``CTMEncoder()``; pass a configured one for other sizes.
    Params: ``{"encoder": ..., "head": ...}``.
    """

    num_outputs: int = 8
    encoder: nn.Module | None = None
    head_dropout: float = 0.0

    @nn.compact
    def __call__(self, features: Mapping[str, Array], segment_mask: Array, *,
                 train: bool = False) -> Array:
        encoder = self.encoder if self.encoder is not None else CTMEncoder(name="encoder")
        pooled = encoder(features, segment_mask, train=train)["pooled"]
        return VideoHead(self.num_outputs, self.head_dropout, name="head")(pooled, train=train)
