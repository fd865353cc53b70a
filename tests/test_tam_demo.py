"""The TAM demo's configs and table (the demo itself runs for minutes: see README)."""

import numpy as np

from jaxaffect.families.tam import demo as tam_demo


def test_demo_configs_share_the_encoder_and_differ_only_in_init():
    s = tam_demo.demo_settings(True)
    pre = tam_demo.pretrain_config("/tsc", s, 1)
    scratch = tam_demo.finetune_config("/lab", s, 1, None)
    fine = tam_demo.finetune_config("/lab", s, 1, "/runs/pre")
    assert pre.task == "tam_pretrain" and scratch.task == fine.task == "tam"
    for key in ("width", "num_layers", "num_heads", "max_segments"):
        assert pre.model[key] == scratch.model[key] == fine.model[key], key
    assert not scratch.init_from.workdir and fine.init_from.workdir == "/runs/pre"
    assert tuple(map(tuple, fine.init_from.subtrees)) == (("encoder", "encoder"),)
    assert scratch.data.train_per_class == fine.data.train_per_class == s["labels_per_class"]
    assert scratch.training.num_epochs == fine.training.num_epochs
    assert pre.seed == scratch.seed == fine.seed == 1


def test_table_reports_mean_and_sample_std():
    results = {"a": [{"accuracy": 0.1, "macro_f1": 0.2}, {"accuracy": 0.3, "macro_f1": 0.2}]}
    table = tam_demo.format_table(list(results.items()), [0, 1])
    assert f"| a | 20.00 ± {100 * np.std([0.1, 0.3], ddof=1):.2f} | 20.00 ± 0.00 |" in table
