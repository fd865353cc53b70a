"""Every `jaxaffect ...` command and every config string written in the README and the docs
parses with the current CLI and loads, so the documentation cannot drift from the code."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from jaxaffect import cli
from jaxaffect.config_loading import load_config

REPO = Path(__file__).resolve().parents[1]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md")),
        *sorted((REPO / "tfds_builders").glob("*/README.md"))]
CONFIG_RE = re.compile(r"configs/\w+/\w+\.py(?::[\w=.,+:/~-]*)?")


def _commands() -> list[tuple[str, str]]:
    found = []
    for doc in DOCS:
        lines = doc.read_text().splitlines()
        i = 0
        while i < len(lines):
            line = lines[i].strip()
            if line.startswith("jaxaffect "):
                while line.endswith("\\") and i + 1 < len(lines):
                    i += 1
                    line = line[:-1] + " " + lines[i].strip()
                found.append((f"{doc.name}:{i + 1}", line))
            i += 1
    return found


def _strip(command: str) -> list[str]:
    command = command.split(" #", 1)[0]
    command = re.sub(r"\[[^\]]*\]", " ", command)  # optional parts
    return shlex.split(command)[1:]


@pytest.mark.parametrize("where,command", _commands())
def test_documented_command_parses(where, command):
    argv = _strip(command)
    args, unknown = cli.build_parser().parse_known_args(argv)
    assert all(u.startswith("--config.") for u in unknown), (where, unknown)
    if getattr(args, "config", None):
        load_config(str(REPO / args.config.split(":", 1)[0]) + (
            ":" + args.config.split(":", 1)[1] if ":" in args.config else ""))


def test_documented_config_strings_load():
    strings = sorted({m.group(0).rstrip(".,:") for doc in DOCS
                      for m in CONFIG_RE.finditer(doc.read_text())})
    assert len(strings) > 10
    for spec in strings:
        path, _, arg = spec.partition(":")
        if Path(path).name in ("common.py", "__init__.py"):  # shared parts, not configs
            continue
        # placeholders: "..." stands for other arguments, "pretrained=<run>" for a run
        parts = [a for a in arg.split(",") if a and a != "..."]
        arg = ",".join(a + "runs/pre" if a.endswith("=") else a for a in parts)
        if "pretrained=" not in arg and path.endswith("finetune.py"):
            arg = ",".join(a for a in (arg, "pretrained=runs/pre") if a)
        load_config(str(REPO / path) + (f":{arg}" if arg else ""))
