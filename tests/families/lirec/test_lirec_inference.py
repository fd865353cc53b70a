"""Tests of LIReC inference over the P x A x R scores and of its metrics, against loops."""

from __future__ import annotations

from collections import defaultdict

import jax.numpy as jnp
import numpy as np

from jaxaffect.families.lirec import inference as I
from jaxaffect.testing import eager_and_jitted, numpy_sigmoid


def _data(seed=0, b=6, p=5, a=8, r=4):
    rng = np.random.default_rng(seed)
    zi = rng.normal(size=(b, p, a)).astype(np.float32) * 2
    zr = rng.normal(size=(b, p, r)).astype(np.float32) * 2
    pair_mask = rng.random((b, p)) > 0.3
    pair_mask[:, 0] = True
    ai = rng.integers(0, a, size=b)
    ri = rng.integers(0, r, size=b)
    true_pair = rng.integers(0, 2, size=b)
    pair_mask[np.arange(b), true_pair] = True
    return zi, zr, pair_mask, ai, ri, true_pair


def _tensor_ref(zi, zr, pair_mask):
    b, p, a = zi.shape
    r = zr.shape[-1]
    t = np.full((b, p, a, r), -np.inf)
    for i in range(b):
        for j in range(p):
            if pair_mask[i, j]:
                for k in range(a):
                    for m in range(r):
                        t[i, j, k, m] = numpy_sigmoid(zi[i, j, k]) + numpy_sigmoid(zr[i, j, m])
    return t


def test_joint_tensor_and_conditional_predictions_match_loops():
    zi, zr, pm, ai, ri, tp = _data()
    t = _tensor_ref(zi, zr, pm)
    eager, jitted = eager_and_jitted(I.joint_score_tensor, jnp.asarray(zi), jnp.asarray(zr),
                          jnp.asarray(pm))
    for got in (eager, jitted):
        np.testing.assert_allclose(np.asarray(got), t, rtol=1e-6, atol=1e-6)
    b = zi.shape[0]
    # Who? given a* and r*
    pairs_ref = [int(np.argmax(t[i, :, ai[i], ri[i]])) for i in range(b)]
    got = eager_and_jitted(I.predict_pair, jnp.asarray(zi), jnp.asarray(ai), jnp.asarray(pm),
                rel_logits=jnp.asarray(zr), relationship=jnp.asarray(ri))
    for g in got:
        np.testing.assert_array_equal(np.asarray(g), pairs_ref)
    # Who? given a* only (Int + Char)
    pairs_i = [int(np.argmax(np.where(pm[i], numpy_sigmoid(zi[i, :, ai[i]]), -np.inf)))
               for i in range(b)]
    np.testing.assert_array_equal(
        np.asarray(I.predict_pair(jnp.asarray(zi), jnp.asarray(ai), jnp.asarray(pm))), pairs_i)
    # Doing what? given p* and r*; what relationship? given p* and a*
    ints_ref = [int(np.argmax(t[i, tp[i], :, ri[i]])) for i in range(b)]
    rels_ref = [int(np.argmax(t[i, tp[i], ai[i], :])) for i in range(b)]
    for g in eager_and_jitted(I.predict_interaction_given_pair, jnp.asarray(zi), jnp.asarray(tp)):
        np.testing.assert_array_equal(np.asarray(g), ints_ref)
    for g in eager_and_jitted(I.predict_relationship_given_pair, jnp.asarray(zr), jnp.asarray(tp)):
        np.testing.assert_array_equal(np.asarray(g), rels_ref)


