"""Per-device memory and throughput of TAM's sharded train step on 1 and 8 (CPU) devices.

    python benchmarks/tam_sharded_memory.py            # both models, 1 and 8 devices
    python benchmarks/tam_sharded_memory.py --model finetune --devices 8 --fsdp 8

Each device count runs in its own process (the host device count is fixed when jax starts).
The train step is the generic trainer's (`jaxaffect.train.Setup.make_train_step`: state created
sharded, parameters and optimizer state split over the mesh's `fsdp` axis, batch over every
device, donated state) for a benchmark Task holding the paper-size TAM models with random
inputs: "finetune" is the CTM encoder + classifier (d=768, L=12, 12 heads, T=64 segments x 3
modalities, batch 8), "pretrain" adds the video-TSC decoder (L=8) and the word classifier
(vocabulary `--vocab`, 16 comments of 16 words per video). Feature sizes are the paper's
extractors: image 512 (CLIP ViT-B/32), motion 2048 (R3D), audio 128 (VGGish).

Reported per configuration: parameter + optimizer-state bytes held by one device (from the
arrays' shards), XLA's memory analysis of the compiled step (arguments, outputs, temporaries,
per device), compile time and step time (mean over `--steps` steps after one warm-up step).
Every configuration appends one JSON line to `--out` (its figures + commit, CPU, cores, host
memory, jax, arguments), also when it did not complete (the exit status: killed for host
memory, or over `--timeout`); the README's Benchmarks section is rendered from the newest
commit's lines by ``python benchmarks/report.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

from jaxaffect.demo_runner import append_result, provenance

CONFIGS = {  # (devices, fsdp)
    "1": [(1, 1)],
    "8": [(8, 1), (8, 8)],
}


def run_one(model: str, devices: int, fsdp: int, steps: int, vocab: int, remat: bool,
            bf16: bool, small: bool) -> dict:
    import jax
    import jax.numpy as jnp
    import ml_collections
    import numpy as np

    from jaxaffect import sharding as shd
    from jaxaffect.families.tam.ctm import CTMClassifier, CTMEncoder
    from jaxaffect.families.tam.tsc_decoder import TAMPretrainModel, VideoTSCDecoder
    from jaxaffect.families.tam.tsc_objectives import mask_emotional_words, pretraining_loss
    from jaxaffect.task import Task, register
    from jaxaffect.train import Setup

    dims = {"image": 512, "motion": 2048, "audio": 128}
    width, layers, heads, seg, batch, comments, words = 768, 12, 12, 64, 8, 16, 16
    dec_layers = 8
    if small:  # a seconds-long smoke run of the same code path
        dims = {"image": 16, "motion": 24, "audio": 8}
        width, layers, heads, seg, batch, comments, words, dec_layers = 32, 2, 4, 8, 8, 4, 6, 2
        vocab = 50
    dtype = jnp.bfloat16 if bf16 else jnp.float32

    @register("tam_memory_benchmark")
    class BenchTask(Task):
        def dataset(self, *a, **k):
            raise NotImplementedError("benchmark task has no data")

        def num_examples(self, split):
            return batch

        def dummy_batch(self, batch_size):
            rng = np.random.default_rng(0)
            b = {"features": {m: rng.normal(size=(batch_size, seg, d)).astype(np.float32)
                              for m, d in dims.items()},
                 "segment_mask": np.ones((batch_size, seg), bool),
                 "label": rng.integers(0, 8, batch_size).astype(np.int32),
                 "valid": np.ones((batch_size,), bool)}
            if model == "pretrain":
                tok = rng.integers(4, vocab, (batch_size, comments, words)).astype(np.int32)
                tok[..., 0] = 1
                b["tokens"] = tok
                b["emotional"] = rng.random((batch_size, comments, words)) < 0.2
                b["segment_index"] = rng.integers(0, seg, (batch_size, comments)).astype(
                    np.int32)
                b["comment_mask"] = np.ones((batch_size, comments), bool)
            return b

        def make_model(self):
            enc = CTMEncoder(width=width, num_layers=layers, num_heads=heads, max_segments=seg,
                             remat=remat, dtype=dtype, name="encoder")
            if model == "finetune":
                return CTMClassifier(num_outputs=8, encoder=enc)
            dec = VideoTSCDecoder(vocab_size=vocab, width=width, num_layers=dec_layers,
                                  num_heads=heads, max_words=words, remat=remat, dtype=dtype)
            return TAMPretrainModel(decoder=dec, encoder=enc)

        def _inputs(self, batch_):
            if model == "finetune":
                return (batch_["features"], batch_["segment_mask"])
            masked, target = mask_emotional_words(batch_["tokens"], batch_["emotional"], 2,
                                                  special_ids=(0, 1))
            return (batch_["features"], batch_["segment_mask"], masked), target

        def init_variables(self, model_, rng, batch_):
            args = self._inputs(batch_)
            args = args if model == "finetune" else args[0]
            return model_.init({"params": rng, "dropout": rng}, *args)

        def loss(self, model_, params, batch_, rng, train, step=None):
            if model == "finetune":
                logits = model_.apply({"params": params}, *self._inputs(batch_), train=train,
                                      rngs={"dropout": rng})
                onehot = jax.nn.one_hot(batch_["label"], 8)
                loss = -jnp.mean(jnp.sum(onehot * jax.nn.log_softmax(logits), -1))
                return loss, {}
            args, target = self._inputs(batch_)
            out = model_.apply({"params": params}, *args, train=train, rngs={"dropout": rng})
            return pretraining_loss(out, {"target_ids": batch_["tokens"],
                                          "target_mask": target,
                                          "segment_index": batch_["segment_index"],
                                          "comment_mask": batch_["comment_mask"]})

        def predict(self, model_, params, batch_):
            raise NotImplementedError

        def evaluate(self, outputs, host):
            raise NotImplementedError

    c = ml_collections.ConfigDict()
    c.task, c.seed = "tam_memory_benchmark", 0
    c.optimizer = ml_collections.ConfigDict({"name": "adam", "learning_rate": 1e-4,
                                             "weight_decay": 0.005, "decay_every_epochs": 0,
                                             "decay_factor": 0.1, "grad_clip_norm": 0.0})
    c.training = ml_collections.ConfigDict({"batch_size": batch, "num_epochs": 1,
                                            "log_every_steps": 1})
    c.mesh = ml_collections.ConfigDict({"data": devices // fsdp, "fsdp": fsdp,
                                        "min_shard_size": 4096, "num_devices": devices})
    setup = Setup(c, steps_per_epoch=1)
    state = setup.init_state()
    train_step = setup.make_train_step()
    data = shd.global_batch(setup.task.dummy_batch(batch), setup.mesh)
    key = jax.random.key(0)
    t0 = time.perf_counter()
    compiled = train_step.lower(state, data, key).compile()
    compile_s = time.perf_counter() - t0
    mem = compiled.memory_analysis()
    state_bytes = shd.bytes_per_device(state)
    param_bytes = shd.bytes_per_device(state.params)
    params = sum(x.size for x in jax.tree_util.tree_leaves(state.params))
    state, _ = compiled(state, data, key)  # warm-up
    jax.block_until_ready(state)
    t0 = time.perf_counter()
    for _ in range(steps):
        state, metrics = compiled(state, data, key)
    jax.block_until_ready(state)
    step_s = (time.perf_counter() - t0) / max(steps, 1)
    return {
        "model": model, "devices": devices, "mesh": f"data={devices // fsdp} x fsdp={fsdp}",
        "params": int(params), "param_bytes_per_device": int(param_bytes),
        "param_and_optimizer_bytes_per_device": int(state_bytes),
        "xla_argument_bytes": int(getattr(mem, "argument_size_in_bytes", -1)),
        "xla_output_bytes": int(getattr(mem, "output_size_in_bytes", -1)),
        "xla_temp_bytes": int(getattr(mem, "temp_size_in_bytes", -1)),
        "compile_s": round(compile_s, 1), "step_s": round(step_s, 3),
        "examples_per_s": round(batch / step_s, 2), "remat": remat, "bf16": bf16,
        "loss": float(metrics["loss"]), "platform": jax.devices()[0].platform,
        "sizes": {"features": dims, "width": width, "layers": layers, "heads": heads,
                  "segments": seg, "batch": batch, "comments": comments, "words": words,
                  "decoder_layers": dec_layers, "vocab": vocab},
    }


def _oom_kills() -> int | None:
    """The kernel's count of out-of-memory kills so far (None where it is not readable)."""
    try:
        with open("/proc/vmstat") as f:
            return next(int(x.split()[1]) for x in f if x.startswith("oom_kill "))
    except (OSError, StopIteration, ValueError):
        return None


