"""The LIReC pipeline on the synthetic MovieGraphs-layout corpus.

generate the corpus (jaxaffect.families.lirec.synthetic) -> build `moviegraphs_lirec` TFRecords ->
train interactions-only, characters with full supervision and characters with weak supervision
(multinomial pair sampling, hard negatives after a burn-in) with the generic trainer -> evaluate
the best validation checkpoint on test -> exact random baselines -> results.md / results.json
and figures (training curves; relationship confusion matrices for settings that predict them).

The corpus is SYNTHETIC (docs/synthetic_lirec.md): its numbers say the code learns the planted
cues, not how a model does on MovieGraphs.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from jaxaffect.data.build import data_home as default_data_home
from jaxaffect.families.lirec.task import DATASET_NAME, default_config

# (run name, setting, config overrides of the loss)
DEMO_RUNS = (("interactions", "interactions", {}),
             ("characters_full", "characters_full", {}),
             ("characters_weak", "characters_weak",
              {"pair_selection": "multinomial", "negatives": "sum_max"}))
TABLE_KEYS = (("interaction_top1", "Int. top-1"), ("interaction_soft_top1", "Int. soft top-1"),
              ("interaction_top5", "Int. top-5"), ("character_accuracy", "Char."),
              ("character_accuracy_either_direction", "Char. (either direction)"),
              ("joint_accuracy", "Joint"))


def demo_settings(quick: bool) -> dict:
    """Corpus size and training settings (quick: about 2 minutes on a 2-core CPU)."""
    if quick:
        return {"num_movies": 10, "small": False, "epochs": 15, "burn_in": 8, "dim": 64,
                "batch": 16, "lr": 3e-3}
    return {"num_movies": 24, "small": False, "epochs": 40, "burn_in": 20, "dim": 128,
            "batch": 32, "lr": 2e-3}


def prepare_corpus(data_home: str, settings: dict) -> str:
    """Writes and builds the synthetic corpus (the build is reused when present)."""
    from jaxaffect.data import build
    from jaxaffect.data.records import builder_dir_for
    from jaxaffect.families.lirec.synthetic import GENERATOR_VERSION, write_lirec_corpus

    # The generator version is part of the folder: a changed generator never reuses old builds.
    tag = (f"{settings['num_movies']}{'_small' if settings['small'] else ''}"
           f"_v{GENERATOR_VERSION}")
    home = Path(data_home) / f"synthetic_lirec_{tag}"
    tfds_dir = home / "tfds"
    try:
        return builder_dir_for(str(tfds_dir), DATASET_NAME)
    except FileNotFoundError:
        pass
    manual = home / "manual"
    write_lirec_corpus(manual, num_movies=settings["num_movies"], seed=0,
                       small=settings["small"])
    return build.build_dataset(DATASET_NAME, str(manual), str(tfds_dir), "tfrecord")


def demo_config(setting: str, builder_dir: str, settings: dict, seed: int, loss: dict):
    config = default_config(setting)
    config.seed = seed
    config.name = f"lirec_{setting}"
    config.data.builder_dir = builder_dir
    m = config.model
    m.joint_dim = m.track_hidden_dim = m.int_hidden_dim = settings["dim"]
    m.track_out_dim = settings["dim"] // 2
    config.optimizer.learning_rate = settings["lr"]
    config.training.num_epochs = settings["epochs"]
    config.training.batch_size = settings["batch"]
    config.training.log_every_steps = 20
    config.loss.burn_in_epochs = settings["burn_in"]
    for k, v in loss.items():
        config.loss[k] = v
    config.mesh.data, config.mesh.fsdp, config.mesh.num_devices = 1, 1, 1  # one device
    return config


def format_table(rows: list[tuple[str, dict]], seeds: list[int]) -> str:
    lines = ["| model | " + " | ".join(label for _, label in TABLE_KEYS) + " |",
             "|" + "---|" * (len(TABLE_KEYS) + 1)]
    for name, agg in rows:
        cells = []
        for key, _ in TABLE_KEYS:
            v = agg.get(key)
            if v is None:
                cells.append("-")
                continue
            cells.append(f"{100 * v['mean']:.2f}" + (f" ± {100 * v['std']:.2f}"
                                                     if len(seeds) > 1 else ""))
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def run_lirec_demo(workdir: str, *, quick: bool = False, data_home: str | None = None,
                   seeds=(0,), progress: bool = True) -> dict:
    """Runs the demo (see the module docstring); returns {"rows", "baselines", "minutes"}."""
    import jax

    from jaxaffect.evaluate import evaluate_run, summarize_seeds
    from jaxaffect.task import get_task
    from jaxaffect.train import train

    seeds = list(seeds)
    settings = demo_settings(quick)
    t0 = time.perf_counter()
    out = Path(workdir)
    out.mkdir(parents=True, exist_ok=True)
    print(f"[lirec demo] SYNTHETIC corpus ({settings['num_movies']} movies), not MovieGraphs: "
          "see docs/synthetic_lirec.md")
    builder_dir = prepare_corpus(data_home or default_data_home(), settings)
    print(f"[lirec demo] dataset ready in {builder_dir} ({time.perf_counter() - t0:.0f} s)")

    random_rows = {}
    for _, setting, loss in DEMO_RUNS:
        task = get_task(demo_config(setting, builder_dir, settings, 0, loss))
        random_rows.update(task.random_baselines("test"))
    rows = [("random (exact expectation)",
             {k: {"mean": v, "std": 0.0, "n": 1} for k, v in random_rows.items()})]
    per_run: dict[str, list] = {"random": [random_rows]}
    for name, setting, loss in DEMO_RUNS:
        results = []
        for seed in seeds:
            run_dir = out / name / f"seed_{seed}"
            config = demo_config(setting, builder_dir, settings, seed, loss)
            print(f"[lirec demo] training {name} (seed {seed}) in {run_dir}")
            train(config, str(run_dir), progress=progress)
            results.append(evaluate_run(config, str(run_dir), "test")["metrics"])
        rows.append((name, summarize_seeds(results)))
        per_run[name] = results
    table = format_table(rows, seeds)
    minutes = (time.perf_counter() - t0) / 60
    text = (f"Synthetic MovieGraphs-layout corpus ({settings['num_movies']} movies), test split; "
            f"seeds {seeds}; {minutes:.1f} min on {jax.device_count()} "
            f"{jax.devices()[0].platform} device(s). Interaction columns of the character "
            "settings are given the true pair; Char. is the pair given the interaction.\n\n"
            f"{table}\n")
    (out / "results.md").write_text(text)
    (out / "results.json").write_text(json.dumps(
        {"settings": settings, "seeds": seeds, "rows": dict(rows), "per_seed": per_run,
         "minutes": minutes, "builder_dir": builder_dir}, indent=2, default=float))
    print("\n" + text)
    return {"rows": dict(rows), "baselines": random_rows, "minutes": minutes}
