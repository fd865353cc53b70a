"""Fusion baselines of MEmoR Table 3 (Shen et al., ACM MM 2020, Sec. 5.1.2): MDL, MDAE,
BiLSTM+TFN and BiLSTM+LMF. (DialogueGCN lives in :mod:`jaxaffect.families.amer.dialogue_gcn`.)

The paper names the baselines and cites them, and gives no architecture beyond that; what follows
is our reading, every choice listed here and next to the code.

Common to every baseline (:class:`BaselineModule`):

* Encoders as AMER's (Sec. 5.1.1): ``enc_audio`` 1024-512-256, ``enc_text`` and ``enc_visual``
  512-384-256, ReLU between layers, none after the last. An absent modality entry (presence flag
  False, or a padded person / segment) is zeroed AFTER encoding, so it contributes exactly
  nothing (a zero input would still give the encoder's bias path; AMER zeroes inputs instead).
* Personality is "concatenated after multimodal fusion for each baseline" (Sec. 5.2):
  ``enc_personality`` MLP (512, 256) of the TARGET person's personality vector, concatenated to
  the fused vector before the classifier. ``use_personality=False`` drops it (Table 3 "MDL").
* Classifier ``Dense(256) -> ReLU -> Dense(C)`` (as AMER's); logits float32. No dropout (the
  paper names none); ``train`` only switches MDAE's input corruption.

Models (forward for a batch of B examples; z's are per example):

* :class:`MDL` -- early fusion: ``[E_a(x_a); E_t(x_t); E_v(x_v)]`` at the target (person,
  segment) entry (+ personality) -> classifier.
* :class:`MDAE` -- denoising multimodal autoencoder after Ngiam et al. (2011): corrupted target
  inputs -> encoders -> ``shared = ReLU(Dense(256)(concat))`` -> one decoder per modality back to
  the raw input (mirrored encoder sizes); ``aux_loss`` = reconstruction MSE of the clean present
  inputs; classifier on ``[shared; personality]``.
* :class:`BiLSTMTFN` / :class:`BiLSTMLMF` -- the target person's encoded sequence of each modality
  over segments -> one BiLSTM per modality (128 per direction) -> output at the target segment
  ``z_m`` [256] -> tensor fusion (TFN, Zadeh et al. 2017) or low-rank fusion (LMF, Liu et al.
  2018) -> ``Dense(256)``/LMF output, ReLU (+ personality) -> classifier.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxaffect.families.amer.layers import MLP, check_modalities, take_person, take_target
from jaxaffect.nn.recurrent import PerModalityLSTMs

Array = jax.Array


# --- pure pieces --------------------------------------------------------------------------------

def present_mask(batch: dict[str, Array], modality: str) -> Array:
    """``[B, P, S]`` presence of a modality, False on padded persons and segments whatever the
    presence flags hold there."""
    return (batch[f"{modality}_present"].astype(bool) & batch["person_mask"][:, :, None]
            & batch["segment_mask"][:, None, :])


def zero_absent(h: Array, present: Array) -> Array:
    """``h [..., D]`` with the entries where ``present [...]`` is False set to exactly 0."""
    return jnp.where(present[..., None], h, jnp.zeros((), h.dtype))


def tensor_fusion(zs: Sequence[Array]) -> Array:
    """TFN's fusion: the flattened outer product of ``[1; z_m]`` over modalities.

    ``zs``: M arrays ``[B, d_m]`` -> ``[B, prod_m (d_m + 1)]``, row-major in the order given
    (equal to ``kron([1; z_1], kron([1; z_2], ...))``). The constant 1 keeps the unimodal and
    bimodal terms in the product.
    """
    out = None
    for z in zs:  # at most three modalities: not a loop over data
        z1 = jnp.concatenate([jnp.ones(z.shape[:-1] + (1,), z.dtype), z], axis=-1)
        out = z1 if out is None else (out[:, :, None] * z1[:, None, :]).reshape(z.shape[0], -1)
    if out is None:
        raise ValueError("tensor_fusion needs at least one modality")
    return out


def low_rank_fusion(zs: Sequence[Array], factors: Sequence[Array], bias: Array) -> Array:
    """LMF's fusion: ``sum_r prod_m ([1; z_m] @ W_m[r]) + bias``.

    ``zs``: M arrays ``[B, d_m]``; ``factors``: M arrays ``W_m [r, d_m + 1, O]``; ``bias [O]``
    -> ``[B, O]``. This is Liu et al.'s Eq. (6) (their released code also learns one weight per
    rank; that is a reparametrisation, absorbed by any one factor, so we leave it out).
    """
    prod = None
    for z, w in zip(zs, factors, strict=True):
        z1 = jnp.concatenate([jnp.ones(z.shape[:-1] + (1,), z.dtype), z], axis=-1)
        term = jnp.einsum("bd,rdo->bro", z1, w.astype(z.dtype))
        prod = term if prod is None else prod * term
    if prod is None:
        raise ValueError("low_rank_fusion needs at least one modality")
    return jnp.einsum("bro->bo", prod) + bias.astype(prod.dtype)


def corruption_keep(key: Array, present: Array, rate: float) -> Array:
    """MDAE input corruption: which present modalities survive, ``bool [B, M]``.

    Each present modality is dropped independently with probability ``rate``; where that would
    drop every present modality of an example, the one with the largest draw is kept, so the
    autoencoder always sees at least one input (our choice: Ngiam et al. train on inputs with one
    modality zeroed, never on all-zero inputs). Deterministic given ``key``.
    """
    u = jax.random.uniform(key, present.shape)
    keep = present & (u >= rate)
    best = jax.nn.one_hot(jnp.argmax(jnp.where(present, u, -1.0), axis=-1), present.shape[-1],
                          dtype=bool)
    none_kept = ~jnp.any(keep, axis=-1, keepdims=True)
    return keep | (none_kept & best & present)


def reconstruction_loss(recons: Sequence[Array], targets: Sequence[Array], present: Array
                        ) -> Array:
    """Per-example MSE ``[B]`` (float32): for each modality the mean squared error over its
    features, averaged over the modalities present in the example (0 when none is present).

    ``recons`` / ``targets``: M arrays ``[B, D_m]``; ``present``: ``bool [B, M]``.
    """
    mse = jnp.stack([jnp.mean(jnp.square(r.astype(jnp.float32) - t.astype(jnp.float32)), -1)
                     for r, t in zip(recons, targets, strict=True)], axis=-1)
    w = present.astype(jnp.float32)
    return jnp.sum(mse * w, -1) / jnp.maximum(jnp.sum(w, -1), 1.0)


# --- shared module pieces -----------------------------------------------------------------------

class BaselineModule(nn.Module):
    """Fields and the encoder / personality / classifier pieces every baseline shares.

    Helper methods create submodules and are called from a subclass's compact ``__call__``.
    """

    num_classes: int
    modalities: Sequence[str] = ("audio", "text", "visual")
    use_personality: bool = True
    audio_sizes: Sequence[int] = (1024, 512, 256)
    text_sizes: Sequence[int] = (512, 384, 256)
    visual_sizes: Sequence[int] = (512, 384, 256)
    personality_sizes: Sequence[int] = (512, 256)
    classifier_sizes: Sequence[int] = (256,)
    dtype: Any = jnp.float32

    @property
    def used(self) -> tuple[str, ...]:
        """The used modalities in the canonical order (audio, text, visual)."""
        return check_modalities(self.modalities)

    def encoder_sizes(self, modality: str) -> tuple[int, ...]:
        return tuple({"audio": self.audio_sizes, "text": self.text_sizes,
                      "visual": self.visual_sizes}[modality])

    def encode(self, x: Array, present: Array, modality: str) -> Array:
        """``enc_<modality>(x)`` [..., d], zeroed where ``present`` is False (after encoding)."""
        h = MLP(self.encoder_sizes(modality), dtype=self.dtype, name=f"enc_{modality}")(x)
        return zero_absent(h, present)

    def classify(self, fused: Array, batch: dict[str, Array]) -> Array:
        """``[fused; E_p(target personality)]`` (with personality) -> classifier -> logits."""
        if self.use_personality:
            p = take_person(batch["personality"], batch["target_person"])
            fp = MLP(self.personality_sizes, dtype=self.dtype, name="enc_personality")(p)
            fused = jnp.concatenate([fused, fp.astype(fused.dtype)], axis=-1)
        logits = MLP((*self.classifier_sizes, self.num_classes), dtype=self.dtype,
                     name="classifier")(fused)
        return logits.astype(jnp.float32)

    def target_entry(self, batch: dict[str, Array], modality: str) -> tuple[Array, Array]:
        """Raw features ``[B, D]`` and presence ``[B]`` of the target (person, segment)."""
        tp, ts = batch["target_person"], batch["target_segment"]
        return (take_target(batch[modality], tp, ts),
                take_target(present_mask(batch, modality), tp, ts))


# --- MDL ----------------------------------------------------------------------------------------

class MDL(BaselineModule):
    """Early fusion of the target entry's encoded modalities (Table 3 "MDL" without, "MDL with
    Personality" with ``use_personality``)."""

    @nn.compact
    def __call__(self, batch: dict[str, Array], *, train: bool = False) -> dict[str, Array]:
        del train  # no dropout
        hs = [self.encode(*self.target_entry(batch, m), m) for m in self.used]
        return {"logits": self.classify(jnp.concatenate(hs, axis=-1), batch)}


