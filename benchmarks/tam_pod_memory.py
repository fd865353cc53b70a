"""TAM pretraining on (data, fsdp, model) meshes: per-device memory at pod size, the largest model
that fits a device, and the sharded step at a small size.

    python benchmarks/tam_pod_memory.py --part memory     # size=large on 1, 8, 64 devices
    python benchmarks/tam_pod_memory.py --part fit        # largest layers x d in 16 / 95 GiB
    python benchmarks/tam_pod_memory.py --part steps      # 8 devices vs 1, small size, runs
    python benchmarks/tam_pod_memory.py --part all --small --out /tmp/pod.jsonl   # smoke run

The step is the generic trainer's (`jaxaffect.train.Setup.make_train_step`) for the TSC
pretraining task of ``configs/tam/pretrain.py:size=large`` (d=1024, 24 + 16 layers, 16 heads,
bfloat16, remat, batch 256, masked-word logits over a `--vocab` vocabulary at the first 128
masked words) on random inputs of the paper's feature sizes
(`jaxaffect.families.tam.pretrain_task.RandomBatchPretrainTask`). Device counts are simulated
CPU devices (``--xla_force_host_platform_device_count``), one process per count.

* memory: for each mesh shape, the step is compiled from abstract, sharded inputs (nothing is
  allocated or run) and reported per device: parameter and optimizer-state bytes (from the
  shardings), XLA's memory analysis of the compiled step (arguments, outputs, temporaries =
  activations and workspace) and the peak estimate arguments + outputs - aliased + temporaries.
* fit: for each device budget (16 and 95 GiB) and each `--fit-mesh`, the largest model of a
  ladder of (layers, d) sizes whose peak estimate fits, by bisection over the ladder
  (compile only; heads = d / 64, decoder layers = 2/3 of the encoder's, FFN 4d).
* steps: the step at a small size, run on 8 devices for each 8-device mesh shape and on one
  device, in interleaved rounds in one process: step time relative to one device (simulated
  devices share this host's cores: a check of overheads, not a speed-up) and, from the arrays'
  shards, parameter + optimizer bytes per device; the "sharded parts" (leaves the mesh splits)
  are compared with 1/N of their unsharded bytes (N = fsdp x model).

CPU figures: XLA's buffer assignment on a GPU/TPU differs (fusion, layouts), so the bytes are
estimates of the program's needs, not a device's exact use. Every configuration appends one
JSON line to ``--out`` (figures + commit, CPU, jax, arguments).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

from jaxaffect.demo_runner import append_result, provenance

GIB = 2**30
MESHES = {  # device count -> (data, fsdp, model) shapes of the memory part
    1: [(1, 1, 1)],
    8: [(8, 1, 1), (1, 8, 1), (1, 1, 8), (2, 2, 2), (1, 4, 2), (1, 2, 4)],
    64: [(64, 1, 1), (1, 64, 1), (8, 8, 1), (1, 16, 4), (1, 8, 8), (2, 8, 4), (4, 4, 4)],
}
STEP_MESHES = [(8, 1, 1), (1, 8, 1), (1, 1, 8), (2, 2, 2), (1, 4, 2), (1, 2, 4)]
LADDER = [(12, 512), (12, 768), (24, 1024), (24, 1536), (24, 2048), (32, 2560), (32, 3072),
          (40, 4096), (48, 5120), (64, 6144), (80, 8192), (96, 10240), (96, 12288),
          (128, 16384)]  # (layers, d), in growing size
SMALL_LADDER = [(1, 32), (2, 64), (2, 128), (4, 256), (4, 512)]
FEATURES = {"image": 512, "motion": 2048, "audio": 128}  # the paper's extractors


def pretrain_config(layers: int, width: int, vocab: int, mesh: tuple[int, int, int],
                    batch: int, small: bool):
    """configs/tam/pretrain.py:size=large on random batches, resized and on `mesh`."""
    from jaxaffect.families.tam.configs import pretrain

    c = pretrain.get_config("size=large")
    c.task = "tam_pretrain_random_batches"
    c.model.num_layers, c.model.width = layers, width
    c.model.num_heads = max(1, width // 64)
    c.model.decoder_layers = max(1, (2 * layers) // 3)
    c.data.vocab_size = vocab
    c.data.stream_dims = dict(FEATURES)
    c.training.batch_size = batch
    if small:
        c.model.num_heads = 8
        c.data.stream_dims = {"image": 16, "motion": 24, "audio": 8}
        c.data.num_segments = c.model.max_segments = 8
        c.data.max_comments, c.model.max_words = 4, 6
        c.pretrain.max_masked = 8
    c.mesh.data, c.mesh.fsdp, c.mesh.model = mesh
    c.mesh.num_devices = mesh[0] * mesh[1] * mesh[2]
    c.optimizer.name = "adam"  # the config's (float32 moments)
    return c


def _setup(config):
    from jaxaffect.families.tam.pretrain_task import RandomBatchPretrainTask
    from jaxaffect.task import register
    from jaxaffect.train import Setup

    register("tam_pretrain_random_batches")(RandomBatchPretrainTask)
    return Setup(config, steps_per_epoch=1)


def _sharded_bytes(abstract_tree) -> int:
    """Bytes one device holds of a tree of sharded ShapeDtypeStructs (the largest shard)."""
    import jax
    import numpy as np

    total = 0
    for leaf in jax.tree_util.tree_leaves(abstract_tree):
        shape = leaf.sharding.shard_shape(leaf.shape)
        total += int(np.prod(shape, dtype=np.int64)) * leaf.dtype.itemsize
    return total


def compiled_memory(config) -> dict:
    """Compile the train step from abstract sharded inputs; per-device bytes."""
    import jax

    setup = _setup(config)
    abstract = setup.abstract_sharded
    dummy = setup.task.dummy_batch(int(config.training.batch_size))
    batch = jax.tree_util.tree_map(
        lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=setup.batch_sharding), dummy)
    key = jax.ShapeDtypeStruct((), jax.random.key(0).dtype)
    t0 = time.perf_counter()
    compiled = setup.make_train_step().lower(abstract, batch, key).compile()
    compile_s = time.perf_counter() - t0
    mem = compiled.memory_analysis()
    arg, out = int(mem.argument_size_in_bytes), int(mem.output_size_in_bytes)
    alias, temp = int(mem.alias_size_in_bytes), int(mem.temp_size_in_bytes)
    params = sum(x.size for x in jax.tree_util.tree_leaves(abstract.params))
    return {"params": int(params), "param_bytes_per_device": _sharded_bytes(abstract.params),
            "optimizer_bytes_per_device": _sharded_bytes(abstract.opt_state),
            "xla_argument_bytes": arg, "xla_output_bytes": out, "xla_alias_bytes": alias,
            "xla_temp_bytes": temp, "peak_bytes_estimate": arg + out - alias + temp,
            "compile_s": round(compile_s, 1)}


def _sizes(config) -> dict:
    m, d = config.model, config.data
    return {"layers": m.num_layers, "decoder_layers": m.decoder_layers, "width": m.width,
            "heads": m.num_heads, "vocab": d.vocab_size, "batch": config.training.batch_size,
            "segments": d.num_segments, "comments": d.max_comments, "words": m.max_words,
            "max_masked": config.pretrain.max_masked, "dtype": m.dtype, "remat": m.remat}


def part_memory(devices: int, args) -> list[dict]:
    layers, width = (2, 64) if args.small else (24, 1024)
    rows = []
    for mesh in MESHES[devices]:
        c = pretrain_config(layers, width, args.vocab, mesh, args.batch, args.small)
        row = {"part": "memory", "mesh": list(mesh), **compiled_memory(c), "sizes": _sizes(c)}
        rows.append(row)
        _emit(row)
    return rows


def _largest_fitting(ladder, budget: int, probe) -> tuple[int, int]:
    """Bisection over a ladder ordered by size: (index of the largest size whose peak fits
    `budget` or -1, index of the smallest that does not or len(ladder))."""
    lo, hi = -1, len(ladder)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if probe(mid) <= budget:
            lo = mid
        else:
            hi = mid
    return lo, hi


def part_fit(devices: int, args) -> list[dict]:
    ladder = SMALL_LADDER if args.small else LADDER
    budgets = [int(b * GIB) for b in args.budgets_gib]
    if args.small:  # the same search against budgets that the tiny ladder reaches
        budgets = [b * 2**20 for b in (16, 64)]
    rows = []
    for mesh in [tuple(int(x) for x in m.split(",")) for m in args.fit_mesh]:
        if mesh[0] * mesh[1] * mesh[2] != devices:
            continue
        peaks: dict[int, dict] = {}

        def probe(i: int, mesh=mesh, peaks=peaks) -> int:
            if i not in peaks:
                c = pretrain_config(*ladder[i], args.vocab, mesh, args.batch, args.small)
                peaks[i] = {"sizes": _sizes(c), **compiled_memory(c)}
                _emit({"part": "fit_probe", "mesh": list(mesh), **peaks[i]})
            return peaks[i]["peak_bytes_estimate"]

        for budget in budgets:
            lo, hi = _largest_fitting(ladder, budget, probe)
            best = peaks.get(lo)
            row = {"part": "fit", "mesh": list(mesh), "budget_bytes": budget,
                   "largest_fitting": None if best is None else {
                       "layers": ladder[lo][0], "width": ladder[lo][1],
                       "params": best["params"],
                       "peak_bytes_estimate": best["peak_bytes_estimate"]},
                   "next_size_peak_bytes": (peaks[hi]["peak_bytes_estimate"]
                                            if hi in peaks else None),
                   "ladder_exhausted": hi == len(ladder)}
            rows.append(row)
            _emit(row)
    return rows


def _bytes_by_split(state, unsharded_state, n: int) -> dict[str, list[int]]:
    """{"split_n_ways" | "split_fewer_ways" | "replicated": [bytes per device, unsharded bytes]}
    of a state's parameter and optimizer leaves (`unsharded_state`: the same on one device)."""
    import jax

    from jaxaffect import sharding as shd

    groups: dict[str, tuple[list, int]] = {k: ([], 0) for k in
                                           ("split_n_ways", "split_fewer_ways", "replicated")}
    leaves = jax.tree_util.tree_leaves((state.params, state.opt_state))
    full = jax.tree_util.tree_leaves((unsharded_state.params, unsharded_state.opt_state))
    for leaf, whole in zip(leaves, full):
        ways = leaf.size // max(1, max(s.data.size for s in leaf.addressable_shards))
        key = ("replicated" if ways == 1 else "split_n_ways" if ways >= n
               else "split_fewer_ways")
        arrays, total = groups[key]
        groups[key] = (arrays + [leaf], total + whole.nbytes)
    return {k: [shd.bytes_per_device(arrays) if arrays else 0, int(total)]
            for k, (arrays, total) in groups.items()}


