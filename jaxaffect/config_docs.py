"""One-line descriptions of config fields: `jaxaffect config show` and docs/configs_<family>.md.

A field's description is, first, the comment on its assignment in the config's own source: the
inline comment of `c.data.max_steps = 36  # ...` (else the comment lines directly above it)
describes `data.max_steps`. The config's module (`config.config_file`) is read first, then the
modules of its package that it imports, transitively; the first comment found wins. Fields
without one take `config_loading.SHARED_FIELD_DOCS` (top-level fields, shared sections).

`python -m jaxaffect.config_docs --write docs` renders one table per family (every config file
with its default argument); `--check docs` reports tables that are out of date.
"""

from __future__ import annotations

import argparse
import ast
import importlib
import io
import re
import sys
import tokenize
from pathlib import Path
from typing import Any

import ml_collections

from jaxaffect.config_loading import SHARED_FIELD_DOCS, ConfigError, config_fields, load_config


# ------------------------------------------------------------------------- comments of a source
def _dotted(node: ast.expr) -> str | None:
    """'data.max_steps' for the target `c.data.max_steps` (the root variable dropped)."""
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    return ".".join(reversed(parts)) if parts and isinstance(node, ast.Name) else None


def _comments(source: str) -> tuple[dict[int, str], set[int]]:
    """Comment text by line, and the lines that hold nothing but a comment."""
    texts: dict[int, str] = {}
    alone: set[int] = set()
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.COMMENT:
            line = tok.start[0]
            texts[line] = tok.string.lstrip("#").strip()
            if not tok.line[:tok.start[1]].strip():
                alone.add(line)
    return texts, alone


def assignment_comments(source: str) -> dict[str, str]:
    """Dotted target -> its comment (inline, else the comment block directly above), for every
    attribute assignment in `source` that has one; the first assignment of a name wins."""
    tree = ast.parse(source)
    texts, alone = _comments(source)
    found: dict[str, str] = {}
    nodes = [n for n in ast.walk(tree) if isinstance(n, (ast.Assign, ast.AnnAssign))]
    for node in sorted(nodes, key=lambda n: n.lineno):
        end = node.end_lineno or node.lineno
        text = " ".join(texts[i] for i in range(node.lineno, end + 1)
                        if i in texts and i not in alone)
        if not text:
            above, i = [], node.lineno - 1
            while i in alone:
                above.insert(0, texts[i])
                i -= 1
            text = " ".join(above)
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        for target in targets:
            key = _dotted(target)
            if key and text and key not in found:
                found[key] = text
    return found


def _sibling_imports(tree: ast.Module, folder: Path) -> list[Path]:
    """Files of `folder` (the module's package) that the module imports."""
    names: list[str] = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.ImportFrom):
            continue
        parts = node.module.split(".") if node.module else []
        if node.level == 1:  # from . import a; from .a import b
            names += [parts[0]] if parts else [a.name for a in node.names]
        elif parts[-1:] == [folder.name]:  # from pkg.configs import a
            names += [a.name for a in node.names]
        elif parts[-2:-1] == [folder.name]:  # from pkg.configs.a import b
            names.append(parts[-1])
    return [folder / f"{n}.py" for n in names if (folder / f"{n}.py").is_file()]


def source_chain(config_file: str | Path) -> list[Path]:
    """The config module's file, then the files of its package it imports (transitively)."""
    first = Path(config_file).expanduser().resolve()
    chain, todo = [], [first]
    while todo:
        path = todo.pop(0)
        if path in chain or not path.is_file():
            continue
        chain.append(path)
        todo += _sibling_imports(ast.parse(path.read_text()), path.parent)
    return chain


def field_comments(config_file: str | Path) -> dict[str, str]:
    """Dotted field -> comment over `source_chain(config_file)` (earlier files win)."""
    found: dict[str, str] = {}
    for path in source_chain(config_file):
        for key, text in assignment_comments(path.read_text()).items():
            found.setdefault(key, text)
    return found


# -------------------------------------------------------------------------- fields of a config
def _source_comments(config: ml_collections.ConfigDict) -> dict[str, str]:
    return field_comments(config.config_file) if config.get("config_file") else {}


def describe(config: ml_collections.ConfigDict, comments: dict[str, str] | None = None
             ) -> dict[str, str]:
    """Dotted field -> one-line description ('' when there is none) for every field;
    `comments` defaults to those of the config's source (`field_comments`)."""
    comments = _source_comments(config) if comments is None else comments
    return {name: comments.get(name) or SHARED_FIELD_DOCS.get(name, "")
            for name, _ in config_fields(config)}


def undescribed(config: ml_collections.ConfigDict) -> list[str]:
    return [name for name, text in describe(config).items() if not text]


def show(config: ml_collections.ConfigDict, title: str = "") -> str:
    """`dotted.name = value  # description` per field, grouped by section (a header line each,
    with the section's own comment, e.g. the one on `c.optimizer = optimizer_section(...)`)."""
    comments = _source_comments(config)
    docs = describe(config, comments)
    sections: dict[str, list[tuple[str, str]]] = {}
    for name, value in config_fields(config):
        head = name.rpartition(".")[0].partition(".")[0]
        sections.setdefault(head, []).append((name, f"{name} = {value!r}"))
    lines = [f"# {title}"] if title else []
    for head, rows in sections.items():
        note = comments.get(head, "")
        lines += [""] + ([f"# {head}" + (f": {note}" if note else "")] if head else [])
        width = min(44, max(len(text) for _, text in rows))
        lines += [f"{text.ljust(width)}  # {docs[name]}" if docs[name] else text
                  for name, text in rows]
    return "\n".join(lines).lstrip("\n") + "\n"


