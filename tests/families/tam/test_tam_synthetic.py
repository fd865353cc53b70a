"""Tests of the synthetic TAM corpus (time-sync-comment videos + labelled videos).

Besides format checks, two probes document the design: a linear classifier on mean-pooled
features beats chance clearly with many labels and is much weaker with few, and a per-segment
classifier trained only on comment words (no labels) transfers to the labelled videos.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from jaxaffect.families.tam import synthetic as ts
from jaxaffect.families.tam import synthetic_process as tp
from jaxaffect.families.tam.annotations import read_class_index, read_split_list
from jaxaffect.families.tam.danmaku import num_segments, parse_danmaku, preprocess, segment_comments
from jaxaffect.families.tam.emotion_lexicon import WordListLexicon

K = len(tp.CLASS_NAMES)
DIMS = {"image": 7, "motion": 5, "audio": 3}  # distinct, so shape mix-ups show
FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"


def tree_hashes(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def corpus_lexicon(root: Path) -> WordListLexicon:
    """The corpus lexicon read from its lexicon.tsv (lower-cased whitespace tokens, as the
    bilibili_tsc `custom` config)."""
    words: dict[str, set[str]] = {}
    for line in (root / ts.TSC_DIR / "lexicon.tsv").read_text(encoding="utf-8").splitlines():
        word, cat = line.split("\t")
        words.setdefault(word, set()).add(cat)
    return WordListLexicon(words, tokenizer=lambda s: s.lower().split())


def state_at(spans, segment: int) -> int:
    """Loop reference: the emotion of the span holding `segment`."""
    for start, end, emo in spans:
        if start <= segment < end:
            return emo
    raise AssertionError(f"segment {segment} outside the spans {spans}")


def logistic_probe(xtr: np.ndarray, ytr: np.ndarray, xte: np.ndarray, steps: int = 300,
                   lr: float = 0.05, l2: float = 1e-3) -> np.ndarray:
    """Multinomial logistic regression (standardised inputs, full-batch Adam): test probs."""
    mu, sd = xtr.mean(0), xtr.std(0) + 1e-6
    xtr, xte = np.c_[(xtr - mu) / sd, np.ones(len(xtr))], np.c_[(xte - mu) / sd, np.ones(len(xte))]
    onehot = np.eye(K)[ytr]
    w = np.zeros((xtr.shape[1], K))
    m = v = np.zeros_like(w)
    for i in range(1, steps + 1):
        z = xtr @ w
        p = np.exp(z - z.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        g = xtr.T @ (p - onehot) / len(xtr) + l2 * w
        m, v = 0.9 * m + 0.1 * g, 0.999 * v + 0.001 * g * g
        w -= lr * (m / (1 - 0.9 ** i)) / (np.sqrt(v / (1 - 0.999 ** i)) + 1e-8)
    z = xte @ w
    p = np.exp(z - z.max(1, keepdims=True))
    return p / p.sum(1, keepdims=True)


def stacked(path: Path) -> np.ndarray:
    with np.load(path) as z:
        return np.concatenate([z[s] for s in ts.STREAMS], axis=1)


# ------------------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def small(tmp_path_factory):
    root = tmp_path_factory.mktemp("tam") / "corpus"
    summary = ts.write_tam_corpus(str(root), num_tsc_videos=10, num_labelled=32, seed=1,
                                  dims=DIMS)
    return root, summary, ts.read_hidden_states(str(root))


@pytest.fixture(scope="module")
def probe(tmp_path_factory):
    """Default dims; 480 labelled videos (40 train / 20 test per class), 100 TSC videos (with
    fewer, a segment classifier sees too few per-video nuisance draws to transfer well)."""
    root = tmp_path_factory.mktemp("tam_probe") / "corpus"
    ts.write_tam_corpus(str(root), num_tsc_videos=100, num_labelled=480, seed=0)
    return root, ts.read_hidden_states(str(root))


# ---------------------------------------------------------------------------------- layout
def test_summary_and_layout(small):
    root, summary, hidden = small
    assert summary["class_names"] == list(tp.CLASS_NAMES)
    assert summary["dims"] == DIMS
    assert summary["paths"]["tsc"] == str(root / "tsc")
    assert summary["paths"]["labelled"] == str(root / "labelled")
    assert summary["tsc"]["num_videos"] == 10 and summary["labelled"]["num_videos"] == 32
    assert sorted(p.name for p in root.iterdir()) == [
        "README.txt", "hidden_states.json", "labelled", "tsc"]
    assert sorted(p.name for p in (root / "tsc").iterdir()) == [
        "danmaku", "features", "lexicon.tsv"]
    assert "SYNTHETIC" in (root / "README.txt").read_text()
    assert len(list((root / "tsc" / "danmaku").glob("*.xml"))) == 10
    assert sum(len(v["comments"]) for v in hidden["tsc"].values()) == \
        summary["tsc"]["num_comments"]


def test_danmaku_parse_without_problems(small):
    root, _, hidden = small
    for vid, info in hidden["tsc"].items():
        res = parse_danmaku(root / "tsc" / "danmaku" / f"{vid}.xml")
        assert res.problems == []
        assert [(c.row_id, c.time) for c in res.comments] == \
            [(r[0], pytest.approx(r[1])) for r in info["comments"]]
        duration = info["num_segments"] * tp.PROCESS["segment_seconds"]
        assert all(0 <= c.time < duration for c in res.comments)
        assert all(c.mode in (1, 4, 5) and c.pool == 0 for c in res.comments)


def test_lexicon_file_matches_word_lists(small):
    root, _, _ = small
    lex = corpus_lexicon(root)
    assert len(lex) == sum(len(w) for w in tp.EMOTION_WORDS.values())
    for c, words in tp.EMOTION_WORDS.items():
        assert all(lex.categories(w) == {c} for w in words)
    fillers = {w for t in tp.OPENERS + tp.CLOSERS + tp.NEUTRAL_WORDS for w in t.split()}
    assert not fillers & set(lex._cats) and "and" not in lex._cats


def test_preprocess_keeps_most_and_drops_exactly_the_planted_kinds(small):
    root, _, hidden = small
    lex = corpus_lexicon(root)
    total = {"parsed": 0, "emotional": 0, "length": 0, "special": 0, "dedup": 0}
    kinds = dict.fromkeys(tp.KINDS, 0)
    for vid, info in hidden["tsc"].items():
        res = parse_danmaku(root / "tsc" / "danmaku" / f"{vid}.xml")
        _, counts = preprocess(res.comments, lex)
        for k in total:
            total[k] += counts[k]
        for r in info["comments"]:
            kinds[r[2]] += 1
    assert total["parsed"] - total["emotional"] == kinds["neutral"]
    assert total["emotional"] - total["length"] == kinds["short"]
    assert total["length"] - total["special"] == kinds["digits"]
    # Every planted duplicate goes; a chance repeat of an "ok" text within 1 s may go too.
    assert kinds["duplicate"] <= total["special"] - total["dedup"] <= kinds["duplicate"] + 3
    assert total["dedup"] >= 0.8 * total["parsed"]


def test_comment_words_follow_hidden_states(small):
    """Loop check: emotional words of kept comments against the state at their time."""
    root, _, hidden = small
    lex = corpus_lexicon(root)
    cat_id = {c: i for i, c in enumerate(tp.CATEGORIES)}
    seg = tp.PROCESS["segment_seconds"]
    match = words = 0
    for vid, info in hidden["tsc"].items():
        records = {r[0]: r for r in info["comments"]}
        kept, _ = preprocess(parse_danmaku(root / "tsc" / "danmaku" / f"{vid}.xml").comments,
                             lex)
        for c in kept:
            emos = [cat_id[next(iter(lex.categories(t)))] for t in lex.tokenize(c.text)
                    if lex.categories(t)]
            assert sorted(emos) == sorted(records[c.row_id][3])  # the sidecar agrees
            state = state_at(info["states"], int(c.time // seg))
            match += sum(e == state for e in emos)
            words += len(emos)
    p_off = tp.PROCESS["off_state_prob"]
    assert words > 500
    assert abs(match / words - (1 - p_off)) < 0.05  # chance would be 1/8


def test_kmeans_segments_all_have_comments(small):
    root, _, hidden = small
    lex = corpus_lexicon(root)
    for vid, info in hidden["tsc"].items():
        kept, _ = preprocess(parse_danmaku(root / "tsc" / "danmaku" / f"{vid}.xml").comments,
                             lex)
        duration = info["num_segments"] * tp.PROCESS["segment_seconds"]
        seg = segment_comments([c.time for c in kept], duration)
        assert seg.k == num_segments(duration) >= 2  # not capped by too few comments
        sizes = np.bincount(seg.labels, minlength=seg.k)
        assert sizes.min() >= 1 and sizes.mean() >= 5  # several comments per ~30 s


def test_tsc_features(small):
    root, _, hidden = small
    for vid, info in hidden["tsc"].items():
        with np.load(root / "tsc" / "features" / f"{vid}.npz", allow_pickle=False) as z:
            assert sorted(z.files) == ["audio", "image", "motion", "segment_seconds"]
            assert z["segment_seconds"].shape == () and \
                float(z["segment_seconds"]) == tp.PROCESS["segment_seconds"]
            for s, d in DIMS.items():
                assert z[s].shape == (info["num_segments"], d) and z[s].dtype == np.float32
                assert np.all(np.isfinite(z[s]))
        assert 60 <= info["num_segments"] * tp.PROCESS["segment_seconds"] <= 300


def test_labelled_lists_and_features(small):
    root, summary, hidden = small
    lab = root / "labelled"
    names = read_class_index(lab / "classInd.txt")
    assert tuple(names) == tp.CLASS_NAMES
    assert (lab / "classInd.txt").read_text().splitlines() == \
        (FIXTURES / "affect" / "ve8" / "classInd.txt").read_text().splitlines()  # the real file
    train = read_split_list(lab / "trainlist01.txt", names)
    test = read_split_list(lab / "testlist01.txt", names)
    assert len(train) + len(test) == 32
    assert not {v.video_id for v in train} & {v.video_id for v in test}
    assert all(len(line.split()) == 1 for line in (lab / "testlist01.txt").read_text().split("\n")
               if line)  # as VE-8: no label column in the test list
    for split, videos in (("train", train), ("test", test)):
        for v in videos:
            info = hidden["labelled"][v.video_id]
            assert info["split"] == split and info["label"] == v.label_id
            # The label is the dominant hidden state (loop reference).
            counts = [0] * K
            for start, end, emo in info["states"]:
                counts[emo] += end - start
            assert counts[v.label_id] > info["num_segments"] / 2
            with np.load(lab / "features" / f"{v.video_id}.npz") as z:
                assert sorted(z.files) == ["audio", "image", "motion"]
                for s, d in DIMS.items():
                    assert z[s].shape == (info["num_segments"], d) and z[s].dtype == np.float32
    for split in ("train", "test"):
        assert len(set(summary["labelled"]["class_counts"][split].values())) == 1  # balanced


def test_labelled_features_read_by_builder_reader(small):
    av = pytest.importorskip("tfds_builders.affect_video")
    root, _, hidden = small
    vid = sorted(hidden["labelled"])[0]
    features, masks = av.read_video(av.feature_path(root / "labelled", vid), expected_dims=DIMS)
    assert features["image"].shape[0] == hidden["labelled"][vid]["num_segments"]
    assert all(m.all() for m in masks.values())


def test_tsc_corpus_tokenizer_agrees(small):
    """The bilibili_tsc `custom` tokenizer sees the same emotional words as the lower-cased
    whitespace split used above (punctuation is never attached to an emotional word)."""
    tc = pytest.importorskip("jaxaffect.families.tam.tsc_corpus")
    if not hasattr(tc, "custom_tokenize"):
        pytest.skip("tsc_corpus has no custom_tokenize")
    root, _, hidden = small
    lex = corpus_lexicon(root)
    for vid in list(hidden["tsc"])[:3]:
        for c in parse_danmaku(root / "tsc" / "danmaku" / f"{vid}.xml").comments:
            ours = [t for t in lex.tokenize(c.text) if lex.categories(t)]
            theirs = [t for t in tc.custom_tokenize(c.text) if lex.categories(t)]
            assert ours == theirs


# ------------------------------------------------------------------------- the generator
def test_sample_states_properties():
    rng = np.random.default_rng(0)
    min_piece = 8
    for _ in range(300):
        n = int(rng.integers(16, 160))
        theme = int(rng.integers(K))
        spans = tp.sample_states(rng, n, theme, min_piece)
        assert spans[0][0] == 0 and spans[-1][1] == n
        assert all(a[1] == b[0] for a, b in zip(spans, spans[1:]))
        assert all(e > s for s, e, _ in spans)
        assert 2 <= len(spans) <= tp.PROCESS["max_pieces"]
        assert all(a[2] != b[2] for a, b in zip(spans, spans[1:]))  # states change
        states = tp.segment_states(spans)
        assert len(states) == n and tp.dominant_state(states) == theme
        assert np.sum(states == theme) > n / 2
        loop = [state_at(spans, j) for j in range(n)]
        assert states.tolist() == loop


def test_world_spreads_the_code_across_modalities():
    world = tp.make_world(0, dict(ts.DEFAULT_DIMS))
    pairs = []
    for s in ts.STREAMS:
        g = world.groups[s]
        assert np.bincount(g).tolist() == [2, 2, 2, 2]
        pairs += [tuple(np.flatnonzero(g == j)) for j in range(4)]
    assert len(set(pairs)) == 12  # no pair of emotions is confused by two modalities
    # Same draws, another state in the first piece: exactly the modalities whose grouping
    # separates the two emotions change there (at least two), and nothing changes after it.
    for other in range(1, K):
        a = tp.render_features(world, [(0, 20, 0), (20, 30, 1 if other != 1 else 2)],
                               np.random.default_rng(5))
        b = tp.render_features(world, [(0, 20, other), (20, 30, 1 if other != 1 else 2)],
                               np.random.default_rng(5))
        changed = [s for s in ts.STREAMS if not np.allclose(a[s][:20], b[s][:20])]
        assert changed == [s for s in ts.STREAMS if world.groups[s][0] != world.groups[s][other]]
        assert len(changed) >= 2
        assert all(np.array_equal(a[s][20:], b[s][20:]) for s in ts.STREAMS)


def test_make_comment_kinds():
    rng = np.random.default_rng(0)
    lex = WordListLexicon({w: {c} for c, ws in tp.EMOTION_WORDS.items() for w in ws},
                          tokenizer=lambda s: s.lower().split())
    for _ in range(200):
        text, emos = tp.make_comment(rng, 3, "ok")
        words = lex.tokenize(text)
        assert 3 <= len(words) <= 15 and len(emos) in (1, 2)
        assert sum(bool(lex.categories(w)) for w in words) == len(emos)
        assert all(ch.isalpha() or ch in " ,.!?'-" for ch in text)
        text, emos = tp.make_comment(rng, 3, "neutral")
        assert emos == [] and not any(lex.categories(w) for w in lex.tokenize(text))
        assert len(tp.make_comment(rng, 3, "short")[0].split()) == 2
        assert any(ch.isdigit() for ch in tp.make_comment(rng, 3, "digits")[0])


def test_write_npz_roundtrip(tmp_path):
    arrays = {"a": np.arange(6, dtype=np.float32).reshape(2, 3), "s": np.float32(2.0)}
    ts.write_npz(tmp_path / "x.npz", arrays)
    with np.load(tmp_path / "x.npz", allow_pickle=False) as z:
        assert np.array_equal(z["a"], arrays["a"]) and z["a"].dtype == np.float32
        assert z["s"].shape == () and float(z["s"]) == 2.0


# --------------------------------------------------------------------------- determinism
def test_deterministic_and_rerun(tmp_path, small):
    kwargs = {"num_tsc_videos": 3, "num_labelled": 16, "seed": 7, "dims": DIMS}
    a = ts.write_tam_corpus(str(tmp_path / "a"), **kwargs)
    b = ts.write_tam_corpus(str(tmp_path / "b"), **kwargs)
    assert tree_hashes(tmp_path / "a") == tree_hashes(tmp_path / "b")
    assert {k: v for k, v in a.items() if k not in ("root", "paths")} == \
        {k: v for k, v in b.items() if k not in ("root", "paths")}
    c = ts.write_tam_corpus(str(tmp_path / "c"), **{**kwargs, "seed": 8})
    assert c["tsc"] != a["tsc"] or tree_hashes(tmp_path / "c") != tree_hashes(tmp_path / "a")
    before = tree_hashes(tmp_path / "a")
    assert ts.write_tam_corpus(str(tmp_path / "a"), **kwargs) == a  # same params: kept
    assert tree_hashes(tmp_path / "a") == before
    with pytest.raises(FileExistsError):
        ts.write_tam_corpus(str(tmp_path / "a"), **{**kwargs, "seed": 9})
    with pytest.raises(ValueError):
        ts.write_tam_corpus(str(tmp_path / "d"), num_labelled=4)
    with pytest.raises(ValueError):
        ts.write_tam_corpus(str(tmp_path / "d"), dims={"text": 3})


# -------------------------------------------------------------------------------- probes
def test_probe_pooled_linear_many_vs_few_labels(probe):
    """The signal is there (many labels beat chance clearly), but few labels are weak."""
    root, hidden = probe
    ids = sorted(hidden["labelled"])
    x = np.stack([stacked(root / "labelled" / "features" / f"{i}.npz").mean(0) for i in ids])
    y = np.array([hidden["labelled"][i]["label"] for i in ids])
    train = np.array([hidden["labelled"][i]["split"] == "train" for i in ids])
    many = np.mean(logistic_probe(x[train], y[train], x[~train]).argmax(1) == y[~train])
    rng = np.random.default_rng(0)
    few = []
    for _ in range(5):
        sel = np.concatenate([rng.choice(np.flatnonzero(train & (y == c)), 2, replace=False)
                              for c in range(K)])
        few.append(np.mean(logistic_probe(x[sel], y[sel], x[~train]).argmax(1) == y[~train]))
    assert many > 0.45  # chance: 0.125 (seed 0: 0.63)
    assert np.mean(few) < many - 0.15  # seed 0: about 0.3


def test_probe_comment_supervision_transfers(probe):
    """A per-segment classifier trained only on comment words (no video labels) recovers
    labelled videos' classes from their segments: the comments carry the hidden states."""
    root, hidden = probe
    lex = corpus_lexicon(root)
    cat_id = {c: i for i, c in enumerate(tp.CATEGORIES)}
    seg = tp.PROCESS["segment_seconds"]
    xs, ys = [], []
    for vid in sorted(hidden["tsc"]):
        x = stacked(root / "tsc" / "features" / f"{vid}.npz")
        kept, _ = preprocess(parse_danmaku(root / "tsc" / "danmaku" / f"{vid}.xml").comments,
                             lex)
        votes = np.zeros((len(x), K))
        for c in kept:
            j = int(c.time // seg)
            for t in lex.tokenize(c.text):
                for cat in lex.categories(t):
                    votes[max(0, j - 3):j + 4, cat_id[cat]] += 1  # +-7 s around the comment
        has = votes.sum(1) > 0
        xs.append(x[has])
        ys.append(votes[has].argmax(1))
    xs, ys = np.concatenate(xs), np.concatenate(ys)
    test_ids = sorted(i for i, v in hidden["labelled"].items() if v["split"] == "test")
    videos = [stacked(root / "labelled" / "features" / f"{i}.npz") for i in test_ids]
    probs = logistic_probe(xs, ys, np.concatenate(videos))
    bounds = np.cumsum([0] + [len(v) for v in videos])
    pred = np.array([probs[a:b].mean(0).argmax() for a, b in zip(bounds[:-1], bounds[1:])])
    acc = np.mean(pred == np.array([hidden["labelled"][i]["label"] for i in test_ids]))
    assert acc > 0.55  # no video label was used; chance: 0.125 (seed 0: 0.71)


# ------------------------------------------------------------------- through the builders
@pytest.mark.slow
def test_builders_accept_the_corpus(tmp_path, small):
    """The labelled part builds with video_emotion8, the TSC part with bilibili_tsc `custom`;
    the recorded stage counts and example count agree with an independent count."""
    pytest.importorskip("tensorflow")
    tfds = pytest.importorskip("tensorflow_datasets")
    bb = pytest.importorskip("tfds_builders.bilibili_tsc.bilibili_tsc_dataset_builder")
    from jaxaffect.data.build import build_dataset

    root, summary, hidden = small
    built = tfds.builder_from_directory(
        build_dataset("video_emotion8", summary["paths"]["labelled"], str(tmp_path / "data")))
    counts = summary["labelled"]["class_counts"]
    assert {k: v.num_examples for k, v in built.info.splits.items()} == \
        {sp: sum(counts[sp].values()) for sp in ("train", "test")}
    assert built.info.metadata["stream_dims"] == DIMS

    builder = bb.Builder(config="custom", data_dir=str(tmp_path / "data"))
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(manual_dir=summary["paths"]["tsc"]))
    lex = corpus_lexicon(root)
    stages, examples = dict.fromkeys(("parsed", "emotional", "length", "special", "dedup"), 0), 0
    for vid, info in hidden["tsc"].items():
        kept, c = preprocess(parse_danmaku(root / "tsc" / "danmaku" / f"{vid}.xml").comments,
                             lex)
        stages = {k: stages[k] + c[k] for k in stages}
        duration = info["num_segments"] * tp.PROCESS["segment_seconds"]
        examples += segment_comments([x.time for x in kept], duration).k
    assert builder.info.metadata["stage_counts"] == stages
    assert builder.info.splits["train"].num_examples == examples
