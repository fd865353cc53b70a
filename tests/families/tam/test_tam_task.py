"""TAM tasks: split protocol, losses/metrics, configs, and end-to-end train / pretrain / fine-tune
on the builders' dummy data."""

from __future__ import annotations

import json
import math
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import tensorflow_datasets as tfds

from jaxaffect.config_loading import ConfigError, load_config
from jaxaffect.data import build, prepared, splits
from jaxaffect.families.tam import batches as tb
from jaxaffect.families.tam import task as tam
from jaxaffect.families.tam.configs import ctm as ctm_config
from jaxaffect.families.tam.configs import finetune as finetune_config
from jaxaffect.families.tam.configs import pretrain as pretrain_config
from jaxaffect.task import get_task

REPO = Path(__file__).resolve().parents[3]
CONFIGS = REPO / "configs" / "tam"


# ------------------------------------------------------------------------------ split protocol

def fake_examples(num_classes: int, per_class: int, prefix: str) -> list[dict]:
    return [{"video_id": f"C{c}/{prefix}{i}", "label": np.int64(c)}
            for c in range(num_classes) for i in range(per_class)]


def ids(examples) -> list[str]:
    return [str(e["video_id"]) for e in examples]


def test_ve8_random_split_protocol():
    train, test = fake_examples(8, 20, "a"), fake_examples(8, 10, "b")
    s0 = tam.class_list_splits(train, test, split_index=0)
    again = tam.class_list_splits(train, test, split_index=0)
    assert {k: ids(v) for k, v in s0.items()} == {k: ids(v) for k, v in again.items()}
    parts = [set(ids(s0[k])) for k in ("train", "validation", "test")]
    assert not (parts[0] & parts[1] or parts[0] & parts[2] or parts[1] & parts[2])
    assert set.union(*parts) == set(ids(train + test))
    assert set(ids(s0["train_full"])) == parts[0] | parts[1]
    for c in range(8):  # stratified: 30 per class -> 20 train_full / 10 test, 3 validation
        label = lambda xs, c=c: sum(int(e["label"]) == c for e in xs)
        assert label(s0["test"]) == 10 and label(s0["train_full"]) == 20
        assert label(s0["validation"]) == 3
    s1 = tam.class_list_splits(train, test, split_index=1)
    assert ids(s1["test"]) != ids(s0["test"])  # the ten splits differ
    # the first ten splits do not depend on how many are drawn
    s9 = tam.class_list_splits(train, test, split_index=9)
    assert len(s9["test"]) == 80
    # validation is carved with its own seed: a different training seed cannot move it,
    # a different validation seed does
    s0v = tam.class_list_splits(train, test, split_index=0, validation_seed=1)
    assert ids(s0v["test"]) == ids(s0["test"]) and ids(s0v["validation"]) != ids(
        s0["validation"])


def test_released_lists_keep_test():
    train, test = fake_examples(6, 10, "a"), fake_examples(6, 5, "b")
    s = tam.class_list_splits(train, test, split_index=-1)
    assert ids(s["test"]) == sorted(ids(test))
    assert sorted(ids(s["train_full"])) == sorted(ids(train))
    assert len(s["validation"]) == 6 * 2  # round(0.15 * 10) = 2 per class
    with pytest.raises(ValueError, match="both the train and the test"):
        tam.class_list_splits(train, train[:1], split_index=-1)


# ------------------------------------------------------------------------------ losses, metrics

@pytest.mark.parametrize("jit", [False, True])
def test_classification_loss_matches_numpy(jit):
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(6, 5)).astype(np.float32)
    labels = rng.integers(0, 5, size=6)
    valid = np.array([1, 1, 0, 1, 1, 0], bool)
    fn = jax.jit(tam.classification_loss) if jit else tam.classification_loss
    loss, acc = fn(jnp.asarray(logits), jnp.asarray(labels), jnp.asarray(valid))
    logp = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    nll = -logp[np.arange(6), labels]
    np.testing.assert_allclose(float(loss), nll[valid].mean(), rtol=1e-5)
    np.testing.assert_allclose(float(acc), (logits.argmax(-1) == labels)[valid].mean())


