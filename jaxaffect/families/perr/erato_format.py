"""The ERATO manual_dir layout: label sets, modal streams, and readers/writers.

ERATO (Gao et al., "Pairwise Emotional Relationship Recognition in Drama Videos") is not
released in a public file format, so jaxaffect defines the layout a user converts to::

    <manual_dir>/
      annotations.csv            header: clip_id,label,split
                                 label: hostile|tense|mild|intimate|neutral
                                 split: train|test
      features/<clip_id>.npz     one file per clip, for every stream name s in STREAMS:
                                   s            float32 [T, d_s]   feature of stream s at step t
                                   s + "_mask"  bool    [T]        True where the stream is present

All streams of one clip share the same T (the clip's sampled time steps); feature sizes d_s
may differ between streams but must be the same for every clip of a dataset. Absent steps
should hold zeros (the paper zero-pads missing features, Sec. 4.1); the mask is what the
models read.

The same per-clip file is what `jaxaffect predict --features` takes.
"""

from __future__ import annotations

import csv
import dataclasses
import io
from collections.abc import Mapping

import numpy as np
from etils import epath

from jaxaffect.data.release_files import (
    check_streams,
    float_array,
    inside,
    mask_array,
    read_npz,
    read_utf8,
    write_npz,
)
from jaxaffect.errors import FormatError

# The five modal streams of the paper (Sec. 5.1): person A, person B, background, audio, text.
STREAMS: tuple[str, ...] = ("person_a", "person_b", "background", "audio", "text")

# Fine labels (paper Table 1/2). The index is the class id used everywhere.
FINE_LABELS: tuple[str, ...] = ("hostile", "tense", "mild", "intimate", "neutral")
# Coarse labels; hostile/tense are negative, mild/intimate positive (paper Table 1).
COARSE_LABELS: tuple[str, ...] = ("negative", "neutral", "positive")
FINE_TO_COARSE: dict[str, str] = {
    "hostile": "negative",
    "tense": "negative",
    "mild": "positive",
    "intimate": "positive",
    "neutral": "neutral",
}
# fine id -> coarse id, as an array for vectorised mapping.
FINE_TO_COARSE_ID = np.array(
    [COARSE_LABELS.index(FINE_TO_COARSE[name]) for name in FINE_LABELS], dtype=np.int32
)
SPLITS: tuple[str, ...] = ("train", "test")
ANNOTATION_FILE = "annotations.csv"
FEATURE_DIR = "features"
ANNOTATION_HEADER = ("clip_id", "label", "split")


class EratoFormatError(FormatError):
    """A file of an ERATO-layout manual_dir is missing or malformed (the message names it)."""


@dataclasses.dataclass(frozen=True)
class Annotation:
    """One row of annotations.csv; `line` is its 1-based line (0 when not read from a file)."""

    clip_id: str
    label: str
    split: str
    line: int = dataclasses.field(default=0, compare=False)

    @property
    def label_id(self) -> int:
        return FINE_LABELS.index(self.label)

    @property
    def coarse_label(self) -> str:
        return FINE_TO_COARSE[self.label]


def read_annotations(manual_dir: str | epath.PathLike) -> list[Annotation]:
    """Reads and validates `annotations.csv`; every error is one line naming the file and line.

    Refused: a missing file, bytes that are not UTF-8, a wrong header, a row without exactly 3
    fields, a clip_id that is not a plain file name (empty, '/', '\\', control characters), an
    unknown label or split, a duplicate clip_id, no rows at all, and an empty train or test
    split. Blank lines are skipped. The feature paths are checked by `clip_feature_path`.
    """
    path = epath.Path(manual_dir) / ANNOTATION_FILE
    if not path.exists():
        raise EratoFormatError(f"{path}: annotation file not found (expected {ANNOTATION_HEADER})")
    try:
        text = read_utf8(path)
    except FormatError as e:
        raise EratoFormatError(str(e)) from None
    rows: list[Annotation] = []
    first_line: dict[str, int] = {}
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader, None)
    if header is None or tuple(h.strip() for h in header) != ANNOTATION_HEADER:
        raise EratoFormatError(f"{path}:1: header must be {','.join(ANNOTATION_HEADER)}, "
                               f"got {header!r}")
    end = reader.line_num
    for row in reader:
        # The row's first line (a quoted field may span several lines).
        lineno, end = end + 1, reader.line_num
        if not row or all(not c.strip() for c in row):
            continue
        if len(row) != 3:
            raise EratoFormatError(
                f"{path}:{lineno}: expected 3 fields, got {len(row)}: {row!r}")
        clip_id, label, split = (c.strip() for c in row)
        _check_clip_id(clip_id, f"{path}:{lineno}")
        if label not in FINE_LABELS:
            raise EratoFormatError(
                f"{path}:{lineno}: unknown label {label!r} (one of {', '.join(FINE_LABELS)})")
        if split not in SPLITS:
            raise EratoFormatError(
                f"{path}:{lineno}: unknown split {split!r} (one of {', '.join(SPLITS)})")
        if clip_id in first_line:
            raise EratoFormatError(f"{path}:{lineno}: duplicate clip_id {clip_id!r} (first on "
                                   f"line {first_line[clip_id]})")
        first_line[clip_id] = lineno
        rows.append(Annotation(clip_id, label, split, line=lineno))
    if not rows:
        raise EratoFormatError(f"{path}: no annotation rows")
    for split in SPLITS:
        if not any(r.split == split for r in rows):
            raise EratoFormatError(
                f"{path}: split {split!r} is empty ({len(rows)} rows, none in {split!r}; "
                f"{' and '.join(SPLITS)} each need at least one clip)")
    return rows


