"""Where Video Swin-T's forward + backward spends its time, ours against torchvision's.

    PYTHONPATH=. python benchmarks/swin_profile.py [--size paper] [--clips 1]

The backbone of ``configs/avcpnet/avcpnet.py:size=<size>`` on ``--clips`` segment clips (the
same computation `benchmarks/avcpnet_train_step.py` times: gradient of the mean squared
features), ours compiled by XLA and torchvision's ``SwinTransformer3d`` in eager PyTorch on the
same input and cores. For each: the wall time of a step (median of ``--rounds``, alternating)
and the op time per step by kind (`jaxaffect.op_profile`: matrix products, layout copies,
broadcasts written to memory, other), from ``jax.profiler`` and ``torch.profiler`` traces of
``--steps`` steps. Appends one JSON line to ``--out``; the README renders the newest run.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from avcpnet_train_step import (  # noqa: E402
    our_backbone_grad,
    our_backbone_inputs,
    swin_settings,
    torchvision_backbone,
)

from jaxaffect.demo_runner import append_result, provenance  # noqa: E402
from jaxaffect.op_profile import torch_op_seconds, xla_op_seconds  # noqa: E402


def _seconds(fn, n: int) -> float:
    t0 = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - t0) / n


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", default="paper", choices=["demo", "paper"])
    p.add_argument("--clips", type=int, default=1, help="segment clips per step")
    p.add_argument("--rounds", type=int, default=3, help="timed steps per model, alternating")
    p.add_argument("--steps", type=int, default=2, help="profiled steps per model")
    p.add_argument("--out", default="benchmarks/results/swin_profile.jsonl")
    args = p.parse_args()
    t_start = time.perf_counter()
    swin, spec = swin_settings(args.size)
    clips = np.random.default_rng(0).normal(
        size=(args.clips, *spec.video_shape[1:])).astype(np.float32)
    params, x = our_backbone_inputs(swin, jnp.float32, clips)
    ours = jax.jit(our_backbone_grad(swin, jnp.float32)).lower(params, x).compile()

    def our_step() -> None:
        jax.block_until_ready(ours(params, x))

    torch, theirs = torchvision_backbone(swin, clips)
    runners = {"ours": our_step} | ({"torchvision": theirs} if theirs else {})
    for run in runners.values():
        run()  # warm-up
    walls: dict[str, list[float]] = {k: [] for k in runners}
    for _ in range(args.rounds):
        for k, run in runners.items():
            walls[k].append(_seconds(run, 1))
    kinds = {"ours": xla_op_seconds(ours, (params, x), args.steps)}
    if theirs:
        kinds["torchvision"] = torch_op_seconds(theirs, args.steps)
    result = {"size": args.size, "clips": args.clips, "input": list(spec.video_shape[1:4]),
              "cpus_available": len(os.sched_getaffinity(0)),
              "torch": None if torch is None else torch.__version__}
    for k in runners:
        result[k] = {"step_s": round(statistics.median(walls[k]), 4),
                     "op_seconds": {kind: round(v, 4) for kind, v in kinds[k].items()}}
        print(f"{k}: step {result[k]['step_s']:.3f} s; op time per step: "
              + ", ".join(f"{kind} {v:.3f} s" for kind, v in kinds[k].items()), flush=True)
    result = provenance(str(jax.devices()), (time.perf_counter() - t_start) / 60,
                        benchmark="swin_profile", arguments=vars(args), **result)
    append_result(args.out, result)
    print(f"appended to {args.out}")


if __name__ == "__main__":
    main()