def _mib(n: int) -> str:
    return f"{n / 2**20:.1f}"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", choices=["finetune", "pretrain", "both"], default="both")
    p.add_argument("--devices", choices=["1", "8", "both"], default="both")
    p.add_argument("--fsdp", type=int, default=None, help="only this fsdp size")
    p.add_argument("--steps", type=int, default=2)
    p.add_argument("--vocab", type=int, default=21128)
    p.add_argument("--remat", action="store_true")
    p.add_argument("--bf16", action="store_true")
    p.add_argument("--small", action="store_true", help="tiny sizes (a smoke run)")
    p.add_argument("--out", default="benchmarks/results/tam_sharded_memory.jsonl")
    p.add_argument("--timeout", type=float, default=None,
                   help="seconds one configuration may run before it is stopped and recorded "
                        "as not completed")
    p.add_argument("--child", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:  # one configuration in this process
        model, devices, fsdp = args.child.split(",")
        result = run_one(model, int(devices), int(fsdp), args.steps, args.vocab, args.remat,
                         args.bf16, args.small)
        print("RESULT " + json.dumps(result), flush=True)
        return
    models = ["finetune", "pretrain"] if args.model == "both" else [args.model]
    counts = ["1", "8"] if args.devices == "both" else [args.devices]
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    rows = []
    for model in models:
        for count in counts:
            for devices, fsdp in CONFIGS[count]:
                if args.fsdp is not None and fsdp != args.fsdp and devices > 1:
                    continue
                env = dict(os.environ, JAX_PLATFORMS="cpu",
                           XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}")
                cmd = [sys.executable, __file__, "--child", f"{model},{devices},{fsdp}",
                       "--steps", str(args.steps), "--vocab", str(args.vocab)]
                cmd += ["--remat"] * args.remat + ["--bf16"] * args.bf16
                cmd += ["--small"] * args.small
                t0, oom0 = time.perf_counter(), _oom_kills()
                try:
                    out = subprocess.run(cmd, env=env, capture_output=True, text=True,
                                         timeout=args.timeout)
                    code, stdout, stderr = out.returncode, out.stdout, out.stderr
                except subprocess.TimeoutExpired as e:  # the child is killed
                    code = None
                    stdout, stderr = (x.decode(errors="replace") if isinstance(x, bytes)
                                      else x or "" for x in (e.stdout, e.stderr))
                lines = [ln for ln in stdout.splitlines() if ln.startswith("RESULT ")]
                stamp = {"benchmark": "tam_sharded_memory", "arguments": vars(args),
                         "memory_gib": round(os.sysconf("SC_PAGE_SIZE")
                                             * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)}
                if code or not lines:
                    # e.g. -9: killed for host memory (8 simulated devices share one host)
                    oom = None if oom0 is None else _oom_kills() - oom0
                    why = (f"stopped after {args.timeout:.0f} s (--timeout)" if code is None
                           else f"exit code {code}"
                           + (" (killed by the kernel's out-of-memory killer)"
                              if code == -9 and oom else ""))
                    row = provenance(f"{devices} cpu devices",
                                     (time.perf_counter() - t0) / 60, **stamp, model=model,
                                     devices_count=devices, fsdp=fsdp,
                                     mesh=f"data={devices // fsdp} x fsdp={fsdp}",
                                     error=why, oom_kills_during_run=oom,
                                     stderr_tail=stderr[-2000:])
                    append_result(args.out, row)
                    print(f"{model:9s} {row['mesh']:18s} did not complete: {why}", flush=True)
                    continue
                row = json.loads(lines[-1][len("RESULT "):])
                row["devices_count"], row["fsdp"] = row.pop("devices"), fsdp
                row = provenance(f"{devices} cpu devices", (time.perf_counter() - t0) / 60,
                                 **stamp, **row)
                rows.append(row)
                append_result(args.out, row)
                print(f"{row['model']:9s} {row['mesh']:18s} params {row['params']:>11,d} "
                      f"param+opt/device {_mib(row['param_and_optimizer_bytes_per_device'])} MiB"
                      f"  XLA args {_mib(row['xla_argument_bytes'])} temp "
                      f"{_mib(row['xla_temp_bytes'])} MiB  compile {row['compile_s']} s  "
                      f"step {row['step_s']} s", flush=True)


if __name__ == "__main__":
    main()
