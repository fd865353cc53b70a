"""Tests of `jaxaffect.data.build`: building, reusing a complete build, and manual_dir errors."""

import shutil

import numpy as np
import pytest
from etils import epath

from jaxaffect.data import build
from jaxaffect.families.perr import erato_format as ef
from jaxaffect.families.perr.erato_format import write_random_manual_dir

DUMMY = epath.Path(__file__).parent.parent / "tfds_builders" / "erato" / "dummy_data"


@pytest.fixture
def manual_dir(tmp_path):
    path = tmp_path / "manual"
    shutil.copytree(DUMMY, path)
    return path


@pytest.fixture(scope="module")
def tfrecord_build(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("data")
    return data_dir, build.build_dataset("erato", str(DUMMY), str(data_dir))


def test_tfrecord_build_layout(tfrecord_build):
    data_dir, bdir = tfrecord_build
    path = epath.Path(bdir)
    assert path == epath.Path(data_dir) / "erato" / "1.0.0"
    assert (path / "dataset_info.json").exists() and (path / "features.json").exists()
    assert len(list(path.glob("erato-train.tfrecord-*"))) == 1
    assert len(list(path.glob("erato-test.tfrecord-*"))) == 1


def test_rebuild_keeps_a_complete_build(tfrecord_build, tmp_path):
    data_dir, bdir = tfrecord_build
    shard = next(epath.Path(bdir).glob("erato-train.tfrecord-*"))
    before = (shard.stat().mtime, shard.read_bytes())
    marker = epath.Path(bdir) / "marker.txt"
    marker.write_text("kept")
    # The manual_dir must still be valid, but nothing is regenerated.
    assert build.build_dataset("erato", str(DUMMY), str(data_dir)) == bdir
    assert (shard.stat().mtime, shard.read_bytes()) == before
    assert marker.read_text() == "kept"
    with pytest.raises(ValueError, match="already holds a complete tfrecord build"):
        build.build_dataset("erato", str(DUMMY), str(data_dir), file_format="array_record")
    assert shard.exists()
    marker.unlink()


def test_array_record_build(tmp_path):
    bdir = build.build_dataset("erato", str(DUMMY), str(tmp_path), file_format="ArrayRecord",
                               num_shards=2)
    assert len(list(epath.Path(bdir).glob("erato-train.array_record-*-of-00002"))) == 2


def test_missing_manual_dir_names_annotation_file(tmp_path):
    with pytest.raises(ef.EratoFormatError, match=r"nowhere/annotations\.csv: annotation file"):
        build.build_dataset("erato", str(tmp_path / "nowhere"), str(tmp_path / "data"))


def test_malformed_annotations_name_the_file(manual_dir, tmp_path):
    (manual_dir / "annotations.csv").write_text("id,label\nc01,hostile\n")
    with pytest.raises(ef.EratoFormatError, match=r"annotations\.csv:1: header"):
        build.build_dataset("erato", str(manual_dir), str(tmp_path / "data"))


@pytest.mark.parametrize("damage, message", [
    ("missing", r"c06\.npz: feature file not found"),
    ("garbage", r"c06\.npz: not a readable \.npz file"),
    ("nan", r"c06\.npz: stream 'person_b' holds NaN"),
    ("no_mask", r"c06\.npz: missing array 'audio' or 'audio_mask'"),
])
def test_bad_feature_file_is_named_and_nothing_is_left(manual_dir, tmp_path, damage, message):
    path = ef.feature_path(manual_dir, "c06")
    if damage == "missing":
        path.unlink()
    elif damage == "garbage":
        path.write_bytes(b"not a zip file")
    elif damage == "nan":
        clip = ef.read_clip(path)
        clip.features["person_b"][0, 0] = np.inf
        ef.write_clip(path, clip)
    else:
        with path.open("rb") as f, np.load(f) as z:
            arrays = {k: z[k] for k in z.files if k != "audio_mask"}
        with path.open("wb") as f:
            np.savez(f, **arrays)
    data_dir = tmp_path / "data"
    with pytest.raises(ef.EratoFormatError, match=message):
        build.build_dataset("erato", str(manual_dir), str(data_dir), file_format="array_record")
    assert not list(epath.Path(data_dir).glob("erato/*/dataset_info.json"))


def test_unknown_name_and_format(tmp_path):
    with pytest.raises(ValueError, match="unknown dataset 'imagenet'; available: .*erato"):
        build.build_dataset("imagenet", str(DUMMY), str(tmp_path))
    with pytest.raises(ValueError, match="file_format must be one of"):
        build.build_dataset("erato", str(DUMMY), str(tmp_path), file_format="parquet")


def test_random_manual_dir_is_valid_and_deterministic(tmp_path):
    dims = {"person_a": 2, "person_b": 2, "background": 3, "audio": 1, "text": 4}
    kw = dict(num_clips=5, dims=dims, max_steps=6, seed=1)
    rows = write_random_manual_dir(tmp_path / "a", **kw)
    again = write_random_manual_dir(tmp_path / "b", **kw)
    assert rows == again == ef.read_annotations(tmp_path / "a")
    for r in rows:
        a = ef.read_clip(ef.feature_path(tmp_path / "a", r.clip_id), expected_dims=dims)
        b = ef.read_clip(ef.feature_path(tmp_path / "b", r.clip_id))
        assert 1 <= a.num_steps <= 6
        for s in ef.STREAMS:
            np.testing.assert_array_equal(a.features[s], b.features[s])
            assert not a.features[s][~a.masks[s]].any()
