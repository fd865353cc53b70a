"""Import the released LIReC PyTorch checkpoints (``models_release/*.pth.tar``) into our
:class:`jaxaffect.models.lirec.LIReC` parameters.

The released checkpoints are ``torch.save({'epoch', 'state_dict', 'optimizer'}, path)`` files of
one ``nn.Module`` whose layers are ``nn.Linear`` (weights ``[out, in]``). Layer names:

* interaction branch ``<layer>_ints``, relationship (context) branch ``<layer>_ctx``, with
  ``<layer>`` in ``txt``/``txt2`` (text MLP), ``vis``/``vis2`` (visual MLP), ``tracks1``/
  ``tracks12`` (first character's MLP), ``tracks2``/``tracks22`` (second character's MLP);
* ``gates_ints.fc_out`` (the hidden layer on ``[Phi_R; Phi_I]`` of the joint model),
  ``out_ints`` (interaction classifier), ``out_ctx`` (relationship classifier).

The model kind follows from which of them are present: "interactions" (``*_ints`` + ``out_ints``:
``mod_all``, ``{gt,weak}_int_ch_sum_max``), "relationships" (``*_ctx`` + ``out_ctx``; none was
released) and "joint" (both, with or without ``gates_ints``: ``int_rel``,
``{gt,weak}_int_rel_ch_sum_max``). "characters" and "all" are the interactions and joint
parameter sets trained to also pick the character pair; they are told apart only by the file name.

Two readers: ``torch.load(weights_only=True)`` when torch is installed (``pip install
jaxaffect[convert]``), and a torch-free one for both torch.save formats -- the zip archive (torch
>= 1.6) and the older stream of pickles followed by raw storages (what torch 1.1, the released
code's version, writes). The torch-free reader unpickles only plain containers, numbers, strings,
``collections.OrderedDict``, ``torch._utils._rebuild_tensor_v2`` and ``torch.<Type>Storage``;
any other global is refused.

Output (``convert_checkpoint``): ``params.npz`` (flat ``"a/b/kernel"`` keys, float32) and
``lirec.json`` (LIReC field values, input sizes, key map, source). A plain ``.npz`` keeps the
files readable without orbax or jax and independent of any train state layout;
:func:`load_converted` rebuilds ``(LIReC, {"params": ...})`` from them.
"""

from __future__ import annotations

import argparse
import collections
import hashlib
import io
import json
import os
import pickle
import struct
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from jaxaffect.models.lirec import RELEASED_CODE, LIReC

PARAMS_FILE = "params.npz"
CONFIG_FILE = "lirec.json"
FORMAT = "jaxaffect.lirec.params"
FORMAT_VERSION = 1
READERS: tuple[str, ...] = ("auto", "torch", "builtin")
MODEL_KINDS: tuple[str, ...] = ("interactions", "relationships", "joint", "characters", "all")
# The parameter set each kind has ("characters"/"all" add character-pair selection at
# evaluation time only).
PARAM_KIND: dict[str, str] = {"interactions": "interactions", "relationships": "relationships",
                              "joint": "joint", "characters": "interactions", "all": "joint"}
# Released file names (resume/*.py of the released code) -> (kind, supervision of the pair).
RELEASED_CHECKPOINTS: dict[str, tuple[str, str | None]] = {
    "mod_all": ("interactions", None), "int_rel": ("joint", None),
    "gt_int_ch_sum_max": ("characters", "full"), "weak_int_ch_sum_max": ("characters", "weak"),
    "gt_int_rel_ch_sum_max": ("all", "full"), "weak_int_rel_ch_sum_max": ("all", "weak")}

# Released branch layer -> (our ClipRepresentation sub-module, our Dense name).
_BRANCH_LAYERS: dict[str, tuple[str, str]] = {
    "txt": ("text", "fc1"), "txt2": ("text", "fc2"), "vis": ("visual", "fc1"),
    "vis2": ("visual", "fc2"), "tracks1": ("track_first", "fc1"),
    "tracks12": ("track_first", "fc2"), "tracks2": ("track_second", "fc1"),
    "tracks22": ("track_second", "fc2")}
_BRANCHES: dict[str, str] = {"ints": "phi_int", "ctx": "phi_rel"}
_HEADS: dict[str, str] = {"gates_ints.fc_out": "int_hidden", "out_ints": "int_out",
                          "out_ctx": "rel_out"}
