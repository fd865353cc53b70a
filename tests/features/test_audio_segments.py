"""MFCC frames against librosa, per-segment statistics against a loop reference, segments."""

from __future__ import annotations

import numpy as np
import pytest

from jaxaffect.features import audio, segments


def _signal(seconds: float = 2.3, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * audio.SAMPLE_RATE)) / audio.SAMPLE_RATE
    y = 0.4 * np.sin(2 * np.pi * 330 * t) * (t < 1.0) + 0.05 * rng.standard_normal(t.size)
    return (y * 32767).astype(np.int16)


def test_mfcc_frames_match_librosa():
    import librosa

    y = _signal()
    got = audio.mfcc_frames(y)
    x = y.astype(np.float32) / 32768.0
    ref = librosa.feature.mfcc(y=x, sr=audio.SAMPLE_RATE, n_mfcc=audio.N_MFCC, n_fft=512,
                               hop_length=160, win_length=400, n_mels=audio.N_MELS).T
    assert got.shape == ref.shape and got.dtype == np.float32
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("sr,n_fft,n_mels", [(16000, 512, 64), (22050, 2048, 128),
                                              (16000, 1024, 40)])
def test_mel_basis_matches_librosa(sr, n_fft, n_mels):
    import librosa

    np.testing.assert_allclose(audio.mel_basis(sr, n_fft, n_mels),
                               librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels),
                               rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("seconds", [0.01, 0.5, 3.7])
def test_mfcc_frames_match_librosa_at_other_settings(seconds):
    import librosa

    y = _signal(seconds, seed=3)
    x = y.astype(np.float32) / 32768.0
    got = audio.mfcc_frames(y, 22050, window_ms=40.0, hop_ms=20.0, n_mels=40, n_mfcc=13)
    win, hop = 882, 441
    if x.size < 1024:
        x = np.pad(x, (0, 1024 - x.size))
    ref = librosa.feature.mfcc(y=x, sr=22050, n_mfcc=13, n_fft=1024, hop_length=hop,
                               win_length=win, n_mels=40).T
    assert got.shape == ref.shape
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=2e-3)


def test_frame_log_energy_matches_a_loop():
    y = _signal(0.5)
    got = audio.frame_log_energy(y)
    x = np.pad(y.astype(np.float64) / 32768.0, (256, 256))
    ref = []
    for f in range(len(got)):
        start = f * 160 + (512 - 400) // 2
        ref.append(np.log10(np.mean(x[start:start + 400] ** 2) + 1e-10))
    assert len(got) == len(audio.mfcc_frames(y))
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-5)


def test_segment_statistics_match_a_loop_reference():
    y = _signal()
    bounds = segments.fixed_bounds(len(y) / audio.SAMPLE_RATE, 1.0)
    got, present = audio.segment_statistics(y, bounds)
    m = audio.mfcc_frames(y)
    e = audio.frame_log_energy(y)
    d = np.vstack([np.zeros((1, m.shape[1]), np.float32), np.diff(m, axis=0)])
    assert got.shape == (3, audio.statistics_dim()) and present.all()
    for i, (start, end) in enumerate(bounds):
        rows = [f for f in range(len(m)) if start <= f * 0.01 < end]
        ref = np.concatenate([m[rows].mean(0), m[rows].std(0), d[rows].mean(0), d[rows].std(0),
                              [e[rows].mean(), e[rows].std(), e[rows].max()]])
        np.testing.assert_allclose(got[i], ref, rtol=1e-5, atol=1e-5)
    # the loud first second differs from the quiet rest in energy
    assert got[0, -3] > got[1, -3] + 1.0


def test_segment_statistics_of_no_audio_are_absent():
    feats, present = audio.segment_statistics(np.zeros(0, np.int16), np.array([[0, 1.0]]))
    assert not present.any() and not feats.any()
    # a segment past the end of the track is absent
    feats, present = audio.segment_statistics(_signal(1.0), np.array([[0, 1.0], [1.0, 2.0]]))
    assert present.tolist() == [True, False] and not feats[1].any()


def test_fixed_bounds_and_frames():
    b = segments.fixed_bounds(2.5, 1.0)
    np.testing.assert_allclose(b, [[0, 1], [1, 2], [2, 2.5]])
    assert len(segments.fixed_bounds(3.0000001, 1.0)) == 3  # container rounding
    assert len(segments.fixed_bounds(0.0, 1.0)) == 1
    members = segments.frames_in(b, 25, 10.0)
    assert [m.tolist() for m in members] == [list(range(10)), list(range(10, 20)),
                                             list(range(20, 25))]
    # a segment no frame starts in shows the frame on screen at its start
    short = segments.frames_in(np.array([[0, 0.05], [0.05, 0.1], [0.1, 0.2], [2.5, 3.0]]), 2,
                               10.0)
    assert [m.tolist() for m in short] == [[0], [0], [1], []]
    with pytest.raises(ValueError):
        segments.fixed_bounds(1.0, 0.0)
    np.testing.assert_allclose(segments.shot_bounds([(0, 5), (5, 12)], 10.0),
                               [[0, 0.5], [0.5, 1.2]])