def part_steps(args) -> list[dict]:
    """Interleaved rounds: one step per configuration per round, 8-device meshes and 1 device."""
    import jax
    import numpy as np

    from jaxaffect import sharding as shd

    layers, width = (1, 32) if args.small else (2, 128)
    vocab = 64 if args.small else 2048
    runs = {}
    for mesh in [(1, 1, 1)] + STEP_MESHES:
        c = pretrain_config(layers, width, vocab, mesh, args.step_batch, True)
        c.model.num_heads = 8
        setup = _setup(c)
        state = setup.init_state()
        batch = shd.global_batch(setup.task.random_batch(args.step_batch), setup.mesh)
        step = setup.make_train_step()
        key = jax.random.key(0)
        state, metrics = step(state, batch, key)  # compile + warm-up
        jax.block_until_ready(state)
        runs[mesh] = {"setup": setup, "state": state, "batch": batch, "step": step,
                      "times": [], "loss": float(metrics["loss"])}
    for _ in range(args.rounds):
        for run in runs.values():
            t0 = time.perf_counter()
            for _ in range(args.steps):
                run["state"], _ = run["step"](run["state"], run["batch"], key)
            jax.block_until_ready(run["state"])
            run["times"].append((time.perf_counter() - t0) / args.steps)
    base = runs[(1, 1, 1)]
    base_s = float(np.median(base["times"]))
    rows = []
    for mesh, run in runs.items():
        if mesh == (1, 1, 1):
            continue
        n = mesh[1] * mesh[2]  # the devices a parameter can be split over
        groups = _bytes_by_split(run["state"], base["state"], n)
        full_split = groups["split_n_ways"]
        fraction = (full_split[0] / full_split[1]) if full_split[1] else None
        row = {"part": "steps", "mesh": list(mesh),
               "step_s": round(float(np.median(run["times"])), 5),
               "step_s_one_device": round(base_s, 5),
               "step_time_vs_one_device": round(float(np.median(run["times"])) / base_s, 3),
               "loss": run["loss"], "loss_one_device": base["loss"],
               "param_and_optimizer_bytes_per_device": shd.bytes_per_device(
                   (run["state"].params, run["state"].opt_state)),
               "param_and_optimizer_bytes_unsharded": sum(v[1] for v in groups.values()),
               # (bytes per device, unsharded bytes) of the leaves split over all N devices,
               # over some of them (small leaves: model rule only; no divisible dimension)
               # and of those replicated
               "bytes_by_split": groups, "split_devices": n,
               "sharded_parts_fraction": None if fraction is None else round(fraction, 4),
               "sharded_parts_within_1.2_over_n": (None if fraction is None
                                                   else fraction <= 1.2 / n),
               "sizes": _sizes(run["setup"].config)}
        rows.append(row)
        _emit(row)
    return rows


