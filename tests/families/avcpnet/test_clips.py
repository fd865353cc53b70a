"""Clip sampling (Sec. 4.1): segments, snippets, frames, crops and the MFCC segments."""

from __future__ import annotations

import io

import numpy as np
import pytest

from jaxaffect.errors import FormatError
from jaxaffect.families.avcpnet import clips
from jaxaffect.features.media import encode_jpeg

SPEC = clips.ClipSpec(num_segments=3, snippet_frames=6, frames_per_snippet=3, crop=16,
                      n_mfcc=13, n_mels=20, mfcc_frames=60, audio_segments=3)


@pytest.mark.parametrize("n", [1, 5, 18, 19, 100])
def test_eval_frames_centre_snippet_of_each_segment(n):
    idx = clips.frame_indices(n, SPEC)
    assert idx.shape == (3, 3)
    assert idx.min() >= 0 and idx.max() <= n - 1
    seg = n / 3
    for j in range(3):
        if seg >= SPEC.snippet_frames:  # the snippet fits: inside segment j, centred
            start = idx[j, 0]
            assert np.floor(j * seg) <= start and idx[j, -1] < np.floor((j + 1) * seg)
            centre = j * seg + seg / 2
            assert abs((start + SPEC.snippet_frames / 2) - centre) <= 1
        # T frames at an even stride of k / T inside one snippet of k consecutive frames
        expected = np.minimum(idx[j, 0] + np.array([0, 2, 4]), n - 1)
        np.testing.assert_array_equal(idx[j], expected)


def test_train_frames_random_inside_segments():
    n = 90
    starts = set()
    for seed in range(40):
        idx = clips.frame_indices(n, SPEC, np.random.default_rng(seed))
        for j in range(3):
            assert 30 * j <= idx[j, 0] and idx[j, 0] + SPEC.snippet_frames <= 30 * (j + 1)
        starts.add(int(idx[0, 0]))
    assert len(starts) > 5  # the snippet moves
    assert np.array_equal(clips.frame_indices(n, SPEC, np.random.default_rng(3)),
                          clips.frame_indices(n, SPEC, np.random.default_rng(3)))


