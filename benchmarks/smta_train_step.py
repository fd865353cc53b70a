"""Train-step throughput of the PERR model (SMTA and the LSTM baseline) against an eager
PyTorch SMTA of the same sizes, side by side on CPU.

    python benchmarks/smta_train_step.py                                 # ours only
    PYTHONPATH=. python benchmarks/smta_train_step.py    # torch importable: both sides

Every run prints a table and appends one JSON line (the figures of every variant + commit, CPU,
cores, versions, arguments) to ``--out``; the README's Benchmarks section is rendered from the
newest commit's lines by ``python benchmarks/report.py`` (figures are never typed there or
here). Without torch the eager PyTorch side is not measured: the run says so and prints the
newest stored measurement from ``--out``.

* ours, one jitted step per variant (``fusion[/attention[/smta_impl]]``) with donated state,
  each step blocked on: forward with dropout, Eq. 5 loss, gradient, optax Adam update.
  `smta/transformer` is the default implementation (one LSTM loop with a hand-written
  backward pass, then the transformer layer over the tokens of every step at once, the h~
  token's unused output skipped); `/scan` runs the layer inside the scanned step as the
  paper draws it (the same function); `lstm` is the baseline without attention. Compile time
  and FLOPs per step (`jaxaffect.perf.count_flops`: loops counted once per iteration, the
  backward pass included) are reported, with the achieved matmul GFLOP/s as a share of this
  machine's float32 matmul rate measured in the same run (`jaxaffect.perf.matmul_peak_gflops`).
* eager PyTorch (``benchmarks/torch_smta.py``): ``nn.Linear`` per stream, ``nn.LSTM``, one
  ``nn.TransformerEncoderLayer`` over the tokens of every step, one ``nn.LSTM`` per modality,
  ``torch.optim.Adam``; it starts from our default variant's initial weights and the two
  Eq. 5 losses (dropout off) are compared before timing.

Variants and torch are timed in alternating rounds on the same cores (torch gets one thread
per core the process may run on unless ``--torch_threads`` says otherwise; XLA's CPU thread
pool uses those cores too); examples/s are the median over rounds. Other load on the machine
moves every figure, torch's most: its OpenMP threads wait for each other, and on a 2-core
machine loaded by other processes a 2-thread torch step took several times as long as a
1-thread one. Measure on an otherwise idle machine; the rounds are printed.

Assumed sizes (the available text of the paper does not give its feature sizes): 5 streams
(person_a, person_b, background, audio, text), each 512-d; model width d = 512; T = 32 steps;
batch 16 (the paper's mini-batch); 5 classes; Adam (the paper's optimiser, lr 5e-3).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402

from jaxaffect.demo_runner import append_result, provenance  # noqa: E402
from jaxaffect.families.perr.erato_format import STREAMS  # noqa: E402
from jaxaffect.families.perr.losses import perr_loss  # noqa: E402
from jaxaffect.families.perr.model import PERRModel  # noqa: E402
from jaxaffect.perf import count_flops, matmul_peak_gflops  # noqa: E402

NUM_CLASSES = 5


def make_batch(batch: int, steps: int, dim: int, num_classes: int, seed: int = 0) -> dict:
    """Clips of random length in [T/2, T] (padding at the end); each stream absent at a step
    with probability 0.2."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(steps // 2, steps + 1, size=batch)
    step_mask = np.arange(steps)[None] < lengths[:, None]
    masks = {s: (rng.random((batch, steps)) > 0.2) & step_mask for s in STREAMS}
    streams = {s: np.where(masks[s][..., None], rng.normal(size=(batch, steps, dim)), 0.0)
               .astype(np.float32) for s in STREAMS}
    labels = rng.integers(0, num_classes, size=batch).astype(np.int32)
    return {"streams": streams, "masks": masks, "step_mask": step_mask, "labels": labels}


def parse_variant(variant: str) -> tuple[str, str, str]:
    """``fusion[/attention[/smta_impl]]`` -> (fusion, attention, smta_impl)."""
    parts = variant.split("/")
    return (parts[0], parts[1] if len(parts) > 1 else "dot",
            parts[2] if len(parts) > 2 else "parallel")


def our_step(model: PERRModel, batch: dict, params, lr: float
             ) -> tuple[Callable[[int], float], float, float, float]:
    """(run n steps -> seconds, compile seconds, FLOPs per step, matmul FLOPs per step)."""
    tx = optax.adam(lr)
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

    batch = jax.device_put(batch)
    flops = count_flops(train_step, state, batch)
    t0 = time.perf_counter()
    compiled = jax.jit(train_step, donate_argnums=0).lower(state, batch).compile()
    compile_s = time.perf_counter() - t0

    def run(n: int) -> float:
        nonlocal state
        t0 = time.perf_counter()
        for _ in range(n):
            state, loss = compiled(state, batch)
            jax.block_until_ready(loss)
        assert np.isfinite(float(loss))
        return time.perf_counter() - t0

    return run, compile_s, flops.total, flops.matmul


