"""Regenerates this dummy manual_dir (deterministic): python make_dummy_data.py

ACCEDEranking.txt / ACCEDEsets.txt keep the header and the lines of the first PER_SET clips
of each official set (0 test, 1 train, 2 validation) of the real files in
tests/fixtures/affect/liris_accede/ (lines byte-identical, original order). Features are
random and tiny.
"""

from pathlib import Path

import numpy as np

from tfds_builders import affect_video as av

SOURCE = Path(__file__).resolve().parents[3] / "tests" / "fixtures" / "affect" / "liris_accede"
PER_SET = {b"1": 4, b"2": 2, b"0": 3}
DIMS = {"image": 4, "motion": 3, "audio": 2}  # distinct per stream so shape mix-ups show


def main() -> None:
    root = Path(__file__).parent
    rng = np.random.default_rng(20150909)
    sets = (SOURCE / "ACCEDEsets.txt").read_bytes().splitlines()
    counts: dict[bytes, int] = {}
    keep_ids = set()
    for line in sets[1:]:
        cid, _, s = line.split(b"\t")
        if counts.get(s, 0) < PER_SET[s]:
            counts[s] = counts.get(s, 0) + 1
            keep_ids.add(cid)
    for name in ("ACCEDEranking.txt", "ACCEDEsets.txt"):
        lines = (SOURCE / name).read_bytes().splitlines()
        kept = [lines[0]] + [ln for ln in lines[1:] if ln.split(b"\t")[0] in keep_ids]
        (root / name).write_bytes(b"\n".join(kept) + b"\n")
    names = [ln.split(b"\t")[1].decode() for ln in sets[1:] if ln.split(b"\t")[0] in keep_ids]
    for i, name in enumerate(sorted(names)):
        steps = 1 + i % 4
        feats = {s: rng.normal(size=(steps, d)).astype(np.float16).astype(np.float32)
                 for s, d in DIMS.items()}
        masks = {"motion": np.arange(steps) != 1} if i % 2 else None
        av.write_video(av.feature_path(root, name.rsplit(".", 1)[0]), feats, masks)


if __name__ == "__main__":
    main()
