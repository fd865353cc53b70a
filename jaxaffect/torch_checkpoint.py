"""A safe reader of ``torch.save`` checkpoints, with or without torch installed.

Two readers: ``torch.load(weights_only=True)`` when torch is installed (``pip install
jaxaffect[convert]``), and a torch-free one for both torch.save formats -- the zip archive (torch
>= 1.6) and the older stream of pickles followed by raw storages (what torch 1.1 writes). The
torch-free reader unpickles only plain containers, numbers, strings, ``collections.OrderedDict``,
``torch._utils._rebuild_tensor_v2`` and ``torch.<Type>Storage``; any other global is refused, so
a crafted file cannot run code. A converter may name ``stand_ins``: inert classes that take the
place of a few named non-tensor globals a code base's trainer pickles next to the weights (e.g. a
config object); pickle only creates them and stores their arguments and state. Families'
converters map the resulting numpy state dicts onto their parameters.
"""

from __future__ import annotations

import collections
import contextlib
import io
import os
import pickle
import struct
import zipfile
from collections.abc import Mapping
from typing import Any

import numpy as np

from jaxaffect.errors import FormatError

READERS: tuple[str, ...] = ("auto", "torch", "builtin")


class CheckpointError(FormatError):
    """A checkpoint that cannot be read, or does not fit the model it is converted to."""


_STORAGE_DTYPES: dict[str, str] = {
    "FloatStorage": "<f4", "DoubleStorage": "<f8", "HalfStorage": "<f2",
    "BFloat16Storage": "bfloat16", "LongStorage": "<i8", "IntStorage": "<i4",
    "ShortStorage": "<i2", "CharStorage": "i1", "ByteStorage": "u1", "BoolStorage": "?"}
_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_LEGACY_PROTOCOL = 1001


def _np_dtype(name: str) -> np.dtype:
    if name == "bfloat16":
        import ml_dtypes  # installed with jax

        return np.dtype(ml_dtypes.bfloat16)
    return np.dtype(name)


class _StorageType:
    """Stands for a ``torch.<Type>Storage`` class inside the pickle (never called)."""

    def __init__(self, name: str):
        self.name, self.dtype = name, _np_dtype(_STORAGE_DTYPES[name])


class _Storage:
    """A flat typed buffer; ``data`` is filled when its bytes are read."""

    def __init__(self, dtype: np.dtype, numel: int):
        self.dtype, self.numel = dtype, int(numel)
        self.data: np.ndarray | None = None


class _TensorRef:
    """What ``_rebuild_tensor_v2`` returns; turned into an ndarray once storages are read."""

    def __init__(self, storage: _Storage, offset: int, size: tuple, stride: tuple):
        self.storage, self.offset, self.size, self.stride = storage, offset, size, stride

    def to_numpy(self) -> np.ndarray:
        data, size, stride = self.storage.data, tuple(self.size), tuple(self.stride)
        if data is None:
            raise CheckpointError("a tensor refers to a storage whose data was never read")
        if len(size) != len(stride) or any(s < 0 for s in (*size, *stride)):
            raise CheckpointError(f"bad tensor layout: size {size}, stride {stride}")
        if 0 in size:
            return np.zeros(size, data.dtype)
        last = self.offset + sum((n - 1) * s for n, s in zip(size, stride))
        if self.offset < 0 or last >= data.size:
            raise CheckpointError(f"tensor (offset {self.offset}, size {size}, stride {stride})"
                                  f" runs past its storage of {data.size} elements")
        view = np.lib.stride_tricks.as_strided(
            data[self.offset:], shape=size, strides=[s * data.itemsize for s in stride])
        return np.array(view, copy=True)


def _rebuild_tensor_v2(storage, offset, size, stride, requires_grad=False, hooks=None,
                       metadata=None) -> _TensorRef:
    if not isinstance(storage, _Storage):
        raise CheckpointError("_rebuild_tensor_v2 called on something other than a storage")
    return _TensorRef(storage, int(offset), tuple(size), tuple(stride))


class _RestrictedUnpickler(pickle.Unpickler):
    """Unpickles torch.save data with an allow-list of globals; storages via ``storage_for``."""

    def __init__(self, file, storage_for=None, stand_ins: Mapping[str, type] | None = None):
        super().__init__(file)
        self._storage_for = storage_for
        self._stand_ins = dict(stand_ins or {})

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor_v2
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(name)
        if f"{module}.{name}" in self._stand_ins:
            return self._stand_ins[f"{module}.{name}"]
        raise CheckpointError(f"refusing to unpickle global {module}.{name}: only tensors, "
                              "storages and plain containers are allowed")

    def persistent_load(self, pid: Any) -> Any:
        if (self._storage_for is None or not isinstance(pid, tuple) or len(pid) < 5
                or pid[0] != "storage" or not isinstance(pid[1], _StorageType)):
            raise CheckpointError(f"unexpected persistent id {pid!r}")
        return self._storage_for(pid)


