"""Throughput of the ERATO input pipeline (examples/s), and against plain tf.data per core.

Command (generates a random manual_dir in a temp dir, builds it in both formats, reads it):

    python benchmarks/input_pipeline.py --num_clips=2000 --max_t=35 --dim=64 --batch_size=32

Method: `--num_clips` random clips (5 streams of `--dim` features, T uniform in [1, `--max_t`])
are built in both formats (TFRecord, ArrayRecord). Per format, in this process: the first pass
over the train split that builds the split index; examples/s of
`jaxaffect.families.perr.pipeline` (batch `--batch_size`, max_steps `--max_t`, no tensorflow)
for `--num_batches` batches after 3 warm-up batches, as training reads it (the shuffled split
"train") and as evaluation reads it (split "test", passes repeated); and the time per example
of decoding alone (`--decode_examples` records of the train split already in memory) by TFDS's
`features.deserialize_example_np` and by the pipeline's decoder (`DatasetFiles.decoder`).

Against tf.data, per core (TFRecord build, train split): for each N in `--cores`, one fresh
process pinned to N cores (`os.sched_setaffinity` before it starts, so every thread and worker
process it makes shares those N cores) builds both pipelines and times them in alternating
windows of `--num_batches` batches, `--rounds` rounds (the order flips every round); the figure
per pipeline is the median window, the ratio median(ours) / median(tf.data).
* tf.data: `TFRecordDataset` -> `shuffle(1024)` -> parse + decode (TFDS's graph decoding,
  `features.deserialize_example`: parse_single_example, zlib, decode_raw) -> pad/crop as the
  pipeline does (same crop indices, masks, zeros where a stream is absent) -> `batch` ->
  `prefetch(N)`; `threading.private_threadpool_size = N`, `max_intra_op_parallelism = 1`,
  `map(num_parallel_calls=N)` (a sequential map for N = 1), autotuning off.
* ours: `perr.pipeline.make_dataset(split="train", shuffle=True)` iterated in the measuring
  process for N = 1 (no worker process: "1 core" is the whole pipeline on one core); for
  N >= 2 behind `mp_prefetch` with N grain worker processes (the measuring process, on the same
  N cores, only receives the batches) and, reported beside it, as for N = 1, without worker
  processes (its own reading threads then share the N cores with the measuring thread).
Before each window a pipeline gives up what it prefetched while another one was timed
(tf.data: N + 1 batches; ours: 2 per worker + 1, or 3 without workers). Other load on the
machine reaches all pipelines alike, but the figures of a shared machine stay noisy: compare
ratios within one run.
The run records which library inflated the zlib-encoded streams (`inflater`: libdeflate when
the optional `deflate` package is installed, else zlib).

Every run prints a table and appends one JSON line (figures + commit, CPU, cores, jax,
arguments) to ``--out``; the README's Benchmarks section is rendered from the newest commit's
lines by ``python benchmarks/report.py``. `--builder_dir` measures existing builds instead;
`--cores` with no value skips the comparison with tf.data.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

WARMUP_BATCHES = 3


def ours_dataset(builder_dir: str, *, shuffle: bool, batch_size: int, max_steps: int,
                 workers: int = 0):
    """The ERATO pipeline as training (shuffle) or evaluation reads it, in this process or
    behind `workers` grain worker processes."""
    import grain

    from jaxaffect.families.perr import pipeline

    split = "train" if shuffle else "test"
    ds = pipeline.make_dataset(builder_dir, split, batch_size=batch_size, max_steps=max_steps,
                               shuffle=shuffle, num_epochs=None,
                               process_index=0, process_count=1)
    if workers:
        from absl import flags

        if not flags.FLAGS.is_parsed():  # grain's workers read absl flags; none are ours
            flags.FLAGS.mark_as_parsed()
        ds = ds.mp_prefetch(grain.MultiprocessingOptions(num_workers=workers))
    return ds


def measure(builder_dir: str, *, shuffle: bool, batch_size: int, max_steps: int,
            num_batches: int) -> float:
    """Examples/s of the ERATO pipeline in this process (after WARMUP_BATCHES batches)."""
    iterator = iter(ours_dataset(builder_dir, shuffle=shuffle, batch_size=batch_size,
                                 max_steps=max_steps))
    rate = timed_rate(iterator, num_batches, WARMUP_BATCHES)
    iterator.close()
    return rate


def timed_rate(iterator, num_batches: int, drain: int) -> float:
    """Examples/s over `num_batches` batches, after pulling `drain` batches (what a pipeline
    prefetched while it was not timed)."""
    for _ in range(drain):
        next(iterator)
    start, examples = time.perf_counter(), 0
    for _ in range(num_batches):
        try:
            batch = next(iterator)
        except StopIteration:
            break
        examples += len(batch["label"])
    return examples / (time.perf_counter() - start)


def tf_data_dataset(builder_dir: str, *, cores: int, batch_size: int, max_steps: int):
    """The plain tf.data reading of the train split (see the module docstring)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    from jaxaffect.data.records import dataset_files
    from jaxaffect.families.perr.erato_format import STREAMS

    tf.config.set_visible_devices([], "GPU")
    files = dataset_files(builder_dir)
    features = files.features
    t_max = max_steps

    def pad_or_crop(ex):
        steps = tf.shape(ex["masks"][STREAMS[0]], out_type=tf.int64)[0]
        t = tf.range(t_max, dtype=tf.int64)
        spread = (2 * t * (steps - 1) + (t_max - 1)) // max(2 * (t_max - 1), 1)
        keep = tf.cond(steps > t_max, lambda: spread, lambda: tf.range(steps))
        length = tf.shape(keep)[0]
        streams, masks = {}, {}
        for s in STREAMS:
            m = tf.gather(ex["masks"][s], keep)
            x = tf.where(m[:, None], tf.gather(ex["streams"][s], keep), 0.0)
            masks[s] = tf.pad(m, [[0, t_max - length]])
            streams[s] = tf.pad(x, [[0, t_max - length], [0, 0]])
        return {"streams": streams, "masks": masks, "step_mask": tf.range(t_max) < length,
                "label": tf.cast(ex["label"], tf.int32),
                "coarse_label": tf.cast(ex["coarse_label"], tf.int32),
                "valid": tf.constant(True), "clip_id": ex["clip_id"]}

    ds = tf.data.TFRecordDataset(list(files.filepaths["train"]))
    ds = ds.shuffle(1024, seed=0).repeat()
    ds = ds.map(lambda r: pad_or_crop(features.deserialize_example(r)),
                num_parallel_calls=None if cores == 1 else cores)
    ds = ds.batch(batch_size, drop_remainder=True).prefetch(cores)
    options = tf.data.Options()
    options.threading.private_threadpool_size = cores
    options.threading.max_intra_op_parallelism = 1
    options.autotune.enabled = False
    return ds.with_options(options).as_numpy_iterator()


