"""Regenerates this dummy manual_dir (deterministic): python make_dummy_data.py

List files: classInd.txt copied whole; trainlist01.txt / testlist01.txt keep the first
TRAIN_PER_CLASS / TEST_PER_CLASS lines per class of the real lists in
tests/fixtures/affect/ek6/ (lines byte-identical, original order). Features are random, tiny.
"""

from pathlib import Path

import numpy as np

from tfds_builders import affect_video as av

SOURCE = Path(__file__).resolve().parents[3] / "tests" / "fixtures" / "affect" / "ek6"
TRAIN_PER_CLASS, TEST_PER_CLASS = 2, 1
DIMS = {"image": 4, "motion": 3, "audio": 2}  # distinct per stream so shape mix-ups show


def _subset(name: str, per_class: int) -> list[bytes]:
    counts: dict[bytes, int] = {}
    kept = []
    for line in (SOURCE / name).read_bytes().splitlines():
        cls = line.split(b"/", 1)[0]
        if line.strip() and counts.get(cls, 0) < per_class:
            counts[cls] = counts.get(cls, 0) + 1
            kept.append(line)
    return kept


def main() -> None:
    root = Path(__file__).parent
    rng = np.random.default_rng(20180606)
    (root / "classInd.txt").write_bytes((SOURCE / "classInd.txt").read_bytes())
    ids = []
    for name, per_class in (("trainlist01.txt", TRAIN_PER_CLASS),
                            ("testlist01.txt", TEST_PER_CLASS)):
        lines = _subset(name, per_class)
        (root / name).write_bytes(b"\n".join(lines) + b"\n")
        ids += [ln.split()[0].decode() for ln in lines]
    for i, vid in enumerate(sorted(ids)):
        steps = 1 + i % 5
        feats = {s: rng.normal(size=(steps, d)).astype(np.float16).astype(np.float32)
                 for s, d in DIMS.items()}
        masks = None
        if i % 3 == 1:  # some files carry masks, one with an absent segment; others default
            masks = {s: np.ones(steps, bool) for s in av.STREAMS}
            masks["audio"][0] = False
            feats["audio"][0] = 0.0
        av.write_video(av.feature_path(root, vid), feats, masks)


if __name__ == "__main__":
    main()
