r"""The plain LSTM baseline on ERATO, paper Table 3 row 1.

An LSTM over the summed modality features, without attention, followed by the per-modality
temporal LSTMs and heads.

  jaxaffect train --config configs/perr/lstm.py:labels=fine,data=erato --workdir runs/lstm

Config argument: labels=fine|coarse, data=synthetic|erato, runlocal (see configs/perr/smta.py).
"""

from jaxaffect.families.perr.task import default_config


def get_config(arg=None):
    return default_config("lstm", arg)


def sweep(add, arg=None):
    """Table 3, LSTM row, both label sets."""
    del arg
    for labels in ("fine", "coarse"):
        add(config_arg=f"labels={labels}")
