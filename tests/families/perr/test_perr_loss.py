"""PERR's loss (paper Eq. 5: fused plus per-modality cross-entropy) against a numpy
reference, jitted and un-jitted."""

import jax
import numpy as np
import pytest

from jaxaffect.families.perr.losses import perr_loss
from jaxaffect.testing import numpy_cross_entropy, random_logits


@pytest.mark.parametrize("jit", [False, True])
def test_perr_loss_is_eq5(jit):
    logits, mod_logits, labels = random_logits()
    w = np.array([1, 0, 1, 1, 1, 1], np.float32)
    names = ["person_a", "person_b", "background", "audio", "text"]
    fn = (jax.jit(perr_loss, static_argnames="modality_names") if jit else perr_loss)
    loss, aux = fn(logits, mod_logits, labels, weights=w, modality_names=tuple(names))
    per_mod = [numpy_cross_entropy(mod_logits[:, m], labels, w) for m in range(5)]
    ref = numpy_cross_entropy(logits, labels, w) + sum(per_mod)
    np.testing.assert_allclose(loss, ref, rtol=1e-5)
    np.testing.assert_allclose(aux["ce_fused"], numpy_cross_entropy(logits, labels, w), rtol=1e-5)
    np.testing.assert_allclose(aux["ce_modalities"], sum(per_mod), rtol=1e-5)
    for n, v in zip(names, per_mod, strict=True):
        np.testing.assert_allclose(aux[f"ce_modality/{n}"], v, rtol=1e-5)
    assert aux["loss"] is loss or np.allclose(aux["loss"], loss)


def test_perr_loss_gradient_is_finite_and_default_names():
    logits, mod_logits, labels = random_logits()
    _, aux = perr_loss(logits, mod_logits, labels)
    assert "ce_modality/4" in aux
    g = jax.grad(lambda lg, ml: perr_loss(lg, ml, labels)[0], argnums=(0, 1))(logits, mod_logits)
    # d CE / d logits rows sum to 0 (softmax - onehot) / B.
    np.testing.assert_allclose(np.asarray(g[0]).sum(1), 0.0, atol=1e-6)
    assert np.all(np.isfinite(g[1]))
