"""In-memory batching (training/evaluation semantics, hosts, resumption) and prepared reads."""

from __future__ import annotations

import numpy as np
import pytest

from jaxaffect.data.memory_dataset import collate_nested, make_batches

N = 10


def _examples():
    return [{"x": np.full(3, i, np.float32), "id": f"e{i}"} for i in range(N)]


def _transform(example, rng):
    return {"x": example["x"], "nested": {"y": np.int32(len(example["id"]))},
            "id": example["id"], "valid": True,
            "draw": np.int64(-1 if rng is None else rng.integers(0, 10**6))}


PAD = {"x": np.zeros(3, np.float32), "nested": {"y": np.int32(0)}, "id": "", "valid": False,
       "draw": np.int64(-1)}


def _batches(**kw):
    args = dict(batch_size=4, train=True, seed=0, num_epochs=1, process_index=0,
                process_count=1, transform=_transform, padding=PAD)
    args.update(kw)
    return list(make_batches(_examples(), **args))


def test_eval_covers_every_example_once_and_pads():
    batches = _batches(train=False)
    ids = np.concatenate([b["id"] for b in batches])
    valid = np.concatenate([b["valid"] for b in batches])
    assert [b["x"].shape for b in batches] == [(4, 3)] * 3
    assert list(ids[valid]) == [f"e{i}" for i in range(N)]
    assert not valid[N:].any() and (ids[N:] == "").all()
    assert batches[0]["nested"]["y"].shape == (4,)
    assert (np.concatenate([b["draw"] for b in batches]) == -1).all()  # no rng at eval


def test_train_shuffles_drops_remainder_and_is_deterministic():
    a, b, c = _batches(), _batches(), _batches(seed=1)
    assert len(a) == N // 4
    ids = np.concatenate([x["id"] for x in a])
    assert len(set(ids)) == len(ids) == 8 and list(ids) != [f"e{i}" for i in range(8)]
    assert all((x["id"] == y["id"]).all() and (x["draw"] == y["draw"]).all()
               for x, y in zip(a, b))
    assert any((x["id"] != y["id"]).any() for x, y in zip(a, c))


def test_hosts_split_examples_disjointly():
    parts = [_batches(train=False, batch_size=4, process_index=h, process_count=2)
             for h in range(2)]
    assert len(parts[0]) == len(parts[1])  # same number of steps on every host
    ids = [set(np.concatenate([b["id"] for b in p])) - {""} for p in parts]
    assert ids[0].isdisjoint(ids[1]) and len(ids[0] | ids[1]) == N


def test_resume_from_iterator_state_gives_the_same_batches():
    ds = make_batches(_examples(), batch_size=4, train=True, seed=3, num_epochs=3,
                      process_index=0, process_count=1, transform=_transform, padding=PAD)
    it = iter(ds)
    for _ in range(2):
        next(it)
    state = it.get_state()
    rest = [next(it) for _ in range(3)]
    it2 = iter(ds)
    it2.set_state(state)
    again = [next(it2) for _ in range(3)]
    for x, y in zip(rest, again):
        assert (x["id"] == y["id"]).all() and (x["draw"] == y["draw"]).all()


def test_bad_arguments():
    with pytest.raises(ValueError, match="valid=False"):
        _batches(padding={**PAD, "valid": True})
    with pytest.raises(ValueError, match="multiple of"):
        _batches(batch_size=3, process_count=2)
    with pytest.raises(ValueError, match="different shapes"):
        collate_nested([{"a": np.zeros(2)}, {"a": np.zeros(3)}])


def test_read_examples_of_a_prepared_build(tmp_path):
    """A real build of the ERATO dummy layout, read back without tensorflow."""
    from jaxaffect.data import prepared
    from jaxaffect.data.build import build_dataset
    from jaxaffect.families.perr.erato_format import STREAMS, write_random_manual_dir

    manual = tmp_path / "manual"
    dims = {s: 2 + i for i, s in enumerate(STREAMS)}
    write_random_manual_dir(manual, num_clips=12, dims=dims, max_steps=5, seed=0)
    builder_dir = build_dataset("erato", str(manual), str(tmp_path / "tfds"), "tfrecord")
    names = prepared.split_names(builder_dir)
    assert "train" in names and set(names) <= {"train", "test"}
    train = prepared.read_examples(builder_dir, "train")
    assert len(train) == prepared.split_size(builder_dir, "train")
    ex = train[0]
    assert isinstance(ex["clip_id"], str)
    assert ex["streams"][STREAMS[1]].shape[1] == dims[STREAMS[1]]
    with pytest.raises(KeyError, match="no split 'validation'"):
        prepared.read_examples(builder_dir, "validation")
