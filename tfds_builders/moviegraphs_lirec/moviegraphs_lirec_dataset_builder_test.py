"""Tests of the moviegraphs_lirec builder on its dummy manual_dir, and errors naming the file."""

import numpy as np
import pytest
import tensorflow_datasets as tfds

from jaxaffect.data.release_files import allowance_env
from jaxaffect.families.lirec import release_format as lf
from jaxaffect.families.lirec import release_labels as rl
from tfds_builders.moviegraphs_lirec import moviegraphs_lirec_dataset_builder as mb
from tfds_builders.testing import copy_dummy_data, prepare


class MoviegraphsLirecTest(tfds.testing.DatasetBuilderTestCase):
    DATASET_CLASS = mb.Builder
    SPLITS = {"train": 12, "validation": 12, "test": 12}
    SKIP_CHECKSUMS = True


@pytest.fixture
def manual_dir(tmp_path):
    return copy_dummy_data(mb.Builder, tmp_path)


def _examples(builder, split):
    src = builder.as_data_source(split=split)
    return {ex["clip_id"].decode(): ex for ex in (src[i] for i in range(len(src)))}


def test_examples_follow_the_files(manual_dir, tmp_path, monkeypatch):
    scene_without_visual = "scene-002.ss-0010.es-0019"
    lf.visual_path(manual_dir, "tt9000000", scene_without_visual).unlink()
    monkeypatch.setenv(allowance_env("absent_modality"), "1")
    builder = prepare(mb.Builder, manual_dir, tmp_path / "data")
    md = builder.info.metadata
    assert md["dims"] == {"visual": 8, "text": 6, "tracks": 8}
    assert len(md["interactions"]) == 101 and len(md["relationships"]) == 15
    assert md["relationships"] == sorted(md["relationships"], reverse=True)
    train = _examples(builder, "train")
    labels = rl.read_movie_labels(lf.labels_path(manual_dir, "tt9000000"))
    for r in labels.interactions:
        ex = train[f"tt9000000_{r.id}_0"]
        assert md["interactions"][ex["interaction"]] == r.name
        assert ex["overlap_interactions"][ex["interaction"]]
        assert ex["visual_present"] == (r.scene != scene_without_visual)
        if r.scene == scene_without_visual:
            assert not ex["visual"].any() and not ex["pair_tracks"].any()
        chars = [tuple(c.decode() for c in p) for p in ex["pair_characters"]]
        assert ex["num_pairs"] == len(chars) == len(set(chars)) <= 20
        if ex["true_pair"] >= 0:
            assert chars[ex["true_pair"]] == r.pairs[0]
        for other in ex["pair_clip_ids"]:
            o = train[other.decode()]
            assert o["relationship"] == ex["relationship"] >= 0
            assert tuple(o["pair_characters"][o["true_pair"]]) == tuple(
                ex["pair_characters"][ex["true_pair"]])
    assert md["missing_modalities"]["visual"] == sum(
        r.scene == scene_without_visual for r in labels.interactions)
    assert md["absent_files"] == {
        "count": 1, "files": [f"features/spat_i3d/tt9000000/{scene_without_visual}.npy"]}


def test_all_layer_bert_file_is_read_at_layer_minus_two(manual_dir, tmp_path):
    builder = prepare(mb.Builder, manual_dir, tmp_path / "data")
    val = _examples(builder, "validation")
    assert any(ex["text_present"] for ex in val.values())
    # The dummy's other layers hold 1.0; reading them would put 1.0 in every text max.
    assert not any(np.allclose(ex["text"], 1.0) for ex in val.values())


def test_missing_labels_file_names_it(manual_dir, tmp_path):
    lf.labels_path(manual_dir, "tt9000002").unlink()
    with pytest.raises(lf.LirecFormatError, match=r"tt9000002\.json: file not found"):
        prepare(mb.Builder, manual_dir, tmp_path / "data")


def test_bad_split_file_names_it(manual_dir, tmp_path):
    (manual_dir / lf.SPLIT_FILE).write_text('{"train": ["tt9000000"], "dev": []}')
    with pytest.raises(lf.LirecFormatError, match=r"split\.json: expected an object"):
        prepare(mb.Builder, manual_dir, tmp_path / "data")


def test_missing_frame2time_names_it(manual_dir, tmp_path):
    lf.frame2time_path(manual_dir, "tt9000000", "scene-001.ss-0000.es-0009").unlink()
    with pytest.raises(lf.LirecFormatError, match=r"scene-001\.ss-0000\.es-0009\.matidx"):
        prepare(mb.Builder, manual_dir, tmp_path / "data")


def test_unknown_interaction_is_skipped_and_recorded(manual_dir, tmp_path):
    path = lf.labels_path(manual_dir, "tt9000000")
    labels = rl.read_movie_labels(path)
    first = labels.interactions[0]
    bad = rl.InteractionRecord(first.id, first.scene, first.start, first.end, "juggles",
                               first.characters, first.pairs)
    rl.write_movie_labels(path, rl.MovieLabels(labels.movie_id, (bad, *labels.interactions[1:]),
                                               labels.relationships))
    builder = prepare(mb.Builder, manual_dir, tmp_path / "data")
    assert builder.info.splits["train"].num_examples == 11
    assert builder.info.metadata["skipped"] == [
        {"clip": f"tt9000000_{first.id}", "reason": "unknown interaction 'juggles'"}]


def test_subtitles_without_speech_need_no_bert_files(manual_dir, tmp_path):
    movie, scene = "tt9000002", "scene-001.ss-0000.es-0009"
    lf.write_webvtt(lf.dialog_path(manual_dir, movie, scene), [lf.Cue(0.0, 60.0, ("[music]",))])
    paths = lf.bert_paths(manual_dir, movie, scene)
    paths["layer"].unlink()
    paths["tokens"].unlink()
    builder = prepare(mb.Builder, manual_dir, tmp_path / "data")
    assert builder.info.metadata["absent_files"]["count"] == 0
    labels = rl.read_movie_labels(lf.labels_path(manual_dir, movie))
    test = _examples(builder, "test")
    for r in labels.interactions:
        if r.scene == scene:
            assert not test[f"{movie}_{r.id}_0"]["text_present"]


if __name__ == "__main__":
    tfds.testing.test_main()
