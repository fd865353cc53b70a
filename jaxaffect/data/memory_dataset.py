"""Batches from examples held in host memory, as a checkpointable grain dataset.

Used by the families whose datasets fit in memory (read once with `jaxaffect.data.prepared`).
The per-example `transform` turns a stored example into fixed shapes; in training it receives a
numpy Generator that grain derives from (seed, epoch, position), so a resumed run draws the same
random crops and samples as an uninterrupted one.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import grain
import numpy as np

from jaxaffect.data.hosts import HostView, host_share
from jaxaffect.data.sampling import WeightedEpochs

Transform = Callable[[Any, "np.random.Generator | None"], dict]


def collate_nested(examples: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Stacks examples (nested dicts of arrays/scalars/str) along a new leading axis.

    str values become object arrays of str; everything else goes through np.stack.
    """
    first = examples[0]
    out: dict[str, Any] = {}
    for key, value in first.items():
        column = [e[key] for e in examples]
        if isinstance(value, Mapping):
            out[key] = collate_nested(column)
        elif isinstance(value, str):
            arr = np.empty(len(column), dtype=object)
            arr[:] = column
            out[key] = arr
        else:
            try:
                out[key] = np.stack([np.asarray(v) for v in column])
            except ValueError as e:
                shapes = sorted({np.asarray(v).shape for v in column})
                raise ValueError(f"batch entry {key!r} has different shapes {shapes}") from e
    return out


@dataclasses.dataclass(frozen=True)
class _Apply:
    """Picks example `i` and transforms it (a picklable callable for grain)."""

    examples: Sequence[Any]
    transform: Transform
    padding: dict

    def __call__(self, index: int, rng: np.random.Generator | None = None) -> dict:
        if index < 0:
            return self.padding
        return self.transform(self.examples[index], rng)


def make_batches(examples: Sequence[Any], *, batch_size: int, train: bool, seed: int,
                 num_epochs: int | None, process_index: int, process_count: int,
                 transform: Transform, padding: dict,
                 weights: np.ndarray | None = None) -> grain.MapDataset:
    """Host-local batches of `examples` (see the module docstring).

    `batch_size` is global; each of `process_count` hosts yields batch_size // process_count
    examples per batch. Training: all examples are shuffled per epoch as one global stream,
    the last incomplete global batch is dropped, and each host takes its rows of every global
    batch (`jaxaffect.data.hosts.HostView`), so the global batches and the random transforms
    do not depend on the process count. Evaluation (`train=False`): every example of the host
    (positions h, h + P, ...) comes once, in order, and the last batch is filled with `padding`
    (which must be marked invalid: padding["valid"] is False).

    `weights` (training only, one per example): each epoch draws len(examples) examples with
    replacement, proportionally to the weights (`jaxaffect.data.sampling.WeightedEpochs`),
    instead of a shuffled pass.
    """
    if bool(np.asarray(padding.get("valid", True))):
        raise ValueError("padding example must have valid=False")
    if len(examples) == 0:
        raise ValueError("no examples")
    share = host_share(len(examples), batch_size=batch_size, train=train,
                       process_index=process_index, process_count=process_count,
                       num_epochs=num_epochs)
    apply = _Apply(examples, transform, padding)
    if train:
        # One global stream (shuffle and random transform indexed globally), then this host's
        # rows of each global batch: the batches do not depend on the process count.
        if weights is not None:
            ds = WeightedEpochs(share.positions, np.asarray(weights)[share.positions],
                                seed=seed, num_epochs=num_epochs)
        else:
            ds = grain.MapDataset.source(share.positions.tolist()).shuffle(seed=seed)
            if num_epochs != 1:
                ds = ds.repeat(num_epochs)
        ds = ds.random_map(lambda i, rng: apply(i, rng), seed=seed + 1)
        view = HostView(ds, batch_size=batch_size, process_index=process_index,
                        process_count=process_count)
        return view.batch(share.local_batch, drop_remainder=True, batch_fn=collate_nested)
    host = share.positions.tolist()
    ds = grain.MapDataset.source(host + [-1] * share.num_pad)
    if num_epochs != 1:
        ds = ds.repeat(num_epochs)
    ds = ds.map(lambda i: apply(i, None))
    return ds.batch(share.local_batch, drop_remainder=False, batch_fn=collate_nested)
