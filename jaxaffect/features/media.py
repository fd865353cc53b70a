"""Raw media in and out: decode a video file into resized frames + 16 kHz mono audio, write one,
and JPEG-code single frames. Every refusal of a file is a `MediaError` with one line
"<path>: <what is wrong>".

Choices (the builders and synthetic corpora rely on them):
- Frame rate: source frames are kept at a constant stride `ceil(source_fps / max_fps)` (every
  k-th decoded frame, the first one included), so the stored rate `source_fps / k` is at most
  `max_fps` and frames stay evenly spaced in time (no duplicated or dropped-then-repeated
  frames, as resampling to exactly `max_fps` would give for e.g. 25 -> 15 fps).
- Resizing: the short side becomes `short_side`, the long side `round(long * short_side /
  short)`, aspect kept; PIL bilinear, which widens its kernel when shrinking (an area-like
  filter, no aliasing of fine texture). Frames already of that size are not touched.
- Audio: all audio of the first audio stream, resampled by FFmpeg's resampler (through
  `av.AudioResampler`) to signed 16-bit mono at `sample_rate` (channels mixed down), cut to
  the stream's declared duration (AAC encoders pad the last frame).
- Writing: H.264 (libx264, yuv420p, which needs even width and height) or MPEG-4 part 2 when
  this FFmpeg lacks libx264; AAC audio.
"""

from __future__ import annotations

import io
import math
import os
from dataclasses import dataclass, field
from fractions import Fraction

import av
import numpy as np
import simplejpeg
from PIL import Image

from jaxaffect.errors import FormatError

SAMPLE_RATE = 16000
JPEG_QUALITY = 90
#: FFmpeg's decoding threads (PyAV thread_type): "AUTO" in one process; a pool of worker
#: processes, one per core, sets "NONE" (`single_threaded_decoding`). Frames do not change.
DECODE_THREADS = {"type": "AUTO"}


def single_threaded_decoding() -> None:
    """Decode on the calling thread only (for processes that each own one core)."""
    DECODE_THREADS["type"] = "NONE"


class MediaError(FormatError):
    """A media file that cannot be used: not decodable, no video stream, or no frames."""


@dataclass
class DecodedClip:
    """A decoded clip. `frames` are uint8 [H, W, 3] arrays, or JPEG bytes when decoded with
    `jpeg_quality`; `fps` is the stored frame rate; `audio` int16 [n] at `sample_rate`."""

    frames: list[np.ndarray] | list[bytes]
    fps: float
    audio: np.ndarray
    has_audio: bool
    duration: float
    height: int
    width: int
    source_fps: float
    sample_rate: int = SAMPLE_RATE
    stride: int = 1

    @property
    def num_frames(self) -> int:
        return len(self.frames)


@dataclass
class MediaInfo:
    """What `probe` finds without decoding: streams, size, rate and duration (0 when unknown)."""

    has_video: bool
    has_audio: bool
    width: int = 0
    height: int = 0
    fps: float = 0.0
    duration: float = 0.0
    codecs: list[str] = field(default_factory=list)


def _reason(error: BaseException) -> str:
    text = getattr(error, "strerror", None) or str(error) or type(error).__name__
    return " ".join(str(text).split())


def _open(path: str | os.PathLike) -> av.container.InputContainer:
    p = os.fspath(path)
    if not os.path.isfile(p):
        raise MediaError(f"{p}: no such file")
    if os.path.getsize(p) == 0:
        raise MediaError(f"{p}: empty file")
    try:
        return av.open(p, mode="r")
    except (av.error.FFmpegError, OSError, ValueError, UnicodeDecodeError) as e:
        raise MediaError(f"{p}: not a decodable media file ({_reason(e)})") from None


def _rate(stream: av.video.stream.VideoStream) -> float:
    for rate in (stream.average_rate, stream.guessed_rate, stream.base_rate):
        if rate and float(rate) > 0:
            return float(rate)
    return 0.0


def _duration(container: av.container.InputContainer, stream: av.stream.Stream | None) -> float:
    if container.duration:
        return float(container.duration) / av.time_base
    if stream is not None and stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    return 0.0


def probe(path: str | os.PathLike, *, require_video: bool = True) -> MediaInfo:
    """Streams, size, frame rate and duration of `path` from its headers (no decoding);
    `MediaError` when it cannot be opened or (with `require_video`) has no video stream."""
    with _open(path) as container:
        video = container.streams.video[0] if container.streams.video else None
        info = MediaInfo(has_video=video is not None, has_audio=bool(container.streams.audio),
                         codecs=[s.codec_context.name for s in container.streams
                                 if s.type in ("video", "audio")])
        if video is not None:
            info.width, info.height = video.codec_context.width, video.codec_context.height
            info.fps = _rate(video)
        info.duration = _duration(container, video)
    if require_video and not info.has_video:
        raise MediaError(f"{os.fspath(path)}: no video stream")
    return info


