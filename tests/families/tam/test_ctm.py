"""Tests of the CTM fusion module (TAM Sec. 4.1, Eqs. 1-6) and its head."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxaffect.families.tam.ctm import (
    CTMAttention,
    CTMClassifier,
    CTMEncoder,
    CTMLayer,
    MultimodalEmbedding,
    VideoHead,
    fusion_outputs,
)
from jaxaffect.nn.transformer import GroupLayerNorm
from jaxaffect.testing import random_variables

B, T, WIDTH, HEADS, LAYERS, CLASSES = 2, 5, 16, 2, 3, 4
DIMS = {"image": 12, "motion": 20, "audio": 8}  # stand-ins for 512 / 2048 / 128
LENGTHS = (5, 3)


def make_inputs(t: int = T, seed: int = 0, lengths=LENGTHS, pad_value: float = 0.0):
    rng = np.random.default_rng(seed)
    mask = np.arange(t)[None, :] < np.asarray(lengths)[:, None]
    feats = {}
    for m, d in DIMS.items():
        f = rng.standard_normal((B, t, d)).astype(np.float32)
        feats[m] = jnp.asarray(np.where(mask[..., None], f, pad_value).astype(np.float32))
    return feats, jnp.asarray(mask)


def encoder(**kw) -> CTMEncoder:
    fields = dict(width=WIDTH, num_layers=LAYERS, num_heads=HEADS, max_segments=16,
                  dropout_rate=0.1)
    fields.update(kw)
    return CTMEncoder(**fields)


# These tests check values, not speed: cheaper XLA optimisation halves CPU compile time.
JIT = functools.partial(jax.jit, compiler_options={"xla_backend_optimization_level": 0,
                                                   "xla_llvm_disable_expensive_passes": True})
MODEL = CTMClassifier(num_outputs=CLASSES, encoder=encoder())
APPLY = JIT(MODEL.apply, static_argnames="train")
ENC_APPLY = JIT(encoder().apply)


@pytest.fixture(scope="module")
def variables():
    feats, mask = make_inputs()
    return JIT(MODEL.init)(jax.random.key(0, impl="rbg"), feats, mask)


def test_shapes_and_jit_matches_eager(variables):
    feats, mask = make_inputs()
    logits = APPLY(variables, feats, mask)
    assert logits.shape == (B, CLASSES) and logits.dtype == jnp.float32
    eager = MODEL.apply(variables, feats, mask)
    np.testing.assert_allclose(np.asarray(eager), np.asarray(logits), atol=1e-5, rtol=1e-5)
    out = ENC_APPLY({"params": variables["params"]["encoder"]}, feats, mask)
    assert set(out["tokens"]) == set(DIMS)
    for tok in out["tokens"].values():
        assert tok.shape == (B, T + 1, WIDTH) and tok.dtype == jnp.float32
    assert out["video"].shape == (B, T + 1, WIDTH) and out["pooled"].shape == (B, WIDTH)
    # Eq. 6: video is the modality mean; the head reads its first position
    mean = np.mean([np.asarray(out["tokens"][m]) for m in DIMS], axis=0)
    np.testing.assert_allclose(np.asarray(out["video"]), mean, atol=1e-6)
    np.testing.assert_allclose(np.asarray(out["pooled"]), mean[:, 0], atol=1e-6)
    # padded positions (element 1, segments 3 and 4 -> token positions 4, 5) are zero
    assert np.all(np.asarray(out["video"])[1, 4:] == 0)
    head = variables["params"]["head"]["out"]
    np.testing.assert_allclose(np.asarray(logits), np.asarray(out["pooled"]) @ head["kernel"]
                               + head["bias"], atol=1e-5)


def test_stacked_params_and_paper_sizes():
    feats, mask = make_inputs()
    shapes = jax.eval_shape(MODEL.init, jax.random.key(0), feats, mask)["params"]
    layers = shapes["encoder"]["layers"]
    assert layers["attention"]["query"]["kernel"].shape == (LAYERS, 3, WIDTH, WIDTH)
    assert layers["attention"]["out"]["kernel"].shape == (LAYERS, 2 * WIDTH, WIDTH)  # W_o 2d x d
    assert shapes["encoder"]["embedding"]["position_embedding"].shape == (17, WIDTH)
    # paper sizes: d=768, L=12, 12 heads, T=64, 512/2048/128-d inputs
    paper = CTMClassifier(num_outputs=8, encoder=CTMEncoder(
        width=768, num_layers=12, num_heads=12, max_segments=64))
    big = {m: jax.ShapeDtypeStruct((1, 64, d), jnp.float32)
           for m, d in {"image": 512, "motion": 2048, "audio": 128}.items()}
    big_mask = jax.ShapeDtypeStruct((1, 64), jnp.bool_)
    p = jax.eval_shape(paper.init, jax.random.key(0), big, big_mask)["params"]
    assert p["encoder"]["layers"]["mlp"]["dense_in"]["kernel"].shape == (12, 768, 3072)
    assert jax.eval_shape(paper.apply, {"params": p}, big, big_mask).shape == (1, 8)


def test_padding_invariance(variables):
    feats, mask = make_inputs()
    params = {"params": variables["params"]["encoder"]}
    base = ENC_APPLY(params, feats, mask)
    # garbage (NaN, huge values) in the padded segments of element 1 changes nothing
    dirty = {m: feats[m].at[1, 3:].set(np.nan) for m in DIMS}
    dirty["motion"] = dirty["motion"].at[1, 3:].set(1e4)
    out = ENC_APPLY(params, dirty, mask)
    for key in ("video", "pooled"):
        assert np.all(np.isfinite(np.asarray(out[key])))
        np.testing.assert_array_equal(np.asarray(out[key]), np.asarray(base[key]))
    # element 1 (3 real segments + 2 padded) equals the same 3 segments with no padding
    alone = ENC_APPLY(params, {m: feats[m][:, :3] for m in DIMS}, jnp.ones((B, 3), bool))
    np.testing.assert_allclose(np.asarray(alone["pooled"][1]), np.asarray(base["pooled"][1]),
                               atol=1e-5)
    np.testing.assert_allclose(np.asarray(alone["video"][1]), np.asarray(base["video"][1, :4]),
                               atol=1e-5)
    # ... while element 0, cut from 5 to 3 segments, does change (the test can fail)
    assert not np.allclose(np.asarray(alone["pooled"][0]), np.asarray(base["pooled"][0]),
                           atol=1e-3)


@functools.cache
def grad_fn(remat: bool):
    """Jitted (loss, grads) of a cross-entropy loss, dropout on (fixed dropout key)."""
    model = CTMClassifier(num_outputs=CLASSES, encoder=encoder(remat=remat))
    feats, mask = make_inputs()
    labels = jnp.array([1, 3])

    def loss(params):
        logits = model.apply({"params": params}, feats, mask, train=True,
                             rngs={"dropout": jax.random.key(1)})
        return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(logits), labels[:, None], 1))

    return JIT(jax.value_and_grad(loss))


def test_gradients_finite_and_reach_every_param(variables):
    value, grads = grad_fn(False)(variables["params"])
    assert np.isfinite(float(value))
    for path, g in jax.tree_util.tree_leaves_with_path(grads):
        g = np.asarray(g)
        assert np.all(np.isfinite(g)), path
        assert np.any(g != 0), f"no gradient reaches {jax.tree_util.keystr(path)}"


def test_remat_same_values_and_grads(variables):
    v0, g0 = grad_fn(False)(variables["params"])
    v1, g1 = grad_fn(True)(variables["params"])
    np.testing.assert_allclose(float(v1), float(v0), rtol=1e-6)
    for a, b in zip(jax.tree_util.tree_leaves(g0), jax.tree_util.tree_leaves(g1)):
        np.testing.assert_allclose(np.asarray(b), np.asarray(a), atol=1e-5, rtol=1e-5)


# ---- numpy reference for Eqs. 3-5 ---------------------------------------------------------

def _np_softmax(z, mask):
    z = np.where(mask, z, -np.inf)
    z = z - z.max(-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(-1, keepdims=True)


def ctm_attention_reference(p, x, key_mask, heads, mode):
    """Eqs. 2-5 with explicit loops over examples, modalities, heads and modality pairs."""
    b_, m_, n_, d = x.shape
    dh = d // heads
    wq, wk, wv = (np.asarray(p[k]["kernel"], np.float64) for k in ("query", "key", "value"))
    wo = np.asarray(p["out"]["kernel"], np.float64)
    out = np.zeros((b_, m_, n_, d))
    for b in range(b_):
        q = [x[b, m] @ wq[m] for m in range(m_)]
        k = [x[b, m] @ wk[m] for m in range(m_)]
        v = [x[b, m] @ wv[m] for m in range(m_)]

        def attend(m, n, h, b=b, q=q, k=k, v=v):
            s = slice(h * dh, (h + 1) * dh)
            w = _np_softmax(q[m][:, s] @ k[n][:, s].T / np.sqrt(dh), key_mask[b][None, :])
            return w @ v[n][:, s]

        for m in range(m_):
            inner = np.concatenate([attend(m, m, h) for h in range(heads)], axis=-1)  # Eq. 3
            cross = np.mean([np.concatenate([attend(m, n, h) for h in range(heads)], axis=-1)
                             for n in range(m_) if n != m], axis=0)  # Eq. 4
            parts = {"both": [inner, cross], "inner": [inner], "cross": [cross]}[mode]
            out[b, m] = np.concatenate(parts, axis=-1) @ wo  # Eq. 5
    return out


@pytest.mark.parametrize("mode", ["both", "inner", "cross"])
def test_attention_matches_numpy_reference(mode):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((B, 3, T + 1, WIDTH)).astype(np.float32)
    key_mask = np.array([[1, 1, 1, 1, 1, 1], [1, 1, 0, 1, 0, 0]], bool)
    module = CTMAttention(num_heads=HEADS, mode=mode)
    params = random_variables(module, x, key_mask, seed=4)["params"]
    with jax.default_matmul_precision("highest"):
        got = np.asarray(JIT(module.apply)({"params": params}, x, key_mask))
    want = ctm_attention_reference(params, x.astype(np.float64), key_mask, HEADS, mode)
    np.testing.assert_allclose(got, want, atol=1e-5, rtol=1e-5)


def test_bfloat16_compute_close_to_float32(variables):
    feats, mask = make_inputs()
    bf16 = CTMClassifier(num_outputs=CLASSES, encoder=encoder(dtype=jnp.bfloat16))
    shapes = jax.eval_shape(bf16.init, jax.random.key(0), feats, mask)
    assert {a.dtype for a in jax.tree_util.tree_leaves(shapes)} == {jnp.dtype(jnp.float32)}
    assert (jax.tree_util.tree_structure(shapes)
            == jax.tree_util.tree_structure(variables))
    low = JIT(bf16.apply)(variables, feats, mask)
    high = APPLY(variables, feats, mask)
    assert low.dtype == jnp.float32
    scale = float(np.abs(np.asarray(high)).max())
    np.testing.assert_allclose(np.asarray(low), np.asarray(high), atol=0.05 * max(scale, 1.0))
    assert not np.allclose(np.asarray(low), np.asarray(high), atol=1e-7)  # really ran in bf16


def test_scan_equals_layer_by_layer(variables):
    feats, mask = make_inputs()
    p = variables["params"]["encoder"]
    want = ENC_APPLY({"params": p}, feats, mask)
    emb = MultimodalEmbedding(tuple(DIMS), WIDTH, 16)
    x, tmask = emb.apply({"params": p["embedding"]}, feats, mask)
    layer = CTMLayer(num_heads=HEADS, mlp_dim=4 * WIDTH)
    apply_layer = JIT(layer.apply)
    for i in range(LAYERS):
        pi = jax.tree_util.tree_map(lambda a, i=i: a[i], p["layers"])
        x, _ = apply_layer({"params": pi}, x, tmask)
    x = GroupLayerNorm().apply({"params": p["final_norm"]}, x)
    got = fusion_outputs(x, tmask, tuple(DIMS), "mean")
    for key in ("video", "pooled"):
        np.testing.assert_allclose(np.asarray(got[key]), np.asarray(want[key]), atol=1e-5)
    # and the layers really differ (params are not shared across depth)
    q = np.asarray(p["layers"]["attention"]["query"]["kernel"])
    assert not np.allclose(q[0], q[1])


def test_cross_modal_paths_and_per_modality_option():
    """Audio reaches the image tokens through cross-modal attention only."""
    feats, mask = make_inputs()
    both = {m: jnp.concatenate([feats[m], feats[m] + (m == "audio")]) for m in DIMS}
    both_mask = jnp.concatenate([mask, mask])
    for mode, share in (("inner", True), ("both", False)):
        enc = encoder(attention=mode, share_across_modalities=share, num_layers=1)
        params = random_variables(enc, both, both_mask)
        image = np.asarray(JIT(enc.apply)(params, both, both_mask)["tokens"]["image"])
        changed = not np.allclose(image[:B], image[B:], atol=1e-6)
        assert changed == (mode != "inner"), mode
        if not share:  # per-modality W_o, FFN and LayerNorms
            assert params["params"]["layers"]["mlp"]["dense_in"]["kernel"].shape == (
                1, 3, WIDTH, 4 * WIDTH)
            assert params["params"]["layers"]["attention"]["out"]["kernel"].shape == (
                1, 3, 2 * WIDTH, WIDTH)


def test_head_regression_and_errors(variables):
    pooled = jnp.ones((B, WIDTH))
    head = VideoHead(num_outputs=2)
    assert head.apply(head.init(jax.random.key(0), pooled), pooled).shape == (B, 2)
    feats, mask = make_inputs()
    enc = encoder()
    p = {"params": variables["params"]["encoder"]}
    with pytest.raises(KeyError):
        enc.apply(p, {m: feats[m] for m in ("image", "motion")}, mask)
    too_long, long_mask = make_inputs(t=17, lengths=(17, 17))
    with pytest.raises(ValueError, match="max_segments"):
        jax.eval_shape(enc.init, jax.random.key(0), too_long, long_mask)
    with pytest.raises(ValueError, match="divisible"):
        jax.eval_shape(encoder(num_heads=3).init, jax.random.key(0), feats, mask)
