"""`jaxaffect extract tam|tsc`: videos -> the segment-feature layouts of the TAM builders.

* `tam`: `--videos` holds the videos (any folder depth; the id is the path without extension,
  e.g. `Joy/clip01` as VideoEmotion-8 and Ekman-6 lay them out) and, at its top, the
  benchmark's list files (`*.txt`: classInd.txt, trainlist01.txt, testlist01.txt,
  ACCEDEranking.txt, ...), which are copied unchanged. The output builds with
  `video_emotion8`, `ekman6` or `liris_accede` (their `features` config).
* `tsc`: `--videos` holds `<video_id>.<ext>` and `--danmaku` the matching `<video_id>.xml`;
  the output (`features/<id>.npz` with `segment_seconds`, `danmaku/<id>.xml` copied) builds
  with `bilibili_tsc`. A video without its danmaku file fails (listed), it is not skipped.

Streams per fixed-length segment (`segment_seconds`, default 0.64 s = TAM's 16 frames at
25 fps): `image` the colour descriptor and `motion` the motion descriptor of the segment's
frames (`jaxaffect.features.visual`: classical descriptors, not the paper's CLIP and R3D
features, which need weights no package ships), `audio` MFCC statistics
(`jaxaffect.features.audio`, not VGGish). Widths follow the extractor and are recorded in
`extraction.json`, which builds copy into their metadata.
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

SETTINGS = {"segment_seconds": 0.64, "max_fps": 12.5, "short_side": 112}


def add_arguments(parser: argparse.ArgumentParser, *, danmaku: bool = False) -> None:
    if danmaku:
        parser.add_argument("--danmaku", required=True,
                            help="folder of <video_id>.xml Bilibili danmaku files")
    parser.add_argument("--segment_seconds", type=float, default=SETTINGS["segment_seconds"],
                        help="length of one feature segment (default %(default)s s)")
    parser.add_argument("--max_fps", type=float, default=SETTINGS["max_fps"],
                        help="frames kept per second at most (every k-th frame; default "
                             "%(default)s)")
    parser.add_argument("--short_side", type=int, default=SETTINGS["short_side"],
                        help="frames resized to this short side before the descriptors "
                             "(default %(default)s)")
    parser.add_argument("--motion", default="descriptors", choices=["descriptors", "swin3d"],
                        help="the motion stream: classical frame-difference descriptors (23; "
                             "default) or a pretrained Video Swin's embedding of each segment "
                             "(768 for Swin-T) from --swin3d")
    parser.add_argument("--swin3d", default=None, metavar="DIR",
                        help="a `jaxaffect convert swin3d` folder of pretrained weights (e.g. "
                             "torchvision's Kinetics-400 swin3d_t) for --motion swin3d; use "
                             "--short_side 256 with it")
    audio_features.add_argument(parser)


def settings_of(args: argparse.Namespace) -> dict[str, Any]:
    settings = {"segment_seconds": float(args.segment_seconds), "max_fps": float(args.max_fps),
                "short_side": int(args.short_side), "audio": args.audio}
    if args.motion == "swin3d":
        if not args.swin3d:
            raise FormatError("--motion swin3d needs --swin3d DIR (a `jaxaffect convert swin3d` "
                              "folder)")
        settings.update(motion="swin3d", swin3d=os.path.abspath(args.swin3d))
    elif args.swin3d:
        raise FormatError("--swin3d goes with --motion swin3d")
    return settings


def _motion_stream(settings: dict[str, Any]) -> dict[str, Any]:
    from jaxaffect.features import video_embedding, visual

    if settings.get("motion", "descriptors") == "descriptors":
        return {"name": f"motion-{visual.VERSION}", "dim": visual.DESCRIPTORS["motion"][1]}
    embedder = video_embedding.shared_embedder(settings["swin3d"])
    return {"name": embedder.name, "dim": embedder.dim, "fingerprint": embedder.fingerprint}


def stream_record(settings: dict[str, Any], layout: str) -> dict[str, Any]:
    """What extraction.json says about this extractor (the builders copy it to metadata)."""
    from jaxaffect.features import visual

    streams = {"image": {"name": f"colour-{visual.VERSION}",
                         "dim": visual.DESCRIPTORS["colour"][1]},
               "motion": _motion_stream(settings),
               "audio": audio_features.stream(audio_features.kind_of(settings))}
    return {"extractor": layout, "settings": settings, "streams": streams}


def segment_streams(video: str, settings: dict[str, Any], stages: ex.Stages
                    ) -> tuple[dict[str, np.ndarray], float, list[tuple[str, str]]]:
    """{image, image_mask, motion, motion_mask, audio, audio_mask} of one video, its duration
    in seconds, and notes on absent streams."""
    from jaxaffect.features import media, segments, visual

    with stages("decode"):
        clip = media.decode_video(video, short_side=settings["short_side"],
                                  max_fps=settings["max_fps"])
        frames = np.stack(clip.frames)
    bounds = segments.fixed_bounds(clip.duration, settings["segment_seconds"])
    members = segments.frames_in(bounds, len(frames), clip.fps)
    out: dict[str, np.ndarray] = {}
    with stages("visual"):
        for stream, kind in (("image", "colour"), ("motion", "motion")):
            fn, dim = visual.DESCRIPTORS[kind]
            if stream == "motion" and settings.get("motion", "descriptors") == "swin3d":
                from jaxaffect.features import video_embedding

                embedder = video_embedding.shared_embedder(settings["swin3d"])
                fn, dim = embedder.embed, embedder.dim
            values = np.zeros((len(bounds), dim), np.float32)
            present = np.array([len(m) > 0 for m in members])
            for i, m in enumerate(members):
                if len(m):
                    values[i] = fn(frames[m])
            out[stream], out[stream + "_mask"] = values, present
    with stages("audio"):
        out["audio"], out["audio_mask"] = audio_features.segment_features(
            audio_features.kind_of(settings), clip.audio, bounds, clip.sample_rate)
    notes = [] if clip.has_audio else [("audio", "no audio stream: audio absent throughout")]
    return out, float(clip.duration), notes


def extract_video(job: ex.Job, settings: dict[str, Any], stages: ex.Stages) -> ex.Extracted:
    """The `tam` layout's file of one video."""
    arrays, seconds, notes = segment_streams(job.video, settings, stages)
    return ex.Extracted(arrays, seconds, notes)


