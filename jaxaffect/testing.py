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


def numpy_cross_entropy(logits: np.ndarray, labels: np.ndarray, weights: np.ndarray | None = None,
                        class_weights: np.ndarray | None = None) -> float:
    """Weighted-mean softmax cross-entropy in float64 numpy: the reference for loss tests."""
    logits = logits.astype(np.float64)
    lse = np.log(np.exp(logits - logits.max(1, keepdims=True)).sum(1)) + logits.max(1)
    nll = lse - logits[np.arange(len(labels)), labels]
    w = np.ones(len(labels)) if weights is None else weights.astype(np.float64)
    if class_weights is not None:
        w = w * class_weights[labels]
    return float((w * nll).sum() / w.sum())


def random_logits(b: int = 6, m: int = 5, c: int = 5, seed: int = 0
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(fused logits [b, c], per-modality logits [b, m, c], labels [b]) for loss tests."""
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(b, c)).astype(np.float32) * 3,
            rng.normal(size=(b, m, c)).astype(np.float32) * 3,
            rng.integers(0, c, size=b).astype(np.int32))


def numpy_sigmoid(x: Any) -> np.ndarray:
    """The logistic function in float64 numpy (the reference for score-based tests)."""
    return 1.0 / (1.0 + np.exp(-np.asarray(x, np.float64)))


def eager_and_jitted(fn: Any, *args: Any, **kwargs: Any) -> tuple[Any, Any]:
    """`fn`'s results eager and under jit: positional arguments and array keywords are traced,
    other keywords (strings, numbers) stay static."""
    eager = fn(*args, **kwargs)
    arrays = {k: v for k, v in kwargs.items() if isinstance(v, jax.Array)}
    static = {k: v for k, v in kwargs.items() if k not in arrays}
    jitted = jax.jit(lambda a, kw: fn(*a, **kw, **static))(args, arrays)
    return eager, jitted
