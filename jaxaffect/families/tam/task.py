"""TAM: affective video classification / regression with the CTM module and its Table 2 baselines.

Datasets (``config.dataset``; paper Sec. 5.1):

* ``ve8`` VideoEmotion-8 (8 classes). ``data.split_index`` 0..9: the union of the build's
  train and test lists split 2/3-1/3 per class by :func:`ve8_random_splits` (the benchmark's ten
  random splits; ``data.split_seed``); ``-1``: the released trainlist01/testlist01 as they are.
* ``ek6`` Ekman-6 / YF-6 (6 classes): the public 819/818 lists.
* ``me2015_valence`` / ``me2015_arousal``: LIRIS-ACCEDE 3-class valence / arousal (MediaEval
  2015); ``me2016``: valence and arousal regression (MediaEval 2016). The build's own
  train/validation/test sets.

Splits: ``train``, ``validation``, ``test``, ``train_full``. For VE-8 / Ekman-6 ``validation``
is 15 % of the training list carved stratified by class (:func:`carve_validation`, seeded by
``data.validation_seed``, independent of the training seed), ``train`` the rest and
``train_full`` both; for LIRIS-ACCEDE ``train_full`` is train + validation. Test never selects.

Parameters: ``params["encoder"]`` (the fusion encoder; a CTM one loads from a pretraining run
with ``init_from.subtrees=(("encoder", "encoder"),)``) and ``params["head"]`` (the classifier /
regressor), so ``optimizer.param_groups=(("^encoder/", 1e-5), ("^head/", 1e-4))`` gives the
paper's fine-tuning rates.

Config fields: ``configs/tam/ctm.py`` and ``configs/tam/finetune.py``
(:mod:`jaxaffect.families.tam.configs`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jaxaffect import losses, metrics
from jaxaffect.data import prepared, splits
from jaxaffect.errors import FormatError
from jaxaffect.families.tam import annotations as aa
from jaxaffect.families.tam import batches as tam_batches
from jaxaffect.families.tam.configs.common import DATASETS
from jaxaffect.families.tam.data_task import TAMDataTask
from jaxaffect.nn import compute_dtype

Array = jax.Array
VE8_CLASSES, EK6_CLASSES = aa.VE8_CLASSES, aa.EK6_CLASSES
VALENCE_CLASSES, AROUSAL_CLASSES = aa.VALENCE_CLASSES, aa.AROUSAL_CLASSES
# Builds whose train and test lists are split by class_list_splits (LIRIS-ACCEDE has its own).
CLASS_LIST_DATASETS = ("video_emotion8", "ekman6")


# ------------------------------------------------------------------------------ splits

def class_list_splits(train: Sequence[dict], test: Sequence[dict], *, split_index: int,
                      split_seed: int = 0, validation_fraction: float = 0.15,
                      validation_seed: int = 0, label_key: str = "label"
                      ) -> dict[str, list[dict]]:
    """VE-8 / Ekman-6 splits from the build's train and test examples (see module doc).

    Each split's examples are in sorted video-id order.
    """
    by_id = {}
    for ex in list(train) + list(test):
        vid = str(ex["video_id"])
        if vid in by_id:
            raise FormatError(f"video {vid!r} is in both the train and the test list of this "
                              "build (built with --allow split_overlap?): training on it would "
                              "leak test videos; rebuild without the overlap")
        by_id[vid] = ex
    label = lambda vid: int(by_id[vid][label_key])
    if split_index >= 0:
        videos = [aa.VideoLabel(v, label(v), "") for v in sorted(by_id)]
        splits = aa.ve8_random_splits(videos, num_splits=max(10, split_index + 1),
                                      seed=split_seed)
        train_ids, test_ids = splits[split_index]
    else:
        train_ids = sorted(str(ex["video_id"]) for ex in train)
        test_ids = sorted(str(ex["video_id"]) for ex in test)
    fit_ids, val_ids = aa.carve_validation(train_ids, [label(v) for v in train_ids],
                                           validation_fraction, seed=validation_seed)
    pick = lambda ids: [by_id[v] for v in ids]
    return {"train": pick(fit_ids), "validation": pick(val_ids), "test": pick(test_ids),
            "train_full": pick(train_ids)}


def first_per_class(examples: Sequence[dict], per_class: int, label_key: str) -> list[dict]:
    """At most `per_class` examples of each class, the ones with the smallest SHA-256 of their
    video id (`jaxaffect.data.splits.stratified_hash_pick`: deterministic, unrelated to id
    order); returned in video-id order."""
    ids = [str(ex["video_id"]) for ex in examples]
    keep = splits.stratified_hash_pick(ids, [int(ex[label_key]) for ex in examples],
                                       lambda n: per_class)
    return sorted((ex for ex, vid in zip(examples, ids) if vid in keep),
                  key=lambda ex: str(ex["video_id"]))


# ------------------------------------------------------------------------------ losses/metrics

def classification_loss(logits: Array, labels: Array, valid: Array) -> tuple[Array, Array]:
    """Pure: (mean cross-entropy, accuracy) over the examples where ``valid`` is True."""
    w = valid.astype(jnp.float32)
    loss = losses.softmax_cross_entropy(logits, labels, weights=w)
    hit = (jnp.argmax(logits, axis=-1) == labels).astype(jnp.float32)
    return loss, jnp.sum(hit * w) / jnp.maximum(jnp.sum(w), 1.0)


def regression_loss(preds: Array, targets: Array, valid: Array) -> tuple[Array, Array]:
    """Pure: (MSE averaged over valid examples and target dims, per-dim MSE [K]). Float32."""
    w = valid.astype(jnp.float32)[:, None]
    se = jnp.square(preds.astype(jnp.float32) - targets.astype(jnp.float32)) * w
    per_dim = jnp.sum(se, axis=0) / jnp.maximum(jnp.sum(w), 1.0)
    return jnp.mean(per_dim), per_dim


def pearson(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson correlation of two 1-D arrays (0.0 when either is constant)."""
    x = np.asarray(x, np.float64) - np.mean(x)
    y = np.asarray(y, np.float64) - np.mean(y)
    den = np.sqrt(np.sum(x * x) * np.sum(y * y))
    return float(np.sum(x * y) / den) if den > 0 else 0.0