_MODALITY_OF: dict[str, str] = {"text": "text", "visual": "visual", "track_first": "tracks",
                                "track_second": "tracks"}


class CheckpointError(ValueError):
    """A checkpoint that cannot be read or does not fit the released LIReC layout."""


# --------------------------------------------------------------------------------------------
# Torch-free reader
# --------------------------------------------------------------------------------------------

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

    def __init__(self, file, storage_for=None):
        super().__init__(file)
        self._storage_for = storage_for

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor_v2
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(name)
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


def _read_zip(path: str) -> Any:
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
                raw = zf.read(f"{prefix}data/{key}")
                dtype = stype.dtype.newbyteorder(">") if big else stype.dtype
                if len(raw) < int(numel) * dtype.itemsize:
                    raise CheckpointError(f"{path}: storage {key} is shorter than {numel} items")
                st = _Storage(stype.dtype, numel)
                st.data = np.frombuffer(raw, dtype, count=int(numel)).astype(stype.dtype)
                storages[key] = st
            return storages[key]

        obj = _RestrictedUnpickler(io.BytesIO(zf.read(pkl[0])), storage_for).load()
    return _materialize(obj)


def _read_legacy(path: str) -> Any:
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
        if not sys_info.get("little_endian", True):
            raise CheckpointError(f"{path}: big-endian legacy checkpoints are not supported")
        roots: dict[str, _Storage] = {}

        def storage_for(pid: tuple) -> _Storage:
            _, stype, key, _location, numel = pid[:5]
            if len(pid) > 5 and pid[5] is not None:  # never written for state_dict tensors
                raise CheckpointError(f"{path}: storage views are not supported")
            return roots.setdefault(key, _Storage(stype.dtype, numel))

        obj = _RestrictedUnpickler(f, storage_for).load()
        keys = _RestrictedUnpickler(f).load()
        for key in keys:
            (numel,) = struct.unpack("<q", f.read(8))
            st = roots.get(key)
            if st is None:
                raise CheckpointError(f"{path}: data for an unknown storage {key!r}")
            raw = f.read(numel * st.dtype.itemsize)
            if len(raw) != numel * st.dtype.itemsize:
                raise CheckpointError(f"{path}: file ends inside storage {key!r}")
            st.data = np.frombuffer(raw, st.dtype).copy()
    return _materialize(obj)


def read_torch_file(path: str) -> Any:
    """Read a ``torch.save`` file without torch; tensors come back as numpy arrays."""
    if zipfile.is_zipfile(path):
        return _read_zip(path)
    return _read_legacy(path)


def _read_with_torch(path: str) -> Any:
    import torch

    obj = torch.load(path, map_location="cpu", weights_only=True)

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


def read_state_dict(path: str, *, reader: str = "auto") -> tuple[dict[str, np.ndarray], dict]:
    """The model ``state_dict`` of a checkpoint as numpy arrays, and the other top-level entries
    that are plain values (e.g. ``{"epoch": 12}``). ``reader``: "torch", "builtin" or "auto"
    (torch when importable)."""
    if reader not in READERS:
        raise ValueError(f"unknown reader {reader!r}; expected one of {READERS}")
    use_torch = reader == "torch" or (reader == "auto" and _torch_available())
    ckpt = _read_with_torch(path) if use_torch else read_torch_file(path)
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


# --------------------------------------------------------------------------------------------
# Key mapping and conversion
# --------------------------------------------------------------------------------------------

def released_key_map(keys: list[str] | tuple[str, ...]) -> dict[str, tuple[str, ...]]:
    """Released ``state_dict`` key -> our parameter path (without the "params" root).

    Raises :class:`CheckpointError` naming every key that is not a released LIReC parameter.
    """
    out: dict[str, tuple[str, ...]] = {}
    unknown = []
    for key in keys:
        layer, _, leaf = key.rpartition(".")
        ours = {"weight": "kernel", "bias": "bias"}.get(leaf)
        target = None
        if layer in _HEADS:
            target = (_HEADS[layer],)
        else:
            base, _, branch = layer.rpartition("_")
            if base in _BRANCH_LAYERS and branch in _BRANCHES:
                target = (_BRANCHES[branch], *_BRANCH_LAYERS[base])
        if target is None or ours is None:
            unknown.append(key)
        else:
            out[key] = (*target, ours)
    if unknown:
        raise CheckpointError(f"keys that are not part of the released LIReC models: {unknown}")
    return out


