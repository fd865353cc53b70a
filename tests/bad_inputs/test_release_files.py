"""The shared release-file checks: paths stay inside, text is UTF-8, arrays are what they say."""

from __future__ import annotations

import os

import numpy as np
import pytest

from jaxaffect.data import release_files as rf
from jaxaffect.errors import FormatError


def test_inside_refuses_paths_that_leave_the_release(tmp_path):
    root = tmp_path / "release"
    (root / "features").mkdir(parents=True)
    assert rf.inside(root, "features/a.npz", where="x") == root / "features" / "a.npz"
    for bad in ("../outside/evil", "Anger/../../../../outside/evil", "/etc/passwd", ""):
        with pytest.raises(FormatError, match=r"list\.txt:3: "):
            rf.inside(root, bad, where="list.txt:3")


def test_inside_refuses_symlinks_out_unless_allowed(tmp_path, monkeypatch):
    root = tmp_path / "release"
    root.mkdir()
    (tmp_path / "elsewhere").mkdir()
    os.symlink(tmp_path / "elsewhere", root / "link")
    with pytest.raises(FormatError, match="is a symlink to .*JAXAFFECT_ALLOW_SYMLINKS"):
        rf.inside(root, "link/file.npz", where="ids.txt:1")
    assert rf.inside(root, "link/file.npz", where="x", allow_symlinks=True) == (
        root / "link" / "file.npz")
    monkeypatch.setenv(rf.ALLOW_SYMLINKS_ENV, "1")
    assert rf.inside(root, "link/file.npz", where="x").name == "file.npz"
    os.symlink(root / "link", root / "inner")  # a link within the release is fine
    monkeypatch.delenv(rf.ALLOW_SYMLINKS_ENV)
    with pytest.raises(FormatError):
        rf.inside(root, "inner/f", where="x")  # ...but it resolves outside here


@pytest.mark.parametrize("encoding", ["gbk", "latin-1"])
def test_read_utf8_names_file_and_line(tmp_path, encoding):
    path = tmp_path / "annotations.csv"
    path.write_bytes(b"clip,label\n" + "片段,快乐é\n".encode(encoding, "replace"))
    with pytest.raises(FormatError, match=r"annotations\.csv:2: not UTF-8"):
        rf.read_utf8(path)
    path.write_text("a,b\n片段,快乐\n", encoding="utf-8")
    assert rf.read_utf8(path).splitlines()[1] == "片段,快乐"


def test_float_and_mask_arrays():
    assert rf.float_array(np.ones(3, np.float64), "f").dtype == np.float32
    for bad, message in ((np.array(["a"]), "dtype <U1"), (np.arange(3), "dtype int64"),
                         (np.array([np.nan]), "NaN or inf"),
                         (np.array([3e39]), "beyond float32")):
        with pytest.raises(FormatError, match=message):
            rf.float_array(bad, "clip.npz: stream 'text'")
    np.testing.assert_array_equal(rf.mask_array(np.array([0.0, 1.0]), "m"), [False, True])
    np.testing.assert_array_equal(rf.mask_array(np.array([1, 0], np.int64), "m"), [True, False])
    for bad, message in ((np.array([np.nan, 1.0]), "found nan"), (np.array([2]), "found 2"),
                         (np.array(["x"]), "dtype <U1")):
        with pytest.raises(FormatError, match=message):
            rf.mask_array(bad, "clip.npz: mask 'audio_mask'")


def test_a_misspelt_mask_name_is_refused_not_read_as_all_present(tmp_path):
    from jaxaffect.data.release_files import write_npz
    from jaxaffect.families.tam.video_features import STREAMS, read_video

    arrays = {s: np.ones((3, 2), np.float32) for s in STREAMS}
    write_npz(tmp_path / "ok.npz", {**arrays, "segment_seconds": np.float32(2.0)})
    assert read_video(tmp_path / "ok.npz")[1]["audio"].all()
    write_npz(tmp_path / "v.npz", {**arrays, "audio_msk": np.zeros(3, bool)})
    with pytest.raises(FormatError, match=r"v\.npz: unexpected arrays \['audio_msk'\]"):
        read_video(tmp_path / "v.npz")


def test_conversions_are_counted_only_during_a_build_once_per_array():
    rf.float_array(np.ones(2, np.float64), "outside.npz: stream 'a'")  # no build: not kept
    with rf.collect_conversions("/release") as outer:
        rf.float_array(np.ones(2, np.float64), "/release/a.npz: stream 'x'")
        rf.float_array(np.ones(2, np.float64), "/release/a.npz: stream 'x'")  # read twice
        rf.float_array(np.ones(2, np.float16), "/release/a.npz: stream 'y'")
        rf.float_array(np.ones(2, np.float64), "tracks.json: boxes", note=False)
        rf.float_array(np.ones(2, np.float32), "/release/b.npz: stream 'x'")
        rf.mask_array(np.ones(2, bool), "/release/b.npz: mask 'x_mask'")
        metadata: dict = {}
        outer.attach(metadata)
        with rf.collect_conversions() as inner:  # a nested build keeps its own
            rf.mask_array(np.array([0, 1], np.uint8), "c.npz: mask 'z_mask'")
        for i in range(1233):
            rf.float_array(np.ones(1), f"/release/f{i}.npz: stream 'x'")
        rf.mask_array(np.array([1, 0], np.int64), "/release/a.npz: mask 'x_mask'")
    assert inner.notes() == ["note: 1 mask was uint8 0/1 (first: c.npz: mask 'z_mask'); "
                             "stored as bool"]
    assert outer.notes() == [
        "note: 1,234 feature arrays were float64 in the release (first: /release/a.npz: "
        "stream 'x'); stored as float32 (values beyond float32 would have been refused)",
        "note: 1 feature array was float16 in the release (first: /release/a.npz: stream "
        "'y'); stored as float32",
        "note: 1 mask was int64 0/1 (first: /release/a.npz: mask 'x_mask'); stored as bool"]
    assert metadata[rf.CONVERSIONS_KEY] == {
        "float64 features": {"count": 1234, "first": "a.npz: stream 'x'",
                             "stored_as": "float32"},
        "float16 features": {"count": 1, "first": "a.npz: stream 'y'", "stored_as": "float32"},
        "int64 masks": {"count": 1, "first": "a.npz: mask 'x_mask'", "stored_as": "bool"}}
    rf.mask_array(np.array([1, 0], np.int64), "after.npz: mask")  # the build is over
    assert outer.notes()[-1].startswith("note: 1 mask was int64")
