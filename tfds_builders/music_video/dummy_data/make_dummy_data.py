"""Writes this dummy manual_dir (a tiny Music_video release in our layout), reproducibly:

    PYTHONPATH=<repo> python make_dummy_data.py

9 clips of 0.8 s (32x32 unless noted, 10 fps, a tone), one row each in music_video.csv:
train m1-m6 (one per class), test m7-m9; no validation rows (the build has no validation
split). m3's audio track is present but silent (has_audio True, all zeros); m4 is 30 fps
(stored at 15 fps); m8 is 48x32 (landscape) and sits at the path of the `file` column.
"""

from pathlib import Path

from tfds_builders.raw_video import dummy_clip

ROWS = [  # id, category, split, file
    ("m1", "excitation", "train", ""),
    ("m2", "fear", "train", ""),
    ("m3", "neutral", "train", ""),
    ("m4", "relaxation", "train", ""),
    ("m5", "sadness", "train", ""),
    ("m6", "tension", "train", ""),
    ("m7", "excitation", "test", ""),
    ("m8", "sadness", "test", "videos/landscape/m8.mp4"),
    ("m9", "tension", "test", ""),
]


def main(root: Path) -> None:
    (root / "music_video.csv").write_text(
        "\n".join(["id,category,split,file"] + [",".join(row) for row in ROWS]) + "\n",
        encoding="utf-8")
    for i, (vid, _, _, file) in enumerate(ROWS):
        h, w = (32, 48) if vid == "m8" else (32, 32)
        dummy_clip(root / (file or f"videos/{vid}.mp4"), seed=1920 + i, height=h, width=w,
                   fps=30.0 if vid == "m4" else 10.0, amplitude=0.0 if vid == "m3" else 0.3)


if __name__ == "__main__":
    main(Path(__file__).parent)
