"""AV-CPNet on synthetic short videos (`jaxaffect demo avcpnet [--quick] [--full]`).

generate real encoded mp4 files with audio in the eMotions layout
(jaxaffect.families.avcpnet.synthetic) -> build them with the `emotions` builder (JPEG frames,
16 kHz audio in TFRecords) -> train the visual-only, audio-only and full AV-CPNet rows of
Table 7 at a demo size end to end from pixels and waveforms with the generic trainer -> evaluate
the best validation checkpoint on test -> the majority-class baseline -> results.md /
results.json (jaxaffect.demo_runner) and the trainer's figures. ``--full`` adds the other
Table 7 rows (audio+visual, +CAF, +SF).

The corpus is SYNTHETIC (docs/synthetic_emotions.md): some clips carry the emotion cue in
the video only, some in the audio only, so fusion should beat either branch; the numbers say
the code learns the planted cues from raw media, not how a model does on eMotions.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import ml_collections
import numpy as np

from jaxaffect.demo_runner import Arm, Demo
from jaxaffect.families.avcpnet.configs import avcpnet as avcp_config

HEADLINE = ("visual", "audio", "epce")
FULL = ("audio", "visual", "av", "caf", "sf", "epce")
LABELS = {"audio": "Audio (ResNet on MFCC)", "visual": "Visual (Video Swin)",
          "av": "Audio + Visual (concatenation)", "caf": "+ CAF layer", "sf": "+ SF layer",
          "epce": "AV-CPNet (+ EP-CE loss)"}
TABLE_KEYS = (("accuracy", "Accuracy"), ("weighted_f1", "WA-F1"), ("macro_f1", "Macro-F1"))


def demo_config(row: str, builder_dir: str, settings: dict[str, Any], seed: int
                ) -> ml_collections.ConfigDict:
    """`configs/avcpnet/avcpnet.py:row=<row>,size=demo,data=synthetic` at the demo's training
    settings, on one device."""
    config = avcp_config.get_config(f"row={row},size=demo,data=synthetic")
    config.seed = seed
    config.data.builder_dir = builder_dir
    config.data.workers = settings["workers"]
    config.optimizer.learning_rate = settings["lr"]
    t = config.training
    t.num_epochs = settings["epochs"]
    t.batch_size = settings["batch"]
    t.log_every_steps = 20
    config.mesh.data, config.mesh.fsdp, config.mesh.num_devices = 1, 1, 1  # one device
    return config


class AVCPNetDemo(Demo):
    """Visual-only, audio-only and AV-CPNet (every Table 7 row with --full)."""

    tag = "[avcpnet demo]"
    table_keys = TABLE_KEYS

    def settings(self, quick: bool) -> dict[str, Any]:
        """Corpus size and training settings (quick: under 3 minutes on a 2-core CPU)."""
        if quick:
            return {"clips": 120, "epochs": 6, "batch": 16, "lr": 2e-3, "workers": 0}
        # About 490 steps: the small visual transformer needs a few hundred steps to pick up
        # the colour cue. 720 clips x 18 epochs rather than 360 x 36 (the same steps): with
        # 216 training clips the audio branch memorised the training clips whose audio
        # carries no cue, and the fused model learned that instead of reading the video
        # (docs/avcpnet.md, Training)
        return {"clips": 720, "epochs": 18, "batch": 16, "lr": 2e-3, "workers": 0}

    def intro(self, settings: dict[str, Any]) -> str:
        return (f"SYNTHETIC short videos ({settings['clips']} mp4 clips with audio), not "
                "eMotions: see docs/synthetic_emotions.md")

    def prepare(self, data_home: str, settings: dict[str, Any]) -> dict[str, str]:
        """Writes and builds the synthetic corpus (the build is reused when present)."""
        from jaxaffect.data.build import build_dataset
        from jaxaffect.data.records import builder_dir_for
        from jaxaffect.families.avcpnet.synthetic import (
            GENERATOR_VERSION,
            TRUTH_FILE,
            synthesize,
        )

        # The generator version is part of the folder: a changed generator never reuses old
        # builds.
        home = Path(data_home) / f"synthetic_emotions_{settings['clips']}_v{GENERATOR_VERSION}"
        tfds_dir, manual = home / "tfds", home / "manual"
        if (manual / TRUTH_FILE).exists():  # truth.csv: the kind of every clip (analysis)
            try:
                return {"emotions": builder_dir_for(str(tfds_dir), "emotions/full"),
                        "truth": str(manual)}
            except FileNotFoundError:
                pass
        if not (manual / "emotions.csv").exists():
            synthesize(str(manual), size=settings["clips"], seed=0, progress=self.progress)
        return {"emotions": build_dataset("emotions", str(manual), str(tfds_dir), "tfrecord",
                                          config="full"), "truth": str(manual)}

    def baselines(self, data: dict[str, str], settings: dict[str, Any]
                  ) -> list[tuple[str, dict[str, dict[str, float]]]]:
        """Predicting the most frequent training emotion for every test clip."""
        from jaxaffect import metrics
        from jaxaffect.families.avcpnet.task import video_labels
        from jaxaffect.task import get_task

        task = get_task(demo_config("epce", data["emotions"], settings, 0))

        def labels(split: str) -> np.ndarray:
            return np.array(video_labels(task.examples(split), task.builder_dir)[1])

        train, test = labels("train"), labels("test")
        names = task.class_names
        majority = int(np.bincount(train, minlength=len(names)).argmax())
        res = metrics.classification_metrics(test, np.full_like(test, majority), len(names),
                                             names)
        return [(f"majority class ({names[majority]})",
                 {k: {"mean": v, "std": 0.0, "n": 1} for k, v in res.items()})]

    def arms(self, settings: dict[str, Any]) -> list[Arm]:
        rows = FULL if settings.get("full") else HEADLINE

        def config_fn(row):
            return lambda data, settings, seed, runs: demo_config(row, data["emotions"],
                                                                  settings, seed)

        return [Arm(row, config_fn(row), label=LABELS[row]) for row in rows]

    def analysis(self, out: Path, data: dict[str, str], settings: dict[str, Any],
                 seeds: list[int]) -> str:
        """Test accuracy by kind of clip (truth.csv; `by_kind`), as a table and as
        accuracy_by_kind.png in `out`."""
        from jaxaffect.families.avcpnet.by_kind import GROUPS, by_kind, format_by_kind
        from jaxaffect.families.avcpnet.synthetic import read_summary, read_truth
        from jaxaffect.plots import plot_grouped_bars

        arms = [a.name for a in self.arms(settings)]
        table, sizes = by_kind(out, arms, seeds, read_truth(data["truth"]))
        plot_grouped_bars({f"{label}\n({sizes[key]} clips)".replace(", ", ",\n"):
                           {LABELS[a]: [100 * v for v in table[a][key]] for a in arms}
                           for key, label in GROUPS},
                          out / "accuracy_by_kind.png", ylabel="test accuracy (%)",
                          title=f"test accuracy by kind of clip, seeds {seeds}")
        ceiling = read_summary(data["truth"])["oracle_accuracy"]["test"]
        return ("Test accuracy (%) by kind of clip (truth.csv; `jaxaffect.families.avcpnet."
                "by_kind`): which stream carries the class, and what the other one shows. "
                "Where both streams show two different classes no model can know which is "
                "true: the ceilings of a reader that knows the cues are, on this test split, "
                f"{100 * ceiling['video']:.1f} reading the video, {100 * ceiling['audio']:.1f} "
                f"the audio, {100 * ceiling['fused']:.1f} both (docs/synthetic_emotions.md)."
                "\n\n" + format_by_kind(table, sizes, LABELS))

    def header(self, settings: dict[str, Any], seeds: list[int], minutes: float,
               devices: str) -> str:
        return (f"Synthetic short videos in the eMotions layout ({settings['clips']} clips, 6 "
                f"emotions, 64x64 px, 2-4 s, built at 128 px short side), test split; seeds "
                f"{seeds}; {minutes:.1f} min on {devices}. Demo-size models trained end to end "
                "from JPEG frames and MFCC: see docs/avcpnet.md for the sizes.")
