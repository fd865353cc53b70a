"""`jaxaffect extract lirec` on real encoded scene videos with real faces (matplotlib's
public-domain sample photograph `grace_hopper.jpg`, on the left as "Sheldon" and mirrored on
the right as "Penny") and real subtitle files whose speakers name them: the release builds
unchanged with `moviegraphs_lirec`; per-scene parts; failures by stage; refusals before any
extraction; resume; one video for `predict --video`."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from jaxaffect import cli
from jaxaffect.data import build, prepared
from jaxaffect.errors import FormatError
from jaxaffect.families.lirec import extract as lx
from jaxaffect.families.lirec import release_format as lf
from jaxaffect.families.lirec import release_labels as rl
from jaxaffect.features import extraction as ex

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "features"))
import media_files as mf  # noqa: E402

pytest.importorskip("cv2")
pytestmark = mf.needs_minilm

REPO = Path(__file__).resolve().parents[3]
DUMMY = REPO / "tfds_builders/moviegraphs_lirec/dummy_data"
FPS = 10.0
SCENE = "scene-001.ss-0000.es-0004"
MOVIES = {"train": "tt0100001", "val": "tt0100002", "test": "tt0100003"}
SHELDON, PENNY = "sheldon cooper", "penny"
ASS = """[Script Info]
ScriptType: v4.00+

[Events]
Format: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text
Dialogue: 0,0:00:00.20,0:00:01.50,Default,Sheldon,0,0,0,,Penny, you're in my spot.
Dialogue: 0,0:00:02.60,0:00:03.80,Default,Penny,0,0,0,,Oh, sweetie...
Dialogue: 0,0:00:03.80,0:00:03.95,Default,Penny,0,0,0,,[door closes] I know.
"""


def _frames(seconds: float = 4.0) -> np.ndarray:
    """240 x 320 frames: the face on the left while t < 2.4 s, mirrored on the right from 1.6 s."""
    face = mf.face_image()
    fh, fw = face.shape[:2]
    frames = np.full((int(seconds * FPS), 240, 320, 3), 40, np.uint8)
    for i in range(len(frames)):
        if i / FPS < 2.4:
            frames[i, 60:60 + fh, 20:20 + fw] = face
        if i / FPS >= 1.6:
            frames[i, 70:70 + fh, 200:200 + fw] = face[:, ::-1]
    return frames


def _labels(movie: str, seconds: float = 4.0) -> rl.MovieLabels:
    """Two interactions: Sheldon talks to Penny (first half), Penny asks Sheldon (whole scene)."""
    first = rl.InteractionRecord("i0", SCENE, 0.0, seconds / 2, "talks to", (SHELDON, PENNY),
                                 ((SHELDON, PENNY),))
    second = rl.InteractionRecord("i1", SCENE, 0.0, seconds, "asks", (SHELDON, PENNY),
                                  ((PENNY, SHELDON),))
    rel = rl.RelationshipRecord(SCENE, SHELDON, PENNY, "friend")
    return rl.MovieLabels(movie, (first, second), (rel,))


def write_labels(root: Path, movies: dict[str, list[str]]) -> Path:
    """A --labels folder: the dummy release's class lists, split.json, a labels file per movie."""
    (root / "others").mkdir(parents=True)
    for name in ("merged_interactions.txt", "relships_many2_15.txt", "relships_15_opp.txt",
                 "org_res.txt"):
        shutil.copy(DUMMY / "others" / name, root / "others" / name)
    rl.write_split(root / lf.SPLIT_FILE, movies)
    for movie in (m for ms in movies.values() for m in ms):
        rl.write_movie_labels(lf.labels_path(root, movie), _labels(movie))
    return root


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("lirec_inputs")
    videos, subs = root / "videos", root / "subtitles"
    first = videos / MOVIES["train"] / f"{SCENE}.mp4"
    first.parent.mkdir(parents=True)
    mf.media.write_video_file(first, _frames(), FPS, mf.tone(4.0))
    for split in ("val", "test"):
        (videos / MOVIES[split]).mkdir()
        shutil.copy(first, videos / MOVIES[split] / f"{SCENE}.mp4")
        (subs / MOVIES[split]).mkdir(parents=True)
        (subs / MOVIES[split] / f"{SCENE}.ass").write_text(ASS, encoding="utf-8")
    (videos / "tt0999999").mkdir()  # a movie outside the split: not extracted
    (videos / "tt0999999" / "scene-009.mp4").write_text("never opened\n")
    labels = write_labels(root / "labels", {k: [v] for k, v in MOVIES.items()})
    return {"videos": videos, "subtitles": subs, "labels": labels}