def _jpegs(n, h=20, w=28):
    frames = []
    for i in range(n):
        f = np.zeros((h, w, 3), np.uint8)
        f[..., 0] = 8 * i  # the frame number shows in the red channel
        f[:, : w // 2, 1] = 200  # left half green: shows flips
        frames.append(encode_jpeg(f, quality=95))
    return frames


def test_sample_video_decodes_the_chosen_frames():
    jpegs = _jpegs(18)
    video = clips.sample_video(jpegs, SPEC)
    assert video.shape == SPEC.video_shape and video.dtype == np.uint8
    idx = clips.frame_indices(18, SPEC)
    np.testing.assert_allclose(video[..., 0].mean((2, 3)), 8 * idx, atol=3)
    # centre crop of 20 x 28 -> rows 2..18, columns 6..22: green on the left 8 columns
    assert video[0, 0, :, :7, 1].mean() > 150 and video[0, 0, :, 9:, 1].mean() < 50


def test_sample_video_flips_some_training_clips_and_resizes():
    jpegs = _jpegs(18)
    lefts = {bool(clips.sample_video(jpegs, SPEC, np.random.default_rng(s))[0, 0, :, 0, 1]
                  .mean() > 100) for s in range(12)}
    assert lefts == {True, False}
    small = clips.ClipSpec(num_segments=1, snippet_frames=2, frames_per_snippet=1, crop=24,
                           resize=30)
    assert clips.sample_video(jpegs, small).shape == (1, 1, 24, 24, 3)


def _reference_video(jpegs, spec, seed):
    """Frame by frame with PIL: decode, resize to the short side, crop, flip (the same draws
    from the same generator, in the same order)."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    idx = clips.frame_indices(len(jpegs), spec, rng)
    target = max(spec.resize, spec.crop) if spec.resize else None
    frames = []
    for i in idx.ravel():
        with Image.open(io.BytesIO(jpegs[i])) as image:
            if target and min(image.size) >= 2 * target:  # DCT-domain 1/2 .. 1/8
                image.draft("RGB", tuple(-(-side * target // min(image.size))
                                         for side in image.size))
            frames.append(np.asarray(image.convert("RGB")))
    h, w = frames[0].shape[:2]
    short = max(spec.resize or min(h, w), spec.crop)
    size = (round(w * short / min(h, w)), round(h * short / min(h, w)))
    frames = [np.asarray(Image.fromarray(f).resize(size, Image.BILINEAR)) for f in frames]
    y, x = clips.crop_origin(size[1], size[0], spec.crop, rng)
    flip = spec.flip and rng.random() < 0.5
    out = np.stack([f[y:y + spec.crop, x:x + spec.crop] for f in frames])
    return (out[:, :, ::-1] if flip else out).reshape(spec.video_shape)


@pytest.mark.parametrize("shape,resize,seed", [
    ((30, 44), 24, 0), ((30, 44), 24, 1), ((30, 44), 40, 2), ((30, 44), 0, 3),
    ((64, 88), 24, 4), ((100, 72), 22, 5)])  # the last two decode at 1/2 and 1/4 first
def test_sample_video_matches_a_frame_by_frame_reference(shape, resize, seed):
    rng = np.random.default_rng(seed)
    jpegs = [encode_jpeg(rng.integers(0, 256, shape + (3,)).astype(np.uint8), quality=95)
             for _ in range(18)]
    spec = clips.ClipSpec(num_segments=3, snippet_frames=6, frames_per_snippet=3, crop=20,
                          resize=resize)
    got = clips.sample_video(jpegs, spec, np.random.default_rng(seed))
    want = _reference_video(jpegs, spec, seed)
    assert got.shape == want.shape
    assert np.abs(got.astype(int) - want.astype(int)).max() <= 1  # PIL rounds between passes


def test_sample_video_refuses_frames_of_different_sizes():
    jpegs = [encode_jpeg(np.zeros((20 + i % 3 * 2, 28, 3), np.uint8)) for i in range(18)]
    with pytest.raises(FormatError, match="clip7: its frames differ in size"):
        clips.sample_video(jpegs, SPEC, where="clip7")


def test_fit_length_crops_centre_or_repeats():
    m = np.arange(10)[:, None] * np.ones((1, 2))
    np.testing.assert_array_equal(clips.fit_length(m, 4)[:, 0], [3, 4, 5, 6])
    np.testing.assert_array_equal(clips.fit_length(m[:3], 7)[:, 0], [0, 1, 2, 0, 1, 2, 0])
    assert clips.fit_length(m[:0], 5).shape == (5, 2)


def test_audio_input_mfcc_segments():
    sr = 16000
    t = np.arange(sr) / sr
    tone = (0.5 * np.sin(2 * np.pi * 440 * t) * 32767).astype(np.int16)
    out = clips.audio_input(tone, True, SPEC)
    assert out.shape == SPEC.mfcc_shape == (3, 20, 13) and out.dtype == np.float32
    import librosa

    ref = librosa.feature.mfcc(y=tone.astype(np.float32) / 32768, sr=sr, n_mfcc=13,
                               n_fft=512, win_length=400, hop_length=160, n_mels=20).T
    ref = (ref - ref.mean()) / (ref.std() + 1e-5)
    start = (ref.shape[0] - 60) // 2
    np.testing.assert_allclose(out.reshape(60, 13), ref[start:start + 60], rtol=1e-4,
                               atol=1e-4)
    assert not clips.audio_input(tone, False, SPEC).any()
    assert not clips.audio_input(np.zeros(0, np.int16), True, SPEC).any()


def test_mfcc_matches_librosa_on_noise_and_short_clips():
    """The composed MFCC (cached mel basis, one matrix product) equals librosa.feature.mfcc."""
    import librosa

    rng = np.random.default_rng(3)
    for n in (16000 * 3 + 123, 300):  # a 3 s clip, and one shorter than the FFT window
        y = (rng.normal(0.0, 0.2, n) * 32767).clip(-32768, 32767).astype(np.int16)
        yf = np.pad(y.astype(np.float32) / 32768, (0, max(0, 512 - n)))
        ref = librosa.feature.mfcc(y=yf, sr=16000, n_mfcc=13, n_fft=512, win_length=400,
                                   hop_length=160, n_mels=20).T
        ref = (ref - ref.mean()) / (ref.std() + 1e-5)
        np.testing.assert_allclose(clips.mfcc(y, SPEC), ref, rtol=1e-4, atol=1e-4)


def test_spec_refuses_inconsistent_sizes():
    with pytest.raises(ValueError, match="frames_per_snippet=9 exceeds"):
        clips.ClipSpec(snippet_frames=8, frames_per_snippet=9)
    with pytest.raises(ValueError, match="not a multiple"):
        clips.ClipSpec(mfcc_frames=100, audio_segments=3)
