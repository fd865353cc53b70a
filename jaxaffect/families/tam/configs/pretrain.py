r"""jaxaffect train --config configs/tam/pretrain.py:masking=emotional,tasks=word+time,lambda=1:1 \
      --workdir runs/tam/pretrain

TAM's time-sync-comment pretraining of the CTM module on Bilibili video-TSC data (Sec. 4.2).

Config argument (comma-separated):
  masking=emotional|random10|random20|random30   masked words (Table 3)
  tasks=word+time|word|time                      pretraining tasks (Table 4: EWP, ATP)
  lambda=W:T                                     lambda_w : lambda_t of Eq. 10 (Table 4)
  strategy=ctm                                   the pretrained fusion module
  size=base|large                                base: the paper's (d=768, 12 + 8 layers);
                                                 large: a pod-sized model (below)
  runlocal                                       a tiny debug run
Data: the bilibili_tsc build (--config.data.data_dir=... or --config.data.builder_dir=...).
Fine-tune with configs/tam/finetune.py:pretrained=<this workdir>.

size=large: d=1024, 24 encoder + 16 decoder layers (the paper's 3:2), 16 heads, bfloat16
compute, remat, batch 256, on a (data=1, fsdp=rest, model=4) mesh (any multiple of 4 devices;
heads, FFN units and vocabulary split 4 ways, everything split over fsdp). Sized for a ~50k-word
vocabulary (the vocabulary is the build's: choose its min_count accordingly). Memory per device:
benchmarks/tam_pod_memory.py.
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
from jaxaffect.families.tam.fusion_baselines import STRATEGIES
from jaxaffect.families.tam.pretrain_task import MASKINGS
from jaxaffect.families.tam.tsc_objectives import TASKS

CONFIG_ARGS = {"masking": "emotional", "tasks": "word+time", "lambda": "1:1",
               "strategy": "ctm", "size": "base", "runlocal": False}
SIZES = ("base", "large")


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    a = parse_arg(arg, CONFIG_ARGS)
    if a.masking not in MASKINGS:
        raise ConfigError(f"masking={a.masking!r}: one of {sorted(MASKINGS)}")
    tasks = tuple(t for t in a.tasks.split("+") if t)
    if not tasks or set(tasks) - set(TASKS):
        raise ConfigError(f"tasks={a.tasks!r}: word, time or word+time")
    try:
        lambda_w, lambda_t = (float(x) for x in a["lambda"].split(":"))
    except ValueError as e:
        raise ConfigError(f"lambda={a['lambda']!r}: expected w:t, e.g. 1:1") from e
    if a.strategy not in STRATEGIES:
        raise ConfigError(f"strategy={a.strategy!r}: one of {STRATEGIES}")
    if a.size not in SIZES:
        raise ConfigError(f"size={a.size!r}: one of {SIZES}")
    c = ml_collections.ConfigDict()
    c.task = "tam_pretrain"
    c.name = f"tam_pretrain_{a.masking}_{'+'.join(tasks)}_{a['lambda'].replace(':', 'to')}"
    c.seed = 0

    c.data = ml_collections.ConfigDict()
    c.data.name = "bilibili_tsc"  # TFDS dataset; its newest version in data_dir is read
    # TFDS data_dir holding the build of data.name (used when builder_dir is empty)
    c.data.data_dir = str(Path("~/tensorflow_datasets").expanduser())
    c.data.builder_dir = ""  # explicit prepared-dataset folder; overrides data_dir/name
    c.data.validation_fraction = 0.05  # of the build's train split, by a hash of example_id
    c.data.num_segments = 64  # T consecutive segments per window (Sec. 5.2)
    c.data.max_comments = 32  # comments kept per window (random subset in training)

    c.model = ml_collections.ConfigDict()
    c.model.strategy = a.strategy  # the pretrained fusion module (the paper: ctm)
    c.model.width = 768  # d: token width of encoder and decoder (Sec. 5.2)
    c.model.num_layers = 12  # L: encoder layers (Sec. 5.2)
    c.model.num_heads = 12  # attention heads of encoder and decoder (ViT-B)
    c.model.mlp_dim = 0  # FFN hidden width; 0: 4 * width
    c.model.max_segments = 64  # rows of P_e; must equal the fine-tuning config's
    c.model.share_across_modalities = True  # CTM: W_o, FFN, LayerNorms shared by the streams
    c.model.dropout_rate = 0.1  # in the encoder and the decoder
    c.model.decoder_layers = 8  # Sec. 5.2: L = 8 decoder layers
    c.model.max_words = 16  # tokens per comment: [#S] + 15 words (the build's width)
    c.model.remat = False  # recompute activations in the backward pass (less memory)
    c.model.dtype = "float32"  # compute dtype: float32 | bfloat16 (params stay float32)

    c.pretrain = ml_collections.ConfigDict()
    c.pretrain.masking = a.masking  # masked words: emotional | random10/20/30 (Table 3)
    c.pretrain.tasks = tasks  # word (emotional-word) and/or time prediction (Table 4)
    c.pretrain.lambda_w = lambda_w  # weight of the word-prediction loss (Eq. 10)
    c.pretrain.lambda_t = lambda_t  # weight of the time-prediction loss (Eq. 10)
    # Word logits only at the first `max_masked` masked words of each window (0: at every
    # word position). Fewer masked words than this: identical loss; more: the rest unscored.
    c.pretrain.max_masked = 128

    # Sec. 5.2 (pre-training): Adam, lr 1e-3 x0.1 every 50 epochs, 200 epochs. Weight decay
    # 0.005 as in the paper's general optimiser setting (the pretraining paragraph names none).
    c.optimizer = optimizer_section(1e-3, weight_decay=0.005, decay_every_epochs=50,
                                    decay_factor=0.1)

    c.init_from = init_from_section()

    c.training = training_section(200, 16, checkpoint_every_steps=1000)  # batch: not given

    c.evaluation = ml_collections.ConfigDict()
    c.evaluation.selection_metric = "loss"  # the validation pretraining loss (Eq. 10)

    c.mesh = mesh_section()

    if a.size == "large":
        c.name += "_large"
        c.model.width = 1024
        c.model.num_layers = 24
        c.model.num_heads = 16
        c.model.decoder_layers = 16
        c.model.remat = True
        c.model.dtype = "bfloat16"
        c.training.batch_size = 256
        c.mesh.data, c.mesh.fsdp, c.mesh.model = 1, -1, 4

    if a.runlocal:
        c.model.width = 32
        c.model.num_layers = 2
        c.model.num_heads = 4
        c.model.decoder_layers = 2
        c.model.max_segments = 8
        c.data.num_segments = 8
        c.data.max_comments = 8
        c.training.num_epochs = 2
        c.training.batch_size = 4
        c.training.log_every_steps = 1
        c.training.checkpoint_every_steps = 20
    return c


def sweep(add: Callable[..., None], arg: str | None = None) -> None:
    """Table 3 (masking strategies, both tasks 1:1) and Table 4 (task ablations, ratios)."""
    del arg
    for masking in ("random10", "random20", "random30", "emotional"):
        add(config_arg=f"masking={masking},tasks=word+time,lambda=1:1")
    add(config_arg="masking=emotional,tasks=word,lambda=1:1")
    add(config_arg="masking=emotional,tasks=time,lambda=1:1")
    add(config_arg="masking=emotional,tasks=word+time,lambda=1:2")
    add(config_arg="masking=emotional,tasks=word+time,lambda=2:1")
