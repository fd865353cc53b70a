"""What the trainer guarantees: exact resume at default logging settings, no non-finite state
ever checkpointed, and settings no run can start with refused before the workdir exists."""

from __future__ import annotations

from pathlib import Path

import jax
import numpy as np
import pytest

from jaxaffect.config_loading import ConfigError, load_config
from jaxaffect.run_logging import read_metrics
from jaxaffect.train import NonFiniteLossError, train

REPO = Path(__file__).resolve().parents[1]
DIMS = {"person_a": 6, "person_b": 6, "background": 4, "audio": 5, "text": 3}


@pytest.fixture(scope="module")
def builder_dir(tmp_path_factory) -> str:
    from jaxaffect.data.build import build_dataset
    from jaxaffect.families.perr.erato_format import write_random_manual_dir

    root = tmp_path_factory.mktemp("erato")
    write_random_manual_dir(root / "manual", num_clips=64, dims=DIMS, max_steps=10, seed=0)
    return build_dataset("erato", str(root / "manual"), str(root / "tfds"), "tfrecord")


def default_logging_config(builder_dir: str):
    """The LSTM config at its default training/logging/checkpoint settings; only the model and
    the run length are small."""
    c = load_config(str(REPO / "configs/perr/lstm.py"))
    c.data.builder_dir = builder_dir
    c.data.max_steps = 8
    c.model.hidden_size = 8
    c.training.num_epochs = 30  # steps_per_epoch 2 -> 60 steps; logged at 50 and 60
    c.mesh.num_devices, c.mesh.data, c.mesh.fsdp = 1, 1, 1
    return c


def logged(workdir: Path) -> dict[int, dict]:
    return {r["step"]: r for r in read_metrics(workdir / "metrics.jsonl") if "train/loss" in r}


@pytest.mark.slow
def test_resume_at_default_logging_settings_logs_what_an_uninterrupted_run_logs(builder_dir,
                                                                               tmp_path):
    config = default_logging_config(builder_dir)
    assert config.training.log_every_steps == 50  # the default, not 1
    train(config, str(tmp_path / "full"), progress=False)
    expected = logged(tmp_path / "full")
    assert sorted(expected) == [50, 60]
    resumed = tmp_path / "resumed"
    for stop in (7, 31):  # kills between log boundaries (checkpoints at odd steps)
        summary = train(config, str(resumed), progress=False, stop_after_steps=stop)
        assert summary["stopped_early"]
    train(config, str(resumed), progress=False)
    got = logged(resumed)
    assert sorted(got) == sorted(expected)
    for step, record in expected.items():
        for key, value in record.items():
            if key.startswith("train/") and key != "train/examples_per_sec":
                assert got[step][key] == value, (step, key)


def _finite(tree) -> bool:
    return all(np.all(np.isfinite(np.asarray(x))) for x in jax.tree_util.tree_leaves(tree)
               if np.issubdtype(np.asarray(x).dtype, np.inexact))


@pytest.mark.slow
def test_a_diverging_run_never_checkpoints_a_non_finite_state(builder_dir, tmp_path):
    from jaxaffect.checkpointing import Checkpoints
    from jaxaffect.train import Setup

    config = default_logging_config(builder_dir)
    config.training.checkpoint_every_steps = 1
    config.optimizer.learning_rate = 1e38
    config.optimizer.decay_every_epochs = 0
    with pytest.raises(NonFiniteLossError) as err:
        train(config, str(tmp_path), progress=False)
    message = str(err.value)
    assert "None" not in message and "clip_ids clip" in message
    ckpts = Checkpoints(tmp_path)
    steps = list(ckpts.latest.all_steps())
    failed_at = int(message.split(":")[0].split()[-1])
    assert all(s < failed_at for s in steps)
    abstract = Setup(config).abstract_sharded
    for step in steps:
        state = ckpts.restore_latest(abstract, None, step=step)
        assert _finite((state.params, state.opt_state)), step
    ckpts.close()
    if steps:
        assert f"last good checkpoint (step {max(steps)}" in message
    else:
        assert "no checkpoint had been written yet" in message


@pytest.mark.slow
def test_a_first_step_that_diverges_says_no_checkpoint_exists(builder_dir, tmp_path):
    config = default_logging_config(builder_dir)
    config.optimizer.learning_rate = float("inf")
    with pytest.raises(NonFiniteLossError, match="no checkpoint had been written yet"):
        train(config, str(tmp_path), progress=False)


