"""The shared demo runner: arm order, run hand-over, results files and the table."""

from __future__ import annotations

import json

import ml_collections
import numpy as np
import pytest

from jaxaffect import demo_runner as dr


def test_table_reports_mean_and_sample_std_in_percent():
    rows = [("a", {"acc": {"mean": 0.2, "std": float(np.std([0.1, 0.3], ddof=1))}}),
            ("b", {})]
    table = dr.format_table(rows, (("acc", "accuracy"),), 2)
    assert f"| a | 20.00 ± {100 * np.std([0.1, 0.3], ddof=1):.2f} |" in table
    assert "| b | - |" in table
    assert "| a | 20.00 |" in dr.format_table(rows, (("acc", "accuracy"),), 1)


class _Toy(dr.Demo):
    tag = "[toy]"
    table_keys = (("acc", "Acc."),)

    def settings(self, quick):
        return {"quick": quick}

    def prepare(self, data_home, settings):
        return {"corpus": f"{data_home}/built"}

    def arms(self, settings):
        def cfg(name):
            def make(data, settings, seed, runs):
                c = ml_collections.ConfigDict({"name": name, "seed": seed,
                                               "previous": dict(runs)})
                return c
            return make
        return [dr.Arm("pre", cfg("pre"), in_table=False), dr.Arm("main", cfg("main"),
                                                                   label="main model")]

    def baselines(self, data, settings):
        return [("chance", {"acc": {"mean": 0.5, "std": 0.0, "n": 1}})]

    def header(self, settings, seeds, minutes, devices):
        return f"toy demo, seeds {seeds}"

    def footer(self, extra):
        return f"pre validation: {extra['best_validation']['pre']}\n"

    def analysis(self, out, data, settings, seeds):
        return f"analysis of {out.name}, seeds {seeds}, on {data['corpus']}\n"


def test_run_demo_trains_arms_per_seed_and_writes_results(tmp_path, monkeypatch):
    calls = []

    def fake_train(config, workdir, progress=True):
        calls.append((config.name, config.seed, dict(config.previous), workdir))
        return {"best_validation": {"loss": 1.0 + config.seed}}

    def fake_eval(config, workdir, split):
        assert split == "test"
        return {"metrics": {"acc": 0.6 + 0.1 * config.seed}}

    monkeypatch.setattr("jaxaffect.train.train", fake_train)
    monkeypatch.setattr("jaxaffect.evaluate.evaluate_run", fake_eval)
    payload = dr.run_demo(_Toy(), str(tmp_path / "w"), data_home=str(tmp_path / "h"),
                          seeds=[0, 2], progress=False)
    assert [c[:2] for c in calls] == [("pre", 0), ("main", 0), ("pre", 2), ("main", 2)]
    assert calls[1][2] == {"pre": str(tmp_path / "w" / "pre" / "seed_0")}
    assert calls[0][2] == {}
    saved = json.loads((tmp_path / "w" / "results.json").read_text())
    assert saved["per_seed"] == {"main": [{"acc": 0.6}, {"acc": pytest.approx(0.8)}]}
    assert list(saved["rows"]) == ["chance", "main model"]
    assert saved["rows"]["main model"]["acc"]["mean"] == pytest.approx(0.7)
    assert saved["best_validation"]["pre"] == [{"loss": 1.0}, {"loss": 3.0}]
    text = (tmp_path / "w" / "results.md").read_text()
    assert text.startswith("toy demo, seeds [0, 2]") and "| main model | 70.00 ± 14.14 |" in text
    assert "pre validation:" in text and payload["data"] == {"corpus": f"{tmp_path}/h/built"}
    # the analysis sits under the table (before the footer) and in the payload
    analysis = f"analysis of w, seeds [0, 2], on {tmp_path}/h/built"
    assert text.index("| main model |") < text.index(analysis) < text.index("pre validation:")
    assert saved["analysis"] == analysis


def test_append_result_adds_one_json_line_per_call(tmp_path):
    from jaxaffect.demo_runner import append_result

    path = tmp_path / "results" / "bench.jsonl"
    append_result(path, {"a": 1})
    append_result(path, {"b": [2.5]})
    assert [json.loads(line) for line in path.read_text().splitlines()] == [{"a": 1},
                                                                           {"b": [2.5]}]
