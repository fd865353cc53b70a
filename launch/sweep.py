r"""Runs a config's `sweep(add)`: one `jaxaffect train` job per point, here, on a TPU pod slice
or on SLURM; then collects every run's metrics into one table.

  python launch/sweep.py configs/perr/smta.py --workdir_root runs/table3 \
      --extra "data=erato" [--seeds 0,1,2] [--dry_run]
  python launch/sweep.py configs/amer/amer.py --sweep_arg table=4 --workdir_root runs/t4
  python launch/sweep.py configs/tam/ctm.py --workdir_root gs://bucket/runs/t2 --seeds 0,1,2 \
      --submit tpu --tpu my-v4-32 --zone us-central2-b --remote_dir ~/jaxaffect
  python launch/sweep.py configs/tam/ctm.py --workdir_root runs/t2 --seeds 0,1,2 \
      --submit slurm --sbatch_args "--nodes=2 --time=04:00:00"
  python launch/sweep.py summary --workdir_root runs/t2 [--metrics accuracy,macro_f1]

`--sweep_arg` is passed to sweep(add, arg) for configs whose sweep lists several tables. Flags
this script does not know (e.g. --config.training.batch_size=32, --splits 0-9) are passed to
every `jaxaffect train`.

Each point's workdir is <workdir_root>/<config name>/<config arg with '=' and ',' made safe>.
A point whose runs have all finished (train_summary.json says so) is skipped; any other is
submitted again and `jaxaffect train` resumes it from its workdir's latest checkpoint. So
rerunning the same command after a preemption, a failure or a timeout finishes the sweep.
`--dry_run` prints the commands (and the points it skips) without running anything.

Submission (`--submit`): `local` runs the points one after another here (the default); `tpu`
runs each point on every worker of a Cloud TPU pod slice over `gcloud compute tpus tpu-vm ssh
--worker=all` (as launch/tpu_pod.sh), one point after another; `slurm` submits one
`sbatch launch/slurm.sbatch` job per point and returns (SLURM queues them).

`summary` reads every run under a workdir_root (train_summary.json's best validation metrics,
and eval_<split>.json when `jaxaffect eval` was run) and writes summary.csv and summary.md there:
one row per point, mean ± std over its seeds (and splits).
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import json
import shlex
import subprocess
import sys
from pathlib import Path

from etils import epath

SLURM_SCRIPT = Path(__file__).resolve().parent / "slurm.sbatch"
SUMMARY_FILE = "train_summary.json"


# ------------------------------------------------------------------------------- the points


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


def point_workdir(workdir_root: str, config_file: str, config_arg: str) -> str:
    safe = config_arg.replace("=", "-").replace(",", "_") or "default"
    return str(epath.Path(workdir_root) / Path(config_file).stem / safe)


def commands(config_file: str, workdir_root: str, extra: str = "", seeds: str | None = None,
             overrides: list[str] | None = None, sweep_arg: str | None = None
             ) -> list[list[str]]:
    """One `jaxaffect train` command per point, in the order sweep(add) gives them."""
    out = []
    for arg in expand(config_file, extra, sweep_arg):
        cmd = ["jaxaffect", "train", "--config", f"{config_file}:{arg}",
               "--workdir", point_workdir(workdir_root, config_file, arg)]
        if seeds:
            cmd += ["--seeds", seeds]
        out.append(cmd + list(overrides or []))
    return out


def _flag(command: list[str], name: str) -> str | None:
    """The value of `--name VALUE` or `--name=VALUE` in a command (None when absent)."""
    for i, word in enumerate(command):
        if word == name and i + 1 < len(command):
            return command[i + 1]
        if word.startswith(name + "="):
            return word[len(name) + 1:]
    return None


def run_workdirs(command: list[str]) -> list[str]:
    """The run folders a `jaxaffect train` command writes (one per split and seed)."""
    from jaxaffect.cli import _runs

    names = argparse.Namespace(workdir=_flag(command, "--workdir"),
                               seeds=_flag(command, "--seeds"), splits=_flag(command, "--splits"))
    return [workdir for workdir, _ in _runs(names)]


def finished(command: list[str]) -> bool:
    """Whether every run of the command has finished training (its train_summary.json says
    so); then submitting it again would only restore and stop."""
    for workdir in run_workdirs(command):
        path = epath.Path(workdir) / SUMMARY_FILE
        try:
            if not json.loads(path.read_text()).get("finished"):
                return False
        except (OSError, ValueError):  # absent (not started or stopped early) or unreadable
            return False
    return True


# ------------------------------------------------------------------------------ submission


def tpu_job(command: list[str], tpu: str, zone: str, project: str | None = None,
            remote_dir: str | None = None) -> list[str]:
    """`command` on every worker of a TPU pod slice; JAX finds the slice's processes itself."""
    remote = "JAXAFFECT_COORDINATOR=auto " + shlex.join(command)
    if remote_dir:
        remote = f"cd {remote_dir} && {remote}"
    job = ["gcloud", "compute", "tpus", "tpu-vm", "ssh", tpu, f"--zone={zone}"]
    if project:
        job.append(f"--project={project}")
    return job + ["--worker=all", f"--command={remote}"]


