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
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jaxaffect import losses, metrics
from jaxaffect.config_loading import (
    ConfigError,
    init_from_section,
    mesh_section,
    optimizer_section,
    parse_arg,
    resolve_builder_dir,
    training_section,
)
from jaxaffect.data import prepared
from jaxaffect.data.memory_dataset import make_batches
from jaxaffect.families.tam import annotations as aa
from jaxaffect.families.tam import batches as tam_batches
from jaxaffect.families.tam.fusion_baselines import STRATEGIES
from jaxaffect.nn import compute_dtype
from jaxaffect.task import Task

Array = jax.Array
VE8_CLASSES, EK6_CLASSES = aa.VE8_CLASSES, aa.EK6_CLASSES
VALENCE_CLASSES, AROUSAL_CLASSES = aa.VALENCE_CLASSES, aa.AROUSAL_CLASSES

# dataset key -> build name, label key or regression targets, class names, paper T / batch /
# epochs (Sec. 5.2: T=64, batch 8, 100 epochs for VE-8 and YF-6; T=16, batch 16, 20 epochs for
# MediaEval) and the default split index (VE-8: the first of the ten random splits).
DATASETS: dict[str, dict[str, Any]] = {
    "ve8": dict(name="video_emotion8", label_key="label", classes=VE8_CLASSES,
                num_segments=64, batch_size=8, num_epochs=100, split_index=0),
    "ek6": dict(name="ekman6", label_key="label", classes=EK6_CLASSES,
                num_segments=64, batch_size=8, num_epochs=100, split_index=-1),
    "me2015_valence": dict(name="liris_accede", label_key="valence_class",
                           classes=VALENCE_CLASSES, num_segments=16, batch_size=16,
                           num_epochs=20, split_index=-1),
    "me2015_arousal": dict(name="liris_accede", label_key="arousal_class",
                           classes=AROUSAL_CLASSES, num_segments=16, batch_size=16,
                           num_epochs=20, split_index=-1),
    "me2016": dict(name="liris_accede", target_keys=("valence", "arousal"),
                   num_segments=16, batch_size=16, num_epochs=20, split_index=-1),
}
CLASS_LIST_DATASETS = ("video_emotion8", "ekman6")

CONFIG_ARGS = {"dataset": "ve8", "strategy": "ctm", "split": -2, "runlocal": False,
               "modalities": "image+motion+audio",
               "pretrained": ""}


