"""The shared split carving and host sharing, against plain-loop references."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from jaxaffect.data import hosts, splits


def test_id_hash_and_fraction_agree_with_sha256():
    for example_id in ("a", "clip_00017", "视频/1"):
        digest = hashlib.sha256(example_id.encode("utf-8"))
        assert splits.id_hash(example_id) == digest.hexdigest()
        assert splits.hash_fraction(example_id) == (
            int(digest.hexdigest()[:16], 16) / 2.0**64)
    ids = [f"v{i}" for i in range(200)]
    # the threshold test and the hash order pick the same ids
    by_fraction = {i for i in ids if splits.in_hash_fraction(i, 0.25)}
    assert by_fraction == set(sorted(ids, key=splits.id_hash)[:len(by_fraction)])
    assert 25 < len(by_fraction) < 75


def test_stratified_hash_pick_matches_a_loop():
    rng = np.random.default_rng(0)
    ids = [f"c{i:03d}" for i in range(90)]
    labels = rng.integers(0, 4, 90)
    count = splits.validation_count(0.2)
    got = splits.stratified_hash_pick(ids, labels, count)
    want = set()
    for c in range(4):
        members = [i for i, lab in zip(ids, labels) if lab == c]
        members.sort(key=lambda s: hashlib.sha256(s.encode()).hexdigest())
        k = min(int(np.floor(0.2 * len(members) + 0.5)), max(len(members) - 1, 0))
        want.update(members[:k])
    assert got == want
    # per-class count clipped to the class size; a one-example class keeps it for training
    assert splits.stratified_hash_pick(["a", "b"], [0, 1], lambda n: 5) == {"a", "b"}
    assert splits.stratified_hash_pick(["a"], [0], count) == set()
    with pytest.raises(ValueError, match="validation_fraction"):
        splits.validation_count(1.0)


@pytest.mark.parametrize("total,batch,procs", [(10, 4, 1), (10, 4, 2), (7, 2, 2), (33, 8, 4)])
def test_host_share_covers_every_example_once_in_evaluation(total, batch, procs):
    shares = [hosts.host_share(total, batch_size=batch, train=False, process_index=h,
                               process_count=procs) for h in range(procs)]
    seen = np.concatenate([s.positions for s in shares])
    assert sorted(seen.tolist()) == list(range(total))
    lengths = {s.positions.size + s.num_pad for s in shares}
    assert len(lengths) == 1 and lengths.pop() % (batch // procs) == 0


@pytest.mark.parametrize("total,batch,procs", [(10, 2, 1), (11, 2, 2), (33, 8, 4)])
def test_host_share_training_gives_every_host_the_whole_global_stream(total, batch, procs):
    shares = [hosts.host_share(np.arange(100, 100 + total), batch_size=batch, train=True,
                               process_index=h, process_count=procs) for h in range(procs)]
    for s in shares:  # HostView then picks each host's rows of every global batch
        assert s.num_pad == 0 and s.local_batch == batch // procs
        assert s.positions.tolist() == list(range(100, 100 + total))


def test_host_share_refuses_bad_settings():
    kw = dict(train=True, process_index=0, process_count=2)
    with pytest.raises(ValueError, match="positive multiple"):
        hosts.host_share(10, batch_size=3, **kw)
    with pytest.raises(ValueError, match="num_epochs"):
        hosts.host_share(10, batch_size=2, num_epochs=0, **kw)
    with pytest.raises(ValueError, match="no examples"):
        hosts.host_share(0, batch_size=2, **kw)
    with pytest.raises(ValueError, match="fewer than one batch"):
        hosts.host_share(3, batch_size=4, **kw)
    with pytest.raises(ValueError, match="process_index"):
        hosts.host_share(4, batch_size=2, train=False, process_index=2, process_count=2)


@pytest.mark.parametrize("procs", [2, 4])
def test_in_memory_training_batches_do_not_depend_on_the_process_count(procs):
    from jaxaffect.data.memory_dataset import make_batches

    examples = [{"x": np.float32(i)} for i in range(37)]

    def transform(example, rng):  # a random per-example transform (like a random crop)
        return {"x": example["x"], "noise": np.float32(rng.random()), "valid": np.bool_(True)}

    def batches(index, count):
        ds = make_batches(examples, batch_size=8, train=True, seed=5, num_epochs=3,
                          process_index=index, process_count=count, transform=transform,
                          padding={"x": np.float32(0), "noise": np.float32(0),
                                   "valid": np.bool_(False)})
        return list(ds)

    reference = batches(0, 1)
    per_host = [batches(h, procs) for h in range(procs)]
    assert len(reference) == (3 * 37) // 8 and all(len(b) == len(reference) for b in per_host)
    for step, ref in enumerate(reference):
        for key in ("x", "noise"):
            joined = np.concatenate([per_host[h][step][key] for h in range(procs)])
            np.testing.assert_array_equal(joined, ref[key])
    # every epoch is a permutation of the examples, and epochs differ
    first = np.concatenate([b["x"] for b in reference])[:37]
    assert sorted(first.tolist()) == list(range(37))
