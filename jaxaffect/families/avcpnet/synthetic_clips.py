"""The generative process of the synthetic eMotions-layout corpus: frames and sound of one clip
as pure numpy functions (no file I/O; `synthetic.py` allocates labels, splits and kinds and
writes the files). docs/synthetic_emotions.md documents the design and its reasons.

Each emotion has a visual cue (the hue of a moving disc and the way it moves: orbit, shake,
stand still, sway, fall, pulse; some flicker) and an audio cue (the pitch of a tone and the
rate of its amplitude modulation). A clip shows, per modality, either its own class's cue,
another class's cue (a decoy) or a class-agnostic pattern (a grey disc bouncing / ambient
noise); which one is decided by the clip's kind. Per-clip jitter (hue, pitch, positions,
phases, brightness gain and offset, levels) and noise keep the cues from being read off one
pixel or one sample.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from jaxaffect.families.avcpnet.emotions import EMOTIONS6

# Visual cue per class: disc hue (degrees), motion, its rate (Hz, or px/s for "fall"), its
# amplitude (px), the disc radius (px), flicker rate (Hz, 0 none, -1 irregular) and depth,
# and the disc's brightness. Hues are at least 50 degrees apart (per-clip jitter +-8).
VIDEO_CUES: dict[str, dict[str, float | str]] = {
    "excitation": {"hue": 50.0, "motion": "orbit", "rate": 1.0, "amplitude": 14.0,
                   "radius": 8.0, "flicker": 4.0, "flicker_depth": 0.35, "value": 0.95},
    "fear": {"hue": 290.0, "motion": "shake", "rate": 0.0, "amplitude": 4.0,
             "radius": 6.0, "flicker": -1.0, "flicker_depth": 0.4, "value": 0.85},
    "neutral": {"hue": 180.0, "motion": "still", "rate": 0.0, "amplitude": 1.5,
                "radius": 9.0, "flicker": 0.0, "flicker_depth": 0.0, "value": 0.8},
    "relaxation": {"hue": 120.0, "motion": "sway", "rate": 0.3, "amplitude": 16.0,
                   "radius": 11.0, "flicker": 0.0, "flicker_depth": 0.0, "value": 0.85},
    "sadness": {"hue": 230.0, "motion": "fall", "rate": 10.0, "amplitude": 0.0,
                "radius": 9.0, "flicker": 0.0, "flicker_depth": 0.0, "value": 0.6},
    "tension": {"hue": 0.0, "motion": "pulse", "rate": 2.5, "amplitude": 0.4,
                "radius": 9.0, "flicker": 0.0, "flicker_depth": 0.0, "value": 0.9},
}
# Audio cue per class: tone pitch (Hz; about a fourth apart, pure tones so no harmonic of one
# class lands on another's pitch), amplitude-modulation rate (Hz, 0 steady) and depth.
AUDIO_CUES: dict[str, dict[str, float]] = {
    "excitation": {"pitch": 494.0, "am_rate": 6.0, "am_depth": 0.5},
    "fear": {"pitch": 880.0, "am_rate": 11.0, "am_depth": 0.7},
    "neutral": {"pitch": 370.0, "am_rate": 0.0, "am_depth": 0.0},
    "relaxation": {"pitch": 294.0, "am_rate": 0.5, "am_depth": 0.6},
    "sadness": {"pitch": 220.0, "am_rate": 1.0, "am_depth": 0.5},
    "tension": {"pitch": 659.0, "am_rate": 3.0, "am_depth": 0.8},
}

# Clip shape, jitter and noise (all stored in the corpus parameters).
RENDER: dict[str, float] = {
    "height": 64, "width": 64, "fps": 15, "sample_rate": 16000,
    "min_frames": 30, "max_frames": 60,  # 2-4 s at 15 fps
    "hue_jitter": 8.0,  # degrees, per clip
    "shape_saturation_min": 0.7, "background_saturation_max": 0.25,
    "background_value_min": 0.25, "background_value_max": 0.55, "background_texture": 0.12,
    "gain_min": 0.8, "gain_max": 1.2, "offset_max": 0.08,  # per clip, on [0, 1] intensities
    "pixel_noise_min": 0.02, "pixel_noise_max": 0.05,  # std per pixel and frame
    "radius_jitter": 0.15,  # relative, per clip
    "rate_jitter": 0.15,  # relative jitter of motion / flicker / AM rates, per clip
    "pitch_jitter": 0.03,  # relative, per clip
    "tone_amplitude_min": 0.2, "tone_amplitude_max": 0.4,
    "white_noise_min": 0.02, "white_noise_max": 0.06,  # std
    "ambient_noise_min": 0.02, "ambient_noise_max": 0.06,  # std of low-passed noise
    "agnostic_noise_min": 0.06, "agnostic_noise_max": 0.14,  # ambient std without a tone
    "fade_seconds": 0.02,
}


@dataclasses.dataclass(frozen=True)
class ClipPlan:
    """What one clip shows: its label, its kind, the class whose cue each modality shows
    (None: the class-agnostic pattern) and whether it has an audio stream at all."""

    label: int
    kind: str  # "both" | "video_only" | "audio_only"
    video_cue: int | None
    audio_cue: int | None
    has_audio: bool = True


def hsv_to_rgb(h: np.ndarray, s: np.ndarray, v: np.ndarray) -> np.ndarray:
    """RGB in [0, 1], shape [..., 3], of hue `h` (degrees), saturation and value in [0, 1]."""
    h, s, v = np.broadcast_arrays(np.mod(h, 360.0) / 60.0, s, v)
    c = v * s
    x = c * (1.0 - np.abs(np.mod(h, 2.0) - 1.0))
    sector = np.floor(h).astype(int) % 6
    zero = np.zeros_like(c)
    table = np.stack([np.stack(p, -1) for p in ((c, x, zero), (x, c, zero), (zero, c, x),
                                                 (zero, x, c), (x, zero, c), (c, zero, x))])
    rgb = np.take_along_axis(table, sector[None, ..., None], axis=0)[0]
    return rgb + (v - c)[..., None]


def rgb_hue_saturation(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(hue in degrees, HSV saturation) of RGB values in [0, 1], shape [..., 3]."""
    r, g, b = np.moveaxis(np.asarray(rgb, np.float64), -1, 0)
    mx, mn = np.maximum(np.maximum(r, g), b), np.minimum(np.minimum(r, g), b)
    d = np.where(mx > mn, mx - mn, 1.0)
    hue = np.where(mx == r, np.mod((g - b) / d, 6.0),
                   np.where(mx == g, (b - r) / d + 2.0, (r - g) / d + 4.0)) * 60.0
    sat = np.where(mx > 0, (mx - mn) / np.where(mx > 0, mx, 1.0), 0.0)
    return np.where(mx > mn, hue, 0.0), sat