def default_config(arg: str | None, *, finetune: bool = False) -> ml_collections.ConfigDict:
    """The config of configs/tam/ctm.py (``finetune``: configs/tam/finetune.py)."""
    a = parse_arg(arg, CONFIG_ARGS)
    if a.dataset not in DATASETS:
        raise ConfigError(f"dataset={a.dataset!r}: one of {sorted(DATASETS)}")
    if a.strategy not in STRATEGIES:
        raise ConfigError(f"strategy={a.strategy!r}: one of {STRATEGIES}")
    if finetune and not a.pretrained:
        raise ConfigError("finetune needs pretrained=<workdir of a pretraining run>")
    if not finetune and a.pretrained:
        raise ConfigError("pretrained=... belongs to configs/tam/finetune.py")
    ds = DATASETS[a.dataset]
    c = ml_collections.ConfigDict()
    c.task = "tam"
    c.dataset = a.dataset
    c.name = f"tam_{a.strategy}_{a.dataset}" + ("_finetune" if finetune else "")
    c.seed = 0

    c.data = ml_collections.ConfigDict()
    c.data.name = ds["name"]
    c.data.data_dir = str(Path("~/tensorflow_datasets").expanduser())
    c.data.builder_dir = ""  # explicit prepared-dataset folder; overrides data_dir/name
    c.data.split_index = ds["split_index"] if a.split == -2 else int(a.split)
    c.data.split_seed = 0
    c.data.validation_fraction = 0.15  # Sec. 5.2: 15 % of the training set
    c.data.validation_seed = 0
    # > 0: keep only this many training videos per class (few-label fine-tuning; chosen by a
    # hash of the video id). Validation and test are unchanged.
    c.data.train_per_class = 0
    c.data.num_segments = ds["num_segments"]
    c.data.label_key = ds.get("label_key", "")
    c.data.target_keys = tuple(ds.get("target_keys", ()))
    if c.data.split_index >= 0 and ds["name"] != "video_emotion8":
        raise ConfigError(f"split={c.data.split_index}: random splits are VE-8's protocol")

    c.model = ml_collections.ConfigDict()
    c.model.strategy = a.strategy
    # Table 1: the streams the fusion module sees (a pretrained encoder needs the same set).
    c.model.modalities = tuple(m for m in a.modalities.split("+") if m)
    unknown = set(c.model.modalities) - set(tam_batches.STREAMS)
    if unknown or not c.model.modalities:
        raise ConfigError(f"modalities={a.modalities!r}: '+'-joined streams of "
                          f"{tam_batches.STREAMS}")
    c.model.width = 768  # Sec. 5.2: features mapped to 768-d
    c.model.num_layers = 12  # L = 12
    # CTM family: 12 heads (ViT-B); the concat/divide/joint baselines: 8 heads (Sec. 5.3).
    c.model.num_heads = 12 if a.strategy in ("ctm", "inner", "cross") else 8
    c.model.mlp_dim = 0  # 0: 4 * width
    c.model.max_segments = 64  # rows of P_e; must equal the pretraining run's
    c.model.dropout_rate = 0.1
    c.model.head_dropout = 0.0
    c.model.readout = "auto"
    c.model.share_across_modalities = True
    c.model.remat = False
    c.model.dtype = "float32"  # or "bfloat16" (compute; params stay float32)

    # Sec. 5.2: Adam, lr 1e-4, weight decay 0.005 (PyTorch-style coupled L2), no decay schedule.
    c.optimizer = optimizer_section(1e-4, weight_decay=0.005)

    c.init_from = init_from_section()

    c.training = training_section(ds["num_epochs"], ds["batch_size"])

    c.evaluation = ml_collections.ConfigDict()
    # Classification selects on accuracy; MediaEval 2016 on the mean PCC of valence and
    # arousal, as the paper does (Sec. 5.5: "we use the PCC ... to choose the best model").
    c.evaluation.selection_metric = "pcc" if ds.get("target_keys") else "accuracy"

    c.mesh = mesh_section()

    if finetune:  # Sec. 5.2: fusion module 1e-5, classifier/regressor 1e-4, 50 epochs
        c.init_from.workdir = str(Path(a.pretrained).expanduser())
        c.init_from.subtrees = (("encoder", "encoder"),)
        c.optimizer.param_groups = (("^encoder/", 1e-5), ("^head/", 1e-4))
        c.training.num_epochs = 50
    if a.runlocal:
        c.model.width = 32
        c.model.num_layers = 2
        c.model.num_heads = 4
        c.data.num_segments = min(c.data.num_segments, 8)
        c.model.max_segments = 8
        c.training.num_epochs = 2
        c.training.batch_size = 4
        c.training.log_every_steps = 1
        c.training.checkpoint_every_steps = 20
    return c


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
            raise ValueError(f"video {vid!r} is in both the train and the test list")
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
    video id (deterministic, unrelated to id order); returned in video-id order."""
    def key(ex: dict) -> str:
        return hashlib.sha256(str(ex["video_id"]).encode()).hexdigest()

    kept: dict[int, list[dict]] = {}
    for ex in sorted(examples, key=key):
        bucket = kept.setdefault(int(ex[label_key]), [])
        if len(bucket) < per_class:
            bucket.append(ex)
    return sorted((ex for b in kept.values() for ex in b), key=lambda ex: str(ex["video_id"]))


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

class TAMTask(Task):
    host_keys = ("video_id",)

    def __init__(self, config: ml_collections.ConfigDict):
        super().__init__(config)
        d = config.data
        self.builder_dir = resolve_builder_dir(d)
        self.target_keys = tuple(d.get("target_keys", ()) or ())
        self.classification = not self.target_keys
        if self.classification:
            self.class_names = tuple(DATASETS[config.dataset]["classes"])
        self._splits: dict[str, list[dict]] | None = None
        self._dims: dict[str, int] | None = None

    # -- data ---------------------------------------------------------------------------------
    def stream_dims(self) -> dict[str, int]:
        if self._dims is None:
            meta = prepared.load_metadata(self.builder_dir)
            if "stream_dims" not in meta:
                raise ValueError(f"{self.builder_dir}: the build records no stream_dims")
            self._dims = {s: int(meta["stream_dims"][s]) for s in tam_batches.STREAMS}
        return self._dims

    def splits(self) -> dict[str, list[dict]]:
        """Every split's examples (read once)."""
        if self._splits is None:
            d = self.config.data
            names = prepared.split_names(self.builder_dir)
            read = lambda s: prepared.read_examples(self.builder_dir, s)
            if d.name in CLASS_LIST_DATASETS or "validation" not in names:
                label_key = d.label_key or "valence_class"  # stratify regression by class
                self._splits = class_list_splits(
                    read("train"), read("test"), split_index=int(d.split_index),
                    split_seed=int(d.split_seed),
                    validation_fraction=float(d.validation_fraction),
                    validation_seed=int(d.validation_seed), label_key=label_key)
            else:  # LIRIS-ACCEDE: the build's own validation set
                if int(d.split_index) >= 0:
                    raise ValueError("data.split_index >= 0 is VE-8's random-split protocol")
                train, val, test = read("train"), read("validation"), read("test")
                self._splits = {"train": train, "validation": val, "test": test,
                                "train_full": train + val}
            per_class = int(d.get("train_per_class", 0) or 0)
            if per_class > 0:
                if not d.label_key:
                    raise ValueError("data.train_per_class needs a classification dataset")
                self._splits["train"] = first_per_class(self._splits["train"], per_class,
                                                        d.label_key)
        return self._splits

    def _examples(self, split: str) -> list[dict]:
        s = self.splits()
        if split not in s:
            raise ValueError(f"unknown split {split!r}; one of {sorted(s)}")
        return s[split]

    def num_examples(self, split: str) -> int:
        return len(self._examples(split))

    def _transform(self) -> tam_batches.VideoTransform:
        return tam_batches.VideoTransform(
            num_segments=int(self.config.data.num_segments),
            label_key=self.config.data.label_key if self.classification else None,
            target_keys=self.target_keys)

    def _padding(self) -> dict[str, Any]:
        return tam_batches.video_padding(self.stream_dims(), int(self.config.data.num_segments),
                                         classification=self.classification,
                                         num_targets=len(self.target_keys))

    def dataset(self, split, *, train, seed, num_epochs, process_index, process_count):
        return make_batches(self._examples(split), batch_size=self.config.training.batch_size,
                            train=train, seed=seed, num_epochs=num_epochs,
                            process_index=process_index, process_count=process_count,
                            transform=self._transform(), padding=self._padding())

    def dummy_batch(self, batch_size: int) -> dict[str, Any]:
        pad = self._padding()
        batch = jax.tree_util.tree_map(
            lambda x: np.zeros((batch_size,) + np.shape(x), np.asarray(x).dtype),
            {k: v for k, v in pad.items() if k not in self.host_keys})
        batch["segment_mask"][:] = True
        batch["valid"][:] = True
        return batch

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

    def selection_metric(self) -> str:
        return self.config.evaluation.selection_metric

    def selection_mode(self) -> str:
        return selection_mode_for(self.selection_metric())
