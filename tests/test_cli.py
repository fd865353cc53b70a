"""The command line: help, clear errors on bad input, multi-seed train/eval, and the demo."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from jaxaffect import cli
from jaxaffect.data.build import build_dataset
from jaxaffect.families.perr import erato_format as ef
from jaxaffect.families.perr.erato_format import write_random_manual_dir

REPO = Path(__file__).resolve().parents[1]
DIMS = {"person_a": 4, "person_b": 4, "background": 3, "audio": 3, "text": 2}


def test_help_lists_every_command(capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    for command in ("demo", "extract", "build", "train", "eval", "predict", "synthesize"):
        assert command in out


def test_build_reports_the_bad_file(tmp_path, capsys):
    manual = tmp_path / "manual"
    write_random_manual_dir(manual, num_clips=4, dims=DIMS, max_steps=5, seed=0)
    (manual / "annotations.csv").write_text("clip_id,label,split\nclip00000,furious,train\n")
    code = cli.main(["build", "erato", "--manual_dir", str(manual), "--data_dir",
                     str(tmp_path / "tfds")])
    err = capsys.readouterr().err
    assert code == 1
    assert "annotations.csv:2" in err and "furious" in err
    assert not list((tmp_path / "tfds").glob("erato/*/dataset_info.json"))


def test_unknown_flags_and_overrides_are_rejected(tmp_path, capsys):
    with pytest.raises(SystemExit):
        cli.main(["predict", "--workdir", str(tmp_path), "--features", "x.npz", "--bogus"])
    code = cli.main(["train", "--config", str(REPO / "configs/perr/lstm.py"), "--workdir",
                     str(tmp_path), "--config.training.nope=1"])
    assert code == 1 and "no config field" in capsys.readouterr().err


def test_predict_names_a_missing_workdir(tmp_path, capsys):
    code = cli.main(["predict", "--workdir", str(tmp_path / "nothing"), "--features", "x.npz"])
    assert code == 1 and "config.json" in capsys.readouterr().err


@pytest.mark.slow
def test_train_and_eval_over_seeds_then_predict(tmp_path, capsys):
    manual = tmp_path / "manual"
    write_random_manual_dir(manual, num_clips=40, dims=DIMS, max_steps=8, seed=1)
    builder_dir = build_dataset("erato", str(manual), str(tmp_path / "tfds"))
    workdir = tmp_path / "runs"
    common = [f"--config.data.builder_dir={builder_dir}", "--config.data.max_steps=8",
              "--config.training.batch_size=8", "--config.training.num_epochs=1",
              "--config.mesh.num_devices=1", "--config.mesh.data=1"]
    assert cli.main(["train", "--no_progress", "--config",
                     str(REPO / "configs/perr/smta.py") + ":attention=dot,runlocal",
                     "--workdir", str(workdir), "--seeds", "0,1", *common]) == 0
    assert cli.main(["eval", "--workdir", str(workdir), "--seeds", "0,1"]) == 0
    out = capsys.readouterr().out
    assert "mean ± std" in out
    summary = json.loads((workdir / "runs_test.json").read_text())
    assert summary["seeds"] == [0, 1] and summary["test"]["macro_f1"]["n"] == 2
    per_seed = [json.loads((workdir / f"seed_{s}" / "eval_test.json").read_text())
                for s in (0, 1)]
    mean = sum(r["metrics"]["macro_f1"] for r in per_seed) / 2
    assert summary["test"]["macro_f1"]["mean"] == pytest.approx(mean)
    configs = [json.loads((workdir / f"seed_{s}" / "config.json").read_text()) for s in (0, 1)]
    assert [c["seed"] for c in configs] == [0, 1]

    clip = next(iter(sorted((manual / "features").glob("*.npz"))))
    assert cli.main(["predict", "--workdir", str(workdir / "seed_0"), "--features",
                     str(clip)]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[0].split(": ")[1] in ef.FINE_LABELS
    assert len(printed) == 1 + len(ef.FINE_LABELS)

    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip file")
    assert cli.main(["predict", "--workdir", str(workdir / "seed_0"), "--features",
                     str(bad)]) == 1
    assert "bad.npz" in capsys.readouterr().err


@pytest.mark.slow
def test_demo_end_to_end_at_toy_size(tmp_path, monkeypatch):
    from jaxaffect.families.perr import demo

    monkeypatch.setattr(demo.PERRDemo, "settings", lambda self, quick: {
        "num_clips": 150, "epochs": 1, "hidden": 8, "decay_every": 0})
    code = cli.main(["demo", "--quick", "--no_progress", "--workdir", str(tmp_path / "runs"),
                     "--data_home", str(tmp_path / "home")])
    assert code == 0
    results = json.loads((tmp_path / "runs" / "results.json").read_text())
    names = list(results["rows"])
    assert names[0].startswith("majority") and names[1:] == ["lstm", "smta_transformer"]
    for row in results["rows"].values():
        for key in ("micro_f1", "macro_f1", "coarse/micro_f1", "coarse/macro_f1"):
            assert 0.0 <= row[key]["mean"] <= 1.0
    corpus = tmp_path / "home" / "synthetic_erato_150" / "manual"
    test_labels = [a.label for a in ef.read_annotations(corpus) if a.split == "test"]
    share = test_labels.count("neutral") / len(test_labels)  # majority class: neutral
    majority = results["rows"][names[0]]
    assert majority["micro_f1"]["mean"] == pytest.approx(share)
    assert majority["macro_f1"]["mean"] == pytest.approx(2 * share / (1 + share) / 5)
    table = (tmp_path / "runs" / "results.md").read_text()
    assert "Synthetic ERATO-layout corpus" in table and table.count("\n|") >= 4
    for name in ("lstm", "smta_transformer"):
        run = tmp_path / "runs" / name / "seed_0"
        assert (run / "confusion_test.png").exists() and (run / "training_curves.png").exists()
    assert (tmp_path / "runs" / "smta_transformer" / "seed_0" / "attention_0.png").exists()
    assert "synthetic" in (corpus / "README.txt").read_text().lower()


def test_build_offers_every_registered_dataset():
    from jaxaffect.data.build import available_datasets

    sub = next(a for a in cli.build_parser()._actions if a.dest == "command")
    name_arg = next(a for a in sub.choices["build"]._actions if a.dest == "name")
    assert sorted(name_arg.choices) == sorted(available_datasets())


def test_runs_over_splits_and_seeds():
    import argparse

    assert cli._indices("0-3,7", "--splits") == [0, 1, 2, 3, 7]
    with pytest.raises(SystemExit, match="--splits"):
        cli._indices("a-b", "--splits")
    args = argparse.Namespace(workdir="w", seeds="0,1", splits="2-3")
    runs = cli._runs(args)
    assert [r[0] for r in runs] == ["w/split_2/seed_0", "w/split_2/seed_1",
                                    "w/split_3/seed_0", "w/split_3/seed_1"]
    assert runs[1][1] == {"data.split_index": 2, "seed": 1}
    assert cli._runs(argparse.Namespace(workdir="w", seeds=None, splits=None)) == [("w", {})]


def test_every_subcommand_and_flag_has_help_and_version_works(capsys):
    import subprocess
    import sys

    parser = cli.build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    for name, sp in sub.choices.items():
        assert sp.description, name
        for action in sp._actions:
            if action.dest != "help":
                assert action.help, (name, action.dest)
        for action in sp._actions:  # nested (convert <name>)
            choices = getattr(action, "choices", None)
            for sub_name, sub_parser in (choices.items() if isinstance(choices, dict) else ()):
                assert sub_parser.description, (name, sub_name)
    with pytest.raises(SystemExit):
        cli.main(["--version"])
    assert capsys.readouterr().out.startswith("jaxaffect ")
    out = subprocess.run([sys.executable, "-m", "jaxaffect", "--version"], capture_output=True,
                         text=True, check=True).stdout
    assert out.startswith("jaxaffect ")


def test_a_parent_of_seed_runs_is_pointed_at_its_runs(tmp_path, capsys):
    for k in (0, 1):
        (tmp_path / "runs" / f"seed_{k}").mkdir(parents=True)
        (tmp_path / "runs" / f"seed_{k}" / "config.json").write_text("{}")
    assert cli.main(["predict", "--workdir", str(tmp_path / "runs"), "--features", "x.npz"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "seed_0, seed_1" in err[0] and "--workdir" in err[0]
