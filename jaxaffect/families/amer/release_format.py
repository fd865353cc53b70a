"""Readers of the MEmoR (Shen et al., ACM MM 2020) release: the authors' ``data/`` folder.

Layout (``sunlightsgy/MEmoR``, ``train.json`` paths; the files the authors' loader reads)::

  anno.json        {"primary": [A, ...], "fine_grained": [A, ...]},
                   A = {"clip", "character", "moment", "emotion"}; the lists align by index
  data.json        {clip: {"on_character", "speakers", "seg_start", "seg_end", "seg_ori_ind",
                   "start", ...}}
  train_id.txt, test_id.txt                        one annotation index per line
  features/audio_features.json                     {"<clip>+<seg_ori_ind[j]>": [Da floats]}
  features/text_features.json                      {"<clip>+<j>": [Dt floats]}
  features/character_features.csv                  8 lines of Dp comma-separated floats
  features/visual_features/face_names/<clip>.txt   one line of tab-separated "<frame>_<Name>.jpg"
  features/visual_features/{face,object,environment}_features/<clip>.pt   torch tensors
                                                   [n_faces, Df], [n_frames, Do], [n_frames, De]

Everything is pure python/numpy (.pt files through ``jaxaffect.torch_checkpoint``); every
problem is a :class:`MemorFormatError` whose message starts with the file and names the key,
line or index. Clip names become file names, so they must be plain names that stay inside the
release folder. The per-annotation assembly is in ``release_examples``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from etils import epath

from jaxaffect.data.release_files import float_array, inside, read_utf8
from jaxaffect.errors import FormatError
from jaxaffect.torch_checkpoint import read_torch_file

SPEAKERS = ("sheldon", "leonard", "howard", "rajesh", "penny", "bernadette", "amy", "others")
FINE = ("neutral", "joy", "anger", "disgust", "sadness", "surprise", "fear", "anticipation",
        "trust", "serenity", "interest", "annoyance", "boredom", "distraction")
PRIMARY = FINE[:9]
EMOTION_SETS = {"primary": PRIMARY, "fine_grained": FINE}  # anno.json key -> class names
MODALITIES = ("audio", "text", "visual")
VISUAL_PARTS = ("face", "object", "environment")

ANNO_FILE = "anno.json"
DATA_FILE = "data.json"
ID_FILES = {"train": "train_id.txt", "test": "test_id.txt"}
AUDIO_FILE = "features/audio_features.json"
TEXT_FILE = "features/text_features.json"
PERSONALITY_FILE = "features/character_features.csv"
VISUAL_DIR = "features/visual_features"
FACE_NAMES_DIR = f"{VISUAL_DIR}/face_names"
TENSOR_DIRS = {"face": f"{VISUAL_DIR}/face_features",
               "object": f"{VISUAL_DIR}/object_features",
               "environment": f"{VISUAL_DIR}/environment_features"}
CLIP_KEYS = ("on_character", "speakers", "seg_start", "seg_end", "seg_ori_ind", "start")

PathLike = str | epath.PathLike


class MemorFormatError(FormatError):
    """A file of a MEmoR release is missing or malformed; the message names the file."""


# ----------------------------------------------------------------------------- paths
def check_clip_name(clip: Any, where: str) -> str:
    """`clip` when it can be a file name (one plain path component), else an error."""
    if (not isinstance(clip, str) or not clip or clip in (".", "..") or "/" in clip
            or "\\" in clip or "\0" in clip or clip != clip.strip()):
        raise MemorFormatError(f"{where}: clip {clip!r} is not a plain file name (clip names "
                               "become paths inside the release folder)")
    return clip


def release_path(root: PathLike, relative: str, where: str) -> epath.Path:
    """`root / relative`, refused when it leaves the release folder (see `inside`)."""
    try:
        return epath.Path(inside(root, relative, where=where))
    except FormatError as e:
        raise MemorFormatError(str(e)) from None


def face_names_path(root: PathLike, clip: str, where: str = "") -> epath.Path:
    return release_path(root, f"{FACE_NAMES_DIR}/{clip}.txt", where or f"clip {clip!r}")


def tensor_path(root: PathLike, part: str, clip: str, where: str = "") -> epath.Path:
    """The .pt file of `part` (face, object or environment) of a clip."""
    return release_path(root, f"{TENSOR_DIRS[part]}/{clip}.pt", where or f"clip {clip!r}")


def audio_key(clip: str, seg_ori_ind: int) -> str:
    return f"{clip}+{seg_ori_ind}"


def text_key(clip: str, segment: int) -> str:
    return f"{clip}+{segment}"


# ----------------------------------------------------------------------------- text and JSON
def read_text(path: PathLike) -> str:
    """The UTF-8 text of a release file (MemorFormatError naming it when missing or not
    UTF-8)."""
    path = epath.Path(path)
    if not path.is_file():
        raise MemorFormatError(f"{path}: file not found")
    try:
        return read_utf8(path)
    except FormatError as e:
        raise MemorFormatError(str(e)) from None


def _no_constant(path: PathLike):
    def refuse(name: str) -> Any:
        raise MemorFormatError(f"{path}: not valid JSON ({name} is not a JSON number)")
    return refuse


def _json_error(path: PathLike, e: json.JSONDecodeError) -> MemorFormatError:
    return MemorFormatError(f"{path}:{e.lineno}:{e.colno}: not valid JSON ({e.msg})")


def read_json(path: PathLike) -> Any:
    """The parsed JSON file; NaN and Infinity (which Python accepts) are refused."""
    try:
        return json.loads(read_text(path), parse_constant=_no_constant(path))
    except json.JSONDecodeError as e:
        raise _json_error(path, e) from None


def json_int(value: Any, where: str, *, low: int | None = None, high: int | None = None) -> int:
    """A JSON integer (not a bool, float or string) in [low, high)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise MemorFormatError(f"{where} must be an integer, got {value!r}")
    if (low is not None and value < low) or (high is not None and value >= high):
        raise MemorFormatError(f"{where} = {value} is out of range [{low}, {high})")
    return value


