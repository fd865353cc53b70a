"""Tests of the CAF layer (Eqs. 4-7) and the Table 8 fusion strategies against numpy references."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxaffect.families.avcpnet.fusion import FUSIONS, CAFLayer, make_fusion
from jaxaffect.testing import eager_and_jitted, random_variables

C1, HEADS = 8, 4


def dense(p, x):
    return x @ np.asarray(p["kernel"], np.float64) + np.asarray(p["bias"], np.float64)


def numpy_cross(p, x, y, key_mask, query_mask):
    """Multi-head attention for one example, loops over heads and queries."""
    q, k, v = dense(p["query"], x), dense(p["key"], y), dense(p["value"], y)
    dh = x.shape[-1] // HEADS
    out = np.zeros_like(q)
    for i in range(x.shape[0]):
        if not query_mask[i] or not key_mask.any():
            continue
        heads = []
        for h in range(HEADS):
            sl = slice(h * dh, (h + 1) * dh)
            logits = np.array([q[i, sl] @ k[j, sl] / np.sqrt(dh) if key_mask[j] else -np.inf
                               for j in range(y.shape[0])])
            w = np.exp(logits - logits.max())
            heads.append((w / w.sum()) @ v[:, sl])
        out[i] = dense(p["out"], np.concatenate(heads))
    return out


def numpy_caf(p, x_v, x_a, mask_v, mask_a, res_v=None, res_a=None):
    outs = []
    for b in range(x_v.shape[0]):
        att_v = numpy_cross(p["attend_visual"], x_v[b], x_a[b], mask_a[b], mask_v[b])
        att_a = numpy_cross(p["attend_audio"], x_a[b], x_v[b], mask_v[b], mask_a[b])
        pair = []
        for x, att, m, res, delta in ((x_v[b], att_v, mask_v[b], res_v, "delta_visual"),
                                      (x_a[b], att_a, mask_a[b], res_a, "delta_audio")):
            cat = np.concatenate([x, att], -1)[m]
            sigma = cat.mean(0) if len(cat) else np.zeros(cat.shape[-1])
            r = (x[m].mean(0) if m.any() else np.zeros(x.shape[-1])) if res is None else res[b]
            pair.append(dense(p[delta], sigma) + r)
        outs.append(pair)
    return np.stack([o[0] for o in outs]), np.stack([o[1] for o in outs])


def tokens(b, n, seed):
    return np.random.default_rng(seed).normal(size=(b, n, C1))


def test_caf_segments_matches_loop_with_masks():
    x_v, x_a = tokens(3, 4, 0), tokens(3, 5, 1)
    mask_v = np.ones((3, 4), bool)
    mask_v[1, 2:] = False
    mask_a = np.ones((3, 5), bool)
    mask_a[0, 3:] = False
    mask_a[2] = False  # no audio at all: visual side attends to nothing
    res_v, res_a = tokens(3, 1, 2)[:, 0], tokens(3, 1, 3)[:, 0]
    layer = CAFLayer(HEADS)
    f32 = lambda a: jnp.asarray(a, jnp.float32)  # noqa: E731
    variables = random_variables(layer, f32(x_v), f32(x_a))
    garbage_a = np.where(mask_a[..., None], x_a, 1e3)  # masked tokens never matter

    def run(v, xv, xa, mv, ma, rv, ra):
        return layer.apply(v, xv, xa, res_v=rv, res_a=ra, mask_v=mv, mask_a=ma)

    (ev, ea), (jv, ja) = eager_and_jitted(run, variables, f32(x_v), f32(garbage_a),
                                          jnp.asarray(mask_v), jnp.asarray(mask_a),
                                          f32(res_v), f32(res_a))
    want_v, want_a = numpy_caf(variables["params"], x_v, x_a, mask_v, mask_a, res_v, res_a)
    for got_v, got_a in ((ev, ea), (jv, ja)):
        np.testing.assert_allclose(np.asarray(got_v), want_v, rtol=1e-5, atol=1e-5)
        # example 2 has no audio token: its audio side is delta(0) + residual by construction
        np.testing.assert_allclose(np.asarray(got_a), want_a, rtol=1e-5, atol=1e-5)
    # default residuals are the masked token means; default masks all present
    got = layer.apply(variables, f32(x_v), f32(x_a))
    want = numpy_caf(variables["params"], x_v, x_a, np.ones((3, 4), bool), np.ones((3, 5), bool))
    np.testing.assert_allclose(np.asarray(got[0]), want[0], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(np.asarray(got[1]), want[1], rtol=1e-5, atol=1e-5)


def test_caf_single_token_closed_form_and_sown_weights():
    """One token per modality: softmax over one key is 1, so the attended features are
    W_o(W_v y + b_v) + b_o and the query/key projections get no gradient."""
    f_v, f_a = tokens(4, 1, 5)[:, 0], tokens(4, 1, 6)[:, 0]
    layer = CAFLayer(HEADS)
    x_v, x_a = jnp.asarray(f_v[:, None], jnp.float32), jnp.asarray(f_a[:, None], jnp.float32)
    variables = random_variables(layer, x_v, x_a, seed=3)
    p = variables["params"]
    (got_v, got_a), inter = layer.apply(variables, x_v, x_a, mutable=["intermediates"])
    att_v = dense(p["attend_visual"]["out"], dense(p["attend_visual"]["value"], f_a))
    att_a = dense(p["attend_audio"]["out"], dense(p["attend_audio"]["value"], f_v))
    want_v = dense(p["delta_visual"], np.concatenate([f_v, att_v], -1)) + f_v
    want_a = dense(p["delta_audio"], np.concatenate([f_a, att_a], -1)) + f_a
    np.testing.assert_allclose(np.asarray(got_v), want_v, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(np.asarray(got_a), want_a, rtol=1e-5, atol=1e-5)
    w = np.asarray(inter["intermediates"]["caf_visual_to_audio"][0])
    assert w.shape == (4, HEADS, 1, 1) and np.all(w == 1.0)
    grads = jax.jit(jax.grad(lambda v: sum(jnp.sum(o ** 2) for o in layer.apply(v, x_v, x_a))))(
        variables)
    g = grads["params"]
    for side in ("attend_visual", "attend_audio"):
        for name in ("query", "key"):
            assert np.all(np.asarray(g[side][name]["kernel"]) == 0.0)
        assert np.any(np.asarray(g[side]["value"]["kernel"]) != 0.0)


def test_caf_bf16_close_to_float32():
    x_v = jnp.asarray(tokens(2, 3, 7), jnp.float32)
    x_a = jnp.asarray(tokens(2, 4, 8), jnp.float32)
    variables = random_variables(CAFLayer(HEADS), x_v, x_a)
    out32 = CAFLayer(HEADS).apply(variables, x_v, x_a)
    out16 = jax.jit(CAFLayer(HEADS, jnp.bfloat16).apply)(variables, x_v, x_a)
    for a, b in zip(out32, out16):
        assert b.dtype == jnp.bfloat16
        np.testing.assert_allclose(np.asarray(b, np.float32), np.asarray(a), rtol=0.05, atol=0.05)


def numpy_fusion(kind, p, f_v, f_a):
    cat = np.concatenate([f_v, f_a], -1)
    if kind == "sum":
        return dense(p["fc_visual"], f_v) + dense(p["fc_audio"], f_a)
    if kind == "concat":
        return dense(p["fc"], cat)
    if kind == "ew_sum":
        return f_v + f_a
    if kind == "neural":
        return np.maximum(dense(p["fc"], cat), 0.0)
    return 1.0 / (1.0 + np.exp(-dense(p["fc_gate"], f_v))) * dense(p["fc_value"], f_a)


@pytest.mark.parametrize("kind", sorted(FUSIONS))
def test_fusions_match_numpy(kind):
    f_v, f_a = tokens(5, 1, 9)[:, 0], tokens(5, 1, 10)[:, 0]
    module = make_fusion(kind, C1)
    args = (jnp.asarray(f_v, jnp.float32), jnp.asarray(f_a, jnp.float32))
    variables = random_variables(module, *args) if kind != "ew_sum" else {}
    eager, jitted = eager_and_jitted(lambda v, a, b: module.apply(v, a, b), variables, *args)
    want = numpy_fusion(kind, variables.get("params", {}), f_v, f_a)
    assert eager.shape == (5, C1)
    np.testing.assert_allclose(np.asarray(eager), want, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(np.asarray(jitted), want, rtol=1e-5, atol=1e-5)


def test_gated_by_audio_and_errors():
    f_v, f_a = tokens(2, 1, 11)[:, 0], tokens(2, 1, 12)[:, 0]
    module = FUSIONS["gated"](features=6, gate_by="audio")
    args = (jnp.asarray(f_v, jnp.float32), jnp.asarray(f_a, jnp.float32))
    variables = random_variables(module, *args)
    p = variables["params"]
    want = 1.0 / (1.0 + np.exp(-dense(p["fc_gate"], f_a))) * dense(p["fc_value"], f_v)
    np.testing.assert_allclose(np.asarray(module.apply(variables, *args)), want, rtol=1e-5,
                               atol=1e-5)
    with pytest.raises(ValueError, match="fusion='max'"):
        make_fusion("max", 4)
    with pytest.raises(ValueError, match="ew_sum"):
        make_fusion("ew_sum", 6).init(jax.random.key(0), *args)
