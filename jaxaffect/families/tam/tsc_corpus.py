"""Per-video logic of the Bilibili time-sync-comment pretraining corpus (TAM Sec. 4.2, 5.1-5.2).

Pure numpy/Python (no tensorflow); the TFDS builder `tfds_builders/bilibili_tsc` calls it.
One video gives one example per K-means cluster of its comment times (K = duration / 30 s):

1. the comments of `danmaku.preprocess` (emotional word, 3-15 words, no special characters or
   digits, no duplicate within 1 s[, balancing]) are cut into words (`comment_words`);
2. comments after the end of the features (time > S * segment_seconds) are dropped;
3. `danmaku.segment_comments` clusters the times; cluster k covers [bounds[k], bounds[k+1]]
   (0, midpoints between the sorted centers, duration), which partitions the video;
4. the example's span is that interval widened to whole feature segments (`example_spans`);
5. every comment becomes a row `[#S] w1 .. wn [PAD]..` of width 16 (`encode_comments`).

The vocabulary is built over all kept comments of a build (`build_vocab`) and stored in the
build's metadata.json (`load_vocab` reads it back with plain json).
"""

from __future__ import annotations

import json
import os
import string
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from etils import epath

from jaxaffect.data.release_files import read_utf8
from jaxaffect.errors import FormatError
from jaxaffect.families.tam import danmaku
from jaxaffect.families.tam.emotion_lexicon import EmotionLexicon, WordListLexicon

SPECIAL_TOKENS: tuple[str, ...] = ("[PAD]", "[#S]", "[#M]", "[UNK]")
PAD_ID, START_ID, MASK_ID, UNK_ID = 0, 1, 2, 3
MAX_WORDS = 15  # Sec. 5.2: comments of more than 15 words are dropped
TOKEN_WIDTH = MAX_WORDS + 1  # [#S] + at most 15 words
SECONDS_PER_EXAMPLE = 30.0  # Sec. 5.1: K = video duration / 30
LEXICONS: tuple[str, ...] = ("dutir", "nrc", "custom")

_EDGE_PUNCT = string.punctuation + "“”‘’…，。！？；：、（）《》—·"


# ---------------------------------------------------------------------------------- lexicons


def custom_tokenize(text: str) -> list[str]:
    """The `custom` lexicon's tokenizer: lower-case, split on whitespace, strip punctuation at
    both ends of a token (so "Happy!" is the word "happy"); empty tokens are dropped."""
    out = []
    for tok in text.lower().split():
        tok = tok.strip(_EDGE_PUNCT)
        if tok:
            out.append(tok)
    return out


def parse_lexicon_tsv(text: str, file: str) -> dict[str, frozenset[str]]:
    """`word<TAB>category` lines (blank lines and lines starting with '#' are skipped) ->
    {lower-cased word: categories}; a word may appear on several lines. Errors name file:line."""
    cats: dict[str, set[str]] = {}
    # Split on "\n" only: str.splitlines also splits on \v, \f, U+2028, ..., which would make
    # the line numbers of the messages disagree with the file's.
    for n, line in enumerate(text.split("\n"), start=1):
        line = line.removesuffix("\r")
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        parts = line.split("\t")
        if len(parts) != 2 or not parts[0].strip() or not parts[1].strip():
            raise FormatError(f"{file}:{n}: expected 'word<TAB>category', got {line!r}")
        word = parts[0].strip().lower()
        if len(custom_tokenize(word)) != 1 or custom_tokenize(word)[0] != word:
            raise FormatError(
                f"{file}:{n}: lexicon word {parts[0]!r} is not one whitespace token without "
                "edge punctuation, so no comment token could match it")
        cats.setdefault(word, set()).add(parts[1].strip())
    if not cats:
        raise FormatError(f"{file}: lexicon has no entries")
    return {w: frozenset(c) for w, c in cats.items()}


def read_lexicon_tsv(path: str | os.PathLike) -> dict[str, frozenset[str]]:
    """`parse_lexicon_tsv` of a file; bytes that are not UTF-8 give one error with file:line."""
    return parse_lexicon_tsv(read_utf8(path), str(path))


def custom_lexicon(entries: Mapping[str, Iterable[str]]) -> WordListLexicon:
    """The `custom` config's lexicon: `entries` word -> categories, `custom_tokenize`."""
    lex = WordListLexicon({w.lower(): c for w, c in entries.items()}, tokenizer=custom_tokenize)
    lex.name = "custom"
    return lex


def word_normalizer(lexicon_name: str) -> Callable[[str], str]:
    """How a token is written in the vocabulary. DUTIR (jieba tokens): unchanged. NRC (plain
    whitespace tokens): lower-cased with edge punctuation stripped, the form the lexicon looks
    up, so "Happy," and "happy" are one word. custom: already normalised by its tokenizer."""
    if lexicon_name == "nrc":
        return lambda tok: tok.strip(_EDGE_PUNCT).lower() or tok
    if lexicon_name in ("dutir", "custom"):
        return lambda tok: tok
    raise ValueError(f"unknown lexicon {lexicon_name!r}; expected one of {LEXICONS}")


