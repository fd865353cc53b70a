"""The matrix products of Video Swin-T's forward + backward one by one, XLA against PyTorch.

    PYTHONPATH=. python benchmarks/swin_matmuls.py [--size paper] [--rounds 5]

Every matrix product of the backbone of ``configs/avcpnet/avcpnet.py:size=<size>`` on one
segment clip, with its shape derived from the config (tokens, widths, windows and heads per
stage): per block the q/k/v projection, the attention logits (q @ k^T per window and head),
the weighted values, the output projection and the two MLP layers, each with the two products
of its backward pass (input and weight gradients); the patch embedding and patch merging are
left out. Each product is timed alone as a jitted ``jnp.matmul`` and as ``torch.matmul`` on
the same arrays and cores (median of ``--rounds`` alternating rounds; with the cores each kept
busy: the process's CPU time over the wall time), then weighted by how
often it runs in a step (the stage's depth). The ratio of the two sums is what the libraries'
matrix-product kernels alone contribute to the backbones' speed ratio, since no rewrite of the
model around its products changes them. The sums themselves are not the products' share of a
real step (`swin_profile.py` measures that): a product timed alone runs with no other work
around it, and in a step XLA may run independent products at the same time. Appends one JSON
line to ``--out``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from typing import Any

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from avcpnet_train_step import swin_settings  # noqa: E402

from jaxaffect.demo_runner import append_result, provenance  # noqa: E402

OPS = ("q/k/v projection", "attention logits", "weighted values", "output projection",
       "MLP layer 1", "MLP layer 2")


def products(swin: dict, frames: int, side: int) -> list[dict[str, Any]]:
    """Every product of one segment clip's forward + backward: {op, stage, kind (forward |
    input gradient | weight gradient), shape (batch, m, k, n), count per step}."""
    pt, ph, pw = swin["patch_size"]
    t, h, w = -(-frames // pt), -(-side // ph), -(-side // pw)
    out = []
    for i, (depth, heads) in enumerate(zip(swin["depths"], swin["num_heads"])):
        c = swin["embed_dim"] * 2 ** i
        hidden = int(c * swin["mlp_ratio"])
        win = [min(s, ws) for s, ws in zip((t, h, w), swin["window_size"])]
        padded = [-(-s // ws) * ws for s, ws in zip((t, h, w), win)]
        tokens = padded[0] * padded[1] * padded[2]
        n = win[0] * win[1] * win[2]
        windows = tokens // n
        dh = c // heads
        dense = {"q/k/v projection": (c, 3 * c), "output projection": (c, c),
                 "MLP layer 1": (c, hidden), "MLP layer 2": (hidden, c)}
        shapes = {op: (1, tokens, width_in, width_out)
                  for op, (width_in, width_out) in dense.items()}
        shapes["attention logits"] = (windows * heads, n, dh, n)
        shapes["weighted values"] = (windows * heads, n, n, dh)
        for op in OPS:
            b, m, k, nn_ = shapes[op]
            # A [m, k] @ B [k, n]; backward: dA = dC [m, n] @ B^T [n, k], dB = A^T [k, m] @ dC
            for kind, shape in (("forward", (b, m, k, nn_)), ("input gradient", (b, m, nn_, k)),
                                ("weight gradient", (b, k, m, nn_))):
                out.append({"op": op, "stage": i + 1, "kind": kind, "shape": shape,
                            "count": depth})
        h, w = -(-h // 2), -(-w // 2)
    return out


def time_product(shape: tuple[int, int, int, int], rounds: int, torch: Any
                 ) -> dict[str, float]:
    """Median seconds of one product of `shape` (batch, m, k, n), XLA and torch alternating,
    and the cores each kept busy meanwhile (this process's CPU time / wall time)."""
    b, m, k, n = shape
    rng = np.random.default_rng(0)
    a = rng.normal(size=(b, m, k)).astype(np.float32)
    c = rng.normal(size=(b, k, n)).astype(np.float32)
    ja, jc = jnp.asarray(a), jnp.asarray(c)
    ours = jax.jit(jnp.matmul).lower(ja, jc).compile()
    ta, tc = torch.from_numpy(a), torch.from_numpy(c)
    # at least 10 products (and 2 GFLOP) per measurement: a single call also times the
    # thread pool waking up, tens of percent of a product of a few milliseconds
    reps = max(10, int(2e9 / (2 * b * m * k * n)))
    jax.block_until_ready(ours(ja, jc))
    torch.matmul(ta, tc)
    wall: dict[str, list[float]] = {"xla": [], "torch": []}
    cpu: dict[str, list[float]] = {"xla": [], "torch": []}

    def run_xla() -> None:
        for _ in range(reps):
            r = ours(ja, jc)
        jax.block_until_ready(r)

    def run_torch() -> None:
        for _ in range(reps):
            torch.matmul(ta, tc)

    for _ in range(rounds):
        for name, run in (("xla", run_xla), ("torch", run_torch)):
            t0, c0 = time.perf_counter(), time.process_time()
            run()
            wall[name].append((time.perf_counter() - t0) / reps)
            cpu[name].append((time.process_time() - c0) / reps)
    out = {}
    for name in wall:
        out[f"{name}_s"] = statistics.median(wall[name])
        out[f"{name}_cores"] = sum(cpu[name]) / sum(wall[name])
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", default="paper", choices=["demo", "paper"])
    p.add_argument("--rounds", type=int, default=9)
    p.add_argument("--out", default="benchmarks/results/swin_matmuls.jsonl")
    args = p.parse_args()
    try:
        import torch
    except ImportError:
        raise SystemExit("swin_matmuls needs torch (the reference library)") from None
    t_start = time.perf_counter()
    cores = len(os.sched_getaffinity(0))
    torch.set_num_threads(cores)
    swin, spec = swin_settings(args.size)
    frames, side = spec.frames_per_snippet, spec.crop
    rows = products(swin, frames, side)
    for row in rows:
        row.update(time_product(row["shape"], args.rounds, torch))
        row["shape"] = list(row["shape"])
        print(f"stage {row['stage']} {row['op']:18s} {row['kind']:15s} {row['shape']}: "
              f"xla / torch {row['xla_s'] / row['torch_s']:.2f}, cores busy "
              f"{row['xla_cores']:.2f} / {row['torch_cores']:.2f}", flush=True)
    minutes = (time.perf_counter() - t_start) / 60
    record = {**provenance(f"{jax.device_count()} cpu device(s)", minutes),
              "benchmark": "swin_matmuls", "arguments": vars(args), "size": args.size,
              "input": [frames, side, side], "cpus_available": cores,
              "torch": torch.__version__, "products": rows}
    append_result(args.out, record)
    per_step = {k: sum(r[k] * r["count"] for r in rows) for k in ("xla_s", "torch_s")}
    print(f"products of one step: XLA {per_step['xla_s']:.3f} s, torch "
          f"{per_step['torch_s']:.3f} s")


if __name__ == "__main__":
    main()
