"""PERRModel: shapes of every Table 3 variant, masking, scan vs loop, jit parity, gradients."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxaffect.families.perr.attention import ATTENTION_KINDS, make_attention
from jaxaffect.families.perr.erato_format import STREAMS
from jaxaffect.families.perr.losses import perr_loss
from jaxaffect.families.perr.model import PERRModel
from jaxaffect.nn.recurrent import LSTMCell

B, T, D, M, C = 3, 5, 8, 5, 5
# Tests compile many small programs; LLVM optimisation level 0 halves XLA:CPU compile time.
FAST = {"xla_backend_optimization_level": "0"}


def _jit(fn):
    return jax.jit(fn, compiler_options=FAST)
DIMS = dict(zip(STREAMS, (6, 6, 7, 4, 3), strict=True))
VARIANTS = ([("lstm", "dot")] + [("attention", a) for a in ATTENTION_KINDS]
            + [("smta", a) for a in ATTENTION_KINDS])
LENGTHS = np.array([T, 3, 1])
# Each variant costs a few seconds of compilation; the Table 3 rows that share their code paths
# with another row are marked slow, so `-m "not slow"` keeps one row per fusion + every SMTA row.
_CORE = {("lstm", "dot"), ("attention", "transformer")} | {("smta", a) for a in ATTENTION_KINDS}
VARIANT_PARAMS = [pytest.param(f, a, marks=() if (f, a) in _CORE else pytest.mark.slow)
                  for f, a in VARIANTS]


def _batch(seed=0, t=T):
    rng = np.random.default_rng(seed)
    step = np.arange(t)[None] < LENGTHS[:, None]
    streams = {s: rng.normal(size=(B, t, d)).astype(np.float32) for s, d in DIMS.items()}
    masks = {s: (rng.random((B, t)) > 0.3) & step for s in STREAMS}
    masks["text"][0, 1] = False
    masks["audio"][1] = False  # a stream absent for a whole clip
    for s in STREAMS:  # the data pipeline zero-pads absent features
        streams[s] = np.where(masks[s][..., None], streams[s], 0.0).astype(np.float32)
    return streams, masks, step


def _model(fusion, attention, **kw):
    return PERRModel(fusion=fusion, attention=attention, hidden_size=D, num_heads=2,
                     num_classes=C, **kw)


def _random_params(model, seed=0):
    """Parameters of the model's shapes drawn with numpy (no init program to compile)."""
    shapes = jax.eval_shape(model.init, jax.random.key(0), *_batch())["params"]
    rng = np.random.default_rng(seed)
    return jax.tree.map(lambda x: (0.4 * rng.normal(size=x.shape)).astype(np.float32), shapes)


@functools.cache
def _setup(fusion, attention):
    model = _model(fusion, attention)
    apply = _jit(lambda p, s, m, st: model.apply({"params": p}, s, m, st, return_attention=True))
    return model, _random_params(model), apply


def _grad_fn(model):
    """Jitted (loss, outputs), grads of Eq. 5 in eval mode (one compile serves both checks)."""
    labels = jnp.array([0, 3, 4])

    def loss_fn(p, streams, masks, step):
        out = model.apply({"params": p}, streams, masks, step, return_attention=True)
        return perr_loss(out["logits"], out["modality_logits"], labels)[0], out

    return _jit(jax.value_and_grad(loss_fn, has_aux=True))


