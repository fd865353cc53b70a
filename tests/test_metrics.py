"""Metrics against an independent pure-Python loop reference."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxaffect.metrics import (
    classification_metrics,
    confusion_matrix,
    f1_from_confusion,
    mean_std,
)


def _ref(labels, preds, num_classes):
    """Per-class counting in plain Python (sklearn semantics, zero_division=0)."""
    f1s, precs, recs, seen = [], [], [], []
    for c in range(num_classes):
        tp = sum(1 for y, p in zip(labels, preds, strict=True) if y == c and p == c)
        fp = sum(1 for y, p in zip(labels, preds, strict=True) if y != c and p == c)
        fn = sum(1 for y, p in zip(labels, preds, strict=True) if y == c and p != c)
        prec = tp / (tp + fp) if tp + fp else 0.0
        rec = tp / (tp + fn) if tp + fn else 0.0
        f1 = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
        f1s.append(f1), precs.append(prec), recs.append(rec), seen.append(tp + fp + fn > 0)
    idx = [c for c in range(num_classes) if seen[c]]
    acc = sum(1 for y, p in zip(labels, preds, strict=True) if y == p) / len(labels)
    support = [sum(1 for y in labels if y == c) for c in range(num_classes)]
    weighted = sum(f * n for f, n in zip(f1s, support, strict=True)) / sum(support)
    return {"f1": f1s, "weighted_f1": weighted, "macro_f1": sum(f1s[c] for c in idx) / len(idx),
            "precision": sum(precs[c] for c in idx) / len(idx),
            "recall": sum(recs[c] for c in idx) / len(idx), "accuracy": acc}


@pytest.mark.parametrize("jit", [False, True])
def test_confusion_matrix(jit):
    labels = np.array([0, 1, 2, 2, 1, -1, 4])
    preds = np.array([0, 2, 2, 2, 1, 3, 4])
    fn = jax.jit(confusion_matrix, static_argnums=2) if jit else confusion_matrix
    cm = np.asarray(fn(labels, preds, 5))
    ref = np.zeros((5, 5), int)
    for y, p in zip(labels, preds, strict=True):
        if 0 <= y < 5 and 0 <= p < 5:
            ref[y, p] += 1
    np.testing.assert_array_equal(cm, ref)  # label -1 (padding) ignored
    assert cm.dtype == np.int32
    w = np.array([1, 1, 0, 1, 1, 1, 0.5], np.float32)
    cmw = np.asarray(fn(labels, preds, 5, jnp.asarray(w)))
    np.testing.assert_allclose(cmw.sum(), 1 + 1 + 1 + 1 + 0.5)
    assert cmw[2, 2] == 1 and cmw[4, 4] == 0.5


@pytest.mark.parametrize("seed", range(4))
def test_f1_matches_python_reference(seed):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 5, size=60)
    preds = np.where(rng.random(60) < 0.5, labels, rng.integers(0, 4, size=60))  # never 4
    if seed == 3:
        labels[labels == 3] = 0  # class 3: no support; may still be predicted
    res = f1_from_confusion(confusion_matrix(labels, preds, 5))
    ref = _ref(labels.tolist(), preds.tolist(), 5)
    np.testing.assert_allclose(res["per_class_f1"], ref["f1"], atol=1e-12)
    for k in ("macro_f1", "weighted_f1", "precision", "recall", "accuracy"):
        np.testing.assert_allclose(res[k], ref[k], atol=1e-12)
    np.testing.assert_allclose(res["micro_f1"], ref["accuracy"], atol=1e-12)


def test_class_absent_from_labels_and_preds_is_left_out_of_macro():
    labels, preds = np.array([0, 0, 1, 1]), np.array([0, 1, 1, 1])
    res = f1_from_confusion(confusion_matrix(labels, preds, 3))
    f1_0, f1_1 = 2 / 3, 0.8
    np.testing.assert_allclose(res["per_class_f1"], [f1_0, f1_1, 0.0])
    np.testing.assert_allclose(res["macro_f1"], (f1_0 + f1_1) / 2)


def test_classification_metrics_flat_dict():
    labels = np.array([0, 1, 2, 2, 1, 0, 4, 3])
    preds = np.array([0, 2, 2, 2, 1, 1, 4, 0])
    names = ("hostile", "tense", "mild", "intimate", "neutral")
    m = classification_metrics(labels, preds, 5, names)
    ref = _ref(labels.tolist(), preds.tolist(), 5)
    assert all(isinstance(v, float) for v in m.values())
    np.testing.assert_allclose(m["macro_f1"], ref["macro_f1"])
    np.testing.assert_allclose(m["weighted_f1"], ref["weighted_f1"])
    np.testing.assert_allclose(m["micro_f1"], 5 / 8)
    for n, f in zip(names, ref["f1"], strict=True):
        np.testing.assert_allclose(m[f"f1/{n}"], f)
    assert "f1/0" in classification_metrics(labels, preds, 5)


def test_perfect_and_empty():
    res = f1_from_confusion(np.eye(3) * 4)
    assert res["macro_f1"] == res["micro_f1"] == 1.0
    res = f1_from_confusion(np.zeros((3, 3)))
    assert res["macro_f1"] == 0.0 and res["accuracy"] == 0.0


def test_mean_std():
    m, s = mean_std([0.60, 0.62, 0.64])
    np.testing.assert_allclose(m, 0.62)
    np.testing.assert_allclose(s, 0.02)  # sample std (ddof=1)
    np.testing.assert_allclose(mean_std([1.0, 3.0], ddof=0)[1], 1.0)
    assert mean_std([0.5]) == (0.5, 0.0)
    with pytest.raises(ValueError):
        mean_std([])
