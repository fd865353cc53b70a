"""README benchmark figures, rendered from the JSON lines the benchmarks append, never typed.

A benchmark run appends one JSON line (figures + provenance: commit, CPU, cores, versions,
arguments) to ``benchmarks/results/<name>.jsonl``. This script renders the runs of the newest
commit in that file into the README between ``<!-- bench:<name> -->`` and
``<!-- /bench:<name> -->``:

    python benchmarks/report.py            # write
    python benchmarks/report.py --check    # a test runs this: a hand edit fails it

Benchmarks without markers are not rendered; markers without a results file are an error.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))  # the sibling report_* modules

from report_common import (  # noqa: E402
    flops_per_step,
    flops_source,
    non_default_options,
    rate_and_share,
    stamp,
)
from report_scaling import (  # noqa: E402
    render_beam_build,
    render_tam_pod_memory,
    render_tam_sharded_memory,
)

START, END = "<!-- bench:{name} -->", "<!-- /bench:{name} -->"


def render_amer_train_step(runs: list[dict]) -> str:
    """One row per run: ours and the authors' PyTorch model side by side."""
    lines = ["| our setting | ours samples/s | compile (s) | GFLOP/step | GFLOP/s (share of matmul "
             "peak) | authors' PyTorch samples/s | ratio |", "|---|---|---|---|---|---|---|"]
    for r in runs:
        a = r.get("arguments", {})
        setting = ("every person x segment encoded" if a.get("all_entries")
                   else "audio/text once per segment (default)")
        setting += ", bfloat16" if a.get("bf16") else ", float32"
        theirs = r.get("theirs_samples_per_s")
        lines.append(f"| {setting} | {r['ours_samples_per_s']:.1f} | {r['ours_compile_s']:.1f} | "
                     f"{flops_per_step(r) / 1e9:.2f} | "
                     f"{rate_and_share(r.get('ours_gflop_per_s'), r)} | "
                     + (f"{theirs:.1f} | {r['ratio']:.1f}x |" if theirs else "not measured | - |"))
    s = runs[-1]["sizes"]
    head = (f"`PYTHONPATH=. python benchmarks/amer_train_step.py [--all_entries]` (batch "
            f"{s['batch']}, {s['persons']} persons x {s['segments']} segments, D_e={s['d_e']}, "
            f"{s['classes']} classes, Adam with amsgrad as the authors' config; median of "
            "alternating rounds; " + flops_source(runs) + "). " + stamp(runs))
    out = head + "\n\n" + "\n".join(lines) + "\n"
    flops = {(bool(r["arguments"].get("all_entries")), bool(r["arguments"].get("bf16"))):
             flops_per_step(r) for r in runs}
    saved = [f"{1 - flops[False, bf16] / flops[True, bf16]:.0%}"
             + (" (bfloat16)" if bf16 else "") for bf16 in (False, True)
             if (False, bf16) in flops and (True, bf16) in flops]
    if saved:
        out += ("\nEncoding audio and text once per segment removes " + ", ".join(saved)
                + " of the FLOPs per step of encoding every person x segment.\n")
    return out


