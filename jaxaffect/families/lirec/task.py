"""LIReC on MovieGraphs: interactions, relationships and who is interacting (Kukleva et al.).

One Task covers the paper's settings (``config.setting``):

======================  ==========================================================================
"interactions"          Eqs. 1-2: one clip, its true pair's tracks; Tables 1 and 4.
"relationships"         Eqs. 3-4: the clip and up to ``data.num_clips`` other clips of its pair.
"joint"                 Eqs. 5-6 (lambda = 1.5, ``model.coupling``: Table 3); Table 2.
"characters_full"       Eqs. 7-8: interactions x candidate pairs, true pair known (Table 5).
"characters_weak"       Eqs. 9-10: pair chosen by argmax or multinomial sampling; hard negatives
                        (``loss.negatives="sum_max"``) after ``loss.burn_in_epochs`` (Table 5).
"all_full"/"all_weak"   Eqs. 11-14: interactions, relationships and pairs (Table 6).
======================  ==========================================================================

Data: the `moviegraphs_lirec` build (one example per clip, see jaxaffect.families.lirec.batches),
read once per split into memory (jaxaffect.data.prepared) with a clip_id index for the groups.

Evaluation (host side, whole split, lirec_inference):

* interaction top-1, soft top-1 (``{a*} u O_I(v)``) and top-5 (Table 1); for the character
  settings the same given the true pair;
* relationship top-1 with the sigmoid scores summed over all clips of the same movie and ordered
  pair, each pair counted once (``relationship_top1``); ``relationship_top1_clip`` without
  summing; for "all_*" the relationship given the true pair (Table 6 "Rel.");
* character-pair accuracy given the interaction (and the relationship for "all_*"), joint
  accuracy (argmax of the P x A (x R) scores).

The selection metric (best checkpoint on validation): interaction_top1 ("interactions"),
relationship_top1 ("relationships"), their mean "int_rel_mean" ("joint"), joint_accuracy
(character settings).

Temporal aggregation (``model.temporal_pool``, Table 4) pools per-segment features inside a clip.
The `moviegraphs_lirec` build stores features already max-pooled over the clip (Sec. 4.1), so on
it every option sees one segment and gives the same numbers; the option stays wired for builds
with per-segment features (the inputs get a time axis of length 1 here).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jaxaffect.config_loading import resolve_builder_dir
from jaxaffect.families.lirec import batches as lb
from jaxaffect.families.lirec import inference as inf
from jaxaffect.families.lirec import losses as ll
from jaxaffect.families.lirec.configs.common import apply_released_code
from jaxaffect.task import Task

DATASET_NAME = "moviegraphs_lirec"
SELECTION = {"interactions": "interaction_top1", "relationships": "relationship_top1",
             "joint": "int_rel_mean"}


def _np(x) -> np.ndarray:
    return np.asarray(jax.device_get(x))


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.asarray(x, np.float64)))


# ---------------------------------------------------------------------------- metric helpers
def interaction_metrics(logits: np.ndarray, labels: np.ndarray, overlap: np.ndarray,
                        mask: np.ndarray | None = None, prefix: str = "interaction"
                        ) -> dict[str, float]:
    """Top-1, soft top-1 and top-5 (Table 1) of logits [N, A]."""
    z, y = jnp.asarray(logits), jnp.asarray(labels)
    m = None if mask is None else jnp.asarray(mask)
    return {f"{prefix}_top1": float(inf.topk_accuracy(z, y, 1, m)),
            f"{prefix}_soft_top1": float(inf.soft_top1_accuracy(z, jnp.asarray(overlap), y, m)),
            f"{prefix}_top5": float(inf.topk_accuracy(z, y, 5, m))}


def relationship_by_pair(logits: np.ndarray, labels: np.ndarray, keys: np.ndarray,
                         mask: np.ndarray) -> tuple[float, np.ndarray]:
    """Relationship top-1 with sigmoid scores summed over the clips of one key (movie + pair).

    Each key counts once (a clip weighs 1 / its key's clip count, as
    lirec_inference.relationship_accuracy_by_pair, in O(N)). Returns the accuracy and the
    per-clip predictions [N] (-1 outside `mask`).
    """
    mask = np.asarray(mask, bool)
    preds = np.full(len(labels), -1, np.int64)
    if not mask.any():
        return 0.0, preds
    _, ids = np.unique(np.asarray(keys)[mask].astype(str), return_inverse=True)
    scores = sigmoid(np.asarray(logits)[mask])
    summed = np.zeros((ids.max() + 1, scores.shape[-1]))
    np.add.at(summed, ids, scores)
    counts = np.bincount(ids)
    pred = summed.argmax(-1)[ids]
    preds[mask] = pred
    correct = pred == np.asarray(labels)[mask]
    weight = 1.0 / counts[ids]
    return float(np.sum(weight * correct) / np.sum(weight)), preds


def either_direction_accuracy(pred: np.ndarray, tp: np.ndarray, outputs: dict,
                              mask: np.ndarray) -> float:
    """Pair accuracy that also accepts the true pair read the other way round: the two
    characters are found even when the direction is not (clip-level labels alone cannot tell
    who acts on whom unless the features show it)."""
    rev = np.asarray(outputs.get("reverse_pair", np.full(len(tp), -1))).astype(np.int64)
    hit = (pred == tp) | ((rev >= 0) & (pred == rev))
    return float(hit[mask].mean()) if mask.any() else 0.0


def random_baselines(setting: str, examples: list[dict], num_interactions: int = 101,
                     num_relationships: int = 15, max_pairs: int = 20) -> dict[str, float]:
    """Exact expected accuracies of guessing uniformly over classes (and candidate pairs),
    over the samples each metric is computed on (Tables 2, 5, 6 "Random")."""
    a, r = num_interactions, num_relationships
    out: dict[str, float] = {}
    ov = np.array([np.asarray(e["overlap_interactions"], bool).copy() for e in examples])
    lab = np.array([int(e["interaction"]) for e in examples])
    rel = np.array([int(e["relationship"]) for e in examples])
    npairs = np.array([min(int(e["num_pairs"]), max_pairs) for e in examples])
    tp = np.array([int(e["true_pair"]) for e in examples])
    ov[np.arange(len(lab)), lab] = True
    has_pair = (tp >= 0) & (tp < max_pairs)
    chars = setting in lb.CHARACTER_SETTINGS
    m = has_pair if chars else np.ones(len(lab), bool)
    if setting != "relationships" and m.any():
        out["interaction_top1"] = 1.0 / a
        out["interaction_soft_top1"] = float(ov[m].sum(-1).mean() / a)
        out["interaction_top5"] = min(5, a) / a
    if setting in ("relationships", "joint", "all_full", "all_weak"):
        out["relationship_top1"] = 1.0 / r
    if chars and m.any():
        inv_p = 1.0 / np.maximum(npairs, 1)
        either = np.array([1.0 + (lb.reverse_pair(e, max_pairs) >= 0) for e in examples]) * inv_p
        if setting.startswith("all"):
            mr = m & (rel >= 0)
            out["character_accuracy"] = float(inv_p[mr].mean()) if mr.any() else 0.0
            out["character_accuracy_either_direction"] = (float(either[mr].mean()) if mr.any()
                                                          else 0.0)
            out["character_accuracy_given_interaction"] = float(inv_p[m].mean())
            out["joint_accuracy"] = float((inv_p[mr] / (a * r)).mean()) if mr.any() else 0.0
        else:
            out["character_accuracy"] = float(inv_p[m].mean())
            out["character_accuracy_either_direction"] = float(either[m].mean())
            out["joint_accuracy"] = float((inv_p[m] / a).mean())
    if setting == "joint":
        out["int_rel_mean"] = 0.5 * (out["interaction_top1"] + out["relationship_top1"])
    return out


class LIReCTask(Task):
    host_keys = lb.HOST_KEYS
    #: in-memory datasets: name -> ({split: examples}, metadata) (tests, notebooks)
    memory_datasets: ClassVar[dict[str, tuple[dict[str, list], dict]]] = {}

    def __init__(self, config: ml_collections.ConfigDict):
        if config.model.get("released_code", False):
            apply_released_code(config)  # so --config.model.released_code=True is enough
        super().__init__(config)
        self.setting = config.setting
        if self.setting not in lb.SETTINGS:
            raise ValueError(f"setting={self.setting!r}: one of {lb.SETTINGS}")
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
        dims = self.metadata["dims"]
        self.interaction_names = list(self.metadata.get(
            "interactions", [f"interaction_{i}" for i in range(lb.NUM_INTERACTIONS)]))
        self.relationship_names = list(self.metadata.get(
            "relationships", [f"relationship_{i}" for i in range(lb.NUM_RELATIONSHIPS)]))
        self.spec = lb.BatchSpec(self.setting, int(dims["visual"]), int(dims["text"]),
                                 int(dims["tracks"]), num_clips=int(config.data.num_clips),
                                 max_pairs=int(config.data.max_pairs),
                                 num_interactions=len(self.interaction_names))
        self._index: dict[str, dict] = {}

    @classmethod
    def add_memory_dataset(cls, name: str, splits: dict[str, list], metadata: dict) -> None:
        """Registers examples held in memory; select them with config.data.memory = name."""
        cls.memory_datasets[name] = (splits, metadata)

    # -- data ---------------------------------------------------------------------------------
    def examples(self, split: str) -> list[dict]:
        if split not in self._splits:
            from jaxaffect.data import prepared

            self._splits[split] = prepared.read_examples(self.builder_dir, split)
        return self._splits[split]

    def index(self, split: str) -> dict:
        if split not in self._index:
            self._index[split] = lb.index_by_clip(self.examples(split))
        return self._index[split]

    def dataset(self, split, *, train, seed, num_epochs, process_index, process_count):
        from jaxaffect.data.memory_dataset import make_batches

        return make_batches(
            self.examples(split), batch_size=self.config.training.batch_size, train=train,
            seed=seed, num_epochs=num_epochs, process_index=process_index,
            process_count=process_count, transform=lb.Transform(self.spec, self.index(split)),
            padding=lb.padding(self.spec))

    def num_examples(self, split: str) -> int:
        return len(self.examples(split))

    def dummy_batch(self, batch_size: int) -> dict[str, Any]:
        return lb.dummy_batch(self.spec, batch_size)

    def steps_per_epoch(self) -> int:
        return max(1, self.num_examples("train") // self.config.training.batch_size)

    # -- model --------------------------------------------------------------------------------
    def model_tasks(self) -> tuple[str, ...]:
        if self.setting == "relationships":
            return ("relationships",)
        if self.setting in ("joint", "all_full", "all_weak"):
            return ("interactions", "relationships")
        return ("interactions",)

    def make_model(self):
        from jaxaffect.families.lirec.model import RELEASED_CODE, LIReC

        m = self.config.model
        tasks = self.model_tasks()
        both = len(tasks) == 2
        if m.released_code:
            kw = {k: v for k, v in RELEASED_CODE.items() if k != "coupling"}
            # the released code has the W^I1 layer only in its joint model (models.lirec doc)
            kw["int_hidden_dim"] = RELEASED_CODE["int_hidden_dim"] if both else 0
        else:
            kw = dict(joint_dim=m.joint_dim, track_hidden_dim=m.track_hidden_dim,
                      track_out_dim=m.track_out_dim, int_hidden_dim=m.int_hidden_dim,
                      dropout_rate=m.dropout_rate, rel_pool=m.rel_pool,
                      rel_pool_before_tanh=m.rel_pool_before_tanh,
                      separate_rel_weights=m.separate_rel_weights)
        return LIReC(num_interactions=len(self.interaction_names),
                     num_relationships=len(self.relationship_names), tasks=tasks,
                     coupling=m.coupling if both else "none", modalities=tuple(m.modalities),
                     temporal_pool=m.temporal_pool or None, **kw)

    def _inputs(self, batch) -> tuple:
        x = batch["inputs"]
        vis, txt, trk, cm = x["visual"], x["text"], x["tracks"], x["clip_mask"]
        if self.spec.characters:  # per-clip branches once, broadcast over the P pairs
            vis, txt, cm = vis[:, None], txt[:, None], cm[:, None]
        if self.config.model.temporal_pool:  # one (already pooled) segment per clip
            vis, txt, trk = vis[..., None, :], txt[..., None, :], trk[..., None, :]
        return vis, txt, trk, cm

    def _apply(self, model, params, batch, *, train: bool, rng=None) -> dict[str, jax.Array]:
        rngs = {"dropout": rng} if (train and rng is not None) else None
        return model.apply({"params": params}, *self._inputs(batch), deterministic=not train,
                           rngs=rngs)

    def init_variables(self, model, rng, batch):
        params_rng, dropout_rng = jax.random.split(rng)
        return model.init({"params": params_rng, "dropout": dropout_rng},
                          *self._inputs(batch), deterministic=True)

    def _allowed(self, labels, overlap):
        """Complement of O_I(v) (optionally with the clip's own column allowed, see config)."""
        allowed = ~overlap.astype(bool)
        if self.config.loss.full_column_negatives:
            allowed = allowed | jax.nn.one_hot(labels, overlap.shape[-1], dtype=bool)
        return allowed

    def loss(self, model, params, batch, rng, train, step=None):
        drop_rng, pick_rng = jax.random.split(rng)
        out = self._apply(model, params, batch, train=train, rng=drop_rng)
        return self.loss_from_logits(out, batch, pick_rng, step)

    def loss_from_logits(self, out, batch, rng, step=None):
        """The setting's lirec_losses call on the model outputs `out` (pure)."""
        lc, st = self.config.loss, self.setting
        valid = batch["valid"].astype(bool)
        inter, rel = batch["interaction"], batch["relationship"]
        has_rel = valid & (rel >= 0)
        rel_safe = jnp.maximum(rel, 0)
        if st == "interactions":
            loss = ll.interaction_loss(out["interaction_logits"][:, 0], inter,
                                       self._allowed(inter, batch["overlap"]),
                                       margin=lc.margin_int, sample_mask=valid)
            return loss, {"interaction": loss}
        if st == "relationships":
            loss = ll.relationship_loss(out["relationship_logits"], rel_safe,
                                        margin=lc.margin_rel, sample_mask=has_rel)
            return loss, {"relationship": loss}
        if st == "joint":
            g = batch["group"]
            int_mask = batch["inputs"]["clip_mask"].astype(bool) & valid[:, None]
            loss, aux = ll.joint_interaction_relationship_loss(
                out["interaction_logits"], g["interaction"], out["relationship_logits"],
                rel_safe, allowed_negatives=self._allowed(g["interaction"], g["overlap"]),
                int_mask=int_mask, rel_mask=has_rel, lam=lc.lam, margin_int=lc.margin_int,
                margin_rel=lc.margin_rel)
            return loss, _scalars(aux)
        # character settings: [B, P, 1 or S, A] -> the target clip's slot
        full = st.endswith("_full")
        tp = batch["true_pair"]
        sample_mask = valid & (tp >= 0) if full else valid
        hard_kw = dict(negatives=lc.negatives, epoch=0 if step is None else step,
                       burn_in=lc.burn_in_epochs * self.steps_per_epoch())
        sel_kw = dict(supervision="full" if full else "weak", true_pair=jnp.maximum(tp, 0),
                      selection="sample" if lc.pair_selection == "multinomial" else "argmax",
                      rng=rng, sample_from=lc.sample_from)
        int_logits = out["interaction_logits"][:, :, 0]
        allowed = self._allowed(inter, batch["overlap"])
        if st.startswith("characters"):
            loss, aux = ll.interaction_character_loss(
                int_logits, inter, batch["pair_mask"], allowed_negatives=allowed,
                margin=lc.margin_int, sample_mask=sample_mask, **sel_kw, **hard_kw)
            return loss, {"interaction": loss, "hard_negatives": aux["hard"]}
        loss, aux = ll.interaction_relationship_character_loss(
            int_logits, out["relationship_logits"], inter, rel_safe, batch["pair_mask"],
            allowed_negatives=allowed, rel_sample_mask=rel >= 0, lam=lc.lam,
            margin_int=lc.margin_int, margin_rel=lc.margin_rel, sample_mask=sample_mask,
            **sel_kw, **hard_kw)
        return loss, _scalars(aux)

    def predict(self, model, params, batch):
        out = self._apply(model, params, batch, train=False)
        res = {}
        if "interaction_logits" in out:
            z = out["interaction_logits"].astype(jnp.float32)
            res["interaction_logits"] = z[:, :, 0] if self.spec.characters else z[:, 0]
        if "relationship_logits" in out:
            res["relationship_logits"] = out["relationship_logits"].astype(jnp.float32)
        return res

    def load_clip(self, path: str) -> dict[str, Any]:
        """A one-clip folder (what `predict --video ... --characters A,B` extracts) -> a batch
        of one, as at evaluation; its candidate pairs are kept in `clip_pairs`."""
        from jaxaffect.families.lirec import one_clip

        example = one_clip.clip_example(path, self.interaction_names, self.relationship_names,
                                        self.metadata["dims"])
        self.clip_pairs = np.asarray(example["pair_characters"], dtype=object)
        return self.device_batch(one_clip.clip_batch(self.spec, example))

    def describe_clip(self, out: dict[str, np.ndarray]) -> dict[str, Any]:
        """The printed prediction of the clip `load_clip` read last (see one_clip.describe)."""
        from jaxaffect.families.lirec import one_clip

        return one_clip.describe(out, self.clip_pairs, self.interaction_names,
                                 self.relationship_names)

    # -- evaluation ---------------------------------------------------------------------------
    def selection_metric(self) -> str:
        return SELECTION.get(self.setting, "joint_accuracy")

    def selection_mode(self) -> str:
        return "max"

    def evaluate(self, outputs, host):
        st = self.setting
        inter = np.asarray(outputs["interaction"]).astype(np.int64)
        rel = np.asarray(outputs["relationship"]).astype(np.int64)
        tp = np.asarray(outputs["true_pair"]).astype(np.int64)
        overlap = np.asarray(outputs["overlap"], bool)
        n = len(inter)
        keys = host.get("pair_key", np.array([str(i) for i in range(n)], dtype=object))
        has_rel = rel >= 0
        res: dict[str, float] = {"num_examples": float(n)}
        preds: dict[str, np.ndarray] = {}
        if st in ("interactions", "joint"):
            z = np.asarray(outputs["interaction_logits"])
            res.update(interaction_metrics(z, inter, overlap))
            preds["interaction"] = z.argmax(-1)
        if st in ("relationships", "joint"):
            z = np.asarray(outputs["relationship_logits"])
            res["relationship_top1"], preds["relationship"] = relationship_by_pair(
                z, np.maximum(rel, 0), keys, has_rel)
            res["relationship_top1_clip"] = _masked_acc(z.argmax(-1) == rel, has_rel)
            res["num_relationship_pairs"] = float(len(set(np.asarray(keys)[has_rel])))
        if st == "joint":
            res["int_rel_mean"] = 0.5 * (res["interaction_top1"] + res["relationship_top1"])
        if self.spec.characters:
            res.update(self._character_metrics(outputs, inter, rel, tp, overlap, keys, preds))
        records = []
        for i in range(n):
            r: dict[str, Any] = {k: str(host[k][i]) for k in ("clip_id", "movie_id", "pair_key")
                                 if k in host}
            r["interaction"] = self.interaction_names[inter[i]]
            if "interaction" in preds:
                r["predicted_interaction"] = self.interaction_names[int(preds["interaction"][i])]
            if has_rel[i]:
                r["relationship"] = self.relationship_names[rel[i]]
                if "relationship" in preds and preds["relationship"][i] >= 0:
                    r["predicted_relationship"] = self.relationship_names[
                        int(preds["relationship"][i])]
            if "pair" in preds:
                r["true_pair"], r["predicted_pair"] = int(tp[i]), int(preds["pair"][i])
            records.append(r)
        self._last_relationship_preds = (rel, preds.get("relationship"))
        ipred = preds.get("interaction")  # with characters: read on the true pair's row
        keep = (tp >= 0) if self.spec.characters else np.ones(n, bool)
        self._last_interaction_preds = (inter[keep], None if ipred is None else ipred[keep])
        return res, records

    def _character_metrics(self, outputs, inter, rel, tp, overlap, keys, preds):
        """Tables 5/6: interaction given the pair, pair given the interaction (and
        relationship), joint accuracy; over the clips whose true pair is a candidate."""
        zi = jnp.asarray(outputs["interaction_logits"])
        pm = jnp.asarray(outputs["pair_mask"])
        m = tp >= 0
        tps = np.maximum(tp, 0)
        row = np.asarray(zi)[np.arange(len(tp)), tps]
        res = interaction_metrics(row, inter, overlap, m)
        res["num_with_pair"] = float(m.sum())
        y, t, mj = jnp.asarray(inter), jnp.asarray(tps), jnp.asarray(m)
        if not self.setting.startswith("all"):
            res["character_accuracy"] = float(inf.pair_accuracy(zi, y, t, pm, sample_mask=mj))
            res["joint_accuracy"] = float(inf.joint_accuracy(zi, y, t, pm, sample_mask=mj))
            preds["pair"] = _np(inf.predict_pair(zi, y, pm))
            preds["interaction"] = row.argmax(-1)
            res["character_accuracy_either_direction"] = either_direction_accuracy(
                preds["pair"], tp, outputs, m)
            return res
        zr = jnp.asarray(outputs["relationship_logits"])
        mr = m & (rel >= 0)
        r, mrj = jnp.asarray(np.maximum(rel, 0)), jnp.asarray(mr)
        res["num_with_pair_and_relationship"] = float(mr.sum())
        res["relationship_given_pair"] = float(inf.relationship_accuracy_given_pair(
            zr, r, t, mrj))
        res["character_accuracy"] = float(inf.pair_accuracy(zi, y, t, pm, zr, r, mrj))
        res["character_accuracy_given_interaction"] = float(
            inf.pair_accuracy(zi, y, t, pm, sample_mask=mj))
        res["joint_accuracy"] = float(inf.joint_accuracy(zi, y, t, pm, zr, r, mrj))
        rel_row = np.asarray(zr)[np.arange(len(tp)), tps]
        res["relationship_top1"], preds["relationship"] = relationship_by_pair(
            rel_row, np.maximum(rel, 0), keys, mr)
        preds["pair"] = _np(inf.predict_pair(zi, y, pm, zr, r))
        preds["interaction"] = row.argmax(-1)
        res["character_accuracy_either_direction"] = either_direction_accuracy(
            preds["pair"], tp, outputs, mr)
        return res

    def write_figures(self, outputs, metrics_, out_dir, split):
        """Top-1 interaction confusion over the split's 15 most frequent interactions (the rest
        pooled as "other"), and the relationship confusion (15 classes) of the settings that
        predict relationships."""
        from jaxaffect.metrics import confusion_matrix
        from jaxaffect.plots import plot_confusion_matrix

        name = self.config.get("name", "lirec")
        paths = []
        inter, ipred = getattr(self, "_last_interaction_preds", (None, None))
        if ipred is not None and len(ipred):
            top = np.argsort(-np.bincount(inter, minlength=len(self.interaction_names)),
                             kind="stable")[:15]
            index = np.full(len(self.interaction_names), len(top))  # others -> "other"
            index[top] = np.arange(len(top))
            names = [self.interaction_names[i] for i in top] + ["(other)"]
            cm = np.asarray(confusion_matrix(jnp.asarray(index[inter]),
                                             jnp.asarray(index[np.asarray(ipred)]), len(names)))
            path = str(Path(out_dir) / f"interaction_confusion_{split}.png")
            acc = metrics_.get("interaction_top1", float("nan"))
            plot_confusion_matrix(cm, names, path,
                                  title=f"{name} on {split}: interactions, 15 most frequent "
                                        f"(top-1 {acc:.3f})")
            paths.append(path)
        rel, pred = getattr(self, "_last_relationship_preds", (None, None))
        if ("relationship_logits" not in outputs or pred is None
                or len(pred) != len(outputs["relationship"])):
            return paths
        keep = (rel >= 0) & (pred >= 0)
        cm = np.asarray(confusion_matrix(jnp.asarray(rel[keep]), jnp.asarray(pred[keep]),
                                         len(self.relationship_names)))
        path = str(Path(out_dir) / f"relationship_confusion_{split}.png")
        acc = metrics_.get("relationship_top1", float("nan"))
        plot_confusion_matrix(cm, self.relationship_names, path,
                              title=f"{name} on {split}: relationships (top-1 by pair {acc:.3f})")
        return paths + [path]

    def random_baselines(self, split: str) -> dict[str, float]:
        return random_baselines(self.setting, self.examples(split), len(self.interaction_names),
                                len(self.relationship_names), self.spec.max_pairs)


def _masked_acc(correct: np.ndarray, mask: np.ndarray) -> float:
    mask = np.asarray(mask, bool)
    return float(np.asarray(correct)[mask].mean()) if mask.any() else 0.0


def _scalars(aux: dict) -> dict[str, jax.Array]:
    return {k: jnp.asarray(v, jnp.float32) for k, v in aux.items() if jnp.ndim(v) == 0
            and k != "loss"}
