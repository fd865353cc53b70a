"""jaxaffect.features.resize against PIL's bilinear resize (the reference), jitted nowhere:
plain numpy on the host."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from jaxaffect.features.resize import bilinear_weights, resize_crop


@pytest.mark.parametrize("in_size,out_size", [(64, 56), (128, 56), (48, 96), (37, 26), (5, 5)])
def test_weights_are_normalised_local_taps(in_size, out_size):
    w = bilinear_weights(in_size, out_size)
    assert w.shape == (out_size, in_size) and w.dtype == np.float32
    np.testing.assert_allclose(w.sum(axis=1), 1.0, rtol=1e-6)
    assert (w >= 0).all()
    support = max(in_size / out_size, 1.0)
    centre = (np.arange(out_size) + 0.5) * in_size / out_size
    reach = np.abs(np.arange(in_size)[None, :] + 0.5 - centre[:, None])
    assert (w[reach >= support] == 0).all()  # no tap beyond the triangle's half-width
    if in_size == out_size:
        np.testing.assert_array_equal(w, np.eye(in_size))


@pytest.mark.parametrize("shape,size,top,left,crop", [
    ((64, 64), (56, 56), 3, 5, 48),      # the demo: shrink, random crop
    ((64, 85), (56, 74), 0, 18, 56),     # landscape
    ((128, 128), (56, 56), 8, 0, 48),    # shrink by more than 2
    ((48, 64), (96, 128), 0, 30, 96),    # enlarge
    ((100, 37), (71, 26), 40, 0, 26),    # portrait, odd sizes
])
def test_resize_crop_matches_pil_within_one_level(shape, size, top, left, crop):
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (3,) + shape + (3,)).astype(np.uint8)
    frames[1] = np.linspace(0, 255, shape[1])[None, :, None].astype(np.uint8)  # a smooth ramp
    reference = np.stack([np.asarray(Image.fromarray(f).resize(size[::-1], Image.BILINEAR))
                          for f in frames])[:, top:top + crop, left:left + crop]
    got = resize_crop(frames, size, top, left, crop)
    assert got.shape == (3, crop, crop, 3) and got.dtype == np.uint8
    diff = np.abs(got.astype(int) - reference.astype(int))
    assert diff.max() <= 1  # PIL rounds between its passes; we round once
    assert diff.mean() < 0.35


def test_same_size_is_a_plain_crop():
    frames = np.random.default_rng(1).integers(0, 256, (2, 20, 30, 3)).astype(np.uint8)
    np.testing.assert_array_equal(resize_crop(frames, (20, 30), 2, 7, 16),
                                  frames[:, 2:18, 7:23])
