"""bilibili_tsc build throughput: in process against Apache Beam's DirectRunner, 1 and 2 workers.

    PYTHONPATH=. python benchmarks/beam_build.py [--num_videos 10000 --rounds 1]

Writes (or reuses, under --corpus) a synthetic comment-video corpus with `jaxaffect synthesize
tsc` (timed: videos/s of the writer), then builds it with `jaxaffect build bilibili_tsc
--builder_config custom` three ways, in alternating rounds, each into a fresh data_dir: in
process (the default), and as a Beam pipeline on the DirectRunner in multi_processing mode with
1 and with 2 worker processes. Reports danmaku rows (comments) per second and videos per second
of each, and each Beam build's rate over the in-process one (the figure); checks that all
builds agree (metadata, dead-letter list, example count). Appends one JSON line to ``--out``.
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
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from jaxaffect.demo_runner import append_result, provenance  # noqa: E402

BEAM = "--runner=DirectRunner --direct_running_mode=multi_processing --direct_num_workers={n}"
KINDS = {"in_process": None, "beam_1": BEAM.format(n=1), "beam_2": BEAM.format(n=2)}


def write_corpus(root: Path, num_videos: int, seed: int) -> tuple[dict, float]:
    """(the corpus summary, seconds the writer took; 0 when an existing corpus was reused)."""
    from jaxaffect.families.tam.synthetic import write_tsc_corpus

    reused = root.exists() and any(root.iterdir())
    start = time.perf_counter()
    summary = write_tsc_corpus(str(root), num_videos=num_videos, seed=seed)
    return summary, 0.0 if reused else time.perf_counter() - start


def build(manual: Path, data_dir: Path, beam_options: str | None) -> tuple[float, dict, str]:
    """One build into a fresh `data_dir`: (wall seconds, metadata.json, dead-letter text)."""
    import logging

    from jaxaffect.data.build import build_dataset

    shutil.rmtree(data_dir, ignore_errors=True)
    logging.getLogger("tfds_builders").setLevel(logging.ERROR)  # per-file lines, not timed
    start = time.perf_counter()
    path = Path(build_dataset("bilibili_tsc", str(manual), str(data_dir), config="custom",
                              beam_options=beam_options))
    wall = time.perf_counter() - start
    meta = json.loads((path / "metadata.json").read_text())
    info = json.loads((path / "dataset_info.json").read_text())
    meta["num_examples"] = sum(int(n) for s in info["splits"] for n in s["shardLengths"])
    letters = (path / "dead_letter.jsonl").read_text()
    shutil.rmtree(data_dir, ignore_errors=True)
    return wall, meta, letters


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--num_videos", type=int, default=10_000)
    p.add_argument("--rounds", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--corpus", default=None,
                   help="where the corpus is written (reused when it holds the same corpus); "
                        "default: a temporary folder, deleted at the end")
    p.add_argument("--out", default="benchmarks/results/beam_build.jsonl")
    args = p.parse_args()
    t_start = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix="jaxaffect-beam-bench-"))
    try:
        manual = Path(args.corpus) if args.corpus else tmp / "corpus"
        summary, write_s = write_corpus(manual, args.num_videos, args.seed)
        print(f"corpus: {args.num_videos} videos, {summary['tsc']['num_comments']} comments"
              + (f", written in {write_s:.1f} s" if write_s else " (reused)"), flush=True)
        walls: dict[str, list[float]] = {k: [] for k in KINDS}
        results: dict[str, tuple[dict, str]] = {}
        for r in range(args.rounds):
            for kind, options in KINDS.items():
                wall, meta, letters = build(manual, tmp / kind, options)
                walls[kind].append(wall)
                results[kind] = (meta, letters)
                print(f"round {r}: {kind} {wall:.1f} s", flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    reference = results["in_process"]
    for kind, found in results.items():
        if found != reference:
            raise SystemExit(f"{kind}: the build differs from the in-process build")
    meta = reference[0]
    rows, videos = meta["stage_counts"]["parsed"], meta["num_videos"]
    wall = {k: statistics.median(v) for k, v in walls.items()}
    result = {
        "num_videos": args.num_videos, "danmaku_rows": rows, "videos_kept": videos,
        "comments_kept": meta["num_comments"], "examples": meta["num_examples"],
        "synthesize_videos_per_s": round(args.num_videos / write_s, 1) if write_s else None,
        "build_s": {k: round(v, 2) for k, v in wall.items()},
        "comments_per_s": {k: round(rows / v, 1) for k, v in wall.items()},
        "videos_per_s": {k: round(args.num_videos / v, 2) for k, v in wall.items()},
        "ratio_to_in_process": {k: round(wall["in_process"] / v, 2) for k, v in wall.items()
                                if k != "in_process"},
        "scaling_2_workers": round(wall["beam_1"] / wall["beam_2"], 2),
        "beam_options": {k: v for k, v in KINDS.items() if v},
        "cpus_available": len(os.sched_getaffinity(0)),
    }
    import apache_beam
    import jax

    result = provenance(str(jax.devices()), (time.perf_counter() - t_start) / 60,
                        benchmark="beam_build", arguments=vars(args),
                        apache_beam=apache_beam.__version__, **result)
    append_result(args.out, result)
    print(json.dumps({k: result[k] for k in ("comments_per_s", "videos_per_s",
                                             "ratio_to_in_process", "scaling_2_workers",
                                             "synthesize_videos_per_s")}))


if __name__ == "__main__":
    main()
