"""Bad-input corpus of the bilibili_tsc builder (config `custom`), from its dummy manual_dir.

The builder skips a bad video and reports it; so most cases check that the build succeeds and
that its metadata.json (and the console report at the end) lists the problem: `skipped`
({file, reason}), `problems` and `repeated_rows` ({danmaku file: count}). What cannot be skipped
(the lexicon, no danmaku file, nothing usable) is refused with one line naming the file, and no
partial build is left. Add a case by adding a `_skip(...)` or `_refuse(...)`.

Dummy data: av1001 and av1002 are used, av1003-av1005 are skipped (see dummy_data/
make_dummy_data.py); the cases break av1002 (or av1001, keeping av1002).
"""

from __future__ import annotations

import dataclasses
import logging
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from builder_breakage import (
    built_metadata,
    edit_npz,
    move_out,
    with_value,
)
from etils import epath

from jaxaffect.data.build import build_dataset
from jaxaffect.errors import FormatError
from tfds_builders.bilibili_tsc import bilibili_tsc_dataset_builder as bt
from tfds_builders.testing import copy_dummy_data

BASE_SKIPPED = {"danmaku/av1003.xml", "features/av1004.npz", "features/av1005.npz"}
BASE_PROBLEMS = {"danmaku/av1001.xml": 1, "danmaku/av1003.xml": 1}
BASE_STAGES = {"parsed": 23, "emotional": 22, "length": 21, "special": 19, "dedup": 18}
XML = "danmaku/av1002.xml"
NPZ = "features/av1002.npz"

Breakage = Callable[[Path, Path], None]  # (manual_dir, tmp_path) -> None


@dataclasses.dataclass(frozen=True)
class Skip:
    """A build that succeeds: `entry` ("skipped" | "problems" | "repeated_rows") of
    metadata.json names `file`, with a reason matching `detail` (skipped) or the count `detail`;
    `videos`: the videos left."""

    name: str
    breakage: Breakage
    entry: str
    file: str
    detail: str | int
    videos: int = 1


@dataclasses.dataclass(frozen=True)
class Refuse:
    """A refused build: the message starts with manual_dir / `file`; `detail` is searched in
    the rest."""

    name: str
    breakage: Breakage
    file: str
    detail: str


SKIPS: list[Skip] = []
REFUSALS: list[Refuse] = []


def _skip(name: str, entry: str, file: str, detail: str | int, videos: int = 1):
    def register(fn: Breakage):
        SKIPS.append(Skip(name, fn, entry, file, detail, videos))
        return fn
    return register


def _refuse(name: str, file: str, detail: str):
    def register(fn: Breakage):
        REFUSALS.append(Refuse(name, fn, file, detail))
        return fn
    return register


# ------------------------------------------------------------------------------ helpers


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines()


def _insert_lines(path: Path, after: int, new: list[str]) -> None:
    lines = _lines(path)
    path.write_text("\n".join(lines[:after] + new + lines[after:]) + "\n")


def _build(manual: Path, data_dir: Path, allow: tuple[str, ...] = ()) -> dict:
    return built_metadata(build_dataset("bilibili_tsc", str(manual), str(data_dir),
                                        "array_record", config="custom", allow=allow))


# ---------------------------------------------------------------- danmaku XML: rows, syntax


@_skip("repeated_row_identical", "repeated_rows", "danmaku/av1001.xml", 1, videos=2)
def _(manual, tmp_path):
    path = manual / "danmaku" / "av1001.xml"
    _insert_lines(path, 10, [_lines(path)[8]])  # line 9 (row 1006) again, as line 11


@_skip("repeated_row_id_other_text", "repeated_rows", XML, 2, videos=2)
def _(manual, tmp_path):
    path = manual / XML
    _insert_lines(path, 7, [
        '<d p="41.0,1,25,16777215,1600001009,0,9f8e7d6c,1003">so happy so great</d>',
        _lines(path)[2]])


@_skip("broken_xml", "problems", XML, 1)
def _(manual, tmp_path):
    path = manual / XML
    path.write_text(path.read_text().replace("</d>\n<d p=\"30.0", "</e>\n<d p=\"30.0"))


@_skip("broken_xml_skips_the_file", "skipped", XML, r"no usable comments \(1 problem")
def _(manual, tmp_path):
    (manual / XML).write_text((manual / XML).read_text()[:-10])


@_skip("danmaku_gbk", "problems", XML, 1)
def _(manual, tmp_path):
    (manual / XML).write_bytes((manual / XML).read_bytes().replace(
        b"wow wow", "哇 哇".encode("gbk")))


@_skip("danmaku_latin1", "skipped", XML, r"no usable comments \(1 problem")
def _(manual, tmp_path):
    (manual / XML).write_bytes((manual / XML).read_bytes().replace(
        b"that is sad", "thät is sad".encode("latin-1")))


@_skip("danmaku_symlink_out", "skipped", XML,
       r"'danmaku/av1002\.xml' is a symlink to .*outside.*JAXAFFECT_ALLOW_SYMLINKS")
def _(manual, tmp_path):
    move_out(manual, tmp_path, XML)


