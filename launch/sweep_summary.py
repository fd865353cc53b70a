"""Collects the runs of a sweep (`python launch/sweep.py summary`): one row per point, mean ±
std over the point's runs (seeds, splits) of every metric, as CSV rows and a markdown table.

A run is a folder holding train_summary.json; its point is its path below the workdir_root
without the `split_<k>` / `seed_<s>` folders `jaxaffect train --splits/--seeds` adds. Metrics:
`val/<name>` from train_summary.json's best validation metrics, `<split>/<name>` from each
eval_<split>.json that `jaxaffect eval` wrote. Unfinished runs are counted, not averaged.
"""

from __future__ import annotations

import dataclasses
import json
import re
from typing import Any

from etils import epath

from jaxaffect.evaluate import summarize_seeds

SUMMARY_FILE = "train_summary.json"
RUN_PARTS = re.compile(r"^(seed|split)_\d+$")
EVAL_FILE = re.compile(r"^eval_(\w+)\.json$")


@dataclasses.dataclass
class Point:
    """One point of a sweep: its runs' metrics ({metric: value} per finished run)."""

    name: str
    runs: list[dict[str, float]] = dataclasses.field(default_factory=list)
    unfinished: list[str] = dataclasses.field(default_factory=list)

    def aggregate(self) -> dict[str, dict[str, float]]:
        """{metric: {"mean", "std", "n"}} over the finished runs that all have the metric."""
        return summarize_seeds(self.runs)


def run_metrics(run: epath.Path) -> tuple[bool, dict[str, float]]:
    """(whether the run finished training, its metrics)."""
    summary = json.loads((run / SUMMARY_FILE).read_text())
    metrics = {f"val/{k}": float(v) for k, v in (summary.get("best_validation") or {}).items()
               if isinstance(v, (int, float))}
    for path in sorted(run.iterdir()):
        match = EVAL_FILE.match(path.name)
        if match:
            found = json.loads(path.read_text()).get("metrics", {})
            metrics.update({f"{match.group(1)}/{k}": float(v) for k, v in found.items()
                            if isinstance(v, (int, float))})
    return bool(summary.get("finished")), metrics


def point_name(root: epath.Path, run: epath.Path) -> str:
    parts = [p for p in run.relative_to(root).parts if not RUN_PARTS.match(p)]
    return "/".join(parts) or "."


def run_folders(folder: epath.Path) -> list[epath.Path]:
    """The run folders at or below `folder`, sorted (a run's own folders are not entered)."""
    if (folder / SUMMARY_FILE).exists():
        return [folder]
    found = []
    for child in sorted(folder.iterdir()):
        if child.is_dir():
            found += run_folders(child)
    return found


def collect(workdir_root: str) -> list[Point]:
    """Every point under `workdir_root` with its runs, in path order."""
    root = epath.Path(workdir_root)
    points: dict[str, Point] = {}
    for run in run_folders(root) if root.is_dir() else []:
        name = point_name(root, run)
        point = points.setdefault(name, Point(name))
        done, metrics = run_metrics(run)
        if done:
            point.runs.append(metrics)
        else:
            point.unfinished.append(str(run.relative_to(root)))
    return list(points.values())


def default_metrics(points: list[Point]) -> list[str]:
    """The metrics shown by default: per split, those without '/' in their own name, without
    num_examples; validation first."""
    names = {k for p in points for k in p.aggregate()}
    shown = [k for k in names if "/" not in k.split("/", 1)[1]
             and not k.endswith("/num_examples")]
    return sorted(shown, key=lambda k: (not k.startswith("val/"), k))


def _cell(agg: dict[str, Any] | None) -> str:
    if agg is None:
        return "-"
    return f"{agg['mean']:.4f} ± {agg['std']:.4f}" if agg["n"] > 1 else f"{agg['mean']:.4f}"


def markdown(points: list[Point], metrics: list[str] | None = None) -> str:
    """The table: point, finished runs (and unfinished ones), one column per metric (mean ±
    sample std over the finished runs; a bare value for one run). `metrics` are full names
    (`val/accuracy`) or bare ones (`accuracy`: every split that has it)."""
    available = sorted({k for p in points for k in p.aggregate()},
                       key=lambda k: (not k.startswith("val/"), k))
    if metrics is None:
        columns = default_metrics(points)
    else:
        columns = [k for m in metrics for k in available
                   if k == m or k.split("/", 1)[1] == m]
    lines = ["| point | runs | " + " | ".join(columns) + " |",
             "|" + "---|" * (len(columns) + 2)]
    for p in points:
        agg = p.aggregate()
        runs = str(len(p.runs)) + (f" (+{len(p.unfinished)} unfinished)" if p.unfinished
                                   else "")
        lines.append(f"| {p.name} | {runs} | "
                     + " | ".join(_cell(agg.get(k)) for k in columns) + " |")
    return "\n".join(lines) + "\n"


def csv_rows(points: list[Point]) -> list[list[Any]]:
    """Header and one row per point: point, runs, unfinished, then <metric>_mean / _std for
    every metric (empty where a point lacks it)."""
    names = sorted({k for p in points for k in p.aggregate()},
                   key=lambda k: (not k.startswith("val/"), k))
    rows: list[list[Any]] = [["point", "runs", "unfinished",
                              *(f"{k}_{s}" for k in names for s in ("mean", "std"))]]
    for p in points:
        agg = p.aggregate()
        row: list[Any] = [p.name, len(p.runs), len(p.unfinished)]
        for k in names:
            row += [agg[k]["mean"], agg[k]["std"]] if k in agg else ["", ""]
        rows.append(row)
    return rows
