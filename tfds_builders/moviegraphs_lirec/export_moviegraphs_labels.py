"""One-off export of the LIReC labels from the MovieGraphs pickle to plain JSON files.

The release keeps interaction spans, characters and relationships only inside
``others/mg3.pkl``: pickled ``MovieGraph``/``ClipGraph`` objects holding networkx 1.x graphs.
Unpickling needs those classes (``moviegraphs/py3loader/GraphClasses.py`` of the LIReC code) and
networkx 1.11, so this script runs once, in an environment that has them, e.g.::

    python -m venv /tmp/mg && /tmp/mg/bin/pip install "networkx==1.11" numpy
    /tmp/mg/bin/python export_moviegraphs_labels.py <data_root> \
        --loader_dir <LIReC checkout>/moviegraphs/py3loader

and writes ``<data_root>/lirec_labels/<movie>.json``
(jaxaffect.families.lirec.release_labels.MovieLabels), which is all the builder reads. Only this
script touches the pickle; nothing here imports jaxaffect's numpy/jax stack except the writer. What
is exported, per clip graph:

* every node of type ``interaction`` or ``summary`` (the paper merges both, Sec. 4.2) with its
  ``time`` neighbour (start/end seconds) -> an InteractionRecord: ``characters`` = the entity
  nodes linked to it, ``pairs`` = the directed (from, to) instances (``from -> interaction ->
  to`` edges), or single participants (``(name, None)`` / ``(None, name)``) when no pair exists;
* every ``relationship`` node with ``source -> rel -> target`` edges -> a RelationshipRecord
  (the original relationship name; the builder maps it to the 15 classes).

A clip graph spanning several scene files uses the file listed for one of its scenes in
``others/use_vid_for_moviegraphs`` (lines "movie scene-1 file"; files containing '---' are not
usable), as in the released loader; graphs with none are skipped and reported.
"""

from __future__ import annotations

import argparse
import os
import pickle
import sys
from collections import defaultdict


def _attrs(graph, node) -> dict:
    nodes = getattr(graph, "nodes", None)
    try:
        return nodes[node]  # networkx >= 2
    except TypeError:
        return graph.node[node]  # networkx 1.x


def _merged_clip_files(path: str) -> dict[str, dict[int, str]]:
    out: dict[str, dict[int, str]] = defaultdict(dict)
    if not os.path.exists(path):
        return out
    with open(path) as f:
        for line in f:
            words = line.split()
            if len(words) >= 3 and "---" not in words[2]:
                out[words[0]][int(words[1]) + 1] = words[2]
    return out


def _scene_file(clip, movie: str, merged: dict[str, dict[int, str]]) -> str | None:
    files, scenes = clip.video["fname"], clip.video["scene"]
    if len(files) == 1:
        return os.path.splitext(files[0])[0]
    for sc in scenes:
        if sc in merged.get(movie, {}):
            return os.path.splitext(merged[movie][sc])[0]
    return None


def export_movie(movie_graph, merged: dict[str, dict[int, str]]):
    from jaxaffect.families.lirec import release_labels as rl

    movie = movie_graph.imdb_key
    inters, rels, skipped = [], [], 0
    graphs = movie_graph.clip_graphs
    for gkey, clip in sorted(graphs.items() if isinstance(graphs, dict) else enumerate(graphs)):
        scene = _scene_file(clip, movie, merged)
        if scene is None:
            skipped += 1
            continue
        g = clip.G
        names = {n: _attrs(g, n)["name"].lower() for n in g.nodes()
                 if _attrs(g, n).get("type") == "entity"}
        for n in g.nodes():
            kind = _attrs(g, n).get("type")
            if kind == "relationship":
                for a in names:
                    for b in names:
                        if a != b and g.has_edge(a, n) and g.has_edge(n, b):
                            rels.append(rl.RelationshipRecord(scene, names[a], names[b],
                                                              _attrs(g, n)["name"]))
            if kind not in ("interaction", "summary"):
                continue
            times = [_attrs(g, t) for t in g.neighbors(n) if _attrs(g, t).get("type") == "time"]
            if not times:
                continue
            linked = [e for e in names if g.has_edge(n, e) or g.has_edge(e, n)]
            pairs = [(names[a], names[b]) for a in linked for b in linked
                     if a != b and g.has_edge(a, n) and g.has_edge(n, b)]
            if not pairs:
                pairs = [(names[e], None) for e in linked if g.has_edge(e, n)]
                pairs += [(None, names[e]) for e in linked if g.has_edge(n, e)]
            inters.append(rl.InteractionRecord(
                id=f"{gkey}-{n}", scene=scene, start=float(times[0]["start"]),
                end=float(times[0]["end"]), name=_attrs(g, n)["name"],
                characters=tuple(names[e] for e in linked), pairs=tuple(pairs)))
    return rl.MovieLabels(movie, tuple(inters), tuple(rels)), skipped


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("data_root")
    parser.add_argument("--loader_dir", required=True,
                        help="folder with GraphClasses.py (LIReC moviegraphs/py3loader)")
    parser.add_argument("--pickle", default="others/mg3.pkl")
    args = parser.parse_args(argv)
    sys.path.insert(0, args.loader_dir)
    from jaxaffect.families.lirec import release_format as lf
    from jaxaffect.families.lirec import release_labels as rl

    with open(os.path.join(args.data_root, args.pickle), "rb") as f:
        movies = pickle.load(f, encoding="latin1")  # the release's own file, trusted
    merged = _merged_clip_files(os.path.join(args.data_root, "others/use_vid_for_moviegraphs"))
    for key in sorted(movies):
        labels, skipped = export_movie(movies[key], merged)
        rl.write_movie_labels(lf.labels_path(args.data_root, labels.movie_id), labels)
        print(f"{labels.movie_id}: {len(labels.interactions)} interactions, "
              f"{len(labels.relationships)} relationships, {skipped} clip graphs skipped")


if __name__ == "__main__":
    main()
