"""TFDS builder for eMotions (Wu et al.): short videos from Douyin, Kuaishou and TikTok, each
labelled with one of six emotions, stored as decoded JPEG frames + 16 kHz mono audio.

manual_dir = emotions.csv + videos/<id>.<ext> (the layout we define; README.md and
`jaxaffect.families.avcpnet.release_format`). Configs pick the split column and frame size:
`full` (column `split`, default), `balanced` (`balanced_split`), `test` (`test_split`), each
also as `<name>_224` (short side 224 instead of 128). Splits train / validation / test as
present. The stored example and the build's metadata: tfds_builders/raw_video.py.
"""

from __future__ import annotations

from typing import Any

import tensorflow_datasets as tfds
from etils import epath

from jaxaffect.families.avcpnet import release_format as rf
from jaxaffect.families.avcpnet.emotions import EMOTIONS6
from tfds_builders import raw_video as rv

VARIANTS = {
    "full": "every clip, split by the `split` column (the paper's 27,996 videos)",
    "balanced": "the class-balanced variant, split by the `balanced_split` column",
    "test": "the variant of the `test_split` column (e.g. a held-out test protocol)",
}


def variant(config_name: str) -> str:
    """The release variant (full | balanced | test) of a config name (`full_224` -> `full`)."""
    return config_name.removesuffix("_224")


class Builder(rv.RawVideoMixin, tfds.core.GeneratorBasedBuilder):
    """eMotions short videos: JPEG frames, 16 kHz audio, emotion label and platform."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial release: decoded frames and audio from a manual_dir."}
    BUILDER_CONFIGS = [
        config
        for name, what in VARIANTS.items()
        for config in rv.sized_configs(name, f"eMotions, {what}.",
                                       split_column=rf.EMOTIONS_SPLIT_COLUMNS[name])
    ]
    DEFAULT_BUILDER_CONFIG_NAME = "full"
    CLASS_NAMES = EMOTIONS6
    HOMEPAGE = ""  # no verified dataset page; see CITATIONS.bib
    MANUAL_DOWNLOAD_INSTRUCTIONS = """\
    Obtain the eMotions videos from the authors and put them in manual_dir as videos/<id>.mp4
    (or .webm/.mkv/.mov/.avi, or any path in the optional `file` column) next to emotions.csv
    with the header id,category,platform,split[,balanced_split][,test_split][,file]
    (see tfds_builders/emotions/README.md).
    """

    def _split_generators(self, dl_manager: tfds.download.DownloadManager) -> dict[str, Any]:
        manual_dir = epath.Path(dl_manager.manual_dir)
        by_split = rf.read_emotions(manual_dir, variant(self.builder_config.name))
        clips = {split: [rv.Clip(c.video_id, c.label, c.path, c.where, c.platform)
                         for c in cs]
                 for split, cs in by_split.items()}
        return self._raw_split_generators(clips, manual_dir)


def check_manual_dir(manual_dir: str, config: str | None = None) -> None:
    """Reads emotions.csv and checks every row and video path for `config` (None: `full`),
    the checks the build runs before decoding (errors name file, line and field)."""
    name = variant(config or Builder.DEFAULT_BUILDER_CONFIG_NAME)
    if name in rf.EMOTIONS_SPLIT_COLUMNS:  # an unknown config is refused by the build
        rf.read_emotions(manual_dir, name)
