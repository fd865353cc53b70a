"""Accuracy by kind of synthetic clip: grouping of truth.csv rows and counts vs a direct
count; the demo's analysis table and image from a fake workdir."""

from __future__ import annotations

import json

import numpy as np
import pytest

from jaxaffect.families.avcpnet import by_kind as bk
from jaxaffect.families.avcpnet.synthetic import CORPUS_FILE, TRUTH_COLUMNS, TRUTH_FILE

# (id, category, kind, video_cue, audio_cue, has_audio): one or two clips per group
TRUTH = [
    ("c0", "fear", "both", "fear", "fear", "1"),
    ("c1", "neutral", "both", "neutral", "neutral", "1"),
    ("c2", "sadness", "video_only", "sadness", "agnostic", "1"),
    ("c3", "tension", "video_only", "tension", "none", "0"),
    ("c4", "fear", "video_only", "fear", "excitation", "1"),
    ("c5", "relaxation", "audio_only", "agnostic", "relaxation", "1"),
    ("c6", "excitation", "audio_only", "tension", "excitation", "1"),
    ("c7", "neutral", "audio_only", "fear", "neutral", "1"),
]
GROUP_OF = {"c0": "both", "c1": "both", "c2": "video_quiet", "c3": "video_quiet",
            "c4": "video_decoy", "c5": "audio_quiet", "c6": "audio_decoy", "c7": "audio_decoy"}


def _rows():
    return [dict(zip(TRUTH_COLUMNS, r)) for r in TRUTH]


def _write_predictions(path, correct: dict[str, bool]):
    path.parent.mkdir(parents=True, exist_ok=True)
    labels = {r[0]: r[1] for r in TRUTH}
    with open(path, "w") as f:
        for clip, ok in correct.items():
            pred = labels[clip] if ok else ("fear" if labels[clip] != "fear" else "neutral")
            f.write(json.dumps({"video_id": clip, "label": labels[clip], "prediction": pred,
                                "probabilities": {}}) + "\n")


def test_every_truth_row_falls_in_its_group():
    assert {r["id"]: bk.clip_group(r) for r in _rows()} == GROUP_OF
    assert {key for key, _ in bk.GROUPS} == set(GROUP_OF.values())
    with pytest.raises(ValueError, match="'c9'.*unknown kind 'mixed'"):
        bk.clip_group({"id": "c9", "kind": "mixed", "video_cue": "", "audio_cue": ""})
    with pytest.raises(ValueError, match="'c9'.*no field 'audio_cue'"):
        bk.clip_group({"id": "c9", "kind": "video_only", "video_cue": "fear"})


def test_group_accuracy_matches_a_direct_count(tmp_path):
    rng = np.random.default_rng(0)
    correct = {r[0]: bool(rng.integers(2)) for r in TRUTH}
    path = tmp_path / "predictions_test.jsonl"
    _write_predictions(path, correct)
    got = bk.group_accuracy(bk.read_predictions(path), _rows())
    for key, _ in bk.GROUPS:
        clips = [c for c, g in GROUP_OF.items() if g == key]
        assert got[key] == (sum(correct[c] for c in clips), len(clips))
    # predictions of clips the truth does not know: another corpus
    with pytest.raises(ValueError, match="not in truth.csv"):
        bk.group_accuracy({"zz": True}, _rows())


def test_a_broken_prediction_line_is_named(tmp_path):
    path = tmp_path / "predictions_test.jsonl"
    path.write_text(json.dumps({"video_id": "c0", "label": "fear", "prediction": "fear"})
                    + "\n{not json\n")
    with pytest.raises(ValueError, match=r"predictions_test.jsonl:2: not a prediction line"):
        bk.read_predictions(path)


