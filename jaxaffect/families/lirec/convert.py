"""Import the released LIReC PyTorch checkpoints (``models_release/*.pth.tar``) into our
:class:`jaxaffect.families.lirec.model.LIReC` parameters.

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

The file is read by :func:`jaxaffect.torch_checkpoint.read_state_dict`: ``torch.load`` when
torch is installed (``pip install jaxaffect[convert]``), else a torch-free reader of both
torch.save formats (the released code's torch 1.1 writes the older one) that accepts only
tensors, storages and plain containers.

Output (``convert_checkpoint``): ``params.npz`` (flat ``"a/b/kernel"`` keys, float32) and
``lirec.json`` (LIReC field values, input sizes, key map, source). A plain ``.npz`` keeps the
files readable without orbax or jax and independent of any train state layout;
:func:`load_converted` rebuilds ``(LIReC, {"params": ...})`` from them.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from flax import traverse_util

from jaxaffect.families.lirec import MODEL_KINDS, add_convert_arguments
from jaxaffect.families.lirec.model import RELEASED_CODE, LIReC
from jaxaffect.torch_checkpoint import CheckpointError, file_sha256, read_state_dict

PARAMS_FILE = "params.npz"
CONFIG_FILE = "lirec.json"
FORMAT = "jaxaffect.lirec.params"
FORMAT_VERSION = 1
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
    params = traverse_util.unflatten_dict(flat)
    info = dict(kind=model_kind, lirec=fields, input_dims=dims,
                key_map={k: "/".join(p) for k, p in key_map.items()})
    return params, info




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
    np.savez(out / PARAMS_FILE, **traverse_util.flatten_dict(params, sep="/"))
    meta = dict(
        format=FORMAT, format_version=FORMAT_VERSION, model_kind=info["kind"],
        pair_supervision=supervision,
        lirec={k: list(v) if isinstance(v, tuple) else v for k, v in info["lirec"].items()},
        input_dims=info["input_dims"], key_map=info["key_map"],
        source=dict(path=os.path.abspath(path), file=os.path.basename(path),
                    sha256=file_sha256(path), **extra),
        # An empty context group gives zeros in our masked mean; the released int_rel model
        # (MidFusionMultiClip) divides by the unclamped count there (NaN), its *_ch_* models
        # clamp it to 1 like we do.
        note=("released inputs: slot 0 of a group is the target clip, the other slots the "
              "clips pooled into Phi_R (clip_mask False at slot 0); dropout_rate is the "
              "released default, it is not stored in the checkpoint; an empty context group "
              "gives zeros (the released int_rel model gives NaN there)"))
    (out / CONFIG_FILE).write_text(json.dumps(meta, indent=1, sort_keys=True))
    return dict(meta, params_path=str(out / PARAMS_FILE), config_path=str(out / CONFIG_FILE))


def load_converted(out_dir: str) -> tuple[LIReC, dict[str, Any]]:
    """``(model, variables)`` from a :func:`convert_checkpoint` folder:
    ``model.apply(variables, visual, text, tracks, clip_mask)``."""
    import jax.numpy as jnp

    meta = json.loads((Path(out_dir) / CONFIG_FILE).read_text())
    if meta.get("format") != FORMAT or meta.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"{out_dir}: not a converted LIReC folder of format {FORMAT} "
                              f"v{FORMAT_VERSION}")
    fields = {k: tuple(v) if isinstance(v, list) else v for k, v in meta["lirec"].items()}
    with np.load(Path(out_dir) / PARAMS_FILE) as npz:
        params = traverse_util.unflatten_dict({k: jnp.asarray(npz[k]) for k in npz.files},
                                              sep="/")
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


def run_cli(args: argparse.Namespace) -> dict:
    """`jaxaffect convert lirec`: converts and returns the summary printed."""
    meta = convert_checkpoint(args.checkpoint, args.out_dir, model_kind=args.kind,
                              reader=args.reader)
    return {k: meta[k] for k in ("model_kind", "lirec", "input_dims", "params_path")}


def main(argv: list[str] | None = None) -> int:
    """``python -m jaxaffect.families.lirec.convert CHECKPOINT OUT_DIR [--kind K] [--reader R]``."""
    ap = argparse.ArgumentParser(description="Convert a released LIReC .pth.tar checkpoint.")
    add_convert_arguments(ap)
    print(json.dumps(run_cli(ap.parse_args(argv)), indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
