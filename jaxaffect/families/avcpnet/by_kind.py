"""Test accuracy by kind of synthetic clip: where fusion helps and where it cannot.

The synthetic corpus (`synthetic`, docs/synthetic_emotions.md) records in truth.csv which
stream carries each clip's class and what the other stream shows: the same class, nothing
(a class-agnostic pattern or sound, or no audio stream), or another class's cue (a decoy).
Splitting a run's test predictions along these groups shows what each model reads: a visual
branch can only be right where the video carries the class, an audio branch where the audio
does, and a model that fuses both should also be right where one stream carries the class
and the other shows nothing. Where the two streams show two different classes, no reader can
tell which is true (the corpus's fused ceiling is below 100 % for that reason).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from jaxaffect.families.avcpnet.synthetic import ABSENT, AGNOSTIC
from jaxaffect.metrics import mean_std

#: (group key, column label): every clip falls in exactly one
GROUPS: tuple[tuple[str, str], ...] = (
    ("both", "both streams"),
    ("video_quiet", "video only, audio shows nothing"),
    ("video_decoy", "video only, audio shows another class"),
    ("audio_quiet", "audio only, video shows nothing"),
    ("audio_decoy", "audio only, video shows another class"),
)


def clip_group(row: Mapping[str, str]) -> str:
    """The group of one truth.csv row (see GROUPS)."""
    try:
        kind = row["kind"]
        if kind == "both":
            return "both"
        if kind not in ("video_only", "audio_only"):
            raise ValueError(f"truth.csv row {row.get('id')!r}: unknown kind {kind!r}")
        other = row["audio_cue"] if kind == "video_only" else row["video_cue"]
    except KeyError as e:
        raise ValueError(f"truth.csv row {row.get('id')!r}: no field {e}") from None
    quiet = other in (AGNOSTIC, ABSENT)
    return f"{kind.split('_')[0]}_{'quiet' if quiet else 'decoy'}"


def read_predictions(path: str | Path) -> dict[str, bool]:
    """{clip id: prediction == label} from a run's predictions_<split>.jsonl."""
    out = {}
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            try:
                p = json.loads(line)
                out[p["video_id"]] = p["prediction"] == p["label"]
            except (json.JSONDecodeError, KeyError, TypeError) as e:
                raise ValueError(f"{path}:{n}: not a prediction line ({e})") from None
    return out


def group_accuracy(correct: Mapping[str, bool], truth: Iterable[Mapping[str, str]]
                   ) -> dict[str, tuple[int, int]]:
    """{group: (correct, clips)} over the predicted clips; a predicted clip missing from
    truth.csv is an error (the predictions come from another corpus)."""
    groups = {r["id"]: clip_group(r) for r in truth}
    missing = sorted(set(correct) - set(groups))
    if missing:
        raise ValueError(f"{len(missing)} predicted clips are not in truth.csv "
                         f"(first: {missing[0]}): predictions of another corpus?")
    counts = {key: [0, 0] for key, _ in GROUPS}
    for clip, ok in correct.items():
        c = counts[groups[clip]]
        c[0] += int(ok)
        c[1] += 1
    return {k: (v[0], v[1]) for k, v in counts.items()}


def accuracy_table(predictions: Mapping[str, Sequence[str | Path]],
                   truth: Iterable[Mapping[str, str]]
                   ) -> tuple[dict[str, dict[str, list[float]]], dict[str, int]]:
    """Accuracy per group of every row's prediction files ({row: [predictions_<split>.jsonl,
    one per seed]}): ({row: {group: [accuracy per file]}}, {group: clips}); a group without
    clips gets no accuracies."""
    truth = list(truth)
    table: dict[str, dict[str, list[float]]] = {}
    sizes: dict[str, int] = {}
    for row, paths in predictions.items():
        table[row] = {key: [] for key, _ in GROUPS}
        for path in paths:
            for key, (ok, n) in group_accuracy(read_predictions(path), truth).items():
                sizes[key] = n
                if n:
                    table[row][key].append(ok / n)
    return table, sizes


def by_kind(workdir: str | Path, arms: Sequence[str], seeds: Sequence[int],
            truth: Iterable[Mapping[str, str]], split: str = "test"
            ) -> tuple[dict[str, dict[str, list[float]]], dict[str, int]]:
    """`accuracy_table` for every arm and seed of a demo's workdir
    (<workdir>/<arm>/seed_<seed>/predictions_<split>.jsonl), one row per arm."""
    return accuracy_table({arm: [Path(workdir) / arm / f"seed_{seed}" /
                                 f"predictions_{split}.jsonl" for seed in seeds]
                           for arm in arms}, truth)


def format_by_kind(table: Mapping[str, Mapping[str, Sequence[float]]], sizes: Mapping[str, int],
                   labels: Mapping[str, str], first_column: str = "model") -> str:
    """Markdown table: one row per arm (labels[arm]), one column per group with its clip
    count, accuracy in % (mean ± sample std over seeds when there are several)."""
    lines = [f"| {first_column} | " + " | ".join(f"{label} ({sizes.get(key, 0)})"
                                       for key, label in GROUPS) + " |",
             "|" + "---|" * (len(GROUPS) + 1)]
    for arm, groups in table.items():
        cells = []
        for key, _ in GROUPS:
            values = groups.get(key, [])
            if not values:
                cells.append("-")
                continue
            m, s = mean_std(values)
            cells.append(f"{100 * m:.1f}" + (f" ± {100 * s:.1f}" if len(values) > 1 else ""))
        lines.append(f"| {labels.get(arm, arm)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m jaxaffect.families.avcpnet.by_kind --truth CORPUS RUN [RUN ...]``: the
    table for runs trained on a synthetic corpus (each RUN holds the predictions_<split>.jsonl
    that `jaxaffect eval` writes)."""
    import argparse
    import sys

    from jaxaffect.families.avcpnet.synthetic import read_truth

    parser = argparse.ArgumentParser(description=main.__doc__.split("\n")[0].strip("` "))
    parser.add_argument("runs", nargs="+", help="run folders (e.g. runs/avcp/seed_0)")
    parser.add_argument("--truth", required=True,
                        help="the synthetic corpus folder holding truth.csv")
    parser.add_argument("--split", default="test")
    args = parser.parse_args(argv)
    try:
        paths = {run: [Path(run) / f"predictions_{args.split}.jsonl"] for run in args.runs}
        for run, (path,) in paths.items():
            if not path.is_file():
                raise ValueError(f"{path}: no predictions (run `jaxaffect eval --workdir {run} "
                                 f"--split {args.split}` first)")
        table, sizes = accuracy_table(paths, read_truth(args.truth))
    except (OSError, ValueError, KeyError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(format_by_kind(table, sizes, {}, first_column="run"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
