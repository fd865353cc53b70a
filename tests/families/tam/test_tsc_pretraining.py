"""Tests of TAM's TSC pretraining masks and losses (Sec. 4.2, Eqs. 7-10, Tables 3-4)."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxaffect.families.tam.tsc_objectives import (
    appearing_time_logits,
    appearing_time_loss,
    mask_emotional_words,
    mask_random,
    pretraining_loss,
    word_prediction_loss,
)
from jaxaffect.nn.attention import NEG_LOGIT

JIT = functools.partial(jax.jit, compiler_options={"xla_backend_optimization_level": 0,
                                                   "xla_llvm_disable_expensive_passes": True})
MASK_ID, START_ID, PAD_ID = 1, 2, 0


def make_comments(b: int = 4, n: int = 5, w: int = 12, seed: int = 0):
    """Ids with a start token at word 0, real words after it, padding at the end."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(0, w + 1, (b, n))
    valid = np.arange(w)[None, None, :] < lengths[..., None]
    ids = rng.integers(3, 50, (b, n, w))
    ids[..., 0] = START_ID
    ids = np.where(valid, ids, PAD_ID)
    return ids.astype(np.int32), valid


def np_mask_random(ids, valid, rate, uniform, special):
    target = np.zeros(ids.shape, bool)
    for idx in np.ndindex(ids.shape[:-1]):
        cand = [j for j in range(ids.shape[-1]) if valid[idx][j] and ids[idx][j] not in special]
        n = len(cand)
        k = 0 if n == 0 else min(n, max(1, int(np.floor(np.float32(rate) * np.float32(n)
                                                           + np.float32(0.5)))))
        chosen = sorted(cand, key=lambda j: uniform[idx][j])[:k]
        target[idx + (chosen,)] = True
    return np.where(target, MASK_ID, ids), target


@pytest.mark.parametrize("rate", [0.1, 0.2, 0.3])
def test_mask_random_matches_numpy_and_rate(rate):
    ids, valid = make_comments(b=8, n=16)
    key = jax.random.key(7)
    fn = functools.partial(mask_random, rate=rate, mask_id=MASK_ID, special_ids=(START_ID,))
    masked, target = fn(jnp.asarray(ids), jnp.asarray(valid), rng=key)
    masked_j, target_j = JIT(fn)(jnp.asarray(ids), jnp.asarray(valid), rng=key)
    np.testing.assert_array_equal(np.asarray(masked), np.asarray(masked_j))
    np.testing.assert_array_equal(np.asarray(target), np.asarray(target_j))
    uniform = np.asarray(jax.random.uniform(key, ids.shape))
    ref_ids, ref_target = np_mask_random(ids, valid, rate, uniform, {START_ID})
    np.testing.assert_array_equal(np.asarray(target), ref_target)
    np.testing.assert_array_equal(np.asarray(masked), ref_ids)
    target = np.asarray(target)
    assert not target[~valid].any() and not target[..., 0].any()  # padding, start token
    maskable = (valid & (ids != START_ID)).sum(-1)
    assert (target.sum(-1)[maskable > 0] >= 1).all() and (target.sum(-1)[maskable == 0] == 0).all()
    # close to the nominal rate where rounding is small (long comments)
    long = maskable >= 10
    frac = target.sum(-1)[long].sum() / maskable[long].sum()
    assert abs(frac - rate) < 0.06
    # deterministic given the key, different for another key
    again = mask_random(jnp.asarray(ids), jnp.asarray(valid), rate, key, MASK_ID,
                        special_ids=(START_ID,))[1]
    np.testing.assert_array_equal(np.asarray(again), target)
    other = mask_random(jnp.asarray(ids), jnp.asarray(valid), rate, jax.random.key(8), MASK_ID,
                        special_ids=(START_ID,))[1]
    assert (np.asarray(other) != target).any()


def test_mask_random_rejects_bad_rate():
    ids, valid = make_comments()
    with pytest.raises(ValueError):
        mask_random(jnp.asarray(ids), jnp.asarray(valid), 1.5, jax.random.key(0), MASK_ID)


