"""TFDS builder for MEmoR (Shen et al., ACM MM 2020) from the authors' released ``data/`` folder.

manual_dir = the release root (anno.json, data.json, train_id.txt, test_id.txt, features/).
One example per annotation listed in train_id.txt or test_id.txt: the clip's persons x
segments audio/text/visual features with presence masks, the persons' personality rows, the
target person and segment, and the primary (9) and fine-grained (14) labels. Configs pick the
split rule: `official` (default) and `moment_disjoint`. See README.md for the layout, the
example spec, the choices, what is refused (MemorFormatError naming the file) and what is
recorded in metadata.json and reported at the end of the build.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Iterator
from typing import Any

import numpy as np
import tensorflow_datasets as tfds
from etils import epath

from jaxaffect.families.amer import release_examples as rx
from jaxaffect.families.amer import release_format as rf
from tfds_builders.refused_build import RefusedBuildCleanup

NAME = "memor"


@dataclasses.dataclass
class MemorConfig(tfds.core.BuilderConfig):
    """`split_rule`: official | moment_disjoint (see `release_examples.assign_splits`)."""

    split_rule: str = "official"


def _tensor(ndim: int, dtype: Any = np.float32) -> tfds.features.Tensor:
    """A tensor of `ndim` unknown dimensions (TFDS needs an encoding for two or more)."""
    return tfds.features.Tensor(shape=(None,) * ndim, dtype=dtype,
                                encoding=tfds.features.Encoding.ZLIB)


def _listing(items: list, count: int | None = None) -> dict[str, Any]:
    return {"count": len(items) if count is None else count, "entries": items[:rx.LISTED]}


class Builder(RefusedBuildCleanup, tfds.core.GeneratorBasedBuilder):
    """Person x segment multimodal features of a clip, target person/segment, emotion."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial release: one example per listed annotation."}
    BUILDER_CONFIGS = [
        MemorConfig(name="official", split_rule="official",
                    description="test = test_id.txt; validation = train_id.txt annotations of "
                                "clips in the first 10% of the hash range; train = the rest."),
        MemorConfig(name="moment_disjoint", split_rule="moment_disjoint",
                    description="as official, after moving every moment annotated in both "
                                "lists wholly to test (no train/test moment overlap)."),
    ]
    DEFAULT_BUILDER_CONFIG_NAME = "official"
    MANUAL_DOWNLOAD_INSTRUCTIONS = """\
    Request the MEmoR release from the authors (https://github.com/sunlightsgy/MEmoR, README:
    licence agreement) and pass its data/ folder (anno.json, data.json, train_id.txt,
    test_id.txt, features/) as manual_dir:
    `jaxaffect build memor --manual_dir=<data folder>`. See tfds_builders/memor/README.md.
    """

    def _info(self) -> tfds.core.DatasetInfo:
        features = tfds.features.FeaturesDict({
            "id": tfds.features.Text(),
            "anno_index": tfds.features.Scalar(dtype=np.int32),
            "clip": tfds.features.Text(),
            "moment": tfds.features.Scalar(dtype=np.float32),
            "persons": tfds.features.Tensor(shape=(None,), dtype=np.int32),
            "target_person": tfds.features.Scalar(dtype=np.int32),
            "target_segment": tfds.features.Scalar(dtype=np.int32),
            "segment_start": tfds.features.Tensor(shape=(None,), dtype=np.float32),
            "segment_end": tfds.features.Tensor(shape=(None,), dtype=np.float32),
            "segment_speaker": tfds.features.Tensor(shape=(None,), dtype=np.int32),
            **{m: _tensor(3) for m in rf.MODALITIES},
            **{f"{m}_present": _tensor(2, np.bool_) for m in rf.MODALITIES},
            "personality": _tensor(2),
            "label_primary": tfds.features.ClassLabel(names=list(rf.PRIMARY)),
            "label_fine": tfds.features.ClassLabel(names=list(rf.FINE)),
            "speaks_in_segment": tfds.features.Scalar(dtype=np.bool_),
            "speaks_in_clip": tfds.features.Scalar(dtype=np.bool_),
        })
        return self.dataset_info_from_configs(
            features=features, supervised_keys=None,
            homepage="https://github.com/sunlightsgy/MEmoR", metadata=tfds.core.MetadataDict())

    def _split_generators(self, dl_manager: tfds.download.DownloadManager) -> dict[str, Any]:
        release = rx.read_release(epath.Path(dl_manager.manual_dir))
        rule = self.builder_config.split_rule
        splits = rx.assign_splits(release.annotations, release.ids, rule)
        listed = set(release.listed)
        neither = [i for i in range(len(release.annotations)) if i not in listed]
        by_how = {how: [f"{release.annotations[i].clip}#{i}"
                        for i, (_, h) in sorted(release.targets.items()) if h == how]
                  for how in ("nearest", "several")}
        md = self.info.metadata  # metadata.json of the build (written after generation)
        md.update({
            "split_rule": rule,
            "dims": release.dims,
            "counts": {s: len(ix) for s, ix in splits.items()},
            "overlap": rx.measure_overlap(release.annotations, release.ids),
            "not_listed": _listing(neither),
            "moments_moved_to_nearest_segment": _listing(by_how["nearest"]),
            "moments_in_several_segments": _listing(by_how["several"]),
            "empty_visual_slices": _listing([], 0),  # filled while the splits are written
            "class_counts": rx.class_counts(release.annotations, splits),
            "speakers": list(rf.SPEAKERS),
            "rules": {"fps": rx.FPS, "face_threshold": rx.FACE_THRESHOLD,
                      "validation_fraction": rx.VALIDATION_FRACTION},
        })
        self._empty: set[tuple[str, int, int]] = set()
        self._report = True
        empty_splits = [s for s, ix in splits.items() if not ix]
        if empty_splits:
            md["empty_splits"] = empty_splits
        return {s: self._generate_examples(release, ix) for s, ix in splits.items() if ix}

    def _generate_examples(self, release: rx.Release, indices: list[int]
                           ) -> Iterator[tuple[str, dict[str, Any]]]:
        # Annotations grouped by clip: each clip's .pt files are read once per split.
        order = sorted(indices, key=lambda i: (release.annotations[i].clip, i))
        visual = None
        for i in order:
            clip = release.annotations[i].clip
            if visual is None or visual.info.clip != clip:
                visual = rx.ClipVisual(release, clip)
            known = len(self._empty)
            ex = rx.annotation_example(release, i, visual, self._empty)
            if len(self._empty) != known:
                self._note_empty()
            yield ex["id"], ex

    def _note_empty(self) -> None:
        entries = [{"clip": c, "character": ch, "segment": j}
                   for c, ch, j in sorted(self._empty)]
        self.info.metadata["empty_visual_slices"].update(_listing(entries))

    def download_and_prepare(self, *args: Any, **kwargs: Any) -> None:
        """TFDS's build; then the split overlap and what was let through, on stderr (nothing
        when an existing build was reused)."""
        self._report = False
        super().download_and_prepare(*args, **kwargs)  # a refused build leaves nothing
        if self._report:
            for line in report(self.info.metadata):
                print(line, file=sys.stderr)