def extract_tsc_video(job: ex.Job, settings: dict[str, Any], stages: ex.Stages
                      ) -> ex.Extracted:
    """The `tsc` layout's file of one video: its streams plus `segment_seconds`; the danmaku
    file is parsed first, so a broken one fails the video before decoding."""
    from jaxaffect.families.tam.danmaku import parse_danmaku

    with stages("danmaku"):
        xml = job.sidecars.get("danmaku")
        if not xml or not os.path.isfile(xml):
            raise FormatError(f"{xml}: no danmaku file for this video")
        parse_danmaku(xml)
    arrays, seconds, notes = segment_streams(job.video, settings, stages)
    arrays["segment_seconds"] = np.float32(settings["segment_seconds"])
    return ex.Extracted(arrays, seconds, notes)


def run(args: argparse.Namespace) -> ex.Summary:
    """`jaxaffect extract tam`."""
    settings = settings_of(args)
    out = Path(args.out)
    videos = ex.find_videos(args.videos)
    jobs = [ex.Job(os.fspath(path), f"features/{vid}.npz") for vid, path in videos]
    summary = ex.run_extraction(jobs, "jaxaffect.families.tam.extract:extract_video", settings,
                                out, record=stream_record(settings, "tam"),
                                workers=args.workers, progress=not args.no_progress)
    for lst in sorted(Path(args.videos).glob("*.txt")):
        ex.copy_if_new(lst, out / lst.name)
    return summary


def run_tsc(args: argparse.Namespace) -> ex.Summary:
    """`jaxaffect extract tsc`."""
    settings = settings_of(args)
    out = Path(args.out)
    danmaku = Path(args.danmaku)
    if not danmaku.is_dir():
        raise FormatError(f"{danmaku}: --danmaku is not a folder")
    jobs = []
    for vid, path in ex.find_videos(args.videos):
        if "/" in vid:
            raise FormatError(f"{path}: the tsc layout keys videos by file name; put the "
                              f"videos at the top of {args.videos}")
        jobs.append(ex.Job(os.fspath(path), f"features/{vid}.npz",
                           {"danmaku": os.fspath(danmaku / f"{vid}.xml")}))
    summary = ex.run_extraction(jobs, "jaxaffect.families.tam.extract:extract_tsc_video",
                                settings, out, record=stream_record(settings, "tsc"),
                                workers=args.workers, progress=not args.no_progress)
    for job in jobs:  # the danmaku of every video whose features exist
        if (out / job.output).is_file():
            ex.copy_if_new(Path(job.sidecars["danmaku"]), out / "danmaku" /
                         f"{Path(job.output).stem}.xml")
    return summary


def features_for_video(video: str, record: dict[str, Any], inputs: dict[str, str],
                       out_dir: str) -> str:
    """`predict --video`: the one video's feature file, as the run's dataset was extracted."""
    layout = record.get("extractor")
    ex.check_same_extraction(video, record, ("tam", "tsc"),
                             stream_record(record.get("settings", {}), str(layout)))
    with ex.one_video(video):
        arrays, _, _ = segment_streams(video, record["settings"], ex.Stages())
    path = Path(out_dir) / "features.npz"
    ex.write_output(path, arrays)
    return str(path)