def render_lirec_train_step(runs: list[dict]) -> str:
    """One row per run: our LIReC step and the authors' released PyTorch code side by side."""
    lines = ["| torch threads | ours steps/s | compile (s) | GFLOP/step | GFLOP/s (share of matmul "
             "peak) | authors' PyTorch steps/s | ratio |", "|---|---|---|---|---|---|---|"]
    for r in runs:
        theirs = r.get("theirs_steps_per_s")
        lines.append(f"| {r['torch_threads'] if theirs else '-'} | {r['ours_steps_per_s']:.1f} | "
                     f"{r['ours_compile_s']:.1f} | {r['flops_per_step'] / 1e9:.2f} | "
                     f"{rate_and_share(r['gflop_per_s'], r)} | "
                     + (f"{theirs:.1f} | {r['ratio']:.2f}x |" if theirs else "not measured | - |"))
    r, s = runs[-1], runs[-1]["sizes"]
    rounds = r["arguments"]["rounds"]
    head = ("`python benchmarks/lirec_train_step.py --authors_code DIR --torch_python PY` (DIR: "
            "a checkout of github.com/Annusha/LIReC, imported at run time; the interactions "
            f"setting with text {s['text']}, visual {s['visual']} and two {s['tracks']}-d "
            f"tracks, {s['classes']} classes, batch {s['batch']}, random inputs; ours: the "
            f"generic trainer's step for `{r['config']}`, from the authors' initial weights when "
            "they are measured; "
            "theirs: their `Modalities` model, `MaxMarginCrossEntropyLoss` and Adam from "
            "`mlp.model.create_model`, one iteration of the loop in their `mlp/train.py`; "
            f"median of {rounds} alternating round{'s' * (rounds != 1)}; "
            + flops_source(runs) + "). " + stamp(runs))
    out = head + "\n\n" + "\n".join(lines) + "\n"
    diffs = [x["loss_abs_diff_at_start"] for x in runs if "loss_abs_diff_at_start" in x]
    if diffs:
        out += ("\nAt the same weights without dropout the two losses differ by at most "
                f"{max(diffs):.1e}.\n")
    if "theirs_not_measured" in r:
        out += f"\nThe newest run did not measure the authors' code: {r['theirs_not_measured']}.\n"
    return out


SMTA_VARIANTS = {
    "smta/transformer": "SMTA (transformer), default parallel implementation",
    "smta/transformer/scan": "SMTA (transformer), attention inside the scan",
    "lstm": "LSTM baseline",
}


def render_smta_train_step(runs: list[dict]) -> str:
    """The newest run: one row per model variant, and eager PyTorch when it was measured."""
    r = runs[-1]
    a, s = r["arguments"], r["sizes"]
    flops = any("flops_per_step" in v for v in r["variants"])
    torch = r.get("torch_examples_per_s")
    cols = ["variant", "compile (s)", "step (ms)", "examples/s"]
    cols += ["GFLOP/step", "matmul GFLOP/s (share of matmul peak)"] if flops else []
    cols += ["vs eager PyTorch"] if torch else []
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for v in r["variants"]:
        cells = [SMTA_VARIANTS.get(v["variant"], f"`{v['variant']}`"), f"{v['compile_s']:.1f}",
                 f"{v['step_ms']:.0f}", f"{v['examples_per_s']:.1f}"]
        if flops:
            peak = {"peak_fraction": v.get("peak_fraction"),
                    "matmul_peak_gflop_per_s": r.get("matmul_peak_gflop_per_s")}
            cells += [f"{v['flops_per_step'] / 1e9:.1f}",
                      rate_and_share(v.get("gflop_per_s"), peak)]
        cells += [f"{v['vs_torch']:.2f}x"] if torch else []
        lines.append("| " + " | ".join(cells) + " |")
    if torch:
        cells = ["eager PyTorch (`benchmarks/torch_smta.py`)", "-", f"{r['torch_step_ms']:.0f}",
                 f"{torch:.1f}"] + (["-", "-"] if flops else []) + ["1.00x"]
        lines.append("| " + " | ".join(cells) + " |")
    if "rounds" in a:
        timing = (f"median of {a['rounds']} alternating rounds of {a['steps']} steps of each "
                  f"side after {a['warmup']} warm-up")
    else:
        timing = f"mean of {a['steps']} timed steps after {a['warmup']} warm-up"
    head = (f"`python benchmarks/smta_train_step.py` ({s['streams']} streams of "
            f"{s['input_dim']}-d features, d = {s['hidden']}, T = {s['steps_t']}, batch "
            f"{s['batch']}, Adam, {r['dtype']}; one step = forward with dropout, Eq. 5 loss, "
            f"gradient, update; {timing}"
            + ("; GFLOP/step by `jaxaffect.perf.count_flops`, loop bodies counted once per "
               "iteration, the share is of a float32 matmul's rate measured in the same run"
               if flops else "")
            + (f"; the process could run on {r['cpus_available']} of the cores"
               if r.get("cpus_available", r["cores"]) < r["cores"] else "") + "). "
            + stamp(runs))
    out = head + "\n\n" + "\n".join(lines) + "\n"
    if torch and "loss_abs_diff_at_start" in r:
        threads = r["torch_threads"]
        out += (f"\nEager PyTorch ({threads} thread{'s' * (threads != 1)}) starts from our "
                f"initial weights; the two Eq. 5 losses without dropout differ by "
                f"{r['loss_abs_diff_at_start']:.1e} there.\n")
    elif flops and not torch:
        out += "\nEager PyTorch was not measured in this run (torch not importable).\n"
    default = next((v for v in r["variants"] if v["variant"] == "smta/transformer"), None)
    if torch and default and default.get("matmul_flops_per_step") and r.get(
            "matmul_peak_gflop_per_s"):
        # the matmul rate the default variant's step would need to run at twice PyTorch's rate
        need = 2 * torch / s["batch"] * default["matmul_flops_per_step"] / 1e9
        out += (f"\nTwice eager PyTorch's rate with the default variant's matrix products "
                f"would need {need:.0f} GFLOP/s of them for the whole step, "
                f"{need / r['matmul_peak_gflop_per_s']:.0%} of the matmul rate measured in "
                f"this run (the step reaches {default['peak_fraction']:.0%}).\n")
    return out


