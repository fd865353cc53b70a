"""Readers and writers of the movie-level LIReC files: ``others/`` and ``lirec_labels/``.

``others/`` holds the split, the interaction and relationship vocabularies and the video
resolutions; ``lirec_labels/<movie>.json`` the labels exported from ``mg3.pkl``
(:class:`MovieLabels`). The layout, paths and per-clip files are in ``release_format``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

from jaxaffect.families.lirec.release_format import (
    SPLITS,
    LirecFormatError,
    PathLike,
    read_json,
    read_text,
    scene_number,
    write_json,
    write_text,
)


# ----------------------------------------------------------------------------- others/
def read_split(path: PathLike) -> dict[str, list[str]]:
    """Movie ids per released split key ("train", "val", "test")."""
    obj = read_json(path)
    if not isinstance(obj, dict) or set(obj) - set(SPLITS) or not set(obj) & set(SPLITS):
        raise LirecFormatError(f"{path}: expected an object with keys {sorted(SPLITS)}")
    seen: dict[str, str] = {}
    for key, movies in obj.items():
        if not isinstance(movies, list) or not all(isinstance(m, str) for m in movies):
            raise LirecFormatError(f"{path}: split {key!r} must be a list of movie ids")
        for m in movies:
            if m in seen:
                raise LirecFormatError(f"{path}: movie {m!r} is in both {seen[m]!r} and {key!r}")
            seen[m] = key
    return {k: list(v) for k, v in obj.items()}


def write_split(path: PathLike, split: Mapping[str, Sequence[str]]) -> None:
    write_json(path, {k: list(v) for k, v in split.items()})


def read_merged_interactions(path: PathLike) -> tuple[list[str], dict[str, str]]:
    """(merged names in file order = class index, original name -> merged name).

    A merged name maps to itself, so labels may use either vocabulary.
    """
    names: list[str] = []
    to_merged: dict[str, str] = {}
    for i, line in enumerate(read_text(path).splitlines(), 1):
        if not line.strip():
            continue
        parts = [p.strip() for p in line.split("\t")]
        if not parts[0] or parts[0] in names:
            raise LirecFormatError(f"{path}:{i}: empty or repeated merged name {parts[0]!r}")
        names.append(parts[0])
        for original in [parts[0], *parts[1:]]:
            if original:
                to_merged[original] = parts[0]
    if not names:
        raise LirecFormatError(f"{path}: no interaction names")
    return names, to_merged


def write_merged_interactions(path: PathLike,
                              groups: Sequence[tuple[str, Sequence[str]]]) -> None:
    write_text(path, "".join("\t".join([name, *originals]) + "\n" for name, originals in groups))


def read_relationship_map(path: PathLike) -> dict[str, str]:
    """Original relationship (possibly several words) -> 15-class name (the last word)."""
    mapping: dict[str, str] = {}
    for i, line in enumerate(read_text(path).splitlines(), 1):
        words = line.split()
        if not words:
            continue
        if len(words) < 2:
            raise LirecFormatError(f"{path}:{i}: expected '<relationship words> <class>'")
        mapping[" ".join(words[:-1])] = words[-1]
    if not mapping:
        raise LirecFormatError(f"{path}: no relationships")
    return mapping


def write_relationship_map(path: PathLike, mapping: Mapping[str, str]) -> None:
    write_text(path, "".join(f"{k} {v}\n" for k, v in mapping.items()))


def relationship_names(mapping: Mapping[str, str]) -> list[str]:
    """Class order of relationships: the 15 names sorted in *reverse* alphabetical order.

    This is the index order of the released code (it sorts the names with "None" and reverses),
    so released checkpoints' relationship outputs line up with our labels.
    """
    return sorted(set(mapping.values()), reverse=True)


def read_relationship_opposites(path: PathLike) -> dict[str, str]:
    """Relationship of a -> b  ->  relationship of b -> a (e.g. parent -> child)."""
    out: dict[str, str] = {}
    for i, line in enumerate(read_text(path).splitlines(), 1):
        words = line.split()
        if not words:
            continue
        if len(words) != 2:
            raise LirecFormatError(f"{path}:{i}: expected '<relationship> <opposite>'")
        out[words[0]] = words[1]
    return out


def write_relationship_opposites(path: PathLike, opposites: Mapping[str, str]) -> None:
    write_text(path, "".join(f"{k} {v}\n" for k, v in opposites.items()))


def read_org_res(path: PathLike) -> dict[str, tuple[int, int]]:
    """Movie -> (height, width) of the original video (for face boxes on the feature grid)."""
    out: dict[str, tuple[int, int]] = {}
    for i, line in enumerate(read_text(path).splitlines(), 1):
        words = line.split()
        if not words:
            continue
        try:
            movie, h, w = words
            out[movie] = (int(h), int(w))
        except ValueError as e:
            raise LirecFormatError(f"{path}:{i}: expected 'movie height width'") from e
    return out


def write_org_res(path: PathLike, res: Mapping[str, tuple[int, int]]) -> None:
    write_text(path, "".join(f"{m} {h} {w}\n" for m, (h, w) in res.items()))


# ----------------------------------------------------------------------------- labels
@dataclasses.dataclass(frozen=True)
class InteractionRecord:
    """One annotated interaction of a MovieGraphs clip graph.

    ``pairs`` are its directed person-to-person instances (from, to); one side is None when
    only one participant is linked (MovieGraphs allows it). ``characters`` are the people
    linked to the interaction in the clip graph (the candidates of Sec. 3.2).
    """

    id: str
    scene: str
    start: float
    end: float
    name: str
    characters: tuple[str, ...]
    pairs: tuple[tuple[str | None, str | None], ...]


@dataclasses.dataclass(frozen=True)
class RelationshipRecord:
    """A directed relationship ``source -> target`` annotated in one scene's clip graph."""

    scene: str
    source: str
    target: str
    name: str


