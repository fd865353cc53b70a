"""A deterministic synthetic corpus in the LIReC release layout (for demos and tests).

It is NOT MovieGraphs. Movies have named characters; some pairs have a directed relationship
(and its opposite the other way); a relationship shapes which interactions its pair performs
(each relationship favours a few interactions). Scenes hold several characters with face
tracks; annotated interactions are time spans (some overlapping) between a directed pair, with
other scene characters attached as distractors. Each interaction leaves a signal in the visual
features, the dialogue token features or both (its "modality"), and a weaker signal in the face
regions of its two characters (an "actor" direction on the first, a "receiver" direction on the
second, plus the interaction's pattern), so which pair interacts is visible only in the tracks.
docs/synthetic_lirec.md documents the process and the probes that calibrate it.
"""

from __future__ import annotations

import itertools
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from jaxaffect.families.lirec import release_format as lf
from jaxaffect.families.lirec import release_labels as rl

GENERATOR_VERSION = 4
README_FILE = "README.txt"
FPS = 16  # one visual feature step (16 frames) per second
GRID = (2, 2)  # spatial feature grid; one character per cell
ORG_RES = (360, 640)  # height, width of the (virtual) videos

# The 15 relationship classes named in the paper (Sec. 4.2), and our directed opposites.
RELATIONSHIPS: tuple[str, ...] = (
    "stranger", "friend", "colleague", "lover", "enemy", "acquaintance", "ex-lover", "boss",
    "worker", "manager", "customer", "knows-by-reputation", "parent", "child", "sibling")
OPPOSITES: dict[str, str] = {"parent": "child", "child": "parent", "boss": "worker",
                             "worker": "boss", "manager": "customer", "customer": "manager"}
# Raw (MovieGraphs-style) relationship words mapped to the classes, to exercise the map file.
RAW_RELATIONSHIPS: dict[str, str] = {"best friend": "friend", "husband": "lover",
                                     "wife": "lover", "father": "parent", "employer": "boss"}
# Interaction names that appear in the paper's text; the rest of the 101 are numbered
# placeholders (the released 101-name file is part of the data download, not of the code).
PAPER_INTERACTIONS: tuple[str, ...] = (
    "talks to", "asks", "explains", "informs", "suggests", "proposes", "assists", "guides",
    "reassures", "wishes", "confesses", "consoles", "apologizes", "compliments", "greets",
    "introduces", "listens to", "ignores", "avoids", "pretends", "reads", "searches", "watches",
    "hits", "plays", "embraces", "hugs", "kisses", "catches", "runs with", "walks", "leaves",
    "follows", "sits", "eats with", "laughs at", "entertains", "obeys", "orders", "scolds",
    "mocks", "steals", "complains", "accuses", "yells", "shoots", "pulls", "commits")
NUM_INTERACTIONS = 101
INTERACTIONS: tuple[str, ...] = PAPER_INTERACTIONS + tuple(
    f"synthetic interaction {i:03d}" for i in range(len(PAPER_INTERACTIONS), NUM_INTERACTIONS))
FIRST_NAMES = ("ada", "ben", "cleo", "dan", "eve", "finn", "gus", "hana", "ivo", "jude", "kai",
               "lena")
SURNAMES = ("moss", "reyes", "okafor", "lind", "park", "novak")

PROCESS: dict[str, float] = {
    "clip_amplitude": 1.5,  # norm of an interaction's dialogue pattern
    "scene_amplitude": 0.5,  # norm of a visual interaction's pattern over the whole frame
    "track_amplitude": 3.0,  # norm of the role direction and of the role pattern in the
                             # actor's / receiver's face regions
    "identity_std": 0.5, "noise_std": 0.6, "token_noise_std": 0.7,
    "favoured_per_relationship": 8, "favoured_mass": 0.75,
    "common_interactions": 24,  # favoured interactions come from this many (a long tail)
    "labelled_pair_prob": 0.7, "single_participant_prob": 0.04,
    "empty_cue_prob": 0.1, "prominence_decay": 1.0, "continued_cue_prob": 0.1,
    "unnamed_track_prob": 0.1,
}
SIZES: dict[bool, dict[str, int]] = {
    False: {"visual": 32, "text": 24, "characters": 7, "scenes": 9, "clips": 6},
    True: {"visual": 8, "text": 6, "characters": 5, "scenes": 3, "clips": 4},
}


