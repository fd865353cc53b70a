"""A deterministic synthetic corpus in the MEmoR release layout (`jaxaffect synthesize memor`).

It is NOT MEmoR. Clips of 2-5 segments hold 2-4 of the 8 characters; each character has a
latent fine-grained emotion per segment that persists over segments, spreads from the speaker
to the listeners and is otherwise drawn from a prior biased by the character's personality
vector (`synthetic_process`). Only the speaker of a segment has audio and text, faces are seen
for some persons and segments, and most annotated targets are non-speakers, so the target's
own entry is often empty and the context, the other persons and the personality carry the
label. `run_probes` measures that with numpy probes. docs/synthetic_memor.md documents the
process, its parameters and the probes.

Files: the release layout (written by `release_writer`), SYNTHETIC_CORPUS.json (summary and
parameters), synthetic_latent.json (the latent emotions, for tests) and README.txt.
"""

from __future__ import annotations

import dataclasses
import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from jaxaffect.data.build import publish_corpus, stage_corpus
from jaxaffect.families.amer import release_examples as rx
from jaxaffect.families.amer import release_format as rf
from jaxaffect.families.amer import synthetic_process as sp
from jaxaffect.families.amer.release_writer import Annotation, ReleaseClip, write_release

GENERATOR_VERSION = 1
CORPUS_FILE = "SYNTHETIC_CORPUS.json"
LATENT_FILE = "synthetic_latent.json"
README_FILE = "README.txt"
DEFAULT_SIZE = 480  # annotations
CLIPS_PER_EPISODE = 20


def resolve_dims(dims: dict[str, int] | None) -> dict[str, int]:
    unknown = set(dims or {}) - set(sp.DEFAULT_DIMS)
    if unknown:
        raise ValueError(f"dims: unknown parts {sorted(unknown)} (parts: {list(sp.DEFAULT_DIMS)})")
    out = {**sp.DEFAULT_DIMS, **{k: int(v) for k, v in (dims or {}).items()}}
    if any(v < 1 for v in out.values()):
        raise ValueError(f"dims must be positive: {out}")
    return out


def clip_name(i: int) -> str:
    """Episode-style clip names (S01E01_c00, ...), CLIPS_PER_EPISODE clips per episode."""
    episode, k = divmod(i, CLIPS_PER_EPISODE)
    return f"S{1 + episode // 24:02d}E{1 + episode % 24:02d}_c{k:02d}"


def draw_corpus(num_annotations: int, seed: int, dims: dict[str, int]
                ) -> tuple[sp.World, list[sp.ClipDraw]]:
    """Clips (each from its own generator, so a larger corpus extends a smaller one) until
    `num_annotations` targets; the last clip keeps only the targets still needed."""
    world = sp.make_world(seed, dims)
    draws: list[sp.ClipDraw] = []
    count = 0
    while count < num_annotations:
        d = sp.draw_clip(np.random.default_rng([seed, 1, len(draws)]), world,
                         clip_name(len(draws)))
        keep = d.targets[:num_annotations - count]
        draws.append(dataclasses.replace(d, targets=keep))
        count += len(keep)
    return world, draws


def _release(draws: list[sp.ClipDraw]) -> tuple[list[ReleaseClip], list[Annotation]]:
    clips, annos = [], []
    for d in draws:
        clips.append(ReleaseClip(d.clip, d.start, d.seg_start, d.seg_end, d.seg_ori_ind,
                                 d.speakers, d.on_character, d.audio, d.text, d.faces,
                                 d.objects, d.environment))
        for t in d.targets:
            fine = sp.FINE[t.fine]
            annos.append(Annotation(d.clip, t.character, t.moment, sp.FINE_TO_PRIMARY[fine],
                                    fine))
    return clips, annos


def _target_rows(draws: list[sp.ClipDraw]) -> list[dict[str, Any]]:
    """Per annotation (in anno.json order): latent facts and what the target's entry holds."""
    rows = []
    for d in draws:
        for t in d.targets:
            p, j = d.cast.index(t.character), t.segment
            speaks = d.speakers[j] == t.character
            rows.append({
                "clip": d.clip, "character": t.character, "moment": t.moment, "segment": j,
                "fine": t.fine, "outside": t.outside, "speaks_in_segment": speaks,
                "speaks_in_clip": t.character in d.speakers,
                "on_character": t.character in d.on_character,
                "audio": speaks and j in d.audio, "text": speaks,
                "visual": bool(d.visible[p, j]),
                "same_as_previous": j > 0 and d.emotions[p, j] == d.emotions[p, j - 1],
                "same_as_speaker": (not speaks)
                and d.emotions[p, j] == d.emotions[d.cast.index(d.speakers[j]), j]})
    return rows


