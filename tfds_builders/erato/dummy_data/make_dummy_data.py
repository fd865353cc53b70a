"""Regenerates this dummy manual_dir (deterministic): python make_dummy_data.py"""

from pathlib import Path

import numpy as np

from jaxaffect.families.perr import erato_format as ef

# Tiny feature sizes, distinct per stream so shape mix-ups show.
DIMS = {"person_a": 4, "person_b": 4, "background": 6, "audio": 5, "text": 8}
# clip_id, label, split, T
CLIPS = [
    ("c01", "hostile", "train", 3),
    ("c02", "tense", "train", 7),
    ("c03", "mild", "train", 12),
    ("c04", "intimate", "train", 1),
    ("c05", "neutral", "train", 9),
    ("c06", "hostile", "train", 5),
    ("c07", "mild", "test", 4),
    ("c08", "neutral", "test", 15),
    ("c09", "tense", "test", 2),
]


def main() -> None:
    root = Path(__file__).parent
    rng = np.random.default_rng(20210101)
    ef.write_annotations(root, [ef.Annotation(c, lab, sp) for c, lab, sp, _ in CLIPS])
    for i, (clip_id, _, _, steps) in enumerate(CLIPS):
        feats, masks = {}, {}
        for j, s in enumerate(ef.STREAMS):
            m = np.ones(steps, bool)
            if steps > 2 and (i + j) % 3 == 0:
                start = (i + j) % steps
                m[start:start + max(1, steps // 3)] = False  # an absent stretch
            if j == 1 and i == 4:
                m[:] = False  # a stream absent for the whole clip
            x = rng.normal(size=(steps, DIMS[s])).astype(np.float16).astype(np.float32)
            feats[s] = np.where(m[:, None], x, 0.0).astype(np.float32)
            masks[s] = m
        ef.write_clip(ef.feature_path(root, clip_id), ef.ClipFeatures(feats, masks))


if __name__ == "__main__":
    main()
