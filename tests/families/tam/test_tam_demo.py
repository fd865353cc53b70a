"""The TAM demo's configs and table (the demo itself runs for minutes: see README)."""

import numpy as np

from jaxaffect.demo_runner import format_table
from jaxaffect.evaluate import summarize_seeds
from jaxaffect.families.tam.demo import TAMDemo


def test_demo_configs_share_the_encoder_and_differ_only_in_init():
    demo = TAMDemo()
    s = demo.settings(True)
    arms = {a.name: a for a in demo.arms(s)}
    assert list(arms) == ["pretrain", "scratch", "finetune"] and not arms["pretrain"].in_table
    data, runs = {"tsc": "/tsc", "labelled": "/lab"}, {"pretrain": "/runs/pre"}
    pre = arms["pretrain"].config(data, s, 1, {})
    scratch = arms["scratch"].config(data, s, 1, runs)
    fine = arms["finetune"].config(data, s, 1, runs)
    assert pre.data.builder_dir == "/tsc" and scratch.data.builder_dir == "/lab"
    assert pre.task == "tam_pretrain" and scratch.task == fine.task == "tam"
    for key in ("width", "num_layers", "num_heads", "max_segments"):
        assert pre.model[key] == scratch.model[key] == fine.model[key], key
    assert not scratch.init_from.workdir and fine.init_from.workdir == "/runs/pre"
    assert tuple(map(tuple, fine.init_from.subtrees)) == (("encoder", "encoder"),)
    assert scratch.data.train_per_class == fine.data.train_per_class == s["labels_per_class"]
    assert scratch.training.num_epochs == fine.training.num_epochs
    assert pre.seed == scratch.seed == fine.seed == 1


def test_table_reports_mean_and_sample_std():
    results = [{"accuracy": 0.1, "macro_f1": 0.2}, {"accuracy": 0.3, "macro_f1": 0.2}]
    table = format_table([("a", summarize_seeds(results))], TAMDemo.table_keys, 2)
    assert f"| a | 20.00 ± {100 * np.std([0.1, 0.3], ddof=1):.2f} | 20.00 ± 0.00 |" in table
