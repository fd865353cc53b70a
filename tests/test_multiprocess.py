"""Two local processes form one JAX distributed job and train together (multi-host on one box)."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import jax
import pytest

from jaxaffect.data.build import build_dataset
from jaxaffect.families.perr.erato_format import write_random_manual_dir
from jaxaffect.run_logging import read_metrics

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[1]


def _launcher():
    spec = importlib.util.spec_from_file_location("multiprocess", REPO / "launch/multiprocess.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_two_processes_train_one_run(tmp_path):
    dims = {"person_a": 4, "person_b": 4, "background": 3, "audio": 3, "text": 2}
    write_random_manual_dir(tmp_path / "manual", num_clips=48, dims=dims, max_steps=8, seed=3)
    builder_dir = build_dataset("erato", str(tmp_path / "manual"), str(tmp_path / "tfds"))
    workdir = tmp_path / "run"
    command = [sys.executable, "-m", "jaxaffect.cli", "train", "--no_progress",
               "--config", str(REPO / "configs/perr/smta.py") + ":runlocal",
               "--workdir", str(workdir), f"--config.data.builder_dir={builder_dir}",
               "--config.data.max_steps=8", "--config.training.batch_size=8",
               "--config.training.num_epochs=1", "--config.training.log_every_steps=1",
               "--config.mesh.data=4", "--config.mesh.fsdp=2"]
    os.environ.setdefault("JAX_COMPILATION_CACHE_DIR",
                          str(jax.config.jax_compilation_cache_dir or ""))
    code = _launcher().launch(command, num_processes=2, devices_per_process=4,
                              log_dir=str(tmp_path / "logs"))
    logs = "\n".join(p.read_text()[-3000:] for p in sorted((tmp_path / "logs").glob("*.log")))
    assert code == 0, logs
    records = read_metrics(workdir / "metrics.jsonl")
    losses = [r["train/loss"] for r in records if "train/loss" in r]
    assert records[0]["num_processes"] == 2 and records[0]["num_devices"] == 8
    steps_per_epoch = records[0]["steps_per_epoch"]
    assert len(losses) == steps_per_epoch > 0  # one record per step, written once (process 0)
    assert any("val/macro_f1" in r for r in records)
    assert (workdir / "checkpoints" / "latest").is_dir()
    assert (workdir / "checkpoints" / "best").is_dir()


def _train_losses(workdir: Path) -> dict[int, float]:
    return {r["step"]: r["train/loss"] for r in read_metrics(workdir / "metrics.jsonl")
            if "train/loss" in r}


def _one_vs_two_processes(tmp_path: Path, config_args: list[str], env_path: str = ""):
    """Losses of one process with 8 devices and of two processes with 4 devices each, same
    (data 4 x fsdp 2) mesh and config."""
    common = ["--no_progress", "--config.training.log_every_steps=1",
              "--config.mesh.num_devices=0", "--config.mesh.data=4", "--config.mesh.fsdp=2"]
    os.environ.setdefault("JAX_COMPILATION_CACHE_DIR",
                          str(jax.config.jax_compilation_cache_dir or ""))
    saved = os.environ.get("PYTHONPATH")
    if env_path:
        os.environ["PYTHONPATH"] = os.pathsep.join([env_path, str(REPO)])
    try:
        runs = {}
        for n in (1, 2):
            workdir = tmp_path / f"p{n}"
            command = [sys.executable, "-m", "jaxaffect.cli", "train", *config_args,
                       "--workdir", str(workdir), *common]
            code = _launcher().launch(command, num_processes=n, devices_per_process=8 // n,
                                      log_dir=str(tmp_path / f"logs{n}"))
            logs = "\n".join(p.read_text()[-3000:]
                             for p in sorted((tmp_path / f"logs{n}").glob("*.log")))
            assert code == 0, logs
            runs[n] = _train_losses(workdir)
    finally:
        if env_path:
            if saved is None:
                os.environ.pop("PYTHONPATH", None)
            else:
                os.environ["PYTHONPATH"] = saved
    assert sorted(runs[1]) == sorted(runs[2]) and len(runs[1]) >= 6
    for step, loss in runs[1].items():
        assert runs[2][step] == pytest.approx(loss, rel=1e-5, abs=1e-6), step


def test_record_pipeline_batches_do_not_depend_on_the_process_count(tmp_path):
    dims = {"person_a": 4, "person_b": 4, "background": 3, "audio": 3, "text": 2}
    write_random_manual_dir(tmp_path / "manual", num_clips=48, dims=dims, max_steps=8, seed=3)
    builder_dir = build_dataset("erato", str(tmp_path / "manual"), str(tmp_path / "tfds"))
    _one_vs_two_processes(tmp_path, [
        "--config", str(REPO / "configs/perr/smta.py") + ":runlocal",
        f"--config.data.builder_dir={builder_dir}", "--config.data.max_steps=8",
        "--config.training.batch_size=8", "--config.training.num_epochs=2"])


def test_in_memory_batches_do_not_depend_on_the_process_count(tmp_path):
    from toy_family import write_toy_family

    config = write_toy_family(tmp_path / "family")
    _one_vs_two_processes(tmp_path, ["--config", str(config)], env_path=str(tmp_path / "family"))