def side_by_side(builder_dir: str, cores: int, args: argparse.Namespace) -> dict[str, list]:
    """Examples/s of the pipelines in this process, `args.rounds` alternating timed windows
    of `args.num_batches` batches each ({pipeline: [rate per round]}): tf.data and ours, and
    for cores > 1 also ours without worker processes ("ours_in_process")."""
    workers = cores if cores > 1 else 0
    iterators = {
        "tf_data": iter(tf_data_dataset(builder_dir, cores=cores, batch_size=args.batch_size,
                                        max_steps=args.max_t)),
        "ours": iter(ours_dataset(builder_dir, shuffle=True, batch_size=args.batch_size,
                                  max_steps=args.max_t, workers=workers))}
    # what each may have prefetched while another was timed: tf.data's prefetch buffer
    # (`cores` batches) and map buffer; one batch per grain worker, plus one in flight each
    drain = {"tf_data": cores + 1, "ours": 2 * workers + 1}
    if workers:
        iterators["ours_in_process"] = iter(ours_dataset(
            builder_dir, shuffle=True, batch_size=args.batch_size, max_steps=args.max_t))
        drain["ours_in_process"] = 3
    names = list(iterators)
    for name, iterator in iterators.items():
        timed_rate(iterator, 0, WARMUP_BATCHES + drain[name])  # start-up
    samples: dict[str, list] = {name: [] for name in names}
    for r in range(args.rounds):
        for name in (names if r % 2 == 0 else names[::-1]):
            samples[name].append(timed_rate(iterators[name], args.num_batches, drain[name]))
    for name in names[1:]:
        iterators[name].close()  # stops grain's worker processes
    return samples


