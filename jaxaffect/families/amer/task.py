"""Multimodal emotion reasoning on MEmoR (Shen et al., ACM MM 2020): AMER and the baselines.

One Task for every row of Tables 3-5 (``config.model.name`` picks the model, see `MODELS`):
the emotion of a target person at a target segment from all persons x segments of the clip,
with missing modalities masked and the characters' personalities as external knowledge.

Data: the `memor` build (``official`` or ``moment_disjoint`` split, see its README), read
once per split into memory; ``config.data.labels`` picks the 9 primary or 14 fine-grained
emotions. Training draws examples with replacement in inverse proportion to their class's
frequency (``data.class_balanced``, the paper's weighted sampler; on by default).

Evaluation (host side, whole split): micro-, macro- and weighted-F1 (Table 3), per-class F1
(``f1/<emotion>``, Table 6), the same for speakers and non-speakers of the target segment
(``speaker/...``, ``non_speaker/...``), on the full-modality subset (``full/...``, Table 4) and
micro-F1 by the target entry's modality availability (``avail_AT``, ``avail_V``,
``avail_AVT``, ``avail_missing``: Table 5). Model selection on validation micro-F1 (the
paper's stopping metric), never on test.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jaxaffect import losses
from jaxaffect.config_loading import resolve_builder_dir
from jaxaffect.families.amer import batches as ab
from jaxaffect.families.amer.layers import MODALITIES
from jaxaffect.families.amer.release_format import FINE, PRIMARY
from jaxaffect.families.amer.scores import emotion_scores
from jaxaffect.task import Task

DATASET_NAME = "memor"
CLASS_NAMES = {"primary": PRIMARY, "fine": FINE}

#: model name -> (module:class, fixed keyword arguments)
MODELS: dict[str, tuple[str, dict[str, Any]]] = {
    "amer": ("amer_model:AMER", {}),
    "amer_no_personality": ("amer_model:AMER", {"use_personality": False}),
    "amer_no_intra": ("amer_model:AMER", {"intra_personal": False}),
    "amer_no_inter": ("amer_model:AMER", {"inter_personal": False}),
    "mdl": ("fusion_baselines:MDL", {"use_personality": False}),
    "mdl_personality": ("fusion_baselines:MDL", {"use_personality": True}),
    "mdae": ("fusion_baselines:MDAE", {"use_personality": True}),
    "tfn": ("fusion_baselines:BiLSTMTFN", {"use_personality": True}),
    "lmf": ("fusion_baselines:BiLSTMLMF", {"use_personality": True}),
    "dialoguegcn": ("dialogue_gcn:DialogueGCN", {"use_personality": True}),
}


def model_class(name: str) -> tuple[type, dict[str, Any]]:
    if name not in MODELS:
        raise ValueError(f"model.name={name!r}: one of {sorted(MODELS)}")
    import importlib

    where, fixed = MODELS[name]
    module, cls = where.split(":")
    mod = importlib.import_module(f"jaxaffect.families.amer.{module}")
    return getattr(mod, cls), dict(fixed)


class AMERTask(Task):
    host_keys = ab.HOST_KEYS
    #: in-memory datasets: name -> ({split: examples}, metadata) (tests, notebooks)
    memory_datasets: ClassVar[dict[str, tuple[dict[str, list], dict]]] = {}

    def __init__(self, config: ml_collections.ConfigDict):
        super().__init__(config)
        mem = config.data.get("memory", "")
        if mem:
            if mem not in self.memory_datasets:
                raise KeyError(f"no in-memory dataset {mem!r}; "
                               f"known: {sorted(self.memory_datasets)}")
            self._splits, self.metadata = self.memory_datasets[mem]
            self.builder_dir = ""
        else:
            from jaxaffect.data import prepared

            self.builder_dir = resolve_builder_dir(config.data)
            self._splits = {}
            self.metadata = prepared.load_metadata(self.builder_dir)
        dims = {k: int(v) for k, v in self.metadata["dims"].items()}
        m = config.model
        self.spec = ab.BatchSpec(dims=dims, labels=config.data.labels,
                                 max_persons=int(config.data.max_persons),
                                 max_segments=int(config.data.max_segments),
                                 modalities=tuple(m.modalities),
                                 speaker_streams=self._speaker_streams())
        self.class_names = CLASS_NAMES[self.spec.labels]
        self.cropped: dict[str, int] = {}

    def _speaker_streams(self) -> tuple[str, ...]:
        m = self.config.model
        return tuple(m.get("speaker_streams", ())) if m.name.startswith("amer") else ()

    @classmethod
    def add_memory_dataset(cls, name: str, splits: dict[str, list], metadata: dict) -> None:
        """Registers examples held in memory; select them with config.data.memory = name."""
        cls.memory_datasets[name] = (splits, metadata)

    # -- data ---------------------------------------------------------------------------------
    def examples(self, split: str) -> list[dict]:
        if split not in self._splits:
            from jaxaffect.data import prepared

            self._splits[split] = prepared.read_examples(self.builder_dir, split)
        subset = self.config.data.target_subset
        if subset not in ("all", "full"):
            raise ValueError(f"data.target_subset={subset!r}: all | full")
        if subset == "full" and split not in self.cropped:
            # Table 4: only the examples whose target entry has audio, text and visual.
            self._splits[split] = [e for e in self._splits[split] if ab.target_has_all(e)]
        if split not in self.cropped:
            self.cropped[split] = ab.count_cropped(self._splits[split], self.spec)
            if self.cropped[split] and jax.process_index() == 0:
                print(f"[amer] {split}: {self.cropped[split]} of {len(self._splits[split])} "
                      f"examples have more than data.max_persons={self.spec.max_persons} "
                      f"persons or data.max_segments={self.spec.max_segments} segments; "
                      "their context is cut around the target", flush=True)
        return self._splits[split]

    def train_weights(self, split: str) -> np.ndarray | None:
        """Inverse class-frequency sampling weights (the paper's weighted sampler) or None."""
        if not self.config.data.class_balanced:
            return None
        from jaxaffect.data.sampling import inverse_frequency_weights

        key = ab.LABEL_KEYS[self.spec.labels]
        return inverse_frequency_weights([int(e[key]) for e in self.examples(split)])

    def dataset(self, split, *, train, seed, num_epochs, process_index, process_count):
        from jaxaffect.data.memory_dataset import make_batches

        return make_batches(
            self.examples(split), batch_size=self.config.training.batch_size, train=train,
            seed=seed, num_epochs=num_epochs, process_index=process_index,
            process_count=process_count, transform=ab.Transform(self.spec),
            padding=ab.padding(self.spec),
            weights=self.train_weights(split) if train else None)

    def num_examples(self, split: str) -> int:
        return len(self.examples(split))

    def dummy_batch(self, batch_size: int) -> dict[str, Any]:
        return ab.dummy_batch(self.spec, batch_size)

    # -- model --------------------------------------------------------------------------------
    def make_model(self):
        from jaxaffect.nn import compute_dtype

        m = self.config.model
        cls, kw = model_class(m.name)
        kw.update(num_classes=len(self.class_names), modalities=tuple(m.modalities),
                  dtype=compute_dtype(m.dtype), audio_sizes=tuple(m.audio_sizes),
                  text_sizes=tuple(m.text_sizes), visual_sizes=tuple(m.visual_sizes),
                  personality_sizes=tuple(m.personality_sizes),
                  classifier_sizes=tuple(m.classifier_sizes))
        if m.name.startswith("amer"):
            kw.update(fusion_size=int(m.fusion_size), released_code=bool(m.released_code),
                      speaker_streams=self._speaker_streams())
        elif m.released_code:
            raise ValueError(f"model.released_code is an AMER option; model.name={m.name!r}")
        return cls(**kw)

    def _apply(self, model, params, batch, *, train: bool, rng=None) -> dict[str, jax.Array]:
        rngs = {"dropout": rng} if (train and rng is not None) else None
        return model.apply({"params": params}, batch["inputs"], train=train, rngs=rngs)

    def init_variables(self, model, rng, batch):
        params_rng, dropout_rng = jax.random.split(rng)
        return model.init({"params": params_rng, "dropout": dropout_rng}, batch["inputs"],
                          train=False)

    def loss(self, model, params, batch, rng, train, step=None):
        out = self._apply(model, params, batch, train=train, rng=rng)
        weights = batch["valid"].astype(jnp.float32)
        ce = losses.softmax_cross_entropy(out["logits"].astype(jnp.float32), batch["label"],
                                          weights=weights)
        scalars = {"cross_entropy": ce}
        loss = ce
        if "aux_loss" in out:  # MDAE's reconstruction term
            aux = jnp.sum(out["aux_loss"].astype(jnp.float32) * weights) / jnp.maximum(
                jnp.sum(weights), 1.0)
            loss = loss + self.config.loss.aux_weight * aux
            scalars["reconstruction"] = aux
        scalars["loss"] = loss
        return loss, scalars

    def predict(self, model, params, batch):
        out = self._apply(model, params, batch, train=False)
        logits = out["logits"].astype(jnp.float32)
        return {"logits": logits, "probs": jax.nn.softmax(logits, axis=-1)}

    def load_clip(self, path: str) -> dict[str, Any]:
        """A one-annotation MEmoR release folder (what `jaxaffect extract memor` writes for
        `predict --video --person NAME --moment SECONDS`: the clip, and the target person at
        the moment) -> a batch of one, cut like the evaluation data. The release's feature
        sizes must be the run's."""
        from jaxaffect.data.memory_dataset import collate_nested
        from jaxaffect.errors import FormatError
        from jaxaffect.families.amer import release_examples as rx

        if not Path(path).is_dir():
            raise FormatError(f"{path}: AMER predicts from a one-clip release folder (made by "
                              "`predict --video ... --person NAME --moment SECONDS`)")
        release = rx.read_release(path)
        if len(release.annotations) != 1:
            raise FormatError(f"{path}: {len(release.annotations)} annotations; a one-clip "
                              "release for prediction holds exactly one")
        wrong = {k: (v, release.dims.get(k)) for k, v in self.spec.dims.items()
                 if release.dims.get(k) != v}
        if wrong:
            k, (want, got) = next(iter(sorted(wrong.items())))
            raise FormatError(f"{path}: {k} features are {got}-d, the run's are {want}-d")
        visual = rx.ClipVisual(release, release.annotations[0].clip)
        example = ab.Transform(self.spec)(rx.annotation_example(release, 0, visual))
        return self.device_batch(collate_nested([example]))

    # -- evaluation ---------------------------------------------------------------------------
    def selection_metric(self) -> str:
        return "micro_f1"

    def evaluate(self, outputs, host):
        logits = np.asarray(outputs["logits"], np.float64)
        labels = np.asarray(outputs["label"]).astype(np.int64)
        res = emotion_scores(labels, logits.argmax(-1), self.class_names,
                             target_modalities=np.asarray(outputs["target_modalities"], bool),
                             speaks=np.asarray(outputs["speaks_in_segment"], bool))
        res["num_examples"] = float(len(labels))
        probs = _softmax(logits)
        preds = logits.argmax(-1)
        records = []
        for i in range(len(labels)):
            r: dict[str, Any] = {k: str(host[k][i]) for k in self.host_keys if k in host}
            r["emotion"] = self.class_names[labels[i]]
            r["predicted"] = self.class_names[int(preds[i])]
            r["probability"] = round(float(probs[i, preds[i]]), 6)
            r["speaks_in_segment"] = bool(outputs["speaks_in_segment"][i])
            r["target_modalities"] = "+".join(
                m for m, on in zip(MODALITIES, outputs["target_modalities"][i]) if on) or "none"
            records.append(r)
        self._last = (labels, preds)
        return res, records

    def write_figures(self, outputs, metrics_, out_dir, split):
        """The confusion matrix of the split (rows: true emotion)."""
        from jaxaffect.metrics import confusion_matrix
        from jaxaffect.plots import plot_confusion_matrix

        labels, preds = getattr(self, "_last", (None, None))
        if labels is None or len(labels) != len(outputs["label"]):
            return []
        cm = np.asarray(confusion_matrix(jnp.asarray(labels), jnp.asarray(preds),
                                         len(self.class_names)))
        path = str(Path(out_dir) / f"emotion_confusion_{split}.png")
        name = self.config.get("name", "amer")
        plot_confusion_matrix(cm, list(self.class_names), path,
                              title=f"{name} on {split}: {self.config.data.labels} emotions "
                                    f"(micro-F1 {metrics_.get('micro_f1', float('nan')):.3f}, "
                                    f"weighted-F1 {metrics_.get('weighted_f1', float('nan')):.3f})")
        return [path]


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(-1, keepdims=True)
