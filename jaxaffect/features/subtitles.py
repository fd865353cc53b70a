"""Subtitle files -> timed text cues: SubRip (`.srt`), WebVTT (`.vtt`) and SubStation Alpha
(`.ass`, `.ssa`). Every refusal is a `SubtitleError` with one line "<path>:<line>: <what>" (or
"<path>: <what>").

Choices:
- Decoding: with `encoding=None` a byte-order mark decides (UTF-8, UTF-16 LE/BE, UTF-32 LE/BE),
  otherwise the file must be strict UTF-8; nothing is guessed. A given `encoding` is applied
  strictly. A file holding NUL bytes (and no UTF-16/32 mark) is refused as binary.
- Text: HTML-like tags (`<i>`, `<font ...>`, WebVTT `<c.x>`, `<00:01.000>`) and `{\\...}`
  override blocks are removed, entities (`&amp;`) decoded, lines joined with one space and
  whitespace collapsed. Cues whose text ends up empty are dropped; a file with no cue left is
  refused ("no cues").
- Speakers: WebVTT `<v Name>` (the first voice of a cue) and the ASS `Name`/`Actor` column. A
  SubRip "Name: text" prefix is kept in the text: a colon there is as often part of the line.
- Timestamps must be well formed (SubRip `H:MM:SS,mmm`, WebVTT `[H:]MM:SS.mmm`, ASS
  `H:MM:SS.cc`) with end >= start. Cues come back sorted by (start, end), stably.
"""

from __future__ import annotations

import dataclasses
import html
import os
import re
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from pathlib import Path

from jaxaffect.errors import FormatError

ENCODING_HINT = "pass its encoding, e.g. --subtitle_encoding cp1252"
EXTENSIONS = (".srt", ".vtt", ".ass", ".ssa")
_BOMS = ((b"\xef\xbb\xbf", "utf-8-sig"), (b"\xff\xfe\x00\x00", "utf-32"),
         (b"\x00\x00\xfe\xff", "utf-32"), (b"\xff\xfe", "utf-16"), (b"\xfe\xff", "utf-16"))
_SRT_TIME = re.compile(r"(\d+):([0-5]\d):([0-5]\d)[,.](\d{3})")
_VTT_TIME = re.compile(r"(?:(\d+):)?([0-5]\d):([0-5]\d)\.(\d{3})")
_ASS_TIME = re.compile(r"(\d+):([0-5]\d):([0-5]\d)\.(\d{1,3})")
_TAG = re.compile(r"</?[A-Za-z0-9][^<>]*>|<\d[\d:.]*>")
_OVERRIDE = re.compile(r"\{[^{}]*\}")
_VOICE = re.compile(r"<v(?:\.[^\s>]*)?\s+([^>]+)>")
_NAME_PREFIX = re.compile(r"\s*([^\W\d_]+)\s*:\s*(\S.*)", re.DOTALL)


class SubtitleError(FormatError):
    """A subtitle file that cannot be read: encoding, syntax or timestamps."""


@dataclass(frozen=True)
class Cue:
    """One timed line of text, times in seconds."""

    start: float
    end: float
    text: str
    speaker: str | None = None


def _snippet(line: str) -> str:
    line = line.strip()
    return repr(line if len(line) <= 40 else line[:37] + "...")


def _decode(path: str, data: bytes, encoding: str | None) -> str:
    bom_codec = next((codec for bom, codec in _BOMS if data.startswith(bom)), None)
    codec = encoding or bom_codec or "utf-8"
    if bom_codec is None and encoding is None and b"\x00" in data:
        offset = data.index(b"\x00")
        line = data[:offset].count(b"\n") + 1
        raise SubtitleError(f"{path}: binary data, not a subtitle file (NUL byte at offset "
                            f"{offset}, line {line})")
    try:
        text = data.decode(codec)
    except LookupError:
        raise SubtitleError(f"{path}: unknown encoding {encoding!r}") from None
    except UnicodeDecodeError as e:
        line = data[:e.start].decode(codec, errors="replace").count("\n") + 1
        name = "UTF-8" if codec == "utf-8" else codec
        hint = f"; {ENCODING_HINT}" if encoding is None else ""
        raise SubtitleError(f"{path}: not {name} (byte 0x{data[e.start]:02x} at offset "
                            f"{e.start}, line {line}){hint}") from None
    text = text.removeprefix("\ufeff")
    if "\x00" in text:
        line = text[:text.index("\x00")].count("\n") + 1
        raise SubtitleError(f"{path}:{line}: binary data (NUL character), not a subtitle file")
    return text


