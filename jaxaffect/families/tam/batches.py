"""Per-example transforms of TAM's two tasks: video classification/regression and TSC pretraining.

Both turn one decoded example of a prepared dataset (variable number of segments, and of
comments for the pretraining data) into fixed shapes with masks, pure numpy:

* :func:`video_example` (VE-8, Ekman-6, LIRIS-ACCEDE): ``features {image, motion, audio}
  [T, d_s]``, ``segment_mask [T]``, the label / regression target, ``valid``, ``video_id``.
* :func:`tsc_example` (Bilibili video-TSC data): the same video part plus ``tokens [N, W]``,
  ``emotional [N, W]``, ``comment_segment [N]`` (re-indexed into the window), ``comment_mask
  [N]``, ``valid``, ``example_id``.

Segment choice (paper Sec. 5.2: "we randomly sample T consecutive video segments"):

* training (an rng is given): a window of ``T`` consecutive segments at a uniformly random
  start; videos with at most ``T`` segments keep them all.
* evaluation, video tasks: ``T`` segments spread uniformly over the whole video
  (:func:`jaxaffect.data.sequences.crop_indices`, deterministic), all of them if shorter.
  The paper does not say how evaluation picks segments; spreading them covers the whole video.
* evaluation, pretraining: the centred window of ``T`` consecutive segments (deterministic),
  because comments must keep the segment they belong to and the window stays contiguous as in
  training.

A stream's own mask (a segment without audio, say) zeroes that stream's features there; the
CTM encoder has one mask per segment (``segment_mask``: the segment exists), not per stream.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from jaxaffect.data.sequences import as_text, crop_indices
from jaxaffect.families.tam.video_features import STREAMS

# Token ids of the bilibili_tsc build's vocabulary.
PAD_ID, START_ID, MASK_ID, UNK_ID = 0, 1, 2, 3


def window_start(num_segments: int, length: int, rng: np.random.Generator | None) -> int:
    """Start of a window of ``length`` consecutive segments: uniform over all valid starts
    with ``rng``, centred without; 0 when the video is not longer than the window."""
    if length <= 0:
        raise ValueError(f"window length must be positive, got {length}")
    slack = num_segments - length
    if slack <= 0:
        return 0
    return int(rng.integers(0, slack + 1)) if rng is not None else slack // 2


def segment_indices(num_segments: int, length: int, rng: np.random.Generator | None
                    ) -> np.ndarray:
    """Segments a video task keeps: a random consecutive window (training, ``rng`` given) or
    ``length`` indices spread uniformly over the video (evaluation); all when shorter."""
    if num_segments <= 0:
        raise ValueError("a video needs at least one segment")
    if rng is None:
        return crop_indices(num_segments, length)
    start = window_start(num_segments, length, rng)
    return np.arange(start, min(num_segments, start + length))


def pick_segments(streams: Mapping[str, np.ndarray], masks: Mapping[str, np.ndarray] | None,
                  indices: np.ndarray, length: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """``features {s: float32 [length, d_s]}`` of the segments ``indices`` (zero-padded, zero
    where the stream's own mask is False) and ``segment_mask bool [length]``."""
    n = len(indices)
    if n > length:
        raise ValueError(f"{n} indices for {length} positions")
    features = {}
    for s in STREAMS:
        x = np.asarray(streams[s], np.float32)
        out = np.zeros((length, x.shape[1]), np.float32)
        rows = x[indices]
        if masks is not None and s in masks:
            rows = np.where(np.asarray(masks[s], bool)[indices][:, None], rows, 0.0)
        out[:n] = rows
        features[s] = out
    segment_mask = np.zeros(length, bool)
    segment_mask[:n] = True
    return features, segment_mask


def _num_segments(example: Mapping[str, Any]) -> int:
    return int(np.asarray(example["streams"][STREAMS[0]]).shape[0])


# ----------------------------------------------------------------------------- video tasks

def video_example(example: Mapping[str, Any], num_segments: int,
                  rng: np.random.Generator | None, *, label_key: str | None = None,
                  target_keys: Sequence[str] = ()) -> dict[str, Any]:
    """One VE-8 / Ekman-6 / LIRIS-ACCEDE example at fixed shapes.

    ``label_key`` (classification) gives ``label`` int32; ``target_keys`` (regression) give
    ``target`` float32 ``[len(target_keys)]``. ``video_id`` is a str.
    """
    idx = segment_indices(_num_segments(example), num_segments, rng)
    features, segment_mask = pick_segments(example["streams"], example.get("masks"), idx,
                                           num_segments)
    out: dict[str, Any] = {"features": features, "segment_mask": segment_mask,
                           "valid": np.bool_(True), "video_id": as_text(example["video_id"])}
    if label_key is not None:
        out["label"] = np.int32(example[label_key])
    if target_keys:
        out["target"] = np.asarray([example[k] for k in target_keys], np.float32)
    return out


@dataclasses.dataclass(frozen=True)
class VideoTransform:
    """:func:`video_example` as the ``transform(example, rng)`` of ``make_batches``."""

    num_segments: int
    label_key: str | None = None
    target_keys: tuple[str, ...] = ()

    def __call__(self, example: Mapping[str, Any], rng: np.random.Generator | None
                 ) -> dict[str, Any]:
        return video_example(example, self.num_segments, rng, label_key=self.label_key,
                             target_keys=self.target_keys)


def video_padding(dims: Mapping[str, int], num_segments: int, *, classification: bool,
                  num_targets: int = 0) -> dict[str, Any]:
    """The ``valid=False`` filler example of evaluation batches (same keys as
    :func:`video_example`)."""
    out: dict[str, Any] = {
        "features": {s: np.zeros((num_segments, dims[s]), np.float32) for s in STREAMS},
        "segment_mask": np.zeros(num_segments, bool), "valid": np.bool_(False),
        "video_id": ""}
    if classification:
        out["label"] = np.int32(0)
    else:
        out["target"] = np.zeros(num_targets, np.float32)
    return out


# ----------------------------------------------------------------------------- pretraining

def select_comments(comment_segment: np.ndarray, start: int, length: int, max_comments: int,
                    rng: np.random.Generator | None) -> np.ndarray:
    """Indices (ascending) of the comments kept for a window ``[start, start + length)``.

    Comments outside the window are dropped; of the rest, at most ``max_comments`` are kept:
    a uniformly random subset with ``rng`` (training), the first ones without (evaluation).
    """
    seg = np.asarray(comment_segment, np.int64)
    inside = np.flatnonzero((seg >= start) & (seg < start + length))
    if len(inside) <= max_comments:
        return inside
    if rng is None:
        return inside[:max_comments]
    return np.sort(rng.choice(inside, size=max_comments, replace=False))


def tsc_example(example: Mapping[str, Any], num_segments: int, max_comments: int,
                rng: np.random.Generator | None) -> dict[str, Any]:
    """One video-TSC example at fixed shapes (window of consecutive segments + its comments).

    ``comment_segment`` is re-indexed to the window (0-based over its real segments); the
    padding comments have ``comment_mask`` False, token id 0 and segment 0.
    """
    total = _num_segments(example)
    start = window_start(total, num_segments, rng)
    idx = np.arange(start, min(total, start + num_segments))
    features, segment_mask = pick_segments(example["streams"], example.get("masks"), idx,
                                           num_segments)
    tokens = np.asarray(example["tokens"], np.int32)
    emotional = np.asarray(example["emotional"], bool)
    segment = np.asarray(example["comment_segment"], np.int32).reshape(-1)
    width = tokens.shape[1] if tokens.ndim == 2 else 0
    if tokens.ndim != 2 or emotional.shape != tokens.shape or segment.shape[0] != len(tokens):
        raise ValueError(f"example {as_text(example.get('example_id', '?'))}: tokens "
                         f"{tokens.shape}, emotional {emotional.shape}, comment_segment "
                         f"{segment.shape} do not agree")
    keep = select_comments(segment, start, len(idx), max_comments, rng)
    n = len(keep)
    out_tokens = np.zeros((max_comments, width), np.int32)
    out_emotional = np.zeros((max_comments, width), bool)
    out_segment = np.zeros(max_comments, np.int32)
    comment_mask = np.zeros(max_comments, bool)
    out_tokens[:n] = tokens[keep]
    out_emotional[:n] = emotional[keep]
    out_segment[:n] = segment[keep] - start
    comment_mask[:n] = True
    return {"features": features, "segment_mask": segment_mask, "tokens": out_tokens,
            "emotional": out_emotional, "comment_segment": out_segment,
            "comment_mask": comment_mask, "valid": np.bool_(True),
            "example_id": as_text(example["example_id"])}


@dataclasses.dataclass(frozen=True)
class TSCTransform:
    """:func:`tsc_example` as the ``transform(example, rng)`` of ``make_batches``."""

    num_segments: int
    max_comments: int

    def __call__(self, example: Mapping[str, Any], rng: np.random.Generator | None
                 ) -> dict[str, Any]:
        return tsc_example(example, self.num_segments, self.max_comments, rng)


def tsc_padding(dims: Mapping[str, int], num_segments: int, max_comments: int,
                num_words: int) -> dict[str, Any]:
    """The ``valid=False`` filler example of pretraining evaluation batches."""
    return {
        "features": {s: np.zeros((num_segments, dims[s]), np.float32) for s in STREAMS},
        "segment_mask": np.zeros(num_segments, bool),
        "tokens": np.zeros((max_comments, num_words), np.int32),
        "emotional": np.zeros((max_comments, num_words), bool),
        "comment_segment": np.zeros(max_comments, np.int32),
        "comment_mask": np.zeros(max_comments, bool),
        "valid": np.bool_(False), "example_id": ""}
