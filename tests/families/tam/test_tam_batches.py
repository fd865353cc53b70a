"""TAM per-example transforms: segment windows, uniform evaluation picks, comment re-indexing."""

from __future__ import annotations

import numpy as np
import pytest

from jaxaffect.data.memory_dataset import collate_nested
from jaxaffect.data.sequences import crop_indices
from jaxaffect.families.tam import batches as tb

DIMS = {"image": 4, "motion": 3, "audio": 2}


def video(num_segments: int, seed: int = 0, audio_gap: bool = False) -> dict:
    rng = np.random.default_rng(seed)
    streams = {s: rng.normal(size=(num_segments, d)).astype(np.float32) + 1.0
               for s, d in DIMS.items()}
    masks = {s: np.ones(num_segments, bool) for s in DIMS}
    if audio_gap:
        masks["audio"][0] = False
    return {"video_id": f"Joy/v{seed}", "label": np.int64(4), "valence": np.float32(2.5),
            "arousal": np.float32(3.5), "streams": streams, "masks": masks,
            "num_segments": np.int32(num_segments)}


def tsc(num_segments: int, num_comments: int, seed: int = 0, width: int = 16) -> dict:
    ex = video(num_segments, seed)
    rng = np.random.default_rng(seed + 100)
    tokens = np.zeros((num_comments, width), np.int32)
    emotional = np.zeros((num_comments, width), bool)
    for i in range(num_comments):
        n = int(rng.integers(3, width))
        tokens[i, 0] = tb.START_ID
        tokens[i, 1:n] = rng.integers(4, 50, size=n - 1)
        emotional[i, int(rng.integers(1, n))] = True
    segment = np.sort(rng.integers(0, num_segments, size=num_comments)).astype(np.int32)
    ex.update(example_id=f"av{seed}#0", tokens=tokens, emotional=emotional,
              comment_segment=segment, num_comments=np.int32(num_comments),
              comment_time=segment.astype(np.float32))
    return ex


def test_window_start_uniform_and_centred():
    rng = np.random.default_rng(0)
    starts = [tb.window_start(10, 4, rng) for _ in range(700)]
    assert set(starts) == set(range(7))  # every valid start is drawn, none outside
    counts = np.bincount(starts)
    assert counts.min() > 60  # roughly uniform (expected 100 each)
    assert tb.window_start(10, 4, None) == 3
    assert tb.window_start(3, 4, rng) == 0 and tb.window_start(4, 4, None) == 0
    with pytest.raises(ValueError):
        tb.window_start(3, 0, rng)


@pytest.mark.parametrize("n,t", [(3, 8), (8, 8), (20, 8), (100, 64), (1, 1)])
def test_segment_indices(n, t):
    rng = np.random.default_rng(n)
    for _ in range(20):
        idx = tb.segment_indices(n, t, rng)
        assert len(idx) == min(n, t)
        assert np.all(np.diff(idx) == 1) and idx[0] >= 0 and idx[-1] < n  # consecutive window
    ev = tb.segment_indices(n, t, None)
    np.testing.assert_array_equal(ev, crop_indices(n, t))
    np.testing.assert_array_equal(ev, tb.segment_indices(n, t, None))  # deterministic
    if n > t > 1:  # spread over the whole video, first and last segment included
        assert ev[0] == 0 and ev[-1] == n - 1 and len(ev) == t
        np.testing.assert_allclose(ev, np.linspace(0, n - 1, t), atol=0.5)
    else:
        np.testing.assert_array_equal(ev, np.arange(min(n, t)))


def test_video_example_shapes_masks_and_values():
    ex = video(5, seed=1, audio_gap=True)
    out = tb.video_example(ex, 8, None, label_key="label")
    assert out["segment_mask"].tolist() == [True] * 5 + [False] * 3
    assert out["label"] == 4 and out["label"].dtype == np.int32 and out["valid"]
    assert out["video_id"] == "Joy/v1"
    for s, d in DIMS.items():
        assert out["features"][s].shape == (8, d) and out["features"][s].dtype == np.float32
        assert np.all(out["features"][s][5:] == 0)
    np.testing.assert_array_equal(out["features"]["image"][:5], ex["streams"]["image"])
    assert np.all(out["features"]["audio"][0] == 0)  # the stream's own mask zeroes it
    np.testing.assert_array_equal(out["features"]["audio"][1:5], ex["streams"]["audio"][1:])
    reg = tb.video_example(ex, 8, None, target_keys=("valence", "arousal"))
    np.testing.assert_array_equal(reg["target"], np.float32([2.5, 3.5]))
    assert "label" not in reg


def test_video_example_train_window_matches_source_rows():
    ex = video(30, seed=2)
    for seed in range(10):
        out = tb.video_example(ex, 8, np.random.default_rng(seed), label_key="label")
        assert out["segment_mask"].all()
        x = out["features"]["motion"]
        start = int(np.flatnonzero(np.all(ex["streams"]["motion"] == x[0], axis=1))[0])
        np.testing.assert_array_equal(x, ex["streams"]["motion"][start:start + 8])


