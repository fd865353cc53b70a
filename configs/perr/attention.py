r"""Attention fusion without temporal context on ERATO, paper Table 3 rows 2-5.

The attention A_t is computed over the M modality features of step t only (no LSTM state in
the tokens), followed by the same per-modality temporal LSTMs and heads as SMTA.

  jaxaffect train --config configs/perr/attention.py:attention=transformer,labels=fine,data=erato \
      --workdir runs/attention_transformer

Config argument: attention=dot|nonlocal|multihead|transformer, labels=fine|coarse,
data=synthetic|erato, runlocal (see configs/perr/smta.py).
"""

from jaxaffect.families.perr.task import default_config


def get_config(arg=None):
    return default_config("attention", arg)


def sweep(add, arg=None):
    """Table 3, attention rows: one run per attention form and label set."""
    del arg
    for labels in ("fine", "coarse"):
        for attention in ("dot", "nonlocal", "multihead", "transformer"):
            add(config_arg=f"attention={attention},labels={labels}")
