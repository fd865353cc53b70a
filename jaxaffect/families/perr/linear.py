"""Dense layers whose kernel gradient is a plain ``x^T @ dy`` matmul on XLA:CPU.

For ``y = x @ W`` autodiff gives ``dW = einsum("nk,nh->kh", x, dy)``, a contraction over the
rows, the major axis of both operands. XLA:CPU lays that dot out with both operands transposed
(it also copies ``dy`` into ``[h, n]``), which ran at about half the rate of a forward matmul of
the same size on the benchmark machine (``benchmarks/smta_train_step.py``). The custom VJP
below transposes the narrower of ``x`` and ``dy`` explicitly, behind optimisation barriers so
that XLA does not fold the transposes back into the dot, and computes ``dW`` as an ordinary
row-major matmul. The forward pass and ``dx = dy @ W^T`` are unchanged.

:class:`Dense` declares exactly ``nn.Dense``'s parameters (:class:`DenseParams`), so a model
may use either at the same path.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
from flax.linen.linear import default_kernel_init
from jax.custom_derivatives import SymbolicZero

Array = jax.Array


def _rows(x: Array, grouped: bool) -> Array:
    """``[..., k] -> [N, k]``, or ``[G, ..., k] -> [G, N, k]`` when ``grouped``."""
    return x.reshape((x.shape[0], -1, x.shape[-1]) if grouped else (-1, x.shape[-1]))


def _apply(x: Array, kernel: Array) -> Array:
    y = jnp.matmul(_rows(x, kernel.ndim == 3), kernel)
    return y.reshape(x.shape[:-1] + kernel.shape[-1:])


def _weight_grad(x: Array, dy: Array) -> Array:
    """``x^T @ dy`` over the rows (``x [.., N, k]``, ``dy [.., N, h]``) as a row-major matmul:
    the narrower operand is transposed explicitly (behind barriers, so XLA keeps the layout)."""
    barrier, t = jax.lax.optimization_barrier, lambda a: jnp.swapaxes(a, -1, -2)
    if x.shape[-1] <= dy.shape[-1]:
        return jnp.matmul(barrier(t(x)), dy)
    return t(barrier(jnp.matmul(barrier(t(dy)), x)))


@jax.custom_vjp
def _matmul(x: Array, kernel: Array) -> Array:
    return _apply(x, kernel)


def _flag(value: bool) -> tuple | None:
    """A static flag as pytree structure (residuals hold only arrays and structure)."""
    return () if value else None


def _matmul_fwd(x: Any, kernel: Any) -> tuple[Array, tuple]:
    # symbolic_zeros: x.perturbed is False when nothing differentiates x (e.g. data)
    return _apply(x.value, kernel.value), (x.value, kernel.value, _flag(x.perturbed),
                                           _flag(kernel.perturbed))


def _matmul_bwd(res: tuple, dy: Any) -> tuple[Array | None, Array | None]:
    x, kernel, want_dx, want_dw = res
    want_dx, want_dw = want_dx is not None, want_dw is not None
    if isinstance(dy, SymbolicZero):
        return None, None
    grouped = kernel.ndim == 3
    dx = _apply(dy, jnp.swapaxes(kernel, -1, -2)) if want_dx else None
    if not want_dw:
        return dx, None
    return dx, _weight_grad(_rows(x, grouped), _rows(dy, grouped)).astype(kernel.dtype)


_matmul.defvjp(_matmul_fwd, _matmul_bwd, symbolic_zeros=True)


def linear(x: Array, kernel: Array, dtype: Any = jnp.float32) -> Array:
    """``x @ kernel`` in ``dtype`` (as ``nn.Dense(dtype=...)`` computes it).

    ``kernel`` is ``[k, h]`` (``x [..., k]``) or a group of kernels ``[G, k, h]`` applied to
    ``x [G, ..., k]`` group by group. Gradients are those of the plain matmul.
    """
    return _matmul(x.astype(dtype), kernel.astype(dtype))


class DenseParams(nn.Module):
    """Declares the parameters ``nn.Dense`` declares (names, shapes, initialisers) and returns
    them as ``(kernel [in, out], bias [out] or None)``, without applying them."""

    in_features: int
    features: int
    use_bias: bool = True
    bias_init: Callable[..., Array] = nn.initializers.zeros_init()

    @nn.compact
    def __call__(self) -> tuple[Array, Array | None]:
        kernel = self.param("kernel", default_kernel_init, (self.in_features, self.features),
                            jnp.float32)
        if not self.use_bias:
            return kernel, None
        return kernel, self.param("bias", self.bias_init, (self.features,), jnp.float32)


class Dense(nn.Module):
    """``nn.Dense(features, dtype=dtype, param_dtype=float32)`` on :func:`linear`: the same
    parameters and outputs."""

    features: int
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: Array) -> Array:
        kernel = self.param("kernel", default_kernel_init, (x.shape[-1], self.features),
                            jnp.float32)
        bias = self.param("bias", nn.initializers.zeros_init(), (self.features,), jnp.float32)
        return linear(x, kernel, self.dtype) + bias.astype(self.dtype)
