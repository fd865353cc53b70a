"""jaxaffect.families.avcpnet.release_format on the builders' dummy releases: variants, case
rules, the optional `file` column, and the video lookup."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from jaxaffect.errors import FormatError
from jaxaffect.families.avcpnet import release_format as rf

REPO = Path(__file__).resolve().parents[3]
EMOTIONS = REPO / "tfds_builders" / "emotions" / "dummy_data"
MUSIC = REPO / "tfds_builders" / "music_video" / "dummy_data"


def _counts(by_split):
    return {s: len(cs) for s, cs in by_split.items()}


def test_emotions_variants():
    assert _counts(rf.read_emotions(EMOTIONS)) == {"train": 6, "validation": 3, "test": 3}
    assert _counts(rf.read_emotions(EMOTIONS, "balanced")) == {
        "train": 4, "validation": 2, "test": 3}
    assert _counts(rf.read_emotions(EMOTIONS, "test")) == {"train": 3, "test": 3}
    with pytest.raises(ValueError, match="unknown eMotions variant"):
        rf.read_emotions(EMOTIONS, "tiny")


def test_emotions_rows():
    clips = {c.video_id: c for cs in rf.read_emotions(EMOTIONS).values() for c in cs}
    e08, e10, e07 = clips["e08"], clips["e10"], clips["e07"]
    assert rf.EMOTIONS6[e08.label] == "fear"  # "Fear" in the table
    assert e10.platform == "tiktok"  # "TikTok" in the table
    assert e07.path == EMOTIONS / "clips" / "e07.mkv"  # the `file` column
    assert clips["e01"].path == EMOTIONS / "videos" / "e01.mp4"
    assert e08.where == f"{EMOTIONS / 'emotions.csv'}:9"
    assert e08.splits == {"split": "validation", "balanced_split": "validation",
                          "test_split": "test"}


def test_music_video_and_bom(tmp_path):
    manual = tmp_path / "mv"
    shutil.copytree(MUSIC, manual)
    table = manual / "music_video.csv"
    table.write_bytes(b"\xef\xbb\xbf" + table.read_bytes().replace(b"\n", b"\r\n"))
    by_split = rf.read_music_video(manual)
    assert _counts(by_split) == {"train": 6, "test": 3}
    assert all(c.platform == "" for cs in by_split.values() for c in cs)


def test_video_file_lookup(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x.webm").write_bytes(b"0")
    assert rf.video_file(tmp_path, "a/x", where="list:1") == tmp_path / "a" / "x.webm"
    assert rf.video_file(tmp_path, "a/x.webm", where="list:1") == tmp_path / "a" / "x.webm"
    with pytest.raises(FormatError, match=r"^list:2: no video file a/y\.<mp4\|webm"):
        rf.video_file(tmp_path, "a/y", where="list:2")
    (tmp_path / "a" / "x.MKV").write_bytes(b"0")  # other case: not one of the suffixes
    assert rf.video_file(tmp_path, "a/x", where="list:1") == tmp_path / "a" / "x.webm"
    with pytest.raises(FormatError, match="leaves the release folder"):
        rf.video_file(tmp_path, "../x", where="list:3")
