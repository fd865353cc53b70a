"""A deterministic synthetic TAM corpus: time-sync-comment videos plus labelled videos.

It is NOT Bilibili and NOT VideoEmotion-8. Both parts share hidden per-segment emotional
states (the eight VE-8 emotions, piecewise constant in time) and one feature generator:

* `root/tsc/` (the `bilibili_tsc` manual_dir): per-video features, Bilibili danmaku XML whose
  comments draw their emotional words from the state at their time, and `lexicon.tsv`;
* `root/labelled/` (the `video_emotion8` manual_dir): features only, labelled with the
  dominant state of the video;
* `root/hidden_states.json` (outside both manual_dirs): the states and the comment records,
  for tests and probes.

`write_tsc_corpus` writes the comment videos alone, `root` being the `bilibili_tsc` manual_dir
(`jaxaffect synthesize tsc --num_videos N`): a corpus for builds at scale.

docs/synthetic_tam.md documents the generative story, the knobs and the probes.
The generative process (states, features, comments) is in `synthetic_process`.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from jaxaffect.data.build import publish_corpus, stage_corpus
from jaxaffect.data.release_files import write_npz
from jaxaffect.families.tam.synthetic_process import (
    CLASS_NAMES,
    KINDS,
    PROCESS,
    World,
    danmaku_xml,
    dominant_state,
    lexicon_tsv,
    make_comments,
    make_world,
    render_features,
    sample_states,
    segment_states,
)
from jaxaffect.families.tam.video_features import STREAMS

GENERATOR_VERSION = 1
DEFAULT_DIMS: dict[str, int] = {"image": 48, "motion": 40, "audio": 32}
TSC_DIR, LABELLED_DIR = "tsc", "labelled"
HIDDEN_FILE, README_FILE = "hidden_states.json", "README.txt"


def _resolve_dims(dims: dict[str, int] | None) -> dict[str, int]:
    unknown = set(dims or {}) - set(STREAMS)
    if unknown:
        raise ValueError(f"dims: unknown streams {sorted(unknown)} (streams: {STREAMS})")
    out = {**DEFAULT_DIMS, **{s: int(v) for s, v in (dims or {}).items()}}
    if any(v < 1 for v in out.values()):
        raise ValueError(f"dims must be positive: {out}")
    return out


def _num_segments(rng: np.random.Generator, seconds: tuple[float, float], seg: float) -> int:
    return max(2, int(round(rng.uniform(*seconds) / seg)))


def _write_tsc(base: Path, world: World, seed: int, n: int, seconds, seg: float,
               min_piece: int) -> dict:
    """The bilibili_tsc manual_dir of `n` comment videos in `base`; returns their hidden
    states and comment records."""
    (base / "danmaku").mkdir(parents=True)
    (base / "lexicon.tsv").write_text(lexicon_tsv(), encoding="utf-8")
    hidden = {}
    for i in range(n):
        vid = f"tsc_{i:06d}"
        rng = np.random.default_rng([seed, 2, i])
        segments = _num_segments(rng, seconds, seg)
        spans = sample_states(rng, segments, int(rng.integers(len(CLASS_NAMES))), min_piece)
        feats = render_features(world, spans, rng)
        comments = make_comments(rng, segment_states(spans), seg)
        (base / "danmaku" / f"{vid}.xml").write_bytes(danmaku_xml(comments, 100000 + i, rng))
        write_npz(base / "features" / f"{vid}.npz",
                  {**feats, "segment_seconds": np.float32(seg)})
        hidden[vid] = {"num_segments": segments, "states": [list(x) for x in spans],
                       "comments": [[c["row_id"], c["time"], c["kind"], c["emotions"]]
                                    for c in comments]}
    return hidden


def _labelled_id(labels: np.ndarray, j: int) -> str:
    return f"{CLASS_NAMES[labels[j]]}/synth_{j:06d}"


def _write_labelled(tmp: Path, world: World, seed: int, n: int, seconds, seg: float,
                    min_piece: int, test_fraction: float) -> dict:
    base = tmp / LABELLED_DIR
    base.mkdir(parents=True)
    rng = np.random.default_rng([seed, 1])
    k = len(CLASS_NAMES)
    labels = rng.permutation(np.arange(n) % k)  # balanced classes, shuffled over the ids
    hidden, lists = {}, {"train": [], "test": []}
    for j in range(n):
        vid = _labelled_id(labels, j)
        vrng = np.random.default_rng([seed, 3, j])
        segments = _num_segments(vrng, seconds, seg)
        spans = sample_states(vrng, segments, int(labels[j]), min_piece)
        assert dominant_state(segment_states(spans)) == labels[j]
        write_npz(base / "features" / f"{vid}.npz", render_features(world, spans, vrng))
        hidden[vid] = {"label": int(labels[j]), "num_segments": segments,
                       "states": [list(x) for x in spans]}
    for c in range(k):  # per class: round(test_fraction * n_c) random videos to test
        ids = np.flatnonzero(labels == c)
        test = set(rng.choice(ids, int(round(test_fraction * len(ids))), replace=False).tolist())
        for j in ids.tolist():
            lists["test" if j in test else "train"].append(j)
    (base / "classInd.txt").write_text("".join(f"{i + 1} {c}\n" for i, c in enumerate(CLASS_NAMES)))
    # As VE-8: the train list has the 1-based label column, the test list only the id.
    (base / "trainlist01.txt").write_text("".join(
        f"{_labelled_id(labels, j)} {labels[j] + 1}\n" for j in sorted(lists["train"])))
    (base / "testlist01.txt").write_text("".join(
        f"{_labelled_id(labels, j)}\n" for j in sorted(lists["test"])))
    for split, js in lists.items():
        for j in js:
            hidden[_labelled_id(labels, j)]["split"] = split
    return hidden


def _readme(params: dict) -> str:
    return (
        "THIS IS A SYNTHETIC CORPUS. IT IS NOT BILIBILI OR VIDEOEMOTION-8 AND HOLDS NO VIDEO.\n\n"
        "Written by jaxaffect.families.tam.synthetic.write_tam_corpus:\n"
        f"  {TSC_DIR}/       manual_dir of the bilibili_tsc builder (config `custom`):\n"
        "                danmaku/*.xml, features/*.npz, lexicon.tsv\n"
        f"  {LABELLED_DIR}/  manual_dir of the video_emotion8 builder: classInd.txt,\n"
        "                trainlist01.txt, testlist01.txt, features/<Class>/<id>.npz\n"
        f"  {HIDDEN_FILE}  the hidden per-segment emotional states and comment records\n"
        "Both parts share hidden emotional states and one feature generator; a labelled video's\n"
        "class is its dominant state. Numbers obtained on it say nothing about real videos.\n"
        "Generative process: docs/synthetic_tam.md in the jaxaffect repository.\n"
        f"Parameters: {json.dumps(params, sort_keys=True)}\n")


def _tsc_statistics(tsc: dict) -> dict:
    kinds = {k: 0 for k in KINDS}
    for v in tsc.values():
        for _, _, kind, _ in v["comments"]:
            kinds[kind] += 1
    segs = [v["num_segments"] for v in tsc.values()]
    return {"num_videos": len(tsc), "num_comments": int(sum(kinds.values())),
            "comment_kinds": kinds,
            "num_segments": {"min": min(segs, default=0), "max": max(segs, default=0),
                             "total": int(sum(segs))}}


def _statistics(tsc: dict, labelled: dict) -> dict:
    lsegs = [v["num_segments"] for v in labelled.values()]
    per_class = {sp: {c: sum(v["split"] == sp and v["label"] == i for v in labelled.values())
                      for i, c in enumerate(CLASS_NAMES)} for sp in ("train", "test")}
    return {
        "tsc": _tsc_statistics(tsc),
        "labelled": {"num_videos": len(labelled), "class_counts": per_class,
                     "num_segments": {"min": min(lsegs, default=0), "max": max(lsegs, default=0),
                                      "total": int(sum(lsegs))}},
    }


def _check_seconds(name: str, seconds: tuple[float, float]) -> None:
    lo, hi = seconds
    if not 2 * PROCESS["min_piece_seconds"] <= lo <= hi:
        raise ValueError(f"{name}: need {2 * PROCESS['min_piece_seconds']} <= min <= max "
                         f"seconds (two states of at least min_piece_seconds), got {lo}, {hi}")


def write_tam_corpus(root: str, *, num_tsc_videos: int = 300, num_labelled: int = 400,
                     seed: int = 0, dims: dict[str, int] | None = None,
                     tsc_seconds: tuple[float, float] = (60.0, 300.0),
                     labelled_seconds: tuple[float, float] = (40.0, 180.0)) -> dict:
    """Writes `root/tsc/`, `root/labelled/`, `root/hidden_states.json` and `root/README.txt`.

    Returns the summary: parameters, counts, dims, paths (also stored in hidden_states.json).
    The same arguments give byte-identical files. If `root` already holds a corpus written with
    identical parameters its summary is returned without writing; any other non-empty `root` is
    refused. Defaults take a few seconds; `num_tsc_videos=40, num_labelled=80` is a quick demo.
    """
    dims = _resolve_dims(dims)
    seg = float(PROCESS["segment_seconds"])
    min_piece = int(round(PROCESS["min_piece_seconds"] / seg))
    if num_tsc_videos < 1 or num_labelled < 2 * len(CLASS_NAMES):
        raise ValueError(f"need num_tsc_videos >= 1 and num_labelled >= {2 * len(CLASS_NAMES)}, "
                         f"got {num_tsc_videos}, {num_labelled}")
    _check_seconds("tsc_seconds", tsc_seconds)
    _check_seconds("labelled_seconds", labelled_seconds)
    params = {"generator": __name__, "version": GENERATOR_VERSION, "seed": seed, "dims": dims,
              "num_tsc_videos": num_tsc_videos, "num_labelled": num_labelled,
              "tsc_seconds": list(tsc_seconds), "labelled_seconds": list(labelled_seconds),
              "process": PROCESS}
    params = json.loads(json.dumps(params))  # the form it takes when read back
    out = Path(root)
    previous, tmp = stage_corpus(
        out, params, lambda o: json.loads((o / HIDDEN_FILE).read_text())["summary"],
        what="synthetic TAM corpus")
    if previous is not None:
        return _with_root(previous, out)

    world = make_world(seed, dims)
    tsc = _write_tsc(tmp / TSC_DIR, world, seed, num_tsc_videos, tsc_seconds, seg, min_piece)
    labelled = _write_labelled(tmp, world, seed, num_labelled, labelled_seconds, seg, min_piece,
                               float(PROCESS["labelled_test_fraction"]))
    summary = {"parameters": params, "class_names": list(CLASS_NAMES), "streams": list(STREAMS),
               "dims": dims, "segment_seconds": seg,
               "paths": {"tsc": TSC_DIR, "labelled": LABELLED_DIR, "hidden_states": HIDDEN_FILE},
               **_statistics(tsc, labelled)}
    hidden = {"summary": summary,
              "world_groups": {s: world.groups[s].tolist() for s in STREAMS},
              "comment_fields": ["row_id", "time", "kind", "emotions"],
              "tsc": tsc, "labelled": labelled}
    (tmp / HIDDEN_FILE).write_text(json.dumps(hidden, sort_keys=True, separators=(",", ":"))
                                   + "\n")
    (tmp / README_FILE).write_text(_readme({k: v for k, v in params.items() if k != "process"}))
    publish_corpus(tmp, out)
    return _with_root(summary, out)


def write_tsc_corpus(root: str, *, num_videos: int = 1000, seed: int = 0,
                     dims: dict[str, int] | None = None,
                     seconds: tuple[float, float] = (60.0, 300.0)) -> dict:
    """Writes `root` as a bilibili_tsc manual_dir (config `custom`) of `num_videos` comment
    videos: danmaku/*.xml (Bilibili's XML), features/*.npz, lexicon.tsv; plus README.txt and
    hidden_states.json (states and comment records; the builder reads neither).

    The videos are byte for byte the `tsc/` part of `write_tam_corpus` with the same seed,
    dims and `tsc_seconds=seconds` (`num_tsc_videos=num_videos`), without the labelled part:
    a corpus for builds at scale (10,000 videos take a couple of minutes on one core). Same
    arguments, same bytes; an existing corpus with the same parameters is reused, any other
    non-empty `root` refused. Returns the summary.
    """
    dims = _resolve_dims(dims)
    seg = float(PROCESS["segment_seconds"])
    min_piece = int(round(PROCESS["min_piece_seconds"] / seg))
    if num_videos < 1:
        raise ValueError(f"need num_videos >= 1, got {num_videos}")
    _check_seconds("seconds", seconds)
    params = {"generator": f"{__name__}.write_tsc_corpus", "version": GENERATOR_VERSION,
              "seed": seed, "dims": dims, "num_videos": num_videos, "seconds": list(seconds),
              "process": PROCESS}
    params = json.loads(json.dumps(params))  # the form it takes when read back
    out = Path(root)
    previous, tmp = stage_corpus(
        out, params, lambda o: json.loads((o / HIDDEN_FILE).read_text())["summary"],
        what="synthetic time-sync-comment corpus")
    if previous is not None:
        return _with_root(previous, out)
    world = make_world(seed, dims)
    tsc = _write_tsc(tmp, world, seed, num_videos, seconds, seg, min_piece)
    summary = {"parameters": params, "class_names": list(CLASS_NAMES), "streams": list(STREAMS),
               "dims": dims, "segment_seconds": seg,
               "paths": {"manual_dir": "", "hidden_states": HIDDEN_FILE},
               "tsc": _tsc_statistics(tsc)}
    hidden = {"summary": summary,
              "world_groups": {s: world.groups[s].tolist() for s in STREAMS},
              "comment_fields": ["row_id", "time", "kind", "emotions"], "tsc": tsc}
    (tmp / HIDDEN_FILE).write_text(json.dumps(hidden, sort_keys=True, separators=(",", ":"))
                                   + "\n")
    shown = json.dumps({k: v for k, v in params.items() if k != "process"}, sort_keys=True)
    (tmp / README_FILE).write_text(
        "THIS IS A SYNTHETIC CORPUS. IT IS NOT BILIBILI AND HOLDS NO VIDEO.\n\n"
        "Written by jaxaffect.families.tam.synthetic.write_tsc_corpus: the manual_dir of the\n"
        "bilibili_tsc builder (config `custom`): danmaku/*.xml, features/*.npz, lexicon.tsv.\n"
        f"{HIDDEN_FILE} holds the hidden per-segment emotional states and comment records.\n"
        "Numbers obtained on it say nothing about real videos. Generative process:\n"
        "docs/synthetic_tam.md in the jaxaffect repository.\n"
        f"Parameters: {shown}\n")
    publish_corpus(tmp, out)
    return _with_root(summary, out)


def _with_root(summary: dict, root: Path) -> dict:
    """The stored summary (relative paths, so files do not depend on `root`) with `root` and
    absolute paths added."""
    paths = {k: str(root / v) if v else str(root) for k, v in summary["paths"].items()}
    return {**summary, "root": str(root), "paths": paths}


def read_hidden_states(root: str) -> dict:
    """The sidecar of a corpus: {"summary", "world_groups", "comment_fields", "tsc", "labelled"}.

    tsc[video_id] = {"num_segments", "states": [[start, end, emotion], ...] (segment spans),
    "comments": [[row_id, time, kind, emotions], ...]}; labelled[video_id] = {"label", "split",
    "num_segments", "states"}. Emotion ids index CLASS_NAMES.
    """
    return json.loads((Path(root) / HIDDEN_FILE).read_text())


def synthesize(out: str, *, size: int | None, seed: int) -> dict:
    """`jaxaffect synthesize tam`: `size` comment videos (default 300) and 4/3 as many
    labelled videos (at least 8)."""
    n = size or 300
    return write_tam_corpus(out, num_tsc_videos=n, num_labelled=max(8, 4 * n // 3), seed=seed)


def synthesize_tsc(out: str, *, size: int | None, seed: int) -> dict:
    """`jaxaffect synthesize tsc --num_videos N`: a bilibili_tsc manual_dir of N comment
    videos (default 1000)."""
    return write_tsc_corpus(out, num_videos=size or 1000, seed=seed)
