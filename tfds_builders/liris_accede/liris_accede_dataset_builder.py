"""TFDS builder for LIRIS-ACCEDE (discrete) from its annotation files and per-clip features.

See README.md for the layout. Splits follow ACCEDEsets.txt (1 train, 2 validation, 0 test).
The 3-class labels come from `mediaeval2015_classes` with thresholds at the tertiles of all
values in ACCEDEranking.txt (9,800 clips in the release); see that function for why.
Everything is checked before generation starts (`read_release`; errors name file and line).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow_datasets as tfds
from etils import epath

from jaxaffect.errors import FormatError
from jaxaffect.families.tam import annotations as aa
from tfds_builders import affect_video as av

# Stored class index = MediaEval code + 1 (-1 -> 0, 0 -> 1, +1 -> 2).
VALENCE_CLASSES, AROUSAL_CLASSES = aa.VALENCE_CLASSES, aa.AROUSAL_CLASSES
SET_CLASSES = tuple(aa.SET_NAMES[i] for i in range(3))  # index = official set code
SPLITS = ("train", "validation", "test")
RANKING_FILE, SETS_FILE = "ACCEDEranking.txt", "ACCEDEsets.txt"


def video_id(name: str) -> str:
    """Clip id used for features/<id>.npz: the file name without its extension."""
    return name.rsplit(".", 1)[0] if "." in name else name


def read_records(manual_dir: str | epath.PathLike) -> list[aa.LirisRecord]:
    """Joined ACCEDEranking.txt + ACCEDEsets.txt; a missing file raises naming it."""
    return aa.read_liris(*(av.release_file(manual_dir, name, "annotation file")
                           for name in (RANKING_FILE, SETS_FILE)))


@dataclasses.dataclass(frozen=True)
class Release:
    """A checked release: (clip id, record) in ranking-file order, and each clip's features."""

    rows: list[tuple[str, aa.LirisRecord]]
    paths: dict[str, Path]


def read_release(manual_dir: str | epath.PathLike) -> Release:
    """The annotation files and every feature path, checked: clip ids (names without their
    extension) unique and non-empty, every set (train, validation, test) non-empty, each
    features/<id>.npz inside manual_dir and present."""
    records = read_records(manual_dir)
    by_id: dict[str, aa.LirisRecord] = {}
    for r in records:
        vid = video_id(r.name)
        if not vid:
            raise FormatError(f"{r.where}: name {r.name!r} gives an empty clip id")
        if vid in by_id:
            raise FormatError(f"{r.where}: name {r.name!r} gives the clip id {vid!r}, as does "
                              f"{by_id[vid].name!r} at {by_id[vid].where}")
        by_id[vid] = r
    for code, name in sorted(aa.SET_NAMES.items()):
        if not any(r.set == code for r in records):
            raise FormatError(f"{epath.Path(manual_dir) / SETS_FILE}: no clip in set {code} "
                              f"({name}); the build has train, validation and test splits")
    paths = av.feature_files(manual_dir, [(vid, r.where) for vid, r in by_id.items()])
    return Release(list(by_id.items()), paths)


class Builder(tfds.core.GeneratorBasedBuilder):
    """LIRIS-ACCEDE clips: segment features, valence/arousal values and 3-class labels."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial release: per-clip segment features from a manual_dir."}
    MANUAL_DOWNLOAD_INSTRUCTIONS = """\
    Put ACCEDEranking.txt and ACCEDEsets.txt of LIRIS-ACCEDE (discrete) in manual_dir and one
    features/ACCEDExxxxx.npz per clip (see tfds_builders/liris_accede/README.md).
    """

    def _info(self) -> tfds.core.DatasetInfo:
        features = tfds.features.FeaturesDict({
            "video_id": tfds.features.Text(),
            "valence": tfds.features.Scalar(dtype=np.float32),
            "arousal": tfds.features.Scalar(dtype=np.float32),
            "valence_class": tfds.features.ClassLabel(names=list(VALENCE_CLASSES)),
            "arousal_class": tfds.features.ClassLabel(names=list(AROUSAL_CLASSES)),
            "set": tfds.features.ClassLabel(names=list(SET_CLASSES)),
            **av.stream_features(),
        })
        return self.dataset_info_from_configs(
            features=features, supervised_keys=None,
            homepage="https://liris-accede.ec-lyon.fr/", metadata=tfds.core.MetadataDict())

    def _split_generators(self, dl_manager: tfds.download.DownloadManager) -> dict[str, Any]:
        manual_dir = epath.Path(dl_manager.manual_dir)
        release = read_release(manual_dir)
        records = [r for _, r in release.rows]
        # Thresholds over every clip of the ranking file, whatever its split.
        val_cls = aa.mediaeval2015_classes([r.valence for r in records])
        aro_cls = aa.mediaeval2015_classes([r.arousal for r in records])
        rows = [(vid, r, int(v) + 1, int(a) + 1)
                for (vid, r), v, a in zip(release.rows, val_cls, aro_cls, strict=True)]
        dims = av.first_dims(release.paths)
        self.info.metadata["stream_dims"] = dims
        av.record_allowances(self.info.metadata, manual_dir, release.paths)
        return {split: self._generate_examples(
                    [row for row in rows if row[1].set_name == split], release.paths, dims)
                for split in SPLITS}

    def _generate_examples(self, rows: list, paths: dict[str, Path], dims: dict[str, int]
                           ) -> Iterator[tuple[str, dict[str, Any]]]:
        for vid, r, v_cls, a_cls in sorted(rows, key=lambda row: row[0]):
            yield vid, {
                **av.stream_example(paths[vid], vid, dims),
                "valence": np.float32(r.valence),
                "arousal": np.float32(r.arousal),
                "valence_class": v_cls,
                "arousal_class": a_cls,
                "set": r.set,
            }


def check_manual_dir(manual_dir: str) -> None:
    """Reads the ranking and set files and checks every feature path, the checks the build runs
    before generating (errors name file and line)."""
    read_release(manual_dir)
