"""Writes the memor builder's dummy_data/ (a tiny release in the MEmoR layout), reproducibly.

    python tfds_builders/memor/make_dummy_data.py [out_dir]   (default: dummy_data/ beside it)

Small feature sizes (audio 12, text 8, face 6 + object 5 + environment 7, personality 118 as
released), 6 clips, 17 annotations. What each clip exercises:

* VAL_CLIP: the one clip in the first 10% of the hash range: its train annotations form the
  validation split; faces of sheldon (segment 0) and penny (segment 1).
* FEW_FACES: 8 face names (<= 10): no visual feature at all; its seg_ori_ind differ from the
  segment indices; segment 1 has no audio key; annotation 2 targets amy, who neither speaks nor
  is on screen.
* SHARED: annotations 4 (train, sheldon) and 5 (test, leonard) share a moment; howard has
  faces in segment 2 but never speaks (a visual-only segment); annotation 7's moment lies after
  every segment (-> nearest segment 2); segment 2 is spoken by "others" and has no text key
  (not needed: no annotation has "others" among its persons).
* EMPTY_SLICE: object/environment features cover 30 frames only: bernadette's segment 1
  passes the face threshold but its frame slice is empty (absent, reported).
* T_CLIP, MORE_CLIP: further train and test annotations; annotation 12 is in neither list.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from jaxaffect.data.splits import in_hash_fraction
from jaxaffect.families.amer import release_writer as rw

DIMS = {"audio": 12, "text": 8, "face": 6, "object": 5, "environment": 7, "personality": 118}
VAL_CLIP, FEW_FACES, SHARED = "s01e01_008", "s01e01_000", "s01e01_001"
EMPTY_SLICE, T_CLIP, MORE_CLIP = "s01e01_002", "s01e01_003", "s01e01_004"
TRAIN_IDS = (0, 1, 2, 4, 6, 8, 9, 11, 13, 15)
TEST_IDS = (3, 5, 7, 10, 14, 16)
FPS = 23.976


def _vec(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.normal(size=n).astype(np.float16).astype(np.float32)


def _faces(rng, character: int, frames) -> list[tuple[int, int, np.ndarray]]:
    return [(int(f), character, _vec(rng, DIMS["face"])) for f in frames]


def _clip(rng, name, start, bounds, speakers, on, faces, *, seg_ori_ind=None, n_frames=None,
          no_audio=(), no_text=()) -> rw.ReleaseClip:
    seg_start = [start + a for a, _ in bounds]
    seg_end = [start + b for _, b in bounds]
    n_frames = n_frames or int(bounds[-1][1] * FPS) + 5
    return rw.ReleaseClip(
        clip=name, start=start, seg_start=seg_start, seg_end=seg_end,
        seg_ori_ind=list(seg_ori_ind or range(len(bounds))), speakers=list(speakers),
        on_character=list(on),
        audio={j: _vec(rng, DIMS["audio"]) for j in range(len(bounds)) if j not in no_audio},
        text={j: _vec(rng, DIMS["text"]) for j in range(len(bounds)) if j not in no_text},
        faces=faces,
        objects=rng.poisson(1.0, size=(n_frames, DIMS["object"])).astype(np.float32),
        environment=np.stack([_vec(rng, DIMS["environment"]) for _ in range(n_frames)]))


def dummy_release(seed: int = 0) -> dict:
    """The keyword arguments of `release_writer.write_release` for the dummy data."""
    rng = np.random.default_rng(seed)
    assert in_hash_fraction(VAL_CLIP, 0.1)
    assert not any(in_hash_fraction(c, 0.1)
                   for c in (FEW_FACES, SHARED, EMPTY_SLICE, T_CLIP, MORE_CLIP))
    clips = [
        _clip(rng, VAL_CLIP, 300.0, [(0, 2), (2, 4.5), (4.5, 7)], [0, 4, 0], [0, 4],
              _faces(rng, 0, range(5, 17)) + _faces(rng, 4, range(50, 61))),
        _clip(rng, FEW_FACES, 50.0, [(0, 2), (2, 5)], [1, 1], [1],
              _faces(rng, 1, range(3, 11)), seg_ori_ind=[3, 5], no_audio=(1,)),
        _clip(rng, SHARED, 0.0, [(0, 3), (3, 5), (5, 8)], [0, 1, 7], [0, 1, 2],
              _faces(rng, 0, range(10, 22)) + _faces(rng, 1, range(75, 86))
              + _faces(rng, 2, range(125, 137)), no_text=(2,)),
        _clip(rng, EMPTY_SLICE, 1000.0, [(0, 2), (2, 4)], [3, 5], [3, 5],
              _faces(rng, 3, range(2, 13)) + _faces(rng, 5, range(50, 62)), n_frames=30),
        _clip(rng, T_CLIP, 20.0, [(0, 2), (2, 5)], [6, 6], [6, 7],
              _faces(rng, 6, range(4, 16)) + _faces(rng, 7, range(50, 61))),
        _clip(rng, MORE_CLIP, 60.0, [(0, 1.5), (1.5, 3), (3, 5)], [4, 0, 1], [0, 1, 4],
              _faces(rng, 4, range(2, 14))),
    ]
    A = rw.Annotation
    annotations = [
        A(VAL_CLIP, 0, 301.0, "joy", "joy"),
        A(VAL_CLIP, 4, 303.0, "anger", "annoyance"),
        A(FEW_FACES, 6, 51.0, "neutral", "neutral"),
        A(FEW_FACES, 1, 53.5, "sadness", "boredom"),
        A(SHARED, 0, 4.0, "surprise", "surprise"),
        A(SHARED, 1, 4.0, "fear", "fear"),
        A(SHARED, 2, 6.0, "disgust", "disgust"),
        A(SHARED, 0, 9.5, "anticipation", "anticipation"),
        A(EMPTY_SLICE, 3, 1000.5, "trust", "trust"),
        A(EMPTY_SLICE, 5, 1003.0, "joy", "serenity"),
        A(T_CLIP, 6, 21.0, "neutral", "interest"),
        A(T_CLIP, 7, 23.0, "joy", "distraction"),
        A(T_CLIP, 6, 24.0, "anger", "anger"),
        A(MORE_CLIP, 4, 60.5, "sadness", "sadness"),
        A(MORE_CLIP, 0, 62.0, "neutral", "neutral"),
        A(MORE_CLIP, 1, 64.0, "surprise", "surprise"),
        A(MORE_CLIP, 4, 60.7, "joy", "joy"),
    ]
    personality = rng.normal(size=(8, DIMS["personality"])).astype(np.float16)
    return {"clips": clips, "annotations": annotations, "train_ids": list(TRAIN_IDS),
            "test_ids": list(TEST_IDS), "personality": personality.astype(np.float64)}


def main(out: str | None = None) -> None:
    root = Path(out) if out else Path(__file__).resolve().parent / "dummy_data"
    rw.write_release(root, **dummy_release())
    print(f"wrote {root}")


if __name__ == "__main__":
    main(*sys.argv[1:2])
