"""The AV-CPNet task end to end on the emotions builder's dummy release (tiny real mp4 files):
train, evaluate, predict a raw video, refuse a broken one; grain worker processes give the same
batches; FSDP splits parameters and optimizer state over 8 devices."""

from __future__ import annotations

import json
from pathlib import Path

import jax
import numpy as np
import pytest

from jaxaffect.config_loading import load_config
from jaxaffect.data.build import build_dataset, builder_class
from jaxaffect.errors import FormatError
from jaxaffect.evaluate import TrainedModel, evaluate_run
from jaxaffect.task import get_task
from jaxaffect.train import Setup, train
from tfds_builders.testing import copy_dummy_data


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    return copy_dummy_data(builder_class("emotions"), tmp_path_factory.mktemp("emotions"))


@pytest.fixture(scope="module")
def build(release, tmp_path_factory):
    return build_dataset("emotions", str(release), str(tmp_path_factory.mktemp("tfds")),
                         "tfrecord", config="full")


def tiny_config(build: str, row: str = "epce"):
    c = load_config(f"configs/avcpnet/avcpnet.py:row={row},size=demo,runlocal")
    c.data.builder_dir = build
    c.data.num_segments, c.data.snippet_frames, c.data.frames_per_snippet = 1, 4, 2
    c.data.resize, c.data.crop = 32, 32
    c.data.mfcc_frames, c.data.audio_segments, c.data.n_mfcc, c.data.n_mels = 64, 2, 16, 16
    c.model.swin.depths, c.model.swin.num_heads = (1, 1), (1, 2)
    c.model.swin.embed_dim, c.model.hidden = 8, 16
    c.model.audio_width, c.model.audio_blocks = 4, (1, 1)
    c.training.batch_size, c.training.num_epochs = 2, 1
    c.mesh.num_devices, c.mesh.data, c.mesh.fsdp = 1, 1, 1
    return c


@pytest.mark.slow
def test_train_eval_predict_video(build, release, tmp_path):
    config = tiny_config(build)
    workdir = tmp_path / "run"
    result = train(config, str(workdir), progress=False)
    assert result["finished"] and result["steps"] == 3  # 6 train clips / batch 2
    out = evaluate_run(config, str(workdir), "test", "best")
    m = out["metrics"]
    assert m["num_examples"] == 3 and 0 <= m["accuracy"] <= 1
    assert {"weighted_f1", "visual/accuracy", "audio/accuracy"} <= set(m)
    records = [json.loads(x) for x in (workdir / "predictions_test.jsonl").read_text()
               .splitlines()]
    assert sorted(r["video_id"] for r in records) == ["e10", "e11", "e12"]

    model = TrainedModel(str(workdir))
    clip = str(release / "videos" / "e01.mp4")
    got = model.predict_file(clip, "video")
    assert got["prediction"] in model.task.class_names
    assert abs(sum(got["probabilities"].values()) - 1) < 1e-4
    # the same clip through the build gives the same probabilities (same sampling at eval)
    batch = model.task.load_clip(clip)
    assert batch["video"].shape == (1, 1, 2, 32, 32, 3) and batch["mfcc"].shape == (1, 2, 32, 16)
    with pytest.raises(Exception, match="predicts from video files: pass --video"):
        model.predict_file(clip, "features")
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video at all")
    with pytest.raises(FormatError, match=r"broken\.mp4: "):
        model.predict_file(str(broken), "video")


def test_worker_processes_give_the_same_batches(build):
    def batches(workers: int) -> list[dict]:
        config = tiny_config(build)
        config.data.workers = workers
        task = get_task(config)
        ds = task.dataset("train", train=True, seed=3, num_epochs=1, process_index=0,
                          process_count=1)
        return list(ds)

    inline, pooled = batches(0), batches(2)
    assert len(inline) == len(pooled) == 3
    for a, b in zip(inline, pooled):
        np.testing.assert_array_equal(a["video"], b["video"])
        np.testing.assert_array_equal(a["mfcc"], b["mfcc"])
        np.testing.assert_array_equal(a["label"], b["label"])


