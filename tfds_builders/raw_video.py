"""The raw-video part shared by the eMotions, Music_video, Ekman-6 and VideoEmotion-8 builders:
decoded frames (as JPEG bytes) and 16 kHz audio per clip.

Stored example (`raw_video_features`)::

  video_id    Text                  the id of the release table / list
  label       ClassLabel
  platform    Text                  eMotions' douyin|kuaishou|tiktok; "" elsewhere
  frames      Tensor((None,), object)   one JPEG (quality JPEG_QUALITY) per stored frame; the
                                    short side is the config's `short_side`, aspect kept
  fps, duration                     float32: stored frame rate (<= `max_fps`), clip seconds
  num_frames, height, width         int32
  audio       Tensor((None,), int16, BYTES encoding)  16 kHz mono PCM, length 0 when none
  has_audio   bool                  False when the file has no audio stream (a silent track
                                    that is present counts as audio)

Read back with `tfds.builder_from_directory(d).info.features.deserialize_example_np(record)`
(TFRecord and ArrayRecord alike; checked in the builders' tests), an example is a dict with
`frames` a 1-D numpy object array of `bytes` (each a JPEG: decode lazily with
`jaxaffect.features.media.decode_jpeg`), `audio` a 1-D int16 numpy array, `video_id` and
`platform` bytes, `label`/`num_frames`/`height`/`width` ints, `fps`/`duration` floats and
`has_audio` a bool. The audio is stored as raw bytes: as an int64 list, every negative sample
would take 10 bytes of varint.

Frame rate and size follow `jaxaffect.features.media.decode_video` (every k-th frame,
k = ceil(source fps / max_fps); PIL bilinear resize). A clip that cannot be decoded, has no
video stream or no frames is skipped: one line on stderr naming the file and the reason, and an
entry {"video_id", "file", "reason"} in the build's metadata.json (`skipped_clips`); a split
whose every clip fails is refused. metadata.json also records `short_side`, `max_fps`,
`sample_rate`, `jpeg_quality` and `class_names`. Clips are decoded in a few threads
(FFmpeg, PIL resizing and JPEG coding release the GIL); JAXAFFECT_DECODE_THREADS sets how many.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import os
import sys
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow_datasets as tfds
from etils import epath
from tqdm import tqdm

from jaxaffect.errors import FormatError
from jaxaffect.families.avcpnet.release_format import video_file
from jaxaffect.features import media
from tfds_builders import affect_video as av
from tfds_builders.refused_build import RefusedBuildCleanup

SHORT_SIDE = 128
LARGE_SHORT_SIDE = 224
MAX_FPS = 15.0
JPEG_QUALITY = 90
DECODE_THREADS_ENV = "JAXAFFECT_DECODE_THREADS"


@dataclasses.dataclass
class VideoConfig(tfds.core.BuilderConfig):
    """A raw-video config (`raw` True: decoded frames + audio; False: the class-list builders'
    feature config), with the frame size and rate and, for eMotions, the split column."""

    raw: bool = True
    short_side: int = SHORT_SIDE
    max_fps: float = MAX_FPS
    split_column: str = "split"


def sized_configs(name: str, description: str, **fields: Any) -> list[VideoConfig]:
    """`name` (short side 128) and `name_224` (short side 224) raw-video configs."""
    return [VideoConfig(name=f"{name}{suffix}", short_side=side, max_fps=MAX_FPS,
                        description=f"{description} Frames: short side {side}, <= "
                                    f"{MAX_FPS:g} fps, JPEG; audio 16 kHz mono int16.",
                        **fields)
            for suffix, side in (("", SHORT_SIDE), ("_224", LARGE_SHORT_SIDE))]


def raw_video_features(class_names: Sequence[str]) -> tfds.features.FeaturesDict:
    """The stored example of every raw-video config (see the module doc)."""
    scalar = tfds.features.Scalar
    return tfds.features.FeaturesDict({
        "video_id": tfds.features.Text(),
        "label": tfds.features.ClassLabel(names=list(class_names)),
        "platform": tfds.features.Text(),
        "frames": tfds.features.Tensor(shape=(None,), dtype=np.object_),
        "fps": scalar(dtype=np.float32),
        "num_frames": scalar(dtype=np.int32),
        "height": scalar(dtype=np.int32),
        "width": scalar(dtype=np.int32),
        "audio": tfds.features.Tensor(shape=(None,), dtype=np.int16,
                                      encoding=tfds.features.Encoding.BYTES),
        "has_audio": scalar(dtype=np.bool_),
        "duration": scalar(dtype=np.float32),
    })


@dataclasses.dataclass(frozen=True)
class Clip:
    """A clip to decode: id, class index, video file, where it is listed, platform."""

    video_id: str
    label: int
    path: Path
    where: str
    platform: str = ""


def decode_threads() -> int:
    value = os.environ.get(DECODE_THREADS_ENV, "")
    if value:
        return max(1, int(value))
    return max(1, min(8, os.cpu_count() or 1))


def clip_example(clip: Clip, decoded: media.DecodedClip) -> dict[str, Any]:
    return {
        "video_id": clip.video_id,
        "label": clip.label,
        "platform": clip.platform,
        "frames": list(decoded.frames),
        "fps": np.float32(decoded.fps),
        "num_frames": np.int32(decoded.num_frames),
        "height": np.int32(decoded.height),
        "width": np.int32(decoded.width),
        "audio": decoded.audio.astype(np.int16, copy=False),
        "has_audio": bool(decoded.has_audio),
        "duration": np.float32(decoded.duration),
    }


def _decode(clip: Clip, short_side: int, max_fps: float
            ) -> media.DecodedClip | media.MediaError:
    try:
        return media.decode_video(clip.path, short_side=short_side, max_fps=max_fps,
                                  sample_rate=media.SAMPLE_RATE, jpeg_quality=JPEG_QUALITY)
    except media.MediaError as e:
        return e


def decoded_clips(clips: Sequence[Clip], short_side: int, max_fps: float,
                  threads: int | None = None
                  ) -> Iterator[tuple[Clip, media.DecodedClip | media.MediaError]]:
    """(clip, decoded clip or its MediaError) in the order of `clips`, decoding a few clips
    ahead in threads (at most 2 x threads decoded clips are held at once)."""
    threads = threads or decode_threads()
    if threads == 1:
        for clip in clips:
            yield clip, _decode(clip, short_side, max_fps)
        return
    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
        pending: list[tuple[Clip, concurrent.futures.Future]] = []
        queue = iter(clips)
        for clip in queue:
            pending.append((clip, pool.submit(_decode, clip, short_side, max_fps)))
            if len(pending) >= 2 * threads:
                break
        while pending:
            clip, future = pending.pop(0)
            nxt = next(queue, None)
            if nxt is not None:
                pending.append((nxt, pool.submit(_decode, nxt, short_side, max_fps)))
            yield clip, future.result()


class RawVideoMixin(RefusedBuildCleanup):
    """_info/_split_generators pieces for raw-video configs. Subclasses (also deriving from
    GeneratorBasedBuilder, with VideoConfig configs) set CLASS_NAMES and HOMEPAGE and call
    `_raw_split_generators({split: [Clip]})` from their `_split_generators`."""

    CLASS_NAMES: tuple[str, ...] = ()
    HOMEPAGE: str = ""

    def _raw_info(self) -> tfds.core.DatasetInfo:
        return self.dataset_info_from_configs(
            features=raw_video_features(self.CLASS_NAMES), supervised_keys=None,
            homepage=self.HOMEPAGE, metadata=tfds.core.MetadataDict())

    def _info(self) -> tfds.core.DatasetInfo:
        return self._raw_info()

    def _raw_split_generators(self, clips: Mapping[str, Sequence[Clip]],
                              manual_dir: str | os.PathLike,
                              overlap: Sequence[str] = ()) -> dict[str, Any]:
        config = self.builder_config
        md = self.info.metadata  # metadata.json of the build (written after generation)
        md.update({"short_side": int(config.short_side), "max_fps": float(config.max_fps),
                   "sample_rate": media.SAMPLE_RATE, "jpeg_quality": JPEG_QUALITY,
                   "class_names": list(self.CLASS_NAMES), "skipped_clips": []})
        paths = {c.video_id: c.path for cs in clips.values() for c in cs}
        av.record_allowances(md, manual_dir, paths, overlap)
        return {split: self._generate_clips(split, cs) for split, cs in clips.items()}

    def _generate_clips(self, split: str, clips: Sequence[Clip]
                        ) -> Iterator[tuple[str, dict[str, Any]]]:
        config = self.builder_config
        written, failed = 0, []
        ordered = sorted(clips, key=lambda c: c.video_id)  # deterministic generation
        for clip, decoded in decoded_clips(ordered, config.short_side, config.max_fps):
            if isinstance(decoded, media.MediaError):
                failed.append(self._skip(clip, decoded))
                continue
            written += 1
            yield clip.video_id, clip_example(clip, decoded)
        if not written:
            first = failed[0]
            raise FormatError(f"{first['file']}: split {split!r}: none of its {len(clips)} "
                              f"clips could be decoded (this one: {first['reason']})")

    def _generate_examples(self, split: str, clips: Sequence[Clip]):
        return self._generate_clips(split, clips)

    def _skip(self, clip: Clip, error: media.MediaError) -> dict[str, str]:
        file = os.fspath(clip.path)
        message = str(error)
        reason = message[len(file) + 2:] if message.startswith(file + ": ") else message
        # tqdm.write: the line goes above TFDS's progress bars instead of into them.
        tqdm.write(f"skipped clip {clip.video_id!r} (listed at {clip.where}): {file}: {reason}",
                   file=sys.stderr)
        entry = {"video_id": clip.video_id, "file": file, "reason": reason}
        self.info.metadata["skipped_clips"].append(entry)
        return entry


# ------------------------------------------------------------------ class-list benchmarks

def class_list_configs(benchmark: str) -> list[VideoConfig]:
    """`features` (the default: the 1.0.0 feature build), then `raw` and `raw_224`."""
    return [
        VideoConfig(name="features", raw=False,
                    description=f"{benchmark}: per-video segment features the user extracted "
                                "(features/<Class>/<video>.npz), as in version 1.0.0."),
        *sized_configs("raw", f"{benchmark}: the released videos <Class>/<video>.<ext>, "
                              "decoded."),
    ]


def read_class_list_videos(manual_dir: str | os.PathLike, class_names: tuple[str, ...],
                           list_files: Mapping[str, str]
                           ) -> tuple[dict[str, list[Clip]], list[str]]:
    """({split: [Clip]}, ids in both lists) of a class-list release with its videos at
    `<manual_dir>/<video id>.<ext>`; missing videos, leaks and paths leaving manual_dir are
    refused naming the list file and line."""
    videos = av.read_class_lists(manual_dir, class_names, list_files)
    overlap = av.split_overlap(videos)
    found: dict[str, Path] = {}
    clips: dict[str, list[Clip]] = {}
    for split, listed in videos.items():
        for v in listed:
            if v.video_id not in found:
                found[v.video_id] = video_file(manual_dir, v.video_id, where=v.where)
            clips.setdefault(split, []).append(
                Clip(v.video_id, v.label_id, found[v.video_id], v.where))
    return clips, overlap


class ClassListVideoMixin(av.ClassListMixin, RawVideoMixin):
    """VideoEmotion-8 / Ekman-6: the `features` config of ClassListMixin, and `raw` configs
    reading the videos beside the lists."""

    def _info(self) -> tfds.core.DatasetInfo:
        if not self.builder_config.raw:
            return av.ClassListMixin._info(self)
        return self._raw_info()

    def _split_generators(self, dl_manager: tfds.download.DownloadManager) -> dict[str, Any]:
        if not self.builder_config.raw:
            return av.ClassListMixin._split_generators(self, dl_manager)
        manual_dir = epath.Path(dl_manager.manual_dir)
        clips, overlap = read_class_list_videos(manual_dir, self.CLASS_NAMES, self.LIST_FILES)
        return self._raw_split_generators(clips, manual_dir, overlap)


def check_class_list(builder_cls: type, manual_dir: str, config: str | None) -> None:
    """The cheap pre-build check of a class-list builder for `config` (None: the default)."""
    name = config or builder_cls.BUILDER_CONFIGS[0].name
    chosen = {c.name: c for c in builder_cls.BUILDER_CONFIGS}.get(name)
    if chosen is None or not chosen.raw:
        av.read_class_list_release(manual_dir, builder_cls.CLASS_NAMES, builder_cls.LIST_FILES)
    else:
        read_class_list_videos(manual_dir, builder_cls.CLASS_NAMES, builder_cls.LIST_FILES)


# ------------------------------------------------------------------ dummy data

def dummy_clip(path: str | os.PathLike, seed: int, *, height: int = 32, width: int = 32,
               fps: float = 10.0, seconds: float = 0.8, audio: bool = True,
               amplitude: float = 0.3) -> None:
    """A tiny real encoded clip: a bright square moving over a coloured gradient and, with
    `audio`, a tone of `amplitude` (0: a silent track; pitch from `seed`). Deterministic for
    a given seed."""
    rng = np.random.default_rng(seed)
    n = max(1, round(fps * seconds))
    base = rng.integers(30, 200, size=3)
    ys, xs = np.mgrid[0:height, 0:width]
    frames = np.empty((n, height, width, 3), np.uint8)
    for i in range(n):
        img = base[None, None, :] + (xs[..., None] * 40 // max(width, 1))
        cy, cx = (i * 3) % max(height - 8, 1), (i * 5) % max(width - 8, 1)
        img = np.broadcast_to(img, (height, width, 3)).copy()
        img[cy:cy + 8, cx:cx + 8] = 240
        frames[i] = np.clip(img, 0, 255)
    sound = None
    if audio:
        t = np.arange(round(seconds * media.SAMPLE_RATE)) / media.SAMPLE_RATE
        sound = (amplitude * np.sin(2 * np.pi * (220 + 40 * (seed % 10)) * t)).astype(np.float32)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    media.write_video_file(path, frames, fps, sound, crf=35, audio_bit_rate=16000)


def write_class_list_videos(root: str | os.PathLike, seed: int) -> list[str]:
    """One dummy clip `<root>/<video id>.mp4` per video of the dummy lists (sorted ids): every
    fifth without audio, every seventh at 30 fps (kept at every 2nd frame), every third
    48x32 (landscape) and every fourth 32x48 (portrait). Returns the ids."""
    root = Path(root)
    ids = sorted({ln.split()[0].decode()
                  for name in ("trainlist01.txt", "testlist01.txt")
                  for ln in (root / name).read_bytes().splitlines() if ln.strip()})
    for i, vid in enumerate(ids):
        h, w = (32, 48) if i % 3 == 1 else (48, 32) if i % 4 == 2 else (32, 32)
        dummy_clip(root / f"{vid}.mp4", seed + i, height=h, width=w,
                   fps=30.0 if i % 7 == 3 else 10.0, audio=i % 5 != 4)
    return ids
