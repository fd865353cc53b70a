"""The one demo runner: corpus -> build -> train each arm per seed -> test metrics -> table.

A family's demo is a `Demo`: its settings (full and `--quick`), how it writes and builds its
synthetic corpus, its arms (one trained run each per seed; an arm's config may use the runs of
earlier arms of the same seed, e.g. fine-tuning from a pretraining run), the metrics of the
table, untrained baselines and figures. `run_demo` does the rest the same way for every family:
runs go to `<workdir>/<arm>/seed_<k>`, every tabled arm is evaluated on the test split with its
best validation checkpoint, and `results.md` / `results.json` hold the table (mean ± sample std
over seeds when there are several).
"""

from __future__ import annotations

import abc
import dataclasses
import json
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import ml_collections

# (data, settings, seed, run dirs of the earlier arms of this seed) -> config
ConfigFn = Callable[[dict[str, str], dict[str, Any], int, dict[str, str]],
                    ml_collections.ConfigDict]


@dataclasses.dataclass(frozen=True)
class Arm:
    """One trained model of a demo."""

    name: str  # run folder under the workdir
    config: ConfigFn
    label: str | None = None  # table row (default: name)
    in_table: bool = True  # False: trained for later arms only (e.g. pretraining)
    #: (config, run_dir) -> None, called after the first seed's run (e.g. attention images)
    figures: Callable[[ml_collections.ConfigDict, Path], None] | None = None


class Demo(abc.ABC):
    """What a family's demo declares; `run_demo` runs it."""

    #: prefix of the console lines, e.g. "[xyz demo]"
    tag: str = "[demo]"
    #: (metric key, column label) of the results table; values are fractions shown as %.
    table_keys: tuple[tuple[str, str], ...] = ()
    #: progress bars while preparing the corpus (`run_demo` sets it from its `progress`)
    progress: bool = True

    @abc.abstractmethod
    def settings(self, quick: bool) -> dict[str, Any]:
        """Corpus size and training settings (quick: a few minutes on a 2-core CPU)."""

    @abc.abstractmethod
    def prepare(self, data_home: str, settings: dict[str, Any]) -> dict[str, str]:
        """Writes (or reuses) the synthetic corpus and builds it; returns named builder dirs."""

    @abc.abstractmethod
    def arms(self, settings: dict[str, Any]) -> Sequence[Arm]: ...

    def intro(self, settings: dict[str, Any]) -> str:
        """The first console line (what the corpus is, and that it is synthetic)."""
        return "synthetic corpus"

    def baselines(self, data: dict[str, str], settings: dict[str, Any]
                  ) -> list[tuple[str, dict[str, float]]]:
        """Untrained rows of the table (e.g. majority class, exact random expectation)."""
        del data, settings
        return []

    @abc.abstractmethod
    def header(self, settings: dict[str, Any], seeds: list[int], minutes: float,
               devices: str) -> str:
        """The text above the table in results.md."""

    def footer(self, extra: dict[str, Any]) -> str:
        """Text below the table (from `extra`, which arms' runs may fill)."""
        del extra
        return ""

    def figures(self, out: Path, per_arm: dict[str, list[dict]], settings: dict[str, Any],
                seeds: list[int]) -> None:
        """Summary images over all arms and seeds (optional)."""
        del out, per_arm, settings, seeds

    def analysis(self, out: Path, data: dict[str, str], settings: dict[str, Any],
                 seeds: list[int]) -> str:
        """Markdown shown under the results table, in results.md and in the README block
        (optional): e.g. accuracy by kind of test example, read from the runs under `out`; it
        may write its own images into `out`."""
        del out, data, settings, seeds
        return ""


def format_table(rows: list[tuple[str, dict]], keys: Sequence[tuple[str, str]],
                 num_seeds: int) -> str:
    """Markdown table of {metric: {"mean", "std"}} rows in %; "-" where a row lacks a metric."""
    lines = ["| model | " + " | ".join(label for _, label in keys) + " |",
             "|" + "---|" * (len(keys) + 1)]
    for name, agg in rows:
        cells = []
        for key, _ in keys:
            v = agg.get(key)
            if v is None:
                cells.append("-")
                continue
            cells.append(f"{100 * v['mean']:.2f}" + (f" ± {100 * v['std']:.2f}"
                                                     if num_seeds > 1 else ""))
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def append_result(path: str | os.PathLike, record: dict[str, Any]) -> None:
    """Appends `record` as one JSON line to `path` (a benchmark's results file; folders made)."""
    os.makedirs(os.path.dirname(os.fspath(path)) or ".", exist_ok=True)
    with open(path, "a") as f:
        f.write(json.dumps(record) + "\n")


