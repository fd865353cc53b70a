"""PNG plots: confusion matrices, per-step modality attention (paper Fig. 7), training curves,
bars of results over seeds.

matplotlib is imported lazily, inside each function, with the non-interactive Agg backend, so
importing this module costs nothing and works on headless machines.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: str | os.PathLike) -> None:
    path = os.fspath(path)
    parent = os.path.dirname(path)
    if parent:
        os.makedirs(parent, exist_ok=True)
    fig.savefig(path, format="png", dpi=120, bbox_inches="tight")
    _pyplot().close(fig)


def plot_confusion_matrix(cm: Any, class_names: Sequence[str], path: str | os.PathLike,
                          title: str = "", normalize: bool = True,
                          show_counts: bool = True) -> Any:
    """Heat map of a confusion matrix (rows true, columns predicted), returned as the Figure.

    With ``normalize`` (default) the colours are row fractions, i.e. recall per true class, and
    each cell reads "fraction\n(count)" (the count dropped with ``show_counts=False``).
    """
    plt = _pyplot()
    cm = np.asarray(cm, np.float64)
    if cm.shape != (len(class_names), len(class_names)):
        raise ValueError(f"cm shape {cm.shape} does not match {len(class_names)} class names")
    shown = cm
    if normalize:
        rows = cm.sum(axis=1, keepdims=True)
        shown = np.where(rows > 0, cm / np.where(rows > 0, rows, 1.0), 0.0)
    n = len(class_names)
    fig, ax = plt.subplots(figsize=(1.0 + 0.9 * n, 0.8 + 0.8 * n))
    im = ax.imshow(shown, cmap="Blues", vmin=0.0, vmax=1.0 if normalize else None)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04,
                 label=("fraction of the true class (row recall)" if normalize
                        else "number of examples"))
    ax.set_xticks(range(n), labels=list(class_names), rotation=45, ha="right")
    ax.set_yticks(range(n), labels=list(class_names))
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    threshold = np.nanmax(shown) / 2 if shown.size else 0
    for i in range(n):
        for j in range(n):
            text = f"{shown[i, j]:.2f}" if normalize else f"{cm[i, j]:g}"
            if normalize and show_counts:
                text += f"\n({cm[i, j]:g})"
            ax.text(j, i, text, ha="center", va="center", fontsize=7 if show_counts else 8,
                    color="white" if shown[i, j] > threshold else "black")
    what = ("colour: fraction of each true class (recall)" + (", cell: fraction (count)"
                                                             if show_counts else "")
            if normalize else "counts")
    ax.set_title(f"{title}\n{what}" if title else f"confusion matrix\n{what}", fontsize=10)
    _save(fig, path)
    return fig


def plot_attention(weights: Any, token_names: Sequence[str], path: str | os.PathLike,
                   title: str = "", true_label: str | None = None,
                   predicted_label: str | None = None) -> Any:
    """Attention paid to each modality token over time (like the paper's Fig. 7); returns the
    Figure. The clip's ``true_label`` and ``predicted_label``, when given, go in the title.

    ``weights`` is [T, N, N] (per-step query x key weights, e.g. one example of the model's
    ``attention`` output) or [T, N] (already one weight per key token). For [T, N, N] the plotted
    value for key j at step t is the mean over query tokens that attend at that step (rows
    with a non-zero sum), i.e. how much the fused tokens draw from token j. Steps where no token
    attends (padding) are blank. ``token_names`` names the N key tokens.
    """
    plt = _pyplot()
    w = np.asarray(weights, np.float64)
    if w.ndim == 3:
        active = w.sum(axis=-1) > 0  # [T, N] query rows that attend
        count = active.sum(axis=1, keepdims=True)
        w = np.where(count > 0, (w * active[..., None]).sum(axis=1)
                     / np.maximum(count, 1), np.nan)
    elif w.ndim != 2:
        raise ValueError(f"weights must be [T, N, N] or [T, N], got shape {w.shape}")
    steps, n = w.shape
    if n != len(token_names):
        raise ValueError(f"{n} tokens but {len(token_names)} token names")
    fig, ax = plt.subplots(figsize=(min(2.0 + 0.25 * steps, 16.0), 1.0 + 0.45 * n))
    im = ax.imshow(w.T, aspect="auto", cmap="viridis", interpolation="nearest", vmin=0.0)
    fig.colorbar(im, ax=ax, label="attention weight")
    ax.set_yticks(range(n), labels=list(token_names))
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("time step")
    labels = [f"{k}: {v}" for k, v in (("true", true_label), ("predicted", predicted_label))
              if v is not None]
    title = title or "attention to modality tokens"
    ax.set_title(title + ("\n" + ", ".join(labels) if labels else ""), fontsize=10)
    _save(fig, path)
    return fig


LOSS_LABEL = "training loss\n(the task's objective,\nmean over the logging window)"


def plot_training_curves(records: Sequence[Mapping[str, Any]], path: str | os.PathLike,
                         keys: Sequence[str] = ("train/loss", "eval/macro_f1"), *,
                         title: str = "", best_step: int | None = None) -> Any:
    """One panel per key, value against ``step``; records lacking a key are skipped (as in a
    metrics.jsonl where train and eval rows alternate). ``title`` (e.g. the run name) heads the
    figure and ``best_step``, when given, is marked by a dashed vertical line in every panel.
    Returns the Figure."""
    plt = _pyplot()
    keys = list(keys)
    if not keys:
        raise ValueError("no keys to plot")
    fig, axes = plt.subplots(len(keys), 1, figsize=(6.0, 2.4 * len(keys)), squeeze=False)
    for ax, key in zip(axes[:, 0], keys, strict=True):
        pts = [(float(r["step"]), float(r[key])) for r in records
               if key in r and "step" in r and r[key] is not None]
        if pts:
            xs, ys = zip(*sorted(pts), strict=True)
            ax.plot(xs, ys, marker="." if len(xs) < 50 else None, label=key)
        else:
            ax.text(0.5, 0.5, f"no '{key}' records", ha="center", va="center",
                    transform=ax.transAxes)
        if best_step is not None:
            ax.axvline(best_step, color="tab:red", linestyle="--", linewidth=1,
                       label=f"best checkpoint (step {best_step})")
            ax.legend(loc="best", fontsize=8)
        ax.set_ylabel(LOSS_LABEL if key == "train/loss" else key, fontsize=8)
        ax.grid(True, alpha=0.3)
    axes[-1, 0].set_xlabel("step")
    if title:
        axes[0, 0].set_title(title, fontsize=10)
    _save(fig, path)
    return fig


def plot_bars(values: Mapping[str, Sequence[float]], path: str | os.PathLike, *,
              ylabel: str, title: str = "", reference: float | None = None,
              reference_label: str = "chance") -> None:
    """One bar per entry: the mean of its values, with the std as an error bar and every
    value as a dot (e.g. test accuracy per seed); an optional horizontal reference line."""
    plt = _pyplot()
    names = list(values)
    fig, ax = plt.subplots(figsize=(1.6 + 1.4 * len(names), 3.6))
    for i, name in enumerate(names):
        v = np.asarray(values[name], float)
        ax.bar(i, v.mean(), yerr=v.std() if v.size > 1 else None, capsize=4, alpha=0.7)
        ax.scatter(np.full(v.size, i), v, color="black", s=12, zorder=3)
    if reference is not None:
        ax.axhline(reference, color="gray", linestyle="--", linewidth=1, label=reference_label)
        ax.legend(loc="upper left", fontsize=8)
    ax.set_xticks(range(len(names)), names)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title, fontsize=10)
    _save(fig, path)


def plot_grouped_bars(values: Mapping[str, Mapping[str, Sequence[float]]],
                      path: str | os.PathLike, *, ylabel: str, title: str = "") -> None:
    """Bars in groups: values[group][series] -> the mean as a bar (one colour per series, the
    same order in every group), the std as an error bar, every value as a dot (e.g. accuracy
    per seed of several models on several kinds of example). Empty entries get no bar."""
    plt = _pyplot()
    groups = list(values)
    series = list(dict.fromkeys(s for g in groups for s in values[g]))
    if not groups or not series:
        raise ValueError("nothing to plot")
    width = 0.8 / len(series)
    fig, ax = plt.subplots(figsize=(2.0 + 1.1 * len(groups) * max(1, len(series) / 2), 4.0))
    for j, name in enumerate(series):
        color, labelled = f"C{j}", False
        for i, group in enumerate(groups):
            v = np.asarray(values[group].get(name, []), float)
            if not v.size:
                continue
            x = i - 0.4 + width * (j + 0.5)
            ax.bar(x, v.mean(), width=width * 0.9, yerr=v.std(ddof=1) if v.size > 1 else None,
                   capsize=3, alpha=0.7, color=color, label=None if labelled else name)
            labelled = True
            ax.scatter(np.full(v.size, x), v, color="black", s=8, zorder=3)
    ax.set_xticks(range(len(groups)), groups, fontsize=8)
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=8, loc="best")
    if title:
        ax.set_title(title, fontsize=10)
    _save(fig, path)
