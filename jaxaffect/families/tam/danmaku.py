"""Time-sync comment (Bilibili danmaku) parsing, filtering and segmentation (TAM Sec. 5.1-5.2).

File format: `<i>...<d p="t,mode,size,color,sent_unix,pool,sender_hash,row_id[,weight]">text</d>
...</i>`, UTF-8. Data errors never raise: they are returned as `Problem`s with file and line. A
row repeating the row id of an earlier row (e.g. the same `<d>` twice, as concatenated or
re-crawled files have) is dropped and reported in `ParseResult.repeats`.

Filtering follows the order of the paper (Sec. 5.2): (1) keep comments with an emotional word,
(2) keep 3-15 words, (3) drop comments with special characters or digits, (4) drop duplicates
within one second, then (5) optional sentiment balancing. See `preprocess`.
"""

from __future__ import annotations

import codecs
import math
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from xml.parsers import expat

import numpy as np

from jaxaffect.families.tam.emotion_lexicon import EmotionLexicon

MODES = range(1, 10)  # 1-3 scrolling, 4 bottom, 5 top, 6 reverse, 7 advanced, 8 code, 9 BAS
POOLS = range(0, 3)  # 0 normal, 1 subtitle, 2 special


@dataclass(frozen=True)
class Comment:
    """One danmaku: `time` in seconds into the video, `line` is the 1-based source line."""

    time: float
    mode: int
    pool: int
    sender: str
    row_id: int
    text: str
    line: int
    size: int = 25
    color: int = 0xFFFFFF
    sent_unix: int = 0
    weight: int | None = None


@dataclass(frozen=True)
class Problem:
    """A data error: `line` is 1-based, None when it concerns the whole file."""

    file: str
    line: int | None
    reason: str

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        return f"{where}: {self.reason}"


@dataclass(frozen=True)
class ParseResult:
    """`comments`: the rows read (document order, repeats dropped); `problems`: rows or files
    that could not be read; `repeats`: the dropped repeats of earlier rows (file:line each)."""

    comments: list[Comment]
    problems: list[Problem]
    repeats: list[Problem] = field(default_factory=list)


# ----------------------------------------------------------------------------------- parsing

_DECL = re.compile(rb"""^<\?xml[^>]*?encoding\s*=\s*["']([A-Za-z0-9._-]+)["']""")


def _decode(raw: bytes, file: str) -> tuple[str | None, Problem | None]:
    """Decodes with the BOM / declared encoding (UTF-8 when none). Bilibili serves UTF-8; other
    declared encodings that Python knows are accepted, since the declaration is explicit."""
    if raw.startswith(codecs.BOM_UTF8):
        enc, raw = "utf-8", raw[len(codecs.BOM_UTF8):]
    elif raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        enc = "utf-16"
    else:
        m = _DECL.match(raw)
        enc = m.group(1).decode("ascii") if m else "utf-8"
    try:
        codecs.lookup(enc)
    except LookupError:
        return None, Problem(file, 1, f"unknown encoding {enc!r} declared")
    try:
        return raw.decode(enc), None
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        byte = raw[e.start : e.start + 1].hex()
        return None, Problem(
            file, line, f"file is not valid {enc} (byte 0x{byte} at offset {e.start}); "
            "danmaku XML must be UTF-8 or declare its encoding"
        )


def _parse_p(p: str | None, text: str, line: int, file: str) -> Comment | Problem:
    if p is None:
        return Problem(file, line, "<d> without a 'p' attribute")
    fields = p.split(",")
    if len(fields) not in (8, 9):
        return Problem(file, line, f"'p' has {len(fields)} fields, expected 8 or 9: {p!r}")
    try:
        t = float(fields[0])
    except ValueError:
        return Problem(file, line, f"non-numeric time {fields[0]!r}")
    if not math.isfinite(t) or t < 0:
        return Problem(file, line, f"time {fields[0]!r} is negative or not finite")
    names = ("mode", "size", "color", "sent_unix", "pool")
    ints: dict[str, int] = {}
    for name, value in zip(names, fields[1:6]):
        try:
            ints[name] = int(value)
        except ValueError:
            return Problem(file, line, f"non-integer {name} {value!r}")
    if ints["mode"] not in MODES:
        return Problem(file, line, f"unknown mode {ints['mode']}")
    if ints["pool"] not in POOLS:
        return Problem(file, line, f"unknown pool {ints['pool']}")
    sender = fields[6].strip()
    if not sender:
        return Problem(file, line, "empty sender hash")
    try:
        row_id = int(fields[7])
        weight = int(fields[8]) if len(fields) == 9 else None
    except ValueError:
        return Problem(file, line, f"non-integer row id or weight in {p!r}")
    return Comment(
        time=t, mode=ints["mode"], pool=ints["pool"], sender=sender, row_id=row_id, text=text,
        line=line, size=ints["size"], color=ints["color"], sent_unix=ints["sent_unix"],
        weight=weight,
    )