PIPELINE_FORMATS = {"tfrecord": "TFRecord (default)", "array_record": "ArrayRecord"}


def _pipeline_formats_table(formats: list[dict], ours: bool) -> list[str]:
    """One row per file format; `ours`: runs that also timed our decoder (3 decimals), older
    runs timed TFDS's alone (2 decimals)."""
    decoding = ("decoding alone, TFDS `deserialize_example_np` (ms/example) | decoding alone, "
                "ours (ms/example)" if ours else "`deserialize_example_np` alone (ms/example)")
    lines = ["| format | train (shuffled) examples/s | eval examples/s | train ms/example | "
             f"{decoding} | build (s) | split index pass (s) |",
             "|---|---|---|---|---|---|---|" + "---|" * ours]
    for f in formats:
        build = "-" if f.get("build_s") is None else f"{f['build_s']:.1f}"
        decode = (f"{f['decode_ms_per_example']:.3f} | {f['decoder_ms_per_example']:.3f}" if ours
                  else f"{f['decode_ms_per_example']:.2f}")
        lines.append(f"| {PIPELINE_FORMATS.get(f['format'], f['format'])} | "
                     f"{f['train_examples_per_s']:,.0f} | {f['eval_examples_per_s']:,.0f} | "
                     f"{1e3 / f['train_examples_per_s']:.2f} | {decode} | {build} | "
                     f"{f['index_s']:.1f} |")
    return lines


def _pipeline_source(a: dict) -> str:
    return (f"{a['num_clips']:,} random clips, 5 streams of {a['dim']}-d, T up to {a['max_t']}"
            if not a.get("builder_dir") else "existing builds")


