"""The AMER task end to end on the memor dummy data: every model of Table 3 trains a step,
every config of the sweeps loads, training and evaluation write what they promise."""

from __future__ import annotations

import json
from pathlib import Path

import jax
import numpy as np
import pytest

from jaxaffect.config_loading import load_config
from jaxaffect.data.build import build_dataset
from jaxaffect.families.amer.configs import amer as amer_config
from jaxaffect.families.amer.task import MODELS
from jaxaffect.task import get_task

REPO = Path(__file__).resolve().parents[3]
DUMMY = REPO / "tfds_builders" / "memor" / "dummy_data"


@pytest.fixture(scope="module")
def builder_dir(tmp_path_factory) -> str:
    return build_dataset("memor", str(DUMMY), str(tmp_path_factory.mktemp("tfds")))


def _config(builder_dir: str, arg: str = ""):
    c = load_config(f"{REPO}/configs/amer/amer.py:runlocal" + (f",{arg}" if arg else ""))
    c.data.builder_dir = builder_dir
    c.training.batch_size = 4
    c.mesh.num_devices = 1
    return c


@pytest.mark.parametrize("model", sorted(MODELS))
def test_every_model_gives_a_finite_loss_and_gradient(builder_dir, model):
    task = get_task(_config(builder_dir, f"model={model}"))
    batch = next(iter(task.dataset("train", train=True, seed=0, num_epochs=1,
                                   process_index=0, process_count=1)))
    batch = task.device_batch(batch)
    net = task.make_model()
    params = task.init_variables(net, jax.random.key(0), task.dummy_batch(4))["params"]

    def loss_fn(p):
        return task.loss(net, p, batch, jax.random.key(1), True)[0]

    loss, grads = jax.jit(jax.value_and_grad(loss_fn))(params)
    assert np.isfinite(float(loss)) and float(loss) > 0
    norms = [float(np.abs(g).sum()) for g in jax.tree_util.tree_leaves(grads)]
    assert all(np.isfinite(norms)) and sum(norms) > 0
    out = task.predict(net, params, batch)
    assert out["logits"].shape == (4, 14)


def test_every_sweep_entry_is_a_valid_config():
    for table in ("3", "4", "5"):
        args: list[str] = []
        amer_config.sweep(lambda config_arg="", a=args: a.append(config_arg), f"table={table}")
        assert args, table
        for arg in args:
            c = amer_config.get_config(arg)
            assert c.model.name in MODELS
    t3: list[str] = []
    amer_config.sweep(lambda config_arg="": t3.append(config_arg))
    assert len(t3) == 20  # 10 rows x 2 label sets
    c = amer_config.get_config("model=amer,modalities=vt,subset=full,released")
    assert c.model.modalities == ("text", "visual") and c.data.target_subset == "full"
    assert c.model.released_code and tuple(c.model.text_sizes) == (512, 256)
    with pytest.raises(ValueError, match="modalities"):
        amer_config.get_config("modalities=ax")
    with pytest.raises(ValueError, match="model"):
        amer_config.get_config("model=lstm")


def test_paper_settings_are_the_defaults():
    c = amer_config.get_config()
    assert c.optimizer.name == "adam" and c.optimizer.learning_rate == 5e-5
    assert c.training.batch_size == 8 and c.training.early_stop_evals == 50
    assert tuple(c.model.audio_sizes) == (1024, 512, 256)
    assert tuple(c.model.visual_sizes) == tuple(c.model.text_sizes) == (512, 384, 256)
    assert tuple(c.model.personality_sizes) == (512, 256)
    assert c.data.class_balanced and c.data.labels == "fine"


def test_full_modality_subset_and_labels(builder_dir):
    all_ = get_task(_config(builder_dir, "labels=primary"))
    full = get_task(_config(builder_dir, "subset=full"))
    assert len(all_.class_names) == 9 and len(full.class_names) == 14
    n_full = full.num_examples("test")
    assert 0 < n_full < all_.num_examples("test")
    from jaxaffect.families.amer.batches import target_has_all

    assert n_full == sum(target_has_all(e) for e in all_.examples("test"))


def test_class_balanced_weights_follow_the_labels(builder_dir):
    task = get_task(_config(builder_dir))
    w = task.train_weights("train")
    labels = np.array([int(e["label_fine"]) for e in task.examples("train")])
    per_class = np.bincount(labels, weights=w)
    np.testing.assert_allclose(per_class[per_class > 0], 1.0)
    off = _config(builder_dir)
    off.data.class_balanced = False
    assert get_task(off).train_weights("train") is None


@pytest.mark.slow
def test_train_eval_writes_records_and_figures(builder_dir, tmp_path):
    from jaxaffect.evaluate import evaluate_run
    from jaxaffect.train import train

    config = _config(builder_dir)
    summary = train(config, str(tmp_path / "run"), progress=False)
    assert summary["finished"]
    result = evaluate_run(config, str(tmp_path / "run"), "test")
    m = result["metrics"]
    for k in ("micro_f1", "macro_f1", "weighted_f1", "f1/boredom", "count/full"):
        assert k in m
    assert m["num_examples"] == get_task(config).num_examples("test")
    records = [json.loads(x) for x in
               (tmp_path / "run" / "predictions_test.jsonl").read_text().splitlines()]
    assert len(records) == m["num_examples"]
    assert {"id", "clip", "emotion", "predicted", "target_modalities"} <= set(records[0])
    assert (tmp_path / "run" / "emotion_confusion_test.png").exists()
