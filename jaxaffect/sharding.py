"""Device mesh, partition rules and global batches.

The mesh has three named axes: `data` (pure data parallelism), `fsdp` (data parallelism whose
devices also split parameters and optimizer state) and `model` (tensor parallelism: devices
split the heads, feed-forward hidden units and vocabulary of the layers that name those axes).
The batch is split over `data` and `fsdp` and replicated over `model`. A parameter's dimension
named "heads", "mlp" or "vocab" by its module (`jaxaffect.nn.partitioning.param_axes`) is split
over `model`; then each large parameter is split over `fsdp` along its largest other divisible
dimension (so a parameter without model rules is plain FSDP). Optimizer-state leaves follow the
parameter at the end of their tree path. One device is the trivial 1 x 1 x 1 mesh.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec

from jaxaffect.nn import partitioning

MESH_AXES = ("data", "fsdp", "model")
DATA_AXES = ("data", "fsdp")
# Logical axis names (jaxaffect.nn.partitioning) -> mesh axes, for parameters and activations.
LOGICAL_AXIS_RULES: dict[str, Any] = {
    partitioning.BATCH: DATA_AXES, partitioning.HEADS: "model", partitioning.MLP: "model",
    partitioning.VOCAB: "model"}


def make_mesh(data: int = -1, fsdp: int = 1, devices: list | None = None, model: int = 1
              ) -> Mesh:
    """A (data, fsdp, model) mesh over all devices; -1 for one axis means 'the rest of the
    devices'. The model axis varies fastest, so a model group is consecutive devices (one
    process's, in multi-process runs: each process then holds distinct batch rows)."""
    devices = list(devices) if devices is not None else jax.devices()
    n = len(devices)
    sizes = {"data": data, "fsdp": fsdp, "model": model}
    rest = [k for k, v in sizes.items() if v == -1]
    if len(rest) > 1:
        raise ValueError(f"mesh: at most one of {', '.join('mesh.' + k for k in rest)} may "
                         "be -1")
    if rest:
        known = int(np.prod([v for v in sizes.values() if v != -1]))
        if n % known:
            fixed = " x ".join(f"mesh.{k}={v}" for k, v in sizes.items() if v != -1)
            raise ValueError(f"mesh: {n} devices are not divisible by {fixed}")
        sizes[rest[0]] = n // known
    data, fsdp, model = sizes["data"], sizes["fsdp"], sizes["model"]
    if data * fsdp * model != n:
        shown = f"data={data} x fsdp={fsdp}" + (f" x model={model}" if model != 1 else "")
        raise ValueError(f"mesh: {shown} != {n} devices")
    # Auto axes: shardings are given explicitly at jit boundaries and propagated inside.
    mesh = jax.make_mesh((data, fsdp, model), MESH_AXES, axis_types=(AxisType.Auto,) * 3,
                         devices=devices)
    owners = np.vectorize(lambda d: d.process_index)(mesh.devices)
    if model > 1 and np.any(owners != owners[..., :1]):
        raise ValueError(f"mesh: mesh.model={model} spans processes; it must divide the "
                         f"devices of one process ({jax.local_device_count()})")
    return mesh


def replicated(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, PartitionSpec())


def batch_sharding(mesh: Mesh) -> NamedSharding:
    """Leading (batch) dimension split over the data axes (replicated over `model`)."""
    return NamedSharding(mesh, PartitionSpec(DATA_AXES))


def leaf_partition(shape: tuple[int, ...], fsdp_size: int, min_size: int,
                   axis_names: tuple[str | None, ...] | None = None, model_size: int = 1
                   ) -> PartitionSpec:
    """The first dimension whose logical name maps to `model` (and that `model_size` divides)
    goes on `model`; then the largest other dimension divisible by the fsdp axis goes on `fsdp`
    (leaves under `min_size` elements are not split over fsdp)."""
    spec: list[Any] = [None] * len(shape)
    if model_size > 1 and axis_names:
        for i, name in enumerate(axis_names):
            if LOGICAL_AXIS_RULES.get(name) == "model" and shape[i] % model_size == 0:
                spec[i] = "model"
                break
    if fsdp_size > 1 and int(np.prod(shape, dtype=np.int64)) >= min_size:
        for i in sorted(range(len(shape)), key=lambda i: -shape[i]):
            if spec[i] is None and shape[i] % fsdp_size == 0:
                spec[i] = "fsdp"
                break
    return PartitionSpec(*spec) if any(spec) else PartitionSpec()