def _statistics(draws: list[sp.ClipDraw], rows: list[dict[str, Any]], train: list[int],
                test: list[int]) -> dict[str, Any]:
    moments: dict[str, dict[tuple[str, int], int]] = {"train": {}, "test": {}}
    for split, ids in (("train", train), ("test", test)):
        for i in ids:
            key = rx.moment_key(rows[i]["clip"], rows[i]["moment"])
            moments[split][key] = moments[split].get(key, 0) + 1
    shared = set(moments["train"]) & set(moments["test"])
    fine = np.asarray([r["fine"] for r in rows])
    mean = lambda key, sel=None: round(float(np.mean(  # noqa: E731
        [r[key] for r in rows if sel is None or sel(r)] or [0.0])), 4)
    listeners = lambda r: not r["speaks_in_segment"]  # noqa: E731
    return {
        "num_clips": len(draws), "num_annotations": len(rows),
        "num_train": len(train), "num_test": len(test),
        "segments_per_clip": round(float(np.mean([len(d.seg_start) for d in draws])), 3),
        "cast_per_clip": round(float(np.mean([len(d.cast) for d in draws])), 3),
        "overlap": {"moments": len(set(moments["train"]) | set(moments["test"])),
                    "shared_moments": len(shared),
                    "affected_annotations": sum(moments["train"][m] + moments["test"][m]
                                                for m in shared)},
        "targets": {
            "non_speaker_in_segment": round(1.0 - mean("speaks_in_segment"), 4),
            "non_speaker_in_clip": round(1.0 - mean("speaks_in_clip"), 4),
            "audio_present": mean("audio"), "text_present": mean("text"),
            "visual_present": mean("visual"),
            "no_modality": round(float(np.mean([not (r["audio"] or r["text"] or r["visual"])
                                                for r in rows])), 4),
            "outside_moments": int(sum(r["outside"] for r in rows)),
            "not_on_character": int(sum(not r["on_character"] for r in rows)),
            "same_emotion_as_previous_segment": mean("same_as_previous",
                                                     lambda r: r["segment"] > 0),
            "non_speaker_same_emotion_as_speaker": mean("same_as_speaker", listeners)},
        "class_counts": {
            split: {"fine": dict(zip(sp.FINE, np.bincount(fine[ids], minlength=14).tolist())),
                    "primary": dict(zip(sp.PRIMARY, np.bincount(
                        sp.PRIMARY_OF[fine[ids]], minlength=9).tolist()))}
            for split, ids in (("train", train), ("test", test))},
    }


def _latent(draws: list[sp.ClipDraw], rows: list[dict[str, Any]]) -> dict[str, Any]:
    clips = {d.clip: {"cast": d.cast, "emotions": d.emotions.tolist(),
                      "visible": d.visible.astype(int).tolist()} for d in draws}
    keys = ("clip", "character", "segment", "fine", "outside")
    return {"fine_names": list(sp.FINE), "clips": clips,
            "annotations": [{k: r[k] for k in keys} for r in rows]}


def _readme(params: dict[str, Any]) -> str:
    return ("Synthetic corpus in the MEmoR release layout (NOT MEmoR), written by "
            "jaxaffect.families.amer.synthetic.synthesize; see docs/synthetic_memor.md.\n"
            f"{CORPUS_FILE}: summary and parameters; {LATENT_FILE}: the latent emotions.\n"
            + json.dumps(params, sort_keys=True) + "\n")


