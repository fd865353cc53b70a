"""Faces in a clip: detection with OpenCV's bundled Haar cascade, greedy IoU tracking over
frames, the main tracks of a clip, and fixed-size face crops.

OpenCV (`opencv-python-headless`, 4.x: OpenCV 5 no longer ships the Haar cascades) is imported
only when a `FaceDetector` is made; tracking and cropping need numpy and PIL only.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image

from jaxaffect.errors import FormatError

CASCADE = "haarcascade_frontalface_default.xml"
INSTALL = "pip install 'opencv-python-headless>=4.5,<5'"
DEFAULT_MAX_GAP = 5


class FaceDetectorError(FormatError):
    """The face detector cannot be made: OpenCV or its Haar cascade is missing."""


def _cascade(path: str | os.PathLike | None):
    try:
        import cv2
    except ImportError:
        raise FaceDetectorError(f"face detection needs OpenCV: {INSTALL}") from None
    if not hasattr(cv2, "CascadeClassifier"):
        raise FaceDetectorError(
            f"OpenCV {cv2.__version__} has no Haar cascades (gone in 5.x): {INSTALL}")
    if path is None:
        path = os.path.join(getattr(getattr(cv2, "data", None), "haarcascades", ""), CASCADE)
    path = os.fspath(path)
    try:
        cascade = cv2.CascadeClassifier(path) if os.path.isfile(path) else None
    except (cv2.error, SystemError):  # a file OpenCV cannot parse
        cascade = None
    if cascade is None or cascade.empty():
        raise FaceDetectorError(f"{path}: not a readable Haar cascade ({INSTALL})")
    return cv2, cascade


def _sorted_boxes(boxes: np.ndarray) -> np.ndarray:
    """Boxes ordered by x0, then y0, x1, y1 (a total order: the same set gives the same array)."""
    if len(boxes) == 0:
        return boxes
    return boxes[np.lexsort((boxes[:, 3], boxes[:, 2], boxes[:, 1], boxes[:, 0]))]


class FaceDetector:
    """Frontal faces with OpenCV's `haarcascade_frontalface_default.xml` (or `cascade_path`).

    `min_size_fraction` of the frame's short side is the smallest face searched for;
    `scale_factor` and `min_neighbors` go to `detectMultiScale`. The cascade runs on the
    grey image (OpenCV's RGB -> grey weights), without histogram equalisation. A detector
    holds an OpenCV object that does not pickle: make one per worker process."""

    def __init__(self, min_size_fraction: float = 0.08, scale_factor: float = 1.1,
                 min_neighbors: int = 5, cascade_path: str | os.PathLike | None = None):
        self.min_size_fraction = min_size_fraction
        self.scale_factor = scale_factor
        self.min_neighbors = min_neighbors
        self._cv2, self._cascade = _cascade(cascade_path)

    def detect(self, frame: np.ndarray) -> np.ndarray:
        """float32 [n, 4] boxes (x0, y0, x1, y1) in pixels of an RGB uint8 [H, W, 3] frame,
        clipped to the frame and sorted by (x0, y0, x1, y1); [0, 4] when there is none."""
        frame = np.asarray(frame)
        if frame.ndim != 3 or frame.shape[-1] != 3 or frame.dtype != np.uint8:
            raise ValueError(f"frame must be uint8 [H, W, 3], got {frame.dtype} {frame.shape}")
        h, w = frame.shape[:2]
        grey = self._cv2.cvtColor(np.ascontiguousarray(frame), self._cv2.COLOR_RGB2GRAY)
        side = max(1, round(self.min_size_fraction * min(h, w)))
        found = self._cascade.detectMultiScale(grey, scaleFactor=self.scale_factor,
                                               minNeighbors=self.min_neighbors,
                                               minSize=(side, side))
        xywh = np.asarray(found, np.float32).reshape(-1, 4)
        boxes = np.concatenate([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], axis=1)
        boxes = np.clip(boxes, 0, np.array([w, h, w, h], np.float32))
        return _sorted_boxes(boxes.astype(np.float32))


def iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """float64 [n, m] intersection over union of boxes a [n, 4] and b [m, 4] (0 for empty)."""
    a, b = np.asarray(a, np.float64).reshape(-1, 4), np.asarray(b, np.float64).reshape(-1, 4)
    lo = np.maximum(a[:, None, :2], b[None, :, :2])
    hi = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(hi - lo, 0, None), axis=-1)
    area = lambda x: np.prod(np.clip(x[:, 2:] - x[:, :2], 0, None), axis=-1)
    union = area(a)[:, None] + area(b)[None, :] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


@dataclass
class Track:
    """One face over time: `frames` int64 [n] (increasing) where it was detected and its
    `boxes` float32 [n, 4] there."""

    frames: np.ndarray
    boxes: np.ndarray

    @property
    def start(self) -> int:
        return int(self.frames[0])

    @property
    def end(self) -> int:
        """One past the last detected frame."""
        return int(self.frames[-1]) + 1

    def __len__(self) -> int:
        return len(self.frames)

    def box_at(self, t: int) -> np.ndarray | None:
        """float32 [4] box at frame t: the detection there, linearly interpolated between the
        nearest detections around t inside the track's span, None outside it."""
        if t < self.frames[0] or t > self.frames[-1]:
            return None
        i = int(np.searchsorted(self.frames, t))
        if self.frames[i] == t:
            return self.boxes[i].copy()
        t0, t1 = self.frames[i - 1], self.frames[i]
        a = (t - t0) / (t1 - t0)
        box = (1 - a) * self.boxes[i - 1].astype(np.float64) + a * self.boxes[i]
        return box.astype(np.float32)


def track_faces(boxes_per_frame: Sequence[np.ndarray], iou_threshold: float = 0.3,
                max_gap: int = DEFAULT_MAX_GAP) -> list[Track]:
    """Tracks of per-frame boxes by greedy IoU association, in order of creation (first frame,
    then box order within it).

    At each frame, every open track's last box is matched against the frame's boxes: the pair
    with the highest IoU (>= `iou_threshold`) first, ties to the earlier track then the earlier
    box, until no pair is left. Unmatched boxes open new tracks. A track stays open while at
    most `max_gap` frames in a row pass without a match."""
    frames: list[list[int]] = []
    boxes: list[list[np.ndarray]] = []
    open_ids: list[int] = []
    for t, found in enumerate(boxes_per_frame):
        found = np.asarray(found, np.float32).reshape(-1, 4)
        open_ids = [i for i in open_ids if t - frames[i][-1] - 1 <= max_gap]
        taken: set[int] = set()
        if open_ids and len(found):
            scores = iou(np.stack([boxes[i][-1] for i in open_ids]), found)
            rows, cols = np.nonzero(scores >= iou_threshold)
            order = np.lexsort((cols, rows, -scores[rows, cols]))
            used: set[int] = set()
            for k in order:
                r, c = int(rows[k]), int(cols[k])
                if r in used or c in taken:
                    continue
                used.add(r)
                taken.add(c)
                frames[open_ids[r]].append(t)
                boxes[open_ids[r]].append(found[c])
        for c in range(len(found)):
            if c not in taken:
                open_ids.append(len(frames))
                frames.append([t])
                boxes.append([found[c]])
    return [Track(np.asarray(f, np.int64), np.stack(b).astype(np.float32))
            for f, b in zip(frames, boxes)]


def main_tracks(tracks: Sequence[Track], k: int = 2) -> list[Track]:
    """The `k` tracks with the most detected frames (ties: the earlier start, then the earlier
    in `tracks`), ordered by first appearance: person A is the first of them to appear."""
    ranked = sorted(range(len(tracks)), key=lambda i: (-len(tracks[i]), tracks[i].start, i))
    chosen = sorted(ranked[:k], key=lambda i: (tracks[i].start, i))
    return [tracks[i] for i in chosen]


def name_tracks(tracks: Sequence[Track], boxes_per_frame: Sequence[np.ndarray],
                members: Sequence[np.ndarray], speakers: Sequence[int]) -> dict[int, int]:
    """{track index: speaker id} from who speaks when one face is on screen.

    `members[j]` are the frames of cue j and `speakers[j]` its speaker's id (negative: nobody
    to name). During a cue, a track that is the only face detected in at least half of the
    cue's frames gets a vote of that many frames for the cue's speaker; a track takes the
    speaker with the most votes (ties: the lower id). Tracks without votes are not named."""
    owner = np.full(len(boxes_per_frame), -1, np.int64)
    for t, track in enumerate(tracks):
        for f in track.frames:
            if len(boxes_per_frame[int(f)]) == 1:
                owner[int(f)] = t
    votes: dict[tuple[int, int], int] = {}
    for frames, speaker in zip(members, speakers):
        if speaker < 0 or not len(frames):
            continue
        seen = owner[np.asarray(frames, np.int64)]
        for t in np.unique(seen[seen >= 0]):
            count = int((seen == t).sum())
            if 2 * count >= len(frames):
                votes[(int(t), int(speaker))] = votes.get((int(t), int(speaker)), 0) + count
    named: dict[int, tuple[int, int]] = {}
    for (t, c), n in sorted(votes.items()):
        if t not in named or n > named[t][1]:  # ties keep the lower id (sorted)
            named[t] = (c, n)
    return {t: c for t, (c, _) in sorted(named.items())}


def crop(frame: np.ndarray, box: np.ndarray | Sequence[float], size: int = 64,
         margin: float = 0.2) -> np.ndarray:
    """uint8 [size, size, 3] crop of `box` (x0, y0, x1, y1): each side moved out by `margin`
    times the box's width (left, right) or height (top, bottom), clipped to the frame, rounded
    outwards to whole pixels and resized with PIL bilinear (a crop clipped at the frame's edge
    is stretched to the square). ValueError when that region has no pixel in the frame."""
    frame = np.asarray(frame)
    h, w = frame.shape[:2]
    x0, y0, x1, y1 = (float(v) for v in box)
    mx, my = margin * max(x1 - x0, 0.0), margin * max(y1 - y0, 0.0)
    left, top = max(0, int(np.floor(x0 - mx))), max(0, int(np.floor(y0 - my)))
    right, bottom = min(w, int(np.ceil(x1 + mx))), min(h, int(np.ceil(y1 + my)))
    if right <= left or bottom <= top:
        raise ValueError(f"box {tuple(box)} does not overlap the {w}x{h} frame")
    patch = Image.fromarray(np.ascontiguousarray(frame[top:bottom, left:right]))
    return np.asarray(patch.resize((size, size), Image.Resampling.BILINEAR))


@functools.lru_cache(maxsize=1)
def shared_detector() -> FaceDetector:
    """A FaceDetector with the default settings, made once per process (detectors cannot be
    pickled to worker processes)."""
    return FaceDetector()


GEOMETRY_DIM = 4


def box_geometry(boxes: np.ndarray, height: int, width: int) -> np.ndarray:
    """float64 [4]: mean over `boxes` [n, 4] (x0, y0, x1, y1) of the centre x / width,
    centre y / height, box width / width and box height / height."""
    b = np.asarray(boxes, np.float64).reshape(-1, 4)
    rel = np.stack([(b[:, 0] + b[:, 2]) / 2 / width, (b[:, 1] + b[:, 3]) / 2 / height,
                    (b[:, 2] - b[:, 0]) / width, (b[:, 3] - b[:, 1]) / height], axis=1)
    return rel.mean(axis=0)


def face_descriptor(frames: Sequence[np.ndarray], boxes: np.ndarray, size: int = 64
                    ) -> np.ndarray:
    """float32 [FACE_DESCRIPTOR_DIM]: the colour descriptor of the faces' crops (one per
    frame and box, `crop` at `size`) and their mean `box_geometry` (classical features, no
    learned weights)."""
    from jaxaffect.features import visual

    boxes = np.asarray(boxes).reshape(-1, 4)
    crops = np.stack([crop(f, b, size=size) for f, b in zip(frames, boxes)])
    h, w = np.asarray(frames[0]).shape[:2]
    return np.concatenate([visual.colour_descriptor(crops),
                           box_geometry(boxes, h, w)]).astype(np.float32)


def face_descriptor_dim() -> int:
    from jaxaffect.features import visual

    return visual.COLOUR_DIM + GEOMETRY_DIM
