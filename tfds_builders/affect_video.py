"""Shared parts of the VideoEmotion-8, Ekman-6 and LIRIS-ACCEDE TFDS builders.

Those benchmarks ship split/annotation lists only; features come from the user as
``features/<video_id>.npz`` under the manual_dir (a '/' in the video id is a subfolder), holding
per stream s in STREAMS an array ``s`` float32 [T, d_s] and optionally ``s + "_mask"`` bool [T]
(default all True). All streams of a video share T; d_s must be equal for all videos of a build.

Nothing is read from outside the manual_dir: every path, fixed (classInd.txt) or taken from a
list (a video id), is resolved with `jaxaffect.data.release_files.inside` (no '..', no absolute
path, no symlink that leaves the manual_dir unless the user allows symlinks). Every listed
feature file must exist before generation starts. A video in more than one split list is
refused unless the user allows `split_overlap`; what an allowance let through is recorded in
the build's metadata. Problems raise `FormatError` naming the file (and line).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable, Mapping, MutableMapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow_datasets as tfds
from etils import epath

from jaxaffect.data.release_files import allowed, inside, outside_release
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

SHOWN_IDS = 5  # ids named in an error message; the count gives the rest


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


def release_file(manual_dir: str | os.PathLike, name: str, what: str) -> Path:
    """The release's file `name` (e.g. "classInd.txt"), inside manual_dir and present."""
    path = inside(manual_dir, name, where=os.fspath(manual_dir))
    if not path.is_file():
        raise FormatError(f"{path}: {what} not found")
    return path


def feature_files(manual_dir: str | os.PathLike,
                  listed: Iterable[tuple[str, str]]) -> dict[str, Path]:
    """{video_id: its features/<video_id>.npz} for (video_id, where) pairs, `where` being the
    "file:line" that lists the video. A path that leaves manual_dir and a missing file are
    refused naming both."""
    out: dict[str, Path] = {}
    for vid, where in listed:
        if vid in out:
            continue
        path = inside(manual_dir, f"{FEATURE_DIR}/{vid}.npz", where=where)
        if not path.is_file():
            state = "not a file" if path.exists() else "feature file not found"
            raise FormatError(f"{path}: {state} (listed at {where})")
        out[vid] = path
    return out


def shown(ids: list[str]) -> str:
    """The first few ids and how many more, for a message."""
    more = len(ids) - SHOWN_IDS
    return ", ".join(ids[:SHOWN_IDS]) + (f" and {more} more" if more > 0 else "")


def split_overlap(videos: Mapping[str, list[aa.VideoLabel]]) -> list[str]:
    """Sorted ids listed in more than one split. Refused (a train/test leak) unless the user
    allowed `split_overlap`."""
    wheres: dict[str, list[str]] = {}
    for vs in videos.values():
        for v in vs:
            wheres.setdefault(v.video_id, []).append(v.where)
    both = sorted(vid for vid, ws in wheres.items() if len(ws) > 1)
    if both and not allowed("split_overlap"):
        first = wheres[both[0]]
        raise FormatError(
            f"{first[-1]}: {len(both)} video(s) are in more than one split list (a train/test "
            f"leak): {shown(both)}; {both[0]!r} is also at {', '.join(first[:-1])}. "
            "--allow split_overlap builds anyway and records them in the build's metadata")
    return both


def record_allowances(metadata: MutableMapping[str, Any], manual_dir: str | os.PathLike,
                      paths: Mapping[str, Path], overlap: Sequence[str] = ()) -> None:
    """Writes into the build's metadata what an allowance let through (nothing otherwise)."""
    if overlap:
        metadata["split_overlap"] = {"allowed_by": "split_overlap", "count": len(overlap),
                                     "video_ids": list(overlap)}
    linked = outside_release(manual_dir, paths)
    if linked:
        metadata["symlinks_outside_release"] = {
            "allowed_by": "symlinks", "count": len(linked),
            "video_ids": linked[:SHOWN_IDS]}


def first_dims(paths: Mapping[str, Path]) -> dict[str, int]:
    """Stream sizes d_s of the first video in sorted id order (the reference for the build)."""
    features, _ = read_video(paths[min(paths)])
    return {s: int(x.shape[1]) for s, x in features.items()}


def stream_example(path: str | os.PathLike, video_id: str,
                   dims: Mapping[str, int]) -> dict[str, Any]:
    """The stream part of one example from its feature file, validated against `dims`."""
    features, masks = read_video(path, expected_dims=dims)
    return {
        "video_id": video_id,
        "num_segments": np.int32(features[STREAMS[0]].shape[0]),
        "streams": features,
        "masks": masks,
    }


@dataclasses.dataclass(frozen=True)
class ClassListRelease:
    """A checked class-list release: videos per split, their feature files, and the ids in
    more than one split (empty unless allowed)."""

    videos: dict[str, list[aa.VideoLabel]]
    paths: dict[str, Path]
    overlap: list[str]


def read_class_lists(manual_dir: str | os.PathLike, class_names: tuple[str, ...],
                     list_files: Mapping[str, str]) -> dict[str, list[aa.VideoLabel]]:
    """{split: [VideoLabel]} from classInd.txt and the list files; checks the class names."""
    ind = release_file(manual_dir, "classInd.txt", "class index file")
    names = aa.read_class_index(ind, expected=class_names)
    return {split: aa.read_split_list(release_file(manual_dir, fname, "split list"), names)
            for split, fname in list_files.items()}


def read_class_list_release(manual_dir: str | os.PathLike, class_names: tuple[str, ...],
                            list_files: Mapping[str, str]) -> ClassListRelease:
    """Everything a class-list build checks before generating: the lists, the split overlap
    and every feature path (the builders' `check_manual_dir` runs this)."""
    videos = read_class_lists(manual_dir, class_names, list_files)
    overlap = split_overlap(videos)
    paths = feature_files(manual_dir, [(v.video_id, v.where)
                                       for vs in videos.values() for v in vs])
    return ClassListRelease(videos, paths, overlap)


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
        release = read_class_list_release(manual_dir, self.CLASS_NAMES, self.LIST_FILES)
        dims = first_dims(release.paths)
        self.info.metadata["stream_dims"] = dims  # recorded in metadata.json of the build
        record_allowances(self.info.metadata, manual_dir, release.paths, release.overlap)
        return {split: self._generate_examples(vs, release.paths, dims)
                for split, vs in release.videos.items()}

    def _generate_examples(self, videos: list[aa.VideoLabel], paths: Mapping[str, Path],
                           dims: dict[str, int]):
        # Sorted ids: deterministic generation; TFDS then orders records by a hash of the key.
        for v in sorted(videos, key=lambda v: v.video_id):
            yield v.video_id, {**stream_example(paths[v.video_id], v.video_id, dims),
                               "label": v.label_id}


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
