"""Readers and writers of the LIReC (Kukleva et al., CVPR 2020) MovieGraphs release layout.

The release (``Annusha/LIReC``, README "download the data") is a folder ``data_root`` with::

  features/spat_i3d/<movie>/<scene>.npy            float [T, Dv, H, W] spatial clip features, one
                                                   step per 16 video frames (or [T, Dv] pooled)
  features/bert/bert_base/<movie>/<movie>_<NNN>.npy        float [N, 12 * 768] all BERT layers
  features/bert/bert_base/<movie>/<movie>_<NNN>.token2idx  "token index" per line, one per row
  features/bert/bert_base/second-to-last/<movie>/<movie>_<NNN>.npy  float [N, 768] (the layer used)
  frame2time/<movie>/<scene>.matidx                "frame seconds" per line
  dialogs/<movie>/<scene>.webvtt                   subtitles of the scene
  ftracks/<movie>/<scene>.json                     {"ftracks": [[{frame, timestamp, x, y, w, h}]]}
  ftrack_ids/<movie>.json                          {<scene>: [character name or null per track]}
  intersections/intersected_<movie>_<n>.csv        interaction name, names overlapping it (IoU>0.2)
  others/split.json                                {"train"|"val"|"test": [movie ids]}
  others/merged_interactions.txt                   merged name <TAB> original names (101 lines)
  others/relships_many2_15.txt                     original relationship words ... 15-class name
  others/relships_15_opp.txt                       "relationship opposite" per line
  others/org_res.txt                               "movie height width" per line
  others/mg3.pkl                                   MovieGraphs graphs (labels; old networkx pickle)

``<scene>`` is a MovieGraphs clip file stem such as ``scene-002.ss-0009.es-0020`` and ``<NNN>``
its zero-padded scene number. The labels (interaction time spans, characters, relationships)
exist only inside ``mg3.pkl``; ``tfds_builders/moviegraphs_lirec/export_moviegraphs_labels.py``
turns it once into plain ``lirec_labels/<movie>.json`` files (``release_labels.MovieLabels``),
which is all the builder reads. This module holds the layout (paths), the shared text/JSON
helpers and the per-clip files; ``release_labels`` the ``others/`` and ``lirec_labels/`` files.
Everything is pure python/numpy; errors are :class:`LirecFormatError` naming the file (and line
or key). Text files must be UTF-8; every path built from an id or name read from a file stays
inside the release folder (``jaxaffect.data.release_files.inside``); feature arrays must hold
finite floats.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from etils import epath

from jaxaffect.data.release_files import float_array, inside, read_utf8
from jaxaffect.errors import FormatError

VISUAL_DIR = "features/spat_i3d"
BERT_DIR = "features/bert/bert_base"
BERT_LAYER_DIR = "second-to-last"
BERT_LAYERS = 12  # bert-base: the full-layer file holds 12 concatenated layers per token
FRAME2TIME_DIR = "frame2time"
DIALOG_DIR = "dialogs"
FTRACKS_DIR = "ftracks"
FTRACK_IDS_DIR = "ftrack_ids"
INTERSECTIONS_DIR = "intersections"
OTHERS_DIR = "others"
LABELS_DIR = "lirec_labels"
SPLIT_FILE = "others/split.json"
MERGED_INTERACTIONS_FILE = "others/merged_interactions.txt"
RELATIONSHIP_MAP_FILE = "others/relships_many2_15.txt"
RELATIONSHIP_OPPOSITES_FILE = "others/relships_15_opp.txt"
ORG_RES_FILE = "others/org_res.txt"
FRAMES_PER_STEP = 16  # released sampling_fr = 0.0625: one visual feature per 16 frames
# Released split keys -> TFDS split names.
SPLITS: dict[str, str] = {"train": "train", "val": "validation", "test": "test"}
CLS_TOKEN = "[CLS]"

PathLike = str | epath.PathLike
Where = str | None  # what named a path (file and key), for error messages


class LirecFormatError(FormatError):
    """A file of a LIReC manual_dir is missing or malformed; the message names the file."""


class LirecEncodingError(LirecFormatError):
    """A text file of the release is not UTF-8 (the message names the file and line)."""


def _path(path: PathLike) -> epath.Path:
    return epath.Path(path)


def read_text(path: PathLike) -> str:
    """The file's text; LirecFormatError if it is missing, LirecEncodingError (with the line)
    if it is not UTF-8 (a leading byte-order mark is dropped)."""
    path = _path(path)
    if not path.exists():
        raise LirecFormatError(f"{path}: file not found")
    try:
        return read_utf8(path)
    except FormatError as e:
        raise LirecEncodingError(str(e)) from None


def write_text(path: PathLike, text: str) -> None:
    """Writes `text`, creating parent folders."""
    path = _path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def read_json(path: PathLike) -> Any:
    """The parsed JSON file; LirecFormatError (with the line) if missing or invalid. NaN and
    Infinity, which Python would accept, are refused."""
    def no_constant(name: str) -> Any:
        raise LirecFormatError(f"{path}: not valid JSON ({name} is not a JSON number)")

    try:
        return json.loads(read_text(path), parse_constant=no_constant)
    except json.JSONDecodeError as e:
        raise LirecFormatError(f"{path}:{e.lineno}:{e.colno}: not valid JSON ({e.msg})"
                               ) from None


def write_json(path: PathLike, obj: Any) -> None:
    """Writes `obj` as indented JSON with sorted keys."""
    write_text(path, json.dumps(obj, indent=1, sort_keys=True) + "\n")


# ----------------------------------------------------------------------------- paths
_SCENE = re.compile(r"scene-(\d+)")


def scene_number(scene: str) -> int:
    """The scene number of a clip stem ``scene-002.ss-0009.es-0020`` (-> 2)."""
    m = _SCENE.match(scene)
    if m is None:
        raise LirecFormatError(f"scene name {scene!r} does not start with 'scene-<number>'")
    return int(m.group(1))


def check_plain_name(name: str, where: str) -> str:
    """`name` (a movie id or scene name that becomes a folder or file name) when it is one
    plain path component; else LirecFormatError naming `where` (file and key)."""
    if (not isinstance(name, str) or not name or name in (".", "..") or "/" in name
            or "\\" in name or "\0" in name or name != name.strip()):
        raise LirecFormatError(f"{where}: {name!r} is not a plain file name (ids and scene "
                               "names become paths inside the release folder)")
    return name


def release_path(root: PathLike, relative: str, where: str) -> epath.Path:
    """`root / relative`, refused (LirecFormatError naming `where`) when it leaves `root`:
    `..`, an absolute path, or a symlink out (unless `--allow symlinks`)."""
    try:
        return epath.Path(inside(root, relative, where=where))
    except FormatError as e:
        raise LirecFormatError(str(e)) from None


def _scene_path(root: PathLike, folder: str, movie: str, name: str, where: Where) -> epath.Path:
    return release_path(root, f"{folder}/{movie}/{name}",
                        where or f"movie {movie!r}, file {name!r}")


def visual_path(root: PathLike, movie: str, scene: str, *, where: Where = None) -> epath.Path:
    return _scene_path(root, VISUAL_DIR, movie, f"{scene}.npy", where)


def frame2time_path(root: PathLike, movie: str, scene: str, *, where: Where = None) -> epath.Path:
    return _scene_path(root, FRAME2TIME_DIR, movie, f"{scene}.matidx", where)


def bert_paths(root: PathLike, movie: str, scene: str, *, where: Where = None
               ) -> dict[str, epath.Path]:
    """{"layer": second-to-last [N, D], "all": all layers [N, 12 D], "tokens": token2idx}."""
    stem = f"{movie}_{scene_number(scene):03d}"
    return {"layer": _scene_path(root, f"{BERT_DIR}/{BERT_LAYER_DIR}", movie, f"{stem}.npy",
                                 where),
            "all": _scene_path(root, BERT_DIR, movie, f"{stem}.npy", where),
            "tokens": _scene_path(root, BERT_DIR, movie, f"{stem}.token2idx", where)}


def dialog_path(root: PathLike, movie: str, scene: str, *, where: Where = None) -> epath.Path:
    return _scene_path(root, DIALOG_DIR, movie, f"{scene}.webvtt", where)


def ftracks_path(root: PathLike, movie: str, scene: str, *, where: Where = None) -> epath.Path:
    return _scene_path(root, FTRACKS_DIR, movie, f"{scene}.json", where)


def ftrack_ids_path(root: PathLike, movie: str, *, where: Where = None) -> epath.Path:
    return release_path(root, f"{FTRACK_IDS_DIR}/{movie}.json", where or f"movie {movie!r}")


def intersections_path(root: PathLike, movie: str, scene: str, *, where: Where = None
                       ) -> epath.Path:
    return release_path(root, f"{INTERSECTIONS_DIR}/intersected_{movie}_"
                        f"{scene_number(scene)}.csv", where or f"movie {movie!r}")


def labels_path(root: PathLike, movie: str, *, where: Where = None) -> epath.Path:
    return release_path(root, f"{LABELS_DIR}/{movie}.json", where or f"movie {movie!r}")


# ----------------------------------------------------------------------------- features
def _load_npy(path: PathLike) -> np.ndarray:
    path = _path(path)
    if not path.exists():
        raise LirecFormatError(f"{path}: file not found")
    try:
        with path.open("rb") as f:
            x = np.load(f, allow_pickle=False)
    except Exception as e:  # ValueError (pickled/corrupt), OSError, EOFError
        raise LirecFormatError(f"{path}: not a readable .npy file ({type(e).__name__}: "
                               f"{e})") from None
    # Strings, objects, ints, NaN/inf and values beyond float32 are refused; float32 out.
    return float_array(x, f"{path}: array", error=LirecFormatError)


def _save_npy(path: PathLike, x: np.ndarray) -> None:
    path = _path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as f:
        np.save(f, x)


def read_visual(path: PathLike) -> np.ndarray:
    """Clip features float32 [T, Dv, H, W] (spatial grid) or [T, Dv] (already pooled)."""
    x = _load_npy(path)
    if x.ndim not in (2, 4) or x.shape[0] == 0:
        raise LirecFormatError(f"{path}: expected [T, D] or [T, D, H, W] with T>0, got {x.shape}")
    return x


def write_visual(path: PathLike, features: np.ndarray) -> None:
    _save_npy(path, np.asarray(features, np.float32))


def read_frame2time(path: PathLike) -> np.ndarray:
    """Seconds of every video frame, float64 [F] indexed by frame number (0..F-1)."""
    frames, times = [], []
    for i, line in enumerate(read_text(path).splitlines(), 1):
        words = line.split()
        if not words:
            continue
        try:
            f, t = words
            frames.append(int(f))
            times.append(float(t))
        except ValueError:
            raise LirecFormatError(f"{path}:{i}: expected 'frame seconds'") from None
        if not np.isfinite(times[-1]):
            raise LirecFormatError(f"{path}:{i}: time {t!r} is not a finite number")
    if frames != list(range(len(frames))) or not frames:
        raise LirecFormatError(f"{path}: frames must be numbered 0, 1, 2, ... without gaps")
    return np.asarray(times, np.float64)


def write_frame2time(path: PathLike, times: np.ndarray) -> None:
    write_text(path, "".join(f"{i} {t:.3f}\n" for i, t in enumerate(np.asarray(times))))


def read_token2idx(path: PathLike) -> list[str]:
    """Tokens of a scene's dialogue, in feature-row order (file lines 'token row')."""
    tokens: list[str] = []
    for i, line in enumerate(read_text(path).splitlines(), 1):
        words = line.split()
        if not words:
            continue
        if len(words) != 2 or words[1] != str(len(tokens)):
            raise LirecFormatError(f"{path}:{i}: expected '<token> {len(tokens)}'")
        tokens.append(words[0])
    return tokens


