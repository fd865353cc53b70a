"""Readers of the raw-video release layouts the eMotions and Music_video builders take.

Neither dataset ships a documented file layout, so we define one (tfds_builders/emotions/ and
tfds_builders/music_video/ README.md)::

  emotions.csv      UTF-8, comma-separated, header row:
                    id,category,platform,split[,balanced_split][,test_split][,file]
  music_video.csv   id,category,split[,file]
  videos/<id>.<ext> ext one of VIDEO_SUFFIXES; or the path in the `file` column (relative to
                    the release folder)

`category` is one of EMOTIONS6 (case-insensitive); `platform` one of PLATFORMS; `split` one of
SPLITS; `balanced_split` / `test_split` one of SPLITS or empty (not in that variant). Columns
beyond these are ignored. Every refusal is one `FormatError` line starting with
"<file>:<line>" (the header is line 1) and naming the field: a missing column, an unknown
category/platform/split, a duplicate id, a missing video file, or a path that leaves the
release folder (`jaxaffect.data.release_files.inside`: no `..`, no absolute path, no symlink
outside unless allowed).
"""

from __future__ import annotations

import csv
import dataclasses
import io
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from jaxaffect.data.release_files import inside, read_utf8
from jaxaffect.errors import FormatError
from jaxaffect.families.avcpnet.emotions import EMOTIONS6

SPLITS = ("train", "validation", "test")
PLATFORMS = ("douyin", "kuaishou", "tiktok")
VIDEO_SUFFIXES = (".mp4", ".webm", ".mkv", ".mov", ".avi")
VIDEO_DIR = "videos"
EMOTIONS_CSV = "emotions.csv"
MUSIC_VIDEO_CSV = "music_video.csv"
# eMotions variants: builder config name -> the CSV column holding its split.
EMOTIONS_SPLIT_COLUMNS = {"full": "split", "balanced": "balanced_split", "test": "test_split"}
EMOTIONS_COLUMNS = ("id", "category", "platform", "split")
MUSIC_VIDEO_COLUMNS = ("id", "category", "split")
OPTIONAL_SPLIT_COLUMNS = ("balanced_split", "test_split")


@dataclasses.dataclass(frozen=True)
class ReleaseClip:
    """One row of a release table: the clip, its class, its split per split column, the video
    file and where the row is ("emotions.csv:12")."""

    video_id: str
    label: int  # index into EMOTIONS6
    platform: str  # "" for Music_video
    splits: Mapping[str, str]  # split column -> train|validation|test|"" (not in the variant)
    path: Path
    where: str


def video_file(root: str | os.PathLike, stem: str, *, where: str) -> Path:
    """The one video file `root/stem.<ext>` (ext in VIDEO_SUFFIXES), or `root/stem` itself when
    `stem` already names a file; refused naming `where` when there is none or several."""
    direct = inside(root, stem, where=where)
    if Path(stem).suffix.lower() in VIDEO_SUFFIXES and direct.is_file():
        return direct
    found = [p for p in (inside(root, stem + s, where=where) for s in VIDEO_SUFFIXES)
             if p.is_file()]
    if not found:
        suffixes = "|".join(s[1:] for s in VIDEO_SUFFIXES)
        raise FormatError(f"{where}: no video file {stem}.<{suffixes}> in "
                          f"{Path(os.fspath(root))}")
    if len(found) > 1:
        raise FormatError(f"{where}: several video files for {stem!r}: "
                          f"{', '.join(p.name for p in found)}; keep one")
    return found[0]


def _choice(value: str, allowed: Sequence[str], field: str, where: str, *,
            empty_ok: bool = False) -> str:
    v = value.strip().lower()
    if not v and empty_ok:
        return ""
    if v not in allowed:
        shown = repr(value) if value.strip() else "empty"
        raise FormatError(f"{where}: field {field!r}: {shown} is not one of "
                          f"{', '.join(allowed)}")
    return v


def _header(rows: list[list[str]], path: Path, required: Sequence[str]) -> list[str]:
    if not rows:
        raise FormatError(f"{path}: empty file (expected a header row "
                          f"{','.join(required)}...)")
    header = [h.strip().lower() for h in rows[0]]
    dup = sorted({h for h in header if header.count(h) > 1})
    if dup:
        raise FormatError(f"{path}:1: column {dup[0]!r} appears more than once in the header")
    for col in required:
        if col not in header:
            raise FormatError(f"{path}:1: missing column {col!r} (header: {','.join(header)}; "
                              f"required: {','.join(required)})")
    return header


