"""Config files, config strings and --config.key=value overrides."""

from pathlib import Path

import pytest

from jaxaffect.config_loading import (
    ConfigError,
    apply_overrides,
    config_from_json,
    config_to_json,
    load_config,
    parse_arg,
)

REPO = Path(__file__).resolve().parents[1]


def test_parse_arg_types_and_flags():
    a = parse_arg("attention=dot,runlocal", {"attention": "transformer", "runlocal": False})
    assert a.attention == "dot" and a.runlocal is True
    with pytest.raises(ConfigError, match="unknown"):
        parse_arg("colour=red", {"attention": "transformer"})


@pytest.mark.parametrize("name,fusion", [("smta", "smta"), ("attention", "attention"),
                                         ("lstm", "lstm")])
def test_perr_configs_load(name, fusion):
    c = load_config(str(REPO / f"configs/perr/{name}.py") + ":attention=nonlocal,labels=coarse")
    assert c.model.fusion == fusion
    assert c.labels == "coarse"
    # The paper's schedule is the default (Sec. 5.1).
    assert c.optimizer.learning_rate == 5e-3 and c.optimizer.decay_every_epochs == 15
    assert c.training.num_epochs == 50 and c.training.batch_size == 16
    if fusion != "lstm":
        assert c.model.attention == "nonlocal"


def test_runlocal_is_small():
    c = load_config(str(REPO / "configs/perr/smta.py") + ":runlocal")
    assert c.training.num_epochs <= 2 and c.model.hidden_size <= 32


def test_bad_values_are_rejected():
    with pytest.raises(ValueError, match="attention"):
        load_config(str(REPO / "configs/perr/smta.py") + ":attention=fancy")
    with pytest.raises(ConfigError, match="not found"):
        load_config("no/such/config.py")


def test_overrides_are_typed():
    c = load_config(str(REPO / "configs/perr/smta.py"))
    apply_overrides(c, ["--config.training.batch_size=32", "--config.optimizer.learning_rate=1e-3",
                        "--config.loss.class_weighting=true", "--config.data.data_dir=/x"])
    assert c.training.batch_size == 32 and isinstance(c.training.batch_size, int)
    assert c.optimizer.learning_rate == pytest.approx(1e-3)
    assert c.loss.class_weighting is True and c.data.data_dir == "/x"
    with pytest.raises(ConfigError, match="integer"):
        apply_overrides(c, ["--config.training.batch_size=big"])
    with pytest.raises(ConfigError, match="no config field"):
        apply_overrides(c, ["--config.training.nope=1"])


def test_json_round_trip():
    c = load_config(str(REPO / "configs/perr/lstm.py"))
    back = config_from_json(config_to_json(c))
    assert back.to_dict() == config_from_json(config_to_json(back)).to_dict()
    assert back.model.fusion == "lstm"


def test_sweeps_expand():
    import importlib.util

    spec = importlib.util.spec_from_file_location("sweep", REPO / "launch/sweep.py")
    sweep = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(sweep)
    args = sweep.expand(str(REPO / "configs/perr/smta.py"), extra="data=erato")
    assert len(args) == 8 and all(a.endswith("data=erato") for a in args)
    cmds = sweep.commands(str(REPO / "configs/perr/lstm.py"), "runs/t3")
    assert [c[3] for c in cmds] == [str(REPO / "configs/perr/lstm.py") + ":labels=fine",
                                    str(REPO / "configs/perr/lstm.py") + ":labels=coarse"]
