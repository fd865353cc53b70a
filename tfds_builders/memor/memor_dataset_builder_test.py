"""Tests of the memor builder on its dummy manual_dir (see make_dummy_data.py for what each
clip exercises): splits of both configs, metadata, examples and the end-of-build report."""

import numpy as np
import pytest
import tensorflow_datasets as tfds

from jaxaffect.data.build import build_dataset
from jaxaffect.families.amer import release_examples as rx
from jaxaffect.families.amer import release_format as rf
from tfds_builders.memor import make_dummy_data as dd
from tfds_builders.memor import memor_dataset_builder as mb
from tfds_builders.testing import copy_dummy_data, dummy_data_dir, prepare


class MemorOfficialTest(tfds.testing.DatasetBuilderTestCase):
    DATASET_CLASS = mb.Builder
    BUILDER_CONFIG_NAMES_TO_TEST = ["official"]
    SPLITS = {"train": 8, "validation": 2, "test": 6}
    SKIP_CHECKSUMS = True


class MemorMomentDisjointTest(tfds.testing.DatasetBuilderTestCase):
    DATASET_CLASS = mb.Builder
    BUILDER_CONFIG_NAMES_TO_TEST = ["moment_disjoint"]
    SPLITS = {"train": 7, "validation": 2, "test": 7}  # annotation 4 moves to test
    SKIP_CHECKSUMS = True


@pytest.fixture(scope="module")
def official(tmp_path_factory):
    return prepare(mb.Builder, dummy_data_dir(mb.Builder), tmp_path_factory.mktemp("data"))


def _examples(builder, split):
    src = builder.as_data_source(split=split)
    return {ex["id"].decode(): ex for ex in (src[i] for i in range(len(src)))}


def test_dummy_data_is_what_the_generator_writes(tmp_path):
    dd.main(str(tmp_path / "fresh"))
    ours = dummy_data_dir(mb.Builder)
    files = sorted(p.relative_to(ours) for p in ours.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(tmp_path / "fresh")
                           for p in (tmp_path / "fresh").rglob("*") if p.is_file())
    for rel in files:
        assert (ours / rel).read_bytes() == (tmp_path / "fresh" / rel).read_bytes(), rel


def test_metadata_records_dims_overlap_and_what_was_let_through(official):
    md = official.info.metadata
    assert md["split_rule"] == "official"
    assert md["dims"] == {"audio": 12, "text": 8, "visual": 18, "face": 6, "object": 5,
                          "environment": 7, "personality": 118}
    assert md["counts"] == {"train": 8, "validation": 2, "test": 6}
    assert md["overlap"] == {"moments": 15, "shared_moments": 1, "shared_clips": 4,
                             "affected_annotations": 2,
                             "examples": [{"clip": dd.SHARED, "moment_ms": 4000}]}
    assert md["not_listed"] == {"count": 1, "entries": [12]}
    assert md["moments_moved_to_nearest_segment"] == {"count": 1, "entries": [f"{dd.SHARED}#7"]}
    assert md["moments_in_several_segments"]["count"] == 0
    assert md["empty_visual_slices"] == {
        "count": 1, "entries": [{"clip": dd.EMPTY_SLICE, "character": 5, "segment": 1}]}
    val = md["class_counts"]["validation"]
    assert val["primary"]["joy"] == val["primary"]["anger"] == 1
    assert val["fine"]["joy"] == val["fine"]["annoyance"] == 1
    assert sum(md["class_counts"]["test"]["fine"].values()) == 6


def test_examples_follow_the_rules(official):
    train, val, test = (_examples(official, s) for s in ("train", "validation", "test"))
    assert sorted(val) == [f"{dd.VAL_CLIP}#0", f"{dd.VAL_CLIP}#1"]
    assert {int(e["anno_index"]) for e in test.values()} == set(dd.TEST_IDS)
    amy = train[f"{dd.FEW_FACES}#2"]  # target neither speaks nor is on screen
    assert amy["persons"].tolist() == [1, 6] and amy["target_person"] == 1
    assert not amy["speaks_in_segment"] and not amy["speaks_in_clip"]
    assert not amy["visual_present"].any()  # 8 face names in the clip
    assert amy["audio_present"].tolist() == [[True, False], [False, False]]  # no key for seg 1
    assert amy["text_present"].tolist() == [[True, True], [False, False]]
    howard = train[f"{dd.SHARED}#6"]  # visual only
    k = howard["persons"].tolist().index(2)
    assert howard["target_person"] == k and howard["target_segment"] == 2
    assert howard["visual_present"][k].tolist() == [False, False, True]
    assert not howard["audio_present"][k].any() and not howard["text_present"][k].any()
    late = test[f"{dd.SHARED}#7"]  # moment after every segment: the nearest (last) one
    assert late["target_segment"] == 2 and late["moment"] == np.float32(9.5)
    empty = train[f"{dd.EMPTY_SLICE}#9"]
    assert empty["visual_present"].tolist() == [[True, False], [False, False]]
    assert official.info.features["label_fine"].int2str(empty["label_fine"]) == "serenity"


def test_stored_examples_equal_the_assembly(official):
    release = rx.read_release(dummy_data_dir(mb.Builder))
    for split in ("train", "validation", "test"):
        for key, ex in _examples(official, split).items():
            i = int(ex["anno_index"])
            visual = rx.ClipVisual(release, release.annotations[i].clip)
            want = rx.annotation_example(release, i, visual)
            for name, value in want.items():
                got = ex[name].decode() if isinstance(ex[name], bytes) else ex[name]
                np.testing.assert_array_equal(got, value, err_msg=f"{key} {name}")
    assert release.dims["visual"] == sum(release.dims[p] for p in rf.VISUAL_PARTS)


def test_overlap_is_printed_at_the_end_of_a_build(tmp_path, capsys):
    manual = copy_dummy_data(mb.Builder, tmp_path)
    prepare(mb.Builder, manual, tmp_path / "data", config="moment_disjoint")
    lines = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("memor: ")]
    assert lines[0] == ("memor: the official train and test lists share 1 of 15 moments (2 "
                        "annotations) and 4 clips; split rule 'moment_disjoint': train 7, "
                        "validation 2, test 7 (metadata.json 'overlap', 'counts')")
    assert [ln.split(":")[1].split()[0] for ln in lines[1:]] == ["1", "1", "1"]
    assert any(f"{dd.SHARED}#7" in ln for ln in lines)


def test_tfrecord_build_through_jaxaffect_build(tmp_path):
    builder_dir = build_dataset("memor", str(dummy_data_dir(mb.Builder)), str(tmp_path / "d"))
    builder = tfds.builder_from_directory(builder_dir)
    assert builder.info.file_format.value == "tfrecord"
    ds = tfds.as_numpy(builder.as_dataset(split="test"))
    ids = sorted(ex["id"].decode() for ex in ds)
    assert len(ids) == 6 and f"{dd.SHARED}#5" in ids


if __name__ == "__main__":
    tfds.testing.test_main()