def test_joint_argmax_matches_flat_argmax():
    zi, zr, pm, *_ = _data(1)
    t = _tensor_ref(zi, zr, pm)
    b, p, a, r = t.shape
    flat = [np.unravel_index(int(np.argmax(t[i])), (p, a, r)) for i in range(b)]
    eager, jitted = eager_and_jitted(I.predict_joint, jnp.asarray(zi), jnp.asarray(pm),
                          rel_logits=jnp.asarray(zr))
    for got in (eager, jitted):
        np.testing.assert_array_equal(np.asarray(got["pair"]), [f[0] for f in flat])
        np.testing.assert_array_equal(np.asarray(got["interaction"]), [f[1] for f in flat])
        np.testing.assert_array_equal(np.asarray(got["relationship"]), [f[2] for f in flat])
        assert all(pm[i, int(got["pair"][i])] for i in range(b))
    # Int + Char: argmax over the P x A matrix only
    mat = np.where(pm[..., None], numpy_sigmoid(zi), -np.inf)
    flat2 = [np.unravel_index(int(np.argmax(mat[i])), (p, a)) for i in range(b)]
    got = I.predict_joint(jnp.asarray(zi), jnp.asarray(pm))
    assert "relationship" not in got
    np.testing.assert_array_equal(np.asarray(got["pair"]), [f[0] for f in flat2])
    np.testing.assert_array_equal(np.asarray(got["interaction"]), [f[1] for f in flat2])


def test_topk_and_soft_top1_match_loops():
    rng = np.random.default_rng(2)
    b, a = 40, 12
    z = rng.normal(size=(b, a)).astype(np.float32)
    labels = rng.integers(0, a, size=b)
    mask = rng.random(b) > 0.2
    order = np.argsort(-z, axis=1)
    for k in (1, 5):
        ref = np.mean([labels[i] in order[i, :k] for i in range(b) if mask[i]])
        for got in eager_and_jitted(I.topk_accuracy, jnp.asarray(z), jnp.asarray(labels), k=k,
                         sample_mask=jnp.asarray(mask)):
            np.testing.assert_allclose(float(got), ref, rtol=1e-6)
    acceptable = rng.random((b, a)) > 0.8
    ref = np.mean([(order[i, 0] == labels[i]) or acceptable[i, order[i, 0]]
                   for i in range(b) if mask[i]])
    for got in eager_and_jitted(I.soft_top1_accuracy, jnp.asarray(z), jnp.asarray(acceptable),
                     labels=jnp.asarray(labels), sample_mask=jnp.asarray(mask)):
        np.testing.assert_allclose(float(got), ref, rtol=1e-6)
    hard = float(I.topk_accuracy(jnp.asarray(z), jnp.asarray(labels),
                                 sample_mask=jnp.asarray(mask)))
    assert float(got) >= hard
    # ties go to the lower index, as argmax
    tie = jnp.zeros((1, 4))
    assert float(I.topk_accuracy(tie, jnp.array([0]))) == 1.0
    assert float(I.topk_accuracy(tie, jnp.array([1]))) == 0.0


def test_relationship_accuracy_by_pair_matches_dict_accumulation():
    rng = np.random.default_rng(3)
    n, r = 30, 5
    z = rng.normal(size=(n, r)).astype(np.float32) * 2
    pair_ids = rng.integers(0, 8, size=n)
    pair_label = rng.integers(0, r, size=8)
    labels = pair_label[pair_ids]
    valid = rng.random(n) > 0.15
    summed, gt = defaultdict(lambda: np.zeros(r)), {}
    for i in range(n):  # the released accumulation: sum sigmoid scores per pair id
        if valid[i]:
            summed[pair_ids[i]] += numpy_sigmoid(z[i])
            gt[pair_ids[i]] = labels[i]
    ref = np.mean([np.argmax(summed[h]) == gt[h] for h in gt])
    for got in eager_and_jitted(I.relationship_accuracy_by_pair, jnp.asarray(z),
                                jnp.asarray(labels), jnp.asarray(pair_ids),
                                sample_mask=jnp.asarray(valid)):
        np.testing.assert_allclose(float(got), ref, rtol=1e-6)
    per_clip = float(I.topk_accuracy(jnp.asarray(z), jnp.asarray(labels)))
    assert abs(per_clip - ref) > 1e-6  # pooling over clips is not per-clip accuracy here


