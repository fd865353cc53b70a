"""Hand-made per-clip examples in the `moviegraphs_lirec` spec (random features, no signal)."""

from __future__ import annotations

import itertools

import numpy as np

DIMS = {"visual": 6, "text": 5, "tracks": 4}
A, R = 101, 15


def make_examples(num_movies: int = 3, clips_per_movie: int = 12, *, seed: int = 0,
                  dims: dict | None = None, prefix: str = "") -> list[dict]:
    """Clips of a few movies: 4 characters each, candidate pairs 1-6 per clip, a true pair (or
    -1), relationships per ordered pair (some unknown), pair_clip_ids filled in."""
    dims = dims or DIMS
    rng = np.random.default_rng(seed)
    examples = []
    for mv in range(num_movies):
        movie = f"{prefix}m{mv}"
        chars = [f"{movie}_c{i}" for i in range(4)]
        pairs = list(itertools.permutations(chars, 2))
        rel_of = {p: int(rng.integers(-1, R)) for p in pairs}
        for c in range(clips_per_movie):
            n_pairs = int(rng.integers(1, 7))
            main = pairs[int(rng.integers(0, 3))]  # a few pairs carry most of the clips
            others = [q for q in pairs if q != main]
            cand = [others[i] for i in rng.choice(len(others), n_pairs - 1, replace=False)]
            true_pair = int(rng.integers(0, n_pairs))
            cand.insert(true_pair, main)
            if rng.random() < 0.15:
                true_pair = -1
            feats = {ch: rng.normal(size=dims["tracks"]).astype(np.float32) for ch in chars}
            # some characters are not tracked in this clip: zeros
            tracks = np.stack([np.stack([feats[a], feats[b]]) for a, b in cand])
            label = int(rng.integers(0, A))
            overlap = np.zeros(A, bool)
            overlap[label] = True
            overlap[rng.integers(0, A, size=int(rng.integers(0, 3)))] = True
            examples.append({
                "clip_id": f"{movie}_clip{c:03d}", "movie_id": movie,
                "visual": rng.normal(size=dims["visual"]).astype(np.float32),
                "visual_present": np.bool_(True),
                "text": rng.normal(size=dims["text"]).astype(np.float32),
                "text_present": np.bool_(rng.random() > 0.2),
                "interaction": np.int32(label), "overlap_interactions": overlap,
                "num_pairs": np.int32(n_pairs),
                "pair_characters": np.array(cand, dtype=object).astype(str),
                "pair_tracks": tracks.astype(np.float32),
                "true_pair": np.int32(true_pair),
                "relationship": np.int32(rel_of[cand[true_pair]] if true_pair >= 0 else -1),
            })
    by_group: dict[tuple, list[str]] = {}
    for e in examples:
        if e["true_pair"] >= 0 and e["relationship"] >= 0:
            pair = tuple(e["pair_characters"][e["true_pair"]])
            by_group.setdefault((e["movie_id"], pair, int(e["relationship"])), []).append(
                e["clip_id"])
    for e in examples:
        ids: list[str] = []
        if e["true_pair"] >= 0 and e["relationship"] >= 0:
            pair = tuple(e["pair_characters"][e["true_pair"]])
            ids = [c for c in by_group[(e["movie_id"], pair, int(e["relationship"]))]
                   if c != e["clip_id"]]
        e["pair_clip_ids"] = np.array(ids, dtype=object).astype(str) if ids else \
            np.zeros((0,), dtype="<U1")
    return examples


def metadata(dims: dict | None = None) -> dict:
    return {"dims": dict(dims or DIMS),
            "interactions": [f"int{i}" for i in range(A)],
            "relationships": [f"rel{i}" for i in range(R)]}


# ------------------------------------------------------------------------------------------ tests
import pytest  # noqa: E402

from jaxaffect.data.memory_dataset import make_batches  # noqa: E402
from jaxaffect.families.lirec import batches as lb  # noqa: E402


