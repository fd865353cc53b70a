"""The PERR training loss (Eq. 5): fused cross-entropy plus one per modality."""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp

from jaxaffect.losses import softmax_cross_entropy

Array = jax.Array


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
