"""`jaxaffect demo tam`: time-sync-comment pretraining, then few-label fine-tuning, with and
without the pretraining, on the synthetic TAM corpus (docs/synthetic_tam.md).

Steps (run by `jaxaffect.demo_runner.run_demo`): write the corpus (comment videos + labelled
videos sharing hidden per-segment emotions) -> build it with the `bilibili_tsc` (config
`custom`) and `video_emotion8` builders -> per seed, pretrain the CTM encoder with the video-TSC
decoder (Eq. 10, emotional-word masking, both tasks; arm "pretrain"), train the classifier on a
few labels per class from a random initialisation (arm "scratch") and fine-tune it from that
seed's pretrained encoder with the paper's two learning rates (arm "finetune") -> evaluate both
on the test list (checkpoints chosen on the validation carve) -> `results.md` /
`results.json` and `test_accuracy.png`. The numbers are whatever the runs give; nothing is
tuned toward a result.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import ml_collections

from jaxaffect.demo_runner import Arm, Demo

# Demo scale: small model, short runs. The learning rates are raised from the paper's (1e-4
# from scratch; 1e-5 fusion / 1e-4 head when fine-tuning) by the same factor for both arms,
# because the demo trains for minutes, not 100 epochs.
MODEL = dict(width=64, num_layers=2, num_heads=4, mlp_dim=0, max_segments=32,
             dropout_rate=0.1)
NUM_CLASSES = 8  # VE-8's classes (the labelled part's layout)


def _set_model(c: ml_collections.ConfigDict) -> None:
    for k, v in MODEL.items():
        c.model[k] = v


def _set_training(c: ml_collections.ConfigDict, epochs: int, settings: dict[str, Any],
                  seed: int) -> None:
    c.training.num_epochs = epochs
    c.training.batch_size = settings["batch_size"]
    c.training.log_every_steps = 10
    c.training.checkpoint_every_steps = 0
    c.seed = seed


def pretrain_config(data: dict[str, str], settings: dict[str, Any], seed: int,
                    runs: dict[str, str]) -> ml_collections.ConfigDict:
    """configs/tam/pretrain.py (emotional masking, both tasks 1:1) at demo scale."""
    from jaxaffect.families.tam.configs import pretrain

    del runs
    c = pretrain.get_config("masking=emotional,tasks=word+time,lambda=1:1")
    c.data.builder_dir = data["tsc"]
    c.data.num_segments = 16
    c.data.max_comments = 16
    c.data.validation_fraction = 0.1
    _set_model(c)
    c.model.decoder_layers = 2
    c.optimizer.learning_rate = 1e-3
    c.optimizer.decay_every_epochs = 0
    _set_training(c, settings["pretrain_epochs"], settings, seed)
    return c


def _classifier_config(data: dict[str, str], settings: dict[str, Any], seed: int,
                       pretrained: str | None) -> ml_collections.ConfigDict:
    """configs/tam/ctm.py (or finetune.py from the run `pretrained`) on the labelled videos'
    released lists, `labels_per_class` training videos per class, at demo scale."""
    from jaxaffect.families.tam.configs import ctm, finetune

    if pretrained:
        c = finetune.get_config(f"dataset=ve8,split=-1,pretrained={pretrained}")
        c.optimizer.param_groups = (("^encoder/", 1e-4), ("^head/", 1e-3))
    else:
        c = ctm.get_config("dataset=ve8,split=-1")
    c.data.builder_dir = data["labelled"]
    c.data.num_segments = 32
    c.data.train_per_class = settings["labels_per_class"]
    _set_model(c)
    c.optimizer.learning_rate = 1e-3
    _set_training(c, settings["finetune_epochs"], settings, seed)
    return c


def scratch_config(data: dict[str, str], settings: dict[str, Any], seed: int,
                   runs: dict[str, str]) -> ml_collections.ConfigDict:
    """The classifier from a random initialisation."""
    del runs
    return _classifier_config(data, settings, seed, None)


def finetune_config(data: dict[str, str], settings: dict[str, Any], seed: int,
                    runs: dict[str, str]) -> ml_collections.ConfigDict:
    """The classifier from this seed's pretraining run (`runs["pretrain"]`)."""
    return _classifier_config(data, settings, seed, runs["pretrain"])


