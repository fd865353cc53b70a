"""Pure-numpy helpers for decoded examples, shared by every family: fixed-length views of
variable-length sequences, and text values as `str`."""

from __future__ import annotations

from typing import Any

import numpy as np


def crop_indices(num_steps: int, max_steps: int) -> np.ndarray:
    """Indices of the steps kept from a clip of `num_steps` steps.

    Clips no longer than `max_steps` keep every step. Longer clips keep `max_steps` steps spread
    uniformly over the whole clip, first and last step included, so the model sees the whole
    clip rather than only its beginning: index t is t * (num_steps - 1) / (max_steps - 1)
    rounded half up (the points of np.linspace(0, num_steps - 1, max_steps), computed exactly in
    integers so that no platform rounding can change them). They are strictly increasing.
    """
    if max_steps <= 0:
        raise ValueError(f"max_steps must be positive, got {max_steps}")
    if num_steps <= max_steps:
        return np.arange(num_steps)
    if max_steps == 1:
        return np.zeros(1, np.int64)
    t = np.arange(max_steps, dtype=np.int64)
    return (2 * t * (num_steps - 1) + (max_steps - 1)) // (2 * (max_steps - 1))


def as_text(value: Any) -> str:
    """A decoded text value (bytes, a 0-d array, or anything printable) as `str`."""
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, np.ndarray):
        return as_text(value.item())
    return str(value)
