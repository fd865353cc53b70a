"""AV-CPNet on eMotions, Music_video, Ekman-6 and VideoEmotion-8 (Wu et al., eMotions).

End to end from stored clips: the raw-video builds (`tfds_builders/emotions`, `music_video`,
the `raw` configs of `ekman6` and `video_emotion8`) hold JPEG frames and 16 kHz audio;
`jaxaffect.families.avcpnet.clips` samples s segments x T frames and the MFCC segments of each
clip in grain (worker processes with ``data.workers`` > 0), one record at a time from the
build's files (`jaxaffect.data.record_source`), so a corpus need not fit in memory.

One Task for every row of Tables 7-9 (``config.model``: branches, CAF, fusion; ``config.loss``:
the EP-CE gammas and the multi-task sum of Eq. 10). Evaluation: accuracy and weighted-average
F1 (WA-F1, the paper's two columns) of the fused head, the same for the visual and audio heads
(``visual/...``, ``audio/...``) when the model has them, per-class F1, and a confusion matrix.
Splits: the build's train / validation / test; a build without a validation split (Ekman-6,
VE-8) gives ``data.validation_fraction`` of its train split, stratified by class and chosen by a
hash of the video id (the same for every seed). Model selection on validation accuracy.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jaxaffect import metrics
from jaxaffect.config_loading import resolve_builder_dir
from jaxaffect.data import prepared, splits
from jaxaffect.data.record_source import RecordSource
from jaxaffect.families.avcpnet import clips
from jaxaffect.families.avcpnet.emotions import polarity_of
from jaxaffect.task import Task

HEADS = ("fused", "visual", "audio")


class Positions:
    """Some records of a `RecordSource`, by position (a picklable sequence)."""

    def __init__(self, source: RecordSource, positions: np.ndarray):
        self.source, self.positions = source, np.asarray(positions, np.int64)

    def __len__(self) -> int:
        return int(self.positions.size)

    def __getitem__(self, i: int) -> bytes:
        return self.source[int(self.positions[int(i)])]


def video_labels(records, builder_dir: str) -> tuple[list[str], list[int]]:
    """(video ids, labels) of a sequence of serialized clips, in order."""
    decode = clips.record_decoder(builder_dir)
    ids, labels = [], []
    for i in range(len(records)):
        ex = decode(records[i])
        vid = ex["video_id"]
        ids.append(vid.decode("utf-8") if isinstance(vid, bytes) else str(vid))
        labels.append(int(ex["label"]))
    return ids, labels


def clip_spec(data: ml_collections.ConfigDict) -> clips.ClipSpec:
    """The `data` section's sampling fields as a ClipSpec."""
    return clips.ClipSpec(**{f: data[f] for f in clips.ClipSpec.__dataclass_fields__
                             if f in data})