def write_token2idx(path: PathLike, tokens: Sequence[str]) -> None:
    write_text(path, "".join(f"{t} {i}\n" for i, t in enumerate(tokens)))


def sentence_token_ranges(tokens: Sequence[str]) -> list[range]:
    """Rows of each dialogue sentence: a sentence starts at every [CLS] token."""
    starts = [i for i, t in enumerate(tokens) if t == CLS_TOKEN]
    ends = starts[1:] + [len(tokens)]
    return [range(s, e) for s, e in zip(starts, ends)]


def read_bert(root: PathLike, movie: str, scene: str, *, where: Where = None
              ) -> tuple[np.ndarray, list[str]]:
    """(token features float32 [N, D] of the second-to-last BERT layer, tokens [N]).

    Prefers the released ``second-to-last/`` file; otherwise takes layer -2 of the all-layer
    file (``[N, 12 D]``). Raises LirecFormatError when neither exists or the rows disagree.
    """
    paths = bert_paths(root, movie, scene, where=where)
    tokens = read_token2idx(paths["tokens"])
    if paths["layer"].exists():
        x, src = _load_npy(paths["layer"]), paths["layer"]
    elif paths["all"].exists():
        src = paths["all"]
        x = _load_npy(src)
        if x.ndim != 2 or x.shape[1] % BERT_LAYERS:
            raise LirecFormatError(f"{src}: expected [N, {BERT_LAYERS} * D], got {x.shape}")
        x = x.reshape(x.shape[0], BERT_LAYERS, -1)[:, -2]
    else:
        raise LirecFormatError(f"{paths['layer']}: file not found (nor {paths['all']})")
    if x.ndim != 2 or x.shape[0] != len(tokens):
        raise LirecFormatError(
            f"{src}: {x.shape} rows do not match the {len(tokens)} tokens of {paths['tokens']}")
    return x, tokens


