"""Losses against a numpy reference, jitted and un-jitted."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxaffect.families.perr.losses import perr_loss
from jaxaffect.losses import inverse_frequency_weights, softmax_cross_entropy


def _np_ce(logits, labels, weights=None, class_weights=None):
    logits = logits.astype(np.float64)
    lse = np.log(np.exp(logits - logits.max(1, keepdims=True)).sum(1)) + logits.max(1)
    nll = lse - logits[np.arange(len(labels)), labels]
    w = np.ones(len(labels)) if weights is None else weights.astype(np.float64)
    if class_weights is not None:
        w = w * class_weights[labels]
    return (w * nll).sum() / w.sum()


def _data(b=6, m=5, c=5, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(b, c)).astype(np.float32) * 3,
            rng.normal(size=(b, m, c)).astype(np.float32) * 3,
            rng.integers(0, c, size=b).astype(np.int32))


@pytest.mark.parametrize("jit", [False, True])
@pytest.mark.parametrize("use_w,use_cw", [(False, False), (True, False), (True, True)])
def test_cross_entropy_matches_numpy(jit, use_w, use_cw):
    logits, _, labels = _data()
    w = np.array([1, 1, 0, 1, 0, 1], np.float32) if use_w else None
    cw = np.array([0.5, 2.0, 1.0, 3.0, 1.5], np.float32) if use_cw else None
    fn = jax.jit(softmax_cross_entropy) if jit else softmax_cross_entropy
    got = fn(logits, labels, weights=w, class_weights=cw)
    np.testing.assert_allclose(got, _np_ce(logits, labels, w, cw), rtol=1e-5)
    assert got.dtype == jnp.float32


def test_padded_examples_do_not_count():
    logits, _, labels = _data()
    w = np.array([1, 1, 1, 0, 0, 0], np.float32)
    garbage = logits.copy()
    garbage[3:] = 1e6
    np.testing.assert_allclose(softmax_cross_entropy(garbage, labels, weights=w),
                               _np_ce(logits[:3], labels[:3]), rtol=1e-5)
    assert softmax_cross_entropy(logits, labels, weights=np.zeros(6, np.float32)) == 0.0


def test_bfloat16_logits_are_upcast():
    logits, _, labels = _data()
    got = softmax_cross_entropy(jnp.asarray(logits, jnp.bfloat16), labels)
    ref = _np_ce(np.asarray(jnp.asarray(logits, jnp.bfloat16).astype(jnp.float32)), labels)
    assert got.dtype == jnp.float32
    np.testing.assert_allclose(got, ref, rtol=1e-5)


@pytest.mark.parametrize("jit", [False, True])
def test_perr_loss_is_eq5(jit):
    logits, mod_logits, labels = _data()
    w = np.array([1, 0, 1, 1, 1, 1], np.float32)
    names = ["person_a", "person_b", "background", "audio", "text"]
    fn = (jax.jit(perr_loss, static_argnames="modality_names") if jit else perr_loss)
    loss, aux = fn(logits, mod_logits, labels, weights=w, modality_names=tuple(names))
    per_mod = [_np_ce(mod_logits[:, m], labels, w) for m in range(5)]
    ref = _np_ce(logits, labels, w) + sum(per_mod)
    np.testing.assert_allclose(loss, ref, rtol=1e-5)
    np.testing.assert_allclose(aux["ce_fused"], _np_ce(logits, labels, w), rtol=1e-5)
    np.testing.assert_allclose(aux["ce_modalities"], sum(per_mod), rtol=1e-5)
    for n, v in zip(names, per_mod, strict=True):
        np.testing.assert_allclose(aux[f"ce_modality/{n}"], v, rtol=1e-5)
    assert aux["loss"] is loss or np.allclose(aux["loss"], loss)


def test_perr_loss_gradient_is_finite_and_default_names():
    logits, mod_logits, labels = _data()
    _, aux = perr_loss(logits, mod_logits, labels)
    assert "ce_modality/4" in aux
    g = jax.grad(lambda lg, ml: perr_loss(lg, ml, labels)[0], argnums=(0, 1))(logits, mod_logits)
    # d CE / d logits rows sum to 0 (softmax - onehot) / B.
    np.testing.assert_allclose(np.asarray(g[0]).sum(1), 0.0, atol=1e-6)
    assert np.all(np.isfinite(g[1]))


def test_inverse_frequency_weights():
    w = inverse_frequency_weights([10, 30, 0, 60])
    np.testing.assert_allclose(w, [100 / 40, 100 / 120, 0.0, 100 / 240], rtol=1e-6)
    assert w.dtype == np.float32
    # Balanced: every seen class carries the same total weight.
    np.testing.assert_allclose(w[[0, 1, 3]] * np.array([10, 30, 60]), 25.0, rtol=1e-6)
    with pytest.raises(ValueError):
        inverse_frequency_weights([[1, 2]])
