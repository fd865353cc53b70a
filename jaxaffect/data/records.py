"""Reading a prepared TFDS directory without tensorflow: where it is, its files, its records.

Every family's input pipeline starts here: `builder_dir_for` finds the newest build of a
dataset, `dataset_files` reads its `dataset_info.json` once (features, shard files and lengths,
the builder's metadata), and `read_records` yields a split's serialized examples in canonical
(shard, record) order, for TFRecord and ArrayRecord builds alike. `DatasetFiles.decoder` turns
one serialized example into numpy (`jaxaffect.data.example_decoding`: the values TFDS's
`features.deserialize_example_np` gives, faster); every pipeline decodes through it.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from typing import Any

import grain
import tensorflow_datasets as tfds
from etils import epath

from jaxaffect.data.example_decoding import ExampleDecoder
from jaxaffect.errors import ConfigError


def builder_dir_for(data_dir: str, name: str) -> str:
    """The prepared directory of dataset `name` ("dataset" or "dataset/config") under
    `data_dir` (newest version). A bare dataset name whose folder holds builds of several
    configs is refused (ConfigError naming them): say which one, "dataset/config"."""
    root = epath.Path(data_dir) / name
    found = [p.parent for p in root.glob("*/dataset_info.json")]
    found += [p.parent for p in root.glob("*/*/dataset_info.json")]
    found = [p for p in found if "incomplete" not in p.name]
    if not found:
        dataset, _, config = name.partition("/")
        command = f"jaxaffect build {dataset}" + (f" --builder_config {config}" if config else "")
        raise FileNotFoundError(f"no prepared dataset {name!r} under {root} (run `{command}`)")
    configs = sorted({p.parent.name for p in found if p.parent != root})
    bare = any(p.parent == root for p in found)  # a build of a builder without configs
    if len(configs) + bare > 1:
        listed = ", ".join([f"{name}/{c}" for c in configs] + ([f"{name} (no config)"] * bare))
        raise ConfigError(f"{root}: holds builds of several configs ({listed}); name one, "
                          f"e.g. data.name='{name}/{configs[0]}'")

    def version_key(path: epath.Path) -> tuple[int, ...]:
        try:
            return tuple(int(x) for x in path.name.split("."))
        except ValueError:
            return (-1,)

    return os.fspath(max(found, key=version_key))


@dataclasses.dataclass(frozen=True)
class DatasetFiles:
    """What the pipeline needs from a prepared directory."""

    builder_dir: str
    file_format: str  # "tfrecord" or "array_record"
    features: Any  # tfds.features.FeaturesDict
    filepaths: dict[str, tuple[str, ...]]  # tfds split -> shard files, in shard order
    shard_lengths: dict[str, tuple[int, ...]]
    metadata: dict[str, Any]

    def num_examples(self, tfds_split: str) -> int:
        return int(sum(self.shard_lengths[tfds_split]))

    @functools.cached_property
    def decoder(self) -> ExampleDecoder:
        """serialized example -> nested dict of numpy values (built once per process)."""
        return ExampleDecoder(self.features)


@functools.lru_cache(maxsize=32)
def dataset_files(builder_dir: str) -> DatasetFiles:
    info = tfds.builder_from_directory(builder_dir).info
    fmt = info.file_format.value if info.file_format is not None else "tfrecord"
    if fmt not in ("tfrecord", "array_record"):
        raise ValueError(f"{builder_dir}: unsupported file format {fmt!r}")
    splits = info.splits
    return DatasetFiles(
        builder_dir=builder_dir,
        file_format=fmt,
        features=info.features,
        filepaths={s: tuple(os.fspath(p) for p in splits[s].filepaths) for s in splits},
        shard_lengths={s: tuple(int(n) for n in splits[s].shard_lengths) for s in splits},
        metadata=dict(info.metadata or {}),
    )


def read_records(files: DatasetFiles, tfds_split: str):
    """Yields the serialized examples of a split in canonical (shard, record) order."""
    paths = files.filepaths[tfds_split]
    if files.file_format == "tfrecord":
        for path in paths:
            yield from grain.experimental.TFRecordIterDataset(path)
    else:
        source = grain.sources.ArrayRecordDataSource(list(paths))
        for i in range(len(source)):
            yield source[i]
