r"""TAM's time-sync-comment pretraining of the CTM module on Bilibili video-TSC data (Sec. 4.2).

  jaxaffect train --config configs/tam/pretrain.py:masking=emotional,tasks=word+time,lambda=1:1 \
      --workdir runs/tam/pretrain

Config argument (comma-separated):
  masking=emotional|random10|random20|random30   masked words (Table 3)
  tasks=word+time|word|time                      pretraining tasks (Table 4: EWP, ATP)
  lambda=W:T                                     lambda_w : lambda_t of Eq. 10 (Table 4)
  strategy=ctm                                   the pretrained fusion module
  runlocal                                       a tiny debug run
Data: the bilibili_tsc build (--config.data.data_dir=... or --config.data.builder_dir=...).
Fine-tune with configs/tam/finetune.py:pretrained=<this workdir>.
"""

from jaxaffect.families.tam.pretrain_task import pretrain_config


def get_config(arg=None):
    return pretrain_config(arg)


def sweep(add, arg=None):
    """Table 3 (masking strategies, both tasks 1:1) and Table 4 (task ablations, ratios)."""
    del arg
    for masking in ("random10", "random20", "random30", "emotional"):
        add(config_arg=f"masking={masking},tasks=word+time,lambda=1:1")
    add(config_arg="masking=emotional,tasks=word,lambda=1:1")
    add(config_arg="masking=emotional,tasks=time,lambda=1:1")
    add(config_arg="masking=emotional,tasks=word+time,lambda=1:2")
    add(config_arg="masking=emotional,tasks=word+time,lambda=2:1")
