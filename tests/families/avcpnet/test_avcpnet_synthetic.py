"""The synthetic eMotions-layout corpus: the pure frame/sound generators against loop
references, the layout (CSV, decodable mp4 files of the promised size, rate, length and audio
presence), determinism, stratified splits, the kind mix, the cues read back from the decoded
files, and the staging rules (reuse with the same parameters, refusal otherwise)."""

from __future__ import annotations

import colorsys
import csv
import hashlib
from pathlib import Path

import numpy as np
import pytest

from jaxaffect.families.avcpnet import synthetic as syn
from jaxaffect.families.avcpnet import synthetic_clips as sc
from jaxaffect.families.avcpnet.emotions import EMOTIONS6
from jaxaffect.features import media

SIZE = 18
FPS, SR = int(sc.RENDER["fps"]), int(sc.RENDER["sample_rate"])
HUES = np.asarray([sc.VIDEO_CUES[c]["hue"] for c in EMOTIONS6])
PITCHES = np.asarray([sc.AUDIO_CUES[c]["pitch"] for c in EMOTIONS6])


def tree_hashes(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def read_csv(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        return list(reader.fieldnames or ()), list(reader)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("emotions_synthetic") / "release"
    summary = syn.synthesize(str(root), size=SIZE, seed=0)
    decoded = {p.stem: media.decode_video(p, short_side=64, max_fps=FPS)
               for p in sorted((root / syn.VIDEO_DIR).iterdir())}
    return root, summary, decoded


def visual_cue(frames: np.ndarray) -> int | None:
    """The class whose hue is nearest the circular mean hue of the saturated pixels (None
    when almost no pixel is saturated: the grey agnostic disc)."""
    rgb = np.asarray(frames, np.float64) / 255.0
    hue, sat = sc.rgb_hue_saturation(rgb)
    mask = (sat > 0.45) & (rgb.max(-1) > 0.25)
    if mask.mean() < 0.005:
        return None
    a = np.deg2rad(hue[mask])
    mean = np.rad2deg(np.arctan2(np.sin(a).mean(), np.cos(a).mean())) % 360.0
    return int(np.argmin(np.abs((HUES - mean + 180.0) % 360.0 - 180.0)))


def audio_cue(pcm: np.ndarray) -> int | None:
    """The class whose pitch is nearest the strongest frequency in 150-1200 Hz (None when
    that peak is not prominent: no tone, the agnostic sound)."""
    power = np.abs(np.fft.rfft(pcm.astype(np.float64) / 32768.0)) ** 2
    freqs = np.fft.rfftfreq(len(pcm), 1.0 / SR)
    band = (freqs > 150) & (freqs < 1200)
    if power[band].max() < 1000.0 * np.median(power[band]):
        return None
    peak = freqs[band][np.argmax(power[band])]
    return int(np.argmin(np.abs(np.log(PITCHES / peak))))


def cue_index(name: str) -> int | None:
    return EMOTIONS6.index(name) if name in EMOTIONS6 else None


# ----------------------------------------------------------------------------- pure parts
def test_hsv_conversions_match_colorsys():
    rng = np.random.default_rng(0)
    h, s, v = rng.uniform(0, 360, 200), rng.uniform(0, 1, 200), rng.uniform(0, 1, 200)
    ours = sc.hsv_to_rgb(h, s, v)
    ref = np.asarray([colorsys.hsv_to_rgb(a / 360.0, b, c) for a, b, c in zip(h, s, v)])
    np.testing.assert_allclose(ours, ref, atol=1e-12)
    hue, sat = sc.rgb_hue_saturation(ref)
    back = np.asarray([colorsys.rgb_to_hsv(*x) for x in ref])
    np.testing.assert_allclose(sat, back[:, 1], atol=1e-12)
    diff = (hue - back[:, 0] * 360.0 + 180.0) % 360.0 - 180.0
    np.testing.assert_allclose(diff[back[:, 1] > 1e-9], 0.0, atol=1e-9)


def test_largest_remainder():
    for total, w in ((18, list(syn.CLASS_PRIOR.values())), (7, [1, 1, 1]), (0, [2, 3])):
        counts = syn.largest_remainder(total, w)
        assert counts.sum() == total
        exact = total * np.asarray(w, float) / np.sum(w)
        assert np.all(np.abs(counts - exact) < 1.0)


def test_render_clip_shapes_ranges_and_determinism():
    plan = sc.ClipPlan(0, "both", 0, 0)
    f1, a1 = sc.render_clip(np.random.default_rng(3), plan)
    f2, a2 = sc.render_clip(np.random.default_rng(3), plan)
    np.testing.assert_array_equal(f1, f2)
    np.testing.assert_array_equal(a1, a2)
    assert f1.dtype == np.uint8 and f1.shape[1:] == (64, 64, 3)
    assert sc.RENDER["min_frames"] <= len(f1) <= sc.RENDER["max_frames"]
    assert a1.dtype == np.float32 and len(a1) == sc.num_audio_samples(len(f1))
    assert np.abs(a1).max() <= 1.0
    silent = sc.ClipPlan(0, "video_only", 0, None, has_audio=False)
    assert sc.render_clip(np.random.default_rng(3), silent)[1] is None


def _track(frames: np.ndarray, hue: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Centroid x, y and area of the disc (saturated pixels of about its hue) per frame."""
    h, sat = sc.rgb_hue_saturation(frames / 255.0)
    mask = (sat > 0.45) & (frames.max(-1) > 60) & (np.abs((h - hue + 180) % 360 - 180) < 25)
    yy, xx = np.mgrid[0:64, 0:64]
    area = mask.sum((1, 2))
    return ((mask * xx).sum((1, 2)) / area, (mask * yy).sum((1, 2)) / area, area)


def test_motion_is_class_specific():
    """Loop over a few clips per class of the raw renders: excitation orbits fast, neutral
    stays, relaxation sways sideways only, sadness falls, tension pulses in size."""
    stats: dict[str, list[tuple[float, float, float, float]]] = {c: [] for c in EMOTIONS6}
    for c, name in enumerate(EMOTIONS6):
        for s in range(4):
            frames = sc.render_video(np.random.default_rng([7, c, s]), c, 45)
            x, y, area = _track(frames, HUES[c])
            dx, dy = np.diff(x), np.diff(y)
            wrap = np.abs(dy) < 20  # a falling disc re-enters at the top
            stats[name].append((float(np.mean(np.hypot(dx, dy)[wrap])),
                                float(np.mean(np.abs(dx))), float(np.median(dy[wrap])),
                                float(area.std() / area.mean())))
    mean = {k: np.mean(v, axis=0) for k, v in stats.items()}
    assert mean["excitation"][0] > 4.0 > 0.3 > mean["neutral"][0]
    assert mean["relaxation"][1] > 0.8 and abs(mean["relaxation"][2]) < 0.05
    assert 0.4 < mean["sadness"][2] < 1.0  # about 10 px/s downwards at 15 fps
    assert mean["tension"][3] > 0.25 > max(mean[k][3] for k in ("neutral", "relaxation"))
    assert mean["fear"][0] > 2.0  # shaking


def test_plan_is_stratified_and_mixed():
    size = 240
    plan = syn.plan_corpus(size, 5)
    labels, split, kinds = plan["labels"], plan["split"], [p.kind for p in plan["plans"]]
    counts = syn.largest_remainder(size, [syn.CLASS_PRIOR[c] for c in EMOTIONS6])
    np.testing.assert_array_equal(np.bincount(labels, minlength=6), counts)
    fractions = {"train": 0.6, "validation": 0.2, "test": 0.2}
    for s, f in fractions.items():
        assert abs(np.sum(split == s) - f * size) <= 1
        for c in range(6):
            n = np.sum(labels == c)
            assert abs(np.sum((split == s) & (labels == c)) - f * n) <= 1.0
        idx = np.flatnonzero(split == s)
        shares = [syn.PROCESS["kind_shares"][k] for k in syn.KINDS]
        expected = syn.largest_remainder(len(idx), shares)
        got = [sum(kinds[i] == k for i in idx) for k in syn.KINDS]
        assert got == expected.tolist()
        balanced = labels[plan["balanced"] == s]
        assert np.all(split[plan["balanced"] == s] == s)
        per_class = np.bincount(balanced, minlength=6)
        assert per_class.min() == per_class.max() == min(
            np.sum((split == s) & (labels == c)) for c in range(6))
    for p in plan["plans"]:
        assert (p.video_cue == p.label) == (p.kind != "audio_only")
        assert (p.audio_cue == p.label) == (p.kind != "video_only")
        assert p.has_audio or (p.kind == "video_only" and p.audio_cue is None)
    assert sum(not p.has_audio for p in plan["plans"]) == round(0.05 * size)
    assert set(plan["platform"]) == set(syn.PLATFORM_PRIOR)


def test_fusion_ceiling_beats_either_branch():
    plan = syn.plan_corpus(600, 0)
    acc = {k: float(np.mean(v == plan["labels"]))
           for k, v in syn.oracle_predictions(plan["plans"]).items()}
    assert acc["fused"] > max(acc["video"], acc["audio"]) + 0.08
    assert 0.65 < acc["video"] < 0.85 and 0.65 < acc["audio"] < 0.85
    assert acc["majority"] < 0.35


# ----------------------------------------------------------------------------- the files
def test_layout_and_decoding(corpus):
    root, summary, decoded = corpus
    header, rows = read_csv(root / syn.CSV_FILE)
    assert header == list(syn.CSV_COLUMNS) and len(rows) == SIZE
    truth = {r["id"]: r for r in syn.read_truth(root)}
    assert sorted(decoded) == sorted(r["id"] for r in rows) == sorted(truth)
    assert {p.name for p in root.iterdir()} == {syn.CSV_FILE, syn.VIDEO_DIR, syn.TRUTH_FILE,
                                                syn.CORPUS_FILE, syn.README_FILE}
    for r in rows:
        assert r["category"] in EMOTIONS6 and r["platform"] in syn.PLATFORM_PRIOR
        assert r["split"] in syn.SPLITS and r["balanced_split"] in ("", r["split"])
        assert truth[r["id"]]["category"] == r["category"]
        clip = decoded[r["id"]]
        n = clip.num_frames
        assert (clip.height, clip.width, clip.fps) == (64, 64, FPS)
        assert sc.RENDER["min_frames"] <= n <= sc.RENDER["max_frames"]
        assert clip.duration == pytest.approx(n / FPS, abs=0.05)
        assert clip.has_audio == (truth[r["id"]]["has_audio"] == "1")
        expected = sc.num_audio_samples(n) if clip.has_audio else 0
        assert abs(len(clip.audio) - expected) <= 0.05 * SR
        info = media.probe(root / syn.VIDEO_DIR / f"{r['id']}.mp4")
        assert info.has_audio == clip.has_audio
    assert summary["num_clips"] == SIZE and summary["generator_version"] == syn.GENERATOR_VERSION
    assert summary["no_audio_stream"] == sum(t["has_audio"] == "0" for t in truth.values()) >= 1
    assert summary["parameters"]["num_clips"] == SIZE and summary["parameters"]["seed"] == 0
    counts = summary["class_counts"]
    for s in syn.SPLITS:
        assert sum(counts[s].values()) == sum(r["split"] == s for r in rows)


def test_kind_mix(corpus):
    root, summary, _ = corpus
    truth = syn.read_truth(root)
    _, rows = read_csv(root / syn.CSV_FILE)
    split = {r["id"]: r["split"] for r in rows}
    shares = [syn.PROCESS["kind_shares"][k] for k in syn.KINDS]
    for s in syn.SPLITS:
        mine = [t["kind"] for t in truth if split[t["id"]] == s]
        expected = syn.largest_remainder(len(mine), shares).tolist()
        assert [mine.count(k) for k in syn.KINDS] == expected
        assert summary["kind_counts"][s] == dict(zip(syn.KINDS, expected))
    for t in truth:
        assert (t["video_cue"] == t["category"]) == (t["kind"] != "audio_only")
        assert (t["audio_cue"] == t["category"]) == (t["kind"] != "video_only")
        allowed = {*EMOTIONS6, syn.AGNOSTIC} | ({syn.ABSENT} if t["has_audio"] == "0" else set())
        assert t["video_cue"] in allowed - {syn.ABSENT} and t["audio_cue"] in allowed


def test_cues_read_back_from_the_files(corpus):
    """The hue of the saturated pixels names the class the video shows (nothing for the grey
    agnostic disc); the strongest tone names the class the audio shows."""
    root, _, decoded = corpus
    seen = set()
    for t in syn.read_truth(root):
        clip = decoded[t["id"]]
        assert visual_cue(np.stack(clip.frames)) == cue_index(t["video_cue"]), t
        if clip.has_audio:
            assert audio_cue(clip.audio) == cue_index(t["audio_cue"]), t
        seen.add(t["category"])
    assert seen == set(EMOTIONS6)


def test_deterministic_and_progress(corpus, tmp_path, capsys):
    root, summary, _ = corpus
    again = syn.synthesize(str(tmp_path / "again"), size=SIZE, seed=0)
    first, second = tree_hashes(root), tree_hashes(tmp_path / "again")
    for name in (syn.CSV_FILE, syn.TRUTH_FILE, syn.CORPUS_FILE, syn.README_FILE):
        assert first[name] == second[name], name
    # The encoder is deterministic here too (libx264 keeps its output fixed by default).
    assert first == second
    assert {k: v for k, v in again.items() if k != "root"} == {
        k: v for k, v in summary.items() if k != "root"}
    capsys.readouterr()
    syn.synthesize(str(tmp_path / "other"), size=12, seed=1, progress=True)
    assert "clip/s" in capsys.readouterr().err
    assert (tmp_path / "other" / syn.CSV_FILE).read_bytes() != (root / syn.CSV_FILE).read_bytes()


def test_reuse_and_refusal(corpus, tmp_path):
    root, summary, _ = corpus
    before = tree_hashes(root)
    assert syn.synthesize(str(root), size=SIZE, seed=0) == summary  # same parameters: kept
    assert tree_hashes(root) == before
    for kwargs in ({"size": SIZE + 1, "seed": 0}, {"size": SIZE, "seed": 1}):
        with pytest.raises(FileExistsError):
            syn.synthesize(str(root), **kwargs)
    assert tree_hashes(root) == before
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("precious")
    with pytest.raises(FileExistsError):
        syn.synthesize(str(mine), size=SIZE)
    assert [p.name for p in mine.iterdir()] == ["notes.txt"]
    with pytest.raises(ValueError):
        syn.synthesize(str(tmp_path / "tiny"), size=syn.MIN_SIZE - 1)
    assert not (tmp_path / "tiny").exists()
    assert not list(tmp_path.glob(".*partial")) and not list(root.parent.glob(".*partial"))


def test_read_by_the_release_reader(corpus):
    """The eMotions release reader takes the corpus: every clip in the full variant, the
    balanced variant class-balanced per split; no test_split column (that variant refused)."""
    from jaxaffect.errors import FormatError
    from jaxaffect.families.avcpnet import release_format as rf

    root, summary, _ = corpus
    full = rf.read_emotions(root, "full")
    assert {s: len(v) for s, v in full.items()} == {
        s: sum(summary["class_counts"][s].values()) for s in syn.SPLITS}
    truth = {t["id"]: t["category"] for t in syn.read_truth(root)}
    for clips in full.values():
        for c in clips:
            assert EMOTIONS6[c.label] == truth[c.video_id]
            assert c.path == root / syn.VIDEO_DIR / f"{c.video_id}.mp4"
    balanced = rf.read_emotions(root, "balanced")
    for s, clips in balanced.items():
        per_class = np.bincount([c.label for c in clips], minlength=6)
        assert per_class.min() == per_class.max() == summary["balanced_counts"][s]["fear"]
    with pytest.raises(FormatError):
        rf.read_emotions(root, "test")
