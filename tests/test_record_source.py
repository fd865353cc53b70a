"""RecordSource: random access to a split's serialized examples, TFRecord and ArrayRecord."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from jaxaffect.data.build import build_dataset, builder_class
from jaxaffect.data.record_source import RecordSource, index_tfrecord
from jaxaffect.data.records import dataset_files, read_records
from tfds_builders.testing import copy_dummy_data


@pytest.fixture(scope="module", params=["tfrecord", "array_record"])
def build(request, tmp_path_factory):
    tmp = tmp_path_factory.mktemp(request.param)
    manual = copy_dummy_data(builder_class("ekman6"), tmp)
    return build_dataset("ekman6", str(manual), str(tmp / "tfds"), request.param,
                         num_shards=2, config="features")


def test_same_records_in_canonical_order(build):
    files = dataset_files(build)
    for split in files.filepaths:
        source = RecordSource(build, split)
        expected = list(read_records(files, split))
        assert len(source) == len(expected) > 0
        assert [source[i] for i in range(len(source))] == expected
        # random access in any order
        order = np.random.default_rng(0).permutation(len(source))
        assert [source[int(i)] for i in order] == [expected[int(i)] for i in order]


def test_pickles_without_open_files(build):
    source = RecordSource(build, "train")
    first = source[0]
    clone = pickle.loads(pickle.dumps(source))
    assert clone[0] == first and clone[len(clone) - 1] == source[len(source) - 1]


def test_index_and_crc_catch_damage(build, tmp_path):
    files = dataset_files(build)
    if files.file_format != "tfrecord":
        pytest.skip("the TFRecord index only")
    path = files.filepaths["train"][0]
    offsets, lengths = index_tfrecord(path)
    assert offsets.size == files.shard_lengths["train"][0]
    data = bytearray(open(path, "rb").read())
    data[int(offsets[0]) + 5] ^= 0xFF  # flip bits inside the first record's data
    open(path, "wb").write(bytes(data))
    try:
        with pytest.raises(ValueError, match="fails its CRC check"):
            RecordSource(build, "train")[0]
        open(path, "wb").write(bytes(data[:-3]))  # a truncated shard
        with pytest.raises(ValueError, match="truncated shard"):
            RecordSource(build, "train")
    finally:
        data[int(offsets[0]) + 5] ^= 0xFF
        open(path, "wb").write(bytes(data))


def test_unknown_split_named(build):
    with pytest.raises(KeyError, match="no split 'validation'"):
        RecordSource(build, "validation")


def test_threads_share_one_source(build):
    """grain reads with several threads: positional reads keep records intact."""
    from concurrent.futures import ThreadPoolExecutor

    source = RecordSource(build, "train")
    expected = [source[i] for i in range(len(source))]
    order = np.random.default_rng(1).integers(0, len(source), 400)
    with ThreadPoolExecutor(8) as pool:
        got = list(pool.map(lambda i: source[int(i)], order))
    assert got == [expected[int(i)] for i in order]
