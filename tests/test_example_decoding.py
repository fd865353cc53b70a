"""ExampleDecoder gives exactly what TFDS's `deserialize_example_np` gives, faster."""

from __future__ import annotations

import pickle
import sys

import numpy as np
import pytest
import tensorflow_datasets as tfds

from jaxaffect.data import example_decoding
from jaxaffect.data.build import build_dataset, builder_class
from jaxaffect.data.example_decoding import ExampleDecoder
from jaxaffect.data.records import dataset_files, read_records
from tfds_builders.testing import copy_dummy_data

# (builder, config): ERATO, TAM's video features and raw clips (JPEG frames, int16 audio bytes),
# LIRIS-ACCEDE (float scalars), bilibili comments ([None, 16] tokens), LIReC, MEmoR (rank 3)
BUILDS = [("erato", None), ("ekman6", "features"), ("ekman6", "raw"), ("liris_accede", None),
          ("bilibili_tsc", "dutir"), ("moviegraphs_lirec", None), ("memor", "official")]


def assert_identical(got, want, where="example"):
    """Same nesting and key order, same types; arrays with the same dtype, shape, values and
    writeability; object arrays and lists element by element (bytes stay bytes)."""
    assert type(got) is type(want), f"{where}: {type(got)} != {type(want)}"
    if isinstance(want, dict):
        assert list(got) == list(want), f"{where}: keys {list(got)} != {list(want)}"
        for key in want:
            assert_identical(got[key], want[key], f"{where}/{key}")
    elif isinstance(want, list):
        assert len(got) == len(want), where
        for i, (a, b) in enumerate(zip(got, want)):
            assert_identical(a, b, f"{where}[{i}]")
    elif isinstance(want, np.ndarray):
        assert (got.dtype, got.shape) == (want.dtype, want.shape), where
        assert got.flags.writeable == want.flags.writeable, f"{where}: writeability"
        if want.dtype == object:
            for a, b in zip(got.ravel(), want.ravel()):
                assert type(a) is type(b) and a == b, where
        else:
            np.testing.assert_array_equal(got, want, err_msg=where)
    else:
        assert got == want or (got != got and want != want), f"{where}: {got!r} != {want!r}"


@pytest.fixture(scope="module", params=BUILDS, ids=[f"{n}/{c}" if c else n for n, c in BUILDS])
def build(request, tmp_path_factory):
    name, config = request.param
    tmp = tmp_path_factory.mktemp(name)
    manual = copy_dummy_data(builder_class(name), tmp)
    return build_dataset(name, str(manual), str(tmp / "tfds"), "array_record", config=config)


@pytest.fixture(params=["libdeflate", "zlib"])
def inflater(request, monkeypatch):
    if request.param == "zlib":
        monkeypatch.setattr(example_decoding, "_libdeflate", None)
    elif example_decoding._libdeflate is None:
        pytest.skip("the deflate package is not installed")
    return request.param


def test_every_record_of_the_dummy_builds_decodes_identically(build, inflater):
    files = dataset_files(build)
    decoder = ExampleDecoder(files.features)
    assert decoder.fallback_reason == ""  # the plan covers every feature of our builders
    count = 0
    for split in files.filepaths:
        for record in read_records(files, split):
            assert_identical(decoder(record), files.features.deserialize_example_np(record))
            count += 1
    assert count > 0 and decoder.fallbacks == 0


def test_dataset_files_decoder_is_built_once_and_pickles(build):
    files = dataset_files(build)
    assert files.decoder is files.decoder
    record = next(read_records(files, "train"))
    clone = pickle.loads(pickle.dumps(files.decoder))
    assert_identical(clone(record), files.features.deserialize_example_np(record))