def torch_step(batch: dict, params, args: argparse.Namespace, torch
               ) -> tuple[Callable[[int], float], dict]:
    """(run n eager PyTorch steps -> seconds, facts: parameter counts, start-loss difference)."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import torch_smta

    model = torch_smta.TorchSMTA([args.input_dim] * len(STREAMS), args.hidden, args.heads,
                                 NUM_CLASSES, 0.1)
    facts = {"torch_params": torch_smta.parameter_count(model)}
    xs, masks, lengths, labels = torch_smta.inputs(batch, STREAMS)
    if params is not None:  # same weights as ours: compare the losses without dropout
        torch_smta.load_params(model, jax.tree.map(np.asarray, params), STREAMS)
        ours = PERRModel(fusion="smta", attention="transformer", hidden_size=args.hidden,
                         num_heads=args.heads, num_classes=NUM_CLASSES)
        with jax.default_matmul_precision("highest"):
            out = ours.apply({"params": params}, batch["streams"], batch["masks"],
                             batch["step_mask"])
            want = float(perr_loss(out["logits"], out["modality_logits"], batch["labels"])[0])
        model.eval()
        with torch.no_grad():
            got = float(torch_smta.eq5_loss(*model(xs, masks, lengths), labels))
        facts.update(torch_loss_at_start=got, our_loss_at_start=want,
                     loss_abs_diff_at_start=abs(got - want))
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)

    def run(n: int) -> float:
        t0 = time.perf_counter()
        for _ in range(n):
            opt.zero_grad()
            loss = torch_smta.eq5_loss(*model(xs, masks, lengths), labels)
            loss.backward()
            opt.step()
        assert np.isfinite(loss.item())
        return time.perf_counter() - t0

    return run, facts


def stored_reference(path: str) -> dict | None:
    """The newest line of an earlier results file that measured eager PyTorch."""
    try:
        lines = open(path).read().splitlines()
    except OSError:
        return None
    found = [r for r in (json.loads(x) for x in lines if x.strip())
             if r.get("torch_examples_per_s")]
    return found[-1] if found else None


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
    p.add_argument("--warmup", type=int, default=1, help="untimed steps of each side")
    p.add_argument("--rounds", type=int, default=5, help="alternating timing rounds")
    p.add_argument("--steps", type=int, default=2, help="timed steps per side and round")
    p.add_argument("--lr", type=float, default=5e-3)
    p.add_argument("--variants", default="smta/transformer,smta/transformer/scan,lstm",
                   help="comma list of fusion[/attention[/smta_impl]], e.g. smta/dot,"
                        "attention/multihead,smta/transformer/scan")
    p.add_argument("--unroll", type=int, default=1, help="loop unroll factor")
    p.add_argument("--bf16", action="store_true", help="our compute in bfloat16 (params f32)")
    p.add_argument("--no_torch", action="store_true", help="time ours only")
    p.add_argument("--torch_threads", type=int, default=0,
                   help="torch threads (default: one per core this process may run on)")
    p.add_argument("--out", default="benchmarks/results/smta_train_step.jsonl",
                   help="results file this run appends its JSON line to")
    args = p.parse_args()
    t_start = time.perf_counter()
    dtype = "bfloat16" if args.bf16 else "float32"

    torch = None
    if not args.no_torch:
        try:
            import torch

            torch.set_num_threads(args.torch_threads or len(os.sched_getaffinity(0)))
        except ImportError:
            torch = None
    batch = make_batch(args.batch, args.steps_t, args.input_dim, NUM_CLASSES)
    print(f"devices={jax.devices()} B={args.batch} T={args.steps_t} d_in={args.input_dim} "
          f"d={args.hidden} streams={len(STREAMS)} dtype={dtype}")

    runs, rows, torch_params = {}, [], None
    for variant in args.variants.split(","):
        fusion, attention, impl = parse_variant(variant)
        model = PERRModel(fusion=fusion, attention=attention, smta_impl=impl,
                          hidden_size=args.hidden, num_heads=args.heads,
                          num_classes=NUM_CLASSES, scan_unroll=args.unroll,
                          dtype=jnp.bfloat16 if args.bf16 else jnp.float32)
        params = jax.jit(model.init)(jax.random.key(0), batch["streams"], batch["masks"],
                                     batch["step_mask"])["params"]
        if (fusion, attention) == ("smta", "transformer") and torch_params is None:
            torch_params = jax.tree.map(np.array, params)
        run, compile_s, flops, matmul_flops = our_step(model, batch, params, args.lr)
        runs[variant] = run
        rows.append({"variant": variant, "compile_s": round(compile_s, 2),
                     "flops_per_step": flops, "matmul_flops_per_step": matmul_flops,
                     "params": sum(x.size for x in jax.tree.leaves(params))})
        print(f"{variant}: compiled in {compile_s:.1f} s, {flops / 1e9:.1f} GFLOP/step "
              f"({matmul_flops / 1e9:.1f} in matmuls)", flush=True)
    facts: dict = {}
    if torch is not None:
        runs["torch"], facts = torch_step(batch, torch_params, args, torch)
        if "loss_abs_diff_at_start" in facts:
            print(f"eager PyTorch: Eq. 5 loss at the same weights "
                  f"{facts['torch_loss_at_start']:.6f} vs ours {facts['our_loss_at_start']:.6f}",
                  flush=True)
    peak = matmul_peak_gflops()

    for run in runs.values():
        run(args.warmup)
    per_round: dict[str, list[float]] = {name: [] for name in runs}
    for r in range(args.rounds):
        for name, run in runs.items():
            per_round[name].append(args.batch * args.steps / run(args.steps))
        print(f"round {r}: " + "  ".join(f"{k} {v[-1]:.1f}" for k, v in per_round.items())
              + " examples/s", flush=True)

    med = {name: statistics.median(v) for name, v in per_round.items()}
    for row in rows:
        v = row["variant"]
        row.update(examples_per_s=round(med[v], 2), step_ms=round(1e3 * args.batch / med[v], 1),
                   rounds=[round(x, 2) for x in per_round[v]],
                   gflop_per_s=round(row["matmul_flops_per_step"] / 1e9 * med[v] / args.batch, 1))
        row["peak_fraction"] = round(row["gflop_per_s"] / peak, 3)
        if torch is not None:
            row["vs_torch"] = round(med[v] / med["torch"], 2)
    result = {"sizes": {"batch": args.batch, "steps_t": args.steps_t,
                        "input_dim": args.input_dim, "hidden": args.hidden,
                        "streams": len(STREAMS), "classes": NUM_CLASSES},
              "dtype": dtype, "variants": rows, "matmul_peak_gflop_per_s": round(peak, 1),
              "memory_gib": host_memory_gib(), "cpus_available": len(os.sched_getaffinity(0)),
              "torch": None if torch is None else torch.__version__,
              "torch_threads": None if torch is None else torch.get_num_threads()}
    if torch is not None:
        result.update(torch_examples_per_s=round(med["torch"], 2),
                      torch_step_ms=round(1e3 * args.batch / med["torch"], 1),
                      torch_rounds=[round(x, 2) for x in per_round["torch"]], **facts)
    result = provenance(str(jax.devices()), (time.perf_counter() - t_start) / 60,
                        benchmark="smta_train_step", arguments=vars(args), **result)

    print(f"\n{'variant':<24}{'compile_s':>10}{'step_ms':>10}{'examples/s':>12}"
          f"{'GFLOP/step':>12}{'GFLOP/s':>9}{'peak':>6}" + ("  vs torch" if torch else ""))
    for row in rows:
        print(f"{row['variant']:<24}{row['compile_s']:>10.1f}{row['step_ms']:>10.0f}"
              f"{row['examples_per_s']:>12.1f}{row['flops_per_step'] / 1e9:>12.1f}"
              f"{row['gflop_per_s']:>9.0f}{row['peak_fraction']:>6.0%}"
              + (f"  {row['vs_torch']:.2f}x" if torch is not None else ""))
    print(f"(GFLOP/s: matmul FLOPs per second; peak: share of the {peak:.0f} GFLOP/s of a "
          "float32 2048^3 matmul measured in this run)")
    if torch is not None:
        print(f"{'eager PyTorch':<24}{'':>10}{result['torch_step_ms']:>10.0f}"
              f"{result['torch_examples_per_s']:>12.1f}   (torch {torch.__version__}, "
              f"{result['torch_threads']} threads, {facts['torch_params']:,} parameters)")
    else:
        print("eager PyTorch: not measured in this run (torch is not importable)")
        stored = stored_reference(args.out)
        if stored is not None:
            print(f"  stored measurement: {stored['torch_examples_per_s']} examples/s with "
                  f"{stored['torch_threads']} torch threads at commit {stored['commit']} on "
                  f"{stored['cpu']} (newest line with torch in {args.out}; not comparable "
                  "with this run's figures unless the machine and its load are the same)")
    print(f"machine: {result['cpu']} ({result['cores']} cores, {result['cpus_available']} "
          f"available), jax {result['jax']}, commit {result['commit']}; appended to {args.out}")
    append_result(args.out, result)


if __name__ == "__main__":
    main()