def _materialize(obj: Any) -> Any:
    """Replace every :class:`_TensorRef` inside dicts/lists/tuples by an ndarray."""
    if isinstance(obj, _TensorRef):
        return obj.to_numpy()
    if isinstance(obj, dict):
        return type(obj)((k, _materialize(v)) for k, v in obj.items())
    if isinstance(obj, (list, tuple)):
        return type(obj)(_materialize(v) for v in obj)
    return obj


def _read_zip(path: str, stand_ins: Mapping[str, type] | None = None) -> Any:
    with zipfile.ZipFile(path) as zf:
        names = zf.namelist()
        pkl = [n for n in names if n.endswith("data.pkl") and n.count("/") == 1]
        if len(pkl) != 1:
            raise CheckpointError(f"{path}: no single '<archive>/data.pkl' in the zip")
        prefix = pkl[0][: -len("data.pkl")]
        big = prefix + "byteorder" in names and zf.read(prefix + "byteorder").strip() == b"big"
        storages: dict[str, _Storage] = {}

        def storage_for(pid: tuple) -> _Storage:
            _, stype, key, _location, numel = pid[:5]
            if key not in storages:
                name = f"{prefix}data/{key}"
                dtype = stype.dtype.newbyteorder(">") if big else stype.dtype
                numel = _check_count(path, numel, f"storage {key}")
                try:
                    info = zf.getinfo(name)
                except KeyError:
                    raise CheckpointError(f"{path}: storage {key} is missing from the archive"
                                          ) from None
                # Sizes are checked against the archive before anything is read or allocated:
                # torch.save stores storages uncompressed, so a member's size is its real size.
                if info.compress_type != zipfile.ZIP_STORED:
                    raise CheckpointError(f"{path}: storage {key} is compressed; torch.save "
                                          "writes storages uncompressed")
                if info.file_size < numel * dtype.itemsize:
                    raise CheckpointError(f"{path}: storage {key} is shorter than {numel} items")
                raw = zf.read(name)
                st = _Storage(stype.dtype, numel)
                st.data = np.frombuffer(raw, dtype, count=int(numel)).astype(stype.dtype)
                storages[key] = st
            return storages[key]

        obj = _RestrictedUnpickler(io.BytesIO(zf.read(pkl[0])), storage_for, stand_ins).load()
    return _materialize(obj)


def _read_legacy(path: str, stand_ins: Mapping[str, type] | None = None) -> Any:
    with open(path, "rb") as f:
        try:
            magic = _RestrictedUnpickler(f).load()
        except (pickle.UnpicklingError, EOFError, ValueError) as e:
            raise CheckpointError(f"{path}: not a torch.save file ({e})") from e
        if magic != _LEGACY_MAGIC:
            raise CheckpointError(f"{path}: not a torch.save file (bad magic number)")
        if _RestrictedUnpickler(f).load() != _LEGACY_PROTOCOL:
            raise CheckpointError(f"{path}: unsupported legacy torch.save protocol")
        sys_info = _RestrictedUnpickler(f).load()
        if not isinstance(sys_info, dict):
            raise CheckpointError(f"{path}: the header is a {type(sys_info).__name__}, not the "
                                  "dict torch.save writes")
        if not sys_info.get("little_endian", True):
            raise CheckpointError(f"{path}: big-endian legacy checkpoints are not supported")
        roots: dict[str, _Storage] = {}

        def storage_for(pid: tuple) -> _Storage:
            _, stype, key, _location, numel = pid[:5]
            if len(pid) > 5 and pid[5] is not None:  # never written for state_dict tensors
                raise CheckpointError(f"{path}: storage views are not supported")
            return roots.setdefault(key, _Storage(stype.dtype, numel))

        obj = _RestrictedUnpickler(f, storage_for, stand_ins).load()
        keys = _RestrictedUnpickler(f).load()
        if not isinstance(keys, (list, tuple)):
            raise CheckpointError(f"{path}: the storage key list is a {type(keys).__name__}")
        size = os.fstat(f.fileno()).st_size
        for key in keys:
            header = f.read(8)
            if len(header) != 8:
                raise CheckpointError(f"{path}: file ends before storage {key!r}")
            (numel,) = struct.unpack("<q", header)
            st = roots.get(key)
            if st is None:
                raise CheckpointError(f"{path}: data for an unknown storage {key!r}")
            numel = _check_count(path, numel, f"storage {key!r}")
            if numel * st.dtype.itemsize > size - f.tell():  # checked before allocating
                raise CheckpointError(f"{path}: storage {key!r} claims {numel} items, more "
                                      "than the rest of the file holds")
            raw = f.read(numel * st.dtype.itemsize)
            if len(raw) != numel * st.dtype.itemsize:
                raise CheckpointError(f"{path}: file ends inside storage {key!r}")
            st.data = np.frombuffer(raw, st.dtype).copy()
    return _materialize(obj)


