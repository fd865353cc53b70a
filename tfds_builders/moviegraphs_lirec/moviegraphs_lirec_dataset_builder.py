"""TFDS builder for LIReC on MovieGraphs (Kukleva et al., CVPR 2020) from the released layout.

manual_dir = the released ``data_root`` (features/, dialogs/, frame2time/, ftracks/,
ftrack_ids/, others/) plus ``lirec_labels/`` exported once from ``others/mg3.pkl`` with
``export_moviegraphs_labels.py``. One example per directed person-to-person interaction
instance; see README.md for the layout, the example spec and the choices.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import tensorflow_datasets as tfds
from etils import epath

from jaxaffect.families.lirec import release_format as lf
from jaxaffect.families.lirec import release_labels as rl
from tfds_builders.moviegraphs_lirec import lirec_examples as le


def _vector() -> tfds.features.Tensor:
    return tfds.features.Tensor(shape=(None,), dtype=np.float32,
                                encoding=tfds.features.Encoding.ZLIB)


class Builder(tfds.core.GeneratorBasedBuilder):
    """Per-clip visual/dialogue features, interaction, candidate pairs, relationship."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial release: one example per p2p interaction instance."}
    MANUAL_DOWNLOAD_INSTRUCTIONS = """\
    Download the LIReC release (https://github.com/Annusha/LIReC, README: data link, ~80 GB) into
    one folder, export the labels once with
    `python tfds_builders/moviegraphs_lirec/export_moviegraphs_labels.py <folder>` (needs the
    MovieGraphs loader classes, see that script), and pass the folder as manual_dir
    (`jaxaffect build moviegraphs_lirec --manual_dir=<folder>`).
    """

    def _info(self) -> tfds.core.DatasetInfo:
        features = tfds.features.FeaturesDict({
            "clip_id": tfds.features.Text(),
            "movie_id": tfds.features.Text(),
            "visual": _vector(),
            "visual_present": tfds.features.Scalar(dtype=np.bool_),
            "text": _vector(),
            "text_present": tfds.features.Scalar(dtype=np.bool_),
            "interaction": tfds.features.Scalar(dtype=np.int32),
            "overlap_interactions": tfds.features.Tensor(shape=(None,), dtype=np.bool_),
            "num_pairs": tfds.features.Scalar(dtype=np.int32),
            "pair_characters": tfds.features.Tensor(shape=(None, 2), dtype=np.str_),
            "pair_tracks": tfds.features.Tensor(shape=(None, 2, None), dtype=np.float32,
                                                encoding=tfds.features.Encoding.ZLIB),
            "true_pair": tfds.features.Scalar(dtype=np.int32),
            "relationship": tfds.features.Scalar(dtype=np.int32),
            "pair_clip_ids": tfds.features.Tensor(shape=(None,), dtype=np.str_),
        })
        return self.dataset_info_from_configs(
            features=features, supervised_keys=None,
            homepage="https://annusha.github.io/LIReC/", metadata=tfds.core.MetadataDict())

    def _split_generators(self, dl_manager: tfds.download.DownloadManager) -> dict[str, Any]:
        root = epath.Path(dl_manager.manual_dir)
        if not root.exists():
            raise lf.LirecFormatError(f"{root}: manual_dir not found")
        split = rl.read_split(root / lf.SPLIT_FILE)
        maps = le.LabelMaps.read(root)
        movies = sorted(m for ms in split.values() for m in ms)
        for m in movies:  # every movie of the split needs its labels: fail before writing
            rl.read_movie_labels(lf.labels_path(root, m))
        dims = le.discover_dims(root, movies)
        notes = le.BuildNotes()
        md = self.info.metadata
        md["dims"] = dims
        md["interactions"] = list(maps.interactions)
        md["relationships"] = list(maps.relationships)
        # Filled while the splits are written (metadata.json is written after generation).
        md["skipped"] = notes.skipped
        md["missing_modalities"] = notes.missing
        md["problems"] = notes.problems
        return {lf.SPLITS[key]: self._generate_examples(root, sorted(ms), maps, dims, notes)
                for key, ms in split.items() if ms}

    def _generate_examples(self, root: epath.Path, movies: list[str], maps: le.LabelMaps,
                           dims: dict[str, int], notes: le.BuildNotes
                           ) -> Iterator[tuple[str, dict[str, Any]]]:
        # A pair's clips all lie in one movie (and a movie in one split), so pair_clip_ids can be
        # filled movie by movie, keeping one movie's examples in memory at a time.
        for movie in movies:
            examples = le.movie_examples(root, movie, maps, dims, notes)
            le.fill_pair_clip_ids(examples)
            for ex in examples:
                ex.pop("_order")
                ex["pair_clip_ids"] = np.asarray(ex["pair_clip_ids"], dtype=object)
                yield ex["clip_id"], ex


def check_manual_dir(manual_dir: str) -> None:
    """Reads others/split.json (errors name the file)."""
    rl.read_split(epath.Path(manual_dir) / lf.SPLIT_FILE)
