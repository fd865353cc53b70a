"""Shot boundaries from frame content: a cut where the HSV content of a frame differs enough
from the previous frame's.

The method is that of PySceneDetect's `ContentDetector` (default weights): each frame is
converted to HSV in OpenCV's 8-bit convention (H in [0, 180), S and V in [0, 255]); a frame's
score is the mean over the three channels of the mean absolute difference to the previous
frame (equal weights; the hue difference is not wrapped around the circle); a cut opens a new
shot at a frame whose score is >= `threshold` and which lies at least `min_shot_seconds` after
the last cut (the clip's first frame counts as one, so only the last shot may be shorter). The
minimum length is a plain rule here, in place of `ContentDetector`'s flash filter.

Frames wider than `SCORE_WIDTH` pixels are scored on a smaller copy: the mean of k x k pixel
blocks, k = width // SCORE_WIDTH (rows and columns beyond a multiple of k are dropped), the
block means rounded to uint8 before the HSV conversion. A uniform reduction like this leaves a
flat-colour cut's score unchanged and changes a textured one's little.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np

DEFAULT_THRESHOLD = 27.0
"""`ContentDetector`'s default threshold: PySceneDetect's scenedetect/detectors/content_detector.py,
`ContentDetector.__init__(threshold: float = 27.0, min_scene_len = 15, ...)`."""
DEFAULT_MIN_SHOT_SECONDS = 0.6
SCORE_WIDTH = 256
CHUNK_FRAMES = 64


def as_frames(frames: np.ndarray | Sequence[np.ndarray]) -> np.ndarray:
    """uint8 [T, H, W, 3] of a stacked array or a list of equally sized RGB frames."""
    if not isinstance(frames, np.ndarray):
        frames = np.stack([np.asarray(f) for f in frames]) if len(frames) else np.zeros(
            (0, 1, 1, 3), np.uint8)
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"frames must be [T, H, W, 3] RGB, got shape {frames.shape}")
    if frames.dtype != np.uint8:
        raise ValueError(f"frames must be uint8, got {frames.dtype}")
    return frames


_SHIFT = 12  # fractional bits of the fixed-point reciprocals below
_IDX = np.arange(256, dtype=np.float64)
with np.errstate(divide="ignore"):
    _S_RECIP = np.where(_IDX > 0, np.round((255 << _SHIFT) / _IDX), 0).astype(np.int32)
    _H_RECIP = np.where(_IDX > 0, np.round((180 << _SHIFT) / (6 * _IDX)), 0).astype(np.int32)


@functools.lru_cache(maxsize=1)
def _cv2():
    """OpenCV when installed (the `extract` extra), else None."""
    try:
        import cv2
    except ImportError:
        return None
    return cv2


def rgb_to_hsv(rgb: np.ndarray) -> np.ndarray:
    """uint8 HSV of uint8 RGB [..., 3] in OpenCV's 8-bit convention: V = max(R, G, B);
    S = 255 (V - min) / V (0 where V = 0); H = hue in degrees / 2, a negative hue wrapped by
    +180, so H is in [0, 180) (0 for grey pixels). The divisions are fixed-point, as OpenCV's:
    a multiply by the reciprocal rounded to 12 fractional bits, then rounding half up, so the
    result equals `cv2.cvtColor(..., COLOR_RGB2HSV)` and is within 1 of the exactly rounded
    value (a hue of 179 vs 0 counting as 1 apart)."""
    rgb = np.asarray(rgb)
    if rgb.dtype != np.uint8 or rgb.shape[-1:] != (3,):
        raise ValueError(f"rgb must be uint8 [..., 3], got {rgb.dtype} {rgb.shape}")
    cv2 = _cv2()
    if cv2 is not None and rgb.size:  # the same bytes (tested on 5.6M colours), ~20x faster
        flat = np.ascontiguousarray(rgb.reshape(-1, 1, 3))
        return cv2.cvtColor(flat, cv2.COLOR_RGB2HSV).reshape(rgb.shape)
    return rgb_to_hsv_fixed_point(rgb)


def rgb_to_hsv_fixed_point(rgb: np.ndarray) -> np.ndarray:
    """`rgb_to_hsv` in numpy (the path without OpenCV)."""
    c = np.asarray(rgb).astype(np.int32)
    r, g, b = c[..., 0], c[..., 1], c[..., 2]
    v = c.max(axis=-1)
    diff = v - c.min(axis=-1)
    half = 1 << (_SHIFT - 1)
    s = (diff * _S_RECIP[v] + half) >> _SHIFT
    # Hue in sixths of the circle times diff: red-max, green-max, blue-max sectors (in that
    # order of precedence when two channels tie for the maximum); 0 when diff = 0.
    n = np.where(v == r, g - b, np.where(v == g, b - r + 2 * diff, r - g + 4 * diff))
    h = (n * _H_RECIP[diff] + half) >> _SHIFT  # arithmetic shift: floor for negative n
    h = np.where(h < 0, h + 180, h)
    return np.stack([h, s, v], axis=-1).astype(np.uint8)


def _reduce(frames: np.ndarray, width: int = SCORE_WIDTH) -> np.ndarray:
    k = frames.shape[2] // width
    if k < 2:
        return frames
    t, h, w = frames.shape[0], frames.shape[1] // k * k, frames.shape[2] // k * k
    if h == 0:
        return frames
    blocks = frames[:, :h, :w].reshape(t, h // k, k, w // k, k, 3).astype(np.float32)
    return np.floor(blocks.mean(axis=(2, 4)) + 0.5).astype(np.uint8)


def frame_scores(frames: np.ndarray | Sequence[np.ndarray]) -> np.ndarray:
    """float32 [T] content score of each frame against the previous one (0 for the first):
    the mean over H, S and V of the mean absolute difference (see the module docstring)."""
    frames = as_frames(frames)
    scores = np.zeros(len(frames), np.float32)
    previous: np.ndarray | None = None
    for start in range(0, len(frames), CHUNK_FRAMES):
        hsv = rgb_to_hsv(_reduce(frames[start:start + CHUNK_FRAMES])).astype(np.int16)
        first = start  # the frame of hsv[0]
        if previous is not None:
            hsv, first = np.concatenate([previous, hsv]), start - 1
        previous = hsv[-1:]
        if len(hsv) < 2:
            continue
        # Sum per channel then divide: the mean of the three per-channel means.
        delta = np.abs(np.diff(hsv, axis=0)).reshape(len(hsv) - 1, -1, 3)
        per_channel = delta.sum(axis=1, dtype=np.int64) / delta.shape[1]
        scores[first + 1:first + len(hsv)] = per_channel.mean(axis=1)
    return scores


def cuts_from_scores(scores: np.ndarray, min_frames: int,
                     threshold: float = DEFAULT_THRESHOLD) -> list[int]:
    """Frames that open a new shot: score >= `threshold` and >= `min_frames` after the last cut
    (frame 0 counting as one)."""
    cuts: list[int] = []
    last = 0
    for t in range(1, len(scores)):
        if scores[t] >= threshold and t - last >= min_frames:
            cuts.append(t)
            last = t
    return cuts


def detect_shots(frames: np.ndarray | Sequence[np.ndarray], fps: float,
                 threshold: float = DEFAULT_THRESHOLD,
                 min_shot_seconds: float = DEFAULT_MIN_SHOT_SECONDS) -> list[tuple[int, int]]:
    """Shots of a clip as half-open frame ranges [start, end), in order, covering all frames
    (empty for no frames). `min_shot_seconds` becomes max(1, round(min_shot_seconds * fps))
    frames (0.6 s is 15 frames at 25 fps, `ContentDetector`'s default `min_scene_len`)."""
    if fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    frames = as_frames(frames)
    if len(frames) == 0:
        return []
    min_frames = max(1, round(min_shot_seconds * fps))
    bounds = [0, *cuts_from_scores(frame_scores(frames), min_frames, threshold), len(frames)]
    return [(bounds[i], bounds[i + 1]) for i in range(len(bounds) - 1)]
