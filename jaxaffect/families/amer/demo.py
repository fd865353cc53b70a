"""AMER on the synthetic MEmoR-layout corpus (`jaxaffect demo amer [--quick] [--full]`).

generate the corpus (jaxaffect.families.amer.synthetic) -> build `memor` TFRecords (official
split) -> train MDL, MDL with personality and AMER (``--full``: every Table 3 row) with the
generic trainer, class-balanced sampling and early stopping on validation micro-F1 -> evaluate
the best validation checkpoint on test -> the majority-class baseline -> results.md /
results.json (jaxaffect.demo_runner) and the trainer's figures.

The corpus is SYNTHETIC (docs/synthetic_memor.md): its numbers say the code finds the planted
context, propagation and personality cues, not how a model does on MEmoR.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import ml_collections
import numpy as np

from jaxaffect.demo_runner import Arm, Demo
from jaxaffect.families.amer.configs import amer as amer_config

HEADLINE = ("mdl", "mdl_personality", "amer")
LABELS = {"mdl": "MDL", "mdl_personality": "MDL with personality", "mdae": "MDAE",
          "tfn": "BiLSTM+TFN", "lmf": "BiLSTM+LMF", "dialoguegcn": "DialogueGCN",
          "amer_no_personality": "AMER w/o personality",
          "amer_no_intra": "AMER w/o intra-personal",
          "amer_no_inter": "AMER w/o inter-personal", "amer": "AMER"}
TABLE_KEYS = (("micro_f1", "Micro-F1"), ("macro_f1", "Macro-F1"),
              ("weighted_f1", "Weighted-F1"), ("non_speaker/micro_f1", "Non-speakers micro-F1"),
              ("avail_missing/micro_f1", "Missing-modality micro-F1"))


def demo_config(model: str, builder_dir: str, settings: dict[str, Any], seed: int
                ) -> ml_collections.ConfigDict:
    """`configs/amer/amer.py:model=<model>,labels=fine` at the demo's sizes, on one device."""
    config = amer_config.get_config(f"model={model},labels=fine")
    config.seed = seed
    config.data.builder_dir = builder_dir
    w = settings["width"]
    m = config.model
    m.audio_sizes = m.text_sizes = m.visual_sizes = (2 * w, w)
    m.personality_sizes = (w,)
    m.fusion_size = 2 * w
    m.classifier_sizes = (w,)
    config.optimizer.learning_rate = settings["lr"]
    t = config.training
    t.num_epochs = settings["epochs"]
    t.batch_size = settings["batch"]
    t.early_stop_evals = settings["patience"]
    t.log_every_steps = 50
    config.mesh.data, config.mesh.fsdp, config.mesh.num_devices = 1, 1, 1  # one device
    return config


class AMERDemo(Demo):
    """MDL, MDL with personality and AMER (all Table 3 rows with --full)."""

    tag = "[amer demo]"
    table_keys = TABLE_KEYS

    def settings(self, quick: bool) -> dict[str, Any]:
        """Corpus size and training settings (quick: under 2 minutes on a 2-core CPU)."""
        if quick:
            return {"annotations": 480, "epochs": 25, "patience": 8, "width": 32, "batch": 16,
                    "lr": 2e-3}
        return {"annotations": 1600, "epochs": 60, "patience": 15, "width": 64, "batch": 16,
                "lr": 1e-3}

    def intro(self, settings: dict[str, Any]) -> str:
        return (f"SYNTHETIC corpus ({settings['annotations']} annotations), not MEmoR: see "
                "docs/synthetic_memor.md")

    def prepare(self, data_home: str, settings: dict[str, Any]) -> dict[str, str]:
        """Writes and builds the synthetic corpus (the build is reused when present)."""
        from jaxaffect.data.build import build_dataset
        from jaxaffect.data.records import builder_dir_for
        from jaxaffect.families.amer.synthetic import GENERATOR_VERSION, synthesize

        # The generator version is part of the folder: a changed generator never reuses old
        # builds.
        home = Path(data_home) / f"synthetic_memor_{settings['annotations']}_v{GENERATOR_VERSION}"
        tfds_dir = home / "tfds"
        try:
            return {"memor": builder_dir_for(str(tfds_dir), "memor/official")}
        except FileNotFoundError:
            pass
        manual = home / "manual"
        if not (manual / "anno.json").exists():
            synthesize(str(manual), size=settings["annotations"], seed=0)
        return {"memor": build_dataset("memor", str(manual), str(tfds_dir), "tfrecord",
                                       config="official")}

    def baselines(self, data: dict[str, str], settings: dict[str, Any]
                  ) -> list[tuple[str, dict[str, dict[str, float]]]]:
        """Predicting the most frequent training emotion for every test example."""
        from jaxaffect.families.amer import batches as ab
        from jaxaffect.families.amer.scores import emotion_scores
        from jaxaffect.task import get_task

        task = get_task(demo_config("mdl", data["memor"], settings, 0))
        key = ab.LABEL_KEYS[task.spec.labels]
        train = np.array([int(e[key]) for e in task.examples("train")])
        majority = int(np.bincount(train, minlength=len(task.class_names)).argmax())
        test = [ab.Transform(task.spec)(e) for e in task.examples("test")]
        labels = np.array([int(e["label"]) for e in test])
        res = emotion_scores(labels, np.full_like(labels, majority), task.class_names,
                             target_modalities=np.stack([e["target_modalities"] for e in test]),
                             speaks=np.array([bool(e["speaks_in_segment"]) for e in test]))
        return [(f"majority class ({task.class_names[majority]})",
                 {k: {"mean": v, "std": 0.0, "n": 1} for k, v in res.items()})]

    def arms(self, settings: dict[str, Any]) -> list[Arm]:
        names = amer_config.TABLE3_MODELS if settings.get("full") else HEADLINE

        def config_fn(model):
            return lambda data, settings, seed, runs: demo_config(model, data["memor"],
                                                                  settings, seed)

        return [Arm(name, config_fn(name), label=LABELS[name]) for name in names]

    def header(self, settings: dict[str, Any], seeds: list[int], minutes: float,
               devices: str) -> str:
        return (f"Synthetic MEmoR-layout corpus ({settings['annotations']} annotations, 14 "
                f"fine-grained emotions), official split, test; seeds {seeds}; {minutes:.1f} "
                f"min on {devices}. Non-speakers: the target does not speak in the target "
                "segment; missing-modality: the target entry lacks at least one modality.")