def test_worker_process_iterator_state_resumes_exactly(build):
    """The state a checkpoint stores of a grain worker-process iterator restarts it at the
    next batch: the batches after a restore equal those of the uninterrupted iterator."""
    config = tiny_config(build)
    config.data.workers = 2
    config.training.batch_size = 2
    task = get_task(config)

    def fresh():
        return iter(task.dataset("train", train=True, seed=5, num_epochs=2, process_index=0,
                                 process_count=1))

    it = fresh()
    next(it)
    state = it.get_state()
    want = [next(it) for _ in range(3)]
    del it
    resumed = fresh()
    resumed.set_state(state)
    got = [next(resumed) for _ in range(3)]
    for a, b in zip(want, got):
        np.testing.assert_array_equal(a["video"], b["video"])
        np.testing.assert_array_equal(a["mfcc"], b["mfcc"])
        np.testing.assert_array_equal(a["label"], b["label"])


def test_fsdp_splits_parameters_and_optimizer_state(build):
    if jax.device_count() < 8:
        pytest.skip("needs 8 (simulated) devices")
    sizes = {}
    for fsdp in (1, 8):
        config = tiny_config(build)
        config.model.swin.embed_dim, config.model.hidden = 32, 64  # leaves above the minimum
        config.mesh.num_devices, config.mesh.data, config.mesh.fsdp = 8, 8 // fsdp, fsdp
        config.mesh.min_shard_size = 1024
        state = Setup(config, steps_per_epoch=1).abstract_sharded
        sizes[fsdp] = sum(int(np.prod(x.sharding.shard_shape(x.shape))) * x.dtype.itemsize
                          for x in jax.tree_util.tree_leaves(state))
    assert sizes[8] < sizes[1] / 4  # small leaves stay replicated: not exactly 1/8


def test_converted_swin_initialises_the_backbone(build, tmp_path):
    """`jaxaffect convert swin3d` output (here of the committed parity fixture, a state dict in
    torchvision's swin3d_t layout) becomes the visual backbone of a fresh run."""
    from jaxaffect.config_loading import ConfigError
    from jaxaffect.families.avcpnet.convert import convert_checkpoint
    from jaxaffect.nn.video_swin import load_swin_config, load_swin_params

    fixture = Path(__file__).resolve().parents[2] / "fixtures" / "swin3d" / "swin3d_small.pth"
    convert_checkpoint(str(fixture), str(tmp_path / "init"), reader="builtin")
    saved = load_swin_config(str(tmp_path / "init"))
    config = tiny_config(build, row="visual")
    for key in ("embed_dim", "depths", "num_heads", "patch_size", "window_size"):
        config.model.swin[key] = saved[key]
    config.model.init_swin = str(tmp_path / "init")
    started = jax.device_get(Setup(config, steps_per_epoch=1).init_state().params)
    want = load_swin_params(str(tmp_path / "init"))
    want.pop("head")
    got = started["visual_backbone"]
    flat_got = jax.tree_util.tree_leaves_with_path(got)
    assert len(flat_got) == len(jax.tree_util.tree_leaves(want))
    for path, value in flat_got:
        node = want
        for k in path:
            node = node[k.key]
        np.testing.assert_array_equal(value, node)
    config.model.swin.embed_dim = 16  # a different Swin is refused in one line
    with pytest.raises(ConfigError, match="the converted Swin differs from model.swin"):
        Setup(config, steps_per_epoch=1).init_state()


def test_build_without_validation_gets_a_carve(tmp_path):
    """Ekman-6's raw build has train and test only: validation is carved from train by class,
    the same for every seed, and disjoint from what trains."""
    release = copy_dummy_data(builder_class("ekman6"), tmp_path / "release")
    build = build_dataset("ekman6", str(release), str(tmp_path / "tfds"), "tfrecord",
                          config="raw")
    config = tiny_config(build)
    config.data.validation_fraction = 0.5
    task = get_task(config)
    assert task.class_names == ("anger", "disgust", "fear", "joy", "sadness", "surprise")
    train, val = task.examples("train"), task.examples("validation")
    assert len(train) + len(val) == 12 and len(val) == 6  # 2 clips per class, 1 carved
    assert not set(train.positions) & set(val.positions)
    again = get_task(config)
    assert list(again.examples("validation").positions) == list(val.positions)
