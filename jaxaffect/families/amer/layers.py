"""Pieces every MEmoR model shares: the modality names, MLP encoders and target gathering.

Batch layout (see `jaxaffect.families.amer.batches`): per-entry streams ``[B, P, S, D]`` over
persons P and segments S, presence flags ``[B, P, S]``, personality ``[B, P, Dp]``, and the
target ``(target_person, target_segment)`` of each example.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

MODALITIES: tuple[str, ...] = ("audio", "text", "visual")

Array = jax.Array


def check_modalities(modalities: Sequence[str]) -> tuple[str, ...]:
    """`modalities` in the canonical order (audio, text, visual); refuses unknown or none."""
    unknown = sorted(set(modalities) - set(MODALITIES))
    if unknown or not modalities:
        raise ValueError(f"modalities {tuple(modalities)}: a non-empty subset of {MODALITIES}")
    return tuple(m for m in MODALITIES if m in modalities)


class MLP(nn.Module):
    """Dense layers of `sizes` with ReLU between them and none after the last (the encoders of
    the authors' code end without an activation). Submodules are ``layers_<i>``."""

    sizes: Sequence[int]
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: Array) -> Array:
        for i, size in enumerate(self.sizes):
            x = nn.Dense(size, dtype=self.dtype, name=f"layers_{i}")(x)
            if i < len(self.sizes) - 1:
                x = nn.relu(x)
        return x


def take_person(x: Array, person: Array) -> Array:
    """``x [B, P, ...]`` at ``person [B]`` -> ``[B, ...]``."""
    idx = person.reshape((-1,) + (1,) * (x.ndim - 1)).astype(jnp.int32)
    return jnp.take_along_axis(x, idx, axis=1)[:, 0]


def take_target(x: Array, person: Array, segment: Array) -> Array:
    """``x [B, P, S, ...]`` at ``(person [B], segment [B])`` -> ``[B, ...]``."""
    return take_person(take_person(x, person), segment)
