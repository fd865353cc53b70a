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


def _combination_stats(mean: np.ndarray, second: np.ndarray, w: np.ndarray
                       ) -> tuple[np.ndarray, np.ndarray]:
    """Per frame mean and variance of the pixel values w . rgb, from the frames' RGB means
    [t, 3] and second moments [t, 3, 3]."""
    m = mean @ w
    return m, np.maximum(np.einsum("c,tcd,d->t", w, second, w) - m**2, 0.0)


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
    channel_counts = np.zeros((3, 256), np.float64)  # H, S, V value counts
    colourful = np.zeros(t, np.float64)
    bright = np.zeros(t, np.float64)
    contrast = np.zeros(t, np.float64)
    # Per-pixel linear combinations of RGB / 255 (colour opponents, luma): their means and
    # variances per frame follow from each frame's RGB mean and 3 x 3 second-moment matrix,
    # exact in float64 (sums of integer products below 2^53).
    rg, yb, luma = np.array([1.0, -1.0, 0.0]), np.array([0.5, 0.5, -1.0]), np.array(LUMA)
    for start in range(0, t, shots.CHUNK_FRAMES):
        chunk = frames[start:start + shots.CHUNK_FRAMES]
        hsv = shots.rgb_to_hsv(chunk)
        h, sat, val = (hsv[..., c].astype(np.int32) for c in range(3))
        index = ((h * HUE_BINS // 180) * SAT_BINS + sat * SAT_BINS // 256) * VAL_BINS \
            + val * VAL_BINS // 256
        hist += np.bincount(index.ravel(), minlength=HIST_DIM)
        for ch in range(3):
            channel_counts[ch] += np.bincount(hsv[..., ch].ravel(), minlength=256)
        pix = chunk.reshape(len(chunk), -1, 3).astype(np.float64)
        n = pix.shape[1]
        mean = pix.sum(axis=1) / (255.0 * n)  # [t, 3]
        second = np.einsum("tpc,tpd->tcd", pix, pix, optimize=True) / (255.0**2 * n)
        (m_rg, v_rg), (m_yb, v_yb), (m_l, v_l) = (_combination_stats(mean, second, w)
                                                  for w in (rg, yb, luma))
        sl = slice(start, start + len(chunk))
        colourful[sl] = np.sqrt(v_rg + v_yb) + 0.3 * np.sqrt(m_rg**2 + m_yb**2)
        bright[sl] = m_l
        contrast[sl] = np.sqrt(v_l)
    pixels = frames.shape[0] * frames.shape[1] * frames.shape[2]
    values = np.arange(256, dtype=np.float64)
    scale = np.array([180.0, 255.0, 255.0])[:, None]
    mean = (channel_counts * values).sum(axis=1) / pixels / scale[:, 0]
    mean_sq = (channel_counts * values**2).sum(axis=1) / pixels / scale[:, 0] ** 2
    std = np.sqrt(np.maximum(mean_sq - mean**2, 0.0))
    stats_hsv = np.stack([mean, std], axis=1).ravel()
    out = np.concatenate([hist / pixels, stats_hsv, [colourful.mean(), bright.mean(),
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
