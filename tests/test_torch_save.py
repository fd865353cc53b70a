"""Tests of the torch-free torch.save writer (jaxaffect.torch_save): round trips through the
project's reader, the zip layout torch expects, and (when torch is installed) torch.load."""

from __future__ import annotations

import collections
import struct
import zipfile

import numpy as np
import pytest

from jaxaffect import torch_save as ts
from jaxaffect.torch_checkpoint import CheckpointError, read_torch_file


def _arrays(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "f32": rng.normal(size=(3, 4)).astype(np.float32),
        "f64": rng.normal(size=(5,)),
        "i64": rng.integers(-2**40, 2**40, size=(2, 3, 1)),
        "i32": rng.integers(-2**31, 2**31 - 1, size=(4,), dtype=np.int32),
        "u8": rng.integers(0, 256, size=(2, 2), dtype=np.uint8),
        "bool": rng.random(7) > 0.5,
        "f16": rng.normal(size=(2,)).astype(np.float16),
        "empty": np.zeros((0, 6), np.float32),
        "scalar": np.array(2.5, np.float32),
    }


def _assert_same(want, got, path="obj"):
    """Equal values, dtypes, shapes and container types, recursively."""
    if isinstance(want, np.ndarray):
        assert isinstance(got, np.ndarray), path
        assert got.dtype == want.dtype.newbyteorder("=") and got.shape == want.shape, path
        np.testing.assert_array_equal(got, want, err_msg=path)
    elif isinstance(want, dict):
        assert type(got) is type(want) and list(got) == list(want), path
        for k in want:
            _assert_same(want[k], got[k], f"{path}[{k!r}]")
    elif isinstance(want, (list, tuple)):
        assert type(got) is type(want) and len(got) == len(want), path
        for i, (w, g) in enumerate(zip(want, got)):
            _assert_same(w, g, f"{path}[{i}]")
    else:
        assert got == want and type(got) is type(want), (path, want, got)


NESTED = [
    _arrays(0),
    [_arrays(1)["f32"], (_arrays(2)["i64"], "text", None), {"k": [True, False, 3, -4.5]}],
    collections.OrderedDict([("layer.weight", _arrays(3)["f32"]), ("layer.bias", np.ones(3))]),
    {"epoch": 7, "huge": 2**70, "neg": -(2**45), "state_dict": {"w": np.eye(2, dtype=np.float32)},
     5: "int key", "nested": {"deeper": {"deepest": [np.arange(3)]}}},
    np.arange(6, dtype=np.int32).reshape(2, 3),
    (),
    {},
]


@pytest.mark.parametrize("obj", NESTED, ids=[f"case{i}" for i in range(len(NESTED))])
def test_round_trip_through_the_project_reader(tmp_path, obj):
    path = tmp_path / "obj.pt"
    ts.save(path, obj)
    _assert_same(obj, read_torch_file(str(path)))


def test_views_big_endian_and_numpy_scalars_are_saved_by_value(tmp_path):
    base = np.arange(24, dtype=np.float64).reshape(4, 6)
    obj = {"transposed": base.T, "sliced": base[1:, ::2], "big_endian": base.astype(">f4"),
           "np_scalars": [np.float32(1.5), np.int64(-3), np.bool_(True)]}
    ts.save(tmp_path / "v.pt", obj)
    got = read_torch_file(str(tmp_path / "v.pt"))
    np.testing.assert_array_equal(got["transposed"], base.T)
    np.testing.assert_array_equal(got["sliced"], base[1:, ::2])
    assert got["big_endian"].dtype == np.float32
    np.testing.assert_array_equal(got["big_endian"], base.astype(np.float32))
    assert got["np_scalars"] == [1.5, -3, True]
    assert [type(v) for v in got["np_scalars"]] == [float, int, bool]


