"""Train-step throughput of our LIReC interaction model against the authors' released PyTorch
code, side by side in one run on CPU, at the released sizes.

    python benchmarks/lirec_train_step.py --authors_code DIR [--torch_python PY]
    python benchmarks/lirec_train_step.py                  # ours only (+ the stored reference)

``DIR`` is a checkout of github.com/Annusha/LIReC (nothing of it is part of this repository;
its model and loss are imported from there at run time). ``PY`` is a Python that imports torch
(default: this one); the authors' side runs in a subprocess of it and needs only torch and
numpy there. Every run prints the rounds and a summary and appends one JSON line (figures +
commit, CPU, cores, versions, arguments) to ``--out``; the README's Benchmarks section is
rendered from the newest commit's lines by ``python benchmarks/report.py``. Without torch or
``--authors_code`` only ours is measured, and the newest stored line that measured theirs is
printed, marked as stored, with its commit and machine.

Both sides: the interactions setting with every modality (paper Table 1, last row) as the
released code trains it (``resume/modalties.py``: the ``Modalities`` model with tracks), batch
64, 101 interaction classes, random inputs of the released sizes (text 768, visual 2048, a 2048-d
track per character), the temporally overlapping labels of each clip excluded from the negatives.

* ours: the generic trainer's step (`jaxaffect.train.Setup.make_train_step`: forward with
  dropout, Eq. 2 max-margin loss, gradient, Adam with coupled weight decay 1e-5, lr 3e-5; one
  jitted call with donated state, blocked on each step) for the LIReC task as
  ``configs/lirec/interactions.py:modalities=visual+text+tracks,released`` builds it, fed an
  in-memory dataset's shapes. Reported with compile time, FLOPs per step
  (`jaxaffect.perf.count_flops`) and the achieved GFLOP/s as a share of this machine's float32
  matmul rate measured before each round (`jaxaffect.perf.matmul_peak_gflops`; median).
* theirs: their global options are set through ``sys.argv`` before ``utils.arg_pars`` is
  imported (``--modality m --tracks --mod_check --ints 1 --device cpu``), then their
  ``mixed_utils.update_arg_pars.update`` sets the feature sizes (its data folders point into a
  temporary folder, removed again), and ``mlp.model.create_model(101)`` builds their model,
  loss (``MaxMarginCrossEntropyLoss``) and optimiser (``torch.optim.Adam``, lr 3e-5, weight
  decay 1e-5). One timed step is the body of the batch loop of their ``mlp/train.py``:
  ``model(input)``, ``loss(output, input)``, their running mean updated with ``.item()``,
  ``zero_grad``, ``backward``, ``step``; the batch is already collated in their flat layout
  (``features [64, 1, 6912]`` = text | visual | track 1 | track 2, ``labels``,
  ``multilab_weights``); data loading is timed on neither side.

Ours starts from their initial weights (converted with `jaxaffect.families.lirec.convert`) and
both losses without dropout are compared before timing. The two sides are timed in alternating
rounds (ours, theirs, ours, ...) on the same cores; torch gets one thread per core the process
may run on unless ``--torch_threads`` says otherwise, and XLA's CPU thread pool uses those cores
too. Steps/s are medians over rounds; the ratio is ours / theirs. Other load on the machine moves
every figure, torch's multi-threaded steps the most: measure on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
CONFIG = "configs/lirec/interactions.py:modalities=visual+text+tracks,released"
DIMS = {"visual": 2048, "text": 768, "tracks": 2048}  # the released feature sizes
MEMORY = "lirec_train_step_benchmark"
WORKER_FLAG = "--torch_worker"


# ------------------------------------------------------------------------ the authors' side
def torch_worker(argv: list[str]) -> int:
    """The subprocess running the authors' code: answers "run N" lines on stdin with one JSON
    line on stdout (their code prints much; everything else goes to stderr)."""
    p = argparse.ArgumentParser()
    p.add_argument("--authors_code", required=True)
    p.add_argument("--workdir", required=True, help="holds batch.npz; gets their_init.npz")
    p.add_argument("--classes", type=int, required=True)
    p.add_argument("--threads", type=int, required=True)
    args = p.parse_args(argv)
    proto = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # prints, from Python or C, land in the log

    def say(**msg: Any) -> None:
        proto.write(json.dumps(msg) + "\n")

    try:
        import torch
    except ImportError as e:
        say(error=f"torch is not importable by {sys.executable} ({e})")
        return 0
    torch.set_num_threads(args.threads)
    data_root = tempfile.mkdtemp(prefix="lirec_authors_data_")
    sys.argv = ["lirec", "--modality", "m", "--tracks", "--mod_check", "--ints", "1",
                "--device", "cpu", "--data_root", data_root, "--store_root", data_root,
                "--project_root", args.authors_code]
    sys.path.insert(0, args.authors_code)
    try:
        from mixed_utils import update_arg_pars
        from utils.arg_pars import opt
        from utils.util_functions import Averaging

        update_arg_pars.update("")
        opt.device = "cpu"  # update() picks cuda where torch sees a GPU; both sides run on CPU
        import mlp.model

        model, loss, optimizer = mlp.model.create_model(args.classes)
    except Exception as e:  # noqa: BLE001 -- any failure of their code is reported, one line
        say(error=f"the authors' code in {args.authors_code} did not load: "
                  f"{type(e).__name__}: {e}")
        return 0
    finally:
        shutil.rmtree(data_root, ignore_errors=True)

    with np.load(os.path.join(args.workdir, "batch.npz")) as f:
        batch = {"features": torch.from_numpy(f["features"]),
                 "labels": torch.from_numpy(f["labels"]),
                 "multilab_weights": torch.from_numpy(f["multilab_weights"])}
    np.savez(os.path.join(args.workdir, "their_init.npz"),
             **{k: v.detach().numpy() for k, v in model.state_dict().items()})
    model.eval()
    with torch.no_grad():
        start = float(loss(model(batch), batch))
    model.train()
    say(ready=True, torch=torch.__version__, threads=torch.get_num_threads(),
        model=type(model).__name__, loss=type(loss).__name__,
        optimizer=type(optimizer).__name__, lr=opt.lr, weight_decay=opt.weight_decay,
        feature_size=int(opt.mlp_dim), loss_at_start=start,
        params=sum(p.numel() for p in model.parameters()))
    losses = Averaging()
    for line in sys.stdin:
        if not line.startswith("run "):
            break
        t0 = time.perf_counter()
        for _ in range(int(line.split()[1])):
            output = model(batch)
            loss_values = loss(output, batch)
            losses.update(loss_values.item(), len(batch["labels"]))
            optimizer.zero_grad()
            loss_values.backward()
            optimizer.step()
        say(seconds=time.perf_counter() - t0, loss=losses.val)
    return 0


class TheirSide:
    """The authors' code in a subprocess of `python`; `facts` is its ready line, or None with
    `reason` when it could not run."""

    def __init__(self, python: str, authors_code: str, workdir: str, classes: int,
                 threads: int) -> None:
        self.log = os.path.join(workdir, "authors_code.log")
        with open(self.log, "w") as log:
            self.proc = subprocess.Popen(
                [python, str(Path(__file__).resolve()), WORKER_FLAG, "--authors_code",
                 authors_code, "--workdir", workdir, "--classes", str(classes), "--threads",
                 str(threads)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log,
                text=True, cwd=workdir)
        msg = self._read()
        self.facts: dict | None = msg if msg.get("ready") else None
        self.reason: str = msg.get("error", "")
        if self.facts is None:
            self.close()

    def _read(self) -> dict:
        line = self.proc.stdout.readline()
        if not line:
            tail = Path(self.log).read_text()[-2000:]
            return {"error": f"the PyTorch subprocess ended (exit {self.proc.wait()}): {tail}"}
        return json.loads(line)

    def run(self, n: int) -> float:
        self.proc.stdin.write(f"run {n}\n")
        self.proc.stdin.flush()
        msg = self._read()
        if "seconds" not in msg:
            raise RuntimeError(msg.get("error", str(msg)))
        if not np.isfinite(msg["loss"]):
            raise RuntimeError(f"their loss is {msg['loss']}")
        return msg["seconds"]

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.write("quit\n")
            self.proc.stdin.close()
            self.proc.wait(timeout=60)


# --------------------------------------------------------------------------------- the batch
def make_batch(batch: int, classes: int, overlap_p: float, seed: int = 0
               ) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """(our batch layout, the same numbers in the released flat layout). Each clip's overlap
    set holds its own label and each other label with probability `overlap_p`."""
    rng = np.random.default_rng(seed)
    visual = rng.normal(size=(batch, 1, DIMS["visual"])).astype(np.float32)
    text = rng.normal(size=(batch, 1, DIMS["text"])).astype(np.float32)
    tracks = rng.normal(size=(batch, 1, 2, DIMS["tracks"])).astype(np.float32)
    labels = rng.integers(0, classes, batch)
    overlap = rng.random((batch, classes)) < overlap_p
    overlap[np.arange(batch), labels] = True
    ours = {"inputs": {"visual": visual, "text": text, "tracks": tracks,
                       "clip_mask": np.ones((batch, 1), bool)},
            "interaction": labels.astype(np.int32), "overlap": overlap,
            "relationship": np.full(batch, -1, np.int32), "true_pair": np.full(batch, -1, np.int32),
            "reverse_pair": np.full(batch, -1, np.int32), "valid": np.ones(batch, bool)}
    theirs = {"features": np.concatenate([text, visual, tracks[:, :, 0], tracks[:, :, 1]], -1),
              "labels": labels.astype(np.int64),
              "multilab_weights": (~overlap).astype(np.float64)}
    return ours, theirs


# --------------------------------------------------------------------------------- our side
def our_side(batch: dict[str, Any], their_init: dict[str, np.ndarray] | None) -> dict[str, Any]:
    """Our compiled step (keys: steps(n) -> seconds, compile_s, flops, xla_flops, params, and
    loss_at_start when `their_init` gave the weights)."""
    import jax

    from jaxaffect import sharding
    from jaxaffect.config_loading import load_config
    from jaxaffect.families.lirec.convert import convert_state_dict
    from jaxaffect.families.lirec.task import LIReCTask
    from jaxaffect.perf import count_flops, xla_flops
    from jaxaffect.train import Setup, TrainState

    LIReCTask.add_memory_dataset(MEMORY, {"train": []}, {"dims": dict(DIMS)})
    config = load_config(str(REPO / CONFIG))
    config.data.memory = MEMORY
    config.training.batch_size = len(batch["interaction"])
    setup = Setup(config, steps_per_epoch=1)
    state = setup.init_state()
    shardings = setup.state_shardings
    batch = sharding.global_batch(setup.task.device_batch(batch), setup.mesh)
    out: dict[str, Any] = {}
    if their_init is not None:
        params, _ = convert_state_dict(their_init)
        want = jax.tree.map(lambda x: x.shape, state.params)
        if jax.tree.map(lambda x: x.shape, params) != want:
            raise ValueError("the authors' initial weights do not fit our released model")
        params = jax.device_put(params, shardings.params)
        opt_state = jax.jit(setup.tx.init, out_shardings=shardings.opt_state)(params)
        state = TrainState(step=state.step, params=params, opt_state=opt_state)
        with jax.default_matmul_precision("highest"):
            loss, _ = setup.task.loss(setup.model, params, batch, jax.random.key(0), False)
        out["loss_at_start"] = float(loss)
    key = jax.random.key(config.seed)
    train_step = setup.make_train_step()
    flops = count_flops(train_step, state, batch, key)
    t0 = time.perf_counter()
    compiled = train_step.lower(state, batch, key).compile()
    out.update(compile_s=time.perf_counter() - t0, flops=flops, xla_flops=xla_flops(compiled),
               params=int(sum(x.size for x in jax.tree.leaves(state.params))),
               model=setup.model)

    def steps(n: int) -> float:
        nonlocal state
        t0 = time.perf_counter()
        for _ in range(n):
            state, metrics = compiled(state, batch, key)
            jax.block_until_ready(metrics)
        if not np.isfinite(float(metrics["loss"])):
            raise RuntimeError(f"our loss is {float(metrics['loss'])}")
        return time.perf_counter() - t0

    out["steps"] = steps
    return out


def stored_reference(path: str) -> dict | None:
    """The newest line of the results file that measured the authors' code."""
    try:
        lines = Path(path).read_text().splitlines()
    except OSError:
        return None
    found = [r for r in (json.loads(x) for x in lines if x.strip())
             if r.get("theirs_steps_per_s")]
    return found[-1] if found else None