@dataclasses.dataclass(frozen=True)
class MovieLabels:
    movie_id: str
    interactions: tuple[InteractionRecord, ...]
    relationships: tuple[RelationshipRecord, ...]


def read_movie_labels(path: PathLike) -> MovieLabels:
    obj = read_json(path)
    try:
        inters = tuple(
            InteractionRecord(
                id=str(d["id"]), scene=str(d["scene"]), start=float(d["start"]),
                end=float(d["end"]), name=str(d["name"]),
                characters=tuple(str(c).lower() for c in d["characters"]),
                pairs=tuple((None if a is None else str(a).lower(),
                             None if b is None else str(b).lower()) for a, b in d["pairs"]))
            for d in obj["interactions"])
        rels = tuple(RelationshipRecord(str(d["scene"]), str(d["source"]).lower(),
                                        str(d["target"]).lower(), str(d["name"]))
                     for d in obj["relationships"])
        labels = MovieLabels(str(obj["movie_id"]), inters, rels)
    except (KeyError, TypeError, ValueError) as e:
        raise LirecFormatError(f"{path}: malformed labels ({type(e).__name__}: {e})") from e
    ids = [r.id for r in labels.interactions]
    if len(set(ids)) != len(ids):
        raise LirecFormatError(f"{path}: repeated interaction ids")
    for r in labels.interactions:
        if r.end < r.start:
            raise LirecFormatError(f"{path}: interaction {r.id!r} ends before it starts")
        scene_number(r.scene)
    return labels


def write_movie_labels(path: PathLike, labels: MovieLabels) -> None:
    write_json(path, {
        "movie_id": labels.movie_id,
        "interactions": [dict(id=r.id, scene=r.scene, start=r.start, end=r.end, name=r.name,
                              characters=list(r.characters), pairs=[list(p) for p in r.pairs])
                         for r in labels.interactions],
        "relationships": [dataclasses.asdict(r) for r in labels.relationships],
    })