def _axis_names_at(path: tuple, shape: tuple[int, ...],
                   param_axes: Mapping[tuple, tuple[str | None, ...]]) -> Any:
    """The names of the parameter whose key path ends `path` (longest match, same rank)."""
    for i in range(len(path)):
        names = param_axes.get(tuple(path[i:]))
        if names is not None and len(names) == len(shape):
            return names
    return None


def tree_shardings(abstract_tree: Any, mesh: Mesh, min_size: int = 2**12,
                   param_axes: Mapping[tuple, tuple[str | None, ...]] | None = None) -> Any:
    """NamedShardings for a pytree of arrays/ShapeDtypeStructs (parameters, optimizer state).

    `param_axes`: {parameter key path: logical axis names} (`partitioning.split_param_axes`);
    a leaf whose key path ends with such a path (the parameter itself, or its optimizer
    moments) gets that parameter's model rule.
    """
    fsdp_size, model_size = mesh.shape["fsdp"], mesh.shape.get("model", 1)
    param_axes = param_axes or {}

    def one(path, leaf):
        shape = tuple(getattr(leaf, "shape", ()))
        names = _axis_names_at(tuple(path), shape, param_axes) if param_axes else None
        return NamedSharding(mesh, leaf_partition(shape, fsdp_size, min_size, names,
                                                  model_size))

    return jax.tree_util.tree_map_with_path(one, abstract_tree)


def global_batch(local_batch: Mapping[str, Any], mesh: Mesh) -> dict:
    """Host-local numpy batch (this process's rows) -> global jax.Arrays split over the batch."""
    sharding = batch_sharding(mesh)

    def one(x):
        x = np.asarray(x)
        global_shape = (x.shape[0] * jax.process_count(),) + x.shape[1:]
        return jax.make_array_from_process_local_data(sharding, x, global_shape)

    return jax.tree_util.tree_map(one, dict(local_batch))


def local_rows(x: jax.Array) -> np.ndarray:
    """The rows of a batch-sharded global array that belong to this process, in order."""
    if jax.process_count() == 1:
        return np.asarray(jax.device_get(x))
    shards = sorted(x.addressable_shards, key=lambda s: s.index[0].start or 0)
    seen, rows = set(), []
    for s in shards:
        start = s.index[0].start or 0
        if start in seen:  # replicated over a non-batch axis
            continue
        seen.add(start)
        rows.append(np.asarray(s.data))
    return np.concatenate(rows, axis=0)


def gather_rows(x: np.ndarray) -> np.ndarray:
    """Concatenates host-local rows from every process (identity on one process)."""
    if jax.process_count() == 1:
        return x
    return np.asarray(multihost_utils.process_allgather(x, tiled=True))


def bytes_per_device(tree: Any) -> int:
    """Bytes one device holds for a pytree of sharded jax.Arrays (the largest over devices)."""
    per_device: dict[Any, int] = {}
    for leaf in jax.tree_util.tree_leaves(tree):
        for shard in leaf.addressable_shards:
            per_device[shard.device] = per_device.get(shard.device, 0) + shard.data.nbytes
    return max(per_device.values()) if per_device else 0


BARRIER_TIMEOUT_MS = 30 * 60 * 1000
_barrier_count = [0]  # barrier ids are unique per process run; every process counts alike


def meet_after_compiling(step: Any, name: str) -> Any:
    """`step` (a jitted function) for multi-process runs: its first call compiles ahead, waits
    until every process has compiled (a barrier of the distributed coordination service,
    30 min), then runs; later calls with the same argument shapes reuse that executable.

    Why: the first cross-process collective of a program sets up its CPU (Gloo) communicator
    with a fixed 30 s wait for the other processes; a process still compiling on a loaded
    machine made that wait expire ("Gloo context initialization failed: DEADLINE_EXCEEDED").
    One process returns `step` unchanged.
    """
    if jax.process_count() == 1:
        return step
    compiled: dict[Any, Any] = {}

    def call(*args):
        key = jax.tree_util.tree_structure(args), tuple(
            (getattr(x, "shape", None), str(getattr(x, "dtype", type(x))))
            for x in jax.tree_util.tree_leaves(args))
        if key not in compiled:
            compiled[key] = step.lower(*args).compile()
            from jax._src import distributed  # the coordination client (no public accessor)

            _barrier_count[0] += 1
            distributed.global_state.client.wait_at_barrier(
                f"jaxaffect_{name}_{_barrier_count[0]}", BARRIER_TIMEOUT_MS)
        return compiled[key](*args)

    return call