# --- MDAE ---------------------------------------------------------------------------------------

class MDAE(BaselineModule):
    """Multimodal denoising autoencoder (Ngiam et al., 2011) on the target entry.

    In training each present modality is zeroed at the input with probability ``corrupt``
    (rng stream "dropout", see :func:`corruption_keep`); a dropped modality is then treated as
    absent (its encoding is zeroed too). The decoders reconstruct the CLEAN raw inputs of the
    present modalities from ``shared``; ``aux_loss`` [B] is :func:`reconstruction_loss`. The
    decoder of a modality mirrors its encoder: hidden sizes reversed, then the input width
    (audio 512-1024-Da, text / visual 384-512-D), ReLU between, linear output. ``shared`` is
    ``ReLU(Dense(shared_size))`` of the concatenated encodings (the paper gives no sizes).
    The loss weighting against the classification loss is the trainer's business.
    """

    corrupt: float = 0.3
    shared_size: int = 256

    @nn.compact
    def __call__(self, batch: dict[str, Array], *, train: bool = False) -> dict[str, Array]:
        entries = [self.target_entry(batch, m) for m in self.used]
        xs = [x for x, _ in entries]
        present = jnp.stack([p for _, p in entries], axis=-1)  # [B, M]
        keep = present
        if train and self.corrupt > 0:
            keep = corruption_keep(self.make_rng("dropout"), present, self.corrupt)
        hs = [self.encode(jnp.where(keep[:, i, None], x, jnp.zeros((), x.dtype)), keep[:, i], m)
              for i, (m, x) in enumerate(zip(self.used, xs, strict=True))]
        shared = nn.relu(nn.Dense(self.shared_size, dtype=self.dtype, name="shared")(
            jnp.concatenate(hs, axis=-1)))
        recons = [MLP((*self.encoder_sizes(m)[-2::-1], x.shape[-1]), dtype=self.dtype,
                      name=f"dec_{m}")(shared) for m, x in zip(self.used, xs, strict=True)]
        return {"logits": self.classify(shared, batch),
                "aux_loss": reconstruction_loss(recons, xs, present)}


