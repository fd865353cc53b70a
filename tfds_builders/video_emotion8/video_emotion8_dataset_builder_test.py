"""Tests of the VideoEmotion-8 builder: the dummy manual_dir and an error naming a missing file."""

import numpy as np
import pytest
import tensorflow_datasets as tfds

from jaxaffect.errors import FormatError
from tfds_builders import affect_video as av
from tfds_builders.testing import copy_dummy_data, prepare
from tfds_builders.video_emotion8 import video_emotion8_dataset_builder as ve8


class VideoEmotion8Test(tfds.testing.DatasetBuilderTestCase):
    DATASET_CLASS = ve8.Builder
    SPLITS = {"train": 16, "test": 8}
    SKIP_CHECKSUMS = True
    BUILDER_CONFIG_NAMES_TO_TEST = ["features", "raw"]  # raw_224: same code, bigger frames


@pytest.fixture
def manual_dir(tmp_path):
    return copy_dummy_data(ve8.Builder, tmp_path)


def test_examples_match_files(manual_dir, tmp_path):
    builder = prepare(ve8.Builder, manual_dir, tmp_path / "data")
    assert builder.info.metadata["stream_dims"] == {"image": 4, "motion": 3, "audio": 2}
    source = builder.as_data_source(split="test")
    examples = [source[i] for i in range(len(source))]
    for ex in examples:
        vid = ex["video_id"].decode()
        assert ve8.Builder.CLASS_NAMES[ex["label"]] == vid.split("/")[0]
        feats, masks = av.read_video(av.feature_path(manual_dir, vid))
        assert ex["num_segments"] == feats["image"].shape[0]
        for s in av.STREAMS:
            np.testing.assert_array_equal(ex["streams"][s], feats[s])
            np.testing.assert_array_equal(ex["masks"][s], masks[s])
    assert any(not ex["masks"]["audio"].all() for ex in examples)  # a stored mask is kept


def test_missing_feature_file_names_it(manual_dir, tmp_path):
    (manual_dir / "features" / "Fear" / "9089563440_360p.npz").unlink()
    with pytest.raises(FormatError, match=r"Fear/9089563440_360p\.npz: feature file not"):
        prepare(ve8.Builder, manual_dir, tmp_path / "data")


if __name__ == "__main__":
    tfds.testing.test_main()
