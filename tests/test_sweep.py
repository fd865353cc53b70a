"""launch/sweep.py: the exact commands of a sweep here, on a TPU pod slice and on SLURM;
finished points skipped and unfinished ones submitted again on a rerun; the summary table."""

from __future__ import annotations

import csv
import importlib.util
import json
import os
import stat
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("sweep", REPO / "launch" / "sweep.py")
sweep = importlib.util.module_from_spec(spec)
spec.loader.exec_module(sweep)

CONFIG = "configs/perr/lstm.py"  # sweep(add): labels=fine, labels=coarse
SLURM = str(REPO / "launch" / "slurm.sbatch")


def _lines(capsys) -> list[str]:
    return capsys.readouterr().out.splitlines()


@pytest.fixture(autouse=True)
def _in_repo(monkeypatch):
    monkeypatch.chdir(REPO)


def test_local_dry_run(capsys, tmp_path):
    root = tmp_path / "runs"
    assert sweep.main([CONFIG, "--workdir_root", str(root), "--extra", "data=erato",
                       "--seeds", "0,1", "--dry_run", "--config.training.batch_size=4"]) == 0
    assert _lines(capsys) == [
        f"jaxaffect train --config {CONFIG}:labels=fine,data=erato --workdir "
        f"{root}/lstm/labels-fine_data-erato --seeds 0,1 --config.training.batch_size=4",
        f"jaxaffect train --config {CONFIG}:labels=coarse,data=erato --workdir "
        f"{root}/lstm/labels-coarse_data-erato --seeds 0,1 --config.training.batch_size=4"]


def test_tpu_dry_run(capsys):
    assert sweep.main([CONFIG, "--workdir_root", "gs://bucket/runs", "--seeds", "0,1,2",
                       "--submit", "tpu", "--tpu", "my-v4-32", "--zone", "us-central2-b",
                       "--project", "proj", "--remote_dir", "~/jaxaffect", "--dry_run"]) == 0
    assert _lines(capsys) == [
        "gcloud compute tpus tpu-vm ssh my-v4-32 --zone=us-central2-b --project=proj "
        "--worker=all '--command=cd ~/jaxaffect && JAXAFFECT_COORDINATOR=auto jaxaffect "
        f"train --config {CONFIG}:labels=fine --workdir gs://bucket/runs/lstm/labels-fine "
        "--seeds 0,1,2'",
        "gcloud compute tpus tpu-vm ssh my-v4-32 --zone=us-central2-b --project=proj "
        "--worker=all '--command=cd ~/jaxaffect && JAXAFFECT_COORDINATOR=auto jaxaffect "
        f"train --config {CONFIG}:labels=coarse --workdir gs://bucket/runs/lstm/labels-coarse "
        "--seeds 0,1,2'"]


def test_slurm_dry_run(capsys):
    assert sweep.main([CONFIG, "--workdir_root", "runs/t3", "--submit", "slurm",
                       "--sbatch_args", "--nodes=4 --time=02:00:00", "--splits", "0-1",
                       "--dry_run"]) == 0
    assert _lines(capsys) == [
        f"sbatch --job-name=jaxaffect:lstm/labels-{labels} "
        f"--output=runs/t3/lstm/labels-{labels}/slurm-%j.out --nodes=4 --time=02:00:00 "
        f"{SLURM} {CONFIG}:labels={labels} runs/t3/lstm/labels-{labels} --splits 0-1"
        for labels in ("fine", "coarse")]


def test_tpu_needs_its_slice(capsys):
    with pytest.raises(SystemExit):
        sweep.main([CONFIG, "--workdir_root", "r", "--submit", "tpu", "--dry_run"])
    assert "--submit tpu needs --tpu and --zone" in capsys.readouterr().err


def _summary(workdir: Path, finished: bool, accuracy: float = 0.5, test: float | None = None):
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "train_summary.json").write_text(json.dumps({
        "finished": finished, "best_validation": {
            "accuracy": accuracy, "macro_f1": accuracy / 2, "f1/joy": 0.1,
            "num_examples": 10.0}}))
    if test is not None:
        (workdir / "eval_test.json").write_text(json.dumps({
            "split": "test", "metrics": {"accuracy": test, "num_examples": 20.0}}))


