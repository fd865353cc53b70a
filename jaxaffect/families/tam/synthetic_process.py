"""The hidden generative process of the synthetic TAM corpus (see `synthetic`).

Emotional states piecewise constant in time, per-segment features from a shared random
network (`make_world`, `render_features`) and time-sync comments whose emotional words follow
the states (`make_comments`, `danmaku_xml`). docs/synthetic_tam.md explains the knobs.
"""

from __future__ import annotations

import dataclasses
from xml.sax.saxutils import escape

import numpy as np

from jaxaffect.families.tam.annotations import VE8_CLASSES
from jaxaffect.families.tam.video_features import STREAMS

CLASS_NAMES: tuple[str, ...] = VE8_CLASSES  # the labelled part is written as VE-8

# Lexicon: category (lower-case class name) -> its emotional words. No word is in two lists or
# among the filler words below; all are plain lower-case letters.
EMOTION_WORDS: dict[str, tuple[str, ...]] = {
    "anger": ("angry", "furious", "rage", "mad", "outrageous", "annoying", "hateful",
              "infuriating"),
    "anticipation": ("waiting", "hoping", "eager", "expecting", "upcoming", "countdown",
                     "finally", "ready"),
    "disgust": ("gross", "disgusting", "nasty", "yuck", "revolting", "vile", "sickening",
                "eww"),
    "fear": ("scary", "terrifying", "afraid", "spooky", "frightening", "horror", "nervous",
             "creepy"),
    "joy": ("happy", "funny", "lovely", "hilarious", "joyful", "delightful", "awesome", "cute"),
    "sadness": ("sad", "crying", "tears", "heartbreaking", "tragic", "lonely", "miserable",
                "sorrow"),
    "surprise": ("unexpected", "shocking", "surprised", "whoa", "wow", "unbelievable", "sudden",
                 "astonishing"),
    "trust": ("reliable", "loyal", "honest", "faithful", "trustworthy", "safe", "dependable",
              "sincere"),
}
CATEGORIES: tuple[str, ...] = tuple(c.lower() for c in CLASS_NAMES)
# Comment templates: <opener> <emotional word(s)> <closer>; all non-emotional words.
OPENERS: tuple[str, ...] = (
    "this is so", "that was", "oh man so", "i am so", "it feels", "the music is",
    "this scene is", "what a", "look at that", "everyone is", "the ending is",
    "this part is really", "he looks", "she is", "they are so", "i can't believe how",
    "that's", "honestly the camera shot is", "the guy is", "my dog would be")
CLOSERS: tuple[str, ...] = (
    "", "", "right now", "again", "to watch", "here", "at the start", "in this episode",
    "for real", "as always", "too", "honestly", "every time", "this time")
NEUTRAL_WORDS: tuple[str, ...] = (
    "loud", "long", "blue", "old", "fast", "slow", "big", "green", "late", "quiet", "normal")
DIGIT_TOKENS: tuple[str, ...] = ("233", "666", "2333", "1st", "99")
END_PUNCTUATION: tuple[str, ...] = ("", "", "", "!", "!!", "?", ".")

# Knobs of the process (docs/synthetic_tam.md explains each).
PROCESS: dict[str, float] = {
    "segment_seconds": 2.0,  # one feature row per 2 s
    "min_piece_seconds": 16.0,  # shortest stretch of one emotional state
    "max_pieces": 6,  # states per video: 2..max_pieces (as the duration allows)
    "theme_share_min": 0.5, "theme_share_max": 0.8,  # share of the dominant (theme) state
    "code_dim": 6,  # emotion-code size per modality
    "style_dim": 6, "style_std": 1.5,  # per-video nuisance latent, mixed in nonlinearly
    "content_dim": 4, "content_rho": 0.9,  # per-segment nuisance latent, AR(1) over segments
    "hidden_units": 32, "gain": 1.0, "bias_std": 0.5,  # the random tanh network per modality
    "intensity_min": 0.7, "intensity_max": 1.3,  # per-state scale of the emotion code
    "code_jitter_std": 0.3,  # per-segment noise on the emotion code
    "offset_std": 0.5,  # per-video additive offset per feature (linear nuisance)
    "noise_std": 0.3,  # per-feature observation noise
    "comment_rate_min": 0.25, "comment_rate_max": 0.5,  # comments per second, per video
    "off_state_prob": 0.15,  # an emotional word drawn from another emotion than the state's
    "second_word_prob": 0.2,  # comments with two emotional words
    "neutral_prob": 0.06,  # no emotional word (dropped by the lexicon filter)
    "short_prob": 0.02,  # two words (dropped by the 3-15 word filter)
    "digit_prob": 0.03,  # a digit token such as 233 (dropped by the special-character filter)
    "duplicate_prob": 0.03,  # a copy of an earlier comment within 1 s (dropped by dedup)
    "labelled_test_fraction": 1 / 3,  # per class, as VE-8's 2/3 - 1/3 protocol
}
KINDS: tuple[str, ...] = ("ok", "neutral", "short", "digits", "duplicate")
_BASE_UNIX = 1_600_000_000