def write_bert(root: PathLike, movie: str, scene: str, features: np.ndarray,
               tokens: Sequence[str]) -> None:
    """Writes the second-to-last layer file and the token index of one scene."""
    paths = bert_paths(root, movie, scene)
    if len(tokens) != len(features):
        raise ValueError(f"{len(tokens)} tokens but {len(features)} feature rows")
    _save_npy(paths["layer"], np.asarray(features, np.float32))
    write_token2idx(paths["tokens"], tokens)


# ----------------------------------------------------------------------------- dialogs
@dataclasses.dataclass(frozen=True)
class Cue:
    """One dialogue sentence of a .webvtt file: its time span (seconds) and text lines."""

    start: float
    end: float
    lines: tuple[str, ...]


_TIME = re.compile(r"^(?:(\d+):)?(\d{1,2}):(\d{1,2})(?:[.,](\d{1,3}))?$")


def parse_timestamp(text: str) -> float:
    """Seconds of 'HH:MM:SS.mmm' or 'MM:SS.mmm' (',' accepted for '.')."""
    m = _TIME.match(text.strip())
    if m is None:
        raise ValueError(f"bad timestamp {text!r}")
    h, mi, s, ms = m.groups()
    return int(h or 0) * 3600 + int(mi) * 60 + int(s) + (int(ms.ljust(3, "0")) / 1000 if ms else 0)


