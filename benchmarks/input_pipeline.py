"""Throughput of the ERATO grain input pipeline (examples/s), TFRecord vs ArrayRecord.

Command (generates a random manual_dir in a temp dir, builds it in both formats, reads it):

    python benchmarks/input_pipeline.py --num_clips=2000 --max_t=35 --dim=64 --batch_size=32

Method: `--num_clips` random clips (5 streams of `--dim` features, T uniform in [1, `--max_t`])
are built in both formats; each build is then read by `jaxaffect.families.perr.pipeline`
(batch `--batch_size`, max_steps `--max_t`, no tensorflow) for `--num_batches` batches after 3
warm-up batches, as training reads it (the shuffled split "train") and as evaluation reads it
(split "test"). Reported per format: the build time, the first pass over the train split that
builds the split index, examples/s in both modes, and the time per example of
`features.deserialize_example_np` alone (`--decode_examples` records of the train split,
already read into memory), the decoding the reader cannot avoid.

Every run prints a table and appends one JSON line (figures + commit, CPU, cores, jax,
arguments) to ``--out``; the README's Benchmarks section is rendered from the newest commit's
lines by ``python benchmarks/report.py``. `--builder_dir` measures an existing build instead.
"""

from __future__ import annotations

import argparse
import itertools
import os
import tempfile
import time

import jax

from jaxaffect.data import build
from jaxaffect.data.records import dataset_files, read_records
from jaxaffect.demo_runner import append_result, provenance
from jaxaffect.families.perr import pipeline
from jaxaffect.families.perr.erato_format import STREAMS, write_random_manual_dir


def measure(builder_dir: str, *, shuffle: bool, batch_size: int, max_steps: int,
            num_batches: int, warmup: int = 3) -> float:
    split = "train" if shuffle else "test"
    ds = pipeline.make_dataset(builder_dir, split, batch_size=batch_size, max_steps=max_steps,
                               shuffle=shuffle, num_epochs=None if shuffle else 1,
                               process_index=0, process_count=1)
    it = iter(ds)
    for _ in range(warmup):
        next(it)
    start, examples = time.perf_counter(), 0
    for _ in range(num_batches):
        try:
            batch = next(it)
        except StopIteration:
            break
        examples += len(batch["label"])
    return examples / (time.perf_counter() - start)


def decode_ms(builder_dir: str, num_examples: int) -> float:
    """Milliseconds per example of `deserialize_example_np` on records already in memory."""
    files = dataset_files(builder_dir)
    records = list(itertools.islice(read_records(files, "train"), num_examples))
    files.features.deserialize_example_np(records[0])  # warm-up
    start = time.perf_counter()
    for record in records:
        files.features.deserialize_example_np(record)
    return 1e3 * (time.perf_counter() - start) / len(records)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--builder_dir", nargs="*", default=None,
                        help="existing prepared dirs to measure (skips generation)")
    parser.add_argument("--num_clips", type=int, default=2000)
    parser.add_argument("--max_t", type=int, default=35)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--num_batches", type=int, default=40)
    parser.add_argument("--decode_examples", type=int, default=500,
                        help="records timed through deserialize_example_np alone")
    parser.add_argument("--out", default="benchmarks/results/input_pipeline.jsonl",
                        help="results file this run appends its JSON line to")
    args = parser.parse_args()
    t_start = time.perf_counter()

    formats, builds = [], {}
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
            row["decode_ms_per_example"] = round(decode_ms(bdir, args.decode_examples), 3)
            print(f"  (split index pass: {index_s:.1f} s; deserialize_example_np alone: "
                  f"{row['decode_ms_per_example']:.2f} ms/example)")
            formats.append(row)

    result = provenance(str(jax.devices()), (time.perf_counter() - t_start) / 60,
                        benchmark="input_pipeline", arguments=vars(args),
                        memory_gib=round(os.sysconf("SC_PAGE_SIZE")
                                         * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
                        manual_dir_s=None if manual_s is None else round(manual_s, 2),
                        formats=formats)
    print(f"machine: {result['cpu']} ({result['cores']} cores), jax {result['jax']}, "
          f"commit {result['commit']}; appended to {args.out}")
    append_result(args.out, result)


if __name__ == "__main__":
    main()
