"""The contract between the one generic trainer and an experiment family.

A Task knows its data (which prepared dataset, which splits, batches of what), its model, its
loss and its evaluation. The trainer knows meshes, shardings, optimisers, checkpoints, logging
and the loop, and nothing about any family.
"""

from __future__ import annotations

import abc
from collections.abc import Iterable
from typing import Any

import flax.linen as nn
import jax
import ml_collections
import numpy as np

Batch = dict[str, Any]


class Task(abc.ABC):
    """One experiment family. Methods marked pure are traced inside jit."""

    #: keys of a batch that stay on the host (strings, ids); everything else goes to devices.
    host_keys: tuple[str, ...] = ()
    #: what `load_clip(path)` (when a task has it) reads: "features" (a per-clip feature file
    #: in the builder's layout) or "video" (a raw media file); `predict` checks the flag.
    input_kind: str = "features"

    def __init__(self, config: ml_collections.ConfigDict):
        self.config = config

    # -- data ---------------------------------------------------------------------------------
    @abc.abstractmethod
    def dataset(self, split: str, *, train: bool, seed: int, num_epochs: int | None,
                process_index: int, process_count: int) -> Any:
        """A grain IterDataset of host-local numpy batches (fixed shapes)."""

    @abc.abstractmethod
    def num_examples(self, split: str) -> int:
        """Examples in `split` over all hosts."""

    @abc.abstractmethod
    def dummy_batch(self, batch_size: int) -> Batch:
        """A device batch of zeros with the real shapes (for shape inference and init)."""

    def device_batch(self, batch: Batch) -> Batch:
        return {k: v for k, v in batch.items() if k not in self.host_keys}

    # -- model --------------------------------------------------------------------------------
    @abc.abstractmethod
    def make_model(self) -> nn.Module: ...

    @abc.abstractmethod
    def init_variables(self, model: nn.Module, rng: jax.Array, batch: Batch) -> Any:
        """Pure: model variables (a dict with 'params') from a device batch."""

    def initial_params(self, params: Any) -> Any | None:
        """Once, before the first step of a fresh run: the initial parameters (`params`, the
        random ones, possibly on devices) with parts replaced from files (e.g. a converted
        pretrained backbone) as host arrays, or None to keep them. Not called on resume."""
        del params
        return None

    @abc.abstractmethod
    def loss(self, model: nn.Module, params: Any, batch: Batch, rng: jax.Array,
             train: bool, step: jax.Array | None = None
             ) -> tuple[jax.Array, dict[str, jax.Array]]:
        """Pure: scalar loss and scalar metrics for logging.

        `step` is the global training step (traced) during training, None otherwise; tasks
        with schedules inside the loss (e.g. hard negatives after a burn-in) read it.
        """

    @abc.abstractmethod
    def predict(self, model: nn.Module, params: Any, batch: Batch) -> dict[str, jax.Array]:
        """Pure: per-example outputs (leading batch dimension) for evaluation."""

    # -- evaluation (host side, whole split) --------------------------------------------------
    @abc.abstractmethod
    def evaluate(self, outputs: dict[str, np.ndarray], host: dict[str, np.ndarray]
                 ) -> tuple[dict[str, float], list[dict]]:
        """Metrics over a whole split and one prediction record per real example.

        `outputs` holds the concatenated `predict` outputs and device-side batch keys, `host`
        the concatenated host keys, both already restricted to valid examples.
        """

    def write_figures(self, outputs: dict[str, np.ndarray], metrics: dict[str, float],
                      out_dir: str, split: str) -> list[str]:
        """Optional images for a split's evaluation; returns the paths written."""
        del outputs, metrics, out_dir, split
        return []

    def selection_metric(self) -> str:
        """The validation metric that picks the best checkpoint (see `selection_mode`)."""
        return "macro_f1"

    def selection_mode(self) -> str:
        """"max" when a higher `selection_metric` is better, "min" when lower is."""
        return "max"


_REGISTRY: dict[str, type[Task]] = {}


def register(name: str):
    """Registers a Task class under `name` outside the families (benchmarks, experiments).

    Family tasks are declared in their package's `FAMILY.tasks` instead. A name is taken once:
    registering another class under a taken name raises ValueError.
    """

    def deco(cls: type[Task]) -> type[Task]:
        old = _REGISTRY.get(name)
        if old is not None and _qualname(old) != _qualname(cls):
            raise ValueError(f"task {name!r} is already registered as {_qualname(old)}")
        _REGISTRY[name] = cls
        return cls

    return deco


def _qualname(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def task_class(name: str) -> type[Task]:
    """The Task class of task `name`: a family's declared task or a registered one."""
    from jaxaffect import family

    declared = family.task_classes()
    if name in declared and name in _REGISTRY:
        raise ValueError(f"task {name!r} is both declared by a family ({declared[name]}) and "
                         f"registered ({_qualname(_REGISTRY[name])})")
    if name in declared:
        return family.load(declared[name])
    if name in _REGISTRY:
        return _REGISTRY[name]
    raise ValueError(f"unknown task {name!r}; known: {sorted({*declared, *_REGISTRY})}")


def get_task(config: ml_collections.ConfigDict) -> Task:
    return task_class(config.task)(config)


def concat_batches(parts: Iterable[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    parts = list(parts)
    if not parts:
        return {}
    return {k: np.concatenate([p[k] for p in parts], axis=0) for k in parts[0]}