@pytest.mark.parametrize("fusion,attention", VARIANT_PARAMS)
def test_variant_shapes_masking_and_gradients(fusion, attention):
    model, params, apply = _setup(fusion, attention)
    streams, masks, step = _batch()
    (loss, out), grads = _grad_fn(model)(params, streams, masks, step)
    assert out["logits"].shape == (B, C) and out["logits"].dtype == jnp.float32
    assert out["modality_logits"].shape == (B, M, C)
    assert np.all(np.isfinite(out["logits"])) and np.all(np.isfinite(out["modality_logits"]))

    # Gradients are finite, and every stream projection receives some.
    leaves = jax.tree.leaves(grads)
    assert np.isfinite(loss)
    assert all(np.all(np.isfinite(g)) for g in leaves)
    for s in STREAMS:
        assert float(jnp.abs(grads[f"proj_{s}"]["kernel"]).sum()) > 0

    # Attention rows sum to 1 over present keys on real steps; zero on padded steps.
    if fusion == "lstm":
        assert "attention" not in out
    else:
        n = M + 1 if fusion == "smta" else M
        w = np.asarray(out["attention"])
        assert w.shape == (B, T, n, n)
        key_mask = np.stack([masks[s] for s in STREAMS], -1)
        if fusion == "smta":
            key_mask = np.concatenate([key_mask, step[..., None]], -1)
        for b in range(B):
            for t in range(T):
                if not step[b, t]:
                    np.testing.assert_array_equal(w[b, t], 0.0)  # padded step
                    continue
                for i in np.flatnonzero(key_mask[b, t]):
                    np.testing.assert_allclose(w[b, t, i].sum(), 1.0, atol=1e-5)
                np.testing.assert_array_equal(w[b, t][:, ~key_mask[b, t]], 0.0)

    # Padding invariance and absent-feature invariance in one call: the same clips with 3 extra
    # padded steps, and garbage wherever a stream is absent or the step is padding.
    pad = 3
    s2 = {k: np.concatenate([np.where(masks[k][..., None], streams[k], 1e4),
                             np.full((B, pad, DIMS[k]), -1e4)], 1).astype(np.float32)
          for k in STREAMS}
    m2 = {k: np.concatenate([masks[k], np.ones((B, pad), bool)], 1) for k in STREAMS}
    out2 = apply(params, s2, m2, np.concatenate([step, np.zeros((B, pad), bool)], 1))
    np.testing.assert_allclose(out2["logits"], out["logits"], atol=1e-6)
    np.testing.assert_allclose(out2["modality_logits"], out["modality_logits"], atol=1e-6)
    if "attention" in out:
        np.testing.assert_allclose(out2["attention"][:, :T], out["attention"], atol=1e-6)
        np.testing.assert_array_equal(out2["attention"][:, T:], 0.0)


def test_dropout_only_in_training():
    model, params, apply = _setup("smta", "transformer")
    batch = _batch()
    fn = _jit(lambda p, key: model.apply({"params": p}, *batch, train=True,
                                         rngs={"dropout": key})["logits"])
    a, b = fn(params, jax.random.key(1)), fn(params, jax.random.key(2))
    assert np.all(np.isfinite(a)) and not np.allclose(a, b)
    assert not np.allclose(a, apply(params, *batch)["logits"])


def test_init_and_jit_matches_eager():
    # Real initialisation of the cheapest variant (eager execution compiles op by op).
    model = _model("lstm", "dot")
    streams, masks, step = _batch()
    params = _jit(model.init)(jax.random.key(0), streams, masks, step)["params"]
    # Forget-gate biases start at 1, the other gate biases at 0.
    np.testing.assert_array_equal(params["lstm_fusion"]["lstm"]["ih"]["bias"][D:2 * D], 1.0)
    np.testing.assert_array_equal(params["temporal"]["ih"]["bias"][:, D:2 * D], 1.0)
    np.testing.assert_array_equal(params["temporal"]["ih"]["bias"][:, :D], 0.0)
    eager = model.apply({"params": params}, streams, masks, step)
    jitted = _jit(model.apply)({"params": params}, streams, masks, step)
    for k in eager:
        np.testing.assert_allclose(eager[k], jitted[k], atol=1e-5)


