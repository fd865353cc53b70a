"""Fixed-shape LIReC examples from per-clip MovieGraphs examples (transforms, padding, sampling).

A stored example (the `moviegraphs_lirec` build) describes one clip: `clip_id`, `movie_id`,
`visual` [Dv] (+ `visual_present`), `text` [Dt] (+ `text_present`), `interaction`,
`overlap_interactions` [A] (labels of the overlapping clips, its own included), `num_pairs` P,
`pair_characters` [P, 2], `pair_tracks` [P, 2, Dr], `true_pair` (-1: none), `relationship`
(-1: none) and `pair_clip_ids` [K] (the other clips of the same pair and relationship in the
split).

The transform of one setting (see :data:`SETTINGS`) turns it into a dict of fixed shapes:

* ``inputs``: ``visual [S, Dv]``, ``text [S, Dt]``, ``clip_mask [S]`` with S clip slots (1, or
  ``num_clips + 1`` for the settings with a group V: slot 0 is the clip itself, slots 1.. the
  other clips of its pair), and ``tracks`` -- ``[S, 2, Dr]`` of the true pair for the settings
  where the pair is known, ``[P, S, 2, Dr]`` for every candidate pair of the clip otherwise
  (``P = max_pairs``). The inputs sit in a nested dict so the trainer's evaluation does not keep
  them for the whole split.
* labels: ``interaction``, ``overlap [A]``, ``relationship``, ``true_pair``; ``pair_mask [P]``
  for the character settings; ``group`` {``interaction [S]``, ``overlap [S, A]``} for "joint".
* host strings: ``clip_id``, ``movie_id``, ``pair_key`` (movie + ordered true pair: the grouping
  of relationship scores at evaluation); ``valid``.

Missing modalities are zero vectors (paper Sec. 4.1); a character without a track in a clip of
the group gets zeros (Sec. 3.2, "zeros for unseen characters").
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

NUM_INTERACTIONS = 101
NUM_RELATIONSHIPS = 15
SETTINGS: tuple[str, ...] = ("interactions", "relationships", "joint", "characters_full",
                             "characters_weak", "all_full", "all_weak")
GROUP_SETTINGS = frozenset({"relationships", "joint", "all_full", "all_weak"})
CHARACTER_SETTINGS = frozenset({"characters_full", "characters_weak", "all_full", "all_weak"})
HOST_KEYS: tuple[str, ...] = ("clip_id", "movie_id", "pair_key")


@dataclasses.dataclass(frozen=True)
class BatchSpec:
    """What one setting's examples look like."""

    setting: str
    visual_dim: int
    text_dim: int
    track_dim: int
    num_clips: int = 18  # other clips of the pair besides the clip itself (Sec. 4.3, Fig. 5)
    max_pairs: int = 20  # candidate pairs per clip (the release keeps at most 20)
    num_interactions: int = NUM_INTERACTIONS

    def __post_init__(self):
        if self.setting not in SETTINGS:
            raise ValueError(f"unknown setting {self.setting!r}; expected one of {SETTINGS}")

    @property
    def group(self) -> bool:
        return self.setting in GROUP_SETTINGS

    @property
    def characters(self) -> bool:
        return self.setting in CHARACTER_SETTINGS

    @property
    def slots(self) -> int:
        return self.num_clips + 1 if self.group else 1


def index_by_clip(examples: Sequence[Mapping[str, Any]]) -> dict[str, Mapping[str, Any]]:
    """clip_id -> example for one split (ids must be unique)."""
    index: dict[str, Mapping[str, Any]] = {}
    for e in examples:
        cid = str(e["clip_id"])
        if cid in index:
            raise ValueError(f"clip_id {cid!r} appears twice in the split")
        index[cid] = e
    return index


def group_pool(example: Mapping[str, Any], index: Mapping[str, Any]) -> list[str]:
    """The other clips of the clip's pair and relationship that exist in the split, sorted."""
    own = str(example["clip_id"])
    ids = {str(c) for c in np.asarray(example.get("pair_clip_ids", ()), dtype=object).ravel()}
    return sorted(c for c in ids if c != own and c in index)


