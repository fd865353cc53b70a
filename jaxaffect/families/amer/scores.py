"""MEmoR evaluation: F1 summaries overall and on the subsets of Tables 3-6.

* overall: ``micro_f1``, ``macro_f1``, ``weighted_f1`` (Table 3), ``f1/<emotion>`` (Table 6);
* ``speaker/...`` and ``non_speaker/...``: the same three on the examples whose target speaks /
  does not speak in the target segment (the paper's segment-level speakers, Table 6);
* ``full/...``: the three on the examples whose target entry has audio, text and visual
  features (the full-modality subset of Table 4);
* ``avail_<name>/micro_f1``: micro-F1 by the target entry's availability (Table 5): ``AT``
  audio and text without visual, ``V`` visual only, ``AVT`` all three, ``missing`` at least one
  missing (so AT and V are inside missing); ``none`` no modality at all (not a column of the
  paper; reported because MEmoR has such targets);
* ``count/<subset>``: the number of examples of each subset (a subset without examples gets
  its count 0 and no F1 values).
"""

from __future__ import annotations

from collections.abc import Sequence

import jax.numpy as jnp
import numpy as np

from jaxaffect.metrics import confusion_matrix, f1_from_confusion

SUMMARY = ("micro_f1", "macro_f1", "weighted_f1")


def _f1(labels: np.ndarray, preds: np.ndarray, num_classes: int) -> dict:
    cm = np.asarray(confusion_matrix(jnp.asarray(labels), jnp.asarray(preds), num_classes))
    return f1_from_confusion(cm)


def availability_subsets(target_modalities: np.ndarray) -> dict[str, np.ndarray]:
    """Boolean masks of the Table 5 columns from ``[N, 3]`` (audio, text, visual) presence."""
    a, t, v = (np.asarray(target_modalities, bool)[:, i] for i in range(3))
    return {"AT": a & t & ~v, "V": v & ~a & ~t, "AVT": a & t & v, "missing": ~(a & t & v),
            "none": ~a & ~t & ~v}


def emotion_scores(labels: np.ndarray, preds: np.ndarray, class_names: Sequence[str], *,
                   target_modalities: np.ndarray, speaks: np.ndarray) -> dict[str, float]:
    """Every score of the module docstring for one split (labels and predictions as ints)."""
    labels, preds = np.asarray(labels, np.int64), np.asarray(preds, np.int64)
    n = len(class_names)
    res: dict[str, float] = {}
    overall = _f1(labels, preds, n)
    res.update({k: float(overall[k]) for k in SUMMARY})
    res.update({f"f1/{c}": float(f) for c, f in zip(class_names, overall["per_class_f1"],
                                                     strict=True)})
    avail = availability_subsets(target_modalities)
    groups = {"speaker": np.asarray(speaks, bool), "non_speaker": ~np.asarray(speaks, bool),
              "full": avail["AVT"]}
    for name, mask in groups.items():
        res[f"count/{name}"] = float(mask.sum())
        if mask.any():
            sub = _f1(labels[mask], preds[mask], n)
            res.update({f"{name}/{k}": float(sub[k]) for k in SUMMARY})
    for name, mask in avail.items():
        res[f"count/avail_{name}"] = float(mask.sum())
        if mask.any():
            res[f"avail_{name}/micro_f1"] = float(np.mean(labels[mask] == preds[mask]))
    return res
