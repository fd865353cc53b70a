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
"""

from __future__ import annotations

import os
import struct
from typing import Any

import google_crc32c
import numpy as np

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
                import grain

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
