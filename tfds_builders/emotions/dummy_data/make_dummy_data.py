"""Writes this dummy manual_dir (a tiny eMotions release in our layout), reproducibly:

    PYTHONPATH=<repo> python make_dummy_data.py

12 clips of 0.8 s (32x32 unless noted, 10 fps, a tone), one row each in emotions.csv; the
`file` column is used by e07 only (clips/e07.mkv). What the rows exercise:

* full: train e01-e06 (one per class), validation e07-e09, test e10-e12;
  balanced: train 4, validation 2, test 3; test: train 3, test 3 (no validation split).
* e03 has no audio stream; e05 is 30 fps (stored at every 2nd frame, 15 fps); e06 is portrait
  32x48 and e09 landscape 48x32; e08 writes its category "Fear" and e10 its platform "TikTok"
  (compared case-insensitively).
"""

from pathlib import Path

from tfds_builders.raw_video import dummy_clip

ROWS = [  # id, category, platform, split, balanced_split, test_split, file
    ("e01", "excitation", "douyin", "train", "train", "", ""),
    ("e02", "fear", "kuaishou", "train", "train", "train", ""),
    ("e03", "neutral", "tiktok", "train", "", "train", ""),
    ("e04", "relaxation", "douyin", "train", "train", "", ""),
    ("e05", "sadness", "kuaishou", "train", "train", "train", ""),
    ("e06", "tension", "tiktok", "train", "", "", ""),
    ("e07", "excitation", "tiktok", "validation", "validation", "", "clips/e07.mkv"),
    ("e08", "Fear", "douyin", "validation", "validation", "test", ""),
    ("e09", "neutral", "kuaishou", "validation", "", "", ""),
    ("e10", "relaxation", "TikTok", "test", "test", "test", ""),
    ("e11", "sadness", "douyin", "test", "test", "", ""),
    ("e12", "tension", "kuaishou", "test", "test", "test", ""),
]
SHAPES = {"e06": (48, 32), "e09": (32, 48)}  # (height, width)


def main(root: Path) -> None:
    header = "id,category,platform,split,balanced_split,test_split,file"
    (root / "emotions.csv").write_text(
        "\n".join([header] + [",".join(row) for row in ROWS]) + "\n", encoding="utf-8")
    for i, (vid, *_, file) in enumerate(ROWS):
        h, w = SHAPES.get(vid, (32, 32))
        dummy_clip(root / (file or f"videos/{vid}.mp4"), seed=2024 + i, height=h, width=w,
                   fps=30.0 if vid == "e05" else 10.0, audio=vid != "e03")


if __name__ == "__main__":
    main(Path(__file__).parent)