# --- BiLSTM + TFN / LMF -------------------------------------------------------------------------

class BiLSTM(nn.Module):
    """M bidirectional masked LSTMs side by side over ``x [B, S, M, d]`` (separate weights per
    modality and direction), ``step_mask [B, S]`` -> ``[B, S, M, 2H]`` = [forward; backward].

    The backward pass runs the forward scan on the time-reversed sequence; padded steps keep the
    carry, so at a real step t the backward state has seen exactly the real steps t..S-1.
    """

    features: int = 128
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: Array, step_mask: Array) -> Array:
        fwd, _ = PerModalityLSTMs(self.features, self.dtype, name="fwd")(x, step_mask)
        bwd, _ = PerModalityLSTMs(self.features, self.dtype, name="bwd")(
            x[:, ::-1], step_mask[:, ::-1])
        return jnp.concatenate([fwd, bwd[:, ::-1]], axis=-1)


class SequenceFusionBase(BaselineModule):
    """The BiLSTM summaries shared by TFN and LMF."""

    lstm_features: int = 128

    def summaries(self, batch: dict[str, Array]) -> list[Array]:
        """``z_m [B, 2H]``: each used modality's BiLSTM output at the target segment, over the
        target person's encoded sequence (absent entries zero, padded segments masked)."""
        widths = {self.encoder_sizes(m)[-1] for m in self.used}
        if len(widths) != 1:  # the per-modality LSTMs run as one vmapped scan
            raise ValueError(f"BiLSTM baselines need equal encoder output sizes, got {widths}")
        tp = batch["target_person"]
        seq = jnp.stack([self.encode(take_person(batch[m], tp),
                                     take_person(present_mask(batch, m), tp), m)
                         for m in self.used], axis=2)  # [B, S, M, d]
        out = BiLSTM(self.lstm_features, self.dtype, name="bilstm")(seq, batch["segment_mask"])
        z = take_person(out, batch["target_segment"])  # axis 1 is S here: [B, M, 2H]
        return [z[:, i] for i in range(len(self.used))]


