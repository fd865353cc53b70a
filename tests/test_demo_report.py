"""The README's demo tables are what the renderer makes of the committed results files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from jaxaffect import demo_report

REPO = Path(__file__).resolve().parents[1]


def test_readme_tables_match_the_committed_results():
    assert demo_report.update(REPO / "README.md", REPO / "docs" / "results", check=True) == []


def _payload(seeds):
    return {"seeds": seeds, "header": "Synthetic corpus; test split.",
            "table_keys": [["acc", "Acc."]],
            "rows": {"chance": {"acc": {"mean": 0.25, "std": 0.0, "n": 1}},
                     "model": {"acc": {"mean": 0.5, "std": 0.1, "n": len(seeds)}}},
            "provenance": {"commit": "abc", "cpu": "Some CPU", "cores": 2, "jax": "0.1",
                           "devices": "1 cpu device(s)", "wall_minutes": 3.14, "quick": True}}


def test_render_and_update(tmp_path):
    block = demo_report.render("toy", _payload([0, 1, 2]))
    assert block.startswith("`jaxaffect demo toy --quick --seeds 0,1,2` at commit `abc` on "
                            "Some CPU (2 cores), jax 0.1, 1 cpu device(s), 3.1 min")
    assert "| model | 50.00 ± 10.00 |" in block and "Synthetic corpus; test split." in block
    assert "By kind" not in block
    analysed = demo_report.render("toy", {**_payload([0, 1, 2]), "analysis": "By kind: 1 2"})
    assert analysed == block + "\nBy kind: 1 2\n"
    results = tmp_path / "results"
    results.mkdir()
    (results / "toy.json").write_text(json.dumps(_payload([0])))
    readme = tmp_path / "README.md"
    readme.write_text("intro\n<!-- demo-results:toy -->\nTYPED BY HAND\n"
                      "<!-- /demo-results:toy -->\nend\n")
    assert demo_report.main(["--readme", str(readme), "--results", str(results),
                             "--check"]) == 1
    assert demo_report.update(readme, results) == ["toy"]
    text = readme.read_text()
    assert "TYPED BY HAND" not in text and "| model | 50.00 |" in text
    assert demo_report.update(readme, results, check=True) == []
    (results / "other.json").write_text(json.dumps(_payload([0])))
    with pytest.raises(ValueError, match="do not match"):
        demo_report.update(readme, results, check=True)
