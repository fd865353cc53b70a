"""Broken copies of the memor dummy release: each is refused with one MemorFormatError line that
starts with the faulty file and names the key, line or index, and leaves nothing in the
data_dir; the cheap pre-build check (`check_manual_dir`) gives the same line, except for
feature contents only read while writing ("late" cases).

Every case copies `dummy_data` and applies one breakage; add new ones to the table.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from builder_breakage import assert_nothing_built, assert_refused, move_out, run_cli

from jaxaffect import torch_save
from jaxaffect.data.build import build_dataset
from jaxaffect.families.amer import release_format as rf
from tfds_builders.memor import make_dummy_data as dd
from tfds_builders.memor import memor_dataset_builder as mb
from tfds_builders.testing import copy_dummy_data

NAME = "memor"
ANNO, DATA = rf.ANNO_FILE, rf.DATA_FILE
TRAIN, TEST = rf.ID_FILES["train"], rf.ID_FILES["test"]
AUDIO, TEXT, PERS = rf.AUDIO_FILE, rf.TEXT_FILE, rf.PERSONALITY_FILE
# The first clip (sorted) with visual features fixes the build's sizes and is read before
# writing; late cases break another clip's tensors (T_CLIP: 23 faces, 125 frames).
LATE_CLIP = dd.T_CLIP


def _pt(part: str, clip: str = LATE_CLIP) -> str:
    return f"{rf.TENSOR_DIRS[part]}/{clip}.pt"


def _names(clip: str) -> str:
    return f"{rf.FACE_NAMES_DIR}/{clip}.txt"


def _edit_json(rel: str, edit: Callable[[dict], object]) -> Callable[[Path], None]:
    def brk(m: Path) -> None:
        obj = json.loads((m / rel).read_text())
        edit(obj)
        (m / rel).write_text(json.dumps(obj))
    return brk


def _set(*keys_value):
    *keys, value = keys_value

    def edit(obj):
        for k in keys[:-1]:
            obj = obj[k]
        obj[keys[-1]] = value
    return edit


def _pop(*keys):
    def edit(obj):
        for k in keys[:-1]:
            obj = obj[k]
        del obj[keys[-1]]
    return edit


def _lines(rel: str, change: Callable[[list[str]], list[str]]) -> Callable[[Path], None]:
    def brk(m: Path) -> None:
        lines = (m / rel).read_text().splitlines()
        (m / rel).write_text("".join(f"{ln}\n" for ln in change(lines)))
    return brk


def _with(index: int, text: str) -> Callable[[list[str]], list[str]]:
    def change(lines):
        lines[index] = text
        return lines
    return change


def _tensor(part: str, make: Callable[[np.ndarray], object]) -> Callable[[Path], None]:
    def brk(m: Path) -> None:
        x = rf.read_tensor(m / _pt(part))
        torch_save.save(m / _pt(part), make(x))
    return brk


def _nan(x: np.ndarray) -> np.ndarray:
    x = x.copy()
    x[1, 1] = np.nan
    return x


def _seg_len_mismatch(obj):
    obj[dd.SHARED]["seg_end"].append(99.0)


# (case id, breakage, [the file the message starts with (relative), pieces it contains], late)
CASES: list[tuple[str, Callable[[Path], None], list[str], bool]] = [
    ("missing anno.json", lambda m: (m / ANNO).unlink(), [ANNO, "file not found"], False),
    ("anno.json truncated", lambda m: (m / ANNO).write_text((m / ANNO).read_text()[:300]),
     [f"{ANNO}:1:", "not valid JSON"], False),
    ("anno.json not UTF-8", lambda m: (m / ANNO).write_bytes(
        (m / ANNO).read_bytes().replace(b"joy", "joié".encode("cp1252"), 1)),
     [f"{ANNO}:1:", "not UTF-8"], False),
    ("NaN moment", lambda m: (m / ANNO).write_text(
        (m / ANNO).read_text().replace('"moment":301.0', '"moment":NaN', 1)),
     [ANNO, "NaN is not a JSON number"], False),
    ("missing key in an annotation", _edit_json(ANNO, _pop("primary", 3, "moment")),
     [ANNO, "primary[3]", "missing key 'moment'"], False),
    ("string moment", _edit_json(ANNO, _set("primary", 4, "moment", "4.0")),
     [ANNO, "primary[4]['moment'] must be a number", "'4.0'"], False),
    ("character out of range", _edit_json(ANNO, _set("primary", 0, "character", 8)),
     [ANNO, "primary[0]['character'] = 8 is out of range"], False),
    ("unknown fine emotion", _edit_json(ANNO, _set("fine_grained", 5, "emotion", "happiness")),
     [ANNO, "fine_grained[5]['emotion']", "unknown emotion 'happiness'"], False),
    ("fine-only emotion in the primary list", _edit_json(
        ANNO, _set("primary", 1, "emotion", "annoyance")),
     [ANNO, "primary[1]['emotion']", "unknown emotion 'annoyance'"], False),
    ("misaligned moment", _edit_json(ANNO, _set("fine_grained", 2, "moment", 52.0)),
     [ANNO, "fine_grained[2]", "does not match primary[2]"], False),
    ("lists of different length", _edit_json(ANNO, _pop("fine_grained", 16)),
     [ANNO, "'primary' has 17 entries and 'fine_grained' 16", "index 16"], False),
    ("clip of a listed annotation missing", _edit_json(DATA, _pop(dd.EMPTY_SLICE)),
     [DATA, f"no clip {dd.EMPTY_SLICE!r}", "primary[8]", "train_id.txt:6"], False),
    ("missing key in data.json", _edit_json(DATA, _pop(dd.SHARED, "seg_end")),
     [DATA, f"[{dd.SHARED!r}]", "missing key 'seg_end'"], False),
    ("segment lists of different length", _edit_json(DATA, _seg_len_mismatch),
     [DATA, f"[{dd.SHARED!r}]", "segment lists differ in length"], False),
    ("infinite start", lambda m: (m / DATA).write_text(
        (m / DATA).read_text().replace('"start":300.0', '"start":1e999')),
     [DATA, f"[{dd.VAL_CLIP!r}]['start'] must be finite"], False),
    ("speaker out of range", _edit_json(DATA, _set(dd.T_CLIP, "speakers", 1, 9)),
     [DATA, f"[{dd.T_CLIP!r}]['speakers'][1] = 9 is out of range"], False),
    ("clip name with ../", _edit_json(DATA, _set("../x", {})),
     [DATA, "key: clip '../x' is not a plain file name"], False),
    ("id not a number", _lines(TRAIN, _with(2, "two")),
     [f"{TRAIN}:3:", "expected an annotation index", "'two'"], False),
    ("id out of range", _lines(TRAIN, lambda ls: [*ls, "99"]),
     [f"{TRAIN}:11:", "index 99 is out of range", "17 annotations"], False),
    ("id twice in one list", _lines(TRAIN, lambda ls: [*ls, "0"]),
     [f"{TRAIN}:11:", "index 0 is already on line 1"], False),
    ("id in both lists", _lines(TEST, lambda ls: [*ls, "4"]),
     [f"{TEST}:7:", "index 4 is also in train_id.txt (line 4)"], False),
    ("missing test_id.txt", lambda m: (m / TEST).unlink(), [TEST, "file not found"], False),
    ("audio vector of the wrong length", _edit_json(
        AUDIO, lambda o: o[f"{dd.SHARED}+1"].pop()),
     [AUDIO, f"['{dd.SHARED}+1']", "vector of length 11", "has 12"], False),
    ("text vector with a string", _edit_json(TEXT, _set(f"{dd.T_CLIP}+1", 0, "0.5")),
     [TEXT, f"['{dd.T_CLIP}+1']", "expected a list of numbers"], False),
    ("text vector with NaN", lambda m: (m / TEXT).write_text(
        (m / TEXT).read_text().replace("[", "[NaN,", 1)), [TEXT, "NaN is not a JSON number"],
     False),
    ("text of a speaking person missing", _edit_json(TEXT, _pop(f"{dd.SHARED}+0")),
     [TEXT, f"missing key '{dd.SHARED}+0'", "spoken by sheldon", "annotation 4"], False),
    ("personality with 7 lines", _lines(PERS, lambda ls: ls[:7]),
     [PERS, "7 lines, expected 8"], False),
    ("personality not numbers", _lines(PERS, _with(2, "a,b")),
     [f"{PERS}:3:", "comma-separated numbers"], False),
    ("personality row too short", _lines(PERS, lambda ls: _with(4, ls[4].rsplit(",", 1)[0])(ls)),
     [f"{PERS}:5:", "117 values, line 1 has 118"], False),
    ("personality NaN", _lines(PERS, lambda ls: _with(1, "nan" + ls[1][ls[1].index(","):])(ls)),
     [f"{PERS}:2:", "NaN or inf"], False),
    ("face names missing", lambda m: (m / _names(dd.FEW_FACES)).unlink(),
     [_names(dd.FEW_FACES), "file not found"], False),
    ("face name malformed", _lines(_names(dd.MORE_CLIP), lambda ls: [
        ls[0].replace("3_Penny.jpg", "3-Penny.jpg", 1)]),
     [_names(dd.MORE_CLIP), "entry 1 '3-Penny.jpg' is not '<frame>_<Name>.jpg'"], False),
    ("face names on two lines", _lines(_names(dd.MORE_CLIP), lambda ls: [*ls, ls[0]]),
     [_names(dd.MORE_CLIP), "2 non-blank lines"], False),
    ("face tensor missing", lambda m: (m / _pt("face")).unlink(),
     [_pt("face"), "file not found", f"clip {LATE_CLIP!r}", "more than 10 faces"], False),
    ("symlink out of the release", lambda m: move_out(m, m.parent, rf.TENSOR_DIRS["object"]),
     [DATA, f"[{dd.VAL_CLIP!r}]: '{_pt('object', dd.VAL_CLIP)}' is a symlink to",
      "outside the release folder"], False),
    ("object features of another size", _tensor("object", lambda x: x[:, :4]),
     [_pt("object"), "object features of size 4, the build uses 5"], True),
    ("NaN in environment features", _tensor("environment", _nan),
     [_pt("environment"), "NaN or inf"], True),
    ("integer face features", _tensor("face", lambda x: x.astype(np.int64)),
     [_pt("face"), "floating-point", "int64"], True),
    ("a dict instead of a tensor", _tensor("face", lambda x: {"faces": x}),
     [_pt("face"), "expected one tensor [n, D], got dict"], True),
    ("face rows do not match the names", _tensor("face", lambda x: x[:-1]),
     [_pt("face"), "22 face rows", f"{LATE_CLIP}.txt names 23 faces"], True),
    ("not a torch file", lambda m: (m / _pt("environment")).write_bytes(b"not a zip\n"),
     [_pt("environment"), "not a"], True),
]


@pytest.fixture
def manual(tmp_path):
    return copy_dummy_data(mb.Builder, tmp_path)


@pytest.mark.parametrize("breakage,needles,late", [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_refused_with_one_line_naming_the_file(manual, tmp_path, breakage, needles, late):
    breakage(manual)
    data_dir = tmp_path / "data"
    with pytest.raises(rf.MemorFormatError) as e:
        build_dataset(NAME, str(manual), str(data_dir), "array_record")
    assert_refused(e.value, [f"{manual / needles[0]}", *needles[1:]])
    assert_nothing_built(data_dir)
    if late:  # contents read only while writing: the cheap check lets it through
        mb.check_manual_dir(str(manual))
    else:
        with pytest.raises(rf.MemorFormatError) as early:
            mb.check_manual_dir(str(manual))
        assert str(early.value) == str(e.value)


def test_missing_manual_dir_is_refused(tmp_path):
    with pytest.raises(rf.MemorFormatError, match=r"nowhere: manual_dir not found"):
        mb.check_manual_dir(str(tmp_path / "nowhere"))
    assert_nothing_built(tmp_path / "data")


def test_a_broken_copy_builds_once_repaired(manual, tmp_path):
    """The refusal is about the input, not a leftover: the same data_dir builds afterwards."""
    saved = (manual / TEST).read_text()
    (manual / TEST).write_text(saved + "4\n")
    with pytest.raises(rf.MemorFormatError):
        build_dataset(NAME, str(manual), str(tmp_path / "data"), "array_record")
    (manual / TEST).write_text(saved)
    out = build_dataset(NAME, str(manual), str(tmp_path / "data"), "array_record")
    assert json.loads((Path(out) / "metadata.json").read_text())["counts"]["test"] == 6


def test_symlinks_out_build_when_allowed(manual, tmp_path):
    move_out(manual, tmp_path, rf.TENSOR_DIRS["object"])
    out = build_dataset(NAME, str(manual), str(tmp_path / "data"), "array_record",
                        allow=("symlinks",))
    assert (Path(out) / "metadata.json").exists()


def test_cli_build_of_a_broken_release_exits_1_with_one_line(tmp_path):
    manual = copy_dummy_data(mb.Builder, tmp_path)
    _lines(TEST, lambda ls: [*ls, "4"])(manual)
    done = run_cli("build", NAME, "--manual_dir", str(manual), "--data_dir",
                   str(tmp_path / "data"))
    assert done.returncode == 1 and done.stdout == "", done
    assert done.stderr.splitlines() == [
        f"jaxaffect build: error: {manual / TEST}:7: index 4 is also in train_id.txt (line 4); "
        "1 index(es) are in both lists"], done.stderr
    assert_nothing_built(tmp_path / "data")
    shutil.rmtree(manual)


def test_a_late_refusal_keeps_another_config_already_built(manual, tmp_path):
    """Cleaning up after a refused build removes only what that build created."""
    data_dir = tmp_path / "data"
    official = build_dataset(NAME, str(manual), str(data_dir), "array_record")
    kept = sorted(p.relative_to(data_dir) for p in data_dir.rglob("*"))
    _tensor("environment", _nan)(manual)
    with pytest.raises(rf.MemorFormatError, match="NaN or inf"):
        build_dataset(NAME, str(manual), str(data_dir), "array_record",
                      config="moment_disjoint")
    assert sorted(p.relative_to(data_dir) for p in data_dir.rglob("*")) == kept
    assert (Path(official) / "metadata.json").exists()
