"""`jaxaffect demo`: the whole PERR pipeline on the embedded synthetic corpus.

generate the synthetic ERATO-layout corpus -> build TFRecords -> majority baseline, plain LSTM
and SMTA(transformer) -> evaluate on the test split -> results table (micro/macro-F1 on the
fine and coarse label sets) and confusion-matrix / attention / training-curve images. The
shared `jaxaffect.demo_runner.run_demo` runs it.

The corpus is SYNTHETIC (docs/synthetic_erato.md); its numbers say the code learns cross-modal,
time-ordered cues, not how a model does on ERATO.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import ml_collections
import numpy as np

from jaxaffect.demo_runner import Arm, Demo
from jaxaffect.families.perr.configs import lstm, smta

CONFIG_ARG = "attention=transformer,labels=fine,data=synthetic"


def demo_config(get_config: Callable[[str], ml_collections.ConfigDict], name: str,
                builder_dir: str, settings: dict[str, Any], seed: int
                ) -> ml_collections.ConfigDict:
    """A config module's config at demo size, on one device."""
    config = get_config(CONFIG_ARG)
    config.name = name
    config.seed = seed
    config.data.builder_dir = builder_dir
    config.model.hidden_size = settings["hidden"]
    config.training.num_epochs = settings["epochs"]
    config.training.log_every_steps = 20
    config.optimizer.decay_every_epochs = settings["decay_every"]
    config.mesh.data, config.mesh.fsdp, config.mesh.num_devices = 1, 1, 1  # one device
    return config


def write_attention_figures(config: ml_collections.ConfigDict, run_dir: Path, n: int = 2
                            ) -> None:
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
    params = jax.device_get(state.params)
    weights = setup.task.attention_maps(setup.model, params, dev)
    preds = np.asarray(setup.task.predict(setup.model, params, dev)["probs"]).argmax(-1)
    labels = np.asarray(batch[setup.task.label_key])
    names = setup.task.class_names
    tokens = list(STREAMS) + ["h~ (context)"]
    for i in range(min(n, weights.shape[0])):
        length = int(np.asarray(batch["step_mask"][i]).sum())
        plot_attention(weights[i, :length], tokens, str(run_dir / f"attention_{i}.png"),
                       title=f"SMTA attention, clip {batch['clip_id'][i]}",
                       true_label=names[int(labels[i])], predicted_label=names[int(preds[i])])


class PERRDemo(Demo):
    """Majority class, plain LSTM and SMTA(transformer) on the synthetic ERATO-layout corpus."""

    tag = "[perr demo]"
    table_keys = (("micro_f1", "5-class micro-F1"), ("macro_f1", "5-class macro-F1"),
                  ("coarse/micro_f1", "3-class micro-F1"),
                  ("coarse/macro_f1", "3-class macro-F1"))

    def settings(self, quick: bool) -> dict[str, Any]:
        if quick:
            return {"num_clips": 600, "epochs": 4, "hidden": 32, "decay_every": 0}
        return {"num_clips": 2000, "epochs": 15, "hidden": 64, "decay_every": 10}

    def intro(self, settings: dict[str, Any]) -> str:
        return (f"SYNTHETIC corpus ({settings['num_clips']} clips), not ERATO: "
                "see docs/synthetic_erato.md")

    def prepare(self, data_home: str, settings: dict[str, Any]) -> dict[str, str]:
        """Generates and builds the corpus (both skipped when already done)."""
        from jaxaffect.data.build import build_dataset
        from jaxaffect.families.perr.synthetic import generate_corpus

        home = Path(data_home) / f"synthetic_erato_{settings['num_clips']}"
        manual = home / "manual"
        generate_corpus(str(manual), num_clips=settings["num_clips"], seed=0,
                        progress=self.progress)
        return {"erato": build_dataset("erato", str(manual), str(home / "tfds"), "tfrecord")}

    def baselines(self, data: dict[str, str], settings: dict[str, Any]
                  ) -> list[tuple[str, dict[str, float]]]:
        """Always the most frequent training class (no training: one value for all seeds)."""
        from jaxaffect.evaluate import summarize_seeds
        from jaxaffect.task import get_task

        task = get_task(demo_config(lstm.get_config, "lstm", data["erato"], settings, 0))
        majority, majority_id = task.majority_baseline("test")
        return [(f"majority ({task.class_names[majority_id]})",
                 summarize_seeds([majority]))]

    def arms(self, settings: dict[str, Any]) -> Sequence[Arm]:
        def arm(name: str, get_config: Callable[[str], ml_collections.ConfigDict], **kw) -> Arm:
            return Arm(name, lambda data, s, seed, runs: demo_config(
                get_config, name, data["erato"], s, seed), **kw)

        return (arm("lstm", lstm.get_config),
                arm("smta_transformer", smta.get_config, figures=write_attention_figures))

    def header(self, settings: dict[str, Any], seeds: list[int], minutes: float,
               devices: str) -> str:
        return (f"Synthetic ERATO-layout corpus, {settings['num_clips']} clips, test split; "
                f"seeds {seeds}; {minutes:.1f} min on {devices}")