@pytest.mark.parametrize("jit", [False, True])
def test_regression_loss_matches_numpy(jit):
    rng = np.random.default_rng(1)
    preds, targets = rng.normal(size=(7, 2)), rng.normal(size=(7, 2))
    valid = np.array([1, 0, 1, 1, 1, 1, 0], bool)
    fn = jax.jit(tam.regression_loss) if jit else tam.regression_loss
    loss, per_dim = fn(jnp.asarray(preds, jnp.float32), jnp.asarray(targets, jnp.float32),
                       jnp.asarray(valid))
    ref = ((preds - targets) ** 2)[valid].mean(0)
    np.testing.assert_allclose(np.asarray(per_dim), ref, rtol=1e-5)
    np.testing.assert_allclose(float(loss), ref.mean(), rtol=1e-5)


def test_regression_metrics_and_pearson():
    rng = np.random.default_rng(2)
    t = rng.normal(size=(50, 2))
    p = t * [1.0, -0.5] + rng.normal(size=(50, 2)) * 0.3
    m = tam.regression_metrics(t, p, ("valence", "arousal"))
    for k, name in enumerate(("valence", "arousal")):
        np.testing.assert_allclose(m[f"pcc/{name}"], np.corrcoef(p[:, k], t[:, k])[0, 1])
        np.testing.assert_allclose(m[f"mse/{name}"], np.mean((p[:, k] - t[:, k]) ** 2))
    assert m["pcc/arousal"] < 0 < m["pcc/valence"]
    np.testing.assert_allclose(m["pcc"], (m["pcc/valence"] + m["pcc/arousal"]) / 2)
    assert tam.pearson(np.ones(5), np.arange(5)) == 0.0  # constant input: 0, not NaN


def test_summary_over_the_ten_splits():
    from jaxaffect.evaluate import summarize_seeds

    results = [{"accuracy": 0.5 + 0.01 * i, "macro_f1": 0.4} for i in range(10)]
    results[3]["extra"] = 1.0  # only in one run: left out
    s = summarize_seeds(results)
    acc = [r["accuracy"] for r in results]
    assert set(s) == {"accuracy", "macro_f1"}
    np.testing.assert_allclose(s["accuracy"]["mean"], np.mean(acc))
    np.testing.assert_allclose(s["accuracy"]["std"], np.std(acc, ddof=1))
    assert s["macro_f1"] == {"mean": 0.4, "std": 0.0, "n": 10}


def test_selection_modes():
    assert tam.selection_mode_for("accuracy") == "max"
    assert tam.selection_mode_for("pcc") == "max"
    assert tam.selection_mode_for("mse") == "min"
    assert tam.selection_mode_for("mse/valence") == "min"


# ------------------------------------------------------------------------------ configs

def test_configs_and_sweeps():
    c = load_config(f"{CONFIGS}/ctm.py:dataset=me2016")
    assert c.task == "tam" and c.data.target_keys == ("valence", "arousal")
    assert c.evaluation.selection_metric == "pcc" and c.training.batch_size == 16
    assert c.data.num_segments == 16 and c.model.width == 768 and c.model.num_layers == 12
    c = load_config(f"{CONFIGS}/ctm.py:dataset=ve8,strategy=joint,split=3")
    assert c.data.split_index == 3 and c.model.strategy == "joint" and c.model.num_heads == 8
    assert (c.optimizer.learning_rate, c.optimizer.weight_decay) == (1e-4, 0.005)
    assert (c.training.batch_size, c.training.num_epochs, c.data.num_segments) == (8, 100, 64)
    assert load_config(f"{CONFIGS}/ctm.py:dataset=ek6").data.split_index == -1
    with pytest.raises(ConfigError):
        load_config(f"{CONFIGS}/ctm.py:dataset=ek6,split=2")
    f = load_config(f"{CONFIGS}/finetune.py:dataset=ve8,pretrained=/runs/pre")
    assert f.init_from.workdir == "/runs/pre"
    assert tuple(map(tuple, f.init_from.subtrees)) == (("encoder", "encoder"),)
    assert tuple(map(tuple, f.optimizer.param_groups)) == (("^encoder/", 1e-5),
                                                            ("^head/", 1e-4))
    with pytest.raises(ConfigError, match="pretrained"):
        load_config(f"{CONFIGS}/finetune.py:dataset=ve8")
    p = load_config(f"{CONFIGS}/pretrain.py:masking=random20,tasks=time,lambda=2:1")
    assert (p.pretrain.masking, tuple(p.pretrain.tasks)) == ("random20", ("time",))
    assert (p.pretrain.lambda_w, p.pretrain.lambda_t) == (2.0, 1.0)
    assert p.model.decoder_layers == 8 and p.model.max_segments == c.model.max_segments
    # every sweep entry is a valid config
    import importlib.util

    for name, expected in (("ctm.py", 6 * 11 + 3 + 12), ("pretrain.py", 8), ("finetune.py", 14)):
        spec = importlib.util.spec_from_file_location(name[:-3], CONFIGS / name)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        args: list[str] = []
        module.sweep(lambda config_arg="", a=args: a.append(config_arg))
        assert len(args) == len(set(args)) == expected
        extra = ",pretrained=/p" if name == "finetune.py" else ""
        for a in args:
            module.get_config(a + extra)


