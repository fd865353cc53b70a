"""The synthetic MEmoR-layout corpus: deterministic, staged, read by the release reader, every
annotation consistent with the latent process, train/test sharing moments, and the probes that
show the target entry alone is clearly worse than context + personality."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from jaxaffect.data.build import STAGING_MARKER
from jaxaffect.families.amer import release_examples as rx
from jaxaffect.families.amer import release_format as rf
from jaxaffect.families.amer import synthetic as syn
from jaxaffect.families.amer import synthetic_process as sp

PROBE_SIZE = 1500  # annotations of the shared corpus (about 3 s to write, 3 s to read)


def tree_hashes(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("amer_synthetic") / "release"
    summary = syn.synthesize(str(root), size=PROBE_SIZE, seed=0)
    return root, summary, syn.release_examples(root)


# ----------------------------------------------------------------------------- the process
def test_plutchik_primary_of_every_fine_emotion():
    milder = {"serenity": "joy", "interest": "anticipation", "annoyance": "anger",
              "boredom": "disgust", "distraction": "surprise"}
    for k, fine in enumerate(sp.FINE):
        expected = milder.get(fine, fine)
        assert sp.FINE_TO_PRIMARY[fine] == expected
        assert sp.PRIMARY[sp.PRIMARY_OF[k]] == expected
    assert len(sp.FINE) == 14 and len(sp.PRIMARY) == 9


def test_world_priors_average_to_the_class_prior():
    w = sp.make_world(3, sp.DEFAULT_DIMS)
    z = w.log_prior + w.bias
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    np.testing.assert_allclose(p.mean(0), [sp.FINE_PRIOR[f] for f in sp.FINE], atol=1e-6)
    assert len(set(p.argmax(1).tolist())) > 2  # characters favour different emotions
    assert np.all((w.susceptibility > 0) & (w.susceptibility < 1))
    assert w.susceptibility.std() > 0.1
    # the bias is a function of the personality rows (external knowledge): same rows, same bias
    w2 = sp.make_world(3, sp.DEFAULT_DIMS)
    np.testing.assert_array_equal(w.personality, w2.personality)
    np.testing.assert_array_equal(w.bias, w2.bias)


def test_emotions_persist_and_propagate():
    """Loop reference counts over many drawn clips: a listener shares the speaker's emotion and a
    character keeps its emotion far more often than two independent draws would."""
    world = sp.make_world(0, sp.DEFAULT_DIMS)
    rng = np.random.default_rng(5)
    keep = share = keep_n = share_n = 0
    for i in range(300):
        d = sp.draw_clip(rng, world, f"c{i}")
        assert d.emotions.shape == (len(d.cast), len(d.seg_start))
        assert 2 <= len(d.seg_start) <= 5 and 2 <= len(d.cast) <= 4
        assert set(d.speakers) <= set(d.on_character) <= set(d.cast)
        for p in range(len(d.cast)):
            for j in range(len(d.seg_start)):
                if j > 0:
                    keep += d.emotions[p, j] == d.emotions[p, j - 1]
                    keep_n += 1
                s = d.cast.index(d.speakers[j])
                if s != p:
                    share += d.emotions[p, j] == d.emotions[s, j]
                    share_n += 1
    chance = sum(v * v for v in sp.FINE_PRIOR.values())
    assert keep / keep_n > 0.7 > 3 * chance
    assert share / share_n > 0.4 > 3 * chance


def test_split_ids_keep_each_class_fraction():
    labels = np.random.default_rng(0).integers(0, 14, 500)
    train, test = sp.split_ids(np.random.default_rng(1), labels, 0.2)
    assert sorted(train + test) == list(range(500)) and not set(train) & set(test)
    for k in range(14):
        assert np.sum(labels[test] == k) == round(0.2 * np.sum(labels == k))


# ----------------------------------------------------------------------------- writing
def test_deterministic_seed_dependent_and_size_prefix(tmp_path):
    a = syn.synthesize(str(tmp_path / "a"), size=60, seed=3)
    b = syn.synthesize(str(tmp_path / "b"), size=60, seed=3)
    syn.synthesize(str(tmp_path / "c"), size=60, seed=4)
    big = syn.synthesize(str(tmp_path / "big"), size=90, seed=3)
    ha, hb, hc = (tree_hashes(tmp_path / k) for k in "abc")
    assert ha == hb and len(ha) > 20 and ha != hc
    assert {k: v for k, v in a.items() if k != "root"} == {
        k: v for k, v in b.items() if k != "root"}
    assert a["num_annotations"] == 60 and big["num_annotations"] == 90
    anno = json.loads((tmp_path / "a" / rf.ANNO_FILE).read_text())
    anno_big = json.loads((tmp_path / "big" / rf.ANNO_FILE).read_text())
    for key in rf.EMOTION_SETS:  # a larger corpus extends a smaller one (same seed)
        assert anno_big[key][:60] == anno[key]
    assert not list(tmp_path.glob(".*partial"))


def test_rerun_refusal_and_staging(tmp_path, monkeypatch):
    out = tmp_path / "corpus"
    first = syn.synthesize(str(out), size=30, seed=0)
    before = tree_hashes(out)
    assert syn.synthesize(str(out), size=30, seed=0) == first  # same parameters: kept
    assert tree_hashes(out) == before
    with pytest.raises(FileExistsError):
        syn.synthesize(str(out), size=31, seed=0)
    assert tree_hashes(out) == before
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("precious")
    with pytest.raises(FileExistsError):
        syn.synthesize(str(mine), size=30, seed=0)
    assert (mine / "notes.txt").read_text() == "precious" and len(list(mine.iterdir())) == 1

    # A failure while writing leaves no corpus at `out`; the next run clears the staging folder.
    def broken(root, **kwargs):
        (Path(root) / rf.ANNO_FILE).write_text("{}")
        raise RuntimeError("disk full")

    monkeypatch.setattr(syn, "write_release", broken)
    fresh = tmp_path / "fresh"
    with pytest.raises(RuntimeError):
        syn.synthesize(str(fresh), size=30, seed=0)
    assert not fresh.exists()
    assert (tmp_path / ".fresh.partial" / STAGING_MARKER).exists()
    monkeypatch.undo()
    assert syn.synthesize(str(fresh), size=30, seed=0)["num_annotations"] == 30
    assert not (tmp_path / ".fresh.partial").exists()
    assert tree_hashes(fresh) == before


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError):
        syn.synthesize(str(tmp_path / "x"), size=1)
    with pytest.raises(ValueError):
        syn.synthesize(str(tmp_path / "x"), size=10, test_fraction=1.0)
    with pytest.raises(ValueError):
        syn.synthesize(str(tmp_path / "x"), size=10, dims={"video": 3})
    with pytest.raises(ValueError):
        syn.synthesize(str(tmp_path / "x"), size=10, dims={"audio": 0})
    assert not (tmp_path / "x").exists()


def test_other_dims_are_read_back(tmp_path):
    dims = {"audio": 7, "text": 5, "face": 3, "object": 2, "environment": 4, "personality": 6}
    syn.synthesize(str(tmp_path / "d"), size=40, seed=1, dims=dims)
    release = rx.read_release(tmp_path / "d")
    assert release.dims == {**dims, "visual": 9}


# ----------------------------------------------------------------------------- reading back
def test_reader_agrees_with_the_latent_process(corpus):
    root, summary, examples = corpus
    latent = syn.read_latent(root)
    release = rx.read_release(root)
    assert release.dims == {**summary["dims"], "visual": 32}
    assert len(examples) == len(release.annotations) == PROBE_SIZE == summary["num_annotations"]
    assert len(release.ids["train"]) == summary["num_train"]
    assert len(release.ids["test"]) == summary["num_test"]
    assert 0.15 < summary["num_test"] / PROBE_SIZE < 0.25
    np.testing.assert_allclose(release.personality,
                               rf.normalise_personality(sp.make_world(0, summary["dims"])
                                                        .personality), rtol=1e-6)
    moved = speaking = 0
    for e, lat in zip(examples, latent["annotations"], strict=True):
        a = release.annotations[int(e["anno_index"])]
        clip = latent["clips"][a.clip]
        assert (a.clip, a.character) == (lat["clip"], lat["character"])
        assert int(e["label_fine"]) == lat["fine"]
        assert rf.PRIMARY[int(e["label_primary"])] == sp.FINE_TO_PRIMARY[rf.FINE[lat["fine"]]]
        assert int(e["target_segment"]) == lat["segment"]
        assert release.targets[a.index][1] == ("nearest" if lat["outside"] else "inside")
        moved += lat["outside"]
        persons = e["persons"].tolist()
        assert persons[int(e["target_person"])] == a.character
        assert clip["emotions"][clip["cast"].index(a.character)][lat["segment"]] == lat["fine"]
        for k, q in enumerate(persons):
            speaks = e["segment_speaker"] == q
            np.testing.assert_array_equal(e["text_present"][k], speaks)
            assert not np.any(e["audio_present"][k] & ~speaks)
            np.testing.assert_array_equal(e["visual_present"][k],
                                          np.asarray(clip["visible"][clip["cast"].index(q)],
                                                     bool))
            for m in rf.MODALITIES:  # absent entries are zero vectors
                assert not np.any(e[m][k][~e[f"{m}_present"][k]])
        speaking += bool(e["speaks_in_segment"])
    assert moved == summary["targets"]["outside_moments"] > 0
    assert speaking / PROBE_SIZE == pytest.approx(
        1 - summary["targets"]["non_speaker_in_segment"], abs=1e-3)


def test_features_are_noisy_class_prototypes(corpus):
    """Every present text/audio entry lies near the prototype of its person's latent emotion."""
    root, summary, examples = corpus
    world = sp.make_world(0, summary["dims"])
    latent = syn.read_latent(root)
    true, other = {"audio": [], "text": []}, {"audio": [], "text": []}
    for e in examples:
        clip = latent["clips"][e["clip"]]
        for k, q in enumerate(e["persons"].tolist()):
            for j in range(e["text"].shape[1]):
                emo = clip["emotions"][clip["cast"].index(q)][j]
                for m in true:
                    if e[f"{m}_present"][k, j]:
                        proj = world.prototypes[m] @ e[m][k, j]
                        true[m].append(proj[emo])
                        other[m].append(np.delete(proj, emo).mean())
    for m in true:
        amp = sp.PROCESS[f"{m}_amplitude"]
        assert np.mean(true[m]) == pytest.approx(amp, abs=0.25)
        assert np.mean(other[m]) < 0.6 * amp


