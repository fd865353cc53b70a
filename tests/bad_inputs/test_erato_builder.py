"""Bad-input corpus of the ERATO builder: each case copies the dummy manual_dir, breaks one
thing, and checks that the build is refused with one line that starts with the faulty file
(and names the line of annotations.csv, or the array), and that no partial build is left.

ERATO skips nothing: every bad input stops the build. Add a case by adding a `_case(...)`.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from builder_breakage import (
    assert_nothing_built,
    built_metadata,
    edit_npz,
    move_out,
    run_cli,
    with_value,
)

from jaxaffect import cli
from jaxaffect.data.build import build_dataset
from jaxaffect.errors import FormatError
from jaxaffect.families.perr import erato_format as ef
from tfds_builders.erato import erato_dataset_builder as eb
from tfds_builders.testing import copy_dummy_data

CSV = "annotations.csv"
# Lines of the dummy annotations.csv: header on 1, then c01..c09 on lines 2..10 (c07-c09 test).


@dataclasses.dataclass(frozen=True)
class Case:
    name: str
    breakage: Callable[[Path, Path], None]  # (manual_dir, tmp_path) -> None
    file: str  # the message starts with manual_dir / file
    detail: str  # regex searched in the rest of the message (line, field, reason)


CASES: list[Case] = []


def _case(name: str, file: str, detail: str):
    def register(fn: Callable[[Path, Path], None]):
        CASES.append(Case(name, fn, file, detail))
        return fn
    return register


# ------------------------------------------------------------------------------ helpers


def _csv_lines(manual: Path) -> list[str]:
    return (manual / CSV).read_text().splitlines()


def _write_csv(manual: Path, lines: list[str]) -> None:
    (manual / CSV).write_text("\n".join(lines) + "\n")


def _replace_row(manual: Path, line: int, row: str) -> None:
    lines = _csv_lines(manual)
    lines[line - 1] = row
    _write_csv(manual, lines)


# ----------------------------------------------------------------------- annotations.csv


@_case("annotations_gbk", CSV, r"^:5: not UTF-8")
def _(manual, tmp_path):
    data = (manual / CSV).read_bytes().replace(b"c04,", "片段04,".encode("gbk"))
    (manual / CSV).write_bytes(data)


@_case("annotations_latin1", CSV, r"^:3: not UTF-8 \(byte 0xe9")
def _(manual, tmp_path):
    (manual / CSV).write_bytes((manual / CSV).read_bytes().replace(b"c02,", "cé02,".encode(
        "latin-1")))


@_case("annotations_missing", CSV, r"^: annotation file not found")
def _(manual, tmp_path):
    (manual / CSV).unlink()


@_case("annotations_wrong_header", CSV, r"^:1: header must be clip_id,label,split")
def _(manual, tmp_path):
    _replace_row(manual, 1, "id,label,split")


@_case("annotations_no_rows", CSV, r"^: no annotation rows")
def _(manual, tmp_path):
    _write_csv(manual, _csv_lines(manual)[:1] + ["", " , , "])


@_case("annotations_missing_field", CSV, r"^:6: expected 3 fields, got 2")
def _(manual, tmp_path):
    _replace_row(manual, 6, "c05,neutral")


@_case("annotations_unterminated_quote", CSV, r"^:11: expected 3 fields")
def _(manual, tmp_path):
    _write_csv(manual, _csv_lines(manual) + ['c10,"mild,test'])


@_case("clip_id_parent_dir", CSV, r"^:3: clip_id '\.\./c02' is not a plain file name")
def _(manual, tmp_path):
    _replace_row(manual, 3, "../c02,tense,train")


@_case("clip_id_absolute", CSV, r"^:3: clip_id '/tmp/c02' is not a plain file name")
def _(manual, tmp_path):
    _replace_row(manual, 3, "/tmp/c02,tense,train")


@_case("clip_id_backslash", CSV, r"^:3: clip_id '\.\.\\\\c02' is not a plain file name")
def _(manual, tmp_path):
    _replace_row(manual, 3, "..\\c02,tense,train")


@_case("clip_id_control_character", CSV, r"^:3: clip_id 'c0\\x002' is not a plain file name")
def _(manual, tmp_path):
    _replace_row(manual, 3, "c0\x002,tense,train")


@_case("clip_id_empty", CSV, r"^:3: empty clip_id")
def _(manual, tmp_path):
    _replace_row(manual, 3, " ,tense,train")


@_case("feature_file_symlink_out", CSV,
       r"^:4: 'features/c03\.npz' is a symlink to .*outside.*JAXAFFECT_ALLOW_SYMLINKS")
def _(manual, tmp_path):
    move_out(manual, tmp_path, "features/c03.npz")


@_case("features_dir_symlink_out", CSV, r"^:2: 'features/c01\.npz' is a symlink to .*outside")
def _(manual, tmp_path):
    move_out(manual, tmp_path, "features")


@_case("duplicate_clip_id", CSV, r"^:11: duplicate clip_id 'c01' \(first on line 2\)")
def _(manual, tmp_path):
    _write_csv(manual, _csv_lines(manual) + ["c01,mild,test"])


@_case("empty_test_split", CSV, r"^: split 'test' is empty \(9 rows")
def _(manual, tmp_path):
    (manual / CSV).write_text((manual / CSV).read_text().replace(",test", ",train"))


@_case("empty_train_split", CSV, r"^: split 'train' is empty \(9 rows")
def _(manual, tmp_path):
    (manual / CSV).write_text((manual / CSV).read_text().replace(",train", ",test"))


@_case("unknown_split", CSV, r"^:8: unknown split 'validation' \(one of train, test\)")
def _(manual, tmp_path):
    _replace_row(manual, 8, "c07,mild,validation")


@_case("split_in_other_case", CSV, r"^:2: unknown split 'Train'")
def _(manual, tmp_path):
    _replace_row(manual, 2, "c01,hostile,Train")


@_case("unknown_label", CSV, r"^:5: unknown label 'romantic'")
def _(manual, tmp_path):
    _replace_row(manual, 5, "c04,romantic,train")


# ------------------------------------------------------------------------- feature files


@_case("nan_feature", "features/c08.npz", r"^: stream 'text' holds NaN or inf values$")
def _(manual, tmp_path):
    edit_npz(manual / "features" / "c08.npz", text=with_value("text", (3, 1), np.nan))


@_case("inf_feature", "features/c02.npz", r"^: stream 'audio' holds NaN or inf values$")
def _(manual, tmp_path):
    edit_npz(manual / "features" / "c02.npz", audio=with_value("audio", (0, 0), -np.inf))


@_case("feature_beyond_float32", "features/c02.npz", r"^: stream 'audio' .*beyond float32")
def _(manual, tmp_path):
    edit_npz(manual / "features" / "c02.npz", audio=with_value("audio", (0, 0), 1e39, np.float64))


@_case("string_feature", "features/c05.npz",
       r"^: stream 'audio' must hold floating-point features, got dtype <U")
def _(manual, tmp_path):
    edit_npz(manual / "features" / "c05.npz", audio=lambda a: a["audio"].astype(str))


@_case("int_feature", "features/c05.npz", r"^: stream 'person_b' .* got dtype int")
def _(manual, tmp_path):
    edit_npz(manual / "features" / "c05.npz", person_b=lambda a: a["person_b"].astype(np.int64))


@_case("pickled_object_array", "features/c06.npz", r"^: not a readable \.npz file")
def _(manual, tmp_path):
    edit_npz(manual / "features" / "c06.npz", text=lambda a: a["text"].astype(object))


@_case("float_mask_with_nan", "features/c03.npz",
       r"^: mask 'person_a_mask' must hold only 0/1 \(or True/False\), found nan")
def _(manual, tmp_path):
    edit_npz(manual / "features" / "c03.npz",
             person_a_mask=with_value("person_a_mask", 2, np.nan, np.float32))


@_case("float_mask_not_0_or_1", "features/c03.npz", r"^: mask 'audio_mask' .* found 0\.5")
def _(manual, tmp_path):
    edit_npz(manual / "features" / "c03.npz",
             audio_mask=with_value("audio_mask", 0, 0.5, np.float64))


@_case("string_mask", "features/c03.npz", r"^: mask 'text_mask' must be bool or 0/1")
def _(manual, tmp_path):
    edit_npz(manual / "features" / "c03.npz", text_mask=lambda a: a["text_mask"].astype(str))


@_case("truncated_npz", "features/c07.npz", r"^: not a readable \.npz file")
def _(manual, tmp_path):
    path = manual / "features" / "c07.npz"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


@_case("empty_npz", "features/c07.npz", r"^: not a readable \.npz file")
def _(manual, tmp_path):
    (manual / "features" / "c07.npz").write_bytes(b"")


@_case("text_file_as_npz", "features/c07.npz", r"^: not a readable \.npz file")
def _(manual, tmp_path):
    (manual / "features" / "c07.npz").write_text("clip_id,label\n")


@_case("missing_feature_file", "features/c09.npz", r"^: feature file not found$")
def _(manual, tmp_path):
    (manual / "features" / "c09.npz").unlink()


@_case("missing_stream", "features/c02.npz", r"^: missing array 'background'")
def _(manual, tmp_path):
    edit_npz(manual / "features" / "c02.npz", background=None)


@_case("missing_mask", "features/c02.npz", r"^: missing array .*'person_b_mask'")
def _(manual, tmp_path):
    edit_npz(manual / "features" / "c02.npz", person_b_mask=None)


@_case("mask_length", "features/c06.npz", r"^: mask 'text_mask' must be \[T\] with T=5")
def _(manual, tmp_path):
    edit_npz(manual / "features" / "c06.npz", text_mask=lambda a: a["text_mask"][:-1])


@_case("streams_of_different_length", "features/c06.npz", r"^: stream 'person_b' has T=4")
def _(manual, tmp_path):
    edit_npz(manual / "features" / "c06.npz", person_b=lambda a: a["person_b"][:-1],
              person_b_mask=lambda a: a["person_b_mask"][:-1])


@_case("other_feature_size", "features/c05.npz", r"^: stream 'audio' has d=7, dataset uses d=5")
def _(manual, tmp_path):
    edit_npz(manual / "features" / "c05.npz", audio=lambda a: np.zeros((9, 7), np.float32))


@_case("one_dimensional_stream", "features/c02.npz", r"^: stream 'text' must be \[T, d\]")
def _(manual, tmp_path):
    edit_npz(manual / "features" / "c02.npz", text=lambda a: a["text"][:, 0])


@_case("no_time_steps", "features/c01.npz", r"^: no time steps")
def _(manual, tmp_path):
    edit_npz(manual / "features" / "c01.npz", **{k: (lambda a, k=k: a[k][:0]) for s in ef.STREAMS
                                for k in (s, s + "_mask")})


# --------------------------------------------------------------------------------- tests


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input_is_refused_with_one_line_naming_the_file(case, tmp_path):
    manual = copy_dummy_data(eb.Builder, tmp_path)
    case.breakage(manual, tmp_path)
    data_dir = tmp_path / "data"
    with pytest.raises(FormatError) as e:
        build_dataset("erato", str(manual), str(data_dir), "array_record")
    message = str(e.value)
    assert isinstance(e.value, ef.EratoFormatError)
    assert "\n" not in message
    prefix = str(manual / case.file)
    assert message.startswith(prefix), message
    assert re.search(case.detail, message[len(prefix):]), message
    assert_nothing_built(data_dir)


def test_case_names_are_unique():
    assert len({c.name for c in CASES}) == len(CASES)


def test_symlinks_out_are_followed_when_allowed_and_recorded(tmp_path, caplog):
    manual = copy_dummy_data(eb.Builder, tmp_path)
    move_out(manual, tmp_path, "features")
    with caplog.at_level(logging.WARNING, logger=eb.__name__):
        builder_dir = build_dataset("erato", str(manual), str(tmp_path / "data"),
                                    "array_record", allow=("symlinks",))
    assert "JAXAFFECT_ALLOW_SYMLINKS" not in os.environ  # the allowance ends with the build
    meta = built_metadata(builder_dir)
    assert meta["symlinks_outside_release"] == {
        "allowed_by": "symlinks", "count": 9, "clip_ids": ["c01", "c02", "c03", "c04", "c05"]}
    assert "9 feature file(s) are symlinks to outside" in caplog.text
    plain = build_dataset("erato", str(copy_dummy_data(eb.Builder, tmp_path / "b")),
                          str(tmp_path / "data_b"), "array_record", allow=("symlinks",))
    assert "symlinks_outside_release" not in built_metadata(plain)


def test_cli_exits_1_with_one_stderr_line(tmp_path):
    """What a user sees: `jaxaffect build erato` in a fresh process: one stderr line (TFDS's
    own warnings and banners are silenced by the build)."""
    case = next(c for c in CASES if c.name == "annotations_gbk")
    manual = copy_dummy_data(eb.Builder, tmp_path)
    case.breakage(manual, tmp_path)
    done = run_cli("build", "erato", "--manual_dir", str(manual), "--data_dir",
                   str(tmp_path / "data"), "--file_format", "array_record")
    assert done.returncode == 1, done
    assert done.stdout == ""
    ours = done.stderr.splitlines()
    assert len(ours) == 1, done.stderr
    assert re.fullmatch(re.escape(f"jaxaffect build: error: {manual / CSV}:5: not UTF-8 ")
                        + r"\(byte 0x[0-9a-f]{2} at offset \d+\); save the file as UTF-8",
                        ours[0]), ours[0]
    assert_nothing_built(tmp_path / "data")


def test_cli_error_while_writing_is_one_line_too(tmp_path, capfd):
    """A feature file is read while TFDS writes the examples: still exactly one stderr line
    (TFDS's progress bars are off during builds), without a traceback."""
    case = next(c for c in CASES if c.name == "nan_feature")
    manual = copy_dummy_data(eb.Builder, tmp_path)
    case.breakage(manual, tmp_path)
    capfd.readouterr()
    code = cli.main(["build", "erato", "--manual_dir", str(manual), "--data_dir",
                     str(tmp_path / "data"), "--file_format", "array_record"])
    lines = [ln for ln in capfd.readouterr().err.splitlines() if ln.strip()]
    assert code == 1
    assert len(lines) == 1, lines
    assert lines[-1].endswith(f"jaxaffect build: error: {manual / case.file}: stream 'text' "
                              "holds NaN or inf values")
    assert_nothing_built(tmp_path / "data")
