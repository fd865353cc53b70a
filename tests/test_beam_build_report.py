"""The README block of benchmarks/beam_build.py is rendered from its JSON line."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("bench_report", REPO / "benchmarks" / "report.py")
report = importlib.util.module_from_spec(spec)
spec.loader.exec_module(report)


def _run(commit: str, in_process: float, beam_2: float) -> dict:
    walls = {"in_process": in_process, "beam_1": 2 * beam_2, "beam_2": beam_2}
    return {"benchmark": "beam_build", "commit": commit, "cpu": "CPU", "cores": 2, "jax": "0.x",
            "arguments": {"num_videos": 10000, "rounds": 1}, "apache_beam": "2.x",
            "num_videos": 10000, "danmaku_rows": 660000, "examples": 59000,
            "synthesize_videos_per_s": 80.0, "build_s": walls,
            "comments_per_s": {k: 660000 / v for k, v in walls.items()},
            "videos_per_s": {k: 10000 / v for k, v in walls.items()},
            "ratio_to_in_process": {k: in_process / walls[k] for k in ("beam_1", "beam_2")},
            "cpus_available": 2}


def test_beam_build_block(tmp_path):
    results = tmp_path / "results"
    results.mkdir()
    runs = [_run("old", 999.0, 999.0), _run("new", 400.0, 250.0)]
    (results / "beam_build.jsonl").write_text("\n".join(json.dumps(r) for r in runs) + "\n")
    readme = tmp_path / "README.md"
    readme.write_text("<!-- bench:beam_build -->\nold\n<!-- /bench:beam_build -->\n")
    assert report.update(readme, results) == ["beam_build"]
    text = readme.read_text()
    assert "| Beam DirectRunner, 2 worker processes | 2,640 | 40.0 | 250 | 1.60x |" in text
    assert "| in process (the default) | 1,650 | 25.0 | 400 | 1.00x |" in text
    assert "--num_videos 10000" in text and "Commit `new`" in text and "999" not in text
    assert "wrote them at 80 videos/s" in text and "1 alternating round on" in text
    assert report.update(readme, results, check=True) == []
