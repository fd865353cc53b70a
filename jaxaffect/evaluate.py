"""Evaluation of a trained run, single-clip prediction, and multi-seed summaries."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import jax
import ml_collections
import numpy as np

from jaxaffect.checkpointing import Checkpoints
from jaxaffect.config_loading import ConfigError, config_from_json
from jaxaffect.errors import FormatError
from jaxaffect.metrics import mean_std
from jaxaffect.run_logging import MetricWriter
from jaxaffect.train import Setup, run_evaluation


def load_run_config(workdir: str) -> ml_collections.ConfigDict:
    path = Path(workdir) / "config.json"
    if not path.exists():
        runs = sorted(p.parent.name for p in Path(workdir).glob("*/config.json"))
        hint = (f"; it holds the runs {', '.join(runs[:4])}: pass one, e.g. --workdir "
                f"{Path(workdir) / runs[0]}" if runs else "")
        raise FileNotFoundError(f"{path}: not found; is {workdir} a training workdir?{hint}")
    return config_from_json(path.read_text())


def restore_state(setup: Setup, workdir: str, which: str = "best") -> tuple[Any, int]:
    ckpts = Checkpoints(workdir, best_metric=setup.task.selection_metric(),
                        best_mode=setup.task.selection_mode())
    try:
        return ckpts.restore_params(setup.abstract_sharded, which)
    finally:
        ckpts.close()


def evaluate_run(config: ml_collections.ConfigDict, workdir: str, split: str = "test",
                 which: str = "best") -> dict[str, Any]:
    """Evaluates the best (or latest) checkpoint of `workdir` on `split` and writes:
    predictions_<split>.jsonl, eval_<split>.json, confusion images and metrics.jsonl records."""
    setup = Setup(config)
    state, step = restore_state(setup, workdir, which)
    metrics, records, outputs = run_evaluation(setup, state.params, split)
    out = Path(workdir)
    if jax.process_index() == 0:
        with (out / f"predictions_{split}.jsonl").open("w") as f:
            for r in records:
                f.write(json.dumps(r) + "\n")
        figures = setup.task.write_figures(outputs, metrics, str(out), split)
        result = {"split": split, "checkpoint": which, "checkpoint_step": int(step),
                  "num_examples": len(records), "metrics": metrics, "figures": figures}
        (out / f"eval_{split}.json").write_text(json.dumps(result, indent=2))
        writer = MetricWriter(out, tensorboard=True)
        writer.write(int(step), {f"{split}/{k}": v for k, v in metrics.items()})
        for fig in figures:
            writer.write_image(f"{split}/{Path(fig).stem}", fig, int(step))
        writer.close()
        return result
    return {"split": split, "metrics": metrics}


class TrainedModel:
    """A trained run's model and parameters on one device, for predictions outside `eval`.

    `predict(batch)` runs the task's pure `predict` on a batch of numpy arrays shaped like the
    task's batches (leading batch axis); `predict_file(path)` reads one clip's feature file
    with the task's reader and returns class probabilities (or regression values).
    """

    def __init__(self, workdir: str, which: str = "best"):
        self.workdir = workdir
        self.config = load_run_config(workdir)
        with self.config.unlocked():
            self.config.mesh.data, self.config.mesh.fsdp, self.config.mesh.model = 1, 1, 1
            self.config.mesh.num_devices = 1
        self.setup = Setup(self.config, steps_per_epoch=1)
        state, self.step = restore_state(self.setup, workdir, which)
        self.params = state.params
        self.task = self.setup.task
        self._predict = jax.jit(lambda params, batch: self.task.predict(
            self.setup.model, params, batch))

    def predict(self, batch: dict[str, Any]) -> dict[str, np.ndarray]:
        """The task's outputs for a batch (a `valid` entry is added when missing)."""
        batch = dict(batch)
        if "valid" not in batch:
            n = len(jax.tree_util.tree_leaves(batch)[0])
            batch["valid"] = np.ones((n,), bool)
        return jax.device_get(self._predict(self.params, batch))

    def predict_file(self, features: str, kind: str | None = None,
                     inputs: dict[str, str] | None = None,
                     figure: str | None = None) -> dict[str, Any]:
        """Predicts one clip from a file: a feature file in the builder's per-clip layout, or
        a video file. A task that reads raw media (`Task.input_kind == "video"`) takes the
        video itself; a task that reads features takes a video when its dataset was made by
        `jaxaffect extract` (the build's metadata records how): the video is extracted the
        same way first. `kind` ("features" or "video"), when given, says which file it is;
        `inputs` are the video's other inputs (e.g. {"subtitles": path, "person": name}).
        `figure`: where to write the model's attention image of the clip, for tasks whose
        models have one (`Task.write_clip_figure`); the result's "figure" says where it went
        (None when the model has none)."""
        task = self.task
        if not hasattr(task, "load_clip"):
            raise ConfigError(f"`predict` on one file is not available for task "
                              f"{self.config.task!r}; use `jaxaffect eval` on a built dataset")
        reads = getattr(task, "input_kind", "features")
        if kind == "features" and reads == "video":
            raise ConfigError(f"task {self.config.task!r} predicts from video files: pass "
                              "--video (not --features)")
        if not Path(features).is_file():
            raise FileNotFoundError(f"{features}: no such file")
        if kind == "video" and reads == "features":
            with tempfile.TemporaryDirectory() as tmp:
                batch = task.load_clip(extract_like_dataset(task, features, inputs or {}, tmp))
        elif inputs:
            raise ConfigError(f"{', '.join(sorted(inputs))} go(es) with --video")
        else:
            batch = task.load_clip(features)
        _refuse_empty_masks(features, batch)
        out = self.predict(batch)
        bad = [k for k, v in out.items()
               if np.issubdtype(np.asarray(v).dtype, np.inexact) and not np.all(np.isfinite(v))]
        if bad:
            peak = max((float(np.max(np.abs(x))) for x in jax.tree_util.tree_leaves(batch)
                        if np.issubdtype(np.asarray(x).dtype, np.floating) and np.size(x)),
                       default=0.0)
            raise FormatError(f"{features}: the model's {', '.join(sorted(bad))} are not "
                              f"finite for these features (largest |value| {peak:.3g}); are "
                              "they on the scale of the training features?")
        step = int(self.step)
        if hasattr(task, "describe_clip"):  # the task words its own prediction
            result = {"features": features, "checkpoint_step": step, **task.describe_clip(out)}
            return self._with_figure(result, batch, features, figure)
        if "probs" not in out:  # regression: one value per target
            values = np.asarray(out["prediction"][0])
            names = list(getattr(task, "target_keys",
                                 [f"target_{i}" for i in range(len(values))]))
            return {"features": features, "checkpoint_step": step,
                    "prediction": ", ".join(f"{n}={v:.4f}" for n, v in zip(names, values)),
                    "values": {n: float(v) for n, v in zip(names, values)},
                    "probabilities": {}}
        probs = np.asarray(out["probs"][0])
        names = task.class_names
        result = {"features": features, "checkpoint_step": step,
                  "prediction": names[int(probs.argmax())],
                  "probabilities": {n: float(p) for n, p in zip(names, probs)}}
        return self._with_figure(result, batch, features, figure)

    def _with_figure(self, result: dict[str, Any], batch: dict[str, Any], features: str,
                     figure: str | None) -> dict[str, Any]:
        """`result` with "figure": the task's attention image written to `figure`."""
        if figure is not None:
            if not hasattr(self.task, "write_clip_figure"):
                raise ConfigError(f"task {self.config.task!r} has no attention image of a clip")
            result["figure"] = self.task.write_clip_figure(
                self.setup.model, self.params, batch, figure,
                f"{Path(features).name}: {self.config.get('name', self.config.task)}",
                result["prediction"])
        return result


