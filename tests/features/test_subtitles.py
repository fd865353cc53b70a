"""jaxaffect.features.subtitles: SubRip, WebVTT and ASS files read into cues, and one-line
refusals of broken ones."""

from __future__ import annotations

import pytest

from jaxaffect.errors import FormatError
from jaxaffect.features.subtitles import Cue, SubtitleError, cues_between, read_subtitles

SRT = """1
00:00:01,000 --> 00:00:02,500
<i>Hello</i>   there,
<font color="#ff0000">General</font> Kenobi!

2
00:00:00,250 --> 00:00:00,900 X1:10 X2:20
Anna: {\\an8}first &amp; early

3
01:02:03,004 --> 01:02:04,000
<b></b>
"""

VTT = """WEBVTT - a title
Kind: captions

NOTE a comment
spanning two lines

STYLE
::cue { color: lime }

intro
00:01.000 --> 00:02.000 align:start position:10% line:0
<v.loud Mary Ann>Hi <c.yellow>you</c></v>

00:00:03.000 --> 01:00:04.500
<v Bob>Two</v>
<00:00:03.500>lines
"""

ASS = """[Script Info]
Title: test
ScriptType: v4.00+

[V4+ Styles]
Format: Name, Fontname, Fontsize
Style: Default,Arial,20

[Events]
Format: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text
Comment: 0,0:00:00.00,0:00:09.00,Default,,0,0,0,,not shown
Dialogue: 0,0:00:05.10,0:00:07.25,Default,Joe,0,0,0,,{\\i1}Well,{\\i0} hello\\Nworld, again
Dialogue: 0,0:00:01.00,0:00:02.00,Default,,0,0,0,,{\\pos(10,20)\\b1}Plain\\nline
"""


def _write(tmp_path, name: str, content: str | bytes):
    path = tmp_path / name
    if isinstance(content, str):
        path.write_text(content, encoding="utf-8")
    else:
        path.write_bytes(content)
    return path


def test_srt_strips_tags_joins_lines_and_sorts(tmp_path):
    cues = read_subtitles(_write(tmp_path, "a.srt", SRT))
    assert cues == [
        Cue(0.25, 0.9, "Anna: first & early"),  # "Name:" stays text in SubRip
        Cue(1.0, 2.5, "Hello there, General Kenobi!"),
    ]  # the cue with only empty tags is dropped


def test_vtt_header_notes_settings_ids_and_voices(tmp_path):
    cues = read_subtitles(_write(tmp_path, "a.vtt", VTT))
    assert cues == [Cue(1.0, 2.0, "Hi you", "Mary Ann"),
                    Cue(3.0, 3604.5, "Two lines", "Bob")]


def test_ass_format_columns_overrides_and_speaker(tmp_path):
    cues = read_subtitles(_write(tmp_path, "a.ass", ASS))
    assert cues == [Cue(1.0, 2.0, "Plain line"),
                    Cue(5.1, 7.25, "Well, hello world, again", "Joe")]
    # the Format line decides the columns: Text after End directly, no Name column
    ssa = ("[Events]\nFormat: Start, End, Text\n"
           "Dialogue: 0:00:01.50,0:00:02.00,a, b\n")
    assert read_subtitles(_write(tmp_path, "b.ssa", ssa)) == [Cue(1.5, 2.0, "a, b")]


def test_bom_decides_encoding_utf16_and_utf8(tmp_path):
    text = "1\n00:00:01,000 --> 00:00:02,000\nÉté — ça va\n"
    for codec in ("utf-16", "utf-16-be", "utf-8-sig"):
        data = text.encode(codec)
        if codec == "utf-16-be":
            data = b"\xfe\xff" + data
        cues = read_subtitles(_write(tmp_path, f"{codec}.srt", data))
        assert cues == [Cue(1.0, 2.0, "Été — ça va")], codec