def _spec(setting: str, num_clips: int = 3, max_pairs: int = 6) -> lb.BatchSpec:
    return lb.BatchSpec(setting, DIMS["visual"], DIMS["text"], DIMS["tracks"],
                        num_clips=num_clips, max_pairs=max_pairs)


@pytest.fixture(scope="module")
def examples() -> list[dict]:
    return make_examples(num_movies=2, clips_per_movie=30, seed=1)


@pytest.fixture(scope="module")
def index(examples) -> dict:
    return lb.index_by_clip(examples)


def _with_pool(examples, index, at_least: int) -> dict:
    for e in examples:
        if len(lb.group_pool(e, index)) >= at_least:
            return e
    raise AssertionError(f"no clip with {at_least} other clips of its pair")


def test_group_pool_excludes_self_and_unknown_ids(examples, index):
    e = dict(_with_pool(examples, index, 2))
    e["pair_clip_ids"] = np.array(list(e["pair_clip_ids"]) + [e["clip_id"], "not_in_split"])
    pool = lb.group_pool(e, index)
    assert e["clip_id"] not in pool and "not_in_split" not in pool
    assert pool == sorted(str(c) for c in _with_pool(examples, index, 2)["pair_clip_ids"])


def test_choose_group_training_samples_without_replacement_from_pool():
    pool = [f"c{i:02d}" for i in range(10)]
    seen = set()
    for seed in range(20):
        got = lb.choose_group(pool, 4, np.random.default_rng(seed))
        assert len(got) == 4 and len(set(got)) == 4 and set(got) <= set(pool)
        seen.add(tuple(sorted(got)))
    assert len(seen) > 5  # really random
    small = lb.choose_group(pool[:3], 4, np.random.default_rng(0))
    assert sorted(small) == pool[:3]
    assert lb.choose_group([], 4, np.random.default_rng(0)) == []


def test_choose_group_evaluation_is_fixed_and_uniformly_spread():
    pool = [f"c{i:02d}" for i in range(10)]
    got = lb.choose_group(list(reversed(pool)), 4, None)
    assert got == ["c00", "c03", "c06", "c09"]  # linspace(0, 9, 4) over the sorted pool
    assert lb.choose_group(pool, 4, None) == got
    assert lb.choose_group(pool, 10, None) == pool
    assert lb.choose_group(pool[:3], 4, None) == pool[:3]
    many = lb.choose_group([f"x{i:03d}" for i in range(37)], 18, None)
    assert len(set(many)) == 18 and many[0] == "x000" and many[-1] == "x036"


@pytest.mark.parametrize("train", [True, False])
def test_group_transform_slots_and_masks(examples, index, train):
    spec = _spec("relationships", num_clips=3)
    e = _with_pool(examples, index, 5)
    rng = np.random.default_rng(0) if train else None
    out = lb.transform(spec, index, e, rng)
    x = out["inputs"]
    assert x["visual"].shape == (4, DIMS["visual"]) and x["tracks"].shape == (4, 2, DIMS["tracks"])
    assert x["clip_mask"].tolist() == [True] * 4  # pool >= 5 > num_clips
    np.testing.assert_array_equal(x["visual"][0], e["visual"])
    expect_text = e["text"] if e["text_present"] else np.zeros_like(e["text"])
    np.testing.assert_array_equal(x["text"][0], expect_text)
    np.testing.assert_array_equal(x["tracks"][0], e["pair_tracks"][e["true_pair"]])
    pool = lb.group_pool(e, index)
    members = []
    for k in range(1, 4):  # each slot is one clip of the pool, with its own true pair's tracks
        match = [c for c in pool if np.array_equal(index[c]["visual"], x["visual"][k])]
        assert len(match) == 1
        m = index[match[0]]
        np.testing.assert_array_equal(x["tracks"][k], m["pair_tracks"][m["true_pair"]])
        members.append(match[0])
    assert len(set(members)) == 3
    if not train:
        assert members == lb.choose_group(pool, 3, None)