def parse_danmaku(path: str | Path, *, keep_partial: bool = False) -> ParseResult:
    """Parses a danmaku XML file into comments and problems (never raises for data errors).

    A bad `<d>` element gives a Problem and is skipped. A file that cannot be read, decoded or
    parsed as XML gives a Problem and no comments; with `keep_partial=True` the comments closed
    before an XML syntax error are kept (e.g. for a truncated download).
    """
    file = str(path)
    try:
        raw = Path(path).read_bytes()
    except OSError as e:
        return ParseResult([], [Problem(file, None, f"cannot read file: {e.strerror or e}")])
    return parse_danmaku_bytes(raw, file, keep_partial=keep_partial)


def parse_danmaku_bytes(raw: bytes, file: str, *, keep_partial: bool = False) -> ParseResult:
    """`parse_danmaku` of bytes already read (e.g. through `etils.epath` from any filesystem);
    `file` names them in Problems."""
    text, problem = _decode(raw, file)
    if problem is not None:
        return ParseResult([], [problem])
    assert text is not None

    comments: list[Comment] = []
    problems: list[Problem] = []
    # The document was decoded above, so expat is told to read UTF-8 regardless of the
    # declaration; decoding keeps newlines, so expat's line numbers are the file's.
    parser = expat.ParserCreate(encoding="UTF-8")
    state: dict = {"depth": 0, "p": None, "line": 0, "buf": []}

    def start(name: str, attrs: dict[str, str]) -> None:
        if state["depth"]:
            state["depth"] += 1  # nested markup inside <d>: only its text is kept
        elif name == "d":
            state.update(depth=1, p=attrs.get("p"), line=parser.CurrentLineNumber, buf=[])

    def end(name: str) -> None:
        if not state["depth"]:
            return
        state["depth"] -= 1
        if state["depth"] == 0:
            item = _parse_p(state["p"], "".join(state["buf"]), state["line"], file)
            (comments if isinstance(item, Comment) else problems).append(item)

    def chars(data: str) -> None:
        if state["depth"]:
            state["buf"].append(data)

    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = chars
    try:
        parser.Parse(text.encode("utf-8"), True)
    except expat.ExpatError as e:
        reason = f"malformed XML: {expat.ErrorString(e.code)} (column {e.offset + 1})"
        problems.append(Problem(file, e.lineno, reason))
        if not keep_partial:
            comments = []
    comments, repeats = drop_repeated_rows(comments, file)
    return ParseResult(comments, problems, repeats)


def drop_repeated_rows(comments: Sequence[Comment], file: str
                       ) -> tuple[list[Comment], list[Problem]]:
    """Keeps the first row of every row id (the 8th field of `p`, unique per danmaku on
    Bilibili); a later row with the same id is dropped, whether it is an identical copy (same
    `p` and text) or not, and reported as a Problem naming its line and the first one's."""
    first: dict[int, Comment] = {}
    kept: list[Comment] = []
    repeats: list[Problem] = []
    for c in comments:
        prev = first.get(c.row_id)
        if prev is None:
            first[c.row_id] = c
            kept.append(c)
            continue
        same = _row_fields(c) == _row_fields(prev)
        what = "an identical copy of" if same else "another row with the row id of"
        repeats.append(Problem(file, c.line, f"repeated row id {c.row_id}: {what} line "
                                             f"{prev.line}; dropped"))
    return kept, repeats


def _row_fields(c: Comment) -> tuple:
    return (c.time, c.mode, c.size, c.color, c.sent_unix, c.pool, c.sender, c.row_id,
            c.weight, c.text)


# --------------------------------------------------------------------------------- filtering

