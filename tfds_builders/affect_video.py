"""Shared parts of the VideoEmotion-8, Ekman-6 and LIRIS-ACCEDE TFDS builders.

Those benchmarks ship split/annotation lists only; features come from the user as
``features/<video_id>.npz`` under the manual_dir (a '/' in the video id is a subfolder), holding
per stream s in STREAMS an array ``s`` float32 [T, d_s] and optionally ``s + "_mask"`` bool [T]
(default all True). All streams of a video share T; d_s must be equal for all videos of a build.
Problems raise `EratoFormatError` (the project's manual_dir format error) naming the file.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import tensorflow_datasets as tfds
from etils import epath

from jaxaffect.data import affect_annotations as aa
from jaxaffect.data.erato_format import EratoFormatError
from jaxaffect.data.npz import write_npz

# Per-segment streams used by TAM: frame appearance (CLIP), motion (R3D) and audio (VGGish).
STREAMS: tuple[str, ...] = ("image", "motion", "audio")
FEATURE_DIR = "features"

Features = dict[str, np.ndarray]


def feature_path(manual_dir: str | epath.PathLike, video_id: str) -> epath.Path:
    return epath.Path(manual_dir) / FEATURE_DIR / f"{video_id}.npz"


def read_video(path: str | epath.PathLike,
               expected_dims: Mapping[str, int] | None = None) -> tuple[Features, Features]:
    """(features, masks) of one video's .npz; raises EratoFormatError naming `path`."""
    path = epath.Path(path)
    if not path.exists():
        raise EratoFormatError(f"{path}: feature file not found")
    try:
        with path.open("rb") as f, np.load(f, allow_pickle=False) as z:
            arrays = {k: np.asarray(z[k]) for k in z.files}
    except Exception as e:  # BadZipFile, ValueError (pickled arrays), OSError, EOFError
        raise EratoFormatError(f"{path}: not a readable .npz file ({type(e).__name__}: {e})") from e
    features, masks = {}, {}
    steps = None
    for s in STREAMS:
        if s not in arrays:
            raise EratoFormatError(f"{path}: missing array {s!r} (has {sorted(arrays)})")
        x = arrays[s]
        if x.ndim != 2 or not np.issubdtype(x.dtype, np.floating):
            raise EratoFormatError(
                f"{path}: stream {s!r} must be a float [T, d] array, got {x.dtype} {x.shape}")
        if steps is None:
            steps = x.shape[0]
        elif x.shape[0] != steps:
            raise EratoFormatError(
                f"{path}: stream {s!r} has T={x.shape[0]} but earlier streams have T={steps}")
        if expected_dims is not None and x.shape[1] != expected_dims[s]:
            raise EratoFormatError(
                f"{path}: stream {s!r} has d={x.shape[1]}, dataset uses d={expected_dims[s]}")
        if not np.all(np.isfinite(x)):
            raise EratoFormatError(f"{path}: stream {s!r} holds NaN or inf values")
        m = arrays.get(s + "_mask", np.ones(x.shape[0], bool))
        if m.shape != (x.shape[0],):
            raise EratoFormatError(
                f"{path}: mask {s + '_mask'!r} must be [T] with T={x.shape[0]}, got {m.shape}")
        features[s] = x.astype(np.float32, copy=False)
        masks[s] = m.astype(bool, copy=False)
    if not steps:
        raise EratoFormatError(f"{path}: video has no segments")
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


def stream_features() -> dict[str, tfds.features.FeatureConnector]:
    """The `num_segments`, `streams` and `masks` entries shared by the three builders."""
    return {
        "num_segments": tfds.features.Scalar(dtype=np.int32),
        "streams": tfds.features.FeaturesDict({
            s: tfds.features.Tensor(shape=(None, None), dtype=np.float32,
                                    encoding=tfds.features.Encoding.ZLIB)
            for s in STREAMS}),
        "masks": tfds.features.FeaturesDict(
            {s: tfds.features.Tensor(shape=(None,), dtype=np.bool_) for s in STREAMS}),
    }


def first_dims(manual_dir: epath.Path, video_ids: Iterable[str]) -> dict[str, int]:
    """Stream sizes d_s of the first video in sorted id order (the reference for the build)."""
    features, _ = read_video(feature_path(manual_dir, min(video_ids)))
    return {s: int(x.shape[1]) for s, x in features.items()}


def stream_example(manual_dir: epath.Path, video_id: str,
                   dims: Mapping[str, int]) -> dict[str, Any]:
    """The stream part of one example, validated against `dims`."""
    features, masks = read_video(feature_path(manual_dir, video_id), expected_dims=dims)
    return {
        "video_id": video_id,
        "num_segments": np.int32(features[STREAMS[0]].shape[0]),
        "streams": features,
        "masks": masks,
    }