@_skip("not_an_xml_file", "skipped", "danmaku/notes.txt", r"not a danmaku file", videos=2)
def _(manual, tmp_path):
    (manual / "danmaku" / "notes.txt").write_text("hello\n")


@_skip("upper_case_extension", "skipped", "danmaku/av1002.XML", r"does not end in \.xml")
def _(manual, tmp_path):
    (manual / XML).rename(manual / "danmaku" / "av1002.XML")


@_skip("folder_named_xml", "skipped", "danmaku/av1009.xml", r"cannot read", videos=2)
def _(manual, tmp_path):
    (manual / "danmaku" / "av1009.xml").mkdir()


# -------------------------------------------------------------------------- feature files


@_skip("nan_feature", "skipped", NPZ, r"^stream 'image' holds NaN or inf values$")
def _(manual, tmp_path):
    edit_npz(manual / NPZ, image=with_value("image", (2, 1), np.nan))


@_skip("inf_feature", "skipped", NPZ, r"^stream 'audio' holds NaN or inf values$")
def _(manual, tmp_path):
    edit_npz(manual / NPZ, audio=with_value("audio", (0, 0), np.inf))


@_skip("string_feature", "skipped", NPZ,
       r"^stream 'motion' must hold floating-point features, got dtype <U")
def _(manual, tmp_path):
    edit_npz(manual / NPZ, motion=lambda a: a["motion"].astype(str))


@_skip("pickled_object_array", "skipped", NPZ, r"^not a readable \.npz file")
def _(manual, tmp_path):
    edit_npz(manual / NPZ, motion=lambda a: a["motion"].astype(object))


@_skip("float_mask_with_nan", "skipped", NPZ,
       r"^mask 'audio_mask' must hold only 0/1 \(or True/False\), found nan")
def _(manual, tmp_path):
    edit_npz(manual / NPZ, audio_mask=np.where(np.arange(15) == 3, np.nan, 1.0))


@_skip("truncated_npz", "skipped", NPZ, r"^not a readable \.npz file")
def _(manual, tmp_path):
    path = manual / NPZ
    path.write_bytes(path.read_bytes()[:200])


@_skip("missing_feature_file", "skipped", NPZ, r"^feature file not found$")
def _(manual, tmp_path):
    (manual / NPZ).unlink()


@_skip("missing_stream", "skipped", NPZ, r"^missing array 'motion'")
def _(manual, tmp_path):
    edit_npz(manual / NPZ, motion=None)


@_skip("segment_seconds_missing", "skipped", NPZ, r"^missing scalar 'segment_seconds'")
def _(manual, tmp_path):
    edit_npz(manual / NPZ, segment_seconds=None)


@_skip("segment_seconds_nan", "skipped", NPZ, r"^'segment_seconds' must be > 0 and finite")
def _(manual, tmp_path):
    edit_npz(manual / NPZ, segment_seconds=np.float32(np.nan))


@_skip("segment_seconds_string", "skipped", NPZ,
       r"^'segment_seconds' must be one real number, got <U")
def _(manual, tmp_path):
    edit_npz(manual / NPZ, segment_seconds=np.str_("3.0"))


@_skip("segment_seconds_complex", "skipped", NPZ, r"^'segment_seconds' must be one real number")
def _(manual, tmp_path):
    edit_npz(manual / NPZ, segment_seconds=np.complex64(3.0))


@_skip("feature_symlink_out", "skipped", NPZ,
       r"'features/av1002\.npz' is a symlink to .*outside.*JAXAFFECT_ALLOW_SYMLINKS")
def _(manual, tmp_path):
    move_out(manual, tmp_path, NPZ)


# --------------------------------------------------------------------------------- refused


@_refuse("lexicon_gbk", "lexicon.tsv", r"^:3: not UTF-8")
def _(manual, tmp_path):
    path = manual / "lexicon.tsv"
    path.write_bytes(path.read_bytes().replace(b"love\t", "爱\t".encode("gbk")))


@_refuse("lexicon_latin1", "lexicon.tsv", r"^:4: not UTF-8 \(byte 0xe9")
def _(manual, tmp_path):
    path = manual / "lexicon.tsv"
    path.write_bytes(path.read_bytes().replace(b"great\t", "gréat\t".encode("latin-1")))


@_refuse("lexicon_line_without_tab", "lexicon.tsv", r"^:5: expected 'word<TAB>category'")
def _(manual, tmp_path):
    path = manual / "lexicon.tsv"
    path.write_text(path.read_text().replace("sad\tsadness", "sad sadness"))


@_refuse("lexicon_missing", "lexicon.tsv", r"^: lexicon file not found")
def _(manual, tmp_path):
    (manual / "lexicon.tsv").unlink()


@_refuse("lexicon_symlink_out", "lexicon.tsv", r"^: 'lexicon\.tsv' is a symlink to .*outside")
def _(manual, tmp_path):
    move_out(manual, tmp_path, "lexicon.tsv")


@_refuse("no_danmaku_files", "danmaku", r"^: no danmaku \.xml files found")
def _(manual, tmp_path):
    for xml in (manual / "danmaku").glob("*.xml"):
        xml.rename(xml.with_suffix(".txt"))