def _check_count(path: str, numel: Any, what: str) -> int:
    if not isinstance(numel, int) or isinstance(numel, bool) or numel < 0:
        raise CheckpointError(f"{path}: {what} has an invalid element count {numel!r}")
    return numel


def read_torch_file(path: str, *, stand_ins: Mapping[str, type] | None = None) -> Any:
    """Read a ``torch.save`` file without torch; tensors come back as numpy arrays.

    ``stand_ins``: ``"module.name"`` -> an inert class unpickled in that global's place.
    Anything that is not a well-formed torch.save file raises CheckpointError naming `path`.
    """
    try:
        if zipfile.is_zipfile(path):
            return _read_zip(path, stand_ins)
        return _read_legacy(path, stand_ins)
    except CheckpointError as e:
        if not str(e).startswith(path):
            raise CheckpointError(f"{path}: {e}") from None
        raise
    except (OSError, EOFError, ValueError, TypeError, KeyError, AttributeError, IndexError,
            struct.error, pickle.UnpicklingError, zipfile.BadZipFile, MemoryError) as e:
        raise CheckpointError(f"{path}: not a readable torch.save file "
                              f"({type(e).__name__}: {e})") from None


def _read_with_torch(path: str, stand_ins: Mapping[str, type] | None = None) -> Any:
    try:
        import torch
    except ImportError:
        raise CheckpointError("--reader torch needs torch (pip install 'jaxaffect[convert]'); "
                              "--reader builtin reads torch.save files without it") from None

    allowed = [(cls, name) for name, cls in (stand_ins or {}).items()]
    if allowed and not hasattr(torch.serialization, "safe_globals"):
        raise CheckpointError(f"{path}: reading it with torch needs torch >= 2.5; "
                              "--reader builtin reads it without torch")
    try:
        with (torch.serialization.safe_globals(allowed) if allowed
              else contextlib.nullcontext()):
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types for a bad file (UnpicklingError, ...)
        raise CheckpointError(f"{path}: torch.load refused it ({type(e).__name__}: "
                              f"{str(e).splitlines()[0] if str(e) else ''})") from None

    def to_np(x: Any) -> Any:
        if isinstance(x, torch.Tensor):
            x = x.detach().cpu()
            return (x.float() if x.dtype == torch.bfloat16 else x).numpy().copy()
        if isinstance(x, dict):
            return type(x)((k, to_np(v)) for k, v in x.items())
        if isinstance(x, (list, tuple)):
            return type(x)(to_np(v) for v in x)
        return x

    return to_np(obj)


def _torch_available() -> bool:
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def read_state_dict(path: str, *, reader: str = "auto",
                    stand_ins: Mapping[str, type] | None = None
                    ) -> tuple[dict[str, np.ndarray], dict]:
    """The model ``state_dict`` of a checkpoint as numpy arrays, and the other top-level entries
    that are plain values (e.g. ``{"epoch": 12}``). ``reader``: "torch", "builtin" or "auto"
    (torch when importable). ``stand_ins``: see :func:`read_torch_file` (the torch reader
    allow-lists the same classes under those names)."""
    if reader not in READERS:
        raise ValueError(f"unknown reader {reader!r}; expected one of {READERS}")
    if not os.path.isfile(path):
        raise CheckpointError(f"{path}: checkpoint file not found")
    use_torch = reader == "torch" or (reader == "auto" and _torch_available())
    ckpt = (_read_with_torch(path, stand_ins) if use_torch
            else read_torch_file(path, stand_ins=stand_ins))
    extra: dict = {}
    if isinstance(ckpt, Mapping) and "state_dict" in ckpt:
        extra = {k: v for k, v in ckpt.items()
                 if k != "state_dict" and isinstance(v, (int, float, str, bool))}
        ckpt = ckpt["state_dict"]
    if not isinstance(ckpt, Mapping) or not all(isinstance(v, np.ndarray) for v in ckpt.values()):
        raise CheckpointError(f"{path}: neither a state_dict nor a dict with a 'state_dict'")
    sd = {str(k): v for k, v in ckpt.items()}
    if sd and all(k.startswith("module.") for k in sd):  # saved from nn.DataParallel
        sd = {k[len("module."):]: v for k, v in sd.items()}
    extra["reader"] = "torch" if use_torch else "builtin"
    return sd, extra


def file_sha256(path: str) -> str:
    """SHA-256 hex digest of a file (converters record their source file's)."""
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
