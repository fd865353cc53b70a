"""Attention forms over modality tokens: masking rules, numpy reference, jit parity."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxaffect.families.perr.attention import (
    ATTENTION_KINDS,
    PrefixTransformerLayer,
    make_attention,
)
from jaxaffect.nn.attention import masked_softmax

B, N, D = 3, 5, 8
# example 0: all present; example 1: tokens 1 and 3 absent; example 2: nothing present.
MASK = np.array([[1, 1, 1, 1, 1], [1, 0, 1, 0, 1], [0, 0, 0, 0, 0]], bool)

# LLVM optimisation level 0 roughly halves XLA:CPU compile time of these small programs.
FAST = {"xla_backend_optimization_level": "0"}


def _jit(fn):
    return jax.jit(fn, compiler_options=FAST)


def _tokens(seed=0):
    x = np.random.default_rng(seed).normal(size=(B, N, D)).astype(np.float32)
    return np.where(MASK[..., None], x, 0.0).astype(np.float32)


def _init(kind):
    mod = make_attention(kind, num_heads=2, dropout_rate=0.1)
    params = mod.init(jax.random.key(0), _tokens(), MASK)
    return mod, params


@pytest.mark.parametrize("kind", ATTENTION_KINDS)
def test_masking_rules(kind):
    mod, params = _init(kind)
    apply = _jit(lambda p, x, m: mod.apply(p, x, m))
    out, w = apply(params, _tokens(), MASK)
    out, w = np.asarray(out), np.asarray(w)
    assert out.shape == (B, N, D) and w.shape == (B, N, N)
    assert np.all(np.isfinite(out)) and np.all(np.isfinite(w))
    # Present queries: weights sum to 1 over present keys, 0 on absent keys.
    for b in range(B):
        for i in range(N):
            if MASK[b, i]:
                np.testing.assert_allclose(w[b, i].sum(), 1.0, atol=1e-5)
                np.testing.assert_array_equal(w[b, i, ~MASK[b]], 0.0)
            else:  # absent query: zero row, zero output
                np.testing.assert_array_equal(w[b, i], 0.0)
                np.testing.assert_array_equal(out[b, i], 0.0)
    np.testing.assert_array_equal(out[2], 0.0)  # every key masked: zeros, no NaN
    # Garbage in absent tokens changes nothing.
    garbage = np.where(MASK[..., None], _tokens(), 1e4).astype(np.float32)
    out2, w2 = apply(params, garbage, MASK)
    np.testing.assert_allclose(out2, out, atol=1e-5)
    np.testing.assert_allclose(w2, w, atol=1e-6)


@pytest.mark.parametrize("kind", ["dot", "multihead"])
def test_jit_matches_eager(kind):
    mod, params = _init(kind)
    a = mod.apply(params, _tokens(), MASK)
    b = _jit(mod.apply)(params, _tokens(), MASK)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_allclose(x, y, atol=1e-6)


def _np_softmax(z, mask):
    z = np.where(mask, z, -np.inf)
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def test_dot_product_matches_numpy():
    mod, params = _init("dot")
    p = jax.tree.map(np.asarray, params["params"])
    x = _tokens()
    with jax.default_matmul_precision("highest"):
        out, w = mod.apply(params, x, MASK)
    proj = {n: x @ p[n]["kernel"] + p[n]["bias"] for n in ("query", "key", "value")}
    for b in (0, 1):
        logits = proj["query"][b] @ proj["key"][b].T / np.sqrt(D)
        ref_w = _np_softmax(logits, MASK[b][None, :]) * MASK[b][:, None]
        np.testing.assert_allclose(w[b], ref_w, atol=1e-5)
        np.testing.assert_allclose(out[b], (ref_w @ proj["value"][b]) * MASK[b][:, None],
                                   atol=1e-5)


def test_multihead_weights_are_head_average():
    mod, params = _init("multihead")
    p = jax.tree.map(np.asarray, params["params"])
    x = _tokens()
    with jax.default_matmul_precision("highest"):
        out, w = mod.apply(params, x, MASK)
    proj = {n: (x @ p[n]["kernel"] + p[n]["bias"]).reshape(B, N, 2, D // 2)
            for n in ("query", "key", "value")}
    b = 0
    heads = [_np_softmax(proj["query"][b, :, h] @ proj["key"][b, :, h].T / np.sqrt(D // 2),
                         MASK[b][None]) for h in range(2)]
    np.testing.assert_allclose(w[b], np.mean(heads, 0), atol=1e-5)
    concat = np.concatenate([heads[h] @ proj["value"][b, :, h] for h in range(2)], -1)
    np.testing.assert_allclose(out[b], concat @ p["out"]["kernel"] + p["out"]["bias"], atol=1e-5)


def test_nonlocal_is_residual():
    mod, params = _init("nonlocal")
    zeroed = jax.tree.map(jnp.zeros_like, params)
    out, _ = mod.apply(zeroed, _tokens(), MASK)  # W_z = 0 -> identity on present tokens
    np.testing.assert_allclose(out, _tokens(), atol=0)


def test_transformer_dropout_only_in_training():
    mod, params = _init("transformer")
    x = _tokens()
    a, _ = mod.apply(params, x, MASK)
    b, _ = mod.apply(params, x, MASK, deterministic=True)
    c, _ = mod.apply(params, x, MASK, deterministic=False, rngs={"dropout": jax.random.key(3)})
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a[:2], c[:2])
    np.testing.assert_array_equal(np.asarray(c)[~MASK], 0.0)


def test_masked_softmax_all_masked_is_zero_not_nan():
    # The core masks broadcast to the logits [B, H, Nq, Nk]: keys [B, 1, 1, Nk], queries
    # [B, 1, Nq, 1].
    w = masked_softmax(jnp.zeros((1, 1, 3, 3)), jnp.zeros((1, 1, 1, 3), bool),
                       jnp.ones((1, 1, 3, 1), bool))
    np.testing.assert_array_equal(w, 0.0)


def test_unknown_kind_raises():
    with pytest.raises(ValueError, match="unknown attention"):
        make_attention("cosine")


@pytest.mark.parametrize("mode", [lambda f: f, _jit], ids=["eager", "jit"])
def test_prefix_transformer_is_the_layer_without_the_last_outputs(mode):
    """Same parameters, outputs of the first N-1 tokens, weights and dropout draws."""
    full = make_attention("transformer", num_heads=2, dropout_rate=0.3)
    prefix = PrefixTransformerLayer(num_heads=2, dropout_rate=0.3)
    x = _tokens()
    params = full.init(jax.random.key(0), x, MASK)
    p2 = prefix.init(jax.random.key(0), x, MASK, N - 1)
    for a, b in zip(jax.tree.leaves(params), jax.tree.leaves(p2), strict=True):
        np.testing.assert_array_equal(a, b)  # same tree and initial values
    assert jax.tree.structure(params) == jax.tree.structure(p2)
    rngs = {"dropout": jax.random.key(5)}
    with jax.default_matmul_precision("highest"):
        for det in (True, False):
            want, w_want = mode(lambda p, x, d=det: full.apply(p, x, MASK, deterministic=d,
                                                              rngs=rngs))(params, x)
            got, w_got = mode(lambda p, x, d=det: prefix.apply(p, x, MASK, N - 1,
                                                               deterministic=d,
                                                               rngs=rngs))(params, x)
            assert got.shape == (B, N - 1, D)
            np.testing.assert_allclose(got, want[:, :N - 1], atol=1e-5)
            np.testing.assert_allclose(w_got, w_want, atol=1e-6)
