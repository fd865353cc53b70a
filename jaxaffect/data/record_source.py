"""Random access to the serialized examples of one split of a prepared build, either format.

Datasets too large for host memory (raw video) are read record by record. ArrayRecord files
are random access by design; TFRecord files are not, so `RecordSource` indexes them once: it
walks the record headers (8-byte little-endian length + 4-byte length CRC, then the data and
its 4-byte CRC) and keeps (file, offset, length) per record, without reading the data. The
data CRC is checked on every read, so a damaged shard fails loudly naming the file.

A `RecordSource` is a sequence (`len`, integer indexing) in the split's canonical order
(shard, record) — the order `jaxaffect.data.records.read_records` yields — so it can stand in
for an in-memory list of examples in `jaxaffect.data.memory_dataset.make_batches`. It pickles
without open files (grain worker processes reopen them lazily) and reads with positional reads,
so threads may share it.

`record_batches` reads a whole batch per grain element: element i is this host's rows of global
batch i (`jaxaffect.data.hosts` semantics), read from any such sequence and turned into a batch
by one call of a batch function, so that per-element costs (grain's bookkeeping, one shuffle
lookup, one decode call) are paid once per batch rather than once per example, and a batch
function may decode and pad a batch at once.
"""

from __future__ import annotations

import os
import struct
import sys
from collections.abc import Callable, Sequence
from typing import Any

import google_crc32c
import grain
import numpy as np

from jaxaffect.data.hosts import host_share
from jaxaffect.data.records import dataset_files

_HEADER = 12  # uint64 length + uint32 masked CRC of the length
_FOOTER = 4  # uint32 masked CRC of the data


