"""Device mesh, partition rules and global batches.

The mesh has two named axes: `data` (pure data parallelism) and `fsdp` (data parallelism whose
devices also split parameters and optimizer state). The batch is split over both axes; each
large parameter is split over `fsdp` along its largest divisible dimension. One device is the
trivial 1 x 1 mesh.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec

DATA_AXES = ("data", "fsdp")


def make_mesh(data: int = -1, fsdp: int = 1, devices: list | None = None) -> Mesh:
    """A (data, fsdp) mesh over all devices; -1 for one axis means 'the rest of the devices'."""
    devices = list(devices) if devices is not None else jax.devices()
    n = len(devices)
    if data == -1 and fsdp == -1:
        raise ValueError("mesh: at most one of mesh.data and mesh.fsdp may be -1")
    if data == -1:
        if n % fsdp:
            raise ValueError(f"mesh: {n} devices are not divisible by mesh.fsdp={fsdp}")
        data = n // fsdp
    if fsdp == -1:
        if n % data:
            raise ValueError(f"mesh: {n} devices are not divisible by mesh.data={data}")
        fsdp = n // data
    if data * fsdp != n:
        raise ValueError(f"mesh: data={data} x fsdp={fsdp} != {n} devices")
    # Auto axes: shardings are given explicitly at jit boundaries and propagated inside.
    return jax.make_mesh((data, fsdp), DATA_AXES, axis_types=(AxisType.Auto, AxisType.Auto),
                         devices=devices)


def replicated(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, PartitionSpec())


def batch_sharding(mesh: Mesh) -> NamedSharding:
    """Leading (batch) dimension split over every device."""
    return NamedSharding(mesh, PartitionSpec(DATA_AXES))


def leaf_partition(shape: tuple[int, ...], fsdp_size: int, min_size: int) -> PartitionSpec:
    """Shards the largest dimension divisible by the fsdp axis; small leaves stay replicated."""
    if fsdp_size <= 1 or int(np.prod(shape, dtype=np.int64)) < min_size:
        return PartitionSpec()
    order = sorted(range(len(shape)), key=lambda i: -shape[i])
    for i in order:
        if shape[i] % fsdp_size == 0:
            spec: list[Any] = [None] * len(shape)
            spec[i] = "fsdp"
            return PartitionSpec(*spec)
    return PartitionSpec()


def tree_shardings(abstract_tree: Any, mesh: Mesh, min_size: int = 2**12) -> Any:
    """NamedShardings for a pytree of arrays/ShapeDtypeStructs (parameters, optimizer state)."""
    fsdp_size = mesh.shape["fsdp"]

    def one(leaf):
        shape = tuple(getattr(leaf, "shape", ()))
        return NamedSharding(mesh, leaf_partition(shape, fsdp_size, min_size))

    return jax.tree_util.tree_map(one, abstract_tree)


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
