r"""jaxaffect train --config configs/lirec/interactions.py:modalities=visual+text+tracks \
      --workdir runs/lirec_interactions

LIReC interaction classification (Eqs. 1-2), paper Table 1, Table 4, Table 2 "Int. only",
Table 7 "Int only". The other LIReC configs build on this one (all fields are listed here).

Config argument (comma-separated):
  modalities=visual|text|visual+text|visual+text+tracks   Table 1 rows 1-4 ("text" is the
                                                          paper's "Dialog"); the last row is
                                                          Table 2 "Int. only" and Table 7
  temporal_pool=avg|sum|max   Table 4 rows. The moviegraphs_lirec build stores clip features
                              already max-pooled (Sec. 4.1), so on it the three rows coincide;
                              the option matters for builds with per-segment features
  released                    the released code's model and optimiser (model.RELEASED_CODE)
  data=synthetic|moviegraphs  data_dir default: the demo corpus, or ~/tensorflow_datasets
  runlocal                    a tiny debug run
"""

from __future__ import annotations

from collections.abc import Callable

import ml_collections

from jaxaffect.config_loading import mesh_section, optimizer_section, parse_arg, training_section
from jaxaffect.families.lirec import losses as ll
from jaxaffect.families.lirec.configs import common

TABLE1_ROWS = ("visual", "text", "visual+text", "visual+text+tracks")
ARGS: dict[str, object] = {"modalities": "visual+text+tracks", "temporal_pool": "",
                           **common.ARGS}


def build(*, modalities: str = "visual+text+tracks", temporal_pool: str = "",
          data: str = "synthetic") -> ml_collections.ConfigDict:
    """The interactions config before `released` and `runlocal` (the others start from it)."""
    c = ml_collections.ConfigDict()
    c.task = "lirec"
    # the setting: interactions | relationships | joint | characters_full/weak | all_full/weak
    c.setting = "interactions"
    c.name = "lirec_interactions"
    c.seed = 0

    c.data = ml_collections.ConfigDict()
    c.data.source = data  # synthetic | moviegraphs
    c.data.name = "moviegraphs_lirec"  # TFDS dataset; its newest version in data_dir is read
    # TFDS data_dir holding the build of data.name (used when builder_dir is empty)
    c.data.data_dir = common.data_dir(data)
    c.data.builder_dir = ""  # explicit prepared-dataset folder; overrides data_dir/name
    c.data.memory = ""  # name of an in-memory dataset (LIReCTask.add_memory_dataset)
    c.data.num_clips = 18  # other clips of the pair in the group V (Sec. 4.3, Fig. 5)
    c.data.max_pairs = 20  # candidate pairs per clip (the release keeps up to 20)

    c.model = ml_collections.ConfigDict()
    c.model.released_code = False  # model.RELEASED_CODE + released optimiser (`released`)
    c.model.modalities = tuple(modalities.split("+"))  # streams: visual, text, tracks (Table 1)
    c.model.coupling = "rel_to_int"  # joint settings: none | rel_to_int | int_to_rel | both
    c.model.temporal_pool = temporal_pool  # "" (inputs pooled) | avg | sum | max (Table 4)
    c.model.joint_dim = 512  # hidden and output width of the visual and text MLPs
    c.model.track_hidden_dim = 512  # hidden width of each character's track MLP
    c.model.track_out_dim = 256  # output width of each character's track MLP
    c.model.int_hidden_dim = 512  # width of W^I1 (Eq. 1; not in the paper); 0: linear
    c.model.dropout_rate = 0.3  # in the MLPs, after the tanh of Phi and after W^I1
    c.model.rel_pool = "avg"  # g of Eq. 3: avg | max
    c.model.rel_pool_before_tanh = False  # True: pool the MLP outputs before tanh (released)
    c.model.separate_rel_weights = True  # Phi_R has its own MLPs; False: Phi_I's

    c.loss = ml_collections.ConfigDict()
    c.loss.lam = ll.DEFAULT_LAMBDA  # weight of the interaction terms (Eqs. 6, 14): 1.5
    c.loss.margin_int = ll.DEFAULT_MARGIN  # hinge margin of the interaction losses
    c.loss.margin_rel = ll.DEFAULT_MARGIN  # hinge margin of the relationship losses
    c.loss.pair_selection = "multinomial"  # weak: multinomial | argmax (Eq. 9)
    c.loss.sample_from = "scores"  # multinomial over the sigmoid scores (paper) | softmax
    c.loss.negatives = "sum"  # sum | sum_max (hard negatives after the burn-in)
    c.loss.burn_in_epochs = ll.DEFAULT_BURN_IN  # epochs before sum_max negatives apply
    # Full supervision: other pairs in the column a* are negatives (Eq. 8 vs. the remark under
    # Eq. 10). The stored overlap labels include the clip's own label, which would remove the
    # whole column; True re-allows it. The released code keeps it removed (False).
    c.loss.full_column_negatives = True

    c.optimizer = optimizer_section(3e-5)  # Sec. 4.1: Adam, lr 3e-5, batch 64

    # 50 epochs: not given in the paper; more than the 20-epoch burn-in.
    c.training = training_section(50, 64, checkpoint_every_steps=1000)

    c.mesh = mesh_section()
    return c


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    a = parse_arg(arg, ARGS)
    return common.finish(build(modalities=a.modalities, temporal_pool=a.temporal_pool,
                               data=a.data), a)


def sweep(add: Callable[..., None], arg: str | None = None) -> None:
    """Table 1 (modalities) and Table 4 (temporal aggregation, all modalities)."""
    del arg
    for modalities in TABLE1_ROWS:
        add(config_arg=f"modalities={modalities}")
    for pool in ("avg", "sum", "max"):
        add(config_arg=f"temporal_pool={pool}")
