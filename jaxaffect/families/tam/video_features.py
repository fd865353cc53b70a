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

from jaxaffect.data.release_files import (
    check_streams,
    float_array,
    mask_array,
    read_npz,
    write_npz,
)
from jaxaffect.errors import FormatError

# Per-segment streams used by TAM: frame appearance (CLIP), motion (R3D) and audio (VGGish).
STREAMS: tuple[str, ...] = ("image", "motion", "audio")
FEATURE_DIR = "features"

Features = dict[str, np.ndarray]


def feature_path(manual_dir: str | epath.PathLike, video_id: str) -> epath.Path:
    return epath.Path(manual_dir) / FEATURE_DIR / f"{video_id}.npz"


def read_video(path: str | epath.PathLike, expected_dims: Mapping[str, int] | None = None
               ) -> tuple[Features, Features]:
    """(features, masks) of one video's .npz; raises FormatError naming `path`.

    Arrays other than the streams, their `<stream>_mask` and `segment_seconds` (which
    time-sync-comment videos carry) are refused: a misspelt mask name would otherwise leave
    the stream present everywhere.
    """
    path = epath.Path(path)
    arrays = read_npz(path)
    missing = [s for s in STREAMS if s not in arrays]
    if missing:
        raise FormatError(f"{path}: missing array {missing[0]!r} (has {sorted(arrays)})")
    known = {*STREAMS, *(s + "_mask" for s in STREAMS), "segment_seconds"}
    unknown = sorted(set(arrays) - known)
    if unknown:
        raise FormatError(f"{path}: unexpected arrays {unknown} (expected {sorted(known)}; a "
                          "misspelt mask name?)")
    features = {s: float_array(arrays[s], f"{path}: stream {s!r}") for s in STREAMS}
    masks = {s: mask_array(arrays.get(s + "_mask", np.ones(arrays[s].shape[:1], bool)),
                           f"{path}: mask {s + '_mask'!r}") for s in STREAMS}
    check_streams(features, masks, STREAMS, str(path), expected_dims)
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