def test_class_names_match_builders():
    from tfds_builders.ekman6 import ekman6_dataset_builder as ek6
    from tfds_builders.liris_accede import liris_accede_dataset_builder as la
    from tfds_builders.video_emotion8 import video_emotion8_dataset_builder as ve8

    assert tam.VE8_CLASSES == ve8.Builder.CLASS_NAMES
    assert tam.EK6_CLASSES == ek6.Builder.CLASS_NAMES
    assert tam.VALENCE_CLASSES == la.VALENCE_CLASSES
    assert tam.AROUSAL_CLASSES == la.AROUSAL_CLASSES


# ------------------------------------------------------------------------------ built data

@pytest.fixture(scope="module")
def ve8_dir(tmp_path_factory) -> str:
    root = tmp_path_factory.mktemp("tam_data")
    return build.build_dataset("video_emotion8",
                               str(REPO / "tfds_builders/video_emotion8/dummy_data"),
                               str(root), "array_record")


@pytest.fixture(scope="module")
def liris_dir(tmp_path_factory) -> str:
    root = tmp_path_factory.mktemp("tam_liris")
    return build.build_dataset("liris_accede",
                               str(REPO / "tfds_builders/liris_accede/dummy_data"),
                               str(root), "array_record")


@pytest.fixture(scope="module")
def tsc_dir(tmp_path_factory) -> str:
    from tfds_builders.bilibili_tsc import bilibili_tsc_dataset_builder as bb

    builder = bb.Builder(config="custom", data_dir=str(tmp_path_factory.mktemp("tam_tsc")))
    builder.download_and_prepare(
        file_format="array_record", download_config=tfds.download.DownloadConfig(
            manual_dir=str(REPO / "tfds_builders/bilibili_tsc/dummy_data")))
    return str(builder.data_dir)


def tiny(config, builder_dir: str):
    config.data.builder_dir = builder_dir
    config.model.width = 16
    config.model.num_layers = 1
    config.model.num_heads = 2
    config.model.max_segments = 8
    config.data.num_segments = 4
    config.training.batch_size = 4
    config.training.num_epochs = 1
    config.training.checkpoint_every_steps = 0
    config.mesh.num_devices = 2
    config.mesh.data = 2
    return config


def test_ve8_task_splits_and_batches(ve8_dir):
    c = tiny(ctm_config.get_config("dataset=ve8,split=0,runlocal"), ve8_dir)
    task = get_task(c)
    sizes = {s: task.num_examples(s) for s in ("train", "validation", "test", "train_full")}
    assert sizes == {"train": 8, "validation": 8, "test": 8, "train_full": 16}
    ds = task.dataset("test", train=False, seed=0, num_epochs=1, process_index=0,
                      process_count=1)
    batches = list(ds)
    assert len(batches) == 2 and all(b["valid"].all() for b in batches)
    b = batches[0]
    assert b["features"]["image"].shape == (4, 4, 4) and b["segment_mask"].shape == (4, 4)
    assert set(np.concatenate([x["video_id"] for x in batches])) == set(
        ids(task.splits()["test"]))
    dummy = task.dummy_batch(2)
    assert jax.tree_util.tree_map(np.shape, dummy) == jax.tree_util.tree_map(
        lambda x: (2,) + np.shape(x)[1:], task.device_batch(b))


def test_modality_subset_table1(ve8_dir):
    c = tiny(ctm_config.get_config("dataset=ve8,split=0,runlocal,modalities=image+audio"), ve8_dir)
    task = get_task(c)
    batch = task.device_batch(next(iter(task.dataset(
        "train", train=True, seed=0, num_epochs=1, process_index=0, process_count=1))))
    model = task.make_model()
    # shapes only (no compilation): the parameters exist for the chosen streams alone
    params = jax.eval_shape(lambda r: task.init_variables(model, r, batch),
                            jax.random.key(0))["params"]
    leaves = ["/".join(str(k.key) for k in path)
              for path, _ in jax.tree_util.tree_leaves_with_path(params)]
    assert any("image" in n for n in leaves) and any("audio" in n for n in leaves)
    assert not any("motion" in n for n in leaves)
    loss, _ = jax.eval_shape(lambda p: task.loss(model, p, batch, jax.random.key(1), True),
                             params)
    assert loss.shape == ()
    with pytest.raises(ConfigError, match="modalities"):
        ctm_config.get_config("dataset=ve8,modalities=image+depth")


