"""Early stopping on validation (resumes to the same stop) and class-weighted sampling."""

from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from jaxaffect import losses, metrics
from jaxaffect.config_loading import mesh_section, optimizer_section, training_section
from jaxaffect.data.memory_dataset import make_batches
from jaxaffect.data.sampling import WeightedEpochs, inverse_frequency_weights
from jaxaffect.task import Task, register
from jaxaffect.train import _patience_spent, train

RNG = np.random.default_rng(0)
X = RNG.standard_normal((32, 3)).astype(np.float32)
EXAMPLES = [{"x": x, "label": np.int32(x[0] > 0), "valid": np.bool_(True)} for x in X]
PAD = {"x": np.zeros(3, np.float32), "label": np.int32(0), "valid": np.bool_(False)}


@register("early_stop_toy")
class FrozenTask(Task):
    """A task whose validation metric never changes (learning rate 0)."""

    def dataset(self, split, *, train, seed, num_epochs, process_index, process_count):
        return make_batches(EXAMPLES, batch_size=self.config.training.batch_size, train=train,
                            seed=seed, num_epochs=num_epochs, process_index=process_index,
                            process_count=process_count, transform=lambda e, r: e,
                            padding=PAD)

    def num_examples(self, split):
        return len(EXAMPLES)

    def dummy_batch(self, batch_size):
        return {"x": np.zeros((batch_size, 3), np.float32),
                "label": np.zeros(batch_size, np.int32), "valid": np.ones(batch_size, bool)}

    def make_model(self):
        return nn.Dense(2)

    def init_variables(self, model, rng, batch):
        return model.init(rng, batch["x"])

    def loss(self, model, params, batch, rng, train, step=None):
        logits = model.apply({"params": params}, batch["x"])
        loss = losses.softmax_cross_entropy(logits, batch["label"],
                                            weights=batch["valid"].astype(jnp.float32))
        return loss, {"loss": loss}

    def predict(self, model, params, batch):
        return {"pred": jnp.argmax(model.apply({"params": params}, batch["x"]), -1)}

    def evaluate(self, outputs, host):
        m = metrics.classification_metrics(outputs["label"], outputs["pred"], 2)
        return {k: float(v) for k, v in m.items()}, []


def _config(patience: int) -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.task, c.name, c.seed = "early_stop_toy", "frozen", 0
    c.optimizer = optimizer_section(0.0)
    c.training = training_section(10, 8, log_every_steps=2, checkpoint_every_steps=0,
                                  early_stop_evals=patience)
    c.mesh = mesh_section()
    c.mesh.num_devices = 1
    return c


@pytest.mark.parametrize("best,step,every,patience,spent", [
    (None, 12, 4, 2, False), (4, 8, 4, 2, False), (4, 12, 4, 2, True), (4, 13, 4, 2, False),
    (8, 12, 4, 1, True), (12, 12, 4, 1, False)])
def test_patience_spent(best, step, every, patience, spent):
    assert _patience_spent(best, step, every, patience) is spent


def test_early_stop_stops_after_patience_and_a_rerun_stops_at_the_same_step(tmp_path, capsys):
    steps_per_epoch = 32 // 8
    first = train(_config(2), str(tmp_path / "run"), progress=False)
    # The metric never improves after the first evaluation (epoch 1): two more, then stop.
    assert first["early_stopped"] and first["finished"] and not first["stopped_early"]
    assert first["best_step"] == steps_per_epoch
    assert first["steps"] == 3 * steps_per_epoch
    assert "early stop at step 12" in capsys.readouterr().err
    again = train(_config(2), str(tmp_path / "run"), progress=False)
    assert again["steps"] == first["steps"] and again["early_stopped"]


def test_no_early_stop_without_patience(tmp_path):
    config = _config(0)
    config.training.num_epochs = 3
    assert "early_stop_evals" not in config.training
    summary = train(config, str(tmp_path / "run"), progress=False)
    assert summary["steps"] == 3 * 4 and not summary["early_stopped"]


def test_inverse_frequency_weights_equalise_classes():
    labels = np.array([0, 0, 0, 1, 2, 2])
    w = inverse_frequency_weights(labels)
    np.testing.assert_allclose(w, [1 / 3, 1 / 3, 1 / 3, 1, 1 / 2, 1 / 2])
    per_class = np.bincount(labels, weights=w)
    np.testing.assert_allclose(per_class, 1.0)


def test_weighted_epochs_follow_the_weights_and_are_reproducible():
    labels = np.array([0] * 90 + [1] * 10)
    w = inverse_frequency_weights(labels)
    ds = WeightedEpochs(np.arange(100), w, seed=3, num_epochs=40)
    draws = np.array([ds[i] for i in range(len(ds))])
    assert len(ds) == 4000
    frac_minority = np.mean(labels[draws] == 1)
    assert 0.45 < frac_minority < 0.55  # ~0.5 instead of 0.1
    again = WeightedEpochs(np.arange(100), w, seed=3, num_epochs=40)
    assert [again[i] for i in (3999, 0, 150)] == [draws[3999], draws[0], draws[150]]
    other = WeightedEpochs(np.arange(100), w, seed=4, num_epochs=1)
    assert [other[i] for i in range(100)] != list(draws[:100])
    # different epochs draw differently
    assert list(draws[:100]) != list(draws[100:200])


@pytest.mark.parametrize("bad", [[1.0, -1.0], [0.0, 0.0], [1.0, np.nan]])
def test_weighted_epochs_refuse_bad_weights(bad):
    with pytest.raises(ValueError, match="weights"):
        WeightedEpochs(np.arange(2), bad, seed=0, num_epochs=1)


def test_weighted_batches_do_not_depend_on_the_process_count():
    labels = np.array([e["label"] for e in EXAMPLES])
    w = inverse_frequency_weights(labels)

    def rows(count):
        out = []
        for p in range(count):
            ds = make_batches(EXAMPLES, batch_size=8, train=True, seed=1, num_epochs=2,
                              process_index=p, process_count=count,
                              transform=lambda e, r: e, padding=PAD, weights=w)
            out.append([b["x"] for b in ds])
        return [np.concatenate([o[i] for o in out]) for i in range(len(out[0]))]

    one, two = rows(1), rows(2)
    assert len(one) == len(two) == 8
    for a, b in zip(one, two):
        np.testing.assert_array_equal(a, b)


def test_console_says_one_line_per_stage(tmp_path, capsys):
    config = _config(0)
    config.training.num_epochs = 1
    train(config, str(tmp_path / "run"), progress=True)
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("data: train 32 / validation 32 examples, batch 8, 4 steps per "
                             "epoch x 1 epochs (")
    assert out[1].startswith("model: 8 parameters on 1 device(s), initialised in ")
    assert out[-1].startswith("done: 4 steps in ") and "best validation macro_f1=" in out[-1]
