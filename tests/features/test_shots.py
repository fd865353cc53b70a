"""jaxaffect.features.shots: the 8-bit HSV conversion against per-pixel references, content
scores against a loop reference, and exact boundaries on synthetic clips with known cuts."""

from __future__ import annotations

import colorsys

import numpy as np
import pytest

from jaxaffect.features import shots


def _hsv_pixel(r: int, g: int, b: int) -> tuple[int, int, int]:
    """One pixel, plain integers: OpenCV's fixed-point 8-bit HSV (12-bit reciprocals)."""
    v, lo = max(r, g, b), min(r, g, b)
    d = v - lo
    s = (d * round((255 << 12) / v) + 2048) >> 12 if v else 0
    if d == 0:
        return 0, s, v
    if v == r:
        n = g - b
    elif v == g:
        n = b - r + 2 * d
    else:
        n = r - g + 4 * d
    h = (n * round((180 << 12) / (6 * d)) + 2048) >> 12
    return (h + 180 if h < 0 else h), s, v


def _hsv_loop(rgb: np.ndarray) -> np.ndarray:
    flat = rgb.reshape(-1, 3)
    out = np.array([_hsv_pixel(*map(int, p)) for p in flat], np.uint8)
    return out.reshape(rgb.shape)


def _scores_loop(frames: np.ndarray) -> np.ndarray:
    hsv = [_hsv_loop(f).astype(np.int64) for f in frames]
    out = [0.0]
    for t in range(1, len(frames)):
        out.append(np.mean([np.abs(hsv[t][..., c] - hsv[t - 1][..., c]).mean()
                            for c in range(3)]))
    return np.array(out, np.float32)


def _flat(colours: list[tuple[int, int, int]], lengths: list[int], h: int = 24,
          w: int = 32) -> np.ndarray:
    parts = [np.broadcast_to(np.array(c, np.uint8), (n, h, w, 3)) for c, n in zip(colours, lengths)]
    return np.concatenate(parts).copy()


def _texture(n: int, seed: int, h: int = 40, w: int = 48) -> np.ndarray:
    """A smooth colour pattern panning one pixel per frame (small frame-to-frame change)."""
    rng = np.random.default_rng(seed)
    fx, fy, phase = rng.uniform(0.05, 0.2, 3), rng.uniform(0.05, 0.2, 3), rng.uniform(0, 6, 3)
    y, x = np.mgrid[:h, :w]
    frames = []
    for t in range(n):
        chans = [127.5 + 120 * np.sin(fx[c] * (x + t) + fy[c] * y + phase[c]) for c in range(3)]
        frames.append(np.stack(chans, -1))
    return np.round(np.stack(frames)).astype(np.uint8)


KNOWN = {(255, 0, 0): (0, 255, 255), (0, 255, 0): (60, 255, 255), (0, 0, 255): (120, 255, 255),
         (255, 255, 0): (30, 255, 255), (0, 255, 255): (90, 255, 255),
         (255, 0, 255): (150, 255, 255), (255, 255, 255): (0, 0, 255), (0, 0, 0): (0, 0, 0),
         (128, 128, 128): (0, 0, 128),
         (255, 0, 1): (0, 255, 255),  # hue -0.12 degrees: rounds to 0, not wrapped to 180
         (255, 0, 6): (179, 255, 255)}  # hue -1.4 degrees: rounds to -1, wrapped to 179


def test_hsv_known_values_and_loop_reference():
    rgb = np.array(list(KNOWN), np.uint8)
    expected = np.array(list(KNOWN.values()), np.uint8)
    np.testing.assert_array_equal(shots.rgb_to_hsv(rgb), expected)
    np.testing.assert_array_equal(_hsv_loop(rgb), expected)
    rng = np.random.default_rng(0)
    pix = rng.integers(0, 256, (3, 17, 19, 3), dtype=np.uint8)
    pix[0, :, :, 1] = pix[0, :, :, 0]  # ties for the maximum take the red / green sector
    pix[1, :, :, 2] = pix[1, :, :, 1]
    np.testing.assert_array_equal(shots.rgb_to_hsv(pix), _hsv_loop(pix))
    np.testing.assert_array_equal(shots.rgb_to_hsv_fixed_point(pix), _hsv_loop(pix))
    hsv = shots.rgb_to_hsv(pix)
    assert hsv.dtype == np.uint8 and hsv[..., 0].max() < 180


def test_hsv_within_one_of_colorsys():
    rng = np.random.default_rng(1)
    pix = rng.integers(0, 256, (4000, 3), dtype=np.uint8)
    ours = shots.rgb_to_hsv(pix).astype(int)
    for p, o in zip(pix, ours):
        h, s, v = colorsys.rgb_to_hsv(*(p / 255.0))
        ref_h = int(np.floor(h * 180 + 0.5)) % 180
        dh = abs(o[0] - ref_h)
        assert min(dh, 180 - dh) <= 1
        assert abs(o[1] - np.floor(s * 255 + 0.5)) <= 1 and o[2] == round(v * 255)