def format_timestamp(seconds: float) -> str:
    ms = int(round(seconds * 1000))
    return f"{ms // 3600000:02d}:{ms // 60000 % 60:02d}:{ms // 1000 % 60:02d}.{ms % 1000:03d}"


def parse_webvtt(text: str, path: PathLike = "<webvtt>") -> list[Cue]:
    """Dialogue sentences of a subtitle file.

    A cue is a '-->' timing line and the non-empty lines after it. As in the paper (Sec. 4.1),
    a cue whose text ends with '...' continues into the next cue: the two become one sentence
    spanning both times (the '...' is dropped). A header ('WEBVTT'), NOTE/STYLE blocks and cue
    identifiers are ignored. Cue settings after the end time are ignored.
    """
    cues: list[Cue] = []
    pending: Cue | None = None
    block: list[str] = []
    timing: tuple[float, float] | None = None

    def close() -> None:
        nonlocal pending, timing, block
        if timing is not None:
            lines = tuple(ln.strip() for ln in block if ln.strip())
            if pending is not None:
                cue = Cue(pending.start, timing[1], pending.lines + lines)
            else:
                cue = Cue(timing[0], timing[1], lines)
            if lines and lines[-1].endswith("..."):
                pending = Cue(cue.start, cue.end, cue.lines[:-1] + (lines[-1][:-3].rstrip(),))
            else:
                cues.append(cue)
                pending = None
        timing, block = None, []

    for i, raw in enumerate(text.replace("\r\n", "\n").replace("\r", "\n").split("\n"), 1):
        line = raw.strip("\ufeff")
        if "-->" in line:
            close()
            left, right = line.split("-->", 1)
            try:
                timing = (parse_timestamp(left), parse_timestamp(right.split()[0]))
            except (ValueError, IndexError) as e:
                raise LirecFormatError(f"{path}:{i}: bad cue timing {line.strip()!r}") from e
            if timing[1] < timing[0]:
                raise LirecFormatError(f"{path}:{i}: cue ends before it starts")
        elif not line.strip():
            close()
        elif timing is not None:
            block.append(line)
    close()
    if pending is not None:  # a file ending with '...'
        cues.append(pending)
    return cues


def read_dialogs(path: PathLike) -> list[Cue]:
    return parse_webvtt(read_text(path), path)


def write_webvtt(path: PathLike, cues: Sequence[Cue]) -> None:
    blocks = ["WEBVTT\n"]
    for c in cues:
        blocks.append(f"{format_timestamp(c.start)} --> {format_timestamp(c.end)}\n"
                      + "".join(f"{ln}\n" for ln in c.lines))
    write_text(path, "\n".join(blocks))


