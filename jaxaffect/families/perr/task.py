"""PERR: pairwise emotional relationship recognition on ERATO (SMTA and its Table 3 baselines).

The configs are `jaxaffect/families/perr/configs/` (`configs/perr/` links there).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jaxaffect import losses, metrics
from jaxaffect.config_loading import resolve_builder_dir
from jaxaffect.families.perr import erato_format as ef
from jaxaffect.families.perr import pipeline
from jaxaffect.families.perr.losses import perr_loss
from jaxaffect.task import Task


class PERRTask(Task):
    host_keys = ("clip_id",)

    def __init__(self, config: ml_collections.ConfigDict):
        super().__init__(config)
        self.builder_dir = resolve_builder_dir(config.data)
        self.fine = config.labels == "fine"
        self.label_key = "label" if self.fine else "coarse_label"
        self.class_names = ef.FINE_LABELS if self.fine else ef.COARSE_LABELS
        self._dims: dict[str, int] | None = None
        self.class_weights = None
        if config.loss.class_weighting:
            counts = self.class_counts("train")
            self.class_weights = jnp.asarray(losses.inverse_frequency_weights(counts))

    # -- data ---------------------------------------------------------------------------------
    def stream_dims(self) -> dict[str, int]:
        if self._dims is None:
            self._dims = pipeline.stream_dims(self.builder_dir)
        return self._dims

    def dataset(self, split, *, train, seed, num_epochs, process_index, process_count):
        d, t = self.config.data, self.config.training
        return pipeline.make_dataset(
            self.builder_dir, split, batch_size=t.batch_size, max_steps=d.max_steps,
            shuffle=train, seed=seed, num_epochs=num_epochs,
            validation_fraction=d.validation_fraction, process_index=process_index,
            process_count=process_count)

    def num_examples(self, split: str) -> int:
        return pipeline.split_size(self.builder_dir, split, self.config.data.validation_fraction)

    def class_counts(self, split: str) -> np.ndarray:
        return pipeline.class_counts(self.builder_dir, split, self.label_key,
                                     self.config.data.validation_fraction)

    def dummy_batch(self, batch_size: int) -> dict[str, Any]:
        t = self.config.data.max_steps
        dims = self.stream_dims()
        return {
            "streams": {s: np.zeros((batch_size, t, dims[s]), np.float32) for s in ef.STREAMS},
            "masks": {s: np.ones((batch_size, t), bool) for s in ef.STREAMS},
            "step_mask": np.ones((batch_size, t), bool),
            "label": np.zeros((batch_size,), np.int32),
            "coarse_label": np.zeros((batch_size,), np.int32),
            "valid": np.ones((batch_size,), bool),
        }

    # -- model --------------------------------------------------------------------------------
    def make_model(self):
        from jaxaffect.families.perr.model import PERRModel

        m = self.config.model
        return PERRModel(fusion=m.fusion, attention=m.attention, hidden_size=m.hidden_size,
                         num_heads=m.num_heads, num_classes=len(self.class_names),
                         dropout_rate=m.dropout_rate, smta_impl=m.get("smta_impl", "parallel"))

    def _apply(self, model, params, batch, *, train: bool, rng=None, **kw):
        rngs = {"dropout": rng} if rng is not None else None
        return model.apply({"params": params}, batch["streams"], batch["masks"],
                           batch["step_mask"], train=train, rngs=rngs, **kw)

    def init_variables(self, model, rng, batch):
        params_rng, dropout_rng = jax.random.split(rng)
        return model.init({"params": params_rng, "dropout": dropout_rng}, batch["streams"],
                          batch["masks"], batch["step_mask"], train=False)

    def loss(self, model, params, batch, rng, train, step=None):
        del step
        out = self._apply(model, params, batch, train=train, rng=rng)
        labels = batch[self.label_key]
        weights = batch["valid"].astype(jnp.float32)
        loss, aux = perr_loss(out["logits"], out["modality_logits"], labels,
                                     weights=weights, class_weights=self.class_weights)
        correct = (jnp.argmax(out["logits"], -1) == labels).astype(jnp.float32)
        aux = dict(aux)
        aux["accuracy"] = jnp.sum(correct * weights) / jnp.maximum(jnp.sum(weights), 1.0)
        return loss, aux

    def predict(self, model, params, batch):
        out = self._apply(model, params, batch, train=False)
        return {"probs": jax.nn.softmax(out["logits"].astype(jnp.float32), axis=-1),
                "modality_probs": jax.nn.softmax(out["modality_logits"].astype(jnp.float32),
                                                 axis=-1)}

    def attention_maps(self, model, params, batch) -> np.ndarray:
        out = self._apply(model, params, batch, train=False, return_attention=True)
        return np.asarray(out["attention"])

    def write_clip_figure(self, model, params, batch, path: str, title: str,
                          predicted: str) -> str | None:
        """The clip's per-step attention over the modality tokens (`predict --attention`), or
        None when the model's fusion has no attention (the LSTM baselines)."""
        from jaxaffect.plots import plot_attention

        out = self._apply(model, params, batch, train=False, return_attention=True)
        if "attention" not in out:
            return None
        length = int(np.asarray(batch["step_mask"][0]).sum())
        plot_attention(np.asarray(out["attention"])[0, :length],
                       list(ef.STREAMS) + ["h~ (context)"], path, title=title,
                       predicted_label=predicted)
        return path

    # -- evaluation ---------------------------------------------------------------------------
    def evaluate(self, outputs, host):
        labels = outputs[self.label_key].astype(np.int32)
        preds = outputs["probs"].argmax(-1).astype(np.int32)
        result = metrics.classification_metrics(labels, preds, len(self.class_names),
                                                self.class_names)
        if self.fine:  # the same predictions read on the coarse label set (paper Table 1)
            coarse = metrics.classification_metrics(
                ef.FINE_TO_COARSE_ID[labels], ef.FINE_TO_COARSE_ID[preds],
                len(ef.COARSE_LABELS), ef.COARSE_LABELS)
            result.update({f"coarse/{k}": v for k, v in coarse.items()})
        records = []
        for i, clip_id in enumerate(host.get("clip_id", np.arange(len(labels)))):
            records.append({
                "clip_id": str(clip_id),
                "label": self.class_names[labels[i]],
                "prediction": self.class_names[preds[i]],
                "probabilities": {n: round(float(p), 6)
                                  for n, p in zip(self.class_names, outputs["probs"][i])},
            })
        return result, records

    def write_figures(self, outputs, metrics_, out_dir, split):
        from jaxaffect.plots import plot_confusion_matrix

        labels = outputs[self.label_key].astype(np.int32)
        preds = outputs["probs"].argmax(-1).astype(np.int32)
        n = len(self.class_names)
        cm = np.asarray(metrics.confusion_matrix(labels, preds, n))
        path = str(Path(out_dir) / f"confusion_{split}.png")
        plot_confusion_matrix(cm, self.class_names, path,
                              title=f"{self.config.get('name', 'perr')} on {split} "
                                    f"(macro-F1 {metrics_['macro_f1']:.3f})")
        paths = [path]
        if self.fine:
            cm3 = np.asarray(metrics.confusion_matrix(ef.FINE_TO_COARSE_ID[labels],
                                                      ef.FINE_TO_COARSE_ID[preds], 3))
            p3 = str(Path(out_dir) / f"confusion_{split}_coarse.png")
            plot_confusion_matrix(cm3, ef.COARSE_LABELS, p3,
                                  title=f"{self.config.get('name', 'perr')} on {split}, coarse")
            paths.append(p3)
        return paths

    # -- single clips (predict command) --------------------------------------------------------
    def load_clip(self, path: str) -> dict[str, Any]:
        """One per-clip feature file -> a batch of one, padded/cropped like the training data."""
        clip = ef.read_clip(path, expected_dims=self.stream_dims())
        example = {"streams": clip.features, "masks": clip.masks,
                   "num_steps": np.int32(clip.num_steps)}
        ex = pipeline.pad_or_crop(example, self.config.data.max_steps)
        batch = {
            "streams": {s: ex["streams"][s][None] for s in ef.STREAMS},
            "masks": {s: ex["masks"][s][None] for s in ef.STREAMS},
            "step_mask": ex["step_mask"][None],
        }
        return batch

    def majority_baseline(self, split: str) -> tuple[dict[str, float], int]:
        """Metrics of always predicting the most frequent training class (no model)."""
        majority = int(np.argmax(self.class_counts("train")))
        counts = self.class_counts(split)
        labels = np.repeat(np.arange(len(counts)), counts).astype(np.int32)
        preds = np.full_like(labels, majority)
        result = metrics.classification_metrics(labels, preds, len(self.class_names),
                                                self.class_names)
        if self.fine:
            coarse = metrics.classification_metrics(
                ef.FINE_TO_COARSE_ID[labels], ef.FINE_TO_COARSE_ID[preds],
                len(ef.COARSE_LABELS), ef.COARSE_LABELS)
            result.update({f"coarse/{k}": v for k, v in coarse.items()})
        return result, majority