# Characters allowed by the "no special characters or digits" stage (Sec. 5.2, third step):
#   * letters: Unicode categories Lu, Ll, Lt, Lo (Chinese characters, kana, Latin, ...). Modifier
#     letters (Lm) are excluded: in comments they appear in kaomoji;
#   * whitespace (str.isspace);
#   * ordinary sentence punctuation listed in ALLOWED_PUNCTUATION (ASCII and full-width forms).
# Everything else is "special": digits and all other numbers (categories N*, incl. full-width and
# circled digits), symbols (S*: emoji, hearts, math, currency, ~), other punctuation (brackets
# used in kaomoji, bullets, box drawing), combining marks (M*) and control/format characters.
# Chinese numerals (一, 二, 百) are letters (Lo) and are kept. The paper does not define the set;
# this is our reading of "special characters and numbers".
ALLOWED_PUNCTUATION = frozenset(",.!?;:'\"-()，。！？；：、“”‘’（）《》…—·")
_LETTER_CATEGORIES = frozenset({"Lu", "Ll", "Lt", "Lo"})


def is_plain_char(ch: str) -> bool:
    """Whether `ch` is allowed by the special-character/digit filter (see above)."""
    return (
        ch in ALLOWED_PUNCTUATION
        or ch.isspace()
        or unicodedata.category(ch) in _LETTER_CATEGORIES
    )


def has_special_or_digit(text: str) -> bool:
    return not all(is_plain_char(ch) for ch in text)


def count_words(tokens: Sequence[str]) -> int:
    """Number of words among tokens: a word has at least one letter or digit (Unicode L*/N*);
    tokens made only of punctuation, symbols or spaces are not words."""
    return sum(
        any(unicodedata.category(ch)[0] in "LN" for ch in tok) for tok in tokens
    )


def filter_emotional(comments: Sequence[Comment], lexicon: EmotionLexicon) -> list[Comment]:
    """Stage 1: keep comments with at least one emotional word of the lexicon."""
    return [c for c in comments if any(lexicon.emotional_words(lexicon.tokenize(c.text)))]


def filter_length(
    comments: Sequence[Comment], lexicon: EmotionLexicon, min_words: int = 3, max_words: int = 15
) -> list[Comment]:
    """Stage 2: keep comments with min_words..max_words words (inclusive; lexicon tokenizer)."""
    return [
        c for c in comments
        if min_words <= count_words(lexicon.tokenize(c.text)) <= max_words
    ]


def filter_special(comments: Sequence[Comment]) -> list[Comment]:
    """Stage 3: drop comments containing special characters or digits (see is_plain_char)."""
    return [c for c in comments if not has_special_or_digit(c.text)]


def dedup_within(comments: Sequence[Comment], seconds: float = 1.0) -> list[Comment]:
    """Stage 4: in time order, drop a comment whose text (stripped) equals that of an earlier
    kept comment at most `seconds` before it. Returns the kept comments in time order."""
    last_kept: dict[str, float] = {}
    kept: list[Comment] = []
    for c in sorted(comments, key=lambda c: (c.time, c.line)):
        key = c.text.strip()
        prev = last_kept.get(key)
        if prev is not None and c.time - prev <= seconds:
            continue
        last_kept[key] = c.time
        kept.append(c)
    return kept


def balance_sentiment(
    comments: Sequence[Comment], lexicon: EmotionLexicon, rng: np.random.Generator | None = None
) -> list[Comment]:
    """Stage 5 (optional): equal numbers of positive and negative comments.

    Deviation: the paper scores sentiment with a predictor and then selects the most negative
    and most positive *segments* (see `select_extreme_segments`). Here a comment's polarity is
    the lexicon's positive share (`EmotionLexicon.polarity`): > 0.5 positive, < 0.5 negative;
    neutral/unscored comments are dropped and the larger side is subsampled without replacement
    (rng, default seed 0). Time order is kept.
    """
    rng = rng if rng is not None else np.random.default_rng(0)
    pos, neg = [], []
    for i, c in enumerate(comments):
        s = lexicon.polarity(lexicon.tokenize(c.text))
        if s is not None and s > 0.5:
            pos.append(i)
        elif s is not None and s < 0.5:
            neg.append(i)
    n = min(len(pos), len(neg))
    chosen = set()
    for side in (pos, neg):
        chosen.update(int(i) for i in rng.choice(np.asarray(side, int), n, replace=False))
    return [c for i, c in enumerate(comments) if i in chosen]


STAGES = ("parsed", "emotional", "length", "special", "dedup", "balance")


