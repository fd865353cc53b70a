"""Video embeddings from a converted Video Swin (`jaxaffect convert swin3d`): the committed
parity fixture (a small randomised model in torchvision's swin3d_t layout, its input and its
features) gives the reference features through the embedder; frame sampling and the crop are
checked against direct computations; `extract tam --motion swin3d` uses it."""

from __future__ import annotations

import sys
from pathlib import Path

import jax
import numpy as np
import pytest

from jaxaffect.errors import FormatError
from jaxaffect.families.avcpnet.convert import convert_checkpoint
from jaxaffect.features import video_embedding as ve

sys.path.insert(0, str(Path(__file__).resolve().parent))
import media_files as mf  # noqa: E402

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "swin3d"


@pytest.fixture(scope="module")
def converted(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("swin") / "converted"
    convert_checkpoint(str(FIXTURES / "swin3d_small.pth"), str(out), reader="builtin")
    return out


def test_frame_indices_spread_evenly_and_repeat():
    assert ve.frame_indices(32, 4).tolist() == [4, 12, 20, 28]
    assert ve.frame_indices(3, 6).tolist() == [0, 0, 1, 1, 2, 2]
    assert ve.frame_indices(1, 3).tolist() == [0, 0, 0]
    with pytest.raises(ValueError):
        ve.frame_indices(0, 4)


def test_resize_and_crop_keeps_the_centre():
    frames = np.zeros((2, 40, 60, 3), np.uint8)
    frames[:, 10:30, 20:40] = 255  # a white square in the middle
    same = ve.resize_and_crop(frames, 40, 40)  # no resize: the centre 40 x 40
    np.testing.assert_array_equal(same, frames[:, :, 10:50].astype(np.float32) / 255)
    half = ve.resize_and_crop(frames, 20, 20)  # 20 x 30 -> centre 20 x 20
    assert half.shape == (2, 20, 20, 3)
    assert half[:, 10, 10].min() > 0.99 and half[:, 1, 1].max() < 0.01


def test_embedder_gives_the_reference_models_features(converted):
    with np.load(FIXTURES / "expected.npz") as npz:
        video, features = npz["video"], npz["features"]
    embedder = ve.SwinEmbedder(converted)
    assert embedder.dim == features.shape[-1] and len(embedder.fingerprint) == 64
    # the fixture's input is already normalised: undo it into [0, 1] pixels for our forward
    pixels = video * np.asarray(ve.IMAGENET_STD) + np.asarray(ve.IMAGENET_MEAN)
    with jax.default_matmul_precision("highest"):
        got = np.asarray(embedder._forward(embedder.params, pixels.astype(np.float32)))
    np.testing.assert_allclose(got, features.mean(axis=(1, 2, 3)), atol=2e-5, rtol=0)
    # one segment: sampled, resized and cropped, then the same forward
    frames = mf.pattern_frames(5, 64, 80)
    want = np.asarray(embedder._forward(embedder.params, embedder.preprocess(frames)[None]))[0]
    out = embedder.embed(frames)
    assert out.shape == (embedder.dim,) and out.dtype == np.float32
    np.testing.assert_array_equal(out, want)
    assert embedder.preprocess(frames).shape == (ve.NUM_FRAMES, ve.CROP, ve.CROP, 3)


def test_a_folder_that_is_not_converted_is_refused(tmp_path):
    with pytest.raises(FormatError, match="not a converted Video Swin folder"):
        ve.SwinEmbedder(tmp_path)


def test_tam_extraction_with_swin3d_motion(converted, tmp_path):
    from jaxaffect.families.tam import extract as tx
    from jaxaffect.features import extraction as ex

    path = mf.write_clip(tmp_path / "clip.mp4", seconds=1.5)
    settings = {**tx.SETTINGS, "motion": "swin3d", "swin3d": str(converted)}
    arrays, _, _ = tx.segment_streams(str(path), settings, ex.Stages())
    embedder = ve.shared_embedder(str(converted))
    assert arrays["motion"].shape == (len(arrays["image"]), embedder.dim)
    assert arrays["motion_mask"].all() and np.abs(arrays["motion"]).sum() > 0
    record = tx.stream_record(settings, "tam")["streams"]["motion"]
    assert record == {"name": embedder.name, "dim": embedder.dim,
                      "fingerprint": embedder.fingerprint}
