"""The LIReC pipeline on the synthetic MovieGraphs-layout corpus (`jaxaffect demo lirec`).

generate the corpus (jaxaffect.families.lirec.synthetic) -> build `moviegraphs_lirec` TFRecords ->
train interactions-only, characters with full supervision and characters with weak supervision
(multinomial pair sampling, hard negatives after a burn-in) with the generic trainer -> evaluate
the best validation checkpoint on test -> exact random baselines -> results.md / results.json
(jaxaffect.demo_runner) and the trainer's figures (training curves; relationship confusion
matrices for settings that predict them).

The corpus is SYNTHETIC (docs/synthetic_lirec.md): its numbers say the code learns the planted
cues, not how a model does on MovieGraphs.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import ml_collections

from jaxaffect.demo_runner import Arm, Demo
from jaxaffect.families.lirec.configs import characters, interactions
from jaxaffect.families.lirec.task import DATASET_NAME

# (run name, config, config overrides of the loss)
DEMO_RUNS: tuple[tuple[str, Callable[[], ml_collections.ConfigDict], dict[str, str]], ...] = (
    ("interactions", interactions.get_config, {}),
    ("characters_full", lambda: characters.get_config("setting=characters_full"), {}),
    ("characters_weak", lambda: characters.get_config("setting=characters_weak"),
     {"pair_selection": "multinomial", "negatives": "sum_max"}))
TABLE_KEYS = (("interaction_top1", "Int. top-1"), ("interaction_soft_top1", "Int. soft top-1"),
              ("interaction_top5", "Int. top-5"), ("character_accuracy", "Char."),
              ("character_accuracy_either_direction", "Char. (either direction)"),
              ("joint_accuracy", "Joint"))


def demo_config(base: Callable[[], ml_collections.ConfigDict], builder_dir: str,
                settings: dict[str, Any], seed: int, loss: dict[str, str]
                ) -> ml_collections.ConfigDict:
    """`base()` at the demo's sizes, on `builder_dir`, on one device."""
    config = base()
    config.seed = seed
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


class LIReCDemo(Demo):
    """Interactions, and character pairs with full and with weak supervision."""

    tag = "[lirec demo]"
    table_keys = TABLE_KEYS

    def settings(self, quick: bool) -> dict[str, Any]:
        """Corpus size and training settings (quick: about 2 minutes on a 2-core CPU)."""
        if quick:
            return {"num_movies": 10, "small": False, "epochs": 15, "burn_in": 8, "dim": 64,
                    "batch": 16, "lr": 3e-3}
        return {"num_movies": 24, "small": False, "epochs": 40, "burn_in": 20, "dim": 128,
                "batch": 32, "lr": 2e-3}

    def intro(self, settings: dict[str, Any]) -> str:
        return (f"SYNTHETIC corpus ({settings['num_movies']} movies), not MovieGraphs: "
                "see docs/synthetic_lirec.md")

    def prepare(self, data_home: str, settings: dict[str, Any]) -> dict[str, str]:
        """Writes and builds the synthetic corpus (the build is reused when present)."""
        from jaxaffect.data.build import build_dataset
        from jaxaffect.data.records import builder_dir_for
        from jaxaffect.families.lirec.synthetic import GENERATOR_VERSION, write_lirec_corpus

        # The generator version is part of the folder: a changed generator never reuses old
        # builds.
        tag = (f"{settings['num_movies']}{'_small' if settings['small'] else ''}"
               f"_v{GENERATOR_VERSION}")
        home = Path(data_home) / f"synthetic_lirec_{tag}"
        tfds_dir = home / "tfds"
        try:
            return {"lirec": builder_dir_for(str(tfds_dir), DATASET_NAME)}
        except FileNotFoundError:
            pass
        manual = home / "manual"
        write_lirec_corpus(manual, num_movies=settings["num_movies"], seed=0,
                           small=settings["small"])
        return {"lirec": build_dataset(DATASET_NAME, str(manual), str(tfds_dir), "tfrecord")}

    def baselines(self, data: dict[str, str], settings: dict[str, Any]
                  ) -> list[tuple[str, dict[str, dict[str, float]]]]:
        """The exact expected accuracies of uniform guessing, on the test split."""
        from jaxaffect.task import get_task

        random_rows: dict[str, float] = {}
        for _, base, loss in DEMO_RUNS:
            task = get_task(demo_config(base, data["lirec"], settings, 0, loss))
            random_rows.update(task.random_baselines("test"))
        return [("random (exact expectation)",
                 {k: {"mean": v, "std": 0.0, "n": 1} for k, v in random_rows.items()})]

    def arms(self, settings: dict[str, Any]) -> list[Arm]:
        def config_fn(base, loss):
            return lambda data, settings, seed, runs: demo_config(
                base, data["lirec"], settings, seed, loss)

        return [Arm(name, config_fn(base, loss)) for name, base, loss in DEMO_RUNS]

    def header(self, settings: dict[str, Any], seeds: list[int], minutes: float,
               devices: str) -> str:
        return (f"Synthetic MovieGraphs-layout corpus ({settings['num_movies']} movies), test "
                f"split; seeds {seeds}; {minutes:.1f} min on {devices}. Interaction columns of "
                "the character settings are given the true pair; Char. is the pair given the "
                "interaction.")
