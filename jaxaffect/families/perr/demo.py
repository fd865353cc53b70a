"""`jaxaffect demo`: the whole PERR pipeline on the embedded synthetic corpus.

generate the synthetic ERATO-layout corpus -> build TFRecords -> majority baseline, plain LSTM
and SMTA(transformer) -> evaluate on the test split -> results table (micro/macro-F1 on the
fine and coarse label sets) and confusion-matrix / attention / training-curve images.

The corpus is SYNTHETIC (docs/synthetic_erato.md); its numbers say the code learns cross-modal,
time-ordered cues, not how a model does on ERATO.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from jaxaffect.data.build import data_home as default_data_home
from jaxaffect.families.perr.task import default_config

# (run name, fusion) trained by the demo; the majority baseline needs no training.
DEMO_MODELS = (("lstm", "lstm"), ("smta_transformer", "smta"))
TABLE_KEYS = (("micro_f1", "5-class micro-F1"), ("macro_f1", "5-class macro-F1"),
              ("coarse/micro_f1", "3-class micro-F1"), ("coarse/macro_f1", "3-class macro-F1"))


def demo_settings(quick: bool) -> dict:
    if quick:
        return {"num_clips": 600, "epochs": 4, "hidden": 32, "decay_every": 0}
    return {"num_clips": 2000, "epochs": 15, "hidden": 64, "decay_every": 10}


def demo_config(fusion: str, builder_dir: str, settings: dict, seed: int):
    config = default_config(fusion, "attention=transformer,labels=fine,data=synthetic")
    config.seed = seed
    config.data.builder_dir = builder_dir
    config.model.hidden_size = settings["hidden"]
    config.training.num_epochs = settings["epochs"]
    config.training.log_every_steps = 20
    config.optimizer.decay_every_epochs = settings["decay_every"]
    config.mesh.data, config.mesh.fsdp, config.mesh.num_devices = 1, 1, 1  # one device
    return config


def prepare_corpus(data_home: str, num_clips: int) -> str:
    """Generates and builds the synthetic corpus (both skipped when already done)."""
    from jaxaffect.data.build import build_dataset
    from jaxaffect.families.perr.synthetic import generate_corpus

    home = Path(data_home) / f"synthetic_erato_{num_clips}"
    manual = home / "manual"
    generate_corpus(str(manual), num_clips=num_clips, seed=0, progress=True)
    return build_dataset("erato", str(manual), str(home / "tfds"), "tfrecord")


def format_table(rows: list[tuple[str, dict]], seeds: list[int]) -> str:
    header = "| model | " + " | ".join(label for _, label in TABLE_KEYS) + " |"
    lines = [header, "|" + "---|" * (len(TABLE_KEYS) + 1)]
    for name, agg in rows:
        cells = []
        for key, _ in TABLE_KEYS:
            v = agg[key]
            cells.append(f"{100 * v['mean']:.2f}" + (f" ± {100 * v['std']:.2f}"
                                                     if len(seeds) > 1 else ""))
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def run_demo(workdir: str = "demo_runs", *, quick: bool = False, data_home: str | None = None,
             progress: bool = True, seeds: list[int] | None = None) -> dict:
    import jax

    from jaxaffect.evaluate import evaluate_run, summarize_seeds
    from jaxaffect.task import get_task
    from jaxaffect.train import train

    seeds = seeds or [0]
    settings = demo_settings(quick)
    t0 = time.perf_counter()
    out = Path(workdir)
    out.mkdir(parents=True, exist_ok=True)
    print(f"[demo] SYNTHETIC corpus ({settings['num_clips']} clips), not ERATO: "
          "see docs/synthetic_erato.md")
    builder_dir = prepare_corpus(data_home or default_data_home(), settings["num_clips"])
    print(f"[demo] dataset ready in {builder_dir} ({time.perf_counter() - t0:.0f} s)")

    task = get_task(demo_config("lstm", builder_dir, settings, 0))
    majority, majority_id = task.majority_baseline("test")
    rows = [(f"majority ({task.class_names[majority_id]})",
             summarize_seeds([majority] * len(seeds)))]
    per_model = {"majority": majority}
    for name, fusion in DEMO_MODELS:
        results = []
        for seed in seeds:
            run_dir = out / name / f"seed_{seed}"
            config = demo_config(fusion, builder_dir, settings, seed)
            config.name = name
            print(f"[demo] training {name} (seed {seed}) in {run_dir}")
            train(config, str(run_dir), progress=progress)
            result = evaluate_run(config, str(run_dir), "test")
            results.append(result["metrics"])
            if fusion == "smta" and seed == seeds[0]:
                write_attention_figures(config, run_dir)
        rows.append((name, summarize_seeds(results)))
        per_model[name] = results
    table = format_table(rows, seeds)
    minutes = (time.perf_counter() - t0) / 60
    text = (f"Synthetic ERATO-layout corpus, {settings['num_clips']} clips, test split; "
            f"seeds {seeds}; {minutes:.1f} min on {jax.device_count()} "
            f"{jax.devices()[0].platform} device(s)\n\n{table}\n")
    (out / "results.md").write_text(text)
    (out / "results.json").write_text(json.dumps(
        {"settings": settings, "seeds": seeds, "rows": {n: a for n, a in rows},
         "per_seed": per_model, "minutes": minutes}, indent=2, default=float))
    print("\n" + text)
    print(f"[demo] results: {out / 'results.md'}; confusion matrices: "
          f"{out}/<model>/seed_<k>/confusion_test.png")
    return {"rows": dict(rows), "minutes": minutes}


def write_attention_figures(config, run_dir: Path, n: int = 2) -> None:
    """Per-step SMTA attention (like the paper's Fig. 7) for the first test clips."""
    import jax

    from jaxaffect.evaluate import restore_state
    from jaxaffect.families.perr.erato_format import STREAMS
    from jaxaffect.plots import plot_attention
    from jaxaffect.train import Setup

    setup = Setup(config)
    state, _ = restore_state(setup, str(run_dir))
    ds = setup.task.dataset("test", train=False, seed=0, num_epochs=1, process_index=0,
                            process_count=1)
    batch = next(iter(ds))
    dev = setup.task.device_batch(batch)
    weights = setup.task.attention_maps(setup.model, jax.device_get(state.params), dev)
    tokens = list(STREAMS) + ["h~ (context)"]
    for i in range(min(n, weights.shape[0])):
        length = int(np.asarray(batch["step_mask"][i]).sum())
        plot_attention(weights[i, :length], tokens, str(run_dir / f"attention_{i}.png"),
                       title=f"SMTA attention, clip {batch['clip_id'][i]}")
