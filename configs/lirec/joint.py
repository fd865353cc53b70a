r"""LIReC joint interactions and relationships (Eqs. 5-6, lambda = 1.5), paper Table 3,
Table 2 "Joint" and Table 7 "Int + Rel".

  jaxaffect train --config configs/lirec/joint.py:coupling=rel_to_int \
      --workdir runs/lirec_joint

Config argument (comma-separated):
  coupling=rel_to_int|int_to_rel|both|none   Table 3 rows "Rel. -> Int." (Eq. 5; the best row,
                                             Table 2 "Joint"), "Rel. <- Int.", "Rel. <-> Int.";
                                             "none" is plain multi-task learning (not a row)
  num_clips=N                 other clips of the pair in V (default 18)
  released                    the released code's model and optimiser
  data=synthetic|moviegraphs  data_dir default: the demo corpus, or ~/tensorflow_datasets
  runlocal                    a tiny debug run
"""

from jaxaffect.families.lirec.task import default_config


def get_config(arg=None):
    return default_config("joint", arg)


def sweep(add, arg=None):
    """Table 3: one run per coupling."""
    del arg
    for coupling in ("both", "int_to_rel", "rel_to_int"):
        add(config_arg=f"coupling={coupling}")
