"""Tests of the Video Swin backbone (jaxaffect.nn.video_swin): window helpers
against plain loop references, jitted and not; shapes; shifted-window attention against a
voxel-by-voxel numpy reference; drop path, remat and bf16."""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxaffect.nn import video_swin as S

JIT = [False, True]
# one stage of a plain and a shifted block; on the (2, 6, 16, 13, 3) input below its 3 x 4 x 4
# tokens shift in every axis
TINY = dict(embed_dim=8, depths=(2,), num_heads=(2,), patch_size=(2, 4, 4), window_size=(2, 2, 2))


def _maybe_jit(fn, jit: bool, **static):
    return jax.jit(fn, static_argnames=tuple(static)) if jit else fn


def random_variables(module, *args, seed: int = 0, **kwargs) -> dict:
    """Random parameters of the right shapes without compiling ``init`` (``eval_shape`` only):
    kernels ~ 1/sqrt(fan_in), LayerNorm scales ~ 1, biases and tables O(0.1-1)."""
    shapes = jax.eval_shape(lambda: module.init(jax.random.key(0), *args, **kwargs))
    rng = np.random.default_rng(seed)

    def draw(path, leaf):
        name = path[-1].key
        noise = rng.standard_normal(leaf.shape).astype(np.float32)
        if name == "kernel":
            return jnp.asarray(noise / np.sqrt(np.prod(leaf.shape[:-1])))
        if name == "scale":
            return jnp.asarray(1 + 0.1 * noise)
        return jnp.asarray(noise if name == "relative_position_bias_table" else 0.1 * noise)

    return jax.tree_util.tree_map_with_path(draw, shapes)


# ------------------------------------------------------------------------------------------
# Loop references
# ------------------------------------------------------------------------------------------

def loop_region(pos: int, size: int, window: int, shift: int) -> int:
    """Which of the (up to) three shifted regions position ``pos`` of a padded axis is in."""
    if shift == 0:
        return 0
    if pos < size - window:
        return 0
    if pos < size - shift:
        return 1
    return 2