def render_input_pipeline(runs: list[dict]) -> str:
    """The newest run: one row per file format, then (runs that measured it) ours against
    plain tf.data per number of cores."""
    r = runs[-1]
    if "vs_tf_data" not in r and "decoder_ms_per_example" not in r["formats"][0]:
        return _render_input_pipeline_formats_only(runs)
    a = r["arguments"]
    lines = _pipeline_formats_table(r["formats"], ours=True)
    source = _pipeline_source(a)
    options = non_default_options(a, {"num_batches": 40, "rounds": 7, "decode_examples": 500},
                                  sep="=")
    if a.get("cores", [1, 2]) != [1, 2]:
        options += " --cores " + " ".join(str(c) for c in a["cores"])
    head = (f"`python benchmarks/input_pipeline.py --num_clips={a['num_clips']} "
            f"--max_t={a['max_t']} --dim={a['dim']} --batch_size={a['batch_size']}{options}` "
            f"({source}, batch {a['batch_size']}, {a['num_batches']} batches after 3 warm-up "
            f"batches, no tensorflow in the reader; decoding timed alone over "
            f"{a['decode_examples']} records already in memory; zlib streams inflated by "
            f"{r.get('inflater', 'zlib')}). " + stamp(runs))
    text = head + "\n\n" + "\n".join(lines) + "\n"
    versus = r.get("vs_tf_data")
    if versus:
        rows = ["| cores | plain tf.data examples/s | ours examples/s | ours / tf.data | "
                "ours without worker processes: examples/s, / tf.data |",
                "|---|---|---|---|---|"]
        for cores, v in versus.items():
            ours = "no worker process" if cores == "1" else f"{cores} grain worker processes"
            alone = (f"{v['ours_in_process_examples_per_s']:,.0f}, "
                     f"{v['ours_in_process_ratio']:.2f}x"
                     if "ours_in_process_examples_per_s" in v else "(same)")
            rows.append(f"| {cores} (ours: {ours}) | {v['tf_data_examples_per_s']:,.0f} | "
                        f"{v['ours_examples_per_s']:,.0f} | {v['ratio']:.2f}x | {alone} |")
        text += (f"\nAgainst plain tf.data on the same TFRecord files (train split, shuffled): "
                 f"each pipeline's median of {a['rounds']} alternating windows of "
                 f"{a['num_batches']} batches, all in one process pinned to that many cores "
                 "(see the benchmark's docstring for the pipelines).\n\n"
                 + "\n".join(rows) + "\n")
    return text


def _render_input_pipeline_formats_only(runs: list[dict]) -> str:
    """Runs from before the comparison with tf.data: one row per file format."""
    r = runs[-1]
    a = r["arguments"]
    lines = _pipeline_formats_table(r["formats"], ours=False)
    source = _pipeline_source(a)
    head = (f"`python benchmarks/input_pipeline.py --num_clips={a['num_clips']} "
            f"--max_t={a['max_t']} --dim={a['dim']} --batch_size={a['batch_size']}` ({source}, "
            f"batch {a['batch_size']}, {a['num_batches']} batches after 3 warm-up batches, no "
            f"tensorflow in the reader; decoding timed alone over {a['decode_examples']} "
            "records already in memory). " + stamp(runs))
    return head + "\n\n" + "\n".join(lines) + "\n"


def render_extraction(runs: list[dict]) -> str:
    """The newest run: whole `extract` runs by worker count, then each stage's rate."""
    r = runs[-1]
    rate = r["run_video_s_per_s"]
    lines = ["| run | s of video per s |", "|---|---|",
             f"| `extract tam`, 1 worker | {rate['tam_1']:.2f} |",
             f"| `extract tam`, 2 workers | {rate['tam_2']:.2f} ({r['scaling_2_workers']:.2f}x "
             "1 worker) |",
             f"| `extract perr`, 1 worker | {rate['perr_1']:.2f} |", "",
             "| stage (one worker) | `tam`: s of video per s in the stage | `perr` |",
             "|---|---|---|"]
    stages = r["stage_video_s_per_s"]
    for stage in sorted(set(stages["tam"]) | set(stages["perr"]),
                        key=lambda s: min(stages["tam"].get(s, 1e9), stages["perr"].get(s, 1e9))):
        cells = [f"{stages[k][stage]:.1f}" if stage in stages[k] else "-" for k in ("tam", "perr")]
        lines.append(f"| {stage} | {cells[0]} | {cells[1]} |")
    slow = r["slowest_stage"]
    a = r["arguments"]
    options = non_default_options(a, {"videos": 8, "seconds": 10.0, "rounds": 2})
    head = (f"`PYTHONPATH=. python benchmarks/extraction.py{options}` ({r['clip']}, a tone, "
            f"two faces and a subtitle file each; median of {a.get('rounds', 1)} alternating "
            f"rounds on {r['cpus_available']} available cores; worker start-up included in the "
            f"runs). Slowest stage: {slow['tam']} (`tam`), {slow['perr']} (`perr`). "
            + stamp(runs))
    return head + "\n\n" + "\n".join(lines) + "\n"


