"""The README block of benchmarks/tam_pod_memory.py is rendered from its JSON lines: tables per
part, what the figures say a pod needs, failures named, older commits ignored."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("bench_report", REPO / "benchmarks" / "report.py")
report = importlib.util.module_from_spec(spec)
spec.loader.exec_module(report)
GIB = 2**30
SIZES = {"layers": 24, "decoder_layers": 16, "width": 1024, "heads": 16, "vocab": 50000,
         "batch": 256, "segments": 64, "comments": 32, "words": 16, "max_masked": 128,
         "dtype": "bfloat16", "remat": True}


def _line(commit: str, part: str, devices: int, **row) -> dict:
    args = {"part": part, "devices": str(devices), "vocab": 50000, "batch": 256,
            "budgets_gib": [16.0, 95.0], "small": False, "timeout": 3000.0}
    return {"benchmark": "tam_pod_memory", "commit": commit, "cpu": "CPU", "cores": 2,
            "jax": "0.x", "wall_minutes": 2.0, "arguments": args, "devices_count": devices,
            **({"part": part} if "error" not in row else {}), **row}


def _memory(commit: str, devices: int, mesh: list[int], peak_gib: float) -> dict:
    return _line(commit, "memory", devices, mesh=mesh, params=852_000_000,
                 param_bytes_per_device=int(3 * GIB / devices),
                 optimizer_bytes_per_device=int(6 * GIB / devices), xla_temp_bytes=int(GIB),
                 peak_bytes_estimate=int(peak_gib * GIB), compile_s=20.0, sizes=SIZES)


def test_pod_memory_block(tmp_path):
    runs = [_memory("old", 1, [1, 1, 1], 1.0),
            _memory("new", 1, [1, 1, 1], 61.0),
            _memory("new", 8, [8, 1, 1], 19.0), _memory("new", 8, [1, 8, 1], 9.0),
            _memory("new", 64, [1, 16, 4], 2.5),
            _line("new", "fit", 64, mesh=[1, 16, 4], budget_bytes=16 * GIB,
                  largest_fitting={"layers": 40, "width": 4096, "params": 9_100_000_000,
                                   "peak_bytes_estimate": int(14.2 * GIB)},
                  next_size_peak_bytes=int(20.5 * GIB), ladder_exhausted=False),
            _line("new", "fit", 64, error="timed out", stderr_tail="")]
    results = tmp_path / "results"
    results.mkdir()
    (results / "tam_pod_memory.jsonl").write_text("\n".join(json.dumps(r) for r in runs) + "\n")
    readme = tmp_path / "README.md"
    readme.write_text("<!-- bench:tam_pod_memory -->\n<!-- /bench:tam_pod_memory -->\n")
    assert report.update(readme, results) == ["tam_pod_memory"]
    text = readme.read_text()
    assert "| 1 | 1 x 1 x 1 | 3.00 | 6.00 | 1.00 | 61.00 | 20 |" in text
    assert "| 8 | 1 x 8 x 1 | 0.38 | 0.75 | 1.00 | 9.00 | 20 |" in text
    assert ("One device would need an estimated 61.00 GiB for this step; 16 GiB per device: "
            "the fewest devices that fit are 8 (mesh 1 x 8 x 1); 95 GiB per device: the fewest "
            "devices that fit are 1 (mesh 1 x 1 x 1).") in text
    assert "| 16 GiB | 1 x 16 x 4 | 40 x 4096 | 9.10 B | 14.20 | 20.50 |" in text
    assert "Did not complete: fit on 64 devices (timed out)." in text
    assert "`--part memory --devices 1 --timeout 3000`" in text and "Commit `new`" in text
    assert "| 3.00 | 6.00 | 1.00 | 1.00 |" not in text  # the old commit's line is not rendered
    assert report.update(readme, results, check=True) == []
