"""grain input pipeline over a prepared ERATO TFDS directory (reads without tensorflow).

Data flow: record files (TFRecord or ArrayRecord, as built, read by position through
`jaxaffect.data.record_source.RecordSource`) -> split selection (validation is carved from the
builder's train split, `jaxaffect.data.splits`) -> this host's records of each global batch
(`jaxaffect.data.record_source.record_batches`, `jaxaffect.data.hosts` semantics) -> decode
with the dataset's `DatasetFiles.decoder` -> `pad_or_crop_batch` (numpy), one grain element per
batch. Training shuffles the whole split per epoch (both formats).

Splits: "train", "validation", "test", "train_full". When the build has no validation split
(ERATO has train/test only), "validation" is `validation_fraction` of the train split,
stratified by fine label and chosen by a hash of the clip id (independent of the seed, so model
selection is stable across seeds); "train" is the rest, "train_full" all of the train split.

`shuffle=True` gives a training iterator (shuffled, `num_epochs` passes or forever, the last
incomplete batch dropped). `shuffle=False` gives an evaluation iterator: record order, every
example exactly once per pass, the last batch of a pass filled with `valid=False` zero examples
so that all batches have the same shape (and all hosts the same number of batches).

The iterator of the returned dataset is a grain `DatasetIterator` (`get_state`/`set_state`,
works with `grain.checkpoint.CheckpointSave`/`CheckpointRestore`).
"""

from __future__ import annotations

import dataclasses
import json
import os
import threading
import uuid
from typing import Any

import grain
import numpy as np
from etils import epath

from jaxaffect.data.hosts import resolve_hosts
from jaxaffect.data.record_source import RecordSource, record_batches
from jaxaffect.data.records import DatasetFiles, builder_dir_for, dataset_files, read_records
from jaxaffect.data.splits import stratified_hash_pick, validation_count
from jaxaffect.families.perr.erato_format import COARSE_LABELS, FINE_LABELS
from jaxaffect.families.perr.transforms import pad_or_crop, pad_or_crop_batch

__all__ = [
    "SPLITS", "builder_dir_for", "make_dataset", "split_size", "stream_dims", "class_counts",
    "pad_or_crop", "validation_clip_ids",
]

SPLITS: tuple[str, ...] = ("train", "validation", "test", "train_full")
INDEX_FILE = "jaxaffect_split_index.json"
_INDEX_VERSION = 1
_NUM_CLASSES = {"label": len(FINE_LABELS), "coarse_label": len(COARSE_LABELS)}


def stream_dims(builder_dir: str) -> dict[str, int]:
    """Feature size d_s of every stream, as recorded at build time (or read from an example)."""
    files = dataset_files(os.fspath(builder_dir))
    dims = files.metadata.get("stream_dims")
    if dims:
        return {s: int(d) for s, d in dims.items()}
    for split in files.filepaths:
        for record in read_records(files, split):
            example = files.decoder(record)
            return {s: int(x.shape[1]) for s, x in example["streams"].items()}
    raise ValueError(f"{builder_dir}: dataset has no examples")


# ----------------------------------------------------------------------------- split index

_index_lock = threading.Lock()
_memory_index: dict[str, dict[str, Any]] = {}


def _load_index(files: DatasetFiles) -> dict[str, Any]:
    """The cached index {splits: {tfds_split: {clip_id, label, coarse_label}}, validation: {}}."""
    key = files.builder_dir
    if key in _memory_index:
        return _memory_index[key]
    index: dict[str, Any] = {"version": _INDEX_VERSION, "splits": {}, "validation": {}}
    path = epath.Path(files.builder_dir) / INDEX_FILE
    try:
        loaded = json.loads(path.read_text())
        if loaded.get("version") == _INDEX_VERSION:
            # Keep only split entries that still match the build.
            for split, entry in loaded.get("splits", {}).items():
                if split in files.shard_lengths and (
                        len(entry["clip_id"]) == files.num_examples(split)):
                    index["splits"][split] = entry
            if set(index["splits"]) == set(loaded.get("splits", {})):
                index["validation"] = loaded.get("validation", {})
    except (OSError, ValueError, KeyError, TypeError):
        pass
    _memory_index[key] = index
    return index


def _save_index(files: DatasetFiles, index: dict[str, Any]) -> None:
    """Writes the index next to the data; a read-only directory keeps it in memory only."""
    path = epath.Path(files.builder_dir) / INDEX_FILE
    tmp = path.with_name(f".{INDEX_FILE}.{uuid.uuid4().hex}.tmp")
    try:
        tmp.write_text(json.dumps(index))
        tmp.replace(path)
    except OSError:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass


def _split_labels(files: DatasetFiles, tfds_split: str) -> dict[str, Any]:
    """clip_id list and label arrays of a tfds split in canonical order (one pass, cached)."""
    with _index_lock:
        index = _load_index(files)
        entry = index["splits"].get(tfds_split)
        if entry is None:
            entry = {"clip_id": [], "label": [], "coarse_label": []}
            for record in read_records(files, tfds_split):
                ex = files.decoder(record)
                entry["clip_id"].append(ex["clip_id"].decode("utf-8"))
                entry["label"].append(int(ex["label"]))
                entry["coarse_label"].append(int(ex["coarse_label"]))
            index["splits"][tfds_split] = entry
            _save_index(files, index)
    return {"clip_id": entry["clip_id"],
            "label": np.asarray(entry["label"], np.int64),
            "coarse_label": np.asarray(entry["coarse_label"], np.int64)}


