"""TAM's time-sync-comment pretraining tasks (Sec. 4.2, Eqs. 7-10) as pure functions.

* Masking (Table 3): :func:`mask_emotional_words` (the paper's strategy: every lexicon word of
  a comment becomes ``[#M]``) and :func:`mask_random` (the 10/20/30 % ablations).
* Emotional word prediction (Eq. 7): :func:`word_prediction_loss`.
* Appearing-time prediction (Eqs. 8-9): :func:`appearing_time_logits`,
  :func:`appearing_time_loss`.
* Eq. 10 with Table 4's task ablations: :func:`pretraining_loss`.

All losses are float32 whatever the compute dtype.

Choices where the paper is silent or ambiguous (also in the README table):

* Masked words become ``[#M]`` only (no BERT-style 10 % random / 10 % unchanged).
* Random masking masks exactly ``max(1, round_half_up(rate * n))`` of a comment's ``n``
  maskable words (uniformly chosen without replacement), not an independent coin per word:
  "randomly masking 10 % of the words" of ~10-word comments would otherwise leave a third of
  them with no target. Padding and special tokens are never masked.
* Eq. 7 divides by the number of comments ``|T|`` and each comment has "the m-th word"; when
  a comment has several masked words we average the cross-entropy over all masked positions
  of the batch (equal to Eq. 7 when each comment has one).
* Eq. 8's softmax runs over the T real segments ``k = 1..T`` only: the learnable-token
  position (index 0 of the CTM output) is dropped and padded segments get probability 0.
  Segment indices are 0-based over the real segments (index i = CTM position i + 1).
* Eq. 8 has no temperature; we scale ``g_hat . f_tilde`` by ``1 / sqrt(d)`` (as in attention),
  otherwise the logits of a 768-d model saturate the softmax at initialisation.
* Eqs. 7 and 9 average over the whole dataset; we average over the batch's comments.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp

from jaxaffect.nn.attention import NEG_LOGIT

Array = jax.Array
TASKS: tuple[str, ...] = ("word", "time")


def _special(token_ids: Array, special_ids: Sequence[int]) -> Array:
    if not special_ids:
        return jnp.zeros(token_ids.shape, bool)
    return jnp.isin(token_ids, jnp.asarray(list(special_ids), token_ids.dtype))


def mask_emotional_words(token_ids: Array, emotional: Array, mask_id: int, *,
                         valid: Array | None = None, special_ids: Sequence[int] = ()
                         ) -> tuple[Array, Array]:
    """Replace every emotional word by ``mask_id`` (Sec. 4.2; Table 3 "emotional words").

    ``emotional`` (bool, shape of ``token_ids``) flags lexicon words; ``valid`` (optional,
    same shape) marks real words, and ids in ``special_ids`` are never masked.
    Returns ``(masked_ids, target_mask)``; the targets are the original ``token_ids``.
    """
    target = emotional.astype(bool) & ~_special(token_ids, special_ids)
    if valid is not None:
        target = target & valid.astype(bool)
    return jnp.where(target, jnp.asarray(mask_id, token_ids.dtype), token_ids), target


def num_random_masks(num_maskable: Array, rate: float) -> Array:
    """How many of ``num_maskable`` words :func:`mask_random` masks: ``max(1, round(rate*n))``
    (round half up) for ``n > 0`` and ``rate > 0``, else 0."""
    n = jnp.asarray(num_maskable, jnp.int32)
    k = jnp.floor(jnp.float32(rate) * n.astype(jnp.float32) + 0.5).astype(jnp.int32)
    k = jnp.clip(k, 1 if rate > 0 else 0, n)
    return jnp.where(n > 0, k, 0)


def mask_random(token_ids: Array, valid: Array, rate: float, rng: Array, mask_id: int, *,
                special_ids: Sequence[int] = ()) -> tuple[Array, Array]:
    """Mask :func:`num_random_masks` uniformly chosen maskable words per comment (Table 3).

    ``token_ids [..., W]``; ``valid [..., W]`` marks real words; ids in ``special_ids`` (e.g.
    the start token) are never masked. Deterministic given ``rng``: the words with the
    smallest ``jax.random.uniform(rng, token_ids.shape)`` draws are masked.
    Returns ``(masked_ids, target_mask)``.
    """
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"rate must be in [0, 1], got {rate}")
    maskable = valid.astype(bool) & ~_special(token_ids, special_ids)
    k = num_random_masks(maskable.sum(axis=-1), rate)
    scores = jnp.where(maskable, jax.random.uniform(rng, token_ids.shape), 2.0)
    rank = jnp.argsort(jnp.argsort(scores, axis=-1), axis=-1)
    target = maskable & (rank < k[..., None])
    return jnp.where(target, jnp.asarray(mask_id, token_ids.dtype), token_ids), target


def _masked_mean(values: Array, mask: Array) -> Array:
    mask = mask.astype(jnp.float32)
    return (values * mask).sum() / jnp.maximum(mask.sum(), 1.0)


def word_prediction_loss(logits: Array, targets: Array, target_mask: Array) -> Array:
    """Eq. 7: cross-entropy of ``logits [..., W, V]`` against ``targets [..., W]`` averaged
    over the positions where ``target_mask`` is True (0 when there are none). Float32."""
    logp = jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1)
    nll = -jnp.take_along_axis(logp, targets[..., None].astype(jnp.int32), axis=-1)[..., 0]
    return _masked_mean(nll, target_mask)


def appearing_time_logits(time_query: Array, time_keys: Array, video_mask: Array) -> Array:
    """Eq. 8 logits ``g_hat . f_tilde^t / sqrt(d)`` over the T segments.

    ``time_query [B, N, d]`` (g_hat), ``time_keys [B, T+1, d]`` (f_tilde for the CTM output,
    position 0 = learnable token), ``video_mask [B, T+1]``. Returns float32 ``[B, N, T]``:
    position 0 is dropped, padded segments are ``NEG_LOGIT`` (probability exactly 0).
    """
    q = time_query.astype(jnp.float32)
    k = time_keys[:, 1:].astype(jnp.float32)
    logits = jnp.einsum("bnd,btd->bnt", q, k) * (q.shape[-1] ** -0.5)
    return jnp.where(video_mask[:, None, 1:].astype(bool), logits, NEG_LOGIT)


def appearing_time_loss(logits: Array, segment_index: Array, valid: Array) -> Array:
    """Eq. 9: cross-entropy of ``logits [B, N, T]`` against ``segment_index [B, N]`` (0-based
    over real segments) averaged over the comments where ``valid [B, N]`` is True. Float32.

    The target segment must be a real (unpadded) one.
    """
    logp = jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1)
    nll = -jnp.take_along_axis(logp, segment_index[..., None].astype(jnp.int32), axis=-1)[..., 0]
    return _masked_mean(nll, valid)


def _accuracy(logits: Array, targets: Array, mask: Array) -> Array:
    hit = (jnp.argmax(logits, axis=-1) == targets).astype(jnp.float32)
    return _masked_mean(hit, mask)


def pretraining_loss(outputs: Mapping[str, Array], batch: Mapping[str, Array], *,
                     lambda_w: float = 1.0, lambda_t: float = 1.0,
                     tasks: Sequence[str] = TASKS) -> tuple[Array, dict[str, Any]]:
    """Eq. 10 ``lambda_w L_wp + lambda_t L_tp`` over the tasks in ``tasks`` (Table 4).

    ``outputs``: :class:`~jaxaffect.families.tam.tsc_decoder.TAMPretrainModel` outputs
    (``word_logits [B, N, W, V]``, ``time_logits [B, N, T]``). ``batch``: for "word",
    ``target_ids [B, N, W]`` (the unmasked ids) and ``target_mask [B, N, W]``; for "time",
    ``segment_index [B, N]`` and ``comment_mask [B, N]``. Only the keys of the chosen tasks
    are read. Returns ``(loss, aux)``; ``aux`` holds ``loss`` and, per present task, its loss,
    argmax accuracy and target count (``word_*`` / ``time_*``).
    """
    tasks = tuple(tasks)
    unknown = set(tasks) - set(TASKS)
    if unknown or not tasks:
        raise ValueError(f"tasks must be a non-empty subset of {TASKS}, got {tasks}")
    loss = jnp.zeros((), jnp.float32)
    aux: dict[str, Any] = {}
    if "word" in tasks:
        logits, targets, mask = (outputs["word_logits"], batch["target_ids"],
                                 batch["target_mask"])
        lw = word_prediction_loss(logits, targets, mask)
        aux.update(word_loss=lw, word_accuracy=_accuracy(logits, targets, mask),
                   word_count=mask.astype(jnp.int32).sum())
        loss = loss + lambda_w * lw
    if "time" in tasks:
        logits, targets, mask = (outputs["time_logits"], batch["segment_index"],
                                 batch["comment_mask"])
        lt = appearing_time_loss(logits, targets, mask)
        aux.update(time_loss=lt, time_accuracy=_accuracy(logits, targets, mask),
                   time_count=mask.astype(jnp.int32).sum())
        loss = loss + lambda_t * lt
    aux["loss"] = loss
    return loss, aux
