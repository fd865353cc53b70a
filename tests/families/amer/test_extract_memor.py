"""`jaxaffect extract memor` on real encoded clips with real faces (matplotlib's public-domain
sample photograph `grace_hopper.jpg`, once as "Sheldon" on the left and mirrored as "Penny" on
the right, at different times) and real subtitle files whose speakers name the faces: the
release builds unchanged; failures by stage; refusals before extraction; resume; the one-clip
release for prediction."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from jaxaffect import cli
from jaxaffect.data import build, prepared
from jaxaffect.errors import FormatError
from jaxaffect.families.amer import extract as mx
from jaxaffect.families.amer import release_examples as rx
from jaxaffect.families.amer import release_format as rf
from jaxaffect.features import extraction as ex

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "features"))
import media_files as mf  # noqa: E402

pytest.importorskip("cv2")
pytestmark = mf.needs_minilm

REPO = Path(__file__).resolve().parents[3]
FPS = 10.0
SHELDON, LEONARD, PENNY, AMY, OTHERS = 0, 1, 4, 6, 7
# cues in time order: 0 Stuart (no character: others), 1 Sheldon alone on screen, 2 Leonard
# (both faces on screen), 3 Penny alone on screen
ASS = """[Script Info]
ScriptType: v4.00+

[Events]
Format: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text
Dialogue: 0,0:00:00.20,0:00:01.50,Default,Sheldon,0,0,0,,Penny, you're in my spot.
Dialogue: 0,0:00:01.80,0:00:02.20,Default,Leonard,0,0,0,,{\\i1}Guys, please.{\\i0}
Dialogue: 0,0:00:02.60,0:00:03.80,Default,Penny,0,0,0,,Oh, sweetie.
Dialogue: 0,0:00:00.00,0:00:00.15,Default,Stuart,0,0,0,,Hello?
"""
VTT = """WEBVTT

00:00.200 --> 00:01.500
<v Sheldon>I'm not crazy, my mother had me tested.

