r"""TAM without TSC pretraining: the CTM module and its Table 2 baselines (paper Tables 2, 5, 6).

  jaxaffect train --config configs/tam/ctm.py:dataset=ve8,strategy=ctm,split=0 \
      --workdir runs/tam/ctm_ve8_split0

Config argument (comma-separated):
  dataset=ve8|ek6|me2015_valence|me2015_arousal|me2016
                          VideoEmotion-8, Ekman-6 (YF-6), LIRIS-ACCEDE 3-class valence /
                          arousal (MediaEval 2015), valence+arousal regression (MediaEval 2016)
  strategy=ctm|concat|divide|joint|inner|cross   the fusion module (Table 2)
  split=0..9              VE-8's random 2/3-1/3 split (default 0); -1: the released lists
  modalities=image+motion+audio   the streams used (Table 1 rows: any '+'-joined subset)
  runlocal                a tiny debug run
Data: --config.data.data_dir=... (default ~/tensorflow_datasets) or --config.data.builder_dir=...
The ten VE-8 splits, mean and std: jaxaffect train ... --splits 0-9, then
jaxaffect eval --workdir <same> --splits 0-9.
"""

from jaxaffect.families.tam.task import STRATEGIES, default_config


def get_config(arg=None):
    return default_config(arg)


def sweep(add, arg=None):
    """Table 2 (every strategy on VE-8's ten splits and on Ekman-6) and the "TAM w/o TSC" rows
    of Table 6 (the CTM module on the three LIRIS-ACCEDE tasks)."""
    del arg
    for strategy in STRATEGIES:
        for split in range(10):
            add(config_arg=f"dataset=ve8,strategy={strategy},split={split}")
        add(config_arg=f"dataset=ek6,strategy={strategy}")
    for dataset in ("me2015_valence", "me2015_arousal", "me2016"):
        add(config_arg=f"dataset={dataset},strategy=ctm")
    # Table 1: modality combinations with the CTM module (VE-8 split 0 and Ekman-6).
    for mods in ("image", "motion", "audio", "image+motion", "image+audio", "motion+audio"):
        add(config_arg=f"dataset=ve8,modalities={mods}")
        add(config_arg=f"dataset=ek6,modalities={mods}")