# --------------------------------------------------------------------------- comments, words


def is_word(token: str) -> bool:
    """Whether a token counts as a word (the rule of `danmaku.count_words`: a letter or digit)."""
    return danmaku.count_words([token]) == 1


def comment_words(text: str, lexicon: EmotionLexicon,
                  normalize: Callable[[str], str]) -> tuple[list[str], list[bool]]:
    """The words of a comment (punctuation-only tokens dropped) and whether each is a lexicon
    word. Choice: punctuation is not encoded, so the rows hold exactly the words counted by the
    3-15 word filter and always fit the 16 columns."""
    words, emotional = [], []
    for tok in lexicon.tokenize(text):
        if is_word(tok):
            words.append(normalize(tok))
            emotional.append(bool(lexicon.categories(tok)))
    return words, emotional


@dataclass(frozen=True)
class VideoComments:
    """The kept comments of one video in time order (what the examples are made of)."""

    video_id: str
    times: np.ndarray  # (N,) float64 seconds into the video, ascending
    words: tuple[tuple[str, ...], ...]
    emotional: tuple[tuple[bool, ...], ...]

    def __len__(self) -> int:
        return len(self.words)


def video_comments(video_id: str, kept: Sequence[danmaku.Comment], lexicon: EmotionLexicon,
                   normalize: Callable[[str], str], duration: float) -> tuple[VideoComments, int]:
    """Words of the filtered comments `kept` (`danmaku.preprocess` output) with time <= duration.

    Returns (comments, number dropped because they lie after the end of the features). Choice:
    such comments (e.g. a video whose features stop early) have no segment to point at.
    """
    times, words, emotional = [], [], []
    dropped = 0
    for c in sorted(kept, key=lambda c: (c.time, c.line)):
        if c.time > duration:
            dropped += 1
            continue
        w, e = comment_words(c.text, lexicon, normalize)
        if len(w) > MAX_WORDS:  # cannot happen after the length stage; kept as a guard
            raise ValueError(f"{video_id}: comment at line {c.line} has {len(w)} words")
        times.append(c.time)
        words.append(tuple(w))
        emotional.append(tuple(e))
    return VideoComments(video_id, np.asarray(times, np.float64), tuple(words),
                         tuple(emotional)), dropped


# ---------------------------------------------------------------------------------- segments


def feature_segment_index(times: Sequence[float] | np.ndarray, segment_seconds: float,
                          num_segments: int) -> np.ndarray:
    """Feature segment j of each time: j * segment_seconds <= t < (j + 1) * segment_seconds,
    with t = duration (the end of the last segment) in the last segment. int64 (N,).

    The floor is corrected against the products j * segment_seconds, so the index agrees with
    the span boundaries computed from it (no off-by-one from rounding in t / segment_seconds).
    """
    t = np.asarray(times, np.float64)
    j = np.floor(t / segment_seconds).astype(np.int64)
    j = np.where(j * segment_seconds > t, j - 1, j)
    j = np.where((j + 1) * segment_seconds <= t, j + 1, j)
    return np.clip(j, 0, num_segments - 1)


def example_spans(bounds: np.ndarray, comment_segments: np.ndarray, labels: np.ndarray,
                  segment_seconds: float, num_segments: int) -> np.ndarray:
    """Feature-segment ranges [a_k, b_k) of the K clusters, (K, 2) int64.

    Choice: cluster k covers the time interval [bounds[k], bounds[k+1]] of the K-means
    segmentation (the paper splits the video at the clusters), widened to the whole feature
    segments it touches: a_k = segment of bounds[k], b_k = end of the segment holding
    bounds[k+1] (exclusive; not extended when bounds[k+1] is exactly a segment edge). Thus the
    examples cover the whole video and neighbours share at most one feature segment. The span
    also always contains the segments of the cluster's own comments.
    """
    k = len(bounds) - 1
    starts = feature_segment_index(bounds[:-1], segment_seconds, num_segments)
    last = feature_segment_index(bounds[1:], segment_seconds, num_segments)
    on_edge = last * segment_seconds >= bounds[1:]  # bound exactly at the start of `last`
    ends = np.where(on_edge & (last > starts), last, last + 1)
    spans = np.stack([starts, ends], axis=1)
    for c in range(k):
        mine = comment_segments[labels == c]
        if mine.size:
            spans[c, 0] = min(spans[c, 0], mine.min())
            spans[c, 1] = max(spans[c, 1], mine.max() + 1)
    return spans


# ---------------------------------------------------------------------------------- vocabulary