# --------------------------------------------------------------------------- per-family tables
def family_config_files(name: str) -> list[Path]:
    """The config files (defining get_config) of family `name`, sorted; [] without configs."""
    from jaxaffect.family import PACKAGE

    folder = Path(importlib.import_module(f"{PACKAGE}.{name}").__file__).parent / "configs"
    return [p for p in sorted(folder.glob("*.py"))
            if any(isinstance(n, ast.FunctionDef) and n.name == "get_config"
                   for n in ast.parse(p.read_text()).body)]


def default_config(path: Path) -> tuple[str, ml_collections.ConfigDict]:
    """(argument, config) of a config file with its default argument; a file that needs one
    is loaded with the argument of the `--config file.py:arg` example in its docstring."""
    try:
        return "", load_config(str(path))
    except ConfigError:
        doc = ast.get_docstring(ast.parse(path.read_text())) or ""
        match = re.search(r"--config\s+\S+?\.py:(\S+)", doc)
        if not match:
            raise
        return match.group(1), load_config(f"{path}:{match.group(1)}")


def _portable(value: Any) -> str:
    """repr of a field value with this machine's paths written as $JAXAFFECT_HOME, ~ or
    relative to the source tree."""
    from jaxaffect.data.build import data_home

    if isinstance(value, str):
        tree = str(Path(__file__).resolve().parents[1])
        for prefix, short in ((data_home(), "$JAXAFFECT_HOME/"), (str(Path.home()), "~/"),
                              (tree, "")):
            prefix = prefix.rstrip("/") + "/"
            if value.startswith(prefix):
                value = short + value[len(prefix):]
    return repr(value)


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def render_family(name: str) -> str:
    """docs/configs_<name>.md: one row per field, one value column per config file."""
    columns = []  # (file name, argument, {field: value}, {field: description})
    for path in family_config_files(name):
        arg, config = default_config(path)
        columns.append((path.name, arg, dict(config_fields(config)), describe(config)))
    fields = sorted({f for _, _, values, _ in columns for f in values},
                    key=lambda f: ("." in f, f))  # top-level fields first, then by section
    lines = [f"# Config fields: {name}", "",
             f"Generated by `python -m jaxaffect.config_docs --write docs` from the config "
             f"files of `configs/{name}/` (do not edit by hand). One column per config file "
             "with its default argument; `jaxaffect config show` prints one config with any "
             "argument and `--config.a.b=value` overrides. `$JAXAFFECT_HOME` defaults to "
             "`~/.cache/jaxaffect`. The descriptions are the comments in the config files "
             "(and, for the shared fields, `SHARED_FIELD_DOCS` in jaxaffect/config_loading.py).",
             "", "| field | " + " | ".join(f"`{_cell(c + (f':{a}' if a else ''))}`"
                                          for c, a, _, _ in columns)
             + " | description |", "|---" * (len(columns) + 2) + "|"]
    for f in fields:
        values = [f"`{_cell(_portable(v[f]))}`" if f in v else "-" for _, _, v, _ in columns]
        texts = [(c, d[f]) for c, _, v, d in columns if f in v]
        common = max((t for _, t in texts), key=[t for _, t in texts].count)  # first on ties
        text = common + "".join(f" ({c}: {t})" for c, t in texts if t != common)
        lines.append(f"| `{f}` | " + " | ".join(values) + f" | {_cell(text)} |")
    return "\n".join(lines) + "\n"


def documented_families() -> list[str]:
    """Families that have config files."""
    from jaxaffect.family import families

    return [name for name in families() if family_config_files(name)]


def stale_docs(folder: str | Path) -> list[str]:
    """Names of docs/configs_<family>.md files that differ from what render_family gives."""
    folder = Path(folder)
    names = documented_families()
    out = [f"configs_{n}.md" for n in names
           if not (folder / f"configs_{n}.md").is_file()
           or (folder / f"configs_{n}.md").read_text() != render_family(n)]
    return out + [p.name for p in sorted(folder.glob("configs_*.md"))
                  if p.stem.removeprefix("configs_") not in names]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m jaxaffect.config_docs",
                                description="Writes or checks docs/configs_<family>.md.")
    mode = p.add_mutually_exclusive_group(required=True)
    mode.add_argument("--write", metavar="DIR", help="write the tables into DIR")
    mode.add_argument("--check", metavar="DIR", help="exit 1 when DIR's tables are stale")
    args = p.parse_args(argv)
    if args.write:
        for name in documented_families():
            out = Path(args.write) / f"configs_{name}.md"
            out.write_text(render_family(name))
            print(f"wrote {out}")
        return 0
    stale = stale_docs(args.check)
    for name in stale:
        print(f"{Path(args.check) / name}: out of date; run python -m jaxaffect.config_docs "
              f"--write {args.check}", file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
