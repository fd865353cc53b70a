"""Tests of the grain input pipeline on small synthetic ERATO builds (TFRecord and ArrayRecord)."""

import collections
import fractions
import json
import subprocess
import sys

import grain
import numpy as np
import orbax.checkpoint as ocp
import pytest

from jaxaffect.data import build
from jaxaffect.data.sequences import crop_indices
from jaxaffect.families.perr import erato_format as ef
from jaxaffect.families.perr import pipeline
from jaxaffect.families.perr.erato_format import write_random_manual_dir
from jaxaffect.families.perr.transforms import (
    collate,
    pad_or_crop,
    pad_or_crop_batch,
    padding_example,
)

DIMS = {"person_a": 3, "person_b": 3, "background": 4, "audio": 2, "text": 5}
NUM_CLIPS = 60
MAX_T = 13  # longest clip
FORMATS = ("tfrecord", "array_record")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("erato")
    manual = root / "manual"
    rows = write_random_manual_dir(manual, num_clips=NUM_CLIPS, dims=DIMS, max_steps=MAX_T,
                                       test_fraction=0.25, absent_prob=0.4, seed=3)
    dirs = {fmt: build.build_dataset("erato", str(manual), str(root / fmt), fmt, num_shards=3)
            for fmt in FORMATS}
    return {"manual": manual, "rows": rows, "dirs": dirs}


def _ids(rows, split):
    return sorted(r.clip_id for r in rows if r.split == split)


def _collect(ds):
    return [b for b in ds]


def _valid_ids(batches):
    return [cid for b in batches for cid, v in zip(b["clip_id"], b["valid"]) if v]


def _reference(manual, clip_id, max_steps):
    """Plain-loop reference of pad_or_crop straight from the .npz file."""
    clip = ef.read_clip(ef.feature_path(manual, clip_id))
    steps = clip.num_steps
    if steps <= max_steps:
        keep = list(range(steps))
    else:  # round half up of t * (T - 1) / (M - 1), exactly
        keep = [int(fractions.Fraction(t * (steps - 1), max_steps - 1) + fractions.Fraction(1, 2))
                for t in range(max_steps)]
    out = {"step_mask": np.zeros(max_steps, bool), "streams": {}, "masks": {}}
    for s in ef.STREAMS:
        x = np.zeros((max_steps, DIMS[s]), np.float32)
        m = np.zeros(max_steps, bool)
        for t, src in enumerate(keep):
            out["step_mask"][t] = True
            m[t] = clip.masks[s][src]
            if m[t]:
                x[t] = clip.features[s][src]
        out["streams"][s], out["masks"][s] = x, m
    return out


@pytest.mark.parametrize("fmt", FORMATS)
def test_train_batch_shapes_and_dtypes(data, fmt):
    ds = pipeline.make_dataset(data["dirs"][fmt], "train", batch_size=8, max_steps=6,
                               shuffle=True, process_index=0, process_count=1)
    batch = next(iter(ds))
    assert set(batch) == {"streams", "masks", "step_mask", "label", "coarse_label", "valid",
                          "clip_id"}
    for s in ef.STREAMS:
        assert batch["streams"][s].shape == (8, 6, DIMS[s])
        assert batch["streams"][s].dtype == np.float32
        assert batch["masks"][s].shape == (8, 6) and batch["masks"][s].dtype == bool
    assert batch["step_mask"].shape == (8, 6) and batch["step_mask"].dtype == bool
    for key in ("label", "coarse_label"):
        assert batch[key].shape == (8,) and batch[key].dtype == np.int32
    assert batch["valid"].dtype == bool and batch["valid"].all()
    assert batch["clip_id"].dtype == object and all(isinstance(c, str) for c in batch["clip_id"])
    np.testing.assert_array_equal(batch["coarse_label"], ef.FINE_TO_COARSE_ID[batch["label"]])
    assert pipeline.stream_dims(data["dirs"][fmt]) == DIMS


