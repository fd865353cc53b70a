"""Tests of the import of the authors' AMER weights (jaxaffect.families.amer.convert).

The fixtures (fixtures/amer_ckpt, written once by its make_fixtures.py with real torch.save)
are the authors' trainer checkpoint layout in both torch.save formats, a batch in our layout
and in theirs, torch's log-probs and the float64 numpy reference defined in make_fixtures.py
(independent of torch and of jaxaffect).
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxaffect import torch_checkpoint as tc
from jaxaffect import torch_save
from jaxaffect.families.amer import convert as ca
from jaxaffect.families.amer.amer_model import AMER

FIXTURES = Path(__file__).parent / "fixtures" / "amer_ckpt"
FORMATS = ("model_best_legacy.pth", "model_best_zip.pth")
_spec = importlib.util.spec_from_file_location("amer_make_fixtures",
                                               FIXTURES / "make_fixtures.py")
ref = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(ref)  # numpy-only at import; torch is imported by its main()


@pytest.fixture(scope="module")
def expected() -> dict[str, np.ndarray]:
    with np.load(FIXTURES / "expected.npz") as npz:
        return {k: npz[k] for k in npz.files}


def _part(expected: dict, prefix: str) -> dict[str, np.ndarray]:
    return {k.split(":", 1)[1]: v for k, v in expected.items() if k.startswith(prefix + ":")}


def _log_probs(model: AMER, variables: dict, batch: dict, jit: bool) -> np.ndarray:
    fn = lambda v, b: jax.nn.log_softmax(model.apply(v, b)["logits"], axis=-1)
    fn = jax.jit(fn) if jit else fn
    with jax.default_matmul_precision("highest"):
        return np.asarray(fn(variables, {k: jnp.asarray(v) for k, v in batch.items()}))


def _write(path: Path, sd: dict[str, np.ndarray]) -> str:
    torch_save.save(path, {"epoch": 3, "state_dict": sd})
    return str(path)


def _zeros_state_dict(d_e: int, dims: dict[str, int], classes: int) -> dict[str, np.ndarray]:
    """The authors' key names and shapes at any D_e (zeros: only shapes matter)."""
    widths = {"enc_v": (dims["visual"], 4 * d_e, 3 * d_e, 2 * d_e),
              "enc_a": (dims["audio"], 8 * d_e, 4 * d_e, 2 * d_e),
              "enc_t": (dims["text"], 4 * d_e, 2 * d_e),
              "enc_p": (dims["personality"], 4 * d_e, 2 * d_e),
              "out_layer": (4 * d_e, 2 * d_e, classes)}
    sd = {}
    for name, w in widths.items():
        for i, (a, b) in enumerate(zip(w[:-1], w[1:])):
            sd[f"{name}.{2 * i}.weight"] = np.zeros((b, a), np.float32)
            sd[f"{name}.{2 * i}.bias"] = np.zeros((b,), np.float32)
    sd["fusion_layer.weight"] = np.zeros((4 * d_e, 14 * d_e), np.float32)
    sd["fusion_layer.bias"] = np.zeros((4 * d_e,), np.float32)
    return sd


# ------------------------------------------------------------------------------------------
# Reading the trainer's checkpoints
# ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", FORMATS)
def test_builtin_reader_on_both_formats(name, expected):
    sd, extra = ca.read_released(str(FIXTURES / name), reader="builtin")
    want = _part(expected, "sd")
    assert set(sd) == set(want) == set(ca.released_keys())
    for key, value in want.items():
        assert sd[key].dtype == np.float32
        np.testing.assert_array_equal(sd[key], value, err_msg=key)
    assert extra == {"arch": "AMER", "epoch": 50, "monitor_best": 0.375, "reader": "builtin"}
    full = tc.read_torch_file(str(FIXTURES / name), stand_ins=ca.TRAINER_STAND_INS)
    group = full["optimizer"]["param_groups"][0]
    assert group["lr"] == pytest.approx(5e-5) and group["amsgrad"] is True
    assert len(full["optimizer"]["state"]) == len(sd)  # Adam moments of every tensor
    config = full["config"]
    assert isinstance(config, ca.TrainerObject)  # inert: only its pickled state
    assert config.state["_config"]["model"]["args"]["D_e"] == ref.D_E
    assert config.state["_save_dir"].args == ("saved", "models", "Train_9", "0101_000000")


