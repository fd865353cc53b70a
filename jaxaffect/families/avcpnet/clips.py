"""From a stored clip (JPEG frames + 16 kHz audio) to the model's inputs (paper Sec. 4.1).

Video: the clip's frames are divided into s segments of equal duration; from each segment a
snippet of k consecutive frames is taken (a random start in training, the centred snippet at
evaluation) and T frames are sampled from it at an even stride. Only those s x T frames are
JPEG-decoded and, when ``resize`` is set, resized to that short side. Augmentation (the paper
names none; our choice, the usual one for video classification): one random square crop of
`crop` pixels per clip, the same for every frame, and a horizontal flip with probability 1/2;
evaluation takes the centre crop. Frames whose short side is below `crop` are resized up to
it. Frames leave the host as uint8 [s, T, crop, crop, 3]; the task normalises them on the
device (4x less host-to-device data).

Audio: MFCC (librosa: `n_mfcc` coefficients of an `n_mels` mel spectrogram, 25 ms windows,
10 ms hop) over the whole clip, standardised with one mean and one standard deviation over all
its coefficients and frames (our choice: raw MFCC values reach the hundreds; normalising each
coefficient over time separately would erase a steady sound's spectral shape, e.g. a pitch), then
centre-cropped to q frames, or padded by repeating itself when shorter ("pad itself", read
literally), and cut into t equal segments: [t, q / t, n_mfcc]. A clip without audio gives zeros
and ``has_audio`` False.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from typing import Any

import numpy as np

from jaxaffect.errors import FormatError
from jaxaffect.features import audio as audio_features

IMAGENET_MEAN = (0.485, 0.456, 0.406)  # the normalisation of ImageNet/Kinetics backbones
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclasses.dataclass(frozen=True)
class ClipSpec:
    """How a clip becomes model inputs (the config's `data` section picks the values)."""

    num_segments: int = 4  # s
    snippet_frames: int = 16  # k consecutive stored frames per segment
    frames_per_snippet: int = 8  # T frames sampled from each snippet
    resize: int = 0  # short side the frames are resized to before cropping (0: as stored)
    crop: int = 112
    flip: bool = True
    sample_rate: int = 16000
    n_mfcc: int = 64
    n_mels: int = 64
    window_ms: float = 25.0
    hop_ms: float = 10.0
    mfcc_frames: int = 1024  # q
    audio_segments: int = 4  # t

    def __post_init__(self):
        for name in ("num_segments", "snippet_frames", "frames_per_snippet", "crop",
                     "n_mfcc", "mfcc_frames", "audio_segments"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"data.{name} must be >= 1, got {getattr(self, name)}")
        if self.frames_per_snippet > self.snippet_frames:
            raise ValueError(f"data.frames_per_snippet={self.frames_per_snippet} exceeds "
                             f"data.snippet_frames={self.snippet_frames}")
        if self.mfcc_frames % self.audio_segments:
            raise ValueError(f"data.mfcc_frames={self.mfcc_frames} is not a multiple of "
                             f"data.audio_segments={self.audio_segments}")

    @property
    def video_shape(self) -> tuple[int, ...]:
        return (self.num_segments, self.frames_per_snippet, self.crop, self.crop, 3)

    @property
    def mfcc_shape(self) -> tuple[int, ...]:
        return (self.audio_segments, self.mfcc_frames // self.audio_segments, self.n_mfcc)


def frame_indices(num_frames: int, spec: ClipSpec,
                  rng: np.random.Generator | None = None) -> np.ndarray:
    """int [s, T] indices of the sampled frames (see the module docstring). A clip shorter than
    a snippet repeats its last frame."""
    if num_frames < 1:
        raise ValueError("a clip with no frames")
    s, k, t = spec.num_segments, spec.snippet_frames, spec.frames_per_snippet
    seg_len = num_frames / s
    offsets = np.floor(np.arange(t) * k / t).astype(np.int64)
    out = np.empty((s, t), np.int64)
    for j in range(s):
        lo = int(np.floor(j * seg_len))
        hi = max(lo, int(np.floor((j + 1) * seg_len)) - k)  # last start inside the segment
        if rng is None:
            start = max(lo, int(np.floor(j * seg_len + (seg_len - k) / 2)))
            start = min(start, hi)
        else:
            start = int(rng.integers(lo, hi + 1))
        out[j] = np.minimum(start + offsets, num_frames - 1)
    return out


def crop_origin(height: int, width: int, crop: int,
                rng: np.random.Generator | None = None) -> tuple[int, int]:
    """Top-left corner of the crop: random in training, centred at evaluation."""
    if rng is None:
        return (height - crop) // 2, (width - crop) // 2
    return int(rng.integers(0, height - crop + 1)), int(rng.integers(0, width - crop + 1))


def sample_video(jpegs, spec: ClipSpec, rng: np.random.Generator | None = None,
                 *, where: str = "") -> np.ndarray:
    """uint8 [s, T, crop, crop, 3] from a clip's JPEG frames (a sequence of bytes)."""
    from jaxaffect.features.media import decode_jpeg, resized_size
    from jaxaffect.features.resize import resize_crop

    idx = frame_indices(len(jpegs), spec, rng)
    used, position = np.unique(idx, return_inverse=True)
    target = max(spec.resize, spec.crop) if spec.resize else None  # scaled JPEG decoding
    frames = []
    for i in used:
        try:
            frames.append(decode_jpeg(bytes(jpegs[int(i)]), target))
        except Exception as e:  # a damaged frame in a build: name the clip
            raise FormatError(f"{where or 'clip'}: frame {int(i)} does not decode ({e})") from e
    sizes = {f.shape for f in frames}
    if len(sizes) > 1:
        raise FormatError(f"{where or 'clip'}: its frames differ in size ({sorted(sizes)})")
    h, w = frames[0].shape[:2]
    size = resized_size(h, w, max(spec.resize or min(h, w), spec.crop))
    y, x = crop_origin(*size, spec.crop, rng)
    flip = bool(spec.flip and rng is not None and rng.random() < 0.5)
    out = resize_crop(np.stack(frames), size, y, x, spec.crop)
    if flip:
        out = out[:, :, ::-1]
    return np.ascontiguousarray(out[position.reshape(-1)]).reshape(spec.video_shape)


def mfcc(audio: np.ndarray, spec: ClipSpec) -> np.ndarray:
    """float32 [frames, n_mfcc] (`jaxaffect.features.audio.mfcc_frames`, librosa's MFCC),
    standardised with one mean and one standard deviation over the whole clip."""
    m = audio_features.mfcc_frames(audio, spec.sample_rate, window_ms=spec.window_ms,
                                   hop_ms=spec.hop_ms, n_mels=spec.n_mels, n_mfcc=spec.n_mfcc)
    m = (m - m.mean()) / (m.std() + 1e-5)
    return m.astype(np.float32)


def fit_length(m: np.ndarray, length: int) -> np.ndarray:
    """Centre crop to `length` rows, or repeat the rows cyclically up to it."""
    n = m.shape[0]
    if n >= length:
        start = (n - length) // 2
        return m[start:start + length]
    if n == 0:
        return np.zeros((length,) + m.shape[1:], m.dtype)
    return np.take(m, np.arange(length) % n, axis=0)


def audio_input(audio: np.ndarray, has_audio: bool, spec: ClipSpec) -> np.ndarray:
    """float32 [t, q / t, n_mfcc] (zeros for a clip without audio)."""
    if not has_audio or np.asarray(audio).size == 0:
        return np.zeros(spec.mfcc_shape, np.float32)
    return fit_length(mfcc(audio, spec), spec.mfcc_frames).reshape(spec.mfcc_shape)


def clip_inputs(jpegs, audio: np.ndarray, has_audio: bool, spec: ClipSpec,
                rng: np.random.Generator | None = None, *, where: str = "") -> dict[str, Any]:
    """The model inputs of one clip: video uint8, mfcc float32, has_audio bool."""
    return {"video": sample_video(jpegs, spec, rng, where=where),
            "mfcc": audio_input(audio, has_audio, spec),
            "has_audio": np.bool_(has_audio and np.asarray(audio).size > 0)}


@functools.lru_cache(maxsize=8)
def record_decoder(builder_dir: str):
    """The build's record decoder (`DatasetFiles.decoder`, looked up once per process)."""
    from jaxaffect.data.records import dataset_files

    return dataset_files(builder_dir).decoder


@dataclasses.dataclass(frozen=True)
class RecordTransform:
    """Serialized stored clip -> one training/evaluation example (picklable for grain
    workers: the build's feature decoder is looked up per process)."""

    builder_dir: str
    spec: ClipSpec

    def __call__(self, record: bytes, rng: np.random.Generator | None = None) -> dict:
        audio_features.one_blas_thread()
        ex = record_decoder(os.fspath(self.builder_dir))(record)
        vid = ex["video_id"]
        vid = vid.decode("utf-8") if isinstance(vid, bytes) else str(vid)
        out = clip_inputs(ex["frames"], ex["audio"], bool(ex["has_audio"]), self.spec, rng,
                          where=f"{self.builder_dir}: clip {vid}")
        out.update(label=np.int32(ex["label"]), valid=np.bool_(True), video_id=vid)
        return out


def padding_example(spec: ClipSpec) -> dict[str, Any]:
    """An invalid example with the real shapes (fills the last evaluation batch)."""
    return {"video": np.zeros(spec.video_shape, np.uint8),
            "mfcc": np.zeros(spec.mfcc_shape, np.float32), "has_audio": np.bool_(False),
            "label": np.int32(0), "valid": np.bool_(False), "video_id": ""}