def slurm_job(command: list[str], sbatch_args: list[str] | None = None) -> list[str]:
    """`command` as one SLURM job of launch/slurm.sbatch (its log in the point's workdir)."""
    if command[:2] != ["jaxaffect", "train"]:
        raise ValueError(f"not a jaxaffect train command: {command}")
    workdir = _flag(command, "--workdir")
    config = _flag(command, "--config")
    rest = command[2:]
    for flag in ("--config", "--workdir"):
        i = rest.index(flag)
        del rest[i:i + 2]
    name = "jaxaffect:" + "/".join(Path(workdir).parts[-2:])
    return ["sbatch", f"--job-name={name}", f"--output={workdir}/slurm-%j.out",
            *(sbatch_args or []), str(SLURM_SCRIPT), config, workdir, *rest]


def jobs(args: argparse.Namespace, overrides: list[str]) -> list[tuple[list[str], list[str]]]:
    """(train command, what to run to submit it) per point."""
    out = []
    for cmd in commands(args.config_file, args.workdir_root, args.extra, args.seeds, overrides,
                        args.sweep_arg):
        if args.submit == "tpu":
            out.append((cmd, tpu_job(cmd, args.tpu, args.zone, args.project, args.remote_dir)))
        elif args.submit == "slurm":
            out.append((cmd, slurm_job(cmd, shlex.split(args.sbatch_args or ""))))
        else:
            out.append((cmd, cmd))
    return out


def submit(args: argparse.Namespace, overrides: list[str]) -> int:
    """Prints and (unless --dry_run) runs each unfinished point's job; the first failing
    job's exit status ends the sweep (rerun it to go on: finished points are skipped)."""
    for train_cmd, job in jobs(args, overrides):
        if finished(train_cmd):
            print(f"# finished, skipped: {_flag(train_cmd, '--workdir')}", flush=True)
            continue
        print(shlex.join(job), flush=True)
        if args.dry_run:
            continue
        if args.submit == "slurm":  # SLURM opens the log file in the workdir: make it first
            epath.Path(_flag(train_cmd, "--workdir")).mkdir(parents=True, exist_ok=True)
        rc = subprocess.call(job)
        if rc:
            return rc
    return 0


# --------------------------------------------------------------------------------- summary


def _summary_module():
    """launch/sweep_summary.py (launch/ is a folder of scripts, not a package)."""
    if "sweep_summary" not in sys.modules:
        spec = importlib.util.spec_from_file_location(
            "sweep_summary", Path(__file__).resolve().parent / "sweep_summary.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules["sweep_summary"] = module  # its dataclasses look their module up
        spec.loader.exec_module(module)
    return sys.modules["sweep_summary"]


def summary_main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="sweep.py summary",
                                description="Every run's metrics under a workdir_root as one "
                                "table (mean ± std over each point's runs): summary.csv, "
                                "summary.md.")
    p.add_argument("--workdir_root", required=True)
    p.add_argument("--metrics", default=None,
                   help="comma-separated metric names for the markdown table (default: those "
                        "without '/' but num_examples); the CSV has every metric")
    p.add_argument("--out", default=None, help="folder for summary.csv / summary.md "
                   "(default: the workdir_root)")
    args = p.parse_args(argv)
    summary = _summary_module()
    points = summary.collect(args.workdir_root)
    if not points:
        print(f"{args.workdir_root}: no runs found (no {SUMMARY_FILE})", file=sys.stderr)
        return 1
    chosen = args.metrics.split(",") if args.metrics else None
    table = summary.markdown(points, chosen)
    out = epath.Path(args.out or args.workdir_root)
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.md").write_text(table)
    with (out / "summary.csv").open("w") as f:
        csv.writer(f, lineterminator="\n").writerows(summary.csv_rows(points))
    print(table, end="")
    print(f"wrote {out / 'summary.md'} and {out / 'summary.csv'}")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["summary"]:
        return summary_main(argv[1:])
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("config_file")
    p.add_argument("--workdir_root", required=True)
    p.add_argument("--extra", default="", help="appended to every config argument")
    p.add_argument("--seeds", default=None)
    p.add_argument("--sweep_arg", default=None, help="argument of the config's sweep(add, arg)")
    p.add_argument("--dry_run", action="store_true", help="print the commands only")
    p.add_argument("--submit", choices=("local", "tpu", "slurm"), default="local",
                   help="where each point runs (see above)")
    p.add_argument("--tpu", default=None, help="--submit tpu: the TPU VM (pod slice) name")
    p.add_argument("--zone", default=None, help="--submit tpu: its zone")
    p.add_argument("--project", default=None, help="--submit tpu: its project (default: "
                   "gcloud's)")
    p.add_argument("--remote_dir", default=None,
                   help="--submit tpu: the folder on the workers to run in (the checkout "
                        "holding the config files)")
    p.add_argument("--sbatch_args", default=None,
                   help="--submit slurm: options for sbatch, e.g. \"--nodes=4 "
                        "--partition=gpu\" (they override the script's #SBATCH lines)")
    args, overrides = p.parse_known_args(argv)
    if args.submit == "tpu" and not (args.tpu and args.zone):
        p.error("--submit tpu needs --tpu and --zone")
    return submit(args, overrides)


if __name__ == "__main__":
    sys.exit(main())
