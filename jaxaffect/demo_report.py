"""Results tables in the README, rendered from demo results files, never typed by hand.

`jaxaffect demo` writes `results.json` (rows, per-seed metrics, the header it printed, the
table's columns and the provenance: commit, CPU, jax, devices, wall time). Copied to
`docs/results/<family>.json`, it is rendered into the README between the markers
`<!-- demo-results:<family> -->` and `<!-- /demo-results:<family> -->`:

    python -m jaxaffect.demo_report --readme README.md --results docs/results          # write
    python -m jaxaffect.demo_report --readme README.md --results docs/results --check  # test

A test runs the check, so a table edited by hand, or a results file updated without
re-rendering, fails.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

from jaxaffect.demo_runner import format_table

START, END = "<!-- demo-results:{name} -->", "<!-- /demo-results:{name} -->"


def command(name: str, payload: dict[str, Any]) -> str:
    """The `jaxaffect demo` command that produced `payload`."""
    run = payload.get("provenance", {})
    parts = ["jaxaffect demo", name]
    if run.get("quick"):
        parts.append("--quick")
    if run.get("full"):
        parts.append("--full")
    seeds = payload.get("seeds", [0])
    if list(seeds) != [0]:
        parts.append("--seeds " + ",".join(str(s) for s in seeds))
    return " ".join(parts)


def render(name: str, payload: dict[str, Any]) -> str:
    """The README block of one demo: provenance line, the demo's own header, the table and
    the demo's analysis under it when it has one."""
    run = payload["provenance"]
    stamp = (f"`{command(name, payload)}` at commit `{run['commit']}` on {run['cpu']} "
             f"({run['cores']} cores), jax {run['jax']}, {run['devices']}, "
             f"{run['wall_minutes']:.1f} min; rendered from `docs/results/{name}.json` by "
             "`python -m jaxaffect.demo_report`.")
    keys = [tuple(k) for k in payload["table_keys"]]
    table = format_table(list(payload["rows"].items()), keys, len(payload["seeds"]))
    analysis = f"\n{payload['analysis']}\n" if payload.get("analysis") else ""
    return f"{stamp}\n\n{payload['header']}\n\n{table}\n{analysis}"


def update(readme: Path, results: Path, *, check: bool = False) -> list[str]:
    """Renders every `results/<name>.json` into `readme`; returns the names whose block
    changed (with `check`, nothing is written). A results file without markers in the README,
    or markers without a results file, raise ValueError."""
    text = readme.read_text()
    files = {p.stem: p for p in sorted(results.glob("*.json"))}
    marked = set(re.findall(r"<!-- demo-results:([\w-]+) -->", text))
    if set(files) != marked:
        raise ValueError(f"{readme}: demo-results markers {sorted(marked)} do not match the "
                         f"results files in {results}: {sorted(files)}")
    changed = []
    for name, path in files.items():
        start, end = START.format(name=name), END.format(name=name)
        i, j = text.index(start) + len(start), text.index(end)
        block = "\n" + render(name, json.loads(path.read_text())) + "\n"
        if text[i:j] != block:
            changed.append(name)
            text = text[:i] + block + text[j:]
    if changed and not check:
        readme.write_text(text)
    return changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--readme", default="README.md", help="the file holding the markers")
    parser.add_argument("--results", default="docs/results",
                        help="folder of <family>.json files copied from demo runs")
    parser.add_argument("--check", action="store_true",
                        help="exit 1 if a block differs from its rendering (writes nothing)")
    args = parser.parse_args(argv)
    changed = update(Path(args.readme), Path(args.results), check=args.check)
    if changed:
        print(("stale: " if args.check else "rendered: ") + ", ".join(changed))
    return 1 if (changed and args.check) else 0


if __name__ == "__main__":
    sys.exit(main())
