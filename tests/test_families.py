"""Families are found by convention: a new family is a new folder, not edits across the tree."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from toy_family import write_toy_family

from jaxaffect import family, task
from jaxaffect.demo_runner import Demo

REPO = Path(__file__).resolve().parents[1]

@pytest.fixture
def toy_family(tmp_path, monkeypatch):
    write_toy_family(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    for name in [m for m in sys.modules if m.startswith("jaxaffect.families.toyfam")]:
        del sys.modules[name]


def test_builtin_families_declare_loadable_parts():
    fams = family.families()
    assert {"perr", "tam", "lirec"} <= set(fams)
    assert family.default_family(fams) == "perr"
    for name, ref in family.task_classes().items():
        assert issubclass(family.load(ref), task.Task), name
    for fam in fams.values():
        if fam.demo:
            assert issubclass(family.load(fam.demo), Demo), fam.name
        for corpus in fam.corpora.values():
            assert callable(family.load(corpus.writer))
        for conv in fam.converters.values():
            assert callable(family.load(conv.run))


def test_a_family_folder_on_sys_path_is_found_without_shared_changes(toy_family):
    fams = family.families()
    assert "toyfam" in fams and family.task_classes()["toy"].endswith(":ToyTask")
    assert "toycorpus" in family.corpora()
    from jaxaffect import cli

    sub = next(a for a in cli.build_parser()._actions if a.dest == "command")
    demo_arg = next(a for a in sub.choices["demo"]._actions if a.dest == "family")
    assert "toyfam" in demo_arg.choices and "TOY-DEMO-HELP" in demo_arg.help


def test_a_task_name_declared_twice_is_refused(tmp_path, monkeypatch):
    pkg = tmp_path / "jaxaffect" / "families" / "clash"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text(
        "from jaxaffect.family import Family\n"
        "FAMILY = Family(name='clash', summary='x', tasks={'perr': 'x:y'})\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        with pytest.raises(family.FamilyError, match="task 'perr' is declared by both"):
            family.families()
    finally:
        sys.modules.pop("jaxaffect.families.clash", None)


def test_a_family_without_declaration_is_refused(tmp_path, monkeypatch):
    pkg = tmp_path / "jaxaffect" / "families" / "bare"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        with pytest.raises(family.FamilyError, match="must declare FAMILY"):
            family.families()
    finally:
        sys.modules.pop("jaxaffect.families.bare", None)


def test_register_refuses_a_second_class_under_a_taken_name():
    class A(task.Task):  # abstract methods are never called here
        pass

    class B(task.Task):
        pass

    task.register("test-only-name")(A)
    task.register("test-only-name")(A)  # the same class again is fine (re-import)
    with pytest.raises(ValueError, match="already registered"):
        task.register("test-only-name")(B)
    with pytest.raises(ValueError, match="unknown task 'no-such-task'"):
        task.task_class("no-such-task")


@pytest.mark.slow
def test_throwaway_family_in_the_cli_demo_help_and_train(toy_family, tmp_path):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(toy_family), str(REPO)]),
           "JAX_PLATFORMS": "cpu"}
    cmd = [sys.executable, "-m", "jaxaffect.cli"]
    helptext = subprocess.run(cmd + ["demo", "--help"], env=env, capture_output=True,
                              text=True, check=True).stdout
    flat = re.sub(r"-\s+", "-", " ".join(helptext.split()))  # argparse wraps at hyphens
    assert "toyfam" in flat and "TOY-DEMO-HELP" in flat
    workdir = tmp_path / "run"
    done = subprocess.run(cmd + ["train", "--config", str(toy_family / "toy_config.py"),
                                 "--workdir", str(workdir), "--no_progress"],
                          env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    summary = json.loads((workdir / "train_summary.json").read_text())
    assert summary["finished"] and summary["steps"] == 2 * (32 // 8)
    assert "macro_f1" in summary["best_validation"]