class AVCPNetTask(Task):
    host_keys = ("video_id",)
    input_kind = "video"

    def __init__(self, config: ml_collections.ConfigDict):
        super().__init__(config)
        self.builder_dir = resolve_builder_dir(config.data)
        self.metadata = prepared.load_metadata(self.builder_dir)
        names = self.metadata.get("class_names")
        if not names:
            raise ValueError(f"{self.builder_dir}: the build records no class_names (not a "
                             "raw-video build?)")
        self.class_names = tuple(str(n) for n in names)
        self.polarity = polarity_of(self.class_names)
        self.spec = clip_spec(config.data)
        self._splits: dict[str, Any] | None = None

    # -- data ---------------------------------------------------------------------------------
    def splits(self) -> dict[str, Any]:
        """{split: a sequence of serialized clips} (record positions only; read lazily)."""
        if self._splits is not None:
            return self._splits
        have = prepared.split_names(self.builder_dir)
        out: dict[str, Any] = {s: RecordSource(self.builder_dir, s) for s in have}
        if "validation" not in out and "train" in out:
            out["train"], out["validation"] = self._carve(out["train"])
        self._splits = out
        return out

    def _carve(self, train: RecordSource) -> tuple[Positions, Positions]:
        frac = float(self.config.data.validation_fraction)
        ids, labels = video_labels(train, self.builder_dir)
        val = splits.stratified_hash_pick(ids, labels, splits.validation_count(frac))
        is_val = np.asarray([v in val for v in ids])
        return (Positions(train, np.flatnonzero(~is_val)),
                Positions(train, np.flatnonzero(is_val)))

    def examples(self, split: str):
        s = self.splits()
        if split not in s:
            raise KeyError(f"{self.builder_dir}: no split {split!r} (has {sorted(s)})")
        return s[split]

    def num_examples(self, split: str) -> int:
        return len(self.examples(split))

    def dataset(self, split, *, train, seed, num_epochs, process_index, process_count):
        import grain

        from jaxaffect.data.memory_dataset import make_batches

        ds = make_batches(self.examples(split), batch_size=self.config.training.batch_size,
                          train=train, seed=seed, num_epochs=num_epochs,
                          process_index=process_index, process_count=process_count,
                          transform=clips.RecordTransform(self.builder_dir, self.spec),
                          padding=clips.padding_example(self.spec))
        workers = int(self.config.data.get("workers", 0) or 0)
        if workers > 0:
            from absl import flags

            if not flags.FLAGS.is_parsed():  # grain's workers read absl flags; none are ours
                flags.FLAGS.mark_as_parsed()
            # a buffer of several batches per worker: with grain's default of one, a worker
            # waits whenever the other is a batch behind (~1.2x more clips/s with 4 at the
            # demo size, measured with benchmarks/avcpnet_input_pipeline.py)
            buffer = int(self.config.data.get("worker_buffer", 1) or 1)
            ds = ds.to_iter_dataset().mp_prefetch(grain.MultiprocessingOptions(
                num_workers=workers, per_worker_buffer_size=buffer))
        return ds

    def dummy_batch(self, batch_size: int) -> dict[str, Any]:
        pad = clips.padding_example(self.spec)
        batch = {k: np.zeros((batch_size,) + np.shape(v), np.asarray(v).dtype)
                 for k, v in pad.items() if k not in self.host_keys}
        batch["valid"][:] = True
        batch["has_audio"][:] = True
        return batch

    # -- model --------------------------------------------------------------------------------
    def make_model(self):
        from jaxaffect.families.avcpnet.model import AVCPNet
        from jaxaffect.nn import compute_dtype

        m = self.config.model
        swin = {k: tuple(v) if isinstance(v, (list, tuple)) else v
                for k, v in m.swin.to_dict().items()}
        return AVCPNet(num_classes=len(self.class_names), branches=m.branches, caf=m.caf,
                       caf_tokens=m.caf_tokens, fusion=m.fusion, hidden=int(m.hidden),
                       num_heads=int(m.num_heads), swin=swin, audio_width=int(m.audio_width),
                       audio_blocks=tuple(m.audio_blocks),
                       audio_norm_groups=int(m.audio_norm_groups),
                       temporal_normalize=m.temporal_normalize, dtype=compute_dtype(m.dtype),
                       remat=bool(m.remat))

    def initial_params(self, params):
        """With ``model.init_swin`` (a `jaxaffect convert swin3d` folder): the visual backbone
        from it. Its Swin settings must equal ``model.swin`` (checked field by field, then
        every array's shape)."""
        folder = self.config.model.get("init_swin", "")
        if not folder or "v" not in self.config.model.branches:
            return None
        from flax import traverse_util

        from jaxaffect.config_loading import ConfigError
        from jaxaffect.nn.video_swin import load_swin_config, load_swin_params

        saved = load_swin_config(folder)
        wanted = self.config.model.swin.to_dict()
        differ = [f"{k}: file {saved[k]!r}, config {tuple(v) if isinstance(v, list) else v!r}"
                  for k, v in wanted.items() if k in saved and k != "stochastic_depth"
                  and _as_tuple(saved[k]) != _as_tuple(v)]
        if differ:
            raise ConfigError(f"model.init_swin={folder}: the converted Swin differs from "
                              f"model.swin ({'; '.join(differ)})")
        loaded = {k: v for k, v in load_swin_params(folder).items() if k != "head"}
        out = jax.tree_util.tree_map(np.asarray, jax.device_get(params))
        flat_new = traverse_util.flatten_dict(loaded)
        target = traverse_util.flatten_dict(out["visual_backbone"])
        if set(flat_new) != set(target):
            missing = sorted("/".join(k) for k in set(target) - set(flat_new))[:3]
            raise ConfigError(f"model.init_swin={folder}: parameter names differ from the "
                              f"model's (e.g. {missing})")
        for key, value in flat_new.items():
            if value.shape != target[key].shape:
                raise ConfigError(f"model.init_swin={folder}: {'/'.join(key)} has shape "
                                  f"{value.shape}, the model {target[key].shape}")
        out["visual_backbone"] = traverse_util.unflatten_dict(
            {k: np.asarray(v, target[k].dtype) for k, v in flat_new.items()})
        return out

    def _video(self, batch) -> jax.Array:
        """uint8 frames -> normalised floats, on the device."""
        x = batch["video"].astype(jnp.float32) / 255.0
        x = (x - jnp.asarray(clips.IMAGENET_MEAN)) / jnp.asarray(clips.IMAGENET_STD)
        return x

    def _apply(self, model, params, batch, *, train: bool, rng=None) -> dict[str, jax.Array]:
        rngs = {"dropout": rng} if (train and rng is not None) else None
        return model.apply({"params": params}, self._video(batch), batch["mfcc"],
                           batch["has_audio"], train=train, rngs=rngs)

    def init_variables(self, model, rng, batch):
        params_rng, dropout_rng = jax.random.split(rng)
        return model.init({"params": params_rng, "dropout": dropout_rng}, self._video(batch),
                          batch["mfcc"], batch["has_audio"], train=False)

    def loss(self, model, params, batch, rng, train, step=None):
        from jaxaffect.families.avcpnet.ep_ce import multitask_loss

        del step
        out = self._apply(model, params, batch, train=train, rng=rng)
        lcfg = self.config.loss
        if not lcfg.multitask:  # Eq. 9 on the main head only
            main = self.main_head(out)
            out = {main: out[main]}
        valid = batch["valid"]
        loss, scalars = multitask_loss(
            out, batch["label"], jnp.asarray(self.polarity), tuple(lcfg.gammas),
            weights=valid.astype(jnp.float32),
            audio_weights=(valid & batch["has_audio"]).astype(jnp.float32))
        main = out[self.main_head(out)]
        hit = (jnp.argmax(main, -1) == batch["label"]).astype(jnp.float32) * valid
        scalars["accuracy"] = jnp.sum(hit) / jnp.maximum(jnp.sum(valid), 1)
        return loss, scalars

    @staticmethod
    def main_head(out: dict) -> str:
        """The fused head when the model has one, else its single branch."""
        return next(h for h in HEADS if h in out)

    def predict(self, model, params, batch):
        out = self._apply(model, params, batch, train=False)
        main = self.main_head(out)
        res = {"probs": jax.nn.softmax(out[main].astype(jnp.float32), axis=-1)}
        for head in HEADS:
            if head in out and head != main:
                res[f"probs_{head}"] = jax.nn.softmax(out[head].astype(jnp.float32), axis=-1)
        return res

    def load_clip(self, path: str) -> dict[str, Any]:
        """A video file -> a device batch of one, sampled as at evaluation (the build's frame
        size and rate, centre snippets, centre crop)."""
        from jaxaffect.features.media import decode_video

        clip = decode_video(path, short_side=int(self.metadata.get("short_side", 128)),
                            max_fps=float(self.metadata.get("max_fps", 15.0)))
        jpegs = _JpegFrames(clip.frames)
        ex = clips.clip_inputs(jpegs, clip.audio, clip.has_audio, self.spec, None, where=path)
        return {k: np.asarray(v)[None] for k, v in ex.items()}

    # -- evaluation ---------------------------------------------------------------------------
    def selection_metric(self) -> str:
        return "accuracy"

    def evaluate(self, outputs, host):
        labels = np.asarray(outputs["label"]).astype(np.int32)
        names = self.class_names
        res: dict[str, float] = {}
        for key, prefix in (("probs", ""), ("probs_visual", "visual/"),
                            ("probs_audio", "audio/"), ("probs_fused", "fused/")):
            if key in outputs:
                preds = np.asarray(outputs[key]).argmax(-1)
                m = metrics.classification_metrics(labels, preds, len(names), names)
                res.update({f"{prefix}{k}": v for k, v in m.items()})
        res["num_examples"] = float(len(labels))
        probs = np.asarray(outputs["probs"])
        ids = host.get("video_id")
        records = [{"video_id": str(ids[i]) if ids is not None else str(i),
                    "label": names[labels[i]], "prediction": names[int(probs[i].argmax())],
                    "probabilities": {n: round(float(p), 6) for n, p in zip(names, probs[i])}}
                   for i in range(len(labels))]
        return res, records

    def write_figures(self, outputs, metrics_, out_dir, split):
        from jaxaffect.plots import plot_confusion_matrix

        labels = np.asarray(outputs["label"]).astype(np.int32)
        preds = np.asarray(outputs["probs"]).argmax(-1).astype(np.int32)
        cm = np.asarray(metrics.confusion_matrix(labels, preds, len(self.class_names)))
        path = os.path.join(out_dir, f"confusion_{split}.png")
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        plot_confusion_matrix(cm, list(self.class_names), path,
                              title=f"{self.config.get('name', 'avcpnet')} on {split} "
                                    f"(accuracy {metrics_.get('accuracy', float('nan')):.3f}, "
                                    f"WA-F1 {metrics_.get('weighted_f1', float('nan')):.3f})")
        return [path]


def _as_tuple(value):
    return tuple(value) if isinstance(value, (list, tuple)) else value


class _JpegFrames:
    """Decoded frames seen as the JPEG bytes a build stores (encoded on access), so that a
    raw file is sampled exactly as a built clip is."""

    def __init__(self, frames):
        self.frames = frames

    def __len__(self) -> int:
        return len(self.frames)

    def __getitem__(self, i: int) -> bytes:
        from jaxaffect.features.media import encode_jpeg

        frame = self.frames[i]
        return frame if isinstance(frame, bytes) else encode_jpeg(np.asarray(frame))
