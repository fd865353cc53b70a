"""Shared neural-network pieces: one attention core, transformer blocks, recurrent cells."""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp

COMPUTE_DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}


def compute_dtype(name: str) -> Any:
    """The jnp dtype of a config's `model.dtype` ("float32" or "bfloat16"); params stay
    float32 either way."""
    if name not in COMPUTE_DTYPES:
        raise ValueError(f"model.dtype={name!r}: one of {sorted(COMPUTE_DTYPES)}")
    return COMPUTE_DTYPES[name]