def test_train_and_test_share_moments(corpus):
    root, summary, _ = corpus
    release = rx.read_release(root)
    overlap = rx.measure_overlap(release.annotations, release.ids)
    assert overlap["shared_moments"] == summary["overlap"]["shared_moments"] > 0
    assert overlap["affected_annotations"] == summary["overlap"]["affected_annotations"]
    assert overlap["moments"] == summary["overlap"]["moments"]


def test_targets_often_lack_their_own_signal(corpus):
    _, summary, examples = corpus
    t = summary["targets"]
    assert 0.55 < t["non_speaker_in_segment"] < 0.8
    assert 0.25 < t["non_speaker_in_clip"] < 0.5
    assert 0.3 < t["no_modality"] < 0.7
    own = np.asarray([[e[f"{m}_present"][e["target_person"], e["target_segment"]]
                       for m in rf.MODALITIES] for e in examples])
    assert np.mean(~own.any(1)) == pytest.approx(t["no_modality"], abs=1e-3)


def test_builds_with_the_memor_builder(tmp_path):
    tfds = pytest.importorskip("tensorflow_datasets")
    from tfds_builders.memor import memor_dataset_builder as mb

    summary = syn.synthesize(str(tmp_path / "manual"), size=120, seed=2)
    builder = mb.Builder(data_dir=str(tmp_path / "data"))
    builder.download_and_prepare(file_format="array_record", download_config=(
        tfds.download.DownloadConfig(manual_dir=str(tmp_path / "manual"))))
    md = builder.info.metadata
    assert md["dims"] == {**summary["dims"], "visual": 32}
    assert md["overlap"]["shared_moments"] == summary["overlap"]["shared_moments"]
    assert sum(md["counts"].values()) == 120


