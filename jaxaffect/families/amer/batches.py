"""Fixed-shape MEmoR examples from stored per-annotation examples (transform, padding).

A stored example (the `memor` build, one per annotated (clip, moment, target person)) holds
every person x segment of its clip: ``audio``/``text``/``visual`` ``[P, S, D]`` with
``*_present [P, S]``, ``personality [P, Dp]``, ``persons [P]`` (character ids),
``target_person``, ``target_segment``, both label sets and the speaker flags.

The transform pads to ``max_persons`` x ``max_segments`` (padding masked everywhere) and, for
a longer context, keeps the target: the target person and the first other persons in their
stored (sorted) order, and the window of ``max_segments`` consecutive segments that holds the
target segment nearest its centre. `count_cropped` says how many examples of a split lose
context that way, so a run can report it.

Batch layout: ``inputs`` (the model contract of jaxaffect.families.amer.layers, nested so the
trainer's evaluation does not keep it for a whole split), ``label``, ``target_modalities [3]``
(the target entry's audio/text/visual presence, for the Table 4/5 breakdowns),
``speaks_in_segment``, ``speaks_in_clip``, ``valid``; host strings ``id`` and ``clip``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from jaxaffect.families.amer.layers import MODALITIES

HOST_KEYS: tuple[str, ...] = ("id", "clip")
LABEL_KEYS = {"primary": "label_primary", "fine": "label_fine"}


@dataclasses.dataclass(frozen=True)
class BatchSpec:
    """What the examples of one run look like."""

    dims: Mapping[str, int]  # audio, text, visual, personality
    labels: str = "fine"  # primary | fine
    max_persons: int = 8
    max_segments: int = 8
    modalities: tuple[str, ...] = MODALITIES  # streams kept; the others arrive absent
    #: streams that at most one person per segment may have (checked per example)
    speaker_streams: tuple[str, ...] = ()

    def __post_init__(self):
        if self.labels not in LABEL_KEYS:
            raise ValueError(f"labels={self.labels!r}: one of {sorted(LABEL_KEYS)}")
        if self.max_persons < 1 or self.max_segments < 1:
            raise ValueError("max_persons and max_segments must be positive")
        missing = [k for k in (*MODALITIES, "personality") if k not in self.dims]
        if missing:
            raise ValueError(f"dims lack {missing}")


def _window(total: int, size: int, centre: int) -> np.ndarray:
    """`size` consecutive indices of range(total) (all when total <= size) holding `centre`."""
    if total <= size:
        return np.arange(total)
    start = min(max(centre - size // 2, 0), total - size)
    return np.arange(start, start + size)


def kept_persons(num_persons: int, target: int, max_persons: int) -> np.ndarray:
    """The target and the first other persons, in stored order, at most `max_persons`."""
    if num_persons <= max_persons:
        return np.arange(num_persons)
    others = [p for p in range(num_persons) if p != target][:max_persons - 1]
    return np.array(sorted([target, *others]))


def is_cropped(example: Mapping[str, Any], spec: BatchSpec) -> bool:
    p, s = np.asarray(example["audio_present"]).shape
    return p > spec.max_persons or s > spec.max_segments


def target_has_all(example: Mapping[str, Any]) -> bool:
    """Whether the target entry has every modality (the full-modality subset of Table 4)."""
    tp, ts = int(example["target_person"]), int(example["target_segment"])
    return all(bool(np.asarray(example[f"{m}_present"])[tp, ts]) for m in MODALITIES)


def count_cropped(examples: Sequence[Mapping[str, Any]], spec: BatchSpec) -> int:
    return sum(is_cropped(e, spec) for e in examples)


def padding(spec: BatchSpec) -> dict[str, Any]:
    """An invalid all-masked example of the right shapes."""
    P, S = spec.max_persons, spec.max_segments
    inputs: dict[str, Any] = {}
    for m in MODALITIES:
        inputs[m] = np.zeros((P, S, spec.dims[m]), np.float32)
        inputs[f"{m}_present"] = np.zeros((P, S), bool)
    inputs.update(person_mask=np.zeros(P, bool), segment_mask=np.zeros(S, bool),
                  personality=np.zeros((P, spec.dims["personality"]), np.float32),
                  persons=np.full(P, -1, np.int32), target_person=np.int32(0),
                  target_segment=np.int32(0))
    return {"inputs": inputs, "label": np.int32(0),
            "target_modalities": np.zeros(len(MODALITIES), bool),
            "speaks_in_segment": np.bool_(False), "speaks_in_clip": np.bool_(False),
            "valid": np.bool_(False), "id": "", "clip": ""}


@dataclasses.dataclass(frozen=True)
class Transform:
    """Stored example -> fixed-shape example (deterministic: no random crop)."""

    spec: BatchSpec

    def __call__(self, example: Mapping[str, Any], rng: np.random.Generator | None = None
                 ) -> dict[str, Any]:
        del rng
        spec = self.spec
        out = padding(spec)
        x = out["inputs"]
        present = np.asarray(example["audio_present"])
        num_p, num_s = present.shape
        tp, ts = int(example["target_person"]), int(example["target_segment"])
        pk = kept_persons(num_p, tp, spec.max_persons)
        sk = _window(num_s, spec.max_segments, ts)
        cut = np.ix_(pk, sk)
        np_, ns = len(pk), len(sk)
        for m in spec.speaker_streams:
            if np.asarray(example[f"{m}_present"], bool).sum(0).max(initial=0) > 1:
                raise ValueError(f"example {example['id']}: more than one person has {m} in a "
                                 f"segment; set model.speaker_streams=() for such data")
        for m in MODALITIES:
            if m not in spec.modalities:
                continue  # absent stream: zeros and all-absent flags (Table 4 rows)
            x[m][:np_, :ns] = np.asarray(example[m], np.float32)[cut]
            x[f"{m}_present"][:np_, :ns] = np.asarray(example[f"{m}_present"], bool)[cut]
        x["person_mask"][:np_] = True
        x["segment_mask"][:ns] = True
        x["personality"][:np_] = np.asarray(example["personality"], np.float32)[pk]
        x["persons"][:np_] = np.asarray(example["persons"], np.int32)[pk]
        x["target_person"] = np.int32(int(np.flatnonzero(pk == tp)[0]))
        x["target_segment"] = np.int32(int(np.flatnonzero(sk == ts)[0]))
        out["target_modalities"] = np.array(
            [bool(np.asarray(example[f"{m}_present"])[tp, ts]) for m in MODALITIES])
        out["label"] = np.int32(example[LABEL_KEYS[spec.labels]])
        out["speaks_in_segment"] = np.bool_(example["speaks_in_segment"])
        out["speaks_in_clip"] = np.bool_(example["speaks_in_clip"])
        out["valid"] = np.bool_(True)
        out["id"], out["clip"] = str(example["id"]), str(example["clip"])
        return out


def dummy_batch(spec: BatchSpec, batch_size: int) -> dict[str, Any]:
    """A device batch of zeros with the real shapes (init and shape inference)."""
    pad = padding(spec)
    pad["valid"] = np.bool_(True)

    def stack(v):
        return np.stack([np.asarray(v)] * batch_size)

    batch = {k: stack(v) for k, v in pad.items() if k not in HOST_KEYS and k != "inputs"}
    batch["inputs"] = {k: stack(v) for k, v in pad["inputs"].items()}
    batch["inputs"]["person_mask"][:, 0] = True
    batch["inputs"]["segment_mask"][:, 0] = True
    return batch