def _extract(inputs, out: Path, *extra: str, labels: Path | None = None,
             videos: Path | None = None) -> int:
    return cli.main(["extract", "lirec", "--videos", str(videos or inputs["videos"]),
                     "--subtitles", str(inputs["subtitles"]), "--labels",
                     str(labels or inputs["labels"]), "--out", str(out), "--no_progress", *extra])


@pytest.fixture(scope="module")
def release(inputs, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("lirec_release") / "release"
    assert _extract(inputs, out) == 0
    return out


def test_parts_streams_and_speaker_named_tracks(release):
    record = json.loads((release / ex.RECORD).read_text())
    assert record == lx.stream_record(record["settings"]) and record["extractor"] == "lirec"
    part = np.load(release / "parts" / MOVIES["test"] / f"{SCENE}.npz")
    assert part["frame_times"].shape == (40,) and part["frame_times"][10] == pytest.approx(1.0)
    assert part["visual"].shape == (3, 104, 4, 4)  # 40 frames -> 3 steps of 16 frames
    # the face (left, first 2.4 s) is Sheldon's; the mirrored one (right, from 1.6 s) Penny's
    names = part["track_names"].tolist()
    assert sorted(n for n in names if n) == [PENNY, SHELDON]
    for name, side in ((SHELDON, "left"), (PENNY, "right")):
        keep = part["det_track"] == names.index(name)
        centre = part["det_box"][keep, 0] + part["det_box"][keep, 2] / 2
        frame_w = part["frame_size"][1]
        assert np.all(centre < frame_w / 2) if side == "left" else np.all(centre > frame_w / 2)
    # three cues, the second ends in '...': two sentences, each opening with [CLS]
    tokens = part["tokens"].tolist()
    assert tokens.count("[CLS]") == 2 and part["token_states"].shape == (len(tokens), 384)
    train = np.load(release / "parts" / MOVIES["train"] / f"{SCENE}.npz")
    assert not train["has_text"] and not [n for n in train["track_names"] if n]
    assert not (release / "parts" / "tt0999999").exists()
    notes = (release / ex.NOTES).read_text()
    assert "no subtitle file" in notes and "not named by a speaker" in notes


def test_release_files_and_build(release, inputs, tmp_path):
    movie = MOVIES["test"]
    assert lf.read_visual(lf.visual_path(release, movie, SCENE)).shape == (3, 104, 4, 4)
    text, tokens = lf.read_bert(release, movie, SCENE)
    assert len(lf.read_dialogs(lf.dialog_path(release, movie, SCENE))) == 2 == \
        len(lf.sentence_token_ranges(tokens))
    org = rl.read_org_res(release / lf.ORG_RES_FILE)
    size = mf.media.resized_size(240, 320, 224)
    assert org == {m: size for m in MOVIES.values()}  # the decoded size, not the dummy's
    tracks = lf.read_ftracks(lf.ftracks_path(release, movie, SCENE))
    ids = lf.read_ftrack_ids(lf.ftrack_ids_path(release, movie))[SCENE]
    penny = tracks[ids.index(PENNY)]
    assert np.all(penny.boxes[:, 0] * 0.5 > size[1] / 2)  # 2x org_res pixels: right half
    assert penny.times.min() >= 1.5
    for rel in (lf.SPLIT_FILE, lf.MERGED_INTERACTIONS_FILE):
        assert (release / rel).read_bytes() == (inputs["labels"] / rel).read_bytes()
    builder_dir = build.build_dataset("moviegraphs_lirec", str(release), str(tmp_path / "tfds"),
                                      "array_record")
    meta = prepared.load_metadata(builder_dir)
    assert meta["extraction"] == json.loads((release / ex.RECORD).read_text())
    assert meta["dims"] == {"visual": 104, "text": 384, "tracks": 104}
    test = {e["clip_id"]: e for e in prepared.read_examples(builder_dir, "test")}
    assert sorted(test) == [f"{movie}_i0_0", f"{movie}_i1_0"]
    whole = test[f"{movie}_i1_0"]
    assert whole["visual_present"] and whole["text_present"]
    pairs = whole["pair_characters"].tolist()
    assert pairs[whole["true_pair"]] == [PENNY, SHELDON]
    assert np.abs(whole["pair_tracks"]).sum(-1).all()  # both characters have track features
    # person-box pooling: the two characters' features differ (left and right cells)
    assert not np.allclose(whole["pair_tracks"][0, 0], whole["pair_tracks"][0, 1])
    train = next(iter(prepared.read_examples(builder_dir, "train")))
    assert train["visual_present"] and not train["text_present"]


def test_resume_and_byte_identical_outputs(inputs, release, tmp_path, capsys):
    files = {p.relative_to(release): p.read_bytes() for p in release.rglob("*") if p.is_file()}
    capsys.readouterr()
    assert _extract(inputs, release) == 0
    assert "extracted 0 video(s)" in capsys.readouterr().out
    again = {p.relative_to(release): p.read_bytes() for p in release.rglob("*") if p.is_file()}
    assert again == files
    fresh = tmp_path / "fresh"
    assert _extract(inputs, fresh, "--workers", "2") == 0
    assert {p.relative_to(fresh): p.read_bytes() for p in fresh.rglob("*")
            if p.is_file() and p.name != ex.NOTES} == \
        {k: v for k, v in files.items() if k.name != ex.NOTES}


def test_failures_and_refusals(inputs, tmp_path, capsys):
    videos = tmp_path / "videos"
    shutil.copytree(inputs["videos"], videos)
    (videos / MOVIES["val"] / f"{SCENE}.mp4").write_text("not a video\n")
    out = tmp_path / "out"
    assert _extract(inputs, out, videos=videos) == 1
    rows = [r.split("\t") for r in (out / ex.FAILURES).read_text().splitlines()[1:]]
    assert [(Path(f).parent.name, stage) for f, stage, _ in rows] == [(MOVIES["val"], "decode")]
    assert "failed: the build refuses" in capsys.readouterr().out
    # refused before anything is written
    never = tmp_path / "never"
    (videos / MOVIES["val"] / f"{SCENE}.mp4").unlink()
    assert _extract(inputs, never, videos=videos) == 1
    assert f"labelled scene '{SCENE}' has no video" in capsys.readouterr().err
    bad = tmp_path / "labels"
    shutil.copytree(inputs["labels"], bad)
    path = lf.labels_path(bad, MOVIES["test"])
    path.write_text(path.read_text().replace('"start": 0.0', '"start": "soon"', 1))
    assert _extract(inputs, never, labels=bad) == 1
    assert "interactions[0]" in capsys.readouterr().err
    (bad / lf.MERGED_INTERACTIONS_FILE).unlink()
    assert _extract(inputs, never, labels=bad) == 1
    assert "merged_interactions.txt: file not found" in capsys.readouterr().err
    clash = tmp_path / "clash"
    shutil.copytree(inputs["videos"], clash)
    shutil.copy(clash / MOVIES["test"] / f"{SCENE}.mp4", clash / MOVIES["test"] / "scene-1.mp4")
    assert _extract(inputs, never, videos=clash) == 1
    assert "scene number 1 is also that of" in capsys.readouterr().err
    assert not never.exists()


def test_speaker_names_and_steps():
    chars = ["leonard hofstadter", "penny", "sheldon cooper"]
    assert [lx.speaker_character(n, chars) for n in ("Penny", "SHELDON", "sheldon cooper",
                                                      "Howard", None, "")] == [1, 2, 2, -1, -1, -1]
    assert lx.speaker_character("cooper", ["sheldon cooper", "mary cooper"]) == -1  # ambiguous
    # stride 3: decoded frame i is video frame 3 i; steps of 16 video frames
    got = [s.tolist() for s in lx.step_frames(3, 3, 14)]
    assert got == [[0, 1, 2, 3, 4, 5], [6, 7, 8, 9, 10], [11, 12, 13]]
    # stride 40 (video frames 0, 40, 80): step 1 (frames 16-31) has no decoded frame and takes
    # the one on screen at its middle (frame 24: decoded frame 0)
    assert [s.tolist() for s in lx.step_frames(3, 40, 3)] == [[0], [0], [1]]


def test_grid_features_match_a_loop_over_cells():
    from jaxaffect.features import visual

    frames = mf.pattern_frames(7, 24, 36)
    steps = [np.array([0, 1, 2]), np.array([3, 4, 5, 6])]
    got = lx.grid_features(frames, steps, 3)
    for t, idx in enumerate(steps):
        prev = np.concatenate([[idx[0] - 1], idx]) if idx[0] else idx
        for i in range(3):
            for j in range(3):
                cell = frames[:, 8 * i:8 * i + 8, 12 * j:12 * j + 12]
                want = np.concatenate([visual.colour_descriptor(cell[idx]),
                                       visual.motion_descriptor(cell[prev])])
                np.testing.assert_array_equal(got[t, :, i, j], want)


def test_one_video_folder_gives_the_built_example(inputs, release, tmp_path):
    from jaxaffect.families.lirec import one_clip
    from tfds_builders.moviegraphs_lirec import lirec_examples as le
    from tfds_builders.moviegraphs_lirec import lirec_release as lr

    record = json.loads((release / ex.RECORD).read_text())
    movie = MOVIES["test"]
    video = inputs["videos"] / movie / f"{SCENE}.mp4"
    folder = lx.release_for_video(str(video), record, {
        "subtitles": str(inputs["subtitles"] / movie / f"{SCENE}.ass"),
        "characters": "Sheldon Cooper, Penny"}, str(tmp_path / "one"))
    maps = le.LabelMaps.read(release)
    dims = {"visual": 104, "text": 384, "tracks": 104}
    got = one_clip.clip_example(folder, maps.interactions, maps.relationships, dims)
    # the built example of the same span and pair: "Sheldon talks to Penny" would be i0 (half
    # the scene); the one-video clip spans the whole scene with Sheldon first, as i1 reversed
    notes = lr.BuildNotes(release)
    _, plans = lr.plan_release(release, notes)
    built = {e["clip_id"]: e for e in le.movie_examples(release, plans[movie], maps, dims, notes)}
    want = built[f"{movie}_i1_0"]
    for key in ("visual", "text", "visual_present", "text_present"):
        np.testing.assert_array_equal(got[key], want[key], err_msg=key)
    assert got["pair_characters"].tolist() == want["pair_characters"].tolist()
    np.testing.assert_array_equal(got["pair_tracks"], want["pair_tracks"])
    assert got["pair_characters"].tolist()[got["true_pair"]] == [SHELDON, PENNY]
    with pytest.raises(FormatError, match="needs --characters"):
        lx.release_for_video(str(video), record, {}, str(tmp_path / "x"))
    with pytest.raises(FormatError, match="not 'lirec'"):
        lx.release_for_video(str(video), {**record, "extractor": "memor"},
                             {"characters": "penny"}, str(tmp_path / "x"))
    with pytest.raises(FormatError, match="visual feature size 104, the build uses 2048"):
        one_clip.clip_example(folder, maps.interactions, maps.relationships,
                              {**dims, "visual": 2048})


@pytest.mark.slow
def test_build_train_and_predict_a_video(inputs, release, tmp_path, capsys):
    """extract -> build -> a tiny interactions run -> `predict --video --characters` gives the
    model's scores of the built example with the same span and pair."""
    from jaxaffect.evaluate import TrainedModel
    from jaxaffect.families.lirec import one_clip

    builder_dir = build.build_dataset("moviegraphs_lirec", str(release),
                                      str(tmp_path / "tfds"), "array_record")
    workdir = tmp_path / "run"
    config = str(REPO / "configs/lirec/interactions.py") + ":data=moviegraphs,runlocal"
    assert cli.main(["train", "--no_progress", "--config", config, "--workdir", str(workdir),
                     f"--config.data.builder_dir={builder_dir}",
                     "--config.training.batch_size=2", "--config.mesh.num_devices=1",
                     "--config.mesh.data=1"]) == 0
    movie = MOVIES["test"]
    video = inputs["videos"] / movie / f"{SCENE}.mp4"
    capsys.readouterr()
    assert cli.main(["predict", "--workdir", str(workdir), "--video", str(video), "--subtitles",
                     str(inputs["subtitles"] / movie / f"{SCENE}.ass"), "--characters",
                     "penny,sheldon cooper", "--json"]) == 0
    text = capsys.readouterr().out
    result = json.loads(text[text.index("{"):])
    assert "scores (sigmoid" in text and result["pair"] == [PENNY, SHELDON]
    model = TrainedModel(str(workdir))
    built = next(e for e in prepared.read_examples(builder_dir, "test")
                 if e["clip_id"] == f"{movie}_i1_0")  # the whole scene, penny -> sheldon
    out = model.predict(model.task.device_batch(one_clip.clip_batch(model.task.spec, built)))
    want = one_clip.describe(out, built["pair_characters"], model.task.interaction_names,
                             model.task.relationship_names)
    assert result["prediction"] == want["prediction"]
    assert result["scores"] == pytest.approx(want["scores"], abs=1e-5)
    assert cli.main(["predict", "--workdir", str(workdir), "--video", str(video)]) == 1
    assert "needs --characters" in capsys.readouterr().err