00:01.600 --> 00:01.900
Who said that?
"""
SRT = "1\n00:00:00,200 --> 00:00:01,000\nSheldon: Bazinga.\n"
ANNOTATIONS = """clip,character,moment,primary,fine,split
scene,Sheldon,1.0,anger,annoyance,train
scene,Penny,3.0,joy,joy,test
scene,Amy,1.0,sadness,sadness,test
quiet,sheldon,0.5,neutral,neutral,train
nosubs,Howard,0.5,fear,fear,test
"""


def _face(height: int = 110) -> np.ndarray:
    return mf.face_image(height)


def _frames(seconds: float, left_until: float, right_from: float) -> np.ndarray:
    """240 x 320 frames: the face on the left while t < left_until, the mirrored face on the
    right while t >= right_from."""
    face = _face()
    fh, fw = face.shape[:2]
    frames = np.full((int(seconds * FPS), 240, 320, 3), 40, np.uint8)
    for i in range(len(frames)):
        if i / FPS < left_until:
            frames[i, 60:60 + fh, 20:20 + fw] = face
        if i / FPS >= right_from:
            frames[i, 70:70 + fh, 200:200 + fw] = face[:, ::-1]
    return frames


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("memor_inputs")
    videos, subs = root / "videos", root / "subtitles"
    (videos / "nested").mkdir(parents=True)
    subs.mkdir()
    mf.media.write_video_file(videos / "scene.mp4", _frames(4.0, 2.4, 1.6), FPS, mf.tone(4.0))
    mf.media.write_video_file(videos / "quiet.mp4", _frames(2.0, 9.0, 9.0), FPS)
    shutil.copy(videos / "quiet.mp4", videos / "nosubs.mp4")
    (videos / "broken.mp4").write_text("not a video\n")
    (videos / "nested" / "deep.mp4").write_text("never opened\n")
    (subs / "scene.ass").write_text(ASS, encoding="utf-8")
    (subs / "quiet.vtt").write_text(VTT, encoding="utf-8")
    (subs / "broken.srt").write_text(SRT, encoding="utf-8")
    (root / "annotations.csv").write_text(ANNOTATIONS)
    return {"videos": videos, "subtitles": subs, "annotations": root / "annotations.csv"}


def _extract(inputs, out: Path, *extra: str, annotations: Path | None = None) -> int:
    return cli.main(["extract", "memor", "--videos", str(inputs["videos"]), "--subtitles",
                     str(inputs["subtitles"]), "--annotations",
                     str(annotations or inputs["annotations"]), "--out", str(out),
                     "--no_progress", *extra])


@pytest.fixture(scope="module")
def release(inputs, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("memor_release") / "release"
    assert _extract(inputs, out) == 1  # completed; three videos failed
    return out


def test_parts_segments_speakers_and_named_faces(release):
    record = json.loads((release / ex.RECORD).read_text())
    assert record == mx.stream_record(record["settings"]) and record["extractor"] == "memor"
    dims = {k: v["dim"] for k, v in record["streams"].items()}
    assert dims == {"audio": 83, "text": 384, "face": 85, "object": 23, "environment": 81}
    part = np.load(release / "parts/scene.npz")
    assert part["speakers"].tolist() == [OTHERS, SHELDON, LEONARD, PENNY]
    np.testing.assert_array_equal(part["seg_start"], [0.0, 0.2, 1.8, 2.6])
    assert part["on_character"].tolist() == [SHELDON, LEONARD, PENNY, OTHERS]
    assert part["audio_present"].all() and part["text"].shape == (4, 384)
    n = round(4.0 * rx.FPS)
    assert part["environment"].shape == (n, 81) and part["objects"].shape == (n, 23)
    assert not part["objects"][0].any() and part["objects"].any()
    # Sheldon (left, t < 2.4 s) and Penny (right, t >= 1.6 s) are named by their cues
    frames, chars = part["face_frames"], part["face_chars"]
    assert set(chars.tolist()) == {SHELDON, PENNY}
    assert frames[chars == SHELDON].max() / rx.FPS < 2.5
    assert frames[chars == PENNY].min() / rx.FPS > 1.5
    assert np.all(part["faces"][chars == SHELDON, -4] < 0.5)  # box centre x: left
    assert np.all(part["faces"][chars == PENNY, -4] > 0.5)
    order = list(zip(frames.tolist(), chars.tolist()))
    assert order == sorted(set(order))  # (frame, character) order, one row each
    names = rf.read_face_names(release / rf.FACE_NAMES_DIR / "scene.txt")
    assert names == [(f, rf.SPEAKERS[c]) for f, c in order]
    assert "_Sheldon.jpg" in (release / rf.FACE_NAMES_DIR / "scene.txt").read_text()

    quiet = np.load(release / "parts/quiet.npz")
    assert quiet["speakers"].tolist() == [SHELDON, OTHERS] and not quiet["audio_present"].any()
    notes = [r.split("\t") for r in (release / ex.NOTES).read_text().splitlines()[1:]]
    by_clip = {(Path(f).stem, stage) for f, stage, _ in notes}
    assert {("quiet", "audio"), ("quiet", "subtitles"), ("scene", "subtitles")} <= by_clip


def test_failures_name_the_stage(release):
    rows = [r.split("\t") for r in (release / ex.FAILURES).read_text().splitlines()[1:]]
    failed = {Path(f).name: (stage, reason) for f, stage, reason in rows}
    assert {k: v[0] for k, v in failed.items()} == {"nosubs.mp4": "subtitles",
                                                     "broken.mp4": "decode",
                                                     "deep.mp4": "name"}
    assert "no subtitle file" in failed["nosubs.mp4"][1]
    ids = {s: (release / f).read_text().split() for s, f in rf.ID_FILES.items()}
    assert ids == {"train": ["0", "3"], "test": ["1", "2"]}  # row 4 (nosubs) is in no list
    assert len(json.loads((release / rf.ANNO_FILE).read_text())["primary"]) == 5


def test_release_builds_with_present_streams(release, tmp_path):
    builder_dir = build.build_dataset("memor", str(release), str(tmp_path / "tfds"),
                                      "array_record")
    meta = prepared.load_metadata(builder_dir)
    assert meta["extraction"] == json.loads((release / ex.RECORD).read_text())
    assert meta["dims"]["face"] == 85 and meta["dims"]["personality"] == 1
    examples = {e["id"]: e for s in prepared.split_names(builder_dir)
                for e in prepared.read_examples(builder_dir, s)}
    assert sorted(examples) == ["quiet#3", "scene#0", "scene#1", "scene#2"]
    penny = examples["scene#1"]
    persons = penny["persons"].tolist()
    assert persons == [SHELDON, LEONARD, PENNY, OTHERS] and penny["target_segment"] == 3
    row = {c: persons.index(c) for c in persons}
    vis, aud, txt = penny["visual_present"], penny["audio_present"], penny["text_present"]
    assert vis[row[PENNY], 3] and vis[row[SHELDON], 1]
    assert not vis[row[PENNY], 1] and not vis[row[SHELDON], 3] and not vis[row[OTHERS]].any()
    for k, c in enumerate(persons):  # audio and text where the person speaks
        assert aud[k].tolist() == txt[k].tolist() == (penny["segment_speaker"] == c).tolist()
    amy = examples["scene#2"]
    a = amy["persons"].tolist().index(AMY)
    assert not (amy["visual_present"][a].any() or amy["audio_present"][a].any()
                or amy["text_present"][a].any())
    quiet = examples["quiet#3"]
    assert not quiet["audio_present"].any() and quiet["text_present"][0, 0]
    assert quiet["visual_present"][0, 0]


def test_resume_keeps_parts_and_regenerates_the_release(inputs, release, capsys):
    parts = {p.name: (p.stat().st_mtime_ns, p.read_bytes())
             for p in (release / "parts").glob("*.npz")}
    data = (release / rf.DATA_FILE).read_bytes()
    (release / rf.DATA_FILE).unlink()
    capsys.readouterr()
    assert _extract(inputs, release) == 1
    assert "extracted 0 video(s)" in capsys.readouterr().out
    assert {p.name: (p.stat().st_mtime_ns, p.read_bytes())
            for p in (release / "parts").glob("*.npz")} == parts
    assert (release / rf.DATA_FILE).read_bytes() == data
    assert not (release / mx.RELEASE_TMP).exists()


def test_bad_inputs_are_refused_before_extraction(inputs, tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text(ANNOTATIONS.replace("scene,Penny,3.0,joy,joy", "scene,Penny,3.0,glee,joy"))
    out = tmp_path / "never"
    assert _extract(inputs, out, annotations=bad) == 1
    assert f"{bad}:3: unknown primary emotion 'glee'" in capsys.readouterr().err
    assert not out.exists()
    bad.write_text(ANNOTATIONS + "elsewhere,Amy,1.0,joy,joy,train\n")
    assert _extract(inputs, out, annotations=bad) == 1
    assert f"{bad}:7: clip 'elsewhere' has no video" in capsys.readouterr().err
    personality = tmp_path / "p.csv"
    personality.write_text("1,2\n" * 7 + "1,x\n")
    assert _extract(inputs, out, "--personality", str(personality)) == 1
    assert f"{personality}:8: expected comma-separated numbers" in capsys.readouterr().err
    assert not out.exists()


def test_personality_is_written_and_recorded(tmp_path):
    videos, subs = tmp_path / "videos", tmp_path / "subs"
    videos.mkdir()
    subs.mkdir()
    (videos / "broken.mp4").write_text("not a video\n")
    (tmp_path / "a.csv").write_text("clip,character,moment,primary,fine,split\n"
                                    "broken,Amy,1,joy,joy,train\n")
    rows = np.arange(24, dtype=np.float64).reshape(8, 3)
    (tmp_path / "p.csv").write_text("".join(",".join(map(str, r)) + "\n" for r in rows))
    out = tmp_path / "out"
    assert cli.main(["extract", "memor", "--videos", str(videos), "--subtitles", str(subs),
                     "--annotations", str(tmp_path / "a.csv"), "--personality",
                     str(tmp_path / "p.csv"), "--out", str(out), "--no_progress"]) == 1
    np.testing.assert_array_equal(rf.read_personality(out), rows)
    recorded = json.loads((out / ex.RECORD).read_text())["settings"]["personality"]
    assert recorded["dim"] == 3 and len(recorded["sha256"]) == 64


def test_one_clip_release_matches_the_full_release(inputs, release, tmp_path):
    record = json.loads((release / ex.RECORD).read_text())
    one = tmp_path / "one"
    mx.one_clip_release(str(inputs["videos"] / "scene.mp4"), str(inputs["subtitles"] /
                        "scene.ass"), record, "Penny", 3.0, str(one))
    single = rx.read_release(one)
    assert [(a.clip, a.character, a.moment) for a in single.annotations] == [("scene", PENNY,
                                                                             3.0)]
    got = rx.annotation_example(single, 0, rx.ClipVisual(single, "scene"))
    full = rx.read_release(release)
    want = rx.annotation_example(full, 1, rx.ClipVisual(full, "scene"))
    for key in ("persons", "target_person", "target_segment", "audio", "text", "visual",
                "audio_present", "text_present", "visual_present", "personality"):
        np.testing.assert_array_equal(got[key], want[key], err_msg=key)
    with pytest.raises(FormatError, match="needs --person --moment"):
        mx.release_for_video("v.mp4", record, {"subtitles": "v.ass"}, str(tmp_path / "x"))
    with pytest.raises(FormatError, match="not 'memor'"):
        mx.one_clip_release("v.mp4", "v.ass", {**record, "extractor": "perr"}, "Penny", 1.0,
                            str(tmp_path / "x"))
    other = json.loads(json.dumps(record))
    other["streams"]["face"]["dim"] = 1024
    with pytest.raises(FormatError, match="other streams"):
        mx.one_clip_release("v.mp4", "v.ass", other, "Penny", 1.0, str(tmp_path / "x"))


def test_tracks_are_named_by_the_speaker_alone_on_screen():
    track = SimpleNamespace  # name_tracks reads .frames only
    tracks = [track(frames=np.arange(0, 6)), track(frames=np.arange(3, 10)),
              track(frames=np.array([8, 9]))]
    boxes = [np.zeros((len([t for t in tracks if f in t.frames]), 4)) for f in range(10)]
    # frames 0-2: track 0 alone; 3-5: tracks 0 and 1; 6-7: track 1 alone; 8-9: tracks 1, 2
    members = [np.arange(0, 4), np.arange(2, 8), np.arange(6, 8), np.arange(6, 8),
               np.arange(0, 3), np.arange(8, 10)]
    speakers = [SHELDON, PENNY, AMY, LEONARD, OTHERS, AMY]
    # cue 0: track 0 alone in 3 of 4 frames -> Sheldon (3); cue 1: track 1 alone in 2 of 6
    # (under half) -> no vote; cues 2 and 3: track 1 alone in 2 of 2 -> Amy 2, Leonard 2
    # (tie: the lower id, Leonard); cue 4 is spoken by others; cue 5: nobody alone
    assert mx.name_tracks(tracks, boxes, members, speakers) == {0: SHELDON, 1: LEONARD}
    assert mx.name_tracks(tracks, boxes, members[:2], speakers[:2]) == {0: SHELDON}


def test_srt_speaker_prefix_and_speaker_ids(tmp_path):
    path = tmp_path / "a.srt"
    path.write_text(SRT + "\n2\n00:00:01,000 --> 00:00:02,000\nNote: no speaker\n\n3\n"
                    "00:00:02,000 --> 00:00:03,000\nPENNY:\n")
    cues = mx.read_cues(str(path), None)
    assert [(c.speaker, c.text) for c in cues] == [("Sheldon", "Bazinga."),
                                                   (None, "Note: no speaker"),
                                                   (None, "PENNY:")]
    assert [mx.speaker_id(s) for s in ("sheldon", " Amy ", "Stuart", None)] == [0, 6, 7, 7]


@pytest.mark.slow
def test_build_train_and_predict_a_person_in_a_video(inputs, tmp_path, capsys):
    """12 copies of the scene (two annotations each) -> extract -> build -> a tiny AMER run ->
    `predict --video --person --moment` gives the evaluation's prediction for that
    annotation."""
    videos, subs = tmp_path / "videos", tmp_path / "subs"
    videos.mkdir()
    subs.mkdir()
    rows = ["clip,character,moment,primary,fine,split"]
    emotions = [("anger", "annoyance"), ("joy", "joy"), ("sadness", "sadness")]
    for i in range(12):
        shutil.copy(inputs["videos"] / "scene.mp4", videos / f"c{i:02d}.mp4")
        shutil.copy(inputs["subtitles"] / "scene.ass", subs / f"c{i:02d}.ass")
        split = "test" if i >= 9 else "train"
        for who, moment in (("Sheldon", 1.0), ("Penny", 3.0)):
            primary, fine = emotions[(i + len(rows)) % 3]
            rows.append(f"c{i:02d},{who},{moment},{primary},{fine},{split}")
    (tmp_path / "annotations.csv").write_text("\n".join(rows) + "\n")
    out = tmp_path / "release"
    assert cli.main(["extract", "memor", "--videos", str(videos), "--subtitles", str(subs),
                     "--annotations", str(tmp_path / "annotations.csv"), "--out", str(out),
                     "--no_progress", "--workers", "2"]) == 0
    builder_dir = build.build_dataset("memor", str(out), str(tmp_path / "tfds"), "array_record")
    assert prepared.split_size(builder_dir, "validation") > 0
    workdir = tmp_path / "run"
    config = str(REPO / "configs/amer/amer.py") + ":data=memor,runlocal"
    assert cli.main(["train", "--no_progress", "--config", config, "--workdir", str(workdir),
                     f"--config.data.builder_dir={builder_dir}",
                     "--config.training.num_epochs=1", "--config.mesh.num_devices=1",
                     "--config.mesh.data=1"]) == 0
    assert cli.main(["eval", "--workdir", str(workdir), "--split", "test"]) == 0
    records = [json.loads(x) for x in (workdir / "predictions_test.jsonl").read_text()
               .splitlines()]
    penny = next(r for r in records if r["id"] == f"c09#{1 + 2 * 9}")  # c09's Penny row
    capsys.readouterr()
    assert cli.main(["predict", "--workdir", str(workdir), "--video", str(videos / "c09.mp4"),
                     "--subtitles", str(subs / "c09.ass"), "--person", "penny", "--moment",
                     "3.0", "--json"]) == 0
    out_text = capsys.readouterr().out
    result = json.loads(out_text[out_text.index("{"):])
    assert result["prediction"] == penny["predicted"]
    assert result["probabilities"][penny["predicted"]] == pytest.approx(penny["probability"],
                                                                        abs=1e-5)
    # what a MEmoR prediction needs, and a person the release cannot name
    assert cli.main(["predict", "--workdir", str(workdir), "--video", str(videos / "c09.mp4"),
                     "--subtitles", str(subs / "c09.ass"), "--moment", "3.0"]) == 1
    assert "needs --person" in capsys.readouterr().err
    assert cli.main(["predict", "--workdir", str(workdir), "--video", str(videos / "c09.mp4"),
                     "--subtitles", str(subs / "c09.ass"), "--person", "stuart", "--moment",
                     "3.0"]) == 1
    assert "unknown character 'stuart'" in capsys.readouterr().err
