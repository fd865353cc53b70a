"""The Python API: what the command line does, as functions (README "Python API" has a
runnable example).

Config names: a file path `configs/<family>/<name>.py[:arg]` (in a clone), or the same
without the `configs/` prefix (`perr/lstm.py:runlocal`), which is found inside the installed
package. Overrides are keyword arguments with `__` between levels (`training__batch_size=8`)
or a dict of dotted names.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import ml_collections

from jaxaffect.evaluate import TrainedModel

__all__ = ["TrainedModel", "build", "config", "evaluate", "load", "predict", "synthesize",
           "train"]


def config(spec: str, overrides: Mapping[str, Any] | None = None,
           **fields: Any) -> ml_collections.ConfigDict:
    """Loads a config string (see the module docstring) and applies overrides, typed like the
    fields they replace; an unknown field raises ConfigError."""
    from jaxaffect.config_loading import apply_overrides, load_config

    c = load_config(spec)
    items = dict(overrides or {})
    items.update({k.replace("__", "."): v for k, v in fields.items()})
    apply_overrides(c, [f"{k}={v}" for k, v in items.items()])
    return c


def build(name: str, manual_dir: str, data_dir: str, *, file_format: str = "tfrecord",
          builder_config: str | None = None, overwrite: bool = False,
          allow: tuple[str, ...] = ()) -> str:
    """`jaxaffect build`: builds dataset `name` from a release; returns the build folder (an
    existing complete build is reused unless `overwrite`)."""
    from jaxaffect.data.build import build_dataset

    return build_dataset(name, manual_dir, data_dir, file_format, config=builder_config,
                         overwrite=overwrite, allow=allow)


def synthesize(corpus: str, out: str, *, size: int | None = None, seed: int = 0) -> dict:
    """`jaxaffect synthesize`: writes a synthetic corpus in a release layout."""
    from jaxaffect import family

    return family.load(family.corpora()[corpus].writer)(out, size=size, seed=seed)


def train(config: ml_collections.ConfigDict, workdir: str, *, progress: bool = True,
          overwrite: bool = False, allow_config_change: bool = False) -> dict[str, Any]:
    """`jaxaffect train`: trains (or resumes) a run; returns its summary (best validation
    metrics under "best_validation")."""
    from jaxaffect.train import train as train_run

    return train_run(config, workdir, progress=progress, overwrite=overwrite,
                     allow_config_change=allow_config_change)


def evaluate(workdir: str, split: str = "test", checkpoint: str = "best") -> dict[str, Any]:
    """`jaxaffect eval`: metrics of a run's best (or latest) checkpoint on `split`, with
    predictions and images written to the workdir."""
    from jaxaffect.evaluate import evaluate_run, load_run_config

    return evaluate_run(load_run_config(workdir), workdir, split, checkpoint)


def load(workdir: str, checkpoint: str = "best") -> TrainedModel:
    """A trained run, ready to predict on arrays (`.predict(batch)`) or files."""
    return TrainedModel(workdir, checkpoint)


def predict(workdir: str, features: str, checkpoint: str = "best") -> dict[str, Any]:
    """`jaxaffect predict`: the prediction for one clip's file (a feature file, or a video
    file for a task that reads raw media)."""
    return load(workdir, checkpoint).predict_file(features)
