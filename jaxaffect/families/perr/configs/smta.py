r"""jaxaffect train --config configs/perr/smta.py:attention=transformer,labels=fine,data=erato \
      --workdir runs/smta_transformer

SMTA (Synchronous Modal-Temporal Attention) on ERATO, paper Sec. 4.2 and Table 3 rows 6-9.

Config argument (comma-separated):
  attention=dot|nonlocal|multihead|transformer   the attention form of A_t (Table 3)
  labels=fine|coarse                             5 fine classes or 3 coarse classes
  data=synthetic|erato                           data_dir default: the demo corpus build, or
                                                 ~/tensorflow_datasets (override with
                                                 --config.data.data_dir=... or .builder_dir=...)
  runlocal                                       a tiny debug run
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import ml_collections

from jaxaffect.config_loading import (
    ConfigError,
    mesh_section,
    optimizer_section,
    parse_arg,
    training_section,
)
from jaxaffect.data.build import synthetic_data_dir
from jaxaffect.families.perr.attention import ATTENTION_KINDS

CONFIG_ARGS = {"attention": "transformer", "labels": "fine", "data": "synthetic",
               "runlocal": False}


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    a = parse_arg(arg, CONFIG_ARGS)
    if a.labels not in ("fine", "coarse"):
        raise ConfigError(f"labels={a.labels!r}: fine (5 classes) or coarse (3 classes)")
    if a.attention not in ATTENTION_KINDS:
        raise ConfigError(f"attention={a.attention!r}: dot, nonlocal, multihead or transformer")
    c = ml_collections.ConfigDict()
    c.task = "perr"
    c.name = f"smta_{a.attention}"
    c.seed = 0
    c.labels = a.labels  # fine: the 5 classes | coarse: the 3 of the paper's Table 1

    c.data = ml_collections.ConfigDict()
    c.data.source = a.data  # erato | synthetic: where data_dir points by default
    c.data.name = "erato"  # TFDS dataset; its newest version in data_dir is read
    # TFDS data_dir holding the build of data.name (used when builder_dir is empty)
    c.data.data_dir = (synthetic_data_dir("erato") if a.data == "synthetic"
                       else str(Path("~/tensorflow_datasets").expanduser()))
    c.data.builder_dir = ""  # explicit prepared-dataset folder; overrides data_dir/name
    c.data.max_steps = 36  # steps per clip, padded or cropped (ERATO: 5-35 s, 1 step/s)
    c.data.validation_fraction = 0.1  # of train, carved as validation (stratified, by clip-id hash)

    c.model = ml_collections.ConfigDict()
    c.model.fusion = "smta"  # lstm | attention | smta (the row groups of Table 3)
    c.model.attention = a.attention  # form of A_t: dot | nonlocal | multihead | transformer
    c.model.hidden_size = 128  # d: projected features, LSTM states, attention
    c.model.num_heads = 4  # heads of multihead / transformer attention (must divide d)
    c.model.dropout_rate = 0.1  # on the projected features, in the transformer, before the heads
    c.model.smta_impl = "parallel"  # or "scan" (attention inside the LSTM scan): same function

    c.loss = ml_collections.ConfigDict()
    c.loss.class_weighting = False  # inverse-frequency class weights (not used in the paper)

    # Paper Sec. 5.1: Adam, lr 5e-3, x0.1 every 15 epochs, 50 epochs, batch 16.
    c.optimizer = optimizer_section(5e-3, decay_every_epochs=15, decay_factor=0.1)

    c.training = training_section(50, 16, checkpoint_every_steps=500)

    c.mesh = mesh_section()

    if a.runlocal:  # a tiny debug run
        c.model.hidden_size = 16
        c.model.num_heads = 2
        c.training.num_epochs = 2
        c.training.log_every_steps = 5
        c.training.checkpoint_every_steps = 20
        c.data.max_steps = 12
    return c


def sweep(add: Callable[..., None], arg: str | None = None) -> None:
    """Table 3, SMTA rows: one run per attention form and label set."""
    del arg
    for labels in ("fine", "coarse"):
        for attention in ATTENTION_KINDS:
            add(config_arg=f"attention={attention},labels={labels}")
