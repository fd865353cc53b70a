"""Tests of the Ekman-6 builder: the dummy manual_dir and an error naming a missing file."""

import pytest
import tensorflow_datasets as tfds

from jaxaffect.errors import FormatError
from tfds_builders.ekman6 import ekman6_dataset_builder as ek6
from tfds_builders.testing import copy_dummy_data, prepare


class Ekman6Test(tfds.testing.DatasetBuilderTestCase):
    DATASET_CLASS = ek6.Builder
    SPLITS = {"train": 12, "test": 6}
    SKIP_CHECKSUMS = True
    BUILDER_CONFIG_NAMES_TO_TEST = ["features", "raw"]  # raw_224: same code, bigger frames


@pytest.fixture
def manual_dir(tmp_path):
    return copy_dummy_data(ek6.Builder, tmp_path)


def test_labels_follow_class_folder(manual_dir, tmp_path):
    source = prepare(ek6.Builder, manual_dir, tmp_path / "data").as_data_source(split="train")
    got = sorted((source[i]["video_id"].decode(), int(source[i]["label"]))
                 for i in range(len(source)))
    assert got[:2] == [("anger/1000", 0), ("anger/1002", 0)]
    assert all(ek6.Builder.CLASS_NAMES[lab] == vid.split("/")[0] for vid, lab in got)


def test_missing_feature_file_names_it(manual_dir, tmp_path):
    (manual_dir / "features" / "joy" / "1112.npz").unlink()
    with pytest.raises(FormatError, match=r"joy/1112\.npz: feature file not found"):
        prepare(ek6.Builder, manual_dir, tmp_path / "data")


if __name__ == "__main__":
    tfds.testing.test_main()