def test_rerun_skips_finished_points_and_resubmits_unfinished(capsys, tmp_path, monkeypatch):
    """A stand-in `jaxaffect` on PATH records its calls and finishes the runs it is given."""
    bin_dir, log = tmp_path / "bin", tmp_path / "calls.log"
    bin_dir.mkdir()
    fake = bin_dir / "jaxaffect"
    fake.write_text(f"""#!{sys.executable}
import json, pathlib, sys
args = sys.argv[1:]
open({str(log)!r}, "a").write(" ".join(args) + "\\n")
root = pathlib.Path(args[args.index("--workdir") + 1])
for seed in args[args.index("--seeds") + 1].split(","):
    run = root / f"seed_{{seed}}"
    run.mkdir(parents=True, exist_ok=True)
    (run / "train_summary.json").write_text(json.dumps({{"finished": True}}))
""")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    root = tmp_path / "runs"
    fine, coarse = root / "lstm" / "labels-fine", root / "lstm" / "labels-coarse"
    _summary(fine / "seed_0", finished=True)
    _summary(fine / "seed_1", finished=True)
    _summary(coarse / "seed_0", finished=False)  # e.g. preempted: resumed by the rerun
    argv = [CONFIG, "--workdir_root", str(root), "--seeds", "0,1"]
    assert sweep.main(argv) == 0
    assert _lines(capsys) == [
        f"# finished, skipped: {fine}",
        f"jaxaffect train --config {CONFIG}:labels=coarse --workdir {coarse} --seeds 0,1"]
    assert log.read_text().splitlines() == [
        f"train --config {CONFIG}:labels=coarse --workdir {coarse} --seeds 0,1"]
    assert sweep.main(argv) == 0  # everything finished: nothing submitted
    assert _lines(capsys) == [f"# finished, skipped: {fine}", f"# finished, skipped: {coarse}"]
    assert len(log.read_text().splitlines()) == 1


def test_summary_tables(tmp_path, capsys):
    root = tmp_path / "runs"
    acc = {"fine": [0.5, 0.7, 0.6], "coarse": [0.8, 0.9, 0.85]}
    test = {"fine": [0.4, 0.5, 0.45], "coarse": [0.7, 0.75, 0.8]}
    for labels in acc:
        for seed in range(3):
            _summary(root / "lstm" / f"labels-{labels}" / f"seed_{seed}", True,
                     acc[labels][seed], test[labels][seed])
    _summary(root / "lstm" / "labels-fine" / "seed_3", finished=False)
    _summary(root / "smta" / "single", True, 0.3)  # a point trained without --seeds
    assert sweep.main(["summary", "--workdir_root", str(root)]) == 0
    printed = capsys.readouterr().out

    def cell(values) -> str:
        return f"{np.mean(values):.4f} ± {np.std(values, ddof=1):.4f}"

    table = (root / "summary.md").read_text()
    assert table.splitlines() == [
        "| point | runs | val/accuracy | val/macro_f1 | test/accuracy |",
        "|---|---|---|---|---|",
        f"| lstm/labels-coarse | 3 | {cell(acc['coarse'])} | "
        f"{cell(np.array(acc['coarse']) / 2)} | {cell(test['coarse'])} |",
        f"| lstm/labels-fine | 3 (+1 unfinished) | {cell(acc['fine'])} | "
        f"{cell(np.array(acc['fine']) / 2)} | {cell(test['fine'])} |",
        "| smta/single | 1 | 0.3000 | 0.1500 | - |"]
    assert printed.startswith(table)
    with (root / "summary.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [r["point"] for r in rows] == ["lstm/labels-coarse", "lstm/labels-fine",
                                          "smta/single"]
    assert rows[1]["unfinished"] == "1" and rows[1]["runs"] == "3"
    assert float(rows[1]["test/accuracy_std"]) == pytest.approx(np.std(test["fine"], ddof=1))
    assert float(rows[0]["val/f1/joy_mean"]) == pytest.approx(0.1)
    assert rows[2]["test/accuracy_mean"] == ""
    assert sweep.main(["summary", "--workdir_root", str(root), "--metrics", "accuracy"]) == 0
    assert (root / "summary.md").read_text().splitlines()[0] == (
        "| point | runs | val/accuracy | test/accuracy |")


def test_summary_without_runs_says_so(tmp_path, capsys):
    assert sweep.main(["summary", "--workdir_root", str(tmp_path)]) == 1
    assert "no runs found" in capsys.readouterr().err
