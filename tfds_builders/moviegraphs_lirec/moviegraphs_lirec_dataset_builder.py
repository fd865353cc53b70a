"""TFDS builder for LIReC on MovieGraphs (Kukleva et al., CVPR 2020) from the released layout.

manual_dir = the released ``data_root`` (features/, dialogs/, frame2time/, ftracks/,
ftrack_ids/, others/) plus ``lirec_labels/`` exported once from ``others/mg3.pkl`` with
``export_moviegraphs_labels.py``. One example per directed person-to-person interaction
instance; see README.md for the layout, the example spec, the choices, and what is refused
(LirecFormatError naming the file) or let through and reported at the end of the build.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any

import numpy as np
import tensorflow_datasets as tfds
from etils import epath

from jaxaffect.families.lirec import release_format as lf
from tfds_builders.moviegraphs_lirec import lirec_examples as le
from tfds_builders.moviegraphs_lirec import lirec_release as lr


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
        # Every movie's labels and every referenced file are checked before writing.
        notes = lr.BuildNotes(root)
        split, plans = lr.plan_release(root, notes)
        maps = le.LabelMaps.read(root)
        _note_optional_files(root, maps, sorted(plans), notes)
        dims = lr.discover_dims(root, plans)
        md = self.info.metadata
        md["dims"] = dims
        md["interactions"] = list(maps.interactions)
        md["relationships"] = list(maps.relationships)
        # Filled while the splits are written (metadata.json is written after generation).
        md.update(notes.metadata())
        self._notes = notes
        return {lf.SPLITS[key]: self._generate_examples(root, [plans[m] for m in sorted(ms)],
                                                        maps, dims, notes)
                for key, ms in split.items() if ms}

    def download_and_prepare(self, *args: Any, **kwargs: Any) -> None:
        """TFDS's build; then one line per kind of input that was let through (allowed absent
        files, skipped subtitles, problems, skipped interactions) on stderr."""
        self._notes = None
        super().download_and_prepare(*args, **kwargs)
        for line in self._notes.report() if self._notes is not None else ():
            print(line, file=sys.stderr)

    def _generate_examples(self, root: epath.Path, plans: list[lr.MoviePlan],
                           maps: le.LabelMaps, dims: dict[str, int], notes: lr.BuildNotes
                           ) -> Iterator[tuple[str, dict[str, Any]]]:
        # A pair's clips all lie in one movie (and a movie in one split), so pair_clip_ids can be
        # filled movie by movie, keeping one movie's examples in memory at a time.
        for plan in plans:
            examples = le.movie_examples(root, plan, maps, dims, notes)
            le.fill_pair_clip_ids(examples)
            for ex in examples:
                ex.pop("_order")
                ex["pair_clip_ids"] = np.asarray(ex["pair_clip_ids"], dtype=object)
                yield ex["clip_id"], ex


def _note_optional_files(root: epath.Path, maps: le.LabelMaps, movies: list[str],
                         notes: lr.BuildNotes) -> None:
    """The optional others/ files: their absence changes examples, so it is reported."""
    if not (root / lf.RELATIONSHIP_OPPOSITES_FILE).exists():
        notes.problem(root / lf.RELATIONSHIP_OPPOSITES_FILE,
                      "not found: a relationship annotated a -> b gives b -> a no label")
    if not (root / lf.ORG_RES_FILE).exists():
        notes.problem(root / lf.ORG_RES_FILE,
                      "not found: face features are the whole frame's (no person-box pooling)")
    else:
        for movie in movies:
            if movie not in maps.org_res:
                notes.problem(root / lf.ORG_RES_FILE, f"no line for movie {movie!r}: its face "
                                                      "features are the whole frame's")


def check_manual_dir(manual_dir: str) -> None:
    """The checks the build makes before writing (split.json, labels, ids that become paths,
    referenced files), so that `jaxaffect build` refuses a bad release before TFDS starts."""
    root = epath.Path(manual_dir)
    if not root.exists():
        raise lf.LirecFormatError(f"{root}: manual_dir not found")
    lr.plan_release(root, lr.BuildNotes(root))
