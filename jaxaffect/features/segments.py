"""Cutting a clip's time line into segments, and finding each segment's frames.

Segments are half-open intervals [start, end) in seconds. Fixed-length segments tile the clip
from 0; the last one is kept when it is shorter (a 2.5 s clip in 1 s segments has three). A
frame belongs to the segment holding its presentation time `index / fps`.
"""

from __future__ import annotations

import math

import numpy as np


def fixed_bounds(duration: float, seconds: float) -> np.ndarray:
    """float64 [S, 2] (start, end) of consecutive `seconds`-long segments covering
    [0, duration); S = ceil(duration / seconds), at least 1."""
    if seconds <= 0:
        raise ValueError(f"segment length must be > 0, got {seconds}")
    # A duration a hair over a whole number of segments (rounding in the container's
    # timestamps) does not open a nearly empty segment.
    count = max(1, math.ceil(duration / seconds - 1e-6))
    starts = np.arange(count, dtype=np.float64) * seconds
    return np.stack([starts, np.minimum(starts + seconds, max(duration, seconds))], axis=1)


def shot_bounds(shots: list[tuple[int, int]], fps: float) -> np.ndarray:
    """float64 [S, 2] segment times of half-open frame ranges (e.g. detected shots)."""
    return np.asarray([(a / fps, b / fps) for a, b in shots], np.float64).reshape(-1, 2)


def frames_in(bounds: np.ndarray, num_frames: int, fps: float) -> list[np.ndarray]:
    """For each segment, the int indices of the frames whose time falls inside it. A segment
    shorter than a frame's duration that no frame starts in (e.g. a short last segment, or
    segments shorter than 1 / fps) gets the one frame on screen at its start; a segment past
    the last frame's display gets none."""
    times = np.arange(num_frames) / fps
    out = []
    for start, end in bounds:
        inside = np.flatnonzero((times >= start) & (times < end))
        on_screen = int(np.floor(start * fps + 1e-9))
        if not len(inside) and 0 <= on_screen < num_frames:
            inside = np.array([on_screen])
        out.append(inside)
    return out
