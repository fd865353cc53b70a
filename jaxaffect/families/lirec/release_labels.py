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
    check_plain_name,
    json_number,
    read_json,
    read_text,
    scene_number,
    write_json,
    write_text,
)


# ----------------------------------------------------------------------------- others/
def read_split(path: PathLike) -> dict[str, list[str]]:
    """Movie ids per released split key ("train", "val", "test"). A movie id becomes folder and
    file names, so it must be a plain name (no `/`, `..`)."""
    obj = read_json(path)
    if not isinstance(obj, dict) or set(obj) - set(SPLITS) or not set(obj) & set(SPLITS):
        raise LirecFormatError(f"{path}: expected an object with keys {sorted(SPLITS)}")
    seen: dict[str, str] = {}
    for key, movies in obj.items():
        if not isinstance(movies, list) or not all(isinstance(m, str) for m in movies):
            raise LirecFormatError(f"{path}: split {key!r} must be a list of movie ids")
        for m in movies:
            check_plain_name(m, f"{path}: split {key!r}: movie id")
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


def _get(d: object, key: str, where: str, kind: type | tuple[type, ...]) -> object:
    if not isinstance(d, dict):
        raise LirecFormatError(f"{where}: expected an object")
    if key not in d:
        raise LirecFormatError(f"{where}: missing key {key!r}")
    value = d[key]
    if not isinstance(value, kind) or isinstance(value, bool):
        names = " or ".join(k.__name__ for k in (kind if isinstance(kind, tuple) else (kind,)))
        raise LirecFormatError(f"{where}: {key!r} must be {names}, got {value!r}")
    return value


def _name(value: object, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise LirecFormatError(f"{where}: expected a character name, got {value!r}")
    return value.lower()


def _interaction(d: object, where: str) -> InteractionRecord:
    ident = _get(d, "id", where, (str, int))
    scene = check_plain_name(_get(d, "scene", where, str), f"{where}['scene']")
    scene_number(scene)  # refuses names that are not MovieGraphs clip stems
    start = json_number(_get(d, "start", where, (int, float)), f"{where}['start']")
    end = json_number(_get(d, "end", where, (int, float)), f"{where}['end']")
    if end < start:
        raise LirecFormatError(f"{where}: interaction {str(ident)!r} ends before it starts")
    chars = _get(d, "characters", where, list)
    pairs = _get(d, "pairs", where, list)
    out_pairs = []
    for k, pair in enumerate(pairs):
        if not isinstance(pair, list) or len(pair) != 2:
            raise LirecFormatError(f"{where}['pairs'][{k}]: expected [from, to]")
        out_pairs.append(tuple(None if c is None else _name(c, f"{where}['pairs'][{k}]")
                               for c in pair))
    return InteractionRecord(
        id=str(ident), scene=scene, start=float(start), end=float(end),
        name=_get(d, "name", where, str),
        characters=tuple(_name(c, f"{where}['characters'][{k}]") for k, c in enumerate(chars)),
        pairs=tuple(out_pairs))


def _relationship(d: object, where: str) -> RelationshipRecord:
    scene = check_plain_name(_get(d, "scene", where, str), f"{where}['scene']")
    scene_number(scene)
    return RelationshipRecord(scene, _name(_get(d, "source", where, str), f"{where}['source']"),
                              _name(_get(d, "target", where, str), f"{where}['target']"),
                              _get(d, "name", where, str))


def read_movie_labels(path: PathLike) -> MovieLabels:
    """The labels of one movie; every missing key or wrong value names the file and entry."""
    obj = read_json(path)
    movie_id = check_plain_name(_get(obj, "movie_id", str(path), str), f"{path}: movie_id")
    inters = tuple(_interaction(d, f"{path}: interactions[{i}]")
                   for i, d in enumerate(_get(obj, "interactions", str(path), list)))
    rels = tuple(_relationship(d, f"{path}: relationships[{i}]")
                 for i, d in enumerate(_get(obj, "relationships", str(path), list)))
    seen: set[str] = set()
    for r in inters:
        if r.id in seen:
            raise LirecFormatError(f"{path}: interaction id {r.id!r} is repeated")
        seen.add(r.id)
    return MovieLabels(movie_id, inters, rels)


def write_movie_labels(path: PathLike, labels: MovieLabels) -> None:
    write_json(path, {
        "movie_id": labels.movie_id,
        "interactions": [dict(id=r.id, scene=r.scene, start=r.start, end=r.end, name=r.name,
                              characters=list(r.characters), pairs=[list(p) for p in r.pairs])
                         for r in labels.interactions],
        "relationships": [dataclasses.asdict(r) for r in labels.relationships],
    })