def choose_group(pool: Sequence[str], num_clips: int,
                 rng: np.random.Generator | None) -> list[str]:
    """Up to `num_clips` of `pool`: sampled without replacement with `rng` (training), or fixed
    and spread uniformly over the sorted pool (evaluation, `rng=None`; Sec. 4.3)."""
    pool = sorted(pool)
    n = len(pool)
    if n == 0 or num_clips <= 0:
        return []
    if rng is not None:
        picks = rng.choice(n, size=min(n, num_clips), replace=False)
        return [pool[int(i)] for i in picks]
    if n <= num_clips:
        return list(pool)
    # n > num_clips: consecutive rounded positions differ by >= 1, so they are distinct
    picks = np.round(np.linspace(0, n - 1, num_clips)).astype(int)
    return [pool[int(i)] for i in picks]


def _modality(example: Mapping[str, Any], key: str, dim: int) -> np.ndarray:
    x = np.asarray(example[key], np.float32).reshape(dim)
    if not bool(np.asarray(example.get(f"{key}_present", True))):
        return np.zeros(dim, np.float32)
    return x


def _pairs(example: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """(pair_characters [P, 2] str, pair_tracks [P, 2, Dr]) restricted to num_pairs."""
    p = int(example.get("num_pairs", len(example["pair_characters"])))
    chars = np.asarray(example["pair_characters"], dtype=object).reshape(-1, 2)[:p]
    tracks = np.asarray(example["pair_tracks"], np.float32)
    return chars, tracks[:p]


def true_pair_tracks(example: Mapping[str, Any], track_dim: int) -> np.ndarray:
    """[2, Dr] track features of the clip's true pair (zeros when the pair is unknown)."""
    tp = int(example["true_pair"])
    _, tracks = _pairs(example)
    if tp < 0 or tp >= len(tracks):
        return np.zeros((2, track_dim), np.float32)
    return tracks[tp].reshape(2, track_dim)


def character_tracks(example: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """character name -> its track feature in this clip (first occurrence over the pairs)."""
    chars, tracks = _pairs(example)
    out: dict[str, np.ndarray] = {}
    for p in range(len(chars)):
        for slot in range(2):
            out.setdefault(str(chars[p, slot]), tracks[p, slot])
    return out


def pair_key(example: Mapping[str, Any]) -> str:
    """movie + ordered true pair (directed relationships); the clip id when the pair is unknown.
    """
    tp = int(example["true_pair"])
    chars, _ = _pairs(example)
    if tp < 0 or tp >= len(chars):
        return f"{example['movie_id']}/clip:{example['clip_id']}"
    return f"{example['movie_id']}/{chars[tp, 0]}->{chars[tp, 1]}"


def reverse_pair(example: Mapping[str, Any], max_pairs: int | None = None) -> int:
    """Index of the true pair read the other way round ((to, from)) among the candidates;
    -1 when there is no true pair or no such candidate (evaluation only: a metric that
    accepts either direction)."""
    tp = int(example["true_pair"])
    chars, _ = _pairs(example)
    if max_pairs is not None:
        chars = chars[:max_pairs]
    if tp < 0 or tp >= len(chars):
        return -1
    rev = (chars[tp, 1], chars[tp, 0])
    hits = [k for k in range(len(chars)) if (chars[k, 0], chars[k, 1]) == rev]
    return hits[0] if hits else -1


def _labels(spec: BatchSpec, example: Mapping[str, Any]) -> dict[str, Any]:
    overlap = np.asarray(example["overlap_interactions"], bool).reshape(spec.num_interactions)
    tp = int(example["true_pair"])
    if spec.characters and tp >= spec.max_pairs:
        tp = -1  # dropped with the candidate slots beyond max_pairs
    rev = reverse_pair(example, spec.max_pairs) if tp >= 0 else -1
    return {"interaction": np.int32(example["interaction"]), "overlap": overlap,
            "relationship": np.int32(example["relationship"]), "true_pair": np.int32(tp),
            "reverse_pair": np.int32(rev)}


def transform(spec: BatchSpec, index: Mapping[str, Mapping[str, Any]],
              example: Mapping[str, Any], rng: np.random.Generator | None) -> dict[str, Any]:
    """One stored example -> the fixed-shape dict of `spec` (see the module docstring)."""
    s, dr = spec.slots, spec.track_dim
    members = [example]
    if spec.group:
        members += [index[c] for c in choose_group(group_pool(example, index), spec.num_clips,
                                                   rng)]
    visual = np.zeros((s, spec.visual_dim), np.float32)
    text = np.zeros((s, spec.text_dim), np.float32)
    clip_mask = np.zeros((s,), bool)
    for k, m in enumerate(members):
        visual[k] = _modality(m, "visual", spec.visual_dim)
        text[k] = _modality(m, "text", spec.text_dim)
        clip_mask[k] = True
    out: dict[str, Any] = _labels(spec, example)
    if spec.characters:
        chars, _ = _pairs(example)
        chars = chars[:spec.max_pairs]
        tracks = np.zeros((spec.max_pairs, s, 2, dr), np.float32)
        for k, m in enumerate(members):
            per_char = character_tracks(m)
            for p in range(len(chars)):
                for slot in range(2):
                    feat = per_char.get(str(chars[p, slot]))
                    if feat is not None:
                        tracks[p, k, slot] = feat
        pair_mask = np.zeros((spec.max_pairs,), bool)
        pair_mask[:len(chars)] = True
        out["pair_mask"] = pair_mask
    else:
        tracks = np.zeros((s, 2, dr), np.float32)
        for k, m in enumerate(members):
            tracks[k] = true_pair_tracks(m, dr)
    out["inputs"] = {"visual": visual, "text": text, "tracks": tracks, "clip_mask": clip_mask}
    if spec.setting == "joint":
        g_int = np.zeros((s,), np.int32)
        g_overlap = np.zeros((s, spec.num_interactions), bool)
        for k, m in enumerate(members):
            g_int[k] = int(m["interaction"])
            g_overlap[k] = np.asarray(m["overlap_interactions"], bool)
        out["group"] = {"interaction": g_int, "overlap": g_overlap}
    out["valid"] = np.bool_(True)
    out["clip_id"] = str(example["clip_id"])
    out["movie_id"] = str(example["movie_id"])
    out["pair_key"] = pair_key(example)
    return out


def padding(spec: BatchSpec) -> dict[str, Any]:
    """An all-zero example of `spec` with valid=False (fills the last evaluation batch)."""
    s, a = spec.slots, spec.num_interactions
    tracks_shape = (spec.max_pairs, s, 2, spec.track_dim) if spec.characters else \
        (s, 2, spec.track_dim)
    out: dict[str, Any] = {
        "interaction": np.int32(0), "overlap": np.zeros((a,), bool),
        "relationship": np.int32(-1), "true_pair": np.int32(-1), "reverse_pair": np.int32(-1),
        "inputs": {"visual": np.zeros((s, spec.visual_dim), np.float32),
                   "text": np.zeros((s, spec.text_dim), np.float32),
                   "tracks": np.zeros(tracks_shape, np.float32),
                   "clip_mask": np.zeros((s,), bool)},
    }
    if spec.characters:
        out["pair_mask"] = np.zeros((spec.max_pairs,), bool)
    if spec.setting == "joint":
        out["group"] = {"interaction": np.zeros((s,), np.int32),
                        "overlap": np.zeros((s, a), bool)}
    out["valid"] = np.bool_(False)
    out.update({k: "" for k in HOST_KEYS})
    return out


@dataclasses.dataclass(frozen=True)
class Transform:
    """`transform(spec, index, ...)` as a picklable callable for grain."""

    spec: BatchSpec
    index: Mapping[str, Mapping[str, Any]]

    def __call__(self, example: Mapping[str, Any], rng: np.random.Generator | None
                 ) -> dict[str, Any]:
        return transform(self.spec, self.index, example, rng)


def dummy_batch(spec: BatchSpec, batch_size: int) -> dict[str, Any]:
    """A device batch of zeros with the real shapes (host strings left out)."""
    one = padding(spec)
    one["valid"] = np.bool_(True)

    def stack(x):
        if isinstance(x, dict):
            return {k: stack(v) for k, v in x.items()}
        x = np.asarray(x)
        return np.broadcast_to(x, (batch_size, *x.shape)).copy()

    return {k: stack(v) for k, v in one.items() if k not in HOST_KEYS}
