"""Bad inputs to the VideoEmotion-8 and Ekman-6 builders (classInd.txt + split lists +
features/<Class>/<video>.npz): each case breaks a copy of the builder's dummy data in one way
and must be refused with one FormatError line naming the file and line, leaving nothing built;
what an `--allow` lets through builds and is recorded in the build's metadata.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from builder_breakage import (
    Breakage,
    append_line,
    assert_nothing_built,
    assert_refused,
    assert_refused_build,
    built_metadata,
    feature_breakages,
    lines,
    move_out_and_link,
    replace_line,
    run_cli,
    write_lines,
)

from jaxaffect.data.build import build_dataset
from jaxaffect.data.release_files import ALLOWANCES
from jaxaffect.errors import FormatError
from tfds_builders.ekman6 import ekman6_dataset_builder as ek6
from tfds_builders.testing import copy_dummy_data
from tfds_builders.video_emotion8 import video_emotion8_dataset_builder as ve8

BUILDERS = {"video_emotion8": ve8, "ekman6": ek6}


def _ind(m: Path) -> Path:
    return m / "classInd.txt"


def _train(m: Path) -> Path:
    return m / "trainlist01.txt"


def _test(m: Path) -> Path:
    return m / "testlist01.txt"


def _id(line: bytes) -> str:
    return line.split()[0].decode()


def _npz(m: Path, video_id: str) -> Path:
    return m / "features" / f"{video_id}.npz"


# ----------------------------------------------------------------- list and index breakages
# Each takes the manual_dir and the benchmark's classes and returns the message's pieces.

def empty_train_list(m, classes):
    _train(m).write_bytes(b"")
    return [f"{_train(m)}: no videos listed"]


def blank_test_list(m, classes):
    _test(m).write_bytes(b"\n  \r\n\t\n")
    return [f"{_test(m)}: no videos listed"]


def train_test_overlap(m, classes):
    vid = _id(lines(_test(m))[0])
    n = append_line(_train(m), f"{vid} {classes.index(vid.split('/')[0]) + 1}")
    return [f"{_test(m)}:1: 1 video(s) are in more than one split list", vid,
            f"also at {_train(m)}:{n}", "--allow split_overlap"]


def gbk_class_index(m, classes):
    replace_line(_ind(m), 3, f"3 {classes[2]}恐惧".encode("gbk"))
    return [f"{_ind(m)}:3: not UTF-8"]


def gbk_train_list(m, classes):
    replace_line(_train(m), 2, f"{classes[0]}/愤怒的视频 1".encode("gbk"))
    return [f"{_train(m)}:2: not UTF-8"]


def latin1_test_list(m, classes):
    replace_line(_test(m), 1, f"{classes[0]}/café".encode("latin-1"))
    return [f"{_test(m)}:1: not UTF-8"]


def path_escape(m, classes):
    (m.parent / "outside").mkdir()
    shutil.copy(_npz(m, _id(lines(_train(m))[0])), m.parent / "outside" / "evil.npz")
    n = append_line(_train(m), f"{classes[0]}/../../../../outside/evil 1")
    return [f"{_train(m)}:{n}: video id", "not a plain 'Class/video' path"]


def absolute_path(m, classes):
    n = append_line(_train(m), "/etc/passwd 1")
    return [f"{_train(m)}:{n}: empty class or video name"]


def symlink_escape(m, classes):
    folder = _id(lines(_train(m))[0]).split("/")[0]
    move_out_and_link(m / "features" / folder, m.parent / "elsewhere" / folder)
    return [f"{_train(m)}:1: 'features/{folder}/", "is a symlink to", "outside the release"]


def symlinked_list_file(m, classes):
    move_out_and_link(_test(m), m.parent / "lists" / "testlist01.txt")
    return [f"{m}: 'testlist01.txt' is a symlink to", "outside the release"]


def duplicate_line(m, classes):
    first = lines(_train(m))[0]
    n = append_line(_train(m), first)
    return [f"{_train(m)}:{n}: duplicate video {_id(first)!r} (first on line 1)"]


def unknown_class(m, classes):
    n = append_line(_train(m), "Rage/some_video 1")
    return [f"{_train(m)}:{n}: unknown class 'Rage'"]


def label_out_of_range(m, classes):
    n = append_line(_train(m), f"{classes[0]}/some_video {len(classes) + 1}")
    return [f"{_train(m)}:{n}: label {len(classes) + 1} outside 1..{len(classes)}"]


def label_disagrees_with_folder(m, classes):
    vid = _id(lines(_train(m))[0])
    other = (classes.index(vid.split("/")[0]) + 1) % len(classes)
    replace_line(_train(m), 1, f"{vid} {other + 1}")
    return [f"{_train(m)}:1: label {other + 1} ({classes[other]}) disagrees with folder"]


def label_not_an_integer(m, classes):
    vid = _id(lines(_train(m))[0])
    replace_line(_train(m), 1, f"{vid} ²")  # str.isdigit() is True, int() fails
    return [f"{_train(m)}:1: label '²' is not an integer"]


def missing_label_column(m, classes):
    n = append_line(_train(m), f"{classes[0]}/some_video")
    return [f"{_train(m)}:{n}: 1 field(s) but line 1 has 2"]


def extra_column(m, classes):
    n = append_line(_train(m), f"{classes[0]}/some_video 1 1")
    return [f"{_train(m)}:{n}: expected 'Class/video_id [label]'"]


def class_renamed(m, classes):
    replace_line(_ind(m), 2, "2 Rage")
    return [f"{_ind(m)}:2: class 2 is 'Rage', expected {classes[1]!r}"]


def class_missing(m, classes):
    write_lines(_ind(m), lines(_ind(m))[:-1])
    return [f"{_ind(m)}: {len(classes) - 1} classes, expected {len(classes)}"]


def class_index_empty(m, classes):
    _ind(m).write_bytes(b"\n")
    return [f"{_ind(m)}: no classes"]


def class_id_duplicate(m, classes):
    replace_line(_ind(m), 2, f"1 {classes[1]}")
    return [f"{_ind(m)}:2: duplicate class id 1 (first on line 1)"]


def class_id_not_ascii(m, classes):
    replace_line(_ind(m), 1, f"١ {classes[0]}")  # an Arabic-Indic digit
    return [f"{_ind(m)}:1: expected '<id> <name>'"]


def missing_class_index(m, classes):
    _ind(m).unlink()
    return [f"{_ind(m)}: class index file not found"]


def missing_test_list(m, classes):
    _test(m).unlink()
    return [f"{_test(m)}: split list not found"]


def missing_feature_file(m, classes):
    vid = _id(lines(_train(m))[1])
    _npz(m, vid).unlink()
    return [f"{_npz(m, vid)}: feature file not found", f"(listed at {_train(m)}:2)"]


def feature_file_is_a_folder(m, classes):
    vid = _id(lines(_test(m))[0])
    _npz(m, vid).unlink()
    _npz(m, vid).mkdir()
    return [f"{_npz(m, vid)}: not a file", f"(listed at {_test(m)}:1)"]


def _last_video(m: Path) -> Path:
    return _npz(m, max(_id(ln) for ln in lines(_train(m)) + lines(_test(m))))


CASES = [Breakage(f.__name__, f) for f in (
    empty_train_list, blank_test_list, train_test_overlap, gbk_class_index, gbk_train_list,
    latin1_test_list, path_escape, absolute_path, symlink_escape, symlinked_list_file,
    duplicate_line, unknown_class, label_out_of_range, label_disagrees_with_folder,
    label_not_an_integer, missing_label_column, extra_column, class_renamed, class_missing,
    class_index_empty, class_id_duplicate, class_id_not_ascii, missing_class_index,
    missing_test_list, missing_feature_file, feature_file_is_a_folder,
)] + feature_breakages(_last_video)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_bad_input_is_refused(name, case, tmp_path):
    module = BUILDERS[name]
    manual = copy_dummy_data(module.Builder, tmp_path)
    needles = case.apply(manual, module.Builder.CLASS_NAMES)
    assert_refused_build(module, manual, tmp_path / "data", needles, case.late)


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_split_overlap_builds_when_allowed_and_is_recorded(name, tmp_path):
    module = BUILDERS[name]
    manual = copy_dummy_data(module.Builder, tmp_path)
    train_test_overlap(manual, module.Builder.CLASS_NAMES)
    vid = _id(lines(_test(manual))[0])
    builder_dir = build_dataset(name, str(manual), str(tmp_path / "data"), "array_record",
                                allow=("split_overlap",))
    meta = built_metadata(builder_dir)
    assert meta["split_overlap"] == {"allowed_by": "split_overlap", "count": 1,
                                     "video_ids": [vid]}
    assert "symlinks_outside_release" not in meta
    builder = module.Builder(data_dir=str(tmp_path / "data"))
    assert builder.info.splits["train"].num_examples == len(lines(_train(manual)))
    assert builder.info.splits["test"].num_examples == len(lines(_test(manual)))


def test_symlinks_build_when_allowed_and_are_recorded(tmp_path):
    manual = copy_dummy_data(ve8.Builder, tmp_path)
    symlink_escape(manual, ve8.Builder.CLASS_NAMES)
    folder = _id(lines(_train(manual))[0]).split("/")[0]
    linked = sorted(_id(ln) for ln in lines(_train(manual)) + lines(_test(manual))
                    if _id(ln).startswith(folder + "/"))
    builder_dir = build_dataset("video_emotion8", str(manual), str(tmp_path / "data"),
                                "array_record", allow=("symlinks",))
    meta = built_metadata(builder_dir)
    assert meta["symlinks_outside_release"] == {"allowed_by": "symlinks", "count": len(linked),
                                                "video_ids": linked}
    assert "split_overlap" not in meta


def test_allowances_let_nothing_else_through(tmp_path):
    manual = copy_dummy_data(ek6.Builder, tmp_path)
    needles = path_escape(manual, ek6.Builder.CLASS_NAMES)
    with pytest.raises(FormatError) as e:
        build_dataset("ekman6", str(manual), str(tmp_path / "data"), "array_record",
                      allow=tuple(ALLOWANCES))
    assert_refused(e.value, needles)
    assert not os.environ.get("JAXAFFECT_ALLOW_SYMLINKS")  # the allowance ended with the call
    assert_nothing_built(tmp_path / "data")


@pytest.mark.parametrize("case", [gbk_train_list, "nan_mask"],
                         ids=["found_before_the_build", "found_while_generating"])
def test_cli_build_of_a_broken_release_prints_one_line(case, tmp_path):
    """`jaxaffect build` in a fresh process: exit 1, nothing on stdout, one stderr line."""
    if isinstance(case, str):
        case = next(c.apply for c in CASES if c.name == case)
    manual = copy_dummy_data(ve8.Builder, tmp_path)
    needles = case(manual, ve8.Builder.CLASS_NAMES)
    done = run_cli("build", "video_emotion8", "--manual_dir", str(manual), "--data_dir",
                   str(tmp_path / "data"), "--file_format", "array_record")
    assert done.returncode == 1, done
    assert done.stdout == ""
    assert len(done.stderr.splitlines()) == 1, done.stderr
    assert done.stderr.startswith(f"jaxaffect build: error: {needles[0]}"), done.stderr
    assert all(n in done.stderr for n in needles[1:]), done.stderr
    assert_nothing_built(tmp_path / "data")