def test_group_transform_short_pool_is_masked(examples, index):
    spec = _spec("joint", num_clips=3)
    e = next(x for x in examples if x["true_pair"] < 0)  # no pair: the clip alone
    out = lb.transform(spec, index, e, np.random.default_rng(0))
    assert out["inputs"]["clip_mask"].tolist() == [True, False, False, False]
    assert not out["inputs"]["tracks"].any() and not out["inputs"]["visual"][1:].any()
    assert out["group"]["interaction"][0] == e["interaction"]
    np.testing.assert_array_equal(out["group"]["overlap"][0], e["overlap_interactions"])
    assert out["pair_key"].endswith(f"clip:{e['clip_id']}")


def test_character_transform_tracks_per_candidate_pair(examples, index):
    spec = _spec("all_weak", num_clips=3, max_pairs=6)
    e = _with_pool(examples, index, 3)
    out = lb.transform(spec, index, e, None)
    p = int(e["num_pairs"])
    trk = out["inputs"]["tracks"]
    assert trk.shape == (6, 4, 2, DIMS["tracks"])
    assert out["pair_mask"].tolist() == [True] * p + [False] * (6 - p)
    np.testing.assert_array_equal(trk[:p, 0], e["pair_tracks"])
    assert not trk[p:].any()
    members = lb.choose_group(lb.group_pool(e, index), 3, None)
    for k, cid in enumerate(members, start=1):
        other = index[cid]
        feats = {}
        for q, (a, b) in enumerate(other["pair_characters"]):
            feats.setdefault(a, other["pair_tracks"][q, 0])
            feats.setdefault(b, other["pair_tracks"][q, 1])
        for q in range(p):
            for slot in range(2):
                ch = e["pair_characters"][q][slot]
                want = feats.get(ch, np.zeros(DIMS["tracks"], np.float32))  # unseen: zeros
                np.testing.assert_array_equal(trk[q, k, slot], want)


def _flat(d: dict, pre: str = "") -> dict:
    out = {}
    for k, v in d.items():
        out.update(_flat(v, f"{k}/") if isinstance(v, dict) else {pre + k: v})
    return out


@pytest.mark.parametrize("setting", lb.SETTINGS)
def test_padding_matches_transform_structure(examples, index, setting):
    spec = _spec(setting)
    out = lb.transform(spec, index, examples[0], np.random.default_rng(0))
    pad = lb.padding(spec)
    fo, fp = _flat(out), _flat(pad)
    assert fo.keys() == fp.keys()
    for k in fo:
        assert np.shape(fo[k]) == np.shape(fp[k]), k
        assert np.asarray(fo[k]).dtype.kind == np.asarray(fp[k]).dtype.kind, k
    assert not pad["valid"] and out["valid"]
    dummy = lb.dummy_batch(spec, 3)
    assert "clip_id" not in dummy and dummy["inputs"]["visual"].shape == (3, spec.slots, 6)


def test_make_batches_training_and_padded_evaluation(examples, index):
    spec = _spec("joint", num_clips=3)
    kw = dict(batch_size=8, seed=0, num_epochs=1, process_index=0, process_count=1,
              transform=lb.Transform(spec, index), padding=lb.padding(spec))
    ev = list(make_batches(examples, train=False, **kw))
    assert sum(int(b["valid"].sum()) for b in ev) == len(examples)
    assert [c for b in ev for c, v in zip(b["clip_id"], b["valid"]) if v] == \
        [e["clip_id"] for e in examples]
    assert ev[-1]["inputs"]["tracks"].shape == (8, 4, 2, DIMS["tracks"])
    tr = list(make_batches(examples, train=True, **kw))
    assert len(tr) == len(examples) // 8 and all(b["valid"].all() for b in tr)
    tr2 = list(make_batches(examples, train=True, **kw))  # deterministic given the seed
    np.testing.assert_array_equal(tr[0]["inputs"]["visual"], tr2[0]["inputs"]["visual"])
