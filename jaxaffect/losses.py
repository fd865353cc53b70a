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
