"""Bad inputs to the LIRIS-ACCEDE builder (ACCEDEranking.txt + ACCEDEsets.txt +
features/ACCEDExxxxx.npz): each case breaks a copy of the dummy data in one way and must be
refused with one FormatError line naming the file and line (and field), leaving nothing
built; symlinks out of the release build with `--allow symlinks` and are recorded.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from builder_breakage import (
    Breakage,
    append_line,
    assert_refused_build,
    built_metadata,
    feature_breakages,
    lines,
    move_out_and_link,
    replace_line,
    write_lines,
)

from jaxaffect.data.build import build_dataset
from tfds_builders.liris_accede import liris_accede_dataset_builder as liris
from tfds_builders.testing import copy_dummy_data


def _rank(m: Path) -> Path:
    return m / "ACCEDEranking.txt"


def _sets(m: Path) -> Path:
    return m / "ACCEDEsets.txt"


def _set_cell(m: Path, lineno: int, column: int, text: str, path=_rank) -> None:
    """Line `lineno` of a file with tab-separated cell `column` replaced."""
    cells = lines(path(m))[lineno - 1].decode().split("\t")
    cells[column] = text
    replace_line(path(m), lineno, "\t".join(cells))


def _field_breakage(name: str, column: int, text: str, phrase: str, path=_rank) -> Breakage:
    """Line 3 of the file with one cell replaced; the message names file:3 and `phrase`."""
    def apply(m, *_):
        _set_cell(m, 3, column, text, path)
        return [f"{path(m)}:3: {phrase}"]
    return Breakage(name, apply)


FIELD_CASES = [
    _field_breakage("nan_valence", 4, "nan", "bad valenceValue 'nan' (expected a finite"),
    _field_breakage("inf_arousal", 5, "inf", "bad arousalValue 'inf'"),
    _field_breakage("overflowing_value", 4, "1e999", "bad valenceValue '1e999'"),
    _field_breakage("decimal_comma", 5, "2,5", "bad arousalValue '2,5'"),
    _field_breakage("fullwidth_digits", 4, "３.０", "bad valenceValue '３.０'"),
    _field_breakage("underscore_number", 4, "2_5", "bad valenceValue '2_5'"),
    _field_breakage("value_off_scale", 4, "7.5", "valenceValue 7.5 is outside the 1-5 scale"),
    _field_breakage("negative_variance", 7, "-0.1", "arousalVariance -0.1 is negative"),
    _field_breakage("nan_variance", 6, "NaN", "bad valenceVariance 'NaN'"),
    _field_breakage("fractional_rank", 2, "12.0", "bad valenceRank '12.0'"),
    _field_breakage("negative_id", 0, "-1", "bad id '-1'"),
    _field_breakage("empty_name", 1, "", "name '' is not a plain clip file name"),
    _field_breakage("set_out_of_range", 2, "3", "set 3 not in 0/1/2", path=_sets),
    _field_breakage("set_garbage", 2, "train", "bad set 'train'", path=_sets),
    _field_breakage("path_escape", 1, "../../outside/evil.mp4",
                    "name '../../outside/evil.mp4' is not a plain clip file name"),
    _field_breakage("absolute_name", 1, "/etc/passwd", "name '/etc/passwd' is not a plain"),
    _field_breakage("dot_dot_name", 1, "..", "name '..' is not a plain"),
]


def empty_ranking(m, *_):
    _rank(m).write_bytes(b"")
    return [f"{_rank(m)}: empty file"]


def header_only(m, *_):
    write_lines(_sets(m), lines(_sets(m))[:1])
    return [f"{_sets(m)}: no clips listed (only the header)"]


def wrong_header(m, *_):
    replace_line(_rank(m), 1, b"id name valenceRank arousalRank")
    return [f"{_rank(m)}:1: expected header"]


def missing_field(m, *_):
    replace_line(_sets(m), 4, lines(_sets(m))[3].rsplit(b"\t", 1)[0])
    return [f"{_sets(m)}:4: expected 3 tab-separated fields, got 2"]


def gbk_ranking(m, *_):
    _set_cell(m, 3, 1, "片段00001.mp4")
    replace_line(_rank(m), 3, lines(_rank(m))[2].decode().encode("gbk"))
    return [f"{_rank(m)}:3: not UTF-8"]


def latin1_sets(m, *_):
    _set_cell(m, 2, 1, "clipé.mp4", path=_sets)
    replace_line(_sets(m), 2, lines(_sets(m))[1].decode().encode("latin-1"))
    return [f"{_sets(m)}:2: not UTF-8"]


def duplicate_id(m, *_):
    _set_cell(m, 4, 0, "1")
    return [f"{_rank(m)}:4: duplicate id 1 (first on line 3)"]


def duplicate_name(m, *_):
    _set_cell(m, 4, 1, "ACCEDE00001.mp4", path=_sets)
    return [f"{_sets(m)}:4: duplicate name 'ACCEDE00001.mp4' (first on line 3)"]


def same_clip_id_twice(m, *_):
    _set_cell(m, 4, 1, "ACCEDE00001.avi")
    _set_cell(m, 4, 1, "ACCEDE00001.avi", path=_sets)
    return [f"{_rank(m)}:4: name 'ACCEDE00001.avi' gives the clip id 'ACCEDE00001', as does "
            f"'ACCEDE00001.mp4' at {_rank(m)}:3"]


def clip_missing_from_sets(m, *_):
    write_lines(_sets(m), [ln for i, ln in enumerate(lines(_sets(m))) if i != 5])
    return [f"{_rank(m)}:6: clip id 397 is not in {_sets(m)}"]


def clip_missing_from_ranking(m, *_):
    n = append_line(_sets(m), "900\tACCEDE00900.mp4\t0")
    return [f"{_sets(m)}:{n}: clip id 900 is not in {_rank(m)}"]


def names_disagree(m, *_):
    _set_cell(m, 5, 1, "ACCEDE00033.mp4", path=_sets)
    return [f"{_sets(m)}:5: clip 3 is named 'ACCEDE00033.mp4' here but 'ACCEDE00003.mp4' at "
            f"{_rank(m)}:5"]


def no_validation_clip(m, *_):
    write_lines(_sets(m), [ln.replace(b"\t2", b"\t1") for ln in lines(_sets(m))])
    return [f"{_sets(m)}: no clip in set 2 (validation)"]


def missing_annotation_file(m, *_):
    _sets(m).unlink()
    return [f"{_sets(m)}: annotation file not found"]


def symlinked_annotation_file(m, *_):
    move_out_and_link(_rank(m), m.parent / "annotations" / "ACCEDEranking.txt")
    return [f"{m}: 'ACCEDEranking.txt' is a symlink to", "outside the release"]


def symlink_escape(m, *_):
    move_out_and_link(m / "features", m.parent / "elsewhere" / "features")
    return [f"{_rank(m)}:2: 'features/ACCEDE00000.npz' is a symlink to", "outside the release"]


def missing_feature_file(m, *_):
    path = m / "features" / "ACCEDE00398.npz"
    path.unlink()
    return [f"{path}: feature file not found (listed at {_rank(m)}:7)"]


CASES = FIELD_CASES + [Breakage(f.__name__, f) for f in (
    empty_ranking, header_only, wrong_header, missing_field, gbk_ranking, latin1_sets,
    duplicate_id, duplicate_name, same_clip_id_twice, clip_missing_from_sets,
    clip_missing_from_ranking, names_disagree, no_validation_clip, missing_annotation_file,
    symlinked_annotation_file, symlink_escape, missing_feature_file,
)] + feature_breakages(lambda m: m / "features" / "ACCEDE00504.npz")


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_bad_input_is_refused(case, tmp_path):
    manual = copy_dummy_data(liris.Builder, tmp_path)
    needles = case.apply(manual)
    assert_refused_build(liris, manual, tmp_path / "data", needles, case.late)


def test_symlinks_build_when_allowed_and_are_recorded(tmp_path):
    manual = copy_dummy_data(liris.Builder, tmp_path)
    symlink_escape(manual)
    symlinked_annotation_file(manual)
    builder_dir = build_dataset("liris_accede", str(manual), str(tmp_path / "data"),
                                "array_record", allow=("symlinks",))
    meta = built_metadata(builder_dir)
    assert meta["symlinks_outside_release"] == {
        "allowed_by": "symlinks", "count": 9,
        "video_ids": ["ACCEDE00000", "ACCEDE00001", "ACCEDE00002", "ACCEDE00003",
                      "ACCEDE00397"]}
    assert meta["stream_dims"] == {"image": 4, "motion": 3, "audio": 2}


def test_intact_dummy_data_records_no_allowance(tmp_path):
    manual = copy_dummy_data(liris.Builder, tmp_path)
    builder_dir = build_dataset("liris_accede", str(manual), str(tmp_path / "data"),
                                "array_record")
    assert set(built_metadata(builder_dir)) == {"stream_dims"}
