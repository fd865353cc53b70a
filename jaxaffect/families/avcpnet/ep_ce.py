"""EP-CE loss (emotion-polarity enhanced cross entropy, Eq. 9) and AV-CPNet's multi-task sum
(Eq. 10). Pure functions of arrays, float32, jit-safe.

Eq. 9: ``L_ep = 1/N sum_i (1 + gamma_{ep(y_i)} s_i) CE_i`` with ``s_i = 1`` when the polarity of
the prediction ``argmax_c logits_ic`` differs from the polarity ``ep(y_i)`` of the label, else 0.
``gammas = (gamma_pos, gamma_neu, gamma_neg)`` indexed by the polarity ids of
:mod:`jaxaffect.families.avcpnet.emotions` (0 positive, 1 neutral, 2 negative); the paper's best
setting (Table 9) is 0.5 : 0.5 : 0.5, and 0 : 0 : 0 is plain cross entropy.

Choices: the factor ``1 + gamma s`` depends on an argmax, so it carries no gradient -- it
re-weights the example's cross entropy (as the equation reads). The mean over N becomes a weighted
mean over examples with ``weights`` (padding rows get weight 0; the batch's weighted mean is 0
when every weight is 0), the convention of :func:`jaxaffect.losses.softmax_cross_entropy`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np

Array = jax.Array
HEADS = ("fused", "visual", "audio")


def polarity_mismatch(logits: Array, labels: Array, polarity: Array) -> Array:
    """``s_i`` of Eq. 9 as float32 ``[B]``: 1 where ``polarity[argmax logits_i]`` differs from
    ``polarity[labels_i]``."""
    polarity = jnp.asarray(polarity, jnp.int32)
    pred = jnp.argmax(logits, axis=-1)
    return (polarity[pred] != polarity[labels.astype(jnp.int32)]).astype(jnp.float32)


def ep_ce_loss(logits: Array, labels: Array, polarity: Array | np.ndarray,
               gammas: Sequence[float] | Array, weights: Array | None = None) -> Array:
    """Weighted-mean EP-CE loss (Eq. 9), float32 scalar.

    Args:
      logits: ``[B, C]`` unnormalised scores (any float dtype; computed in float32).
      labels: ``[B]`` int class ids.
      polarity: ``[C]`` int polarity id of each class (``emotions.polarity_of``).
      gammas: ``(gamma_pos, gamma_neu, gamma_neg)`` penalty coefficients (may be traced).
      weights: optional ``[B]`` per-example weights (0 = ignore the example).
    """
    logits = logits.astype(jnp.float32)
    labels = labels.astype(jnp.int32)
    log_probs = jax.nn.log_softmax(logits, axis=-1)
    ce = -jnp.take_along_axis(log_probs, labels[:, None], axis=-1)[:, 0]
    gamma = jnp.asarray(gammas, jnp.float32)[jnp.asarray(polarity, jnp.int32)[labels]]
    factor = 1.0 + gamma * polarity_mismatch(logits, labels, polarity)
    w = jnp.ones_like(ce) if weights is None else weights.astype(jnp.float32)
    total = jnp.sum(w)
    return jnp.where(total > 0, jnp.sum(w * factor * ce) / jnp.where(total > 0, total, 1.0), 0.0)


def multitask_loss(outputs: Mapping[str, Array], labels: Array, polarity: Array | np.ndarray,
                   gammas: Sequence[float] | Array, weights: Array | None = None,
                   audio_weights: Array | None = None) -> tuple[Array, dict[str, Array]]:
    """Eq. 10: ``L_sum = L_ep^f + L_ep^v + L_ep^a`` over the heads present in ``outputs``
    (``"fused"``, ``"visual"``, ``"audio"``; a single-branch model has one).

    ``audio_weights [B]`` multiplies ``weights`` in the audio head's term only: a clip without an
    audio stream has all-zero audio features, so its audio logits are the head's bias alone; its
    cross entropy there would only pull that bias towards the label prior and dilute the term's
    mean with clips that carry no audio evidence. Pass ``has_audio`` to drop them from ``L_ep^a``
    (they still count in the fused and visual terms).

    Returns ``(loss, {"loss_<head>": term, ...})``.
    """
    present = [h for h in HEADS if h in outputs]
    if not present:
        raise ValueError(f"outputs has none of the heads {HEADS}: {sorted(outputs)}")
    scalars = {}
    for head in present:
        w = weights
        if head == "audio" and audio_weights is not None:
            aw = audio_weights.astype(jnp.float32)
            w = aw if weights is None else weights.astype(jnp.float32) * aw
        scalars[f"loss_{head}"] = ep_ce_loss(outputs[head], labels, polarity, gammas, w)
    return sum(scalars.values()), scalars
