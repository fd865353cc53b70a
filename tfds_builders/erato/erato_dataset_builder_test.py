"""Tests of the ERATO builder: the dummy manual_dir, and errors that name the faulty file."""

import numpy as np
import pytest
import tensorflow_datasets as tfds

from jaxaffect.families.perr import erato_format as ef
from tfds_builders.erato import erato_dataset_builder
from tfds_builders.testing import copy_dummy_data, prepare


class EratoTest(tfds.testing.DatasetBuilderTestCase):
    DATASET_CLASS = erato_dataset_builder.Builder
    SPLITS = {"train": 6, "test": 3}
    SKIP_CHECKSUMS = True


@pytest.fixture
def manual_dir(tmp_path):
    return copy_dummy_data(erato_dataset_builder.Builder, tmp_path)


def test_examples_match_files_and_record_dims(manual_dir, tmp_path):
    builder = prepare(erato_dataset_builder.Builder, manual_dir, tmp_path / "data")
    assert builder.info.metadata["stream_dims"] == {
        "person_a": 4, "person_b": 4, "background": 6, "audio": 5, "text": 8}
    source = builder.as_data_source(split="test")
    by_id = {ex["clip_id"].decode(): ex for ex in (source[i] for i in range(len(source)))}
    assert sorted(by_id) == ["c07", "c08", "c09"]
    for clip_id, ex in by_id.items():
        clip = ef.read_clip(ef.feature_path(manual_dir, clip_id))
        assert ex["num_steps"] == clip.num_steps
        assert ex["label"] == ef.FINE_LABELS.index({"c07": "mild", "c08": "neutral",
                                                    "c09": "tense"}[clip_id])
        for s in ef.STREAMS:
            np.testing.assert_array_equal(ex["streams"][s], clip.features[s])
            np.testing.assert_array_equal(ex["masks"][s], clip.masks[s])
    coarse = {k: ef.COARSE_LABELS[v["coarse_label"]] for k, v in by_id.items()}
    assert coarse == {"c07": "positive", "c08": "neutral", "c09": "negative"}


def test_missing_feature_file_names_it(manual_dir, tmp_path):
    (manual_dir / "features" / "c03.npz").unlink()
    with pytest.raises(ef.EratoFormatError, match=r"c03\.npz: feature file not found"):
        prepare(erato_dataset_builder.Builder, manual_dir, tmp_path / "data")
    assert not list((tmp_path / "data").glob("erato/*/dataset_info.json"))


def test_bad_label_names_the_annotation_file(manual_dir, tmp_path):
    csv = manual_dir / "annotations.csv"
    csv.write_text(csv.read_text().replace("c04,intimate", "c04,romantic"))
    with pytest.raises(ef.EratoFormatError, match=r"annotations\.csv:5: unknown label 'romantic'"):
        prepare(erato_dataset_builder.Builder, manual_dir, tmp_path / "data")


def test_nan_values_name_the_file(manual_dir, tmp_path):
    path = ef.feature_path(manual_dir, "c08")
    clip = ef.read_clip(path)
    clip.features["text"][3, 1] = np.nan
    ef.write_clip(path, clip)
    with pytest.raises(ef.EratoFormatError, match=r"c08\.npz: stream 'text' holds NaN"):
        prepare(erato_dataset_builder.Builder, manual_dir, tmp_path / "data")


def test_wrong_feature_size_names_the_file(manual_dir, tmp_path):
    path = ef.feature_path(manual_dir, "c05")
    clip = ef.read_clip(path)
    clip.features["audio"] = np.zeros((clip.num_steps, 7), np.float32)
    ef.write_clip(path, clip)
    with pytest.raises(ef.EratoFormatError, match=r"c05\.npz: stream 'audio' has d=7"):
        prepare(erato_dataset_builder.Builder, manual_dir, tmp_path / "data")


if __name__ == "__main__":
    tfds.testing.test_main()