def render_avcpnet_input_pipeline(runs: list[dict]) -> str:
    """The newest run: clips/s by grain worker processes against the train step."""
    r = runs[-1]
    lines = ["| grain worker processes | pipeline clips/s | x what the train step consumes |",
             "|---|---|---|"]
    for w, rate in r["pipeline_clips_per_s"].items():
        label = "0 (in the training process)" if w == "0" else w
        lines.append(f"| {label} | {rate:.1f} | {r['ratio'][w]:.2f}x |")
    if "transform_clips_per_s" in r:
        rate = r["transform_clips_per_s"]
        lines.append(f"| per-clip work alone, one core (no batching, no prefetch) | {rate:.1f} | "
                     f"{rate / r['train_step_clips_per_s']:.2f}x |")
    v = r["video_shape"]
    head = ("`PYTHONPATH=. python benchmarks/avcpnet_input_pipeline.py` (the demo's synthetic "
            f"build read as training reads it: {v[0]} x {v[1]} frames of {v[3]} px + MFCC per "
            f"clip, batch {r['batch']}; steady state after worker start-up; the demo-size "
            f"AV-CPNet train step consumes {r['train_step_clips_per_s']:.1f} clips/s in the "
            f"same run, on {r['cpus_available']} available cores; median of "
            f"{r['arguments'].get('rounds', 1)} alternating rounds). " + stamp(runs))
    return head + "\n\n" + "\n".join(lines) + "\n"


def render_avcpnet_train_step(runs: list[dict]) -> str:
    """One row per run (size, batch, dtype): the whole AV-CPNet step and the visual backbone
    against torchvision's swin3d_t on the same input."""
    lines = ["| size (input per clip) | batch | AV-CPNet step clips/s | compile (s) | GFLOP/step "
             "| GFLOP/s (share of matmul peak) | backbone fwd+bwd: ours / torchvision segment "
             "clips/s | ratio |", "|---|---|---|---|---|---|---|---|"]
    for r in runs:
        v, m = r["video_shape"], r["mfcc_shape"]
        size = (f"{r['size']}, {r['dtype']} ({v[0]} x {v[1]} frames of {v[2]} px, "
                f"{m[0]} x {m[1]} x {m[2]} MFCC)")
        theirs = r.get("backbone_torchvision_clips_per_s")
        lines.append(
            f"| {size} | {r['batch']} | {r['clips_per_s']:.2f} | {r['compile_s']:.0f} | "
            f"{flops_per_step(r) / 1e9:.1f} | {rate_and_share(r.get('gflop_per_s'), r)} | "
            f"{r['backbone_ours_clips_per_s']:.2f} / "
            + (f"{theirs:.2f} | {r['backbone_ratio']:.2f}x |" if theirs
               else "not measured | - |"))
    head = ("`PYTHONPATH=. python benchmarks/avcpnet_train_step.py --size demo|paper` (AdamW, "
            "EP-CE over three heads; the backbone rows time forward + backward of the visual "
            "backbone alone on the B x s segment clips, torch using every available core; "
            "median of alternating rounds; " + flops_source(runs) + "). " + stamp(runs))
    return head + "\n\n" + "\n".join(lines) + "\n"