@pytest.mark.parametrize("fmt", FORMATS)
def test_eval_matches_numpy_reference_and_covers_test_once(data, fmt):
    max_steps = 6  # shorter than many clips: exercises both padding and cropping
    batches = _collect(pipeline.make_dataset(
        data["dirs"][fmt], "test", batch_size=7, max_steps=max_steps, shuffle=False,
        process_index=0, process_count=1))
    labels = {r.clip_id: r.label_id for r in data["rows"]}
    assert all(b["step_mask"].shape == (7, max_steps) for b in batches)
    ids = _valid_ids(batches)
    assert sorted(ids) == _ids(data["rows"], "test")  # each test clip exactly once
    assert len(batches) == -(-len(ids) // 7)
    cropped = 0
    for b in batches:
        for i, (cid, valid) in enumerate(zip(b["clip_id"], b["valid"])):
            if not valid:  # padding: all zeros / False
                assert cid == "" and not b["step_mask"][i].any()
                assert all(not b["streams"][s][i].any() and not b["masks"][s][i].any()
                           for s in ef.STREAMS)
                continue
            ref = _reference(data["manual"], cid, max_steps)
            cropped += ref["step_mask"].all()
            assert b["label"][i] == labels[cid]
            np.testing.assert_array_equal(b["step_mask"][i], ref["step_mask"])
            for s in ef.STREAMS:
                np.testing.assert_array_equal(b["masks"][s][i], ref["masks"][s])
                np.testing.assert_array_equal(b["streams"][s][i], ref["streams"][s])
                assert not b["masks"][s][i][~b["step_mask"][i]].any()
    assert cropped > 0 and not batches[-1]["valid"].all()


def test_pad_or_crop_unit():
    steps = 11
    streams = {s: np.arange(steps * d, dtype=np.float32).reshape(steps, d) + 1
               for s, d in DIMS.items()}
    masks = {s: np.ones(steps, bool) for s in ef.STREAMS}
    masks["audio"][2:9] = False
    ex = {"streams": streams, "masks": masks, "label": 3, "clip_id": b"x"}
    out = pad_or_crop(ex, 4)
    idx = crop_indices(steps, 4)
    np.testing.assert_array_equal(idx, [0, 3, 7, 10])  # first and last step kept
    np.testing.assert_array_equal(out["streams"]["text"], streams["text"][idx])
    np.testing.assert_array_equal(out["masks"]["audio"], [True, False, False, True])
    assert not out["streams"]["audio"][1:3].any()
    assert out["label"].dtype == np.int32 and out["clip_id"] == "x" and out["valid"]
    padded = pad_or_crop(ex, 15)
    np.testing.assert_array_equal(padded["step_mask"], np.arange(15) < steps)
    assert not padded["streams"]["text"][steps:].any()
    np.testing.assert_array_equal(padded["streams"]["text"][:steps], streams["text"])


@pytest.mark.parametrize("max_steps", [1, 4, 11, 15])
def test_pad_or_crop_batch_is_collate_of_pad_or_crop(max_steps):
    rng = np.random.default_rng(max_steps)
    examples = []
    for i, steps in enumerate([11, 1, 4, 15, 7]):
        masks = {s: rng.random(steps) < 0.6 for s in ef.STREAMS}
        streams = {s: rng.standard_normal((steps, d)).astype(np.float32) for s, d in DIMS.items()}
        streams["text"][0] = -0.0  # absent steps become +0.0, as pad_or_crop makes them
        examples.append({"streams": streams, "masks": masks, "label": i, "coarse_label": i % 3,
                         "clip_id": f"c{i}".encode(), "num_steps": steps})
    examples.insert(2, None)  # a padding row
    got = pad_or_crop_batch(examples, DIMS, max_steps)
    want = collate([padding_example(DIMS, max_steps) if e is None else pad_or_crop(e, max_steps)
                    for e in examples])
    assert set(got) == set(want)
    for key in want:
        for g, w in ([(got[key][s], want[key][s]) for s in ef.STREAMS]
                     if isinstance(want[key], dict) else [(got[key], want[key])]):
            assert g.dtype == w.dtype and g.shape == w.shape, key
            assert [repr(x) for x in g.ravel()] == [repr(x) for x in w.ravel()], key  # +0.0
    bad = dict(examples[0], masks=dict(examples[0]["masks"], audio=np.ones(3, bool)))
    with pytest.raises(ValueError, match="stream 'audio'"):
        pad_or_crop_batch([bad], DIMS, max_steps)


def test_validation_is_stratified_deterministic_and_disjoint(data, monkeypatch):
    bdir = data["dirs"]["tfrecord"]
    train_rows = [r for r in data["rows"] if r.split == "train"]
    val = pipeline.validation_clip_ids(bdir, 0.2)
    per_class = collections.Counter(r.label for r in train_rows)
    val_class = collections.Counter(r.label for r in train_rows if r.clip_id in set(val))
    for label, n in per_class.items():
        assert val_class[label] == min(int(np.floor(0.2 * n + 0.5)), n - 1)
    # Same answer from the other build, from the JSON cache and with a cold cache.
    assert pipeline.validation_clip_ids(data["dirs"]["array_record"], 0.2) == val
    cache = json.loads((pipeline.epath.Path(bdir) / pipeline.INDEX_FILE).read_text())
    assert cache["validation"]["0.2"] == val
    monkeypatch.setattr(pipeline, "_memory_index", {})
    (pipeline.epath.Path(bdir) / pipeline.INDEX_FILE).unlink()
    assert pipeline.validation_clip_ids(bdir, 0.2) == val
    # The iterators: validation (any seed) and train are disjoint and cover train_full.
    kw = dict(batch_size=4, max_steps=4, validation_fraction=0.2, process_index=0,
              process_count=1)
    got_val = [_valid_ids(_collect(pipeline.make_dataset(bdir, "validation", shuffle=False,
                                                         seed=s, **kw))) for s in (0, 1)]
    assert sorted(got_val[0]) == sorted(got_val[1]) == val
    train = _valid_ids(_collect(pipeline.make_dataset(bdir, "train", shuffle=False, **kw)))
    full = _valid_ids(_collect(pipeline.make_dataset(bdir, "train_full", shuffle=False, **kw)))
    assert not set(train) & set(val) and sorted(train + val) == sorted(full)
    assert sorted(full) == _ids(data["rows"], "train")
    assert pipeline.split_size(bdir, "train", 0.2) == len(train)
    assert pipeline.split_size(bdir, "validation", 0.2) == len(val)
    counts = pipeline.class_counts(bdir, "validation", validation_fraction=0.2)
    assert counts.tolist() == [val_class[name] for name in ef.FINE_LABELS]
    coarse = pipeline.class_counts(bdir, "test", "coarse_label")
    want = collections.Counter(r.coarse_label for r in data["rows"] if r.split == "test")
    assert coarse.tolist() == [want[name] for name in ef.COARSE_LABELS]


def test_read_only_data_dir_keeps_index_in_memory(data, monkeypatch):
    bdir = data["dirs"]["array_record"]
    path = pipeline.epath.Path(bdir) / pipeline.INDEX_FILE
    expected = pipeline.split_size(bdir, "validation", 0.3)
    path.unlink(missing_ok=True)
    monkeypatch.setattr(pipeline, "_memory_index", {})

    def refuse(*args, **kwargs):
        raise PermissionError("read-only file system")

    monkeypatch.setattr(pipeline.epath.Path, "write_text", refuse)
    assert pipeline.split_size(bdir, "validation", 0.3) == expected
    assert not path.exists()


@pytest.mark.parametrize("fmt", FORMATS)
def test_per_host_parts_are_disjoint_and_cover(data, fmt):
    bdir = data["dirs"][fmt]
    hosts = [_collect(pipeline.make_dataset(bdir, "test", batch_size=6, max_steps=3,
                                            shuffle=False, process_index=i, process_count=2))
             for i in range(2)]
    assert len(hosts[0]) == len(hosts[1])  # same number of steps on every host
    assert all(b["label"].shape == (3,) for h in hosts for b in h)  # 6 // 2 per host
    ids = [_valid_ids(h) for h in hosts]
    assert not set(ids[0]) & set(ids[1])
    assert sorted(ids[0] + ids[1]) == _ids(data["rows"], "test")
    train = [_valid_ids(_collect(pipeline.make_dataset(
        bdir, "train", batch_size=2, max_steps=3, shuffle=True, seed=5, process_index=i,
        process_count=2))) for i in range(2)]
    n_train = pipeline.split_size(bdir, "train")
    assert n_train % 2 == 1  # the odd example out is left out of training, on every host
    assert not set(train[0]) & set(train[1])
    assert len(train[0]) == len(train[1]) == n_train // 2
    assert len(set(train[0])) == len(train[0])


@pytest.mark.parametrize("fmt", FORMATS)
def test_train_shuffles_by_seed_and_repeats(data, fmt):
    bdir = data["dirs"][fmt]
    n = pipeline.split_size(bdir, "train")

    def run(seed, epochs):
        return _valid_ids(_collect(pipeline.make_dataset(
            bdir, "train", batch_size=4, max_steps=3, shuffle=True, seed=seed,
            num_epochs=epochs, process_index=0, process_count=1)))

    one = run(0, 1)
    assert len(one) == n // 4 * 4 and len(set(one)) == len(one)  # remainder dropped
    assert run(0, 1) == one and run(1, 1) != one
    two = run(0, 2)
    assert len(two) == 2 * n // 4 * 4 and max(collections.Counter(two).values()) == 2
    forever = iter(pipeline.make_dataset(bdir, "train", batch_size=4, max_steps=3, shuffle=True,
                                         num_epochs=None, process_index=0, process_count=1))
    assert len([next(forever) for _ in range(3 * n // 4)]) == 3 * n // 4


def _assert_batches_equal(a, b):
    assert set(a) == set(b)
    for key in a:
        if isinstance(a[key], dict):
            for s in a[key]:
                np.testing.assert_array_equal(a[key][s], b[key][s])
        else:
            np.testing.assert_array_equal(a[key], b[key])


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("shuffle", [True, False])
def test_iterator_state_restore_gives_identical_batches(data, fmt, shuffle):
    def make():
        return pipeline.make_dataset(data["dirs"][fmt], "train", batch_size=4, max_steps=5,
                                     shuffle=shuffle, seed=7, num_epochs=2,
                                     process_index=0, process_count=1)

    reference = _collect(make())
    it = iter(make())
    for _ in range(5):
        next(it)
    state = json.loads(json.dumps(it.get_state()))  # must be JSON-serialisable
    restored = iter(make())
    restored.set_state(state)
    rest = _collect(restored)
    assert len(rest) == len(reference) - 5 > 0
    for a, b in zip(rest, reference[5:]):
        _assert_batches_equal(a, b)


@pytest.mark.parametrize("fmt", FORMATS)
def test_orbax_checkpoint_manager_round_trip(data, fmt, tmp_path):
    def make():
        return iter(pipeline.make_dataset(data["dirs"][fmt], "train", batch_size=4, max_steps=5,
                                          shuffle=True, seed=2, num_epochs=None,
                                          process_index=0, process_count=1))

    it = make()
    for _ in range(3):
        next(it)
    with ocp.CheckpointManager(tmp_path / "ckpt") as mngr:
        mngr.save(3, args=ocp.args.Composite(data=grain.checkpoint.CheckpointSave(it)))
        mngr.wait_until_finished()
    expected = [next(it) for _ in range(4)]
    restored = make()
    with ocp.CheckpointManager(tmp_path / "ckpt") as mngr:
        mngr.restore(3, args=ocp.args.Composite(data=grain.checkpoint.CheckpointRestore(restored)))
    for a in expected:
        _assert_batches_equal(next(restored), a)


_NO_TF_SCRIPT = """
import sys
from jaxaffect.families.perr import pipeline
bdir = sys.argv[1]
for split in ("train", "validation", "test"):
    shuffle = split == "train"
    ds = pipeline.make_dataset(bdir, split, batch_size=4, max_steps=5, shuffle=shuffle,
                               process_index=0, process_count=1)
    batch = next(iter(ds))
    assert batch["streams"]["text"].shape == (4, 5, 5), batch["streams"]["text"].shape
print(pipeline.split_size(bdir, "test"), pipeline.class_counts(bdir, "train").sum())
print("TF_LOADED" if "tensorflow" in sys.modules else "NO_TF")
"""


@pytest.mark.parametrize("fmt", FORMATS)
def test_reading_does_not_import_tensorflow(data, fmt):
    proc = subprocess.run([sys.executable, "-c", _NO_TF_SCRIPT, data["dirs"][fmt]],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().splitlines()[-1] == "NO_TF"


def test_builder_dir_for(data, tmp_path):
    bdir = data["dirs"]["tfrecord"]
    data_dir = pipeline.epath.Path(bdir).parent.parent
    assert pipeline.builder_dir_for(str(data_dir), "erato") == bdir
    with pytest.raises(FileNotFoundError, match="no prepared dataset 'erato'"):
        pipeline.builder_dir_for(str(tmp_path), "erato")


def test_bad_arguments(data):
    bdir = data["dirs"]["tfrecord"]
    with pytest.raises(ValueError, match="unknown split"):
        pipeline.make_dataset(bdir, "dev", batch_size=4, max_steps=3, shuffle=False)
    with pytest.raises(ValueError, match="multiple of process_count=3"):
        pipeline.make_dataset(bdir, "test", batch_size=4, max_steps=3, shuffle=False,
                              process_index=0, process_count=3)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("procs", [2, 4])
def test_training_batches_do_not_depend_on_the_process_count(data, fmt, procs):
    bdir = data["dirs"][fmt]

    def batches(index, count):
        return _collect(pipeline.make_dataset(
            bdir, "train", batch_size=4, max_steps=3, shuffle=True, seed=7, num_epochs=2,
            process_index=index, process_count=count))

    reference = batches(0, 1)
    per_host = [batches(h, procs) for h in range(procs)]
    assert all(len(h) == len(reference) for h in per_host) and reference
    for step, ref in enumerate(reference):
        joined = np.concatenate([per_host[h][step]["clip_id"] for h in range(procs)])
        assert joined.tolist() == ref["clip_id"].tolist()
        for s in ref["streams"]:
            np.testing.assert_array_equal(
                np.concatenate([per_host[h][step]["streams"][s] for h in range(procs)]),
                ref["streams"][s])
