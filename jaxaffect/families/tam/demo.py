"""`jaxaffect demo tam`: time-sync-comment pretraining, then few-label fine-tuning, with and
without the pretraining, on the synthetic TAM corpus (docs/synthetic_tam.md).

Steps: write the corpus (comment videos + labelled videos sharing hidden per-segment emotions)
-> build it with the `bilibili_tsc` (config `custom`) and `video_emotion8` builders -> pretrain
the CTM encoder with the video-TSC decoder (Eq. 10, emotional-word masking, both tasks) ->
fine-tune on a few labels per class from the pretrained encoder (the paper's two learning rates)
and, as the baseline, the same model from a random initialisation -> evaluate both on the test
list (checkpoints chosen on the validation carve) -> `results.md` / `results.json` and figures.
The numbers are whatever the runs give; nothing is tuned toward a result.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from jaxaffect.data.build import data_home as default_data_home
from jaxaffect.metrics import mean_std

# Demo scale: small model, short runs. The learning rates are raised from the paper's (1e-4
# from scratch; 1e-5 fusion / 1e-4 head when fine-tuning) by the same factor for both arms,
# because the demo trains for minutes, not 100 epochs.
MODEL = dict(width=64, num_layers=2, num_heads=4, mlp_dim=0, max_segments=32,
             dropout_rate=0.1)


def demo_settings(quick: bool) -> dict[str, Any]:
    if quick:
        return dict(num_tsc_videos=40, num_labelled=160, labels_per_class=4,
                    pretrain_epochs=6, finetune_epochs=25, batch_size=8)
    return dict(num_tsc_videos=100, num_labelled=240, labels_per_class=5,
                pretrain_epochs=8, finetune_epochs=40, batch_size=8)


def prepare_corpus(data_home: str, settings: dict[str, Any]) -> tuple[str, str]:
    """Writes (or reuses) the corpus and builds both parts; returns (tsc_dir, labelled_dir)."""
    from jaxaffect.data.build import build_dataset
    from jaxaffect.families.tam.synthetic import GENERATOR_VERSION, write_tam_corpus

    name = (f"synthetic_tam_{settings['num_tsc_videos']}_{settings['num_labelled']}"
            f"_v{GENERATOR_VERSION}")
    root = Path(data_home).expanduser() / name
    summary = write_tam_corpus(str(root / "corpus"), num_tsc_videos=settings["num_tsc_videos"],
                               num_labelled=settings["num_labelled"], seed=0)
    paths = summary["paths"]
    tsc = build_dataset("bilibili_tsc", paths["tsc"], str(root / "tfds"), config="custom")
    labelled = build_dataset("video_emotion8", paths["labelled"], str(root / "tfds"))
    return tsc, labelled


def _model(c, model: dict[str, Any]) -> None:
    for k, v in model.items():
        c.model[k] = v


def pretrain_config(tsc_dir: str, settings: dict[str, Any], seed: int):
    from jaxaffect.families.tam.pretrain_task import pretrain_config as base

    c = base("masking=emotional,tasks=word+time,lambda=1:1")
    c.data.builder_dir = tsc_dir
    c.data.num_segments = 16
    c.data.max_comments = 16
    c.data.validation_fraction = 0.1
    _model(c, MODEL)
    c.model.decoder_layers = 2
    c.optimizer.learning_rate = 1e-3
    c.optimizer.decay_every_epochs = 0
    c.training.num_epochs = settings["pretrain_epochs"]
    c.training.batch_size = settings["batch_size"]
    c.training.log_every_steps = 10
    c.training.checkpoint_every_steps = 0
    c.seed = seed
    return c


def finetune_config(labelled_dir: str, settings: dict[str, Any], seed: int,
                    pretrained: str | None):
    from jaxaffect.families.tam.task import default_config

    if pretrained:
        c = default_config(f"dataset=ve8,split=-1,pretrained={pretrained}", finetune=True)
        c.optimizer.param_groups = (("^encoder/", 1e-4), ("^head/", 1e-3))
    else:
        c = default_config("dataset=ve8,split=-1")
    c.data.builder_dir = labelled_dir
    c.data.num_segments = 32
    c.data.train_per_class = settings["labels_per_class"]
    _model(c, MODEL)
    c.optimizer.learning_rate = 1e-3
    c.training.num_epochs = settings["finetune_epochs"]
    c.training.batch_size = settings["batch_size"]
    c.training.log_every_steps = 10
    c.training.checkpoint_every_steps = 0
    c.seed = seed
    return c


def format_table(rows: list[tuple[str, list[float]]], seeds: list[int]) -> str:
    head = "| model | test accuracy (%) | test macro-F1 (%) |\n|---|---|---|\n"
    lines = []
    for name, results in rows:
        acc = [100 * r["accuracy"] for r in results]
        f1 = [100 * r["macro_f1"] for r in results]
        if len(seeds) > 1:  # sample std over seeds, as everywhere in jaxaffect
            (ma, sa), (mf, sf) = mean_std(acc), mean_std(f1)
            cell = (f"{ma:.2f} ± {sa:.2f}", f"{mf:.2f} ± {sf:.2f}")
        else:
            cell = (f"{acc[0]:.2f}", f"{f1[0]:.2f}")
        lines.append(f"| {name} | {cell[0]} | {cell[1]} |")
    return head + "\n".join(lines) + "\n"


def run_tam_demo(workdir: str = "demo_runs/tam", *, quick: bool = False,
                 data_home: str | None = None, progress: bool = True,
                 seeds: list[int] | tuple[int, ...] = (0,)) -> dict[str, Any]:
    from jaxaffect.evaluate import evaluate_run
    from jaxaffect.train import train

    t0 = time.perf_counter()
    seeds = list(seeds)
    settings = demo_settings(quick)
    out = Path(workdir)
    out.mkdir(parents=True, exist_ok=True)
    data_home = data_home or default_data_home()
    tsc_dir, labelled_dir = prepare_corpus(data_home, settings)
    print(f"[tam demo] corpus built: {tsc_dir}, {labelled_dir} "
          f"({time.perf_counter() - t0:.0f} s)", flush=True)
    results: dict[str, list[dict]] = {"from scratch": [], "pretrained (TSC)": []}
    pretrain_summaries = []
    for seed in seeds:
        pre_dir = out / "pretrain" / f"seed_{seed}"
        print(f"[tam demo] pretraining (seed {seed}) in {pre_dir}", flush=True)
        pre = train(pretrain_config(tsc_dir, settings, seed), str(pre_dir), progress=progress)
        pretrain_summaries.append(pre.get("best_validation", {}))
        for arm, pretrained in (("from scratch", None), ("pretrained (TSC)", str(pre_dir))):
            run_dir = out / ("scratch" if pretrained is None else "finetune") / f"seed_{seed}"
            config = finetune_config(labelled_dir, settings, seed, pretrained)
            print(f"[tam demo] fine-tuning {arm} (seed {seed}) in {run_dir}", flush=True)
            train(config, str(run_dir), progress=progress)
            result = evaluate_run(config, str(run_dir), "test", "best")
            results[arm].append(result["metrics"])
    table = format_table(list(results.items()), seeds)
    chance = 1 / 8
    text = (f"# jaxaffect demo tam\n\nSynthetic TAM corpus ({settings['num_tsc_videos']} comment "
            f"videos, {settings['num_labelled']} labelled videos; not Bilibili or VE-8 data). "
            f"Fine-tuning uses {settings['labels_per_class']} labelled videos per class "
            f"(8 classes); test split of the labelled videos; seeds {seeds}; chance "
            f"{100 * chance:.1f}%.\n\n" + table +
            f"\nPretraining validation (last seed): "
            f"{json.dumps({k: round(v, 4) for k, v in pretrain_summaries[-1].items()})}\n"
            f"\nWall time {time.perf_counter() - t0:.0f} s.\n")
    from jaxaffect.plots import plot_bars

    plot_bars({arm: [100 * r["accuracy"] for r in rs] for arm, rs in results.items()},
              out / "test_accuracy.png", ylabel="test accuracy (%)", reference=100 * chance,
              title=f"{settings['labels_per_class']} labels per class, seeds {seeds}")
    (out / "results.md").write_text(text)
    payload = {"settings": settings, "seeds": seeds, "test": results,
               "pretraining_validation": pretrain_summaries,
               "wall_seconds": time.perf_counter() - t0}
    (out / "results.json").write_text(json.dumps(payload, indent=2, default=float))
    print(text, flush=True)
    return payload
