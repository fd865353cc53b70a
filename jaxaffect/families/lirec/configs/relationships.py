r"""jaxaffect train --config configs/lirec/relationships.py:num_clips=18 \
      --workdir runs/lirec_relationships

LIReC relationship classification from several clips of a pair (Eqs. 3-4), paper Table 2
"Rel. only", Table 7 "Rel only" and Fig. 5 (number of clips). The interactions config
(configs/lirec/interactions.py, which lists every field) with the setting and V changed.

Config argument (comma-separated):
  num_clips=N                 other clips of the pair besides the clip itself in V (default 18,
                              Sec. 4.3; sampled in training, uniformly spread at evaluation)
  released                    the released code's model and optimiser
  data=synthetic|moviegraphs  data_dir default: the demo corpus, or ~/tensorflow_datasets
  runlocal                    a tiny debug run
"""

from __future__ import annotations

from collections.abc import Callable

import ml_collections

from jaxaffect.config_loading import parse_arg
from jaxaffect.families.lirec.configs import common, interactions

FIG5_CLIPS = (1, 2, 4, 6, 8, 12, 18)
ARGS: dict[str, object] = {"num_clips": 18, **common.ARGS}


def build(*, num_clips: int = 18, data: str = "synthetic") -> ml_collections.ConfigDict:
    """The relationships config before `released` and `runlocal` (joint starts from it)."""
    c = interactions.build(data=data)
    c.setting = "relationships"
    c.name = "lirec_relationships"
    c.data.num_clips = num_clips  # the clip + up to num_clips other clips of its pair in V
    return c


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    a = parse_arg(arg, ARGS)
    return common.finish(build(num_clips=a.num_clips, data=a.data), a)


def sweep(add: Callable[..., None], arg: str | None = None) -> None:
    """Fig. 5: relationship accuracy against the size of V (18 is Table 2 "Rel. only")."""
    del arg
    for n in FIG5_CLIPS:
        add(config_arg=f"num_clips={n}")
