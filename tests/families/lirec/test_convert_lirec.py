"""Tests of the released LIReC checkpoint import (jaxaffect.families.lirec.convert).

The torch.save reader (jaxaffect.torch_checkpoint) is tested here on the LIReC fixtures written by
real torch.save (both formats); its family-independent tests are in tests/test_torch_checkpoint.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxaffect import torch_checkpoint as tc
from jaxaffect.families.lirec import convert as cl

FIXTURES = Path(__file__).parent / "fixtures" / "lirec_ckpt"
DT, DV, DR = 6, 5, 4  # text, visual, per-character track sizes
J = 8  # joint_dim (tracks map to J // 2), as in the released code's layout
N_CLASSES, N_RELS, GATE = 7, 3, 48


# ------------------------------------------------------------------------------------------
# The released layout and forward pass, written independently of jaxaffect (numpy, [out, in])
# ------------------------------------------------------------------------------------------

def released_state_dict(kind: str, seed: int = 0, gates: bool = True) -> dict[str, np.ndarray]:
    """Random weights with the released key names and shapes (nn.Linear: weight [out, in])."""
    rng = np.random.default_rng(seed)
    shapes: dict[str, tuple[int, int]] = {}
    for suffix, on in (("ints", kind in ("interactions", "joint")),
                       ("ctx", kind in ("relationships", "joint"))):
        if on:
            shapes.update({f"txt_{suffix}": (J, DT), f"txt2_{suffix}": (J, J),
                           f"vis_{suffix}": (J, DV), f"vis2_{suffix}": (J, J),
                           f"tracks1_{suffix}": (J, DR), f"tracks2_{suffix}": (J, DR),
                           f"tracks12_{suffix}": (J // 2, J), f"tracks22_{suffix}": (J // 2, J)})
    gated = gates and kind == "joint"
    if gated:
        shapes["gates_ints.fc_out"] = (GATE, 6 * J)
    if kind in ("interactions", "joint"):
        shapes["out_ints"] = (N_CLASSES, GATE if gated else 3 * J)
    if kind in ("relationships", "joint"):
        shapes["out_ctx"] = (N_RELS, 3 * J)
    sd = {}
    for name, (o, i) in shapes.items():
        sd[f"{name}.weight"] = rng.normal(scale=1 / np.sqrt(i), size=(o, i)).astype(np.float32)
        sd[f"{name}.bias"] = rng.normal(scale=0.1, size=(o,)).astype(np.float32)
    return sd


def _lin(sd, name, x):
    return x @ sd[f"{name}.weight"].T + sd[f"{name}.bias"]


def _branch(sd, x, s):
    """Per-modality MLPs of one branch on flat features [..., Dt + Dv + 2 Dr] (eval mode)."""
    mlp = lambda a, b, v: _lin(sd, b, np.maximum(_lin(sd, a, v), 0))
    return [mlp(f"txt_{s}", f"txt2_{s}", x[..., :DT]),
            mlp(f"vis_{s}", f"vis2_{s}", x[..., DT:DT + DV]),
            mlp(f"tracks1_{s}", f"tracks12_{s}", x[..., DT + DV:DT + DV + DR]),
            mlp(f"tracks2_{s}", f"tracks22_{s}", x[..., DT + DV + DR:])]


def released_forward(sd, features, rels_mask):
    """Released forward: target clip at slot 0, context clips 1.. averaged over rels_mask."""
    out = {}
    if "out_ints.weight" in sd:
        out["inters"] = np.tanh(np.concatenate(_branch(sd, features[:, 0], "ints"), -1))
    if "out_ctx.weight" in sd:
        m = rels_mask.astype(np.float64)[..., None]
        div = np.maximum(m.sum(1), 1)
        parts = [(p * m).sum(1) / div for p in _branch(sd, features[:, 1:], "ctx")]
        out["rels"] = np.tanh(np.concatenate(parts, -1))
    if "gates_ints.fc_out.weight" in sd:
        gate_in = np.concatenate([out["rels"], out["inters"]], -1)  # released order: [R; I]
        out["inters"] = np.maximum(_lin(sd, "gates_ints.fc_out", gate_in), 0)
    if "inters" in out:
        out["inters"] = _lin(sd, "out_ints", out["inters"])
    if "rels" in out:
        out["rels"] = _lin(sd, "out_ctx", out["rels"])
    return out


def _inputs(seed=0, b=3, n=4):
    rng = np.random.default_rng(seed)
    features = rng.normal(size=(b, 1 + n, DT + DV + 2 * DR)).astype(np.float32)
    rels_mask = rng.random((b, n)) < 0.6
    rels_mask[:, 0] = True
    rels_mask[-1] = False  # an empty group: the released code clamps the count to 1 -> zeros
    return features, rels_mask


def _ours(model, variables, features, rels_mask, dims, jit):
    """Our model on the released inputs: slot 0 is the target clip, out of the pooled group."""
    visual, text, tracks = cl.split_released_features(features, dims)
    clip_mask = np.concatenate([np.zeros_like(rels_mask[:, :1]), rels_mask], 1)
    fn = lambda v, *a: model.apply(v, *a)
    fn = jax.jit(fn) if jit else fn
    with jax.default_matmul_precision("highest"):
        out = fn(variables, jnp.asarray(visual), jnp.asarray(text), jnp.asarray(tracks),
                 jnp.asarray(clip_mask))
    return {k: np.asarray(v) for k, v in out.items()}


def _check_outputs(ours, ref, atol=1e-5):
    if "inters" in ref:
        np.testing.assert_allclose(ours["interaction_logits"][:, 0], ref["inters"], atol=atol)
    else:
        assert "interaction_logits" not in ours
    if "rels" in ref:
        np.testing.assert_allclose(ours["relationship_logits"], ref["rels"], atol=atol)
    else:
        assert "relationship_logits" not in ours


# ------------------------------------------------------------------------------------------
# (c) converted forward == independent numpy forward
# ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("kind,gates,jit", [
    ("joint", True, True), ("joint", True, False), ("joint", False, True),
    ("interactions", False, False), ("relationships", False, True)])
def test_converted_forward_matches_numpy_reference(kind, gates, jit):
    sd = released_state_dict(kind, seed=3, gates=gates)
    params, info = cl.convert_state_dict(sd)
    assert info["kind"] == kind
    assert info["input_dims"] == {"visual": DV, "text": DT, "tracks": DR}
    model = cl.LIReC(**info["lirec"])
    features, rels_mask = _inputs()
    ref = released_forward(sd, features.astype(np.float64), rels_mask)
    _check_outputs(_ours(model, {"params": params}, features, rels_mask, info["input_dims"], jit),
                   ref)


def test_field_values_and_gate_block_swap():
    sd = released_state_dict("joint")
    params, info = cl.convert_state_dict(sd)
    f = info["lirec"]
    assert (f["joint_dim"], f["track_hidden_dim"], f["track_out_dim"]) == (J, J, J // 2)
    assert (f["int_hidden_dim"], f["coupling"]) == (GATE, "rel_to_int")
    assert (f["num_interactions"], f["num_relationships"]) == (N_CLASSES, N_RELS)
    assert f["rel_pool_before_tanh"] and f["dropout_before_relu"] and f["separate_rel_weights"]
    w = sd["gates_ints.fc_out.weight"]  # [out, [Phi_R (3J); Phi_I (3J)]]
    k = params["int_hidden"]["kernel"]  # [[Phi_I; Phi_R], out]
    np.testing.assert_array_equal(k[: 3 * J], w[:, 3 * J:].T)
    np.testing.assert_array_equal(k[3 * J:], w[:, : 3 * J].T)
    np.testing.assert_array_equal(params["phi_rel"]["track_second"]["fc2"]["kernel"],
                                  sd["tracks22_ctx.weight"].T)
    _, info_plain = cl.convert_state_dict(released_state_dict("joint", gates=False))
    assert (info_plain["lirec"]["coupling"], info_plain["lirec"]["int_hidden_dim"]) == ("none", 0)


def test_key_map_covers_every_released_key_and_detects_kind():
    sd = released_state_dict("joint")
    key_map = cl.released_key_map(list(sd))
    assert set(key_map) == set(sd)
    assert key_map["txt2_ints.weight"] == ("phi_int", "text", "fc2", "kernel")
    assert key_map["tracks1_ctx.bias"] == ("phi_rel", "track_first", "fc1", "bias")
    assert key_map["gates_ints.fc_out.weight"] == ("int_hidden", "kernel")
    for kind in ("interactions", "relationships", "joint"):
        assert cl.detect_kind(list(released_state_dict(kind))) == kind


def test_released_sizes_give_the_released_fields():
    # int_rel.pth.tar at the released sizes: BERT 768, I3D 2048 (clip and tracks), joint 512,
    # gate 6 * 512, 101 interactions, 15 relationships (zeros: only shapes matter here).
    shapes = {"out_ints": (101, 3072), "out_ctx": (15, 1536), "gates_ints.fc_out": (3072, 3072)}
    for s in ("ints", "ctx"):
        shapes.update({f"txt_{s}": (512, 768), f"txt2_{s}": (512, 512), f"vis_{s}": (512, 2048),
                       f"vis2_{s}": (512, 512), f"tracks1_{s}": (512, 2048),
                       f"tracks2_{s}": (512, 2048), f"tracks12_{s}": (256, 512),
                       f"tracks22_{s}": (256, 512)})
    sd = {}
    for name, shape in shapes.items():
        sd[f"{name}.weight"] = np.zeros(shape, np.float32)
        sd[f"{name}.bias"] = np.zeros(shape[:1], np.float32)
    _, info = cl.convert_state_dict(sd)
    assert {k: info["lirec"][k] for k in cl.RELEASED_CODE} == cl.RELEASED_CODE
    assert (info["lirec"]["num_interactions"], info["lirec"]["num_relationships"]) == (101, 15)
    assert info["input_dims"] == {"visual": 2048, "text": 768, "tracks": 2048}


def test_modality_subset_is_detected():
    sd = {k: v for k, v in released_state_dict("interactions").items()
          if not k.startswith("tracks")}
    sd["out_ints.weight"] = sd["out_ints.weight"][:, : 2 * J]
    params, info = cl.convert_state_dict(sd)
    assert info["lirec"]["modalities"] == ("visual", "text")
    assert set(params["phi_int"]) == {"text", "visual"}


# ------------------------------------------------------------------------------------------
# Clear errors
# ------------------------------------------------------------------------------------------

def test_unknown_key_is_named():
    sd = dict(released_state_dict("interactions"), **{"extra_layer.weight": np.zeros((2, 2))})
    with pytest.raises(cl.CheckpointError, match="extra_layer.weight"):
        cl.convert_state_dict(sd)


def test_wrong_shape_is_named():
    sd = released_state_dict("joint")
    sd["vis2_ctx.weight"] = np.zeros((J, J + 1), np.float32)
    with pytest.raises(cl.CheckpointError, match=r"vis2_ctx\.weight.*phi_rel/visual/fc2/kernel"):
        cl.convert_state_dict(sd)
    sd = released_state_dict("interactions")
    sd["out_ints.bias"] = np.zeros((N_CLASSES + 1,), np.float32)
    with pytest.raises(cl.CheckpointError, match=r"out_ints\.bias"):
        cl.convert_state_dict(sd)


def test_missing_key_is_named():
    sd = released_state_dict("joint")
    del sd["tracks22_ints.bias"]
    with pytest.raises(cl.CheckpointError, match="phi_int/track_second/fc2/bias"):
        cl.convert_state_dict(sd)


def test_model_kind_must_fit_the_keys():
    sd = released_state_dict("interactions")
    cl.convert_state_dict(sd, model_kind="characters")  # same parameters
    with pytest.raises(cl.CheckpointError, match="joint"):
        cl.convert_state_dict(sd, model_kind="all")
    with pytest.raises(ValueError, match="unknown model_kind"):
        cl.convert_state_dict(sd, model_kind="faces")


# ------------------------------------------------------------------------------------------
# (b) fixtures written once with real torch.save (see fixtures/lirec_ckpt/make_fixtures.py)
# ------------------------------------------------------------------------------------------

FIXTURE_KINDS = {"int_rel": ("joint", None), "weak_int_ch_sum_max": ("characters", "weak"),
                 "rels_only": ("relationships", None)}


@pytest.mark.parametrize("stem", sorted(FIXTURE_KINDS))
def test_builtin_reader_on_torch_save_fixtures(stem):
    expected = np.load(FIXTURES / "expected.npz")
    sd, extra = cl.read_state_dict(str(FIXTURES / f"{stem}.pth.tar"), reader="builtin")
    want = {k.split(":", 1)[1]: expected[k] for k in expected.files
            if k.startswith(f"{stem}:") and k.endswith((".weight", ".bias"))}
    assert set(sd) == set(want) and extra == {"epoch": 7, "reader": "builtin"}
    for key, value in want.items():
        assert sd[key].dtype == np.float32
        np.testing.assert_array_equal(sd[key], value, err_msg=key)
    full = tc.read_torch_file(str(FIXTURES / f"{stem}.pth.tar"))
    assert full["optimizer"]["param_groups"][0]["lr"] == pytest.approx(3e-5)
    assert len(full["optimizer"]["state"]) == len(sd)  # Adam moments read too


@pytest.mark.parametrize("stem", sorted(FIXTURE_KINDS))
def test_convert_fixture_matches_torch_outputs(stem, tmp_path):
    expected = np.load(FIXTURES / "expected.npz")
    meta = cl.convert_checkpoint(str(FIXTURES / f"{stem}.pth.tar"), str(tmp_path),
                                 reader="builtin")
    kind, supervision = FIXTURE_KINDS[stem]
    assert (meta["model_kind"], meta["pair_supervision"]) == (kind, supervision)
    on_disk = json.loads((tmp_path / cl.CONFIG_FILE).read_text())
    assert on_disk["source"]["epoch"] == 7 and on_disk["model_kind"] == kind
    assert len(on_disk["key_map"]) == sum(
        k.startswith(f"{stem}:") and k.endswith((".weight", ".bias")) for k in expected.files)
    model, variables = cl.load_converted(str(tmp_path))
    features, rels_mask = expected[f"{stem}:features"], expected[f"{stem}:rels_mask"]
    ref = {k: expected[f"{stem}:{k}"] for k in ("inters", "rels") if f"{stem}:{k}" in expected}
    _check_outputs(_ours(model, variables, features, rels_mask, on_disk["input_dims"], True), ref)


def test_cli_main(tmp_path, capsys):
    assert cl.main([str(FIXTURES / "int_rel.pth.tar"), str(tmp_path), "--reader", "builtin",
                    "--kind", "joint"]) == 0
    assert json.loads(capsys.readouterr().out)["model_kind"] == "joint"
    assert (tmp_path / cl.PARAMS_FILE).exists()


def test_split_released_features():
    x = np.arange(2 * (DT + DV + 2 * DR), dtype=np.float32).reshape(2, -1)
    v, t, r = cl.split_released_features(x, {"text": DT, "visual": DV, "tracks": DR})
    np.testing.assert_array_equal(t, x[:, :DT])
    np.testing.assert_array_equal(v, x[:, DT:DT + DV])
    np.testing.assert_array_equal(r[:, 1], x[:, DT + DV + DR:])
    with pytest.raises(ValueError):
        cl.split_released_features(x[:, 1:], {"text": DT, "visual": DV, "tracks": DR})