def _emit(row: dict) -> None:
    print("RESULT " + json.dumps(row), flush=True)


def _mib(n) -> str:
    return "-" if n is None else f"{n / 2**20:,.1f}"


def _show(row: dict) -> str:
    mesh = "x".join(str(x) for x in row["mesh"])
    if row["part"] == "memory":
        return (f"memory {mesh:8s} params {row['params']:>13,d}  param "
                f"{_mib(row['param_bytes_per_device'])} MiB  opt "
                f"{_mib(row['optimizer_bytes_per_device'])} MiB  activations (XLA temp) "
                f"{_mib(row['xla_temp_bytes'])} MiB  peak {_mib(row['peak_bytes_estimate'])} MiB"
                f"  compile {row['compile_s']} s")
    if row["part"] == "fit":
        best = row["largest_fitting"]
        what = ("nothing on the ladder" if best is None else
                f"{best['layers']} layers x d={best['width']} ({best['params']:,d} params, "
                f"peak {_mib(best['peak_bytes_estimate'])} MiB)")
        return f"fit    {mesh:8s} budget {_mib(row['budget_bytes'])} MiB: {what}"
    if row["part"] == "steps":
        split = row["bytes_by_split"]
        return (f"steps  {mesh:8s} time vs 1 device {row['step_time_vs_one_device']}x  "
                f"param+opt/device {_mib(row['param_and_optimizer_bytes_per_device'])} of "
                f"{_mib(row['param_and_optimizer_bytes_unsharded'])} MiB; split N ways: "
                f"{row['sharded_parts_fraction']} of {_mib(split['split_n_ways'][1])} MiB "
                f"(1/N = {1 / row['split_devices']:.3f}); fewer ways "
                f"{_mib(split['split_fewer_ways'][0])} of {_mib(split['split_fewer_ways'][1])}"
                f", replicated {_mib(split['replicated'][1])} MiB")
    return ""