def render_swin_profile(runs: list[dict]) -> str:
    """The newest run: step wall time and op time by kind, ours (XLA) against torchvision."""
    r = runs[-1]
    kinds = list(r["ours"]["op_seconds"])
    lines = ["| backbone forward + backward | step (s) | " + " | ".join(kinds)
             + " | all ops (s) |", "|---" * (len(kinds) + 3) + "|"]
    for key, label in (("ours", "ours (XLA, jit)"), ("torchvision", "torchvision (eager)")):
        if key not in r:
            lines.append(f"| {label} | not measured |" + " - |" * (len(kinds) + 1))
            continue
        ops = r[key]["op_seconds"]
        lines.append(f"| {label} | {r[key]['step_s']:.2f} | "
                     + " | ".join(f"{ops[k]:.2f}" for k in kinds)
                     + f" | {sum(ops.values()):.2f} |")
    t, h, w = r["input"]
    a = r["arguments"]
    head = (f"`PYTHONPATH=. python benchmarks/swin_profile.py --size {r['size']}` (Video Swin-T "
            f"on {r['clips']} segment clip" + ("s" if r["clips"] != 1 else "")
            + f" of {t} frames of {h} x {w} px, float32, "
            f"{r['cpus_available']} cores for both; step: median of {a['rounds']} alternating "
            f"rounds; op seconds per step by kind from a `jax.profiler` / `torch.profiler` "
            f"trace of {a['steps']} steps, sorted by `jaxaffect.op_profile`; ops running at "
            "the same time on different threads both count). " + stamp(runs))
    return head + "\n\n" + "\n".join(lines) + "\n"


def render_swin_matmuls(runs: list[dict]) -> str:
    """The newest run: the step's matrix products timed one by one, summed per operation."""
    r = runs[-1]
    # per operation: seconds per step and core-seconds per step, XLA then PyTorch
    ops: dict[str, list[float]] = {}
    for row in r["products"]:
        acc = ops.setdefault(row["op"], [0.0, 0.0, 0.0, 0.0])
        for i, lib in enumerate(("xla", "torch")):
            acc[i] += row[f"{lib}_s"] * row["count"]
            acc[2 + i] += row[f"{lib}_s"] * row["count"] * row[f"{lib}_cores"]
    ops["all"] = [sum(v[i] for v in ops.values()) for i in range(4)]
    lines = ["| products of (forward + both gradients, all stages) | XLA (s per step) | "
             "PyTorch (s per step) | XLA / PyTorch time | cores busy: XLA / PyTorch |",
             "|---|---|---|---|---|"]
    for op, (ours, theirs, ours_cpu, theirs_cpu) in ops.items():
        name = f"**{op}**" if op == "all" else op
        lines.append(f"| {name} | {ours:.3f} | {theirs:.3f} | {ours / theirs:.2f} | "
                     f"{ours_cpu / ours:.2f} / {theirs_cpu / theirs:.2f} |")
    t, h, w = r["input"]
    a = r["arguments"]
    head = (f"`PYTHONPATH=. python benchmarks/swin_matmuls.py --size {r['size']}` (every "
            f"matrix product of Video Swin-T's forward + backward on 1 segment clip of {t} "
            f"frames of {h} x {w} px, shapes from the config, each timed alone as a jitted "
            f"`jnp.matmul` and as `torch.matmul` on the same float32 arrays and "
            f"{r['cpus_available']} cores, median of {a['rounds']} alternating rounds, times "
            f"the number of blocks that run it; cores busy: CPU time over wall time while it "
            f"ran; patch embedding and merging left out). "
            + stamp(runs))
    return head + "\n\n" + "\n".join(lines) + "\n"