def test_video_padding_collates_with_examples():
    ex = tb.video_example(video(3), 8, None, label_key="label")
    pad = tb.video_padding(DIMS, 8, classification=True)
    batch = collate_nested([ex, pad])
    assert batch["valid"].tolist() == [True, False]
    assert batch["features"]["image"].shape == (2, 8, 4)
    assert batch["video_id"].tolist() == ["Joy/v0", ""]
    pad_r = tb.video_padding(DIMS, 8, classification=False, num_targets=2)
    reg = tb.video_example(video(3), 8, None, target_keys=("valence", "arousal"))
    assert collate_nested([reg, pad_r])["target"].shape == (2, 2)


def reference_comments(example: dict, start: int, length: int, max_comments: int):
    """Loop reference for evaluation: the first comments inside the window, re-indexed."""
    rows, segs = [], []
    for i, s in enumerate(example["comment_segment"]):
        if start <= s < start + length and len(rows) < max_comments:
            rows.append(i)
            segs.append(int(s) - start)
    return rows, segs


@pytest.mark.parametrize("n,num_comments,t,cap", [(20, 12, 8, 32), (20, 40, 8, 5),
                                                  (4, 6, 8, 3), (9, 0, 4, 4)])
def test_tsc_example_eval_matches_loop_reference(n, num_comments, t, cap):
    ex = tsc(n, num_comments, seed=n + num_comments)
    out = tb.tsc_example(ex, t, cap, None)
    start = tb.window_start(n, t, None)
    rows, segs = reference_comments(ex, start, min(n, t), cap)
    k = len(rows)
    assert out["comment_mask"].tolist() == [True] * k + [False] * (cap - k)
    np.testing.assert_array_equal(out["tokens"][:k], ex["tokens"][rows])
    np.testing.assert_array_equal(out["emotional"][:k], ex["emotional"][rows])
    assert out["comment_segment"][:k].tolist() == segs
    assert np.all(out["tokens"][k:] == 0) and np.all(out["comment_segment"][k:] == 0)
    assert out["tokens"].shape == (cap, 16) and out["tokens"].dtype == np.int32
    np.testing.assert_array_equal(out["features"]["image"][:min(n, t)],
                                  ex["streams"]["image"][start:start + min(n, t)])
    # every kept comment points at a real segment of the window
    assert np.all(out["segment_mask"][out["comment_segment"][:k]])


def test_tsc_example_train_random_window_and_subset():
    ex = tsc(30, 60, seed=3)
    seen_starts = set()
    for seed in range(30):
        out = tb.tsc_example(ex, 8, 6, np.random.default_rng(seed))
        start = tb.window_start(30, 8, np.random.default_rng(seed))  # the same first draw
        seen_starts.add(start)
        np.testing.assert_array_equal(out["features"]["audio"],
                                      ex["streams"]["audio"][start:start + 8])
        inside = [i for i, s in enumerate(ex["comment_segment"]) if start <= s < start + 8]
        k = int(out["comment_mask"].sum())
        assert k == min(6, len(inside))
        # each kept comment is one of the window's comments, with its segment re-indexed,
        # in the original order and without repeats
        picked = []
        for j in range(k):
            match = [i for i in inside if np.array_equal(ex["tokens"][i], out["tokens"][j])
                     and ex["comment_segment"][i] - start == out["comment_segment"][j]]
            assert match
            picked.append(match[0])
        assert picked == sorted(set(picked))
    assert len(seen_starts) > 5


def test_select_comments_caps_and_orders():
    seg = np.array([0, 1, 1, 2, 5, 5, 6, 9])
    assert tb.select_comments(seg, 1, 5, 10, None).tolist() == [1, 2, 3, 4, 5]
    assert tb.select_comments(seg, 1, 5, 2, None).tolist() == [1, 2]
    got = tb.select_comments(seg, 1, 5, 3, np.random.default_rng(0))
    assert len(got) == 3 and set(got) <= {1, 2, 3, 4, 5} and list(got) == sorted(got)


def test_tsc_padding_collates_with_examples():
    ex = tb.tsc_example(tsc(10, 5), 8, 4, None)
    pad = tb.tsc_padding(DIMS, 8, 4, 16)
    batch = collate_nested([ex, pad])
    assert batch["valid"].tolist() == [True, False]
    assert batch["tokens"].shape == (2, 4, 16) and not batch["comment_mask"][1].any()
    assert set(ex) == set(pad)


def test_tsc_example_rejects_inconsistent_comments():
    ex = tsc(10, 5)
    ex["comment_segment"] = ex["comment_segment"][:3]
    with pytest.raises(ValueError, match="do not agree"):
        tb.tsc_example(ex, 8, 4, None)
