"""Every config field has a one-line description; docs/configs_<family>.md are current;
`jaxaffect config show` prints fields with descriptions and applies overrides."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from jaxaffect import cli, config_docs
from jaxaffect.family import families

REPO = Path(__file__).resolve().parents[1]
CONFIG_FILES = [p for p in sorted(REPO.glob("configs/*/*.py"))
                if re.search(r"^def get_config\(", p.read_text(), re.M)]


def test_config_files_are_found():
    assert len(CONFIG_FILES) >= 10
    assert {p.parent.name for p in CONFIG_FILES} == set(config_docs.documented_families())


@pytest.mark.parametrize("path", CONFIG_FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_field_has_a_description(path):
    arg, config = config_docs.default_config(path)
    assert config_docs.undescribed(config) == [], (
        f"{path.parent.name}/{path.name}{':' + arg if arg else ''}: add a comment to these "
        "assignments in the config file (or SHARED_FIELD_DOCS for shared sections)")


def test_committed_tables_are_current():
    stale = config_docs.stale_docs(REPO / "docs")
    assert stale == [], f"{stale}: run python -m jaxaffect.config_docs --write docs"


def test_comments_inline_above_and_through_imports():
    source = ("c.a.x = 1  # inline\n"
              "# above, line 1\n# line 2\n"
              "c.a.y = c.a.z = 2\n"
              "\n# not directly above\n\nc.a.w = 3\n"
              "c.a.x = 4  # later: ignored\n")
    assert config_docs.assignment_comments(source) == {
        "a.x": "inline", "a.y": "above, line 1 line 2", "a.z": "above, line 1 line 2"}
    chain = config_docs.source_chain(REPO / "configs/perr/lstm.py")
    assert [p.name for p in chain] == ["lstm.py", "smta.py"]


def test_core_module_names_no_family():
    source = Path(config_docs.__file__).read_text()
    for name in families():
        assert not re.search(rf"\b{name}\b", source), name


def test_config_show_prints_descriptions_and_overrides(capsys):
    spec = str(REPO / "configs/perr/smta.py") + ":labels=coarse"
    assert cli.main(["config", "show", spec, "--config.training.batch_size=8"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"# {spec} --config.training.batch_size=8\n")
    assert re.search(r"^training\.batch_size = 8 +# global batch size", out, re.M)
    assert re.search(r"^labels = 'coarse' +# fine: ", out, re.M)
    assert re.search(r"^data\.validation_fraction = 0\.1 +# of train, carved", out, re.M)
    assert re.search(r"^# optimizer: Paper Sec\. 5\.1", out, re.M)
    fields = [line for line in out.splitlines() if line and not line.startswith("#")]
    assert all("  # " in line for line in fields)

    assert cli.main(["config", "show", spec, "--config.training.nope=1"]) == 1
    assert "no config field" in capsys.readouterr().err