@_refuse("nothing_usable", "",
         r"^: no usable video \(5 skipped: features/av1001\.npz: feature file not found; ")
def _(manual, tmp_path):
    for vid in ("av1001", "av1002", "av1005"):
        (manual / "features" / f"{vid}.npz").unlink()


# --------------------------------------------------------------------------------- tests


def _files_under(folder: Path) -> list[Path]:
    """Files under a data_dir, but for TFDS's record of the builder's configs
    (`<name>/.config/metadata.json`, written for builders with configs; not a build)."""
    if not folder.exists():
        return []
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.parent.name != ".config")


@pytest.mark.parametrize("case", SKIPS, ids=[c.name for c in SKIPS])
def test_bad_video_is_skipped_and_reported(case, tmp_path, caplog):
    manual = copy_dummy_data(bt.Builder, tmp_path)
    case.breakage(manual, tmp_path)
    with caplog.at_level(logging.WARNING, logger=bt.__name__):
        meta = _build(manual, tmp_path / "data")
    assert meta["num_videos"] == case.videos
    skipped = {s["file"]: s["reason"] for s in meta["skipped"]}
    if case.entry == "skipped":
        assert case.file in skipped, skipped
        assert re.search(case.detail, skipped[case.file]), skipped[case.file]
        assert "\n" not in skipped[case.file]
    else:
        assert meta[case.entry][case.file] == case.detail, meta[case.entry]
    # Nothing else changed: the dummy data's own skips and problems are still all there.
    assert BASE_SKIPPED <= set(skipped)
    assert all(meta["problems"].get(f) == n for f, n in BASE_PROBLEMS.items())
    # The console report at the end of the build lists the file.
    report = [r.getMessage() for r in caplog.records if "skipped or dropped" in r.getMessage()]
    assert len(report) == 1 and case.file in report[0], report


def test_repeated_rows_do_not_change_the_examples(tmp_path):
    """A repeated row is dropped before the filters: the stage counts and comments are those
    of the file without the repeat."""
    manual = copy_dummy_data(bt.Builder, tmp_path)
    next(c for c in SKIPS if c.name == "repeated_row_identical").breakage(manual, tmp_path)
    meta = _build(manual, tmp_path / "data")
    assert meta["stage_counts"] == BASE_STAGES
    assert meta["num_comments"] == 13
    assert meta["repeated_rows"] == {"danmaku/av1001.xml": 1}


@pytest.mark.parametrize("case", REFUSALS, ids=[c.name for c in REFUSALS])
def test_bad_input_is_refused_with_one_line_naming_the_file(case, tmp_path):
    manual = copy_dummy_data(bt.Builder, tmp_path)
    case.breakage(manual, tmp_path)
    data_dir = tmp_path / "data"
    with pytest.raises(FormatError) as e:
        _build(manual, data_dir)
    message = str(e.value)
    assert "\n" not in message
    prefix = str(manual / case.file) if case.file else str(manual)
    assert message.startswith(prefix), message
    assert re.search(case.detail, message[len(prefix):]), message
    assert _files_under(data_dir) == []  # no partial build


def test_case_names_are_unique():
    names = [c.name for c in SKIPS + REFUSALS]
    assert len(set(names)) == len(names)


def test_symlinks_out_are_followed_when_allowed_and_recorded(tmp_path, caplog):
    manual = copy_dummy_data(bt.Builder, tmp_path)
    move_out(manual, tmp_path, NPZ)
    move_out(manual, tmp_path, XML)
    with caplog.at_level(logging.WARNING, logger=bt.__name__):
        meta = _build(manual, tmp_path / "data", allow=("symlinks",))
    assert meta["num_videos"] == 2
    assert {s["file"] for s in meta["skipped"]} == BASE_SKIPPED
    assert meta["symlinks_outside_release"] == {
        "allowed_by": "symlinks", "count": 1, "video_ids": ["av1002"]}
    assert "symlinks to outside the manual_dir (allowed): av1002" in caplog.text
    assert "symlinks_outside_release" not in _build(copy_dummy_data(bt.Builder, tmp_path / "b"),
                                                    tmp_path / "data_b", allow=("symlinks",))


@pytest.mark.parametrize("key, value, message", [
    ("image", lambda a: a["image"].astype(str), "stream 'image' must hold floating-point"),
    ("audio", with_value("audio", (1, 1), np.nan), "stream 'audio' holds NaN or inf"),
    ("motion_mask", lambda a: np.full(15, np.nan), "mask 'motion_mask' must hold only 0/1"),
    ("segment_seconds", np.array(["2"]), "'segment_seconds' must be one real number"),
    ("segment_seconds", np.float64(-1.0), "'segment_seconds' must be > 0 and finite"),
])
def test_read_features_names_the_file(key, value, message, tmp_path):
    manual = copy_dummy_data(bt.Builder, tmp_path)
    edit_npz(manual / NPZ, **{key: value})
    path = epath.Path(manual / NPZ)
    with pytest.raises(FormatError) as e:
        bt.read_features(path, None)
    assert str(e.value).startswith(f"{path}: {message}"), str(e.value)
