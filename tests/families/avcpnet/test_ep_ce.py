"""Tests of the EP-CE loss (Eq. 9) and the multi-task sum (Eq. 10) against numpy references."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

from jaxaffect.families.avcpnet.emotions import EMOTIONS6, polarity_of
from jaxaffect.families.avcpnet.ep_ce import ep_ce_loss, multitask_loss, polarity_mismatch
from jaxaffect.testing import eager_and_jitted, numpy_cross_entropy

POLARITY = polarity_of(EMOTIONS6)  # excitation+, fear-, neutral0, relaxation+, sadness-, tension-


def numpy_ep_ce(logits, labels, polarity, gammas, weights=None):
    """Eq. 9 written out per example in float64."""
    total, norm = 0.0, 0.0
    for i in range(len(labels)):
        z = logits[i].astype(np.float64)
        ce = np.log(np.exp(z - z.max()).sum()) + z.max() - z[labels[i]]
        s = float(polarity[np.argmax(z)] != polarity[labels[i]])
        w = 1.0 if weights is None else float(weights[i])
        total += w * (1.0 + gammas[polarity[labels[i]]] * s) * ce
        norm += w
    return total / norm if norm > 0 else 0.0


def batch(b=12, seed=0):
    rng = np.random.default_rng(seed)
    logits = (rng.normal(size=(b, len(EMOTIONS6))) * 2).astype(np.float32)
    labels = rng.integers(0, len(EMOTIONS6), size=b).astype(np.int32)
    return logits, labels


def test_polarity_mismatch():
    logits = np.eye(6, dtype=np.float32)  # prediction i for row i
    labels = np.array([3, 4, 2, 0, 2, 1], np.int32)  # row 4: predicted sadness, label neutral
    got = np.asarray(polarity_mismatch(jnp.asarray(logits), jnp.asarray(labels), POLARITY))
    np.testing.assert_array_equal(got, [0, 0, 0, 0, 1, 0])


@pytest.mark.parametrize("gammas", [(0.5, 0.5, 0.5), (0.0, 0.3, 0.5), (0.3, 0.0, 1.2)])
@pytest.mark.parametrize("weighted", [False, True])
def test_matches_numpy_eager_and_jitted(gammas, weighted):
    logits, labels = batch()
    weights = np.random.default_rng(1).uniform(0.2, 2.0, len(labels)).astype(np.float32)
    weights[[2, 7]] = 0.0
    w = weights if weighted else None
    kw = {"weights": jnp.asarray(w)} if weighted else {}
    eager, jitted = eager_and_jitted(ep_ce_loss, jnp.asarray(logits), jnp.asarray(labels),
                                     jnp.asarray(POLARITY), jnp.asarray(gammas), **kw)
    want = numpy_ep_ce(logits, labels, POLARITY, gammas, w)
    np.testing.assert_allclose(float(eager), want, rtol=1e-5)
    np.testing.assert_allclose(float(jitted), want, rtol=1e-5)


def test_zero_gammas_is_plain_cross_entropy():
    logits, labels = batch(seed=3)
    got = ep_ce_loss(jnp.asarray(logits), jnp.asarray(labels), POLARITY, (0.0, 0.0, 0.0))
    np.testing.assert_allclose(float(got), numpy_cross_entropy(logits, labels), rtol=1e-5)


@pytest.mark.parametrize("polarity_id", [0, 1, 2])
def test_each_gamma_acts_only_on_its_polarity(polarity_id):
    logits, labels = batch(b=40, seed=5)
    base = np.zeros(3)
    g = base.copy()
    g[polarity_id] = 0.7
    ce = np.asarray([numpy_ep_ce(logits[i:i + 1], labels[i:i + 1], POLARITY, base)
                     for i in range(len(labels))])
    s = POLARITY[logits.argmax(1)] != POLARITY[labels]
    own = POLARITY[labels] == polarity_id
    assert (own & s).any() and (~own & s).any()  # the batch exercises both cases
    want = np.mean(ce * (1 + 0.7 * (own & s)))
    got = ep_ce_loss(jnp.asarray(logits), jnp.asarray(labels), POLARITY, g)
    np.testing.assert_allclose(float(got), want, rtol=1e-5)


def test_zero_weights_ignored_and_all_zero_gives_zero():
    logits, labels = batch(seed=7)
    w = np.ones(len(labels), np.float32)
    w[5:] = 0.0
    garbage = logits.copy()
    garbage[5:] = 1e4 * np.sign(garbage[5:])
    got = ep_ce_loss(jnp.asarray(garbage), jnp.asarray(labels), POLARITY, (0.5, 0.5, 0.5),
                     jnp.asarray(w))
    want = numpy_ep_ce(logits[:5], labels[:5], POLARITY, (0.5, 0.5, 0.5))
    np.testing.assert_allclose(float(got), want, rtol=1e-5)
    zero = ep_ce_loss(jnp.asarray(logits), jnp.asarray(labels), POLARITY, (0.5, 0.5, 0.5),
                      jnp.zeros(len(labels)))
    assert float(zero) == 0.0


def test_bf16_logits_computed_in_float32():
    logits, labels = batch(seed=9)
    got = ep_ce_loss(jnp.asarray(logits, jnp.bfloat16), jnp.asarray(labels), POLARITY,
                     (0.5, 0.5, 0.5))
    assert got.dtype == jnp.float32
    want = numpy_ep_ce(np.asarray(jnp.asarray(logits, jnp.bfloat16), np.float32), labels,
                       POLARITY, (0.5, 0.5, 0.5))
    np.testing.assert_allclose(float(got), want, rtol=1e-5)


def test_multitask_sum_heads_and_audio_weights():
    gammas = (0.5, 0.2, 0.4)
    (f, labels), (v, _), (a, _) = batch(seed=11), batch(seed=12), batch(seed=13)
    weights = np.ones(len(labels), np.float32)
    weights[-1] = 0.0
    has_audio = np.ones(len(labels), np.float32)
    has_audio[[0, 3]] = 0.0
    outputs = {"fused": jnp.asarray(f), "visual": jnp.asarray(v), "audio": jnp.asarray(a)}

    def run(outs, w, aw):
        return multitask_loss(outs, labels=jnp.asarray(labels), polarity=jnp.asarray(POLARITY),
                              gammas=jnp.asarray(gammas), weights=w, audio_weights=aw)

    (loss_e, sc_e), (loss_j, sc_j) = eager_and_jitted(run, outputs, jnp.asarray(weights),
                                                      jnp.asarray(has_audio))
    want = {"loss_fused": numpy_ep_ce(f, labels, POLARITY, gammas, weights),
            "loss_visual": numpy_ep_ce(v, labels, POLARITY, gammas, weights),
            "loss_audio": numpy_ep_ce(a, labels, POLARITY, gammas, weights * has_audio)}
    for loss, sc in ((loss_e, sc_e), (loss_j, sc_j)):
        assert sorted(sc) == sorted(want)
        for k, val in want.items():
            np.testing.assert_allclose(float(sc[k]), val, rtol=1e-5)
        np.testing.assert_allclose(float(loss), sum(want.values()), rtol=1e-5)

    loss_v, sc_v = multitask_loss({"visual": jnp.asarray(v)}, jnp.asarray(labels), POLARITY,
                                  gammas)
    assert list(sc_v) == ["loss_visual"]
    np.testing.assert_allclose(float(loss_v), numpy_ep_ce(v, labels, POLARITY, gammas),
                               rtol=1e-5)
    with pytest.raises(ValueError, match="none of the heads"):
        multitask_loss({"logits": jnp.asarray(v)}, jnp.asarray(labels), POLARITY, gammas)