def test_zip_layout_is_what_torch_writes(tmp_path):
    path = tmp_path / "model.pt"
    ts.save(path, {"a": np.ones((3, 3), np.float32), "b": np.zeros(5, np.int64)})
    with zipfile.ZipFile(path) as zf:
        infos = {i.filename: i for i in zf.infolist()}
        assert set(infos) == {"model/data.pkl", "model/byteorder", "model/version",
                              "model/data/0", "model/data/1"}
        assert all(i.compress_type == zipfile.ZIP_STORED for i in infos.values())
        assert zf.read("model/byteorder") == b"little"
        assert zf.read("model/version").strip() == b"3"
        assert zf.read("model/data/0") == np.ones(9, "<f4").tobytes()
        assert zf.read("model/data/1") == np.zeros(5, "<i8").tobytes()
        pickled = zf.read("model/data.pkl")
    assert pickled.startswith(b"\x80\x02") and pickled.endswith(b".")
    assert b"ctorch._utils\n_rebuild_tensor_v2\n" in pickled
    assert b"ctorch\nFloatStorage\n" in pickled and b"ctorch\nLongStorage\n" in pickled
    raw = path.read_bytes()
    for name in ("model/data/0", "model/data/1"):  # storages start on 64-byte boundaries
        info = infos[name]
        name_len, extra_len = struct.unpack("<HH", raw[info.header_offset + 26:
                                                        info.header_offset + 30])
        assert (info.header_offset + 30 + name_len + extra_len) % ts.ALIGNMENT == 0


def test_output_is_byte_reproducible(tmp_path):
    obj = {"x": _arrays(4), "y": [1, 2.0, "z"]}
    ts.save(tmp_path / "one" / "a.pt", obj)  # parent folders are created
    ts.save(tmp_path / "two" / "a.pt", obj)
    first = (tmp_path / "one" / "a.pt").read_bytes()
    assert first == (tmp_path / "two" / "a.pt").read_bytes() == ts.dumps(obj, "a")


def test_archive_folder_falls_back_for_odd_file_names(tmp_path):
    path = tmp_path / "weird name.tar.pt"
    ts.save(path, np.ones(2, np.float32))
    with zipfile.ZipFile(path) as zf:
        assert zf.namelist()[0] == "archive/data.pkl"
    np.testing.assert_array_equal(read_torch_file(str(path)), np.ones(2, np.float32))


@pytest.mark.parametrize("obj,error,match", [
    (np.zeros(2, np.complex64), TypeError, "dtype complex64"),
    (np.array(["a"]), TypeError, "dtype <U1"),
    ({1, 2}, TypeError, "cannot save a set"),
    (2**3000, ValueError, "too large"),
])
def test_unsupported_values_are_refused(tmp_path, obj, error, match):
    with pytest.raises(error, match=match):
        ts.save(tmp_path / "x.pt", obj)
    assert not (tmp_path / "x.pt").exists()


def test_a_cycle_is_refused(tmp_path):
    loop: list = []
    loop.append(loop)
    with pytest.raises(ValueError, match="contains itself"):
        ts.save(tmp_path / "x.pt", loop)


def test_the_project_reader_still_refuses_what_the_writer_never_writes(tmp_path):
    """A file from the writer with one storage record removed is refused, naming the file."""
    path = tmp_path / "x.pt"
    ts.save(path, {"w": np.ones(3, np.float32)})
    broken = tmp_path / "broken.pt"
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(broken, "w") as dst:
        for info in src.infolist():
            if not info.filename.endswith("data/0"):
                dst.writestr(info, src.read(info))
    with pytest.raises(CheckpointError, match="storage 0 is missing"):
        read_torch_file(str(broken))


def test_torch_load_reads_it_with_weights_only(tmp_path):
    torch = pytest.importorskip("torch")
    obj = {"arrays": _arrays(5), "list": [np.arange(4), ("s", 1, 2.5, None, True)],
           "od": collections.OrderedDict(w=np.ones((2, 2), np.float32))}
    path = tmp_path / "obj.pt"
    ts.save(path, obj)
    for mmap in (False, True):
        got = torch.load(path, weights_only=True, mmap=mmap)
        as_numpy = {"arrays": {k: v.numpy() for k, v in got["arrays"].items()},
                    "list": [got["list"][0].numpy(), got["list"][1]],
                    "od": collections.OrderedDict(w=got["od"]["w"].numpy())}
        _assert_same(obj, as_numpy)
