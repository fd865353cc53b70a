"""Train-step throughput of our AMER against the authors' PyTorch AMER, side by side on CPU.

    PYTHONPATH=. python benchmarks/amer_train_step.py          # torch installed: both sides

Every run appends a JSON line (figures + commit, CPU, versions) to ``--out``; the README's
Benchmarks section quotes the latest one. A step is dominated by the dense encoders (the
6373 -> 1024 audio layer is the largest), so the ratio is bounded by how much dense work each
side does: with ``model.speaker_streams`` ours encodes audio and text once per segment (only
the segment's speaker has them; same numbers), theirs once per person and segment;
``--all_entries`` times ours without that.

Sizes are the paper's / the authors' config: audio 6373, text 1024, visual 4302
(= face 1024 + object 1230 + environment 2048), personality 118, 9 classes, D_e = 128 (encoders
audio 1024-512-256, text 512-256 as the authors' code, visual 512-384-256, personality
512-256, fusion 512, classifier 256), batch 8, every example 3 persons x 3 segments. Presence
as in MEmoR: each segment has one speaker among the persons, whose text is present and whose
audio is present with probability 0.9; a visual entry is present with probability 0.6. One
train step = forward + NLL + backward + Adam update (lr 5e-5; ``amsgrad`` on both sides, as
the authors' config sets it).

* ours: ``AMER(released_code=True, text_sizes=(512, 256))`` (the authors' function), one jitted
  step with donated state, each step blocked on; compile time, FLOPs per step
  (`jaxaffect.perf.count_flops`, loops counted by their trip count, next to XLA's cost analysis)
  and the achieved GFLOP/s as a fraction of this machine's float32 matmul peak measured in the
  same run (`jaxaffect.perf.matmul_peak_gflops`) are reported;
* theirs (when torch imports): the re-implementation of their module in
  ``tests/families/amer/fixtures/amer_ckpt/make_fixtures.py`` (their layer names and loops:
  per example, per person, per segment; the inter-personal attention recomputed for every
  person as in their code), ``torch.optim.Adam(amsgrad=True)``, inputs already collated in their
  flat layout (data loading is not timed on either side). Both start from the same weights (ours
  converted from theirs with ``jaxaffect.families.amer.convert``) and their log-probs on the
  benchmark batch are compared before timing.

The two are timed in alternating rounds (ours, theirs, ours, theirs, ...) on the same cores:
torch gets one thread per core the process may run on and XLA's CPU thread pool uses those
cores too (pin both with ``taskset -c 0 python ...``); samples/s are the median over rounds.
Their many tiny per-example operations suffer most from other load on the machine: measure on
an otherwise idle one.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import time
from pathlib import Path

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402

from jaxaffect.demo_runner import append_result, provenance  # noqa: E402
from jaxaffect.families.amer.amer_model import AMER  # noqa: E402
from jaxaffect.families.amer.convert import convert_state_dict  # noqa: E402
from jaxaffect.perf import count_flops, matmul_peak_gflops, xla_flops  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT / "tests" / "families" / "amer" / "fixtures" / "amer_ckpt" / "make_fixtures.py"
DIMS = {"audio": 6373, "text": 1024, "visual": 4302, "personality": 118}


def load_reference():
    """The module holding the authors' AMER re-implementation and the layout conversion."""
    spec = importlib.util.spec_from_file_location("amer_reference", REFERENCE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def make_batch(batch: int, persons: int, segments: int, visual_present: float,
               num_classes: int, seed: int = 0) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """A batch in our layout (no padding) and its labels; one speaker per segment."""
    rng = np.random.default_rng(seed)
    out: dict[str, np.ndarray] = {
        "person_mask": np.ones((batch, persons), bool),
        "segment_mask": np.ones((batch, segments), bool),
        "persons": np.tile(np.arange(persons, dtype=np.int32), (batch, 1)),
        "personality": rng.random((batch, persons, DIMS["personality"])).astype(np.float32),
        "target_person": rng.integers(0, persons, batch).astype(np.int32),
        "target_segment": rng.integers(0, segments, batch).astype(np.int32)}
    speaker = rng.integers(0, persons, (batch, 1, segments)) == np.arange(persons)[:, None]
    presence = {"text": speaker,
                "audio": speaker & (rng.random((batch, persons, segments)) < 0.9),
                "visual": rng.random((batch, persons, segments)) < visual_present}
    for m, flags in presence.items():
        x = rng.normal(size=(batch, persons, segments, DIMS[m])).astype(np.float32)
        out[m], out[f"{m}_present"] = np.where(flags[..., None], x, 0.0), flags
    return out, rng.integers(0, num_classes, batch).astype(np.int32)


def ours_step(model: AMER, params, batch: dict, labels: np.ndarray, lr: float):
    """(compiled step, state, device batch, compile seconds, FLOPs per step counted by
    `count_flops`, XLA's FLOPs per step)."""
    tx = optax.amsgrad(lr)
    state = (params, tx.init(params))

    def train_step(state, batch, labels):
        params, opt_state = state

        def loss_fn(p):
            logits = model.apply({"params": p}, batch, train=True)["logits"]
            logp = jax.nn.log_softmax(logits, axis=-1)
            return -jnp.mean(jnp.take_along_axis(logp, labels[:, None], axis=1))

        loss, grads = jax.value_and_grad(loss_fn)(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        return (optax.apply_updates(params, updates), opt_state), loss

    batch, labels = jax.device_put((batch, labels))
    t0 = time.perf_counter()
    compiled = jax.jit(train_step, donate_argnums=0).lower(state, batch, labels).compile()
    compile_s = time.perf_counter() - t0
    flops = count_flops(train_step, state, batch, labels).total
    return compiled, state, (batch, labels), compile_s, flops, xla_flops(compiled)


def _stored_reference(path: str) -> dict | None:
    """The last line of an earlier results file that measured the authors' model."""
    try:
        lines = open(path).read().splitlines()
    except OSError:
        return None
    found = [json.loads(x) for x in lines if x.strip()]
    found = [r for r in found if r.get("theirs_samples_per_s")]
    return found[-1] if found else None


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--persons", type=int, default=3)
    p.add_argument("--segments", type=int, default=3)
    p.add_argument("--d_e", type=int, default=128)
    p.add_argument("--classes", type=int, default=9)
    p.add_argument("--visual_present", type=float, default=0.6,
                   help="probability that a visual entry is present")
    p.add_argument("--bf16", action="store_true", help="our compute in bfloat16 (params f32)")
    p.add_argument("--all_entries", action="store_true",
                   help="encode audio and text for every person x segment (default: once per "
                        "segment, model.speaker_streams; same numbers)")
    p.add_argument("--lr", type=float, default=5e-5)
    p.add_argument("--rounds", type=int, default=5, help="alternating timing rounds")
    p.add_argument("--ours_steps", type=int, default=20, help="our timed steps per round")
    p.add_argument("--theirs_steps", type=int, default=3, help="their timed steps per round")
    p.add_argument("--no_reference", action="store_true", help="time ours only")
    p.add_argument("--out", default="benchmarks/results/amer_train_step.jsonl")
    args = p.parse_args()
    t_start = time.perf_counter()

    torch = None
    if not args.no_reference:
        try:
            import torch

            torch.set_num_threads(len(os.sched_getaffinity(0)))
        except ImportError:
            torch = None
    d_e = args.d_e
    batch, labels = make_batch(args.batch, args.persons, args.segments, args.visual_present,
                               args.classes)
    dtype = jnp.bfloat16 if args.bf16 else jnp.float32
    streams = () if args.all_entries else ("audio", "text")
    result: dict = {"sizes": dict(DIMS, d_e=d_e, classes=args.classes, batch=args.batch,
                                  persons=args.persons, segments=args.segments)}

    if torch is not None:
        ref = load_reference()
        torch.manual_seed(0)
        theirs = ref.released_amer(d_e, DIMS, args.classes)
        sd = {k: v.detach().numpy().copy() for k, v in theirs.state_dict().items()}
        params, info = convert_state_dict(sd)
        model = AMER(**info["amer"], dtype=dtype, speaker_streams=streams)
        flat = {k: torch.as_tensor(v) for k, v in ref.to_released_inputs(batch).items()}
        target = torch.as_tensor(labels, dtype=torch.long)
        with torch.no_grad():
            want = ref.released_call(theirs, flat).numpy()
        with jax.default_matmul_precision("highest"):
            got = np.asarray(jax.nn.log_softmax(model.apply({"params": params}, batch)["logits"]))
        result["max_abs_logprob_diff_at_start"] = float(np.abs(got - want).max())
        opt = torch.optim.Adam(theirs.parameters(), lr=args.lr, weight_decay=0, amsgrad=True)

        def their_steps(n: int) -> float:
            t0 = time.perf_counter()
            for _ in range(n):
                opt.zero_grad()
                loss = torch.nn.functional.nll_loss(ref.released_call(theirs, flat), target)
                loss.backward()
                opt.step()
            assert np.isfinite(loss.item())
            return time.perf_counter() - t0
    else:
        model = AMER(num_classes=args.classes, text_sizes=(4 * d_e, 2 * d_e),
                     audio_sizes=(8 * d_e, 4 * d_e, 2 * d_e),
                     visual_sizes=(4 * d_e, 3 * d_e, 2 * d_e),
                     personality_sizes=(4 * d_e, 2 * d_e), fusion_size=4 * d_e,
                     classifier_sizes=(2 * d_e,), released_code=True, dtype=dtype,
                     speaker_streams=streams)
        params = jax.jit(model.init)(jax.random.key(0), batch)["params"]

    compiled, state, dev, compile_s, flops, xla = ours_step(model, params, batch, labels,
                                                            args.lr)
    peak = matmul_peak_gflops()

    def our_steps(n: int) -> float:
        nonlocal state
        t0 = time.perf_counter()
        for _ in range(n):
            state, loss = compiled(state, *dev)
            jax.block_until_ready(loss)
        assert np.isfinite(float(loss))
        return time.perf_counter() - t0

    our_steps(2)  # warm-up
    if torch is not None:
        their_steps(1)
    ours_sps, theirs_sps = [], []
    for r in range(args.rounds):
        ours_sps.append(args.batch * args.ours_steps / our_steps(args.ours_steps))
        line = f"round {r}: ours {ours_sps[-1]:8.1f} samples/s"
        if torch is not None:
            theirs_sps.append(args.batch * args.theirs_steps / their_steps(args.theirs_steps))
            line += f"   theirs {theirs_sps[-1]:6.1f} samples/s"
        print(line, flush=True)

    ours_med = statistics.median(ours_sps)
    result.update(
        ours_samples_per_s=round(ours_med, 1), ours_rounds=[round(x, 1) for x in ours_sps],
        ours_compile_s=round(compile_s, 2), flops_per_step=flops, xla_flops_per_step=xla,
        ours_step_ms=round(1e3 * args.batch / ours_med, 2),
        ours_gflop_per_s=round(flops / 1e9 * ours_med / args.batch, 1),
        matmul_peak_gflop_per_s=round(peak, 1),
        peak_fraction=round(flops / 1e9 * ours_med / args.batch / peak, 3),
        cpus_available=len(os.sched_getaffinity(0)),
        torch=None if torch is None else torch.__version__,
        torch_threads=None if torch is None else torch.get_num_threads())
    if torch is not None:
        theirs_med = statistics.median(theirs_sps)
        result.update(theirs_samples_per_s=round(theirs_med, 1),
                      theirs_rounds=[round(x, 1) for x in theirs_sps],
                      ratio=round(ours_med / theirs_med, 1))
    result = provenance(str(jax.devices()), (time.perf_counter() - t_start) / 60,
                        benchmark="amer_train_step", arguments=vars(args), **result)

    print(f"\nmachine: {result['cpu']} ({result['cores']} cores, "
          f"{result['cpus_available']} available), jax {result['jax']}, "
          + (f"torch {result['torch']} ({result['torch_threads']} threads), "
             if torch is not None else "no torch, ")
          + f"commit {result['commit']}")
    print(f"ours:   {ours_med:8.1f} samples/s ({result['ours_step_ms']} ms/step, "
          f"{'bfloat16' if args.bf16 else 'float32'}), compile {compile_s:.1f} s, "
          f"{flops / 1e9:.2f} GFLOP/step (XLA counts {xla / 1e9:.2f}), "
          f"{result['ours_gflop_per_s']} GFLOP/s = {result['peak_fraction']:.0%} of the "
          f"{peak:.0f} GFLOP/s matmul peak")
    if torch is not None:
        print(f"theirs: {result['theirs_samples_per_s']:8.1f} samples/s   ratio ours/theirs "
              f"{result['ratio']}x   (start log-probs max |diff| "
              f"{result['max_abs_logprob_diff_at_start']:.1e})")
    else:
        print("theirs: not measured here (torch is not importable; pip install "
              "'jaxaffect[convert]')")
        stored = _stored_reference(args.out)
        if stored is not None:
            print(f"        stored measurement: {stored['theirs_samples_per_s']} samples/s at "
                  f"commit {stored['commit']} on {stored['cpu']} (from {args.out})")
    append_result(args.out, result)


if __name__ == "__main__":
    main()
