"""TFDS builder for ERATO from a user-converted manual_dir (see README.md for the layout).

The per-stream feature sizes d_s come from the user's data and are not fixed by the builder:
stream tensors are stored with shape (None, None) (ZLIB-compressed bytes plus their shape), so
any d_s works, and the sizes of the build are recorded in `metadata.json` (`stream_dims`).
Every clip is validated with `erato_format.read_clip` against the sizes of the first clip (in
clip_id order); a missing or malformed file raises `EratoFormatError` naming the file. Nothing
is skipped: the first bad input stops the build with one line naming the file (and the line of
annotations.csv, or the array), and TFDS removes the incomplete build.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import numpy as np
import tensorflow_datasets as tfds
from etils import epath

from jaxaffect.data.release_files import outside_release
from jaxaffect.families.perr import erato_format as ef

log = logging.getLogger(__name__)
SHOWN_IDS = 5  # clip ids recorded (and logged) for what an allowance let through


def _stream_feature() -> tfds.features.Tensor:
    return tfds.features.Tensor(
        shape=(None, None), dtype=np.float32, encoding=tfds.features.Encoding.ZLIB)


class Builder(tfds.core.GeneratorBasedBuilder):
    """ERATO clips: five modal feature streams per clip, fine (5) and coarse (3) labels."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial release: per-clip feature streams from a manual_dir."}
    MANUAL_DOWNLOAD_INSTRUCTIONS = """\
    ERATO is not distributed in a public file format. Convert it to the layout documented in
    tfds_builders/erato/README.md (annotations.csv + features/<clip_id>.npz) and pass that
    directory as manual_dir (`jaxaffect build erato --manual_dir=...`).
    """

    def _info(self) -> tfds.core.DatasetInfo:
        features = tfds.features.FeaturesDict({
            "clip_id": tfds.features.Text(),
            "label": tfds.features.ClassLabel(names=list(ef.FINE_LABELS)),
            "coarse_label": tfds.features.ClassLabel(names=list(ef.COARSE_LABELS)),
            "num_steps": tfds.features.Scalar(dtype=np.int32),
            "streams": tfds.features.FeaturesDict({s: _stream_feature() for s in ef.STREAMS}),
            "masks": tfds.features.FeaturesDict(
                {s: tfds.features.Tensor(shape=(None,), dtype=np.bool_) for s in ef.STREAMS}),
        })
        return self.dataset_info_from_configs(
            features=features,
            supervised_keys=None,
            homepage="https://github.com/CTI-VISION/PERR",
            metadata=tfds.core.MetadataDict(),
        )

    def _split_generators(self, dl_manager: tfds.download.DownloadManager) -> dict[str, Any]:
        manual_dir = epath.Path(dl_manager.manual_dir)
        rows, paths = read_release(manual_dir)
        first = ef.read_clip(paths[rows[0].clip_id])
        dims = first.dims()
        # Recorded so readers know d_s without decoding an example (metadata.json of the build).
        self.info.metadata["stream_dims"] = dims
        linked = outside_release(manual_dir, paths)
        if linked:  # only possible with `--allow symlinks`: said, and recorded
            log.warning("erato: %d feature file(s) are symlinks to outside %s (allowed): %s",
                        len(linked), manual_dir, ", ".join(linked[:SHOWN_IDS]))
            self.info.metadata["symlinks_outside_release"] = {
                "allowed_by": "symlinks", "count": len(linked),
                "clip_ids": linked[:SHOWN_IDS]}
        return {  # read_annotations guarantees that both splits have rows
            split: self._generate_examples([r for r in rows if r.split == split], paths, dims)
            for split in ef.SPLITS
        }

    def _generate_examples(self, rows: list[ef.Annotation], paths: dict[str, epath.Path],
                           dims: dict[str, int]) -> Iterator[tuple[str, dict[str, Any]]]:
        # Rows arrive sorted by clip_id, so generation is deterministic. TFDS then orders the
        # written records by a hash of the key (deterministic, and mixes clips for sequential
        # readers).
        for row in rows:
            clip = ef.read_clip(paths[row.clip_id], expected_dims=dims)
            yield row.clip_id, {
                "clip_id": row.clip_id,
                "label": row.label,
                "coarse_label": row.coarse_label,
                "num_steps": np.int32(clip.num_steps),
                "streams": {s: clip.features[s] for s in ef.STREAMS},
                "masks": {s: clip.masks[s] for s in ef.STREAMS},
            }


def read_release(manual_dir: str | epath.PathLike
                 ) -> tuple[list[ef.Annotation], dict[str, epath.Path]]:
    """The annotation rows in clip_id order and their feature paths, every path checked to stay
    inside the manual_dir (errors name annotations.csv and the row's line)."""
    rows = sorted(ef.read_annotations(manual_dir), key=lambda r: r.clip_id)
    return rows, {r.clip_id: ef.clip_feature_path(manual_dir, r) for r in rows}


def check_manual_dir(manual_dir: str) -> None:
    """Reads annotations.csv and checks the feature paths it implies (errors name the file and
    line: missing directory, header, labels, splits, a path leaving the manual_dir, ...);
    feature files are validated one by one while the examples are written."""
    read_release(manual_dir)
