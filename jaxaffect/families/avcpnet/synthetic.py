"""A deterministic synthetic corpus in the eMotions release layout (`jaxaffect synthesize
emotions`). It is NOT eMotions: 64x64 clips of 2-4 s at 15 fps with 16 kHz mono audio, real
encoded mp4 files, whose emotion shows in the video (the hue and motion of a disc) and in the
audio (the pitch and amplitude modulation of a tone); `synthetic_clips` draws them.

Every clip is one of three kinds: "both" modalities carry its class's cue, "video_only" (the
audio shows another class's cue or a class-agnostic sound) or "audio_only" (the video shows
another class's pattern or a class-agnostic one), so a model fusing both streams can beat
either branch alone. A few video_only clips have no audio stream at all; emotions.csv records
that nowhere (the builder finds out). docs/synthetic_emotions.md documents the design.

Files: emotions.csv + videos/<id>.mp4 (the layout the `emotions` builder reads), truth.csv
(id, category, kind, the class each modality shows, has_audio; for analysis, never read by
the builder), SYNTHETIC_CORPUS.json (summary and parameters) and README.txt.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import numpy as np

from jaxaffect.data.build import publish_corpus, stage_corpus
from jaxaffect.families.avcpnet import synthetic_clips as sc
from jaxaffect.families.avcpnet.emotions import EMOTIONS6
from jaxaffect.features import media

GENERATOR_VERSION = 1
DEFAULT_SIZE = 240  # clips
MIN_SIZE = 12  # every class gets at least one clip
CSV_FILE = "emotions.csv"
CSV_COLUMNS = ("id", "category", "platform", "split", "balanced_split")
TRUTH_FILE = "truth.csv"
TRUTH_COLUMNS = ("id", "category", "kind", "video_cue", "audio_cue", "has_audio")
CORPUS_FILE = "SYNTHETIC_CORPUS.json"
README_FILE = "README.txt"
VIDEO_DIR = "videos"
SPLITS = ("train", "validation", "test")
KINDS = ("both", "video_only", "audio_only")
AGNOSTIC, ABSENT = "agnostic", "none"  # truth.csv cue names besides the classes

# Our choice: mildly imbalanced, ordered as in eMotions (excitation and neutral most common,
# the negative emotions least; the release's ratio is about 12:1, ours about 2:1 so that a
# small corpus still has every class in every split).
CLASS_PRIOR: dict[str, float] = {"excitation": 0.26, "fear": 0.12, "neutral": 0.22,
                                 "relaxation": 0.14, "sadness": 0.13, "tension": 0.13}
# Platform shares of the labelled eMotions videos (paper, Table 4).
PLATFORM_PRIOR: dict[str, float] = {"douyin": 0.4427, "kuaishou": 0.2952, "tiktok": 0.2621}
PROCESS: dict[str, Any] = {
    "kind_shares": {"both": 0.4, "video_only": 0.3, "audio_only": 0.3},
    # a clip's non-carrying modality shows another class's cue with this probability, else
    # the class-agnostic pattern
    "decoy_other_class_prob": 0.5,
    "no_audio_fraction": 0.05,  # of all clips, taken from the video_only ones
    "split_cycle": ["train", "validation", "train", "test", "train"],  # 60/20/20
}


def largest_remainder(total: int, weights: list[float] | np.ndarray) -> np.ndarray:
    """Integer counts summing to `total`, proportional to `weights` (largest remainders)."""
    w = np.asarray(weights, np.float64)
    exact = total * w / w.sum()
    counts = np.floor(exact).astype(int)
    order = np.argsort(-(exact - counts), kind="stable")
    counts[order[:total - counts.sum()]] += 1
    return counts


def clip_id(i: int, size: int) -> str:
    return f"syn{i:0{max(5, len(str(size - 1)))}d}"


def plan_corpus(size: int, seed: int) -> dict[str, Any]:
    """Labels, splits, balanced subset, platforms and per-clip `ClipPlan`s (no rendering).

    Labels: exact class counts (largest remainder over CLASS_PRIOR), shuffled. Splits: the
    clips sorted by class (random order inside a class) are dealt the 5-cycle
    train/validation/train/test/train from a random start, so every class is split 60/20/20
    up to one clip. Kinds: exact 40/30/30 counts inside each split. Balanced subset: in each
    split, the size of its smallest class drawn at random from every class."""
    rng = np.random.default_rng([seed, 1])
    k = len(EMOTIONS6)
    counts = largest_remainder(size, [CLASS_PRIOR[c] for c in EMOTIONS6])
    labels = rng.permutation(np.repeat(np.arange(k), counts))
    order = np.lexsort((rng.random(size), labels))
    cycle, start = PROCESS["split_cycle"], int(rng.integers(len(PROCESS["split_cycle"])))
    split = np.empty(size, object)
    split[order] = [cycle[(j + start) % len(cycle)] for j in range(size)]
    kind = np.empty(size, object)
    shares = [PROCESS["kind_shares"][x] for x in KINDS]
    for s in SPLITS:
        idx = np.flatnonzero(split == s)
        kind[rng.permutation(idx)] = np.repeat(KINDS, largest_remainder(len(idx), shares))
    has_audio = np.ones(size, bool)
    video_only = np.flatnonzero(kind == "video_only")
    silent = min(len(video_only), int(round(PROCESS["no_audio_fraction"] * size)))
    has_audio[rng.choice(video_only, silent, replace=False)] = False
    plans = []
    for i in range(size):
        y = int(labels[i])
        decoy = None
        if kind[i] != "both" and rng.random() < PROCESS["decoy_other_class_prob"]:
            decoy = int(rng.choice([c for c in range(k) if c != y]))
        video = y if kind[i] in ("both", "video_only") else decoy
        audio = y if kind[i] in ("both", "audio_only") else decoy
        plans.append(sc.ClipPlan(y, str(kind[i]), video, audio if has_audio[i] else None,
                                 bool(has_audio[i])))
    platform = rng.choice(list(PLATFORM_PRIOR), size, p=list(PLATFORM_PRIOR.values()))
    balanced = np.full(size, "", object)
    for s in SPLITS:
        per_class = [np.flatnonzero((split == s) & (labels == c)) for c in range(k)]
        m = min(len(x) for x in per_class)
        for x in per_class:
            balanced[rng.choice(x, m, replace=False)] = s
    return {"labels": labels, "split": split.astype(str), "balanced": balanced.astype(str),
            "platform": platform.astype(str), "plans": plans}


def _cue_name(cue: int | None, present: bool = True) -> str:
    return ABSENT if not present else AGNOSTIC if cue is None else EMOTIONS6[cue]


def _csv_text(columns: tuple[str, ...], rows: list[tuple]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows(rows)
    return buffer.getvalue()


def oracle_predictions(plans: list[sc.ClipPlan]) -> dict[str, np.ndarray]:
    """What a reader of the cues that knows the process predicts, per branch: the class a
    modality shows, else the most common class; fused: the class both or the only informative
    one show, and for two different classes the one with the larger prior (video on a tie).
    Their accuracies are the ceilings of docs/synthetic_emotions.md."""
    prior = np.asarray([CLASS_PRIOR[c] for c in EMOTIONS6])
    majority = int(np.argmax(prior))
    video = np.asarray([p.video_cue if p.video_cue is not None else majority for p in plans])
    audio = np.asarray([p.audio_cue if p.audio_cue is not None else majority for p in plans])
    fused = []
    for p in plans:
        shown = [c for c in (p.video_cue, p.audio_cue) if c is not None]
        fused.append(majority if not shown else max(shown, key=lambda c: prior[c]))
    return {"majority": np.full(len(plans), majority), "video": video, "audio": audio,
            "fused": np.asarray(fused)}


def _statistics(plan: dict[str, Any], frames: list[int]) -> dict[str, Any]:
    labels, split, plans = plan["labels"], plan["split"], plan["plans"]
    kind = np.asarray([p.kind for p in plans])
    oracle = oracle_predictions(plans)

    def by_class(mask: np.ndarray) -> dict[str, int]:
        return dict(zip(EMOTIONS6, np.bincount(labels[mask], minlength=6).tolist()))

    every = np.ones(len(labels), bool)
    decoys = {m: {"other_class": 0, AGNOSTIC: 0} for m in ("video", "audio")}
    for p in plans:
        for m, cue in (("video", p.video_cue), ("audio", p.audio_cue)):
            if cue != p.label and (m == "video" or p.has_audio):
                decoys[m]["other_class" if cue is not None else AGNOSTIC] += 1
    return {
        "num_clips": len(labels),
        "class_counts": {"all": by_class(every), **{s: by_class(split == s) for s in SPLITS}},
        "balanced_counts": {s: by_class(plan["balanced"] == s) for s in SPLITS},
        "kind_counts": {s: {k: int(np.sum((kind == k) & sel)) for k in KINDS}
                        for s, sel in (("all", every), *((s, split == s) for s in SPLITS))},
        "platform_counts": {p: int(np.sum(plan["platform"] == p)) for p in PLATFORM_PRIOR},
        "no_audio_stream": int(sum(not p.has_audio for p in plans)),
        "decoys": decoys,
        "frames": {"min": int(min(frames)), "max": int(max(frames)),
                   "mean": round(float(np.mean(frames)), 3)},
        "oracle_accuracy": {s: {k: round(float(np.mean(v[sel] == labels[sel])), 4)
                                for k, v in oracle.items()}
                            for s, sel in (("all", every), ("test", split == "test"))},
    }


def _readme(params: dict[str, Any]) -> str:
    return ("Synthetic corpus in the eMotions release layout (NOT eMotions), written by "
            "jaxaffect.families.avcpnet.synthetic.synthesize; see docs/synthetic_emotions.md "
            "in the jaxaffect repository.\n"
            f"{CSV_FILE} + {VIDEO_DIR}/: what the emotions builder reads. {TRUTH_FILE}: each "
            "clip's kind and the class each modality shows (analysis only). "
            f"{CORPUS_FILE}: summary and parameters.\nNumbers obtained on it say nothing "
            "about real emotions.\n" + json.dumps(params, sort_keys=True) + "\n")


def synthesize(out: str, *, size: int | None = None, seed: int = 0, progress: bool = False
               ) -> dict[str, Any]:
    """Writes a synthetic eMotions release of `size` clips (default 240) into `out`.

    Same arguments -> byte-identical CSV and JSON files (the mp4 bytes too on one machine,
    see the docs). If `out` already holds a corpus written with identical parameters its
    summary is returned without writing; any other non-empty `out` is refused
    (FileExistsError). Files go to a staging folder beside `out`, moved into place when
    complete. `progress` shows a bar with rate and ETA on stderr. Returns the summary (also
    in SYNTHETIC_CORPUS.json) plus "root".
    """
    num = DEFAULT_SIZE if size is None else int(size)
    if num < MIN_SIZE:
        raise ValueError(f"size must be >= {MIN_SIZE} clips, got {size}")
    params = {"generator": __name__, "version": GENERATOR_VERSION, "seed": int(seed),
              "num_clips": num, "class_prior": CLASS_PRIOR, "platform_prior": PLATFORM_PRIOR,
              "process": PROCESS, "render": sc.RENDER, "video_cues": sc.VIDEO_CUES,
              "audio_cues": sc.AUDIO_CUES}
    params = json.loads(json.dumps(params))  # the form it takes when read back
    previous, tmp = stage_corpus(out, params, read_summary, what="synthetic eMotions corpus")
    if previous is not None:
        return {**previous, "root": str(out)}
    plan = plan_corpus(num, int(seed))
    (tmp / VIDEO_DIR).mkdir()
    ids = [clip_id(i, num) for i in range(num)]
    indices: Any = range(num)
    if progress:
        from tqdm import tqdm
        indices = tqdm(indices, desc="synthetic eMotions clips", unit="clip")
    frames_per_clip = []
    for i in indices:
        frames, audio = sc.render_clip(np.random.default_rng([int(seed), 2, i]),
                                       plan["plans"][i])
        media.write_video_file(tmp / VIDEO_DIR / f"{ids[i]}.mp4", frames,
                               float(sc.RENDER["fps"]), audio,
                               sample_rate=int(sc.RENDER["sample_rate"]))
        frames_per_clip.append(len(frames))
    rows = [(ids[i], EMOTIONS6[plan["labels"][i]], plan["platform"][i], plan["split"][i],
             plan["balanced"][i]) for i in range(num)]
    (tmp / CSV_FILE).write_text(_csv_text(CSV_COLUMNS, rows), encoding="utf-8")
    truth = [(ids[i], EMOTIONS6[p.label], p.kind, _cue_name(p.video_cue),
              _cue_name(p.audio_cue, p.has_audio), int(p.has_audio))
             for i, p in enumerate(plan["plans"])]
    (tmp / TRUTH_FILE).write_text(_csv_text(TRUTH_COLUMNS, truth), encoding="utf-8")
    summary = {"parameters": params, "generator_version": GENERATOR_VERSION,
               **_statistics(plan, frames_per_clip)}
    (tmp / CORPUS_FILE).write_text(json.dumps(summary, indent=1, sort_keys=True) + "\n")
    (tmp / README_FILE).write_text(_readme({"seed": int(seed), "num_clips": num,
                                            "version": GENERATOR_VERSION}))
    publish_corpus(tmp, out)
    return {**summary, "root": str(out)}


def read_summary(root: str | Path) -> dict[str, Any]:
    return json.loads((Path(root) / CORPUS_FILE).read_text())


def read_truth(root: str | Path) -> list[dict[str, str]]:
    """Rows of truth.csv as dicts (id, category, kind, video_cue, audio_cue, has_audio)."""
    with open(Path(root) / TRUTH_FILE, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def synthesize_with_progress(out: str, *, size: int | None = None, seed: int = 0) -> dict:
    """`jaxaffect synthesize emotions`: `synthesize` with the progress bar on."""
    return synthesize(out, size=size, seed=seed, progress=True)
