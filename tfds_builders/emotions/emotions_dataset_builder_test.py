"""Tests of the eMotions builder on the dummy manual_dir: every variant's splits, and what a
build stores and metadata.json records, read back the way the input pipeline reads it."""

import json
from pathlib import Path

import numpy as np
import pytest
import tensorflow_datasets as tfds

from jaxaffect.data.records import dataset_files, read_records
from jaxaffect.families.avcpnet.emotions import EMOTIONS6
from jaxaffect.features import media
from tfds_builders.emotions import emotions_dataset_builder as emo
from tfds_builders.testing import copy_dummy_data, prepare


class EmotionsFullTest(tfds.testing.DatasetBuilderTestCase):
    DATASET_CLASS = emo.Builder
    BUILDER_CONFIG_NAMES_TO_TEST = ["full"]
    SPLITS = {"train": 6, "validation": 3, "test": 3}
    SKIP_CHECKSUMS = True


class EmotionsBalancedTest(tfds.testing.DatasetBuilderTestCase):
    DATASET_CLASS = emo.Builder
    BUILDER_CONFIG_NAMES_TO_TEST = ["balanced"]
    SPLITS = {"train": 4, "validation": 2, "test": 3}
    SKIP_CHECKSUMS = True


class EmotionsTestVariantTest(tfds.testing.DatasetBuilderTestCase):
    DATASET_CLASS = emo.Builder
    BUILDER_CONFIG_NAMES_TO_TEST = ["test_224"]
    SPLITS = {"train": 3, "test": 3}  # no row has test_split=validation
    SKIP_CHECKSUMS = True


def test_config_names():
    assert [c.name for c in emo.Builder.BUILDER_CONFIGS] == [
        "full", "full_224", "balanced", "balanced_224", "test", "test_224"]
    assert emo.Builder(data_dir="/nonexistent").builder_config.name == "full"


@pytest.fixture(scope="module")
def full_build(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("emotions")
    manual = copy_dummy_data(emo.Builder, tmp)
    builder = prepare(emo.Builder, manual, tmp / "data", config="full")
    return manual, builder


def _read_back(builder_dir: str) -> dict[str, dict]:
    files = dataset_files(builder_dir)
    out = {}
    for split in files.filepaths:
        for record in read_records(files, split):
            ex = files.features.deserialize_example_np(record)
            out[ex["video_id"].decode()] = {**ex, "split": split}
    return out


def test_examples_as_the_pipeline_reads_them(full_build):
    manual, builder = full_build
    got = _read_back(str(builder.data_dir))
    assert len(got) == 12
    for ex in got.values():
        frames = ex["frames"]
        assert isinstance(frames, np.ndarray) and frames.dtype == object and frames.ndim == 1
        assert all(isinstance(f, bytes) for f in frames)
        assert len(frames) == ex["num_frames"]
        first = media.decode_jpeg(frames[0])
        assert first.shape == (ex["height"], ex["width"], 3)
        assert min(ex["height"], ex["width"]) == 128
        assert ex["audio"].dtype == np.int16 and ex["audio"].ndim == 1
        assert ex["platform"].decode() in ("douyin", "kuaishou", "tiktok")
        assert ex["duration"] == pytest.approx(0.8, abs=0.15)
    assert [EMOTIONS6[got[v]["label"]] for v in ("e01", "e08", "e12")] == [
        "excitation", "fear", "tension"]
    assert got["e10"]["platform"] == b"tiktok" and got["e07"]["split"] == "validation"
    # No audio stream: kept, flagged; a 30 fps clip is stored at 15 fps (every 2nd frame).
    assert not got["e03"]["has_audio"] and got["e03"]["audio"].shape == (0,)
    assert got["e01"]["has_audio"] and abs(len(got["e01"]["audio"]) - 12800) <= 1024
    assert got["e05"]["fps"] == pytest.approx(15.0) and got["e05"]["num_frames"] == 12
    assert got["e01"]["fps"] == pytest.approx(10.0) and got["e01"]["num_frames"] == 8
    assert (got["e06"]["height"], got["e06"]["width"]) == (192, 128)  # portrait 32x48
    assert (got["e09"]["height"], got["e09"]["width"]) == (128, 192)


def test_metadata_records_the_settings(full_build):
    _, builder = full_build
    meta = json.loads((Path(builder.data_dir) / "metadata.json").read_text())
    assert meta["short_side"] == 128 and meta["max_fps"] == 15.0
    assert meta["sample_rate"] == 16000 and meta["class_names"] == list(EMOTIONS6)
    assert meta["skipped_clips"] == []


if __name__ == "__main__":
    tfds.testing.test_main()
