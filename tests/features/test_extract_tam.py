"""`jaxaffect extract tam|tsc` on real encoded clips: outputs, failures, resume, determinism,
refusals, and the VideoEmotion-8 layout building unchanged."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import media_files as mf
import numpy as np
import pytest

from jaxaffect import cli
from jaxaffect.features import extraction as ex
from jaxaffect.features import visual

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("clips")
    mf.write_clip(root / "Joy" / "a.mp4", seconds=2.0, seed=1)
    mf.write_clip(root / "Fear" / "b.mkv", seconds=1.3, audio=False, seed=2)
    mf.write_broken_set(root / "Broken")
    (root / "readme.md").write_text("not a video: ignored by extension\n")
    (root / "classInd.txt").write_text("1 Fear\n2 Joy\n")
    return root


def _extract(videos: Path, out: Path, *extra: str) -> int:
    return cli.main(["extract", "tam", "--videos", str(videos), "--out", str(out),
                     "--no_progress", *extra])


def test_extract_tam_outputs_failures_and_resume(videos, tmp_path, capsys):
    out = tmp_path / "layout"
    assert _extract(videos, out) == 1  # completed, with failures
    text = capsys.readouterr().out
    assert "extracted 2 video(s)" in text and "4 failed" in text
    rows = [r.split("\t") for r in (out / ex.FAILURES).read_text().splitlines()]
    assert rows[0] == ["file", "stage", "reason"]
    failed = {Path(r[0]).name: (r[1], r[2]) for r in rows[1:]}
    assert set(failed) == {"truncated.mp4", "empty.mp4", "notes.mp4", "audio_only.mp4"}
    assert all(stage == "decode" for stage, _ in failed.values())
    assert "no video stream" in failed["audio_only.mp4"][1]
    assert "empty file" in failed["empty.mp4"][1]

    record = json.loads((out / ex.RECORD).read_text())
    assert record["extractor"] == "tam" and record["settings"]["segment_seconds"] == 0.64
    a = np.load(out / "features/Joy/a.npz")
    b = np.load(out / "features/Fear/b.npz")
    for s in ("image", "motion", "audio"):
        assert a[s].shape[1] == record["streams"][s]["dim"] == b[s].shape[1]
        assert a[s].dtype == np.float32 and a[s + "_mask"].dtype == np.bool_
    assert a["image"].shape[0] == 4 and b["image"].shape[0] == 3  # ceil(2/0.64), ceil(1.3/.64)
    assert a["audio_mask"].all() and not b["audio_mask"].any()  # b has no audio stream
    assert a["image_mask"].all() and a["image"].any(axis=1).all()
    assert (out / "classInd.txt").read_text() == "1 Fear\n2 Joy\n"
    notes = [r.split("\t") for r in (out / ex.NOTES).read_text().splitlines()]
    assert notes[1:] == [[str(videos / "Fear/b.mkv"), "audio",
                          "no audio stream: audio absent throughout"]]
    assert "1 extracted video(s) have notes" in text
    assert not list(out.rglob(f"*{ex.PARTIAL}"))

    # rerun: finished videos are kept (bytes and times untouched), failures retried and listed
    before = (out / "features/Joy/a.npz").stat().st_mtime_ns
    (out / "features/Fear/.b.npz.partial").write_bytes(b"half")  # an interrupted write
    (out / "features/Fear/b.npz").unlink()  # ... whose final file never appeared
    assert _extract(videos, out) == 1
    text = capsys.readouterr().out
    assert "extracted 1 video(s)" in text and "1 already done" in text and "4 failed" in text
    assert (out / "features/Joy/a.npz").stat().st_mtime_ns == before
    assert not list(out.rglob(f"*{ex.PARTIAL}"))
    assert (out / ex.NOTES).read_text().splitlines()[1:] == ["\t".join(notes[1])]
    np.testing.assert_array_equal(np.load(out / "features/Fear/b.npz")["image"], b["image"])

    # other settings into the same folder: refused with one line, nothing touched
    assert _extract(videos, out, "--segment_seconds", "1.0") == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "other settings" in err[0] and "extraction.json" in err[0]
    assert (out / "features/Joy/a.npz").stat().st_mtime_ns == before


def test_outputs_are_byte_identical_across_runs_and_worker_counts(videos, tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    good = tmp_path / "good"
    shutil.copytree(videos / "Joy", good / "Joy")
    shutil.copytree(videos / "Fear", good / "Fear")
    assert _extract(good, one) == 0
    assert _extract(good, two, "--workers", "2") == 0
    files = sorted(p.relative_to(one) for p in one.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(two) for p in two.rglob("*") if p.is_file())
    for f in files:
        assert (one / f).read_bytes() == (two / f).read_bytes(), f


def test_descriptors_follow_the_frames(tmp_path):
    """A static clip has no motion; a moving one has."""
    still = np.repeat(mf.pattern_frames(1), 20, axis=0)
    (tmp_path / "v").mkdir()
    mf.media.write_video_file(tmp_path / "v" / "still.mp4", still, 10.0)
    mf.write_clip(tmp_path / "v" / "moving.mp4")
    assert _extract(tmp_path / "v", tmp_path / "o") == 0
    still_f = np.load(tmp_path / "o/features/still.npz")["motion"]
    moving_f = np.load(tmp_path / "o/features/moving.npz")["motion"]
    assert np.abs(still_f).max() < 1e-3 < np.abs(moving_f).max()


def test_extract_tsc_needs_each_videos_danmaku(tmp_path, capsys):
    vids, xml = tmp_path / "v", tmp_path / "x"
    mf.write_clip(vids / "av1.mp4")
    mf.write_clip(vids / "av2.mp4", seed=3)
    xml.mkdir()
    shutil.copy(REPO / "tests/fixtures/danmaku" / sorted(
        p.name for p in (REPO / "tests/fixtures/danmaku").glob("*.xml"))[0], xml / "av1.xml")
    out = tmp_path / "o"
    code = cli.main(["extract", "tsc", "--videos", str(vids), "--danmaku", str(xml), "--out",
                     str(out), "--no_progress"])
    assert code == 1
    rows = (out / ex.FAILURES).read_text().splitlines()[1:]
    assert len(rows) == 1 and rows[0].split("\t")[:2] == [str(vids / "av2.mp4"), "danmaku"]
    assert (out / "danmaku/av1.xml").read_bytes() == (xml / "av1.xml").read_bytes()
    assert not (out / "danmaku/av2.xml").exists()
    f = np.load(out / "features/av1.npz")
    assert float(f["segment_seconds"]) == pytest.approx(0.64)
    assert f["image"].shape[1] == visual.DESCRIPTORS["colour"][1]


def test_extract_tsc_output_builds(tmp_path):
    """Videos as long as the bilibili_tsc dummy release's features, its danmaku files and
    lexicon: the extracted layout builds unchanged (custom lexicon config)."""
    from jaxaffect.data import build, prepared

    dummy = REPO / "tfds_builders/bilibili_tsc/dummy_data"
    vids = tmp_path / "v"
    for vid in ("av1001", "av1002"):
        seconds = float(len(np.load(dummy / f"features/{vid}.npz")["image"])
                        * np.load(dummy / f"features/{vid}.npz")["segment_seconds"])
        mf.write_clip(vids / f"{vid}.mp4", seconds=seconds, fps=2.0)
    out = tmp_path / "o"
    assert cli.main(["extract", "tsc", "--videos", str(vids), "--danmaku",
                     str(dummy / "danmaku"), "--out", str(out), "--no_progress"]) == 0
    assert sorted(p.name for p in (out / "danmaku").iterdir()) == ["av1001.xml", "av1002.xml"]
    shutil.copy(dummy / "lexicon.tsv", out / "lexicon.tsv")
    builder_dir = build.build_dataset("bilibili_tsc", str(out), str(tmp_path / "tfds"),
                                      "array_record", config="custom")
    meta = prepared.load_metadata(builder_dir)
    assert meta["extraction"]["extractor"] == "tsc"
    assert meta["stream_dims"] == {s: v["dim"] for s, v in
                                   meta["extraction"]["streams"].items()}
    examples = [e for s in prepared.split_names(builder_dir)
                for e in prepared.read_examples(builder_dir, s)]
    assert examples and {str(e["video_id"]) for e in examples} <= {"av1001", "av1002"}