@dataclasses.dataclass(frozen=True)
class World:
    """What every video shares: per modality the emotion grouping, codes and tanh network."""

    dims: dict[str, int]
    groups: dict[str, np.ndarray]  # stream -> [8] group id (4 groups of 2 emotions)
    codes: dict[str, np.ndarray]  # stream -> [4, code_dim]
    w1: dict[str, np.ndarray]  # stream -> [hidden, code + style + content]
    b1: dict[str, np.ndarray]  # stream -> [hidden]
    w2: dict[str, np.ndarray]  # stream -> [d, hidden]


def _pairings(rng: np.random.Generator, n: int, count: int) -> list[np.ndarray]:
    """`count` edge-disjoint perfect matchings of n items, as group ids per item."""
    while True:
        out, used = [], set()
        for _ in range(count):
            perm = rng.permutation(n)
            pairs = {tuple(sorted(perm[i:i + 2])) for i in range(0, n, 2)}
            if pairs & used:
                break
            used |= pairs
            g = np.empty(n, np.int64)
            for j, (a, b) in enumerate(sorted(pairs)):
                g[a] = g[b] = j
            out.append(g)
        if len(out) == count:
            return out


def make_world(seed: int, dims: dict[str, int]) -> World:
    """The shared generator of a corpus (from `default_rng([seed, 0])`)."""
    rng = np.random.default_rng([seed, 0])
    p = PROCESS
    rc, rv, ru, h = (int(p["code_dim"]), int(p["style_dim"]), int(p["content_dim"]),
                     int(p["hidden_units"]))
    # Each modality confuses its own 4 pairs of emotions; the three pairings share no pair, so
    # any two emotions differ in at least two modalities (the code is spread across streams).
    pairings = _pairings(rng, len(CLASS_NAMES), len(STREAMS))
    groups, codes, w1, b1, w2 = {}, {}, {}, {}, {}
    for s, g in zip(STREAMS, pairings, strict=True):
        groups[s] = g
        c = rng.normal(size=(len(CLASS_NAMES) // 2, rc))
        codes[s] = c / np.linalg.norm(c, axis=1, keepdims=True) * np.sqrt(rc)
        w1[s] = rng.normal(0.0, p["gain"] / np.sqrt(rc + rv + ru), (h, rc + rv + ru))
        b1[s] = rng.normal(0.0, p["bias_std"], h)
        w2[s] = rng.normal(0.0, 1.0 / np.sqrt(h), (dims[s], h))
    return World(dict(dims), groups, codes, w1, b1, w2)


def _composition(rng: np.random.Generator, total: int, parts: int, minimum: int) -> np.ndarray:
    """`parts` integers >= minimum summing to `total` (requires parts * minimum <= total)."""
    cuts = np.sort(rng.choice(total - parts * minimum + parts - 1, parts - 1, replace=False))
    sizes = np.diff(np.r_[-1, cuts, total - parts * minimum + parts - 1]) - 1
    return sizes + minimum


def sample_states(rng: np.random.Generator, num_segments: int, theme: int,
                  min_piece: int) -> list[tuple[int, int, int]]:
    """Piecewise-constant states as (start, end, emotion) segment spans covering the video.

    The theme emotion holds more than half of the segments (so it is the unique dominant state);
    the other pieces alternate with theme pieces and take other emotions.
    """
    max_parts = max(2, min(int(PROCESS["max_pieces"]), num_segments // min_piece))
    parts = int(rng.integers(2, max_parts + 1))
    n_theme = (parts + int(rng.integers(0, 2))) // 2 if parts > 2 else 1
    n_other = parts - n_theme
    share = rng.uniform(PROCESS["theme_share_min"], PROCESS["theme_share_max"])
    # More than half of the segments (strictly dominant), leaving other pieces room if possible.
    theme_total = max(num_segments // 2 + 1,
                      min(int(round(share * num_segments)), num_segments - n_other * min_piece))
    other_min = max(1, min(min_piece, (num_segments - theme_total) // n_other))
    theme_min = max(1, min(min_piece, theme_total // n_theme))
    theme_sizes = _composition(rng, theme_total, n_theme, theme_min)
    other_sizes = _composition(rng, num_segments - theme_total, n_other, other_min)
    others = [e for e in range(len(CLASS_NAMES)) if e != theme]
    other_emos = rng.choice(others, n_other, replace=n_other > len(others))
    # Alternate theme/other pieces; the first piece is the theme's when it has more pieces.
    theme_first = n_theme > n_other or (n_theme == n_other and rng.random() < 0.5)
    seq, ti, oi = [], 0, 0
    for k in range(parts):
        if (k % 2 == 0) == theme_first and ti < n_theme or oi >= n_other:
            seq.append((int(theme_sizes[ti]), theme))
            ti += 1
        else:
            seq.append((int(other_sizes[oi]), int(other_emos[oi])))
            oi += 1
    spans, start = [], 0
    for size, emo in seq:
        spans.append((start, start + size, int(emo)))
        start += size
    return spans


def segment_states(spans: list[tuple[int, int, int]] | list[list[int]]) -> np.ndarray:
    """[S] emotion id per feature segment from (start, end, emotion) spans."""
    return np.concatenate([np.full(e - s, k, np.int64) for s, e, k in spans])


def dominant_state(states: np.ndarray) -> int:
    """The emotion holding the most segments (the label of a labelled video)."""
    return int(np.argmax(np.bincount(np.asarray(states), minlength=len(CLASS_NAMES))))


def render_features(world: World, spans, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Per-segment features {stream: [S, d] float32}, a noisy nonlinear function of the states.

    h = [intensity * code(group of state) + jitter, video style, AR(1) content];
    x = W2 tanh(W1 h + b1) + per-video offset + noise, separately per modality.
    """
    p = PROCESS
    states = segment_states(spans)
    n = len(states)
    intensity = np.concatenate([np.full(e - s, rng.uniform(p["intensity_min"],
                                                           p["intensity_max"]))
                                for s, e, _ in spans])
    out = {}
    for s in STREAMS:
        code = world.codes[s][world.groups[s][states]] * intensity[:, None]
        code = code + rng.normal(0.0, p["code_jitter_std"], code.shape)
        style = np.broadcast_to(rng.normal(0.0, p["style_std"], int(p["style_dim"])),
                                (n, int(p["style_dim"])))
        rho = p["content_rho"]
        eps = rng.normal(0.0, 1.0, (n, int(p["content_dim"])))
        content = np.empty_like(eps)
        content[0] = eps[0]
        for t in range(1, n):  # stationary unit-variance AR(1)
            content[t] = rho * content[t - 1] + np.sqrt(1 - rho * rho) * eps[t]
        hid = np.tanh(np.concatenate([code, style, content], 1) @ world.w1[s].T + world.b1[s])
        x = hid @ world.w2[s].T + rng.normal(0.0, p["offset_std"], world.dims[s])
        x = x + rng.normal(0.0, p["noise_std"], x.shape)
        out[s] = x.astype(np.float32)
    return out


# ---------------------------------------------------------------------------------- comments
def _pick(rng: np.random.Generator, items: tuple | list):
    """One of `items`, uniformly: the draw of `rng.choice(items)` (the same stream and result)
    without converting `items` to an array, which dominated the corpus writer's time."""
    return items[int(rng.integers(len(items)))]


def _words(rng: np.random.Generator, state: int, count: int) -> tuple[list[str], list[int]]:
    """`count` emotional words: from the state's list, or (off_state_prob) another emotion's."""
    words, emos = [], []
    for _ in range(count):
        emo = state
        if rng.random() < PROCESS["off_state_prob"]:
            emo = int(_pick(rng, [e for e in range(len(CLASS_NAMES)) if e != state]))
        words.append(str(_pick(rng, EMOTION_WORDS[CATEGORIES[emo]])))
        emos.append(emo)
    return words, emos


def make_comment(rng: np.random.Generator, state: int, kind: str) -> tuple[str, list[int]]:
    """(text, emotions of its emotional words) of one comment of `kind` at a `state` time."""
    if kind == "short":  # two words: an emotional word and a closer-like word
        words, emos = _words(rng, state, 1)
        return f"{words[0]} {_pick(rng, ('again', 'here', 'too', 'honestly'))}", emos
    opener = str(_pick(rng, OPENERS)).split()
    closer = str(_pick(rng, CLOSERS)).split()
    if kind == "neutral":
        middle, emos = [str(_pick(rng, NEUTRAL_WORDS))], []
    else:
        count = 2 if rng.random() < PROCESS["second_word_prob"] else 1
        words, emos = _words(rng, state, count)
        middle = [words[0]] if count == 1 else [words[0], "and", words[1]]
    if len(opener) + len(middle) + len(closer) < 3:
        closer = ["again"] if not closer else closer + ["again"]
    tokens = opener + middle + closer
    if kind == "digits":
        tokens.insert(int(rng.integers(0, len(tokens) + 1)), str(_pick(rng, DIGIT_TOKENS)))
    if closer:  # punctuation only after a non-emotional last word (lexicon lookups stay exact)
        tokens[-1] += str(_pick(rng, END_PUNCTUATION))
    if rng.random() < 0.3:
        tokens[0] = tokens[0].capitalize()
    return " ".join(tokens), emos


def _kind(rng: np.random.Generator) -> str:
    p = PROCESS
    u = rng.random()
    for kind, q in (("neutral", p["neutral_prob"]), ("short", p["short_prob"]),
                    ("digits", p["digit_prob"]), ("duplicate", p["duplicate_prob"])):
        if u < q:
            return kind
        u -= q
    return "ok"


def make_comments(rng: np.random.Generator, states: np.ndarray,
                  segment_seconds: float) -> list[dict]:
    """Comments of one video as dicts (time, text, kind, emotions, sender, row_id), time order.

    Times: a Poisson process (rate drawn per video); a "duplicate" repeats the text of the
    previous comment (when that one is "ok") 0.05-0.9 s after it (another viewer posting the
    same thing); otherwise the draw becomes an "ok" comment.
    """
    duration = len(states) * segment_seconds
    rate = rng.uniform(PROCESS["comment_rate_min"], PROCESS["comment_rate_max"])
    times = np.sort(rng.uniform(0.0, duration, rng.poisson(rate * duration)))
    out: list[dict] = []
    for t in times:
        kind = _kind(rng)
        if kind == "duplicate" and out and out[-1]["kind"] == "ok":
            prev = out[-1]
            t = min(prev["time"] + rng.uniform(0.05, 0.9), duration - 1e-3)
            text, emos = prev["text"], prev["emotions"]
        else:
            kind = "ok" if kind == "duplicate" else kind
            state = int(states[min(int(t // segment_seconds), len(states) - 1)])
            text, emos = make_comment(rng, state, kind)
        out.append({"time": round(float(t), 3), "text": text, "kind": kind,
                    "emotions": [int(e) for e in emos],
                    "sender": f"{int(rng.integers(0, 2**32)):08x}"})
    out.sort(key=lambda c: c["time"])  # stable: a duplicate stays after its original on ties
    for i, c in enumerate(out):
        c["row_id"] = i + 1
    return out


def danmaku_xml(comments: list[dict], chat_id: int, rng: np.random.Generator) -> bytes:
    """A Bilibili danmaku XML document (header elements as served, one <d> per line)."""
    lines = ['<?xml version="1.0" encoding="UTF-8"?><i><chatserver>chat.bilibili.com'
             f'</chatserver><chatid>{chat_id}</chatid><mission>0</mission>'
             '<maxlimit>3000</maxlimit><state>0</state><real_name>0</real_name>'
             '<source>k-v</source>']
    for c in comments:
        mode = int(_pick(rng, (1, 1, 1, 1, 1, 1, 4, 5)))
        color = int(_pick(rng, (16777215, 16777215, 16777215, 16707842, 15138834, 6830715)))
        sent = _BASE_UNIX + chat_id * 1000 + int(c["time"] * 7) + int(rng.integers(0, 86400))
        lines.append(f'<d p="{c["time"]:.3f},{mode},25,{color},{sent},0,{c["sender"]},'
                     f'{c["row_id"]}">{escape(c["text"])}</d>')
    lines.append("</i>\n")
    return "\n".join(lines).encode("utf-8")


def lexicon_tsv() -> str:
    """`word<TAB>category` lines of the corpus lexicon (categories: lower-case class names)."""
    return "".join(f"{w}\t{c}\n" for c in CATEGORIES for w in EMOTION_WORDS[c])
