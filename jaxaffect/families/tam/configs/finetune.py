r"""jaxaffect train --config configs/tam/finetune.py:dataset=ve8,split=0,pretrained=runs/tam/pre \
      --workdir runs/tam/finetune_ve8_split0

TAM: fine-tune a TSC-pretrained CTM module (paper Sec. 5.2, Tables 3-6 "TAM").

Config argument (comma-separated): as configs/tam/ctm.py, plus
  pretrained=<workdir>    (required) the pretraining run (configs/tam/pretrain.py) whose best
                          checkpoint's params["encoder"] initialise the fusion module
                          (--config.init_from.which=latest to take its last checkpoint)
The fields are configs/tam/ctm.py's except the ones set below: learning rates 1e-5 for the
fusion module and 1e-4 for the classifier/regressor, 50 epochs. The model sizes (width, layers,
heads, max_segments) must equal the pretraining run's.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import ml_collections

from jaxaffect.config_loading import ConfigError, parse_arg
from jaxaffect.families.tam.configs import ctm

CONFIG_ARGS = {**ctm.CONFIG_ARGS, "pretrained": ""}


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    a = parse_arg(arg, CONFIG_ARGS)
    if not a.pretrained:
        raise ConfigError("finetune needs pretrained=<workdir of a pretraining run>")
    ctm_arg = ",".join(item for item in (arg or "").split(",")
                       if item.strip().partition("=")[0] != "pretrained")
    c = ctm.get_config(ctm_arg)
    c.name = f"{c.name}_finetune"
    # Sec. 5.2: the encoder from the pretraining run, fusion module 1e-5, classifier 1e-4.
    c.init_from.workdir = str(Path(a.pretrained).expanduser())  # the pretraining run (pretrained=)
    c.init_from.subtrees = (("encoder", "encoder"),)
    c.optimizer.param_groups = (("^encoder/", 1e-5), ("^head/", 1e-4))
    if not a.runlocal:  # runlocal keeps ctm.py's debug-run length
        c.training.num_epochs = 50
    return c


def sweep(add: Callable[..., None], arg: str | None = None) -> None:
    """The "TAM" rows of Tables 5 and 6 for one pretraining run; pass it with
    `launch/sweep.py configs/tam/finetune.py --extra pretrained=<workdir>` (one sweep per
    Table 3 / Table 4 pretraining run gives those tables' VE-8 and YF-6 columns)."""
    del arg
    for split in range(10):
        add(config_arg=f"dataset=ve8,split={split}")
    for dataset in ("ek6", "me2015_valence", "me2015_arousal", "me2016"):
        add(config_arg=f"dataset={dataset}")
