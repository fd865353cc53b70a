"""jaxaffect.features.media: write -> decode round trips and the one-line refusal of broken
files."""

from __future__ import annotations

import io

import av
import numpy as np
import pytest

from jaxaffect.errors import FormatError
from jaxaffect.features import media

RATE = media.SAMPLE_RATE


def _frames(n: int, h: int = 48, w: int = 64) -> np.ndarray:
    """Frames whose brightness ramps with the index (survives lossy coding)."""
    levels = np.linspace(20, 230, n).astype(np.uint8)
    return np.broadcast_to(levels[:, None, None, None], (n, h, w, 3)).copy()


def _tone(seconds: float, hz: float) -> np.ndarray:
    t = np.arange(round(seconds * RATE)) / RATE
    return (0.5 * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def _dominant_hz(pcm: np.ndarray) -> float:
    spectrum = np.abs(np.fft.rfft(pcm.astype(np.float64)))
    return float(np.argmax(spectrum) * RATE / len(pcm))


def test_round_trip_keeps_rate_size_and_audio(tmp_path):
    path = tmp_path / "clip.mp4"
    media.write_video_file(path, _frames(30), 30.0, _tone(1.0, 440.0))
    clip = media.decode_video(path, short_side=32, max_fps=15)
    assert clip.source_fps == pytest.approx(30.0)
    assert clip.stride == 2 and clip.fps == pytest.approx(15.0)
    assert clip.num_frames == 15
    assert (clip.height, clip.width) == (32, 43)  # 64 * 32 / 48 rounded, aspect kept
    assert all(f.shape == (32, 43, 3) and f.dtype == np.uint8 for f in clip.frames)
    # Every second source frame: brightness of stored frame i follows source frame 2i.
    expected = np.linspace(20, 230, 30)[::2]
    np.testing.assert_allclose([f.mean() for f in clip.frames], expected, atol=6)
    assert clip.has_audio and clip.audio.dtype == np.int16
    assert abs(len(clip.audio) - RATE) <= 1024
    assert _dominant_hz(clip.audio) == pytest.approx(440.0, abs=5.0)
    assert np.abs(clip.audio).max() > 0.3 * 32767
    assert clip.duration == pytest.approx(1.0, abs=0.1)


def test_rate_below_max_is_kept_and_jpeg_frames(tmp_path):
    path = tmp_path / "slow.mp4"
    media.write_video_file(path, _frames(10, 32, 48), 10.0, None)
    clip = media.decode_video(path, short_side=None, max_fps=15, jpeg_quality=90)
    assert clip.stride == 1 and clip.fps == pytest.approx(10.0) and clip.num_frames == 10
    assert all(isinstance(f, bytes) for f in clip.frames)
    first = media.decode_jpeg(clip.frames[0])
    assert first.shape == (32, 48, 3) and abs(first.mean() - 20) < 6
    assert not clip.has_audio and clip.audio.shape == (0,) and clip.audio.dtype == np.int16


def test_stereo_44k_audio_is_resampled_to_16k_mono(tmp_path):
    path = tmp_path / "stereo.mkv"
    tone = _tone(1.0, 300.0)
    with av.open(str(path), "w") as container:
        video = container.add_stream("mpeg4", rate=10)
        video.width, video.height, video.pix_fmt = 32, 32, "yuv420p"
        sound = container.add_stream("aac", rate=44100)
        sound.layout = "stereo"
        for i, frame in enumerate(_frames(10, 32, 32)):
            vf = av.VideoFrame.from_ndarray(frame, format="rgb24")
            vf.pts = i
            container.mux(video.encode(vf))
        container.mux(video.encode(None))
        t = np.arange(44100) / 44100
        both = np.stack([0.5 * np.sin(2 * np.pi * 300 * t)] * 2).astype(np.float32)
        for start in range(0, 44100, 1024):
            af = av.AudioFrame.from_ndarray(both[:, start:start + 1024], format="fltp",
                                            layout="stereo")
            af.sample_rate, af.pts = 44100, start
            container.mux(sound.encode(af))
        container.mux(sound.encode(None))
    clip = media.decode_video(path, short_side=16, max_fps=15)
    assert clip.num_frames == 10 and (clip.height, clip.width) == (16, 16)
    assert abs(len(clip.audio) - len(tone)) <= 1024
    assert _dominant_hz(clip.audio) == pytest.approx(300.0, abs=5.0)


def test_jpeg_round_trip():
    frame = _frames(1, 24, 40)[0]
    data = media.encode_jpeg(frame, quality=95)
    assert data[:2] == b"\xff\xd8"
    np.testing.assert_allclose(media.decode_jpeg(data).astype(int), frame.astype(int), atol=3)


def test_scaled_jpeg_decoding_keeps_the_short_side():
    """min_short_side lets the decoder scale by 1/2..1/8 but never below the size asked for;
    the result resembles the full decode scaled the same way."""
    from PIL import Image

    yy, xx = np.mgrid[0:96, 0:160]
    frame = np.stack([xx * 255 // 160, yy * 255 // 96, (xx + yy) % 256], -1).astype(np.uint8)
    data = media.encode_jpeg(frame, quality=95)
    assert media.decode_jpeg(data).shape == (96, 160, 3)
    assert media.decode_jpeg(data, 200).shape == (96, 160, 3)  # no upscaling in the decoder
    half = media.decode_jpeg(data, 40)
    assert half.shape == (48, 80, 3)  # 1/2: the largest reduction keeping >= 40 px
    assert media.decode_jpeg(data, 12).shape == (12, 20, 3)  # 1/8
    full = np.asarray(Image.fromarray(frame).resize((80, 48), Image.BILINEAR)).astype(int)
    assert np.abs(half.astype(int) - full).mean() < 4


def test_jpeg_decoding_matches_pil_and_falls_back_to_it():
    """libjpeg-turbo (simplejpeg) gives PIL's pixels for colour and greyscale JPEGs; a CMYK
    JPEG, which it refuses, is decoded by PIL; bytes that are no JPEG raise PIL's error."""
    from PIL import Image

    yy, xx = np.mgrid[0:64, 0:85]
    frame = np.stack([xx * 3 % 256, yy * 4 % 256, (xx * yy) % 256], -1).astype(np.uint8)
    grey = io.BytesIO()
    Image.fromarray(frame[..., 0]).save(grey, format="JPEG", quality=90)
    for data in (media.encode_jpeg(frame, quality=90), grey.getvalue()):
        with Image.open(io.BytesIO(data)) as image:
            reference = np.asarray(image.convert("RGB"))
        np.testing.assert_array_equal(media.decode_jpeg(data), reference)
    cmyk = io.BytesIO()
    Image.fromarray(frame).convert("CMYK").save(cmyk, format="JPEG", quality=95)
    with Image.open(io.BytesIO(cmyk.getvalue())) as image:
        reference = np.asarray(image.convert("RGB"))
    np.testing.assert_array_equal(media.decode_jpeg(cmyk.getvalue()), reference)
    with pytest.raises(OSError):
        media.decode_jpeg(b"\xff\xd8 not a jpeg")


def test_resized_size_and_stride():
    assert media.resized_size(480, 640, 128) == (128, 171)
    assert media.resized_size(640, 360, 128) == (228, 128)
    assert media.resized_size(50, 60, None) == (50, 60)
    assert [media.frame_stride(r, 15) for r in (10, 15, 24, 25, 29.97, 30, 60)] == \
        [1, 1, 2, 2, 2, 2, 4]


def test_probe(tmp_path):
    path = tmp_path / "clip.mp4"
    media.write_video_file(path, _frames(8), 8.0, _tone(1.0, 200.0))
    info = media.probe(path)
    assert info.has_video and info.has_audio and (info.width, info.height) == (64, 48)
    assert info.fps == pytest.approx(8.0) and info.duration == pytest.approx(1.0, abs=0.1)


def _audio_only(path) -> None:
    with av.open(str(path), "w") as container:
        sound = container.add_stream("aac", rate=RATE)
        sound.layout = "mono"
        tone = _tone(0.5, 440.0)
        for start in range(0, len(tone), 1024):
            af = av.AudioFrame.from_ndarray(tone[None, start:start + 1024], format="fltp",
                                            layout="mono")
            af.sample_rate, af.pts = RATE, start
            container.mux(sound.encode(af))
        container.mux(sound.encode(None))


@pytest.mark.parametrize("kind", ["truncated", "text", "audio_only", "empty", "missing"])
def test_broken_files_raise_one_line_naming_the_file(tmp_path, kind):
    path = tmp_path / f"{kind}.mp4"
    if kind == "truncated":
        whole = tmp_path / "whole.mp4"
        media.write_video_file(whole, _frames(20), 10.0, _tone(2.0, 440.0))
        data = whole.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif kind == "text":
        path.write_text("this is not a video\n")
    elif kind == "audio_only":
        _audio_only(path)
    elif kind == "empty":
        path.write_bytes(b"")
    with pytest.raises(media.MediaError) as info:
        media.decode_video(path, short_side=32, max_fps=15)
    message = str(info.value)
    assert isinstance(info.value, FormatError)
    assert message.startswith(f"{path}: ") and "\n" not in message
    if kind == "audio_only":
        assert "no video stream" in message
        with pytest.raises(media.MediaError, match="no video stream"):
            media.probe(path)


def test_write_refuses_odd_sizes(tmp_path):
    with pytest.raises(ValueError, match="even"):
        media.write_video_file(tmp_path / "odd.mp4", _frames(2, 31, 32), 10.0)