def _masked_crc32c(data: bytes) -> int:
    """TFRecord's masked CRC-32C of `data` (Castagnoli CRC, rotated right by 15, plus a
    constant)."""
    crc = google_crc32c.value(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def index_tfrecord(path: str) -> tuple[np.ndarray, np.ndarray]:
    """(offsets of the data, lengths) of every record in a TFRecord file, from its headers."""
    offsets, lengths = [], []
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        pos = 0
        while pos < size:
            header = f.read(_HEADER)
            if len(header) != _HEADER:
                raise ValueError(f"{path}: truncated record header at byte {pos}")
            (length,) = struct.unpack("<Q", header[:8])
            start = pos + _HEADER
            pos = start + length + _FOOTER
            if pos > size:
                raise ValueError(f"{path}: record at byte {start - _HEADER} runs past the end "
                                 "of the file (truncated shard)")
            offsets.append(start)
            lengths.append(length)
            f.seek(pos)
    return np.asarray(offsets, np.int64), np.asarray(lengths, np.int64)


class RecordSource:
    """The serialized examples of `tfds_split` of the build in `builder_dir`, by position."""

    def __init__(self, builder_dir: str, tfds_split: str, *, check_crc: bool = True):
        files = dataset_files(os.fspath(builder_dir))
        if tfds_split not in files.filepaths:
            raise KeyError(f"{builder_dir}: no split {tfds_split!r} "
                           f"(has {sorted(files.filepaths)})")
        self.builder_dir = os.fspath(builder_dir)
        self.split = tfds_split
        self.file_format = files.file_format
        self.paths = files.filepaths[tfds_split]
        self.check_crc = check_crc
        if self.file_format == "tfrecord":
            index = [index_tfrecord(p) for p in self.paths]
            self._file = np.concatenate([np.full(len(o), i, np.int32)
                                         for i, (o, _) in enumerate(index)] or [np.zeros(0)])
            self._offset = np.concatenate([o for o, _ in index] or [np.zeros(0)])
            self._length = np.concatenate([n for _, n in index] or [np.zeros(0)])
            self._size = int(self._offset.size)
        else:
            self._size = files.num_examples(tfds_split)
        self._handles: dict[int, Any] = {}
        self._array_source: Any = None

    def __len__(self) -> int:
        return self._size

    def __del__(self) -> None:
        for fd in getattr(self, "_handles", {}).values():
            try:
                os.close(fd)
            except OSError:
                pass

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_handles"], state["_array_source"] = {}, None
        return state

    def __getitem__(self, position: int) -> bytes:
        position = int(position)
        if not 0 <= position < self._size:
            raise IndexError(f"record {position} of {self._size}")
        if self.file_format != "tfrecord":
            if self._array_source is None:
                self._array_source = grain.sources.ArrayRecordDataSource(list(self.paths))
            return self._array_source[position]
        i = int(self._file[position])
        fd = self._handles.get(i)
        if fd is None:
            fd = self._handles[i] = os.open(self.paths[i], os.O_RDONLY)
        length = int(self._length[position])
        # A positional read: no shared file position, so grain's reader threads may read
        # records of one shard concurrently.
        blob = os.pread(fd, length + _FOOTER, int(self._offset[position]))
        data = blob[:length]
        if len(blob) != length + _FOOTER:
            raise ValueError(f"{self.paths[i]}: record {position} is truncated")
        if self.check_crc and struct.unpack("<I", blob[length:])[0] != _masked_crc32c(data):
            raise ValueError(f"{self.paths[i]}: record at byte {int(self._offset[position])} "
                             "fails its CRC check (damaged shard)")
        return data


class _BatchReader:
    """Global batch index -> `batch_fn` of this host's records of it (see `record_batches`)."""

    def __init__(self, records: Sequence[Any], positions: np.ndarray, *, train: bool,
                 seed: int, offset: int, local_batch: int, global_batch: int,
                 batch_fn: Callable[[list[Any]], Any]):
        self.records, self.positions, self.train, self.seed = records, positions, train, seed
        self.offset, self.local_batch, self.global_batch = offset, local_batch, global_batch
        self.batch_fn = batch_fn
        self._epoch_order: tuple[int, np.ndarray] = (-1, positions)

    def _epoch(self, epoch: int) -> np.ndarray:
        """The positions in the order of `epoch` (training: a permutation from (seed, epoch))."""
        if not self.train:
            return self.positions
        if self._epoch_order[0] != epoch:
            order = np.random.default_rng([self.seed, epoch]).permutation(self.positions.size)
            self._epoch_order = (epoch, self.positions[order])
        return self._epoch_order[1]

    def __call__(self, index: int) -> Any:
        first = int(index) * self.global_batch + self.offset
        epoch, start = divmod(first, self.positions.size)
        positions = self._epoch(epoch)[start:start + self.local_batch].tolist()
        if len(positions) < self.local_batch:  # the batch runs into the next epoch
            positions += self._epoch(epoch + 1)[:self.local_batch - len(positions)].tolist()
        return self.batch_fn([None if p < 0 else self.records[p] for p in positions])


def record_batches(records: Sequence[Any], positions: np.ndarray | int, *, batch_size: int,
                   train: bool, seed: int = 0, num_epochs: int | None = 1, process_index: int,
                   process_count: int, batch_fn: Callable[[list[Any]], Any]) -> grain.MapDataset:
    """Element i: `batch_fn(records)` for this host's rows of global batch i.

    Training (`train=True`): the split (`positions` into `records`) is one global stream, each
    epoch a permutation drawn from (seed, epoch), cut into global batches of `batch_size` (a
    batch may span two epochs; what is left after the last whole batch is dropped), and host h
    of P gets rows [h * b, (h + 1) * b) of each (b = batch_size / P): the batches depend on the
    seed and the split only, not on the process count. `num_epochs=None` repeats forever.
    Evaluation: host h gets positions h, h + P, ... in order, in batches of b, the last filled
    with `None` rows (padding: `batch_fn` turns them into invalid examples), `num_epochs` times.
    Raises the ValueErrors of `jaxaffect.data.hosts.host_share` (bad batch size, empty split).
    A `grain.MapDataset` over batch indices: checkpointable, and grain worker processes
    (`mp_prefetch`) take whole batches in turn; picklable when `records` and `batch_fn` are.
    """
    share = host_share(positions, batch_size=batch_size, train=train,
                       process_index=process_index, process_count=process_count,
                       num_epochs=num_epochs)
    if train:
        stream, offset, step = share.positions, process_index * share.local_batch, batch_size
    else:
        stream = np.concatenate([share.positions, np.full(share.num_pad, -1, np.int64)])
        offset, step = 0, share.local_batch
    length = sys.maxsize if num_epochs is None else stream.size * num_epochs // step
    reader = _BatchReader(records, stream, train=train, seed=seed, offset=offset,
                          local_batch=share.local_batch, global_batch=step, batch_fn=batch_fn)
    return grain.MapDataset.range(length).map(reader)
