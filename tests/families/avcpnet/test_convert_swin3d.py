"""Tests of `jaxaffect convert swin3d` (jaxaffect.families.avcpnet.convert).

The fixtures (tests/fixtures/swin3d, written once by hand with its make_fixtures.py; torch is
not needed here) are a small randomised reference model's state dict in torchvision's swin3d_t
layout saved with torch.save, an input video and the reference model's features and logits
(float32 and float64).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxaffect import torch_save
from jaxaffect.families.avcpnet import convert as cv
from jaxaffect.nn import video_swin as vs
from jaxaffect.nn.video_swin import VideoSwin3D, relative_position_index
from jaxaffect.torch_checkpoint import CheckpointError, read_state_dict

FIXTURES = Path(__file__).parents[2] / "fixtures" / "swin3d"
CHECKPOINT = FIXTURES / "swin3d_small.pth"


@pytest.fixture(scope="module")
def expected() -> dict[str, np.ndarray]:
    with np.load(FIXTURES / "expected.npz") as npz:
        return {k: npz[k] for k in npz.files}


@pytest.fixture(scope="module")
def state() -> dict[str, np.ndarray]:
    return read_state_dict(str(CHECKPOINT), reader="builtin")[0]


def _args(checkpoint, out_dir, reader="builtin") -> argparse.Namespace:
    return argparse.Namespace(checkpoint=str(checkpoint), out_dir=str(out_dir), reader=reader)


def test_config_inferred_from_the_state_dict(state, expected):
    config = cv.infer_config(state)
    assert config == dict(
        embed_dim=int(expected["config_embed_dim"]),
        depths=tuple(expected["config_depths"].tolist()),
        num_heads=tuple(expected["config_num_heads"].tolist()),
        patch_size=tuple(expected["config_patch_size"].tolist()),
        window_size=tuple(expected["config_window_size"].tolist()),
        mlp_ratio=4.0, num_classes=int(expected["config_num_classes"]))


def test_converted_model_matches_the_reference(tmp_path, expected):
    summary = cv.run_cli(_args(CHECKPOINT, tmp_path))
    json.dumps(summary)  # JSON-able
    assert summary["config"]["window_size"] == [4, 3, 3]
    assert summary["source"]["file"] == "swin3d_small.pth"
    assert summary["source"]["reader"] == "builtin"
    on_disk = json.loads((tmp_path / vs.CONFIG_FILE).read_text())
    assert on_disk["format"] == vs.FORMAT and on_disk["config"] == summary["config"]
    config, params = vs.load_swin_config(str(tmp_path)), vs.load_swin_params(str(tmp_path))
    assert summary["num_params"] == sum(
        v.size for v in jax.tree_util.tree_leaves(params))
    model = VideoSwin3D(**config, stochastic_depth=0.0)

    @jax.jit
    def run(p, x):
        return model.apply({"params": p}, x, train=False, mutable=["intermediates"])

    with jax.default_matmul_precision("highest"):
        logits, inter = run(params, jnp.asarray(expected["video"]))
    features = inter["intermediates"]["features"][0]
    assert features.shape == expected["features"].shape
    feat_err = np.abs(np.asarray(features) - expected["features_f64"]).max()
    logit_err = np.abs(np.asarray(logits) - expected["logits_f64"]).max()
    assert feat_err < 1e-4 and logit_err < 1e-4, (feat_err, logit_err)
    np.testing.assert_allclose(np.asarray(logits), expected["logits"], atol=1e-4)


def test_mapping_transposes(state):
    params = cv.convert_state_dict(state, config=cv.infer_config(state))
    np.testing.assert_array_equal(params["patch_embed"]["proj"]["kernel"],
                                  state["patch_embed.proj.weight"].transpose(2, 3, 4, 1, 0))
    np.testing.assert_array_equal(params["stage_1"]["block_1"]["attn"]["qkv"]["kernel"],
                                  state["features.2.1.attn.qkv.weight"].T)
    np.testing.assert_array_equal(params["stage_2"]["block_0"]["fc2"]["kernel"],
                                  state["features.4.0.mlp.3.weight"].T)
    np.testing.assert_array_equal(params["merge_2"]["reduction"]["kernel"],
                                  state["features.5.reduction.weight"].T)
    np.testing.assert_array_equal(params["stage_3"]["block_1"]["norm2"]["scale"],
                                  state["features.6.1.norm2.weight"])
    np.testing.assert_array_equal(
        params["stage_0"]["block_1"]["attn"]["relative_position_bias_table"],
        state["features.0.1.attn.relative_position_bias_table"])


def test_swin_t_layout_and_sizes():
    """Swin-T in the reference layout: 185 keys (incl. 12 index buffers), 28,158,070
    parameters with its 400-class head; the window is recovered from table + index alone."""
    config = dict(embed_dim=96, depths=(2, 2, 6, 2), num_heads=(3, 6, 12, 24),
                  patch_size=(2, 4, 4), window_size=(8, 7, 7), mlp_ratio=4.0, num_classes=400)
    mapping = cv.key_map(config)
    assert len(mapping) == 185 and sum(p is None for p in mapping.values()) == 12
    assert sum(np.prod(s) for s in cv.expected_shapes(config).values()) == 28158070
    table = np.zeros((15 * 13 * 13, 3), np.float32)
    assert cv.infer_window(table, relative_position_index((8, 7, 7)), "k") == (8, 7, 7)


# ------------------------------------------------------------------------------------------
# Refusals name the file and the key
# ------------------------------------------------------------------------------------------

def _refused(tmp_path, state, match):
    path = tmp_path / "bad.pth"
    torch_save.save(path, state)
    with pytest.raises(CheckpointError, match=r"bad\.pth: " + match) as err:
        cv.run_cli(_args(path, tmp_path / "out"))
    assert "\n" not in str(err.value)
    assert not (tmp_path / "out").exists()


def test_renamed_key_is_refused(tmp_path, state):
    sd = dict(state)
    sd["features.2.1.attn.qkv_x.weight"] = sd.pop("features.2.1.attn.qkv.weight")
    _refused(tmp_path, sd, r"unknown key 'features\.2\.1\.attn\.qkv_x\.weight'")


def test_missing_key_is_refused(tmp_path, state):
    sd = dict(state)
    del sd["features.3.norm.bias"]
    _refused(tmp_path, sd, r"missing key 'features\.3\.norm\.bias'")


def test_missing_index_buffer_is_refused(tmp_path, state):
    sd = dict(state)
    del sd["features.4.0.attn.relative_position_index"]
    _refused(tmp_path, sd, r"missing key 'features\.4\.0\.attn\.relative_position_index'")


@pytest.mark.parametrize("key,shape,match", [
    ("features.2.0.attn.qkv.weight", (48, 15),
     r"features\.2\.0\.attn\.qkv\.weight: shape \(48, 15\), expected \(48, 16\)"),
    ("features.0.1.attn.relative_position_bias_table", (175, 2),
     r"features\.0\.1\.attn\.relative_position_bias_table: shape \(175, 2\), expected \(175, 1\)"),
    ("norm.weight", (32,), r"norm\.weight: shape \(32,\), expected \(64,\)"),
    ("features.4.1.mlp.0.bias", (3, 4), r"features\.4\.1\.mlp\.0\.bias: shape \(3, 4\)"),
])
def test_wrong_shape_is_refused(tmp_path, state, key, shape, match):
    sd = dict(state, **{key: np.zeros(shape, np.float32)})
    _refused(tmp_path, sd, match)


def test_wrong_index_buffer_is_refused(tmp_path, state):
    key = "features.2.1.attn.relative_position_index"
    sd = dict(state, **{key: state[key][::-1].copy()})
    _refused(tmp_path, sd, r"features\.2\.1\.attn\.relative_position_index: not the relative "
                           r"position index of window \(4, 3, 3\)")


def test_load_refuses_other_folders(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        vs.load_swin_params(str(tmp_path))
    (tmp_path / vs.CONFIG_FILE).write_text(json.dumps({"format": "something.else"}))
    with pytest.raises(CheckpointError, match="not a converted Video Swin folder"):
        vs.load_swin_params(str(tmp_path))


def test_torch_reader_agrees_with_builtin(state):
    pytest.importorskip("torch")
    with_torch, extra = read_state_dict(str(CHECKPOINT), reader="torch")
    assert extra["reader"] == "torch" and set(with_torch) == set(state)
    for key, value in state.items():
        np.testing.assert_array_equal(with_torch[key], value, err_msg=key)
