"""Whole splits of a prepared TFDS directory as numpy examples (read without tensorflow).

For the datasets that fit in host memory (VideoEmotion-8, Ekman-6, LIRIS-ACCEDE, MovieGraphs
clips, small pretraining corpora): every example of a split is decoded once with the dataset's
decoder (`DatasetFiles.decoder`: what TFDS's `features.deserialize_example_np` gives), text
becomes `str`, and the result is cached per process.
Large corpora stream through a record pipeline instead (e.g. a family's grain pipeline).
"""

from __future__ import annotations

import functools
import os
from typing import Any

import numpy as np

from jaxaffect.data.records import builder_dir_for, dataset_files, read_records

__all__ = ["builder_dir_for", "load_metadata", "read_examples", "split_names", "split_size"]


def _to_python(value: Any) -> Any:
    """bytes -> str, arrays of bytes -> arrays of str, nested dicts recursively."""
    if isinstance(value, dict):
        return {k: _to_python(v) for k, v in value.items()}
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, np.ndarray) and value.dtype.kind in ("S", "O"):
        out = np.empty(value.shape, dtype=object)
        flat = [v.decode("utf-8") if isinstance(v, bytes) else v for v in value.ravel()]
        out.ravel()[:] = flat
        return out.astype(str) if out.size else np.zeros(value.shape, dtype="<U1")
    return value


def split_names(builder_dir: str) -> list[str]:
    """The TFDS splits of a prepared directory (e.g. ["test", "train"])."""
    return sorted(dataset_files(os.fspath(builder_dir)).filepaths)


def split_size(builder_dir: str, split: str) -> int:
    files = dataset_files(os.fspath(builder_dir))
    if split not in files.filepaths:
        raise KeyError(f"{builder_dir}: no split {split!r} (has {sorted(files.filepaths)})")
    return files.num_examples(split)


def load_metadata(builder_dir: str) -> dict[str, Any]:
    """DatasetInfo.metadata of the build (what the builder recorded, e.g. "stream_dims")."""
    return dict(dataset_files(os.fspath(builder_dir)).metadata)


@functools.lru_cache(maxsize=16)
def _read_cached(builder_dir: str, split: str) -> tuple[dict[str, Any], ...]:
    files = dataset_files(builder_dir)
    if split not in files.filepaths:
        raise KeyError(f"{builder_dir}: no split {split!r} (has {sorted(files.filepaths)})")
    decode = files.decoder
    return tuple(_to_python(decode(r)) for r in read_records(files, split))


def read_examples(builder_dir: str, split: str) -> list[dict[str, Any]]:
    """Every example of TFDS split `split`, decoded, in record order (cached per process).

    The returned dicts are shared with the cache: treat them as read-only.
    """
    return list(_read_cached(os.fspath(builder_dir), split))