# ----------------------------------------------------------------------------- probes
def test_probe_helpers():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 90)
    x = np.eye(3)[y] * 3.0 + 0.1 * rng.normal(size=(90, 3))
    np.testing.assert_array_equal(syn.ridge_probe(x, y, x, 3), y)
    y_true, pred = np.array([0, 0, 1, 1, 2]), np.array([0, 1, 1, 1, 0])
    f1 = [2 * 1 / (2 + 2), 2 * 2 / (3 + 2), 0.0]  # loop-free reference per class
    assert syn.macro_f1(y_true, pred, 3) == pytest.approx(np.mean(f1))


@pytest.mark.parametrize("labels", ["fine", "primary"])
def test_context_and_personality_beat_the_target_entry(corpus, labels):
    root, _, examples = corpus
    r = syn.run_probes(root, labels=labels, examples=examples)
    arms = {k: v["micro_f1"] for k, v in r["arms"].items()}
    own, full = arms["target entry"], arms["+ context + personality"]
    assert own > r["majority"] + 0.05  # the target entry carries signal when present ...
    assert full > own + 0.08  # ... but context and personality add a lot
    for arm in ("+ personality", "+ intra-personal", "+ inter-personal", "+ context"):
        assert arms[arm] > own, arm
    assert arms["+ context"] > max(arms["+ intra-personal"], arms["+ inter-personal"])
    ns = {k: v["non_speaker_micro_f1"] for k, v in r["arms"].items()}
    assert ns["+ context + personality"] > ns["target entry"] + 0.1