def resized_size(height: int, width: int, short_side: int | None) -> tuple[int, int]:
    """(height, width) with the short side `short_side` (unchanged when None), aspect kept."""
    if not short_side or min(height, width) == short_side:
        return height, width
    scale = short_side / min(height, width)
    if height <= width:
        return short_side, max(1, round(width * scale))
    return max(1, round(height * scale)), short_side


def resize_frame(frame: np.ndarray, short_side: int | None) -> np.ndarray:
    """Resize an RGB uint8 frame so its short side is `short_side` (PIL bilinear, see top)."""
    h, w = frame.shape[:2]
    nh, nw = resized_size(h, w, short_side)
    if (nh, nw) == (h, w):
        return frame
    image = Image.fromarray(frame).resize((nw, nh), Image.Resampling.BILINEAR)
    return np.asarray(image)


def frame_stride(source_fps: float, max_fps: float) -> int:
    """Keep every k-th frame, k the smallest integer with source_fps / k <= max_fps."""
    if source_fps <= 0 or max_fps <= 0:
        return 1
    return max(1, math.ceil(source_fps / max_fps - 1e-6))


def encode_jpeg(frame: np.ndarray, quality: int = JPEG_QUALITY) -> bytes:
    """JPEG bytes of an RGB uint8 [H, W, 3] frame (baseline, 4:2:0 chroma)."""
    buffer = io.BytesIO()
    Image.fromarray(np.asarray(frame, np.uint8)).save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def decode_jpeg(data: bytes, min_short_side: int | None = None) -> np.ndarray:
    """RGB uint8 [H, W, 3] of JPEG bytes (libjpeg-turbo through simplejpeg; ~4x faster than
    PIL on small frames, where PIL's Python-level header parsing dominates). With
    `min_short_side` the decoder may scale the image down by 1/2, 1/4 or 1/8 in the DCT domain
    while decoding (libjpeg's scaled decoding: several times faster than a full decode) as
    long as the short side stays >= `min_short_side`; the caller resizes the rest of the way. A CMYK
    JPEG, or one libjpeg-turbo refuses (damage it does not recover from), is decoded by PIL,
    whose error is the one raised."""
    data = bytes(data)
    try:
        height, width, colorspace, _ = simplejpeg.decode_jpeg_header(data)
        if colorspace in ("YCbCr", "Gray", "RGB"):  # its CMYK -> RGB differs from PIL's
            factor = 1  # 1/2, 1/4 or 1/8, as PIL's draft (libjpeg also offers k/8)
            while factor < 8 and min_short_side and \
                    min(height, width) // (2 * factor) >= min_short_side:
                factor *= 2
            return simplejpeg.decode_jpeg(data, colorspace="RGB",
                                          min_height=-(-height // factor),
                                          min_width=-(-width // factor))
    except ValueError:
        pass
    with Image.open(io.BytesIO(data)) as image:
        if min_short_side:
            w, h = image.size
            scale = min_short_side / min(w, h)
            if scale < 1.0:  # draft keeps every side >= the size asked for
                image.draft("RGB", (math.ceil(w * scale), math.ceil(h * scale)))
        return np.asarray(image if image.mode == "RGB" else image.convert("RGB"))


def decode_video(path: str | os.PathLike, *, short_side: int | None, max_fps: float,
                 sample_rate: int = SAMPLE_RATE,
                 jpeg_quality: int | None = None) -> DecodedClip:
    """Decode `path`: every k-th frame (stored rate <= `max_fps`), resized so the short side is
    `short_side`, and the audio as int16 mono at `sample_rate` (empty, has_audio False, when the
    file has no audio stream). With `jpeg_quality` the frames come back as JPEG bytes (keeps
    long clips small in memory). `MediaError` for an undecodable file, no video stream or no
    frames."""
    p = os.fspath(path)
    with _open(p) as container:
        if not container.streams.video:
            raise MediaError(f"{p}: no video stream")
        video = container.streams.video[0]
        video.thread_type = DECODE_THREADS["type"]
        audio = container.streams.audio[0] if container.streams.audio else None
        audio_seconds = (float(audio.duration * audio.time_base)
                         if audio is not None and audio.duration and audio.time_base else 0.0)
        source_fps = _rate(video)
        stride = frame_stride(source_fps, max_fps)
        duration = _duration(container, video)
        resampler = (av.AudioResampler(format="s16", layout="mono", rate=sample_rate)
                     if audio is not None else None)
        frames: list = []
        chunks: list[np.ndarray] = []
        seen = 0
        streams = [video] + ([audio] if audio is not None else [])
        try:
            for packet in container.demux(streams):
                for decoded in packet.decode():
                    if isinstance(decoded, av.VideoFrame):
                        if seen % stride == 0:
                            rgb = resize_frame(decoded.to_ndarray(format="rgb24"), short_side)
                            frames.append(rgb if jpeg_quality is None
                                          else encode_jpeg(rgb, jpeg_quality))
                        seen += 1
                    elif resampler is not None:
                        chunks.extend(f.to_ndarray().reshape(-1)
                                      for f in resampler.resample(decoded))
            if resampler is not None:
                chunks.extend(f.to_ndarray().reshape(-1) for f in resampler.resample(None))
        except (av.error.FFmpegError, OSError, ValueError) as e:
            raise MediaError(f"{p}: decoding failed after {seen} video frames "
                             f"({_reason(e)})") from None
    if not frames:
        raise MediaError(f"{p}: the video stream has no decodable frames")
    if source_fps <= 0:  # no rate in the headers: estimate it from the duration
        source_fps = seen / duration if duration > 0 else float(max_fps)
        stride = 1
    if duration <= 0:
        duration = seen / source_fps
    first = frames[0]
    h, w = decode_jpeg(first).shape[:2] if isinstance(first, bytes) else first.shape[:2]
    pcm = (np.concatenate(chunks).astype(np.int16, copy=False) if chunks
           else np.zeros((0,), np.int16))
    if audio_seconds > 0:  # drop the encoder's padding past the stream's declared end
        pcm = pcm[:round(audio_seconds * sample_rate)]
    return DecodedClip(frames=frames, fps=source_fps / stride, audio=pcm,
                       has_audio=audio is not None, duration=duration, height=int(h),
                       width=int(w), source_fps=source_fps, sample_rate=sample_rate,
                       stride=stride)


def _video_codec() -> str:
    return "libx264" if "libx264" in av.codecs_available else "mpeg4"


def write_video_file(path: str | os.PathLike, frames: np.ndarray, fps: float,
                     audio: np.ndarray | None = None, sample_rate: int = SAMPLE_RATE, *,
                     crf: int = 23, audio_bit_rate: int = 64000) -> None:
    """Write an encoded video file (container from the suffix, e.g. .mp4/.mkv): `frames`
    uint8 [N, H, W, 3] (H, W even) at `fps`, with `audio` float32 [-1, 1] mono [n] as AAC
    (`audio_bit_rate` bits/s), or no audio stream when None. H.264 yuv420p (`crf` its
    quality), MPEG-4 without libx264. Equal inputs give byte-identical files."""
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8 or not len(frames):
        raise ValueError(f"frames must be uint8 [N>0, H, W, 3], got {frames.dtype} "
                         f"{frames.shape}")
    n, h, w = frames.shape[:3]
    if h % 2 or w % 2:
        raise ValueError(f"yuv420p needs an even width and height, got {w}x{h}")
    codec = _video_codec()
    rate = Fraction(fps).limit_denominator(1001)
    # bitexact: no random ids or dates in the container, so equal inputs give equal bytes.
    with av.open(os.fspath(path), mode="w", options={"fflags": "+bitexact"}) as container:
        stream = container.add_stream(codec, rate=rate)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        if codec == "libx264":
            stream.options = {"crf": str(crf), "preset": "medium"}
        sound = None
        if audio is not None:
            sound = container.add_stream("aac", rate=sample_rate)
            sound.layout = "mono"
            sound.bit_rate = audio_bit_rate
        for i in range(n):
            frame = av.VideoFrame.from_ndarray(frames[i], format="rgb24")
            frame.pts = i
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
        if sound is not None:
            samples = np.clip(np.asarray(audio, np.float32).reshape(-1), -1.0, 1.0)
            step = sound.codec_context.frame_size or 1024
            for start in range(0, len(samples), step):
                piece = samples[start:start + step]
                chunk = av.AudioFrame.from_ndarray(piece[None, :], format="fltp",
                                                   layout="mono")
                chunk.sample_rate = sample_rate
                chunk.pts = start
                container.mux(sound.encode(chunk))
            container.mux(sound.encode(None))
