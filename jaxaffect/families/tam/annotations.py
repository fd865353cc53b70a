"""Readers for the split lists and annotation files of three affective video benchmarks.

* VideoEmotion-8 (VE8) and Ekman-6 (EK6): ``classInd.txt`` ("1 Anger" lines, 1-based ids) and
  split lists with ``Class/video_id label`` lines (the VE8 test list has no label column; the
  class folder then gives the label).
* LIRIS-ACCEDE: ``ACCEDEranking.txt`` and ``ACCEDEsets.txt`` (tab separated, one header line).

Pure Python/numpy. Every format problem raises :class:`AnnotationError` naming file and line.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence

import numpy as np

from jaxaffect.errors import FormatError

PathLike = str | os.PathLike


# Class names of the benchmarks, in label order (classInd.txt order for the class lists).
VE8_CLASSES: tuple[str, ...] = ("Anger", "Anticipation", "Disgust", "Fear", "Joy", "Sadness",
                                "Surprise", "Trust")
EK6_CLASSES: tuple[str, ...] = ("anger", "disgust", "fear", "joy", "sadness", "surprise")
# MediaEval 2015 valence / arousal classes of LIRIS-ACCEDE.
VALENCE_CLASSES: tuple[str, ...] = ("negative", "neutral", "positive")
AROUSAL_CLASSES: tuple[str, ...] = ("calm", "neutral", "active")


class AnnotationError(FormatError):
    """A list/annotation file does not follow the expected format."""


def _where(path: PathLike, lineno: int) -> str:
    return f"{os.fspath(path)}:{lineno}"


def _read_lines(path: PathLike) -> list[tuple[int, str]]:
    """(1-based line number, stripped text) of non-blank lines; CRLF and no final EOL are fine."""
    with open(path, encoding="utf-8-sig", newline="") as f:
        text = f.read()
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return [(i + 1, ln.strip()) for i, ln in enumerate(lines) if ln.strip()]


# --------------------------------------------------------------------------- VE8 / EK6


@dataclasses.dataclass(frozen=True)
class VideoLabel:
    video_id: str  # "Class/name", unique within a list
    label_id: int  # 0-based
    class_name: str


def read_class_index(path: PathLike) -> list[str]:
    """Class names ordered by their (1-based, contiguous) ids in ``classInd.txt``."""
    by_id: dict[int, str] = {}
    for lineno, line in _read_lines(path):
        parts = line.split()
        if len(parts) != 2 or not parts[0].isdigit():
            raise AnnotationError(f"{_where(path, lineno)}: expected '<id> <name>', got {line!r}")
        cid, name = int(parts[0]), parts[1]
        if cid in by_id:
            raise AnnotationError(f"{_where(path, lineno)}: duplicate class id {cid}")
        if name in by_id.values():
            raise AnnotationError(f"{_where(path, lineno)}: duplicate class name {name!r}")
        by_id[cid] = name
    if sorted(by_id) != list(range(1, len(by_id) + 1)):
        raise AnnotationError(f"{os.fspath(path)}: class ids {sorted(by_id)} are not 1..N")
    return [by_id[i] for i in range(1, len(by_id) + 1)]


def read_split_list(path: PathLike, class_names: Sequence[str]) -> list[VideoLabel]:
    """Parse ``Class/video_id [label]`` lines; label (1-based) must agree with the class folder."""
    index = {name: i for i, name in enumerate(class_names)}
    out: list[VideoLabel] = []
    seen: dict[str, int] = {}
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
        if folder not in index:
            raise AnnotationError(f"{where}: unknown class {folder!r}")
        label = index[folder]
        if len(parts) == 2:
            tok = parts[1]
            if not tok.isdigit():
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
        out.append(VideoLabel(video_id, label, folder))
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
    return out


def _num(cast, text: str, path: PathLike, lineno: int, field: str):
    try:
        return cast(text)
    except ValueError:
        raise AnnotationError(f"{_where(path, lineno)}: bad {field} {text!r}") from None


def read_liris_ranking(path: PathLike) -> list[LirisRecord]:
    """Parse ``ACCEDEranking.txt``; records in file order, ``set`` left at -1."""
    out: list[LirisRecord] = []
    seen: set[int] = set()
    for lineno, c in _read_tsv(path, RANKING_HEADER):
        ints = [_num(int, c[i], path, lineno, RANKING_HEADER[i]) for i in (0, 2, 3)]
        flts = [_num(float, c[i], path, lineno, RANKING_HEADER[i]) for i in (4, 5, 6, 7)]
        if ints[0] in seen:
            raise AnnotationError(f"{_where(path, lineno)}: duplicate id {ints[0]}")
        seen.add(ints[0])
        out.append(LirisRecord(ints[0], c[1], ints[1], ints[2], *flts))
    return out


def read_liris_sets(path: PathLike) -> dict[int, tuple[str, int]]:
    """Parse ``ACCEDEsets.txt`` into ``{id: (name, set)}`` (set 0 test, 1 train, 2 validation)."""
    out: dict[int, tuple[str, int]] = {}
    for lineno, c in _read_tsv(path, SETS_HEADER):
        vid = _num(int, c[0], path, lineno, "id")
        s = _num(int, c[2], path, lineno, "set")
        if s not in SET_NAMES:
            raise AnnotationError(f"{_where(path, lineno)}: set {s} not in 0/1/2")
        if vid in out:
            raise AnnotationError(f"{_where(path, lineno)}: duplicate id {vid}")
        out[vid] = (c[1], s)
    return out


def read_liris(ranking_path: PathLike, sets_path: PathLike) -> list[LirisRecord]:
    """Join the ranking and sets files by id (names must agree; both must list the same ids)."""
    ranking = read_liris_ranking(ranking_path)
    sets = read_liris_sets(sets_path)
    if {r.id for r in ranking} != set(sets):
        raise AnnotationError(f"{os.fspath(ranking_path)} and {os.fspath(sets_path)} "
                              "list different clip ids")
    out = []
    for r in ranking:
        name, s = sets[r.id]
        if name != r.name:
            raise AnnotationError(f"clip {r.id}: name {r.name!r} in {os.fspath(ranking_path)} "
                                  f"but {name!r} in {os.fspath(sets_path)}")
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
