"""What both TAM tasks do with their data: a prepared build held in memory, read once.

A subclass says how the build's splits become the task's splits (`read_splits`), how one
example becomes fixed shapes (`transform`) and what a padding example is (`padding`); the
batches (`jaxaffect.data.memory_dataset.make_batches`), split sizes, stream sizes and the zero
dummy batch then come the same way for the video task and the pretraining task.
"""

from __future__ import annotations

import abc
from typing import Any

import jax
import ml_collections
import numpy as np

from jaxaffect.config_loading import resolve_builder_dir
from jaxaffect.data import prepared
from jaxaffect.data.memory_dataset import Transform, make_batches
from jaxaffect.families.tam.batches import STREAMS
from jaxaffect.task import Batch, Task


class TAMDataTask(Task):
    """A Task over one prepared build whose splits fit in host memory."""

    #: metadata keys the build must record.
    required_metadata: tuple[str, ...] = ("stream_dims",)
    #: batch entries set to True in `dummy_batch` (everything else is zero).
    dummy_true: tuple[str, ...] = ("segment_mask", "valid")

    def __init__(self, config: ml_collections.ConfigDict):
        super().__init__(config)
        self.builder_dir = resolve_builder_dir(config.data)
        self._splits: dict[str, list[dict]] | None = None
        self._meta: dict[str, Any] | None = None

    @abc.abstractmethod
    def read_splits(self) -> dict[str, list[dict]]:
        """Every split's examples, from the build (called once)."""

    @abc.abstractmethod
    def transform(self) -> Transform:
        """The per-example transform to fixed shapes."""

    @abc.abstractmethod
    def padding(self) -> dict[str, Any]:
        """One padding example (``valid`` False) with the transform's shapes."""

    def metadata(self) -> dict[str, Any]:
        """The build's metadata (checked for `required_metadata`)."""
        if self._meta is None:
            meta = prepared.load_metadata(self.builder_dir)
            for key in self.required_metadata:
                if key not in meta:
                    raise ValueError(f"{self.builder_dir}: the build records no {key!r}")
            self._meta = meta
        return self._meta

    def stream_dims(self) -> dict[str, int]:
        dims = self.metadata()["stream_dims"]
        return {s: int(dims[s]) for s in STREAMS}

    def splits(self) -> dict[str, list[dict]]:
        """Every split's examples (read once)."""
        if self._splits is None:
            self._splits = self.read_splits()
        return self._splits

    def examples(self, split: str) -> list[dict]:
        s = self.splits()
        if split not in s:
            raise ValueError(f"{self.builder_dir}: no split {split!r}; have {sorted(s)}")
        return s[split]

    def num_examples(self, split: str) -> int:
        return len(self.examples(split))

    def dataset(self, split, *, train, seed, num_epochs, process_index, process_count):
        return make_batches(self.examples(split), batch_size=self.config.training.batch_size,
                            train=train, seed=seed, num_epochs=num_epochs,
                            process_index=process_index, process_count=process_count,
                            transform=self.transform(), padding=self.padding())

    def dummy_batch(self, batch_size: int) -> Batch:
        pad = self.padding()
        batch = jax.tree_util.tree_map(
            lambda x: np.zeros((batch_size,) + np.shape(x), np.asarray(x).dtype),
            {k: v for k, v in pad.items() if k not in self.host_keys})
        for key in self.dummy_true:
            batch[key][:] = True
        return batch

    def selection_metric(self) -> str:
        return self.config.evaluation.selection_metric