def _check_clip_id(clip_id: str, where: str) -> None:
    if not clip_id:
        raise EratoFormatError(f"{where}: empty clip_id")
    if "/" in clip_id or "\\" in clip_id or not clip_id.isprintable():
        raise EratoFormatError(
            f"{where}: clip_id {clip_id!r} is not a plain file name (no '/', '\\' or control "
            f"characters): it names {FEATURE_DIR}/<clip_id>.npz inside the manual_dir")


def write_annotations(manual_dir: str | epath.PathLike, rows: list[Annotation]) -> None:
    path = epath.Path(manual_dir) / ANNOTATION_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(ANNOTATION_HEADER)
        for r in rows:
            writer.writerow([r.clip_id, r.label, r.split])


def feature_path(manual_dir: str | epath.PathLike, clip_id: str) -> epath.Path:
    """`<manual_dir>/features/<clip_id>.npz`, unchecked (for writers; readers of a release use
    `clip_feature_path`)."""
    return epath.Path(manual_dir) / FEATURE_DIR / f"{clip_id}.npz"


def clip_feature_path(manual_dir: str | epath.PathLike, row: Annotation) -> epath.Path:
    """The feature file of an annotation row, refused (naming annotations.csv and the row's
    line) when it leaves the manual_dir: a symlink pointing outside it, unless symlinks are
    allowed (`jaxaffect build --allow symlinks`)."""
    where = f"{epath.Path(manual_dir) / ANNOTATION_FILE}:{row.line}"
    try:
        return epath.Path(inside(manual_dir, f"{FEATURE_DIR}/{row.clip_id}.npz", where=where))
    except FormatError as e:
        raise EratoFormatError(str(e)) from None


@dataclasses.dataclass
class ClipFeatures:
    """One clip's streams: features[s] is [T, d_s] float32, masks[s] is [T] bool."""

    features: dict[str, np.ndarray]
    masks: dict[str, np.ndarray]

    @property
    def num_steps(self) -> int:
        return int(next(iter(self.masks.values())).shape[0])

    def dims(self) -> dict[str, int]:
        return {s: int(v.shape[1]) for s, v in self.features.items()}


def validate_clip(clip: ClipFeatures, where: str,
                  expected_dims: Mapping[str, int] | None = None) -> ClipFeatures:
    """Checks shapes, dtypes and finiteness; raises EratoFormatError naming `where`."""
    check_streams(clip.features, clip.masks, STREAMS, where, expected_dims, EratoFormatError)
    return clip


def read_clip(path: str | epath.PathLike,
              expected_dims: Mapping[str, int] | None = None) -> ClipFeatures:
    """Reads one per-clip .npz feature file and validates it."""
    path = epath.Path(path)
    arrays = read_npz(path, EratoFormatError)
    features, masks = {}, {}
    for s in STREAMS:
        if s not in arrays or s + "_mask" not in arrays:
            raise EratoFormatError(
                f"{path}: missing array {s!r} or {s + '_mask'!r} (has {sorted(arrays)})")
        features[s] = float_array(arrays[s], f"{path}: stream {s!r}", EratoFormatError)
        masks[s] = mask_array(arrays[s + "_mask"], f"{path}: mask {s + '_mask'!r}",
                              EratoFormatError)
    return validate_clip(ClipFeatures(features, masks), str(path), expected_dims)


def write_clip(path: str | epath.PathLike, clip: ClipFeatures) -> None:
    path = epath.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {}
    for s in STREAMS:
        arrays[s] = np.asarray(clip.features[s], np.float32)
        arrays[s + "_mask"] = np.asarray(clip.masks[s], bool)
    write_npz(path, arrays)


def write_random_manual_dir(manual_dir: str | epath.PathLike, *, num_clips: int,
                          dims: Mapping[str, int], max_steps: int, test_fraction: float = 0.2,
                          absent_prob: float = 0.2, seed: int = 0) -> list[Annotation]:
    """Writes a random manual_dir in the ERATO layout (for tests and benchmarks; no signal).

    Labels are drawn uniformly; T is uniform in [1, max_steps]; each stream is absent on a
    random contiguous stretch with probability `absent_prob` (zeros there, mask False).
    """
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(num_clips):
        split = "test" if rng.random() < test_fraction else "train"
        rows.append(Annotation(f"clip{i:05d}", FINE_LABELS[rng.integers(5)], split))
        steps = int(rng.integers(1, max_steps + 1))
        features, masks = {}, {}
        for s in STREAMS:
            m = np.ones(steps, bool)
            if rng.random() < absent_prob:
                a = int(rng.integers(steps))
                m[a:a + int(rng.integers(1, steps + 1))] = False
            x = rng.standard_normal((steps, dims[s]), dtype=np.float32)
            features[s], masks[s] = np.where(m[:, None], x, 0.0).astype(np.float32), m
        path = feature_path(manual_dir, rows[-1].clip_id)
        write_clip(path, ClipFeatures(features, masks))
    if num_clips >= 2:  # both splits non-empty (read_annotations refuses an empty one)
        for split, i in (("test", -1), ("train", 0)):
            if not any(r.split == split for r in rows):
                rows[i] = dataclasses.replace(rows[i], split=split)
    write_annotations(manual_dir, rows)
    return rows
