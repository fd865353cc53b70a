r"""Expands a config's `sweep(add)` into one `jaxaffect train` command per run, and runs them.

  python launch/sweep.py configs/perr/smta.py --workdir_root runs/table3 \
      --extra "data=erato" [--seeds 0,1,2] [--dry_run]
  python launch/sweep.py configs/amer/amer.py --sweep_arg table=4 --workdir_root runs/t4

`--sweep_arg` is passed to sweep(add, arg) for configs whose sweep lists several tables.

Each run's workdir is <workdir_root>/<config name>/<config arg with '=' and ',' made safe>.
"""

from __future__ import annotations

import argparse
import importlib.util
import shlex
import subprocess
import sys
from pathlib import Path


def expand(config_file: str, extra: str = "", sweep_arg: str | None = None) -> list[str]:
    """The config arguments that the file's sweep(add) asks for (extra appended to each)."""
    spec = importlib.util.spec_from_file_location("sweep_config", config_file)
    if spec is None or spec.loader is None:
        raise SystemExit(f"{config_file}: cannot be imported")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    if not hasattr(module, "sweep"):
        raise SystemExit(f"{config_file}: defines no sweep(add)")
    args: list[str] = []

    def add(config_arg: str = "") -> None:
        args.append(",".join(a for a in (config_arg, extra) if a))

    if sweep_arg:
        module.sweep(add, sweep_arg)
    else:
        module.sweep(add)
    return args


def commands(config_file: str, workdir_root: str, extra: str = "", seeds: str | None = None,
             overrides: list[str] | None = None, sweep_arg: str | None = None
             ) -> list[list[str]]:
    out = []
    stem = Path(config_file).stem
    for arg in expand(config_file, extra, sweep_arg):
        safe = arg.replace("=", "-").replace(",", "_") or "default"
        cmd = ["jaxaffect", "train", "--config", f"{config_file}:{arg}",
               "--workdir", str(Path(workdir_root) / stem / safe)]
        if seeds:
            cmd += ["--seeds", seeds]
        out.append(cmd + list(overrides or []))
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("config_file")
    p.add_argument("--workdir_root", required=True)
    p.add_argument("--extra", default="", help="appended to every config argument")
    p.add_argument("--seeds", default=None)
    p.add_argument("--sweep_arg", default=None, help="argument of the config's sweep(add, arg)")
    p.add_argument("--dry_run", action="store_true", help="print the commands only")
    args, overrides = p.parse_known_args()
    for cmd in commands(args.config_file, args.workdir_root, args.extra, args.seeds, overrides,
                        args.sweep_arg):
        print(shlex.join(cmd), flush=True)
        if not args.dry_run:
            rc = subprocess.call(cmd)
            if rc:
                return rc
    return 0


if __name__ == "__main__":
    sys.exit(main())
