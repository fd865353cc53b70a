"""Tests of the Table 2 fusion strategies (TAM Sec. 5.3-5.4) and the shared transformer blocks."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxaffect.families.tam.ctm import CTMClassifier, CTMEncoder
from jaxaffect.families.tam.fusion_baselines import (
    STRATEGIES,
    BaselineEncoder,
    DividedLayer,
    FusionClassifier,
    default_readout,
    make_fusion_encoder,
)
from jaxaffect.nn.attention import dot_product_attention
from jaxaffect.testing import random_variables

B, T, WIDTH, HEADS, CLASSES = 2, 5, 16, 2, 3
DIMS = {"image": 12, "motion": 20, "audio": 8}
M = len(DIMS)
# These tests check values, not speed: cheaper XLA optimisation halves CPU compile time.
JIT = functools.partial(jax.jit, compiler_options={"xla_backend_optimization_level": 0,
                                                   "xla_llvm_disable_expensive_passes": True})
FIELDS = dict(width=WIDTH, num_layers=2, num_heads=HEADS, max_segments=16, dropout_rate=0.1)


def make_inputs(t: int = T, lengths=(5, 3), seed: int = 0):
    rng = np.random.default_rng(seed)
    mask = np.arange(t)[None, :] < np.asarray(lengths)[:, None]
    feats = {m: jnp.asarray(np.where(mask[..., None], rng.standard_normal((B, t, d)), 0.0)
                            .astype(np.float32)) for m, d in DIMS.items()}
    return feats, jnp.asarray(mask)


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_strategy_shapes_padding_and_modal_paths(strategy):
    feats, mask = make_inputs()
    model = FusionClassifier(strategy, num_outputs=CLASSES, **FIELDS)
    logits = jax.eval_shape(model.init_with_output, jax.random.key(0), feats, mask)[0]
    assert logits.shape == (B, CLASSES) and logits.dtype == jnp.float32

    enc = model.encoder_module()
    # batch: the inputs, then the same inputs with the audio stream shifted
    both = {m: jnp.concatenate([feats[m], feats[m] + (m == "audio")]) for m in DIMS}
    both_mask = jnp.concatenate([mask, mask])
    params = random_variables(enc, both, both_mask, seed=1)
    run = JIT(enc.apply)
    out = run(params, both, both_mask)
    pooled_dim = WIDTH * (M if default_readout(strategy) == "concat" else 1)
    assert out["pooled"].shape == (2 * B, pooled_dim)
    assert out["video"].shape == (2 * B, T + 1, WIDTH)
    assert all(out["tokens"][m].shape == (2 * B, T + 1, WIDTH) for m in DIMS)
    assert np.all(np.isfinite(np.asarray(out["pooled"])))

    # audio reaches the image tokens only where modalities interact
    image = np.asarray(out["tokens"]["image"])
    interacts = not np.allclose(image[:B], image[B:], atol=1e-6)
    assert interacts == (strategy not in ("concat", "inner")), strategy

    # padding: element 1 (3 real + 2 padded segments) equals its 3 segments alone
    alone = run(params, {m: feats[m][:, :3] for m in DIMS}, jnp.ones((B, 3), bool))
    np.testing.assert_allclose(np.asarray(alone["pooled"][1]), np.asarray(out["pooled"][1]),
                               atol=1e-5)
    np.testing.assert_allclose(np.asarray(alone["video"][1]), np.asarray(out["video"][1, :4]),
                               atol=1e-5)
    assert not np.allclose(np.asarray(alone["pooled"][0]), np.asarray(out["pooled"][0]),
                           atol=1e-3)


# the per-modality ("concat") and CTM gradient paths are covered in test_ctm.py and by "divide"
@pytest.mark.parametrize("strategy", ["divide", "joint"])
def test_baseline_gradients_finite(strategy):
    feats, mask = make_inputs()
    model = FusionClassifier(strategy, num_outputs=CLASSES, **FIELDS)
    params = random_variables(model, feats, mask, seed=2)["params"]
    labels = jnp.array([0, 2])

    def loss(p):
        logits = model.apply({"params": p}, feats, mask, train=True,
                             rngs={"dropout": jax.random.key(3)})
        return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(logits), labels[:, None], 1))

    value, grads = JIT(jax.value_and_grad(loss))(params)
    assert np.isfinite(float(value))
    for path, g in jax.tree_util.tree_leaves_with_path(grads):
        g = np.asarray(g)
        assert np.all(np.isfinite(g)), path
        assert np.any(g != 0), f"no gradient reaches {jax.tree_util.keystr(path)}"


def test_param_layouts():
    feats, mask = make_inputs()

    def layers(strategy):
        model = FusionClassifier(strategy, num_outputs=CLASSES, **FIELDS)
        return jax.eval_shape(model.init, jax.random.key(0), feats, mask)["params"]

    concat = layers("concat")["encoder"]["layers"]
    assert concat["attention"]["query"]["kernel"].shape == (2, M, WIDTH, WIDTH)  # per modality
    divide = layers("divide")["encoder"]["layers"]
    assert divide["temporal_attention"]["query"]["kernel"].shape == (2, M, WIDTH, WIDTH)
    assert divide["cross_attention"]["query"]["kernel"].shape == (2, WIDTH, WIDTH)  # shared
    joint = layers("joint")["encoder"]["layers"]
    assert joint["attention"]["query"]["kernel"].shape == (2, WIDTH, WIDTH)
    inner = layers("inner")["encoder"]["layers"]
    assert inner["attention"]["out"]["kernel"].shape == (2, WIDTH, WIDTH)  # I^m W_o only
    # "ctm" has exactly the CTMClassifier tree, so CTM checkpoints load into either
    ctm = layers("ctm")
    ref = CTMClassifier(num_outputs=CLASSES, encoder=CTMEncoder(**FIELDS))
    ref_shapes = jax.eval_shape(ref.init, jax.random.key(0), feats, mask)["params"]
    assert (jax.tree_util.tree_map(lambda a: a.shape, ctm)
            == jax.tree_util.tree_map(lambda a: a.shape, ref_shapes))
    # readout override
    joint_mean = FusionClassifier("joint", readout="mean", **FIELDS).encoder_module()
    out = jax.eval_shape(joint_mean.init_with_output, jax.random.key(0), feats, mask)[0]
    assert out["pooled"].shape == (B, WIDTH)
    assert isinstance(make_fusion_encoder("divide", **FIELDS), BaselineEncoder)
    with pytest.raises(ValueError, match="unknown fusion strategy"):
        make_fusion_encoder("late")


def _np_layer_norm(x, p):
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + 1e-6) * p["scale"] + p["bias"]


def _np_self_attention(x, p, key_mask, heads):
    """Multi-head self-attention over the rows of ``x [N, d]`` (one weight set)."""
    q, k, v = (x @ np.asarray(p[n]["kernel"], np.float64) for n in ("query", "key", "value"))
    dh = x.shape[-1] // heads
    out = np.zeros_like(x)
    for h in range(heads):
        s = slice(h * dh, (h + 1) * dh)
        z = np.where(key_mask[None, :], q[:, s] @ k[:, s].T / np.sqrt(dh), -np.inf)
        w = np.exp(z - z.max(-1, keepdims=True))
        out[:, s] = (w / w.sum(-1, keepdims=True)) @ v[:, s]
    return out @ np.asarray(p["out"]["kernel"], np.float64)


def _np_gelu(x):
    from math import erf
    return 0.5 * x * (1 + np.vectorize(erf)(x / np.sqrt(2)))


def divided_layer_reference(p, x, key_mask, heads):
    """DividedLayer with explicit loops: temporal MHSA per modality, cross-modal MHSA per
    position, FFN per modality (pre-norm residual blocks)."""
    p = jax.tree_util.tree_map(lambda a: np.asarray(a, np.float64), p)
    pick = lambda tree, m: jax.tree_util.tree_map(lambda a: a[m], tree)  # noqa: E731
    x = x.astype(np.float64).copy()
    b_, m_, n_, _ = x.shape
    for b in range(b_):
        for m in range(m_):
            h = _np_layer_norm(x[b, m], pick(p["norm_temporal"], m))
            x[b, m] = x[b, m] + _np_self_attention(h, pick(p["temporal_attention"], m),
                                                   key_mask[b], heads)
        for t in range(n_):
            h = _np_layer_norm(x[b, :, t], p["norm_cross"])
            keys = np.full(m_, key_mask[b, t])
            if keys.any():
                x[b, :, t] = x[b, :, t] + _np_self_attention(h, p["cross_attention"], keys,
                                                             heads)
        for m in range(m_):
            h = _np_layer_norm(x[b, m], pick(p["norm_mlp"], m))
            mlp = pick(p["mlp"], m)
            h = _np_gelu(h @ mlp["dense_in"]["kernel"] + mlp["dense_in"]["bias"])
            x[b, m] = x[b, m] + h @ mlp["dense_out"]["kernel"] + mlp["dense_out"]["bias"]
    return x


def test_divided_layer_jit_eager_and_numpy_reference():
    rng = np.random.default_rng(5)
    x = jnp.asarray(rng.standard_normal((B, M, T + 1, WIDTH)), jnp.float32)
    key_mask = np.array([[1] * 6, [1, 1, 1, 1, 0, 0]], bool)
    layer = DividedLayer(num_heads=HEADS, mlp_dim=2 * WIDTH)
    params = random_variables(layer, x, key_mask, seed=6)
    with jax.default_matmul_precision("highest"):
        eager, _ = layer.apply(params, x, key_mask)
        jitted, _ = JIT(layer.apply)(params, x, key_mask)
    np.testing.assert_allclose(np.asarray(eager), np.asarray(jitted), atol=1e-5, rtol=1e-5)
    want = divided_layer_reference(params["params"], np.asarray(x), key_mask, HEADS)
    real = key_mask[:, None, :, None]  # padded query positions are never read
    np.testing.assert_allclose(np.where(real, np.asarray(jitted), 0.0),
                               np.where(real, want, 0.0), atol=1e-5, rtol=1e-5)


def test_dot_product_attention_matches_numpy():
    rng = np.random.default_rng(7)
    q, k, v = (rng.standard_normal((2, 3, 4, 2, 5)).astype(np.float32) for _ in range(3))
    mask = np.ones((2, 3, 4), bool)
    mask[0, 1, 2:] = False
    mask[1, 2] = False  # no key at all -> zeros
    with jax.default_matmul_precision("highest"):
        got = np.asarray(JIT(dot_product_attention)(q, k, v, mask))
        eager = np.asarray(dot_product_attention(q, k, v, mask))
    want = np.zeros_like(got)
    for idx in np.ndindex(2, 3):
        for h in range(2):
            if not mask[idx].any():
                continue
            s = q[idx][:, h] @ k[idx][:, h].T / np.sqrt(5)
            s = np.where(mask[idx][None, :], s, -np.inf)
            w = np.exp(s - s.max(-1, keepdims=True))
            want[idx][:, h] = (w / w.sum(-1, keepdims=True)) @ v[idx][:, h]
    np.testing.assert_allclose(got, want, atol=1e-5)
    np.testing.assert_allclose(eager, got, atol=1e-6)
    assert np.all(got[1, 2] == 0)