def report(md: dict[str, Any]) -> list[str]:
    """The end-of-build lines: the overlap of the official lists (always) and one line per
    kind of input that was let through."""
    o = md["overlap"]
    lines = [f"{NAME}: the official train and test lists share {o['shared_moments']} of "
             f"{o['moments']} moments ({o['affected_annotations']} annotations) and "
             f"{o['shared_clips']} clips; split rule {md['split_rule']!r}: "
             + ", ".join(f"{s} {n}" for s, n in md["counts"].items())
             + " (metadata.json 'overlap', 'counts')"]
    for key, what in (("not_listed", "annotation(s) in neither id file, not built"),
                      ("moments_moved_to_nearest_segment",
                       "moment(s) outside every segment, given the nearest segment"),
                      ("moments_in_several_segments",
                       "moment(s) inside overlapping segments, given the first"),
                      ("empty_visual_slices",
                       "person-segment(s) with enough faces but an empty frame slice "
                       "(visual absent)")):
        if md[key]["count"]:
            shown = [e if isinstance(e, str | int) else "/".join(map(str, e.values()))
                     for e in md[key]["entries"][:3]]
            more = md[key]["count"] - len(shown)
            lines.append(f"{NAME}: {md[key]['count']} {what}: {', '.join(map(str, shown))}"
                         + (f" and {more} more" if more > 0 else "")
                         + f" (metadata.json {key!r})")
    return lines


def check_manual_dir(manual_dir: str) -> None:
    """The checks the build makes before writing (every JSON/CSV/id file, the face-name files
    and the existence of the .pt files that will be read), so that `jaxaffect build` refuses
    a bad release with one line before TFDS starts."""
    rx.read_release(manual_dir)