def regression_metrics(targets: np.ndarray, preds: np.ndarray, names: Sequence[str]
                       ) -> dict[str, float]:
    """``mse/<name>``, ``pcc/<name>`` per target and their means ``mse``, ``pcc``."""
    targets = np.asarray(targets, np.float64).reshape(len(targets), -1)
    preds = np.asarray(preds, np.float64).reshape(len(preds), -1)
    out: dict[str, float] = {}
    for k, name in enumerate(names):
        out[f"mse/{name}"] = float(np.mean((preds[:, k] - targets[:, k]) ** 2))
        out[f"pcc/{name}"] = pearson(preds[:, k], targets[:, k])
    out["mse"] = float(np.mean([out[f"mse/{n}"] for n in names]))
    out["pcc"] = float(np.mean([out[f"pcc/{n}"] for n in names]))
    return out


def selection_mode_for(metric: str) -> str:
    """"min" for errors and losses (mse..., loss...), else "max"."""
    leaf = metric.rsplit("/", 1)[-1]
    return "min" if leaf.startswith(("mse", "loss")) or metric.startswith("mse") else "max"


# ------------------------------------------------------------------------------ task

class TAMTask(TAMDataTask):
    host_keys = ("video_id",)

    def __init__(self, config: ml_collections.ConfigDict):
        super().__init__(config)
        self.target_keys = tuple(config.data.get("target_keys", ()) or ())
        self.classification = not self.target_keys
        if self.classification:
            self.class_names = tuple(DATASETS[config.dataset]["classes"])

    # -- data ---------------------------------------------------------------------------------
    def read_splits(self) -> dict[str, list[dict]]:
        d = self.config.data
        names = prepared.split_names(self.builder_dir)
        read = lambda s: prepared.read_examples(self.builder_dir, s)
        if d.name.split("/")[0] in CLASS_LIST_DATASETS or "validation" not in names:
            label_key = d.label_key or "valence_class"  # stratify regression by class
            out = class_list_splits(
                read("train"), read("test"), split_index=int(d.split_index),
                split_seed=int(d.split_seed), validation_fraction=float(d.validation_fraction),
                validation_seed=int(d.validation_seed), label_key=label_key)
        else:  # LIRIS-ACCEDE: the build's own validation set
            if int(d.split_index) >= 0:
                raise ValueError("data.split_index >= 0 is VE-8's random-split protocol")
            train, val, test = read("train"), read("validation"), read("test")
            out = {"train": train, "validation": val, "test": test, "train_full": train + val}
        per_class = int(d.get("train_per_class", 0) or 0)
        if per_class > 0:
            if not d.label_key:
                raise ValueError("data.train_per_class needs a classification dataset")
            out["train"] = first_per_class(out["train"], per_class, d.label_key)
        return out

    def transform(self) -> tam_batches.VideoTransform:
        return tam_batches.VideoTransform(
            num_segments=int(self.config.data.num_segments),
            label_key=self.config.data.label_key if self.classification else None,
            target_keys=self.target_keys)

    def padding(self) -> dict[str, Any]:
        return tam_batches.video_padding(self.stream_dims(), int(self.config.data.num_segments),
                                         classification=self.classification,
                                         num_targets=len(self.target_keys))

    # -- model --------------------------------------------------------------------------------
    def num_outputs(self) -> int:
        return len(self.class_names) if self.classification else len(self.target_keys)

    def make_model(self):
        from jaxaffect.families.tam.fusion_baselines import FusionClassifier

        m = self.config.model
        if int(self.config.data.num_segments) > int(m.max_segments):
            raise ValueError(f"data.num_segments={self.config.data.num_segments} exceeds "
                             f"model.max_segments={m.max_segments}")
        return FusionClassifier(
            strategy=m.strategy, num_outputs=self.num_outputs(),
            modalities=self.modalities(), width=m.width, num_layers=m.num_layers,
            num_heads=m.num_heads, mlp_dim=int(m.mlp_dim) or None,
            max_segments=m.max_segments, dropout_rate=m.dropout_rate,
            head_dropout=m.head_dropout, readout=m.readout,
            share_across_modalities=m.share_across_modalities, remat=m.remat,
            dtype=compute_dtype(m.dtype))

    def modalities(self) -> tuple[str, ...]:
        return tuple(self.config.model.get("modalities", tam_batches.STREAMS))

    def _features(self, batch) -> dict[str, Array]:
        return {m: batch["features"][m] for m in self.modalities()}

    def init_variables(self, model, rng, batch):
        params_rng, dropout_rng = jax.random.split(rng)
        return model.init({"params": params_rng, "dropout": dropout_rng},
                          self._features(batch), batch["segment_mask"], train=False)

    def _apply(self, model, params, batch, *, train: bool, rng=None) -> Array:
        rngs = {"dropout": rng} if rng is not None else None
        return model.apply({"params": params}, self._features(batch), batch["segment_mask"],
                           train=train, rngs=rngs)

    def loss(self, model, params, batch, rng, train, step=None):
        del step
        out = self._apply(model, params, batch, train=train, rng=rng)
        if self.classification:
            loss, acc = classification_loss(out, batch["label"], batch["valid"])
            return loss, {"accuracy": acc}
        loss, per_dim = regression_loss(out, batch["target"], batch["valid"])
        return loss, {f"mse/{k}": per_dim[i] for i, k in enumerate(self.target_keys)}

    def predict(self, model, params, batch):
        out = self._apply(model, params, batch, train=False)
        if self.classification:
            return {"probs": jax.nn.softmax(out.astype(jnp.float32), axis=-1)}
        return {"prediction": out.astype(jnp.float32)}

    def load_clip(self, path: str) -> dict[str, Any]:
        """One video's features/<id>.npz (the builders' layout) -> a device batch of one,
        with the evaluation choice of segments."""
        from jaxaffect.families.tam.video_features import read_video

        features, masks = read_video(path, expected_dims=self.stream_dims())
        example = {"streams": features, "masks": masks, "video_id": str(path),
                   "num_segments": np.int32(next(iter(features.values())).shape[0])}
        ex = tam_batches.video_example(example, int(self.config.data.num_segments), None)
        return {"features": {m: x[None] for m, x in ex["features"].items()},
                "segment_mask": ex["segment_mask"][None]}

    # -- evaluation ---------------------------------------------------------------------------
    def evaluate(self, outputs, host):
        ids = host.get("video_id")
        records = []
        if self.classification:
            labels = outputs["label"].astype(np.int32)
            preds = outputs["probs"].argmax(-1).astype(np.int32)
            result = metrics.classification_metrics(labels, preds, len(self.class_names),
                                                    self.class_names)
            for i in range(len(labels)):
                records.append({
                    "video_id": str(ids[i]) if ids is not None else str(i),
                    "label": self.class_names[labels[i]],
                    "prediction": self.class_names[preds[i]],
                    "probabilities": {n: round(float(p), 6)
                                      for n, p in zip(self.class_names, outputs["probs"][i])}})
            return result, records
        targets, preds = outputs["target"], outputs["prediction"]
        result = regression_metrics(targets, preds, self.target_keys)
        for i in range(len(targets)):
            records.append({"video_id": str(ids[i]) if ids is not None else str(i),
                            "target": {k: float(targets[i, j])
                                       for j, k in enumerate(self.target_keys)},
                            "prediction": {k: round(float(preds[i, j]), 6)
                                           for j, k in enumerate(self.target_keys)}})
        return result, records

    def write_figures(self, outputs, metrics_, out_dir, split):
        if not self.classification:
            return []
        from jaxaffect.plots import plot_confusion_matrix

        labels = outputs["label"].astype(np.int32)
        preds = outputs["probs"].argmax(-1).astype(np.int32)
        cm = np.asarray(metrics.confusion_matrix(labels, preds, len(self.class_names)))
        path = os.path.join(out_dir, f"confusion_{split}.png")
        plot_confusion_matrix(cm, self.class_names, path,
                              title=f"{self.config.get('name', 'tam')} on {split} "
                                    f"(accuracy {metrics_['accuracy']:.3f})")
        return [path]

    def selection_mode(self) -> str:
        return selection_mode_for(self.selection_metric())