def json_number(value: Any, where: str) -> float:
    """A finite JSON number (not a bool or string)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise MemorFormatError(f"{where} must be a number, got {value!r}")
    if not math.isfinite(value):
        raise MemorFormatError(f"{where} must be finite, got {value!r}")
    return float(value)


def _object(obj: Any, where: str, keys: Sequence[str]) -> dict[str, Any]:
    if not isinstance(obj, dict):
        raise MemorFormatError(f"{where}: expected an object, got {type(obj).__name__}")
    for k in keys:
        if k not in obj:
            raise MemorFormatError(f"{where}: missing key {k!r}")
    return obj


def _list(value: Any, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise MemorFormatError(f"{where} must be a list, got {type(value).__name__}")
    return value


# ----------------------------------------------------------------------------- anno.json
@dataclasses.dataclass(frozen=True)
class AnnoRecord:
    """Annotation `index` of anno.json (both lists): the emotions as class indices."""

    index: int
    clip: str
    character: int
    moment: float
    primary: int  # index into PRIMARY
    fine: int  # index into FINE


def read_annotations(root: PathLike) -> list[AnnoRecord]:
    """Both annotation lists, checked entry by entry and for alignment (same clip, character
    and moment at every index)."""
    path = epath.Path(root) / ANNO_FILE
    obj = _object(read_json(path), str(path), tuple(EMOTION_SETS))
    lists = {key: _list(obj[key], f"{path}: {key!r}") for key in EMOTION_SETS}
    n_p, n_f = len(lists["primary"]), len(lists["fine_grained"])
    if n_p != n_f:
        raise MemorFormatError(f"{path}: 'primary' has {n_p} entries and 'fine_grained' {n_f} "
                               f"(the lists align by index; index {min(n_p, n_f)} has no pair)")
    parsed: dict[str, list[tuple]] = {}
    for key, names in EMOTION_SETS.items():
        rows = []
        for i, a in enumerate(lists[key]):
            where = f"{path}: {key}[{i}]"
            _object(a, where, ("clip", "character", "moment", "emotion"))
            if not isinstance(a["clip"], str):
                raise MemorFormatError(f"{where}['clip'] must be a string, got {a['clip']!r}")
            char = json_int(a["character"], f"{where}['character']", low=0, high=len(SPEAKERS))
            moment = json_number(a["moment"], f"{where}['moment']")
            if a["emotion"] not in names:
                raise MemorFormatError(f"{where}['emotion']: unknown emotion {a['emotion']!r} "
                                       f"(expected one of {', '.join(names)})")
            rows.append((a["clip"], char, moment, names.index(a["emotion"])))
        parsed[key] = rows
    out = []
    for i, (p, f) in enumerate(zip(parsed["primary"], parsed["fine_grained"])):
        if p[:3] != f[:3]:
            raise MemorFormatError(
                f"{path}: fine_grained[{i}] (clip {f[0]!r}, character {f[1]}, moment {f[2]}) "
                f"does not match primary[{i}] (clip {p[0]!r}, character {p[1]}, moment {p[2]})")
        out.append(AnnoRecord(i, p[0], p[1], p[2], p[3], f[3]))
    return out


# ----------------------------------------------------------------------------- data.json
@dataclasses.dataclass(frozen=True)
class ClipInfo:
    """One clip of data.json: S segments (times in seconds of the episode)."""

    clip: str
    start: float
    seg_start: tuple[float, ...]
    seg_end: tuple[float, ...]
    seg_ori_ind: tuple[int, ...]
    speakers: tuple[int, ...]
    on_character: tuple[int, ...]

    @property
    def num_segments(self) -> int:
        return len(self.seg_start)


def read_clips(root: PathLike) -> dict[str, ClipInfo]:
    """Every clip of data.json, checked: plain clip names, the keys of CLIP_KEYS (others are
    ignored), one entry per segment in each segment list, ids in range, finite times."""
    path = epath.Path(root) / DATA_FILE
    obj = read_json(path)
    if not isinstance(obj, dict):
        raise MemorFormatError(f"{path}: expected an object clip -> entry")
    out = {}
    for clip, entry in obj.items():
        where = f"{path}: [{clip!r}]"
        check_clip_name(clip, f"{path}: key")
        _object(entry, where, CLIP_KEYS)
        seg = {k: _list(entry[k], f"{where}[{k!r}]")
               for k in ("speakers", "seg_start", "seg_end", "seg_ori_ind")}
        sizes = {k: len(v) for k, v in seg.items()}
        if len(set(sizes.values())) != 1:
            raise MemorFormatError(f"{where}: the segment lists differ in length ({sizes})")
        n = len(SPEAKERS)
        out[clip] = ClipInfo(
            clip=clip,
            start=json_number(entry["start"], f"{where}['start']"),
            seg_start=tuple(json_number(v, f"{where}['seg_start'][{j}]")
                            for j, v in enumerate(seg["seg_start"])),
            seg_end=tuple(json_number(v, f"{where}['seg_end'][{j}]")
                          for j, v in enumerate(seg["seg_end"])),
            seg_ori_ind=tuple(json_int(v, f"{where}['seg_ori_ind'][{j}]")
                              for j, v in enumerate(seg["seg_ori_ind"])),
            speakers=tuple(json_int(v, f"{where}['speakers'][{j}]", low=0, high=n)
                           for j, v in enumerate(seg["speakers"])),
            on_character=tuple(json_int(v, f"{where}['on_character'][{j}]", low=0, high=n)
                               for j, v in enumerate(_list(entry["on_character"],
                                                           f"{where}['on_character']"))))
    return out


# ----------------------------------------------------------------------------- id files
def read_ids(root: PathLike, split: str, num_annotations: int) -> dict[int, int]:
    """{annotation index: line number} of train_id.txt or test_id.txt: one integer per
    non-blank line, in [0, num_annotations), each at most once."""
    path = epath.Path(root) / ID_FILES[split]
    out: dict[int, int] = {}
    for lineno, line in enumerate(read_text(path).splitlines(), 1):
        if not line.strip():
            continue
        try:
            index = int(line.strip())
        except ValueError:
            raise MemorFormatError(f"{path}:{lineno}: expected an annotation index, got "
                                   f"{line.strip()!r}") from None
        if not 0 <= index < num_annotations:
            raise MemorFormatError(f"{path}:{lineno}: index {index} is out of range (anno.json "
                                   f"has {num_annotations} annotations)")
        if index in out:
            raise MemorFormatError(f"{path}:{lineno}: index {index} is already on line "
                                   f"{out[index]}")
        out[index] = lineno
    return out


def read_splits(root: PathLike, num_annotations: int) -> dict[str, dict[int, int]]:
    """Both id files; an index in both is refused (naming both lines)."""
    ids = {split: read_ids(root, split, num_annotations) for split in ID_FILES}
    both = sorted(set(ids["train"]) & set(ids["test"]))
    if both:
        i = both[0]
        raise MemorFormatError(
            f"{epath.Path(root) / ID_FILES['test']}:{ids['test'][i]}: index {i} is also in "
            f"{ID_FILES['train']} (line {ids['train'][i]}); {len(both)} index(es) are in both "
            "lists")
    return ids


# ----------------------------------------------------------------------------- vectors
_WS = re.compile(r"[ \t\n\r]*")


def _position(text: str, pos: int) -> str:
    line = text.count("\n", 0, pos) + 1
    return f"{line}:{pos - (text.rfind(chr(10), 0, pos) + 1) + 1}"


def read_vectors(path: PathLike) -> tuple[dict[str, np.ndarray], int | None]:
    """({key: float32 vector}, D) of a feature JSON file {"<key>": [D numbers], ...}.

    Parsed entry by entry (each list becomes a float32 array at once, so the release's large
    audio file is never held as Python floats). Every vector must hold D finite numbers (D of
    the first entry); a duplicate key is refused. D is None for an empty object.
    """
    text = read_text(path)
    decoder = json.JSONDecoder(parse_constant=_no_constant(path))
    out: dict[str, np.ndarray] = {}
    dim: int | None = None

    def expect(pos: int, chars: str) -> tuple[str, int]:
        pos = _WS.match(text, pos).end()
        if pos >= len(text) or text[pos] not in chars:
            got = repr(text[pos]) if pos < len(text) else "the end of the file"
            raise MemorFormatError(f"{path}:{_position(text, pos)}: not valid JSON (expected "
                                   f"{' or '.join(repr(c) for c in chars)}, got {got})")
        return text[pos], pos + 1

    def decode(pos: int) -> tuple[Any, int, int]:
        pos = _WS.match(text, pos).end()
        try:
            value, end = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as e:
            raise _json_error(path, e) from None
        return value, pos, end

    _, pos = expect(0, "{")
    if _WS.match(text, pos).end() < len(text) and text[_WS.match(text, pos).end()] == "}":
        _, pos = expect(pos, "}")
    else:
        while True:
            key, _, pos = decode(pos)
            if not isinstance(key, str):
                raise MemorFormatError(f"{path}: key {key!r} is not a string")
            _, pos = expect(pos, ":")
            value, vstart, pos = decode(pos)
            where = f"{path}: [{key!r}]"
            if key in out:
                raise MemorFormatError(f"{where}: duplicate key")
            raw = text[vstart:pos]
            if (not isinstance(value, list) or '"' in raw or "[" in raw[1:]
                    or any(word in raw for word in ("true", "false", "null"))):
                raise MemorFormatError(f"{where}: expected a list of numbers")
            vec = float_array(np.asarray(value, np.float64), where, error=MemorFormatError,
                              note=False)
            if dim is None:
                dim = vec.size
            elif vec.size != dim:
                raise MemorFormatError(f"{where}: vector of length {vec.size}, the first entry "
                                       f"of the file has {dim}")
            out[key] = vec
            sep, pos = expect(pos, ",}")
            if sep == "}":
                break
    end = _WS.match(text, pos).end()
    if end != len(text):
        raise MemorFormatError(f"{path}:{_position(text, end)}: not valid JSON (extra data)")
    return out, dim


# ----------------------------------------------------------------------------- personality
def read_personality(root: PathLike) -> np.ndarray:
    """Raw personality rows float64 [8, Dp] (line i = SPEAKERS[i]) of the release."""
    return read_personality_file(epath.Path(root) / PERSONALITY_FILE)


def read_personality_file(path: PathLike) -> np.ndarray:
    """Raw personality rows float64 [8, Dp] of a CSV of 8 lines of numbers (line i =
    SPEAKERS[i]); blank lines are skipped."""
    path = epath.Path(path)
    rows, lines = [], []
    for lineno, line in enumerate(read_text(path).splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = [float(v) for v in line.split(",")]
        except ValueError:
            raise MemorFormatError(f"{path}:{lineno}: expected comma-separated numbers"
                                   ) from None
        if not all(math.isfinite(v) for v in row):
            raise MemorFormatError(f"{path}:{lineno}: holds NaN or inf values")
        if rows and len(row) != len(rows[0]):
            raise MemorFormatError(f"{path}:{lineno}: {len(row)} values, line {lines[0]} has "
                                   f"{len(rows[0])}")
        rows.append(row)
        lines.append(lineno)
    if len(rows) != len(SPEAKERS):
        raise MemorFormatError(f"{path}: {len(rows)} lines, expected {len(SPEAKERS)} (one per "
                               f"character: {', '.join(SPEAKERS)})")
    return np.asarray(rows, np.float64)


def normalise_personality(raw: np.ndarray) -> np.ndarray:
    """Each column divided by its L2 norm over the 8 characters (norm floored at 1e-12), as
    the authors' loader does (torch F.normalize(dim=0)); float32 out. Computed in float64
    (the authors' loader computes in float32: differences are rounding only)."""
    x = np.asarray(raw, np.float64)
    norm = np.maximum(np.sqrt((x * x).sum(axis=0, keepdims=True)), 1e-12)
    return (x / norm).astype(np.float32)


# ----------------------------------------------------------------------------- visual files
_FACE_NAME = re.compile(r"(\d+)_([^_]+)\.jpg", re.IGNORECASE)


def read_face_names(path: PathLike) -> list[tuple[int, str]]:
    """(frame, name lower-cased) of every face crop of a clip, in the order of the rows of its
    face tensor. The file holds one line of tab-separated ``<frame>_<Name>.jpg`` (an empty
    file: no faces)."""
    lines = [ln for ln in read_text(path).splitlines() if ln.strip()]
    if len(lines) > 1:
        raise MemorFormatError(f"{path}: {len(lines)} non-blank lines, expected one line of "
                               "tab-separated face image names")
    out = []
    for i, entry in enumerate(lines[0].strip().split("\t") if lines else []):
        m = _FACE_NAME.fullmatch(entry)
        if m is None:
            raise MemorFormatError(f"{path}: entry {i} {entry!r} is not '<frame>_<Name>.jpg'")
        out.append((int(m.group(1)), m.group(2).lower()))
    return out


def read_tensor(path: PathLike) -> np.ndarray:
    """A float32 [n, D] tensor of a .pt file (finite; read without torch, nothing but tensors
    and plain containers is unpickled)."""
    path = epath.Path(path)
    if not path.is_file():
        raise MemorFormatError(f"{path}: file not found")
    try:
        x = read_torch_file(str(path))
    except FormatError as e:
        raise MemorFormatError(str(e)) from None
    if not isinstance(x, np.ndarray) or x.ndim != 2:
        got = f"shape {x.shape}" if isinstance(x, np.ndarray) else type(x).__name__
        raise MemorFormatError(f"{path}: expected one tensor [n, D], got {got}")
    return float_array(x, f"{path}: tensor", error=MemorFormatError)


def check_dim(path: PathLike, x: np.ndarray, dims: Mapping[str, int], part: str) -> None:
    """Refuses a feature of size other than the build's `dims[part]`."""
    if x.shape[-1] != dims[part]:
        raise MemorFormatError(f"{path}: {part} features of size {x.shape[-1]}, the build uses "
                               f"{dims[part]}")
