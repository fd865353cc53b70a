"""Classification metrics: a jittable confusion matrix and host-side F1 summaries.

Scores are fractions in [0, 1] (the paper reports percentages). Conventions follow
scikit-learn's ``f1_score`` / ``precision_recall_fscore_support`` defaults with
``zero_division=0``:

* a per-class precision, recall or F1 whose denominator is 0 is 0;
* macro averages run over the classes that occur in the labels OR the predictions
  (sklearn's default ``labels=None``); a class with no support and no predictions is reported
  with F1 0 in ``per_class_f1`` but left out of the macro average;
* micro F1 over single-label multi-class data equals accuracy.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

Array = jax.Array


def confusion_matrix(labels: Array, preds: Array, num_classes: int,
                     weights: Array | None = None) -> Array:
    """``cm[i, j]`` = (weighted) count of examples with true class i predicted as j.

    Labels or predictions outside ``[0, num_classes)`` (e.g. -1 for padding) are ignored.
    Returns int32 counts, or float32 sums when ``weights`` [B] is given. Jittable.
    """
    true_oh = jax.nn.one_hot(labels, num_classes, dtype=jnp.float32)
    pred_oh = jax.nn.one_hot(preds, num_classes, dtype=jnp.float32)
    if weights is not None:
        true_oh = true_oh * weights.astype(jnp.float32)[:, None]
    cm = jnp.einsum("bi,bj->ij", true_oh, pred_oh, precision=jax.lax.Precision.HIGHEST)
    return cm if weights is not None else jnp.round(cm).astype(jnp.int32)


def _safe_div(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    return np.where(den > 0, num / np.where(den > 0, den, 1.0), 0.0)


def f1_from_confusion(cm: np.ndarray | Array) -> dict[str, float | np.ndarray]:
    """F1 summaries of a whole split from its confusion matrix (rows true, columns predicted).

    Returns ``micro_f1``, ``macro_f1``, ``weighted_f1`` (per-class F1 weighted by support),
    ``precision`` and ``recall`` (macro), ``accuracy``
    (floats) and ``per_class_f1``, ``per_class_precision``, ``per_class_recall``,
    ``support`` (numpy arrays of length C).
    """
    cm = np.asarray(cm, np.float64)
    if cm.ndim != 2 or cm.shape[0] != cm.shape[1]:
        raise ValueError(f"confusion matrix must be square, got shape {cm.shape}")
    tp = np.diag(cm)
    support = cm.sum(axis=1)
    predicted = cm.sum(axis=0)
    precision = _safe_div(tp, predicted)
    recall = _safe_div(tp, support)
    f1 = _safe_div(2 * tp, support + predicted)
    seen = (support + predicted) > 0
    total = cm.sum()
    accuracy = float(tp.sum() / total) if total > 0 else 0.0
    macro = lambda v: float(v[seen].mean()) if seen.any() else 0.0
    return {
        "micro_f1": accuracy,
        "macro_f1": macro(f1),
        "weighted_f1": float((f1 * support).sum() / support.sum()) if support.sum() > 0 else 0.0,
        "precision": macro(precision),
        "recall": macro(recall),
        "accuracy": accuracy,
        "per_class_f1": f1,
        "per_class_precision": precision,
        "per_class_recall": recall,
        "support": support,
    }


def classification_metrics(labels: np.ndarray | Array, preds: np.ndarray | Array,
                           num_classes: int, class_names: Sequence[str] | None = None
                           ) -> dict[str, float]:
    """Flat float metrics for logging: ``micro_f1``, ``macro_f1``, ``weighted_f1``,
    ``precision``, ``recall``,
    ``accuracy`` and ``f1/<class name>`` (names default to the class ids)."""
    names = list(class_names) if class_names is not None else [str(i) for i in range(num_classes)]
    if len(names) != num_classes:
        raise ValueError(f"{len(names)} class names for {num_classes} classes")
    labels = np.asarray(labels).reshape(-1)
    preds = np.asarray(preds).reshape(-1)
    cm = np.asarray(confusion_matrix(jnp.asarray(labels), jnp.asarray(preds), num_classes))
    res = f1_from_confusion(cm)
    out = {k: float(res[k]) for k in ("micro_f1", "macro_f1", "weighted_f1", "precision",
                                      "recall", "accuracy")}
    out.update({f"f1/{n}": float(v) for n, v in zip(names, res["per_class_f1"], strict=True)})
    return out


def mean_std(values: Sequence[float] | np.ndarray, ddof: int = 1) -> tuple[float, float]:
    """Mean and standard deviation of multi-seed results.

    ``ddof=1`` (sample std, the usual "mean +- std over seeds") by default; the std of a
    single value is reported as 0.0.
    """
    v = np.asarray(values, np.float64).reshape(-1)
    if v.size == 0:
        raise ValueError("mean_std of an empty sequence")
    std = float(v.std(ddof=ddof)) if v.size > ddof else 0.0
    return float(v.mean()), std