def provenance(devices: str, minutes: float, **run: Any) -> dict[str, Any]:
    """Where and on what a result was produced: the code's commit (with "+changes" when the
    work tree's tracked files, other than the results folders, differed from it), the CPU model
    as `lscpu` names it, jax, devices, wall time."""
    import platform
    import subprocess

    import jax

    def command(*args: str) -> str:
        try:
            return subprocess.run(args, capture_output=True, text=True, timeout=30,
                                  cwd=Path(__file__).parent).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""

    commit = command("git", "rev-parse", "--short=12", "HEAD") or "unknown"
    # results files are what these commands append to: they do not make the code differ
    if commit != "unknown" and command("git", "status", "--porcelain", "--untracked-files=no",
                                       "--", ":/", ":(top,exclude)benchmarks/results",
                                       ":(top,exclude)docs/results"):
        commit += "+changes"
    cpu = next((line.split(":", 1)[1].strip() for line in command("lscpu").splitlines()
                if line.startswith("Model name:")), platform.processor() or "unknown")
    return {"commit": commit, "cpu": cpu, "cores": os.cpu_count(), "jax": jax.__version__,
            "devices": devices, "wall_minutes": round(minutes, 2), **run}


def run_demo(demo: Demo, workdir: str, *, quick: bool = False, full: bool = False,
             data_home: str | None = None, progress: bool = True,
             seeds: Sequence[int] = (0,)) -> dict[str, Any]:
    """Runs `demo` (see the module docstring); returns the results.json payload.

    `full` puts ``"full": True`` into the settings: demos that offer more arms than their
    headline ones (e.g. every row of a paper table) train them all."""
    import jax

    from jaxaffect.data.build import data_home as default_data_home
    from jaxaffect.evaluate import evaluate_run, summarize_seeds
    from jaxaffect.train import train

    seeds = list(seeds) or [0]
    settings = demo.settings(quick)
    if full:
        settings = {**settings, "full": True}
    t0 = time.perf_counter()
    out = Path(workdir)
    out.mkdir(parents=True, exist_ok=True)
    print(f"{demo.tag} {demo.intro(settings)}", flush=True)
    demo.progress = progress
    data = demo.prepare(str(Path(data_home or default_data_home()).expanduser()), settings)
    print(f"{demo.tag} dataset ready: {', '.join(data.values())} "
          f"({time.perf_counter() - t0:.0f} s)", flush=True)
    rows = demo.baselines(data, settings)
    arms = list(demo.arms(settings))
    per_arm: dict[str, list[dict]] = {a.name: [] for a in arms if a.in_table}
    summaries: dict[str, list[dict]] = {a.name: [] for a in arms}
    for seed in seeds:
        runs: dict[str, str] = {}
        for arm in arms:
            run_dir = out / arm.name / f"seed_{seed}"
            config = arm.config(data, settings, seed, runs)
            print(f"{demo.tag} training {arm.label or arm.name} (seed {seed}) in {run_dir}",
                  flush=True)
            summary = train(config, str(run_dir), progress=progress)
            summaries[arm.name].append(summary.get("best_validation") or {})
            runs[arm.name] = str(run_dir)
            if arm.in_table:
                per_arm[arm.name].append(evaluate_run(config, str(run_dir), "test")["metrics"])
            if arm.figures is not None and seed == seeds[0]:
                arm.figures(config, run_dir)
    rows += [(a.label or a.name, summarize_seeds(per_arm[a.name])) for a in arms if a.in_table]
    demo.figures(out, per_arm, settings, seeds)
    analysis = demo.analysis(out, data, settings, seeds).strip()
    minutes = (time.perf_counter() - t0) / 60
    devices = f"{jax.device_count()} {jax.devices()[0].platform} device(s)"
    extra = {"best_validation": summaries}
    text = (demo.header(settings, seeds, minutes, devices).rstrip() + "\n\n"
            + format_table(rows, demo.table_keys, len(seeds)) + "\n"
            + (f"\n{analysis}\n" if analysis else "")
            + demo.footer(extra))
    (out / "results.md").write_text(text)
    payload = {"settings": settings, "seeds": seeds, "rows": dict(rows), "per_seed": per_arm,
               "best_validation": summaries, "minutes": minutes, "data": data,
               "header": demo.header(settings, seeds, minutes, devices).rstrip(),
               "table_keys": [list(k) for k in demo.table_keys],
               **({"analysis": analysis} if analysis else {}),
               "provenance": provenance(devices, minutes, quick=quick, seeds=seeds,
                                        **({"full": True} if full else {}))}
    (out / "results.json").write_text(json.dumps(payload, indent=2, default=float))
    print("\n" + text, flush=True)
    return payload
