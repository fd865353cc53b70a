"""What the moviegraphs_lirec build reads from a manual_dir, checked before anything is written,
and what it records and reports.

`plan_release` reads `others/split.json` and every movie's `lirec_labels/<movie>.json`, and for
each labelled scene decides which files the build reads (`SceneFiles`). A file the annotations
reference that is missing is a `LirecFormatError` naming it, unless the user passed
`jaxaffect build ... --allow absent_modality`: then its modality is absent and the file is
counted and listed (`BuildNotes`). `load_scene` reads one scene's files; a subtitle file that is
not UTF-8 is skipped (the scene has no text), counted and listed. `BuildNotes.metadata` is what
metadata.json keeps; `BuildNotes.report` the lines printed at the end of the build. Every id or
name that becomes a path goes through `release_format.release_path` (stays inside manual_dir).
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from etils import epath

from jaxaffect.data.release_files import allowed
from jaxaffect.families.lirec import release_format as lf
from jaxaffect.families.lirec import release_labels as rl

ABSENT_MODALITY = "absent_modality"  # the allowance (jaxaffect build --allow absent_modality)
LISTED = 20  # files listed per kind in metadata.json (all are counted)
SHOWN = 3  # files shown per kind in the end-of-build report


def _listing() -> dict[str, Any]:
    return {"count": 0, "files": []}


@dataclasses.dataclass
class BuildNotes:
    """What the build records in metadata.json and reports at its end: skipped interactions,
    examples without a modality, files treated as absent (allowed), subtitles that are not
    UTF-8 and other problems. Paths are relative to the manual_dir."""

    root: epath.Path
    skipped: list[dict[str, str]] = dataclasses.field(default_factory=list)
    missing: dict[str, int] = dataclasses.field(
        default_factory=lambda: {"visual": 0, "text": 0, "tracks": 0})
    problems: list[dict[str, str]] = dataclasses.field(default_factory=list)
    absent_files: dict[str, Any] = dataclasses.field(default_factory=_listing)
    subtitles_not_utf8: dict[str, Any] = dataclasses.field(default_factory=_listing)

    def rel(self, path: lf.PathLike) -> str:
        """`path` relative to the manual_dir (as given when it lies elsewhere)."""
        p, root = os.path.abspath(os.fspath(path)), os.path.abspath(os.fspath(self.root))
        return os.path.relpath(p, root) if p.startswith(root + os.sep) else str(path)

    def absent(self, path: lf.PathLike, what: str) -> None:
        """A missing file the annotations reference: refused, unless absent modalities are
        allowed (then counted and listed; the caller treats its modality as absent)."""
        if not allowed(ABSENT_MODALITY):
            raise lf.LirecFormatError(
                f"{path}: file not found ({what}; `jaxaffect build --allow {ABSENT_MODALITY}` "
                "treats its modality as absent)")
        _add(self.absent_files, self.rel(path))

    def not_utf8(self, path: lf.PathLike, error: Exception) -> None:
        _add(self.subtitles_not_utf8, str(error).replace(str(path), self.rel(path), 1))

    def problem(self, path: lf.PathLike, reason: str) -> None:
        self.problems.append({"file": self.rel(path), "reason": reason})

    def metadata(self) -> dict[str, Any]:
        """The metadata.json entries (the same objects, filled while the splits are written)."""
        return {"skipped": self.skipped, "missing_modalities": self.missing,
                "problems": self.problems, "absent_files": self.absent_files,
                "subtitles_not_utf8": self.subtitles_not_utf8}

    def report(self, name: str = "moviegraphs_lirec") -> list[str]:
        """One line per kind of input that was let through (empty when there was none)."""
        lines = []
        for key, what in (
                ("absent_files", f"missing file(s) the labels reference, allowed by --allow "
                 f"{ABSENT_MODALITY} (their modality is treated as absent)"),
                ("subtitles_not_utf8", "subtitle file(s) not UTF-8, skipped (their scene has "
                 "no text)")):
            listing = getattr(self, key)
            if listing["count"]:
                lines.append(f"{name}: {listing['count']} {what}: "
                             f"{_first(listing['files'], listing['count'])} "
                             f"(metadata.json '{key}')")
        for key, items, what in (
                ("problems", self.problems, "problem(s)"),
                ("skipped", self.skipped, "interaction(s) skipped")):
            if items:
                shown = [f"{i.get('file') or i.get('clip')}: {i['reason']}" for i in items]
                lines.append(f"{name}: {len(items)} {what}: {_first(shown, len(items))} "
                             f"(metadata.json '{key}')")
        return lines


def _add(listing: dict[str, Any], entry: str) -> None:
    listing["count"] += 1
    if len(listing["files"]) < LISTED:
        listing["files"].append(entry)


def _first(entries: Sequence[str], count: int) -> str:
    return "; ".join(entries[:SHOWN]) + (f"; ... ({count - SHOWN} more)" if count > SHOWN else "")


# ----------------------------------------------------------------------------- planning
@dataclasses.dataclass(frozen=True)
class SceneFiles:
    """The files of one labelled scene the build reads (None: that modality is absent)."""

    visual: epath.Path | None = None
    frame2time: epath.Path | None = None
    dialog: epath.Path | None = None  # set only when the BERT files exist too
    tracks: epath.Path | None = None


@dataclasses.dataclass
class MoviePlan:
    movie: str
    labels: rl.MovieLabels
    labels_file: epath.Path
    track_names: dict[str, list[str | None]]  # ftrack_ids/<movie>.json
    scenes: dict[str, SceneFiles]


def spoken(line: str) -> str:
    """A subtitle line without (), [] and <> parts (sound descriptions, markup) and a leading
    dash; empty when nothing is said."""
    line = re.sub(r"\([^)]*\)|\[[^\]]*\]|<[^>]*>", "", line).strip()
    return line[1:].strip() if line.startswith("-") else line


def _scene_files(root: epath.Path, plan: MoviePlan, scene: str, notes: BuildNotes
                 ) -> SceneFiles:
    movie = plan.movie
    where = f"{plan.labels_file}: scene {scene!r}"
    files: dict[str, epath.Path | None] = {}
    vpath = lf.visual_path(root, movie, scene, where=where)
    if vpath.exists():
        files["visual"] = vpath
        files["frame2time"] = lf.frame2time_path(root, movie, scene, where=where)
        if not files["frame2time"].exists():
            raise lf.LirecFormatError(
                f"{files['frame2time']}: file not found (frame times of {vpath.name})")
    else:
        notes.absent(vpath, f"visual features of scene {scene!r} of {plan.labels_file.name}")
    dpath = lf.dialog_path(root, movie, scene, where=where)
    bert = lf.bert_paths(root, movie, scene, where=where)
    feats = bert["layer"] if bert["layer"].exists() or not bert["all"].exists() else bert["all"]
    have = {p: p.exists() for p in (dpath, bert["tokens"], feats)}
    if all(have.values()):
        files["dialog"] = dpath
    elif not have[dpath]:
        if any(have.values()):  # BERT files of a dialogue that is not there
            notes.absent(dpath, f"subtitles of scene {scene!r}, whose BERT files exist")
    else:  # subtitles without BERT files: missing, unless nothing is said in them
        try:
            said = any(spoken(ln) for c in lf.read_dialogs(dpath) for ln in c.lines)
        except lf.LirecEncodingError as e:
            notes.not_utf8(dpath, e)
        else:
            if said:
                missing = next(p for p, ok in have.items() if not ok)
                notes.absent(missing, f"BERT features of the subtitles {dpath.name}")
    tpath = lf.ftracks_path(root, movie, scene, where=where)
    if tpath.exists():
        files["tracks"] = tpath
    elif plan.track_names.get(scene):
        notes.absent(tpath, f"face tracks named for scene {scene!r} in "
                            f"{lf.FTRACK_IDS_DIR}/{movie}.json")
    return SceneFiles(**files)


def plan_release(root: lf.PathLike, notes: BuildNotes
                 ) -> tuple[dict[str, list[str]], dict[str, MoviePlan]]:
    """(movies per released split key, plan per movie): reads split.json and the labels of
    every movie, and checks which files exist; refuses missing files (see `BuildNotes.absent`),
    ids that leave the manual_dir and malformed labels, before anything is written."""
    root = epath.Path(root)
    split_file = root / lf.SPLIT_FILE
    split = rl.read_split(split_file)
    plans: dict[str, MoviePlan] = {}
    for key, movies in split.items():
        for movie in movies:
            where = f"{split_file}: split {key!r}: movie {movie!r}"
            path = lf.labels_path(root, movie, where=where)
            if not path.exists():
                raise lf.LirecFormatError(f"{path}: file not found (the labels of movie "
                                          f"{movie!r} of {lf.SPLIT_FILE}, split {key!r})")
            labels = rl.read_movie_labels(path)
            if labels.movie_id != movie:
                raise lf.LirecFormatError(
                    f"{path}: movie_id {labels.movie_id!r} != {movie!r} (its name in "
                    f"{lf.SPLIT_FILE})")
            ids_path = lf.ftrack_ids_path(root, movie, where=where)
            plan = MoviePlan(movie, labels, path, {}, {})
            scenes = sorted({r.scene for r in labels.interactions})
            if ids_path.exists():
                plan.track_names = lf.read_ftrack_ids(ids_path)
            elif any(lf.ftracks_path(root, movie, s, where=where).exists() for s in scenes):
                notes.absent(ids_path, f"names of the face tracks of movie {movie!r}")
            for scene in scenes:
                plan.scenes[scene] = _scene_files(root, plan, scene, notes)
            if not ids_path.exists():  # allowed above: tracks without names are of no use
                plan.scenes = {s: dataclasses.replace(f, tracks=None)
                               for s, f in plan.scenes.items()}
            plans[movie] = plan
    return split, plans


def discover_dims(root: lf.PathLike, plans: Mapping[str, MoviePlan]) -> dict[str, int]:
    """Feature sizes from the first visual and BERT files (movies and scenes in sorted order)."""
    dims: dict[str, int] = {}
    for movie in sorted(plans):
        for scene, files in sorted(plans[movie].scenes.items()):
            if "visual" not in dims and files.visual is not None:
                dims["visual"] = int(lf.read_visual(files.visual).shape[1])
            if "text" not in dims and files.dialog is not None:
                dims["text"] = int(lf.read_bert(root, movie, scene)[0].shape[1])
            if len(dims) == 2:
                return {**dims, "tracks": dims["visual"]}
    for key, where in (("visual", lf.VISUAL_DIR), ("text", lf.BERT_DIR)):
        if key not in dims:
            raise lf.LirecFormatError(
                f"{epath.Path(root) / where}: no feature file for any labelled scene")
    raise AssertionError("unreachable")


# ----------------------------------------------------------------------------- loading
@dataclasses.dataclass
class Scene:
    """The arrays of one scene (None / empty: modality absent)."""

    visual: np.ndarray | None = None
    frame_times: np.ndarray | None = None
    text: np.ndarray | None = None
    cues: list[lf.Cue] | None = None
    ranges: list[range] | None = None
    tracks: list[lf.FaceTrack] = dataclasses.field(default_factory=list)
    track_names: list[str | None] = dataclasses.field(default_factory=list)


def cue_token_ranges(cues: Sequence[lf.Cue], tokens: Sequence[str]) -> list[range] | None:
    """Token rows of each cue, or None when the token file does not fit the dialogue.

    One [CLS]-sentence per cue; cues whose text is empty after removing (), [] and <> parts
    (sound descriptions, markup) may have no sentence (the released extractor skips them).
    """
    ranges = lf.sentence_token_ranges(tokens)
    if len(ranges) == len(cues):
        return ranges
    kept = [i for i, c in enumerate(cues) if any(spoken(ln) for ln in c.lines)]
    if len(ranges) == len(kept):
        out = [range(0)] * len(cues)
        for i, r in zip(kept, ranges):
            out[i] = r
        return out
    return None


def _check_dim(path: lf.PathLike, got: int, want: int, what: str) -> None:
    if got != want:
        raise lf.LirecFormatError(f"{path}: {what} size {got}, the build uses {want}")


def load_scene(root: lf.PathLike, plan: MoviePlan, scene: str, dims: Mapping[str, int],
               notes: BuildNotes) -> Scene:
    """The arrays of one planned scene; malformed files raise LirecFormatError naming them."""
    files, out = plan.scenes[scene], Scene()
    if files.visual is not None:
        out.visual = lf.read_visual(files.visual)
        _check_dim(files.visual, out.visual.shape[1], dims["visual"], "visual feature")
        out.frame_times = lf.read_frame2time(files.frame2time)
    if files.dialog is not None:
        try:
            cues = lf.read_dialogs(files.dialog)
        except lf.LirecEncodingError as e:
            notes.not_utf8(files.dialog, e)
        else:
            text, tokens = lf.read_bert(root, plan.movie, scene)
            tokens_file = lf.bert_paths(root, plan.movie, scene)["tokens"]
            _check_dim(tokens_file, text.shape[1], dims["text"], "text feature")
            ranges = cue_token_ranges(cues, tokens)
            if ranges is None:
                notes.problem(tokens_file, f"{len(lf.sentence_token_ranges(tokens))} sentences "
                                           f"for {len(cues)} cues of {files.dialog.name}; text "
                                           "treated as absent")
            else:
                out.text, out.cues, out.ranges = text, cues, ranges
    if files.tracks is not None:
        out.tracks = lf.read_ftracks(files.tracks)
        names = list(plan.track_names.get(scene, []))
        if len(names) != len(out.tracks):
            notes.problem(files.tracks, f"{len(out.tracks)} tracks but {len(names)} names in "
                                        f"{lf.FTRACK_IDS_DIR}/{plan.movie}.json; tracks "
                                        "treated as unnamed")
            names = [None] * len(out.tracks)
        out.track_names = names
    return out
