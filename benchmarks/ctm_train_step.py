"""Train step of TAM's CTM classifier at the paper's size: rate, and FLOPs counted honestly.

    python benchmarks/ctm_train_step.py                # the paper's batch 8, 3 rounds of 1 step
    python benchmarks/ctm_train_step.py --batch 2 --steps 2

The step is the generic trainer's (`jaxaffect.train.Setup.make_train_step`: forward with
dropout, cross-entropy, gradient, Adam update, one jitted call with donated state) for TAM's
own task and model as ``configs/tam/ctm.py:dataset=ve8,strategy=ctm`` builds them (d = 768,
12 CTM layers scanned with ``nn.scan``, 12 heads, T = 64 segments, 8 classes), on random
features of the paper's extractors' sizes (image 512, motion 2048, audio 128) in place of a
build.

Reported: examples/s (median over ``--rounds`` rounds of ``--steps`` steps, after one warm-up
step), compile seconds, FLOPs per step counted by `jaxaffect.perf.count_flops` (the scanned
layers counted once per layer) next to XLA's cost analysis (which counts the scanned body once),
the achieved GFLOP/s and its fraction of this machine's float32 matmul peak measured in the same
run (`jaxaffect.perf.matmul_peak_gflops` before each round; the median over rounds).
Every run appends a JSON line (figures + commit, CPU, versions, arguments) to ``--out``; the
README's Benchmarks section renders the newest commit's runs (``python benchmarks/report.py``).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402
import numpy as np  # noqa: E402

from jaxaffect.config_loading import load_config  # noqa: E402
from jaxaffect.demo_runner import append_result, provenance  # noqa: E402
from jaxaffect.families.tam.task import TAMTask  # noqa: E402
from jaxaffect.perf import count_flops, matmul_peak_gflops, xla_flops  # noqa: E402
from jaxaffect.task import register  # noqa: E402
from jaxaffect.train import Setup  # noqa: E402

# the paper's extractors: CLIP ViT-B/32 frames, R3D clips, VGGish audio
PAPER_DIMS = {"image": 512, "motion": 2048, "audio": 128}


@register("tam_ctm_benchmark")
class CTMBenchmarkTask(TAMTask):
    """TAM's video task with the paper's stream sizes in place of a build's metadata."""

    def metadata(self) -> dict:
        return {"stream_dims": dict(PAPER_DIMS)}


def random_batch(task: TAMTask, batch: int, seed: int = 0) -> dict:
    """The task's batch layout filled with random features and labels (no padding)."""
    rng = np.random.default_rng(seed)
    b = task.dummy_batch(batch)
    b["features"] = {m: rng.normal(size=x.shape).astype(np.float32)
                     for m, x in b["features"].items()}
    b["label"] = rng.integers(0, len(task.class_names), batch).astype(np.int32)
    return b


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, default=8, help="videos per step (the paper's 8)")
    p.add_argument("--steps", type=int, default=1, help="timed steps per round")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--bf16", action="store_true", help="compute in bfloat16 (params f32)")
    p.add_argument("--remat", action="store_true", help="recompute activations in backward")
    p.add_argument("--out", default="benchmarks/results/ctm_train_step.jsonl")
    args = p.parse_args()
    t_start = time.perf_counter()

    config = load_config("configs/tam/ctm.py:dataset=ve8,strategy=ctm")
    config.task = "tam_ctm_benchmark"
    config.data.builder_dir = "unused: random features"
    config.training.batch_size = args.batch
    config.model.dtype = "bfloat16" if args.bf16 else "float32"
    config.model.remat = args.remat
    setup = Setup(config, steps_per_epoch=1)
    state = setup.init_state()
    train_step = setup.make_train_step()
    batch = jax.device_put(random_batch(setup.task, args.batch))
    key = jax.random.key(0)

    flops = count_flops(train_step, state, batch, key)
    t0 = time.perf_counter()
    compiled = train_step.lower(state, batch, key).compile()
    compile_s = time.perf_counter() - t0
    xla = xla_flops(compiled)

    def steps(n: int) -> float:
        nonlocal state
        t0 = time.perf_counter()
        for _ in range(n):
            state, metrics = compiled(state, batch, key)
        jax.block_until_ready(state)
        assert np.isfinite(float(metrics["loss"]))
        return time.perf_counter() - t0

    steps(1)  # warm-up
    rates, peaks = [], []
    for r in range(args.rounds):  # the peak next to each round: both see the same load
        peaks.append(matmul_peak_gflops(reps=5))
        rates.append(args.batch * args.steps / steps(args.steps))
        print(f"round {r}: {rates[-1]:.2f} examples/s, matmul peak {peaks[-1]:.0f} GFLOP/s",
              flush=True)
    rate, peak = statistics.median(rates), statistics.median(peaks)
    gflop_s = flops.total / 1e9 * rate / args.batch
    m = config.model
    result = {
        "batch": args.batch, "dtype": m.dtype, "remat": bool(m.remat),
        "sizes": {"features": PAPER_DIMS, "width": m.width, "layers": m.num_layers,
                  "heads": m.num_heads, "segments": config.data.num_segments,
                  "classes": len(setup.task.class_names)},
        "params": int(sum(x.size for x in jax.tree_util.tree_leaves(state.params))),
        "examples_per_s": round(rate, 3), "rounds": [round(x, 3) for x in rates],
        "step_s": round(args.batch / rate, 3), "compile_s": round(compile_s, 1),
        "flops_per_step": flops.total, "matmul_flops_per_step": flops.matmul,
        "xla_flops_per_step": xla, "gflop_per_s": round(gflop_s, 1),
        "matmul_peak_gflop_per_s": round(peak, 1), "peak_fraction": round(gflop_s / peak, 3),
        "matmul_peak_rounds": [round(x, 1) for x in peaks],
        "cpus_available": len(os.sched_getaffinity(0))}
    result = provenance(str(jax.devices()), (time.perf_counter() - t_start) / 60,
                        benchmark="ctm_train_step", arguments=vars(args), **result)
    append_result(args.out, result)
    print(f"CTM train step (batch {args.batch}, {m.dtype}): {rate:.2f} examples/s "
          f"({result['step_s']} s/step), compile {compile_s:.1f} s; "
          f"{flops.total / 1e9:.1f} GFLOP/step ({flops.matmul / flops.total:.0%} matmul; XLA "
          f"counts {xla / 1e9:.1f}), {gflop_s:.1f} GFLOP/s = {gflop_s / peak:.0%} of the "
          f"{peak:.0f} GFLOP/s matmul peak\nappended to {args.out}")


if __name__ == "__main__":
    main()
