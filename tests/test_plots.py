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
    fig = plot_confusion_matrix(cm, ["negative", "neutral", "positive"], tmp_path / "cm2.png",
                                title="run7")
    ax, cbar = fig.axes
    assert "run7" in ax.get_title() and "fraction of each true class" in ax.get_title()
    assert "row recall" in cbar.get_ylabel()
    texts = [t.get_text() for t in ax.texts]
    assert texts[3] == "0.20\n(2)" and texts[4] == "0.70\n(7)"  # row "neutral": 2, 7, 1 of 10
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
    fig = plot_attention(w.mean(1), names, tmp_path / "attn2.png", true_label="happy",
                         predicted_label="sad")
    assert "true: happy, predicted: sad" in fig.axes[0].get_title()
    _png_size(tmp_path / "attn.png")
    _png_size(tmp_path / "attn2.png")
    with pytest.raises(ValueError):
        plot_attention(w, names[:3], tmp_path / "bad.png")


def test_training_curves_png(tmp_path):
    records = [{"step": s, "train/loss": 2.0 / (s + 1)} for s in range(0, 100, 10)]
    records += [{"step": s, "eval/macro_f1": 0.3 + s / 1000} for s in (50, 100)]
    fig = plot_training_curves(records, tmp_path / "curves.png", title="smta_run",
                               best_step=50)
    loss_ax, f1_ax = fig.axes
    assert loss_ax.get_title() == "smta_run"
    assert loss_ax.get_ylabel().startswith("training loss") and "mean over" in \
        loss_ax.get_ylabel()
    for ax in (loss_ax, f1_ax):
        best = [ln for ln in ax.get_lines() if "best checkpoint" in ln.get_label()]
        assert len(best) == 1 and list(best[0].get_xdata()) == [50, 50]
        assert "best checkpoint (step 50)" in [t.get_text() for t in ax.get_legend().get_texts()]
    plot_training_curves(records, tmp_path / "curves2.png", keys=("missing/key",))
    _png_size(tmp_path / "curves.png")
    _png_size(tmp_path / "curves2.png")


def test_plot_bars_writes_a_png(tmp_path):
    from jaxaffect.plots import plot_bars

    path = tmp_path / "bars.png"
    plot_bars({"a": [10.0, 12.0], "b": [30.0]}, path, ylabel="acc", reference=12.5)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 2000


def test_plot_grouped_bars_writes_a_png_and_refuses_nothing(tmp_path):
    from jaxaffect.plots import plot_grouped_bars

    path = tmp_path / "grouped.png"
    plot_grouped_bars({"g1": {"a": [1.0, 2.0], "b": [3.0]}, "g2": {"a": [], "b": [4.0, 5.0]}},
                      path, ylabel="acc", title="t")
    _png_size(path)
    with pytest.raises(ValueError, match="nothing to plot"):
        plot_grouped_bars({}, tmp_path / "empty.png", ylabel="acc")


def test_metric_writer_puts_a_png_in_tensorboard(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from jaxaffect.run_logging import MetricWriter

    png = tmp_path / "cm.png"
    plot_confusion_matrix(np.eye(2), ["a", "b"], png)
    writer = MetricWriter(tmp_path / "run")
    writer.write_image("test/cm", png, 7)
    writer.close()
    events = EventAccumulator(str(tmp_path / "run" / "tensorboard"))
    events.Reload()
    assert "test/cm" in events.Tags()["images"]
    (img,) = events.Images("test/cm")
    assert img.step == 7 and img.width > 50 and img.height > 50
