"""Writes a MEmoR release folder (the layout of ``release_format``) from python objects.

Used by the builder's dummy-data generator, the tests and the synthetic corpus. The files are
written the way the release holds them: JSON for annotations, clip tables and audio/text
vectors, a CSV of personality rows, one tab-separated line of face image names per clip
(``<frame>_<Speaker capitalised>.jpg``) and torch.save tensors (``jaxaffect.torch_save``, no
torch needed) for face, object and environment features. Output is deterministic.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
from etils import epath

from jaxaffect import torch_save
from jaxaffect.families.amer import release_format as rf


@dataclasses.dataclass
class ReleaseClip:
    """One clip of data.json and its feature files.

    audio: segment index j -> vector, written under key ``clip+seg_ori_ind[j]``; text: segment
    index j -> vector, key ``clip+j``; faces: (frame, character id, face vector) in file order;
    objects / environment: per-frame rows [n_frames, Do] / [n_frames, De].
    """

    clip: str
    start: float
    seg_start: list[float]
    seg_end: list[float]
    seg_ori_ind: list[int]
    speakers: list[int]
    on_character: list[int]
    audio: dict[int, np.ndarray]
    text: dict[int, np.ndarray]
    faces: list[tuple[int, int, np.ndarray]]
    objects: np.ndarray
    environment: np.ndarray


@dataclasses.dataclass
class Annotation:
    """One annotation: the character's emotion at a moment (seconds) of a clip."""

    clip: str
    character: int
    moment: float
    primary: str
    fine: str


def face_image_name(frame: int, character: int) -> str:
    """``<frame>_<Name>.jpg`` as the release names face crops (``12_Sheldon.jpg``)."""
    return f"{int(frame)}_{rf.SPEAKERS[character].capitalize()}.jpg"


def _floats(x: Iterable[Any]) -> list[float]:
    """Plain floats (float32 values survive the JSON round trip exactly)."""
    return [float(v) for v in np.asarray(x, np.float64).ravel()]


def _write_json(path: epath.Path, obj: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, separators=(",", ":")) + "\n")


def _write_lines(path: epath.Path, lines: Sequence[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{ln}\n" for ln in lines))


def _face_dim(clips: Sequence[ReleaseClip]) -> int:
    """Df of the first clip with faces (a clip without faces gets a [0, Df] tensor)."""
    for c in clips:
        if c.faces:
            return int(np.asarray(c.faces[0][2]).size)
    return 0


def write_clip_files(root: epath.Path, clip: ReleaseClip, face_dim: int) -> None:
    """The face-name line and the three .pt files of one clip."""
    names = [face_image_name(frame, char) for frame, char, _ in clip.faces]
    _write_lines(root / rf.FACE_NAMES_DIR / f"{clip.clip}.txt", ["\t".join(names)])
    faces = (np.stack([np.asarray(f, np.float32).ravel() for _, _, f in clip.faces])
             if clip.faces else np.zeros((0, face_dim), np.float32))
    arrays = {"face": faces, "object": np.asarray(clip.objects, np.float32),
              "environment": np.asarray(clip.environment, np.float32)}
    for part, x in arrays.items():
        torch_save.save(root / rf.TENSOR_DIRS[part] / f"{clip.clip}.pt", x)


def clip_entry(clip: ReleaseClip) -> dict[str, Any]:
    """The data.json entry of a clip."""
    return {"on_character": [int(c) for c in clip.on_character],
            "speakers": [int(s) for s in clip.speakers],
            "seg_start": _floats(clip.seg_start), "seg_end": _floats(clip.seg_end),
            "seg_ori_ind": [int(i) for i in clip.seg_ori_ind], "start": float(clip.start)}


def write_release(root, *, clips: Sequence[ReleaseClip], annotations: Sequence[Annotation],
                  train_ids: Sequence[int], test_ids: Sequence[int],
                  personality: np.ndarray) -> None:
    """Writes the release folder `root` (created; existing files are overwritten).

    `personality`: [8, Dp] raw rows (the builder normalises them). Annotation i of
    `annotations` is index i of both anno.json lists; `train_ids` / `test_ids` index them.
    """
    root = epath.Path(root)
    root.mkdir(parents=True, exist_ok=True)
    annos = {key: [] for key in rf.EMOTION_SETS}
    for a in annotations:
        base = {"clip": a.clip, "character": int(a.character), "moment": float(a.moment)}
        annos["primary"].append({**base, "emotion": a.primary})
        annos["fine_grained"].append({**base, "emotion": a.fine})
    _write_json(root / rf.ANNO_FILE, annos)
    _write_json(root / rf.DATA_FILE, {c.clip: clip_entry(c) for c in clips})
    _write_lines(root / rf.ID_FILES["train"], [str(int(i)) for i in train_ids])
    _write_lines(root / rf.ID_FILES["test"], [str(int(i)) for i in test_ids])
    audio, text = {}, {}
    for c in clips:
        for j, v in sorted(c.audio.items()):
            audio[rf.audio_key(c.clip, c.seg_ori_ind[j])] = _floats(v)
        for j, v in sorted(c.text.items()):
            text[rf.text_key(c.clip, j)] = _floats(v)
    _write_json(root / rf.AUDIO_FILE, audio)
    _write_json(root / rf.TEXT_FILE, text)
    p = np.asarray(personality, np.float64)
    if p.ndim != 2 or p.shape[0] != len(rf.SPEAKERS):
        raise ValueError(f"personality must be [{len(rf.SPEAKERS)}, Dp], got {p.shape}")
    _write_lines(root / rf.PERSONALITY_FILE, [",".join(repr(float(v)) for v in row) for row in p])
    face_dim = _face_dim(clips)
    for c in clips:
        write_clip_files(root, c, face_dim)
