"""Builds a TFDS dataset from a user's manual_dir (`jaxaffect build`); finds builders by convention.

A builder is a folder `tfds_builders/<name>/` holding `<name>_dataset_builder.py` with a class
`Builder` (the `tfds new` layout). Its module may define `check_manual_dir(manual_dir)`, a cheap
check of the release that runs before TFDS starts, so a wrong path gives one line naming the
file rather than a TFDS assertion. Nothing here names a dataset: adding a builder folder is
enough for `jaxaffect build <name>` to offer it.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
from pathlib import Path

BUILDERS_PACKAGE = "tfds_builders"
FILE_FORMATS = ("tfrecord", "array_record")


def data_home() -> str:
    """Where demos keep synthetic corpora and their builds ($JAXAFFECT_HOME, else
    ~/.cache/jaxaffect)."""
    return os.environ.get("JAXAFFECT_HOME", str(Path("~/.cache/jaxaffect").expanduser()))


def synthetic_data_dir(corpus: str) -> str:
    """The TFDS data_dir of a synthetic corpus under `data_home()` (configs' data=synthetic)."""
    return str(Path(data_home()) / f"synthetic_{corpus}" / "tfds")


def _module_name(name: str) -> str:
    return f"{BUILDERS_PACKAGE}.{name}.{name}_dataset_builder"


def available_datasets() -> tuple[str, ...]:
    """Names of the builder folders (read from the file system; nothing is imported)."""
    pkg = importlib.import_module(BUILDERS_PACKAGE)
    names = []
    for info in pkgutil.iter_modules(pkg.__path__):
        if info.ispkg and any(Path(p, info.name, f"{info.name}_dataset_builder.py").is_file()
                              for p in pkg.__path__):
            names.append(info.name)
    return tuple(sorted(names))


def builder_module(name: str):
    if name not in available_datasets():
        raise ValueError(f"unknown dataset {name!r}; available: {', '.join(available_datasets())}")
    return importlib.import_module(_module_name(name))


def builder_class(name: str) -> type:
    """The TFDS builder class of dataset `name`."""
    return builder_module(name).Builder


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
    manual_dir raises a `jaxaffect.errors.FormatError` naming the file; a failed build leaves no
    partial directory behind.
    """
    import tensorflow_datasets as tfds

    fmt = _normalise_format(file_format)
    module = builder_module(name)
    cls = module.Builder
    check = getattr(module, "check_manual_dir", None)
    if check is not None:
        check(os.fspath(manual_dir))
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
