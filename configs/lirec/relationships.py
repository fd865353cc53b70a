r"""LIReC relationship classification from several clips of a pair (Eqs. 3-4), paper Table 2
"Rel. only", Table 7 "Rel only" and Fig. 5 (number of clips).

  jaxaffect train --config configs/lirec/relationships.py:num_clips=18 \
      --workdir runs/lirec_relationships

Config argument (comma-separated):
  num_clips=N                 other clips of the pair besides the clip itself in V (default 18,
                              Sec. 4.3; sampled in training, uniformly spread at evaluation)
  released                    the released code's model and optimiser
  data=synthetic|moviegraphs  data_dir default: the demo corpus, or ~/tensorflow_datasets
  runlocal                    a tiny debug run
"""

from jaxaffect.families.lirec.task import default_config

FIG5_CLIPS = (1, 2, 4, 6, 8, 12, 18)


def get_config(arg=None):
    return default_config("relationships", arg)


def sweep(add, arg=None):
    """Fig. 5: relationship accuracy against the size of V (18 is Table 2 "Rel. only")."""
    del arg
    for n in FIG5_CLIPS:
        add(config_arg=f"num_clips={n}")
