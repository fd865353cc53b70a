"""RecordSource: random access to a split's serialized examples, TFRecord and ArrayRecord."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from jaxaffect.data.build import build_dataset, builder_class
from jaxaffect.data.record_source import RecordSource, index_tfrecord, record_batches
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


def _stream_reference(positions, seed, epochs):
    """The training stream by a plain loop: each epoch's permutation, one after the other."""
    out = []
    for epoch in range(epochs):
        order = np.random.default_rng([seed, epoch]).permutation(len(positions))
        out += [int(positions[i]) for i in order]
    return out


def test_record_batches_training_stream_does_not_depend_on_the_process_count():
    records = [f"r{i}" for i in range(23)]
    positions = np.arange(2, 21)  # 19 of the 23
    reference = _stream_reference(positions, seed=4, epochs=3)
    for procs in (1, 2, 4):
        hosts = [record_batches(records, positions, batch_size=8, train=True, seed=4,
                                num_epochs=3, process_index=h, process_count=procs,
                                batch_fn=list) for h in range(procs)]
        assert all(len(h) == 3 * 19 // 8 for h in hosts)  # batches may span epochs
        joined = [r for i in range(len(hosts[0])) for h in hosts for r in h[i]]
        assert joined == [records[p] for p in reference[:len(joined)]]
    first_epoch = reference[:19]
    assert sorted(first_epoch) == positions.tolist()  # each epoch is a permutation
    other_seed = record_batches(records, positions, batch_size=8, train=True, seed=5,
                                num_epochs=1, process_index=0, process_count=1, batch_fn=list)
    assert other_seed[0] != [records[p] for p in reference[:8]]
    forever = record_batches(records, positions, batch_size=8, train=True, num_epochs=None,
                             process_index=0, process_count=1, batch_fn=list)
    assert len(forever) > 10**9 and forever[1000] == forever[1000]


def test_record_batches_evaluation_covers_each_host_part_once_then_pads():
    records = [f"r{i}" for i in range(11)]
    hosts = [record_batches(records, 11, batch_size=4, train=False, num_epochs=1,
                            process_index=h, process_count=2, batch_fn=list) for h in range(2)]
    parts = [[r for i in range(len(h)) for r in h[i]] for h in hosts]
    assert len(hosts[0]) == len(hosts[1]) == 3  # 6 rows per host, in batches of 2
    assert parts[0] == records[0::2] and parts[1] == records[1::2] + [None]
    twice = record_batches(records, 11, batch_size=4, train=False, num_epochs=2,
                           process_index=1, process_count=2, batch_fn=list)
    assert [r for i in range(len(twice)) for r in twice[i]] == parts[1] * 2


def test_record_batches_read_a_record_source_through_grain_with_resumable_state(build):
    source = RecordSource(build, "train")
    n = len(source)

    def make():
        return record_batches(source, n, batch_size=2, train=True, seed=1, num_epochs=2,
                              process_index=0, process_count=1, batch_fn=tuple)

    ds = pickle.loads(pickle.dumps(make()))  # what grain's worker processes receive
    reference = [ds[i] for i in range(len(ds))]
    first_epoch = [r for batch in reference[:n // 2] for r in batch]
    assert len(set(first_epoch)) == len(first_epoch) == n // 2 * 2  # no record twice
    it = iter(make().to_iter_dataset())
    for _ in range(3):
        next(it)
    state = it.get_state()
    resumed = iter(make().to_iter_dataset())
    resumed.set_state(state)
    assert list(resumed) == reference[3:]
    with pytest.raises(ValueError, match="multiple of process_count"):
        record_batches(source, n, batch_size=3, train=True, process_index=0, process_count=2,
                       batch_fn=list)
