"""Classical hand-made descriptors of a video segment (no learned weights): colour statistics
and frame-difference motion statistics, of the kind early affective-video baselines used.

Input: a segment's frames, uint8 [T, H, W, 3] RGB (or a list of equally sized frames). Output:
a float32 vector of fixed length, computed in float64 and rounded once, so the same frames give
the same bytes. HSV is OpenCV's 8-bit convention (`shots.rgb_to_hsv`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from jaxaffect.features import shots

#: recorded with extracted features; change it whenever a descriptor's values change.
VERSION = "v1"
HUE_BINS, SAT_BINS, VAL_BINS = 8, 3, 3
HIST_DIM = HUE_BINS * SAT_BINS * VAL_BINS
COLOUR_DIM = HIST_DIM + 6 + 1 + 2
GRID = 4
MOTION_SIDE = 56
CHANGE_THRESHOLD = 0.1
MOTION_DIM = 2 + GRID * GRID + 1 + 4
LUMA = (0.299, 0.587, 0.114)  # ITU-R BT.601

Frames = np.ndarray | Sequence[np.ndarray]


def _luma(frames: np.ndarray) -> np.ndarray:
    """float64 [T, H, W] BT.601 luma in [0, 1]."""
    rgb = frames.astype(np.float64)
    return (LUMA[0] * rgb[..., 0] + LUMA[1] * rgb[..., 1] + LUMA[2] * rgb[..., 2]) / 255.0


def colour_descriptor(frames: Frames) -> np.ndarray:
    """float32 [COLOUR_DIM = 81] colour statistics of a segment:

    - [0:72] HSV histogram, 8 hue x 3 saturation x 3 value bins of equal width (hue bin
      H * 8 // 180, saturation S * 3 // 256, value V * 3 // 256), index (hue * 3 + sat) * 3 +
      val; each frame's histogram sums to 1 and the segment's is their mean;
    - [72:78] mean and standard deviation of H / 180, S / 255, V / 255 over all pixels of the
      segment, in the order mean H, std H, mean S, std S, mean V, std V (hue taken as a linear
      value, not on the circle);
    - [78] colourfulness (Hasler & Suesstrunk 2003) of RGB in [0, 1], the mean over frames of
      sqrt(std(rg)^2 + std(yb)^2) + 0.3 sqrt(mean(rg)^2 + mean(yb)^2), rg = R - G,
      yb = (R + G) / 2 - B (their scale divided by 255);
    - [79:81] brightness and contrast: the mean BT.601 luma in [0, 1], and the mean over frames
      of its standard deviation (RMS contrast).
    """
    frames = shots.as_frames(frames)
    if len(frames) == 0:
        raise ValueError("a colour descriptor needs at least one frame")
    t = len(frames)
    hist = np.zeros(HIST_DIM, np.float64)
    moments = np.zeros((3, 2), np.float64)  # per channel: sum, sum of squares
    colourful = np.zeros(t, np.float64)
    bright = np.zeros(t, np.float64)
    contrast = np.zeros(t, np.float64)
    for start in range(0, t, shots.CHUNK_FRAMES):
        chunk = frames[start:start + shots.CHUNK_FRAMES]
        hsv = shots.rgb_to_hsv(chunk).astype(np.int64)
        index = ((hsv[..., 0] * HUE_BINS // 180) * SAT_BINS
                 + hsv[..., 1] * SAT_BINS // 256) * VAL_BINS + hsv[..., 2] * VAL_BINS // 256
        hist += np.bincount(index.ravel(), minlength=HIST_DIM)
        scaled = hsv.reshape(-1, 3) / np.array([180.0, 255.0, 255.0])
        moments[:, 0] += scaled.sum(axis=0)
        moments[:, 1] += np.square(scaled).sum(axis=0)
        rgb = chunk.astype(np.float64) / 255.0
        rg = (rgb[..., 0] - rgb[..., 1]).reshape(len(chunk), -1)
        yb = (0.5 * (rgb[..., 0] + rgb[..., 1]) - rgb[..., 2]).reshape(len(chunk), -1)
        colourful[start:start + len(chunk)] = (
            np.sqrt(rg.var(axis=1) + yb.var(axis=1))
            + 0.3 * np.sqrt(rg.mean(axis=1) ** 2 + yb.mean(axis=1) ** 2))
        luma = _luma(chunk).reshape(len(chunk), -1)
        bright[start:start + len(chunk)] = luma.mean(axis=1)
        contrast[start:start + len(chunk)] = luma.std(axis=1)
    pixels = frames.shape[0] * frames.shape[1] * frames.shape[2]
    mean = moments[:, 0] / pixels
    std = np.sqrt(np.maximum(moments[:, 1] / pixels - mean**2, 0.0))
    stats = np.stack([mean, std], axis=1).ravel()
    out = np.concatenate([hist / pixels, stats, [colourful.mean(), bright.mean(),
                                                 contrast.mean()]])
    return out.astype(np.float32)


def _small_grey(frames: np.ndarray) -> np.ndarray:
    """float64 [T, h, w] luma in [0, 1], reduced by the mean of k x k blocks,
    k = min(H, W) // MOTION_SIDE (no reduction when k < 2; rows and columns beyond a multiple
    of k dropped)."""
    k = min(frames.shape[1:3]) // MOTION_SIDE
    if k < 2:
        return _luma(frames)
    h, w = frames.shape[1] // k * k, frames.shape[2] // k * k
    parts = []
    for start in range(0, len(frames), shots.CHUNK_FRAMES):
        grey = _luma(frames[start:start + shots.CHUNK_FRAMES, :h, :w])
        parts.append(grey.reshape(len(grey), h // k, k, w // k, k).mean(axis=(2, 4)))
    return np.concatenate(parts)


def motion_descriptor(frames: Frames) -> np.ndarray:
    """float32 [MOTION_DIM = 23] frame-difference statistics of a segment. With d the absolute
    difference of consecutive grey frames (BT.601 luma in [0, 1], reduced so the short side is
    about MOTION_SIDE pixels by block means, see `_small_grey`):

    - [0:2] mean and standard deviation of d over all pixels of all frame pairs;
    - [2:18] a 4 x 4 grid (row-major, cells split at floor(i * size / 4)) of the mean of d^2;
    - [18] the fraction of pixels with d > CHANGE_THRESHOLD (0.1);
    - [19:23] the shot-change scores (`shots.frame_scores`, frames 1..T-1) divided by 255:
      mean, standard deviation, maximum, and the fraction of pairs whose unscaled score is
      >= `shots.DEFAULT_THRESHOLD` (hard-cut rate).

    A segment of one frame has no motion: all zeros.
    """
    frames = shots.as_frames(frames)
    if len(frames) == 0:
        raise ValueError("a motion descriptor needs at least one frame")
    out = np.zeros(MOTION_DIM, np.float64)
    if len(frames) < 2:
        return out.astype(np.float32)
    grey = _small_grey(frames)
    d = np.abs(np.diff(grey, axis=0))
    out[0], out[1] = d.mean(), d.std()
    h, w = d.shape[1:]
    rows = [i * h // GRID for i in range(GRID + 1)]
    cols = [j * w // GRID for j in range(GRID + 1)]
    energy = np.square(d)
    for i in range(GRID):
        for j in range(GRID):
            cell = energy[:, rows[i]:rows[i + 1], cols[j]:cols[j + 1]]
            out[2 + i * GRID + j] = cell.mean() if cell.size else 0.0
    out[18] = (d > CHANGE_THRESHOLD).mean()
    scores = shots.frame_scores(frames)[1:].astype(np.float64)
    out[19:23] = [scores.mean() / 255, scores.std() / 255, scores.max() / 255,
                  (scores >= shots.DEFAULT_THRESHOLD).mean()]
    return out.astype(np.float32)


DESCRIPTORS: dict[str, tuple[Callable[[Frames], np.ndarray], int]] = {
    "colour": (colour_descriptor, COLOUR_DIM),
    "motion": (motion_descriptor, MOTION_DIM),
}
