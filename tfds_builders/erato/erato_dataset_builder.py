"""TFDS builder for ERATO from a user-converted manual_dir (see README.md for the layout).

The per-stream feature sizes d_s come from the user's data and are not fixed by the builder:
stream tensors are stored with shape (None, None) (ZLIB-compressed bytes plus their shape), so
any d_s works, and the sizes of the build are recorded in `metadata.json` (`stream_dims`).
Every clip is validated with `erato_format.read_clip` against the sizes of the first clip (in
clip_id order); a missing or malformed file raises `EratoFormatError` naming the file.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import tensorflow_datasets as tfds
from etils import epath

from jaxaffect.families.perr import erato_format as ef


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
        rows = sorted(ef.read_annotations(manual_dir), key=lambda r: r.clip_id)
        first = ef.read_clip(ef.feature_path(manual_dir, rows[0].clip_id))
        dims = first.dims()
        # Recorded so readers know d_s without decoding an example (metadata.json of the build).
        self.info.metadata["stream_dims"] = dims
        return {
            split: self._generate_examples(manual_dir, [r for r in rows if r.split == split], dims)
            for split in ef.SPLITS
            if any(r.split == split for r in rows)
        }

    def _generate_examples(self, manual_dir: epath.Path, rows: list[ef.Annotation],
                           dims: dict[str, int]) -> Iterator[tuple[str, dict[str, Any]]]:
        # Rows arrive sorted by clip_id, so generation is deterministic. TFDS then orders the
        # written records by a hash of the key (deterministic, and mixes clips for sequential
        # readers).
        for row in rows:
            clip = ef.read_clip(ef.feature_path(manual_dir, row.clip_id), expected_dims=dims)
            yield row.clip_id, {
                "clip_id": row.clip_id,
                "label": row.label,
                "coarse_label": row.coarse_label,
                "num_steps": np.int32(clip.num_steps),
                "streams": {s: clip.features[s] for s in ef.STREAMS},
                "masks": {s: clip.masks[s] for s in ef.STREAMS},
            }


def check_manual_dir(manual_dir: str) -> None:
    """Reads annotations.csv (errors name it: missing directory, header, labels, ...); feature
    files are validated one by one while the examples are written."""
    ef.read_annotations(manual_dir)