def test_liris_task_uses_build_validation(liris_dir):
    c = tiny(ctm_config.get_config("dataset=me2016,runlocal"), liris_dir)
    task = get_task(c)
    assert task.num_examples("validation") == len(prepared.read_examples(liris_dir,
                                                                         "validation"))
    assert task.num_examples("train_full") == task.num_examples("train") + task.num_examples(
        "validation")
    assert task.selection_metric() == "pcc" and task.selection_mode() == "max"
    model = task.make_model()
    batch = task.device_batch(next(iter(task.dataset(
        "train", train=True, seed=0, num_epochs=1, process_index=0, process_count=1))))

    def run(rng, b):  # one compiled program: init, loss, raw outputs
        params = task.init_variables(model, rng, b)["params"]
        loss, aux = task.loss(model, params, b, rng, False)
        return params, loss, aux, model.apply({"params": params}, b["features"],
                                              b["segment_mask"])

    params, loss, aux, out = jax.jit(run)(jax.random.key(0), batch)
    assert set(params) == {"encoder", "head"}
    ref = np.mean((np.asarray(out) - batch["target"]) ** 2)
    np.testing.assert_allclose(float(loss), ref, rtol=1e-5)
    assert set(aux) == {"mse/valence", "mse/arousal"}


def test_pretrain_masking(tsc_dir):
    c = tiny(pretrain_config.get_config("runlocal"), tsc_dir)
    task = get_task(c)
    batch = next(iter(task.dataset("train_full", train=False, seed=0, num_epochs=1,
                                   process_index=0, process_count=1)))
    masked, target, word_mask = jax.jit(task.mask_words)(task.device_batch(batch),
                                                         jax.random.key(0))
    masked, target = np.asarray(masked), np.asarray(target)
    real = (batch["tokens"] != 0) & batch["comment_mask"][..., None] & batch["valid"][:, None,
                                                                                      None]
    expect = batch["emotional"] & real & (batch["tokens"] > tb.UNK_ID)
    assert target.any()
    np.testing.assert_array_equal(target, expect)
    np.testing.assert_array_equal(masked, np.where(expect, tb.MASK_ID, batch["tokens"]))
    np.testing.assert_array_equal(np.asarray(word_mask), real)
    c.pretrain.masking = "random30"
    masked, target, _ = get_task(c).mask_words(task.device_batch(batch), jax.random.key(0))
    target = np.asarray(target)
    maskable = real & (batch["tokens"] > tb.UNK_ID)
    n = maskable.sum(-1)
    k = np.where(n > 0, np.maximum(1, np.floor(0.3 * n + 0.5)), 0)
    np.testing.assert_array_equal(target.sum(-1), k)
    assert not (target & ~maskable).any()


def test_pretrain_loss_with_gathered_masked_words_is_unchanged(tsc_dir):
    c = tiny(pretrain_config.get_config("runlocal"), tsc_dir)
    task = get_task(c)
    batch = task.device_batch(next(iter(task.dataset(
        "train_full", train=False, seed=0, num_epochs=1, process_index=0, process_count=1))))
    model = task.make_model()
    params = task.init_variables(model, jax.random.key(1), batch)["params"]
    losses = {}
    for k in (0, 64):
        c.pretrain.max_masked = k
        variant = get_task(c)
        loss, aux = jax.jit(lambda p, b, t=variant: t.loss(model, p, b, jax.random.key(2),
                                                           False))(params, batch)
        losses[k] = (float(loss), float(aux["word_count"]))
    assert losses[0][1] > 1  # several masked words in the batch
    np.testing.assert_allclose(losses[64][0], losses[0][0], rtol=1e-5)
    assert losses[64][1] == losses[0][1]


# ------------------------------------------------------------------------------ end to end

pytestmark_slow = pytest.mark.slow