def preprocess(
    comments: Sequence[Comment],
    lexicon: EmotionLexicon,
    *,
    min_words: int = 3,
    max_words: int = 15,
    dedup_seconds: float = 1.0,
    balance: bool = False,
    rng: np.random.Generator | None = None,
) -> tuple[list[Comment], dict[str, int]]:
    """Runs the stages in the paper's order; returns kept comments (time order) and the count
    after every stage: parsed (input), emotional, length, special, dedup[, balance]."""
    counts = {"parsed": len(comments)}
    kept = sorted(comments, key=lambda c: (c.time, c.line))
    kept = filter_emotional(kept, lexicon)
    counts["emotional"] = len(kept)
    kept = filter_length(kept, lexicon, min_words, max_words)
    counts["length"] = len(kept)
    kept = filter_special(kept)
    counts["special"] = len(kept)
    kept = dedup_within(kept, dedup_seconds)
    counts["dedup"] = len(kept)
    if balance:
        kept = balance_sentiment(kept, lexicon, rng)
        counts["balance"] = len(kept)
    return kept, counts


# ------------------------------------------------------------------------------ segmentation


@dataclass(frozen=True)
class Segmentation:
    """K segments sorted by time; `labels[i]` is the segment of the i-th input time."""

    k: int
    centers: np.ndarray  # (k,) ascending
    bounds: np.ndarray  # (k + 1,) segment edges: 0, midpoints between centers, duration
    labels: np.ndarray  # (n,) int


def num_segments(duration: float, seconds_per_segment: float = 30.0) -> int:
    """K = duration / 30 s rounded half up (Python's round() rounds half to even), at least 1."""
    return max(1, math.floor(duration / seconds_per_segment + 0.5))


def kmeans_1d(x: np.ndarray, k: int, max_iter: int = 300) -> tuple[np.ndarray, np.ndarray]:
    """Lloyd's k-means in 1-D with a deterministic init; returns (centers ascending, labels).

    Init: centers at the (j + 0.5) / k quantiles of the sorted data (deterministic, no seed;
    for 1-D time data this spreads the centers evenly over the comment mass). An empty cluster
    is re-seeded at the point farthest from its center (lowest index on ties). Iterates until
    the assignment no longer changes. Requires 1 <= k <= number of distinct values.
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 1 or not 1 <= k <= len(np.unique(x)):
        raise ValueError(f"need 1-D data with at least k={k} distinct values")
    xs = np.sort(x)
    idx = np.minimum(((np.arange(k) + 0.5) / k * len(xs)).astype(int), len(xs) - 1)
    centers = xs[idx].copy()
    labels = np.full(len(x), -1)
    for _ in range(max_iter):
        new = np.argmin(np.abs(x[:, None] - centers[None, :]), axis=1)
        counts = np.bincount(new, minlength=k)
        for j in np.flatnonzero(counts == 0):
            far = int(np.argmax(np.abs(x - centers[new])))
            centers[j] = x[far]
            new = np.argmin(np.abs(x[:, None] - centers[None, :]), axis=1)
        if np.array_equal(new, labels):
            break
        labels = new
        counts = np.bincount(labels, minlength=k)
        centers = np.bincount(labels, weights=x, minlength=k) / np.maximum(counts, 1)
    order = np.argsort(centers, kind="stable")
    rank = np.empty(k, dtype=int)
    rank[order] = np.arange(k)
    return centers[order], rank[labels]


def segment_comments(
    times: Sequence[float] | np.ndarray,
    duration: float | None = None,
    seconds_per_segment: float = 30.0,
) -> Segmentation:
    """Splits a video into segments by k-means on comment times (Sec. 5.1, after [14]).

    K = num_segments(duration) with duration = last comment time when not given. K is capped at
    the number of distinct comment times (k-means cannot make more non-empty clusters).
    """
    t = np.asarray(times, dtype=np.float64)
    if t.size == 0:
        raise ValueError("no comment times to segment")
    dur = float(t.max()) if duration is None else float(duration)
    k = min(num_segments(dur, seconds_per_segment), len(np.unique(t)))
    centers, labels = kmeans_1d(t, k)
    mids = (centers[1:] + centers[:-1]) / 2
    bounds = np.concatenate([[0.0], mids, [max(dur, float(t.max()))]])
    return Segmentation(k=k, centers=centers, bounds=bounds, labels=labels)


def select_extreme_segments(scores: Sequence[float], n_per_side: int) -> tuple[np.ndarray, ...]:
    """The paper's balancing: indices of the `n_per_side` lowest- and highest-scoring segments
    (scores in [0, 1], negative to positive); the two sets never overlap."""
    s = np.asarray(scores, dtype=np.float64)
    n = min(n_per_side, len(s) // 2)
    order = np.argsort(s, kind="stable")
    return order[:n], order[len(s) - n :][::-1]