def synthesize(out: str, *, size: int | None = None, seed: int = 0,
               dims: dict[str, int] | None = None, test_fraction: float = 0.2
               ) -> dict[str, Any]:
    """Writes a synthetic MEmoR release of `size` annotations (default 480) into `out`.

    `dims`: sizes of audio, text, face, object, environment, personality (defaults
    synthetic_process.DEFAULT_DIMS). `test_fraction` of each fine class goes to test_id.txt.
    The same arguments give byte-identical files. If `out` already holds a corpus written with
    identical parameters its summary is returned without writing; any other non-empty `out` is
    refused (FileExistsError). Files are written to a staging folder beside `out` and moved
    into place when complete. Returns the summary (also in SYNTHETIC_CORPUS.json) plus "root".
    """
    num = DEFAULT_SIZE if size is None else int(size)
    if num < 2:
        raise ValueError(f"size must be >= 2 annotations, got {size}")
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    dims = resolve_dims(dims)
    params = {"generator": __name__, "version": GENERATOR_VERSION, "seed": seed,
              "num_annotations": num, "dims": dims, "test_fraction": test_fraction,
              "process": sp.PROCESS, "fine_prior": sp.FINE_PRIOR,
              "cast_weights": list(sp.CAST_WEIGHTS),
              "annotations_per_moment": list(sp.ANNOTATIONS_PER_MOMENT),
              "talkers": list(sp.TALKERS)}
    params = json.loads(json.dumps(params))  # the form it takes when read back
    previous, tmp = stage_corpus(out, params, read_summary, what="synthetic MEmoR corpus")
    if previous is not None:
        return {**previous, "root": str(out)}
    world, draws = draw_corpus(num, seed, dims)
    rows = _target_rows(draws)
    train, test = sp.split_ids(np.random.default_rng([seed, 2]),
                               np.asarray([r["fine"] for r in rows]), test_fraction)
    clips, annos = _release(draws)
    write_release(tmp, clips=clips, annotations=annos, train_ids=train, test_ids=test,
                  personality=world.personality)
    summary = {"parameters": params, "dims": dims, **_statistics(draws, rows, train, test)}
    (tmp / LATENT_FILE).write_text(json.dumps(_latent(draws, rows), separators=(",", ":"))
                                   + "\n")
    (tmp / CORPUS_FILE).write_text(json.dumps(summary, indent=1, sort_keys=True) + "\n")
    (tmp / README_FILE).write_text(_readme({k: v for k, v in params.items() if k != "process"}))
    publish_corpus(tmp, out)
    return {**summary, "root": str(out)}


def read_summary(root: str | Path) -> dict[str, Any]:
    return json.loads((Path(root) / CORPUS_FILE).read_text())


def read_latent(root: str | Path) -> dict[str, Any]:
    """{"fine_names", "clips": {clip: {"cast", "emotions" [cast][segment], "visible"}},
    "annotations": [{"clip", "character", "segment", "fine", "outside"}] (anno.json order)}."""
    return json.loads((Path(root) / LATENT_FILE).read_text())


# ----------------------------------------------------------------------------- probes
# Parts of the probe features (see `probe_features`) each arm sees.
PROBE_ARMS: dict[str, tuple[str, ...]] = {
    "target entry": ("own",),
    "+ personality": ("own", "personality"),
    "+ intra-personal": ("own", "intra"),
    "+ inter-personal": ("own", "inter"),
    "+ context": ("own", "intra", "inter"),
    "+ context + personality": ("own", "intra", "inter", "personality"),
}


def release_examples(root: str | Path) -> list[dict[str, Any]]:
    """Every listed annotation of a release as the builder assembles it (`release_examples`),
    with "split" ("train" / "test", the official lists) added."""
    release = rx.read_release(root)
    by_clip: dict[str, list[int]] = defaultdict(list)
    for i in release.listed:
        by_clip[release.annotations[i].clip].append(i)
    out = {}
    for clip, indices in by_clip.items():
        visual = rx.ClipVisual(release, clip)
        for i in indices:
            out[i] = {**rx.annotation_example(release, i, visual),
                      "split": "train" if i in release.ids["train"] else "test"}
    return [out[i] for i in sorted(out)]


def _centroids(examples: list[dict[str, Any]], labels: np.ndarray, num_classes: int
               ) -> dict[str, np.ndarray]:
    """Per modality, class means of the present target entries of the given examples (a class
    without any: the mean over all of them)."""
    out = {}
    for m in rf.MODALITIES:
        xs, ys = [], []
        for e, y in zip(examples, labels):
            p, s = int(e["target_person"]), int(e["target_segment"])
            if e[f"{m}_present"][p, s]:
                xs.append(e[m][p, s])
                ys.append(y)
        x, y = np.asarray(xs, np.float64), np.asarray(ys)
        overall = x.mean(0) if len(x) else np.zeros(examples[0][m].shape[-1])
        out[m] = np.stack([x[y == k].mean(0) if np.any(y == k) else overall
                           for k in range(num_classes)])
    return out


