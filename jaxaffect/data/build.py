"""Builds a TFDS dataset from a user's manual_dir (`jaxaffect build`), plus synthetic manual_dirs.

Builders live in `tfds_builders/<name>/`; `_REGISTRY` maps a dataset name to its builder class
and to a cheap check of the manual_dir that runs before TFDS starts (so a wrong path gives an
error naming the file rather than a TFDS assertion).
"""

from __future__ import annotations

import dataclasses
import importlib
import os
from collections.abc import Callable, Mapping

import numpy as np
from etils import epath

from jaxaffect.data import erato_format as ef


@dataclasses.dataclass(frozen=True)
class _Entry:
    builder: str  # "module:Class"
    check_manual_dir: Callable[[str], None]


def _check_erato(manual_dir: str) -> None:
    # Raises EratoFormatError naming annotations.csv (missing directory, header, labels, ...).
    # Feature files are validated one by one while the builder writes the examples.
    ef.read_annotations(manual_dir)


def _check_class_lists(module: str) -> Callable[[str], None]:
    # Parses classInd.txt and both split lists (errors name file and line).
    def check(manual_dir: str) -> None:
        from tfds_builders import affect_video as av

        cls = importlib.import_module(module).Builder
        av.read_class_lists(manual_dir, cls.CLASS_NAMES, cls.LIST_FILES)
    return check


def _check_liris(manual_dir: str) -> None:
    from tfds_builders.liris_accede import liris_accede_dataset_builder as liris

    liris.read_records(manual_dir)


def _check_bilibili(manual_dir: str) -> None:
    # Per-file problems are reported by the build itself (bad files are skipped, not fatal).
    folder = epath.Path(manual_dir) / "danmaku"
    if not any(folder.glob("*.xml")):
        raise ef.EratoFormatError(f"{folder}: no danmaku .xml files found")


def _check_lirec(manual_dir: str) -> None:
    from jaxaffect.data import lirec_format as lf

    lf.read_split(epath.Path(manual_dir) / lf.SPLIT_FILE)


_VE8 = "tfds_builders.video_emotion8.video_emotion8_dataset_builder"
_EK6 = "tfds_builders.ekman6.ekman6_dataset_builder"
_REGISTRY: dict[str, _Entry] = {
    "erato": _Entry("tfds_builders.erato.erato_dataset_builder:Builder", _check_erato),
    "video_emotion8": _Entry(f"{_VE8}:Builder", _check_class_lists(_VE8)),
    "ekman6": _Entry(f"{_EK6}:Builder", _check_class_lists(_EK6)),
    "liris_accede": _Entry("tfds_builders.liris_accede.liris_accede_dataset_builder:Builder",
                           _check_liris),
    "bilibili_tsc": _Entry("tfds_builders.bilibili_tsc.bilibili_tsc_dataset_builder:Builder",
                           _check_bilibili),
    "moviegraphs_lirec": _Entry(
        "tfds_builders.moviegraphs_lirec.moviegraphs_lirec_dataset_builder:Builder",
        _check_lirec),
}
FILE_FORMATS = ("tfrecord", "array_record")


def available_datasets() -> tuple[str, ...]:
    return tuple(sorted(_REGISTRY))


def builder_class(name: str) -> type:
    """The TFDS builder class registered under `name`."""
    if name not in _REGISTRY:
        raise ValueError(f"unknown dataset {name!r}; available: {', '.join(available_datasets())}")
    module, cls = _REGISTRY[name].builder.split(":")
    return getattr(importlib.import_module(module), cls)


def _normalise_format(file_format: str) -> str:
    fmt = file_format.lower().replace("-", "_")
    fmt = {"arrayrecord": "array_record"}.get(fmt, fmt)
    if fmt not in FILE_FORMATS:
        raise ValueError(f"file_format must be one of {FILE_FORMATS}, got {file_format!r}")
    return fmt


def builder_configs(name: str) -> tuple[str, ...]:
    """Names of the builder configs of dataset `name` (empty when it has none)."""
    return tuple(c.name for c in (builder_class(name).BUILDER_CONFIGS or ()))


def build_dataset(name: str, manual_dir: str, data_dir: str, file_format: str = "tfrecord",
                  *, num_shards: int | None = None, config: str | None = None) -> str:
    """Prepares dataset `name` from `manual_dir` into `data_dir`; returns the builder directory.

    `config` picks a builder config (e.g. bilibili_tsc's lexicon: dutir, nrc or custom); None
    uses the builder's default.

    `num_shards` fixes the number of record files per split (default: TFDS sizes shards at
    64 MiB-1 GiB); several shards let TFRecord readers interleave files.

    A complete build already in `data_dir` is reused, never overwritten (TFDS behaviour); if it
    was written in another file format a ValueError says so. A malformed or missing file of the
    manual_dir raises the dataset's format error (for ERATO `EratoFormatError`) naming the file;
    a failed build leaves no partial directory behind.
    """
    import tensorflow_datasets as tfds

    fmt = _normalise_format(file_format)
    cls = builder_class(name)
    _REGISTRY[name].check_manual_dir(os.fspath(manual_dir))
    configs = builder_configs(name)
    if config is not None and config not in configs:
        raise ValueError(f"dataset {name!r} has no config {config!r}"
                         + (f"; configs: {', '.join(configs)}" if configs else " (it has none)"))
    kwargs = {"config": config} if config is not None else {}
    builder = cls(data_dir=os.fspath(data_dir), **kwargs)
    if builder.is_prepared():
        existing = builder.info.file_format.value if builder.info.file_format else "tfrecord"
        if existing != fmt:
            raise ValueError(
                f"{builder.data_dir} already holds a complete {existing} build of {name!r}; "
                f"it is kept. Use another data_dir for a {fmt} build.")
        return os.fspath(builder.data_dir)
    builder.download_and_prepare(
        file_format=fmt,
        download_config=tfds.download.DownloadConfig(
            manual_dir=os.fspath(manual_dir), num_shards=num_shards),
    )
    return os.fspath(builder.data_dir)


def write_random_manual_dir(manual_dir: str | epath.PathLike, *, num_clips: int,
                          dims: Mapping[str, int], max_steps: int, test_fraction: float = 0.2,
                          absent_prob: float = 0.2, seed: int = 0) -> list[ef.Annotation]:
    """Writes a random manual_dir in the ERATO layout (for tests and benchmarks; no signal).

    Labels are drawn uniformly; T is uniform in [1, max_steps]; each stream is absent on a
    random contiguous stretch with probability `absent_prob` (zeros there, mask False).
    """
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(num_clips):
        split = "test" if rng.random() < test_fraction else "train"
        rows.append(ef.Annotation(f"clip{i:05d}", ef.FINE_LABELS[rng.integers(5)], split))
        steps = int(rng.integers(1, max_steps + 1))
        features, masks = {}, {}
        for s in ef.STREAMS:
            m = np.ones(steps, bool)
            if rng.random() < absent_prob:
                a = int(rng.integers(steps))
                m[a:a + int(rng.integers(1, steps + 1))] = False
            x = rng.standard_normal((steps, dims[s]), dtype=np.float32)
            features[s], masks[s] = np.where(m[:, None], x, 0.0).astype(np.float32), m
        path = ef.feature_path(manual_dir, rows[-1].clip_id)
        ef.write_clip(path, ef.ClipFeatures(features, masks))
    ef.write_annotations(manual_dir, rows)
    return rows