def test_by_kind_table_over_arms_and_seeds(tmp_path):
    everything = {c: True for c in GROUP_OF}
    audio_reader = {c: g.startswith("audio") or g == "both" for c, g in GROUP_OF.items()}
    _write_predictions(tmp_path / "a" / "seed_0" / "predictions_test.jsonl", everything)
    _write_predictions(tmp_path / "a" / "seed_1" / "predictions_test.jsonl", audio_reader)
    _write_predictions(tmp_path / "b" / "seed_0" / "predictions_test.jsonl", audio_reader)
    _write_predictions(tmp_path / "b" / "seed_1" / "predictions_test.jsonl", audio_reader)
    table, sizes = bk.by_kind(tmp_path, ["a", "b"], [0, 1], _rows())
    assert sizes == {"both": 2, "video_quiet": 2, "video_decoy": 1, "audio_quiet": 1,
                     "audio_decoy": 2}
    assert table["a"]["video_quiet"] == [1.0, 0.0] and table["b"]["audio_decoy"] == [1.0, 1.0]
    text = bk.format_by_kind(table, sizes, {"a": "model A"})
    lines = text.splitlines()
    assert lines[0].startswith("| model | both streams (2) | video only, audio shows nothing (2)")
    std = 100 * np.std([1.0, 0.0], ddof=1)
    assert lines[2] == f"| model A | 100.0 ± 0.0 | 50.0 ± {std:.1f} | 50.0 ± {std:.1f} | " \
                       "100.0 ± 0.0 | 100.0 ± 0.0 |"
    assert lines[3].startswith("| b | 100.0 ± 0.0 | 0.0 ± 0.0 |")


def test_demo_analysis_writes_the_table_and_the_image(tmp_path):
    from jaxaffect.families.avcpnet.demo import AVCPNetDemo

    truth_dir = tmp_path / "manual"
    truth_dir.mkdir()
    (truth_dir / TRUTH_FILE).write_text(",".join(TRUTH_COLUMNS) + "\n"
                                        + "\n".join(",".join(r) for r in TRUTH) + "\n")
    (truth_dir / CORPUS_FILE).write_text(json.dumps({"oracle_accuracy": {"test": {
        "video": 0.75, "audio": 0.625, "fused": 0.875, "majority": 0.25}}}))
    for arm in ("visual", "audio", "epce"):
        _write_predictions(tmp_path / "w" / arm / "seed_0" / "predictions_test.jsonl",
                           {c: arm != "audio" for c in GROUP_OF})
    demo = AVCPNetDemo()
    text = demo.analysis(tmp_path / "w", {"truth": str(truth_dir)}, demo.settings(True), [0])
    assert "| Audio (ResNet on MFCC) | 0.0 | 0.0 | 0.0 | 0.0 | 0.0 |" in text
    assert "| AV-CPNet (+ EP-CE loss) | 100.0 | 100.0 |" in text
    assert "75.0 reading the video, 62.5 the audio, 87.5 both" in text
    png = tmp_path / "w" / "accuracy_by_kind.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000


def test_command_line_prints_the_table_and_names_what_is_missing(tmp_path, capsys):
    truth_dir = tmp_path / "corpus"
    truth_dir.mkdir()
    (truth_dir / TRUTH_FILE).write_text(",".join(TRUTH_COLUMNS) + "\n"
                                        + "\n".join(",".join(r) for r in TRUTH) + "\n")
    run = tmp_path / "run"
    _write_predictions(run / "predictions_test.jsonl",
                       {c: g == "both" for c, g in GROUP_OF.items()})
    assert bk.main(["--truth", str(truth_dir), str(run)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("| run | both streams (2) |")
    assert out[2] == f"| {run} | 100.0 | 0.0 | 0.0 | 0.0 | 0.0 |"
    assert bk.main(["--truth", str(truth_dir), str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {tmp_path}/predictions_test.jsonl: no predictions")
    assert bk.main(["--truth", str(tmp_path / "nowhere"), str(run)]) == 2
    assert "truth.csv" in capsys.readouterr().err
