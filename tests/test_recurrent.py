"""LSTM cell and masked scans: numpy step reference, scan vs Python loop, masking, vmap."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxaffect.nn.recurrent import (
    LSTMCell,
    MaskedLSTM,
    PerModalityLSTMs,
    keep_where,
    lstm_bias_init,
)

H = 4

# LLVM optimisation level 0 roughly halves XLA:CPU compile time of these small programs.
FAST = {"xla_backend_optimization_level": "0"}


def _jit(fn):
    return jax.jit(fn, compiler_options=FAST)


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _np_step(c, h, x_gates, w_hh):
    z = x_gates + h @ w_hh
    i, f, g, o = np.split(z, 4, axis=-1)
    c2 = _sigmoid(f) * c + _sigmoid(i) * np.tanh(g)
    return c2, _sigmoid(o) * np.tanh(c2)


def test_bias_init_sets_only_forget_gate():
    b = np.asarray(lstm_bias_init(1.0)(jax.random.key(0), (4 * H,)))
    np.testing.assert_array_equal(b[H:2 * H], 1.0)
    np.testing.assert_array_equal(np.delete(b, np.s_[H:2 * H]), 0.0)


@pytest.mark.parametrize("jit", [False, True])
def test_cell_matches_numpy_and_masks(jit):
    rng = np.random.default_rng(0)
    c, h = (rng.normal(size=(3, H)).astype(np.float32) for _ in range(2))
    xg = rng.normal(size=(3, 4 * H)).astype(np.float32)
    mask = np.array([True, False, True])
    cell = LSTMCell(H)
    params = cell.init(jax.random.key(0), (c, h), (xg, mask))
    apply = _jit(cell.apply) if jit else cell.apply
    with jax.default_matmul_precision("highest"):
        (c2, h2), out = apply(params, (c, h), (xg, mask))
    rc, rh = _np_step(c, h, xg, np.asarray(params["params"]["hh"]["kernel"]))
    np.testing.assert_allclose(c2[mask], rc[mask], atol=1e-5)
    np.testing.assert_allclose(h2[mask], rh[mask], atol=1e-5)
    np.testing.assert_array_equal(c2[~mask], c[~mask])  # masked step: carry unchanged
    np.testing.assert_array_equal(h2[~mask], h[~mask])
    np.testing.assert_array_equal(out, h2)


def test_keep_where_broadcasts_over_modalities():
    new, old = jnp.ones((2, 3, 4)), jnp.zeros((2, 3, 4))
    out = keep_where(jnp.array([True, False]), new, old)
    assert out[0].min() == 1 and out[1].max() == 0


def _data(b=3, t=6, k=5, m=None):
    rng = np.random.default_rng(1)
    shape = (b, t, k) if m is None else (b, t, m, k)
    x = rng.normal(size=shape).astype(np.float32)
    lengths = np.array([t, t - 2, 1])[:b]
    step_mask = np.arange(t)[None] < lengths[:, None]
    return x, step_mask


def test_masked_lstm_scan_matches_python_loop():
    x, sm = _data()
    model = MaskedLSTM(H)
    params = model.init(jax.random.key(0), x, sm)["params"]
    with jax.default_matmul_precision("highest"):
        hs, (c_t, h_t) = _jit(model.apply)({"params": params}, x, sm)
        # Reference: the same cell stepped in a Python loop with the same parameters.
        xg = x @ np.asarray(params["ih"]["kernel"]) + np.asarray(params["ih"]["bias"])
        carry = (np.zeros((3, H), np.float32),) * 2
        ref = []
        for t in range(x.shape[1]):
            carry, out = LSTMCell(H).apply({"params": params["cell"]}, carry, (xg[:, t], sm[:, t]))
            ref.append(out)
    np.testing.assert_allclose(hs, np.stack(ref, 1), atol=1e-5)
    np.testing.assert_allclose(h_t, carry[1], atol=1e-5)
    # Final state of a short clip is its state at its last real step.
    np.testing.assert_allclose(h_t[1], hs[1, 3], atol=0)
    np.testing.assert_allclose(h_t[2], hs[2, 0], atol=0)


def test_per_modality_lstms_match_separate_loops():
    m = 3
    x, sm = _data(m=m)
    model = PerModalityLSTMs(H)
    params = model.init(jax.random.key(0), x, sm)["params"]
    assert params["cell"]["hh"]["kernel"].shape == (m, H, 4 * H)
    # Separate weights per modality (independent initialisation keys).
    k = np.asarray(params["cell"]["hh"]["kernel"])
    assert not np.allclose(k[0], k[1])
    with jax.default_matmul_precision("highest"):
        hs, (_, h_t) = _jit(model.apply)({"params": params}, x, sm)
        for j in range(m):
            p = jax.tree.map(lambda a, j=j: a[j], params)
            xg = x[:, :, j] @ np.asarray(p["ih"]["kernel"]) + np.asarray(p["ih"]["bias"])
            carry = (np.zeros((3, H), np.float32),) * 2
            for t in range(x.shape[1]):
                carry, out = LSTMCell(H).apply({"params": p["cell"]}, carry, (xg[:, t], sm[:, t]))
                np.testing.assert_allclose(hs[:, t, j], out, atol=1e-5)
            np.testing.assert_allclose(h_t[:, j], carry[1], atol=1e-5)


@pytest.mark.parametrize("jit", [False, True])
def test_padding_does_not_change_final_state(jit):
    x, sm = _data(m=2)
    model = PerModalityLSTMs(H)
    params = model.init(jax.random.key(0), x, sm)
    apply = _jit(model.apply) if jit else model.apply
    _, (c1, h1) = apply(params, x, sm)
    garbage = np.full((3, 4) + x.shape[2:], 1e3, np.float32)
    xp = np.concatenate([x, garbage], axis=1)
    smp = np.concatenate([sm, np.zeros((3, 4), bool)], axis=1)
    _, (c2, h2) = apply(params, xp, smp)
    np.testing.assert_allclose(h1, h2, atol=1e-6)
    np.testing.assert_allclose(c1, c2, atol=1e-6)
