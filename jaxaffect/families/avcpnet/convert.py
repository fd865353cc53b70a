"""`jaxaffect convert swin3d`: Video Swin weights in torchvision's swin3d_t layout ->
:class:`jaxaffect.nn.video_swin.VideoSwin3D` parameters.

The state dict read (PyTorch ``Linear`` weights ``[out, in]``, ``Conv3d`` ``[out, in, t, h, w]``):

* ``patch_embed.proj.{weight,bias}``, ``patch_embed.norm.{weight,bias}``;
* stage ``i`` at ``features.{2i}``, its block ``j`` at ``features.{2i}.{j}``: ``norm1``,
  ``attn.qkv``, ``attn.proj``, ``attn.relative_position_bias_table`` ``[L, heads]``,
  ``attn.relative_position_index`` (a buffer ``[N, N]``: checked against ours, not stored),
  ``norm2``, ``mlp.0`` and ``mlp.3`` (the two Linear layers of the MLP);
* patch merging after stage ``i`` at ``features.{2i+1}``: ``norm``, ``reduction.weight``;
* ``norm`` (final LayerNorm) and ``head`` (the classifier).

Mapping: weights -> ``kernel`` transposed (conv: ``[t, h, w, in, out]``), LayerNorm
``weight`` -> ``scale``, ``mlp.0``/``mlp.3`` -> ``fc1``/``fc2``, ``features.{2i}.{j}`` ->
``stage_i/block_j``, ``features.{2i+1}`` -> ``merge_i``. Every key must be used and every key
of the layout present; a wrong shape is refused naming the key. The config comes from the
shapes: ``embed_dim`` and ``patch_size`` from the patch conv, ``depths`` from the block keys,
``num_heads`` from the bias tables, ``window_size`` from the table and index sizes (the
factorisation whose relative position index equals the stored one), ``mlp_ratio`` from
``mlp.0``, ``num_classes`` from ``head``.

Output: ``params.npz`` (flat ``"stage_0/block_1/attn/qkv/kernel"`` keys, float32, the head
included) and ``swin3d.json`` (format, the :class:`VideoSwin3D` fields, source file + sha256).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import re
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from jaxaffect.nn.video_swin import (
    CONFIG_FILE,
    FORMAT,
    FORMAT_VERSION,
    PARAMS_FILE,
    model_fields,
    relative_position_index,
)
from jaxaffect.torch_checkpoint import READERS, CheckpointError, file_sha256, read_state_dict

LAYOUT = "torchvision's swin3d_t layout"
_BLOCK_KEY = re.compile(r"features\.(\d+)\.(\d+)\.")
_LINEAR = {"attn.qkv": "attn/qkv", "attn.proj": "attn/proj", "mlp.0": "fc1", "mlp.3": "fc2"}


# --------------------------------------------------------------------------------------------
# Config from the state dict
# --------------------------------------------------------------------------------------------

def _get(state: Mapping[str, np.ndarray], key: str, ndim: int) -> np.ndarray:
    if key not in state:
        raise CheckpointError(f"missing key {key!r} of {LAYOUT}")
    value = np.asarray(state[key])
    if value.ndim != ndim:
        raise CheckpointError(f"{key}: expected a {ndim}-d tensor, got shape {value.shape}")
    return value


def infer_window(table: np.ndarray, index: np.ndarray, key: str) -> tuple[int, int, int]:
    """The window ``(Wt, Wh, Ww)`` whose bias table has ``len(table)`` rows and whose relative
    position index equals ``index`` ``[N, N]``."""
    n = index.shape[0]
    if index.shape != (n, n):
        raise CheckpointError(f"{key}: expected a square [N, N] index, got shape {index.shape}")
    found = []
    for wt, wh in itertools.product(range(1, n + 1), repeat=2):
        ww = n // (wt * wh) if n % (wt * wh) == 0 else 0
        if ww and (2 * wt - 1) * (2 * wh - 1) * (2 * ww - 1) == table.shape[0]:
            if np.array_equal(relative_position_index((wt, wh, ww)), index):
                found.append((wt, wh, ww))
    if len(found) != 1:
        raise CheckpointError(f"{key}: no single 3D window fits a {n}x{n} relative position "
                              f"index with a bias table of {table.shape[0]} rows")
    return found[0]


def infer_config(state: Mapping[str, np.ndarray]) -> dict[str, Any]:
    """:class:`VideoSwin3D` fields implied by a state dict in torchvision's swin3d_t layout."""
    proj = _get(state, "patch_embed.proj.weight", 5)
    if proj.shape[1] != 3:
        raise CheckpointError(f"patch_embed.proj.weight: shape {proj.shape} has {proj.shape[1]} "
                              "input channels, expected 3 (RGB)")
    embed_dim, patch = int(proj.shape[0]), tuple(int(s) for s in proj.shape[2:])
    blocks: dict[int, set[int]] = {}
    for key in state:
        m = _BLOCK_KEY.match(key)
        if m and int(m.group(1)) % 2 == 0:
            blocks.setdefault(int(m.group(1)) // 2, set()).add(int(m.group(2)))
    if not blocks or sorted(blocks) != list(range(len(blocks))):
        raise CheckpointError(f"stage keys features.0, features.2, ... of {LAYOUT} are missing "
                              f"or not contiguous (found stages {sorted(blocks)})")
    depths, heads, windows = [], [], []
    for i in range(len(blocks)):
        if sorted(blocks[i]) != list(range(len(blocks[i]))):
            raise CheckpointError(f"blocks of features.{2 * i} are not numbered 0..n-1: "
                                  f"{sorted(blocks[i])}")
        depths.append(len(blocks[i]))
        prefix = f"features.{2 * i}.0.attn."
        table = _get(state, prefix + "relative_position_bias_table", 2)
        index = _get(state, prefix + "relative_position_index", 2)
        heads.append(int(table.shape[1]))
        windows.append(infer_window(table, index, prefix + "relative_position_index"))
    if len(set(windows)) != 1:
        raise CheckpointError(f"stages use different windows {windows}; one window is expected")
    hidden = _get(state, "features.0.0.mlp.0.weight", 2).shape[0]
    head = _get(state, "head.weight", 2)
    return dict(embed_dim=embed_dim, depths=tuple(depths), num_heads=tuple(heads),
                patch_size=patch, window_size=windows[0], mlp_ratio=hidden / embed_dim,
                num_classes=int(head.shape[0]))


# --------------------------------------------------------------------------------------------
# Key map and conversion
# --------------------------------------------------------------------------------------------

def key_map(config: Mapping[str, Any]) -> dict[str, str | None]:
    """Every key of the layout for ``config`` -> our parameter path ("a/b/c"); the relative
    position index buffers map to None (checked, not stored)."""
    out: dict[str, str | None] = {
        "patch_embed.proj.weight": "patch_embed/proj/kernel",
        "patch_embed.proj.bias": "patch_embed/proj/bias"}
    norms = {"patch_embed.norm": "patch_embed/norm", "norm": "norm"}
    linears = {"head": "head"}
    for i, depth in enumerate(config["depths"]):
        for j in range(depth):
            src, dst = f"features.{2 * i}.{j}", f"stage_{i}/block_{j}"
            norms.update({f"{src}.norm1": f"{dst}/norm1", f"{src}.norm2": f"{dst}/norm2"})
            linears.update({f"{src}.{k}": f"{dst}/{v}" for k, v in _LINEAR.items()})
            out[f"{src}.attn.relative_position_bias_table"] = \
                f"{dst}/attn/relative_position_bias_table"
            out[f"{src}.attn.relative_position_index"] = None
        if i < len(config["depths"]) - 1:
            norms[f"features.{2 * i + 1}.norm"] = f"merge_{i}/norm"
            out[f"features.{2 * i + 1}.reduction.weight"] = f"merge_{i}/reduction/kernel"
    for src, dst in norms.items():
        out[f"{src}.weight"], out[f"{src}.bias"] = f"{dst}/scale", f"{dst}/bias"
    for src, dst in linears.items():
        out[f"{src}.weight"], out[f"{src}.bias"] = f"{dst}/kernel", f"{dst}/bias"
    return out


def expected_shapes(config: Mapping[str, Any]) -> dict[str, tuple[int, ...]]:
    """Our parameter shapes ("a/b/c" -> shape) for ``config`` (``jax.eval_shape``)."""
    import jax
    import jax.numpy as jnp

    from jaxaffect.nn.video_swin import VideoSwin3D

    fields = model_fields(config)
    model = VideoSwin3D(**fields, stochastic_depth=0.0)
    x = jax.ShapeDtypeStruct((1, *fields["patch_size"], 3), jnp.float32)
    shapes = jax.eval_shape(lambda v: model.init(jax.random.key(0), v, train=False), x)
    flat = jax.tree_util.tree_flatten_with_path(shapes["params"])[0]
    return {"/".join(k.key for k in path): tuple(leaf.shape) for path, leaf in flat}


def _to_ours(value: np.ndarray, path: str) -> np.ndarray:
    if path.endswith("kernel"):
        value = value.transpose(2, 3, 4, 1, 0) if value.ndim == 5 else value.T
    return np.ascontiguousarray(value, dtype=np.float32)


def _torch_shape(shape: tuple[int, ...], path: str) -> tuple[int, ...]:
    if path.endswith("kernel"):
        return (shape[4], shape[3], *shape[:3]) if len(shape) == 5 else shape[::-1]
    return shape


def convert_state_dict(state: Mapping[str, np.ndarray], *,
                       config: Mapping[str, Any]) -> dict[str, Any]:
    """Map a state dict in torchvision's swin3d_t layout onto the nested float32 params of
    ``VideoSwin3D(**config)`` (apply with ``{"params": params}``). Unknown, missing and
    wrong-shaped keys are refused naming the key."""
    from flax import traverse_util

    mapping = key_map(config)
    unknown = sorted(set(state) - set(mapping))
    if unknown:
        more = f" (and {len(unknown) - 1} more)" if len(unknown) > 1 else ""
        raise CheckpointError(f"unknown key {unknown[0]!r}{more}: not part of {LAYOUT} for "
                              f"depths {tuple(config['depths'])}")
    missing = [k for k in mapping if k not in state]
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise CheckpointError(f"missing key {missing[0]!r}{more} of {LAYOUT}")
    shapes = expected_shapes(config)
    if set(shapes) != {p for p in mapping.values() if p}:  # mapping and model disagree: our bug
        raise AssertionError(f"VideoSwin3D params {sorted(shapes)} != mapped keys")
    window = tuple(int(w) for w in config["window_size"])
    want_index = relative_position_index(window)
    flat: dict[tuple[str, ...], np.ndarray] = {}
    for key, path in mapping.items():
        value = np.asarray(state[key])
        if path is None:
            if not np.array_equal(value, want_index):
                raise CheckpointError(f"{key}: not the relative position index of window "
                                      f"{window} (shape {value.shape}, expected "
                                      f"{want_index.shape})")
            continue
        want = _torch_shape(shapes[path], path)
        if tuple(value.shape) != want:
            raise CheckpointError(f"{key}: shape {tuple(value.shape)}, expected {want} "
                                  f"(for {path} of shape {shapes[path]})")
        flat[tuple(path.split("/"))] = _to_ours(value, path)
    return traverse_util.unflatten_dict(flat)


# --------------------------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------------------------



def convert_checkpoint(checkpoint: str, out_dir: str, *, reader: str = "auto") -> dict[str, Any]:
    """Read ``checkpoint``, convert, write ``params.npz`` + ``swin3d.json`` into ``out_dir``
    (created only on success) and return the JSON metadata. Errors name the file."""
    state, extra = read_state_dict(checkpoint, reader=reader)
    try:
        config = infer_config(state)
        params = convert_state_dict(state, config=config)
    except CheckpointError as e:
        raise CheckpointError(f"{checkpoint}: {e}") from None
    from flax import traverse_util

    flat = {"/".join(k): v for k, v in traverse_util.flatten_dict(params).items()}
    meta = dict(format=FORMAT, format_version=FORMAT_VERSION,
                config={k: list(v) if isinstance(v, tuple) else v for k, v in config.items()},
                num_params=int(sum(v.size for v in flat.values())),
                source=dict(file=os.path.basename(checkpoint), sha256=file_sha256(checkpoint),
                            reader=extra.get("reader"), layout=LAYOUT))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=out, suffix=".npz", delete=False) as tmp:
        np.savez(tmp, **flat)
    os.replace(tmp.name, out / PARAMS_FILE)
    (out / CONFIG_FILE).write_text(json.dumps(meta, indent=1) + "\n")
    meta["params_path"], meta["config_path"] = str(out / PARAMS_FILE), str(out / CONFIG_FILE)
    return meta


def run_cli(args: argparse.Namespace) -> dict[str, Any]:
    """`jaxaffect convert swin3d CHECKPOINT OUT_DIR [--reader auto|torch|builtin]`; returns
    the JSON-able summary printed."""
    reader = getattr(args, "reader", "auto") or "auto"
    if reader not in READERS:
        raise ValueError(f"--reader {reader!r}: one of {list(READERS)}")
    meta = convert_checkpoint(args.checkpoint, args.out_dir, reader=reader)
    return {k: meta[k] for k in ("config", "num_params", "source", "params_path",
                                 "config_path")}
