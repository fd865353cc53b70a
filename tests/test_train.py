"""End-to-end trainer tests on a tiny built dataset: train+eval+predict, resume, devices, NaN."""

from __future__ import annotations

import json
import math
from pathlib import Path

import jax
import numpy as np
import pytest

from jaxaffect.evaluate import evaluate_run, predict_file
from jaxaffect.families.perr import erato_format as ef
from jaxaffect.families.perr.configs import lstm, smta
from jaxaffect.families.perr.erato_format import write_random_manual_dir
from jaxaffect.run_logging import read_metrics
from jaxaffect.train import NonFiniteLossError, train

pytestmark = pytest.mark.slow

DIMS = {"person_a": 6, "person_b": 6, "background": 4, "audio": 5, "text": 3}


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[str, Path]:
    from jaxaffect.data.build import build_dataset

    root = tmp_path_factory.mktemp("erato")
    manual = root / "manual"
    write_random_manual_dir(manual, num_clips=64, dims=DIMS, max_steps=14, seed=0)
    return build_dataset("erato", str(manual), str(root / "tfds"), "tfrecord"), manual


@pytest.fixture(scope="module")
def builder_dir(built) -> str:
    return built[0]


def tiny_config(builder_dir: str, fusion: str = "smta", **training):
    c = {"smta": smta, "lstm": lstm}[fusion].get_config("attention=transformer,runlocal")
    c.data.builder_dir = builder_dir
    c.data.max_steps = 10
    c.data.validation_fraction = 0.15
    c.training.batch_size = 8
    c.training.num_epochs = 2
    c.training.log_every_steps = 1
    c.training.checkpoint_every_steps = 3
    c.mesh.data, c.mesh.fsdp = 4, 2
    for k, v in training.items():
        c.training[k] = v
    return c


def losses_by_step(workdir: Path) -> dict[int, float]:
    return {r["step"]: r["train/loss"] for r in read_metrics(workdir / "metrics.jsonl")
            if "train/loss" in r}


def test_train_eval_predict_end_to_end(built, tmp_path):
    builder_dir, manual = built
    config = tiny_config(builder_dir)
    summary = train(config, str(tmp_path), progress=False)
    assert summary["finished"] and summary["best_step"] is not None
    records = read_metrics(tmp_path / "metrics.jsonl")
    assert any("val/macro_f1" in r for r in records)
    assert all(math.isfinite(r["train/loss"]) for r in records if "train/loss" in r)
    assert json.loads((tmp_path / "config.json").read_text())["model"]["fusion"] == "smta"
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(tmp_path / "tensorboard"))
    events.Reload()  # TensorBoard's own reader
    tags = events.Tags()["scalars"]
    assert "train/loss" in tags and "val/macro_f1" in tags
    assert [e.step for e in events.Scalars("train/loss")] == sorted(
        r["step"] for r in records if "train/loss" in r)
    assert (tmp_path / "checkpoints" / "latest").is_dir()
    assert (tmp_path / "checkpoints" / "best").is_dir()
    assert (tmp_path / "training_curves.png").stat().st_size > 1000

    result = evaluate_run(config, str(tmp_path), "test")
    preds = [json.loads(line) for line in
             (tmp_path / "predictions_test.jsonl").read_text().splitlines()]
    test_clips = {a.clip_id: a.label for a in ef.read_annotations(manual) if a.split == "test"}
    assert len(preds) == result["num_examples"] == len(test_clips)
    assert {p["clip_id"]: p["label"] for p in preds} == test_clips  # each test clip once
    for p in preds:
        assert p["label"] in ef.FINE_LABELS and p["prediction"] in ef.FINE_LABELS
        assert sum(p["probabilities"].values()) == pytest.approx(1.0, abs=1e-4)
        assert p["prediction"] == max(p["probabilities"], key=p["probabilities"].get)
    m = result["metrics"]
    hits = np.array([p["label"] == p["prediction"] for p in preds])
    assert m["micro_f1"] == pytest.approx(hits.mean())  # single-label micro-F1 = accuracy
    assert m["accuracy"] == pytest.approx(hits.mean())
    assert 0.0 <= m["coarse/macro_f1"] <= 1.0
    assert (tmp_path / "confusion_test.png").exists()
    assert (tmp_path / "confusion_test_coarse.png").exists()
    events = EventAccumulator(str(tmp_path / "tensorboard"))
    events.Reload()
    assert {"test/confusion_test", "test/confusion_test_coarse"} <= set(events.Tags()["images"])
    assert events.Images("test/confusion_test")[0].step == result["checkpoint_step"]

    first = sorted(test_clips)[0]
    clip = manual / "features" / f"{first}.npz"
    out = predict_file(str(tmp_path), str(clip))
    assert out["prediction"] in ef.FINE_LABELS
    assert sum(out["probabilities"].values()) == pytest.approx(1.0, abs=1e-5)
    test_pred = next(p for p in preds if p["clip_id"] == first)
    for name, p in out["probabilities"].items():  # same model, same clip: same answer
        assert p == pytest.approx(test_pred["probabilities"][name], abs=1e-4)


