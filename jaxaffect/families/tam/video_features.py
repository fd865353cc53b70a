"""Per-video segment-feature files of the TAM datasets (VE-8, Ekman-6, LIRIS-ACCEDE, TSC).

Those benchmarks ship split/annotation lists only; features come from the user as
``features/<video_id>.npz`` under the manual_dir (a '/' in the video id is a subfolder), holding
per stream s in STREAMS an array ``s`` float32 [T, d_s] and optionally ``s + "_mask"`` bool [T]
(default all True). All streams of a video share T; d_s must be equal for all videos of a build.
Problems raise `FormatError` naming the file. The builders and `predict` read them with the same
function.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from etils import epath

from jaxaffect.data.npz import write_npz
from jaxaffect.errors import FormatError

# Per-segment streams used by TAM: frame appearance (CLIP), motion (R3D) and audio (VGGish).
STREAMS: tuple[str, ...] = ("image", "motion", "audio")
FEATURE_DIR = "features"

Features = dict[str, np.ndarray]


def feature_path(manual_dir: str | epath.PathLike, video_id: str) -> epath.Path:
    return epath.Path(manual_dir) / FEATURE_DIR / f"{video_id}.npz"


def read_video(path: str | epath.PathLike,
               expected_dims: Mapping[str, int] | None = None) -> tuple[Features, Features]:
    """(features, masks) of one video's .npz; raises FormatError naming `path`."""
    path = epath.Path(path)
    if not path.exists():
        raise FormatError(f"{path}: feature file not found")
    try:
        with path.open("rb") as f, np.load(f, allow_pickle=False) as z:
            arrays = {k: np.asarray(z[k]) for k in z.files}
    except Exception as e:  # BadZipFile, ValueError (pickled arrays), OSError, EOFError
        raise FormatError(f"{path}: not a readable .npz file ({type(e).__name__}: {e})") from e
    features, masks = {}, {}
    steps = None
    for s in STREAMS:
        if s not in arrays:
            raise FormatError(f"{path}: missing array {s!r} (has {sorted(arrays)})")
        x = arrays[s]
        if x.ndim != 2 or not np.issubdtype(x.dtype, np.floating):
            raise FormatError(
                f"{path}: stream {s!r} must be a float [T, d] array, got {x.dtype} {x.shape}")
        if steps is None:
            steps = x.shape[0]
        elif x.shape[0] != steps:
            raise FormatError(
                f"{path}: stream {s!r} has T={x.shape[0]} but earlier streams have T={steps}")
        if expected_dims is not None and x.shape[1] != expected_dims[s]:
            raise FormatError(
                f"{path}: stream {s!r} has d={x.shape[1]}, dataset uses d={expected_dims[s]}")
        if not np.all(np.isfinite(x)):
            raise FormatError(f"{path}: stream {s!r} holds NaN or inf values")
        m = arrays.get(s + "_mask", np.ones(x.shape[0], bool))
        if m.shape != (x.shape[0],):
            raise FormatError(
                f"{path}: mask {s + '_mask'!r} must be [T] with T={x.shape[0]}, got {m.shape}")
        features[s] = x.astype(np.float32, copy=False)
        masks[s] = m.astype(bool, copy=False)
    if not steps:
        raise FormatError(f"{path}: video has no segments")
    return features, masks


def write_video(path: str | epath.PathLike, features: Features,
                masks: Features | None = None) -> None:
    """Writes one video's .npz (masks optional); used for dummy data and conversions."""
    path = epath.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {s: np.asarray(features[s], np.float32) for s in STREAMS}
    for s, m in (masks or {}).items():
        arrays[s + "_mask"] = np.asarray(m, bool)
    write_npz(path, arrays)