def _unit(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    x = rng.normal(size=(n, d))
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _split_movies(movies: list[str]) -> dict[str, list[str]]:
    n = len(movies)
    n_val = n_test = max(1, round(0.15 * n))
    return {"train": movies[:n - n_val - n_test], "val": movies[n - n_val - n_test:n - n_test],
            "test": movies[n - n_test:]}


def _face_box(cell: int) -> np.ndarray:
    """A face box (release convention: 2x org_res pixels) whose person box fills one cell."""
    cy, cx = divmod(cell, GRID[1])
    ch, cw = ORG_RES[0] / GRID[0], ORG_RES[1] / GRID[1]
    pw, ph = 0.6 * cw, 0.8 * ch
    px, py = cx * cw + 0.2 * cw, cy * ch + 0.1 * ch
    fx, fy = px + 0.35 * pw, py + 0.10 * ph
    return 2.0 * np.asarray([fx, fy, 0.30 * pw, 0.15 * ph], np.float32)


class _World:
    """Label structure shared by all movies of a corpus (drawn from the seed)."""

    def __init__(self, rng: np.random.Generator, dims: dict[str, int]):
        a, k = NUM_INTERACTIONS, int(PROCESS["favoured_per_relationship"])
        self.modality = rng.integers(0, 3, size=a)  # 0 visual, 1 dialogue, 2 both
        self.visual = _unit(rng, a, dims["visual"])
        self.text = _unit(rng, a, dims["text"])
        self.actor, self.receiver = _unit(rng, 2, dims["visual"])
        self.rel_probs = np.full((len(RELATIONSHIPS) + 1, a), 0.0)
        for r in range(len(RELATIONSHIPS) + 1):  # the last row: pairs without a relationship
            fav = rng.choice(int(PROCESS["common_interactions"]), size=k, replace=False)
            self.rel_probs[r] = (1 - PROCESS["favoured_mass"]) / a
            self.rel_probs[r, fav] += PROCESS["favoured_mass"] / k
        # What the interaction looks like on the actor's and on the receiver's face region:
        # one pattern per interaction and role, so the tracks of the right pair in the right
        # order carry the label (the signal weak, clip-level labels can find).
        self.role_patterns = _unit(rng, 2 * a, dims["visual"]).reshape(2, a, dims["visual"])


def _movie(rng: np.random.Generator, world: _World, movie: str, dims: dict[str, int],
           size: dict[str, int], root: Path) -> rl.MovieLabels:
    n_chars = size["characters"]
    names = [f"{f} {s}" for f, s in zip(rng.permutation(FIRST_NAMES)[:n_chars],
                                        rng.choice(SURNAMES, size=n_chars))]
    identity = PROCESS["identity_std"] * rng.normal(size=(n_chars, dims["visual"]))
    # Main characters appear (and interact) more often: more clips per pair.
    prominence = 1.0 / np.arange(1, n_chars + 1) ** PROCESS["prominence_decay"]
    prominence /= prominence.sum()
    rel_of: dict[tuple[int, int], int] = {}
    for i, j in itertools.combinations(range(n_chars), 2):
        if rng.random() < PROCESS["labelled_pair_prob"]:
            r = int(rng.integers(len(RELATIONSHIPS)))
            opp = RELATIONSHIPS.index(OPPOSITES.get(RELATIONSHIPS[r], RELATIONSHIPS[r]))
            rel_of[(i, j)], rel_of[(j, i)] = r, opp
    inters, rels, track_ids = [], [], {}
    for s in range(size["scenes"]):
        scene = f"scene-{s + 1:03d}.ss-{10 * s:04d}.es-{10 * s + 9:04d}"
        present = sorted(rng.choice(n_chars, size=min(4, n_chars), replace=False,
                                    p=prominence).tolist())
        duration = int(rng.integers(40, 70))
        steps = duration
        frame_times = np.arange(steps * FPS) / FPS
        vis = PROCESS["noise_std"] * rng.normal(size=(steps, dims["visual"], *GRID))
        cells = {c: k for k, c in enumerate(present)}
        # Face tracks: each present character visible over one or two stretches.
        visible = np.zeros((len(present), steps), bool)
        tracks, tnames = [], []
        for k, c in enumerate(present):
            for _ in range(int(rng.integers(1, 3))):
                a = int(rng.integers(0, steps - 8))
                b = min(steps, a + int(rng.integers(15, steps)))
                visible[k, a:b] = True
                frames = np.arange(a * FPS, b * FPS, FPS // 2)
                tracks.append(lf.FaceTrack(frames, frames / FPS,
                                           np.tile(_face_box(k), (len(frames), 1))))
                unnamed = rng.random() < PROCESS["unnamed_track_prob"]
                first_only = rng.random() < 0.5
                tnames.append(None if unnamed else names[c].split()[0] if first_only
                              else names[c])
        # Interactions of the scene (time spans), their signals.
        scene_inters: list[tuple[int, int, int, float, float]] = []
        for _ in range(size["clips"]):
            cand = [(i, j) for i in present for j in present if i != j]
            w = np.asarray([prominence[i] * prominence[j] * (3.0 if (i, j) in rel_of else 1.0)
                            for i, j in cand])
            i, j = cand[int(rng.choice(len(cand), p=w / w.sum()))]
            r = rel_of.get((i, j), len(RELATIONSHIPS))
            a_id = int(rng.choice(NUM_INTERACTIONS, p=world.rel_probs[r]))
            if scene_inters and rng.random() < 0.3:  # overlap a previous interaction
                _, _, _, s0, e0 = scene_inters[-1]
                start = float(np.clip(s0 + rng.integers(-2, 3), 0, duration - 4))
            else:
                start = float(rng.integers(0, duration - 4))
            end = float(min(duration - 1, start + rng.integers(3, 12)))
            scene_inters.append((i, j, a_id, start, end))
            t0, t1 = int(start), int(end) + 1
            if world.modality[a_id] != 1:
                vis[t0:t1] += PROCESS["scene_amplitude"] * world.visual[a_id][None, :, None, None]
            for k, (c, role) in enumerate(((i, world.actor), (j, world.receiver))):
                y, x = divmod(cells[c], GRID[1])
                vis[t0:t1, :, y, x] += PROCESS["track_amplitude"] * (
                    role + world.role_patterns[k, a_id])
                # People who interact are on screen: a face track over the span if the
                # character is not already visible throughout it.
                kc = present.index(c)
                if not visible[kc, t0:t1].all():
                    visible[kc, t0:t1] = True
                    frames = np.arange(t0 * FPS, min(t1, steps) * FPS, FPS // 2)
                    tracks.append(lf.FaceTrack(frames, frames / FPS,
                                               np.tile(_face_box(kc), (len(frames), 1))))
                    tnames.append(names[c])
        for k, c in enumerate(present):
            y, x = divmod(cells[c], GRID[1])
            vis[:, :, y, x] += visible[k][:, None] * identity[c]
        # Dialogue: sentences every few seconds, some split over two cues ("..."), some cues
        # only a sound description (no sentence). Tokens carry dialogue-modality signals.
        cues, feats, tokens = [], [], []
        t = float(rng.uniform(0, 2))
        while t < duration - 2:
            if rng.random() < PROCESS["empty_cue_prob"]:
                end = t + float(rng.uniform(0.5, 1.5))
                cues.append(lf.Cue(round(t, 3), round(end, 3), ("[music]",)))
                t = end + float(rng.uniform(0.2, 1.5))
                continue
            parts = 2 if rng.random() < PROCESS["continued_cue_prob"] else 1
            first, words = t, []
            for p in range(parts):
                end = t + float(rng.uniform(1, 3))
                w = [f"w{int(v)}" for v in rng.integers(0, 50, size=int(rng.integers(2, 6)))]
                words += w
                tail = "..." if p < parts - 1 else "."
                cues.append(lf.Cue(round(t, 3), round(end, 3), (" ".join(w) + tail,)))
                t = end + float(rng.uniform(0.1, 0.5))
            x = PROCESS["token_noise_std"] * rng.normal(size=(len(words) + 2, dims["text"]))
            for (_, _, a_id, s0, e0) in scene_inters:
                if world.modality[a_id] != 0 and first <= e0 and end >= s0:
                    x += PROCESS["clip_amplitude"] * world.text[a_id]
            feats.append(x)
            tokens += [lf.CLS_TOKEN, *words, "[SEP]"]
            t += float(rng.uniform(0.2, 2.0))
        lf.write_visual(lf.visual_path(root, movie, scene), vis.astype(np.float32))
        lf.write_frame2time(lf.frame2time_path(root, movie, scene), frame_times)
        lf.write_webvtt(lf.dialog_path(root, movie, scene), cues)
        lf.write_bert(root, movie, scene, np.concatenate(feats) if feats
                      else np.zeros((0, dims["text"])), tokens)
        lf.write_ftracks(lf.ftracks_path(root, movie, scene), tracks)
        track_ids[scene] = tnames
        overlaps: dict[str, list[str]] = {}
        for k, (i, j, a_id, s0, e0) in enumerate(scene_inters):
            others = [p for p in present if p not in (i, j)]
            extra = rng.choice(others, size=int(rng.integers(0, len(others) + 1)), replace=False)
            chars = tuple(names[c] for c in sorted([i, j, *extra.tolist()]))
            pairs: tuple = ((names[i], names[j]),)
            if rng.random() < PROCESS["single_participant_prob"]:
                pairs = ((names[i], None),)
            inters.append(rl.InteractionRecord(f"s{s + 1}i{k}", scene, s0, e0,
                                               INTERACTIONS[int(a_id)], chars, pairs))
            overlaps.setdefault(INTERACTIONS[int(a_id)], [])
        for (i, j), r in sorted(rel_of.items()):
            if i < j and i in present and j in present:
                raw = [k for k, v in RAW_RELATIONSHIPS.items() if v == RELATIONSHIPS[r]]
                rels.append(rl.RelationshipRecord(scene, names[i], names[j],
                                                  raw[0] if raw else RELATIONSHIPS[r]))
        lf.write_intersections(lf.intersections_path(root, movie, scene), overlaps)
    lf.write_ftrack_ids(lf.ftrack_ids_path(root, movie), track_ids)
    return rl.MovieLabels(movie, tuple(inters), tuple(rels))


def write_lirec_corpus(root: str | Path, *, num_movies: int = 14, seed: int = 0,
                       small: bool = False) -> dict[str, Any]:
    """Writes a synthetic LIReC manual_dir under `root` and returns a summary.

    `root` must be absent, empty, or a corpus this function wrote before (recognised by its
    README file), which is then replaced; any other folder is refused so nothing is lost.

    Deterministic: the same arguments give byte-identical files. `small=True` gives tiny dims
    and few scenes (for tests). Returns {"root", "splits", "dims", "num_interactions",
    "num_instances", "seed", "small", "generator_version"}.
    """
    if num_movies < 3:
        raise ValueError("num_movies must be >= 3 (train, val and test movies)")
    root = Path(root)
    if root.exists() and any(root.iterdir()):
        marker = root / README_FILE
        if not (marker.is_file() and marker.read_text().startswith("Synthetic corpus in the "
                                                                    "LIReC release layout")):
            raise FileExistsError(f"{root}: not empty and not a synthetic LIReC corpus; "
                                  "choose an empty or new folder")
        shutil.rmtree(root)
    root.mkdir(parents=True, exist_ok=True)
    size = SIZES[bool(small)]
    dims = {"visual": size["visual"], "text": size["text"]}
    rng = np.random.default_rng(seed)
    world = _World(rng, dims)
    movies = [f"tt{9000000 + k:07d}" for k in range(num_movies)]
    split = _split_movies(movies)
    rl.write_split(root / lf.SPLIT_FILE, split)
    rl.write_merged_interactions(root / lf.MERGED_INTERACTIONS_FILE,
                                 [(n, [n.replace(" ", "_")]) for n in INTERACTIONS])
    rl.write_relationship_map(root / lf.RELATIONSHIP_MAP_FILE,
                              {**{r: r for r in RELATIONSHIPS}, **RAW_RELATIONSHIPS})
    rl.write_relationship_opposites(root / lf.RELATIONSHIP_OPPOSITES_FILE,
                                    {r: OPPOSITES.get(r, r) for r in RELATIONSHIPS})
    rl.write_org_res(root / lf.ORG_RES_FILE, {m: ORG_RES for m in movies})
    n_inter = n_inst = 0
    for movie in movies:
        labels = _movie(rng, world, movie, dims, size, root)
        rl.write_movie_labels(lf.labels_path(root, movie), labels)
        n_inter += len(labels.interactions)
        n_inst += sum(len(r.pairs) for r in labels.interactions)
    summary = {"root": str(root), "splits": split, "dims": {**dims, "tracks": dims["visual"]},
               "num_interactions": n_inter, "num_instances": n_inst, "seed": seed,
               "small": bool(small), "generator_version": GENERATOR_VERSION}
    (root / README_FILE).write_text(
        "Synthetic corpus in the LIReC release layout (NOT MovieGraphs); written by "
        "jaxaffect.families.lirec.synthetic.write_lirec_corpus. See docs/synthetic_lirec.md.\n"
        + json.dumps({k: v for k, v in summary.items() if k != "root"}, sort_keys=True) + "\n")
    return summary


def synthesize(out: str, *, size: int | None, seed: int) -> dict:
    """`jaxaffect synthesize lirec`: `size` movies (default 14)."""
    return write_lirec_corpus(out, num_movies=size or 14, seed=seed)