@pytest.mark.parametrize("field,value,message", [
    ("training.batch_size", 0, "training.batch_size=0: must be a positive integer"),
    ("training.batch_size", -1, "training.batch_size=-1"),
    ("training.num_epochs", 0, "training.num_epochs=0"),
    ("mesh.data", 3, "mesh: data=3 x fsdp=1 != 8 devices"),
    ("mesh.num_devices", 99, "mesh.num_devices=99"),
    ("training.batch_size", 4096, "split 'train' with training.batch_size=4096"),
    ("data.validation_fraction", 0.0, "the validation split is empty"),
])
def test_impossible_settings_are_refused_before_the_workdir_exists(builder_dir, tmp_path,
                                                                  field, value, message):
    config = default_logging_config(builder_dir)
    config.mesh.num_devices, config.mesh.data = 0, -1
    section, key = field.split(".")
    config[section][key] = value
    workdir = tmp_path / "never"
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        train(config, str(workdir), progress=False)
    assert not workdir.exists()


def test_cli_config_errors_are_one_line(tmp_path, capsys):
    from jaxaffect import cli

    bad = tmp_path / "bad.py"
    bad.write_text("def get_config(arg=None):\n    return {\n")
    workdir = tmp_path / "w"
    assert cli.main(["train", "--config", str(bad), "--workdir", str(workdir)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "bad.py:2: syntax error" in err[0]
    assert cli.main(["train", "--config", str(REPO / "configs/perr/lstm.py") + ":labels=none",
                     "--workdir", str(workdir)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "labels=" in err[0]
    assert cli.main(["train", "--config", str(REPO / "configs/perr/lstm.py"),
                     "--workdir", str(workdir), "--config.training.batch_size=0"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "training.batch_size=0" in err[0]
    assert not workdir.exists()


@pytest.mark.slow
def test_rerun_in_an_existing_workdir(builder_dir, tmp_path, capsys):
    config = default_logging_config(builder_dir)
    config.training.num_epochs = 2
    workdir = tmp_path / "run"
    first = train(config, str(workdir), progress=False)
    assert first["finished"]
    capsys.readouterr()
    again = train(config, str(workdir), progress=False)  # same config: resumes (nothing to do)
    assert again["steps"] == first["steps"]
    assert f"resuming {workdir} from step {first['steps']}" in capsys.readouterr().out

    changed = default_logging_config(builder_dir)
    changed.training.num_epochs = 2
    changed.training.batch_size = 8
    before = (workdir / "metrics.jsonl").read_text()
    with pytest.raises(ConfigError, match=r"training\.batch_size: 16 -> 8.*--overwrite"):
        train(changed, str(workdir), progress=False)
    assert (workdir / "metrics.jsonl").read_text() == before  # nothing was touched

    longer = default_logging_config(builder_dir)
    longer.training.num_epochs = 3
    with pytest.raises(ConfigError, match="training.num_epochs: 2 -> 3"):
        train(longer, str(workdir), progress=False)
    more = train(longer, str(workdir), progress=False, allow_config_change=True)
    assert more["steps"] == 3 * first["steps"] // 2

    fresh = train(changed, str(workdir), progress=False, overwrite=True)
    records = read_metrics(workdir / "metrics.jsonl")
    assert fresh["finished"] and records[0]["step"] == 0
    assert [r for r in records if "param_count" in r] == records[:1]  # only the new run
    assert max(r["step"] for r in records) == fresh["steps"] == records[0]["total_steps"]


@pytest.mark.parametrize("size", [1, 7, 4097, 100_003])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_the_state_screen_catches_every_non_finite_element(size, bad):
    """`sum_is_finite` (the train step's screen) against numpy, jitted and not: a NaN or an
    infinity anywhere in any leaf fails it; large finite values whose sum overflows fail it
    too, and `all_finite` (the host's confirmation) then says the state is finite."""
    from jaxaffect.train import all_finite, sum_is_finite

    rng = np.random.default_rng(size)
    for screen in (sum_is_finite, jax.jit(sum_is_finite)):
        for pos in {0, size // 2, size - 1}:
            x = rng.normal(size=size).astype(np.float32)
            x[pos] = bad
            tree = {"a": np.ones(3, np.float32), "b": (x, np.arange(4))}
            assert not np.all(np.isfinite(x))
            assert not bool(screen(tree)) and not bool(all_finite(tree))
        finite = {"a": rng.normal(size=size).astype(np.float32), "steps": np.arange(3)}
        assert bool(screen(finite)) and bool(all_finite(finite))
    huge = {"a": np.full(size + 1, 3e38, np.float32)}  # finite, sum overflows
    assert not bool(sum_is_finite(huge)) and bool(all_finite(huge))
    # the trainer's confirmation of a failed screen, on a state
    from jaxaffect.train import TrainState, state_is_finite

    assert state_is_finite(TrainState(step=np.int32(1), params=huge, opt_state=huge))
    broken = {"a": np.array([1.0, np.nan], np.float32)}
    assert not state_is_finite(TrainState(step=np.int32(1), params=huge, opt_state=broken))