def git_commit(folder: str) -> str | None:
    try:
        out = subprocess.run(["git", "-C", folder, "rev-parse", "--short=12", "HEAD"],
                             capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    return (out.stdout.strip() or None) if out.returncode == 0 else None


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--authors_code", default="",
                   help="a checkout of github.com/Annusha/LIReC (without it: ours only)")
    p.add_argument("--torch_python", default=sys.executable,
                   help="the Python that runs the authors' code (needs torch and numpy)")
    p.add_argument("--torch_threads", type=int, default=0,
                   help="torch threads (default: one per core this process may run on)")
    p.add_argument("--batch", type=int, default=64, help="the released batch size")
    p.add_argument("--classes", type=int, default=101, help="interaction classes")
    p.add_argument("--overlap_p", type=float, default=0.02,
                   help="probability that another label overlaps a clip (never a negative)")
    p.add_argument("--rounds", type=int, default=5, help="alternating timing rounds")
    p.add_argument("--ours_steps", type=int, default=40, help="our timed steps per round")
    p.add_argument("--theirs_steps", type=int, default=15, help="their timed steps per round")
    p.add_argument("--out", default="benchmarks/results/lirec_train_step.jsonl",
                   help="results file this run appends its JSON line to")
    args = p.parse_args(argv)
    if args.authors_code:
        code = Path(args.authors_code).expanduser()
        missing = [f for f in ("mlp/model.py", "utils/arg_pars.py",
                               "mixed_utils/update_arg_pars.py") if not (code / f).is_file()]
        if missing:
            p.error(f"--authors_code {code}: no {missing[0]} there (expected a checkout of "
                    "github.com/Annusha/LIReC)")
        args.authors_code = str(code.resolve())
    if args.classes != 101:
        p.error(f"--classes {args.classes}: the released LIReC setting has 101 interactions")
    return args


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == [WORKER_FLAG]:
        return torch_worker(argv[1:])
    args = parse_args(argv)
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    import jax

    from jaxaffect.demo_runner import append_result, provenance
    from jaxaffect.perf import matmul_peak_gflops

    t_start = time.perf_counter()
    ours_batch, their_batch = make_batch(args.batch, args.classes, args.overlap_p)
    workdir = tempfile.mkdtemp(prefix="lirec_train_step_")
    theirs: TheirSide | None = None
    reason = "no --authors_code given"
    try:
        their_init = None
        if args.authors_code:
            np.savez(os.path.join(workdir, "batch.npz"), **their_batch)
            threads = args.torch_threads or len(os.sched_getaffinity(0))
            theirs = TheirSide(args.torch_python, args.authors_code, workdir, args.classes,
                               threads)
            if theirs.facts is None:
                reason, theirs = theirs.reason, None
            else:
                with np.load(os.path.join(workdir, "their_init.npz")) as f:
                    their_init = dict(f)
        ours = our_side(ours_batch, their_init)
        flops = ours["flops"]
        print(f"devices={jax.devices()} batch={args.batch} visual/text/track "
              f"{DIMS['visual']}/{DIMS['text']}/{DIMS['tracks']} classes={args.classes}; ours "
              f"compiled in {ours['compile_s']:.1f} s, {flops.total / 1e9:.2f} GFLOP/step "
              f"({ours['params']:,} parameters)", flush=True)
        if theirs is not None:
            f = theirs.facts
            diff = abs(f["loss_at_start"] - ours["loss_at_start"])
            print(f"theirs: {f['model']} + {f['loss']} + {f['optimizer']} (lr {f['lr']}, weight "
                  f"decay {f['weight_decay']}), torch {f['torch']} with {f['threads']} threads, "
                  f"{f['params']:,} parameters; loss at the same weights without dropout "
                  f"{f['loss_at_start']:.6f} vs ours {ours['loss_at_start']:.6f} "
                  f"(|diff| {diff:.1e})", flush=True)
        else:
            print(f"theirs: not measured ({reason})", flush=True)

        ours["steps"](2)  # warm-up
        if theirs is not None:
            theirs.run(2)
        ours_sps, theirs_sps, peaks = [], [], []
        for r in range(args.rounds):
            peaks.append(matmul_peak_gflops(reps=5))
            ours_sps.append(args.ours_steps / ours["steps"](args.ours_steps))
            line = f"round {r}: ours {ours_sps[-1]:7.1f} steps/s"
            if theirs is not None:
                theirs_sps.append(args.theirs_steps / theirs.run(args.theirs_steps))
                line += f"   theirs {theirs_sps[-1]:7.1f} steps/s"
            print(line + f"   (matmul peak {peaks[-1]:.0f} GFLOP/s)", flush=True)
    finally:
        if theirs is not None:
            theirs.close()
        shutil.rmtree(workdir, ignore_errors=True)

    rate, peak = statistics.median(ours_sps), statistics.median(peaks)
    gflop_s = flops.total / 1e9 * rate
    m = ours["model"]
    result: dict[str, Any] = {
        "config": CONFIG, "sizes": dict(DIMS, batch=args.batch, classes=args.classes,
                                        joint_dim=m.joint_dim, track_hidden_dim=m.track_hidden_dim,
                                        track_out_dim=m.track_out_dim),
        "params": ours["params"], "ours_steps_per_s": round(rate, 2),
        "ours_examples_per_s": round(rate * args.batch, 1),
        "ours_step_ms": round(1e3 / rate, 2), "ours_rounds": [round(x, 2) for x in ours_sps],
        "ours_compile_s": round(ours["compile_s"], 2), "flops_per_step": flops.total,
        "matmul_flops_per_step": flops.matmul, "xla_flops_per_step": ours["xla_flops"],
        "gflop_per_s": round(gflop_s, 1), "matmul_peak_gflop_per_s": round(peak, 1),
        "peak_fraction": round(gflop_s / peak, 3),
        "matmul_peak_rounds": [round(x, 1) for x in peaks],
        "cpus_available": len(os.sched_getaffinity(0)),
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)}
    if theirs is not None:
        f, theirs_rate = theirs.facts, statistics.median(theirs_sps)
        result.update(
            torch=f["torch"], torch_threads=f["threads"], theirs_model=f["model"],
            theirs_loss=f["loss"], theirs_params=f["params"],
            theirs_steps_per_s=round(theirs_rate, 2),
            theirs_step_ms=round(1e3 / theirs_rate, 2),
            theirs_rounds=[round(x, 2) for x in theirs_sps],
            ratio=round(rate / theirs_rate, 2), loss_at_start=ours["loss_at_start"],
            their_loss_at_start=f["loss_at_start"],
            loss_abs_diff_at_start=abs(f["loss_at_start"] - ours["loss_at_start"]),
            authors_commit=git_commit(args.authors_code))
    else:
        result["theirs_not_measured"] = reason
    result = provenance(str(jax.devices()), (time.perf_counter() - t_start) / 60,
                        benchmark="lirec_train_step", arguments=vars(args), **result)

    print(f"\nours:   {rate:7.1f} steps/s ({result['ours_step_ms']} ms/step, "
          f"{result['ours_examples_per_s']} examples/s), {gflop_s:.0f} GFLOP/s = "
          f"{gflop_s / peak:.0%} of the {peak:.0f} GFLOP/s float32 matmul rate (XLA counts "
          f"{ours['xla_flops'] / 1e9:.2f} GFLOP/step)")
    if theirs is not None:
        print(f"theirs: {result['theirs_steps_per_s']:7.1f} steps/s   ratio ours/theirs "
              f"{result['ratio']}x")
    else:
        stored = stored_reference(args.out)
        if stored is None:
            print(f"theirs: not measured, and {args.out} holds no line that measured them")
        else:
            print(f"theirs: not measured here; STORED measurement (not from this run): "
                  f"{stored['theirs_steps_per_s']} steps/s against ours "
                  f"{stored['ours_steps_per_s']} ({stored['ratio']}x) at commit "
                  f"{stored['commit']} on {stored['cpu']} ({stored['cores']} cores), torch "
                  f"{stored['torch']} with {stored['torch_threads']} threads (newest such line "
                  f"in {args.out})")
    print(f"machine: {result['cpu']} ({result['cores']} cores, {result['cpus_available']} "
          f"available), jax {result['jax']}, commit {result['commit']}; appended to {args.out}")
    append_result(args.out, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