def test_character_interaction_relationship_and_joint_accuracies():
    zi, zr, pm, ai, ri, tp = _data(4, b=12)
    b, p = pm.shape
    t = _tensor_ref(zi, zr, pm)
    also = np.eye(p, dtype=bool)[tp]
    also[:, 1] |= pm[:, 1]  # e.g. the reversed pair of a bidirectional interaction
    mask = np.ones(b, bool)
    mask[3] = False
    rows = [i for i in range(b) if mask[i]]

    pred_pair = [int(np.argmax(t[i, :, ai[i], ri[i]])) for i in range(b)]
    ref_pair = np.mean([pred_pair[i] == tp[i] for i in rows])
    ref_pair_multi = np.mean([also[i, pred_pair[i]] for i in rows])
    int_ok = [any(also[i, q] and np.argmax(zi[i, q]) == ai[i] for q in range(p)) for i in rows]
    rel_ok = [np.argmax(zr[i, tp[i]]) == ri[i] for i in rows]
    joint_ok = []
    for i in rows:
        q, k, m = np.unravel_index(int(np.argmax(t[i])), t.shape[1:])
        joint_ok.append(q == tp[i] and k == ai[i] and m == ri[i])

    args = dict(rel_logits=jnp.asarray(zr), relationship=jnp.asarray(ri),
                sample_mask=jnp.asarray(mask))
    for got in eager_and_jitted(I.pair_accuracy, jnp.asarray(zi), jnp.asarray(ai), jnp.asarray(tp),
                     jnp.asarray(pm), **args):
        np.testing.assert_allclose(float(got), ref_pair, rtol=1e-6)
    got = I.pair_accuracy(jnp.asarray(zi), jnp.asarray(ai), jnp.asarray(also), jnp.asarray(pm),
                          **args)
    np.testing.assert_allclose(float(got), ref_pair_multi, rtol=1e-6)
    for got in eager_and_jitted(I.interaction_accuracy_given_pair, jnp.asarray(zi), jnp.asarray(ai),
                     jnp.asarray(also), sample_mask=jnp.asarray(mask)):
        np.testing.assert_allclose(float(got), np.mean(int_ok), rtol=1e-6)
    got = I.relationship_accuracy_given_pair(jnp.asarray(zr), jnp.asarray(ri), jnp.asarray(tp),
                                             sample_mask=jnp.asarray(mask))
    np.testing.assert_allclose(float(got), np.mean(rel_ok), rtol=1e-6)
    for got in eager_and_jitted(I.joint_accuracy, jnp.asarray(zi), jnp.asarray(ai), jnp.asarray(tp),
                     jnp.asarray(pm), **args):
        np.testing.assert_allclose(float(got), np.mean(joint_ok), rtol=1e-6)


def test_perfect_scores_give_full_accuracy():
    b, p, a, r = 4, 3, 5, 2
    tp, ai, ri = np.array([0, 2, 1, 0]), np.array([1, 4, 0, 3]), np.array([1, 0, 1, 0])
    zi = np.full((b, p, a), -5.0, np.float32)
    zr = np.full((b, p, r), -5.0, np.float32)
    zi[np.arange(b), tp, ai] = 5.0
    zr[np.arange(b), tp, ri] = 5.0
    pm = np.ones((b, p), bool)
    args = (jnp.asarray(zi), jnp.asarray(ai), jnp.asarray(tp), jnp.asarray(pm))
    assert float(I.joint_accuracy(*args, rel_logits=jnp.asarray(zr),
                                  relationship=jnp.asarray(ri))) == 1.0
    assert float(I.pair_accuracy(*args)) == 1.0
    # masking out the correct pair makes the pair prediction wrong
    pm[0, 0] = False
    assert float(I.pair_accuracy(*args[:3], jnp.asarray(pm))) == 0.75
