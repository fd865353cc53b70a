"""Helpers shared by the builder tests: build a dataset from a manual_dir, copy dummy data."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import tensorflow_datasets as tfds


def dummy_data_dir(builder_cls: type[tfds.core.DatasetBuilder]) -> Path:
    """The ``dummy_data`` folder next to the builder's source file."""
    return Path(builder_cls.code_path.parent) / "dummy_data"


def copy_dummy_data(builder_cls: type[tfds.core.DatasetBuilder], tmp_path: Path) -> Path:
    """Copy the builder's dummy data to ``tmp_path / "manual"`` (safe to edit) and return it."""
    path = Path(tmp_path) / "manual"
    shutil.copytree(dummy_data_dir(builder_cls), path)
    return path


def prepare(
    builder_cls: type[tfds.core.DatasetBuilder],
    manual_dir: str | Path,
    data_dir: str | Path,
    *,
    file_format: str = "array_record",
    **builder_kwargs: Any,
) -> tfds.core.DatasetBuilder:
    """Build ``builder_cls(data_dir=..., **builder_kwargs)`` from the files in ``manual_dir``.

    The array_record format needs no TensorFlow to write, which keeps these builds quick.
    """
    builder = builder_cls(data_dir=str(data_dir), **builder_kwargs)
    builder.download_and_prepare(
        file_format=file_format,
        download_config=tfds.download.DownloadConfig(manual_dir=str(manual_dir)))
    return builder
