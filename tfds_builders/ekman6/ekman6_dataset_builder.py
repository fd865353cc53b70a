"""TFDS builder for Ekman-6 from a manual_dir of list files plus per-video features or videos.

See README.md for the layout. Splits are `train`/`test` of trainlist01/testlist01. Configs:
`features` (default; segment features from features/<Class>/<video>.npz), `raw` and `raw_224`
(the videos <Class>/<video>.<ext> decoded to JPEG frames + 16 kHz audio, short side 128 / 224;
see tfds_builders/raw_video.py).
"""

from __future__ import annotations

import tensorflow_datasets as tfds

from jaxaffect.families.tam import annotations as aa
from tfds_builders import raw_video as rv


class Builder(rv.ClassListVideoMixin, tfds.core.GeneratorBasedBuilder):
    """Ekman-6 videos and one of 6 basic emotions: segment features, or decoded video+audio."""

    VERSION = tfds.core.Version("1.1.0")
    RELEASE_NOTES = {
        "1.0.0": "Initial release: per-video segment features from a manual_dir.",
        "1.1.0": "Builder configs: `features` (the 1.0.0 build, default), `raw` and `raw_224` "
                 "(decoded videos). Builds now live in ekman6/<config>/<version>.",
    }
    BUILDER_CONFIGS = rv.class_list_configs("Ekman-6")
    DEFAULT_BUILDER_CONFIG_NAME = "features"
    CLASS_NAMES = aa.EK6_CLASSES
    HOMEPAGE = ""  # no verified dataset page; see CITATIONS.bib
    MANUAL_DOWNLOAD_INSTRUCTIONS = """\
    Put classInd.txt, trainlist01.txt and testlist01.txt of Ekman-6 in manual_dir and, for the
    `features` config, one features/<class>/<video>.npz per listed video; for `raw`/`raw_224`,
    the videos as <class>/<video>.<mp4|webm|mkv|mov|avi> (see tfds_builders/ekman6/README.md).
    """


def check_manual_dir(manual_dir: str, config: str | None = None) -> None:
    """Reads classInd.txt and both split lists and checks every listed feature path (`features`)
    or video file (`raw`, `raw_224`), the checks the build runs before generating (errors name
    file and line)."""
    rv.check_class_list(Builder, manual_dir, config)