def pinned_samples(cores: int, builder_dir: str, args: argparse.Namespace) -> dict[str, list]:
    """`side_by_side` in a fresh process pinned to the first `cores` cores."""
    allowed = sorted(os.sched_getaffinity(0))
    if cores > len(allowed):
        raise ValueError(f"--cores {cores}: only {len(allowed)} cores available")
    cpus = set(allowed[:cores])
    command = [sys.executable, os.path.abspath(__file__), "--child_cores", str(cores),
               "--builder_dir", builder_dir, "--batch_size", str(args.batch_size),
               "--max_t", str(args.max_t), "--num_batches", str(args.num_batches),
               "--rounds", str(args.rounds)]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="",
               JAX_PLATFORMS="cpu")
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False,
                          timeout=1800, preexec_fn=lambda: os.sched_setaffinity(0, cpus))
    if done.returncode != 0:
        raise RuntimeError(f"side-by-side run on {cores} cores failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def versus_tf_data(builder_dir: str, args: argparse.Namespace) -> dict[str, dict]:
    """{cores: medians, samples and ratios} of ours against tf.data."""
    out = {}
    for cores in args.cores:
        by = pinned_samples(cores, builder_dir, args)
        theirs = statistics.median(by["tf_data"])
        row: dict[str, Any] = {"tf_data_examples_per_s": round(theirs, 1)}
        for name in by:
            if name != "tf_data":
                rate = statistics.median(by[name])
                row[f"{name}_examples_per_s"] = round(rate, 1)
                row["ratio" if name == "ours" else f"{name}_ratio"] = round(rate / theirs, 2)
        row.update({f"{name}_samples": [round(x, 1) for x in by[name]] for name in by})
        out[str(cores)] = row
        print(f"{cores} core(s): tf.data {theirs:,.0f} examples/s; ours "
              f"{row['ours_examples_per_s']:,.0f} ({row['ratio']:.2f}x)"
              + (f"; ours without worker processes {row['ours_in_process_examples_per_s']:,.0f}"
                 f" ({row['ours_in_process_ratio']:.2f}x)" if "ours_in_process" in by else "")
              + f" (medians of {args.rounds} windows)", flush=True)
    return out


def decode_ms(builder_dir: str, num_examples: int, rounds: int = 3) -> tuple[float, float]:
    """Milliseconds per example of (TFDS's `deserialize_example_np`, our decoder) on records
    already in memory (medians of interleaved rounds)."""
    from jaxaffect.data.records import dataset_files, read_records

    files = dataset_files(builder_dir)
    records = list(itertools.islice(read_records(files, "train"), num_examples))
    times: dict[str, list[float]] = {"tfds": [], "ours": []}
    decoders = {"tfds": files.features.deserialize_example_np, "ours": files.decoder}
    for _ in range(rounds):
        for name, decode in decoders.items():
            decode(records[0])  # warm-up
            start = time.perf_counter()
            for record in records:
                decode(record)
            times[name].append(1e3 * (time.perf_counter() - start) / len(records))
    return statistics.median(times["tfds"]), statistics.median(times["ours"])


def child_main(args: argparse.Namespace) -> None:
    """One pinned side-by-side run (`--child_cores`): prints {pipeline: [rates]}."""
    (builder_dir,) = args.builder_dir
    print(json.dumps(side_by_side(builder_dir, args.child_cores, args)), flush=True)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--builder_dir", nargs="*", default=None,
                        help="existing prepared dirs to measure (skips generation)")
    parser.add_argument("--num_clips", type=int, default=2000)
    parser.add_argument("--max_t", type=int, default=35)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--num_batches", type=int, default=40)
    parser.add_argument("--decode_examples", type=int, default=500,
                        help="records timed through each decoder alone")
    parser.add_argument("--rounds", type=int, default=7,
                        help="alternating timed windows per pipeline against tf.data")
    parser.add_argument("--cores", type=int, nargs="*", default=[1, 2],
                        help="core counts of the comparison with tf.data (none: skipped)")
    parser.add_argument("--out", default="benchmarks/results/input_pipeline.jsonl",
                        help="results file this run appends its JSON line to")
    parser.add_argument("--child_cores", type=int, default=0, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main() -> None:
    args = parse_args()
    if args.child_cores:
        child_main(args)
        return
    import jax

    from jaxaffect.data import build
    from jaxaffect.data.records import dataset_files
    from jaxaffect.demo_runner import append_result, provenance
    from jaxaffect.families.perr import pipeline
    from jaxaffect.families.perr.erato_format import STREAMS, write_random_manual_dir

    t_start = time.perf_counter()
    formats, builds, versus = [], {}, None
    with tempfile.TemporaryDirectory() as tmp:
        dirs = args.builder_dir
        manual_s = None
        if not dirs:
            t0 = time.perf_counter()
            manual = os.path.join(tmp, "manual")
            write_random_manual_dir(manual, num_clips=args.num_clips,
                                    dims={s: args.dim for s in STREAMS},
                                    max_steps=args.max_t, seed=0)
            manual_s = time.perf_counter() - t0
            print(f"manual_dir: {manual_s:.1f} s")
            dirs = []
            for fmt in ("tfrecord", "array_record"):
                t0 = time.perf_counter()
                dirs.append(build.build_dataset("erato", manual, os.path.join(tmp, fmt), fmt))
                builds[fmt] = time.perf_counter() - t0
                print(f"build {fmt}: {builds[fmt]:.1f} s")
        print(f"{'format':<14}{'mode':<7}{'examples/s':>11}")
        for bdir in dirs:
            t0 = time.perf_counter()
            pipeline.split_size(bdir, "train")
            index_s = time.perf_counter() - t0
            fmt = dataset_files(bdir).file_format
            row = {"format": fmt, "build_s": round(builds[fmt], 2) if fmt in builds else None,
                   "index_s": round(index_s, 2)}
            for shuffle in (True, False):
                rate = measure(bdir, shuffle=shuffle, batch_size=args.batch_size,
                               max_steps=args.max_t, num_batches=args.num_batches)
                row["train_examples_per_s" if shuffle else "eval_examples_per_s"] = round(rate, 1)
                print(f"{fmt:<14}{'train' if shuffle else 'eval':<7}{rate:>11,.0f}")
            tfds_ms, ours_ms = decode_ms(bdir, args.decode_examples)
            row["decode_ms_per_example"] = round(tfds_ms, 3)  # TFDS's deserialize_example_np
            row["decoder_ms_per_example"] = round(ours_ms, 3)
            print(f"  (split index pass: {index_s:.1f} s; decoding alone: TFDS "
                  f"deserialize_example_np {tfds_ms:.3f} ms/example, ours {ours_ms:.3f})")
            formats.append(row)
            if fmt == "tfrecord" and args.cores and versus is None:
                versus = versus_tf_data(bdir, args)
    if versus:
        print(f"{'cores':<7}{'tf.data':>10}{'ours':>10}{'ratio':>8}{'no workers':>12}"
              f"{'ratio':>8}   (examples/s, medians of {args.rounds} windows)")
        for cores, v in versus.items():
            alone = v.get("ours_in_process_examples_per_s")
            print(f"{cores:<7}{v['tf_data_examples_per_s']:>10,.0f}"
                  f"{v['ours_examples_per_s']:>10,.0f}{v['ratio']:>7.2f}x"
                  + (f"{alone:>12,.0f}{v['ours_in_process_ratio']:>7.2f}x" if alone else ""))
    from jaxaffect.data.example_decoding import inflater

    extra = {"vs_tf_data": versus, "cpus_available": len(os.sched_getaffinity(0))} if versus \
        else {}
    extra["inflater"] = inflater()
    result = provenance(str(jax.devices()), (time.perf_counter() - t_start) / 60,
                        benchmark="input_pipeline", arguments=vars(args),
                        memory_gib=round(os.sysconf("SC_PAGE_SIZE")
                                         * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
                        manual_dir_s=None if manual_s is None else round(manual_s, 2),
                        formats=formats, **extra)
    print(f"machine: {result['cpu']} ({result['cores']} cores), jax {result['jax']}, "
          f"commit {result['commit']}; appended to {args.out}")
    append_result(args.out, result)


if __name__ == "__main__":
    main()