def test_cp1252_needs_its_encoding(tmp_path):
    data = "1\n00:00:01,000 --> 00:00:02,000\nd\u00e9j\u00e0 vu\n".encode("cp1252")
    path = _write(tmp_path, "latin.srt", data)
    with pytest.raises(SubtitleError) as info:
        read_subtitles(path)
    message = str(info.value)
    offset = data.index(b"\xe9")
    assert message == (f"{path}: not UTF-8 (byte 0xe9 at offset {offset}, line 3); "
                       "pass its encoding, e.g. --subtitle_encoding cp1252")
    assert isinstance(info.value, FormatError) and "\n" not in message
    assert read_subtitles(path, encoding="cp1252") == [Cue(1.0, 2.0, "déjà vu")]
    with pytest.raises(SubtitleError, match="unknown encoding 'nope'"):
        read_subtitles(path, encoding="nope")


@pytest.mark.parametrize("name, content, expected", [
    ("t.srt", "1\n00:00:01,000 --> 00:00:0\nhi\n", r"t\.srt:2: malformed timestamp line"),
    ("t.srt", "1\n00:00:01,000 --> 00:00:02,000\nhi\n\n2\n00:00:05,000\nx\n",
     r"t\.srt:5: expected a cue number or a timestamp line, got '2'"),
    ("t.srt", "\n\n1\n00:00:03,000 --> 00:00:02,000\nhi\n",
     r"t\.srt:4: cue ends before it starts"),
    ("t.srt", "Dear diary, today\nI renamed a text file.\n",
     r"t\.srt:1: expected a cue number or a timestamp line, got 'Dear diary, today'"),
    ("t.srt", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", r"t\.srt: binary data.*offset 8, line 3\)"),
    ("t.srt", "", r"t\.srt: no cues$"),
    ("t.vtt", "WEBVTT\n\nNOTE only a note\n", r"t\.vtt: no cues$"),
    ("t.vtt", "1\n00:01.000 --> 00:02.000\nhi\n", r"t\.vtt:1: missing the 'WEBVTT' header"),
    ("t.vtt", "WEBVTT\n\nid\n00:01.0 --> 00:02.000\nhi\n", r"t\.vtt:4: malformed timestamp"),
    ("t.vtt", "WEBVTT\n\nfree text\nmore\n", r"t\.vtt:3: expected a cue timing line"),
    ("t.ass", "[Script Info]\nTitle: x\n", r"t\.ass: no \[Events\] section"),
    ("t.ass", "[Events]\nDialogue: 0,0:00:01.00,0:00:02.00,,,0,0,0,,x\n",
     r"t\.ass:2: Dialogue before the \[Events\] Format line"),
    ("t.ass", "[Events]\nFormat: Start, End, Text\nDialogue: 0:00:01,0:00:02.00,x\n",
     r"t\.ass:3: malformed timestamp"),
    ("t.ass", "[Events]\nFormat: Start, Text, End\n", r"t\.ass:2: the Format line needs"),
    ("t.sub", "anything", r"t\.sub: unknown subtitle extension '\.sub'"),
])
def test_broken_files_are_refused_with_one_line(tmp_path, name, content, expected):
    path = _write(tmp_path, name, content)
    with pytest.raises(SubtitleError, match=expected) as info:
        read_subtitles(path)
    assert "\n" not in str(info.value)


def test_missing_file_is_refused(tmp_path):
    with pytest.raises(SubtitleError, match="missing.srt: No such file"):
        read_subtitles(tmp_path / "missing.srt")


def test_sort_is_stable_and_cues_between_overlaps():
    cues = [Cue(0.0, 1.0, "a"), Cue(1.0, 2.0, "b"), Cue(2.0, 2.0, "point"), Cue(1.5, 4.0, "c")]
    assert [c.text for c in cues_between(cues, 1.0, 2.0)] == ["b", "c"]
    assert [c.text for c in cues_between(cues, 2.0, 3.0)] == ["point", "c"]
    assert [c.text for c in cues_between(cues, 0.5, 1.0)] == ["a"]
    assert cues_between(cues, 5.0, 6.0) == []
    with pytest.raises(ValueError):
        cues_between(cues, 2.0, 1.0)


def test_equal_times_keep_file_order(tmp_path):
    srt = "".join(f"{i}\n00:00:01,000 --> 00:00:02,000\nline {i}\n\n" for i in range(1, 4))
    srt += "4\n00:00:00,500 --> 00:00:02,000\nfirst\n"
    texts = [c.text for c in read_subtitles(_write(tmp_path, "s.srt", srt))]
    assert texts == ["first", "line 1", "line 2", "line 3"]