def test_smta_scan_matches_python_loop(attention="transformer"):
    """The scanned SMTA stage against Eq. 1 + attention stepped in a Python loop."""
    from jaxaffect.families.perr.model import SMTAFusion

    rng = np.random.default_rng(2)
    f = rng.normal(size=(B, T, M, D)).astype(np.float32)
    step = np.arange(T)[None] < LENGTHS[:, None]
    tok = (rng.random((B, T, M)) > 0.3) & step[..., None]
    f = np.where(tok[..., None], f, 0.0).astype(np.float32)
    stage = SMTAFusion(D, attention, num_heads=2)
    p = _jit(stage.init)(jax.random.key(0), f, tok, step)["params"]
    with jax.default_matmul_precision("highest"):
        g, w = _jit(stage.apply)({"params": p}, f, tok, step)
        xg = f.sum(2) @ np.asarray(p["lstm_ih"]["kernel"]) + np.asarray(p["lstm_ih"]["bias"])
        attn = make_attention(attention, num_heads=2)
        carry = (np.zeros((B, D), np.float32),) * 2
        for t in range(T):
            carry, h = LSTMCell(D).apply({"params": p["cell"]["lstm"]}, carry,
                                         (xg[:, t], step[:, t]))
            z = np.concatenate([f[:, t], np.asarray(h)[:, None]], 1)
            zmask = np.concatenate([tok[:, t], step[:, t, None]], 1)
            zf, wt = attn.apply({"params": p["cell"]["attn"]}, z, zmask)
            ref_g = np.concatenate([np.repeat(np.asarray(h)[:, None], M, 1), zf[:, :M]], -1)
            real = step[:, t]
            np.testing.assert_allclose(g[real, t], ref_g[real], atol=2e-5)
            np.testing.assert_allclose(w[:, t], wt, atol=1e-5)
    assert g.shape == (B, T, M, 2 * D) and w.shape == (B, T, M + 1, M + 1)


def test_lstm_baseline_is_smta_without_attention():
    """g^m_t = [h~_t, f^m_t]: modality logits differ only through the f^m part."""
    model, params, _ = _setup("lstm", "dot")
    assert params["temporal"]["ih"]["kernel"].shape == (M, 2 * D, 4 * D)
    assert params["modality_heads"]["kernel"].shape == (M, D, C)  # separate FC per modality
    _, p2, _ = _setup("attention", "dot")
    assert p2["temporal"]["ih"]["kernel"].shape == (M, D, 4 * D)
    assert "lstm_fusion" not in p2 and "smta" not in p2


def test_bfloat16_compute_close_to_float32():
    streams, masks, step = _batch()
    params = _setup("smta", "dot")[1]
    m16 = _model("smta", "dot", dtype=jnp.bfloat16)
    o32 = _setup("smta", "dot")[2](params, streams, masks, step)
    o16 = _jit(m16.apply)({"params": params}, streams, masks, step)
    assert o16["logits"].dtype == jnp.float32
    np.testing.assert_allclose(o16["logits"], o32["logits"], atol=0.1)


def test_bad_configuration_raises():
    with pytest.raises(ValueError, match="unknown fusion"):
        _model("gru", "dot").init(jax.random.key(0), *_batch())
    with pytest.raises(ValueError, match="unknown attention"):
        _model("smta", "cosine").init(jax.random.key(0), *_batch())


@pytest.mark.parametrize("attention", ["transformer", "nonlocal"])
def test_parallel_smta_equals_step_by_step_cell(attention):
    """The default implementation (attention outside the scan) is the paper's cell, exactly."""
    scan_model = _model("smta", attention, smta_impl="scan")
    par_model = _model("smta", attention, smta_impl="parallel")
    streams, masks, step = _batch(3)
    shapes = jax.tree.map(lambda x: (x.shape, x.dtype), jax.eval_shape(
        scan_model.init, jax.random.key(0), streams, masks, step)["params"])
    assert shapes == jax.tree.map(lambda x: (x.shape, x.dtype), jax.eval_shape(
        par_model.init, jax.random.key(0), streams, masks, step)["params"])
    params = _random_params(scan_model, seed=4)
    with jax.default_matmul_precision("highest"):
        outs = [_jit(lambda p, m=m: m.apply({"params": p}, streams, masks, step,
                                            return_attention=True))(params)
                for m in (scan_model, par_model)]
    for key in ("logits", "modality_logits", "attention"):
        np.testing.assert_allclose(outs[0][key], outs[1][key], atol=2e-5, rtol=1e-5)
