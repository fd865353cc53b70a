"""AV-CPNet's input pipeline against what its train step consumes, at the demo size.

    PYTHONPATH=. python benchmarks/avcpnet_input_pipeline.py [--workers 0,1,2]

Reads the demo's synthetic eMotions build (written and built first when absent, under
$JAXAFFECT_HOME) as training reads it (`AVCPNetTask.dataset("train")`: random snippets, JPEG
decoding of the sampled frames, MFCC) with 0 (in the training process) and N grain worker
processes, and times the demo-size AV-CPNet train step on the same machine in the same run.
Appends one JSON line to ``--out``; the README renders the latest runs. The goal: the pipeline
delivers >= 3x the clips per second the step consumes.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402
import optax  # noqa: E402

from jaxaffect.demo_runner import append_result, provenance  # noqa: E402
from jaxaffect.families.avcpnet.demo import AVCPNetDemo, demo_config  # noqa: E402
from jaxaffect.task import get_task  # noqa: E402


def pipeline_rate(config, workers: int, batches: int) -> float:
    """Steady-state clips per second of the training dataset: worker start-up and the
    batches already prefetched while it ran are pulled before the clock starts (each worker
    keeps a buffer, so the first batches after start-up cost nothing)."""
    config.data.workers = workers
    task = get_task(config)
    ds = task.dataset("train", train=True, seed=0, num_epochs=None, process_index=0,
                      process_count=1)
    it = iter(ds)
    first = next(it)
    buffer = int(config.data.get("worker_buffer", 1) or 1)
    for _ in range(workers * buffer + 2):  # drain what was prefetched during start-up
        next(it)
    t0 = time.perf_counter()
    for _ in range(batches):
        next(it)
    dt = time.perf_counter() - t0
    del it, ds
    import gc

    gc.collect()  # shuts worker processes down before the next measurement
    time.sleep(2)
    return batches * len(first["label"]) / dt


def transform_rate(config, clips: int) -> float:
    """Clips per second of the per-clip work alone (record decoding, JPEG decoding of the
    sampled frames, crop, MFCC) in this process on one core: what one worker can deliver."""
    import numpy as np

    from jaxaffect.families.avcpnet import clips as clip_ops

    task = get_task(config)
    source = task.examples("train")
    transform = clip_ops.RecordTransform(task.builder_dir, task.spec)
    records = [source[i % len(source)] for i in range(clips)]
    rng = np.random.default_rng(0)
    transform(records[0], rng)
    t0 = time.perf_counter()
    for record in records:
        transform(record, rng)
    return clips / (time.perf_counter() - t0)


def step_rate(config, steps: int) -> float:
    """Clips per second of the demo-size train step (compiled once, on one device)."""
    task = get_task(config)
    model = task.make_model()
    ds = iter(task.dataset("train", train=True, seed=0, num_epochs=None, process_index=0,
                           process_count=1))
    batch = task.device_batch(next(ds))
    params = task.init_variables(model, jax.random.key(0), batch)["params"]
    tx = optax.adamw(1e-3, weight_decay=0.05)
    state = (params, tx.init(params))

    def train_step(state, batch, key):
        params, opt = state
        (loss, _), grads = jax.value_and_grad(
            lambda p: task.loss(model, p, batch, key, True), has_aux=True)(params)
        updates, opt = tx.update(grads, opt, params)
        return (optax.apply_updates(params, updates), opt), loss

    step = jax.jit(train_step, donate_argnums=0)
    batch = jax.device_put(batch)
    state, loss = step(state, batch, jax.random.key(0))
    jax.block_until_ready(loss)
    t0 = time.perf_counter()
    for i in range(steps):
        state, loss = step(state, batch, jax.random.key(i))
        jax.block_until_ready(loss)
    return steps * len(batch["label"]) / (time.perf_counter() - t0)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--workers", default="0,2", help="comma-separated worker counts")
    p.add_argument("--batches", type=int, default=60, help="timed batches per measurement")
    p.add_argument("--clips", type=int, default=200, help="clips timed by the transform alone")
    p.add_argument("--steps", type=int, default=12, help="timed train steps")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--out", default="benchmarks/results/avcpnet_input_pipeline.jsonl")
    args = p.parse_args()
    t_start = time.perf_counter()
    demo = AVCPNetDemo()
    settings = demo.settings(quick=False)
    from jaxaffect.data.build import data_home

    build = demo.prepare(data_home(), settings)["emotions"]
    config = demo_config("epce", build, settings, 0)
    workers = [int(w) for w in args.workers.split(",")]
    rates: dict[int, list[float]] = {w: [] for w in workers}
    steps: list[float] = []
    alone: list[float] = []
    for r in range(args.rounds):  # alternating: pipeline settings, then the step
        alone.append(transform_rate(config, args.clips))
        for w in workers:
            rates[w].append(pipeline_rate(config, w, args.batches))
        steps.append(step_rate(config, args.steps))
        print(f"round {r}: per-clip work alone {alone[-1]:.1f} clips/s on one core; "
              + ", ".join(f"{w} workers {rates[w][-1]:.1f}" for w in workers)
              + f" clips/s; train step {steps[-1]:.1f} clips/s", flush=True)
    step_med = statistics.median(steps)
    result = {"batch": int(config.training.batch_size),
              "video_shape": [int(config.data.num_segments),
                              int(config.data.frames_per_snippet), int(config.data.crop),
                              int(config.data.crop), 3],
              "train_step_clips_per_s": round(step_med, 1),
              "transform_clips_per_s": round(statistics.median(alone), 1),
              "pipeline_clips_per_s": {str(w): round(statistics.median(v), 1)
                                       for w, v in rates.items()},
              "cpus_available": len(os.sched_getaffinity(0))}
    result["ratio"] = {w: round(v / step_med, 2) for w, v in
                       result["pipeline_clips_per_s"].items()}
    result = provenance(str(jax.devices()), (time.perf_counter() - t_start) / 60,
                        benchmark="avcpnet_input_pipeline", arguments=vars(args), **result)
    append_result(args.out, result)
    print(json.dumps({k: result[k] for k in ("pipeline_clips_per_s", "train_step_clips_per_s",
                                             "ratio")}))


if __name__ == "__main__":
    main()