def test_resume_gives_identical_losses(builder_dir, tmp_path):
    config = tiny_config(builder_dir, checkpoint_every_steps=0)
    full = tmp_path / "full"
    train(config, str(full), progress=False)
    expected = losses_by_step(full)

    resumed = tmp_path / "resumed"
    first = train(config, str(resumed), progress=False, stop_after_steps=4)
    assert first["stopped_early"] and first["steps"] == 4
    second = train(config, str(resumed), progress=False, stop_after_steps=3)
    assert second["steps"] == 7
    train(config, str(resumed), progress=False)
    got = losses_by_step(resumed)
    assert sorted(got) == sorted(expected)
    for step, loss in expected.items():
        assert got[step] == loss, f"step {step}: {got[step]} != {loss}"


def test_same_first_losses_on_one_and_eight_devices(builder_dir, tmp_path):
    losses = {}
    for n, (data, fsdp) in ((1, (1, 1)), (8, (4, 2))):
        config = tiny_config(builder_dir, num_epochs=1)
        config.mesh.num_devices, config.mesh.data, config.mesh.fsdp = n, data, fsdp
        config.model.hidden_size = 64  # large enough that fsdp really splits parameters
        config.mesh.min_shard_size = 256
        train(config, str(tmp_path / f"d{n}"), progress=False)
        losses[n] = losses_by_step(tmp_path / f"d{n}")
    assert sorted(losses[1]) == sorted(losses[8])
    for step in sorted(losses[1])[:4]:
        assert losses[8][step] == pytest.approx(losses[1][step], rel=1e-4, abs=1e-5)


def test_params_sharded_over_fsdp(builder_dir):
    from jaxaffect import sharding as shd
    from jaxaffect.train import Setup

    config = tiny_config(builder_dir)
    config.model.hidden_size = 64
    config.mesh.min_shard_size = 256
    per_device = {}
    for fsdp in (1, 8):
        config.mesh.data, config.mesh.fsdp = -1, fsdp
        state = Setup(config).init_state()
        per_device[fsdp] = shd.bytes_per_device((state.params, state.opt_state))
    assert per_device[8] < 0.5 * per_device[1]


def test_non_finite_loss_stops_and_keeps_last_good_checkpoint(builder_dir, tmp_path):
    from jaxaffect.checkpointing import Checkpoints
    from jaxaffect.train import Setup

    config = tiny_config(builder_dir, checkpoint_every_steps=1)
    config.optimizer.learning_rate = 1e30
    config.optimizer.decay_every_epochs = 0
    with pytest.raises(NonFiniteLossError, match="last good checkpoint"):
        train(config, str(tmp_path), progress=False)
    ckpts = Checkpoints(tmp_path)
    step = ckpts.latest_step()
    state = ckpts.restore_latest(Setup(config).abstract_sharded, None)
    ckpts.close()
    assert step is not None and step >= 1
    leaves = jax.tree_util.tree_leaves(state.params)
    assert all(np.all(np.isfinite(np.asarray(x))) for x in leaves)


def test_sigterm_saves_and_the_same_command_resumes(builder_dir, tmp_path):
    """A real `jaxaffect train` process killed with SIGTERM mid-run, then rerun unchanged."""
    import os
    import signal
    import subprocess
    import sys
    import time

    repo = Path(__file__).resolve().parents[1]
    workdir = tmp_path / "run"
    cmd = [sys.executable, "-m", "jaxaffect.cli", "train", "--no_progress",
           "--config", str(repo / "configs/perr/lstm.py") + ":runlocal",
           "--workdir", str(workdir), f"--config.data.builder_dir={builder_dir}",
           "--config.data.max_steps=10", "--config.data.validation_fraction=0.15",
           "--config.training.batch_size=8",
           "--config.training.num_epochs=3", "--config.training.log_every_steps=1",
           "--config.training.checkpoint_every_steps=0", "--config.mesh.num_devices=1",
           "--config.mesh.data=1"]
    env = dict(os.environ, JAX_COMPILATION_CACHE_DIR=str(jax.config.jax_compilation_cache_dir))
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        if len(losses_by_step(workdir)) >= 2:
            break
        time.sleep(0.2)
    assert proc.poll() is None, proc.stdout.read().decode()[-2000:]
    proc.send_signal(signal.SIGTERM)
    out = proc.communicate(timeout=240)[0].decode()
    assert proc.returncode == 0, out[-2000:]
    assert "checkpoint saved" in out
    total = read_metrics(workdir / "metrics.jsonl")[0]["total_steps"]
    assert max(losses_by_step(workdir)) < total  # it really stopped early

    rerun = subprocess.run(cmd, env=env, capture_output=True, timeout=300)
    assert rerun.returncode == 0, rerun.stdout.decode()[-2000:] + rerun.stderr.decode()[-2000:]
    got = losses_by_step(workdir)
    assert sorted(got) == list(range(1, total + 1))

    config = tiny_config(builder_dir, fusion="lstm", num_epochs=3, checkpoint_every_steps=0)
    config.mesh.num_devices, config.mesh.data, config.mesh.fsdp = 1, 1, 1
    train(config, str(tmp_path / "reference"), progress=False)
    expected = losses_by_step(tmp_path / "reference")
    for step, loss in expected.items():
        assert got[step] == pytest.approx(loss, rel=1e-6), step