def test_mask_emotional_words_matches_numpy():
    ids, valid = make_comments()
    rng = np.random.default_rng(1)
    emotional = rng.random(ids.shape) < 0.3  # also flags some padding and start tokens
    fn = functools.partial(mask_emotional_words, mask_id=MASK_ID, special_ids=(START_ID,))
    for f in (fn, JIT(fn)):
        masked, target = f(jnp.asarray(ids), jnp.asarray(emotional), valid=jnp.asarray(valid))
        ref = np.zeros(ids.shape, bool)
        for idx in np.ndindex(ids.shape):
            ref[idx] = emotional[idx] and valid[idx] and ids[idx] != START_ID
        np.testing.assert_array_equal(np.asarray(target), ref)
        np.testing.assert_array_equal(np.asarray(masked), np.where(ref, MASK_ID, ids))
    # without valid/special_ids exactly the flagged words are masked
    _, target = mask_emotional_words(jnp.asarray(ids), jnp.asarray(emotional), MASK_ID)
    np.testing.assert_array_equal(np.asarray(target), emotional)


def np_log_softmax(x):
    x = x.astype(np.float64)
    m = x.max(-1, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(-1, keepdims=True))


def test_word_prediction_loss_matches_numpy():
    rng = np.random.default_rng(2)
    logits = rng.standard_normal((2, 3, 5, 11)).astype(np.float32) * 3
    targets = rng.integers(0, 11, (2, 3, 5))
    mask = rng.random((2, 3, 5)) < 0.4
    lp = np_log_softmax(logits)
    terms = [-lp[i][t] for i in np.ndindex(mask.shape) if mask[i] for t in [targets[i]]]
    ref = np.mean(terms)
    for f in (word_prediction_loss, JIT(word_prediction_loss)):
        got = f(jnp.asarray(logits, jnp.bfloat16).astype(jnp.float32), jnp.asarray(targets),
                jnp.asarray(mask))
        out = f(jnp.asarray(logits), jnp.asarray(targets), jnp.asarray(mask))
        assert out.dtype == jnp.float32 and got.dtype == jnp.float32
        np.testing.assert_allclose(float(out), ref, rtol=1e-5)
        # no masked word: 0, not NaN
        assert float(f(jnp.asarray(logits), jnp.asarray(targets), jnp.zeros_like(mask))) == 0.0
    assert word_prediction_loss(jnp.asarray(logits, jnp.bfloat16), jnp.asarray(targets),
                                jnp.asarray(mask)).dtype == jnp.float32


def test_appearing_time_logits_and_loss_match_numpy():
    rng = np.random.default_rng(3)
    b, n, t, d = 2, 4, 6, 8
    query = rng.standard_normal((b, n, d)).astype(np.float32)
    keys = rng.standard_normal((b, t + 1, d)).astype(np.float32)
    lengths = np.array([6, 3])
    vmask = np.concatenate([np.ones((b, 1), bool), np.arange(t)[None] < lengths[:, None]], 1)
    index = np.stack([rng.integers(0, length, n) for length in lengths])
    valid = np.array([[1, 1, 0, 1], [1, 0, 1, 1]], bool)
    ref_logits = np.full((b, n, t), -np.inf)
    for i in range(b):
        for j in range(n):
            for k in range(lengths[i]):
                ref_logits[i, j, k] = query[i, j] @ keys[i, k + 1] / np.sqrt(d)
    lp = np_log_softmax(np.where(np.isinf(ref_logits), -1e300, ref_logits))
    ref_loss = np.mean([-lp[i, j, index[i, j]] for i in range(b) for j in range(n) if valid[i, j]])
    for logits_fn, loss_fn in ((appearing_time_logits, appearing_time_loss),
                               (JIT(appearing_time_logits), JIT(appearing_time_loss))):
        logits = np.asarray(logits_fn(jnp.asarray(query), jnp.asarray(keys), jnp.asarray(vmask)))
        real = np.isfinite(ref_logits)
        np.testing.assert_allclose(logits[real], ref_logits[real], rtol=1e-5, atol=1e-5)
        assert (logits[~real] == NEG_LOGIT).all()
        probs = np.asarray(jax.nn.softmax(jnp.asarray(logits), -1))
        assert (probs[~real] == 0.0).all()
        loss = loss_fn(jnp.asarray(logits), jnp.asarray(index), jnp.asarray(valid))
        assert loss.dtype == jnp.float32
        np.testing.assert_allclose(float(loss), ref_loss, rtol=1e-5)
    # the learnable-token position (index 0) takes no part in Eq. 8
    keys2 = keys.copy()
    keys2[:, 0] += 5.0
    np.testing.assert_array_equal(
        np.asarray(appearing_time_logits(jnp.asarray(query), jnp.asarray(keys2),
                                         jnp.asarray(vmask))),
        np.asarray(appearing_time_logits(jnp.asarray(query), jnp.asarray(keys),
                                         jnp.asarray(vmask))))
    # invalid comments do not count
    assert float(appearing_time_loss(jnp.asarray(logits), jnp.asarray(index),
                                     jnp.zeros_like(valid))) == 0.0