def child(args) -> None:
    devices = int(args.child)
    if args.part in ("memory", "all"):
        part_memory(devices, args)
    if args.part in ("fit", "all"):
        part_fit(devices, args)
    if args.part in ("steps", "all") and devices == 8:
        part_steps(args)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--part", choices=["memory", "fit", "steps", "all"], default="all")
    p.add_argument("--devices", default="1,8,64", help="simulated device counts (processes)")
    p.add_argument("--vocab", type=int, default=50000)
    p.add_argument("--batch", type=int, default=256, help="global batch (memory, fit)")
    p.add_argument("--budgets-gib", type=float, nargs="+", default=[16.0, 95.0])
    p.add_argument("--fit-mesh", nargs="+", default=["1,16,4", "1,2,4"],
                   help="data,fsdp,model meshes of the fit search (each on its device count)")
    p.add_argument("--step-batch", type=int, default=16)
    p.add_argument("--steps", type=int, default=2, help="steps per round (steps part)")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--small", action="store_true", help="tiny sizes (a smoke run)")
    p.add_argument("--timeout", type=float, default=None, help="seconds per device count")
    p.add_argument("--out", default="benchmarks/results/tam_pod_memory.jsonl")
    p.add_argument("--child", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.small:
        args.batch, args.vocab = min(args.batch, 64), min(args.vocab, 1000)
    if args.child:
        child(args)
        return
    for devices in [int(x) for x in args.devices.split(",")]:
        env = dict(os.environ, JAX_PLATFORMS="cpu",
                   XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}")
        cmd = [sys.executable, __file__, "--child", str(devices)] + sys.argv[1:]
        t0 = time.perf_counter()
        try:
            out = subprocess.run(cmd, env=env, capture_output=True, text=True,
                                 timeout=args.timeout)
            code, stdout, stderr = out.returncode, out.stdout, out.stderr
        except subprocess.TimeoutExpired as e:
            code = None
            stdout, stderr = (x.decode(errors="replace") if isinstance(x, bytes) else x or ""
                              for x in (e.stdout, e.stderr))
        minutes = (time.perf_counter() - t0) / 60
        stamp = {"benchmark": "tam_pod_memory", "arguments": vars(args),
                 "devices_count": devices}
        for line in stdout.splitlines():
            if line.startswith("RESULT "):
                row = json.loads(line[len("RESULT "):])
                append_result(args.out, provenance(f"{devices} cpu devices", minutes,
                                                   **stamp, **row))
                if row["part"] != "fit_probe":
                    print(f"{devices:2d} devices  {_show(row)}", flush=True)
        if code != 0:
            why = "timed out" if code is None else f"exit code {code}"
            append_result(args.out, provenance(f"{devices} cpu devices", minutes, **stamp,
                                               error=why, stderr_tail=stderr[-2000:]))
            print(f"{devices} devices: did not complete ({why})\n{stderr[-2000:]}", flush=True)


if __name__ == "__main__":
    main()
