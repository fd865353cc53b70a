r"""jaxaffect train --config configs/lirec/joint.py:coupling=rel_to_int \
      --workdir runs/lirec_joint

LIReC joint interactions and relationships (Eqs. 5-6, lambda = 1.5), paper Table 3,
Table 2 "Joint" and Table 7 "Int + Rel". The relationships config (configs/lirec/
relationships.py) with the setting and the coupling changed.

Config argument (comma-separated):
  coupling=rel_to_int|int_to_rel|both|none   Table 3 rows "Rel. -> Int." (Eq. 5; the best row,
                                             Table 2 "Joint"), "Rel. <- Int.", "Rel. <-> Int.";
                                             "none" is plain multi-task learning (not a row)
  num_clips=N                 other clips of the pair in V (default 18)
  released                    the released code's model and optimiser
  data=synthetic|moviegraphs  data_dir default: the demo corpus, or ~/tensorflow_datasets
  runlocal                    a tiny debug run
"""

from __future__ import annotations

from collections.abc import Callable

import ml_collections

from jaxaffect.config_loading import parse_arg
from jaxaffect.families.lirec.configs import common, relationships

TABLE3_COUPLINGS = ("both", "int_to_rel", "rel_to_int")
ARGS: dict[str, object] = {"coupling": "rel_to_int", "num_clips": 18, **common.ARGS}


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    a = parse_arg(arg, ARGS)
    c = relationships.build(num_clips=a.num_clips, data=a.data)
    c.setting = "joint"
    c.name = "lirec_joint"
    c.model.coupling = a.coupling  # rel_to_int | int_to_rel | both | none (Table 3)
    return common.finish(c, a)


def sweep(add: Callable[..., None], arg: str | None = None) -> None:
    """Table 3: one run per coupling."""
    del arg
    for coupling in TABLE3_COUPLINGS:
        add(config_arg=f"coupling={coupling}")
