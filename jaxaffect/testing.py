"""Helpers for testing models as pure functions (used by every family's tests)."""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np


def random_variables(module: nn.Module, *args: Any, seed: int = 0) -> Any:
    """Variables with the module's structure (from ``eval_shape``, no compile), random values.

    Kernels ``[..., fan_in, fan_out]`` get std ``1/sqrt(fan_in)``; vectors and scalars 0.3, so
    every parameter (biases and norms included) takes part in a parity test.
    """
    rng = np.random.default_rng(seed)
    shapes = jax.eval_shape(module.init, jax.random.key(0), *args)

    def fill(a):
        std = 1.0 / np.sqrt(a.shape[-2]) if a.ndim >= 2 else 0.3
        return jnp.asarray(rng.standard_normal(a.shape) * std, a.dtype)

    return jax.tree_util.tree_map(fill, shapes)
