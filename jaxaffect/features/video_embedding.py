"""Video embeddings from a pretrained Video Swin whose weights the user supplies.

`jaxaffect convert swin3d weights.pth DIR` turns a state dict in torchvision's swin3d_t layout
(e.g. the Kinetics-400 weights, downloaded by the user) into DIR; `SwinEmbedder(DIR)` then maps
a segment's frames to the mean of the network's final features (after its last LayerNorm; 768
values for Swin-T). Nothing is downloaded, and a folder that is not a converted one is refused
(no randomly initialised network is ever presented as features).

Preprocessing, as the Kinetics weights were evaluated (torchvision's video classification
preset): `num_frames` frames spread evenly over the segment (repeated when it has fewer),
resized so the short side is `resize` (256) with bilinear interpolation, centre crop `crop`
(224), scaled to [0, 1] and normalised with the ImageNet mean and std.
"""

from __future__ import annotations

import functools
import hashlib
import os
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxaffect.errors import FormatError
from jaxaffect.nn import video_swin

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
NUM_FRAMES = 16
RESIZE = 256
CROP = 224


def frame_indices(num_available: int, num_frames: int) -> np.ndarray:
    """int64 [num_frames]: `num_frames` indices spread evenly over `num_available` frames
    (the centre of each of `num_frames` equal parts; repeats when there are fewer frames)."""
    if num_available < 1:
        raise ValueError("a segment needs at least one frame")
    centres = (np.arange(num_frames) + 0.5) * num_available / num_frames
    return np.minimum(np.floor(centres), num_available - 1).astype(np.int64)


def resize_and_crop(frames: np.ndarray, resize: int, crop: int) -> np.ndarray:
    """float32 [T, crop, crop, 3] in [0, 1]: short side bilinearly resized to `resize`
    (jax.image.resize, antialiased when shrinking), then the centre `crop` x `crop`."""
    t, h, w, _ = frames.shape
    scale = resize / min(h, w)
    nh, nw = max(crop, round(h * scale)), max(crop, round(w * scale))
    x = jax.image.resize(jnp.asarray(frames, jnp.float32) / 255.0, (t, nh, nw, 3), "bilinear")
    top, left = (nh - crop) // 2, (nw - crop) // 2
    return np.asarray(x[:, top:top + crop, left:left + crop], np.float32)


class SwinEmbedder:
    """Segments of uint8 frames [n, H, W, 3] -> float32 [dim] embeddings (see the module
    docstring). Attributes: `dim`, `fingerprint` (SHA-256 of the converted params.npz), `name`."""

    def __init__(self, folder: str | os.PathLike, *, num_frames: int = NUM_FRAMES,
                 resize: int = RESIZE, crop: int = CROP):
        try:
            fields = video_swin.load_swin_config(folder)
            params = {k: v for k, v in video_swin.load_swin_params(folder).items()
                      if k != "head"}
        except Exception as e:  # CheckpointError, an unreadable file
            raise FormatError(f"{folder}: not a converted Video Swin folder ({e}); make one "
                              "with `jaxaffect convert swin3d weights.pth DIR`") from None
        fields = {k: v for k, v in fields.items() if k != "num_classes"}
        self.model = video_swin.VideoSwin3D(**fields, stochastic_depth=0.0)
        self.params = jax.device_put(params)
        self.dim = int(fields["embed_dim"]) * 2 ** (len(fields["depths"]) - 1)
        self.num_frames, self.resize, self.crop = num_frames, resize, crop
        self.fingerprint = hashlib.sha256(
            (Path(folder) / video_swin.PARAMS_FILE).read_bytes()).hexdigest()
        self.name = f"video-swin-{fields['embed_dim']}x{len(fields['depths'])}"
        self._forward = jax.jit(self._pooled)

    def _pooled(self, params: Any, video: jax.Array) -> jax.Array:
        x = (video - jnp.asarray(IMAGENET_MEAN)) / jnp.asarray(IMAGENET_STD)
        features = self.model.apply({"params": params}, x, train=False)
        return features.mean(axis=(1, 2, 3)).astype(jnp.float32)

    def preprocess(self, frames: np.ndarray) -> np.ndarray:
        """float32 [num_frames, crop, crop, 3] in [0, 1] of one segment's frames."""
        frames = np.asarray(frames)
        if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
            raise ValueError(f"frames must be uint8 [n, H, W, 3], got {frames.dtype} "
                             f"{frames.shape}")
        picked = frames[frame_indices(len(frames), self.num_frames)]
        return resize_and_crop(picked, self.resize, self.crop)

    def embed(self, frames: np.ndarray) -> np.ndarray:
        """float32 [dim] embedding of one segment's frames."""
        return np.asarray(self._forward(self.params, self.preprocess(frames)[None]))[0]


@functools.lru_cache(maxsize=2)
def shared_embedder(folder: str) -> SwinEmbedder:
    """One embedder per folder and process (loaded and compiled once)."""
    return SwinEmbedder(folder)