def detect_kind(keys: list[str] | tuple[str, ...]) -> str:
    """"interactions", "relationships" or "joint" from the released key names."""
    paths = released_key_map(keys).values()
    has_int = any(p[0] in ("phi_int", "int_out", "int_hidden") for p in paths)
    has_rel = any(p[0] in ("phi_rel", "rel_out") for p in paths)
    if has_int and has_rel:
        return "joint"
    if has_int:
        return "interactions"
    if has_rel:
        return "relationships"
    raise CheckpointError("the state_dict holds no LIReC parameters")


def _lirec_fields(sd: dict[str, np.ndarray], kind: str, key_map: dict[str, tuple[str, ...]]
                  ) -> tuple[dict[str, Any], dict[str, int]]:
    """LIReC field values and input sizes implied by the state_dict of a ``kind`` model."""
    want_int, want_rel = kind in ("interactions", "joint"), kind in ("relationships", "joint")
    by_path = {p[:-1]: sd[k] for k, p in key_map.items() if p[-1] == "kernel"}
    branches = [b for b, on in (("phi_int", want_int), ("phi_rel", want_rel)) if on]
    mods = {b: tuple(m for m in ("visual", "text", "tracks")
                     if any(p[0] == b and _MODALITY_OF[p[1]] == m for p in by_path))
            for b in branches}
    modalities = mods[branches[0]]
    if len(set(mods.values())) != 1 or not modalities:
        raise CheckpointError(f"the branches use different or no modalities: {mods}")
    ref = branches[0]

    def size(*path: str, axis: int = 0, default: int | None = None) -> int | None:
        w = by_path.get(path)
        return default if w is None else int(w.shape[axis])

    gated = ("int_hidden",) in by_path
    if gated and kind != "joint":
        raise CheckpointError("gates_ints.fc_out needs both the interaction and context branches")
    fields: dict[str, Any] = dict(
        RELEASED_CODE,
        tasks=tuple(t for t, on in (("interactions", want_int), ("relationships", want_rel))
                    if on),
        coupling="rel_to_int" if gated else "none", modalities=modalities,
        joint_dim=size(ref, "text", "fc1", default=size(ref, "visual", "fc1",
                                                         default=RELEASED_CODE["joint_dim"])),
        track_hidden_dim=size(ref, "track_first", "fc1",
                              default=RELEASED_CODE["track_hidden_dim"]),
        track_out_dim=size(ref, "track_first", "fc2", default=RELEASED_CODE["track_out_dim"]),
        int_hidden_dim=size("int_hidden", default=0), temporal_pool=None)
    if want_int:
        fields["num_interactions"] = size("int_out", default=101)
    if want_rel:
        fields["num_relationships"] = size("rel_out", default=15)
    dims = {"visual": size(ref, "visual", "fc1", axis=1), "text": size(ref, "text", "fc1", axis=1),
            "tracks": size(ref, "track_first", "fc1", axis=1)}
    return fields, {k: v for k, v in dims.items() if v is not None}


def _expected_shapes(model: LIReC, dims: dict[str, int]) -> dict[tuple[str, ...], tuple]:
    import jax
    import jax.numpy as jnp

    spec = lambda *s: jax.ShapeDtypeStruct(s, jnp.float32)
    args = (spec(1, 1, dims.get("visual", 1)), spec(1, 1, dims.get("text", 1)),
            spec(1, 1, 2, dims.get("tracks", 1)), jax.ShapeDtypeStruct((1, 1), jnp.bool_))
    shapes = jax.eval_shape(lambda *a: model.init(jax.random.key(0), *a), *args)["params"]
    flat = jax.tree_util.tree_flatten_with_path(shapes)[0]
    return {tuple(k.key for k in path): tuple(leaf.shape) for path, leaf in flat}


