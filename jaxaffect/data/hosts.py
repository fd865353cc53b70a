"""Which examples each host (process) reads, and how evaluation batches are padded.

One implementation for every pipeline (record files and in-memory examples).

Training: the sequence of global batches is a function of the seed and the dataset only. The
whole split is shuffled (and randomly transformed) as one global stream, cut into global
batches of `batch_size`, and host h of P takes rows [h * B/P, (h + 1) * B/P) of every global
batch (`HostView`). So 1, 2 or 4 processes, with any number of devices, train on the same
global batches in the same order, and a per-example random transform draws the same numbers.

Evaluation: every example comes exactly once: host h takes positions h, h + P, h + 2P, ... and
its last batch is filled with padding, so that all hosts run the same number of equally shaped
batches (metrics are computed over the gathered split, so the order does not matter).
"""

from __future__ import annotations

import dataclasses

import grain
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

    Training: every host reads the whole split as one global stream (`positions` are returned
    as they are; `HostView` picks this host's rows of each global batch). Evaluation: host h
    gets positions h, h + P, ... and `num_pad` padding examples that even out the batches.
    Raises ValueError for a batch size that is not a positive multiple of the process count,
    a bad process index, num_epochs < 1, an empty split, or (training) fewer examples than one
    global batch.
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
    if train:
        if total < batch_size:
            raise ValueError(f"{total} examples, fewer than one batch of {batch_size}")
        return HostShare(positions, local_batch, 0)
    host = positions[process_index::process_count]
    per_host = -(-total // process_count)
    num_pad = -(-per_host // local_batch) * local_batch - int(host.size)
    return HostShare(host, local_batch, num_pad)


class HostView(grain.MapDataset):
    """This host's rows of every global batch of `parent` (see the module docstring).

    Element j of the view is element (j // b) * B + h * b + j % b of the parent (B global and
    b = B / P local batch size); the last incomplete global batch is dropped. Batching the view
    by b gives exactly this host's part of each global batch.
    """

    def __init__(self, parent: grain.MapDataset, *, batch_size: int, process_index: int,
                 process_count: int):
        super().__init__(parent)
        if batch_size <= 0 or batch_size % process_count:
            raise ValueError(f"global batch_size={batch_size} must be a positive multiple of "
                             f"process_count={process_count}")
        self._global, self._local = batch_size, batch_size // process_count
        self._offset = process_index * self._local
        self._length = (len(parent) // batch_size) * self._local

    def __len__(self) -> int:
        return self._length

    def _parent_index(self, index: int) -> int:
        epoch, index = divmod(index, self._length)  # grain may index past one pass
        batch, row = divmod(index, self._local)
        return epoch * len(self._parent) + batch * self._global + self._offset + row

    def __getitem__(self, index):
        if isinstance(index, slice):
            return self.slice(index)
        return self._parent[self._parent_index(index)]

    def __str__(self) -> str:
        return (f"HostView(global_batch={self._global}, local_batch={self._local}, "
                f"offset={self._offset})")
