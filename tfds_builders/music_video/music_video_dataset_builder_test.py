"""Tests of the Music_video builder on the dummy manual_dir, read back through TFRecord files
the way the input pipeline reads them."""

import numpy as np
import pytest
import tensorflow_datasets as tfds

from jaxaffect.data.records import dataset_files, read_records
from jaxaffect.features import media
from tfds_builders.music_video import music_video_dataset_builder as mv
from tfds_builders.testing import copy_dummy_data, prepare


class MusicVideoTest(tfds.testing.DatasetBuilderTestCase):
    DATASET_CLASS = mv.Builder
    BUILDER_CONFIG_NAMES_TO_TEST = ["default"]
    SPLITS = {"train": 6, "test": 3}  # no validation rows in the dummy table
    SKIP_CHECKSUMS = True


def test_config_names():
    assert [c.name for c in mv.Builder.BUILDER_CONFIGS] == ["default", "default_224"]


def test_tfrecord_build_reads_back_frames_and_audio(tmp_path):
    manual = copy_dummy_data(mv.Builder, tmp_path)
    builder = prepare(mv.Builder, manual, tmp_path / "data", file_format="tfrecord",
                      config="default_224")
    files = dataset_files(str(builder.data_dir))
    assert files.file_format == "tfrecord"
    got = {}
    for split in ("train", "test"):
        for record in read_records(files, split):
            ex = files.features.deserialize_example_np(record)
            got[ex["video_id"].decode()] = ex
    assert sorted(got) == [f"m{i}" for i in range(1, 10)]
    m8 = got["m8"]
    assert m8["frames"].dtype == object and isinstance(m8["frames"][0], bytes)
    assert media.decode_jpeg(m8["frames"][-1]).shape == (224, 336, 3)
    assert (m8["height"], m8["width"]) == (224, 336)
    # A present but silent track is audio: has_audio True, samples all zero.
    assert got["m3"]["has_audio"] and got["m3"]["audio"].dtype == np.int16
    assert len(got["m3"]["audio"]) > 0 and np.abs(got["m3"]["audio"]).max() <= 2
    assert np.abs(got["m1"]["audio"]).max() > 3000
    assert got["m4"]["fps"] == pytest.approx(15.0)
    assert files.metadata["short_side"] == 224


if __name__ == "__main__":
    tfds.testing.test_main()
