"""Tests of the torch.save reader (jaxaffect.torch_checkpoint) that need no family's layout.

The torch-free reader on files written by real torch.save (both formats, no torch needed) is
tested on the LIReC fixtures (tests/families/lirec/test_convert_lirec.py).
"""

from __future__ import annotations

import zipfile

import numpy as np
import pytest

from jaxaffect import torch_checkpoint as tc

try:  # needs torch; reading never does
    import torch
except ImportError:
    torch = None
needs_torch = pytest.mark.skipif(torch is None, reason="torch is not installed (optional extra "
                                 "'convert'); the torch-free reader is still tested")


def linear_state_dict(seed: int = 0) -> dict[str, np.ndarray]:
    """Random float32 weights of a few nn.Linear layers (weight [out, in], bias [out])."""
    rng = np.random.default_rng(seed)
    sd = {}
    for name, (o, i) in {"fc1": (8, 6), "fc2": (4, 8), "out": (3, 4)}.items():
        sd[f"{name}.weight"] = rng.normal(size=(o, i)).astype(np.float32)
        sd[f"{name}.bias"] = rng.normal(size=(o,)).astype(np.float32)
    return sd


def test_restricted_unpickler_refuses_other_globals(tmp_path):
    # A zip archive whose pickle calls os.system: refused before anything runs.
    evil = b"\x80\x02cos\nsystem\nX\x04\x00\x00\x00true\x85R."
    path = tmp_path / "evil.pth.tar"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("evil/data.pkl", evil)
    with pytest.raises(tc.CheckpointError, match="refusing to unpickle global os.system"):
        tc.read_torch_file(str(path))
    with pytest.raises(tc.CheckpointError, match="not a torch.save file"):
        bad = tmp_path / "bad.pth.tar"
        bad.write_bytes(b"garbage")
        tc.read_torch_file(str(bad))


@needs_torch
@pytest.mark.parametrize("zip_format", [True, False])
def test_torch_save_read_by_both_readers(zip_format, tmp_path):
    sd = {k: torch.from_numpy(v) for k, v in linear_state_dict(seed=5).items()}
    base = torch.arange(24, dtype=torch.float64).reshape(4, 6)
    extras = {"transposed": base.T, "sliced": base[1:, 2:], "ints": torch.arange(5),
              "half": torch.ones(3, dtype=torch.float16), "flag": torch.tensor([True, False])}
    path = tmp_path / "ckpt.pth.tar"
    torch.save({"epoch": 2, "state_dict": sd, "extras": extras}, path,
               _use_new_zipfile_serialization=zip_format)
    assert zipfile.is_zipfile(path) == zip_format
    ours, extra = tc.read_state_dict(str(path), reader="builtin")
    theirs, extra_t = tc.read_state_dict(str(path), reader="torch")
    assert extra["epoch"] == extra_t["epoch"] == 2 and set(ours) == set(theirs) == set(sd)
    for key in sd:
        np.testing.assert_array_equal(ours[key], theirs[key], err_msg=key)
        np.testing.assert_array_equal(ours[key], sd[key].numpy(), err_msg=key)
    raw = tc.read_torch_file(str(path))["extras"]
    for key, value in extras.items():
        assert raw[key].dtype == value.numpy().dtype, key
        np.testing.assert_array_equal(raw[key], value.numpy(), err_msg=key)
