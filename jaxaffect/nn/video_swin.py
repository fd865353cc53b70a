"""Video Swin-T in flax.linen: a family's visual backbone, and the video embedder of
`jaxaffect extract --motion swin3d`.

Input ``[B, T, H, W, 3]`` -> features ``[B, ceil(T/pt), ceil(H/32), ceil(W/32), 8C]`` (patch
size ``(pt, 4, 4)``; channels last, after the final LayerNorm, float32). The pieces:

* 3D patch embedding: a conv with kernel = stride = ``patch_size`` on the input zero-padded at
  the end of each axis to a multiple of the patch, then LayerNorm.
* Four stages of blocks ``x + drop_path(attn(norm1(x)))``, ``x + drop_path(mlp(norm2(x)))``;
  odd blocks of a stage shift their windows by ``window // 2`` (cyclic roll). Where the feature
  map is not larger than the window along an axis, the window shrinks to the map and the shift
  there is 0. Features are zero-padded (after ``norm1``) to window multiples; padded tokens are
  attended to like any other token (as in the reference model), then cropped away.
* Windowed multi-head self-attention with a learned relative position bias table
  ``[(2Wt-1)(2Wh-1)(2Ww-1), heads]``. Shifted windows only attend within their region.
* Patch merging between stages: 2x2 spatial neighbours (time kept) concatenated in the order
  (h even, w even), (h odd, w even), (h even, w odd), (h odd, w odd), LayerNorm(4C), Linear
  4C -> 2C without bias (odd H or W zero-padded first).
* MLP ``Linear(C, 4C) -> exact (erf) GELU -> Linear(4C, C)``; LayerNorm epsilon 1e-5.

Choices (also in the family's choices table):

* Shifted-window masking is exact (masked keys get weight 0, via the shared
  :func:`jaxaffect.nn.attention.masked_softmax`) where the reference adds -100 to the logits;
  both agree to float32 precision for any realistic logit range, and ours also holds when a
  masked logit exceeds the others by more than 100.
* When a window shrinks, its bias is read through the top-left ``N x N`` block of the full
  window's relative position index (``N`` the shrunk window's volume), as the reference model
  does, so converted weights give the same numbers; geometrically exact only when the leading
  (time) axis alone shrinks.
* Stochastic depth (per-sample drop path, rate growing linearly from 0 to
  ``stochastic_depth`` over all blocks) draws from the ``"dropout"`` rng collection, the name
  every family's training step already supplies; with ``train=False`` no rng is needed.
* ``remat=True`` wraps each stage (its blocks; not the patch merging) in ``nn.remat``.
* Under ``dtype=bfloat16``, matmuls run in bf16 with float32 params; LayerNorm statistics,
  attention logits + bias and the softmax are float32; the output is float32.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxaffect.nn.attention import masked_softmax

Array = jax.Array
Triple = tuple[int, int, int]
LN_EPS = 1e-5
_init = nn.initializers.truncated_normal(0.02)


# --------------------------------------------------------------------------------------------
# Windows: sizes, partition, relative positions, shift masks (static numpy or pure jnp)
# --------------------------------------------------------------------------------------------

def effective_window(size: Sequence[int], window: Sequence[int],
                     shift: Sequence[int]) -> tuple[Triple, Triple]:
    """Window and shift used on a ``size`` feature map: along an axis where the map is not
    larger than the window, the window becomes the map size and the shift 0."""
    win = tuple(int(s) if s <= w else int(w) for s, w in zip(size, window))
    sh = tuple(0 if s <= w else int(d) for s, w, d in zip(size, window, shift))
    return win, sh  # type: ignore[return-value]


def padded_size(size: Sequence[int], window: Sequence[int]) -> Triple:
    """``size`` rounded up to multiples of ``window`` along each axis."""
    return tuple(-(-int(s) // int(w)) * int(w) for s, w in zip(size, window))  # type: ignore


def window_partition(x: Array, window: Sequence[int]) -> Array:
    """``[B, T, H, W, C] -> [B, nW, Wt*Wh*Ww, C]`` (windows in t, h, w raster order, tokens
    in t, h, w raster order inside a window); T, H, W must be multiples of the window."""
    b, t, h, w, c = x.shape
    wt, wh, ww = window
    x = x.reshape(b, t // wt, wt, h // wh, wh, w // ww, ww, c)
    x = x.transpose(0, 1, 3, 5, 2, 4, 6, 7)
    return x.reshape(b, (t // wt) * (h // wh) * (w // ww), wt * wh * ww, c)


def window_reverse(windows: Array, window: Sequence[int], size: Sequence[int]) -> Array:
    """Inverse of :func:`window_partition`: ``[B, nW, N, C] -> [B, T, H, W, C]``."""
    b, _, _, c = windows.shape
    (t, h, w), (wt, wh, ww) = size, window
    x = windows.reshape(b, t // wt, h // wh, w // ww, wt, wh, ww, c)
    x = x.transpose(0, 1, 4, 2, 5, 3, 6, 7)
    return x.reshape(b, t, h, w, c)


def relative_position_index(window: Sequence[int]) -> np.ndarray:
    """``[N, N]`` int32 index into the bias table of token ``i`` attending to token ``j`` of a
    window (raster order): the offset ``pos_i - pos_j`` per axis, shifted to be >= 0 and
    combined as a mixed-radix number with radices ``(2Wt-1, 2Wh-1, 2Ww-1)``."""
    wt, wh, ww = (int(w) for w in window)
    pos = np.stack(np.meshgrid(np.arange(wt), np.arange(wh), np.arange(ww), indexing="ij"))
    pos = pos.reshape(3, -1)
    rel = pos[:, :, None] - pos[:, None, :] + np.array([wt - 1, wh - 1, ww - 1])[:, None, None]
    return (rel[0] * (2 * wh - 1) * (2 * ww - 1) + rel[1] * (2 * ww - 1) + rel[2]
            ).astype(np.int32)


def region_labels(size: Sequence[int], window: Sequence[int],
                  shift: Sequence[int]) -> np.ndarray:
    """``[T, H, W]`` region id of each voxel of a (padded) map after the cyclic shift: along an
    axis with a shift ``s > 0``, positions ``[0, P-W)``, ``[P-W, P-s)`` and ``[P-s, P)`` are
    three regions; an axis with no shift is one region."""
    parts = []
    for p, w, s in zip(size, window, shift):
        pos = np.arange(p)
        parts.append(np.zeros(p, np.int64) if s == 0 else
                     (pos >= p - w).astype(np.int64) + (pos >= p - s))
    t, h, w = parts
    return t[:, None, None] * 9 + h[None, :, None] * 3 + w[None, None, :]


def window_labels(size: Sequence[int], window: Sequence[int],
                  shift: Sequence[int]) -> np.ndarray:
    """``[nW, N]`` region ids of the tokens of each window (see :func:`region_labels`)."""
    labels = region_labels(size, window, shift)
    return np.asarray(window_partition(labels[None, ..., None], window))[0, ..., 0]


def shifted_window_mask(size: Sequence[int], window: Sequence[int],
                        shift: Sequence[int]) -> np.ndarray:
    """``[nW, N, N]`` bool: True where query and key of a shifted window lie in the same region
    (may attend). ``size`` is the padded map, a multiple of ``window``."""
    win = window_labels(size, window, shift)
    return win[:, :, None] == win[:, None, :]


@jax.custom_vjp
def add_window_bias(logits: Array, bias: Array) -> Array:
    """``logits [B, nW, H, N, N] + bias [H, N, N]`` (the same bias for every window).

    The bias gradient sums ``B * nW`` windows; written as a product with a ones vector it runs
    as one matrix-vector product, where XLA's CPU reduction of the broadcast's transpose took
    far longer than the attention products themselves.
    """
    return logits + bias


def _add_window_bias_fwd(logits: Array, bias: Array) -> tuple[Array, None]:
    return logits + bias, None


def _add_window_bias_bwd(_: None, g: Array) -> tuple[Array, Array]:
    rows = g.reshape(-1, g.shape[-3] * g.shape[-2] * g.shape[-1])
    ones = jnp.ones((rows.shape[0],), rows.dtype)
    return g, jnp.dot(ones, rows, precision=jax.lax.Precision.HIGHEST).reshape(g.shape[-3:])


add_window_bias.defvjp(_add_window_bias_fwd, _add_window_bias_bwd)


def gelu_erf(x: Array) -> Array:
    """Exact GELU as the reference model computes it, ``0.5 x (1 + erf(x / sqrt 2))``.
    ``jax.nn.gelu(approximate=False)`` writes it with erfc, which XLA's CPU backend expands into
    a longer select-and-exp sequence (the forward + backward step is a few percent slower)."""
    return 0.5 * x * (1.0 + jax.lax.erf(x * np.sqrt(0.5).astype(x.dtype)))


def drop_path(x: Array, rate: float, rng: Array) -> Array:
    """Per-sample stochastic depth: zero whole examples with probability ``rate``, scale the
    kept ones by ``1 / (1 - rate)``."""
    if rate <= 0.0:
        return x
    keep = jax.random.bernoulli(rng, 1.0 - rate, (x.shape[0],) + (1,) * (x.ndim - 1))
    return jnp.where(keep, x / (1.0 - rate), 0).astype(x.dtype)


# --------------------------------------------------------------------------------------------
# Modules
# --------------------------------------------------------------------------------------------

def _layer_norm(name: str) -> nn.LayerNorm:
    return nn.LayerNorm(epsilon=LN_EPS, dtype=jnp.float32, name=name)


class WindowAttention3D(nn.Module):
    """(Shifted) 3D window multi-head self-attention on ``[B, T, H, W, C]`` (normed input)."""

    dim: int
    num_heads: int
    window_size: Triple
    shift_size: Triple
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: Array) -> Array:
        b, t, h, w, c = x.shape
        full = tuple(self.window_size)
        win, shift = effective_window((t, h, w), full, self.shift_size)
        size = padded_size((t, h, w), win)
        x = jnp.pad(x, ((0, 0), (0, size[0] - t), (0, size[1] - h), (0, size[2] - w), (0, 0)))
        if any(shift):
            x = jnp.roll(x, tuple(-s for s in shift), axis=(1, 2, 3))
        windows = window_partition(x, win)  # [B, nW, N, C]
        n, heads = windows.shape[2], self.num_heads
        qkv = nn.Dense(3 * c, dtype=self.dtype, kernel_init=_init, name="qkv")(windows)
        qkv = qkv.reshape(*qkv.shape[:-1], 3, heads, c // heads)  # [B, nW, N, 3, heads, dh]
        # heads before tokens once for q, k and v (one transpose), so both attention products
        # are plain batched matmuls over (B, nW, heads)
        qkv = qkv.transpose(3, 0, 1, 4, 2, 5)  # [3, B, nW, heads, N, dh]
        q, k, v = qkv[0], qkv[1], qkv[2]
        logits = jnp.einsum("bwhqd,bwhkd->bwhqk", q, k, preferred_element_type=jnp.float32)
        logits = logits * (c // heads) ** -0.5
        table = self.param("relative_position_bias_table", _init,
                           ((2 * full[0] - 1) * (2 * full[1] - 1) * (2 * full[2] - 1), heads))
        index = relative_position_index(full)[:n, :n]  # the reference's slice when shrunk
        bias = jnp.asarray(table, jnp.float32)[index.reshape(-1)].reshape(n, n, heads)
        logits = add_window_bias(logits, bias.transpose(2, 0, 1))
        if any(shift):  # compared in the graph: [nW, N] labels, not an [nW, N, N] constant
            labels = jnp.asarray(window_labels(size, win, shift))
            mask = (labels[:, :, None] == labels[:, None, :])[:, None]  # [nW, 1, N, N]
        else:
            mask = jnp.ones((1, 1, 1, 1), bool)
        weights = masked_softmax(logits, mask)
        out = jnp.einsum("bwhqk,bwhkd->bwhqd", weights.astype(v.dtype), v)
        out = out.transpose(0, 1, 3, 2, 4)  # [B, nW, N, heads, dh]
        out = out.reshape(*out.shape[:3], c)
        out = nn.Dense(c, dtype=self.dtype, kernel_init=_init, name="proj")(out)
        x = window_reverse(out, win, size)
        if any(shift):
            x = jnp.roll(x, shift, axis=(1, 2, 3))
        return x[:, :t, :h, :w]


class SwinBlock3D(nn.Module):
    """Pre-norm transformer block with (shifted) window attention and a GELU MLP."""

    dim: int
    num_heads: int
    window_size: Triple
    shift_size: Triple
    mlp_ratio: float = 4.0
    drop_path_rate: float = 0.0
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: Array, train: bool) -> Array:
        rate = self.drop_path_rate if train else 0.0

        def residual(h: Array) -> Array:
            h = drop_path(h, rate, self.make_rng("dropout")) if rate > 0 else h
            return (x + h).astype(self.dtype)

        h = _layer_norm("norm1")(x).astype(self.dtype)
        h = WindowAttention3D(self.dim, self.num_heads, self.window_size, self.shift_size,
                              self.dtype, name="attn")(h)
        x = residual(h)
        h = _layer_norm("norm2")(x).astype(self.dtype)
        h = nn.Dense(int(self.dim * self.mlp_ratio), dtype=self.dtype, kernel_init=_init,
                     name="fc1")(h)
        h = gelu_erf(h)
        h = nn.Dense(self.dim, dtype=self.dtype, kernel_init=_init, name="fc2")(h)
        return residual(h)


class SwinStage3D(nn.Module):
    """The blocks of one stage; odd blocks shift their windows by half a window."""

    dim: int
    depth: int
    num_heads: int
    window_size: Triple
    drop_path_rates: tuple[float, ...]
    mlp_ratio: float = 4.0
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: Array, train: bool) -> Array:
        half = tuple(w // 2 for w in self.window_size)
        for i in range(self.depth):
            shift = (0, 0, 0) if i % 2 == 0 else half
            x = SwinBlock3D(self.dim, self.num_heads, tuple(self.window_size), shift,
                            self.mlp_ratio, self.drop_path_rates[i], self.dtype,
                            name=f"block_{i}")(x, train)
        return x


class PatchMerging3D(nn.Module):
    """2x2 spatial patch merging: ``[B, T, H, W, C] -> [B, T, ceil(H/2), ceil(W/2), 2C]``."""

    dim: int
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: Array) -> Array:
        h, w = x.shape[2:4]
        x = jnp.pad(x, ((0, 0), (0, 0), (0, h % 2), (0, w % 2), (0, 0)))
        x = jnp.concatenate([x[:, :, 0::2, 0::2], x[:, :, 1::2, 0::2],
                             x[:, :, 0::2, 1::2], x[:, :, 1::2, 1::2]], axis=-1)
        x = _layer_norm("norm")(x).astype(self.dtype)
        return nn.Dense(2 * self.dim, use_bias=False, dtype=self.dtype, kernel_init=_init,
                        name="reduction")(x)


class PatchEmbed3D(nn.Module):
    """Non-overlapping 3D patches -> ``embed_dim`` channels, then LayerNorm."""

    embed_dim: int
    patch_size: Triple
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: Array) -> Array:
        pads = [(0, -s % p) for s, p in zip(x.shape[1:4], self.patch_size)]
        x = jnp.pad(x, [(0, 0), *pads, (0, 0)])
        x = nn.Conv(self.embed_dim, tuple(self.patch_size), strides=tuple(self.patch_size),
                    padding="VALID", dtype=self.dtype, name="proj")(x)
        return _layer_norm("norm")(x).astype(self.dtype)


class VideoSwin3D(nn.Module):
    """Video Swin Transformer (Swin-T defaults). ``num_classes`` adds a head (mean over
    ``T', H', W'`` then Linear) used for parity tests; the call then returns logits
    ``[B, num_classes]`` instead of the features, which it sows as
    ``("intermediates", "features")`` (``apply(..., mutable=["intermediates"])``)."""

    embed_dim: int = 96
    depths: Sequence[int] = (2, 2, 6, 2)
    num_heads: Sequence[int] = (3, 6, 12, 24)
    patch_size: Sequence[int] = (2, 4, 4)
    window_size: Sequence[int] = (8, 7, 7)
    mlp_ratio: float = 4.0
    stochastic_depth: float = 0.1
    dtype: Any = jnp.float32
    remat: bool = False
    num_classes: int | None = None

    def drop_path_rates(self) -> list[float]:
        """Per-block stochastic depth rates, linear from 0 to ``stochastic_depth``."""
        total = sum(self.depths)
        return [self.stochastic_depth * i / max(total - 1, 1) for i in range(total)]

    @nn.compact
    def __call__(self, x: Array, *, train: bool) -> Array:
        if len(self.depths) != len(self.num_heads):
            raise ValueError(f"depths {tuple(self.depths)} and num_heads "
                             f"{tuple(self.num_heads)} differ in length")
        if x.ndim != 5 or x.shape[-1] != 3:
            raise ValueError(f"expected video [B, T, H, W, 3], got shape {x.shape}")
        x = PatchEmbed3D(self.embed_dim, tuple(self.patch_size), self.dtype,
                         name="patch_embed")(x.astype(self.dtype))
        rates, start = self.drop_path_rates(), 0
        stage_cls = nn.remat(SwinStage3D, static_argnums=(2,)) if self.remat else SwinStage3D
        for i, (depth, heads) in enumerate(zip(self.depths, self.num_heads)):
            dim = self.embed_dim * 2 ** i
            x = stage_cls(dim, depth, heads, tuple(self.window_size),
                          tuple(rates[start:start + depth]), self.mlp_ratio, self.dtype,
                          name=f"stage_{i}")(x, train)
            start += depth
            if i < len(self.depths) - 1:
                x = PatchMerging3D(dim, self.dtype, name=f"merge_{i}")(x)
        x = _layer_norm("norm")(x)
        if self.num_classes is None:
            return x
        self.sow("intermediates", "features", x)
        pooled = x.mean(axis=(1, 2, 3))
        return nn.Dense(self.num_classes, dtype=jnp.float32, name="head")(pooled)


# --------------------------------------------------------------------------------------------
# A converted weights folder (written by `jaxaffect convert swin3d`)
# --------------------------------------------------------------------------------------------
PARAMS_FILE = "params.npz"
CONFIG_FILE = "swin3d.json"
FORMAT = "jaxaffect.swin3d.params"
FORMAT_VERSION = 1


def model_fields(config: dict[str, Any]) -> dict[str, Any]:
    """:class:`VideoSwin3D` fields from a saved config (JSON lists -> tuples)."""
    fields = dict(config)
    for key in ("depths", "num_heads", "patch_size", "window_size"):
        fields[key] = tuple(int(v) for v in fields[key])
    return fields


def read_converted_meta(folder: str | os.PathLike) -> dict[str, Any]:
    """The swin3d.json of a converted folder (format checked)."""
    from jaxaffect.torch_checkpoint import CheckpointError

    path = Path(folder) / CONFIG_FILE
    if not path.is_file():
        raise CheckpointError(f"{path}: not found; convert with `jaxaffect convert swin3d`")
    meta = json.loads(path.read_text())
    if meta.get("format") != FORMAT or meta.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"{path}: not a converted Video Swin folder of format {FORMAT} "
                              f"v{FORMAT_VERSION}")
    return meta


def load_swin_config(folder: str | os.PathLike) -> dict[str, Any]:
    """The :class:`VideoSwin3D` fields of a converted folder (tuples restored)."""
    return model_fields(read_converted_meta(folder)["config"])


def load_swin_params(folder: str | os.PathLike) -> dict[str, Any]:
    """The nested float32 params tree (numpy) of a converted folder, head included; drop
    ``"head"`` to use the backbone alone (``num_classes=None``)."""
    from flax import traverse_util

    read_converted_meta(folder)  # refuses other folders
    with np.load(Path(folder) / PARAMS_FILE, allow_pickle=False) as npz:
        flat = {tuple(k.split("/")): npz[k] for k in npz.files}
    return traverse_util.unflatten_dict(flat)


__all__ = ["VideoSwin3D", "WindowAttention3D", "SwinBlock3D", "SwinStage3D", "PatchMerging3D",
           "PatchEmbed3D", "effective_window", "padded_size", "window_partition",
           "window_reverse", "relative_position_index", "region_labels", "window_labels",
           "shifted_window_mask", "gelu_erf", "drop_path"]
