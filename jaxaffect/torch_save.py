"""Writes numpy arrays in containers as a ``torch.save`` file, without torch.

The file is torch's zip serialization (what ``torch.save`` writes since torch 1.6): a zip of
uncompressed records under one folder ``<name>/``:

  <name>/data.pkl     the object, pickled (protocol 2); every tensor is
                      ``torch._utils._rebuild_tensor_v2(storage, offset, size, stride, False,
                      OrderedDict())`` and every storage a persistent id
                      ``("storage", torch.<Type>Storage, key, "cpu", numel)``
  <name>/data/<key>   the storage's raw little-endian bytes (aligned to 64 bytes in the file)
  <name>/byteorder    "little"
  <name>/version      "3"

The pickle is written opcode by opcode (no global is imported, nothing is memoised), so
``torch.load(weights_only=True)`` and ``jaxaffect.torch_checkpoint.read_torch_file`` both read
it. Supported values: numpy arrays (and numpy scalars) of the dtypes in ``STORAGE_TYPES``, and
dict / OrderedDict / list / tuple / str / int / float / bool / None nested in any way. The
output is byte-reproducible (fixed zip dates, storages numbered in traversal order).
"""

from __future__ import annotations

import collections
import io
import os
import re
import struct
import zipfile
from typing import Any

import numpy as np

FIXED_DATE = (1980, 1, 1, 0, 0, 0)
ALIGNMENT = 64  # torch aligns storage records so that they can be memory-mapped
# numpy dtype -> torch storage class name (little-endian bytes of that dtype).
STORAGE_TYPES: dict[str, str] = {
    "float32": "FloatStorage", "float64": "DoubleStorage", "float16": "HalfStorage",
    "int64": "LongStorage", "int32": "IntStorage", "int16": "ShortStorage",
    "int8": "CharStorage", "uint8": "ByteStorage", "bool": "BoolStorage"}

# Pickle opcodes (protocol 2).
_PROTO, _STOP, _MARK = b"\x80", b".", b"("
_EMPTY_DICT, _EMPTY_LIST, _EMPTY_TUPLE = b"}", b"]", b")"
_SETITEMS, _APPENDS, _TUPLE, _REDUCE = b"u", b"e", b"t", b"R"
_GLOBAL, _BINPERSID = b"c", b"Q"
_NONE, _NEWTRUE, _NEWFALSE = b"N", b"\x88", b"\x89"
_BININT, _LONG1, _BINFLOAT, _BINUNICODE = b"J", b"\x8a", b"G", b"X"


