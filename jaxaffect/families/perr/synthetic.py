"""A deterministic synthetic corpus in the ERATO manual_dir layout (what `jaxaffect demo` uses).

It is NOT ERATO. The class of a clip lives only in the temporal order of events across two
streams: a "cue" pattern in one stream answered 1-4 steps later by a "response" pattern in
another. Every class has the same per-stream event counts, so time-blind or single-stream
statistics are at chance while an order-aware cross-modal model can learn the task.
docs/synthetic_erato.md documents the process and the probes that calibrate it.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np

from jaxaffect.data.build import publish_corpus, stage_corpus
from jaxaffect.families.perr import erato_format as ef

GENERATOR_VERSION = 1
CORPUS_FILE = "SYNTHETIC_CORPUS.json"
README_FILE = "README.txt"
CLIP_PREFIX = "synthetic_"

# ERATO class priors (paper Table 2), in ef.FINE_LABELS order.
CLASS_PRIORS: dict[str, float] = {
    "hostile": 0.0456, "tense": 0.1952, "mild": 0.1273, "intimate": 0.0388, "neutral": 0.5931}
# Interaction modes of the pair by IoM of their presence (paper Sec. 3.3, Fig. 3).
IOM_MODES: tuple[str, ...] = ("disjoint", "inclusion", "partial")
IOM_PRIORS: tuple[float, ...] = (0.0981, 0.5232, 0.3787)
PATTERNS: tuple[str, ...] = ("cue", "response", "filler")
CUE, RESP, FILLER = 0, 1, 2
# class -> (cue stream, response stream). Neutral has no template.
TEMPLATES: dict[str, tuple[str, str]] = {
    "hostile": ("person_a", "person_b"),
    "tense": ("person_b", "person_a"),
    "mild": ("person_a", "audio"),
    "intimate": ("person_b", "audio"),
}
ANSWER_LAGS = (1, 4)  # a template fires when its response follows its cue by 1..4 steps
GUARD = 5  # templates other than the clip's own: no response 0..GUARD steps after their cue
# Every clip holds these events (the cue and response stream of every template).
BASE_EVENTS: tuple[tuple[str, int], ...] = (
    ("person_a", CUE), ("person_b", CUE), ("person_a", RESP), ("person_b", RESP), ("audio", RESP))
# Scales of the signal and of the nuisances (all per feature dimension, except amplitude,
# which is the norm of an event pattern).
PROCESS: dict[str, float] = {
    "amplitude": 6.0, "amplitude_jitter": 0.25, "noise_std": 0.5, "offset_std": 0.1,
    "identity_std": 0.3, "scene_std": 0.1, "line_std": 0.1, "num_characters": 16,
    "text_absent_prob": 0.05, "text_ratio_mean": 0.6, "text_ratio_std": 0.12,
    "audio_gap_prob": 0.2, "background_gap_prob": 0.35, "event_budget": 0.4,
    "decoy_prob": 0.35, "unrelated_prob": 0.25, "single_events_per_step": 0.1,
    "filler_prob": 0.4,
}
DEFAULT_DIM = 32
_PLACEMENT_TRIES = 50

_S = {s: i for i, s in enumerate(ef.STREAMS)}
_LABEL = {s: i for i, s in enumerate(ef.FINE_LABELS)}
# (class id, cue stream id, response stream id)
_TPL = tuple((_LABEL[c], _S[x], _S[y]) for c, (x, y) in TEMPLATES.items())
# Ordered stream pairs that are not a template: in-order cue->response pairs there are noise.
_UNRELATED = tuple((a, b) for a in range(len(ef.STREAMS)) for b in range(len(ef.STREAMS))
                   if (a, b) not in {(x, y) for _, x, y in _TPL})


@dataclasses.dataclass(frozen=True)
class World:
    """What all clips of one corpus share: pattern directions and character identities."""

    dims: dict[str, int]
    patterns: dict[str, np.ndarray]  # stream -> [3, d] orthonormal rows (cue, response, filler)
    identities: dict[str, np.ndarray]  # person stream -> [num_characters, d]


@dataclasses.dataclass(frozen=True)
class ClipInfo:
    label_id: int
    iom_mode: str
    events: tuple[tuple[int, int, int], ...]  # (stream id, pattern id, step), all where present
    retries: int  # placements redrawn for this clip (masks kept)
    mask_redraws: int  # times the masks were redrawn after all placements failed


def make_world(seed: int, dims: dict[str, int]) -> World:
    rng = np.random.default_rng([seed, 0])
    patterns, identities = {}, {}
    for s in ef.STREAMS:
        q, _ = np.linalg.qr(rng.normal(size=(dims[s], len(PATTERNS))))
        patterns[s] = np.ascontiguousarray(q.T)
    for s in ("person_a", "person_b"):
        identities[s] = rng.normal(0.0, PROCESS["identity_std"],
                                   (int(PROCESS["num_characters"]), dims[s]))
    return World(dict(dims), patterns, identities)


def largest_remainder(total: int, weights: np.ndarray | list[float]) -> np.ndarray:
    """Integer counts summing to `total`, proportional to `weights` (Hamilton's method)."""
    w = np.asarray(weights, np.float64)
    quota = total * w / w.sum()
    counts = np.floor(quota).astype(np.int64)
    order = np.argsort(-(quota - counts), kind="stable")
    counts[order[: total - int(counts.sum())]] += 1
    return counts


def _composition(rng: np.random.Generator, total: int, parts: int) -> np.ndarray:
    """`parts` positive integers summing to `total` (uniform over compositions)."""
    cuts = np.sort(rng.choice(np.arange(1, total), size=parts - 1, replace=False))
    return np.diff(np.concatenate([[0], cuts, [total]]))


def _stretch(num_steps: int, start: int, stop: int) -> np.ndarray:
    m = np.zeros(num_steps, bool)
    m[start:stop] = True
    return m


def _person_masks(rng: np.random.Generator, num_steps: int) -> tuple[str, np.ndarray, np.ndarray]:
    t = num_steps
    mode = IOM_MODES[rng.choice(len(IOM_MODES), p=IOM_PRIORS)]
    if mode == "disjoint":  # shot / reverse shot: never on screen together (IoM = 0)
        shots = _composition(rng, t, int(min(t, 3 + rng.integers(0, 1 + t // 6))))
        owner = (np.arange(len(shots)) + rng.integers(0, 2)) % 2
        steps = np.repeat(owner, shots)
        a, b = steps == 0, steps == 1
    elif mode == "inclusion":  # one character's presence inside the other's (IoM = 1)
        length = int(rng.integers(max(3, int(np.ceil(0.6 * t))), t + 1))
        p0 = int(rng.integers(0, t - length + 1))
        q_len = int(rng.integers(max(2, length // 4), length + 1))
        q0 = p0 + int(rng.integers(0, length - q_len + 1))
        a, b = _stretch(t, p0, p0 + length), _stretch(t, q0, q0 + q_len)
        if rng.random() < 0.5:
            a, b = b, a
    else:  # partial overlap (0 < IoM < 1): f0 < s0 < f1 < s1
        f0, s0, f1, s1 = np.sort(rng.choice(t + 1, size=4, replace=False))
        f0 = 0 if rng.random() < 0.5 else f0
        s1 = t if rng.random() < 0.5 else s1
        a, b = _stretch(t, f0, f1), _stretch(t, s0, s1)
        if rng.random() < 0.5:
            a, b = b, a
    return mode, a, b


def _gaps(rng: np.random.Generator, num_steps: int, prob: float, max_frac: float) -> np.ndarray:
    """Present everywhere except, with probability `prob`, one or two absent stretches."""
    m = np.ones(num_steps, bool)
    if rng.random() < prob:
        for _ in range(int(rng.integers(1, 3))):
            length = int(rng.integers(1, max(2, int(max_frac * num_steps)) + 1))
            start = int(rng.integers(0, num_steps - length + 1))
            m[start:start + length] = False
    return m


def _text_mask(rng: np.random.Generator, num_steps: int) -> np.ndarray:
    """Dialogue lines: absent in ~5% of clips, else covering ~50-70% of the steps."""
    if rng.random() < PROCESS["text_absent_prob"]:
        return np.zeros(num_steps, bool)
    ratio = np.clip(rng.normal(PROCESS["text_ratio_mean"], PROCESS["text_ratio_std"]), 0.2, 0.95)
    on = int(np.clip(round(ratio * num_steps), 1, num_steps - 1))
    lines = int(min(on, num_steps - on + 1, 1 + rng.integers(0, 1 + num_steps // 8)))
    on_parts = _composition(rng, on, lines)
    # num_steps - on silent steps: lines - 1 inner gaps of >= 1 step, two outer gaps >= 0.
    off = _composition(rng, num_steps - on + 2, lines + 1) - np.r_[1, np.zeros(lines - 1, int), 1]
    m = np.zeros(num_steps, bool)
    t = int(off[0])
    for k in range(lines):
        m[t:t + on_parts[k]] = True
        t += int(on_parts[k] + off[k + 1])
    return m


def _can_follow(first: np.ndarray, second: np.ndarray) -> bool:
    """Whether some step where `first` is present is followed 1..4 steps later by `second`."""
    lo, hi = ANSWER_LAGS
    last = min(hi, len(first) - 1)
    return any(np.any(first[:-lag] & second[lag:]) for lag in range(lo, last + 1))


def _feasible(masks: np.ndarray) -> bool:
    """Class-blind check: every template can be placed both in order and reversed."""
    if masks[_S["person_a"]].sum() < 2 or masks[_S["person_b"]].sum() < 2:
        return False
    return all(_can_follow(masks[x], masks[y]) and _can_follow(masks[y], masks[x])
               for _, x, y in _TPL)


class _Placer:
    """Places events on free, present cells, keeping templates other than `label` unanswered."""

    def __init__(self, masks: np.ndarray, label: int):
        self.label, self.num_steps = label, masks.shape[1]
        self.blocked = np.repeat(~masks[:, None, :], len(PATTERNS), axis=1)  # [S, P, T]
        self.events: list[tuple[int, int, int]] = []

    def place(self, s: int, p: int, t: int) -> None:
        assert not self.blocked[s, p, t]
        self.events.append((s, p, t))
        self.blocked[s, :, t] = True
        for k, x, y in _TPL:
            guard = 0 if k == self.label else GUARD  # lag 0 is never allowed (no co-occurrence)
            if s == x and p == CUE:
                self.blocked[y, RESP, t:t + guard + 1] = True
            if s == y and p == RESP:
                self.blocked[x, CUE, max(0, t - guard):t + 1] = True

    def single(self, rng: np.random.Generator, s: int, p: int) -> bool:
        free = np.flatnonzero(~self.blocked[s, p])
        if free.size == 0:
            return False
        self.place(s, p, int(rng.choice(free)))
        return True

    def pair(self, rng: np.random.Generator, first: tuple[int, int],
             second: tuple[int, int]) -> bool:
        """`first` at t and `second` at t + lag, lag in ANSWER_LAGS."""
        lo, hi = ANSWER_LAGS
        f, g = ~self.blocked[first], ~self.blocked[second]
        cands = [(t, lag) for lag in range(lo, hi + 1)
                 for t in np.flatnonzero(f[:self.num_steps - lag] & g[lag:])]
        if not cands:
            return False
        t, lag = cands[int(rng.integers(len(cands)))]
        self.place(*first, int(t))
        self.place(*second, int(t + lag))
        return True


def _plan_events(rng: np.random.Generator, masks: np.ndarray
                 ) -> tuple[list[tuple[tuple[int, int], tuple[int, int]]], list[tuple[int, int]]]:
    """Class-blind: which events a clip holds besides BASE_EVENTS (its timing comes later).

    Decoy pairs (a template's response followed by its cue), in-order pairs on stream pairs
    that are no template, and single events. A stream takes events only up to a budget of
    about 40% of its present steps, so sparse streams do not make the placement fail.
    """
    num_steps = masks.shape[1]
    budget = np.maximum(2, (masks.sum(1) * PROCESS["event_budget"]).astype(int))
    used = np.zeros(len(ef.STREAMS), int)
    for s, _ in BASE_EVENTS:
        used[_S[s]] += 1
    pairs, singles = [], []
    trials = 1 + num_steps // 10
    for k in rng.integers(0, len(_TPL), size=rng.binomial(trials, PROCESS["decoy_prob"])):
        _, x, y = _TPL[k]
        pairs.append(((y, RESP), (x, CUE)))
    for j in rng.integers(0, len(_UNRELATED), size=rng.binomial(trials, PROCESS["unrelated_prob"])):
        a, b = _UNRELATED[j]
        pairs.append(((a, CUE), (b, RESP)))
    kept = []
    for (a, pa), (b, pb) in pairs:
        need = np.bincount([a, b], minlength=len(ef.STREAMS))
        if np.all(used + need <= budget) and _can_follow(masks[a], masks[b]):
            used += need
            kept.append(((a, pa), (b, pb)))
    n_single = rng.poisson(PROCESS["single_events_per_step"] * num_steps)
    kinds = np.where(rng.random(n_single) < PROCESS["filler_prob"], FILLER,
                     rng.integers(0, 2, size=n_single))
    for s, p in zip(rng.integers(0, len(ef.STREAMS), size=n_single), kinds, strict=True):
        if used[s] < budget[s] and masks[s].any():
            used[s] += 1
            singles.append((int(s), int(p)))
    return kept, singles


def _place_events(rng: np.random.Generator, masks: np.ndarray, label: int,
                  pairs: list, singles: list) -> list | None:
    placer = _Placer(masks, label)
    base = [(_S[s], p) for s, p in BASE_EVENTS]
    for k, x, y in _TPL:
        if k == label:  # the clip's one answered template, built from the base events
            if not placer.pair(rng, (x, CUE), (y, RESP)):
                return None
            base.remove((x, CUE))
            base.remove((y, RESP))
    for first, second in pairs:
        if not placer.pair(rng, first, second):
            return None
    for s, p in base + singles:
        if not placer.single(rng, s, p):
            return None
    return placer.events


def generate_clip(world: World, label_id: int,
                  rng: np.random.Generator, min_steps: int = 5,
                  max_steps: int = 35) -> tuple[ef.ClipFeatures, ClipInfo]:
    """One clip of class `label_id`; everything except event timing is drawn class-blind."""
    retries = redraws = 0
    while True:
        t = min_steps + int(round((max_steps - min_steps) * rng.beta(2.0, 1.1)))
        mode, a, b = _person_masks(rng, t)
        masks = np.stack([a, b, _gaps(rng, t, PROCESS["background_gap_prob"], 0.25),
                          _gaps(rng, t, PROCESS["audio_gap_prob"], 0.15), _text_mask(rng, t)])
        if not _feasible(masks):
            continue  # class-blind rejection: the mask distribution stays class-independent
        pairs, singles = _plan_events(rng, masks)
        for _ in range(_PLACEMENT_TRIES):
            events = _place_events(rng, masks, label_id, pairs, singles)
            if events is not None:
                break
            retries += 1
        else:
            # Rare (reported in the corpus summary): redrawing the masks after a class-specific
            # failure makes the mask distribution very slightly class-dependent.
            redraws += 1
            continue
        break
    features = {}
    cast = dict(zip(("person_a", "person_b"), rng.choice(int(PROCESS["num_characters"]), 2,
                                                         replace=False), strict=True))
    for si, s in enumerate(ef.STREAMS):
        d = world.dims[s]
        x = rng.normal(0.0, PROCESS["noise_std"], (t, d))
        x += rng.normal(0.0, PROCESS["offset_std"], d)  # per-clip offset of the stream
        if s in world.identities:  # the character's identity, the same in every step
            x += world.identities[s][cast[s]]
        elif s == "background":  # one scene vector per shot
            shots = _composition(rng, t, int(min(t, 1 + rng.poisson(t / 8))))
            x += np.repeat(rng.normal(0.0, PROCESS["scene_std"], (len(shots), d)), shots, axis=0)
        elif s == "text":  # one sentence vector per dialogue line
            line = np.cumsum(np.diff(np.r_[0, masks[si].astype(int)]) == 1)
            x += rng.normal(0.0, PROCESS["line_std"], (int(line.max()) + 1, d))[line]
        features[s] = x
    amp = PROCESS["amplitude"] * (1 + PROCESS["amplitude_jitter"] * rng.uniform(-1, 1, len(events)))
    for (si, p, step), g in zip(events, amp, strict=True):
        features[ef.STREAMS[si]][step] += g * world.patterns[ef.STREAMS[si]][p]
    out = ef.ClipFeatures(
        {s: np.where(masks[i][:, None], features[s], 0.0).astype(np.float32)
         for i, s in enumerate(ef.STREAMS)},
        {s: masks[i].copy() for i, s in enumerate(ef.STREAMS)})
    return out, ClipInfo(label_id, mode, tuple(sorted(events, key=lambda e: (e[2], e[0], e[1]))),
                         retries, redraws)


def answered_templates(events) -> set[int]:
    """Class ids whose template fires (a response 1..4 steps after a cue) in `events`."""
    lo, hi = ANSWER_LAGS
    fired = set()
    for k, x, y in _TPL:
        cues = [t for s, p, t in events if s == x and p == CUE]
        resps = [t for s, p, t in events if s == y and p == RESP]
        if any(lo <= r - c <= hi for c in cues for r in resps):
            fired.add(k)
    return fired


def resolve_dims(dims: dict[str, int] | None) -> dict[str, int]:
    """Feature size per stream: DEFAULT_DIM, overridden by `dims` (validated)."""
    out = {s: DEFAULT_DIM for s in ef.STREAMS}
    unknown = set(dims or {}) - set(ef.STREAMS)
    if unknown:
        raise ValueError(f"dims: unknown streams {sorted(unknown)} (streams: {ef.STREAMS})")
    out.update({s: int(v) for s, v in (dims or {}).items()})
    if any(v < len(PATTERNS) + 1 for v in out.values()):
        raise ValueError(f"dims: every stream needs at least {len(PATTERNS) + 1} features: {out}")
    return out


def _readme(params: dict) -> str:
    return (
        "THIS IS A SYNTHETIC CORPUS. IT IS NOT ERATO AND CONTAINS NO VIDEO DATA.\n\n"
        "It was written by jaxaffect.families.perr.synthetic.generate_corpus in the ERATO\n"
        "manual_dir layout (annotations.csv, features/<clip_id>.npz) so that `jaxaffect demo`\n"
        "can run the whole pipeline without the real data set. Labels follow ERATO's class\n"
        "priors, but a clip's class is defined by a synthetic rule: a 'cue' pattern in one\n"
        "stream answered 1-4 steps later by a 'response' pattern in another stream\n"
        + "".join(f"  {c:9s} {x} -> {y}\n" for c, (x, y) in TEMPLATES.items())
        + "  neutral   none of the above (distractors only)\n"
        "Numbers obtained on it say nothing about real emotional relationships.\n"
        "Generative process: docs/synthetic_erato.md in the jaxaffect repository.\n"
        f"Parameters: {json.dumps(params, sort_keys=True)}\n")


def generate_corpus(out_dir: str, *, num_clips: int = 2000, seed: int = 0,
                    dims: dict[str, int] | None = None, test_fraction: float = 0.2,
                    min_steps: int = 5, max_steps: int = 35, progress: bool = False) -> dict:
    """Writes the synthetic corpus into `out_dir` and returns its summary (also in the JSON).

    If `out_dir` already holds a corpus written with identical parameters it is kept as is and
    its summary returned; any other non-empty `out_dir` is refused.
    """
    dims = resolve_dims(dims)
    if num_clips < 1 or not 0.0 < test_fraction < 1.0:
        raise ValueError(f"need num_clips >= 1 and 0 < test_fraction < 1, got {num_clips}, "
                         f"{test_fraction}")
    if not 5 <= min_steps <= max_steps:
        raise ValueError(f"need 5 <= min_steps <= max_steps, got {min_steps}, {max_steps}")
    params = {"generator": __name__, "version": GENERATOR_VERSION, "num_clips": num_clips,
              "seed": seed, "dims": dims, "test_fraction": test_fraction,
              "min_steps": min_steps, "max_steps": max_steps, "process": PROCESS,
              "templates": {c: list(v) for c, v in TEMPLATES.items()},
              "answer_lags": list(ANSWER_LAGS), "guard": GUARD}
    params = json.loads(json.dumps(params))  # the form it takes when read back
    out = Path(out_dir)
    previous, tmp = stage_corpus(out, params, lambda o: json.loads((o / CORPUS_FILE).read_text()),
                                 what="synthetic corpus")
    if previous is not None:
        return previous

    world = make_world(seed, dims)
    counts = largest_remainder(num_clips, [CLASS_PRIORS[c] for c in ef.FINE_LABELS])
    rng = np.random.default_rng([seed, 1])
    labels = rng.permutation(np.repeat(np.arange(len(ef.FINE_LABELS)), counts))
    # 20% of each class to test (ERATO Sec. 3.3); largest remainder keeps the total exact.
    test_counts = largest_remainder(int(round(test_fraction * num_clips)), counts)
    is_test = np.zeros(num_clips, bool)
    for k, n in enumerate(test_counts):
        is_test[rng.choice(np.flatnonzero(labels == k), size=int(n), replace=False)] = True
    width = max(6, len(str(num_clips - 1)))
    rows, infos, steps = [], [], []
    indices = range(num_clips)
    if progress:
        from tqdm import tqdm
        indices = tqdm(indices, desc="synthetic ERATO clips", unit="clip")
    for i in indices:
        clip_id = f"{CLIP_PREFIX}{i:0{width}d}"
        clip, info = generate_clip(world, int(labels[i]), np.random.default_rng([seed, 2, i]),
                                   min_steps, max_steps)
        ef.write_clip(ef.feature_path(tmp, clip_id), clip)
        rows.append(ef.Annotation(clip_id, ef.FINE_LABELS[labels[i]],
                                  "test" if is_test[i] else "train"))
        infos.append((info, clip.masks))
        steps.append(clip.num_steps)
    ef.write_annotations(tmp, rows)
    summary = {"parameters": params, **_statistics(rows, infos, np.asarray(steps))}
    (tmp / CORPUS_FILE).write_text(json.dumps(summary, indent=1, sort_keys=True) + "\n")
    (tmp / README_FILE).write_text(_readme({k: v for k, v in params.items() if k != "process"}))
    publish_corpus(tmp, out)
    return summary


def _statistics(rows, infos, steps: np.ndarray) -> dict:
    """Per-split class counts plus the checks that document the design (see the docs)."""
    split_counts = {sp: {c: sum(r.split == sp and r.label == c for r in rows)
                         for c in ef.FINE_LABELS} for sp in ef.SPLITS}
    # Mean number of events per clip for each (stream, pattern), by class: equal up to noise.
    events_by_class = {}
    for k, c in enumerate(ef.FINE_LABELS):
        mine = [info for info, _ in infos if info.label_id == k]
        table = np.zeros((len(ef.STREAMS), len(PATTERNS)))
        for info in mine:
            for s, p, _ in info.events:
                table[s, p] += 1
        events_by_class[c] = {s: dict(zip(PATTERNS, np.round(table[i] / max(1, len(mine)), 3)
                                          .tolist(), strict=True))
                              for i, s in enumerate(ef.STREAMS)}
    coverage = {s: round(float(np.mean([m[s].mean() for _, m in infos])), 4) for s in ef.STREAMS}
    return {
        "class_counts": split_counts,
        "num_clips": len(rows),
        "steps": {"min": int(steps.min()), "max": int(steps.max()),
                  "mean": round(float(steps.mean()), 3)},
        "iom_modes": {m: round(float(np.mean([i.iom_mode == m for i, _ in infos])), 4)
                      for m in IOM_MODES},
        "text_absent_fraction": round(float(np.mean([not m["text"].any() for _, m in infos])), 4),
        "mean_coverage": coverage,
        "mean_events_per_clip": events_by_class,
        "placement_retries": int(sum(i.retries for i, _ in infos)),
        "mask_redraws_after_failed_placement": int(sum(i.mask_redraws for i, _ in infos)),
    }


def synthesize(out: str, *, size: int | None, seed: int) -> dict:
    """`jaxaffect synthesize erato`: `size` clips (default 2000)."""
    return generate_corpus(out, num_clips=size or 2000, seed=seed, progress=True)
