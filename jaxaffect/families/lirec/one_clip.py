"""One video's LIReC example for `predict --video`, and the description of its prediction.

`jaxaffect.families.lirec.extract.release_for_video` writes the video as the one scene of a
one-movie folder in the release layout, with clip.json {"characters", "duration"}. Here that
folder becomes the builder's example (the same assembly code as `jaxaffect build`): one
interaction spanning the whole clip between the given characters, the first two the pair, the
label a placeholder (prediction does not read it), with the run's class names and feature
sizes (another size is refused, naming the file). `describe` turns the model's outputs into
the printed prediction: the interaction (and, for the character settings, the pair; for the
relationship settings, the relationship) with the paper's scores sigmoid(logit).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from jaxaffect.errors import FormatError
from jaxaffect.families.lirec import batches as lb
from jaxaffect.families.lirec import release_format as lf
from jaxaffect.families.lirec import release_labels as rl

PLACEHOLDER = "(unknown)"  # the interaction label of the clip: not read by prediction
TOP = 5  # interactions listed with their scores


def write_clip_labels(root: Path, movie: str, scene: str, characters: Sequence[str],
                      duration: float) -> None:
    """split.json (the movie as test) and the movie's labels: one interaction over the clip."""
    pair = (characters[0], characters[1] if len(characters) > 1 else None)
    record = rl.InteractionRecord(id="clip", scene=scene, start=0.0, end=float(duration),
                                  name=PLACEHOLDER, characters=tuple(characters), pairs=(pair,))
    rl.write_split(root / lf.SPLIT_FILE, {"test": [movie]})
    rl.write_movie_labels(lf.labels_path(root, movie), rl.MovieLabels(movie, (record,), ()))
    (root / "clip.json").write_text(json.dumps({"characters": list(characters),
                                                "duration": float(duration)}))


def clip_example(folder: str, interactions: Sequence[str], relationships: Sequence[str],
                 dims: Mapping[str, int]) -> dict[str, Any]:
    """The stored example of a one-clip folder, assembled as `jaxaffect build` does."""
    from tfds_builders.moviegraphs_lirec import lirec_examples as le
    from tfds_builders.moviegraphs_lirec import lirec_release as lr

    root = Path(folder)
    if not (root / "clip.json").is_file():
        raise FormatError(f"{folder}: LIReC predicts from a one-clip folder (made by "
                          "`predict --video ... --characters A,B`)")
    notes = lr.BuildNotes(root)
    _, plans = lr.plan_release(root, notes)
    if len(plans) != 1:
        raise FormatError(f"{folder}: {len(plans)} movies; a one-clip folder holds one")
    (movie, plan), = plans.items()
    res = root / lf.ORG_RES_FILE
    maps = le.LabelMaps(list(interactions), {PLACEHOLDER: interactions[0]}, list(relationships),
                        {}, {}, rl.read_org_res(res) if res.is_file() else {})
    examples = le.movie_examples(root, plan, maps, dims, notes)
    if len(examples) != 1:
        raise FormatError(f"{folder}: {len(examples)} examples; a one-clip folder makes one")
    le.fill_pair_clip_ids(examples)
    return examples[0]


def clip_batch(spec: lb.BatchSpec, example: Mapping[str, Any]) -> dict[str, Any]:
    """A batch of one, shaped like the evaluation batches of `spec`'s setting (host keys
    included)."""
    from jaxaffect.data.memory_dataset import collate_nested

    return collate_nested([lb.transform(spec, {str(example["clip_id"]): example}, example,
                                        None)])


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.asarray(x, np.float64)))


def describe(out: Mapping[str, np.ndarray], pairs: np.ndarray, interactions: Sequence[str],
             relationships: Sequence[str]) -> dict[str, Any]:
    """{"prediction": one line, "scores": {name: score} of the top interactions (or the
    relationships when only they are predicted), "pair": [from, to] or None}."""
    pairs = np.asarray(pairs, dtype=object).reshape(-1, 2)
    s_int = _sigmoid(out["interaction_logits"][0]) if "interaction_logits" in out else None
    s_rel = _sigmoid(out["relationship_logits"][0]) if "relationship_logits" in out else None
    pair_index = 0
    if s_int is not None and s_int.ndim == 2:  # [P, A]: the pair is predicted (joint argmax)
        best = s_int[:len(pairs)].max(axis=-1)
        if s_rel is not None and s_rel.ndim == 2:
            best = best + s_rel[:len(pairs)].max(axis=-1)
        pair_index = int(np.argmax(best))
        s_int = s_int[pair_index]
    if s_rel is not None and s_rel.ndim == 2:
        s_rel = s_rel[pair_index]
    pair = [str(c) if c is not None else None for c in pairs[pair_index]] if len(pairs) else None
    who = f"{pair[0]} -> {pair[1]}" if pair and pair[1] else (pair[0] if pair else "?")
    parts, scores = [], {}
    if s_int is not None:
        order = np.argsort(-s_int, kind="stable")[:TOP]
        scores = {interactions[i]: float(s_int[i]) for i in order}
        parts.append(f"interaction '{interactions[int(order[0])]}'")
    if s_rel is not None:
        r = int(np.argmax(s_rel))
        parts.append(f"relationship '{relationships[r]}'")
        if s_int is None:
            scores = {relationships[i]: float(s_rel[i])
                      for i in np.argsort(-s_rel, kind="stable")}
    return {"prediction": f"{', '.join(parts)} ({who})", "scores": scores, "pair": pair,
            "probabilities": {}}