def extract_like_dataset(task: Any, video: str, inputs: dict[str, str], out_dir: str) -> str:
    """Extracts `video` into `out_dir` as the task's dataset was extracted (its build's
    `extraction` metadata names the extractor and its settings); returns what the task's
    `load_clip` reads."""
    from jaxaffect import family
    from jaxaffect.data import prepared

    builder_dir = getattr(task, "builder_dir", None)
    record = prepared.load_metadata(builder_dir).get("extraction") if builder_dir else None
    if not record:
        raise ConfigError(f"{builder_dir}: this run's dataset was not made by `jaxaffect "
                          "extract` (its build records no extraction settings), so a video "
                          "cannot be turned into the same features; pass --features")
    name = record.get("extractor")
    extractor = family.extractors().get(name)
    if extractor is None or extractor.one_video is None:
        raise ConfigError(f"{builder_dir}: the dataset was extracted by {name!r}, which this "
                          "installation cannot run on one video")
    unknown = sorted(set(inputs) - set(extractor.inputs))
    if unknown:
        raise ConfigError(f"extractor {name!r} takes no --{unknown[0]} (it takes: "
                          f"{', '.join('--' + i for i in extractor.inputs) or 'the video only'})")
    missing = [i for i in extractor.required if i not in inputs]
    if missing:
        raise ConfigError(f"extractor {name!r} needs --{missing[0]} with --video")
    return family.load(extractor.one_video)(video, record, inputs, out_dir)


def predict_file(workdir: str, features: str, which: str = "best") -> dict[str, Any]:
    """Predicts one clip's feature file with a trained run."""
    return TrainedModel(workdir, which).predict_file(features)


def _refuse_empty_masks(features: str, batch: dict) -> None:
    """A clip with no present input has nothing to predict from. Presence is read from the
    batch's `masks` entry (per-stream masks) when it has one, else from its `*mask` entries."""
    tree = batch["masks"] if isinstance(batch.get("masks"), dict) else {
        k: v for k, v in batch.items() if k.endswith("mask")}
    masks = [np.asarray(v) for v in jax.tree_util.tree_leaves(tree)
             if np.asarray(v).dtype == np.bool_]
    if masks and not any(bool(m.any()) for m in masks):
        raise FormatError(f"{features}: every presence mask is False (no stream is present "
                          "at any step); there is nothing to predict from")


def summarize_seeds(results: list[dict[str, float]], keys: list[str] | None = None
                    ) -> dict[str, dict[str, float]]:
    """mean and std over seeds of every metric present in all results."""
    if not results:
        return {}
    keys = keys or [k for k in results[0] if all(k in r for r in results)]
    out = {}
    for k in keys:
        vals = [float(r[k]) for r in results if isinstance(r.get(k), (int, float))]
        if len(vals) == len(results):
            m, s = mean_std(vals)
            out[k] = {"mean": m, "std": s, "n": len(vals)}
    return out


def seed_workdir(workdir: str, seed: int) -> str:
    return str(Path(workdir) / f"seed_{seed}")
