"""`jaxaffect synthesize tsc`: the comment videos of the synthetic TAM corpus alone, written as
a bilibili_tsc manual_dir (the corpus of the Beam build benchmark)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from jaxaffect import cli
from jaxaffect.data.build import build_dataset
from jaxaffect.families.tam import synthetic as ts
from jaxaffect.families.tam import synthetic_process as tp


def _hashes(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_videos_as_the_tam_corpus(tmp_path):
    summary = ts.write_tsc_corpus(str(tmp_path / "tsc"), num_videos=5, seed=4)
    ts.write_tam_corpus(str(tmp_path / "tam"), num_tsc_videos=5, num_labelled=16, seed=4)
    ours = _hashes(tmp_path / "tsc")
    theirs = _hashes(tmp_path / "tam" / ts.TSC_DIR)
    assert {k: v for k, v in ours.items() if k not in (ts.HIDDEN_FILE, ts.README_FILE)} == theirs
    assert len(theirs) == 2 * 5 + 1  # xml + npz per video, lexicon.tsv
    hidden = ts.read_hidden_states(str(tmp_path / "tsc"))
    assert hidden["tsc"] == ts.read_hidden_states(str(tmp_path / "tam"))["tsc"]
    assert summary["tsc"]["num_videos"] == 5
    assert summary["paths"]["manual_dir"] == str(tmp_path / "tsc")
    assert summary["tsc"]["num_comments"] == sum(len(v["comments"])
                                                 for v in hidden["tsc"].values())


def test_cli_size_flag_names_and_rerun(tmp_path, capsys):
    out = tmp_path / "corpus"
    assert cli.main(["synthesize", "tsc", "--num_videos", "3", "--out", str(out)]) == 0
    first = json.loads(capsys.readouterr().out)
    assert first["tsc"]["num_videos"] == 3
    before = _hashes(out)
    # --num_clips is the same flag: the same parameters, so the corpus is reused.
    assert cli.main(["synthesize", "tsc", "--num_clips", "3", "--out", str(out)]) == 0
    assert json.loads(capsys.readouterr().out) == first and _hashes(out) == before
    with pytest.raises(FileExistsError, match="not a synthetic time-sync-comment corpus"):
        cli.main(["synthesize", "tsc", "--num_videos", "4", "--out", str(out)])


def test_the_corpus_builds(tmp_path):
    root = tmp_path / "corpus"
    ts.write_tsc_corpus(str(root), num_videos=3, seed=1)
    path = build_dataset("bilibili_tsc", str(root), str(tmp_path / "data"), "array_record",
                         config="custom")
    meta = json.loads((Path(path) / "metadata.json").read_text())
    assert meta["num_videos"] == 3 and meta["skipped"] == [] and meta["problems"] == {}
    assert meta["stream_dims"] == ts.DEFAULT_DIMS


@pytest.mark.parametrize("items", [tp.OPENERS, (1, 1, 4, 5), ["x"], tuple(range(8))])
def test_pick_draws_what_rng_choice_draws(items):
    a, b = np.random.default_rng(7), np.random.default_rng(7)
    picked = [tp._pick(a, items) for _ in range(200)]
    chosen = [b.choice(items) for _ in range(200)]
    assert [str(x) for x in picked] == [str(x) for x in chosen]
    assert a.random() == b.random()  # the streams stay in step
