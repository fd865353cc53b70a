"""Regenerates this dummy manual_dir (deterministic): python make_dummy_data.py

List files: classInd.txt copied whole; trainlist01.txt / testlist01.txt keep the first 2 / 1
lines per class of the real lists in tests/fixtures/affect/ek6/ (lines byte-identical, original
order). Features are random, tiny. Videos (for the `raw` configs): one tiny real .mp4 per
listed video at <Class>/<video>.mp4 (tfds_builders/raw_video.py `write_class_list_videos`).
"""

from pathlib import Path

from tfds_builders.affect_video import write_class_list_dummy_data
from tfds_builders.raw_video import write_class_list_videos

SOURCE = Path(__file__).resolve().parents[3] / "tests" / "fixtures" / "affect" / "ek6"

if __name__ == "__main__":
    write_class_list_dummy_data(Path(__file__).parent, SOURCE, seed=20180606)
    write_class_list_videos(Path(__file__).parent, seed=20180606)
