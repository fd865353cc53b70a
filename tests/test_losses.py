"""Shared losses against a numpy reference, jitted and un-jitted (PERR's Eq. 5 loss:
tests/families/perr/test_perr_loss.py)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxaffect.losses import inverse_frequency_weights, softmax_cross_entropy
from jaxaffect.testing import numpy_cross_entropy, random_logits


@pytest.mark.parametrize("jit", [False, True])
@pytest.mark.parametrize("use_w,use_cw", [(False, False), (True, False), (True, True)])
def test_cross_entropy_matches_numpy(jit, use_w, use_cw):
    logits, _, labels = random_logits()
    w = np.array([1, 1, 0, 1, 0, 1], np.float32) if use_w else None
    cw = np.array([0.5, 2.0, 1.0, 3.0, 1.5], np.float32) if use_cw else None
    fn = jax.jit(softmax_cross_entropy) if jit else softmax_cross_entropy
    got = fn(logits, labels, weights=w, class_weights=cw)
    np.testing.assert_allclose(got, numpy_cross_entropy(logits, labels, w, cw), rtol=1e-5)
    assert got.dtype == jnp.float32


def test_padded_examples_do_not_count():
    logits, _, labels = random_logits()
    w = np.array([1, 1, 1, 0, 0, 0], np.float32)
    garbage = logits.copy()
    garbage[3:] = 1e6
    np.testing.assert_allclose(softmax_cross_entropy(garbage, labels, weights=w),
                               numpy_cross_entropy(logits[:3], labels[:3]), rtol=1e-5)
    assert softmax_cross_entropy(logits, labels, weights=np.zeros(6, np.float32)) == 0.0


def test_bfloat16_logits_are_upcast():
    logits, _, labels = random_logits()
    got = softmax_cross_entropy(jnp.asarray(logits, jnp.bfloat16), labels)
    rounded = np.asarray(jnp.asarray(logits, jnp.bfloat16).astype(jnp.float32))
    ref = numpy_cross_entropy(rounded, labels)
    assert got.dtype == jnp.float32
    np.testing.assert_allclose(got, ref, rtol=1e-5)


def test_inverse_frequency_weights():
    w = inverse_frequency_weights([10, 30, 0, 60])
    np.testing.assert_allclose(w, [100 / 40, 100 / 120, 0.0, 100 / 240], rtol=1e-6)
    assert w.dtype == np.float32
    # Balanced: every seen class carries the same total weight.
    np.testing.assert_allclose(w[[0, 1, 3]] * np.array([10, 30, 60]), 25.0, rtol=1e-6)
    with pytest.raises(ValueError):
        inverse_frequency_weights([[1, 2]])
