"""The multimodal fusion strategies compared in TAM's Table 2 (Sec. 5.3, 5.4).

Every strategy maps ``features {m: [B, T, d_m]}`` + ``segment_mask [B, T]`` to the same output
dict as :class:`~jaxaffect.families.tam.ctm.CTMEncoder` (``tokens``, ``video``, ``pooled``), and
:class:`FusionClassifier` adds the same :class:`~jaxaffect.families.tam.ctm.VideoHead`.

* ``"concat"`` -- simple concatenation: one transformer per modality (separate weights) over
  that modality's learnable token + segments; the modalities' first outputs are concatenated.
* ``"divide"`` -- divided attention: each layer is the concatenation layer with a self-attention
  inserted between its two sub-layers, over the M modality tokens at each time position.
* ``"joint"`` -- joint attention: one transformer over the single sequence of all M * (T+1)
  tokens (full pairwise attention between segments and modalities).
* ``"inner"`` / ``"cross"`` -- the CTM block with only inner- / only cross-modal attention.
* ``"ctm"`` -- the full CTM module.

Choices where the paper is silent (also in the README table):

* All strategies share the input stage of the CTM (per-modality projection, per-modality
  learnable token, one learned position table), the pre-norm layer, FFN width, depth and head
  count, so Table 2 differs only in the attention pattern and the readout. The paper's
  baselines used 12 layers and 8 heads; set ``num_layers`` / ``num_heads`` accordingly.
* Readout (``readout="auto"``): concat / divide / joint concatenate the modalities' first
  outputs (``pooled [B, M*d]``) -- Sec. 5.3 says so for concatenation and calls the other two
  "the same as the simple concatenation fusion module"; inner / cross / ctm read ``f^0`` of
  the modality mean (Eq. 6, ``pooled [B, d]``). ``readout="mean"`` / ``"concat"`` overrides.
* Divided attention: temporal attention, FFN and their LayerNorms are per modality (it is built
  from three parallel concatenation modules); the inserted cross-modal attention and its
  LayerNorm are one set of weights shared by all time positions and modalities.
* Joint attention has no modality-type embedding: the per-modality projections and learnable
  tokens already tell the modalities apart; ``P_e`` gives the time position.
* ``video`` is always the mean over modalities of the final tokens (what a video-TSC decoder
  would read), whatever the readout.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxaffect.families.tam.ctm import (
    MODALITIES,
    CTMEncoder,
    MultimodalEmbedding,
    VideoHead,
    fusion_outputs,
)
from jaxaffect.nn.transformer import (
    FeedForward,
    GroupLayerNorm,
    SelfAttention,
    TransformerLayer,
    stack_layers,
)

Array = jax.Array
STRATEGIES: tuple[str, ...] = ("concat", "divide", "joint", "inner", "cross", "ctm")
_CTM_MODES = {"ctm": "both", "inner": "inner", "cross": "cross"}


def default_readout(strategy: str) -> str:
    """The readout a strategy uses under ``readout="auto"``."""
    return "mean" if strategy in _CTM_MODES else "concat"


class DividedLayer(nn.Module):
    """Divided attention layer: ``(x [B, M, N, d], key_mask [B, N]) -> (x, None)``.

    ``x + Drop(TemporalMHSA_m(LN_m(x)))`` within each modality, then
    ``x + Drop(CrossMHSA(LN(x)))`` over the M tokens at each position, then
    ``x + Drop(FFN_m(LN_m(x)))``.
    """

    num_heads: int = 4
    mlp_dim: int = 128
    dropout_rate: float = 0.0
    deterministic: bool = True
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: Array, key_mask: Array) -> tuple[Array, None]:
        m = x.shape[1]
        drop = nn.Dropout(self.dropout_rate, deterministic=self.deterministic)
        h = GroupLayerNorm(m, dtype=self.dtype, name="norm_temporal")(x)
        h = SelfAttention(self.num_heads, m, self.dtype, name="temporal_attention")(
            h, key_mask[:, None, :])
        x = x + drop(h)
        h = GroupLayerNorm(0, dtype=self.dtype, name="norm_cross")(x)
        h = jnp.swapaxes(h, 1, 2)  # [B, N, M, d]: the M modality tokens of each position
        h = SelfAttention(self.num_heads, 0, self.dtype, name="cross_attention")(
            h, key_mask[:, :, None])
        x = x + drop(jnp.swapaxes(h, 1, 2))
        h = GroupLayerNorm(m, dtype=self.dtype, name="norm_mlp")(x)
        h = FeedForward(self.mlp_dim, m, self.dropout_rate, self.deterministic, self.dtype,
                        name="mlp")(h)
        return (x + drop(h)).astype(self.dtype), None


class BaselineEncoder(nn.Module):
    """Encoder for the "concat", "divide" and "joint" strategies (same I/O as CTMEncoder)."""

    strategy: str = "concat"
    modalities: Sequence[str] = MODALITIES
    width: int = 32
    num_layers: int = 2
    num_heads: int = 4
    mlp_dim: int | None = None  # None -> 4 * width
    max_segments: int = 64
    dropout_rate: float = 0.1
    readout: str = "concat"
    remat: bool = False
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, features: Mapping[str, Array], segment_mask: Array, *,
                 train: bool = False) -> dict[str, Any]:
        if self.strategy not in ("concat", "divide", "joint"):
            raise ValueError(f"BaselineEncoder has no strategy {self.strategy!r}")
        x, mask = MultimodalEmbedding(self.modalities, self.width, self.max_segments,
                                      self.dtype, name="embedding")(features, segment_mask)
        x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)
        b, m, n, d = x.shape
        common = dict(num_layers=self.num_layers, remat=self.remat, name="layers",
                      num_heads=self.num_heads, mlp_dim=self.mlp_dim or 4 * self.width,
                      dropout_rate=self.dropout_rate, deterministic=not train,
                      dtype=self.dtype)
        if self.strategy == "concat":
            x, _ = stack_layers(TransformerLayer, groups=m, **common)(x, mask[:, None, :])
            groups = m
        elif self.strategy == "divide":
            x, _ = stack_layers(DividedLayer, **common)(x, mask)
            groups = m
        else:  # joint: one sequence of M * (T+1) tokens, modality-major
            joint_mask = jnp.tile(mask, (1, m))[:, None, :]
            x, _ = stack_layers(TransformerLayer, groups=0, **common)(
                x.reshape(b, 1, m * n, d), joint_mask)
            x = x.reshape(b, m, n, d)
            groups = 0
        x = GroupLayerNorm(groups, dtype=self.dtype, name="final_norm")(x)
        return fusion_outputs(x, mask, self.modalities, self.readout)


def make_fusion_encoder(strategy: str, *, readout: str = "auto",
                        share_across_modalities: bool = True, name: str | None = None,
                        **fields: Any) -> nn.Module:
    """The encoder of one Table 2 strategy (unbound). ``fields``: the common encoder fields
    (``modalities, width, num_layers, num_heads, mlp_dim, max_segments, dropout_rate, remat,
    dtype``). ``share_across_modalities`` applies to the CTM family only."""
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown fusion strategy {strategy!r}; one of {STRATEGIES}")
    if readout == "auto":
        readout = default_readout(strategy)
    if strategy in _CTM_MODES:
        return CTMEncoder(attention=_CTM_MODES[strategy], readout=readout,
                          share_across_modalities=share_across_modalities, name=name,
                          **fields)
    return BaselineEncoder(strategy=strategy, readout=readout, name=name, **fields)


class FusionClassifier(nn.Module):
    """Table 2 model: fusion encoder of ``strategy`` + :class:`VideoHead`.

    ``(features, segment_mask, *, train) -> [B, num_outputs]`` (float32 logits, or regression
    outputs). Params ``{"encoder": ..., "head": ...}``; with ``strategy="ctm"`` the tree is
    that of ``CTMClassifier(encoder=CTMEncoder(...))``.
    """

    strategy: str = "ctm"
    num_outputs: int = 8
    modalities: Sequence[str] = MODALITIES
    width: int = 32
    num_layers: int = 2
    num_heads: int = 4
    mlp_dim: int | None = None
    max_segments: int = 64
    dropout_rate: float = 0.1
    head_dropout: float = 0.0
    readout: str = "auto"
    share_across_modalities: bool = True
    remat: bool = False
    dtype: Any = jnp.float32

    @nn.nowrap
    def encoder_module(self, name: str | None = None) -> nn.Module:
        """The unbound encoder this classifier uses."""
        return make_fusion_encoder(
            self.strategy, readout=self.readout,
            share_across_modalities=self.share_across_modalities, name=name,
            modalities=self.modalities, width=self.width, num_layers=self.num_layers,
            num_heads=self.num_heads, mlp_dim=self.mlp_dim, max_segments=self.max_segments,
            dropout_rate=self.dropout_rate, remat=self.remat, dtype=self.dtype)

    @nn.compact
    def __call__(self, features: Mapping[str, Array], segment_mask: Array, *,
                 train: bool = False) -> Array:
        pooled = self.encoder_module(name="encoder")(features, segment_mask,
                                                     train=train)["pooled"]
        return VideoHead(self.num_outputs, self.head_dropout, name="head")(pooled, train=train)