def _validation_positions(files: DatasetFiles, fraction: float) -> np.ndarray:
    """Positions (in the train split) of the carved validation examples, sorted."""
    count = validation_count(fraction)  # raises unless 0 <= fraction < 1
    labels = _split_labels(files, "train")
    ids, fine = labels["clip_id"], labels["label"]
    key = repr(float(fraction))
    with _index_lock:
        index = _load_index(files)
        cached = index["validation"].get(key)
    if cached is not None:
        chosen = set(cached)
    else:
        # Stratified by fine class, chosen by a hash of the clip id, so the choice depends on
        # neither seed nor the clip naming scheme (`jaxaffect.data.splits`).
        chosen = stratified_hash_pick(ids, fine, count)
        with _index_lock:
            index["validation"][key] = sorted(chosen)
            _save_index(files, index)
    return np.asarray([i for i, c in enumerate(ids) if c in chosen], np.int64)


def validation_clip_ids(builder_dir: str, validation_fraction: float = 0.1) -> list[str]:
    """The clip ids of the "validation" split, sorted."""
    files = dataset_files(os.fspath(builder_dir))
    tfds_split, positions = _split_positions(files, "validation", validation_fraction)
    ids = _split_labels(files, tfds_split)["clip_id"]
    return sorted(ids[i] for i in positions)


def _split_positions(files: DatasetFiles, split: str, fraction: float) -> tuple[str, np.ndarray]:
    """(tfds split, sorted canonical positions of the examples of `split` in it)."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; one of {', '.join(SPLITS)}")
    has_validation = "validation" in files.shard_lengths
    if split == "test" or (split == "validation" and has_validation):
        return split, np.arange(files.num_examples(split))
    n_train = files.num_examples("train")
    if split == "train_full" or (split == "train" and has_validation):
        return "train", np.arange(n_train)
    val = _validation_positions(files, fraction)
    if split == "validation":
        return "train", val
    return "train", np.setdiff1d(np.arange(n_train), val)


def split_size(builder_dir: str, split: str, validation_fraction: float = 0.1) -> int:
    """Number of examples of `split` (over all hosts)."""
    files = dataset_files(os.fspath(builder_dir))
    return int(_split_positions(files, split, validation_fraction)[1].shape[0])


def class_counts(builder_dir: str, split: str, label_key: str = "label",
                 validation_fraction: float = 0.1) -> np.ndarray:
    """Examples per class of `label_key` ("label" or "coarse_label") in `split`, int64 [C]."""
    if label_key not in _NUM_CLASSES:
        raise ValueError(f"label_key must be one of {sorted(_NUM_CLASSES)}, got {label_key!r}")
    files = dataset_files(os.fspath(builder_dir))
    tfds_split, positions = _split_positions(files, split, validation_fraction)
    labels = _split_labels(files, tfds_split)[label_key][positions]
    return np.bincount(labels, minlength=_NUM_CLASSES[label_key]).astype(np.int64)


# ----------------------------------------------------------------------------- grain pieces

@dataclasses.dataclass(frozen=True)
class _DecodeBatch:
    """This host's records of one batch (None: padding) -> the padded numpy batch."""

    decoder: Any  # DatasetFiles.decoder
    dims: dict[str, int]
    max_steps: int

    def __call__(self, records: list[bytes | None]) -> dict[str, Any]:
        return pad_or_crop_batch([None if r is None else self.decoder(r) for r in records],
                                 self.dims, self.max_steps)


def make_dataset(builder_dir: str, split: str, *, batch_size: int, max_steps: int,
                 shuffle: bool, seed: int = 0, num_epochs: int | None = 1,
                 validation_fraction: float = 0.1, process_index: int | None = None,
                 process_count: int | None = None) -> grain.IterDataset:
    """Batches of this host for `split` (see the module docstring for the semantics).

    `batch_size` is the global batch size; each host yields batch_size // process_count
    examples per batch. Training: the split is shuffled as one global stream of records and
    host h reads and decodes rows [h * b, (h + 1) * b) of every global batch (b = batch_size /
    P), so the global batches do not depend on the process count (`jaxaffect.data.hosts`).
    Evaluation: host h takes positions h, h + P, ... and its last batch is padded with
    `valid=False` examples.
    """
    builder_dir = os.fspath(builder_dir)
    files = dataset_files(builder_dir)
    process_index, process_count = resolve_hosts(process_index, process_count)
    tfds_split, positions = _split_positions(files, split, validation_fraction)
    if positions.shape[0] == 0:
        raise ValueError(f"{builder_dir}: split {split!r} is empty "
                         f"(validation_fraction={validation_fraction})")
    decode = _DecodeBatch(files.decoder, stream_dims(builder_dir), max_steps)
    try:
        ds = record_batches(RecordSource(builder_dir, tfds_split), positions,
                            batch_size=batch_size, train=shuffle, seed=seed,
                            num_epochs=num_epochs, process_index=process_index,
                            process_count=process_count, batch_fn=decode)
    except ValueError as e:
        raise ValueError(f"{builder_dir}, split {split!r}: {e}") from None
    return ds.to_iter_dataset(grain.ReadOptions(num_threads=1, prefetch_buffer_size=2))
