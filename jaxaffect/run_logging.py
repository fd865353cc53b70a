"""What a run writes besides checkpoints: metrics.jsonl, TensorBoard events, a progress bar.

The writer is a small interface so the trainer does not depend on any one backend; TensorBoard
event files are written with tensorboardX (no tensorflow import in the training process).
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jax
import numpy as np

METRICS_FILE = "metrics.jsonl"


def _scalar(v: Any) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f


class MetricWriter:
    """Appends one JSON object per logged step to metrics.jsonl and mirrors scalars to TensorBoard.

    Only process 0 writes. On resume, records at or after the resume step are dropped first so
    metrics.jsonl never holds the same step twice.
    """

    def __init__(self, workdir: str | Path, *, tensorboard: bool = True,
                 resume_step: int | None = None):
        self.workdir = Path(workdir)
        self.active = jax.process_index() == 0
        self.path = self.workdir / METRICS_FILE
        self._tb = None
        if not self.active:
            return
        self.workdir.mkdir(parents=True, exist_ok=True)
        if resume_step is not None and self.path.exists():
            kept = [r for r in read_metrics(self.path) if r.get("step", 0) <= resume_step]
            tmp = self.path.with_suffix(".jsonl.tmp")
            tmp.write_text("".join(json.dumps(r) + "\n" for r in kept))
            tmp.replace(self.path)
        if tensorboard:
            from tensorboardX import SummaryWriter

            self._tb = SummaryWriter(str(self.workdir / "tensorboard"), flush_secs=10)

    def write(self, step: int, metrics: Mapping[str, Any]) -> None:
        if not self.active:
            return
        record: dict[str, Any] = {"step": int(step)}
        for k, v in metrics.items():
            f = _scalar(v)
            if isinstance(v, (int, np.integer)) and not isinstance(v, bool):
                record[k] = int(v)
            else:
                record[k] = v if f is None else (f if math.isfinite(f) else str(f))
            if f is not None and self._tb is not None:
                self._tb.add_scalar(k, f, int(step))
        with self.path.open("a") as fh:
            fh.write(json.dumps(record) + "\n")

    def write_image(self, tag: str, png_path: str | Path, step: int) -> None:
        """Adds a PNG file to TensorBoard as an image summary (RGB, alpha dropped)."""
        if not self.active or self._tb is None:
            return
        from matplotlib.image import imread

        img = np.asarray(imread(str(png_path)))
        if img.dtype != np.uint8:  # PNGs read as float in [0, 1]
            img = np.clip(np.rint(img * 255.0), 0, 255).astype(np.uint8)
        if img.ndim == 2:
            img = np.repeat(img[..., None], 3, axis=-1)
        self._tb.add_image(tag, img[..., :3], int(step), dataformats="HWC")

    def close(self) -> None:
        if self._tb is not None:
            self._tb.flush()
            self._tb.close()
            self._tb = None


def read_metrics(path: str | Path) -> list[dict]:
    path = Path(path)
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        line = line.strip()
        if line:
            out.append(json.loads(line))
    return out


class Progress:
    """A tqdm bar over steps showing loss, rate and ETA (disabled off process 0 or when asked)."""

    def __init__(self, total: int, initial: int = 0, desc: str = "train", enabled: bool = True):
        self.bar = None
        if enabled and jax.process_index() == 0:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, initial=initial, desc=desc, unit="step",
                            dynamic_ncols=True, file=sys.stderr, smoothing=0.1)

    def update(self, n: int = 1, **postfix: Any) -> None:
        if self.bar is None:
            return
        if postfix:
            self.bar.set_postfix({k: (f"{v:.4f}" if isinstance(v, float) else v)
                                  for k, v in postfix.items()}, refresh=False)
        self.bar.update(n)

    def write(self, text: str) -> None:
        if self.bar is not None:
            self.bar.write(text)
        elif jax.process_index() == 0:
            print(text, file=sys.stderr)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
