"""Readers for the split lists and annotation files of three affective video benchmarks.

* VideoEmotion-8 (VE8) and Ekman-6 (EK6): ``classInd.txt`` ("1 Anger" lines, 1-based ids) and
  split lists with ``Class/video_id label`` lines (the VE8 test list has no label column; the
  class folder then gives the label).
* LIRIS-ACCEDE: ``ACCEDEranking.txt`` and ``ACCEDEsets.txt`` (tab separated, one header line).

Pure Python/numpy. Every format problem raises :class:`AnnotationError` naming the file and the
line (and field): bytes that are not UTF-8, an empty file, a malformed, duplicate or
inconsistent line, an id that is not a plain relative path, a number that is not a finite
decimal. Readers record where each entry came from (``where``, "file:line") so that later
checks (feature paths, split overlap) can name it too.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
from collections.abc import Sequence

import numpy as np

from jaxaffect.data.release_files import read_utf8
from jaxaffect.errors import FormatError

PathLike = str | os.PathLike


# Class names of the benchmarks, in label order (classInd.txt order for the class lists).
VE8_CLASSES: tuple[str, ...] = ("Anger", "Anticipation", "Disgust", "Fear", "Joy", "Sadness",
                                "Surprise", "Trust")
EK6_CLASSES: tuple[str, ...] = ("anger", "disgust", "fear", "joy", "sadness", "surprise")
# MediaEval 2015 valence / arousal classes of LIRIS-ACCEDE.
VALENCE_CLASSES: tuple[str, ...] = ("negative", "neutral", "positive")
AROUSAL_CLASSES: tuple[str, ...] = ("calm", "neutral", "active")

# Numbers as the releases write them: ASCII digits only (no "nan", "inf", "1_000", "١٢").
_INT = re.compile(r"[0-9]+")
_FLOAT = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


class AnnotationError(FormatError):
    """A list/annotation file does not follow the expected format."""


def _where(path: PathLike, lineno: int) -> str:
    return f"{os.fspath(path)}:{lineno}"


def _read_lines(path: PathLike) -> list[tuple[int, str]]:
    """(1-based line number, stripped text) of non-blank lines; CRLF and no final EOL are fine.

    The file must be UTF-8 (a BOM is dropped); other bytes give one error with file and line.
    """
    try:
        text = read_utf8(path)
    except AnnotationError:
        raise
    except FormatError as e:
        raise AnnotationError(str(e)) from None
    except OSError as e:
        raise AnnotationError(f"{os.fspath(path)}: cannot read ({e.strerror or e})") from None
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return [(i + 1, ln.strip()) for i, ln in enumerate(lines) if ln.strip()]


def _plain_path(text: str) -> bool:
    """Whether `text` is a relative path of plain names ('/'-separated, no '', '.' or '..')."""
    return "\0" not in text and all(part not in ("", ".", "..") for part in text.split("/"))


# --------------------------------------------------------------------------- VE8 / EK6


@dataclasses.dataclass(frozen=True)
class VideoLabel:
    video_id: str  # "Class/name", unique within a list
    label_id: int  # 0-based
    class_name: str
    where: str = dataclasses.field(default="", compare=False)  # "file:line" it was read from


def read_class_index(path: PathLike, expected: Sequence[str] | None = None) -> list[str]:
    """Class names ordered by their (1-based, contiguous) ids in ``classInd.txt``.

    With `expected` (the benchmark's classes in label order), any other list is refused naming
    the first line that differs.
    """
    by_id: dict[int, tuple[str, int]] = {}
    for lineno, line in _read_lines(path):
        parts = line.split()
        if len(parts) != 2 or not _INT.fullmatch(parts[0]):
            raise AnnotationError(f"{_where(path, lineno)}: expected '<id> <name>', got {line!r}")
        cid, name = int(parts[0]), parts[1]
        if cid in by_id:
            raise AnnotationError(f"{_where(path, lineno)}: duplicate class id {cid} (first on "
                                  f"line {by_id[cid][1]})")
        first = next((ln for n, ln in by_id.values() if n == name), None)
        if first is not None:
            raise AnnotationError(f"{_where(path, lineno)}: duplicate class name {name!r} "
                                  f"(first on line {first})")
        by_id[cid] = (name, lineno)
    if not by_id:
        raise AnnotationError(f"{os.fspath(path)}: no classes (the file is empty or blank)")
    if sorted(by_id) != list(range(1, len(by_id) + 1)):
        raise AnnotationError(f"{os.fspath(path)}: class ids {sorted(by_id)} are not 1..N")
    names = [by_id[i][0] for i in range(1, len(by_id) + 1)]
    if expected is not None and tuple(names) != tuple(expected):
        for i, (got, want) in enumerate(zip(names, expected)):
            if got != want:
                raise AnnotationError(
                    f"{_where(path, by_id[i + 1][1])}: class {i + 1} is {got!r}, expected "
                    f"{want!r} (the benchmark's classes: {' '.join(expected)})")
        raise AnnotationError(f"{os.fspath(path)}: {len(names)} classes, expected "
                              f"{len(expected)}: {' '.join(expected)}")
    return names


def read_split_list(path: PathLike, class_names: Sequence[str]) -> list[VideoLabel]:
    """Parse ``Class/video_id [label]`` lines; label (1-based) must agree with the class folder.

    Refused: an empty list; a video id that is not a plain ``Class/name`` path; an unknown
    class; a label that is not one of the classes or disagrees with the folder; a line with a
    label column in a list whose first line has none (or the reverse); a duplicate video.
    """
    index = {name: i for i, name in enumerate(class_names)}
    out: list[VideoLabel] = []
    seen: dict[str, int] = {}
    columns: tuple[int, int] | None = None  # (fields, line) of the first entry
    for lineno, line in _read_lines(path):
        where = _where(path, lineno)
        # The label is the last whitespace-separated token when present; the id has no spaces
        # in the public lists, so a line has one or two tokens.
        parts = line.split()
        if len(parts) not in (1, 2) or "/" not in parts[0]:
            raise AnnotationError(f"{where}: expected 'Class/video_id [label]', got {line!r}")
        video_id = parts[0]
        folder, _, name = video_id.partition("/")
        if not folder or not name:
            raise AnnotationError(f"{where}: empty class or video name in {video_id!r}")
        if not _plain_path(video_id):
            raise AnnotationError(f"{where}: video id {video_id!r} is not a plain "
                                  "'Class/video' path (it has an empty, '.' or '..' part)")
        if folder not in index:
            raise AnnotationError(f"{where}: unknown class {folder!r} (classes: "
                                  f"{' '.join(class_names)})")
        if columns is None:
            columns = (len(parts), lineno)
        elif len(parts) != columns[0]:
            raise AnnotationError(
                f"{where}: {len(parts)} field(s) but line {columns[1]} has {columns[0]}; a list "
                "has a label column on every line or on none")
        label = index[folder]
        if len(parts) == 2:
            tok = parts[1]
            if not _INT.fullmatch(tok):
                raise AnnotationError(f"{where}: label {tok!r} is not an integer")
            lab = int(tok) - 1
            if not 0 <= lab < len(class_names):
                raise AnnotationError(f"{where}: label {tok} outside 1..{len(class_names)}")
            if lab != label:
                raise AnnotationError(
                    f"{where}: label {tok} ({class_names[lab]}) disagrees with folder {folder!r}"
                )
        if video_id in seen:
            raise AnnotationError(f"{where}: duplicate video {video_id!r} (first on line "
                                  f"{seen[video_id]})")
        seen[video_id] = lineno
        out.append(VideoLabel(video_id, label, folder, where))
    if not out:
        raise AnnotationError(f"{os.fspath(path)}: no videos listed (the file is empty or "
                              "blank)")
    return out


def _stratified_split(
    ids: Sequence[str], labels: Sequence[int], fraction: float, rng: np.random.Generator
) -> tuple[list[str], list[str]]:
    """Per class: shuffle, then put round(fraction * n) ids in the first part (>=1 if n>=2)."""
    first: list[str] = []
    second: list[str] = []
    labels_arr = np.asarray(labels)
    ids_arr = np.asarray(list(ids), dtype=object)
    for c in np.unique(labels_arr):  # sorted classes -> deterministic rng consumption
        members = ids_arr[labels_arr == c]
        members = members[rng.permutation(len(members))]
        k = int(round(fraction * len(members)))
        if len(members) >= 2:
            k = min(max(k, 1), len(members) - 1)
        first.extend(members[:k].tolist())
        second.extend(members[k:].tolist())
    return sorted(first), sorted(second)


def ve8_random_splits(
    videos: Sequence[VideoLabel],
    num_splits: int = 10,
    train_fraction: float = 2 / 3,
    seed: int = 0,
) -> list[tuple[list[str], list[str]]]:
    """VideoEmotion-8 protocol: ``num_splits`` random train/test splits, stratified per class.

    The original protocol draws 10 random 2/3-1/3 splits per class; the exact draws were not
    published, so ours come from ``seed`` (deterministic) and per-class counts are rounded.
    Returns sorted ``(train_ids, test_ids)`` per split.
    """
    ids = [v.video_id for v in videos]
    if len(set(ids)) != len(ids):
        raise ValueError("duplicate video ids in input")
    labels = [v.label_id for v in videos]
    rng = np.random.default_rng(seed)
    return [_stratified_split(ids, labels, train_fraction, rng) for _ in range(num_splits)]


def carve_validation(
    ids: Sequence[str], labels: Sequence[int], fraction: float = 0.15, seed: int = 0
) -> tuple[list[str], list[str]]:
    """Stratified hold-out of ``fraction`` of a training set for hyperparameter selection.

    Returns sorted ``(train_ids, val_ids)``. TAM picks hyperparameters on 15% of train.
    """
    if len(ids) != len(labels):
        raise ValueError("ids and labels differ in length")
    val, train = _stratified_split(ids, labels, fraction, np.random.default_rng(seed))
    return train, val


# --------------------------------------------------------------------------- LIRIS-ACCEDE

RANKING_HEADER = ("id", "name", "valenceRank", "arousalRank", "valenceValue", "arousalValue",
                  "valenceVariance", "arousalVariance")
SETS_HEADER = ("id", "name", "set")
SET_NAMES = {0: "test", 1: "train", 2: "validation"}


# The valence/arousal values are on the release's 1-5 scale.
VALUE_RANGE = (1.0, 5.0)


@dataclasses.dataclass(frozen=True)
class LirisRecord:
    id: int
    name: str
    valence_rank: int
    arousal_rank: int
    valence: float
    arousal: float
    valence_variance: float
    arousal_variance: float
    set: int = -1  # 0 test, 1 train, 2 validation; -1 until joined with ACCEDEsets.txt
    where: str = dataclasses.field(default="", compare=False)  # "file:line" of the ranking

    @property
    def set_name(self) -> str:
        return SET_NAMES.get(self.set, "unknown")


def _read_tsv(path: PathLike, header: tuple[str, ...]) -> list[tuple[int, list[str]]]:
    rows = _read_lines(path)
    if not rows:
        raise AnnotationError(f"{os.fspath(path)}: empty file")
    lineno, first = rows[0]
    if tuple(c.strip() for c in first.split("\t")) != header:
        raise AnnotationError(f"{_where(path, lineno)}: expected header {header}, got {first!r}")
    out = []
    for lineno, line in rows[1:]:
        cells = [c.strip() for c in line.split("\t")]
        if len(cells) != len(header):
            raise AnnotationError(
                f"{_where(path, lineno)}: expected {len(header)} tab-separated fields, "
                f"got {len(cells)}"
            )
        out.append((lineno, cells))
    if not out:
        raise AnnotationError(f"{os.fspath(path)}: no clips listed (only the header)")
    return out


def _int(text: str, path: PathLike, lineno: int, field: str) -> int:
    """A non-negative integer field written in ASCII digits."""
    if not _INT.fullmatch(text):
        raise AnnotationError(f"{_where(path, lineno)}: bad {field} {text!r} (expected a "
                              "non-negative integer)")
    return int(text)


def _float(text: str, path: PathLike, lineno: int, field: str) -> float:
    """A finite decimal number field ("nan", "inf", "1e999" and the like are refused)."""
    if _FLOAT.fullmatch(text) and math.isfinite(value := float(text)):
        return value
    raise AnnotationError(f"{_where(path, lineno)}: bad {field} {text!r} (expected a finite "
                          "decimal number)")


def _clip_name(text: str, path: PathLike, lineno: int) -> str:
    """The name field: a plain file name (features are looked up by it)."""
    if not text or "/" in text or not _plain_path(text):
        raise AnnotationError(f"{_where(path, lineno)}: name {text!r} is not a plain clip file "
                              "name")
    return text


def _check_unique(seen: dict, key, what: str, path: PathLike, lineno: int) -> None:
    if key in seen:
        raise AnnotationError(f"{_where(path, lineno)}: duplicate {what} {key!r} (first on line "
                              f"{seen[key]})")
    seen[key] = lineno


def read_liris_ranking(path: PathLike) -> list[LirisRecord]:
    """Parse ``ACCEDEranking.txt``; records in file order, ``set`` left at -1.

    Ranks are non-negative integers; values are finite and on the 1-5 scale; variances are
    finite and non-negative; ids and names are unique.
    """
    out: list[LirisRecord] = []
    ids: dict[int, int] = {}
    names: dict[str, int] = {}
    lo, hi = VALUE_RANGE
    for lineno, c in _read_tsv(path, RANKING_HEADER):
        ints = [_int(c[i], path, lineno, RANKING_HEADER[i]) for i in (0, 2, 3)]
        flts = [_float(c[i], path, lineno, RANKING_HEADER[i]) for i in (4, 5, 6, 7)]
        for i, v in zip((4, 5), flts[:2]):
            if not lo <= v <= hi:
                raise AnnotationError(f"{_where(path, lineno)}: {RANKING_HEADER[i]} {c[i]} is "
                                      f"outside the {lo:g}-{hi:g} scale")
        for i, v in zip((6, 7), flts[2:]):
            if v < 0:
                raise AnnotationError(f"{_where(path, lineno)}: {RANKING_HEADER[i]} {c[i]} is "
                                      "negative")
        name = _clip_name(c[1], path, lineno)
        _check_unique(ids, ints[0], "id", path, lineno)
        _check_unique(names, name, "name", path, lineno)
        out.append(LirisRecord(ints[0], name, ints[1], ints[2], *flts,
                               where=_where(path, lineno)))
    return out


def _read_sets_rows(path: PathLike) -> dict[int, tuple[str, int, int]]:
    """{id: (name, set, line)} of ``ACCEDEsets.txt``."""
    out: dict[int, tuple[str, int, int]] = {}
    ids: dict[int, int] = {}
    names: dict[str, int] = {}
    for lineno, c in _read_tsv(path, SETS_HEADER):
        vid = _int(c[0], path, lineno, "id")
        s = _int(c[2], path, lineno, "set")
        if s not in SET_NAMES:
            raise AnnotationError(f"{_where(path, lineno)}: set {s} not in 0/1/2")
        name = _clip_name(c[1], path, lineno)
        _check_unique(ids, vid, "id", path, lineno)
        _check_unique(names, name, "name", path, lineno)
        out[vid] = (name, s, lineno)
    return out


def read_liris_sets(path: PathLike) -> dict[int, tuple[str, int]]:
    """Parse ``ACCEDEsets.txt`` into ``{id: (name, set)}`` (set 0 test, 1 train, 2 validation)."""
    return {vid: (name, s) for vid, (name, s, _) in _read_sets_rows(path).items()}


def read_liris(ranking_path: PathLike, sets_path: PathLike) -> list[LirisRecord]:
    """Join the ranking and sets files by id (names must agree; both must list the same ids)."""
    ranking = read_liris_ranking(ranking_path)
    sets = _read_sets_rows(sets_path)
    ranked = {r.id for r in ranking}
    for r in ranking:
        if r.id not in sets:
            raise AnnotationError(f"{r.where}: clip id {r.id} is not in "
                                  f"{os.fspath(sets_path)}")
    for vid, (_, _, lineno) in sets.items():
        if vid not in ranked:
            raise AnnotationError(f"{_where(sets_path, lineno)}: clip id {vid} is not in "
                                  f"{os.fspath(ranking_path)}")
    out = []
    for r in ranking:
        name, s, lineno = sets[r.id]
        if name != r.name:
            raise AnnotationError(f"{_where(sets_path, lineno)}: clip {r.id} is named {name!r} "
                                  f"here but {r.name!r} at {r.where}")
        out.append(dataclasses.replace(r, set=s))
    return out


def tertile_thresholds(reference_values: Sequence[float]) -> tuple[float, float]:
    """The 1/3 and 2/3 quantiles of ``reference_values`` (pass the full 9,800-clip set)."""
    lo, hi = np.quantile(np.asarray(reference_values, dtype=np.float64), [1 / 3, 2 / 3])
    return float(lo), float(hi)


def mediaeval2015_classes(
    values: Sequence[float], thresholds: tuple[float, float] | None = None,
    reference_values: Sequence[float] | None = None,
) -> np.ndarray:
    """3-class valence/arousal labels coded like MEDIAEVALaffect.txt: -1, 0, +1.

    The ranking/sets files do not define the MediaEval 2015 classes (those ship in
    MEDIAEVAL-annotations.zip, converted from these scores as described in Sjoberg et al.
    2015). This is our documented choice: by default the thresholds are the tertiles of
    ``reference_values`` (default: ``values`` itself), giving balanced classes. Equal-width
    thirds of the 1-5 scale would leave no positive-valence clip in the base set (max valence
    value < 11/3). Class is -1 if v < lo, +1 if v >= hi, else 0.
    """
    v = np.asarray(values, dtype=np.float64)
    if thresholds is None:
        thresholds = tertile_thresholds(v if reference_values is None else reference_values)
    lo, hi = thresholds
    if lo > hi:
        raise ValueError(f"thresholds {thresholds} not ordered")
    return np.where(v < lo, -1, np.where(v >= hi, 1, 0)).astype(np.int32)


def mediaeval2016_targets(records: Sequence[LirisRecord]) -> np.ndarray:
    """Regression targets ``[N, 2]`` (valence, arousal): the raw values, no rescaling."""
    return np.asarray([[r.valence, r.arousal] for r in records], dtype=np.float32)