def read_table(manual_dir: str | os.PathLike, csv_name: str, required: Sequence[str], *,
               platform: bool) -> list[ReleaseClip]:
    """Every row of `csv_name` in `manual_dir`, checked (see the module doc), in file order."""
    path = inside(manual_dir, csv_name, where=os.fspath(manual_dir))
    if not path.is_file():
        raise FormatError(f"{path}: release table not found (expected header "
                          f"{','.join(required)}[,file])")
    reader = csv.reader(io.StringIO(read_utf8(path), newline=""))
    try:
        rows = [(reader.line_num, row) for row in reader]
    except csv.Error as e:
        raise FormatError(f"{path}:{reader.line_num}: not valid CSV ({e})") from None
    header = _header([r for _, r in rows[:1]], path, required)
    column = {name: i for i, name in enumerate(header)}
    split_columns = [c for c in ("split", *OPTIONAL_SPLIT_COLUMNS) if c in column]
    seen: dict[str, str] = {}
    clips = []
    for line, row in rows[1:]:
        where = f"{path}:{line}"
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            raise FormatError(f"{where}: {len(row)} fields, the header has {len(header)}")
        cell = {name: row[i] for name, i in column.items()}
        vid = cell["id"].strip()
        if not vid:
            raise FormatError(f"{where}: field 'id' is empty")
        if vid in seen:
            raise FormatError(f"{where}: field 'id': duplicate id {vid!r} (first at "
                              f"{seen[vid]})")
        seen[vid] = where
        category = _choice(cell["category"], EMOTIONS6, "category", where)
        plat = _choice(cell["platform"], PLATFORMS, "platform", where) if platform else ""
        splits = {c: _choice(cell[c], SPLITS, c, where, empty_ok=c != "split")
                  for c in split_columns}
        listed = cell.get("file", "").strip()
        if listed:
            video = inside(manual_dir, listed, where=f"{where}: field 'file'")
            if not video.is_file():
                raise FormatError(f"{where}: field 'file': video file {listed} not found in "
                                  f"{Path(os.fspath(manual_dir))}")
        else:
            video = video_file(manual_dir, f"{VIDEO_DIR}/{vid}", where=f"{where}: field 'id'")
        clips.append(ReleaseClip(vid, EMOTIONS6.index(category), plat, splits, video, where))
    if not clips:
        raise FormatError(f"{path}: no clips listed (only the header)")
    return clips


def clips_by_split(clips: Sequence[ReleaseClip], column: str, csv_path: str | os.PathLike,
                   config: str) -> dict[str, list[ReleaseClip]]:
    """{split: clips} of split column `column`, splits in SPLITS order and only those present;
    refused when the column is absent or empty in every row (config `config` needs it)."""
    if not clips or column not in clips[0].splits:
        raise FormatError(f"{csv_path}: column {column!r} is absent (config {config!r} "
                          "reads its split from it)")
    out = {s: [c for c in clips if c.splits[column] == s] for s in SPLITS}
    out = {s: cs for s, cs in out.items() if cs}
    if not out:
        raise FormatError(f"{csv_path}: column {column!r} is empty in every row (config "
                          f"{config!r} reads its split from it)")
    return out


def read_emotions(manual_dir: str | os.PathLike, config: str = "full"
                  ) -> dict[str, list[ReleaseClip]]:
    """{split: clips} of the eMotions release for variant `config` (full | balanced | test)."""
    if config not in EMOTIONS_SPLIT_COLUMNS:
        raise ValueError(f"unknown eMotions variant {config!r}; one of "
                         f"{sorted(EMOTIONS_SPLIT_COLUMNS)}")
    clips = read_table(manual_dir, EMOTIONS_CSV, EMOTIONS_COLUMNS, platform=True)
    csv_path = Path(os.fspath(manual_dir)) / EMOTIONS_CSV
    return clips_by_split(clips, EMOTIONS_SPLIT_COLUMNS[config], csv_path, config)


def read_music_video(manual_dir: str | os.PathLike) -> dict[str, list[ReleaseClip]]:
    """{split: clips} of the Music_video release."""
    clips = read_table(manual_dir, MUSIC_VIDEO_CSV, MUSIC_VIDEO_COLUMNS, platform=False)
    csv_path = Path(os.fspath(manual_dir)) / MUSIC_VIDEO_CSV
    return clips_by_split(clips, "split", csv_path, "default")
