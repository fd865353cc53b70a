r"""jaxaffect train --config configs/perr/lstm.py:labels=fine,data=erato --workdir runs/lstm

The plain LSTM baseline on ERATO, paper Table 3 row 1: an LSTM over the summed modality
features, without attention, followed by the per-modality temporal LSTMs and heads.

Config argument: labels=fine|coarse, data=synthetic|erato, runlocal, as configs/perr/smta.py
(attention= is accepted there and ignored by this model). The fields are smta.py's except
`name` and `model.fusion`.
"""

from __future__ import annotations

from collections.abc import Callable

import ml_collections

from jaxaffect.families.perr.configs import smta


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    c = smta.get_config(arg)
    c.name = "lstm"
    c.model.fusion = "lstm"
    return c


def sweep(add: Callable[..., None], arg: str | None = None) -> None:
    """Table 3, LSTM row, both label sets."""
    del arg
    for labels in ("fine", "coarse"):
        add(config_arg=f"labels={labels}")
