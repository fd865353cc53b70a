"""Crafted torch.save files: the built-in reader refuses each with one CheckpointError that names
the file, before allocating what a file merely claims (no MemoryError, no code execution)."""

from __future__ import annotations

import collections
import io
import pickle
import struct
import sys
import types
import zipfile

import numpy as np
import pytest

from jaxaffect import torch_checkpoint as tc

MAGIC, PROTOCOL = 0x1950A86A20F9469CFC6C, 1001


class _StorageRef:
    def __init__(self, key: str, numel: int):
        self.key, self.numel = key, numel


class _TensorCall:
    def __init__(self, storage, size, stride, rebuild):
        self.args, self.rebuild = (storage, 0, size, stride, False, collections.OrderedDict()), \
            rebuild

    def __reduce__(self):
        return self.rebuild, self.args


@pytest.fixture
def fake_torch(monkeypatch):
    """Stand-ins for torch.FloatStorage and torch._utils._rebuild_tensor_v2, so that pickles
    with the globals torch.save writes can be produced without torch."""
    torch_mod, utils_mod = types.ModuleType("torch"), types.ModuleType("torch._utils")

    class FloatStorage:
        pass

    def _rebuild_tensor_v2(*args):
        raise AssertionError("never called while pickling")

    FloatStorage.__module__, FloatStorage.__qualname__ = "torch", "FloatStorage"
    _rebuild_tensor_v2.__module__ = "torch._utils"
    _rebuild_tensor_v2.__qualname__ = "_rebuild_tensor_v2"
    torch_mod.FloatStorage, utils_mod._rebuild_tensor_v2 = FloatStorage, _rebuild_tensor_v2
    torch_mod._utils = utils_mod
    monkeypatch.setitem(sys.modules, "torch", torch_mod)
    monkeypatch.setitem(sys.modules, "torch._utils", utils_mod)
    return torch_mod


def _pickle(obj, storage_type=None) -> bytes:
    buf = io.BytesIO()
    pickler = pickle.Pickler(buf, protocol=2)
    pickler.persistent_id = lambda o: (
        ("storage", storage_type, o.key, "cpu", o.numel) if isinstance(o, _StorageRef) else None)
    pickler.dump(obj)
    return buf.getvalue()


def legacy_file(path, torch_mod, *, values=(1.0, 2.0, 3.0), header=None, data_numel=None,
                size=None):
    """A legacy (torch < 1.6) torch.save file of {"w": tensor(values)}."""
    values = np.asarray(values, "<f4")
    ref = _StorageRef("0", values.size)
    tensor = _TensorCall(ref, (values.size,) if size is None else size, (1,),
                         torch_mod._utils._rebuild_tensor_v2)
    header = {"protocol_version": PROTOCOL, "little_endian": True} if header is None else header
    numel = values.size if data_numel is None else data_numel
    with open(path, "wb") as f:
        f.write(_pickle(MAGIC) + _pickle(PROTOCOL) + _pickle(header))
        f.write(_pickle({"w": tensor}, torch_mod.FloatStorage))
        f.write(_pickle(["0"]) + struct.pack("<q", numel) + values.tobytes())
    return path


def test_a_well_formed_crafted_file_reads(tmp_path, fake_torch):
    out = tc.read_torch_file(str(legacy_file(tmp_path / "ok.pth", fake_torch)))
    np.testing.assert_array_equal(out["w"], np.array([1, 2, 3], np.float32))


def test_a_storage_claiming_2_to_the_40_elements_is_refused_before_reading(tmp_path,
                                                                         fake_torch):
    path = legacy_file(tmp_path / "huge.pth", fake_torch, data_numel=2**40)
    with pytest.raises(tc.CheckpointError, match=r"huge\.pth: storage '0' claims 1099511627776"):
        tc.read_torch_file(str(path))


def test_a_tensor_larger_than_its_storage_is_refused(tmp_path, fake_torch):
    path = legacy_file(tmp_path / "view.pth", fake_torch, size=(2**40,))
    with pytest.raises(tc.CheckpointError, match="runs past its storage"):
        tc.read_torch_file(str(path))


@pytest.mark.parametrize("header", [["not", "a", "dict"], 7])
def test_a_non_dict_header_is_refused(tmp_path, fake_torch, header):
    path = legacy_file(tmp_path / "hdr.pth", fake_torch, header=header)
    with pytest.raises(tc.CheckpointError, match=r"hdr\.pth: the header is a"):
        tc.read_torch_file(str(path))


def test_a_negative_count_is_refused(tmp_path, fake_torch):
    path = legacy_file(tmp_path / "neg.pth", fake_torch, data_numel=-5)
    with pytest.raises(tc.CheckpointError, match="invalid element count -5"):
        tc.read_torch_file(str(path))


@pytest.mark.parametrize("content", [b"", b"hello, not a checkpoint\n", b"\x80\x02K\x01.",
                                     pickle.dumps({"a": 1})])
def test_garbage_gets_one_named_error(tmp_path, content):
    path = tmp_path / "garbage.pth"
    path.write_bytes(content)
    with pytest.raises(tc.CheckpointError, match=r"garbage\.pth"):
        tc.read_torch_file(str(path))


def test_a_global_outside_the_allow_list_is_refused(tmp_path):
    path = tmp_path / "evil.pth"
    path.write_bytes(pickle.dumps(MAGIC, 2) + pickle.dumps(PROTOCOL, 2)
                     + pickle.dumps(collections.Counter(a=1), 2))
    with pytest.raises(tc.CheckpointError, match="refusing to unpickle global"):
        tc.read_torch_file(str(path))


def _zip_file(path, fake_torch, *, compress=False, data=b"\0" * 12, numel=3, member="data/0"):
    ref = _StorageRef("0", numel)
    tensor = _TensorCall(ref, (numel,), (1,), fake_torch._utils._rebuild_tensor_v2)
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("archive/data.pkl", _pickle({"w": tensor}, fake_torch.FloatStorage))
        zf.writestr(f"archive/{member}", data,
                    compress_type=zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED)
    return path


def test_zip_storages_are_checked_against_the_archive(tmp_path, fake_torch):
    ok = tc.read_torch_file(str(_zip_file(tmp_path / "ok.pt", fake_torch)))
    np.testing.assert_array_equal(ok["w"], np.zeros(3, np.float32))
    cases = {"short.pt": (dict(numel=2**40), "shorter than"),
             "packed.pt": (dict(compress=True), "compressed"),
             "missing.pt": (dict(member="data/1"), "missing from the archive")}
    for name, (kw, message) in cases.items():
        with pytest.raises(tc.CheckpointError, match=message):
            tc.read_torch_file(str(_zip_file(tmp_path / name, fake_torch, **kw)))


def test_reader_torch_without_torch_is_one_clear_line(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # import torch -> ImportError
    path = tmp_path / "x.pth"
    path.write_bytes(b"x")
    with pytest.raises(tc.CheckpointError, match="--reader builtin"):
        tc.read_state_dict(str(path), reader="torch")
    with pytest.raises(tc.CheckpointError, match="not found"):
        tc.read_state_dict(str(tmp_path / "absent.pth"), reader="builtin")


def test_convert_cli_reports_a_crafted_file_in_one_line(tmp_path, fake_torch, capsys):
    from jaxaffect import cli

    path = legacy_file(tmp_path / "huge.pth", fake_torch, data_numel=2**40)
    assert cli.main(["convert", "lirec", str(path), str(tmp_path / "out"),
                     "--reader", "builtin"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "huge.pth" in err[0] and "claims" in err[0]