def _smooth_field(rng: np.random.Generator, h: int, w: int, cells: int = 5) -> np.ndarray:
    """A smooth random field [h, w] (unit-variance cells, bilinearly interpolated)."""
    def matrix(n: int) -> np.ndarray:
        pos = (np.arange(n) + 0.5) / n * (cells - 1)
        lo = np.minimum(np.floor(pos).astype(int), cells - 2)
        m = np.zeros((n, cells))
        m[np.arange(n), lo] = 1.0 - (pos - lo)
        m[np.arange(n), lo + 1] = pos - lo
        return m
    return matrix(h) @ rng.normal(size=(cells, cells)) @ matrix(w).T


def _jitter(rng: np.random.Generator, value: float, rel: float) -> float:
    return float(value * rng.uniform(1.0 - rel, 1.0 + rel))


def disc_track(rng: np.random.Generator, cue: dict | None, t: np.ndarray, h: int, w: int
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Centre x, y, radius and brightness factor per frame of the disc of `cue` (None: the
    class-agnostic grey disc bouncing off the borders at a random velocity)."""
    n = len(t)
    rj = RENDER["rate_jitter"]
    if cue is None:
        r = np.full(n, rng.uniform(7.0, 11.0))
        speed, angle = rng.uniform(8.0, 25.0), rng.uniform(0.0, 2 * np.pi)
        span = np.array([w, h]) - 2 * r[0]
        start = rng.uniform(0.0, 1.0, 2) * span
        pos = start[None] + speed * t[:, None] * np.array([np.cos(angle), np.sin(angle)])
        pos = span - np.abs(np.mod(pos, 2 * span) - span)  # reflect at the borders
        return pos[:, 0] + r[0], pos[:, 1] + r[0], r, np.ones(n)
    radius = _jitter(rng, float(cue["radius"]), RENDER["radius_jitter"])
    rate, amp = _jitter(rng, float(cue["rate"]), rj), float(cue["amplitude"])
    phase = rng.uniform(0.0, 2 * np.pi)
    anchor = rng.uniform([radius + amp, radius + amp], [w - radius - amp, h - radius - amp])
    r = np.full(n, radius)
    motion = cue["motion"]
    if motion == "orbit":
        sign = rng.choice([-1.0, 1.0])
        centre = rng.uniform(w / 2 - 4, w / 2 + 4), rng.uniform(h / 2 - 4, h / 2 + 4)
        a = sign * 2 * np.pi * rate * t + phase
        x, y = centre[0] + amp * np.cos(a), centre[1] + amp * np.sin(a)
    elif motion == "shake":
        jumps = np.cumsum(rng.random(n) < 0.08)  # sudden moves to a new place
        places = rng.uniform([radius + amp] * 2, [w - radius - amp, h - radius - amp],
                             (jumps[-1] + 1, 2))
        x = places[jumps, 0] + rng.uniform(-amp, amp, n)
        y = places[jumps, 1] + rng.uniform(-amp, amp, n)
    elif motion == "still":
        a = rng.uniform(0.0, 2 * np.pi)
        x, y = anchor[0] + amp * np.cos(a) * t / t[-1], anchor[1] + amp * np.sin(a) * t / t[-1]
    elif motion == "sway":
        x = w / 2 + amp * np.sin(2 * np.pi * rate * t + phase)
        y = np.full(n, anchor[1])
    elif motion == "fall":
        travel = h + 2 * radius
        x = np.full(n, anchor[0])
        y = np.mod(rng.uniform(0.0, travel) + rate * t, travel) - radius
    elif motion == "pulse":
        x, y = np.full(n, anchor[0]), np.full(n, anchor[1])
        r = radius * (1.0 + amp * np.sin(2 * np.pi * rate * t + phase))
    else:
        raise ValueError(f"unknown motion {motion!r}")
    flicker, depth = float(cue["flicker"]), float(cue["flicker_depth"])
    if flicker > 0:
        f = _jitter(rng, flicker, rj)
        bright = 1.0 - depth * (0.5 + 0.5 * np.sin(2 * np.pi * f * t + rng.uniform(0, 6.3)))
    elif flicker < 0:
        bright = 1.0 - depth * rng.random(n)
    else:
        bright = np.ones(n)
    return x, y, r, bright


def render_video(rng: np.random.Generator, cue: int | None, num_frames: int) -> np.ndarray:
    """uint8 frames [num_frames, H, W, 3]: a textured low-saturation background of a random
    hue, the disc of class `cue` (None: the grey agnostic disc), per-clip gain and offset, and
    per-pixel noise."""
    h, w, fps = int(RENDER["height"]), int(RENDER["width"]), float(RENDER["fps"])
    t = np.arange(num_frames) / fps
    spec = VIDEO_CUES[EMOTIONS6[cue]] if cue is not None else None
    bg_value = rng.uniform(RENDER["background_value_min"], RENDER["background_value_max"])
    texture = RENDER["background_texture"] * _smooth_field(rng, h, w)
    background = hsv_to_rgb(rng.uniform(0.0, 360.0),
                            rng.uniform(0.0, RENDER["background_saturation_max"]),
                            np.clip(bg_value + texture, 0.0, 1.0))  # [h, w, 3]
    x, y, r, bright = disc_track(rng, spec, t, h, w)
    if spec is None:
        colour = hsv_to_rgb(0.0, 0.0, rng.uniform(0.55, 0.9))
    else:
        hue = float(spec["hue"]) + rng.uniform(-RENDER["hue_jitter"], RENDER["hue_jitter"])
        colour = hsv_to_rgb(hue, rng.uniform(RENDER["shape_saturation_min"], 1.0),
                            float(spec["value"]) * rng.uniform(0.9, 1.05))
    yy, xx = np.mgrid[0:h, 0:w] + 0.5
    dist = np.hypot(xx[None] - x[:, None, None], yy[None] - y[:, None, None])
    alpha = np.clip(r[:, None, None] - dist + 0.5, 0.0, 1.0)[..., None]  # anti-aliased edge
    frames = background[None] * (1.0 - alpha) + (colour * bright[:, None, None, None]) * alpha
    gain = rng.uniform(RENDER["gain_min"], RENDER["gain_max"])
    offset = rng.uniform(-RENDER["offset_max"], RENDER["offset_max"])
    noise = rng.uniform(RENDER["pixel_noise_min"], RENDER["pixel_noise_max"])
    frames = (frames * gain + offset).astype(np.float32)
    frames += noise * rng.standard_normal(frames.shape, dtype=np.float32)
    return np.round(np.clip(frames, 0.0, 1.0) * 255.0).astype(np.uint8)


def _lowpass_noise(rng: np.random.Generator, n: int, std: float, cutoff: float = 150.0
                   ) -> np.ndarray:
    """White noise low-passed (first-order response, -3 dB at `cutoff` Hz, applied in the
    frequency domain) into an ambient rumble, scaled to `std`."""
    padded = 1 << max(n - 1, 1).bit_length()  # a power of two: a fast FFT for any n
    spectrum = np.fft.rfft(rng.normal(size=padded))
    freqs = np.fft.rfftfreq(padded, 1.0 / float(RENDER["sample_rate"]))
    out = np.fft.irfft(spectrum / np.sqrt(1.0 + (freqs / cutoff) ** 2), padded)[:n]
    return std * out / max(float(out.std()), 1e-12)


def render_audio(rng: np.random.Generator, cue: int | None, num_samples: int) -> np.ndarray:
    """float32 mono [num_samples] in [-1, 1]: the amplitude-modulated tone of class `cue` over
    white and ambient noise, or (cue None) louder ambient noise with a slow random swell and
    no tone. 20 ms fades at both ends."""
    sr = float(RENDER["sample_rate"])
    t = np.arange(num_samples) / sr
    white = rng.normal(0.0, rng.uniform(RENDER["white_noise_min"], RENDER["white_noise_max"]),
                       num_samples)
    if cue is None:
        std = rng.uniform(RENDER["agnostic_noise_min"], RENDER["agnostic_noise_max"])
        swell = 1.0 + 0.5 * np.sin(2 * np.pi * rng.uniform(0.1, 0.4) * t + rng.uniform(0, 6.3))
        signal = _lowpass_noise(rng, num_samples, std) * swell + white
    else:
        spec = AUDIO_CUES[EMOTIONS6[cue]]
        pitch = _jitter(rng, spec["pitch"], RENDER["pitch_jitter"])
        rate = _jitter(rng, spec["am_rate"], RENDER["rate_jitter"])
        env = 1.0 - spec["am_depth"] * (0.5 - 0.5 * np.cos(2 * np.pi * rate * t
                                                             + rng.uniform(0, 6.3)))
        amp = rng.uniform(RENDER["tone_amplitude_min"], RENDER["tone_amplitude_max"])
        tone = amp * env * np.sin(2 * np.pi * pitch * t + rng.uniform(0, 6.3))
        ambient = _lowpass_noise(rng, num_samples, rng.uniform(RENDER["ambient_noise_min"],
                                                               RENDER["ambient_noise_max"]))
        signal = tone + ambient + white
    fade = min(int(RENDER["fade_seconds"] * sr), num_samples // 2)
    if fade:
        ramp = np.linspace(0.0, 1.0, fade)
        signal[:fade] *= ramp
        signal[num_samples - fade:] *= ramp[::-1]
    return np.clip(signal, -1.0, 1.0).astype(np.float32)


def num_audio_samples(num_frames: int) -> int:
    """Audio samples spanning `num_frames` video frames."""
    return int(round(num_frames * RENDER["sample_rate"] / RENDER["fps"]))


def render_clip(rng: np.random.Generator, plan: ClipPlan
                ) -> tuple[np.ndarray, np.ndarray | None]:
    """(uint8 frames [N, H, W, 3], float32 audio [n] or None) of one planned clip; N is drawn
    in [min_frames, max_frames]."""
    n = int(rng.integers(int(RENDER["min_frames"]), int(RENDER["max_frames"]) + 1))
    video_rng, audio_rng = rng.spawn(2)
    frames = render_video(video_rng, plan.video_cue, n)
    audio = render_audio(audio_rng, plan.audio_cue, num_audio_samples(n)) if plan.has_audio \
        else None
    return frames, audio