class BiLSTMTFN(SequenceFusionBase):
    """BiLSTM summaries -> Dense(tfn_size) per modality -> :func:`tensor_fusion` ->
    Dense(fusion_size), ReLU (+ personality) -> classifier.

    The projection to ``tfn_size`` (32, linear; our choice) keeps the outer product small:
    33^3 = 35937 inputs to the fusion Dense with three modalities (Zadeh et al. use 32-d audio and
    visual and 128-d language embeddings; with 256-d BiLSTM outputs the product would have
    257^3 = 17M entries).
    """

    tfn_size: int = 32
    fusion_size: int = 256

    @nn.compact
    def __call__(self, batch: dict[str, Array], *, train: bool = False) -> dict[str, Array]:
        del train
        zs = [nn.Dense(self.tfn_size, dtype=self.dtype, name=f"tfn_proj_{m}")(z)
              for m, z in zip(self.used, self.summaries(batch), strict=True)]
        fused = nn.relu(nn.Dense(self.fusion_size, dtype=self.dtype, name="post_fusion")(
            tensor_fusion(zs)))
        return {"logits": self.classify(fused, batch)}


class BiLSTMLMF(SequenceFusionBase):
    """BiLSTM summaries -> :func:`low_rank_fusion` (rank ``rank``, output ``fusion_size``), ReLU
    (+ personality) -> classifier.

    Parameters ``lmf_factor_<m>`` ``[rank, 2H + 1, fusion_size]`` (Xavier normal per rank, as
    Liu et al.'s code) and ``lmf_bias`` [fusion_size]. The ReLU after the fusion is our choice: LMF
    is the low-rank form of TFN's Dense over the outer product, so both baselines then share the
    same head.
    """

    rank: int = 4
    fusion_size: int = 256

    @nn.compact
    def __call__(self, batch: dict[str, Array], *, train: bool = False) -> dict[str, Array]:
        del train
        zs = self.summaries(batch)
        init = nn.initializers.xavier_normal(in_axis=-2, out_axis=-1, batch_axis=(0,))
        factors = [self.param(f"lmf_factor_{m}", init,
                              (self.rank, z.shape[-1] + 1, self.fusion_size), jnp.float32)
                   for m, z in zip(self.used, zs, strict=True)]
        bias = self.param("lmf_bias", nn.initializers.zeros, (self.fusion_size,), jnp.float32)
        zs = [z.astype(self.dtype) for z in zs]
        fused = nn.relu(low_rank_fusion(zs, factors, bias))
        return {"logits": self.classify(fused, batch)}
