"""Audio features from a decoded track: MFCC frames and per-segment MFCC statistics.

`mfcc_frames` computes what ``librosa.feature.mfcc(y=...)`` computes with its defaults: a
centred STFT (zero padding of half an FFT window at both ends, a periodic Hann window of the
window length centred in the FFT frame), the power spectrogram through a Slaney-style mel filter
bank (Slaney mel scale, area-normalised triangles), dB with an 80 dB floor below the peak, and
an orthonormal DCT-II. It is written here in numpy (librosa's import alone costs each extraction
worker ~3 s, more than a minute of video takes); the mel basis is built once per process.
Tests check it against ``librosa.feature.mfcc`` and ``librosa.filters.mel``.

`segment_statistics` summarises the frames of each time segment, the kind of functional
statistics openSMILE-style feature sets are made of, over a small descriptor set: per MFCC
coefficient its mean and standard deviation, the same for its first difference (delta), and
mean / standard deviation / maximum of the frame log-energy (`STATISTICS_DIM` = 4 * n_mfcc + 3
values). It is not ComParE 2016 or eGeMAPS (openSMILE is under a research licence and not a
dependency): datasets extracted with it record its name and width.
"""

from __future__ import annotations

import functools

import numpy as np
import scipy.fft

SAMPLE_RATE = 16000
N_MFCC = 20
WINDOW_MS = 25.0
HOP_MS = 10.0
N_MELS = 64
STATISTICS_NAME = "mfcc-statistics-v1"


def statistics_dim(n_mfcc: int = N_MFCC) -> int:
    return 4 * n_mfcc + 3


