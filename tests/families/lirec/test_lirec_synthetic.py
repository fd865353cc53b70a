"""The synthetic LIReC corpus: deterministic, in the release layout, builds with the builder."""

import hashlib

import numpy as np
import pytest
import tensorflow_datasets as tfds

from jaxaffect.families.lirec import release_format as lf
from jaxaffect.families.lirec import release_labels as rl
from jaxaffect.families.lirec import synthetic as ls
from tfds_builders.moviegraphs_lirec import moviegraphs_lirec_dataset_builder as mb


def _digest(root):
    files = sorted(p for p in root.rglob("*") if p.is_file())
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


def test_deterministic_and_seed_dependent(tmp_path):
    a = ls.write_lirec_corpus(tmp_path / "a", num_movies=3, seed=3, small=True)
    b = ls.write_lirec_corpus(tmp_path / "b", num_movies=3, seed=3, small=True)
    ls.write_lirec_corpus(tmp_path / "c", num_movies=3, seed=4, small=True)
    da, db, dc = (_digest(tmp_path / k) for k in "abc")
    assert da == db and len(da) > 30
    assert da != dc
    assert {k: v for k, v in a.items() if k != "root"} == {
        k: v for k, v in b.items() if k != "root"}
    assert a["splits"] == {"train": ["tt9000000"], "val": ["tt9000001"], "test": ["tt9000002"]}


def test_layout_is_readable(tmp_path):
    s = ls.write_lirec_corpus(tmp_path, num_movies=3, seed=0, small=True)
    names, _ = rl.read_merged_interactions(tmp_path / lf.MERGED_INTERACTIONS_FILE)
    assert len(names) == 101
    assert len(rl.relationship_names(rl.read_relationship_map(
        tmp_path / lf.RELATIONSHIP_MAP_FILE))) == 15
    labels = rl.read_movie_labels(lf.labels_path(tmp_path, "tt9000000"))
    r = labels.interactions[0]
    assert lf.read_visual(lf.visual_path(tmp_path, "tt9000000", r.scene)).shape[1:] == (
        s["dims"]["visual"], *ls.GRID)
    cues = lf.read_dialogs(lf.dialog_path(tmp_path, "tt9000000", r.scene))
    _, tokens = lf.read_bert(tmp_path, "tt9000000", r.scene)
    assert len(lf.sentence_token_ranges(tokens)) == sum(c.lines != ("[music]",) for c in cues)


def test_builds_with_the_builder_and_invariants_hold(tmp_path):
    summary = ls.write_lirec_corpus(tmp_path / "manual", num_movies=3, seed=0, small=True)
    builder = mb.Builder(data_dir=str(tmp_path / "data"))
    builder.download_and_prepare(file_format="array_record", download_config=(
        tfds.download.DownloadConfig(manual_dir=str(tmp_path / "manual"))))
    md = builder.info.metadata
    assert md["dims"] == summary["dims"]
    assert md["interactions"] == sorted(md["interactions"], key=ls.INTERACTIONS.index)
    total = 0
    for split in ("train", "validation", "test"):
        src = builder.as_data_source(split=split)
        exs = {e["clip_id"].decode(): e for e in (src[i] for i in range(len(src)))}
        total += len(exs)
        for cid, e in exs.items():
            p = int(e["num_pairs"])
            assert e["pair_characters"].shape == (p, 2) and e["pair_tracks"].shape[:2] == (p, 2)
            assert -1 <= e["true_pair"] < p and 0 <= e["interaction"] < 101
            assert e["overlap_interactions"][e["interaction"]]
            assert -1 <= e["relationship"] < 15
            if e["true_pair"] < 0:
                assert e["relationship"] == -1 and len(e["pair_clip_ids"]) == 0
            assert len(e["pair_clip_ids"]) == len(set(e["pair_clip_ids"]))
            for other in e["pair_clip_ids"]:
                o = exs[other.decode()]  # same split
                assert other.decode() != cid and o["relationship"] == e["relationship"]
                np.testing.assert_array_equal(o["pair_characters"][o["true_pair"]],
                                              e["pair_characters"][e["true_pair"]])
        assert any(e["num_pairs"] > 2 for e in exs.values())
    assert total == summary["num_instances"]


def test_refuses_to_replace_a_folder_it_did_not_write(tmp_path):
    keep = tmp_path / "mine.txt"
    keep.write_text("precious")
    with pytest.raises(FileExistsError, match="not a synthetic LIReC corpus"):
        ls.write_lirec_corpus(tmp_path, num_movies=3, small=True)
    assert keep.read_text() == "precious"
