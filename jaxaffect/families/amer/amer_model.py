"""AMER: attention-based multimodal emotion reasoning (Shen et al., ACM MM 2020, Sec. 4.2).

Forward pass on a padded batch (B examples, P persons, S segments; see
:mod:`jaxaffect.families.amer.layers`), vectorised over all three axes:

1. Encoders: ``f_k = E_k(x_k)`` per used modality k ``[B, P, S, 256]`` and ``f_p = E_p(p)``
   ``[B, P, 256]``; with personality ``f^_k = [f_k; f_p]`` ``[B, P, S, 512]``.
2. Modality-level inter-personal attention at every segment, across persons:
   ``h1 = f^ + Att(f^, f^, f^)``; then intra-personal attention across segments for every person:
   ``h2 = h1 + Att(h1, h1_{i,:}, h1_{i,:})`` (only its target-segment row is needed and computed).
   Keys are masked by the modality's presence flags.
3. Early fusion at the target segment for every person:
   ``h = fusion([h2_a; h2_t; h2_v; f_p])`` (paper order a, t, v, p; only used streams).
4. Person-level inter-personal attention at the target segment over the real persons,
   ``h^ = h + Att(h, h_{:,j}, h_{:,j})``, taken at the target person, then the classifier
   ``Dense(256) -> ReLU -> Dense(C)``. Logits are float32.

``Att`` is parameter-free scaled dot-product attention with scale ``1/sqrt(d)``, d the feature
size of its inputs (512 everywhere in the full model, as the authors' fixed temperature
``sqrt(4 * D_e)`` with ``D_e = 128``; 256 at the modality level without personality).

Choices where the paper is silent, or the authors' code (sunlightsgy/MEmoR, model/model.py)
differs:

* Missing modalities: the paper says missing features are "masked to zero in the modality-level
  attention"; the authors' code masks the *keys* (a missing entry is not attended to but still
  queries). We mask keys. Absent inputs are zeroed before encoding (the paper's zero-vector
  placeholder, Sec. 4.1), so whatever a batch holds in absent or padded slots never matters.
* A query with no present key: by default the attention term is 0 (residual only). With
  ``released_code=True`` it is the uniform average over the real entries of that segment / person
  (what the authors' ``-1e9`` fill gives on their per-example slices).
* Fusion: the paper only says "early fusion"; the authors' code (and we) apply a linear layer
  ``fusion`` (Dense(fusion_size)) to the concatenation. The authors concatenate v, a, t, p; we
  use the paper's a, t, v, p (a row permutation of the fusion kernel, handled by the converter).
* Person-level attention over one real person: by default the formula is applied as written
  (``h + Att = 2h``); with ``released_code=True`` it is skipped (``h^ = h``), as in the authors'
  code. The person-level attention has no presence mask (authors' code); padded persons are
  masked in both modes.
* Text encoder sizes (512, 384, 256) follow the paper (Sec. 5.1.1); the authors' code uses
  (512, 256). The classifier (Dense(256), ReLU, Dense(C)) follows the authors' code (the paper
  says "three-layer MLP" without sizes).
* Ablations (Table 3): ``use_personality=False`` drops every personality concatenation and the
  personality encoder; ``intra_personal=False`` gives ``h2 = h1``; ``inter_personal=False``
  removes both the modality-level inter-personal attention (``h1 = f^``) and the person-level
  attention (``h^ = h``), Sec. 5.3.3. The authors' code has no switches for these.
* No dropout (the authors' attention dropout is 0 and the paper names none); ``train`` is
  accepted for the common model contract and ignored.
* Padding (persons, segments, batch rows) never changes a real example's logits in either mode.
* Speed, same numbers: the streams named in ``speaker_streams`` (MEmoR: audio and text, which
  only the segment's one speaker has) are encoded once per segment instead of once per person
  and segment -- the present entry of each segment is gathered, encoded, and put back; every
  other entry gets the encoding of the zero placeholder. Exact when at most one person per
  segment has the stream (the MEmoR batches check it, jaxaffect.families.amer.batches).

``self.sow("intermediates", "person_attention", w)`` stores the person-level attention weights
``w [B, P]`` of the target person (when that attention exists), for figures: call ``apply`` with
``mutable=["intermediates"]``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxaffect.families.amer.layers import MLP, check_modalities, take_person
from jaxaffect.nn.attention import dot_product_attention

Array = jax.Array


def attend(q: Array, kv: Array, key_mask: Array) -> tuple[Array, Array]:
    """Single-head ``Att(q, kv, kv)`` with scale ``1/sqrt(d)``: ``q [..., Nq, d]``,
    ``kv [..., Nk, d]``, ``key_mask [..., Nk]`` -> (``[..., Nq, d]`` in ``kv.dtype``, float32
    weights ``[..., Nq, Nk]``). A row without a present key gives zeros."""
    out, w = dot_product_attention(q[..., None, :], kv[..., None, :], kv[..., None, :], key_mask,
                                   return_weights=True)
    return out[..., 0, :], w[..., 0, :, :]


def released_rows(q: Array, present: Array, real: Array) -> tuple[Array, Array]:
    """The authors' code's attention on rows with no present key: their ``-1e9`` fill makes
    every logit of the per-example slice equal, i.e. a uniform average over the real keys. We get
    it by attending there with a zero query over the real keys. ``q [..., Nq, d]``,
    ``present`` and ``real [..., Nk]``; returns the (query, key mask) to attend with."""
    any_present = jnp.any(present, axis=-1, keepdims=True)
    return (jnp.where(any_present[..., None], q, jnp.zeros_like(q)),
            jnp.where(any_present, present, real))


class AMER(nn.Module):
    """AMER over a MEmoR batch -> ``{"logits": [B, num_classes] float32}`` (module docstring)."""

    num_classes: int
    modalities: Sequence[str] = ("audio", "text", "visual")
    use_personality: bool = True
    intra_personal: bool = True
    inter_personal: bool = True
    audio_sizes: Sequence[int] = (1024, 512, 256)
    text_sizes: Sequence[int] = (512, 384, 256)
    visual_sizes: Sequence[int] = (512, 384, 256)
    personality_sizes: Sequence[int] = (512, 256)
    fusion_size: int = 512
    classifier_sizes: Sequence[int] = (256,)
    released_code: bool = False
    speaker_streams: Sequence[str] = ()
    dtype: Any = jnp.float32

    def _modality_attention(self, f: Array, present: Array, real: Array, segment: Array
                            ) -> Array:
        """``h2`` at the target segment ``[B, P, d]`` of one modality's ``f^ [B, P, S, d]``;
        ``present`` (already within ``real``) and ``real`` are ``[B, P, S]``."""
        h1 = f
        if self.inter_personal:  # across persons at each segment: rows [B, S], keys P
            f_t, keys = f.swapaxes(1, 2), present.swapaxes(1, 2)
            query = f_t
            if self.released_code:
                query, keys = released_rows(f_t, keys, real.swapaxes(1, 2))
            h1 = (f_t + attend(query, f_t, keys)[0]).swapaxes(1, 2)
        q = take_person(h1.swapaxes(1, 2), segment)  # h1 at the target segment [B, P, d]
        if not self.intra_personal:
            return q
        query, keys = q[:, :, None], present  # one query per person [B, P, 1, d], keys S
        if self.released_code:
            query, keys = released_rows(query, present, real)
        return q + attend(query, h1, keys)[0][:, :, 0]

    @nn.compact
    def __call__(self, batch: dict[str, Array], *, train: bool = False) -> dict[str, Array]:
        del train  # no dropout (see module docstring)
        modalities = check_modalities(self.modalities)
        sizes = {"audio": self.audio_sizes, "text": self.text_sizes, "visual": self.visual_sizes}
        person_mask = batch["person_mask"].astype(bool)
        segment_mask = batch["segment_mask"].astype(bool)
        segment = batch["target_segment"].astype(jnp.int32)
        real = person_mask[:, :, None] & segment_mask[:, None, :]  # [B, P, S]

        f_p = None
        if self.use_personality:
            p = jnp.where(person_mask[..., None], batch["personality"], 0.0)
            f_p = MLP(self.personality_sizes, self.dtype, name="enc_personality")(
                p.astype(self.dtype))  # [B, P, Dp']

        fused = []
        for m in modalities:  # a, t, v: the paper's fusion order
            present = batch[f"{m}_present"].astype(bool) & real  # padding is never present
            x = jnp.where(present[..., None], batch[m], 0.0).astype(self.dtype)  # zero placeholder
            encoder = MLP(sizes[m], self.dtype, name=f"enc_{m}")
            if m in self.speaker_streams:  # one present entry per segment at most: S rows
                speaker_x = jnp.einsum("bpsd,bps->bsd", x, present.astype(x.dtype))
                placeholder = encoder(jnp.zeros((1, x.shape[-1]), self.dtype))[0]
                f = jnp.where(present[..., None], encoder(speaker_x)[:, None], placeholder)
            else:
                f = encoder(x)  # [B, P, S, d_m]
            if f_p is not None:
                f = jnp.concatenate(
                    [f, jnp.broadcast_to(f_p[:, :, None], (*f.shape[:3], f_p.shape[-1]))], -1)
            fused.append(self._modality_attention(f, present, real, segment))
        if f_p is not None:
            fused.append(f_p)
        h = nn.Dense(self.fusion_size, dtype=self.dtype, name="fusion")(
            jnp.concatenate(fused, -1))  # [B, P, fusion_size]

        h_t = take_person(h, batch["target_person"])  # [B, F]
        if self.inter_personal:
            att, w = attend(h_t[:, None], h, person_mask)
            self.sow("intermediates", "person_attention", w[:, 0])
            att = att[:, 0]
            if self.released_code:  # the authors skip it when the clip has one person
                att = jnp.where((person_mask.sum(1) == 1)[:, None], jnp.zeros_like(att), att)
            h_t = h_t + att
        logits = MLP((*self.classifier_sizes, self.num_classes), self.dtype, name="classifier")(h_t)
        return {"logits": logits.astype(jnp.float32)}
