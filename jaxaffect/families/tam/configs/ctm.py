r"""jaxaffect train --config configs/tam/ctm.py:dataset=ve8,strategy=ctm,split=0 \
      --workdir runs/tam/ctm_ve8_split0

TAM without TSC pretraining: the CTM module and its Table 2 baselines (paper Tables 1, 2, 5, 6).

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

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import ml_collections

from jaxaffect.config_loading import (
    ConfigError,
    init_from_section,
    mesh_section,
    optimizer_section,
    parse_arg,
    training_section,
)
from jaxaffect.families.tam.batches import STREAMS
from jaxaffect.families.tam.configs.common import DATASETS
from jaxaffect.families.tam.fusion_baselines import STRATEGIES

# split=-2: the dataset's default split index (DATASETS).
CONFIG_ARGS = {"dataset": "ve8", "strategy": "ctm", "split": -2,
               "modalities": "image+motion+audio", "runlocal": False}


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    a = parse_arg(arg, CONFIG_ARGS)
    if a.dataset not in DATASETS:
        raise ConfigError(f"dataset={a.dataset!r}: one of {sorted(DATASETS)}")
    if a.strategy not in STRATEGIES:
        raise ConfigError(f"strategy={a.strategy!r}: one of {STRATEGIES}")
    ds = DATASETS[a.dataset]
    c = ml_collections.ConfigDict()
    c.task = "tam"
    c.dataset = a.dataset  # the benchmark: a key of DATASETS (configs/tam/common.py)
    c.name = f"tam_{a.strategy}_{a.dataset}"
    c.seed = 0

    c.data = ml_collections.ConfigDict()
    c.data.name = ds["name"]  # TFDS dataset; its newest version in data_dir is read
    # TFDS data_dir holding the build of data.name (used when builder_dir is empty)
    c.data.data_dir = str(Path("~/tensorflow_datasets").expanduser())
    c.data.builder_dir = ""  # explicit prepared-dataset folder; overrides data_dir/name
    # VE-8's random 2/3-1/3 split (0..9); -1: the build's own train/test lists
    c.data.split_index = ds["split_index"] if a.split == -2 else int(a.split)
    c.data.split_seed = 0  # seed of VE-8's ten random splits
    c.data.validation_fraction = 0.15  # of train, carved as validation by class (Sec. 5.2)
    c.data.validation_seed = 0  # seed of that carve (independent of `seed`)
    # > 0: keep only this many training videos per class (few-label fine-tuning; chosen by a
    # hash of the video id). Validation and test are unchanged.
    c.data.train_per_class = 0
    c.data.num_segments = ds["num_segments"]  # T segments per video (a window, or padded)
    c.data.label_key = ds.get("label_key", "")  # the class label feature; "": regression
    c.data.target_keys = tuple(ds.get("target_keys", ()))  # regression targets (me2016)
    if c.data.split_index >= 0 and ds["name"].split("/")[0] != "video_emotion8":
        raise ConfigError(f"split={c.data.split_index}: random splits are VE-8's protocol")

    c.model = ml_collections.ConfigDict()
    c.model.strategy = a.strategy  # fusion module (Table 2): ctm | inner | cross | concat | ...
    # Table 1: the streams the fusion module sees (a pretrained encoder needs the same set).
    c.model.modalities = tuple(m for m in a.modalities.split("+") if m)
    if set(c.model.modalities) - set(STREAMS) or not c.model.modalities:
        raise ConfigError(f"modalities={a.modalities!r}: '+'-joined streams of {STREAMS}")
    c.model.width = 768  # d: every stream is projected to d (Sec. 5.2: 768)
    c.model.num_layers = 12  # L: fusion layers (Sec. 5.2: 12)
    # CTM family: 12 heads (ViT-B); the concat/divide/joint baselines: 8 heads (Sec. 5.3).
    c.model.num_heads = 12 if a.strategy in ("ctm", "inner", "cross") else 8
    c.model.mlp_dim = 0  # FFN hidden width; 0: 4 * width
    c.model.max_segments = 64  # rows of P_e; must equal the pretraining run's
    c.model.dropout_rate = 0.1  # on the embedded tokens and the residual branches
    c.model.head_dropout = 0.0  # before the classifier / regressor
    c.model.readout = "auto"  # mean (ctm, inner, cross) or concat (the rest) | mean | concat
    c.model.share_across_modalities = True  # CTM: W_o, FFN, LayerNorms shared by the streams
    c.model.remat = False  # recompute activations in the backward pass (less memory)
    c.model.dtype = "float32"  # compute dtype: float32 | bfloat16 (params stay float32)

    # Sec. 5.2: Adam, lr 1e-4, weight decay 0.005 (PyTorch-style coupled L2), no decay schedule.
    c.optimizer = optimizer_section(1e-4, weight_decay=0.005)

    c.init_from = init_from_section()  # configs/tam/finetune.py fills it

    c.training = training_section(ds["num_epochs"], ds["batch_size"])

    c.evaluation = ml_collections.ConfigDict()
    # Classification selects on accuracy; MediaEval 2016 on the mean PCC of valence and
    # arousal, as the paper does (Sec. 5.5: "we use the PCC ... to choose the best model").
    c.evaluation.selection_metric = "pcc" if ds.get("target_keys") else "accuracy"

    c.mesh = mesh_section()

    if a.runlocal:
        c.model.width = 32
        c.model.num_layers = 2
        c.model.num_heads = 4
        c.data.num_segments = min(c.data.num_segments, 8)
        c.model.max_segments = 8
        c.training.num_epochs = 2
        c.training.batch_size = 4
        c.training.log_every_steps = 1
        c.training.checkpoint_every_steps = 20
    return c


def sweep(add: Callable[..., None], arg: str | None = None) -> None:
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