def convert_state_dict(sd: dict[str, np.ndarray], *, model_kind: str | None = None
                       ) -> tuple[dict[str, Any], dict[str, Any]]:
    """Map a released ``state_dict`` onto our parameters.

    Returns ``(params, info)``: ``params`` the nested ``{"phi_int": {...}, ...}`` float32 tree
    for ``LIReC(**info["lirec"])`` (wrap as ``{"params": params}`` to apply), ``info`` with
    "kind", "lirec" (field values), "input_dims" and "key_map" (released key -> our path).
    Every key must be used and every shape must match; errors name the key.
    """
    key_map = released_key_map(list(sd))
    detected = detect_kind(list(sd))
    if model_kind is None:
        model_kind = detected
    if model_kind not in MODEL_KINDS:
        raise ValueError(f"unknown model_kind {model_kind!r}; expected one of {MODEL_KINDS}")
    kind = PARAM_KIND[model_kind]
    if kind != detected:
        raise CheckpointError(f"model_kind {model_kind!r} needs the {kind!r} parameters, but the "
                              f"state_dict holds those of a {detected!r} model")
    for key, value in sd.items():
        want = 2 if key.endswith(".weight") else 1
        if value.ndim != want:
            raise CheckpointError(f"{key}: expected a {want}-d tensor, got shape {value.shape}")
    fields, dims = _lirec_fields(sd, kind, key_map)
    rel_dim = None
    if fields["coupling"] == "rel_to_int":  # size of Phi_R, the first block of fc_out's input
        d = fields["joint_dim"] * sum(m in fields["modalities"] for m in ("visual", "text"))
        rel_dim = d + (2 * fields["track_out_dim"] if "tracks" in fields["modalities"] else 0)
    flat: dict[tuple[str, ...], np.ndarray] = {}
    for key, path in key_map.items():
        value = np.asarray(sd[key], dtype=np.float32)
        if path[-1] == "kernel":
            if path[0] == "int_hidden":
                # Released: fc_out([Phi_R; Phi_I]); ours: Dense([Phi_I; Phi_R]) (Eq. 5 order),
                # so the two column blocks swap.
                if value.shape[1] <= rel_dim:
                    raise CheckpointError(f"{key}: shape {value.shape} has no room for the "
                                          f"{rel_dim} relationship inputs")
                value = np.concatenate([value[:, rel_dim:], value[:, :rel_dim]], axis=1)
            value = value.T
        flat[path] = np.ascontiguousarray(value)
    expected = _expected_shapes(LIReC(**fields), dims)
    back = {p: k for k, p in key_map.items()}
    for path, value in flat.items():
        if path not in expected:
            raise CheckpointError(f"{back[path]}: not used by a {kind!r} LIReC model "
                                  f"(would be {'/'.join(path)})")
        if value.shape != expected[path]:
            raise CheckpointError(
                f"{back[path]}: shape {tuple(sd[back[path]].shape)} does not fit "
                f"{'/'.join(path)} of shape {expected[path]} (PyTorch Linear weights are "
                "[out, in], our kernels [in, out])")
    missing = sorted("/".join(p) for p in expected if p not in flat)
    if missing:
        raise CheckpointError(f"the state_dict lacks parameters for: {missing}")
    params: dict[str, Any] = {}
    for path, value in flat.items():
        node = params
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = value
    info = dict(kind=model_kind, lirec=fields, input_dims=dims,
                key_map={k: "/".join(p) for k, p in key_map.items()})
    return params, info


def _file_sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _released_name(path: str) -> str:
    name = os.path.basename(path)
    for ext in (".pth.tar", ".pth", ".pt", ".tar"):
        if name.endswith(ext):
            return name[: -len(ext)]
    return name


