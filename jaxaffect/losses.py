"""Losses: pure functions of arrays, computed in float32 (jit-safe, no Python side effects)."""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

Array = jax.Array


def softmax_cross_entropy(logits: Array, labels: Array, *, weights: Array | None = None,
                          class_weights: Array | None = None) -> Array:
    """Weighted mean softmax cross-entropy over examples.

    Args:
      logits: [B, C] unnormalised scores (any float dtype; computed in float32).
      labels: [B] int class ids in [0, C).
      weights: optional [B] per-example weights, e.g. 0 for padded examples.
      class_weights: optional [C] per-class weights (e.g. :func:`inverse_frequency_weights`).

    Returns:
      ``sum_b w_b * CE_b / sum_b w_b`` with ``w_b = weights[b] * class_weights[labels[b]]`` --
      the weighted-mean convention of PyTorch's ``CrossEntropyLoss(weight=...)``; 0 when every
      weight is 0.
    """
    logits = logits.astype(jnp.float32)
    labels = labels.astype(jnp.int32)
    log_probs = jax.nn.log_softmax(logits, axis=-1)
    nll = -jnp.take_along_axis(log_probs, labels[:, None], axis=-1)[:, 0]
    w = jnp.ones_like(nll) if weights is None else weights.astype(jnp.float32)
    if class_weights is not None:
        w = w * jnp.asarray(class_weights, jnp.float32)[labels]
    total = jnp.sum(w)
    return jnp.where(total > 0, jnp.sum(w * nll) / jnp.where(total > 0, total, 1.0), 0.0)


def perr_loss(logits: Array, modality_logits: Array, labels: Array, *,
              weights: Array | None = None, class_weights: Array | None = None,
              modality_names: Sequence[str] | None = None) -> tuple[Array, dict[str, Array]]:
    """Eq. 5 of the PERR paper: ``CE(y_fused) + sum_m CE(y_m)``.

    Args:
      logits: [B, C] fused logits (Eq. 3).
      modality_logits: [B, M, C] per-modality logits (Eq. 4).
      labels, weights, class_weights: as in :func:`softmax_cross_entropy`.
      modality_names: optional M names for the per-modality entries of the aux dict.

    Returns:
      ``(loss, aux)`` with aux keys ``loss``, ``ce_fused``, ``ce_modalities`` (the sum over
      modalities) and ``ce_modality/<name or index>`` per modality (all float32 scalars).
    """
    ce = lambda lg: softmax_cross_entropy(lg, labels, weights=weights,
                                          class_weights=class_weights)
    fused = ce(logits)
    num_modalities = modality_logits.shape[1]
    names = (list(modality_names) if modality_names is not None
             else [str(i) for i in range(num_modalities)])
    if len(names) != num_modalities:
        raise ValueError(f"{len(names)} modality names for {num_modalities} modalities")
    per_mod = [ce(modality_logits[:, m]) for m in range(num_modalities)]
    mod_sum = sum(per_mod, jnp.zeros((), jnp.float32))
    loss = fused + mod_sum
    aux = {"loss": loss, "ce_fused": fused, "ce_modalities": mod_sum}
    aux.update({f"ce_modality/{n}": v for n, v in zip(names, per_mod, strict=True)})
    return loss, aux


def inverse_frequency_weights(counts: Sequence[float] | np.ndarray) -> np.ndarray:
    """Per-class weights ``N / (C * count_c)`` (sklearn's "balanced"); 0 for unseen classes.

    With these weights every class with examples contributes equally to a weighted CE.
    """
    counts = np.asarray(counts, np.float64)
    if counts.ndim != 1 or np.any(counts < 0):
        raise ValueError(f"counts must be a 1-D array of non-negative numbers, got {counts!r}")
    total, num_classes = counts.sum(), counts.shape[0]
    with np.errstate(divide="ignore"):
        w = np.where(counts > 0, total / (num_classes * np.maximum(counts, 1e-12)), 0.0)
    return w.astype(np.float32)
