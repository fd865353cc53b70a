"""Extraction throughput: seconds of video per second of wall time, per stage and per run.

    PYTHONPATH=. python benchmarks/extraction.py [--videos 8 --seconds 10 --rounds 2]

Writes `--videos` real encoded clips (H.264 + AAC, 320 x 240 at 25 fps, moving shapes, a tone,
two faces from matplotlib's sample photograph, a subtitle file each) into a temporary folder,
then runs, in alternating rounds, the whole `jaxaffect extract tam` with 1 and with 2 worker
processes (a fresh output folder each time) and `jaxaffect extract perr` with 1 worker. Per
stage it reports the video seconds handled per second spent in that stage within one worker
(from the runs' stage timers), so the slowest stage is the one with the lowest rate. Appends
one JSON line to ``--out``; the README renders the latest run.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from jaxaffect.demo_runner import append_result, provenance  # noqa: E402
from jaxaffect.features import media  # noqa: E402

FPS = 25.0
SRT_LINE = "{i}\n{a} --> {b}\nLine number {i}, said with some feeling.\n\n"


def _face(height: int) -> np.ndarray:
    from matplotlib import cbook

    with Image.open(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)) as image:
        w, h = image.size
        return np.asarray(image.convert("RGB").resize((round(w * height / h), height)))


def _stamp(t: float) -> str:
    ms = int(round(t * 1000))
    return f"{ms // 3600000:02d}:{ms // 60000 % 60:02d}:{ms // 1000 % 60:02d},{ms % 1000:03d}"


def write_clips(folder: Path, subs: Path, count: int, seconds: float) -> float:
    """Writes the clips and their subtitles; returns the total video seconds."""
    face = _face(90)
    fh, fw = face.shape[:2]
    rng = np.random.default_rng(0)
    n = int(seconds * FPS)
    t = np.arange(int(seconds * media.SAMPLE_RATE)) / media.SAMPLE_RATE
    for c in range(count):
        base = rng.integers(0, 255, 3).astype(np.uint8)
        frames = np.empty((n, 240, 320, 3), np.uint8)
        for i in range(n):
            frames[i] = base if (i // 50) % 2 == 0 else 255 - base
            x = (3 * i + 17 * c) % 200
            frames[i, 150:190, x:x + 40] = (255, 220, 0)
            frames[i, 20:20 + fh, 10:10 + fw] = face
            if i >= n // 3:
                frames[i, 30:30 + fh, 220:220 + fw] = face[:, ::-1]
        audio = (0.2 * np.sin(2 * np.pi * (220 + 40 * c) * t)).astype(np.float32)
        media.write_video_file(folder / f"clip{c:02d}.mp4", frames, FPS, audio)
        cues = "".join(SRT_LINE.format(i=k + 1, a=_stamp(2 * k), b=_stamp(2 * k + 1.5))
                       for k in range(int(seconds // 2)))
        (subs / f"clip{c:02d}.srt").write_text(cues)
    return count * seconds


def run(layout: str, videos: Path, subs: Path, out: Path, workers: int):
    """One `jaxaffect extract <layout>` run into a fresh `out`: (summary, wall seconds)."""
    from jaxaffect import cli, family

    shutil.rmtree(out, ignore_errors=True)
    args = cli.build_parser().parse_args(
        ["extract", layout, "--videos", str(videos), "--out", str(out), "--workers",
         str(workers), "--no_progress"] + (["--subtitles", str(subs)] if layout == "perr"
                                           else []))
    start = time.perf_counter()
    summary = family.load(family.extractors()[layout].run)(args)
    wall = time.perf_counter() - start
    if summary.failed:
        raise SystemExit(f"{layout}: {len(summary.failed)} failed: {summary.lines()}")
    return summary, wall


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--videos", type=int, default=8)
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--out", default="benchmarks/results/extraction.jsonl")
    args = p.parse_args()
    t_start = time.perf_counter()
    root = Path(tempfile.mkdtemp(prefix="jaxaffect-extract-bench-"))
    try:
        videos, subs = root / "videos", root / "subs"
        videos.mkdir()
        subs.mkdir()
        total = write_clips(videos, subs, args.videos, args.seconds)
        walls: dict[str, list[float]] = {"tam_1": [], "tam_2": [], "perr_1": []}
        stages: dict[str, dict[str, list[float]]] = {"tam": {}, "perr": {}}
        # one untimed run first: imports, the sentence encoder's compile, OpenCV start-up
        run("perr", videos, subs, root / "warm", 1)
        for r in range(args.rounds):
            for key in walls:
                layout, workers = key.split("_")
                summary, wall = run(layout, videos, subs, root / key, int(workers))
                walls[key].append(wall)
                if workers == "1":
                    for stage, secs in summary.stage_seconds.items():
                        stages[layout].setdefault(stage, []).append(total / secs)
            print(f"round {r}: " + ", ".join(f"{k} {total / v[-1]:.2f} s video/s"
                                             for k, v in walls.items()), flush=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    rate = {k: round(total / statistics.median(v), 2) for k, v in walls.items()}
    stage_rate = {layout: {s: round(statistics.median(v), 1) for s, v in st.items()}
                  for layout, st in stages.items()}
    result = {"video_seconds": total, "clip": f"{args.videos} x {args.seconds:g} s, 320 x 240 "
              f"at {FPS:g} fps, H.264 + AAC", "run_video_s_per_s": rate,
              "scaling_2_workers": round(rate["tam_2"] / rate["tam_1"], 2),
              "stage_video_s_per_s": stage_rate,
              "slowest_stage": {layout: min(st, key=st.get) for layout, st in stage_rate.items()},
              "cpus_available": len(os.sched_getaffinity(0))}
    import jax

    result = provenance(str(jax.devices()), (time.perf_counter() - t_start) / 60,
                        benchmark="extraction", arguments=vars(args), **result)
    append_result(args.out, result)
    print(json.dumps({k: result[k] for k in ("run_video_s_per_s", "scaling_2_workers",
                                             "stage_video_s_per_s", "slowest_stage")}))


if __name__ == "__main__":
    main()
