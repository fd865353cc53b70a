"""TFDS builder for Music_video (Pandeya & Lee 2021): music-video clips labelled with one of six
emotions, stored as decoded JPEG frames + 16 kHz mono audio.

manual_dir = music_video.csv + videos/<id>.<ext> (the layout we define; README.md and
`jaxaffect.families.avcpnet.release_format`). Configs: `default` (short side 128) and
`default_224`. Splits train / validation / test as present. The stored example and the
build's metadata: tfds_builders/raw_video.py.
"""

from __future__ import annotations

from typing import Any

import tensorflow_datasets as tfds
from etils import epath

from jaxaffect.families.avcpnet import release_format as rf
from jaxaffect.families.avcpnet.emotions import EMOTIONS6
from tfds_builders import raw_video as rv


class Builder(rv.RawVideoMixin, tfds.core.GeneratorBasedBuilder):
    """Music-video clips: JPEG frames, 16 kHz audio and an emotion label."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial release: decoded frames and audio from a manual_dir."}
    BUILDER_CONFIGS = rv.sized_configs("default", "Music_video clips.")
    DEFAULT_BUILDER_CONFIG_NAME = "default"
    CLASS_NAMES = EMOTIONS6
    HOMEPAGE = ""  # no verified dataset page; see CITATIONS.bib
    MANUAL_DOWNLOAD_INSTRUCTIONS = """\
    Obtain the Music_video clips from the authors and put them in manual_dir as
    videos/<id>.mp4 (or .webm/.mkv/.mov/.avi, or any path in the optional `file` column) next
    to music_video.csv with the header id,category,split[,file]
    (see tfds_builders/music_video/README.md).
    """

    def _split_generators(self, dl_manager: tfds.download.DownloadManager) -> dict[str, Any]:
        manual_dir = epath.Path(dl_manager.manual_dir)
        clips = {split: [rv.Clip(c.video_id, c.label, c.path, c.where) for c in cs]
                 for split, cs in rf.read_music_video(manual_dir).items()}
        return self._raw_split_generators(clips, manual_dir)


def check_manual_dir(manual_dir: str) -> None:
    """Reads music_video.csv and checks every row and video path, the checks the build runs
    before decoding (errors name file, line and field)."""
    rf.read_music_video(manual_dir)