@pytest.mark.parametrize("reader", ["builtin", "torch"])
def test_numpy_scalar_next_to_the_weights(reader, expected):
    if reader == "torch":
        pytest.importorskip("torch")
    sd, extra = ca.read_released(str(FIXTURES / "numpy_scalar.pth"), reader=reader)
    assert extra == {"arch": "AMER", "epoch": 50, "reader": reader}  # the scalar is no plain value
    np.testing.assert_array_equal(sd["fusion_layer.weight"], expected["sd:fusion_layer.weight"])


@pytest.mark.parametrize("name", FORMATS)
def test_trainer_config_needs_the_stand_ins(name):
    with pytest.raises(tc.CheckpointError, match=r"parse_config\.ConfigParser"):
        tc.read_state_dict(str(FIXTURES / name), reader="builtin")


@pytest.mark.parametrize("reader", ["builtin", "torch"])
def test_other_pickled_objects_are_refused(reader):
    if reader == "torch":
        pytest.importorskip("torch")
    path = str(FIXTURES / "pickled_object.pth")
    with pytest.raises(tc.CheckpointError, match="pickled_object.pth") as err:
        ca.read_released(path, reader=reader)
    if reader == "builtin":
        assert "payload.Hook" in str(err.value)


def test_torch_reader_agrees_with_builtin(expected):
    pytest.importorskip("torch")
    for name in FORMATS:
        sd, extra = ca.read_released(str(FIXTURES / name), reader="torch")
        assert extra["reader"] == "torch" and extra["epoch"] == 50
        for key, value in _part(expected, "sd").items():
            np.testing.assert_array_equal(sd[key], value, err_msg=key)


# ------------------------------------------------------------------------------------------
# Converted forward == the authors' forward (torch) == numpy reference
# ------------------------------------------------------------------------------------------

def test_numpy_reference_matches_torch(expected):
    got = ref.numpy_forward(_part(expected, "sd"), _part(expected, "flat"))
    np.testing.assert_allclose(got, expected["numpy_logprobs"], atol=1e-12)
    np.testing.assert_allclose(got, expected["torch_logprobs_f64"], atol=1e-9)
    np.testing.assert_allclose(got, expected["torch_logprobs"], atol=1e-5)


def test_flat_layout_of_the_fixture_batch(expected):
    flat = ref.to_released_inputs(_part(expected, "ours"))
    for key, value in _part(expected, "flat").items():
        np.testing.assert_array_equal(flat[key], value, err_msg=key)


@pytest.mark.parametrize("name,jit", [(FORMATS[0], True), (FORMATS[1], False)])
def test_converted_forward_matches_torch(name, jit, expected, tmp_path):
    meta = ca.convert_checkpoint(str(FIXTURES / name), str(tmp_path), reader="builtin")
    on_disk = json.loads((tmp_path / ca.CONFIG_FILE).read_text())
    assert on_disk["labels"] == meta["labels"] == "primary" and on_disk["d_e"] == ref.D_E
    assert on_disk["input_dims"] == ref.DIMS
    assert on_disk["amer"]["text_sizes"] == [4 * ref.D_E, 2 * ref.D_E]  # the authors' 2 layers
    assert on_disk["amer"]["released_code"] is True
    assert on_disk["config_overrides"]["model.text_sizes"] == [16, 8]
    assert on_disk["config_arg"] == "model=amer,labels=primary,released"
    assert on_disk["source"]["epoch"] == 50 and on_disk["source"]["file"] == name
    model, variables = ca.load_converted(str(tmp_path))
    assert model.released_code and model.num_classes == ref.N_CLASSES
    got = _log_probs(model, variables, _part(expected, "ours"), jit)
    np.testing.assert_allclose(got, expected["torch_logprobs"], atol=1e-5)
    np.testing.assert_allclose(got, expected["numpy_logprobs"], atol=1e-5)
    assert (got.argmax(-1) == expected["torch_logprobs"].argmax(-1)).all()


def test_fixture_exercises_the_released_edge_cases(expected):
    """With our default edge cases the fixture's answers change: examples 1 (one person, a
    modality never present), 2 and 4 (rows without a present key) differ from the authors'."""
    params, info = ca.convert_state_dict(_part(expected, "sd"))
    batch = _part(expected, "ours")
    fields = dict(info["amer"], released_code=False)
    got = _log_probs(AMER(**fields), {"params": params}, batch, jit=True)
    gap = np.abs(got - expected["torch_logprobs"]).max(-1)
    assert (gap[[1, 2, 4]] > 1e-2).all(), gap