class TAMDemo(Demo):
    """The TAM demo's settings, corpus and arms (see the module docstring)."""

    tag = "[tam demo]"
    table_keys = (("accuracy", "test accuracy (%)"), ("macro_f1", "test macro-F1 (%)"))

    def settings(self, quick: bool) -> dict[str, Any]:
        if quick:
            return dict(num_tsc_videos=40, num_labelled=160, labels_per_class=4,
                        pretrain_epochs=6, finetune_epochs=25, batch_size=8)
        return dict(num_tsc_videos=100, num_labelled=240, labels_per_class=5,
                    pretrain_epochs=8, finetune_epochs=40, batch_size=8)

    def intro(self, settings: dict[str, Any]) -> str:
        return (f"synthetic TAM corpus: {settings['num_tsc_videos']} comment videos, "
                f"{settings['num_labelled']} labelled videos (not Bilibili or VE-8 data)")

    def prepare(self, data_home: str, settings: dict[str, Any]) -> dict[str, str]:
        """Writes (or reuses) the corpus and builds both parts: {"tsc", "labelled"}."""
        from jaxaffect.data.build import build_dataset
        from jaxaffect.families.tam.synthetic import GENERATOR_VERSION, write_tam_corpus

        name = (f"synthetic_tam_{settings['num_tsc_videos']}_{settings['num_labelled']}"
                f"_v{GENERATOR_VERSION}")
        root = Path(data_home).expanduser() / name
        summary = write_tam_corpus(str(root / "corpus"),
                                   num_tsc_videos=settings["num_tsc_videos"],
                                   num_labelled=settings["num_labelled"], seed=0)
        paths = summary["paths"]
        tsc = build_dataset("bilibili_tsc", paths["tsc"], str(root / "tfds"), config="custom")
        labelled = build_dataset("video_emotion8", paths["labelled"], str(root / "tfds"))
        return {"tsc": tsc, "labelled": labelled}

    def arms(self, settings: dict[str, Any]) -> tuple[Arm, ...]:
        del settings
        return (
            Arm("pretrain", pretrain_config, in_table=False),
            Arm("scratch", scratch_config, label="from scratch"),
            Arm("finetune", finetune_config, label="pretrained (TSC)"),
        )

    def header(self, settings: dict[str, Any], seeds: list[int], minutes: float,
               devices: str) -> str:
        return (f"# jaxaffect demo tam\n\nSynthetic TAM corpus ({settings['num_tsc_videos']} "
                f"comment videos, {settings['num_labelled']} labelled videos; not Bilibili or "
                f"VE-8 data). Fine-tuning uses {settings['labels_per_class']} labelled videos "
                f"per class ({NUM_CLASSES} classes); test split of the labelled videos; seeds "
                f"{seeds}; chance {100 / NUM_CLASSES:.1f}%; {minutes:.1f} min on {devices}.\n")

    def footer(self, extra: dict[str, Any]) -> str:
        last = (extra["best_validation"].get("pretrain") or [{}])[-1]
        return (f"\nPretraining validation (last seed): "
                f"{json.dumps({k: round(v, 4) for k, v in last.items()})}\n")

    def figures(self, out: Path, per_arm: dict[str, list[dict]], settings: dict[str, Any],
                seeds: list[int]) -> None:
        from jaxaffect.plots import plot_bars

        labels = {a.name: a.label or a.name for a in self.arms(settings)}
        plot_bars({labels[name]: [100 * r["accuracy"] for r in results]
                   for name, results in per_arm.items()},
                  out / "test_accuracy.png", ylabel="test accuracy (%)",
                  reference=100 / NUM_CLASSES,
                  title=f"{settings['labels_per_class']} labels per class, seeds {seeds}")
