"""TAM's time-sync-comment (TSC) pretraining of the CTM module (Sec. 4.2, Tables 3-4).

Data: the ``bilibili_tsc`` build (windows of ``data.num_segments`` consecutive segments and
their comments, :func:`jaxaffect.families.tam.batches.tsc_example`). Splits: ``validation`` is a
deterministic ``data.validation_fraction`` of the build's train split chosen by a hash of
``example_id`` (:func:`jaxaffect.data.splits.in_hash_fraction`, stable across seeds and
builds), ``train`` the rest, ``train_full`` all of it, ``test`` the build's test split.

Model: :class:`~jaxaffect.families.tam.tsc_decoder.TAMPretrainModel`; params
``{"encoder", "decoder", "word_head"}``, so fine-tuning copies ``params["encoder"]``. The words are
masked inside the jitted loss (``pretrain.masking``: "emotional" = every lexicon word, Table 3's
"random10/20/30" = that share of each comment's words), the loss is Eq. 10 over ``pretrain.tasks``
with ``pretrain.lambda_w`` / ``lambda_t`` (Table 4).

Model selection: the validation pretraining loss (Eq. 10 over the chosen tasks, averaged over
the split's masked words and comments), lower is better: it is the objective itself, exists
for every Table 4 row, and is not saturated like an accuracy on a small validation set.

Config fields: ``configs/tam/pretrain.py`` (:mod:`jaxaffect.families.tam.configs.pretrain`).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jaxaffect.data import prepared, splits
from jaxaffect.families.tam import batches as tam_batches
from jaxaffect.families.tam import tsc_objectives as tp
from jaxaffect.families.tam.data_task import TAMDataTask
from jaxaffect.nn import compute_dtype
from jaxaffect.task import Batch, Task

MASKINGS = {"emotional": 0.0, "random10": 0.1, "random20": 0.2, "random30": 0.3}
# Never masked: padding, start, mask and unknown-word tokens ([UNK] carries no word to predict).
SPECIAL_IDS = (tam_batches.PAD_ID, tam_batches.START_ID, tam_batches.MASK_ID,
               tam_batches.UNK_ID)


class TAMPretrainTask(TAMDataTask):
    host_keys = ("example_id",)
    required_metadata = ("vocab", "stream_dims")
    dummy_true = ("segment_mask", "comment_mask", "valid")

    def __init__(self, config: ml_collections.ConfigDict):
        super().__init__(config)
        self._read_pretrain_config()

    def _read_pretrain_config(self) -> None:
        p = self.config.pretrain
        if p.masking not in MASKINGS:
            raise ValueError(f"pretrain.masking={p.masking!r}: one of {sorted(MASKINGS)}")
        self.tasks = tuple(p.tasks)

    # -- data ---------------------------------------------------------------------------------
    def vocab_size(self) -> int:
        return len(self.metadata()["vocab"])

    def read_splits(self) -> dict[str, list[dict]]:
        frac = float(self.config.data.validation_fraction)
        full = prepared.read_examples(self.builder_dir, "train")
        flags = [splits.in_hash_fraction(str(ex["example_id"]), frac) for ex in full]
        out = {"train": [ex for ex, f in zip(full, flags) if not f],
               "validation": [ex for ex, f in zip(full, flags) if f],
               "train_full": list(full)}
        if "test" in prepared.split_names(self.builder_dir):
            out["test"] = prepared.read_examples(self.builder_dir, "test")
        return out

    def examples(self, split: str) -> list[dict]:
        out = super().examples(split)
        if not out:
            raise ValueError(f"split {split!r} is empty (data.validation_fraction="
                             f"{self.config.data.validation_fraction})")
        return out

    def transform(self) -> tam_batches.TSCTransform:
        d = self.config.data
        return tam_batches.TSCTransform(int(d.num_segments), int(d.max_comments))

    def padding(self) -> dict[str, Any]:
        d = self.config.data
        return tam_batches.tsc_padding(self.stream_dims(), int(d.num_segments),
                                       int(d.max_comments), int(self.config.model.max_words))

    def dummy_batch(self, batch_size: int) -> dict[str, Any]:
        batch = super().dummy_batch(batch_size)
        batch["tokens"][..., 0] = tam_batches.START_ID
        return batch

    # -- model --------------------------------------------------------------------------------
    def make_model(self):
        from jaxaffect.families.tam.fusion_baselines import make_fusion_encoder
        from jaxaffect.families.tam.tsc_decoder import TAMPretrainModel, VideoTSCDecoder

        m = self.config.model
        dtype = compute_dtype(m.dtype)
        encoder = make_fusion_encoder(
            m.strategy, share_across_modalities=m.share_across_modalities,
            modalities=tam_batches.STREAMS, width=m.width, num_layers=m.num_layers,
            num_heads=m.num_heads, mlp_dim=int(m.mlp_dim) or None,
            max_segments=m.max_segments, dropout_rate=m.dropout_rate, remat=m.remat,
            dtype=dtype)
        decoder = VideoTSCDecoder(
            vocab_size=self.vocab_size(), width=m.width, num_layers=m.decoder_layers,
            num_heads=m.num_heads, mlp_dim=int(m.mlp_dim) or None, max_words=m.max_words,
            dropout_rate=m.dropout_rate, pad_id=tam_batches.PAD_ID, remat=m.remat,
            dtype=dtype)
        return TAMPretrainModel(decoder=decoder, encoder=encoder)

    def init_variables(self, model, rng, batch):
        params_rng, dropout_rng = jax.random.split(rng)
        return model.init({"params": params_rng, "dropout": dropout_rng}, batch["features"],
                          batch["segment_mask"], batch["tokens"], train=False)

    def mask_words(self, batch, rng: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
        """Pure: ``(masked token ids, target_mask, word_mask)`` for ``pretrain.masking``."""
        tokens = batch["tokens"]
        comments = batch["comment_mask"].astype(bool) & batch["valid"].astype(bool)[:, None]
        word_mask = (tokens != tam_batches.PAD_ID) & comments[..., None]
        masking = self.config.pretrain.masking
        if masking == "emotional":
            masked, target = tp.mask_emotional_words(
                tokens, batch["emotional"], tam_batches.MASK_ID, valid=word_mask,
                special_ids=SPECIAL_IDS)
        else:
            masked, target = tp.mask_random(tokens, word_mask, MASKINGS[masking], rng,
                                            tam_batches.MASK_ID, special_ids=SPECIAL_IDS)
        return masked, target, word_mask

    def _forward(self, model, params, batch, rng, train: bool):
        # The words are masked whatever the tasks (Eq. 9 speaks of "the masked TSC"), so
        # Table 4's rows differ in the loss only.
        mask_rng, dropout_rng = jax.random.split(rng)
        masked, target, word_mask = self.mask_words(batch, mask_rng)
        target_ids = batch["tokens"]
        positions = None
        k = int(self.config.pretrain.get("max_masked", 0) or 0)
        if k:
            b = target.shape[0]
            flat = target.reshape(b, -1)
            k = min(k, flat.shape[1])
            # The masked positions first, in word order (a stable sort of "not masked").
            order = jnp.argsort(~flat, axis=1, stable=True)[:, :k]
            target = jnp.take_along_axis(flat, order, axis=1)
            target_ids = jnp.take_along_axis(target_ids.reshape(b, -1), order, axis=1)
            positions = jnp.where(target, order, -1)
        out = model.apply({"params": params}, batch["features"], batch["segment_mask"],
                          masked, word_mask=word_mask, word_positions=positions, train=train,
                          rngs={"dropout": dropout_rng} if train else None)
        comments = batch["comment_mask"].astype(bool) & batch["valid"].astype(bool)[:, None]
        targets = {"target_ids": target_ids, "target_mask": target,
                   "segment_index": batch["comment_segment"], "comment_mask": comments}
        return out, targets

    def loss(self, model, params, batch, rng, train, step=None):
        del step
        out, targets = self._forward(model, params, batch, rng, train)
        p = self.config.pretrain
        return tp.pretraining_loss(out, targets, lambda_w=p.lambda_w, lambda_t=p.lambda_t,
                                   tasks=self.tasks)

    def predict(self, model, params, batch):
        # A fixed key: random masking draws the same positions at every evaluation.
        out, t = self._forward(model, params, batch, jax.random.key(0), False)
        res = {}
        for name, logits, target, mask in (
                ("word", out["word_logits"], t["target_ids"], t["target_mask"]),
                ("time", out["time_logits"], t["segment_index"], t["comment_mask"])):
            logp = jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1)
            nll = -jnp.take_along_axis(logp, target[..., None].astype(jnp.int32), -1)[..., 0]
            hit = jnp.argmax(logits, axis=-1) == target
            m = mask.astype(jnp.float32)
            axes = tuple(range(1, m.ndim))
            res[f"{name}_nll_sum"] = jnp.sum(nll * m, axis=axes)
            res[f"{name}_correct"] = jnp.sum(hit * m, axis=axes)
            res[f"{name}_count"] = jnp.sum(m, axis=axes)
        return res

    # -- evaluation ---------------------------------------------------------------------------
    def evaluate(self, outputs, host):
        p = self.config.pretrain
        result: dict[str, float] = {}
        loss = 0.0
        for name, weight in (("word", p.lambda_w), ("time", p.lambda_t)):
            count = float(np.sum(outputs[f"{name}_count"]))
            nll = float(np.sum(outputs[f"{name}_nll_sum"])) / max(count, 1.0)
            result[f"{name}_loss"] = nll
            result[f"{name}_accuracy"] = float(np.sum(outputs[f"{name}_correct"])) / max(count,
                                                                                         1.0)
            result[f"{name}_count"] = count
            if name in self.tasks:
                loss += weight * nll
        result["loss"] = loss
        ids = host.get("example_id")
        records = [{"example_id": str(ids[i]) if ids is not None else str(i),
                    **{f"{n}_{k}": int(round(float(outputs[f"{n}_{k}"][i])))
                       for n in ("word", "time") for k in ("correct", "count")}}
                   for i in range(len(outputs["valid"]))]
        return result, records

    def selection_mode(self) -> str:
        return "min" if self.selection_metric().endswith("loss") else "max"


class RandomBatchPretrainTask(TAMPretrainTask):
    """The pretraining task without a build: its sizes come from the config (``data.vocab_size``
    words, ``data.stream_dims`` {stream: width}, the usual ``data``/``model`` fields) and its
    batches are random (:meth:`random_batch`). For memory and sharding measurements of the
    pretraining step (``benchmarks/tam_pod_memory.py``, ``tests/test_model_axis.py``); it has
    no dataset, so it cannot train a run."""

    def __init__(self, config: ml_collections.ConfigDict):
        Task.__init__(self, config)
        self.builder_dir = ""
        self._splits = None
        self._meta = {"vocab": (), "stream_dims": dict(config.data.stream_dims)}
        self._read_pretrain_config()

    def vocab_size(self) -> int:
        return int(self.config.data.vocab_size)

    def num_examples(self, split: str) -> int:
        return int(self.config.training.batch_size)

    def dataset(self, split, *, train, seed, num_epochs, process_index, process_count):
        raise NotImplementedError("RandomBatchPretrainTask has no dataset; use random_batch")

    def random_batch(self, batch_size: int, seed: int = 0) -> Batch:
        """A device batch of ``batch_size`` windows: every segment and comment present, random
        features, words (``[#S]`` first), emotional flags and appearing segments."""
        rng = np.random.default_rng(seed)
        batch = self.dummy_batch(batch_size)
        for name, x in batch["features"].items():
            batch["features"][name] = rng.normal(size=x.shape).astype(np.float32)
        tokens = batch["tokens"]
        tokens[:] = rng.integers(tam_batches.UNK_ID + 1, self.vocab_size(), tokens.shape)
        tokens[..., 0] = tam_batches.START_ID
        batch["emotional"] = rng.random(tokens.shape) < 0.3
        batch["comment_segment"] = rng.integers(0, batch["segment_mask"].shape[1],
                                                batch["comment_segment"].shape).astype(np.int32)
        batch["comment_mask"][:] = True
        return batch