class ClassListMixin:
    """_info/_split_generators for benchmarks with classInd.txt + train/testlist01.txt.

    Subclasses (also deriving from GeneratorBasedBuilder) set CLASS_NAMES (must equal
    classInd.txt) and HOMEPAGE. Splits: `train` and `test` from the two list files.
    """

    CLASS_NAMES: tuple[str, ...] = ()
    HOMEPAGE: str = ""
    LIST_FILES: dict[str, str] = {"train": "trainlist01.txt", "test": "testlist01.txt"}

    def _info(self) -> tfds.core.DatasetInfo:
        features = tfds.features.FeaturesDict({
            "video_id": tfds.features.Text(),
            "label": tfds.features.ClassLabel(names=list(self.CLASS_NAMES)),
            **stream_features(),
        })
        return self.dataset_info_from_configs(
            features=features, supervised_keys=None, homepage=self.HOMEPAGE,
            metadata=tfds.core.MetadataDict())

    def _split_generators(self, dl_manager: tfds.download.DownloadManager) -> dict[str, Any]:
        manual_dir = epath.Path(dl_manager.manual_dir)
        videos = read_class_lists(manual_dir, self.CLASS_NAMES, self.LIST_FILES)
        dims = first_dims(manual_dir, [v.video_id for vs in videos.values() for v in vs])
        self.info.metadata["stream_dims"] = dims  # recorded in metadata.json of the build
        return {split: self._generate_examples(manual_dir, vs, dims)
                for split, vs in videos.items() if vs}

    def _generate_examples(self, manual_dir: epath.Path, videos: list,
                           dims: dict[str, int]):
        # Sorted ids: deterministic generation; TFDS then orders records by a hash of the key.
        for v in sorted(videos, key=lambda v: v.video_id):
            yield v.video_id, {**stream_example(manual_dir, v.video_id, dims),
                               "label": v.label_id}


def read_class_lists(manual_dir: str | epath.PathLike, class_names: tuple[str, ...],
                     list_files: Mapping[str, str]) -> dict[str, list]:
    """{split: [VideoLabel]} from classInd.txt and the list files; checks the class names."""
    manual_dir = epath.Path(manual_dir)
    ind = manual_dir / "classInd.txt"
    if not ind.exists():
        raise EratoFormatError(f"{ind}: class index file not found")
    names = aa.read_class_index(ind)
    if tuple(names) != tuple(class_names):
        raise EratoFormatError(f"{ind}: classes {names}, expected {list(class_names)}")
    out = {}
    for split, fname in list_files.items():
        path = manual_dir / fname
        if not path.exists():
            raise EratoFormatError(f"{path}: split list not found")
        out[split] = aa.read_split_list(path, names)
    return out


def _first_lines_per_class(path: epath.Path, per_class: int) -> list[bytes]:
    """The first `per_class` lines of each class folder in a list file, byte-identical."""
    counts: dict[bytes, int] = {}
    kept = []
    for line in path.read_bytes().splitlines():
        cls = line.split(b"/", 1)[0]
        if line.strip() and counts.get(cls, 0) < per_class:
            counts[cls] = counts.get(cls, 0) + 1
            kept.append(line)
    return kept


def write_class_list_dummy_data(root, source, seed: int, train_per_class: int = 2,
                                test_per_class: int = 1,
                                dims: Mapping[str, int] | None = None) -> None:
    """Writes a dummy manual_dir for a class-list benchmark (VE-8, Ekman-6), deterministically.

    classInd.txt is copied whole; the list files keep the first lines per class of the real
    lists in `source` (byte-identical, original order); features are tiny and random, some
    files carry masks with an absent segment.
    """
    root, source = epath.Path(root), epath.Path(source)
    dims = dict(dims or {"image": 4, "motion": 3, "audio": 2})  # distinct: shape mix-ups show
    rng = np.random.default_rng(seed)
    (root / "classInd.txt").write_bytes((source / "classInd.txt").read_bytes())
    ids = []
    for name, per_class in (("trainlist01.txt", train_per_class),
                            ("testlist01.txt", test_per_class)):
        lines = _first_lines_per_class(source / name, per_class)
        (root / name).write_bytes(b"\n".join(lines) + b"\n")
        ids += [ln.split()[0].decode() for ln in lines]
    for i, vid in enumerate(sorted(ids)):
        steps = 1 + i % 5
        feats = {s: rng.normal(size=(steps, d)).astype(np.float16).astype(np.float32)
                 for s, d in dims.items()}
        masks = None
        if i % 3 == 1:
            masks = {s: np.ones(steps, bool) for s in STREAMS}
            masks["audio"][0] = False
            feats["audio"][0] = 0.0
        write_video(feature_path(root, vid), feats, masks)
