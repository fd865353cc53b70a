"""Which examples each host (process) reads, and how evaluation batches are padded.

One implementation for every pipeline (record files and in-memory examples): the global batch
is split evenly over P processes; host h takes positions h, h + P, h + 2P, ... of the split.
For training every host keeps floor(N / P) examples, so all hosts run the same number of steps;
for evaluation every example comes exactly once and the last batch of each host is filled with
padding so that all hosts run the same number of equally shaped batches.
"""

from __future__ import annotations

import dataclasses

import numpy as np


@dataclasses.dataclass(frozen=True)
class HostShare:
    positions: np.ndarray  # int64 positions (into the split) this host reads, in order
    local_batch: int  # examples per batch on this host
    num_pad: int  # padding examples appended for evaluation (0 for training)


def resolve_hosts(process_index: int | None, process_count: int | None) -> tuple[int, int]:
    """(process_index, process_count), from jax when not given."""
    if process_index is None or process_count is None:
        import jax  # imported here so that reading data alone does not start jax

        process_index = jax.process_index() if process_index is None else process_index
        process_count = jax.process_count() if process_count is None else process_count
    if not 0 <= process_index < process_count:
        raise ValueError(f"process_index={process_index} not in [0, {process_count})")
    return process_index, process_count


def host_share(positions: np.ndarray | int, *, batch_size: int, train: bool,
               process_index: int, process_count: int, num_epochs: int | None = 1) -> HostShare:
    """This host's part of a split of `positions` (or of range(n) for an int n).

    Raises ValueError for a batch size that is not a positive multiple of the process count,
    a bad process index, num_epochs < 1, an empty split, or (training) fewer examples per host
    than one batch.
    """
    positions = np.arange(positions) if isinstance(positions, (int, np.integer)) else (
        np.asarray(positions, np.int64))
    if batch_size <= 0 or batch_size % process_count:
        raise ValueError(f"global batch_size={batch_size} must be a positive multiple of "
                         f"process_count={process_count}")
    if not 0 <= process_index < process_count:
        raise ValueError(f"process_index={process_index} not in [0, {process_count})")
    if num_epochs is not None and num_epochs < 1:
        raise ValueError(f"num_epochs must be None or >= 1, got {num_epochs}")
    total = int(positions.shape[0])
    if total == 0:
        raise ValueError("the split has no examples")
    local_batch = batch_size // process_count
    host = positions[process_index::process_count]
    if train:
        host = host[: total // process_count]
        if host.size < local_batch:
            raise ValueError(f"{host.size} examples per host, fewer than one batch of "
                             f"{local_batch}")
        return HostShare(host, local_batch, 0)
    per_host = -(-total // process_count)
    num_pad = -(-per_host // local_batch) * local_batch - int(host.size)
    return HostShare(host, local_batch, num_pad)
