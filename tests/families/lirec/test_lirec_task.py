"""LIReC Task: loss wiring, evaluation metrics, baselines, configs and short trainer runs."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from test_lirec_batches import A, R, make_examples, metadata

from jaxaffect.families.lirec import batches as lb
from jaxaffect.families.lirec import inference as inf
from jaxaffect.families.lirec import losses as ll
from jaxaffect.families.lirec.configs import characters, interactions, joint, relationships
from jaxaffect.families.lirec.task import LIReCTask, relationship_by_pair

MEM = "lirec_test"


@pytest.fixture(scope="module", autouse=True)
def memory_dataset():
    LIReCTask.add_memory_dataset(MEM, {
        "train": make_examples(3, 12, seed=0, prefix="tr"),
        "validation": make_examples(1, 10, seed=1, prefix="va"),
        "test": make_examples(1, 12, seed=2, prefix="te")}, metadata())
    yield
    LIReCTask.memory_datasets.pop(MEM, None)


def setting_config(setting: str, arg: str = ""):
    """The config of `setting` from its configs/lirec module."""
    if setting in characters.SETTINGS:
        return characters.get_config(f"setting={setting},{arg}")
    module = {"interactions": interactions, "relationships": relationships, "joint": joint}
    return module[setting].get_config(arg)


def tiny_config(setting: str, **loss):
    c = setting_config(setting, "runlocal")
    c.data.memory = MEM
    c.data.num_clips = 3
    c.data.max_pairs = 6
    c.model.joint_dim = c.model.track_hidden_dim = 8
    c.model.track_out_dim = c.model.int_hidden_dim = 8
    c.training.batch_size = 8
    c.training.num_epochs = 1
    c.training.log_every_steps = 1
    c.optimizer.learning_rate = 1e-3
    for k, v in loss.items():
        c.loss[k] = v
    return c


def _batch_and_params(task):
    ds = task.dataset("train", train=True, seed=0, num_epochs=1, process_index=0,
                      process_count=1)
    batch = jax.tree.map(jnp.asarray, task.device_batch(next(iter(ds))))
    model = task.make_model()
    # random parameters of the right shapes, drawn with numpy (compiling init is slow)
    shapes = jax.eval_shape(lambda r, b: task.init_variables(model, r, b)["params"],
                            jax.random.key(0), batch)
    rng = np.random.default_rng(0)
    params = jax.tree.map(lambda x: jnp.asarray(
        rng.normal(scale=0.3, size=x.shape).astype(np.float32)), shapes)
    return model, params, batch


def _direct(task, setting, out, b, rng, step):
    """The lirec_losses call written out by hand for `setting`."""
    allowed = ~b["overlap"] | jax.nn.one_hot(b["interaction"], A, dtype=bool)
    valid = b["valid"]
    rel = b["relationship"]
    if setting == "interactions":
        return ll.interaction_loss(out["interaction_logits"][:, 0], b["interaction"], allowed,
                                   sample_mask=valid)
    if setting == "joint":
        g = b["group"]
        g_allowed = ~g["overlap"] | jax.nn.one_hot(g["interaction"], A, dtype=bool)
        return ll.joint_interaction_relationship_loss(
            out["interaction_logits"], g["interaction"], out["relationship_logits"],
            jnp.maximum(rel, 0), allowed_negatives=g_allowed,
            int_mask=b["inputs"]["clip_mask"] & valid[:, None], rel_mask=valid & (rel >= 0),
            lam=1.5)[0]
    burn_in = 20 * task.steps_per_epoch()
    _, pick = jax.random.split(rng)
    if setting == "characters_weak":
        return ll.interaction_character_loss(
            out["interaction_logits"][:, :, 0], b["interaction"], b["pair_mask"],
            allowed_negatives=allowed, supervision="weak", selection="sample", rng=pick,
            sample_from="scores", negatives="sum_max", epoch=step, burn_in=burn_in,
            sample_mask=valid)[0]
    return ll.interaction_relationship_character_loss(
        out["interaction_logits"][:, :, 0], out["relationship_logits"], b["interaction"],
        jnp.maximum(rel, 0), b["pair_mask"], allowed_negatives=allowed,
        rel_sample_mask=rel >= 0, supervision="full", true_pair=jnp.maximum(b["true_pair"], 0),
        negatives="sum_max", epoch=step, burn_in=burn_in,
        sample_mask=valid & (b["true_pair"] >= 0))[0]


@pytest.mark.parametrize("setting,step", [("interactions", None), ("joint", None),
                                          ("characters_weak", 0),
                                          ("all_full", 100)])
def test_task_loss_equals_lirec_losses(setting, step):
    task = LIReCTask(tiny_config(setting, negatives="sum_max", burn_in_epochs=20))
    model, params, batch = _batch_and_params(task)
    rng = jax.random.key(3)
    s = 0 if step is None else step

    @jax.jit
    def direct(p, b):
        out = task._apply(model, p, b, train=False)
        return _direct(task, setting, out, b, rng, s)

    want = float(direct(params, batch))
    jitted = jax.jit(lambda p, b, st: task.loss(model, p, b, rng, False, st)[0])
    np.testing.assert_allclose(float(jitted(params, batch, step)), want, rtol=1e-5)
    if setting == "interactions":  # un-jitted too (the cheapest setting)
        got = task.loss(model, params, batch, rng, False, step)[0]
        np.testing.assert_allclose(float(got), want, rtol=1e-5)
    assert want > 0


def test_hard_negatives_switch_after_burn_in():
    task = LIReCTask(tiny_config("characters_weak", negatives="sum_max", burn_in_epochs=2,
                                 pair_selection="argmax"))
    model, params, batch = _batch_and_params(task)
    spe = task.steps_per_epoch()
    loss = jax.jit(lambda s: task.loss(model, params, batch, jax.random.key(0), False, s))
    before, after = loss(2 * spe - 1), loss(2 * spe)
    assert float(before[1]["hard_negatives"]) == 0.0 and float(after[1]["hard_negatives"]) == 1
    assert float(after[0]) < float(before[0])  # sum-max has fewer terms than the plain sum


def test_relationship_by_pair_matches_loop_and_inference():
    rng = np.random.default_rng(0)
    n = 40
    logits = rng.normal(size=(n, R)).astype(np.float32)
    keys = np.array([f"k{i}" for i in rng.integers(0, 9, n)], dtype=object)
    labels = np.array([hash(k) % R for k in keys])
    mask = rng.random(n) > 0.2
    acc, preds = relationship_by_pair(logits, labels, keys, mask)
    groups = {}
    for i in np.flatnonzero(mask):
        groups.setdefault(keys[i], []).append(i)
    correct = []
    for idx in groups.values():
        summed = sum(1 / (1 + np.exp(-logits[i].astype(np.float64))) for i in idx)
        correct.append(int(np.argmax(summed)) == labels[idx[0]])
        assert all(preds[i] == np.argmax(summed) for i in idx)
    assert (preds[~mask] == -1).all()
    np.testing.assert_allclose(acc, np.mean(correct), rtol=1e-6)
    ids = np.unique(keys.astype(str), return_inverse=True)[1]
    ref = inf.relationship_accuracy_by_pair(jnp.asarray(logits), jnp.asarray(labels),
                                            jnp.asarray(ids), jnp.asarray(mask))
    np.testing.assert_allclose(acc, float(ref), rtol=1e-5)


def test_character_evaluation_matches_loop():
    task = LIReCTask(tiny_config("all_weak"))
    rng = np.random.default_rng(1)
    n, p = 30, 6
    pm = np.arange(p)[None] < rng.integers(1, p + 1, n)[:, None]
    tp = np.where(rng.random(n) < 0.8, 0, -1)
    inter, rel = rng.integers(0, A, n), rng.integers(-1, R, n)
    outputs = {"interaction_logits": rng.normal(size=(n, p, A)).astype(np.float32),
               "relationship_logits": rng.normal(size=(n, p, R)).astype(np.float32),
               "pair_mask": pm, "true_pair": tp, "interaction": inter, "relationship": rel,
               "overlap": np.eye(A, dtype=bool)[inter], "valid": np.ones(n, bool)}
    host = {"clip_id": np.array([f"c{i}" for i in range(n)], dtype=object),
            "pair_key": np.array([f"k{i % 7}" for i in range(n)], dtype=object)}
    res, records = task.evaluate(outputs, host)
    sig = lambda x: 1 / (1 + np.exp(-x.astype(np.float64)))
    hits_c, hits_j, hits_i = [], [], []
    for i in range(n):
        if tp[i] < 0:
            continue
        si, sr = sig(outputs["interaction_logits"][i]), sig(outputs["relationship_logits"][i])
        hits_i.append(si[tp[i]].argmax() == inter[i])
        if rel[i] < 0:
            continue
        col = np.where(pm[i], si[:, inter[i]] + sr[:, rel[i]], -np.inf)
        hits_c.append(col.argmax() == tp[i])
        t = np.where(pm[i][:, None, None], si[:, :, None] + sr[:, None, :], -np.inf)
        pp, aa, rr = np.unravel_index(t.argmax(), t.shape)
        hits_j.append(pp == tp[i] and aa == inter[i] and rr == rel[i])
    np.testing.assert_allclose(res["interaction_top1"], np.mean(hits_i), rtol=1e-6)
    np.testing.assert_allclose(res["character_accuracy"], np.mean(hits_c), rtol=1e-6)
    np.testing.assert_allclose(res["joint_accuracy"], np.mean(hits_j), rtol=1e-6)
    assert len(records) == n and records[0]["clip_id"] == "c0"


def test_interactions_setting_writes_an_interaction_confusion(tmp_path):
    task = LIReCTask(tiny_config("interactions"))
    rng = np.random.default_rng(2)
    n = 40
    inter = rng.integers(0, A, n)
    outputs = {"interaction_logits": rng.normal(size=(n, A)).astype(np.float32),
               "true_pair": np.full(n, -1), "interaction": inter,
               "relationship": np.full(n, -1), "overlap": np.eye(A, dtype=bool)[inter],
               "valid": np.ones(n, bool)}
    res, _ = task.evaluate(outputs, {})
    paths = task.write_figures(outputs, res, str(tmp_path), "test")
    assert [Path(p).name for p in paths] == ["interaction_confusion_test.png"]
    assert Path(paths[0]).stat().st_size > 1000


def test_random_baselines_are_exact():
    task = LIReCTask(tiny_config("characters_full"))
    ex = task.examples("test")
    base = task.random_baselines("test")
    with_pair = [e for e in ex if e["true_pair"] >= 0]
    want = np.mean([1 / e["num_pairs"] for e in with_pair])
    np.testing.assert_allclose(base["character_accuracy"], want)
    np.testing.assert_allclose(base["joint_accuracy"], want / A)
    assert base["interaction_top1"] == pytest.approx(1 / A)
    soft = np.mean([e["overlap_interactions"].sum() for e in with_pair]) / A
    np.testing.assert_allclose(base["interaction_soft_top1"], soft)
    rel = LIReCTask(tiny_config("relationships")).random_baselines("test")
    assert rel == {"relationship_top1": pytest.approx(1 / R)}
    # either direction: the reverse of the true pair, when it is a candidate, also counts
    def has_reverse(e):
        chars = [tuple(c) for c in np.asarray(e["pair_characters"])[:e["num_pairs"]]]
        a, b = chars[e["true_pair"]]
        return (b, a) in chars
    either = np.mean([(1 + has_reverse(e)) / e["num_pairs"] for e in with_pair])
    assert any(has_reverse(e) for e in with_pair)
    np.testing.assert_allclose(base["character_accuracy_either_direction"], either)


def test_either_direction_metric_matches_a_loop():
    from jaxaffect.families.lirec.batches import reverse_pair
    from jaxaffect.families.lirec.task import either_direction_accuracy

    ex = [e for e in make_examples(seed=3) if e["true_pair"] >= 0]
    rev = np.array([reverse_pair(e) for e in ex])
    for e, r in zip(ex, rev):
        chars = np.asarray(e["pair_characters"])[:e["num_pairs"]]
        if r >= 0:
            assert tuple(chars[r]) == tuple(chars[e["true_pair"]][::-1])
    tp = np.array([e["true_pair"] for e in ex])
    rng = np.random.default_rng(0)
    pred = np.where(rng.random(len(tp)) < 0.5, tp, np.where(rev >= 0, rev, tp + 1))
    mask = rng.random(len(tp)) < 0.8
    loop = np.mean([p == t or (r >= 0 and p == r) for p, t, r, m in
                    zip(pred, tp, rev, mask) if m])
    got = either_direction_accuracy(pred, tp, {"reverse_pair": rev}, mask)
    np.testing.assert_allclose(got, loop)
    assert got > np.mean((pred == tp)[mask])  # reversed predictions counted


def test_released_code_mode():
    from jaxaffect.families.lirec.model import RELEASED_CODE

    c = tiny_config("joint")
    c.model.released_code = True
    task = LIReCTask(c)
    assert c.optimizer.weight_decay == 1e-5 and c.optimizer.learning_rate == 3e-5
    assert c.training.batch_size == 64 and c.loss.sample_from == "softmax"
    m = task.make_model()
    assert m.int_hidden_dim == RELEASED_CODE["int_hidden_dim"] and m.rel_pool_before_tanh
    c2 = tiny_config("interactions")
    c2.model.released_code = True
    assert LIReCTask(c2).make_model().int_hidden_dim == 0  # linear classifier when alone


def _load(path: Path):
    spec = importlib.util.spec_from_file_location(path.stem + "_cfg", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_configs_and_sweeps():
    root = Path(__file__).parents[3] / "configs" / "lirec"
    names = sorted(p.stem for p in root.glob("*.py") if p.stem not in ("__init__", "common"))
    assert {"interactions", "relationships", "joint", "characters"} <= set(names)
    settings = set()
    for name in names:
        mod = _load(root / f"{name}.py")
        assert mod.__doc__ and "jaxaffect train" in mod.__doc__
        args: list[str] = []
        mod.sweep(lambda args=args, **kw: args.append(kw["config_arg"]))
        assert args, name
        for arg in args:
            c = mod.get_config(arg)
            assert c.task == "lirec" and c.setting in lb.SETTINGS
            settings.add(c.setting)
    assert settings == set(lb.SETTINGS)


@pytest.mark.slow
@pytest.mark.parametrize("setting", ["all_weak"])  # clip groups x candidate pairs
def test_train_runs_a_few_steps(setting, tmp_path):
    from jaxaffect.evaluate import evaluate_run
    from jaxaffect.train import train

    c = tiny_config(setting, negatives="sum_max", burn_in_epochs=1)
    summary = train(c, str(tmp_path), progress=False)
    assert summary["finished"] and summary["steps"] == 36 // 8
    best = summary["best_validation"]
    sel = LIReCTask(c).selection_metric()
    assert 0.0 <= best[sel] <= 1.0
    result = evaluate_run(c, str(tmp_path), "test")
    assert result["num_examples"] == 12
    if setting in ("joint", "all_weak"):
        assert any("relationship_confusion" in f for f in result["figures"])
    if setting != "relationships":
        assert any("interaction_confusion" in f for f in result["figures"])


def test_demo_config_and_table():
    from jaxaffect.demo_runner import format_table
    from jaxaffect.families.lirec.demo import LIReCDemo

    demo = LIReCDemo()
    s = demo.settings(True)
    arm = {a.name: a for a in demo.arms(s)}["characters_weak"]
    c = arm.config({"lirec": "/nowhere"}, s, 3, {})
    assert c.seed == 3 and c.loss.negatives == "sum_max" and c.loss.burn_in_epochs == 8
    assert c.mesh.num_devices == 1 and c.data.builder_dir == "/nowhere"
    table = format_table([("random", {"interaction_top1": {"mean": 1 / A, "std": 0.0}}),
                          ("m", {"joint_accuracy": {"mean": 0.5, "std": 0.1}})],
                         demo.table_keys, 2)
    assert "| random | 0.99 ± 0.00 | - |" in table and "50.00 ± 10.00 |" in table
