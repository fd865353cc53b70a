r"""jaxaffect train --config configs/amer/amer.py:labels=fine,model=amer \
      --workdir runs/amer --seeds 0,1,2 --config.data.data_dir=~/tfds

Multimodal emotion reasoning on MEmoR (Shen et al., ACM MM 2020): AMER (Sec. 4.2), its
ablations and the baselines of Table 3, the modality subsets of Table 4; Table 5 is the
``avail_*`` breakdown of the Table 3 AMER rows' evaluation. Every field is listed here.

Config argument (comma-separated):
  model=NAME            amer | amer_no_personality | amer_no_intra | amer_no_inter | mdl |
                        mdl_personality | mdae | tfn | lmf | dialoguegcn   (Table 3 rows)
  labels=primary|fine   9 primary or 14 fine-grained emotions (Table 3 column groups)
  modalities=avt        letters of the streams used: a audio, t text, v visual (Table 4 rows)
  subset=all|full       full: train and evaluate on the examples whose target has all three
                        modalities (the "full-modality subset" of Table 4)
  split=official|moment_disjoint   the memor build config (see tfds_builders/memor/README.md)
  released              the authors' code: text encoder 512-256, their attention edge cases,
                        lr decay x0.9 every 50 epochs (see docs/amer.md)
  data=synthetic|memor  data_dir default: the demo corpus, or ~/tensorflow_datasets
  runlocal              a tiny debug run
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

ARGS: dict[str, object] = {"model": "amer", "labels": "fine", "modalities": "avt",
                           "subset": "all", "split": "official", "released": False,
                           "data": "synthetic", "runlocal": False}
LETTERS = {"a": "audio", "t": "text", "v": "visual"}
TABLE3_MODELS = ("mdl", "mdl_personality", "mdae", "tfn", "lmf", "dialoguegcn",
                 "amer_no_personality", "amer_no_intra", "amer_no_inter", "amer")
TABLE4_MODALITIES = ("a", "v", "t", "av", "tv", "at", "avt")
TABLE5_MODELS = ("amer_no_personality", "amer_no_intra", "amer_no_inter", "amer")
DATA_SOURCES = ("synthetic", "memor")


def modalities_of(letters: str) -> tuple[str, ...]:
    """'avt' -> ('audio', 'text', 'visual') in canonical order."""
    if not letters or set(letters) - set(LETTERS) or len(set(letters)) != len(letters):
        raise ConfigError(f"modalities={letters!r}: distinct letters of 'atv'")
    return tuple(LETTERS[c] for c in "atv" if c in letters)


def data_dir(source: str) -> str:
    if source not in DATA_SOURCES:
        raise ConfigError(f"data={source!r}: one of {DATA_SOURCES}")
    if source == "synthetic":
        return synthetic_data_dir("memor")
    return str(Path("~/tensorflow_datasets").expanduser())


def build(a: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    if a.labels not in ("primary", "fine"):
        raise ConfigError(f"labels={a.labels!r}: primary | fine")
    if a.subset not in ("all", "full"):
        raise ConfigError(f"subset={a.subset!r}: all | full")
    if a.split not in ("official", "moment_disjoint"):
        raise ConfigError(f"split={a.split!r}: official | moment_disjoint")
    c = ml_collections.ConfigDict()
    c.task = "amer"
    c.name = f"amer_{a.model}_{a.labels}" + ("" if a.modalities == "avt" else f"_{a.modalities}")
    c.seed = 0

    c.data = ml_collections.ConfigDict()
    c.data.source = a.data  # synthetic | memor
    c.data.name = f"memor/{a.split}"  # TFDS dataset/config; its newest version is read
    c.data.data_dir = data_dir(a.data)  # TFDS data_dir holding the build of data.name
    c.data.builder_dir = ""  # explicit prepared-dataset folder; overrides data_dir/name
    c.data.memory = ""  # name of an in-memory dataset (AMERTask.add_memory_dataset)
    c.data.labels = a.labels  # primary (9 emotions) | fine (14)
    c.data.target_subset = a.subset  # all | full (target has audio, text and visual)
    c.data.max_persons = 8  # persons kept around the target (MEmoR has 8 character ids)
    c.data.max_segments = 8  # consecutive segments kept around the target segment
    # The paper's weighted sampler: draws with replacement, weight 1 / class frequency
    c.data.class_balanced = True

    c.model = ml_collections.ConfigDict()
    c.model.name = a.model  # see the module docstring (Table 3 rows)
    c.model.modalities = modalities_of(a.modalities)  # streams used (Table 4 rows)
    c.model.dtype = "float32"  # compute dtype: float32 | bfloat16 (params stay float32)
    c.model.released_code = False  # the authors' attention edge cases (docs/amer.md)
    c.model.audio_sizes = (1024, 512, 256)  # E_a (Sec. 5.1.1)
    c.model.text_sizes = (512, 384, 256)  # E_t (paper; the authors' code: 512-256)
    c.model.visual_sizes = (512, 384, 256)  # E_v
    c.model.personality_sizes = (512, 256)  # E_p
    c.model.fusion_size = 512  # the linear fusion layer of the authors' code
    c.model.classifier_sizes = (256,)  # hidden layers of the classifier (authors' code)
    # AMER: streams only the segment's speaker has, encoded once per segment (same numbers,
    # less compute; each example is checked); () encodes every person x segment entry
    c.model.speaker_streams = ("audio", "text")

    c.loss = ml_collections.ConfigDict()
    c.loss.aux_weight = 1.0  # weight of an auxiliary loss (MDAE's reconstruction)

    c.optimizer = optimizer_section(5e-5)  # Sec. 5.1.1: Adam lr 5e-5, betas (0.9, 0.999)
    # Batch 8 (Sec. 5.1.1); stop when validation micro-F1 has not improved for 50 epochs;
    # at most 1000 epochs (the authors' config).
    c.training = training_section(1000, 8, log_every_steps=100, checkpoint_every_steps=2000,
                                  early_stop_evals=50)
    c.mesh = mesh_section()
    if a.released:
        c.model.released_code = True
        c.model.text_sizes = (512, 256)
        c.optimizer.decay_every_epochs = 50
        c.optimizer.decay_factor = 0.9
    if a.runlocal:
        c.model.audio_sizes = c.model.text_sizes = c.model.visual_sizes = (32, 16)
        c.model.personality_sizes = (16,)
        c.model.fusion_size = 32
        c.model.classifier_sizes = (16,)
        c.training.num_epochs = 2
        c.training.log_every_steps = 5
        c.training.early_stop_evals = 0
    return c


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    a = parse_arg(arg, ARGS)
    from jaxaffect.families.amer.task import MODELS

    if a.model not in MODELS:
        raise ConfigError(f"model={a.model!r}: one of {sorted(MODELS)}")
    return build(a)


def sweep(add: Callable[..., None], arg: str | None = None) -> None:
    """table=3 (default): every model on both label sets; table=4: AMER on the full-modality
    subset with each modality combination (fine); table=5: the AMER ablations (fine)."""
    table = (arg or "table=3").partition("=")[2] or "3"
    if table == "3":
        for labels in ("primary", "fine"):
            for model in TABLE3_MODELS:
                add(config_arg=f"model={model},labels={labels}")
    elif table == "4":
        for letters in TABLE4_MODALITIES:
            add(config_arg=f"model=amer,labels=fine,subset=full,modalities={letters}")
    elif table == "5":
        for model in TABLE5_MODELS:
            add(config_arg=f"model={model},labels=fine")
    else:
        raise ConfigError(f"sweep argument {arg!r}: table=3 | table=4 | table=5")
