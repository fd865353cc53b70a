"""PERR's LSTM layer with a hand-written backward pass: a numpy loop reference, gradients and
parameters equal to the generic scanned LSTM modules, jitted and un-jitted."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxaffect.families.perr.linear import Dense, linear
from jaxaffect.families.perr.recurrence import (
    MaskedLSTMLayer,
    PerModalityLSTMLayer,
    lstm_layer,
)
from jaxaffect.nn.recurrent import MaskedLSTM, PerModalityLSTMs

G, T, B, H = 3, 6, 4, 5
FAST = {"xla_backend_optimization_level": "0"}
MODES = [pytest.param(lambda f: f, id="eager"),
         pytest.param(lambda f: jax.jit(f, compiler_options=FAST), id="jit")]


def _mask() -> np.ndarray:
    mask = np.arange(T)[None] < np.array([T, 3, 1, 5])[:, None]
    mask[3, 2] = False  # a padded step inside the clip carries the state too
    return mask


def _inputs(seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(G, T, B, 4 * H)).astype(np.float32)
    bias = rng.normal(size=(G, 4 * H)).astype(np.float32)
    w = (0.5 * rng.normal(size=(G, H, 4 * H))).astype(np.float32)
    return x, bias, w


def _numpy_lstm(x, bias, w, mask):
    """Gate order i, f, g, o; padded steps keep (c, h) and output the carried h."""
    sig = lambda v: 1 / (1 + np.exp(-v))
    c, h = np.zeros((G, B, H)), np.zeros((G, B, H))
    hs = np.zeros((G, T, B, H))
    for t in range(T):
        gates = x[:, t] + bias[:, None] + np.einsum("gbh,ghk->gbk", h, w)
        i, f, g, o = np.split(gates, 4, axis=-1)
        c_new = sig(f) * c + sig(i) * np.tanh(g)
        h_new = sig(o) * np.tanh(c_new)
        keep = mask[None, :, t, None]
        c, h = np.where(keep, c_new, c), np.where(keep, h_new, h)
        hs[:, t] = h
    return hs, c, h


def _weighted(hs, c, h):
    """A loss that reads every output, so each cotangent is non-zero."""
    wt = np.cos(np.arange(hs.size).reshape(hs.shape))
    return jnp.sum(hs * wt) + jnp.sum(h ** 2) + jnp.sum(jnp.sin(c))


@pytest.mark.parametrize("mode", MODES)
def test_lstm_layer_matches_numpy_loop_and_scan_gradients(mode):
    x, bias, w = _inputs()
    mask = _mask()
    with jax.default_matmul_precision("highest"):
        hs, (c, h) = mode(lambda *a: lstm_layer(*a, mask))(x, bias, w)
        want = _numpy_lstm(x.astype(np.float64), bias, w, mask)
        for got, ref in zip((hs, c, h), want, strict=True):
            np.testing.assert_allclose(got, ref, atol=1e-5)

        # gradients against autodiff through the generic scanned LSTM (per-modality cell)
        def generic(x, bias, w):
            module = PerModalityLSTMs(H)
            params = {"params": {"ih": {"kernel": jnp.broadcast_to(jnp.eye(4 * H), (G, 4 * H,
                                                                               4 * H)),
                                        "bias": bias},
                                 "cell": {"hh": {"kernel": w}}}}
            hs, (c, h) = module.apply(params, jnp.transpose(x, (2, 1, 0, 3)), mask)
            back = lambda a: jnp.swapaxes(a, 0, 1)
            return _weighted(jnp.transpose(hs, (2, 1, 0, 3)), back(c), back(h))

        ours = lambda x, bias, w: _weighted(*jax.tree.leaves(lstm_layer(x, bias, w, mask)))
        g_ours = mode(jax.grad(ours, argnums=(0, 1, 2)))(x, bias, w)
        g_ref = jax.grad(generic, argnums=(0, 1, 2))(x, bias, w)
    for a, b in zip(g_ours, g_ref, strict=True):
        np.testing.assert_allclose(a, b, atol=2e-5, rtol=1e-5)
    assert float(jnp.abs(g_ours[0][:, 1:, 2]).max()) == 0.0  # example 2 ends after step 0


def test_layers_have_the_generic_modules_parameters_and_outputs():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(B, T, G, 7)).astype(np.float32)
    mask = _mask()
    for ours, generic, inp in ((PerModalityLSTMLayer(H), PerModalityLSTMs(H), x),
                               (MaskedLSTMLayer(H), MaskedLSTM(H), x[:, :, 0])):
        p_ours = jax.jit(ours.init)(jax.random.key(3), inp, mask)
        p_gen = jax.jit(generic.init)(jax.random.key(3), inp, mask)
        assert jax.tree.structure(p_ours) == jax.tree.structure(p_gen)
        for a, b in zip(jax.tree.leaves(p_ours), jax.tree.leaves(p_gen), strict=True):
            np.testing.assert_array_equal(a, b)  # same initial values, not only shapes
        with jax.default_matmul_precision("highest"):
            got = ours.apply(p_gen, inp, mask)
            hs, (_, h) = generic.apply(p_gen, inp, mask)
        np.testing.assert_allclose(got, h if isinstance(ours, PerModalityLSTMLayer) else hs,
                                   atol=1e-5)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("k,n", [(3, 7), (7, 3)])  # either operand is the narrower one
def test_linear_gradients_equal_the_plain_matmul(mode, k, n):
    rng = np.random.default_rng(2)
    x, w = rng.normal(size=(2, 4, k)).astype(np.float32), rng.normal(size=(k, n)).astype(
        np.float32)
    xg, wg = rng.normal(size=(G, 2, 4, k)).astype(np.float32), rng.normal(
        size=(G, k, n)).astype(np.float32)
    loss = lambda y: jnp.sum(jnp.sin(y) * jnp.cos(jnp.arange(y.size).reshape(y.shape)))
    with jax.default_matmul_precision("highest"):
        for args, plain in (((x, w), lambda x, w: x @ w),
                            ((xg, wg), lambda x, w: jnp.einsum("gtbk,gkn->gtbn", x, w))):
            np.testing.assert_allclose(mode(linear)(*args), plain(*args), atol=1e-5)
            got = mode(jax.grad(lambda *a: loss(linear(*a)), argnums=(0, 1)))(*args)
            want = jax.grad(lambda *a, f=plain: loss(f(*a)), argnums=(0, 1))(*args)
            for a, b in zip(got, want, strict=True):
                np.testing.assert_allclose(a, b, atol=1e-5)
            # only the kernel differentiated: its gradient alone, no unused input gradient
            gw = mode(jax.grad(lambda w, x: loss(linear(x, w))))(args[1], args[0])
            np.testing.assert_allclose(gw, want[1], atol=1e-5)


def test_dense_is_flax_dense():
    import flax.linen as nn

    x = np.random.default_rng(4).normal(size=(2, 3, 6)).astype(np.float32)
    ours, flax_dense = Dense(5).init(jax.random.key(7), x), nn.Dense(5).init(jax.random.key(7),
                                                                               x)
    for a, b in zip(jax.tree.leaves(ours), jax.tree.leaves(flax_dense), strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(Dense(5).apply(ours, x), nn.Dense(5).apply(ours, x), atol=1e-6)
