"""jaxaffect.features.visual: colour and motion descriptors against plain loop references on
tiny random clips, and behaviour on clips with known content."""

from __future__ import annotations

import numpy as np
import pytest

from jaxaffect.features import shots, visual


def _colour_loop(frames: np.ndarray) -> np.ndarray:
    hsv = shots.rgb_to_hsv(frames)  # checked against per-pixel references in test_shots
    t, h, w = frames.shape[:3]
    hist = np.zeros(visual.HIST_DIM)
    for f in range(t):
        frame_hist = np.zeros(visual.HIST_DIM)
        for y in range(h):
            for x in range(w):
                hh, ss, vv = (int(c) for c in hsv[f, y, x])
                frame_hist[(hh * 8 // 180 * 3 + ss * 3 // 256) * 3 + vv * 3 // 256] += 1
        hist += frame_hist / frame_hist.sum() / t
    stats = []
    for c, scale in enumerate((180.0, 255.0, 255.0)):
        values = [hsv[f, y, x, c] / scale for f in range(t) for y in range(h) for x in range(w)]
        stats += [np.mean(values), np.std(values)]
    colourful, bright, contrast = [], [], []
    for f in range(t):
        r, g, b = (frames[f, ..., c].astype(float).ravel() / 255 for c in range(3))
        rg, yb = r - g, (r + g) / 2 - b
        colourful.append(np.hypot(np.std(rg), np.std(yb))
                         + 0.3 * np.hypot(np.mean(rg), np.mean(yb)))
        luma = 0.299 * r + 0.587 * g + 0.114 * b
        bright.append(luma.mean())
        contrast.append(luma.std())
    return np.array([*hist, *stats, np.mean(colourful), np.mean(bright), np.mean(contrast)])


def _motion_loop(frames: np.ndarray) -> np.ndarray:
    grey = [sum(k * f[..., c].astype(float) for c, k in enumerate(visual.LUMA)) / 255
            for f in frames]  # frames small enough that no reduction applies
    diffs = [np.abs(grey[t] - grey[t - 1]) for t in range(1, len(grey))]
    d = np.stack(diffs)
    h, w = d.shape[1:]
    grid = []
    for i in range(4):
        for j in range(4):
            cell = [v ** 2 for dt in diffs for y in range(i * h // 4, (i + 1) * h // 4)
                    for x in range(j * w // 4, (j + 1) * w // 4) for v in [dt[y, x]]]
            grid.append(np.mean(cell))
    scores = shots.frame_scores(frames)[1:].astype(float)
    return np.array([d.mean(), d.std(), *grid, np.mean(d > 0.1), scores.mean() / 255,
                     scores.std() / 255, scores.max() / 255, np.mean(scores >= 27.0)])


def _clip(seed: int, t: int = 4, h: int = 9, w: int = 11) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (t, h, w, 3), dtype=np.uint8)


@pytest.mark.parametrize("seed", [0, 1])
def test_colour_matches_loop_reference(seed):
    frames = _clip(seed)
    got = visual.colour_descriptor(frames)
    assert got.dtype == np.float32 and got.shape == (visual.COLOUR_DIM,)
    np.testing.assert_allclose(got, _colour_loop(frames), rtol=1e-5, atol=1e-7)
    assert got[:visual.HIST_DIM].sum() == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize("seed", [0, 1])
def test_motion_matches_loop_reference(seed):
    frames = _clip(seed, t=5)
    frames[2] = frames[1]
    got = visual.motion_descriptor(frames)
    assert got.dtype == np.float32 and got.shape == (visual.MOTION_DIM,)
    np.testing.assert_allclose(got, _motion_loop(frames), rtol=1e-5, atol=1e-7)


def test_chunking_and_list_input_do_not_change_results(monkeypatch):
    frames = _clip(3, t=7, h=120, w=130)  # reduced by 2 x 2 blocks for motion
    colour, motion = visual.colour_descriptor(frames), visual.motion_descriptor(frames)
    monkeypatch.setattr(shots, "CHUNK_FRAMES", 2)
    np.testing.assert_allclose(visual.colour_descriptor(list(frames)), colour, rtol=1e-6)
    np.testing.assert_allclose(visual.motion_descriptor(list(frames)), motion, rtol=1e-6)
    assert visual.colour_descriptor(frames).tobytes() == visual.colour_descriptor(frames).tobytes()


def test_motion_grey_reduction_is_block_mean():
    frames = _clip(4, t=2, h=120, w=170)
    small = visual._small_grey(frames)
    assert small.shape == (2, 60, 85)  # k = 120 // 56 = 2
    full = visual._luma(frames)
    np.testing.assert_allclose(small[1, 3, 5], full[1, 6:8, 10:12].mean())


def test_static_clip_has_zero_motion():
    frames = np.repeat(_clip(5, t=1, h=30, w=40), 6, axis=0)
    np.testing.assert_array_equal(visual.motion_descriptor(frames), 0)
    np.testing.assert_array_equal(visual.motion_descriptor(frames[:1]), 0)  # one frame


def test_hard_cut_shows_in_motion():
    frames = np.zeros((4, 16, 16, 3), np.uint8)
    frames[2:] = 255
    m = visual.motion_descriptor(frames)
    assert m[0] == pytest.approx(1 / 3)  # one pair of three changes fully
    assert m[18] == pytest.approx(1 / 3) and m[22] == pytest.approx(1 / 3)
    np.testing.assert_allclose(m[2:18], 1 / 3, rtol=1e-6)


def test_red_clip_and_grey_clip():
    red = np.zeros((3, 8, 8, 3), np.uint8)
    red[..., 0] = 220
    hist = visual.colour_descriptor(red)[:visual.HIST_DIM].reshape(8, 3, 3)
    assert hist[0, 2, 2] == pytest.approx(1.0)  # hue bin 0, high saturation, high value
    ramp = np.linspace(0, 255, 64).astype(np.uint8).reshape(1, 8, 8, 1)
    grey = np.repeat(np.repeat(ramp, 3, axis=3), 2, axis=0)
    desc = visual.colour_descriptor(grey)
    assert desc[78] == 0.0  # colourfulness
    assert desc[:visual.HIST_DIM].reshape(8, 3, 3)[1:].sum() == 0  # grey: hue 0, saturation 0
    assert desc[79] == pytest.approx(grey.mean() / 255, rel=1e-6)
    assert desc[80] == pytest.approx(grey[0, ..., 0].std() / 255, rel=1e-6)


def test_registry_and_empty_segment():
    for name, (fn, dim) in visual.DESCRIPTORS.items():
        assert fn(_clip(6, t=2)).shape == (dim,), name
        with pytest.raises(ValueError, match="at least one frame"):
            fn(np.zeros((0, 4, 4, 3), np.uint8))
    assert (visual.COLOUR_DIM, visual.MOTION_DIM) == (81, 23)