def probe_features(example: dict[str, Any], centroids: dict[str, np.ndarray],
                   basis: np.ndarray) -> dict[str, np.ndarray]:
    """Nearest-prototype scores (minus squared distance to each class centroid, max 0; zeros
    where absent) of the entries, pooled into parts: "own" (the target entry + its presence
    flags), "intra" (the target's other segments, weighted 0.5^|distance|, + the weight sum),
    "inter" (the other persons in the target segment, mean + count) and "personality" (the
    target's normalised row in the principal basis of the 8 rows)."""
    p, s = int(example["target_person"]), int(example["target_segment"])
    n_seg = example["text"].shape[1]
    parts: dict[str, list[np.ndarray]] = {"own": [], "intra": [], "inter": []}
    for m in rf.MODALITIES:
        x, present = np.asarray(example[m], np.float64), example[f"{m}_present"]
        d = -((x[..., None, :] - centroids[m]) ** 2).sum(-1)  # [P, S, K]
        score = (d - d.max(-1, keepdims=True)) * present[..., None]
        parts["own"].append(score[p, s])
        w_intra = np.zeros(present.shape)
        w_intra[p] = present[p] * 0.5 ** np.abs(np.arange(n_seg) - s)
        w_intra[p, s] = 0.0
        w_inter = np.zeros(present.shape)
        w_inter[:, s] = present[:, s]
        w_inter[p, s] = 0.0
        for name, w in (("intra", w_intra), ("inter", w_inter)):
            total = w.sum()
            parts[name].append(np.r_[(score * w[..., None]).sum((0, 1)) / max(total, 1e-9),
                                     total])
    parts["own"].append(np.asarray([example[f"{m}_present"][p, s] for m in rf.MODALITIES],
                                   np.float64))
    out = {k: np.concatenate(v) for k, v in parts.items()}
    out["personality"] = np.asarray(example["personality"][p], np.float64) @ basis.T
    return out


def ridge_probe(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray,
                num_classes: int, l2: float = 0.01) -> np.ndarray:
    """A least-squares (ridge) classifier: standardised inputs and a bias, one-hot targets,
    penalty `l2` per training example; the test labels (argmax). Closed form, so cheap."""
    mu, sd = x_train.mean(0), x_train.std(0) + 1e-6
    a = np.c_[(x_train - mu) / sd, np.ones(len(x_train))]
    b = np.c_[(x_test - mu) / sd, np.ones(len(x_test))]
    w = np.linalg.solve(a.T @ a + l2 * len(a) * np.eye(a.shape[1]),
                        a.T @ np.eye(num_classes)[y_train])
    return np.argmax(b @ w, axis=1)


def macro_f1(y: np.ndarray, pred: np.ndarray, num_classes: int) -> float:
    """Mean F1 over the classes present in `y` or `pred`."""
    f1 = [2.0 * np.sum((pred == k) & (y == k)) / (np.sum(pred == k) + np.sum(y == k))
          for k in range(num_classes) if np.any(y == k) or np.any(pred == k)]
    return float(np.mean(f1))


def run_probes(root: str | Path, *, labels: str = "fine",
               examples: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """Fits each PROBE_ARMS probe on the official train list and scores the test list.

    Returns {"labels", "num_train", "num_test", "majority": micro-F1 of the most frequent
    train class, "arms": {arm: {"micro_f1", "macro_f1", "non_speaker_micro_f1"}}}."""
    if labels not in ("fine", "primary"):
        raise ValueError(f"labels must be 'fine' or 'primary', got {labels!r}")
    examples = release_examples(root) if examples is None else examples
    k = len(sp.FINE) if labels == "fine" else len(sp.PRIMARY)
    y = np.asarray([int(e[f"label_{labels}"]) for e in examples])
    is_train = np.asarray([e["split"] == "train" for e in examples])
    speaks = np.asarray([bool(e["speaks_in_segment"]) for e in examples])
    cents = _centroids([e for e, t in zip(examples, is_train) if t], y[is_train], k)
    rows = np.asarray(rf.normalise_personality(rf.read_personality(root)), np.float64)
    centred = rows - rows.mean(0)
    _, sv, vt = np.linalg.svd(centred, full_matrices=False)
    basis = vt[: int(np.sum(sv > 1e-9 * sv[0]))]
    feats = [probe_features(e, cents, basis) for e in examples]
    ytr, yte = y[is_train], y[~is_train]
    out = {}
    for arm, parts in PROBE_ARMS.items():
        x = np.asarray([np.concatenate([f[p] for p in parts]) for f in feats])
        pred = ridge_probe(x[is_train], ytr, x[~is_train], k)
        hit = pred == yte
        out[arm] = {"micro_f1": round(float(hit.mean()), 4),
                    "macro_f1": round(macro_f1(yte, pred, k), 4),
                    "non_speaker_micro_f1": round(float(hit[~speaks[~is_train]].mean()), 4)}
    majority = np.bincount(ytr, minlength=k).argmax()
    return {"labels": labels, "num_train": int(is_train.sum()),
            "num_test": int((~is_train).sum()),
            "majority": round(float(np.mean(yte == majority)), 4), "arms": out}