@pytestmark_slow
def test_pretrain_then_finetune(tsc_dir, ve8_dir, tmp_path):
    from jaxaffect.checkpointing import read_run_params
    from jaxaffect.train import train

    # one example in validation, the rest (>= one batch) in train
    examples = prepared.read_examples(tsc_dir, "train")
    hashes = sorted(splits.hash_fraction(str(e["example_id"])) for e in examples)
    pc = tiny(pretrain_config.get_config("masking=emotional,tasks=word+time,runlocal"),
              tsc_dir)
    pc.data.validation_fraction = (hashes[0] + hashes[1]) / 2
    pc.data.num_segments = 8
    pc.model.decoder_layers = 1
    pre_dir = tmp_path / "pre"
    summary = train(pc, str(pre_dir), progress=False)
    assert summary["finished"] and summary["best_step"] is not None
    best = summary["best_validation"]
    assert math.isfinite(best["loss"]) and best["word_count"] > 0 and best["time_count"] > 0
    np.testing.assert_allclose(best["loss"], best["word_loss"] + best["time_loss"], rtol=1e-6)
    pre_params, _ = read_run_params(str(pre_dir))
    assert set(pre_params) == {"encoder", "decoder", "word_head"}

    fc = tiny(finetune_config.get_config(f"dataset=ve8,split=0,pretrained={pre_dir},runlocal"),
              ve8_dir)
    # a zero learning rate for the encoder: after training it still equals the copied one,
    # while the head (1e-4) moves
    fc.optimizer.param_groups = (("^encoder/", 0.0), ("^head/", 1e-4))
    fine_dir = tmp_path / "fine"
    summary = train(fc, str(fine_dir), progress=False)
    assert summary["finished"] and summary["best_step"] is not None
    best = summary["best_validation"]
    assert 0.0 <= best["accuracy"] <= 1.0 and "f1/Joy" in best
    records = [json.loads(x) for x in (fine_dir / "metrics.jsonl").read_text().splitlines()]
    assert all(math.isfinite(r["train/loss"]) for r in records if "train/loss" in r)
    # predict one video's feature file (the builders' layout) with the fine-tuned run
    from jaxaffect.evaluate import predict_file

    clip = sorted((REPO / "tfds_builders/video_emotion8/dummy_data/features").rglob("*.npz"))[0]
    result = predict_file(str(fine_dir), str(clip))
    assert result["prediction"] in tam.VE8_CLASSES
    assert abs(sum(result["probabilities"].values()) - 1.0) < 1e-5
    got, _ = read_run_params(str(fine_dir), "latest")
    assert set(got) == {"encoder", "head"}
    jax.tree_util.tree_map(np.testing.assert_array_equal, got["encoder"],
                           pre_params["encoder"])
    # the pretrained encoder is not what a fresh fine-tuning init would give
    task = get_task(fc)
    fresh = jax.jit(lambda r: task.init_variables(task.make_model(), r, task.dummy_batch(1)))(
        jax.random.key(0))["params"]["encoder"]
    assert any(jax.tree_util.tree_leaves(jax.tree_util.tree_map(
        lambda a, b: bool(np.any(np.asarray(a) != b)), fresh, pre_params["encoder"])))


def test_evaluate_and_confusion_figure(ve8_dir, tmp_path):
    task = get_task(tiny(ctm_config.get_config("dataset=ve8,runlocal"), ve8_dir))
    labels = np.array([0, 1, 2, 2, 7], np.int32)
    probs = np.eye(8, dtype=np.float32)[[0, 1, 2, 3, 7]]
    outputs = {"label": labels, "probs": probs, "valid": np.ones(5, bool)}
    host = {"video_id": np.array([f"v{i}" for i in range(5)], dtype=object)}
    result, records = task.evaluate(outputs, host)
    assert result["accuracy"] == pytest.approx(0.8)
    assert records[3] == {**records[3], "video_id": "v3", "label": "Disgust",
                          "prediction": "Fear"}
    paths = task.write_figures(outputs, result, str(tmp_path), "test")
    assert paths == [str(tmp_path / "confusion_test.png")]
    assert Path(paths[0]).stat().st_size > 1000


def test_first_per_class_keeps_a_hash_chosen_subset_per_class():
    from jaxaffect.families.tam.task import first_per_class

    examples = [{"video_id": f"v{i:03d}", "label": i % 3} for i in range(30)]
    kept = first_per_class(examples, 4, "label")
    by_class = {c: [e["video_id"] for e in kept if e["label"] == c] for c in range(3)}
    assert all(len(v) == 4 for v in by_class.values())
    assert [e["video_id"] for e in kept] == sorted(e["video_id"] for e in kept)
    assert kept == first_per_class(list(reversed(examples)), 4, "label")  # order-free
    assert by_class[0] != ["v000", "v003", "v006", "v009"]  # not simply the first ids
    assert len(first_per_class(examples, 100, "label")) == 30
