"""Broken copies of the moviegraphs_lirec dummy release: each is refused with one line naming the
file (and key) and leaves no partial build, or, where the user allowed it or the input is
auxiliary (subtitles), builds with the input counted in metadata.json and reported on stderr.

Every case copies `dummy_data` and applies one generated breakage; add new ones to the tables.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from jaxaffect.data.build import build_dataset
from jaxaffect.families.lirec import release_format as lf
from tfds_builders.moviegraphs_lirec import moviegraphs_lirec_dataset_builder as mb
from tfds_builders.testing import copy_dummy_data

REPO = Path(__file__).resolve().parents[2]
NAME = "moviegraphs_lirec"
MOVIE, SCENE = "tt9000000", "scene-002.ss-0010.es-0019"
VISUAL = f"features/spat_i3d/{MOVIE}/{SCENE}.npy"
LAYER = f"features/bert/bert_base/second-to-last/{MOVIE}/{MOVIE}_002.npy"
TOKENS = f"features/bert/bert_base/{MOVIE}/{MOVIE}_002.token2idx"
DIALOG = f"dialogs/{MOVIE}/{SCENE}.webvtt"
TRACKS = f"ftracks/{MOVIE}/{SCENE}.json"
LABELS = f"lirec_labels/{MOVIE}.json"


def _edit_json(path: Path, edit: Callable[[object], object]) -> None:
    obj = json.loads(path.read_text())
    path.write_text(json.dumps(edit(obj) or obj))


def _set(obj, keys, value):
    for k in keys[:-1]:
        obj = obj[k]
    obj[keys[-1]] = value


def _pop(obj, keys):
    for k in keys[:-1]:
        obj = obj[k]
    del obj[keys[-1]]


def _npy(rel: str, make: Callable[[np.ndarray], np.ndarray]):
    def brk(m: Path) -> None:
        np.save(m / rel, make(np.load(m / rel)))
    return brk


def _with_nan(x: np.ndarray) -> np.ndarray:
    x = x.copy()
    x.flat[len(x.flat) // 2] = np.nan
    return x


def _symlink_out(m: Path) -> None:
    folder = m / "features/spat_i3d" / MOVIE
    outside = m.parent / "elsewhere"
    shutil.move(folder, outside)
    os.symlink(outside, folder)


def _reencode(rel: str, extra: str, encoding: str):
    def brk(m: Path) -> None:
        text = (m / rel).read_text(encoding="utf-8")
        lines = text.splitlines()
        i = next(i for i, ln in enumerate(lines) if "-->" in ln) + 1
        lines[i] += f" {extra}"
        (m / rel).write_bytes("\n".join(lines).encode(encoding))
    return brk


# (case id, breakage, [patterns the one-line error must contain])
REFUSED: list[tuple[str, Callable[[Path], None], list[str]]] = [
    ("missing visual file", lambda m: (m / VISUAL).unlink(),
     [VISUAL, "file not found", "--allow absent_modality"]),
    ("missing BERT features of existing subtitles", lambda m: (m / LAYER).unlink(),
     [LAYER, "file not found", DIALOG.rsplit("/", 1)[1]]),
    ("missing subtitles of existing BERT files", lambda m: (m / DIALOG).unlink(),
     [DIALOG, "file not found"]),
    ("missing face tracks named in ftrack_ids", lambda m: (m / TRACKS).unlink(),
     [TRACKS, "file not found", f"ftrack_ids/{MOVIE}.json"]),
    ("missing labels of a split movie", lambda m: (m / LABELS).unlink(),
     [LABELS, "file not found", "split 'train'"]),
    ("missing frame2time of a visual file", lambda m: (m / f"frame2time/{MOVIE}/{SCENE}.matidx"
                                                       ).unlink(), [f"{SCENE}.matidx"]),
    ("split id with ../", lambda m: _edit_json(m / lf.SPLIT_FILE, lambda o: _set(
        o, ["train", 0], "../../outside")), ["split.json", "'train'", "'../../outside'"]),
    ("split id absolute", lambda m: _edit_json(m / lf.SPLIT_FILE, lambda o: _set(
        o, ["test", 0], "/etc")), ["split.json", "'test'", "'/etc'"]),
    ("scene name with ../", lambda m: _edit_json(m / LABELS, lambda o: _set(
        o, ["interactions", 0, "scene"], "scene-001/../../../../x")),
     [LABELS, "interactions[0]['scene']", "not a plain file name"]),
    ("symlink out of the release", _symlink_out,
     [f"features/spat_i3d/{MOVIE}/", "is a symlink to", "outside the release folder"]),
    ("NaN visual features", _npy(VISUAL, _with_nan), [VISUAL, "NaN or inf"]),
    ("inf BERT features", _npy(LAYER, lambda x: x + np.inf), [LAYER, "NaN or inf"]),
    ("string-dtype visual array", _npy(VISUAL, lambda x: x.astype(str)),
     [VISUAL, "floating-point", "dtype <U"]),
    ("int-dtype BERT array", _npy(LAYER, lambda x: x.astype(np.int64)),
     [LAYER, "floating-point", "int64"]),
    ("float64 beyond float32", _npy(VISUAL, lambda x: x.astype(np.float64) * 1e300),
     [VISUAL, "beyond float32"]),
    ("object array (pickle)", _npy(VISUAL, lambda x: np.array([None, 1], dtype=object)),
     [VISUAL, "not a readable .npy"]),
    ("NaN in face tracks", lambda m: (m / TRACKS).write_text(
        (m / TRACKS).read_text().replace('"x": ', '"x": NaN, "_x": ', 1)),
     [TRACKS, "NaN is not a JSON number"]),
    ("string box in face tracks", lambda m: _edit_json(m / TRACKS, lambda o: _set(
        o, ["ftracks", 0, 0, "w"], "115.2")), [TRACKS, "ftracks[0][0]['w']", "'115.2'"]),
    ("missing key in face tracks", lambda m: _edit_json(m / TRACKS, lambda o: _pop(
        o, ["ftracks", 1, 0, "frame"])), [TRACKS, "ftracks[1][0]", "missing key 'frame'"]),
    ("malformed labels JSON", lambda m: (m / LABELS).write_text(
        (m / LABELS).read_text()[:200]), [f"{LABELS}:", "not valid JSON"]),
    ("malformed split.json", lambda m: (m / lf.SPLIT_FILE).write_text('{"train": ["tt9000000"'),
     ["split.json:1", "not valid JSON"]),
    ("missing key in labels", lambda m: _edit_json(m / LABELS, lambda o: _pop(
        o, ["interactions", 3, "start"])), [LABELS, "interactions[3]", "missing key 'start'"]),
    ("string time in labels", lambda m: _edit_json(m / LABELS, lambda o: _set(
        o, ["interactions", 1, "end"], "31.0")), [LABELS, "interactions[1]", "'end' must be"]),
    ("NaN time in frame2time", lambda m: (m / f"frame2time/{MOVIE}/{SCENE}.matidx").write_text(
        "0 0.0\n1 nan\n"), [f"{SCENE}.matidx:2", "not a finite number"]),
    ("token file not UTF-8", lambda m: (m / TOKENS).write_bytes(
        (m / TOKENS).read_bytes() + "café 999\n".encode("cp1252")), [f"{TOKENS}:", "not UTF-8"]),
]


def _build(manual: Path, tmp_path: Path, allow: tuple[str, ...] = ()) -> str:
    return build_dataset(NAME, str(manual), str(tmp_path / "data"), "array_record", allow=allow)


def _no_partial_build(tmp_path: Path) -> None:
    data = tmp_path / "data"
    left = [p for p in data.rglob("*") if p.is_file()] if data.exists() else []
    assert left == [], left


@pytest.fixture
def manual(tmp_path):
    return copy_dummy_data(mb.Builder, tmp_path)


@pytest.mark.parametrize("breakage,patterns", [c[1:] for c in REFUSED],
                         ids=[c[0] for c in REFUSED])
def test_refused_with_one_line_naming_the_file(manual, tmp_path, breakage, patterns):
    breakage(manual)
    with pytest.raises(lf.LirecFormatError) as e:
        _build(manual, tmp_path)
    message = str(e.value)
    assert "\n" not in message
    for p in patterns:
        assert p in message, (p, message)
    _no_partial_build(tmp_path)


def _reports(capsys) -> list[str]:
    """The end-of-build report lines on stderr (one per kind of input let through)."""
    return [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith(f"{NAME}: ")]


def _metadata(builder_dir: str) -> dict:
    return json.loads((Path(builder_dir) / "metadata.json").read_text())


# (case id, breakage, files then listed in metadata.json 'absent_files')
ALLOWED: list[tuple[str, Callable[[Path], None], list[str]]] = [
    ("missing visual file", lambda m: (m / VISUAL).unlink(), [VISUAL]),
    ("missing visual and track files", lambda m: [(m / p).unlink() for p in (VISUAL, TRACKS)],
     [VISUAL, TRACKS]),
    ("missing BERT features", lambda m: (m / LAYER).unlink(), [LAYER]),
    ("missing ftrack_ids", lambda m: (m / f"ftrack_ids/{MOVIE}.json").unlink(),
     [f"ftrack_ids/{MOVIE}.json"]),
]


@pytest.mark.parametrize("breakage,absent", [c[1:] for c in ALLOWED],
                         ids=[c[0] for c in ALLOWED])
def test_absent_files_allowed_are_counted_listed_and_reported(manual, tmp_path, capsys,
                                                              breakage, absent):
    breakage(manual)
    with pytest.raises(lf.LirecFormatError, match="--allow absent_modality"):
        _build(manual, tmp_path)
    md = _metadata(_build(manual, tmp_path, allow=("absent_modality",)))
    assert md["absent_files"] == {"count": len(absent), "files": absent}
    (line,) = _reports(capsys)
    assert line.startswith(f"{NAME}: {len(absent)} missing file(s) the labels reference")
    assert all(a in line for a in absent) and line.endswith("(metadata.json 'absent_files')")


def test_absent_visual_leaves_its_clips_without_visual_and_tracks(manual, tmp_path):
    (manual / VISUAL).unlink()
    builder_dir = _build(manual, tmp_path, allow=("absent_modality",))
    labels = json.loads((manual / LABELS).read_text())["interactions"]
    in_scene = {f"{MOVIE}_{r['id']}_{k}" for r in labels if r["scene"] == SCENE
                for k in range(len(r["pairs"]))}
    src = mb.Builder(data_dir=str(Path(builder_dir).parents[1])).as_data_source("train")
    examples = {e["clip_id"].decode(): e for e in (src[i] for i in range(len(src)))}
    assert in_scene and in_scene <= set(examples)
    for cid in in_scene:
        assert not examples[cid]["visual_present"] and not examples[cid]["pair_tracks"].any()
    assert _metadata(builder_dir)["missing_modalities"]["visual"] >= len(in_scene)


@pytest.mark.parametrize("encoding,extra", [("cp1252", "café – naïve"), ("gbk", "你好")])
def test_subtitles_not_utf8_are_skipped_counted_and_reported(manual, tmp_path, capsys,
                                                             encoding, extra):
    _reencode(DIALOG, extra, encoding)(manual)
    builder_dir = _build(manual, tmp_path)
    md = _metadata(builder_dir)
    assert md["subtitles_not_utf8"]["count"] == 1
    (entry,) = md["subtitles_not_utf8"]["files"]
    assert entry.startswith(f"{DIALOG}:") and "not UTF-8" in entry
    (line,) = _reports(capsys)
    assert line.startswith(f"{NAME}: 1 subtitle file(s) not UTF-8") and DIALOG in line
    assert line.endswith("(metadata.json 'subtitles_not_utf8')")


def test_symlinks_out_build_when_allowed(manual, tmp_path):
    _symlink_out(manual)
    assert Path(_build(manual, tmp_path, allow=("symlinks",)), "metadata.json").exists()


def test_clean_dummy_builds_without_reports(manual, tmp_path, capsys):
    md = _metadata(_build(manual, tmp_path))
    assert md["absent_files"]["count"] == md["subtitles_not_utf8"]["count"] == 0
    assert md["problems"] == [] and md["skipped"] == []
    assert _reports(capsys) == []


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory):
    """`jaxaffect build moviegraphs_lirec` on a split.json with a `../` id, in a fresh process
    (what a user sees on stdout and stderr)."""
    tmp = tmp_path_factory.mktemp("cli")
    manual = copy_dummy_data(mb.Builder, tmp)
    _edit_json(manual / lf.SPLIT_FILE, lambda o: _set(o, ["val", 0], "../lirec_labels"))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])])}
    done = subprocess.run(
        [sys.executable, "-m", "jaxaffect.cli", "build", NAME, "--manual_dir", str(manual),
         "--data_dir", str(tmp / "data"), "--file_format", "array_record"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    return done, manual, tmp


def test_cli_build_of_a_broken_release_exits_1_with_one_line(cli_run):
    done, manual, tmp = cli_run
    assert done.returncode == 1 and done.stdout == "", done
    assert done.stderr.splitlines() == [
                    f"jaxaffect build: error: {manual / lf.SPLIT_FILE}: split 'val': movie id: "
                    "'../lirec_labels' is not a plain file name (ids and scene names become "
                    "paths inside the release folder)"], done.stderr
    _no_partial_build(tmp)


def test_cli_build_of_a_broken_release_prints_exactly_one_stderr_line(cli_run):
    done, _, _ = cli_run
    assert len(done.stderr.splitlines()) == 1, done.stderr