def render_ctm_train_step(runs: list[dict]) -> str:
    """One row per run (batch, dtype, remat): rate, and FLOPs per step counted with loops
    against XLA's count of the scanned model."""
    lines = ["| batch | compute | examples/s | step (s) | compile (s) | GFLOP/step | XLA's "
             "GFLOP/step | GFLOP/s | share of matmul peak (GFLOP/s) |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in runs:
        compute = r["dtype"] + (", remat" if r.get("remat") else "")
        lines.append(
            f"| {r['batch']} | {compute} | {r['examples_per_s']:.2f} | {r['step_s']:.1f} | "
            f"{r['compile_s']:.0f} | {r['flops_per_step'] / 1e9:.1f} | "
            f"{r['xla_flops_per_step'] / 1e9:.1f} | {r['gflop_per_s']:.0f} | "
            f"{r['peak_fraction']:.0%} ({r['matmul_peak_gflop_per_s']:.0f}) |")
    s, a = runs[-1]["sizes"], runs[-1]["arguments"]
    f = s["features"]
    batches = sorted({r["batch"] for r in runs})
    batch = str(batches[0]) if len(batches) == 1 else "B"
    head = (f"`python benchmarks/ctm_train_step.py --batch {batch} --steps {a['steps']} "
            f"--rounds {a['rounds']}` (the generic trainer's step for TAM's CTM classifier: d = "
            f"{s['width']}, {s['layers']} layers under `nn.scan`, {s['heads']} heads, T = "
            f"{s['segments']} segments x {len(f)} streams of "
            + " / ".join(str(d) for d in f.values())
            + f"-d random features, {s['classes']} classes, Adam; median of {a['rounds']} "
            f"rounds of {a['steps']} " + ("step" if a["steps"] == 1 else "steps")
            + " after one warm-up step; GFLOP/step by `jaxaffect.perf.count_flops`, XLA's "
            "cost analysis counting the scanned layer once; the share is of a float32 matmul's "
            "rate measured before each round, median over rounds). " + stamp(runs))
    return head + "\n\n" + "\n".join(lines) + "\n"


RENDERERS: dict[str, Callable[[list[dict]], str]] = {
    "beam_build": render_beam_build,
    "avcpnet_train_step": render_avcpnet_train_step,
    "swin_profile": render_swin_profile,
    "swin_matmuls": render_swin_matmuls,
    "ctm_train_step": render_ctm_train_step,
    "avcpnet_input_pipeline": render_avcpnet_input_pipeline,
    "extraction": render_extraction,
    "amer_train_step": render_amer_train_step,
    "lirec_train_step": render_lirec_train_step,
    "smta_train_step": render_smta_train_step,
    "input_pipeline": render_input_pipeline,
    "tam_sharded_memory": render_tam_sharded_memory,
    "tam_pod_memory": render_tam_pod_memory,
}


def latest_runs(path: Path) -> list[dict]:
    """The runs of the newest commit in a results file (in file order)."""
    runs = [json.loads(x) for x in path.read_text().splitlines() if x.strip()]
    if not runs:
        raise ValueError(f"{path}: no runs")
    commit = runs[-1]["commit"]
    return [r for r in runs if r["commit"] == commit]


def update(readme: Path, results: Path, *, check: bool = False) -> list[str]:
    """Renders every marked benchmark; returns the names whose block changed (with `check`,
    nothing is written)."""
    text = readme.read_text()
    changed = []
    for name in re.findall(r"<!-- bench:([\w-]+) -->", text):
        if name not in RENDERERS:
            raise ValueError(f"{readme}: no renderer for benchmark {name!r}")
        path = results / f"{name}.jsonl"
        if not path.exists():
            raise ValueError(f"{readme}: benchmark {name!r} is marked but {path} is missing")
        block = RENDERERS[name](latest_runs(path))
        start, end = START.format(name=name), END.format(name=name)
        a, b = text.index(start) + len(start), text.index(end)
        if text[a:b] != "\n" + block:
            changed.append(name)
            text = text[:a] + "\n" + block + text[b:]
    if changed and not check:
        readme.write_text(text)
    return changed


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--readme", default=str(REPO / "README.md"))
    p.add_argument("--results", default=str(REPO / "benchmarks" / "results"))
    p.add_argument("--check", action="store_true", help="fail when a block is not current")
    args = p.parse_args(argv)
    changed = update(Path(args.readme), Path(args.results), check=args.check)
    if args.check and changed:
        print(f"stale benchmark blocks: {changed}; run python benchmarks/report.py",
              file=sys.stderr)
        return 1
    for name in changed:
        print(f"rendered {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