def _seconds(match: re.Match[str]) -> float:
    hours, minutes, secs, frac = match.groups()
    scale = 10 ** len(frac)
    return int(hours or 0) * 3600 + int(minutes) * 60 + int(secs) + int(frac) / scale


def _timing(path: str, lineno: int, line: str, pattern: re.Pattern[str],
            form: str) -> tuple[float, float, str]:
    """Parse "start --> end [settings]"; returns (start, end, settings)."""
    left, _, right = line.partition("-->")
    start = pattern.fullmatch(left.strip())
    parts = right.split(None, 1)
    end = pattern.fullmatch(parts[0]) if parts else None
    if start is None or end is None:
        raise SubtitleError(f"{path}:{lineno}: malformed timestamp line {_snippet(line)} "
                            f"(expected '{form} --> {form}')")
    t0, t1 = _seconds(start), _seconds(end)
    if t1 < t0:
        raise SubtitleError(f"{path}:{lineno}: cue ends before it starts ({_snippet(line)})")
    return t0, t1, parts[1] if len(parts) > 1 else ""


def clean_text(lines: Sequence[str]) -> str:
    """Join cue lines with spaces, drop tags and `{...}` blocks, decode entities, collapse
    whitespace."""
    text = _OVERRIDE.sub("", _TAG.sub("", " ".join(lines)))
    return " ".join(html.unescape(text).split())


def _blocks(lines: list[str], first: int) -> list[tuple[int, list[str]]]:
    """Runs of non-blank lines from index `first` on, each with its 1-based first line."""
    blocks: list[tuple[int, list[str]]] = []
    current: list[str] = []
    for i in range(first, len(lines)):
        if lines[i].strip():
            if not current:
                blocks.append((i + 1, current))
            current.append(lines[i])
        else:
            current = []
    return blocks


def _parse_srt(path: str, text: str) -> list[Cue]:
    cues = []
    for lineno, block in _blocks(text.splitlines(), 0):
        at = 0
        if "-->" not in block[0]:
            if not (block[0].strip().isdigit() and len(block) > 1 and "-->" in block[1]):
                raise SubtitleError(f"{path}:{lineno}: expected a cue number or a timestamp "
                                    f"line, got {_snippet(block[0])}")
            at = 1
        start, end, _ = _timing(path, lineno + at, block[at], _SRT_TIME, "HH:MM:SS,mmm")
        cues.append(Cue(start, end, clean_text(block[at + 1:])))
    return cues


def _parse_vtt(path: str, text: str) -> list[Cue]:
    lines = text.splitlines()
    if not lines or not re.match(r"WEBVTT(?:[ \t]|$)", lines[0]):
        raise SubtitleError(f"{path}:1: missing the 'WEBVTT' header")
    header_end = next((i for i, line in enumerate(lines) if not line.strip()), len(lines))
    cues = []
    for lineno, block in _blocks(lines, header_end):
        if re.match(r"(NOTE|STYLE|REGION)(?:[ \t]|$)", block[0]):
            continue
        at = 0 if "-->" in block[0] else 1  # an optional cue identifier comes first
        if at >= len(block) or "-->" not in block[at]:
            raise SubtitleError(f"{path}:{lineno}: expected a cue timing line, got "
                                f"{_snippet(block[-1])}")
        start, end, _ = _timing(path, lineno + at, block[at], _VTT_TIME, "MM:SS.mmm")
        body = block[at + 1:]
        voice = _VOICE.search(" ".join(body))
        speaker = " ".join(voice.group(1).split()) if voice else None
        cues.append(Cue(start, end, clean_text(body), speaker or None))
    return cues