def make_outputs_and_batch(seed: int = 4):
    rng = np.random.default_rng(seed)
    b, n, w, v, t = 2, 3, 4, 9, 5
    outputs = {"word_logits": jnp.asarray(rng.standard_normal((b, n, w, v)), jnp.float32),
               "time_logits": jnp.asarray(rng.standard_normal((b, n, t)), jnp.float32)}
    batch = {"target_ids": jnp.asarray(rng.integers(0, v, (b, n, w))),
             "target_mask": jnp.asarray(rng.random((b, n, w)) < 0.5),
             "segment_index": jnp.asarray(rng.integers(0, t, (b, n))),
             "comment_mask": jnp.asarray(rng.random((b, n)) < 0.8)}
    return outputs, batch


def test_pretraining_loss_task_switches_and_weights():
    outputs, batch = make_outputs_and_batch()
    lw = float(word_prediction_loss(outputs["word_logits"], batch["target_ids"],
                                    batch["target_mask"]))
    lt = float(appearing_time_loss(outputs["time_logits"], batch["segment_index"],
                                   batch["comment_mask"]))
    fn = JIT(pretraining_loss, static_argnames=("lambda_w", "lambda_t", "tasks"))
    for f in (pretraining_loss, fn):
        loss, aux = f(outputs, batch, lambda_w=2.0, lambda_t=0.5)
        np.testing.assert_allclose(float(loss), 2.0 * lw + 0.5 * lt, rtol=1e-6)
        np.testing.assert_allclose(float(aux["word_loss"]), lw, rtol=1e-6)
        np.testing.assert_allclose(float(aux["time_loss"]), lt, rtol=1e-6)
        assert int(aux["word_count"]) == int(batch["target_mask"].sum())
        assert int(aux["time_count"]) == int(batch["comment_mask"].sum())
        acc = np.mean((np.argmax(np.asarray(outputs["time_logits"]), -1)
                       == np.asarray(batch["segment_index"]))[np.asarray(batch["comment_mask"])])
        np.testing.assert_allclose(float(aux["time_accuracy"]), acc, rtol=1e-6)
    # Table 4's "EWP only": no time term, no time keys needed
    word_batch = {k: batch[k] for k in ("target_ids", "target_mask")}
    loss, aux = pretraining_loss({"word_logits": outputs["word_logits"]}, word_batch,
                                 tasks=("word",))
    np.testing.assert_allclose(float(loss), lw, rtol=1e-6)
    assert set(aux) == {"loss", "word_loss", "word_accuracy", "word_count"}
    # "ATP only"
    time_batch = {k: batch[k] for k in ("segment_index", "comment_mask")}
    loss, aux = fn({"time_logits": outputs["time_logits"]}, time_batch, tasks=("time",))
    np.testing.assert_allclose(float(loss), lt, rtol=1e-6)
    assert set(aux) == {"loss", "time_loss", "time_accuracy", "time_count"}
    for bad in ((), ("words",)):
        with pytest.raises(ValueError):
            pretraining_loss(outputs, batch, tasks=bad)