def build_vocab(word_lists: Iterable[Sequence[str]], min_count: int = 1) -> list[str]:
    """SPECIAL_TOKENS, then the words seen at least `min_count` times by descending count,
    ties by the word (code point order). Words spelled like a special token are not added."""
    counts = Counter(w for words in word_lists for w in words)
    for s in SPECIAL_TOKENS:
        counts.pop(s, None)
    words = sorted((w for w, n in counts.items() if n >= min_count),
                   key=lambda w: (-counts[w], w))
    return list(SPECIAL_TOKENS) + words


def vocab_index(vocab: Sequence[str]) -> dict[str, int]:
    if tuple(vocab[: len(SPECIAL_TOKENS)]) != SPECIAL_TOKENS:
        raise ValueError(f"vocabulary must start with {SPECIAL_TOKENS}")
    return {w: i for i, w in enumerate(vocab)}


def encode_comments(words: Sequence[Sequence[str]], emotional: Sequence[Sequence[bool]],
                    index: Mapping[str, int], width: int = TOKEN_WIDTH
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Rows `[#S] w1 .. wn` padded with [PAD]=0 -> (tokens int32 [N, width], emotional bool
    [N, width]); words not in `index` become [UNK] (their emotional flag is kept)."""
    n = len(words)
    tokens = np.full((n, width), PAD_ID, np.int32)
    emo = np.zeros((n, width), bool)
    for i, (ws, es) in enumerate(zip(words, emotional)):
        if len(ws) + 1 > width:
            raise ValueError(f"comment {i} has {len(ws)} words; at most {width - 1} fit")
        tokens[i, 0] = START_ID
        tokens[i, 1 : len(ws) + 1] = [index.get(w, UNK_ID) for w in ws]
        emo[i, 1 : len(ws) + 1] = es
    return tokens, emo


# ---------------------------------------------------------------------------------- examples


def video_examples(vc: VideoComments, features: Mapping[str, np.ndarray],
                   masks: Mapping[str, np.ndarray], segment_seconds: float,
                   index: Mapping[str, int]) -> list[tuple[str, dict[str, Any]]]:
    """(key, example) per K-means cluster of one video, k in time order; key "<video_id>#<k>".

    `features[s]` is [S, d_s] and `masks[s]` [S] for the whole video; duration = S *
    segment_seconds gives K = round_half_up(duration / 30) (capped at the number of distinct
    comment times). `vc` must have at least one comment, all with time <= duration.
    """
    if len(vc) == 0:
        raise ValueError(f"{vc.video_id}: no comments")
    num_segments = int(next(iter(features.values())).shape[0])
    duration = num_segments * segment_seconds
    if vc.times.max() > duration:
        raise ValueError(f"{vc.video_id}: comment after the end of the features ({duration} s)")
    seg = danmaku.segment_comments(vc.times, duration=duration,
                                   seconds_per_segment=SECONDS_PER_EXAMPLE)
    comment_seg = feature_segment_index(vc.times, segment_seconds, num_segments)
    spans = example_spans(seg.bounds, comment_seg, seg.labels, segment_seconds, num_segments)
    tokens, emo = encode_comments(vc.words, vc.emotional, index)
    out = []
    for k in range(seg.k):
        a, b = (int(x) for x in spans[k])
        rows = np.flatnonzero(seg.labels == k)  # ascending: comments stay in time order
        key = f"{vc.video_id}#{k}"
        out.append((key, {
            "example_id": key,
            "video_id": vc.video_id,
            "start_seconds": np.float32(a * segment_seconds),
            "end_seconds": np.float32(b * segment_seconds),
            "num_segments": np.int32(b - a),
            "streams": {s: np.asarray(x[a:b], np.float32) for s, x in features.items()},
            "masks": {s: np.asarray(masks[s][a:b], bool) for s in features},
            "num_comments": np.int32(rows.size),
            "tokens": tokens[rows],
            "emotional": emo[rows],
            "comment_segment": (comment_seg[rows] - a).astype(np.int32),
            "comment_time": vc.times[rows].astype(np.float32),
        }))
    return out


def load_vocab(builder_dir: str | epath.PathLike) -> list[str]:
    """The vocabulary of a prepared build, from `<builder_dir>/metadata.json` (plain json)."""
    path = epath.Path(builder_dir) / "metadata.json"
    if not path.exists():
        raise FileNotFoundError(f"{path}: not found (is {builder_dir} a prepared bilibili_tsc "
                                "build directory?)")
    vocab = json.loads(path.read_text()).get("vocab")
    if not isinstance(vocab, list) or tuple(vocab[: len(SPECIAL_TOKENS)]) != SPECIAL_TOKENS:
        raise ValueError(f"{path}: no 'vocab' list starting with {SPECIAL_TOKENS}")
    return [str(w) for w in vocab]
