"""Per-clip examples of the `moviegraphs_lirec` build from a LIReC manual_dir (pure numpy).

One example per directed person-to-person (p2p) instance of an annotated interaction (the
paper's samples: "20,426 p2p instances" in train, Sec. 4.2). The rules where the paper or the
release leave a choice are listed in README.md ("Choices") and next to the code.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from jaxaffect.families.lirec import release_format as lf
from jaxaffect.families.lirec import release_labels as rl
from tfds_builders.moviegraphs_lirec import lirec_release as lr

IOU_THRESHOLD = 0.2  # Sec. 4.1 "Multi-label masking"
MAX_PAIRS = 20  # the released code caps the candidate pairs of a clip at 20
MAX_CHARACTERS = 5  # 5 * 4 = 20 ordered pairs
# Face box -> person box (fractions of the person box the face occupies), and the scale of the
# released face boxes relative to org_res.txt (the released code halves x, y, w, h).
FACE_HEIGHT_RANGE = (0.10, 0.25)
FACE_WIDTH_RANGE = (0.35, 0.65)
FACE_BOX_SCALE = 0.5


# ----------------------------------------------------------------------------- overlaps
def temporal_iou(a: tuple[float, float], b: tuple[float, float]) -> float:
    """IoU of two closed time intervals (0 when disjoint; two equal points give 1)."""
    inter = min(a[1], b[1]) - max(a[0], b[0])
    if inter < 0:
        return 0.0
    union = max(a[1], b[1]) - min(a[0], b[0])
    return 1.0 if union <= 0 else inter / union


def overlap_matrix(starts: np.ndarray, ends: np.ndarray, groups: Sequence[Any],
                   threshold: float = IOU_THRESHOLD) -> np.ndarray:
    """bool [N, N]: same group (movie/scene) and temporal IoU > threshold; diagonal True."""
    s, e = np.asarray(starts, np.float64), np.asarray(ends, np.float64)
    inter = np.minimum(e[:, None], e[None, :]) - np.maximum(s[:, None], s[None, :])
    union = np.maximum(e[:, None], e[None, :]) - np.minimum(s[:, None], s[None, :])
    iou = np.where(inter < 0, 0.0, np.where(union <= 0, 1.0, inter / np.maximum(union, 1e-12)))
    codes = {g: i for i, g in enumerate(dict.fromkeys(groups))}
    g = np.asarray([codes[x] for x in groups])
    out = (g[:, None] == g[None, :]) & (iou > threshold)
    np.fill_diagonal(out, True)
    return out


def overlap_labels(matrix: np.ndarray, labels: np.ndarray, num_classes: int) -> np.ndarray:
    """bool [N, C]: labels of the clips overlapping each clip (its own label included)."""
    onehot = np.zeros((len(labels), num_classes), bool)
    onehot[np.arange(len(labels)), labels] = True
    return (matrix.astype(np.int32) @ onehot.astype(np.int32)) > 0


# ----------------------------------------------------------------------------- visual
def feature_steps(frame_times: np.ndarray, start: float, end: float, num_steps: int) -> np.ndarray:
    """Visual feature steps of the frames whose time lies in [start, end] (sorted, unique)."""
    frames = np.nonzero((frame_times >= start) & (frame_times <= end))[0]
    steps = np.unique(frames // lf.FRAMES_PER_STEP)
    return steps[steps < num_steps]


def spatial_mean(visual: np.ndarray) -> np.ndarray:
    """[T, D, H, W] -> [T, D] (already pooled [T, D] passes through)."""
    return visual.mean(axis=(2, 3)) if visual.ndim == 4 else visual


def person_grid_box(face: np.ndarray, org_hw: tuple[int, int],
                    grid_hw: tuple[int, int]) -> tuple[int, int, int, int]:
    """Grid cells (y0, y1, x0, x1), end exclusive, of the person box around a face box."""
    fx, fy, fw, fh = (float(v) * FACE_BOX_SCALE for v in face)
    pw = fw / (FACE_WIDTH_RANGE[1] - FACE_WIDTH_RANGE[0])
    ph = fh / (FACE_HEIGHT_RANGE[1] - FACE_HEIGHT_RANGE[0])
    px, py = fx - FACE_WIDTH_RANGE[0] * pw, fy - FACE_HEIGHT_RANGE[0] * ph
    sy, sx = grid_hw[0] / org_hw[0], grid_hw[1] / org_hw[1]
    y0 = max(0, int(np.floor(py * sy)))
    y1 = min(grid_hw[0], int(np.ceil((py + ph) * sy)))
    x0 = max(0, int(np.floor(px * sx)))
    x1 = min(grid_hw[1], int(np.ceil((px + pw) * sx)))
    return y0, max(y1, y0 + 1), x0, max(x1, x0 + 1)


def detection_features(visual: np.ndarray, track: lf.FaceTrack, start: float, end: float,
                       org_hw: tuple[int, int] | None) -> np.ndarray:
    """[n, D]: the feature of every detection of `track` inside [start, end].

    With a spatial grid and the movie's resolution: the mean over the person box (ROI pooling,
    Sec. 4.1); otherwise the whole step's feature.
    """
    keep = (track.times >= start) & (track.times <= end)
    steps = track.frames[keep] // lf.FRAMES_PER_STEP
    boxes = track.boxes[keep]
    inside = steps < visual.shape[0]
    steps, boxes = steps[inside], boxes[inside]
    if visual.ndim == 2 or org_hw is None:
        return spatial_mean(visual)[steps]
    grid = visual.shape[2:]
    out = np.empty((len(steps), visual.shape[1]), np.float32)
    for i, (t, box) in enumerate(zip(steps, boxes)):
        y0, y1, x0, x1 = person_grid_box(box, org_hw, grid)
        y0, x0 = min(y0, grid[0] - 1), min(x0, grid[1] - 1)
        out[i] = visual[t, :, y0:y1, x0:x1].mean(axis=(1, 2))
    return out


def track_matches(track_name: str | None, character: str) -> bool:
    """Released rule: a track label names a character if it equals the name or one of its words."""
    return track_name is not None and (track_name == character or track_name in character.split())


# ----------------------------------------------------------------------------- text
def clip_token_rows(cues: Sequence[lf.Cue], ranges: Sequence[range], start: float,
                    end: float) -> list[int]:
    """Rows of the sentences whose cue overlaps [start, end] (closed intervals)."""
    rows: list[int] = []
    for c, r in zip(cues, ranges):
        if c.start <= end and c.end >= start:
            rows.extend(r)
    return rows


# ----------------------------------------------------------------------------- pairs
def candidate_pairs(characters: Sequence[str], true_pair: tuple[str, str] | None,
                    presence: Mapping[str, float],
                    max_pairs: int = MAX_PAIRS) -> tuple[list[tuple[str, str]], int]:
    """(ordered candidate pairs, index of `true_pair` or -1).

    Candidates are the ordered pairs of the clip's characters (those linked to the interaction,
    as in the released code; the paper's P_M is all pairs of the movie, Sec. 3.2). With more than
    `max_pairs` pairs, the characters are cut to the largest n with n (n - 1) <= max_pairs: the
    true pair's two characters, then the others by descending `presence` (face-track detections
    in the clip), then name. The kept characters are sorted by name before forming pairs, so the
    true pair's index carries no information.
    """
    chars = list(dict.fromkeys(characters))
    if true_pair is not None:
        chars += [c for c in true_pair if c not in chars]
    n = 1
    while (n + 1) * n <= max_pairs:
        n += 1
    if len(chars) > n:
        first = [c for c in chars if true_pair is not None and c in true_pair]
        rest = sorted((c for c in chars if c not in first), key=lambda c: (-presence.get(c, 0), c))
        chars = first + rest[:n - len(first)]
    chars = sorted(chars)
    pairs = list(itertools.permutations(chars, 2))
    index = pairs.index(true_pair) if true_pair in pairs else -1
    return pairs, index


# ----------------------------------------------------------------------------- relationships
class RelationshipIndex:
    """Directed relationship of a pair in a scene (15 classes), from the scene annotations.

    Annotated ``a -> b`` gives ``b -> a`` its opposite (relships_15_opp.txt). In a scene without
    an annotation for the pair, the label of the nearest annotated scene of the movie is used
    (released rule; ties -> the earlier scene). Several labels in one scene: the first in class
    order (the released code draws one at random).
    """

    def __init__(self, records: Sequence[rl.RelationshipRecord], to_class: Mapping[str, str],
                 opposites: Mapping[str, str], class_names: Sequence[str]):
        self._order = {n: i for i, n in enumerate(class_names)}
        direct: dict[tuple[str, str], dict[int, set[str]]] = defaultdict(lambda: defaultdict(set))
        reverse: dict[tuple[str, str], dict[int, set[str]]] = defaultdict(lambda: defaultdict(set))
        self.unknown: set[str] = set()
        for r in records:
            name = to_class.get(r.name, r.name)
            if name not in self._order:
                self.unknown.add(r.name)
                continue
            sc = lf.scene_number(r.scene)
            direct[(r.source, r.target)][sc].add(name)
            if name in opposites and opposites[name] in self._order:
                reverse[(r.target, r.source)][sc].add(opposites[name])
        self._by_pair: dict[tuple[str, str], dict[int, set[str]]] = {}
        for pair in set(direct) | set(reverse):
            scenes = {sc: set(v) for sc, v in reverse.get(pair, {}).items()}
            scenes.update({sc: set(v) for sc, v in direct.get(pair, {}).items()})
            self._by_pair[pair] = scenes

    def label(self, source: str, target: str, scene: str) -> int:
        scenes = self._by_pair.get((source, target))
        if not scenes:
            return -1
        sc = lf.scene_number(scene)
        nearest = min(scenes, key=lambda s: (abs(s - sc), s))
        return min(self._order[n] for n in scenes[nearest])


def fill_pair_clip_ids(examples: list[dict[str, Any]]) -> None:
    """Sets `pair_clip_ids`: the other examples (same list = same split) of the same movie,
    directed pair and relationship, in time order; empty without a pair or relationship."""
    groups: dict[tuple, list[dict[str, Any]]] = defaultdict(list)
    for ex in examples:
        ex["pair_clip_ids"] = []
        if ex["true_pair"] >= 0 and ex["relationship"] >= 0:
            pair = tuple(ex["pair_characters"][ex["true_pair"]])
            groups[(ex["movie_id"], pair, int(ex["relationship"]))].append(ex)
    for members in groups.values():
        members.sort(key=lambda e: e["_order"])
        ids = [m["clip_id"] for m in members]
        for m in members:
            m["pair_clip_ids"] = [i for i in ids if i != m["clip_id"]]


# ----------------------------------------------------------------------------- assembly
@dataclasses.dataclass(frozen=True)
class LabelMaps:
    """The label vocabularies of a manual_dir (others/)."""

    interactions: list[str]
    to_interaction: dict[str, str]
    relationships: list[str]
    to_relationship: dict[str, str]
    opposites: dict[str, str]
    org_res: dict[str, tuple[int, int]]

    @classmethod
    def read(cls, root: lf.PathLike) -> LabelMaps:
        root = lf.epath.Path(root)
        names, to_merged = rl.read_merged_interactions(root / lf.MERGED_INTERACTIONS_FILE)
        rel_map = rl.read_relationship_map(root / lf.RELATIONSHIP_MAP_FILE)
        opp_path = root / lf.RELATIONSHIP_OPPOSITES_FILE
        res_path = root / lf.ORG_RES_FILE
        return cls(names, to_merged, rl.relationship_names(rel_map), rel_map,
                   rl.read_relationship_opposites(opp_path) if opp_path.exists() else {},
                   rl.read_org_res(res_path) if res_path.exists() else {})


def movie_examples(root: lf.PathLike, plan: lr.MoviePlan, maps: LabelMaps,
                   dims: Mapping[str, int], notes: lr.BuildNotes) -> list[dict[str, Any]]:
    """Examples of one planned movie (without `pair_clip_ids`; see fill_pair_clip_ids)."""
    movie, labels = plan.movie, plan.labels
    rels = RelationshipIndex(labels.relationships, maps.to_relationship, maps.opposites,
                             maps.relationships)
    for name in sorted(rels.unknown):
        notes.problem(plan.labels_file, f"unknown relationship {name!r} ignored")
    records = []
    for r in labels.interactions:
        merged = maps.to_interaction.get(r.name)
        if merged is None:
            notes.skipped.append({"clip": f"{movie}_{r.id}",
                                  "reason": f"unknown interaction {r.name!r}"})
        elif not r.pairs:
            notes.skipped.append({"clip": f"{movie}_{r.id}", "reason": "no participants"})
        else:
            records.append((r, maps.interactions.index(merged)))
    if not records:
        return []
    labels_arr = np.asarray([c for _, c in records])
    overlaps = overlap_labels(
        overlap_matrix(np.asarray([r.start for r, _ in records]),
                       np.asarray([r.end for r, _ in records]), [r.scene for r, _ in records]),
        labels_arr, len(maps.interactions))
    org_hw = maps.org_res.get(movie)
    scenes: dict[str, lr.Scene] = {}
    examples = []
    for i, (r, cls_id) in enumerate(records):
        if r.scene not in scenes:
            scenes[r.scene] = lr.load_scene(root, plan, r.scene, dims, notes)
        sc = scenes[r.scene]
        visual = np.zeros(dims["visual"], np.float32)
        v_present = False
        if sc.visual is not None:
            steps = feature_steps(sc.frame_times, r.start, r.end, sc.visual.shape[0])
            if len(steps):
                visual, v_present = spatial_mean(sc.visual)[steps].max(axis=0), True
        text = np.zeros(dims["text"], np.float32)
        rows = clip_token_rows(sc.cues, sc.ranges, r.start, r.end) if sc.cues else []
        if rows:
            text = sc.text[rows].max(axis=0)
        char_feats: dict[str, np.ndarray] = {}
        presence: dict[str, float] = {}
        people = set(r.characters) | {c for p in r.pairs for c in p if c is not None}
        for c in people:
            feats = [detection_features(sc.visual, t, r.start, r.end, org_hw)
                     for t, n in zip(sc.tracks, sc.track_names)
                     if track_matches(n, c) and sc.visual is not None]
            feats = [f for f in feats if len(f)]
            presence[c] = float(sum(len(f) for f in feats))
            if feats:
                char_feats[c] = np.concatenate(feats).max(axis=0)
        zeros = np.zeros(dims["tracks"], np.float32)
        for k, (a, b) in enumerate(r.pairs):
            true = (a, b) if a is not None and b is not None and a != b else None
            pairs, t_index = candidate_pairs(r.characters, true, presence)
            tracks = np.zeros((len(pairs), 2, dims["tracks"]), np.float32)
            for p, (x, y) in enumerate(pairs):
                tracks[p, 0], tracks[p, 1] = char_feats.get(x, zeros), char_feats.get(y, zeros)
            rel = rels.label(a, b, r.scene) if true is not None else -1
            used = [c for pair in pairs for c in pair] or list(people)
            notes.missing["visual"] += not v_present
            notes.missing["text"] += not rows
            notes.missing["tracks"] += not any(c in char_feats for c in used)
            examples.append({
                "clip_id": f"{movie}_{r.id}_{k}", "movie_id": movie,
                "visual": visual.astype(np.float32), "visual_present": v_present,
                "text": text.astype(np.float32), "text_present": bool(rows),
                "interaction": np.int32(cls_id), "overlap_interactions": overlaps[i],
                "num_pairs": np.int32(len(pairs)),
                "pair_characters": np.asarray(pairs, dtype=object).reshape(len(pairs), 2),
                "pair_tracks": tracks, "true_pair": np.int32(t_index),
                "relationship": np.int32(rel),
                "_order": (lf.scene_number(r.scene), r.start, r.end, r.id, k),
            })
    return examples
