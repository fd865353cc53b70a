"""Unit tests of the per-video logic of the Bilibili TSC corpus
(jaxaffect.families.tam.tsc_corpus)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from jaxaffect.errors import FormatError
from jaxaffect.families.tam import danmaku
from jaxaffect.families.tam import tsc_corpus as tsc
from jaxaffect.families.tam.emotion_lexicon import WordListLexicon


def _ref_index(t: float, seconds: float, steps: int) -> int:
    """Loop reference: the last segment j with j * seconds <= t, at most steps - 1."""
    j = 0
    while j < steps - 1 and (j + 1) * seconds <= t:
        j += 1
    return j


def _ref_end(bound: float, start: int, seconds: float, steps: int) -> int:
    """Loop reference: first segment edge at or after `bound`, past `start`, at most steps."""
    j = start + 1
    while j < steps and j * seconds < bound:
        j += 1
    return j


def _c(t: float, text: str, line: int) -> danmaku.Comment:
    return danmaku.Comment(time=t, mode=1, pool=0, sender="s", row_id=line, text=text, line=line)


# -------------------------------------------------------------------------------- segments


@pytest.mark.parametrize("seconds, steps", [(0.64, 400), (2.0, 50), (16 / 30, 97), (1.0, 1)])
def test_feature_segment_index_matches_loop(seconds, steps):
    rng = np.random.default_rng(1)
    duration = seconds * steps
    edges = np.arange(steps + 1) * seconds  # exact multiples, incl. the duration itself
    times = np.concatenate([rng.uniform(0, duration, 300), edges, [0.0, duration],
                            np.nextafter(edges, -np.inf)[1:]])
    got = tsc.feature_segment_index(times, seconds, steps)
    want = [_ref_index(float(t), seconds, steps) for t in times]
    np.testing.assert_array_equal(got, want)
    assert got.dtype == np.int64


def test_example_spans_match_loop_and_cover_the_video():
    rng = np.random.default_rng(7)
    for trial in range(20):
        seconds = [0.64, 2.0, 0.5, 3.3][trial % 4]
        steps = int(rng.integers(20, 600))
        duration = steps * seconds
        times = np.sort(rng.uniform(0, duration, int(rng.integers(5, 80))))
        seg = danmaku.segment_comments(times, duration=duration)
        cseg = tsc.feature_segment_index(times, seconds, steps)
        spans = tsc.example_spans(seg.bounds, cseg, seg.labels, seconds, steps)
        assert spans.shape == (seg.k, 2)
        assert spans[0, 0] == 0 and spans[-1, 1] == steps
        for k in range(seg.k):
            a = _ref_index(seg.bounds[k], seconds, steps)
            b = _ref_end(seg.bounds[k + 1], a, seconds, steps)
            mine = cseg[seg.labels == k]
            assert spans[k, 0] == min(a, mine.min()) and spans[k, 1] == max(b, mine.max() + 1)
            assert np.all((mine >= spans[k, 0]) & (mine < spans[k, 1]))
        # Consecutive, no gap, at most one shared segment.
        assert np.all(spans[1:, 0] <= spans[:-1, 1])
        assert np.all(spans[:-1, 1] - spans[1:, 0] <= 1)
        assert np.all(spans[1:, 0] > spans[:-1, 0])


def test_example_spans_bound_on_a_segment_edge():
    # Two clusters around 10 s and 50 s -> bound at exactly 30 s = segment edge 15 of 2 s.
    times = np.array([9.0, 10.0, 11.0, 49.0, 50.0, 51.0])
    seg = danmaku.segment_comments(times, duration=60.0)
    assert seg.k == 2 and seg.bounds[1] == 30.0
    cseg = tsc.feature_segment_index(times, 2.0, 30)
    spans = tsc.example_spans(seg.bounds, cseg, seg.labels, 2.0, 30)
    np.testing.assert_array_equal(spans, [[0, 15], [15, 30]])  # no shared segment


# ------------------------------------------------------------------------------ vocabulary


def test_build_vocab_order_and_min_count():
    lists = [["b", "a", "c"], ["a", "c", "d"], ["c", "[#M]", "e"], ["b"]]
    vocab = tsc.build_vocab(lists)
    # counts: c 3, a 2, b 2, d 1, e 1; ties by the word; a special spelling is never a word
    assert vocab == ["[PAD]", "[#S]", "[#M]", "[UNK]", "c", "a", "b", "d", "e"]
    assert tsc.build_vocab(lists, min_count=2) == ["[PAD]", "[#S]", "[#M]", "[UNK]", "c", "a", "b"]
    assert tsc.build_vocab([]) == list(tsc.SPECIAL_TOKENS)
    assert [tsc.SPECIAL_TOKENS[i] for i in (tsc.PAD_ID, tsc.START_ID, tsc.MASK_ID, tsc.UNK_ID)] \
        == ["[PAD]", "[#S]", "[#M]", "[UNK]"]
    with pytest.raises(ValueError):
        tsc.vocab_index(["a", "[PAD]"])


def test_encode_comments():
    index = tsc.vocab_index(tsc.build_vocab([["x", "y", "y"]]))  # y=4, x=5
    tokens, emo = tsc.encode_comments(
        [["y", "x", "zz"], ["x"] * 15], [[True, False, True], [False] * 14 + [True]], index)
    assert tokens.shape == emo.shape == (2, 16) and tokens.dtype == np.int32
    assert tokens[0].tolist() == [1, 4, 5, 3] + [0] * 12  # unknown "zz" -> [UNK]
    assert emo[0].tolist() == [False, True, False, True] + [False] * 12
    assert tokens[1].tolist() == [1] + [5] * 15 and emo[1].tolist() == [False] * 15 + [True]
    with pytest.raises(ValueError, match="16 words"):
        tsc.encode_comments([["x"] * 16], [[False] * 16], index)


def test_load_vocab(tmp_path):
    vocab = list(tsc.SPECIAL_TOKENS) + ["好", "哈哈"]
    (tmp_path / "metadata.json").write_text(json.dumps({"vocab": vocab, "x": 1}))
    assert tsc.load_vocab(tmp_path) == vocab
    with pytest.raises(FileNotFoundError):
        tsc.load_vocab(tmp_path / "nope")
    (tmp_path / "metadata.json").write_text(json.dumps({"vocab": ["a"]}))
    with pytest.raises(ValueError, match="vocab"):
        tsc.load_vocab(tmp_path)


# ------------------------------------------------------------------------ lexicons, words


def test_custom_lexicon_and_words():
    entries = tsc.parse_lexicon_tsv("# c\nHappy\tjoy\n\nsad\tsadness\nhappy\tgood\n", "lex.tsv")
    assert entries == {"happy": {"joy", "good"}, "sad": {"sadness"}}
    lex = tsc.custom_lexicon(entries)
    assert tsc.custom_tokenize("Happy, HAPPY day!! ... ok") == ["happy", "happy", "day", "ok"]
    words, emo = tsc.comment_words("So Happy, sad day!", lex, tsc.word_normalizer("custom"))
    assert words == ["so", "happy", "sad", "day"] and emo == [False, True, True, False]
    for bad, where in (("happy joy\n", "lex.tsv:1"), ("ok\tjoy\nx\t\n", "lex.tsv:2"),
                       ("a b\tjoy\n", "lex.tsv:1"), ("# only\n", "no entries")):
        with pytest.raises(FormatError, match=where):
            tsc.parse_lexicon_tsv(bad, "lex.tsv")


@pytest.mark.parametrize("encoding", ["gbk", "latin-1"])
def test_lexicon_file_not_utf8_names_file_and_line(tmp_path, encoding):
    path = tmp_path / "lexicon.tsv"
    path.write_bytes("# words\nhappy\tjoy\ncafé\tjoy\n".encode(encoding))
    with pytest.raises(FormatError, match=r"lexicon\.tsv:3: not UTF-8") as e:
        tsc.read_lexicon_tsv(path)
    assert "\n" not in str(e.value)
    path.write_text("happy\tjoy\ncafé\tjoy\n", encoding="utf-8")
    assert tsc.read_lexicon_tsv(path) == {"happy": {"joy"}, "café": {"joy"}}


def test_lexicon_line_numbers_count_only_newlines():
    # \v, \f and U+2028 are line breaks to str.splitlines but not to editors: line 3 is bad.
    text = "happy\tjoy\vx\nsad\tsadness\u2028\r\nno tab here\n"
    with pytest.raises(FormatError, match=r"lex\.tsv:3: expected 'word<TAB>category'"):
        tsc.parse_lexicon_tsv(text, "lex.tsv")


def test_word_normalizers_and_punctuation():
    nrc = tsc.word_normalizer("nrc")
    assert [nrc(t) for t in ("Happy,", "“Wow”", "don't", "!!")] == ["happy", "wow", "don't", "!!"]
    assert tsc.word_normalizer("dutir")("厉害") == "厉害"
    with pytest.raises(ValueError):
        tsc.word_normalizer("klingon")
    lex = WordListLexicon({"好"}, tokenizer=list)  # character tokens
    words, emo = tsc.comment_words("好，看！", lex, tsc.word_normalizer("dutir"))
    assert words == ["好", "看"] and emo == [True, False]  # punctuation tokens are not words


def test_video_comments_drops_after_features():
    lex = tsc.custom_lexicon({"good": {"joy"}})
    kept = [_c(50.0, "good good day", 3), _c(1.0, "very good film", 2), _c(60.5, "good x y", 4)]
    vc, dropped = tsc.video_comments("v", kept, lex, tsc.word_normalizer("custom"), 60.0)
    assert dropped == 1 and len(vc) == 2
    np.testing.assert_array_equal(vc.times, [1.0, 50.0])  # time order
    assert vc.words == (("very", "good", "film"), ("good", "good", "day"))
    assert vc.emotional == ((False, True, False), (True, True, False))


# ----------------------------------------------------------------------------- examples


def test_video_examples_slices_and_assignments():
    rng = np.random.default_rng(3)
    seconds, steps = 0.64, 300  # 192 s -> K = 6
    duration = seconds * steps
    times = np.sort(np.concatenate([rng.uniform(0, duration, 60), [0.0, duration]]))
    words = tuple((f"w{i % 7}", "x", "y") for i in range(len(times)))
    emo = tuple((True, False, False) for _ in times)
    vc = tsc.VideoComments("vid", times, words, emo)
    dims = {"image": 3, "motion": 2, "audio": 1}
    # Row j of every stream holds j: the slice of an example is readable from its values.
    feats = {s: np.tile(np.arange(steps, dtype=np.float32)[:, None], (1, d))
             for s, d in dims.items()}
    masks = {s: np.arange(steps) % 5 != 0 for s in dims}
    index = tsc.vocab_index(tsc.build_vocab(words))
    out = tsc.video_examples(vc, feats, masks, seconds, index)
    seg = danmaku.segment_comments(times, duration=duration)
    assert len(out) == seg.k == math.floor(duration / 30 + 0.5) == 6
    assert [k for k, _ in out] == [f"vid#{k}" for k in range(6)]
    seen = []
    for k, (key, ex) in enumerate(out):
        a = round(float(ex["start_seconds"]) / seconds)
        b = round(float(ex["end_seconds"]) / seconds)
        assert ex["example_id"] == key and ex["video_id"] == "vid"
        assert ex["num_segments"] == b - a == ex["streams"]["image"].shape[0]
        for s, d in dims.items():
            np.testing.assert_array_equal(ex["streams"][s][:, 0], np.arange(a, b))
            assert ex["streams"][s].shape == (b - a, d)
            np.testing.assert_array_equal(ex["masks"][s], masks[s][a:b])
        rows = np.flatnonzero(seg.labels == k)
        np.testing.assert_array_equal(ex["comment_time"], times[rows].astype(np.float32))
        want = [_ref_index(float(t), seconds, steps) - a for t in times[rows]]
        np.testing.assert_array_equal(ex["comment_segment"], want)
        assert ex["num_comments"] == len(rows) == ex["tokens"].shape[0]
        assert np.all(ex["tokens"][:, 0] == tsc.START_ID)
        np.testing.assert_array_equal(ex["tokens"][:, 1],
                                      [index[words[i][0]] for i in rows])
        assert ex["emotional"][:, 1].all() and not ex["emotional"][:, 2:].any()
        assert ex["start_seconds"] <= ex["comment_time"].min()
        assert ex["comment_time"].max() <= ex["end_seconds"]
        seen += rows.tolist()
    assert sorted(seen) == list(range(len(times)))  # every comment in exactly one example
    assert out[0][1]["start_seconds"] == 0 and out[-1][1]["num_segments"] > 0
    assert round(float(out[-1][1]["end_seconds"]) / seconds) == steps

    late = tsc.VideoComments("v", np.array([duration + 1.0]), (("a", "b", "c"),),
                             ((True, False, False),))
    with pytest.raises(ValueError, match="after the end"):
        tsc.video_examples(late, feats, masks, seconds, index)
