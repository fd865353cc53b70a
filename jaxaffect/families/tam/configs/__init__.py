"""The TAM config files (`configs/tam/` links here, so both paths name the same files).

`ctm.py` (fusion modules without pretraining), `finetune.py` (from a pretraining run) and
`pretrain.py` (time-sync-comment pretraining): each defines `get_config(arg)` and `sweep(add)`;
`common.py` holds the benchmark table that `ctm.py` and the classification task read.
"""
