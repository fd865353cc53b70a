r"""TAM: fine-tune a TSC-pretrained CTM module (paper Sec. 5.2, Tables 3-6 "TAM").

  jaxaffect train --config configs/tam/finetune.py:dataset=ve8,split=0,pretrained=runs/tam/pre \
      --workdir runs/tam/finetune_ve8_split0

Config argument (comma-separated): as configs/tam/ctm.py, plus
  pretrained=<workdir>    the pretraining run (configs/tam/pretrain.py) whose best checkpoint's
                          params["encoder"] initialise the fusion module
                          (--config.init_from.which=latest to take its last checkpoint)
Learning rates 1e-5 for the fusion module and 1e-4 for the classifier/regressor, 50 epochs.
The model sizes (width, layers, heads, max_segments) must equal the pretraining run's.
"""

from jaxaffect.families.tam.task import default_config


def get_config(arg=None):
    return default_config(arg, finetune=True)


def sweep(add, arg=None):
    """The "TAM" rows of Tables 5 and 6 for one pretraining run; pass it with
    `launch/sweep.py configs/tam/finetune.py --extra pretrained=<workdir>` (one sweep per
    Table 3 / Table 4 pretraining run gives those tables' VE-8 and YF-6 columns)."""
    del arg
    for split in range(10):
        add(config_arg=f"dataset=ve8,split={split}")
    for dataset in ("ek6", "me2015_valence", "me2015_arousal", "me2016"):
        add(config_arg=f"dataset={dataset}")
