r"""LIReC interaction classification (Eqs. 1-2), paper Table 1, Table 4, Table 2 "Int. only",
Table 7 "Int only".

  jaxaffect train --config configs/lirec/interactions.py:modalities=visual+text+tracks \
      --workdir runs/lirec_interactions

Config argument (comma-separated):
  modalities=visual|text|visual+text|visual+text+tracks   Table 1 rows 1-4 ("text" is the
                                                          paper's "Dialog"); the last row is
                                                          Table 2 "Int. only" and Table 7
  temporal_pool=avg|sum|max   Table 4 rows. The moviegraphs_lirec build stores clip features
                              already max-pooled (Sec. 4.1), so on it the three rows coincide;
                              the option matters for builds with per-segment features
  released                    the released code's model and optimiser (models.lirec.RELEASED_CODE)
  data=synthetic|moviegraphs  data_dir default: the demo corpus, or ~/tensorflow_datasets
  runlocal                    a tiny debug run
"""

from jaxaffect.families.lirec.task import default_config

TABLE1_ROWS = ("visual", "text", "visual+text", "visual+text+tracks")


def get_config(arg=None):
    return default_config("interactions", arg)


def sweep(add, arg=None):
    """Table 1 (modalities) and Table 4 (temporal aggregation, all modalities)."""
    del arg
    for modalities in TABLE1_ROWS:
        add(config_arg=f"modalities={modalities}")
    for pool in ("avg", "sum", "max"):
        add(config_arg=f"temporal_pool={pool}")