def test_mapping_transposes_and_permutes_fusion_rows(expected):
    sd = _part(expected, "sd")
    params, info = ca.convert_state_dict(sd)
    np.testing.assert_array_equal(params["enc_audio"]["layers_2"]["kernel"],
                                  sd["enc_a.4.weight"].T)
    np.testing.assert_array_equal(params["classifier"]["layers_1"]["bias"], sd["out_layer.2.bias"])
    np.testing.assert_array_equal(params["enc_personality"]["layers_1"]["kernel"],
                                  sd["enc_p.2.weight"].T)
    d = 4 * ref.D_E  # each modality block: encoder (2 De) + personality (2 De)
    w, k = sd["fusion_layer.weight"], params["fusion"]["kernel"]
    theirs = {"visual": w[:, :d], "audio": w[:, d:2 * d], "text": w[:, 2 * d:3 * d],
              "personality": w[:, 3 * d:]}
    ours = {"audio": k[:d], "text": k[d:2 * d], "visual": k[2 * d:3 * d], "personality": k[3 * d:]}
    for m in theirs:
        np.testing.assert_array_equal(ours[m], theirs[m].T, err_msg=m)
    assert info["key_map"]["enc_v.2.weight"] == "enc_visual/layers_1/kernel"
    assert info["key_map"]["fusion_layer.bias"] == "fusion/bias"


def test_paper_sizes_give_the_authors_fields():
    dims = {"audio": 6373, "text": 1024, "visual": 4302, "personality": 118}
    _, info = ca.convert_state_dict(_zeros_state_dict(128, dims, 14))
    f = info["amer"]
    assert (f["audio_sizes"], f["text_sizes"], f["visual_sizes"], f["personality_sizes"]) == (
        (1024, 512, 256), (512, 256), (512, 384, 256), (512, 256))
    assert (f["fusion_size"], f["classifier_sizes"], f["num_classes"]) == (512, (256,), 14)
    assert (info["labels"], info["d_e"], info["input_dims"]) == ("fine", 128, dims)


# ------------------------------------------------------------------------------------------
# Clear errors, naming the file and the key
# ------------------------------------------------------------------------------------------

def test_missing_key_is_named(expected, tmp_path):
    sd = _part(expected, "sd")
    del sd["enc_a.4.bias"]
    path = _write(tmp_path / "missing.pth", sd)
    with pytest.raises(tc.CheckpointError, match=r"missing\.pth: .*lacks \['enc_a\.4\.bias'\]"):
        ca.convert_checkpoint(path, str(tmp_path / "out"), reader="builtin")
    assert not (tmp_path / "out").exists()


def test_unexpected_key_is_named(expected, tmp_path):
    sd = dict(_part(expected, "sd"), **{"enc_t.4.weight": np.zeros((2, 8), np.float32)})
    path = _write(tmp_path / "extra.pth", sd)
    with pytest.raises(tc.CheckpointError, match=r"extra\.pth: .*enc_t\.4\.weight"):
        ca.convert_checkpoint(path, str(tmp_path / "out"), reader="builtin")


@pytest.mark.parametrize("key,shape,match", [
    ("enc_t.2.weight", (8, 15), r"enc_t\.2\.weight: shape \(8, 15\).*enc_text/layers_1/kernel"),
    ("out_layer.2.bias", (10,), r"out_layer\.2\.bias: shape \(10,\)"),
    ("enc_v.2.bias", (12, 1), r"enc_v\.2\.bias: expected a 1-d tensor"),
    ("fusion_layer.weight", (16, 57), r"fusion_layer\.weight: shape \(16, 57\)"),
    ("enc_a.4.weight", (10, 16), r"not the authors' 2 D_e / 4 D_e layout"),
    ("out_layer.2.weight", (13, 8), r"13 classes"),
])
def test_wrong_shape_is_named(key, shape, match, expected, tmp_path):
    sd = _part(expected, "sd")
    sd[key] = np.zeros(shape, np.float32)
    path = _write(tmp_path / "bad.pth", sd)
    with pytest.raises(tc.CheckpointError, match=r"bad\.pth: .*" + match):
        ca.convert_checkpoint(path, str(tmp_path / "out"), reader="builtin")


def test_load_converted_refuses_other_folders(tmp_path):
    (tmp_path / ca.CONFIG_FILE).write_text(json.dumps({"format": "something.else"}))
    with pytest.raises(tc.CheckpointError, match="not a converted AMER folder"):
        ca.load_converted(str(tmp_path))


def test_cli_main(tmp_path, capsys, expected):
    assert ca.main([str(FIXTURES / FORMATS[0]), str(tmp_path), "--reader", "builtin"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert (out["labels"], out["d_e"]) == ("primary", ref.D_E)
    params = ca.load_params(str(tmp_path))
    np.testing.assert_array_equal(params["enc_text"]["layers_0"]["kernel"],
                                  expected["sd:enc_t.0.weight"].T)
