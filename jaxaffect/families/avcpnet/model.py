"""AV-CPNet (Sec. 4, Fig. 6): Video Swin-T + ResNet-34-on-MFCC, the two-stage cross-modal fusion
(CAF layer, then the SF layer or another Table 8 fusion) and three linear heads.

Forward pass for ``video [B, s, T, H, W, 3]`` and ``mfcc [B, t, F, n_mfcc]``:

1. Visual: each of the s segments through :class:`VideoSwin3D` -> ``[B*s, T', H', W', 8C]``,
   mean over (T', H', W') and a FC to C1 -> segment tokens ``[B, s, C1]``; their mean over s is
   ``F_v^1 [B, C1]``. (The paper pools space, time and segments, then applies the FC; the FC is
   affine, so applying it per segment first and averaging gives the same ``F_v^1`` and also the
   segment tokens of the ``"segments"`` CAF mode.)
2. Audio: :class:`AudioResNet34` per MFCC segment -> ``[B, t, C']``, FC -> ``F_a^1 [B, t, C1]``,
   :class:`TemporalAttention` -> ``F_a^2 [B, C1]``.
3. Fusion (``branches="av"``): with ``caf`` the CAF layer gives ``(F'_{v2}, F'_{a2})`` from one
   token per modality (``caf_tokens="single"``, the paper's unsqueeze) or from the segment tokens
   (``"segments"``: visual ``[B, s, C1]``, audio ``F_a^1 [B, t, C1]``; residuals ``F_v^1``,
   ``F_a^2``); without it the fusion gets ``F_v^1`` and ``F_a^2`` directly. Then
   ``make_fusion(fusion)`` -> ``[B, C1]`` and the "fused" head.
4. Heads (linear, float32 logits): "fused"; "visual" on ``F_v^1``; "audio" on ``F_a^2``. The
   outputs hold the heads of the branches that exist ("v": visual only, "a": audio only).

Table 7 / 8 rows as configurations (our reading): "Audio" = ``branches="a"``; "Visual" =
``branches="v"``; "Audio + Visual" = ``caf=False, fusion="concat"``; "+ CAF Layer" =
``caf=True, fusion="concat"`` (Table 8's ConcatFusion row has identical numbers); "+ SF Layer" =
``caf=True, fusion="sum"``; "+ EP-CE Loss" changes the loss only. Table 8 = ``caf=True`` with each
fusion.

Missing audio (ours; the paper does not discuss clips without an audio stream): with
``has_audio [B]`` False the audio representation is exactly 0 at every fusion input (``F_a^2``,
the audio tokens, ``F'_{a2}``), the audio tokens are masked as CAF keys (the visual side attends
to nothing and gets 0), so the fused and visual logits depend on the video alone; the audio
head's logits are then its bias (drop those clips from its loss with
``multitask_loss(audio_weights=has_audio)``).

No dropout outside the Swin's stochastic depth (rng collection ``"dropout"``, needed only with
``train=True`` and ``swin["stochastic_depth"] > 0``). ``remat`` recomputes the Swin stages and
the audio ResNet blocks in the backward pass. Intermediates sown (``mutable=["intermediates"]``):
the CAF weights ``caf/caf_visual_to_audio``, ``caf/caf_audio_to_visual`` and
``audio_temporal/temporal_weights``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxaffect.families.avcpnet.audio_resnet import AudioResNet34, TemporalAttention
from jaxaffect.families.avcpnet.fusion import FUSIONS, CAFLayer, make_fusion
from jaxaffect.nn.video_swin import VideoSwin3D

Array = jax.Array
BRANCHES = ("av", "v", "a")
CAF_TOKENS = ("single", "segments")


class AVCPNet(nn.Module):
    """AV-CPNet -> ``{"fused", "visual", "audio": logits [B, num_classes] float32}`` (module
    docstring). ``swin``: keyword arguments of :class:`VideoSwin3D` (``dtype`` and ``remat``
    come from this module)."""

    num_classes: int
    branches: str = "av"
    caf: bool = True
    caf_tokens: str = "single"
    fusion: str = "sum"
    hidden: int = 512
    swin: Mapping[str, Any] | None = None
    audio_width: int = 64
    audio_blocks: Sequence[int] = (3, 4, 6, 3)
    audio_norm_groups: int = 32
    temporal_normalize: str = "softmax"
    num_heads: int = 4
    dtype: Any = jnp.float32
    remat: bool = False

    def _check(self) -> None:
        if self.branches not in BRANCHES:
            raise ValueError(f"branches={self.branches!r}: one of {BRANCHES}")
        if self.caf_tokens not in CAF_TOKENS:
            raise ValueError(f"caf_tokens={self.caf_tokens!r}: one of {CAF_TOKENS}")
        if self.fusion not in FUSIONS:
            raise ValueError(f"fusion={self.fusion!r}: one of {sorted(FUSIONS)}")

    def _visual(self, video: Array, train: bool) -> Array:
        """Segment tokens ``[B, s, C1]``."""
        if video.ndim != 6:
            raise ValueError(f"expected video [B, s, T, H, W, 3], got shape {video.shape}")
        b, s = video.shape[:2]
        swin_kwargs = {**(self.swin or {}), "dtype": self.dtype, "remat": self.remat}
        feats = VideoSwin3D(**swin_kwargs, name="visual_backbone")(
            video.reshape(b * s, *video.shape[2:]).astype(self.dtype), train=train)
        pooled = jnp.mean(feats.astype(jnp.float32), axis=(1, 2, 3)).reshape(b, s, -1)
        return nn.Dense(self.hidden, dtype=self.dtype, name="visual_fc")(pooled.astype(self.dtype))

    def _audio(self, mfcc: Array, present: Array, train: bool) -> tuple[Array, Array]:
        """(``F_a^1 [B, t, C1]``, ``F_a^2 [B, C1]``), both exactly 0 where audio is absent."""
        feats = AudioResNet34(self.audio_width, self.audio_blocks, self.audio_norm_groups,
                              self.dtype, self.remat, name="audio_backbone")(mfcc, train=train)
        f_a1 = nn.Dense(self.hidden, dtype=self.dtype, name="audio_fc")(feats)
        mask = jnp.broadcast_to(present[:, None], f_a1.shape[:2])
        f_a1 = jnp.where(mask[..., None], f_a1, jnp.zeros((), f_a1.dtype))
        f_a2 = TemporalAttention(self.temporal_normalize, self.dtype, name="audio_temporal")(
            f_a1, mask)
        return f_a1, f_a2

    @nn.compact
    def __call__(self, video: Array | None, mfcc: Array | None, has_audio: Array | None = None,
                 *, train: bool = False) -> dict[str, Array]:
        self._check()
        head = lambda name: nn.Dense(self.num_classes, dtype=self.dtype, name=name)  # noqa: E731
        out = {}
        if "v" in self.branches:
            tokens_v = self._visual(video, train)
            f_v1 = jnp.mean(tokens_v.astype(jnp.float32), axis=1).astype(self.dtype)
            out["visual"] = head("head_visual")(f_v1)
        if "a" in self.branches:
            b = mfcc.shape[0]
            present = (jnp.ones((b,), bool) if has_audio is None
                       else jnp.asarray(has_audio).astype(bool).reshape(b))
            f_a1, f_a2 = self._audio(mfcc, present, train)
            out["audio"] = head("head_audio")(f_a2)
        if self.branches == "av":
            f_v, f_a = f_v1, f_a2
            if self.caf:
                if self.caf_tokens == "single":
                    x_v, x_a, mask_a = f_v1[:, None], f_a2[:, None], present[:, None]
                else:
                    x_v, x_a = tokens_v, f_a1
                    mask_a = jnp.broadcast_to(present[:, None], f_a1.shape[:2])
                f_v, f_a = CAFLayer(self.num_heads, self.dtype, name="caf")(
                    x_v, x_a, res_v=f_v1, res_a=f_a2, mask_a=mask_a)
                f_a = jnp.where(present[:, None], f_a, jnp.zeros((), f_a.dtype))
            fused = make_fusion(self.fusion, self.hidden, dtype=self.dtype, name="fusion")(f_v, f_a)
            out["fused"] = head("head_fused")(fused)
        return {k: v.astype(jnp.float32) for k, v in out.items()}
