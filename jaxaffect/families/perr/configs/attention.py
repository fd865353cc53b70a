r"""jaxaffect train --config configs/perr/attention.py:attention=multihead,labels=fine,data=erato \
      --workdir runs/attention_multihead

Attention fusion without temporal context on ERATO, paper Table 3 rows 2-5: the attention A_t
is computed over the M modality features of step t only (no LSTM state in the tokens),
followed by the same per-modality temporal LSTMs and heads as SMTA.

Config argument: attention=dot|nonlocal|multihead|transformer, labels=fine|coarse,
data=synthetic|erato, runlocal, as configs/perr/smta.py. The fields are smta.py's except
`name` and `model.fusion`.
"""

from __future__ import annotations

from collections.abc import Callable

import ml_collections

from jaxaffect.families.perr.configs import smta


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    c = smta.get_config(arg)
    c.name = f"attention_{c.model.attention}"
    c.model.fusion = "attention"
    return c


def sweep(add: Callable[..., None], arg: str | None = None) -> None:
    """Table 3, attention rows: one run per attention form and label set (the points of
    smta.py's sweep)."""
    smta.sweep(add, arg)