FEATURES = tfds.features.FeaturesDict({
    "text": tfds.features.Text(),
    "label": tfds.features.ClassLabel(num_classes=3),
    "count": tfds.features.Scalar(np.int32),
    "small": tfds.features.Scalar(np.uint8),
    "half": tfds.features.Scalar(np.float16),
    "flag": tfds.features.Scalar(np.bool_),
    "score": tfds.features.Scalar(np.float32),
    "names": tfds.features.Tensor(shape=(None, 2), dtype=np.str_),
    "mask": tfds.features.Tensor(shape=(None,), dtype=np.bool_),
    "grid": tfds.features.Tensor(shape=(2, 3), dtype=np.int64),
    "wave": tfds.features.Tensor(shape=(None,), dtype=np.int16, encoding="bytes"),
    "fixed": tfds.features.Tensor(shape=(2, 2), dtype=np.float32, encoding="zlib"),
    "one_unknown": tfds.features.Tensor(shape=(None, 3), dtype=np.float64, encoding="zlib"),
    "nested": tfds.features.FeaturesDict({
        "cube": tfds.features.Tensor(shape=(None, None, 2), dtype=np.float32, encoding="zlib"),
        "raw": tfds.features.Tensor(shape=(None, None), dtype=np.int32, encoding="bytes"),
        "inner": tfds.features.FeaturesDict({"z": tfds.features.Scalar(np.int64)}),
    }),
})


def _example(rng: np.random.Generator, steps: int) -> dict:
    return {
        "text": "é clip", "label": 2, "count": -7, "small": 255, "half": 0.1, "flag": True,
        "score": np.float32(np.pi),
        "names": np.asarray([["a", "b"]] * steps, dtype=object).reshape(steps, 2),
        "mask": rng.random(steps) < 0.5,
        "grid": np.arange(6).reshape(2, 3) - 3,
        "wave": rng.integers(-2**15, 2**15, steps).astype(np.int16),
        "fixed": rng.standard_normal((2, 2)).astype(np.float32),
        "one_unknown": rng.standard_normal((steps, 3)),
        "nested": {"cube": rng.standard_normal((steps, 3, 2)).astype(np.float32),
                   "raw": rng.integers(0, 9, (max(steps, 1), 4)).astype(np.int32),
                   "inner": {"z": 2**40}},
    }


@pytest.mark.parametrize("steps", [0, 1, 5])
def test_every_connector_and_encoding_including_empty_arrays(steps, inflater):
    decoder = ExampleDecoder(FEATURES)
    assert decoder.fallback_reason == ""
    record = FEATURES.serialize_example(_example(np.random.default_rng(steps), steps))
    want = FEATURES.deserialize_example_np(record)
    assert_identical(decoder(record), want)
    assert isinstance(want["count"], int) and isinstance(want["text"], bytes)  # Python scalars
    assert decoder.fallbacks == 0


def test_features_outside_the_plan_are_decoded_by_tfds():
    features = tfds.features.FeaturesDict({
        "words": tfds.features.Sequence(tfds.features.Text()),
        "steps": tfds.features.Sequence(tfds.features.Scalar(np.int32)),
        "id": tfds.features.Text(),
    })
    decoder = ExampleDecoder(features)
    assert "Sequence" in decoder.fallback_reason
    record = features.serialize_example({"words": ["a", "bc"], "steps": [3, 1, 2], "id": "x"})
    assert_identical(decoder(record), features.deserialize_example_np(record))


def test_unplanned_records_give_what_tfds_gives():
    decoder = ExampleDecoder(FEATURES)
    record = FEATURES.serialize_example(_example(np.random.default_rng(0), 3))
    other = tfds.features.FeaturesDict({"text": tfds.features.Text()})
    missing = other.serialize_example({"text": "only"})  # every other key is absent
    empty = _example(np.random.default_rng(0), 3)
    empty["nested"]["raw"] = np.zeros((0, 4), np.int32)  # TFDS cannot read this one back
    empty = FEATURES.serialize_example(empty)
    for bad in (missing, record[:-7], b"\xff" * 9, empty):
        with pytest.raises(Exception) as theirs:
            FEATURES.deserialize_example_np(bad)
        with pytest.raises(type(theirs.value)):
            decoder(bad)
    assert decoder.fallbacks == 4


def test_decoding_does_not_import_tensorflow(tmp_path):
    """The record readers stay free of tensorflow (a fresh process decodes a record)."""
    import subprocess

    manual = copy_dummy_data(builder_class("erato"), tmp_path)
    build = build_dataset("erato", str(manual), str(tmp_path / "tfds"), "array_record")
    script = ("import sys\nfrom jaxaffect.data.records import dataset_files, read_records\n"
              f"f = dataset_files({build!r})\n"
              "f.decoder(next(read_records(f, 'train')))\n"
              "print('tensorflow' in sys.modules)\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "False"