def convert_checkpoint(path: str, out_dir: str, *, model_kind: str | None = None,
                       reader: str = "auto") -> dict:
    """Convert a released LIReC checkpoint into ``out_dir/params.npz`` + ``out_dir/lirec.json``.

    ``model_kind`` (one of :data:`MODEL_KINDS`) is detected when None: from the released file
    name if it is one of :data:`RELEASED_CHECKPOINTS`, else from the keys. Returns the metadata
    written to ``lirec.json`` (plus the two output paths).
    """
    sd, extra = read_state_dict(path, reader=reader)
    name = _released_name(path)
    supervision = None
    if model_kind is None and name in RELEASED_CHECKPOINTS:
        model_kind, supervision = RELEASED_CHECKPOINTS[name]
    params, info = convert_state_dict(sd, model_kind=model_kind)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    np.savez(out / PARAMS_FILE, **_flatten(params))
    meta = dict(
        format=FORMAT, format_version=FORMAT_VERSION, model_kind=info["kind"],
        pair_supervision=supervision,
        lirec={k: list(v) if isinstance(v, tuple) else v for k, v in info["lirec"].items()},
        input_dims=info["input_dims"], key_map=info["key_map"],
        source=dict(path=os.path.abspath(path), file=os.path.basename(path),
                    sha256=_file_sha256(path), **extra),
        # An empty context group gives zeros in our masked mean; the released int_rel model
        # (MidFusionMultiClip) divides by the unclamped count there (NaN), its *_ch_* models
        # clamp it to 1 like we do.
        note=("released inputs: slot 0 of a group is the target clip, the other slots the "
              "clips pooled into Phi_R (clip_mask False at slot 0); dropout_rate is the "
              "released default, it is not stored in the checkpoint; an empty context group "
              "gives zeros (the released int_rel model gives NaN there)"))
    (out / CONFIG_FILE).write_text(json.dumps(meta, indent=1, sort_keys=True))
    return dict(meta, params_path=str(out / PARAMS_FILE), config_path=str(out / CONFIG_FILE))


def _flatten(tree: Mapping, prefix: str = "") -> dict[str, np.ndarray]:
    flat: dict[str, np.ndarray] = {}
    for k, v in tree.items():
        if isinstance(v, Mapping):
            flat.update(_flatten(v, f"{prefix}{k}/"))
        else:
            flat[f"{prefix}{k}"] = v
    return flat


def load_converted(out_dir: str) -> tuple[LIReC, dict[str, Any]]:
    """``(model, variables)`` from a :func:`convert_checkpoint` folder:
    ``model.apply(variables, visual, text, tracks, clip_mask)``."""
    import jax.numpy as jnp

    meta = json.loads((Path(out_dir) / CONFIG_FILE).read_text())
    if meta.get("format") != FORMAT or meta.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"{out_dir}: not a converted LIReC folder of format {FORMAT} "
                              f"v{FORMAT_VERSION}")
    fields = {k: tuple(v) if isinstance(v, list) else v for k, v in meta["lirec"].items()}
    params: dict[str, Any] = {}
    with np.load(Path(out_dir) / PARAMS_FILE) as npz:
        for key in npz.files:
            node = params
            *parents, leaf = key.split("/")
            for part in parents:
                node = node.setdefault(part, {})
            node[leaf] = jnp.asarray(npz[key])
    return LIReC(**fields), {"params": params}


def split_released_features(features: np.ndarray, dims: Mapping[str, int]
                            ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Split the released flat layout ``[..., text | visual | track 1 | track 2]`` into our
    ``(visual [..., Dv], text [..., Dt], tracks [..., 2, Dr])`` inputs."""
    dt, dv, dr = dims.get("text", 0), dims.get("visual", 0), dims.get("tracks", 0)
    if features.shape[-1] != dt + dv + 2 * dr:
        raise ValueError(f"feature size {features.shape[-1]} != {dt} + {dv} + 2 * {dr}")
    text, visual = features[..., :dt], features[..., dt:dt + dv]
    tracks = features[..., dt + dv:].reshape(*features.shape[:-1], 2, dr)
    return visual, text, tracks


def main(argv: list[str] | None = None) -> int:
    """``python -m jaxaffect.convert_lirec CHECKPOINT OUT_DIR [--kind K] [--reader R]``."""
    ap = argparse.ArgumentParser(description="Convert a released LIReC .pth.tar checkpoint.")
    ap.add_argument("checkpoint")
    ap.add_argument("out_dir")
    ap.add_argument("--kind", choices=MODEL_KINDS, default=None,
                    help="model kind (default: from the file name or the keys)")
    ap.add_argument("--reader", choices=READERS, default="auto")
    args = ap.parse_args(argv)
    meta = convert_checkpoint(args.checkpoint, args.out_dir, model_kind=args.kind,
                              reader=args.reader)
    print(json.dumps({k: meta[k] for k in ("model_kind", "lirec", "input_dims", "params_path")},
                     indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
