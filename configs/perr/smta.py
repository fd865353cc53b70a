r"""SMTA (Synchronous Modal-Temporal Attention) on ERATO, paper Sec. 4.2 and Table 3 rows 6-9.

  jaxaffect train --config configs/perr/smta.py:attention=transformer,labels=fine,data=erato \
      --workdir runs/smta_transformer

Config argument (comma-separated):
  attention=dot|nonlocal|multihead|transformer   the attention form of A_t (Table 3)
  labels=fine|coarse                             5 fine classes or 3 coarse classes
  data=synthetic|erato                           data_dir default: the demo corpus build, or
                                                 ~/tensorflow_datasets (override with
                                                 --config.data.data_dir=... or .builder_dir=...)
  runlocal                                       a tiny debug run
"""

from jaxaffect.families.perr.task import default_config


def get_config(arg=None):
    return default_config("smta", arg)


def sweep(add, arg=None):
    """Table 3, SMTA rows: one run per attention form and label set."""
    del arg
    for labels in ("fine", "coarse"):
        for attention in ("dot", "nonlocal", "multihead", "transformer"):
            add(config_arg=f"attention={attention},labels={labels}")
