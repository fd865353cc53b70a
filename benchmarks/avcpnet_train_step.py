"""Train step of AV-CPNet (Video Swin-T + ResNet-34 + TS-CF + EP-CE) and of its visual backbone
against torchvision's swin3d_t, side by side on the same input and cores.

    PYTHONPATH=. python benchmarks/avcpnet_train_step.py --size demo
    PYTHONPATH=. python benchmarks/avcpnet_train_step.py --size paper --batch 1

Every run appends a JSON line (figures + commit, CPU, versions) to ``--out``; the README's
Benchmarks section renders the latest runs (`python benchmarks/report.py`).

Measured for ``configs/avcpnet/avcpnet.py:size=<size>`` (compute float32 unless ``--bf16``):

* the whole AV-CPNet train step (forward of the three heads, Eq. 10 EP-CE loss, gradient,
  AdamW update; one jitted call with donated state): clips/s, compile seconds, FLOPs per step
  (`jaxaffect.perf.count_flops`: scanned layers counted once per layer, next to XLA's cost
  analysis, which counts a loop body once), achieved GFLOP/s and its fraction of this
  machine's float32 matmul peak measured in the same run (`jaxaffect.perf.matmul_peak_gflops`);
* the visual backbone alone, forward + backward + SGD-free gradient (our `VideoSwin3D` with the
  size's Swin settings on the B*s segment clips), and, when torch and torchvision import,
  torchvision's `SwinTransformer3d` with the same settings on the same input, forward +
  backward, timed in alternating rounds (ours, theirs, ...) with torch using every available
  core; the ratio is ours/theirs clips per second (goal: >= 1x).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable
from typing import Any

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402

from jaxaffect.config_loading import load_config  # noqa: E402
from jaxaffect.demo_runner import append_result, provenance  # noqa: E402
from jaxaffect.families.avcpnet.clips import ClipSpec  # noqa: E402
from jaxaffect.families.avcpnet.emotions import EMOTIONS6, polarity_of  # noqa: E402
from jaxaffect.families.avcpnet.ep_ce import multitask_loss  # noqa: E402
from jaxaffect.families.avcpnet.model import AVCPNet  # noqa: E402
from jaxaffect.nn.video_swin import VideoSwin3D  # noqa: E402
from jaxaffect.perf import count_flops, matmul_peak_gflops, xla_flops  # noqa: E402


def swin_settings(size: str) -> tuple[dict, ClipSpec]:
    """The Video Swin fields and the clip spec of `configs/avcpnet/avcpnet.py:size=<size>`."""
    config = load_config(f"configs/avcpnet/avcpnet.py:size={size}")
    d = config.data
    spec = ClipSpec(**{f: d[f] for f in ClipSpec.__dataclass_fields__ if f in d})
    swin = {k: tuple(v) if isinstance(v, (list, tuple)) else v
            for k, v in config.model.swin.to_dict().items()}
    return swin, spec


def our_backbone_grad(swin: dict, dtype: Any) -> Callable:
    """(params, clips) -> gradient of the mean squared backbone features (forward+backward)."""
    backbone = VideoSwin3D(**swin, dtype=dtype)

    def backbone_grad(p, x):
        return jax.grad(lambda q: jnp.mean(backbone.apply({"params": q}, x, train=False)
                                           .astype(jnp.float32) ** 2))(p)

    return backbone_grad


def our_backbone_inputs(swin: dict, dtype: Any, clips: np.ndarray) -> tuple[Any, Any]:
    """Initial params and the device copy of `clips` [N, T, H, W, 3]."""
    backbone = VideoSwin3D(**swin, dtype=dtype)
    params = jax.jit(lambda r: backbone.init(r, clips[:1], train=False)["params"])(
        jax.random.key(2))
    return params, jax.device_put(clips)


def torchvision_backbone(swin: dict, clips: np.ndarray) -> tuple[Any, Callable | None]:
    """(torch, one forward + backward of torchvision's SwinTransformer3d with the same settings
    on `clips`, torch using every available core), or (None, None) without torch/torchvision."""
    try:
        import torch
        from torchvision.models.video.swin_transformer import SwinTransformer3d
    except ImportError:
        return None, None
    torch.set_num_threads(len(os.sched_getaffinity(0)))
    theirs = SwinTransformer3d(
        patch_size=list(swin["patch_size"]), embed_dim=swin["embed_dim"],
        depths=list(swin["depths"]), num_heads=list(swin["num_heads"]),
        window_size=list(swin["window_size"]), mlp_ratio=swin["mlp_ratio"],
        stochastic_depth_prob=0.0, num_classes=6)
    x = torch.from_numpy(np.ascontiguousarray(clips.transpose(0, 4, 1, 2, 3)))

    def step() -> None:
        theirs.zero_grad()
        feats = theirs.norm(theirs.features(theirs.patch_embed(x)))
        (feats ** 2).mean().backward()

    return torch, step


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", default="demo", choices=["demo", "paper"])
    p.add_argument("--batch", type=int, default=0, help="clips per step (default: 8 demo, "
                                                          "1 paper)")
    p.add_argument("--bf16", action="store_true", help="compute in bfloat16 (params f32)")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--steps", type=int, default=0, help="timed steps per round (default: "
                                                        "5 demo, 1 paper)")
    p.add_argument("--no_reference", action="store_true", help="skip torchvision")
    p.add_argument("--out", default="benchmarks/results/avcpnet_train_step.jsonl")
    args = p.parse_args()
    t_start = time.perf_counter()
    paper = args.size == "paper"
    batch = args.batch or (1 if paper else 8)
    steps = args.steps or (1 if paper else 5)
    config = load_config(f"configs/avcpnet/avcpnet.py:size={args.size}")
    m = config.model
    swin, spec = swin_settings(args.size)
    dtype = jnp.bfloat16 if args.bf16 else jnp.float32
    rng = np.random.default_rng(0)
    video = rng.normal(size=(batch, *spec.video_shape)).astype(np.float32)
    mfcc = rng.normal(size=(batch, *spec.mfcc_shape)).astype(np.float32)
    has_audio = np.ones(batch, bool)
    labels = rng.integers(0, 6, batch).astype(np.int32)
    polarity = jnp.asarray(polarity_of(EMOTIONS6))

    # -- the whole AV-CPNet step ---------------------------------------------------------------
    model = AVCPNet(num_classes=6, branches="av", caf=True, caf_tokens=m.caf_tokens,
                    fusion="sum", hidden=int(m.hidden), num_heads=int(m.num_heads), swin=swin,
                    audio_width=int(m.audio_width), audio_blocks=tuple(m.audio_blocks),
                    audio_norm_groups=int(m.audio_norm_groups), dtype=dtype,
                    remat=bool(m.remat))
    params = jax.jit(lambda r: model.init(r, video[:1], mfcc[:1], has_audio[:1])["params"])(
        jax.random.key(0))
    tx = optax.adamw(1e-4, weight_decay=0.05)
    state = (params, tx.init(params))
    ones = jnp.ones((batch,), jnp.float32)

    def train_step(state, video, mfcc, has_audio, labels, key):
        params, opt_state = state

        def loss_fn(p):
            out = model.apply({"params": p}, video, mfcc, has_audio, train=True,
                              rngs={"dropout": key})
            return multitask_loss(out, labels, polarity, (0.5, 0.5, 0.5), weights=ones,
                                  audio_weights=ones)[0]

        loss, grads = jax.value_and_grad(loss_fn)(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        return (optax.apply_updates(params, updates), opt_state), loss

    dev = jax.device_put((video, mfcc, has_audio, labels))
    t0 = time.perf_counter()
    step = jax.jit(train_step, donate_argnums=0).lower(state, *dev, jax.random.key(1)).compile()
    compile_s = time.perf_counter() - t0
    step_flops = count_flops(train_step, state, *dev, jax.random.key(1)).total
    step_xla_flops = xla_flops(step)

    def our_steps(n: int) -> float:
        nonlocal state
        t0 = time.perf_counter()
        for i in range(n):
            state, loss = step(state, *dev, jax.random.key(i))
            jax.block_until_ready(loss)
        assert np.isfinite(float(loss))
        return time.perf_counter() - t0

    # -- the visual backbone alone, ours and torchvision's ------------------------------------
    clips_in = video.reshape(batch * spec.num_segments, *spec.video_shape[1:])
    bparams, bx = our_backbone_inputs(swin, dtype, clips_in)
    t0 = time.perf_counter()
    bstep = jax.jit(our_backbone_grad(swin, dtype)).lower(bparams, bx).compile()
    backbone_compile_s = time.perf_counter() - t0

    def our_backbone(n: int) -> float:
        t0 = time.perf_counter()
        for _ in range(n):
            jax.block_until_ready(bstep(bparams, bx))
        return time.perf_counter() - t0

    torch, theirs = (None, None) if args.no_reference else torchvision_backbone(swin, clips_in)

    def their_backbone(n: int) -> float:
        t0 = time.perf_counter()
        for _ in range(n):
            theirs()
        return time.perf_counter() - t0

    peak = matmul_peak_gflops()
    our_steps(1)
    our_backbone(1)
    if theirs is not None:
        their_backbone(1)
    full, ours_b, theirs_b = [], [], []
    n_clips = batch * spec.num_segments
    for r in range(args.rounds):
        full.append(batch * steps / our_steps(steps))
        ours_b.append(n_clips * steps / our_backbone(steps))
        line = (f"round {r}: AV-CPNet step {full[-1]:7.2f} clips/s; backbone fwd+bwd ours "
                f"{ours_b[-1]:7.2f} segment clips/s")
        if theirs is not None:
            theirs_b.append(n_clips * steps / their_backbone(steps))
            line += f", torchvision {theirs_b[-1]:7.2f}"
        print(line, flush=True)
    full_med = statistics.median(full)
    result = {
        "size": args.size, "batch": batch, "dtype": "bfloat16" if args.bf16 else "float32",
        "video_shape": list(spec.video_shape), "mfcc_shape": list(spec.mfcc_shape),
        "clips_per_s": round(full_med, 3), "rounds": [round(x, 3) for x in full],
        "compile_s": round(compile_s, 1), "flops_per_step": step_flops,
        "xla_flops_per_step": step_xla_flops,
        "gflop_per_s": round(step_flops / 1e9 * full_med / batch, 1),
        "matmul_peak_gflop_per_s": round(peak, 1),
        "backbone_ours_clips_per_s": round(statistics.median(ours_b), 3),
        "backbone_compile_s": round(backbone_compile_s, 1),
        "cpus_available": len(os.sched_getaffinity(0)),
        "torch": None if torch is None else torch.__version__}
    result["peak_fraction"] = round(result["gflop_per_s"] / peak, 3)
    if theirs_b:
        result["backbone_torchvision_clips_per_s"] = round(statistics.median(theirs_b), 3)
        result["backbone_ratio"] = round(result["backbone_ours_clips_per_s"]
                                         / result["backbone_torchvision_clips_per_s"], 2)
    result = provenance(str(jax.devices()), (time.perf_counter() - t_start) / 60,
                        benchmark="avcpnet_train_step", arguments=vars(args), **result)
    append_result(args.out, result)
    print(f"AV-CPNet ({args.size}, batch {batch}, {result['dtype']}): {full_med:.2f} clips/s, "
          f"compile {compile_s:.1f} s, {step_flops / 1e9:.1f} GFLOP/step (XLA counts "
          f"{step_xla_flops / 1e9:.1f}), "
          f"{result['gflop_per_s']} GFLOP/s = {result['peak_fraction']:.0%} of the "
          f"{peak:.0f} GFLOP/s matmul peak")
    if theirs_b:
        print(f"backbone fwd+bwd: ours {result['backbone_ours_clips_per_s']} vs torchvision "
              f"{result['backbone_torchvision_clips_per_s']} clips/s = "
              f"{result['backbone_ratio']}x")
    print(f"appended to {args.out}")


if __name__ == "__main__":
    main()
