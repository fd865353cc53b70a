"""Shared parts of the VideoEmotion-8, Ekman-6 and LIRIS-ACCEDE TFDS builders.

Those benchmarks ship split/annotation lists only; features come from the user as
``features/<video_id>.npz`` under the manual_dir (a '/' in the video id is a subfolder), holding
per stream s in STREAMS an array ``s`` float32 [T, d_s] and optionally ``s + "_mask"`` bool [T]
(default all True). All streams of a video share T; d_s must be equal for all videos of a build.
Problems raise `FormatError` (the project's manual_dir format error) naming the file.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import tensorflow_datasets as tfds
from etils import epath

from jaxaffect.errors import FormatError
from jaxaffect.families.tam import annotations as aa
from jaxaffect.families.tam.video_features import (  # noqa: F401 (used by the builders as av.*)
    FEATURE_DIR,
    STREAMS,
    Features,
    feature_path,
    read_video,
    write_video,
)


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
        raise FormatError(f"{ind}: class index file not found")
    names = aa.read_class_index(ind)
    if tuple(names) != tuple(class_names):
        raise FormatError(f"{ind}: classes {names}, expected {list(class_names)}")
    out = {}
    for split, fname in list_files.items():
        path = manual_dir / fname
        if not path.exists():
            raise FormatError(f"{path}: split list not found")
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