def test_numpy_hsv_equals_opencv_on_every_colour_when_installed(monkeypatch):
    """With OpenCV installed `rgb_to_hsv` uses cv2.cvtColor; both paths give the same bytes
    (R and G over all 256 values, B over every third)."""
    cv2 = pytest.importorskip("cv2")
    r, g, b = np.meshgrid(np.arange(256), np.arange(256), np.arange(0, 256, 3), indexing="ij")
    pix = np.stack([r, g, b], axis=-1).reshape(1, -1, 3).astype(np.uint8)
    fast = shots.rgb_to_hsv(pix)
    np.testing.assert_array_equal(fast, cv2.cvtColor(pix, cv2.COLOR_RGB2HSV))
    monkeypatch.setattr(shots, "_cv2", lambda: None)
    np.testing.assert_array_equal(shots.rgb_to_hsv(pix), fast)


def test_hsv_rejects_non_uint8():
    with pytest.raises(ValueError, match="uint8"):
        shots.rgb_to_hsv(np.zeros((2, 3), np.float32))


def test_scores_match_loop_reference_across_chunks(monkeypatch):
    rng = np.random.default_rng(3)
    frames = rng.integers(0, 256, (11, 6, 7, 3), dtype=np.uint8)
    frames[4] = frames[3]
    expected = _scores_loop(frames)
    np.testing.assert_allclose(shots.frame_scores(frames), expected, rtol=1e-6)
    monkeypatch.setattr(shots, "CHUNK_FRAMES", 3)
    np.testing.assert_allclose(shots.frame_scores(frames), expected, rtol=1e-6)
    assert shots.frame_scores(frames)[4] == 0.0 and shots.frame_scores(frames).dtype == np.float32


def test_flat_colour_cuts_exact():
    # Hue alone moving 60 degrees scores 30 / 3 = 20 (< 27): the colours also differ in S or V.
    frames = _flat([(200, 30, 30), (30, 60, 200), (20, 20, 20), (240, 240, 240)], [20, 15, 12, 9])
    assert shots.detect_shots(frames, fps=10) == [(0, 20), (20, 35), (35, 47), (47, 56)]
    as_list = [f for f in frames]
    assert shots.detect_shots(as_list, fps=10) == shots.detect_shots(frames, fps=10)


def test_texture_cuts_exact():
    frames = np.concatenate([_texture(18, 0), _texture(25, 1), _texture(14, 2)])
    scores = shots.frame_scores(frames)
    within = np.delete(scores[1:], [17, 42])
    assert within.max() < 15.0 and scores[18] >= 27 and scores[43] >= 27
    assert shots.detect_shots(frames, fps=15) == [(0, 18), (18, 43), (43, 57)]


def test_slow_fade_and_dissolve_give_no_cut():
    levels = np.linspace(0.0, 1.0, 60)
    colour = np.array([220, 120, 40], np.float64)
    fade = np.round(levels[:, None, None, None] * colour).astype(np.uint8)
    fade = np.broadcast_to(fade, (60, 16, 16, 3))
    assert shots.detect_shots(fade, fps=25) == [(0, 60)]
    a, b = np.array([200, 40, 40.0]), np.array([40, 60, 210.0])
    mix = np.round((1 - levels[:, None]) * a + levels[:, None] * b).astype(np.uint8)
    dissolve = np.broadcast_to(mix[:, None, None, :], (60, 16, 16, 3))
    assert shots.detect_shots(dissolve, fps=25) == [(0, 60)]


def test_min_shot_length_respected():
    colours = [(230, 20, 20), (20, 20, 230)] * 5
    frames = _flat(colours, [3] * 10)  # a hard cut every 3 frames
    assert shots.detect_shots(frames, fps=10, min_shot_seconds=0.6) == [
        (0, 6), (6, 12), (12, 18), (18, 24), (24, 30)]
    assert shots.detect_shots(frames, fps=10, min_shot_seconds=0.0) == [
        (i, i + 3) for i in range(0, 30, 3)]


def test_threshold_and_edge_cases():
    frames = _flat([(100, 100, 100), (120, 120, 120)], [10, 10])  # score 20/3 at frame 10
    assert shots.detect_shots(frames, fps=10) == [(0, 20)]
    assert shots.detect_shots(frames, fps=10, threshold=5.0) == [(0, 10), (10, 20)]
    assert shots.detect_shots(frames[:1], fps=10) == [(0, 1)]
    assert shots.detect_shots(np.zeros((0, 4, 4, 3), np.uint8), fps=10) == []
    with pytest.raises(ValueError, match="fps"):
        shots.detect_shots(frames, fps=0)
    with pytest.raises(ValueError, match=r"\[T, H, W, 3\]"):
        shots.detect_shots(frames[..., 0], fps=10)


def test_wide_frames_scored_reduced():
    colours = [(200, 30, 30), (30, 30, 120), (240, 240, 240)]
    narrow = _flat(colours, [8, 8, 8], h=8, w=16)
    wide = _flat(colours, [8, 8, 8], h=300, w=700)
    assert shots._reduce(wide).shape[1:3] == (150, 350)  # k = 700 // 256 = 2
    np.testing.assert_array_equal(shots.frame_scores(wide), shots.frame_scores(narrow))
    assert shots.detect_shots(wide, fps=8) == [(0, 8), (8, 16), (16, 24)]
    block = np.arange(2 * 4 * 1024 * 3).reshape(2, 4, 1024, 3) % 256
    reduced = shots._reduce(block.astype(np.uint8))  # k = 4: one row of 4 x 4 block means
    expected = np.floor(block.reshape(2, 1, 4, 256, 4, 3).mean(axis=(2, 4)) + 0.5)
    np.testing.assert_array_equal(reduced, expected.astype(np.uint8))
