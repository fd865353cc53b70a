"""Families are found by convention: every package `jaxaffect.families.<name>` declares `FAMILY`.

A family package's `__init__.py` stays light (no jax, no model code): it only declares what the
family offers, as "module:attribute" references that are imported when used:

* `tasks`: task name (the config's `task` field) -> Task class;
* `demo`: the family's `jaxaffect.demo_runner.Demo` subclass (settings and arms; one runner
  runs every family's demo);
* `corpora`: synthetic corpora `jaxaffect synthesize <name>` writes;
* `converters`: `jaxaffect convert <name>` importers of other code bases' checkpoints;
* `extractors`: `jaxaffect extract <name>` raw videos -> a builder's manual_dir layout, and
  the same features of one video for `predict --video`.

Discovery also looks at every `jaxaffect/families/` folder on `sys.path` (namespace-style), so a
family can live outside this repository. Names are unique: a task, corpus or converter name
declared twice stops discovery with an error naming both families.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import os
import pkgutil
import sys
from collections.abc import Callable, Mapping
from typing import Any

PACKAGE = "jaxaffect.families"


def load(ref: str) -> Any:
    """Imports "package.module:attribute" and returns the attribute."""
    module, _, attr = ref.partition(":")
    obj: Any = importlib.import_module(module)
    for part in attr.split(".") if attr else ():
        obj = getattr(obj, part)
    return obj


@dataclasses.dataclass(frozen=True)
class Corpus:
    """A synthetic corpus in a release layout.

    `writer` names fn(out: str, *, size: int | None, seed: int) -> dict (a JSON-able summary);
    `size_help` says what the size counts and its default.
    """

    writer: str
    help: str
    size_help: str = ""


@dataclasses.dataclass(frozen=True)
class Converter:
    """An importer of another code base's checkpoints (`jaxaffect convert <name> ...`).

    `add_arguments(parser)` declares its arguments; `run` names fn(args) -> dict (printed).
    """

    run: str
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]


@dataclasses.dataclass(frozen=True)
class Extractor:
    """Raw videos -> a builder's manual_dir layout (`jaxaffect extract <name>`).

    `add_arguments(parser)` declares its own arguments (the command adds --videos, --out,
    --workers, --no_progress); `run` names fn(args) -> `jaxaffect.features.extraction.Summary`;
    `one_video` names fn(video, record, inputs, out_dir) -> path: one video's input for the
    task's `load_clip` (a feature file, or a folder), made as recorded in a dataset's
    extraction record (`predict --video`); `inputs` lists what `predict --video` may pass
    besides the video (e.g. "subtitles", "person", "moment") and `required` those it must.
    """

    run: str
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    one_video: str | None = None
    inputs: tuple[str, ...] = ()
    required: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class Family:
    name: str
    summary: str
    tasks: Mapping[str, str] = dataclasses.field(default_factory=dict)
    demo: str | None = None
    demo_help: str = ""
    corpora: Mapping[str, Corpus] = dataclasses.field(default_factory=dict)
    converters: Mapping[str, Converter] = dataclasses.field(default_factory=dict)
    extractors: Mapping[str, Extractor] = dataclasses.field(default_factory=dict)
    #: example command lines shown in `jaxaffect --help`.
    examples: tuple[str, ...] = ()
    #: picked by `jaxaffect demo` / `synthesize` when no family or corpus is named.
    is_default: bool = False


class FamilyError(ValueError):
    """A family package is malformed or clashes with another one."""


def _package_paths() -> list[str]:
    """This package's folder, then every `jaxaffect/families/` folder on sys.path (re-scanned
    on every call, so a folder added or removed after start-up counts)."""
    pkg = importlib.import_module(PACKAGE)
    paths = [os.path.dirname(os.path.abspath(pkg.__file__))]
    for entry in sys.path:
        folder = os.path.abspath(os.path.join(entry or ".", *PACKAGE.split(".")))
        if os.path.isdir(folder) and folder not in paths:
            paths.append(folder)
    pkg.__path__ = paths
    return paths


def families() -> dict[str, Family]:
    """Every family found, by name (sorted)."""
    found: dict[str, Family] = {}
    owners: dict[tuple[str, str], str] = {}
    for info in sorted(pkgutil.iter_modules(_package_paths()), key=lambda i: i.name):
        if not info.ispkg or info.name.startswith("_") or info.name in found:
            continue
        module = importlib.import_module(f"{PACKAGE}.{info.name}")
        family = getattr(module, "FAMILY", None)
        if not isinstance(family, Family):
            raise FamilyError(f"{module.__file__}: a family package must declare FAMILY = "
                              "jaxaffect.family.Family(...)")
        if family.name != info.name:
            raise FamilyError(f"{module.__file__}: FAMILY.name is {family.name!r}, the "
                              f"package is {info.name!r}")
        for kind, names in (("task", family.tasks), ("corpus", family.corpora),
                            ("converter", family.converters),
                            ("extractor", family.extractors)):
            for name in names:
                other = owners.setdefault((kind, name), family.name)
                if other != family.name:
                    raise FamilyError(f"{kind} {name!r} is declared by both families "
                                      f"{other!r} and {family.name!r}")
        found[family.name] = family
    defaults = [f.name for f in found.values() if f.is_default]
    if len(defaults) > 1:
        raise FamilyError(f"families {defaults} all declare is_default=True; at most one may")
    return found


def default_family(candidates: Mapping[str, Family]) -> str | None:
    """The declared default among `candidates`, else the first by name (None when empty)."""
    for name, family in candidates.items():
        if family.is_default:
            return name
    return next(iter(candidates), None)


def task_classes(found: Mapping[str, Family] | None = None) -> dict[str, str]:
    """Task name -> "module:Class" over all families (`found`: an earlier `families()`)."""
    return {name: ref for f in (found or families()).values() for name, ref in f.tasks.items()}


def corpora(found: Mapping[str, Family] | None = None) -> dict[str, Corpus]:
    return {name: c for f in (found or families()).values() for name, c in f.corpora.items()}


def converters(found: Mapping[str, Family] | None = None) -> dict[str, Converter]:
    return {name: c for f in (found or families()).values()
            for name, c in f.converters.items()}


def extractors(found: Mapping[str, Family] | None = None) -> dict[str, Extractor]:
    return {name: e for f in (found or families()).values()
            for name, e in f.extractors.items()}
