"""Logical axis names of parameters and activations, for tensor (model) parallelism.

A module names the axes of the parameters it owns where it creates them (:func:`param_axes`
around the initializer) and, optionally, of its large activations (:func:`constrain`). The
names are logical (:data:`EMBED`, :data:`HEADS`, :data:`MLP`, :data:`VOCAB`, :data:`BATCH`,
:data:`LAYERS`); the trainer maps them to mesh axes (``jaxaffect.sharding.LOGICAL_AXIS_RULES``),
so a module never names a mesh.

Both are inert by default: an initializer wrapped by :func:`param_axes` returns the plain array
and :func:`constrain` returns its input, so ``init`` and ``apply`` give the same trees and the
same numbers as without them.

* Under :func:`recording_param_axes`, wrapped initializers return ``flax.linen.
  LogicallyPartitioned`` boxes; ``jax.eval_shape`` of an init inside it, then
  :func:`split_param_axes`, gives the abstract parameters and ``{path: names}``.
  (Layers stacked by ``nn.scan`` prepend :data:`LAYERS`; see ``stack_layers``.)
* Under :func:`activation_sharding` (entered inside a traced function), :func:`constrain` is a
  ``with_sharding_constraint`` to the mapped mesh axes; unnamed axes, and axes whose size the
  mesh axes do not divide, are left to the compiler.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import flax.linen as nn
import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

EMBED = "embed"  # the model width d
HEADS = "heads"  # attention heads (the H * dh axis of Q/K/V projections, or H itself)
MLP = "mlp"  # the hidden axis of a feed-forward block
VOCAB = "vocab"  # a word vocabulary (embedding rows, word logits)
BATCH = "batch"  # the example axis of activations
LAYERS = "layers"  # the stacked-layers axis added by nn.scan

AxisNames = tuple[str | None, ...]
_RECORDING: contextvars.ContextVar[bool] = contextvars.ContextVar("param_axes", default=False)
_ACTIVATIONS: contextvars.ContextVar[tuple[Mesh, Mapping[str, Any]] | None] = (
    contextvars.ContextVar("activation_sharding", default=None))


def param_axes(init: Callable[..., Any], names: Sequence[str | None]) -> Callable[..., Any]:
    """``init`` whose value carries the logical ``names`` (one per dimension) while recording
    (all-None names record nothing)."""
    names = tuple(names)
    named = any(n is not None for n in names)

    def init_with_axes(*args: Any, **kwargs: Any) -> Any:
        value = init(*args, **kwargs)
        if named and _RECORDING.get():
            if len(names) != np.ndim(value):
                raise ValueError(f"axis names {names} for a parameter of shape "
                                 f"{np.shape(value)}")
            return nn.LogicallyPartitioned(value, names)
        return value

    return init_with_axes


@contextlib.contextmanager
def recording_param_axes() -> Iterator[None]:
    """Initializers wrapped by :func:`param_axes` return boxed values inside this block."""
    token = _RECORDING.set(True)
    try:
        yield
    finally:
        _RECORDING.reset(token)


def split_param_axes(tree: Any) -> tuple[Any, dict[tuple, AxisNames]]:
    """``(tree without boxes, {key path of each boxed leaf: its axis names})``."""
    is_box = lambda x: isinstance(x, nn.LogicallyPartitioned)  # noqa: E731
    names: dict[tuple, AxisNames] = {}
    for path, leaf in jax.tree_util.tree_leaves_with_path(tree, is_leaf=is_box):
        if is_box(leaf):
            names[tuple(path)] = tuple(leaf.names)
    plain = jax.tree_util.tree_map(lambda x: x.value if is_box(x) else x, tree, is_leaf=is_box)
    return plain, names


@contextlib.contextmanager
def activation_sharding(mesh: Mesh, rules: Mapping[str, Any]) -> Iterator[None]:
    """:func:`constrain` maps logical names through ``rules`` ({name: mesh axis or axes})
    onto ``mesh`` inside this block."""
    token = _ACTIVATIONS.set((mesh, dict(rules)))
    try:
        yield
    finally:
        _ACTIVATIONS.reset(token)


def mesh_spec(shape: Sequence[int], names: Sequence[str | None], mesh: Mesh,
              rules: Mapping[str, Any]) -> PartitionSpec:
    """The PartitionSpec of ``names`` under ``rules``: a dimension gets its mesh axes when
    their total size divides it and no earlier dimension took them."""
    spec: list[Any] = []
    used: set[str] = set()
    for size, name in zip(shape, names):
        axes = rules.get(name) if name is not None else None
        group = (axes,) if isinstance(axes, str) else tuple(axes or ())
        group = tuple(a for a in group if mesh.shape[a] > 1 and a not in used)
        count = int(np.prod([mesh.shape[a] for a in group], dtype=np.int64))
        if not group or size % count:
            spec.append(None)
            continue
        used.update(group)
        spec.append(group[0] if len(group) == 1 else group)
    return PartitionSpec(*spec)


def batch_axes(ndim: int, *last: str | None) -> AxisNames:
    """``(BATCH, None, ..., *last)`` for an activation of ``ndim`` dimensions."""
    return (BATCH,) + (None,) * (ndim - 1 - len(last)) + tuple(last)


def constrain(x: jax.Array, names: Sequence[str | None], *,
              replicate_unnamed: bool = False) -> jax.Array:
    """``x`` with its dimensions sharded by logical ``names`` (under
    :func:`activation_sharding`; otherwise ``x`` unchanged). Other dimensions are left to the
    compiler, or replicated with ``replicate_unnamed`` (e.g. a parameter gathered over fsdp
    before a lookup)."""
    active = _ACTIVATIONS.get()
    if active is None:
        return x
    if len(names) != x.ndim:
        raise ValueError(f"axis names {tuple(names)} for an activation of shape {x.shape}")
    mesh, rules = active
    free = None if replicate_unnamed else PartitionSpec.UNCONSTRAINED
    spec = [free if axes is None else axes
            for axes in mesh_spec(x.shape, names, mesh, rules)]
    return jax.lax.with_sharding_constraint(x, NamedSharding(mesh, PartitionSpec(*spec)))
