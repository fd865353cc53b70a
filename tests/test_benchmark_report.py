"""README benchmark blocks are rendered from the committed results files (never typed)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("bench_report", REPO / "benchmarks" / "report.py")
report = importlib.util.module_from_spec(spec)
spec.loader.exec_module(report)


def test_readme_blocks_are_current():
    assert report.update(REPO / "README.md", REPO / "benchmarks" / "results", check=True) == []


def _run(commit: str, ours: float, theirs: float | None, **args) -> dict:
    r = {"benchmark": "amer_train_step", "commit": commit, "cpu": "CPU", "cores": 2,
         "jax": "0.x", "torch": "2.x" if theirs else None, "arguments": args,
         "sizes": {"batch": 8, "persons": 3, "segments": 3, "d_e": 128, "classes": 9},
         "ours_samples_per_s": ours, "ours_compile_s": 1.0, "xla_flops_per_step": 2e9}
    if theirs:
        r.update(theirs_samples_per_s=theirs, ratio=ours / theirs)
    return r


def test_only_the_newest_commit_is_rendered_and_hand_edits_fail(tmp_path):
    results = tmp_path / "results"
    results.mkdir()
    runs = [_run("old", 7.7, 3.3), _run("new", 200.0, 40.0), _run("new", 150.0, None,
                                                                   all_entries=True)]
    runs[2]["xla_flops_per_step"] = 4e9
    (results / "amer_train_step.jsonl").write_text("\n".join(json.dumps(r) for r in runs))
    readme = tmp_path / "README.md"
    readme.write_text("x\n<!-- bench:amer_train_step -->\n<!-- /bench:amer_train_step -->\n")
    assert report.update(readme, results) == ["amer_train_step"]
    text = readme.read_text()
    assert "| 200.0 |" in text and "5.0x" in text and "not measured" in text
    assert "Commit `new`" in text and "7.7" not in text and "3.3" not in text
    assert "removes 50% of the FLOPs" in text and "predate the loop-aware count" in text
    assert report.update(readme, results, check=True) == []
    readme.write_text(text.replace("200.0", "250.0"))
    assert report.main(["--readme", str(readme), "--results", str(results), "--check"]) == 1


def test_marker_without_results_is_an_error(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("<!-- bench:amer_train_step -->\n<!-- /bench:amer_train_step -->\n")
    with pytest.raises(ValueError, match="missing"):
        report.update(readme, tmp_path)


def _stamped(benchmark: str, commit: str = "new", **fields) -> dict:
    return {"benchmark": benchmark, "commit": commit, "cpu": "CPU", "cores": 2, "jax": "0.x",
            "memory_gib": 23.5, **fields}


def _render(tmp_path, name: str, runs: list[dict]) -> str:
    results = tmp_path / "results"
    results.mkdir(exist_ok=True)
    (results / f"{name}.jsonl").write_text("\n".join(json.dumps(r) for r in runs) + "\n")
    readme = tmp_path / "README.md"
    readme.write_text(f"x\n<!-- bench:{name} -->\nhand typed 1.0\n<!-- /bench:{name} -->\ny\n")
    assert report.update(readme, results) == [name]
    assert report.update(readme, results, check=True) == []
    text = readme.read_text()
    assert text.startswith("x\n") and text.endswith(f"<!-- /bench:{name} -->\ny\n")
    assert "hand typed" not in text and "Commit `new`, CPU (2 cores, 23.5 GiB)" in text
    return text


def _smta(commit: str, factor: float, torch: bool = True) -> dict:
    variants = [{"variant": "smta/transformer", "compile_s": 6.81, "step_ms": 1572.1,
                 "examples_per_s": 10.18 * factor, "flops_per_step": 109.04e9,
                 "gflop_per_s": 63.2, "peak_fraction": 0.42},
                {"variant": "lstm", "compile_s": 4.0, "step_ms": 900.4,
                 "examples_per_s": 17.77, "flops_per_step": 57.9e9, "gflop_per_s": 60.1,
                 "peak_fraction": 0.4}]
    run = _stamped("smta_train_step", commit, dtype="float32", matmul_peak_gflop_per_s=150.2,
                   cpus_available=2, arguments={"steps": 2, "warmup": 1, "rounds": 5},
                   sizes={"batch": 16, "steps_t": 32, "input_dim": 512, "hidden": 512,
                          "streams": 5, "classes": 5}, variants=variants)
    if torch:
        for v in variants:
            v["vs_torch"] = v["examples_per_s"] / 8.0
        run.update(torch="2.x", torch_threads=2, torch_examples_per_s=8.0,
                   torch_step_ms=2000.0, loss_abs_diff_at_start=2e-6)
    return run


def test_smta_renders_the_newest_run_against_eager_pytorch(tmp_path):
    text = _render(tmp_path, "smta_train_step", [_smta("old", 9.0), _smta("new", 1.0)])
    assert ("| SMTA (transformer), default parallel implementation | 6.8 | 1572 | 10.2 | 109.0 "
            "| 63 (42% of 150) | 1.27x |") in text
    assert "| LSTM baseline | 4.0 | 900 | 17.8 | 57.9 | 60 (40% of 150) | 2.22x |" in text
    assert "| eager PyTorch (`benchmarks/torch_smta.py`) | - | 2000 | 8.0 | - | - | 1.00x |" in text
    assert "91.6" not in text and "batch 16" in text and "median of 5 alternating rounds" in text
    assert "differ by 2.0e-06" in text and "torch 2.x" in text
    assert "Twice eager PyTorch" not in text  # lines without the matrix-product count


def test_smta_says_what_twice_pytorch_would_need():
    run = _smta("new", 1.0)
    run["variants"][0]["matmul_flops_per_step"] = 108e9
    text = report.render_smta_train_step([run])
    # 2 x 8 examples/s / batch 16 x 108 GFLOP per step = 108 GFLOP/s; 108 / 150.2 = 72%
    assert ("would need 108 GFLOP/s of them for the whole step, 72% of the matmul rate measured "
            "in this run (the step reaches 42%).") in text


def test_smta_without_torch_says_it_was_not_measured(tmp_path):
    text = _render(tmp_path, "smta_train_step", [_smta("new", 1.0, torch=False)])
    assert "| SMTA (transformer), default parallel implementation | 6.8 | 1572 | 10.2 | 109.0 " \
           "| 63 (42% of 150) |\n" in text
    assert "Eager PyTorch was not measured in this run" in text and "vs eager" not in text


def test_smta_renders_lines_written_before_the_torch_comparison(tmp_path):
    run = _smta("new", 1.0, torch=False)
    run["arguments"] = {"steps": 5, "warmup": 1}
    for v in run["variants"]:
        for k in ("flops_per_step", "gflop_per_s", "peak_fraction"):
            del v[k]
    text = _render(tmp_path, "smta_train_step", [run])
    assert "| SMTA (transformer), default parallel implementation | 6.8 | 1572 | 10.2 |\n" in text
    assert "mean of 5 timed steps after 1 warm-up" in text and "GFLOP" not in text


def test_input_pipeline_renders_both_formats(tmp_path):
    fmt = {"build_s": 9.5, "index_s": 1.31, "train_examples_per_s": 938.4,
           "eval_examples_per_s": 1841.2, "decode_ms_per_example": 1.034}
    run = _stamped("input_pipeline", manual_dir_s=2.0,
                   arguments={"num_clips": 2000, "max_t": 35, "dim": 64, "batch_size": 32,
                              "num_batches": 40, "decode_examples": 500, "builder_dir": None},
                   formats=[{"format": "tfrecord", **fmt},
                            {"format": "array_record", **fmt, "build_s": None}])
    text = _render(tmp_path, "input_pipeline", [run])
    assert "--num_clips=2000 --max_t=35 --dim=64 --batch_size=32`" in text
    assert "| TFRecord (default) | 938 | 1,841 | 1.07 | 1.03 | 9.5 | 1.3 |" in text
    assert "| ArrayRecord | 938 | 1,841 | 1.07 | 1.03 | - | 1.3 |" in text


def _tam(model, devices, fsdp, state_mib=None, **args):
    r = _stamped("tam_sharded_memory", model=model, devices_count=devices, fsdp=fsdp,
                 arguments={"steps": 1, "model": model, "devices": str(devices),
                            "fsdp": fsdp if devices > 1 else None, "vocab": 21128,
                            "remat": False, "bf16": False, "small": False, "timeout": 540.0,
                            **args})
    if state_mib is None:
        r["error"] = "exit code -9 (killed by the kernel's out-of-memory killer)"
        return r
    b = int(state_mib * 2**20)
    r.update(params=136_700_000 if model == "finetune" else 244_700_000,
             param_and_optimizer_bytes_per_device=b, xla_argument_bytes=b + 2**20,
             xla_temp_bytes=2 * b, compile_s=12.5, step_s=14.12, remat=False, bf16=False,
             sizes={"features": {"image": 512, "motion": 2048, "audio": 128}, "width": 768,
                    "layers": 12, "heads": 12, "segments": 64, "batch": 8, "comments": 16,
                    "words": 16, "decoder_layers": 8, "vocab": 21128})
    return r


def test_tam_rows_ratios_and_configurations_that_did_not_complete(tmp_path):
    runs = [_tam("pretrain", 8, 8, 350.0), _tam("finetune", 1, 1, 9999.0),
            _tam("finetune", 8, 8, 200.0), _tam("finetune", 1, 1, 1600.0),
            _tam("pretrain", 1, 1, 2800.0), _tam("pretrain", 8, 1)]
    text = _render(tmp_path, "tam_sharded_memory", runs)
    rows = [x for x in text.splitlines() if x.startswith("| finetune") or
            x.startswith("| pretrain")]
    assert [x.split(" | ")[1] for x in rows] == ["1 device", "8 devices, fsdp 8", "1 device",
                                                 "8 devices, data 8", "8 devices, fsdp 8"]
    assert rows[0] == ("| finetune | 1 device | 136.7 M | 1600.0 MiB | 1601.0 MiB | 3200.0 MiB "
                       "| 12.5 | 14.1 |")  # the newest line of a configuration
    assert rows[3] == ("| pretrain | 8 devices, data 8 | 244.7 M | did not complete | - | - | "
                       "- | - |")
    assert "finetune 1600 -> 200 MiB, 8.0x with `mesh.fsdp=8`" in text
    assert "pretrain 2800 -> 350 MiB, 8.0x" in text and "9999" not in text
    assert "pretrain, 8 devices, data 8: exit code -9" in text
    assert "8 replicated copies of the 1-device row's 2.7 GiB" in text and "21.9 GiB" in text
    assert ("`python benchmarks/tam_sharded_memory.py --steps 1 --timeout 540`, run once per "
            "configuration with `--model finetune --devices 1`, `--model finetune --devices 8 "
            "--fsdp 8`, ") in text and "`--model pretrain --devices 8 --fsdp 1`, " in text
    assert "21,128-word vocabulary" in text


def test_amer_renders_the_loop_aware_count_and_the_share_of_peak(tmp_path):
    runs = [_run("new", 200.0, 40.0), _run("new", 150.0, None, all_entries=True)]
    for r, flops in zip(runs, (3e9, 6e9)):
        r.update(benchmark="amer_train_step", flops_per_step=flops, ours_gflop_per_s=75.0,
                 matmul_peak_gflop_per_s=150.0, peak_fraction=0.5)
    (tmp_path / "amer_train_step.jsonl").write_text("\n".join(json.dumps(r) for r in runs))
    readme = tmp_path / "README.md"
    readme.write_text("<!-- bench:amer_train_step -->\n<!-- /bench:amer_train_step -->\n")
    assert report.update(readme, tmp_path) == ["amer_train_step"]
    text = readme.read_text()
    assert "| 200.0 | 1.0 | 3.00 | 75 (50% of 150) | 40.0 | 5.0x |" in text
    assert "| 6.00 | 75 (50% of 150) | not measured | - |" in text
    assert "removes 50% of the FLOPs" in text and "`jaxaffect.perf.count_flops`" in text
    assert "predate" not in text


def _avcpnet(**fields) -> dict:
    return _stamped("avcpnet_train_step", size="paper", batch=1, dtype="float32",
                    video_shape=[4, 8, 224, 224, 3], mfcc_shape=[4, 256, 64], clips_per_s=0.06,
                    compile_s=35.5, xla_flops_per_step=658.8e9, gflop_per_s=38.3,
                    matmul_peak_gflop_per_s=156.9, peak_fraction=0.244,
                    backbone_ours_clips_per_s=0.418, **fields)


def test_avcpnet_renders_old_lines_and_the_loop_aware_count(tmp_path):
    old = _render(tmp_path, "avcpnet_train_step", [_avcpnet()])
    assert ("| 1 | 0.06 | 36 | 658.8 | 38 (24% of 157) | 0.42 / not measured | - |" in old
            and "predate the loop-aware count" in old)
    new = _render(tmp_path, "avcpnet_train_step",
                  [_avcpnet(flops_per_step=700.0e9, backbone_torchvision_clips_per_s=0.76,
                            backbone_ratio=0.55)])
    assert "| 1 | 0.06 | 36 | 700.0 | 38 (24% of 157) | 0.42 / 0.76 | 0.55x |" in new
    assert "`jaxaffect.perf.count_flops`" in new and "predate" not in new


def test_ctm_renders_both_counts_and_the_share_of_peak(tmp_path):
    def run(commit, batch, rate):
        return _stamped(
            "ctm_train_step", commit, batch=batch, dtype="float32", remat=batch == 2,
            arguments={"batch": batch, "steps": 1, "rounds": 3, "bf16": False},
            sizes={"features": {"image": 512, "motion": 2048, "audio": 128}, "width": 768,
                   "layers": 12, "heads": 12, "segments": 64, "classes": 8},
            examples_per_s=rate, step_s=batch / rate, compile_s=20.4,
            flops_per_step=116.2e9 * batch, xla_flops_per_step=11.9e9 * batch,
            gflop_per_s=90.3, matmul_peak_gflop_per_s=150.4, peak_fraction=0.6)

    text = _render(tmp_path, "ctm_train_step", [run("old", 8, 9.9), run("new", 8, 0.78),
                                                run("new", 2, 0.5)])
    assert "| 8 | float32 | 0.78 | 10.3 | 20 | 929.6 | 95.2 | 90 | 60% (150) |" in text
    assert "| 2 | float32, remat | 0.50 | 4.0 |" in text and "9.90" not in text
    assert "--batch B --steps 1 --rounds 3`" in text and "12 layers under `nn.scan`" in text
    assert "512 / 2048 / 128-d" in text


def test_avcpnet_input_pipeline_renders_workers_and_the_per_clip_rate(tmp_path):
    run = _stamped("avcpnet_input_pipeline", arguments={"rounds": 3}, batch=16,
                   video_shape=[2, 4, 48, 48, 3], train_step_clips_per_s=200.0,
                   transform_clips_per_s=150.0, cpus_available=2,
                   pipeline_clips_per_s={"0": 100.0, "2": 300.0},
                   ratio={"0": 0.5, "2": 1.5})
    text = _render(tmp_path, "avcpnet_input_pipeline", [run])
    assert "| 0 (in the training process) | 100.0 | 0.50x |" in text
    assert "| 2 | 300.0 | 1.50x |" in text
    assert "| per-clip work alone, one core (no batching, no prefetch) | 150.0 | 0.75x |" in text
    assert "200.0 clips/s" in text and "median of 3 alternating rounds" in text


def test_swin_profile_renders_both_models_by_kind(tmp_path):
    ops = {"matrix products": 1.04, "layout copies": 0.3, "broadcasts": 0.2, "other": 0.31}
    run = _stamped("swin_profile", size="paper", clips=1, input=[8, 224, 224], cpus_available=2,
                   arguments={"rounds": 3, "steps": 2}, torch="2.x",
                   ours={"step_s": 2.18, "op_seconds": ops},
                   torchvision={"step_s": 1.48, "op_seconds": dict(ops, broadcasts=0.02)})
    text = _render(tmp_path, "swin_profile", [run])
    assert "| ours (XLA, jit) | 2.18 | 1.04 | 0.30 | 0.20 | 0.31 | 1.85 |" in text
    assert "| torchvision (eager) | 1.48 | 1.04 | 0.30 | 0.02 | 0.31 | 1.67 |" in text
    assert "matrix products | layout copies | broadcasts | other | all ops (s) |" in text
    assert "--size paper" in text and "8 frames of 224 x 224 px" in text
    del run["torchvision"]  # torch not installed
    (tmp_path / "without_torch").mkdir()
    text = _render(tmp_path / "without_torch", "swin_profile", [run])
    assert "| torchvision (eager) | not measured | - | - | - | - | - |" in text


def test_swin_matmuls_sums_each_operation_over_stages_and_gradients(tmp_path):
    rows = [{"op": "MLP layer 1", "stage": 1, "kind": "forward", "count": 2,
             "xla_s": 0.010, "torch_s": 0.008, "xla_cores": 2.0, "torch_cores": 2.0},
            {"op": "MLP layer 1", "stage": 3, "kind": "weight gradient", "count": 6,
             "xla_s": 0.005, "torch_s": 0.005, "xla_cores": 1.5, "torch_cores": 2.0},
            {"op": "attention logits", "stage": 1, "kind": "forward", "count": 2,
             "xla_s": 0.004, "torch_s": 0.002, "xla_cores": 1.0, "torch_cores": 1.9}]
    run = _stamped("swin_matmuls", size="paper", input=[8, 224, 224], cpus_available=2,
                   arguments={"rounds": 5}, torch="2.x", products=rows)
    text = _render(tmp_path, "swin_matmuls", [run])
    # MLP 1: 2 * 0.010 + 6 * 0.005 = 0.050 vs 2 * 0.008 + 6 * 0.005 = 0.046
    # cores busy, time-weighted: (0.020 * 2 + 0.030 * 1.5) / 0.050 = 1.70 vs 2.00
    assert "| MLP layer 1 | 0.050 | 0.046 | 1.09 | 1.70 / 2.00 |" in text
    assert "| attention logits | 0.008 | 0.004 | 2.00 | 1.00 / 1.90 |" in text
    # (0.085 + 0.008) / 0.058 = 1.60; (0.092 + 0.0076) / 0.050 = 1.99
    assert "| **all** | 0.058 | 0.050 | 1.16 | 1.60 / 1.99 |" in text
    assert "--size paper" in text and "8 frames of 224 x 224 px" in text


def test_swin_matmuls_derives_every_product_from_the_config():
    import sys

    sys.path.insert(0, str(REPO / "benchmarks"))
    try:
        from swin_matmuls import OPS, products
    finally:
        sys.path.remove(str(REPO / "benchmarks"))
    swin = {"embed_dim": 96, "depths": (2, 2, 6, 2), "num_heads": (3, 6, 12, 24),
            "patch_size": (2, 4, 4), "window_size": (8, 7, 7), "mlp_ratio": 4.0}
    rows = products(swin, frames=8, side=224)
    assert len(rows) == 4 * len(OPS) * 3  # stages x operations x (forward + 2 gradients)
    by = {(r["op"], r["stage"], r["kind"]): r for r in rows}
    # stage 1: 4 x 56 x 56 tokens of width 96; windows shrink to 4 x 7 x 7 (64 of them)
    assert by[("MLP layer 1", 1, "forward")]["shape"] == (1, 12544, 96, 384)
    assert by[("MLP layer 1", 1, "weight gradient")]["shape"] == (1, 96, 12544, 384)
    assert by[("attention logits", 1, "forward")]["shape"] == (64 * 3, 196, 32, 196)
    assert by[("weighted values", 3, "forward")]["shape"] == (4 * 12, 196, 196, 32)
    assert by[("q/k/v projection", 4, "input gradient")]["shape"] == (1, 196, 3 * 768, 768)
    assert {r["count"] for r in rows if r["stage"] == 3} == {6}
    # every gradient product does the forward product's work
    for (op, stage, _kind), r in by.items():
        assert np.prod(r["shape"]) == np.prod(by[(op, stage, "forward")]["shape"])


def _lirec(commit: str, ours: float, theirs: float | None, threads: int = 2) -> dict:
    run = _stamped("lirec_train_step", commit, arguments={"rounds": 5},
                   config="configs/lirec/interactions.py:modalities=visual+text+tracks,released",
                   sizes={"visual": 2048, "text": 768, "tracks": 2048, "batch": 64,
                          "classes": 101},
                   ours_steps_per_s=ours, ours_compile_s=1.23, flops_per_step=1.402e9,
                   gflop_per_s=1.402 * ours, matmul_peak_gflop_per_s=150.0,
                   peak_fraction=1.402 * ours / 150.0)
    if theirs is None:
        run["theirs_not_measured"] = "no --authors_code given"
    else:
        run.update(torch="2.x", torch_threads=threads, theirs_steps_per_s=theirs,
                   ratio=ours / theirs, loss_abs_diff_at_start=1.9e-6)
    return run


def test_lirec_renders_ours_against_the_authors_code(tmp_path):
    text = _render(tmp_path, "lirec_train_step",
                   [_lirec("old", 9.0, 3.0), _lirec("new", 70.5, 24.5),
                    _lirec("new", 70.0, 35.0, threads=1), _lirec("new", 71.0, None)])
    assert "| 2 | 70.5 | 1.2 | 1.40 | 99 (66% of 150) | 24.5 | 2.88x |" in text
    assert "| 1 | 70.0 | 1.2 | 1.40 | 98 (65% of 150) | 35.0 | 2.00x |" in text
    assert "| - | 71.0 | 1.2 | 1.40 | 100 (66% of 150) | not measured | - |" in text
    assert "| 9.0 |" not in text and "batch 64" in text and "101 classes" in text
    assert "median of 5 alternating rounds" in text and "differ by at most 1.9e-06" in text
    assert "did not measure the authors' code: no --authors_code given" in text
    assert "`configs/lirec/interactions.py:modalities=visual+text+tracks,released`" in text


def test_extraction_block_names_the_options_it_ran_with():
    run = {"benchmark": "extraction", "commit": "c", "cpu": "CPU", "cores": 2, "jax": "0.x",
           "arguments": {"videos": 8, "seconds": 20.0, "rounds": 2}, "cpus_available": 2,
           "clip": "8 x 20 s", "run_video_s_per_s": {"tam_1": 20.0, "tam_2": 30.0,
                                                     "perr_1": 9.0},
           "scaling_2_workers": 1.5, "slowest_stage": {"tam": "visual", "perr": "faces"},
           "stage_video_s_per_s": {"tam": {"visual": 40.0}, "perr": {"faces": 18.0}}}
    block = report.render_extraction([run])
    assert block.startswith("`PYTHONPATH=. python benchmarks/extraction.py --seconds 20` (8 x 20 s")
    assert "| `extract tam`, 2 workers | 30.00 (1.50x 1 worker) |" in block
    assert "| faces | - | 18.0 |" in block
    run["arguments"] = {"videos": 8, "seconds": 10.0, "rounds": 2}  # the defaults: no options
    assert report.render_extraction([run]).startswith(
        "`PYTHONPATH=. python benchmarks/extraction.py` (")


# --- scaling benchmarks (benchmarks/report_scaling.py)
def _beam_run(commit: str, in_process: float, beam_2: float) -> dict:
    walls = {"in_process": in_process, "beam_1": 2 * beam_2, "beam_2": beam_2}
    return _stamped("beam_build", commit, **{
            "arguments": {"num_videos": 10000, "rounds": 1}, "apache_beam": "2.x",
            "num_videos": 10000, "danmaku_rows": 660000, "examples": 59000,
            "synthesize_videos_per_s": 80.0, "build_s": walls,
            "comments_per_s": {k: 660000 / v for k, v in walls.items()},
            "videos_per_s": {k: 10000 / v for k, v in walls.items()},
            "ratio_to_in_process": {k: in_process / walls[k] for k in ("beam_1", "beam_2")},
            "cpus_available": 2})


def test_beam_build_block(tmp_path):
    runs = [_beam_run("old", 999.0, 999.0), _beam_run("new", 400.0, 250.0)]
    text = _render(tmp_path, "beam_build", runs)
    assert "| Beam DirectRunner, 2 worker processes | 2,640 | 40.0 | 250 | 1.60x |" in text
    assert "| in process (the default) | 1,650 | 25.0 | 400 | 1.00x |" in text
    assert "--num_videos 10000" in text and "Commit `new`" in text and "999" not in text
    assert "wrote them at 80 videos/s" in text and "1 alternating round on" in text


POD_GIB = 2**30
POD_SIZES = {"layers": 24, "decoder_layers": 16, "width": 1024, "heads": 16, "vocab": 50000,
             "batch": 256, "segments": 64, "comments": 32, "words": 16, "max_masked": 128,
             "dtype": "bfloat16", "remat": True}


def _pod_line(commit: str, part: str, devices: int, **row) -> dict:
    args = {"part": part, "devices": str(devices), "vocab": 50000, "batch": 256,
            "budgets_gib": [16.0, 95.0], "small": False, "timeout": 3000.0}
    return _stamped("tam_pod_memory", commit, wall_minutes=2.0, arguments=args,
                    devices_count=devices, **({"part": part} if "error" not in row else {}),
                    **row)


def _pod_memory(commit: str, devices: int, mesh: list[int], peak_gib: float) -> dict:
    return _pod_line(commit, "memory", devices, mesh=mesh, params=852_000_000,
                 param_bytes_per_device=int(3 * POD_GIB / devices),
                 optimizer_bytes_per_device=int(6 * POD_GIB / devices), xla_temp_bytes=int(POD_GIB),
                 peak_bytes_estimate=int(peak_gib * POD_GIB), compile_s=20.0, sizes=POD_SIZES)


def test_pod_memory_block(tmp_path):
    runs = [_pod_memory("old", 1, [1, 1, 1], 1.0),
            _pod_memory("new", 1, [1, 1, 1], 61.0),
            _pod_memory("new", 8, [8, 1, 1], 19.0), _pod_memory("new", 8, [1, 8, 1], 9.0),
            _pod_memory("new", 64, [1, 16, 4], 2.5),
            _pod_line("new", "fit", 64, mesh=[1, 16, 4], budget_bytes=16 * POD_GIB,
                  largest_fitting={"layers": 40, "width": 4096, "params": 9_100_000_000,
                                   "peak_bytes_estimate": int(14.2 * POD_GIB)},
                  next_size_peak_bytes=int(20.5 * POD_GIB), ladder_exhausted=False),
            _pod_line("new", "fit", 64, error="timed out", stderr_tail="")]
    text = _render(tmp_path, "tam_pod_memory", runs)
    assert "| 1 | 1 x 1 x 1 | 3.00 | 6.00 | 1.00 | 61.00 | 20 |" in text
    assert "| 8 | 1 x 8 x 1 | 0.38 | 0.75 | 1.00 | 9.00 | 20 |" in text
    assert ("One device would need an estimated 61.00 GiB for this step; 16 GiB per device: "
            "the fewest devices that fit are 8 (mesh 1 x 8 x 1); 95 GiB per device: the fewest "
            "devices that fit are 1 (mesh 1 x 1 x 1).") in text
    assert "| 16 GiB | 1 x 16 x 4 | 40 x 4096 | 9.10 B | 14.20 | 20.50 |" in text
    assert "Did not complete: fit on 64 devices (timed out)." in text
    assert "`--part memory --devices 1 --timeout 3000`" in text and "Commit `new`" in text
    assert "| 3.00 | 6.00 | 1.00 | 1.00 |" not in text  # the old commit's line is not rendered