class _PickleWriter:
    """Emits the pickle of one object; arrays become storages collected in `storages`."""

    def __init__(self) -> None:
        self.out = io.BytesIO()
        self.storages: list[np.ndarray] = []  # flat little-endian arrays, key = index
        self._active: set[int] = set()  # ids of the containers being written (cycle check)

    def dump(self, obj: Any) -> bytes:
        self.out.write(_PROTO + b"\x02")
        self._save(obj)
        self.out.write(_STOP)
        return self.out.getvalue()

    def _w(self, *parts: bytes) -> None:
        for p in parts:
            self.out.write(p)

    def _global(self, module: str, name: str) -> None:
        self._w(_GLOBAL, module.encode("ascii"), b"\n", name.encode("ascii"), b"\n")

    def _str(self, s: str) -> None:
        data = s.encode("utf-8", "surrogatepass")
        self._w(_BINUNICODE, struct.pack("<I", len(data)), data)

    def _int(self, n: int) -> None:
        if -(2**31) <= n < 2**31:
            self._w(_BININT, struct.pack("<i", n))
        else:
            data = n.to_bytes((n.bit_length() + 8) // 8, "little", signed=True)
            if len(data) > 255:
                raise ValueError(f"integer {n} is too large to save")
            self._w(_LONG1, bytes([len(data)]), data)

    def _save(self, obj: Any) -> None:
        if obj is None:
            self._w(_NONE)
        elif obj is True or obj is False or isinstance(obj, np.bool_):
            self._w(_NEWTRUE if obj else _NEWFALSE)
        elif isinstance(obj, (int, np.integer)):
            self._int(int(obj))
        elif isinstance(obj, (float, np.floating)):
            self._w(_BINFLOAT, struct.pack(">d", float(obj)))
        elif isinstance(obj, str):
            self._str(obj)
        elif isinstance(obj, np.ndarray):
            self._tensor(obj)
        elif isinstance(obj, (dict, list, tuple)):
            if id(obj) in self._active:
                raise ValueError("cannot save a container that contains itself")
            self._active.add(id(obj))
            try:
                self._container(obj)
            finally:
                self._active.discard(id(obj))
        else:
            raise TypeError(f"cannot save a {type(obj).__name__} as a torch file; supported: "
                            "numpy arrays, dict, list, tuple, str, int, float, bool, None")

    def _container(self, obj: dict | list | tuple) -> None:
        if isinstance(obj, dict):
            if isinstance(obj, collections.OrderedDict):
                self._ordered_dict()
            else:
                self._w(_EMPTY_DICT)
            if obj:
                self._w(_MARK)
                for k, v in obj.items():
                    self._save(k)
                    self._save(v)
                self._w(_SETITEMS)
        elif isinstance(obj, list):
            self._w(_EMPTY_LIST)
            if obj:
                self._w(_MARK)
                for v in obj:
                    self._save(v)
                self._w(_APPENDS)
        elif not obj:
            self._w(_EMPTY_TUPLE)
        else:
            self._w(_MARK)
            for v in obj:
                self._save(v)
            self._w(_TUPLE)

    def _ordered_dict(self) -> None:
        self._global("collections", "OrderedDict")
        self._w(_EMPTY_TUPLE, _REDUCE)

    def _tensor(self, x: np.ndarray) -> None:
        name = STORAGE_TYPES.get(x.dtype.name)
        if name is None:
            raise TypeError(f"cannot save an array of dtype {x.dtype} as a torch tensor; "
                            f"supported: {', '.join(STORAGE_TYPES)}")
        flat = np.ascontiguousarray(x).astype(x.dtype.newbyteorder("<"), copy=False).reshape(-1)
        key = str(len(self.storages))
        self.storages.append(flat)
        stride, step = [], 1
        for n in reversed(x.shape):  # C order, in elements
            stride.append(step)
            step *= max(int(n), 1)
        self._global("torch._utils", "_rebuild_tensor_v2")
        self._w(_MARK)
        self._w(_MARK)  # the persistent id of the storage
        self._str("storage")
        self._global("torch", name)
        self._str(key)
        self._str("cpu")
        self._int(int(flat.size))
        self._w(_TUPLE, _BINPERSID)
        self._int(0)  # storage offset
        self._container(tuple(int(n) for n in x.shape))
        self._container(tuple(reversed(stride)))
        self._w(_NEWFALSE)  # requires_grad
        self._ordered_dict()  # backward hooks
        self._w(_TUPLE, _REDUCE)


def _archive_name(path: str | os.PathLike) -> str:
    """The record folder: the file's stem when it is a plain word (as torch names it), else
    "archive"."""
    stem = os.path.basename(os.fspath(path)).split(".", 1)[0]
    return stem if re.fullmatch(r"[A-Za-z0-9_\-]+", stem) else "archive"


def dumps(obj: Any, name: str = "archive") -> bytes:
    """The bytes of a torch.save file holding `obj` (records under folder `name`)."""
    writer = _PickleWriter()
    pickled = writer.dump(obj)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        def record(rel: str, data: bytes, align: bool = False) -> None:
            info = zipfile.ZipInfo(f"{name}/{rel}", date_time=FIXED_DATE)
            if align:  # pad the local header's extra field so the data starts aligned
                header = 30 + len(info.filename.encode("utf-8"))
                pad = -(buf.tell() + header + 4) % ALIGNMENT
                info.extra = struct.pack("<HH", 0x4246, pad) + b"Z" * pad  # "FB", as torch
            zf.writestr(info, data)

        record("data.pkl", pickled)
        record("byteorder", b"little")
        for key, flat in enumerate(writer.storages):
            record(f"data/{key}", flat.tobytes(), align=True)
        record("version", b"3\n")
    return buf.getvalue()


def save(path: str | os.PathLike, obj: Any) -> None:
    """Writes `obj` (numpy arrays inside dicts/lists/tuples/scalars) to `path` as torch.save
    would write the same values as tensors; parent folders are created."""
    data = dumps(obj, _archive_name(path))
    parent = os.path.dirname(os.fspath(path))
    if parent:
        os.makedirs(parent, exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)