# ----------------------------------------------------------------------------- face tracks
@dataclasses.dataclass
class FaceTrack:
    """One face track: per detection the frame, its time (s) and the box (x, y, w, h)."""

    frames: np.ndarray  # int64 [n]
    times: np.ndarray  # float64 [n]
    boxes: np.ndarray  # float32 [n, 4]


def json_number(value: Any, where: str, *, integer: bool = False) -> float:
    """A finite JSON number (not a string, bool or null); `integer`: a whole number >= 0."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise LirecFormatError(f"{where} must be a number, got {value!r}")
    if not np.isfinite(value):
        raise LirecFormatError(f"{where} must be finite, got {value!r}")
    if integer and (value < 0 or value != int(value)):
        raise LirecFormatError(f"{where} must be a whole number >= 0, got {value!r}")
    return value


def read_ftracks(path: PathLike) -> list[FaceTrack]:
    """Face tracks of a scene; every detection needs numeric frame, timestamp, x, y, w, h."""
    obj = read_json(path)
    if not isinstance(obj, dict) or not isinstance(obj.get("ftracks"), list):
        raise LirecFormatError(f"{path}: expected an object with a list 'ftracks'")
    tracks = []
    for k, track in enumerate(obj["ftracks"]):
        if not isinstance(track, list):
            raise LirecFormatError(f"{path}: ftracks[{k}]: expected a list of detections")
        rows = []
        for j, d in enumerate(track):
            where = f"{path}: ftracks[{k}][{j}]"
            if not isinstance(d, dict):
                raise LirecFormatError(f"{where}: expected an object")
            missing = [c for c in ("frame", "timestamp", *"xywh") if c not in d]
            if missing:
                raise LirecFormatError(f"{where}: missing key {missing[0]!r}")
            rows.append((json_number(d["frame"], f"{where}['frame']", integer=True),
                         *(json_number(d[c], f"{where}[{c!r}]") for c in ("timestamp", *"xywh"))))
        arr = np.asarray(rows, np.float64).reshape(-1, 6)
        times = arr[:, 1]
        if np.any(np.diff(times) < 0):
            raise LirecFormatError(f"{path}: ftracks[{k}]: timestamps are not sorted")
        tracks.append(FaceTrack(arr[:, 0].astype(np.int64), times,
                                float_array(arr[:, 2:], f"{path}: ftracks[{k}] boxes",
                                            error=LirecFormatError, note=False)))
    return tracks


def write_ftracks(path: PathLike, tracks: Sequence[FaceTrack]) -> None:
    out = []
    for t in tracks:
        out.append([{"frame": int(f), "timestamp": round(float(s), 3),
                     **{c: round(float(v), 2) for c, v in zip("xywh", b)}}
                    for f, s, b in zip(t.frames, t.times, t.boxes)])
    write_json(path, {"ftracks": out})


def read_ftrack_ids(path: PathLike) -> dict[str, list[str | None]]:
    """Scene -> character name (lower-cased) or None per track of ftracks/<movie>/<scene>."""
    obj = read_json(path)
    if not isinstance(obj, dict):
        raise LirecFormatError(f"{path}: expected an object scene -> list of names")
    out: dict[str, list[str | None]] = {}
    for scene, names in obj.items():
        if not isinstance(names, list) or not all(n is None or isinstance(n, str) for n in names):
            raise LirecFormatError(f"{path}: scene {scene!r}: expected a list of names or null")
        out[scene] = [None if n is None else n.lower() for n in names]
    return out


def write_ftrack_ids(path: PathLike, ids: Mapping[str, Sequence[str | None]]) -> None:
    write_json(path, {k: list(v) for k, v in ids.items()})


# ----------------------------------------------------------------------------- intersections
def read_intersections(path: PathLike) -> dict[str, list[str]]:
    """Interaction name -> names of the interactions overlapping it in the scene (CSV rows)."""
    out: dict[str, list[str]] = {}
    for row in csv.reader(io.StringIO(read_text(path))):
        if row:
            out[row[0]] = [r for r in row[1:] if r]
    return out


def write_intersections(path: PathLike, rows: Mapping[str, Sequence[str]]) -> None:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    for name, others in rows.items():
        writer.writerow([name, *others])
    write_text(path, buf.getvalue())
