"""`jaxaffect extract perr` on real encoded clips with real faces (matplotlib's public-domain
sample photograph `grace_hopper.jpg`, pasted twice into each frame) and real subtitle files:
the two persons, text per step, failures by stage, the ERATO build, and `predict --video`."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from jaxaffect import cli
from jaxaffect.data import build, prepared
from jaxaffect.families.perr import erato_format as ef

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "features"))
import media_files as mf  # noqa: E402

REPO = Path(__file__).resolve().parents[3]
pytest.importorskip("cv2")
pytestmark = mf.needs_minilm

FPS = 10.0
SRT = """1
00:00:00,200 --> 00:00:01,100
I can't believe you did that.

2
00:00:02,000 --> 00:00:02,800
<i>I'm sorry,</i> I really am.
"""


def _face(height: int = 110) -> np.ndarray:
    return mf.face_image(height)


def _two_people(seconds: float, second_from: float | None) -> np.ndarray:
    """Frames 240 x 320: person A on the left from the start, person B (mirrored) on the
    right from `second_from` seconds (never when None)."""
    face = _face()
    fh, fw = face.shape[:2]
    n = int(seconds * FPS)
    frames = np.full((n, 240, 320, 3), 40, np.uint8)
    for i in range(n):
        frames[i, 60:60 + fh, 20:20 + fw] = face
        if second_from is not None and i / FPS >= second_from:
            frames[i, 70:70 + fh, 200:200 + fw] = face[:, ::-1]
    return frames


@pytest.fixture(scope="module")
def release(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("perr_release")
    videos, subs = root / "videos", root / "subtitles"
    videos.mkdir()
    subs.mkdir()
    mf.media.write_video_file(videos / "two.mp4", _two_people(3.0, 1.0), FPS, mf.tone(3.0))
    mf.media.write_video_file(videos / "one.mp4", _two_people(2.0, None), FPS)
    shutil.copy(videos / "two.mp4", videos / "latin1.mp4")
    (videos / "notes.mp4").write_text("not a video\n")
    (subs / "two.srt").write_text(SRT, encoding="utf-8")
    (subs / "latin1.srt").write_bytes(SRT.replace("sorry", "désolé").encode("cp1252"))
    return {"videos": videos, "subtitles": subs, "root": root}


def _extract(release, out: Path, *extra: str) -> int:
    return cli.main(["extract", "perr", "--videos", str(release["videos"]), "--subtitles",
                     str(release["subtitles"]), "--out", str(out), "--no_progress", *extra])


@pytest.fixture(scope="module")
def layout(release, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("perr_layout") / "layout"
    assert _extract(release, out) == 1  # completed; two videos failed
    return out


def test_streams_persons_and_text(layout):
    record = json.loads((layout / "extraction.json").read_text())
    assert record["extractor"] == "perr"
    two = np.load(layout / "features/two.npz")
    for s in ef.STREAMS:
        assert two[s].shape == (3, record["streams"][s]["dim"]) and two[s].dtype == np.float32
    # person A (left) is seen in every step, person B (right) from 1 s on
    assert two["person_a_mask"].tolist() == [True, True, True]
    assert two["person_b_mask"].tolist() == [False, True, True]
    assert two["person_a"][1, -4] < 0.5 < two["person_b"][1, -4]  # box centre x / width
    # cues at 0.2-1.1 s and 2.0-2.8 s: text in every step, the two lines differ
    assert two["text_mask"].tolist() == [True, True, True]
    np.testing.assert_allclose(np.linalg.norm(two["text"][2]), 1.0, atol=1e-5)
    assert not np.allclose(two["text"][0], two["text"][2])
    assert two["audio_mask"].all() and two["background_mask"].all()
    one = np.load(layout / "features/one.npz")
    assert one["person_a_mask"].all() and not one["person_b_mask"].any()
    assert not one["text_mask"].any() and not one["audio_mask"].any()  # no subtitles, no audio
    rows = [r.split("\t") for r in (layout / "extract_notes.tsv").read_text().splitlines()[1:]]
    notes = {(stage, note) for file, stage, note in rows if Path(file).name == "one.mp4"}
    assert ("audio", "no audio stream: audio absent throughout") in notes
    assert ("text", "no subtitle file: text absent throughout") in notes
    assert any(stage == "faces" and note.startswith("1 face track") for stage, note in notes)


def test_failures_name_the_stage(layout):
    rows = [r.split("\t") for r in (layout / "extract_failures.tsv").read_text().splitlines()]
    failed = {Path(r[0]).name: (r[1], r[2]) for r in rows[1:]}
    assert set(failed) == {"latin1.mp4", "notes.mp4"}
    assert failed["notes.mp4"][0] == "decode"
    stage, reason = failed["latin1.mp4"]
    assert stage == "text" and "latin1.srt" in reason and "not UTF-8" in reason
    assert "--subtitle_encoding" in reason


def test_named_encoding_reads_the_subtitles(release, tmp_path):
    out = tmp_path / "cp1252"
    assert _extract(release, out, "--subtitle_encoding", "cp1252") == 1
    rows = (out / "extract_failures.tsv").read_text().splitlines()[1:]
    assert [Path(r.split("\t")[0]).name for r in rows] == ["notes.mp4"]
    assert np.load(out / "features/latin1.npz")["text_mask"].any()


@pytest.mark.slow
def test_build_train_and_predict_a_video(release, layout, tmp_path, capsys):
    # a training set of the extracted clips' files under 40 clip ids (the builder needs
    # train and test clips of several labels)
    manual = tmp_path / "manual"
    shutil.copytree(layout, manual, ignore=shutil.ignore_patterns("features"))
    rows = ["clip_id,label,split"]
    sources = sorted((layout / "features").glob("*.npz"))
    (manual / "features").mkdir()
    for i in range(40):
        shutil.copy(sources[i % len(sources)], manual / "features" / f"c{i:02d}.npz")
        rows.append(f"c{i:02d},{ef.FINE_LABELS[i % 5]},{'test' if i % 4 == 0 else 'train'}")
    (manual / "annotations.csv").write_text("\n".join(rows) + "\n")
    builder_dir = build.build_dataset("erato", str(manual), str(tmp_path / "tfds"),
                                      "array_record")
    record = json.loads((layout / "extraction.json").read_text())
    assert prepared.load_metadata(builder_dir)["extraction"] == record

    workdir = tmp_path / "run"
    assert cli.main(["train", "--no_progress", "--config",
                     str(REPO / "configs/perr/smta.py") + ":attention=dot,runlocal",
                     "--workdir", str(workdir), f"--config.data.builder_dir={builder_dir}",
                     "--config.data.max_steps=4", "--config.training.batch_size=8",
                     "--config.training.num_epochs=1", "--config.mesh.num_devices=1",
                     "--config.mesh.data=1"]) == 0
    capsys.readouterr()
    video = release["videos"] / "two.mp4"
    subs = release["subtitles"] / "two.srt"
    figure = tmp_path / "attention.png"
    assert cli.main(["predict", "--workdir", str(workdir), "--video", str(video),
                     "--subtitles", str(subs), "--attention", str(figure), "--json"]) == 0
    out = capsys.readouterr().out
    by_video = json.loads(out[out.index("{"):])
    assert by_video["prediction"] in ef.FINE_LABELS
    assert f"attention image: {figure}" in out and figure.stat().st_size > 1000
    assert by_video["figure"] == str(figure)
    assert cli.main(["predict", "--workdir", str(workdir), "--features",
                     str(layout / "features/two.npz"), "--json"]) == 0
    out = capsys.readouterr().out
    by_file = json.loads(out[out.index("{"):])
    np.testing.assert_allclose(list(by_video["probabilities"].values()),
                               list(by_file["probabilities"].values()), rtol=1e-6)

