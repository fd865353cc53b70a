"""Per-example transforms of the ERATO input pipeline (pure numpy, no tensorflow).

`pad_or_crop` turns one decoded clip (variable T) into fixed shapes; `padding_example` is the
all-zero `valid=False` filler of evaluation batches; `collate` stacks examples into a batch.
`pad_or_crop_batch` does all three for a whole batch at once (what the input pipeline uses):
each clip is copied once, straight into the batch arrays.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from jaxaffect.data.sequences import as_text, crop_indices
from jaxaffect.families.perr.erato_format import STREAMS

# Keys of one transformed example / of a batch (leading batch axis added by `collate`).
EXAMPLE_KEYS: tuple[str, ...] = (
    "streams", "masks", "step_mask", "label", "coarse_label", "valid", "clip_id")


def pad_or_crop(example: Mapping[str, Any], max_steps: int) -> dict[str, Any]:
    """Pads or crops one clip to `max_steps` steps.

    Args:
      example: a decoded example: `streams` {s: [T, d_s]} and `masks` {s: [T]} for every s in
        STREAMS; optionally `label`, `coarse_label`, `clip_id` (bytes or str), `num_steps`.
      max_steps: the fixed number of steps T of the output.

    Returns:
      `streams` {s: float32 [max_steps, d_s]} (zero wherever the output mask is False),
      `masks` {s: bool [max_steps]} (stream present and step within the clip), `step_mask`
      bool [max_steps] (step within the clip after cropping), `valid` True, and `label`,
      `coarse_label` (int32) and `clip_id` (str) when the input has them.
    """
    streams_in, masks_in = example["streams"], example["masks"]
    num_steps = int(np.asarray(masks_in[STREAMS[0]]).shape[0])
    keep = crop_indices(num_steps, max_steps)
    length = keep.shape[0]
    step_mask = np.zeros(max_steps, bool)
    step_mask[:length] = True
    streams, masks = {}, {}
    for s in STREAMS:
        x = np.asarray(streams_in[s], np.float32)
        m = np.asarray(masks_in[s], bool)
        if x.shape[0] != num_steps or m.shape[0] != num_steps:
            raise ValueError(f"stream {s!r}: T={x.shape[0]} and mask T={m.shape[0]}, "
                             f"expected {num_steps}")
        out_m = np.zeros(max_steps, bool)
        out_m[:length] = m[keep]
        out_x = np.zeros((max_steps, x.shape[1]), np.float32)
        # Absent steps are zero in the output whatever the file holds there.
        out_x[:length] = np.where(out_m[:length, None], x[keep], 0.0)
        streams[s], masks[s] = out_x, out_m
    out: dict[str, Any] = {"streams": streams, "masks": masks, "step_mask": step_mask,
                           "valid": np.bool_(True)}
    for key in ("label", "coarse_label"):
        if key in example:
            out[key] = np.int32(example[key])
    if "clip_id" in example:
        out["clip_id"] = as_text(example["clip_id"])
    return out


def padding_example(dims: Mapping[str, int], max_steps: int) -> dict[str, Any]:
    """An all-zero example with `valid=False` (fills the last evaluation batch)."""
    return {
        "streams": {s: np.zeros((max_steps, dims[s]), np.float32) for s in STREAMS},
        "masks": {s: np.zeros(max_steps, bool) for s in STREAMS},
        "step_mask": np.zeros(max_steps, bool),
        "label": np.int32(0),
        "coarse_label": np.int32(0),
        "valid": np.bool_(False),
        "clip_id": "",
    }


def collate(examples: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Stacks transformed examples into a numpy batch; `clip_id` becomes an object array of str."""
    clip_id = np.empty(len(examples), dtype=object)
    clip_id[:] = [e["clip_id"] for e in examples]
    return {
        "streams": {s: np.stack([e["streams"][s] for e in examples]) for s in STREAMS},
        "masks": {s: np.stack([e["masks"][s] for e in examples]) for s in STREAMS},
        "step_mask": np.stack([e["step_mask"] for e in examples]),
        "label": np.asarray([e["label"] for e in examples], np.int32),
        "coarse_label": np.asarray([e["coarse_label"] for e in examples], np.int32),
        "valid": np.asarray([e["valid"] for e in examples], bool),
        "clip_id": clip_id,
    }


def pad_or_crop_batch(examples: Sequence[Mapping[str, Any] | None], dims: Mapping[str, int],
                      max_steps: int) -> dict[str, Any]:
    """`collate` of `pad_or_crop(e, max_steps)` for every example, `padding_example` for None.

    `dims` {s: d_s} are the stream sizes of the build; a clip whose T or d_s disagree raises
    ValueError naming the stream.
    """
    size = len(examples)
    streams = {s: np.zeros((size, max_steps, dims[s]), np.float32) for s in STREAMS}
    masks = {s: np.zeros((size, max_steps), bool) for s in STREAMS}
    lengths = np.zeros(size, np.int64)
    labels = np.zeros((2, size), np.int32)
    clip_id = np.empty(size, dtype=object)
    clip_id[:] = ""
    for i, example in enumerate(examples):
        if example is None:
            continue
        streams_in, masks_in = example["streams"], example["masks"]
        num_steps = int(np.asarray(masks_in[STREAMS[0]]).shape[0])
        keep = None if num_steps <= max_steps else crop_indices(num_steps, max_steps)
        length = lengths[i] = min(num_steps, max_steps)
        for s in STREAMS:
            x, m = np.asarray(streams_in[s]), np.asarray(masks_in[s])
            if x.shape != (num_steps, dims[s]) or m.shape != (num_steps,):
                raise ValueError(f"stream {s!r}: shape {x.shape} and mask shape {m.shape}, "
                                 f"expected ({num_steps}, {dims[s]}) and ({num_steps},)")
            if keep is None:
                streams[s][i, :length], masks[s][i, :length] = x, m
            else:
                streams[s][i], masks[s][i] = x[keep], m[keep]
        labels[0, i], labels[1, i] = example["label"], example["coarse_label"]
        clip_id[i] = as_text(example["clip_id"])
    step_mask = np.arange(max_steps) < lengths[:, None]
    for s in STREAMS:  # absent steps are zero whatever the file holds there
        absent = step_mask > masks[s]
        if absent.any():
            streams[s][absent] = 0.0
    return {"streams": streams, "masks": masks, "step_mask": step_mask, "label": labels[0],
            "coarse_label": labels[1], "valid": np.asarray([e is not None for e in examples]),
            "clip_id": clip_id}
