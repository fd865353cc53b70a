"""Per-annotation examples of a MEmoR release (pure python/numpy), its splits and its overlap.

`read_release` reads and checks everything a build needs before writing (all JSON/CSV/text
files, the existence of every visual file that will be read, the text vectors the examples
need, the feature sizes); `ClipVisual` reads one clip's .pt files once; `annotation_example`
assembles the arrays of one annotation; `assign_splits` and `measure_overlap` decide and
measure the splits. The rules follow the paper (Sec. 4.1) and the authors' loader; where they
leave a choice, the comment next to the code says which one is taken.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from etils import epath

from jaxaffect.data.splits import in_hash_fraction
from jaxaffect.families.amer import release_format as rf

FPS = 23.976  # frame rate of the episodes (authors' visual loader)
FACE_THRESHOLD = 10  # a clip / a person-segment needs MORE than this many faces
VALIDATION_FRACTION = 0.1  # of the hash range of clip names (train annotations only)
CONFIGS = ("official", "moment_disjoint")
SPLITS = ("train", "validation", "test")
LISTED = 20  # entries listed per kind in the metadata (all are counted)


# ----------------------------------------------------------------------------- rules
def persons_of(info: rf.ClipInfo, character: int) -> tuple[list[int], int]:
    """(sorted ids of the clip's on-screen characters plus the target, index of the target).

    The authors' loader appends the target to data.json's shared on_character list in place,
    so persons accumulate over the annotations of a clip; here each annotation gets its own
    set (documented choice)."""
    persons = sorted(set(info.on_character) | {character})
    return persons, persons.index(character)


def target_segment(info: rf.ClipInfo, moment: float) -> tuple[int, str]:
    """(segment j with seg_start[j] <= moment < seg_end[j], how): how is "inside", "several"
    (segments overlap: the first is taken) or "nearest" (in no segment: the segment at the
    smallest distance from the moment, ties -> the earlier one). The authors' loader marks
    every containing segment and none for a moment outside all of them."""
    inside = [j for j in range(info.num_segments)
              if info.seg_start[j] <= moment < info.seg_end[j]]
    if inside:
        return inside[0], ("inside" if len(inside) == 1 else "several")
    dist = [max(info.seg_start[j] - moment, moment - info.seg_end[j], 0.0)
            for j in range(info.num_segments)]
    return int(np.argmin(dist)), "nearest"


def frame_window(info: rf.ClipInfo, segment: int) -> tuple[int, int]:
    """(b, e): frames int((seg_start - start) * FPS) and int((seg_end - start) * FPS)
    (int() truncates toward zero, as the authors' loader)."""
    return (int((info.seg_start[segment] - info.start) * FPS),
            int((info.seg_end[segment] - info.start) * FPS))


def visual_rows(info: rf.ClipInfo, names: Sequence[tuple[int, str]], faces: np.ndarray | None,
                objects: np.ndarray | None, environment: np.ndarray | None, character: int,
                dim: int) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """(visual float32 [S, dim], present bool [S], segments whose frame slice was empty) of one
    character.

    A clip with at most FACE_THRESHOLD face names has no visual features. Otherwise segment j
    (frames b..e of `frame_window`) is present iff more than FACE_THRESHOLD of the character's
    faces have b <= frame <= e; it is then [mean of those face rows; mean object rows b:e;
    mean environment rows b:e]. An empty b:e slice makes it absent (reported). A negative b or
    e is clamped to 0 for the slices (the authors' torch slice would count from the end).
    Means are computed in float64.
    """
    s = info.num_segments
    out = np.zeros((s, dim), np.float32)
    present = np.zeros(s, bool)
    empty: list[int] = []
    if len(names) <= FACE_THRESHOLD:
        return out, present, empty
    frames = np.asarray([f for f, _ in names], np.int64)
    own = np.asarray([n == rf.SPEAKERS[character] for _, n in names], bool)
    for j in range(s):
        b, e = frame_window(info, j)
        rows = np.flatnonzero(own & (frames >= b) & (frames <= e))
        if len(rows) <= FACE_THRESHOLD:
            continue
        lo, hi = max(b, 0), max(e, 0)
        obj, env = objects[lo:hi], environment[lo:hi]
        if len(obj) == 0 or len(env) == 0:
            empty.append(j)
            continue
        out[j] = np.concatenate([faces[rows].mean(0, dtype=np.float64),
                                 obj.mean(0, dtype=np.float64), env.mean(0, dtype=np.float64)])
        present[j] = True
    return out, present, empty


def moment_key(clip: str, moment: float) -> tuple[str, int]:
    """A moment: the clip and the time rounded to 1 ms."""
    return clip, int(round(moment * 1000))


# ----------------------------------------------------------------------------- release
@dataclasses.dataclass
class Release:
    """Everything read and checked before a build writes."""

    root: epath.Path
    annotations: list[rf.AnnoRecord]
    clips: dict[str, rf.ClipInfo]
    ids: dict[str, dict[int, int]]  # "train"/"test" -> {annotation index: line}
    audio: dict[str, np.ndarray]
    text: dict[str, np.ndarray]
    personality: np.ndarray  # normalised [8, Dp]
    face_names: dict[str, list[tuple[int, str]]]  # clips of listed annotations
    dims: dict[str, int]
    targets: dict[int, tuple[int, str]]  # listed annotation -> (segment, how)

    @property
    def listed(self) -> list[int]:
        return sorted(set(self.ids["train"]) | set(self.ids["test"]))

    def where(self, index: int) -> str:
        """Where annotation `index` is listed ("train_id.txt:5")."""
        for split, ids in self.ids.items():
            if index in ids:
                return f"{rf.ID_FILES[split]}:{ids[index]}"
        return "no id file"


def _clip_key(root: epath.Path, clip: str) -> str:
    """Where a clip's file names come from, for messages: its key in data.json."""
    return f"{root / rf.DATA_FILE}: [{clip!r}]"


def _visual_files(root: epath.Path, clip: str, where: str) -> dict[str, epath.Path]:
    paths = {part: rf.tensor_path(root, part, clip, where) for part in rf.VISUAL_PARTS}
    for part, path in paths.items():
        if not path.is_file():
            raise rf.MemorFormatError(f"{path}: file not found ({part} features of clip "
                                      f"{clip!r}, which has more than {FACE_THRESHOLD} faces)")
    return paths


def _visual_dims(root: epath.Path, names: Mapping[str, list]) -> dict[str, int]:
    """Face/object/environment sizes from the first clip (sorted) that has visual features;
    zeros when no listed clip has more than FACE_THRESHOLD faces."""
    for clip in sorted(names):
        if len(names[clip]) > FACE_THRESHOLD:
            paths = _visual_files(root, clip, _clip_key(root, clip))
            return {part: int(rf.read_tensor(p).shape[1]) for part, p in paths.items()}
    return dict.fromkeys(rf.VISUAL_PARTS, 0)


def read_release(root: rf.PathLike) -> Release:
    """Reads and checks the release (see the module docstring); MemorFormatError otherwise."""
    root = epath.Path(root)
    if not root.is_dir():
        raise rf.MemorFormatError(f"{root}: manual_dir not found")
    annotations = rf.read_annotations(root)
    ids = rf.read_splits(root, len(annotations))
    clips = rf.read_clips(root)
    audio, d_audio = rf.read_vectors(root / rf.AUDIO_FILE)
    text, d_text = rf.read_vectors(root / rf.TEXT_FILE)
    personality = rf.read_personality(root)
    release = Release(root, annotations, clips, ids, audio, text,
                      rf.normalise_personality(personality), {}, {}, {})
    anno_file = root / rf.ANNO_FILE
    for i in release.listed:
        a = annotations[i]
        where = f"annotation {i} ({release.where(i)})"
        info = clips.get(a.clip)
        if info is None:
            raise rf.MemorFormatError(f"{root / rf.DATA_FILE}: no clip {a.clip!r} (the clip of "
                                      f"{anno_file.name} primary[{i}], {where})")
        if info.num_segments == 0:
            raise rf.MemorFormatError(f"{root / rf.DATA_FILE}: [{a.clip!r}] has no segments "
                                      f"({where})")
        release.targets[i] = target_segment(info, a.moment)
        persons, _ = persons_of(info, a.character)
        for j, speaker in enumerate(info.speakers):
            key = rf.text_key(a.clip, j)
            if speaker in persons and key not in text:
                raise rf.MemorFormatError(
                    f"{root / rf.TEXT_FILE}: missing key {key!r} (segment {j} of clip "
                    f"{a.clip!r}, spoken by {rf.SPEAKERS[speaker]}; {where})")
        if a.clip not in release.face_names:
            clip_key = _clip_key(root, a.clip)
            names = rf.read_face_names(rf.face_names_path(root, a.clip, clip_key))
            release.face_names[a.clip] = names
            if len(names) > FACE_THRESHOLD:
                _visual_files(root, a.clip, clip_key)
    vis = _visual_dims(root, release.face_names)
    release.dims = {"audio": d_audio or 0, "text": d_text or 0,
                    "visual": sum(vis.values()), **vis, "personality": personality.shape[1]}
    return release


# ----------------------------------------------------------------------------- one clip
class ClipVisual:
    """The visual features of one clip: its .pt files are read once (only when the clip has
    more than FACE_THRESHOLD faces), each character's rows computed once."""

    def __init__(self, release: Release, clip: str):
        self.info = release.clips[clip]
        self.names = release.face_names[clip]
        self.dim = release.dims["visual"]
        self.arrays: dict[str, np.ndarray | None] = dict.fromkeys(rf.VISUAL_PARTS)
        self._rows: dict[int, tuple[np.ndarray, np.ndarray, list[int]]] = {}
        if len(self.names) > FACE_THRESHOLD:
            paths = _visual_files(release.root, clip, _clip_key(release.root, clip))
            for part, path in paths.items():
                x = rf.read_tensor(path)
                rf.check_dim(path, x, release.dims, part)
                self.arrays[part] = x
            if len(self.arrays["face"]) != len(self.names):
                names_file = rf.face_names_path(release.root, clip)
                raise rf.MemorFormatError(
                    f"{paths['face']}: {len(self.arrays['face'])} face rows, but "
                    f"{names_file.name} names {len(self.names)} faces")

    def rows(self, character: int) -> tuple[np.ndarray, np.ndarray, list[int]]:
        if character not in self._rows:
            self._rows[character] = visual_rows(
                self.info, self.names, self.arrays["face"], self.arrays["object"],
                self.arrays["environment"], character, self.dim)
        return self._rows[character]


def annotation_example(release: Release, index: int, visual: ClipVisual,
                       empty_slices: set[tuple[str, int, int]] | None = None
                       ) -> dict[str, Any]:
    """The example of annotation `index` (features of the builder's FeaturesDict). The
    (clip, character, segment) triples whose visual frame slice was empty are added to
    `empty_slices`."""
    a = release.annotations[index]
    info = release.clips[a.clip]
    persons, target = persons_of(info, a.character)
    segment, _ = release.targets[index]
    p, s, d = len(persons), info.num_segments, release.dims
    arrays = {m: np.zeros((p, s, d[m]), np.float32) for m in rf.MODALITIES}
    present = {m: np.zeros((p, s), bool) for m in rf.MODALITIES}
    row = {c: k for k, c in enumerate(persons)}
    for j, speaker in enumerate(info.speakers):
        if speaker not in row:
            continue
        k = row[speaker]
        vec = release.audio.get(rf.audio_key(a.clip, info.seg_ori_ind[j]))
        if vec is not None:  # audio may be missing (no key): absent
            arrays["audio"][k, j], present["audio"][k, j] = vec, True
        arrays["text"][k, j] = release.text[rf.text_key(a.clip, j)]  # checked by read_release
        present["text"][k, j] = True
    for k, c in enumerate(persons):
        arrays["visual"][k], present["visual"][k], empty = visual.rows(c)
        if empty_slices is not None:
            empty_slices.update((a.clip, c, j) for j in empty)
    return {
        "id": f"{a.clip}#{index}", "anno_index": np.int32(index), "clip": a.clip,
        "moment": np.float32(a.moment),
        "persons": np.asarray(persons, np.int32), "target_person": np.int32(target),
        "target_segment": np.int32(segment),
        "segment_start": np.asarray(info.seg_start, np.float32),
        "segment_end": np.asarray(info.seg_end, np.float32),
        "segment_speaker": np.asarray(info.speakers, np.int32),
        **arrays, **{f"{m}_present": present[m] for m in rf.MODALITIES},
        "personality": release.personality[persons],
        "label_primary": np.int64(a.primary), "label_fine": np.int64(a.fine),
        "speaks_in_segment": info.speakers[segment] == a.character,
        "speaks_in_clip": a.character in info.speakers,
    }


# ----------------------------------------------------------------------------- splits
def assign_splits(annotations: Sequence[rf.AnnoRecord], ids: Mapping[str, Mapping[int, int]],
                  config: str) -> dict[str, list[int]]:
    """{split: sorted annotation indices}.

    official: test = test_id.txt; validation = the train_id.txt annotations whose clip falls in
    the first VALIDATION_FRACTION of the hash range (`in_hash_fraction`); train = the rest.
    moment_disjoint: first every moment (clip, ms) annotated in both lists goes wholly to test;
    then validation is carved from the remaining train annotations as above.
    """
    if config not in CONFIGS:
        raise ValueError(f"unknown config {config!r}; expected one of {CONFIGS}")
    train, test = set(ids["train"]), set(ids["test"])
    if config == "moment_disjoint":
        shared = _shared_moments(annotations, ids)
        moved = {i for i in train
                 if moment_key(annotations[i].clip, annotations[i].moment) in shared}
        train, test = train - moved, test | moved
    val = {i for i in train if in_hash_fraction(annotations[i].clip, VALIDATION_FRACTION)}
    return {"train": sorted(train - val), "validation": sorted(val), "test": sorted(test)}


def _moments(annotations: Sequence[rf.AnnoRecord], listed: Mapping[int, int]
             ) -> dict[tuple[str, int], list[int]]:
    out: dict[tuple[str, int], list[int]] = defaultdict(list)
    for i in listed:
        out[moment_key(annotations[i].clip, annotations[i].moment)].append(i)
    return out


def _shared_moments(annotations: Sequence[rf.AnnoRecord], ids: Mapping[str, Mapping[int, int]]
                    ) -> set[tuple[str, int]]:
    train, test = _moments(annotations, ids["train"]), _moments(annotations, ids["test"])
    return set(train) & set(test)


def measure_overlap(annotations: Sequence[rf.AnnoRecord], ids: Mapping[str, Mapping[int, int]]
                    ) -> dict[str, Any]:
    """How much the official train and test lists share: moments (clip, time to 1 ms) in
    total and in both lists, clips in both lists, and the listed annotations at a shared
    moment (the first LISTED shared moments are named)."""
    train, test = _moments(annotations, ids["train"]), _moments(annotations, ids["test"])
    shared = sorted(set(train) & set(test))
    clips = ({annotations[i].clip for i in ids["train"]}
             & {annotations[i].clip for i in ids["test"]})
    return {"moments": len(set(train) | set(test)), "shared_moments": len(shared),
            "shared_clips": len(clips),
            "affected_annotations": sum(len(train[m]) + len(test[m]) for m in shared),
            "examples": [{"clip": c, "moment_ms": ms} for c, ms in shared[:LISTED]]}


def class_counts(annotations: Sequence[rf.AnnoRecord], splits: Mapping[str, Sequence[int]]
                 ) -> dict[str, dict[str, dict[str, int]]]:
    """{split: {"primary": {class: n}, "fine": {class: n}}}."""
    out = {}
    for split, indices in splits.items():
        prim = np.bincount([annotations[i].primary for i in indices], minlength=len(rf.PRIMARY))
        fine = np.bincount([annotations[i].fine for i in indices], minlength=len(rf.FINE))
        out[split] = {"primary": dict(zip(rf.PRIMARY, map(int, prim))),
                      "fine": dict(zip(rf.FINE, map(int, fine)))}
    return out
