"""Plots are written as valid PNG files."""

import struct

import numpy as np
import pytest

from jaxaffect.plots import plot_attention, plot_confusion_matrix, plot_training_curves

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _png_size(path):
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC and data[12:16] == b"IHDR"
    w, h = struct.unpack(">II", data[16:24])
    assert w > 50 and h > 50
    return w, h


def test_confusion_matrix_png(tmp_path):
    cm = np.array([[5, 1, 0], [2, 7, 1], [0, 0, 0]])
    plot_confusion_matrix(cm, ["negative", "neutral", "positive"], tmp_path / "a" / "cm.png",
                          title="coarse")
    plot_confusion_matrix(cm, ["negative", "neutral", "positive"], tmp_path / "cm_raw.png",
                          normalize=False)
    _png_size(tmp_path / "a" / "cm.png")
    _png_size(tmp_path / "cm_raw.png")
    with pytest.raises(ValueError):
        plot_confusion_matrix(cm, ["a", "b"], tmp_path / "bad.png")


def test_attention_png(tmp_path):
    rng = np.random.default_rng(0)
    t, n = 12, 6
    w = rng.random((t, n, n))
    w /= w.sum(-1, keepdims=True)
    w[9:] = 0.0  # padded steps
    names = ["A", "B", "bg", "audio", "text", "h"]
    plot_attention(w, names, tmp_path / "attn.png", title="clip 1")
    plot_attention(w.mean(1), names, tmp_path / "attn2.png")
    _png_size(tmp_path / "attn.png")
    _png_size(tmp_path / "attn2.png")
    with pytest.raises(ValueError):
        plot_attention(w, names[:3], tmp_path / "bad.png")


def test_training_curves_png(tmp_path):
    records = [{"step": s, "train/loss": 2.0 / (s + 1)} for s in range(0, 100, 10)]
    records += [{"step": s, "eval/macro_f1": 0.3 + s / 1000} for s in (50, 100)]
    plot_training_curves(records, tmp_path / "curves.png")
    plot_training_curves(records, tmp_path / "curves2.png", keys=("missing/key",))
    _png_size(tmp_path / "curves.png")
    _png_size(tmp_path / "curves2.png")


def test_plot_bars_writes_a_png(tmp_path):
    from jaxaffect.plots import plot_bars

    path = tmp_path / "bars.png"
    plot_bars({"a": [10.0, 12.0], "b": [30.0]}, path, ylabel="acc", reference=12.5)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 2000