def loop_mask(size, window, shift) -> np.ndarray:
    """``[nW, N, N]`` may-attend mask, labelling each voxel, window and token pair by hand."""
    counts = [s // w for s, w in zip(size, window)]
    out = []
    for wi in itertools.product(*(range(c) for c in counts)):
        voxels = [tuple(wi[a] * window[a] + o[a] for a in range(3))
                  for o in itertools.product(*(range(w) for w in window))]
        labels = [tuple(loop_region(v[a], size[a], window[a], shift[a]) for a in range(3))
                  for v in voxels]
        out.append([[la == lb for lb in labels] for la in labels])
    return np.array(out, bool)


def loop_index(window) -> np.ndarray:
    coords = list(itertools.product(*(range(w) for w in window)))
    wt, wh, ww = window
    out = np.zeros((len(coords), len(coords)), np.int64)
    for i, (a, b, c) in enumerate(coords):
        for j, (d, e, f) in enumerate(coords):
            out[i, j] = ((a - d + wt - 1) * (2 * wh - 1) * (2 * ww - 1)
                         + (b - e + wh - 1) * (2 * ww - 1) + (c - f + ww - 1))
    return out


def loop_window_attention(x, params, heads, full_window, shift_request) -> np.ndarray:
    """Numpy (float64) reference of one (shifted) window attention, query by query."""
    x = np.asarray(x, np.float64)
    b, t, h, w, c = x.shape
    win, shift = S.effective_window((t, h, w), full_window, shift_request)
    size = tuple(-(-s // k) * k for s, k in zip((t, h, w), win))
    xp = np.zeros((b, *size, c))
    xp[:, :t, :h, :w] = x
    xp = np.roll(xp, [-s for s in shift], axis=(1, 2, 3))
    p = {k: np.asarray(v, np.float64) for k, v in params.items()}
    qkv = xp @ p["qkv_kernel"] + p["qkv_bias"]
    dh = c // heads
    q, k, v = (qkv[..., i * c:(i + 1) * c].reshape(b, *size, heads, dh) for i in range(3))
    index = loop_index(full_window)
    out = np.zeros((b, *size, heads, dh))
    offsets = list(itertools.product(*(range(k_) for k_ in win)))
    for pos in itertools.product(*(range(s) for s in size)):
        start = [pos[a] // win[a] * win[a] for a in range(3)]
        local_q = offsets.index(tuple(pos[a] - start[a] for a in range(3)))
        region = [loop_region(pos[a], size[a], win[a], shift[a]) for a in range(3)]
        keys, bias_rows = [], []
        for j, o in enumerate(offsets):
            kp = tuple(start[a] + o[a] for a in range(3))
            if [loop_region(kp[a], size[a], win[a], shift[a]) for a in range(3)] == region:
                keys.append(kp)
                bias_rows.append(index[local_q, j])  # top-left block of the full index
        kk = np.stack([k[(slice(None), *kp)] for kp in keys], 1)  # [b, n, heads, dh]
        vv = np.stack([v[(slice(None), *kp)] for kp in keys], 1)
        logits = np.einsum("bhd,bnhd->bhn", q[(slice(None), *pos)], kk) / np.sqrt(dh)
        logits = logits + p["table"][bias_rows].T[None]
        wts = np.exp(logits - logits.max(-1, keepdims=True))
        wts /= wts.sum(-1, keepdims=True)
        out[(slice(None), *pos)] = np.einsum("bhn,bnhd->bhd", wts, vv)
    out = out.reshape(b, *size, c) @ p["proj_kernel"] + p["proj_bias"]
    out = np.roll(out, shift, axis=(1, 2, 3))
    return out[:, :t, :h, :w]


# ------------------------------------------------------------------------------------------
# Window helpers
# ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("jit", JIT)
def test_window_partition_round_trip_and_order(jit):
    x = jnp.asarray(np.random.default_rng(0).standard_normal((2, 4, 6, 9, 5)), jnp.float32)
    window = (2, 3, 3)
    part = _maybe_jit(S.window_partition, jit, window=None)(x, window=window)
    assert part.shape == (2, 2 * 2 * 3, 18, 5)
    # window (1, 0, 2), token (1, 2, 0) in raster order
    np.testing.assert_array_equal(part[:, 1 * 6 + 0 * 3 + 2, 1 * 9 + 2 * 3 + 0],
                                  x[:, 2 + 1, 0 + 2, 6 + 0])
    back = _maybe_jit(S.window_reverse, jit, window=None, size=None)(
        part, window=window, size=(4, 6, 9))
    np.testing.assert_array_equal(back, x)


@pytest.mark.parametrize("size,window,shift", [
    ((4, 6, 6), (2, 3, 3), (1, 1, 1)),
    ((8, 9, 6), (4, 3, 3), (2, 1, 1)),
    ((6, 6, 9), (2, 3, 3), (0, 1, 1)),   # no shift in time
    ((4, 6, 6), (4, 3, 3), (0, 1, 1)),   # one window in time
    ((4, 4, 8), (2, 2, 4), (1, 1, 2)),
])
def test_shifted_window_mask_against_loop(size, window, shift):
    got = S.shifted_window_mask(size, window, shift)
    want = loop_mask(size, window, shift)
    assert got.dtype == bool and got.shape == want.shape
    np.testing.assert_array_equal(got, want)
    assert got[:, np.arange(got.shape[1]), np.arange(got.shape[1])].all()  # self always kept
    assert not got.all()  # the shift does split some window


@pytest.mark.parametrize("window", [(2, 3, 3), (4, 3, 3), (1, 2, 5), (8, 7, 7)])
def test_relative_position_index_against_loop(window):
    got = S.relative_position_index(window)
    np.testing.assert_array_equal(got, loop_index(window))
    rows = (2 * window[0] - 1) * (2 * window[1] - 1) * (2 * window[2] - 1)
    assert got.min() == 0 and got.max() == rows - 1


def test_window_shrinks_and_shift_is_zero_where_input_is_not_larger():
    assert S.effective_window((16, 56, 56), (8, 7, 7), (4, 3, 3)) == ((8, 7, 7), (4, 3, 3))
    assert S.effective_window((8, 7, 4), (8, 7, 7), (4, 3, 3)) == ((8, 7, 4), (0, 0, 0))
    assert S.effective_window((4, 14, 2), (8, 7, 7), (4, 3, 3)) == ((4, 7, 2), (0, 3, 0))
    assert S.padded_size((5, 8, 7), (4, 3, 3)) == (8, 9, 9)


@pytest.mark.parametrize("jit", JIT)
def test_drop_path_is_per_sample(jit):
    x = jnp.ones((64, 3, 2, 2, 4))
    y = np.asarray(_maybe_jit(S.drop_path, jit, rate=None)(x, rate=0.25,
                                                          rng=jax.random.key(3)))
    per_sample = y.reshape(64, -1)
    assert np.isclose(per_sample, 0.0).sum() + np.isclose(per_sample, 1 / 0.75).sum() == y.size
    assert (per_sample == per_sample[:, :1]).all()  # whole examples dropped or kept
    assert 0 < (per_sample[:, 0] == 0).sum() < 64
    np.testing.assert_array_equal(S.drop_path(x, 0.0, jax.random.key(3)), x)


# ------------------------------------------------------------------------------------------
# Attention against the voxel-by-voxel reference
# ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("shape,window,shift,jit", [
    ((2, 3, 5, 4, 8), (2, 3, 3), (1, 1, 1), True),    # padded, shifted in every axis
    ((1, 3, 4, 5, 8), (4, 3, 3), (2, 1, 1), False),   # time shrinks (shift 0 there)
    ((1, 2, 2, 5, 8), (4, 3, 3), (2, 1, 1), True),    # time and height shrink: index slice
    ((1, 2, 3, 6, 8), (2, 3, 3), (0, 0, 0), False),   # plain windows
])
def test_window_attention_against_loop_reference(shape, window, shift, jit):
    heads = 2
    attn = S.WindowAttention3D(8, heads, window, shift)
    x = jnp.asarray(np.random.default_rng(1).standard_normal(shape), jnp.float32)
    variables = random_variables(attn, x)
    p = variables["params"]
    table = np.asarray(p["relative_position_bias_table"])
    with jax.default_matmul_precision("highest"):
        got = _maybe_jit(attn.apply, jit)(variables, x)
    ref = loop_window_attention(x, dict(
        qkv_kernel=p["qkv"]["kernel"], qkv_bias=p["qkv"]["bias"], table=table,
        proj_kernel=p["proj"]["kernel"], proj_bias=p["proj"]["bias"]), heads, window, shift)
    np.testing.assert_allclose(np.asarray(got), ref, atol=2e-5, rtol=1e-5)


@pytest.mark.parametrize("jit", [False, True])
def test_window_bias_gradient_equals_the_broadcast_sums(jit):
    """`add_window_bias` (its bias gradient one matrix-vector product) gives the plain
    broadcast sum's value and gradients: numpy sums over batch and windows as reference."""
    rng = np.random.default_rng(3)
    logits = jnp.asarray(rng.standard_normal((2, 3, 4, 5, 5)), jnp.float32)
    bias = jnp.asarray(rng.standard_normal((4, 5, 5)), jnp.float32)
    weight = rng.standard_normal((2, 3, 4, 5, 5)).astype(np.float32)

    def loss(fn):
        return lambda lg, b: jnp.sum(fn(lg, b) ** 2 * weight)

    grad = jax.grad(loss(S.add_window_bias), argnums=(0, 1))
    got = _maybe_jit(grad, jit)(logits, bias)
    upstream = 2 * (np.asarray(logits) + np.asarray(bias)) * weight  # d loss / d sum
    np.testing.assert_allclose(np.asarray(got[0]), upstream, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(np.asarray(got[1]), upstream.sum(axis=(0, 1)), rtol=1e-5,
                               atol=1e-4)
    np.testing.assert_array_equal(np.asarray(_maybe_jit(S.add_window_bias, jit)(logits, bias)),
                                  np.asarray(logits + bias))


@pytest.mark.parametrize("jit", [False, True])
def test_gelu_erf_and_its_gradient_against_math_erf(jit):
    """x Phi(x) and its derivative Phi(x) + x phi(x), element by element with math.erf /
    math.exp in float64; also within float32 rounding of jax's erfc-based exact GELU."""
    import math

    x = np.concatenate([np.linspace(-9, 9, 181), [-0.0, 1e-4, -1e-4]]).astype(np.float32)
    value, grad = _maybe_jit(jax.vmap(jax.value_and_grad(S.gelu_erf)), jit)(jnp.asarray(x))
    phi = [0.5 * (1 + math.erf(v / math.sqrt(2))) for v in x.astype(np.float64)]
    want = [v * p for v, p in zip(x.astype(np.float64), phi)]
    dwant = [p + v * math.exp(-v * v / 2) / math.sqrt(2 * math.pi)
             for v, p in zip(x.astype(np.float64), phi)]
    np.testing.assert_allclose(np.asarray(value), want, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.asarray(grad), dwant, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.asarray(value),
                               np.asarray(jax.nn.gelu(jnp.asarray(x), approximate=False)),
                               rtol=1e-5, atol=1e-6)


# ------------------------------------------------------------------------------------------
# The model
# ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("shape,want", [
    ((1, 16, 64, 64, 3), (1, 8, 2, 2, 768)),
    ((2, 8, 112, 112, 3), (2, 4, 4, 4, 768)),     # 112 / 32 = 3.5: merging pads
    ((1, 9, 50, 37, 3), (1, 5, 2, 2, 768)),       # nothing divisible
    ((1, 2, 224, 160, 3), (1, 1, 7, 5, 768)),
])
def test_swin_t_output_shapes(shape, want):
    model = S.VideoSwin3D()
    x = jax.ShapeDtypeStruct(shape, jnp.float32)
    out, variables = jax.eval_shape(
        lambda v: model.init_with_output(jax.random.key(0), v, train=False), x)
    assert out.shape == want and out.dtype == jnp.float32
    n = sum(leaf.size for leaf in jax.tree_util.tree_leaves(variables["params"]))
    assert n == 28158070 - (768 * 400 + 400)  # Swin-T without its 400-class head


@pytest.fixture(scope="module")
def tiny():
    model = S.VideoSwin3D(**TINY, stochastic_depth=0.2)
    x = jnp.asarray(np.random.default_rng(0).standard_normal((2, 6, 16, 13, 3)), jnp.float32)
    return model, random_variables(model, x, train=False), x


def test_tiny_model_jitted_fp32_and_bf16(tiny):
    model, variables, x = tiny

    @jax.jit
    def run(v, x):
        return (model.apply(v, x, train=False),
                model.clone(dtype=jnp.bfloat16).apply(v, x, train=False))

    f32, bf16 = run(variables, x)
    assert f32.shape == bf16.shape == (2, 3, 4, 4, 8)
    assert bf16.dtype == jnp.float32  # the final LayerNorm is float32
    err = np.abs(np.asarray(bf16) - np.asarray(f32))
    assert err.mean() < 0.05 and err.max() < 0.5, (err.mean(), err.max())
    assert np.corrcoef(np.asarray(bf16).ravel(), np.asarray(f32).ravel())[0, 1] > 0.995


def test_train_mode_drop_path_and_remat(tiny):
    model, variables, x = tiny
    rngs = {"dropout": jax.random.key(5, impl="rbg")}  # rbg: quicker to compile
    with pytest.raises(Exception, match="dropout"):
        jax.eval_shape(lambda v: model.apply(v, x, train=True), variables)

    @jax.jit
    def both(v, x):
        def loss(v, m):
            out = m.apply(v, x, train=True, rngs=rngs)
            return (out ** 2).mean(), out
        plain = jax.value_and_grad(loss, has_aux=True)(v, model)
        remat = jax.value_and_grad(loss, has_aux=True)(v, model.clone(remat=True))
        return plain, remat, model.apply(v, x, train=False)

    ((l1, trained), g1), ((l2, _), g2), evaluated = both(variables, x)
    np.testing.assert_allclose(l1, l2, rtol=1e-6)
    jax.tree_util.tree_map(lambda a, b: np.testing.assert_allclose(a, b, atol=1e-6), g1, g2)
    assert np.abs(np.asarray(evaluated) - np.asarray(trained)).max() > 1e-3
