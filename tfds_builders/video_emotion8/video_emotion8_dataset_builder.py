"""TFDS builder for VideoEmotion-8 from a manual_dir of list files and per-video features.

See README.md for the layout. Splits are `train`/`test` of trainlist01/testlist01; the
10-random-splits protocol of the benchmark is applied at training time with
`jaxaffect.families.tam.annotations.ve8_random_splits` over the union of both splits.
"""

from __future__ import annotations

import tensorflow_datasets as tfds

from jaxaffect.families.tam import annotations as aa
from tfds_builders import affect_video as av


class Builder(av.ClassListMixin, tfds.core.GeneratorBasedBuilder):
    """VideoEmotion-8 videos: image/motion/audio segment features and one of 8 emotions."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial release: per-video segment features from a manual_dir."}
    CLASS_NAMES = aa.VE8_CLASSES
    HOMEPAGE = ""  # no verified dataset page; see CITATIONS.bib
    MANUAL_DOWNLOAD_INSTRUCTIONS = """\
    Put classInd.txt, trainlist01.txt and testlist01.txt of VideoEmotion-8 in manual_dir and
    one features/<Class>/<video>.npz per listed video (see tfds_builders/video_emotion8/README.md).
    """


def check_manual_dir(manual_dir: str) -> None:
    """Reads classInd.txt and both split lists and checks every listed feature path, the
    checks the build runs before generating (errors name file and line)."""
    av.read_class_list_release(manual_dir, Builder.CLASS_NAMES, Builder.LIST_FILES)
