"""MEmoR batches (padding, cropping around the target) and the Table 3-6 scores, against
direct computations."""

from __future__ import annotations

import numpy as np
import pytest

from jaxaffect.families.amer import batches as ab
from jaxaffect.families.amer.scores import availability_subsets, emotion_scores

DIMS = {"audio": 3, "text": 2, "visual": 4, "personality": 5}


def _example(num_p: int, num_s: int, tp: int, ts: int, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    ex = {m: rng.standard_normal((num_p, num_s, DIMS[m])).astype(np.float32)
          for m in ("audio", "text", "visual")}
    for m in ("audio", "text", "visual"):
        ex[f"{m}_present"] = rng.random((num_p, num_s)) < 0.6
    ex.update(personality=rng.standard_normal((num_p, 5)).astype(np.float32),
              persons=np.arange(num_p, dtype=np.int32) + 1, target_person=tp,
              target_segment=ts, label_primary=3, label_fine=11, speaks_in_segment=True,
              speaks_in_clip=True, id=f"clip#{seed}", clip="clip")
    return ex


def test_transform_pads_and_masks():
    spec = ab.BatchSpec(dims=DIMS, labels="fine", max_persons=4, max_segments=5)
    ex = _example(2, 3, 1, 2)
    out = ab.Transform(spec)(ex)
    x = out["inputs"]
    assert x["audio"].shape == (4, 5, 3) and x["personality"].shape == (4, 5)
    np.testing.assert_array_equal(x["audio"][:2, :3], ex["audio"])
    assert not x["audio"][2:].any() and not x["audio"][:, 3:].any()
    np.testing.assert_array_equal(x["visual_present"][:2, :3], ex["visual_present"])
    assert not x["visual_present"][2:].any()
    np.testing.assert_array_equal(x["person_mask"], [1, 1, 0, 0])
    np.testing.assert_array_equal(x["segment_mask"], [1, 1, 1, 0, 0])
    np.testing.assert_array_equal(x["persons"], [1, 2, -1, -1])
    assert (x["target_person"], x["target_segment"]) == (1, 2)
    assert out["label"] == 11 and out["valid"] and out["id"] == "clip#0"
    np.testing.assert_array_equal(out["target_modalities"],
                                  [ex[f"{m}_present"][1, 2] for m in ("audio", "text", "visual")])
    assert ab.Transform(ab.BatchSpec(dims=DIMS, labels="primary"))(ex)["label"] == 3


@pytest.mark.parametrize("num_p,num_s,tp,ts", [(5, 9, 4, 0), (5, 9, 0, 8), (6, 12, 2, 6),
                                               (3, 4, 1, 3)])
def test_crop_keeps_the_target_and_its_neighbourhood(num_p, num_s, tp, ts):
    spec = ab.BatchSpec(dims=DIMS, max_persons=3, max_segments=4)
    ex = _example(num_p, num_s, tp, ts, seed=num_p * 10 + ts)
    out = ab.Transform(spec)(ex)
    x = out["inputs"]
    kp = ab.kept_persons(num_p, tp, 3)
    start = min(max(ts - 2, 0), max(num_s - 4, 0))
    ks = np.arange(num_s) if num_s <= 4 else np.arange(start, start + 4)
    assert tp in kp and len(kp) == min(num_p, 3)
    np.testing.assert_array_equal(x["audio"][:len(kp), :len(ks)], ex["audio"][np.ix_(kp, ks)])
    # the target entry is the same entry after the crop
    np.testing.assert_array_equal(x["text"][x["target_person"], x["target_segment"]],
                                  ex["text"][tp, ts])
    assert ab.is_cropped(ex, spec) == (num_p > 3 or num_s > 4)


def test_dropped_modalities_arrive_absent_and_full_subset():
    spec = ab.BatchSpec(dims=DIMS, modalities=("text",))
    ex = _example(2, 2, 0, 0)
    x = ab.Transform(spec)(ex)["inputs"]
    assert not x["audio"].any() and not x["audio_present"].any() and not x["visual"].any()
    np.testing.assert_array_equal(x["text_present"][:2, :2], ex["text_present"])
    for m in ("audio", "text", "visual"):
        ex[f"{m}_present"][0, 0] = True
    assert ab.target_has_all(ex)
    ex["visual_present"][0, 0] = False
    assert not ab.target_has_all(ex)


def test_padding_and_dummy_batch_shapes():
    spec = ab.BatchSpec(dims=DIMS, max_persons=2, max_segments=3)
    pad = ab.padding(spec)
    assert not pad["valid"] and not pad["inputs"]["person_mask"].any()
    batch = ab.dummy_batch(spec, 4)
    assert batch["inputs"]["audio"].shape == (4, 2, 3, 3) and batch["label"].shape == (4,)
    assert "id" not in batch and batch["inputs"]["person_mask"][:, 0].all()
    with pytest.raises(ValueError, match="labels"):
        ab.BatchSpec(dims=DIMS, labels="coarse")


def _loop_f1(labels, preds, n):
    f1 = []
    for c in range(n):
        tp = sum(1 for y, p in zip(labels, preds) if y == c and p == c)
        fp = sum(1 for y, p in zip(labels, preds) if y != c and p == c)
        fn = sum(1 for y, p in zip(labels, preds) if y == c and p != c)
        f1.append(2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0)
    support = [sum(1 for y in labels if y == c) for c in range(n)]
    seen = [c for c in range(n) if support[c] or c in preds]
    return {"micro_f1": sum(y == p for y, p in zip(labels, preds)) / len(labels),
            "macro_f1": sum(f1[c] for c in seen) / len(seen),
            "weighted_f1": sum(f * s for f, s in zip(f1, support)) / sum(support), "f1": f1}


def test_emotion_scores_against_loops():
    rng = np.random.default_rng(0)
    n = 200
    labels = rng.integers(0, 5, n)
    preds = np.where(rng.random(n) < 0.5, labels, rng.integers(0, 5, n))
    avail = rng.random((n, 3)) < 0.6
    speaks = rng.random(n) < 0.4
    names = ("a", "b", "c", "d", "e")
    res = emotion_scores(labels, preds, names, target_modalities=avail, speaks=speaks)
    ref = _loop_f1(list(labels), list(preds), 5)
    for k in ("micro_f1", "macro_f1", "weighted_f1"):
        np.testing.assert_allclose(res[k], ref[k], atol=1e-12)
    for c, f in zip(names, ref["f1"]):
        np.testing.assert_allclose(res[f"f1/{c}"], f, atol=1e-12)
    sub = [i for i in range(n) if not speaks[i]]
    ref_ns = _loop_f1([labels[i] for i in sub], [preds[i] for i in sub], 5)
    np.testing.assert_allclose(res["non_speaker/weighted_f1"], ref_ns["weighted_f1"])
    full = [i for i in range(n) if avail[i].all()]
    np.testing.assert_allclose(res["full/micro_f1"],
                               np.mean([labels[i] == preds[i] for i in full]))
    assert res["count/full"] == len(full)
    at = [i for i in range(n) if avail[i, 0] and avail[i, 1] and not avail[i, 2]]
    np.testing.assert_allclose(res["avail_AT/micro_f1"],
                               np.mean([labels[i] == preds[i] for i in at]))
    missing = [i for i in range(n) if not avail[i].all()]
    assert res["count/avail_missing"] == len(missing)


def test_availability_subsets_and_empty_subsets():
    avail = np.array([[1, 1, 0], [0, 0, 1], [1, 1, 1], [0, 0, 0], [1, 0, 1]], bool)
    s = availability_subsets(avail)
    np.testing.assert_array_equal(s["AT"], [1, 0, 0, 0, 0])
    np.testing.assert_array_equal(s["V"], [0, 1, 0, 0, 0])
    np.testing.assert_array_equal(s["AVT"], [0, 0, 1, 0, 0])
    np.testing.assert_array_equal(s["missing"], [1, 1, 0, 1, 1])
    np.testing.assert_array_equal(s["none"], [0, 0, 0, 1, 0])
    res = emotion_scores(np.zeros(2, int), np.zeros(2, int), ("x",),
                         target_modalities=np.zeros((2, 3), bool), speaks=np.zeros(2, bool))
    assert res["count/full"] == 0 and "full/micro_f1" not in res
    assert res["count/speaker"] == 0 and res["non_speaker/micro_f1"] == 1.0


def test_speaker_streams_are_checked_per_example():
    spec = ab.BatchSpec(dims=DIMS, speaker_streams=("audio",))
    ex = _example(3, 2, 0, 0)
    ex["audio_present"][:] = False
    ex["audio_present"][1, 0] = ex["audio_present"][2, 1] = True
    ab.Transform(spec)(ex)  # one speaker per segment: fine
    ex["audio_present"][0, 1] = True
    with pytest.raises(ValueError, match=r"clip#0: more than one person has audio"):
        ab.Transform(spec)(ex)
