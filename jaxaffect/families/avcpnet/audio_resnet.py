"""AV-CPNet's audio branch (Sec. 4.1): a ResNet-34 over each MFCC segment, then the temporal
attention module that pools the t segment features into one vector ``F_a^2``.

Input layout: ``mfcc [B, t, F, n_mfcc]`` -- t segments of F MFCC frames each, one channel (the
MFCC "image" has frames on the height axis and coefficients on the width axis).

Choices where the paper is silent or where we deviate:

* Normalisation: GroupNorm (32 groups, or the largest divisor of 32 that divides a narrow
  layer's width) where the paper's ResNet-34 has batch norm. Reasons: the project's one generic
  trainer carries model parameters only (no mutable "batch_stats" collection), and batch
  statistics over a batch sharded across devices would need a cross-device mean in every norm;
  GroupNorm normalises each example on its own, so it needs neither and behaves the same in
  training and evaluation. Statistics are float32 under bf16 compute.
* Architecture otherwise as the standard ResNet-34: 7x7 stride-2 stem convolution, 3x3 stride-2
  max pool, BasicBlocks (two 3x3 convolutions) in stages of (3, 4, 6, 3) blocks with widths
  (64, 128, 256, 512), stride 2 at the first block of stages 2-4, a 1x1 projection shortcut where
  the shape changes, global average pooling. ``width`` and ``blocks`` shrink it for demos and
  tests. Convolutions have no bias (a norm follows each); He-normal (fan-out) initialisation.
* The temporal attention module: see :class:`TemporalAttention`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxaffect.nn.attention import masked_softmax

Array = jax.Array

_CONV_INIT = nn.initializers.variance_scaling(2.0, "fan_out", "normal")


def _norm(channels: int, groups: int, dtype: Any, name: str) -> nn.GroupNorm:
    """GroupNorm with ``gcd(groups, channels)`` groups (so any width works)."""
    return nn.GroupNorm(num_groups=math.gcd(groups, channels), epsilon=1e-5, dtype=dtype,
                        name=name)


class BasicBlock(nn.Module):
    """ResNet basic block: ``relu(norm(conv3x3(relu(norm(conv3x3(x))))) + shortcut(x))``."""

    features: int
    stride: int = 1
    norm_groups: int = 32
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: Array) -> Array:
        s = (self.stride, self.stride)
        conv = lambda k, st, name: nn.Conv(  # noqa: E731
            self.features, (k, k), st, padding=((k // 2, k // 2),) * 2, use_bias=False,
            kernel_init=_CONV_INIT, dtype=self.dtype, name=name)
        y = nn.relu(_norm(self.features, self.norm_groups, self.dtype, "norm1")(
            conv(3, s, "conv1")(x)))
        y = _norm(self.features, self.norm_groups, self.dtype, "norm2")(conv(3, (1, 1), "conv2")(y))
        if self.stride != 1 or x.shape[-1] != self.features:
            x = _norm(self.features, self.norm_groups, self.dtype, "proj_norm")(
                conv(1, s, "proj_conv")(x))
        return nn.relu(y + x)


class AudioResNet34(nn.Module):
    """ResNet-34 (GroupNorm) applied to each MFCC segment: ``[B, t, F, n] -> [B, t, 8 * width]``.

    ``blocks`` per stage (default (3, 4, 6, 3)); stage widths ``width * (1, 2, 4, 8)``.
    ``remat`` recomputes each block's activations in the backward pass.
    """

    width: int = 64
    blocks: Sequence[int] = (3, 4, 6, 3)
    norm_groups: int = 32
    dtype: Any = jnp.float32
    remat: bool = False

    @nn.compact
    def __call__(self, mfcc: Array, *, train: bool = False) -> Array:
        del train  # no dropout, no batch statistics
        if mfcc.ndim != 4:
            raise ValueError(f"expected mfcc [B, t, F, n_mfcc], got shape {mfcc.shape}")
        b, t, f, n = mfcc.shape
        x = mfcc.reshape(b * t, f, n, 1).astype(self.dtype)
        x = nn.Conv(self.width, (7, 7), (2, 2), padding=((3, 3), (3, 3)), use_bias=False,
                    kernel_init=_CONV_INIT, dtype=self.dtype, name="stem_conv")(x)
        x = nn.relu(_norm(self.width, self.norm_groups, self.dtype, "stem_norm")(x))
        x = nn.max_pool(x, (3, 3), strides=(2, 2), padding=((1, 1), (1, 1)))
        block_cls = nn.remat(BasicBlock) if self.remat else BasicBlock
        for stage, num_blocks in enumerate(self.blocks):
            for j in range(num_blocks):
                stride = 2 if (stage > 0 and j == 0) else 1
                x = block_cls(self.width * 2 ** stage, stride, self.norm_groups, self.dtype,
                              name=f"stage{stage + 1}_block{j + 1}")(x)
        pooled = jnp.mean(x.astype(jnp.float32), axis=(1, 2)).astype(self.dtype)
        return pooled.reshape(b, t, pooled.shape[-1])


class TemporalAttention(nn.Module):
    """The paper's temporal attention module ("1x1 convolution, fully connected layer, ReLU
    layer", Sec. 4.1) followed by temporal pooling: ``F_a^1 [B, t, C1] -> F_a^2 [B, C1]``.

    Our reading (the paper gives only the three layer names): the 1x1 convolution runs over the
    segment axis with the C1 feature channels in and ONE channel out, i.e. one scalar score per
    segment ``u_j = w . f_j`` (no bias: the FC's absorbs it); the fully connected layer maps the
    t scores to t scores (so a segment's weight depends on the whole clip -- with a per-segment
    FC after a per-segment linear score the two layers would collapse into one linear map); the
    ReLU gives
    ``r = ReLU(FC(u))``. This is the layer order of the temporal attention of the paper's Table 7
    baseline [66] (VAA-Net), which AV-CPNet builds on. Pooling (``normalize``):

    * ``"softmax"`` (default): ``a = softmax_j(r_j)`` over present segments,
      ``F_a^2 = sum_j a_j f_j``. Ours: a convex combination keeps ``F_a^2`` on the scale of
      ``f_j`` whatever the scores, and an example whose ReLU outputs are all 0 still gets the
      uniform mean (with the ReLU weights alone such an example has ``F_a^2 = 0`` and no gradient
      to the attention layers).
    * ``"none"``: the ReLU outputs are the weights, ``F_a^2 = mean_j r_j f_j`` over present
      segments (the [66] form).

    ``mask [B, t]`` (True = present): absent segments get weight 0 and their scores are zeroed
    before the FC, so their content never matters; an example with no present segment gives 0.
    The FC ties the parameters to t (fixed by the input pipeline). Scores and weights are
    float32. ``self.sow("intermediates", "temporal_weights", a [B, t])``.
    """

    normalize: str = "softmax"
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: Array, mask: Array | None = None) -> Array:
        if self.normalize not in ("softmax", "none"):
            raise ValueError(f"normalize={self.normalize!r}: one of 'softmax', 'none'")
        b, t, _ = x.shape
        mask = jnp.ones((b, t), bool) if mask is None else jnp.broadcast_to(mask, (b, t))
        u = nn.Dense(1, use_bias=False, dtype=self.dtype, name="conv1x1")(x)[..., 0]
        u = jnp.where(mask, u.astype(jnp.float32), 0.0)
        r = nn.relu(nn.Dense(t, dtype=jnp.float32, name="fc")(u))  # [B, t] float32
        if self.normalize == "softmax":
            a = masked_softmax(r, mask)
        else:
            count = jnp.maximum(jnp.sum(mask, -1, keepdims=True), 1).astype(jnp.float32)
            a = jnp.where(mask, r, 0.0) / count
        self.sow("intermediates", "temporal_weights", a)
        return jnp.einsum("bt,btc->bc", a.astype(x.dtype), x)