@functools.lru_cache(maxsize=1)
def one_blas_thread() -> None:
    """Limits numpy's BLAS to one thread in this process (once). Audio matrices are small;
    BLAS threads spinning against other work's threads made the MFCC's one matrix product
    about 20x slower (22 ms instead of 1.2 ms) on a loaded 2-core machine."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1, user_api="blas")


def _hz_to_mel(f: np.ndarray) -> np.ndarray:
    """The Slaney mel scale: linear (3 mels per 200 Hz) below 1 kHz, logarithmic above."""
    f = np.asarray(f, np.float64)
    step, knee, knee_mel = 200.0 / 3, 1000.0, 1000.0 / (200.0 / 3)
    log_step = np.log(6.4) / 27.0
    return np.where(f >= knee, knee_mel + np.log(np.maximum(f, 1e-10) / knee) / log_step,
                    f / step)


def _mel_to_hz(m: np.ndarray) -> np.ndarray:
    m = np.asarray(m, np.float64)
    step, knee, knee_mel = 200.0 / 3, 1000.0, 1000.0 / (200.0 / 3)
    log_step = np.log(6.4) / 27.0
    return np.where(m >= knee_mel, knee * np.exp(log_step * (m - knee_mel)), step * m)


@functools.lru_cache(maxsize=8)
def mel_basis(sample_rate: int, n_fft: int, n_mels: int) -> np.ndarray:
    """float32 [n_mels, n_fft // 2 + 1]: triangular filters between n_mels + 2 points evenly
    spaced on the Slaney mel scale from 0 Hz to sample_rate / 2, each scaled by 2 / its
    bandwidth in Hz (equal area)."""
    fft_hz = np.fft.rfftfreq(n_fft, 1.0 / sample_rate)
    mel_hz = _mel_to_hz(np.linspace(_hz_to_mel(0.0), _hz_to_mel(sample_rate / 2.0),
                                    n_mels + 2))
    widths = np.diff(mel_hz)
    ramps = mel_hz[:, None] - fft_hz[None, :]
    rising = -ramps[:-2] / widths[:-1, None]
    falling = ramps[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(rising, falling))
    weights *= (2.0 / (mel_hz[2:] - mel_hz[:-2]))[:, None]
    return weights.astype(np.float32)


@functools.lru_cache(maxsize=8)
def _window(win: int, n_fft: int) -> np.ndarray:
    """A periodic Hann window of `win` samples centred in `n_fft` (zeros around it)."""
    hann = 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(win) / win)
    out = np.zeros(n_fft, np.float64)
    start = (n_fft - win) // 2
    out[start:start + win] = hann
    return out


@functools.lru_cache(maxsize=8)
def _dct_basis(m: int, n: int) -> np.ndarray:
    """[n, m]: the first n rows of the orthonormal DCT-II matrix of size m."""
    k = np.arange(n)[:, None]
    basis = np.cos(np.pi * k * (2 * np.arange(m)[None, :] + 1) / (2 * m)) * np.sqrt(2.0 / m)
    basis[0] /= np.sqrt(2.0)
    return basis


def _dct_ortho(x: np.ndarray, n: int) -> np.ndarray:
    """The first n coefficients of the orthonormal DCT-II along axis 0 of x [m, frames]."""
    return _dct_basis(x.shape[0], n) @ x


def as_float(audio: np.ndarray) -> np.ndarray:
    """float32 samples in [-1, 1] (int16 input is scaled by 1/32768)."""
    y = np.asarray(audio)
    return (y.astype(np.float32) / 32768.0) if y.dtype == np.int16 else y.astype(np.float32)


def hop_length(sample_rate: int, hop_ms: float = HOP_MS) -> int:
    return int(round(sample_rate * hop_ms / 1000))


def mfcc_frames(audio: np.ndarray, sample_rate: int = SAMPLE_RATE, *,
                window_ms: float = WINDOW_MS, hop_ms: float = HOP_MS, n_mels: int = N_MELS,
                n_mfcc: int = N_MFCC) -> np.ndarray:
    """float32 [frames, n_mfcc]; frame f is centred at f * hop. A track shorter than one FFT
    window is zero-padded to it."""
    y = as_float(audio)
    win = int(round(sample_rate * window_ms / 1000))
    hop = hop_length(sample_rate, hop_ms)
    n_fft = 1 << (win - 1).bit_length()
    if y.size < n_fft:
        y = np.pad(y, (0, n_fft - y.size))
    padded = np.pad(y, (n_fft // 2, n_fft // 2))
    count = 1 + (padded.size - n_fft) // hop
    frames = np.lib.stride_tricks.as_strided(
        padded, (count, n_fft), (padded.strides[0] * hop, padded.strides[0]), writeable=False)
    # scipy's FFT: numpy's (2.x) takes several times longer over a batch of float32 frames
    spectrum = scipy.fft.rfft(frames * _window(win, n_fft).astype(np.float32), axis=1)
    power = (spectrum.real**2 + spectrum.imag**2).T  # [bins, frames]
    mel = mel_basis(sample_rate, n_fft, n_mels) @ power
    db = 10.0 * np.log10(np.maximum(mel, 1e-10))
    db = np.maximum(db, db.max() - 80.0)
    return _dct_ortho(db, n_mfcc).T.astype(np.float32)


def frame_log_energy(audio: np.ndarray, sample_rate: int = SAMPLE_RATE, *,
                     window_ms: float = WINDOW_MS, hop_ms: float = HOP_MS) -> np.ndarray:
    """float32 [frames] log10 mean-square energy of each centred window (same frames as
    `mfcc_frames`; the track is zero-padded by half an FFT window at both ends, as librosa's
    centred STFT)."""
    y = as_float(audio)
    win = int(round(sample_rate * window_ms / 1000))
    hop = hop_length(sample_rate, hop_ms)
    n_fft = 1 << (win - 1).bit_length()
    if y.size < n_fft:
        y = np.pad(y, (0, n_fft - y.size))
    pad = n_fft // 2
    padded = np.pad(y, (pad, pad), mode="constant")
    n = 1 + (padded.size - n_fft) // hop
    starts = np.arange(n) * hop + (n_fft - win) // 2
    idx = starts[:, None] + np.arange(win)[None, :]
    energy = np.mean(np.square(padded[idx], dtype=np.float64), axis=1)
    return np.log10(energy + 1e-10).astype(np.float32)


def segment_statistics(audio: np.ndarray, bounds: np.ndarray, sample_rate: int = SAMPLE_RATE,
                       *, n_mfcc: int = N_MFCC) -> tuple[np.ndarray, np.ndarray]:
    """(features float32 [S, statistics_dim(n_mfcc)], present bool [S]) for segments
    `bounds` [S, 2] in seconds (start, end). A segment is present when at least two MFCC
    frames have their centre inside it; absent segments hold zeros (so does everything when
    the track is empty). Layout per row: mfcc mean [n], mfcc std [n], delta mean [n],
    delta std [n], log-energy mean, std, max."""
    bounds = np.asarray(bounds, np.float64).reshape(-1, 2)
    out = np.zeros((len(bounds), statistics_dim(n_mfcc)), np.float32)
    present = np.zeros(len(bounds), bool)
    if np.asarray(audio).size == 0 or len(bounds) == 0:
        return out, present
    one_blas_thread()
    m = mfcc_frames(audio, sample_rate, n_mfcc=n_mfcc)
    energy = frame_log_energy(audio, sample_rate)[:len(m)]
    delta = np.diff(m, axis=0, prepend=m[:1])
    times = np.arange(len(m)) * hop_length(sample_rate) / sample_rate
    duration = np.asarray(audio).size / sample_rate
    for i, (start, end) in enumerate(bounds):
        sel = (times >= start) & (times < min(end, duration))
        if sel.sum() < 2:
            continue
        mm, dd, ee = m[sel], delta[sel], energy[sel]
        out[i] = np.concatenate([mm.mean(0), mm.std(0), dd.mean(0), dd.std(0),
                                 [ee.mean(), ee.std(), ee.max()]])
        present[i] = True
    return out, present
