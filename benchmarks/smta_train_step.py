"""Train-step throughput of the PERR model: SMTA(transformer) vs the LSTM baseline, on CPU.

    python benchmarks/smta_train_step.py

Every run prints a table (variant, compile seconds, step milliseconds, examples/s) and appends
one JSON line (the figures of every variant + commit, CPU, cores, jax, arguments) to ``--out``;
the README's Benchmarks section is rendered from the newest commit's lines by
``python benchmarks/report.py`` (figures are never typed there or here).

`smta/transformer` is the default implementation (one LSTM scan, then the attention of all
steps at once); `/scan` runs the attention inside the scanned step, the same function.

At these sizes a step is compute-bound: most of the work is the per-step transformer layer
over 6 tokens and the five 1024->2048 temporal LSTM projections.

Assumed sizes (the available text of the paper does not give its feature sizes): 5 streams
(person_a, person_b, background, audio, text), each 512-d; model width d = 512; T = 32 steps;
batch 16 (the paper's mini-batch); 5 classes; Adam (the paper's optimiser, lr 5e-3). One train
step = forward with dropout + Eq. 5 loss + grad + optax update, jitted with donated state;
timed over ``--steps`` steps after ``--warmup`` steps, each step blocked on.
"""

from __future__ import annotations

import argparse
import json
import os
import time

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402

from jaxaffect.demo_runner import provenance  # noqa: E402
from jaxaffect.families.perr.erato_format import STREAMS  # noqa: E402
from jaxaffect.families.perr.losses import perr_loss  # noqa: E402
from jaxaffect.families.perr.model import PERRModel  # noqa: E402


def make_batch(batch: int, steps: int, dim: int, num_classes: int, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    lengths = rng.integers(steps // 2, steps + 1, size=batch)
    step_mask = np.arange(steps)[None] < lengths[:, None]
    masks = {s: (rng.random((batch, steps)) > 0.2) & step_mask for s in STREAMS}
    streams = {s: np.where(masks[s][..., None], rng.normal(size=(batch, steps, dim)), 0.0)
               .astype(np.float32) for s in STREAMS}
    labels = rng.integers(0, num_classes, size=batch).astype(np.int32)
    return {"streams": streams, "masks": masks, "step_mask": step_mask, "labels": labels}


def bench(model: PERRModel, batch: dict, warmup: int, steps: int, lr: float) -> dict:
    tx = optax.adam(lr)
    params = jax.jit(model.init)(jax.random.key(0), batch["streams"], batch["masks"],
                                 batch["step_mask"])["params"]
    state = (params, tx.init(params), jax.random.key(1))

    def train_step(state, batch):
        params, opt_state, key = state
        key, dkey = jax.random.split(key)

        def loss_fn(p):
            out = model.apply({"params": p}, batch["streams"], batch["masks"],
                              batch["step_mask"], train=True, rngs={"dropout": dkey})
            return perr_loss(out["logits"], out["modality_logits"], batch["labels"])[0]

        loss, grads = jax.value_and_grad(loss_fn)(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        return (optax.apply_updates(params, updates), opt_state, key), loss

    step = jax.jit(train_step, donate_argnums=0)
    batch = jax.device_put(batch)
    t0 = time.perf_counter()
    compiled = step.lower(state, batch).compile()
    compile_s = time.perf_counter() - t0
    for _ in range(warmup):
        state, loss = compiled(state, batch)
    jax.block_until_ready((state, loss))
    t0 = time.perf_counter()
    for _ in range(steps):
        state, loss = compiled(state, batch)
        jax.block_until_ready(loss)
    dt = (time.perf_counter() - t0) / steps
    assert np.isfinite(float(loss))
    return {"compile_s": compile_s, "step_ms": 1e3 * dt,
            "examples_per_s": batch["labels"].shape[0] / dt}


def host_memory_gib() -> float:
    """The host's physical memory in GiB (the results record it next to the CPU model)."""
    return round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--steps_t", type=int, default=32, help="time steps per clip (T)")
    p.add_argument("--input_dim", type=int, default=512, help="feature size of every stream")
    p.add_argument("--hidden", type=int, default=512, help="model width d")
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--steps", type=int, default=5, help="timed train steps")
    p.add_argument("--lr", type=float, default=5e-3)
    p.add_argument("--variants", default="smta/transformer,smta/transformer/scan,lstm",
                   help="comma list of fusion[/attention[/smta_impl]], e.g. smta/dot,"
                        "attention/multihead,smta/transformer/scan")
    p.add_argument("--unroll", type=int, default=1, help="lax.scan unroll factor")
    p.add_argument("--bf16", action="store_true", help="bfloat16 compute (params float32)")
    p.add_argument("--out", default="benchmarks/results/smta_train_step.jsonl",
                   help="results file this run appends its JSON line to")
    args = p.parse_args()
    t_start = time.perf_counter()

    batch = make_batch(args.batch, args.steps_t, args.input_dim, 5)
    print(f"devices={jax.devices()} B={args.batch} T={args.steps_t} "
          f"d_in={args.input_dim} d={args.hidden} streams={len(STREAMS)} "
          f"dtype={'bfloat16' if args.bf16 else 'float32'}")
    print(f"{'variant':<22}{'compile_s':>10}{'step_ms':>10}{'examples/s':>12}")
    rows = []
    for variant in args.variants.split(","):
        parts = variant.split("/")
        fusion = parts[0]
        attention = parts[1] if len(parts) > 1 else "dot"
        impl = parts[2] if len(parts) > 2 else "parallel"
        model = PERRModel(fusion=fusion, attention=attention, smta_impl=impl,
                          hidden_size=args.hidden,
                          num_heads=args.heads, scan_unroll=args.unroll,
                          dtype=jnp.bfloat16 if args.bf16 else jnp.float32)
        r = bench(model, batch, args.warmup, args.steps, args.lr)
        print(f"{variant:<22}{r['compile_s']:>10.1f}{r['step_ms']:>10.1f}"
              f"{r['examples_per_s']:>12.1f}", flush=True)
        rows.append({"variant": variant, "compile_s": round(r["compile_s"], 2),
                     "step_ms": round(r["step_ms"], 1),
                     "examples_per_s": round(r["examples_per_s"], 2)})
    result = provenance(str(jax.devices()), (time.perf_counter() - t_start) / 60,
                        benchmark="smta_train_step", arguments=vars(args),
                        memory_gib=host_memory_gib(),
                        sizes={"batch": args.batch, "steps_t": args.steps_t,
                               "input_dim": args.input_dim, "hidden": args.hidden,
                               "streams": len(STREAMS), "classes": 5},
                        dtype="bfloat16" if args.bf16 else "float32", variants=rows)
    print(f"machine: {result['cpu']} ({result['cores']} cores), jax {result['jax']}, "
          f"commit {result['commit']}; appended to {args.out}")
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    with open(args.out, "a") as f:
        f.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
