r"""jaxaffect train --config configs/lirec/characters.py:setting=characters_weak,negatives=sum_max \
      --workdir runs/lirec_characters_weak

LIReC: who is interacting (Eqs. 7-14), paper Tables 5 and 6 and the lower rows of Table 7.
The interactions config (configs/lirec/interactions.py, which lists every field) with the
setting and the pair-selection loss fields changed.

Config argument (comma-separated):
  setting=characters_full|characters_weak|all_full|all_weak
      characters_*: interactions x character pairs (Table 5, Table 7 "Int + Char");
      all_*: interactions, relationships and pairs (Table 6, Table 7 "Int + Rel + Char")
  selection=multinomial|argmax   weak supervision: sample the pair from the scores (Sec. 3.2)
                                 or take the argmax (Eq. 9)
  negatives=sum|sum_max          all negatives, or hard negatives (sum over pairs of the max over
                                 labels) after loss.burn_in_epochs (20) epochs
  released                       the released code's model and optimiser
  data=synthetic|moviegraphs     data_dir default: the demo corpus, or ~/tensorflow_datasets
  runlocal                       a tiny debug run

Rows: Table 5 "Full, sum" = setting=characters_full; "Weak, sum" = characters_weak with
selection=argmax; "Weak, sum, multinomial" = characters_weak; "Weak, sum-max, multinomial" =
characters_weak,negatives=sum_max. Table 6 "Full, sum" = all_full; "Weak, sum, multinomial" =
all_weak; "Weak, sum-max, multinomial" = all_weak,negatives=sum_max. The "Random" rows are
computed exactly by LIReCTask.random_baselines (and reported by the demo).
"""

from __future__ import annotations

from collections.abc import Callable

import ml_collections

from jaxaffect.config_loading import ConfigError, parse_arg
from jaxaffect.families.lirec import batches as lb
from jaxaffect.families.lirec.configs import common, interactions

SETTINGS = tuple(s for s in lb.SETTINGS if s in lb.CHARACTER_SETTINGS)
TABLE5_ROWS = ("setting=characters_full",
               "setting=characters_weak,selection=argmax",
               "setting=characters_weak,selection=multinomial",
               "setting=characters_weak,selection=multinomial,negatives=sum_max")
TABLE6_ROWS = ("setting=all_full",
               "setting=all_weak,selection=multinomial",
               "setting=all_weak,selection=multinomial,negatives=sum_max")
ARGS: dict[str, object] = {"setting": "characters_full", "selection": "multinomial",
                           "negatives": "sum", **common.ARGS}


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    a = parse_arg(arg, ARGS)
    if a.setting not in SETTINGS:
        raise ConfigError(f"setting={a.setting!r}: one of {SETTINGS}")
    c = interactions.build(data=a.data)
    c.setting = a.setting
    c.name = f"lirec_{a.setting}"
    c.loss.pair_selection = a.selection  # weak supervision: multinomial | argmax (Eq. 9)
    c.loss.negatives = a.negatives  # sum | sum_max (after loss.burn_in_epochs)
    return common.finish(c, a)


def sweep(add: Callable[..., None], arg: str | None = None) -> None:
    """Tables 5 and 6: one run per row."""
    del arg
    for row in TABLE5_ROWS + TABLE6_ROWS:
        add(config_arg=row)
