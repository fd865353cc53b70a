"""Regenerates this dummy manual_dir (deterministic): python make_dummy_data.py

List files: classInd.txt copied whole; trainlist01.txt / testlist01.txt keep the first 2 / 1
lines per class of the real lists in tests/fixtures/affect/ek6/ (lines byte-identical, original
order). Features are random, tiny.
"""

from pathlib import Path

from tfds_builders.affect_video import write_class_list_dummy_data

SOURCE = Path(__file__).resolve().parents[3] / "tests" / "fixtures" / "affect" / "ek6"

if __name__ == "__main__":
    write_class_list_dummy_data(Path(__file__).parent, SOURCE, seed=20180606)
