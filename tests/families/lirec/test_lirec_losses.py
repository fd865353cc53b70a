"""Tests of the LIReC max-margin losses against direct Python-loop implementations."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxaffect.families.lirec import losses as L
from jaxaffect.testing import eager_and_jitted, numpy_sigmoid

M = 0.3  # a margin large enough that many hinge terms are active


def _close(a, b, tol=1e-5):
    np.testing.assert_allclose(np.asarray(a, np.float64), np.asarray(b, np.float64),
                               rtol=tol, atol=tol)


# --------------------------------------------------------------------------- references


def ref_interaction(logits, labels, allowed, margin, sample_mask):
    s = numpy_sigmoid(logits)
    per = []
    for b in range(s.shape[0]):
        total = 0.0
        for a in range(s.shape[1]):
            if a != labels[b] and allowed[b, a]:
                total += max(0.0, margin - s[b, labels[b]] + s[b, a])
        per.append(total)
    per = np.array(per)
    return per, (per * sample_mask).sum() / max(sample_mask.sum(), 1)


def ref_pair_matrix(s, pos_pair, label, pair_mask, allowed, supervision, correct, margin, hard):
    """Eq. 8 / 10 (sum) or their sum-max versions for one sample; s [P, C]."""
    pos = s[pos_pair, label]
    total = 0.0
    for p in range(s.shape[0]):
        if not pair_mask[p]:
            continue
        negs = []
        for c in range(s.shape[1]):
            if not allowed[p, c]:
                continue
            if supervision == "weak" and c == label:
                continue
            if supervision == "full" and c == label and correct[p]:
                continue
            negs.append(s[p, c])
        if hard:
            total += max(0.0, margin - pos + max(negs)) if negs else 0.0
        else:
            total += sum(max(0.0, margin - pos + n) for n in negs)
    return total


def _pair_data(seed, b=5, p=6, a=7, r=4):
    rng = np.random.default_rng(seed)
    int_logits = rng.normal(size=(b, p, a)).astype(np.float32) * 2
    rel_logits = rng.normal(size=(b, p, r)).astype(np.float32) * 2
    int_labels = rng.integers(0, a, size=b)
    rel_labels = rng.integers(0, r, size=b)
    pair_mask = rng.random((b, p)) > 0.3
    pair_mask[:, 0] = True
    pair_mask[-1] = False  # a sample without any valid candidate
    allowed = rng.random((b, a)) > 0.3
    true_pair = np.zeros(b, np.int64)  # the released layout: the correct pair first
    also = np.zeros((b, p), bool)
    also[1, 1] = pair_mask[1, 1]  # a bidirectional interaction
    rel_allowed = rng.random((b, p, r)) > 0.2
    # garbage in padded slots must not leak (NaN is the worst case)
    int_logits[~pair_mask] = np.nan
    rel_logits[~pair_mask] = np.nan
    return dict(int_logits=int_logits, rel_logits=rel_logits, int_labels=int_labels,
                rel_labels=rel_labels, pair_mask=pair_mask, allowed=allowed,
                true_pair=true_pair, also=also, rel_allowed=rel_allowed)


# --------------------------------------------------------------------------- Eqs. 2, 4, 6


def test_interaction_loss_matches_loop():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(6, 9)).astype(np.float32) * 2
    labels = rng.integers(0, 9, size=6)
    allowed = rng.random((6, 9)) > 0.3
    mask = np.array([1, 1, 0, 1, 1, 1], bool)
    per_ref, mean_ref = ref_interaction(logits, labels, allowed, M, mask)
    eager, jitted = eager_and_jitted(L.interaction_loss, jnp.asarray(logits), jnp.asarray(labels),
                          jnp.asarray(allowed), margin=M, sample_mask=jnp.asarray(mask))
    _close(eager, mean_ref)
    _close(jitted, mean_ref)
    per = L.interaction_loss(jnp.asarray(logits), jnp.asarray(labels), jnp.asarray(allowed),
                             margin=M, reduction="none")
    _close(per, per_ref)
    assert eager.dtype == jnp.float32
    # relationship loss (Eq. 4) is the same hinge without overlap masking
    per_r, mean_r = ref_interaction(logits, labels, np.ones_like(allowed), M, mask)
    _close(L.relationship_loss(jnp.asarray(logits), jnp.asarray(labels), margin=M,
                               sample_mask=jnp.asarray(mask)), mean_r)
    # bf16 logits are scored in float32
    out16 = L.interaction_loss(jnp.asarray(logits, jnp.bfloat16), jnp.asarray(labels))
    assert out16.dtype == jnp.float32


def test_joint_interaction_relationship_loss_matches_loop():
    rng = np.random.default_rng(1)
    b, k, a, r = 4, 3, 8, 5
    int_logits = rng.normal(size=(b, k, a)).astype(np.float32)
    int_labels = rng.integers(0, a, size=(b, k))
    allowed = rng.random((b, k, a)) > 0.3
    int_mask = rng.random((b, k)) > 0.3
    int_mask[0] = False  # a group without interaction labels
    rel_logits = rng.normal(size=(b, r)).astype(np.float32)
    rel_labels = rng.integers(0, r, size=b)
    rel_mask = np.array([1, 0, 1, 1], bool)
    lam = 1.5
    groups_i, groups_r = [], []
    for i in range(b):
        clips = [ref_interaction(int_logits[i, j:j + 1], int_labels[i, j:j + 1],
                                 allowed[i, j:j + 1], M, np.ones(1))[1]
                 for j in range(k) if int_mask[i, j]]
        if clips:
            groups_i.append(np.mean(clips))
        if rel_mask[i]:
            groups_r.append(ref_interaction(rel_logits[i:i + 1], rel_labels[i:i + 1],
                                            np.ones((1, r), bool), M, np.ones(1))[1])
    expected = np.mean(groups_r) + lam * np.mean(groups_i)
    args = tuple(map(jnp.asarray, (int_logits, int_labels, rel_logits, rel_labels)))
    kw = dict(allowed_negatives=jnp.asarray(allowed), int_mask=jnp.asarray(int_mask),
              rel_mask=jnp.asarray(rel_mask), lam=lam, margin_int=M, margin_rel=M)
    (loss_e, aux_e), (loss_j, aux_j) = eager_and_jitted(L.joint_interaction_relationship_loss,
                                                        *args, **kw)
    _close(loss_e, expected)
    _close(loss_j, expected)
    _close(aux_e["relationship"], np.mean(groups_r))
    _close(aux_j["interaction"], np.mean(groups_i))


# --------------------------------------------------------------------------- Eqs. 7-10


@pytest.mark.parametrize("supervision,negatives,epoch", [
    ("full", "sum", 30), ("weak", "sum", 30), ("full", "sum_max", 20), ("weak", "sum_max", 19),
    ("weak", "sum_max", 20)])
def test_interaction_character_loss_matches_loop(supervision, negatives, epoch):
    d = _pair_data(2)
    hard = negatives == "sum_max" and epoch >= 20
    b, p, a = d["int_logits"].shape
    s = numpy_sigmoid(d["int_logits"])
    valid = d["pair_mask"].any(-1)
    expected_pairs, per_ref = [], []
    for i in range(b):
        if supervision == "full":
            pos_pair = d["true_pair"][i]
            correct = np.eye(p, dtype=bool)[pos_pair] | d["also"][i]
        else:  # Eq. 9 with argmax
            col = np.where(d["pair_mask"][i], s[i, :, d["int_labels"][i]], -np.inf)
            pos_pair, correct = int(np.argmax(col)), None
        expected_pairs.append(pos_pair)
        allowed = np.broadcast_to(d["allowed"][i], (p, a))
        per_ref.append(ref_pair_matrix(s[i], pos_pair, d["int_labels"][i], d["pair_mask"][i],
                                       allowed, supervision, correct, M, hard)
                       if valid[i] else 0.0)
    per_ref = np.array(per_ref)
    expected = per_ref[valid].mean()
    fn = functools.partial(L.interaction_character_loss, supervision=supervision,
                           selection="argmax", negatives=negatives, burn_in=20, margin=M)
    args = tuple(map(jnp.asarray, (d["int_logits"], d["int_labels"], d["pair_mask"])))
    kw = dict(allowed_negatives=jnp.asarray(d["allowed"]), true_pair=jnp.asarray(d["true_pair"]),
              also_correct=jnp.asarray(d["also"]), epoch=jnp.asarray(epoch))
    (loss_e, aux_e), (loss_j, aux_j) = eager_and_jitted(fn, *args, **kw)
    _close(loss_e, expected)
    _close(loss_j, expected)
    _close(aux_j["per_sample"], per_ref)
    assert bool(aux_e["hard"]) == hard
    np.testing.assert_array_equal(np.asarray(aux_e["pair"])[valid],
                                  np.array(expected_pairs)[valid])
    # gradients are finite although padded slots hold NaN, and padded slots get none
    grad = jax.jit(jax.grad(lambda z: fn(z, *args[1:], **kw)[0]))(args[0])
    assert np.all(np.isfinite(np.asarray(grad)))
    assert np.all(np.asarray(grad)[~d["pair_mask"]] == 0.0)


def test_weak_sampling_uses_valid_pairs_and_loop_loss():
    d = _pair_data(3)
    args = tuple(map(jnp.asarray, (d["int_logits"], d["int_labels"], d["pair_mask"])))
    for sample_from in ("softmax", "scores"):
        fn = jax.jit(functools.partial(L.interaction_character_loss, supervision="weak",
                                       selection="sample", sample_from=sample_from, margin=M))
        loss, aux = fn(*args, allowed_negatives=jnp.asarray(d["allowed"]),
                       rng=jax.random.key(5))
        pairs = np.asarray(aux["pair"])
        valid = d["pair_mask"].any(-1)
        s = numpy_sigmoid(d["int_logits"])
        per_ref = [ref_pair_matrix(s[i], pairs[i], d["int_labels"][i], d["pair_mask"][i],
                                   np.broadcast_to(d["allowed"][i], s[i].shape), "weak", None,
                                   M, False) for i in np.flatnonzero(valid)]
        assert all(d["pair_mask"][i, pairs[i]] for i in np.flatnonzero(valid))
        _close(loss, np.mean(per_ref))


@pytest.mark.parametrize("sample_from", ["softmax", "scores"])
def test_weak_sampling_distribution(sample_from):
    """The chosen pair follows the multinomial over valid pairs (released: softmax of logits)."""
    logits = np.array([[[2.0, 0.0], [0.5, 0.0], [-1.0, 0.0], [9.0, 0.0]]], np.float32)
    pair_mask = np.array([[True, True, True, False]])
    labels = np.array([0])

    def pair_for(key):
        return L.interaction_character_loss(
            jnp.asarray(logits), jnp.asarray(labels), jnp.asarray(pair_mask),
            supervision="weak", selection="sample", sample_from=sample_from, rng=key)[1]["pair"]

    pairs = np.asarray(jax.jit(jax.vmap(pair_for))(jax.random.split(jax.random.key(0), 4000)))
    freq = np.bincount(pairs[:, 0], minlength=4) / len(pairs)
    col = logits[0, :3, 0].astype(np.float64)
    w = np.exp(col) if sample_from == "softmax" else numpy_sigmoid(col)
    np.testing.assert_allclose(freq[:3], w / w.sum(), atol=0.03)
    assert freq[3] == 0.0


def test_sampling_needs_a_key_and_checks_strings():
    z = jnp.zeros((1, 2, 3))
    with pytest.raises(ValueError, match="PRNG"):
        L.interaction_character_loss(z, jnp.zeros(1, int), jnp.ones((1, 2), bool),
                                     selection="sample")
    with pytest.raises(ValueError, match="negatives"):
        L.interaction_character_loss(z, jnp.zeros(1, int), jnp.ones((1, 2), bool),
                                     selection="argmax", negatives="max")


def test_single_pair_weak_loss_reduces_to_eq2():
    rng = np.random.default_rng(4)
    logits = rng.normal(size=(5, 1, 6)).astype(np.float32)
    labels = rng.integers(0, 6, size=5)
    allowed = rng.random((5, 6)) > 0.3
    weak, _ = L.interaction_character_loss(jnp.asarray(logits), jnp.asarray(labels),
                                           jnp.ones((5, 1), bool),
                                           allowed_negatives=jnp.asarray(allowed),
                                           selection="argmax", margin=M)
    plain = L.interaction_loss(jnp.asarray(logits[:, 0]), jnp.asarray(labels),
                               jnp.asarray(allowed), margin=M)
    _close(weak, plain)


# --------------------------------------------------------------------------- Eqs. 11-14


@pytest.mark.parametrize("supervision,negatives", [("full", "sum_max"), ("weak", "sum")])
def test_interaction_relationship_character_loss_matches_loop(supervision, negatives):
    d = _pair_data(5)
    b, p, a = d["int_logits"].shape
    rel_known = np.array([1, 1, 0, 1, 1], bool)
    si, sr = numpy_sigmoid(d["int_logits"]), numpy_sigmoid(d["rel_logits"])
    valid = d["pair_mask"].any(-1)
    hard = negatives == "sum_max"
    per_i, per_r, pairs = [], [], []
    for i in np.flatnonzero(valid):
        ai, ri = d["int_labels"][i], d["rel_labels"][i]
        if supervision == "full":
            pos = d["true_pair"][i]
            correct = np.eye(p, dtype=bool)[pos] | d["also"][i]
        else:  # Eq. 12
            score = si[i, :, ai] + (sr[i, :, ri] if rel_known[i] else 0.0)
            pos, correct = int(np.argmax(np.where(d["pair_mask"][i], score, -np.inf))), None
        pairs.append(pos)
        per_i.append(ref_pair_matrix(si[i], pos, ai, d["pair_mask"][i],
                                     np.broadcast_to(d["allowed"][i], (p, a)), supervision,
                                     correct, M, hard))
        if rel_known[i]:
            per_r.append(ref_pair_matrix(sr[i], pos, ri, d["pair_mask"][i], d["rel_allowed"][i],
                                         supervision, correct, 0.2, hard))
    expected = np.mean(per_r) + 1.5 * np.mean(per_i)
    fn = functools.partial(L.interaction_relationship_character_loss, supervision=supervision,
                           selection="argmax", negatives=negatives, burn_in=0, margin_int=M,
                           margin_rel=0.2)
    args = tuple(map(jnp.asarray, (d["int_logits"], d["rel_logits"], d["int_labels"],
                                   d["rel_labels"], d["pair_mask"])))
    kw = dict(allowed_negatives=jnp.asarray(d["allowed"]),
              rel_allowed_negatives=jnp.asarray(d["rel_allowed"]),
              rel_sample_mask=jnp.asarray(rel_known), true_pair=jnp.asarray(d["true_pair"]),
              also_correct=jnp.asarray(d["also"]))
    (loss_e, aux_e), (loss_j, aux_j) = eager_and_jitted(fn, *args, **kw)
    _close(loss_e, expected)
    _close(loss_j, expected)
    _close(aux_j["relationship"], np.mean(per_r))
    np.testing.assert_array_equal(np.asarray(aux_e["pair"])[valid], pairs)
    grads = jax.jit(jax.grad(lambda zi, zr: fn(zi, zr, *args[2:], **kw)[0],
                                 argnums=(0, 1)))(*args[:2])
    assert all(np.all(np.isfinite(np.asarray(g))) for g in grads)
    assert np.any(np.asarray(grads[1]) != 0.0)


def test_irc_sampling_mixes_both_softmaxes():
    """Released selection for Eq. 12: the mean of the two softmaxes over valid pairs."""
    zi = np.array([[[1.0], [0.0], [0.0]]], np.float32)
    zr = np.array([[[0.0], [2.0], [0.0]]], np.float32)

    def pair_for(key):
        return L.interaction_relationship_character_loss(
            jnp.asarray(zi), jnp.asarray(zr), jnp.zeros(1, int), jnp.zeros(1, int),
            jnp.ones((1, 3), bool), rng=key)[1]["pair"]

    pairs = np.asarray(jax.jit(jax.vmap(pair_for))(jax.random.split(jax.random.key(1), 4000)))
    freq = np.bincount(pairs[:, 0], minlength=3) / len(pairs)
    soft = lambda x: np.exp(x) / np.exp(x).sum()
    np.testing.assert_allclose(freq, (soft(zi[0, :, 0]) + soft(zr[0, :, 0])) / 2, atol=0.03)