def _parse_ass(path: str, text: str) -> list[Cue]:
    section, columns, cues = None, None, []
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith(";"):
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1].strip().lower()
            continue
        if section != "events":
            continue
        key, sep, value = line.partition(":")
        key = key.strip().lower()
        if not sep:
            raise SubtitleError(f"{path}:{lineno}: expected 'Key: value', got {_snippet(line)}")
        if key == "format":
            columns = [c.strip().lower() for c in value.split(",")]
            missing = [c for c in ("start", "end", "text") if c not in columns]
            if missing or columns[-1] != "text":
                raise SubtitleError(f"{path}:{lineno}: the Format line needs Start, End and a "
                                    f"last Text column, got {_snippet(value)}")
        elif key == "dialogue":
            if columns is None:
                raise SubtitleError(f"{path}:{lineno}: Dialogue before the [Events] Format line")
            fields = value.lstrip().split(",", len(columns) - 1)
            if len(fields) != len(columns):
                raise SubtitleError(f"{path}:{lineno}: {len(fields)} fields, the Format line "
                                    f"declares {len(columns)}")
            row = dict(zip(columns, fields))
            times = [_ASS_TIME.fullmatch(row[c].strip()) for c in ("start", "end")]
            if times[0] is None or times[1] is None:
                raise SubtitleError(f"{path}:{lineno}: malformed timestamp "
                                    f"{_snippet(row['start'] + ',' + row['end'])} "
                                    "(expected 'H:MM:SS.cc')")
            start, end = _seconds(times[0]), _seconds(times[1])
            if end < start:
                raise SubtitleError(f"{path}:{lineno}: cue ends before it starts")
            body = re.sub(r"\\[Nnh]", " ", _OVERRIDE.sub("", row["text"]))
            speaker = (row.get("name") or row.get("actor") or "").strip()
            cues.append(Cue(start, end, clean_text([body]), speaker or None))
    if columns is None:
        raise SubtitleError(f"{path}: no [Events] section with a Format line")
    return cues


_PARSERS: dict[str, Callable[[str, str], list[Cue]]] = {
    ".srt": _parse_srt, ".vtt": _parse_vtt, ".ass": _parse_ass, ".ssa": _parse_ass}


def read_subtitles(path: str | os.PathLike[str], encoding: str | None = None) -> list[Cue]:
    """The cues of a `.srt`, `.vtt`, `.ass` or `.ssa` file, sorted by (start, end)."""
    name = str(path)
    parse = _PARSERS.get(Path(name).suffix.lower())
    if parse is None:
        raise SubtitleError(f"{name}: unknown subtitle extension {Path(name).suffix!r} "
                            f"(one of {', '.join(sorted(_PARSERS))})")
    try:
        data = Path(name).read_bytes()
    except OSError as e:
        raise SubtitleError(f"{name}: {e.strerror or type(e).__name__}") from None
    cues = [c for c in parse(name, _decode(name, data, encoding)) if c.text]
    if not cues:
        raise SubtitleError(f"{name}: no cues")
    return sorted(cues, key=lambda c: (c.start, c.end))


def cues_between(cues: Sequence[Cue], start: float, end: float) -> list[Cue]:
    """The cues overlapping [start, end); a zero-length cue counts when start <= cue.start <
    end. Order is kept."""
    if end < start:
        raise ValueError(f"end {end} < start {start}")
    return [c for c in cues if c.start < end and (c.end > start or c.start >= start)]


def find_subtitle_file(folder: str | os.PathLike[str] | None, name: str) -> str | None:
    """<folder>/<name>.<srt|vtt|ass|ssa>, or None when there is none (or no folder); a name
    with two subtitle files is refused, naming them."""
    if not folder:
        return None
    found = [Path(folder) / f"{name}{e}" for e in EXTENSIONS
             if (Path(folder) / f"{name}{e}").is_file()]
    if len(found) > 1:
        raise SubtitleError(f"{found[0]}: clip {name!r} has {len(found)} subtitle files "
                            f"({', '.join(p.name for p in found)}); keep one")
    return os.fspath(found[0]) if found else None


def take_speaker_prefixes(cues: Sequence[Cue], path: str | os.PathLike[str],
                          names: Collection[str]) -> list[Cue]:
    """In a .srt (a format without a speaker field), a cue whose text starts with "Name:",
    Name one word and (case-insensitively) one of `names`, and goes on with text, gets Name as
    its speaker and loses the prefix. Other formats and other cues are returned unchanged."""
    if Path(path).suffix.lower() != ".srt":
        return list(cues)
    known = {n.lower() for n in names}
    out = []
    for c in cues:
        m = _NAME_PREFIX.fullmatch(c.text)
        if c.speaker is None and m and m.group(1).lower() in known:
            c = dataclasses.replace(c, text=m.group(2).strip(), speaker=m.group(1))
        out.append(c)
    return out
