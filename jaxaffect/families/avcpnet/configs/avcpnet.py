r"""jaxaffect train --config configs/avcpnet/avcpnet.py:data=emotions \
      --workdir runs/avcp --seeds 0,1,2 --config.data.data_dir=~/tfds

AV-CPNet (Wu et al., eMotions): Video Swin-T on s snippets of T frames, ResNet-34 on t MFCC
segments, the two-stage cross-modal fusion (CAF + SF layers) and the EP-CE loss, trained end to
end from the raw-video builds. Every field is listed here; docs/avcpnet.md gives the choices
where the paper is silent.

Config argument (comma-separated):
  row=NAME        Table 7: audio | visual | av (audio+visual, concatenation) | caf (+ CAF
                  layer) | sf (+ SF layer) | epce (+ EP-CE loss: the full AV-CPNet, default)
  fusion=NAME     Table 8 (with the CAF layer, plain CE): concat | ew_sum | neural | gated |
                  sum; overrides the row's fusion
  gammas=P:U:N    Table 9: EP-CE gammas for positive : neutral : negative (e.g. 0:0.3:0.5);
                  overrides the row's
  data=NAME       emotions | emotions_balanced | emotions_test | music_video | ekman6 | ve8 |
                  synthetic (the demo corpus; data_dir default: the demo's, else
                  ~/tensorflow_datasets)
  size=paper|demo paper: Video Swin-T (C=96, depths 2-2-6-2), ResNet-34, 224 px crops, 4 x 8
                  frames, 4 MFCC segments; demo: a small model and input for 2 CPU cores
  runlocal        a tiny debug run
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

ARGS: dict[str, object] = {"row": "epce", "fusion": "", "gammas": "", "data": "emotions",
                           "size": "paper", "runlocal": False}
#: Table 7 rows: (branches, CAF layer, fusion, EP-CE gammas)
ROWS: dict[str, tuple[str, bool, str, tuple[float, float, float]]] = {
    "audio": ("a", False, "sum", (0.0, 0.0, 0.0)),
    "visual": ("v", False, "sum", (0.0, 0.0, 0.0)),
    "av": ("av", False, "concat", (0.0, 0.0, 0.0)),
    "caf": ("av", True, "concat", (0.0, 0.0, 0.0)),
    "sf": ("av", True, "sum", (0.0, 0.0, 0.0)),
    "epce": ("av", True, "sum", (0.5, 0.5, 0.5)),
}
TABLE8_FUSIONS = ("concat", "ew_sum", "neural", "gated", "sum")
TABLE9_GAMMAS = ("0:0:0", "0:0.3:0.5", "0.3:0.3:0.3", "0.4:0.4:0.4", "0.5:0.5:0.5")
#: data argument -> TFDS dataset/config name
DATASETS = {"emotions": "emotions/full", "emotions_balanced": "emotions/balanced",
            "emotions_test": "emotions/test", "music_video": "music_video/default",
            "ekman6": "ekman6/raw", "ve8": "video_emotion8/raw", "synthetic": "emotions/full"}
TABLE_DATASETS = ("emotions", "music_video", "ekman6")  # the three datasets of Tables 7-9


def parse_gammas(text: str) -> tuple[float, float, float]:
    parts = text.split(":")
    try:
        values = tuple(float(p) for p in parts)
    except ValueError:
        values = ()
    if len(values) != 3 or min(values) < 0:
        raise ConfigError(f"gammas={text!r}: three non-negative numbers P:U:N")
    return values  # type: ignore[return-value]


def data_dir(source: str) -> str:
    if source == "synthetic":
        return synthetic_data_dir("emotions")
    return str(Path("~/tensorflow_datasets").expanduser())


def build(a: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    if a.row not in ROWS:
        raise ConfigError(f"row={a.row!r}: one of {sorted(ROWS)}")
    if a.data not in DATASETS:
        raise ConfigError(f"data={a.data!r}: one of {sorted(DATASETS)}")
    if a.size not in ("paper", "demo"):
        raise ConfigError(f"size={a.size!r}: paper | demo")
    branches, caf, fusion, gammas = ROWS[a.row]
    if a.fusion:
        if a.fusion not in TABLE8_FUSIONS:
            raise ConfigError(f"fusion={a.fusion!r}: one of {TABLE8_FUSIONS}")
        if branches != "av":
            raise ConfigError(f"fusion= needs both branches; row={a.row!r} has one")
        fusion = a.fusion
    if a.gammas:
        gammas = parse_gammas(a.gammas)
    paper = a.size == "paper"
    c = ml_collections.ConfigDict()
    c.task = "avcpnet"
    c.name = "avcpnet_" + a.row + (f"_{a.fusion}" if a.fusion else "") + (
        f"_g{a.gammas.replace(':', '-')}" if a.gammas else "") + ("" if paper else "_demo")
    c.seed = 0

    c.data = ml_collections.ConfigDict()
    c.data.source = a.data  # the config's data= argument (which dataset)
    # TFDS dataset/config (its newest version is read): the 224 px build for the paper size
    c.data.name = DATASETS[a.data] + ("_224" if paper and a.data != "synthetic" else "")
    c.data.data_dir = data_dir(a.data)  # TFDS data_dir holding the build of data.name
    c.data.builder_dir = ""  # explicit prepared-dataset folder; overrides data_dir/name
    c.data.validation_fraction = 0.1  # carved from train only when the build has no validation
    c.data.workers = 0  # grain worker processes decoding clips (0: in the training process)
    c.data.worker_buffer = 4  # batches each worker may hold ready (grain's default is 1)
    # Sec. 4.1: s segments, a snippet of k consecutive frames in each, T frames from it
    c.data.num_segments = 4 if paper else 2  # s
    c.data.snippet_frames = 16 if paper else 8  # k (stored frames, <= 15 fps)
    c.data.frames_per_snippet = 8 if paper else 4  # T
    c.data.resize = 0 if paper else 56  # short side before cropping (0: as stored)
    c.data.crop = 224 if paper else 48  # square crop (px), random in training
    c.data.flip = True  # random horizontal flip in training
    c.data.sample_rate = 16000  # Hz of the stored audio (the builds store 16 kHz mono)
    c.data.n_mfcc = 64 if paper else 32  # MFCC coefficients per frame
    c.data.n_mels = 64 if paper else 32  # mel bands the MFCC is taken from
    c.data.window_ms = 25.0  # MFCC analysis window
    c.data.hop_ms = 10.0  # MFCC hop (one MFCC frame per hop)
    c.data.mfcc_frames = 1024 if paper else 256  # q
    c.data.audio_segments = 4 if paper else 2  # t

    c.model = ml_collections.ConfigDict()
    c.model.branches = branches  # av | v (visual only) | a (audio only)
    c.model.caf = caf  # the cross-attention fusion layer (Eqs. 4-7)
    c.model.caf_tokens = "single"  # single: one token per modality (the paper) | segments
    c.model.fusion = fusion  # sum (SF layer, Eq. 8) | concat | ew_sum | neural | gated
    c.model.hidden = 512 if paper else 64  # C1, the common width of both modalities
    c.model.num_heads = 4  # CAF heads (Sec. 4.2)
    # Video Swin-T (Sec. 4.1): patch 2x4x4, C = 96, depths 2-2-6-2, heads 3-6-12-24,
    # window 8x7x7
    c.model.swin = ml_collections.ConfigDict()
    c.model.swin.embed_dim = 96 if paper else 16  # C, the width of the first stage
    c.model.swin.depths = (2, 2, 6, 2) if paper else (1, 1, 2, 1)  # blocks per stage
    c.model.swin.num_heads = (3, 6, 12, 24) if paper else (1, 2, 2, 4)  # heads per stage
    c.model.swin.patch_size = (2, 4, 4)  # (time, height, width) of a patch
    c.model.swin.window_size = (8, 7, 7) if paper else (2, 3, 3)  # attention window (t, h, w)
    c.model.swin.mlp_ratio = 4.0  # MLP width / block width
    c.model.swin.stochastic_depth = 0.1 if paper else 0.0  # drop-path rate of the last block
    c.model.audio_width = 64 if paper else 8  # ResNet-34 stem width (widths x1, x2, x4, x8)
    c.model.audio_blocks = (3, 4, 6, 3) if paper else (1, 1, 1, 1)  # BasicBlocks per stage
    # GroupNorm stands in for batch norm (docs/avcpnet.md); groups per layer: gcd(this, width)
    c.model.audio_norm_groups = 32 if paper else 2
    # audio temporal attention weights: softmax over segments | none (ReLU scores, mean)
    c.model.temporal_normalize = "softmax"
    # a `jaxaffect convert swin3d` output folder: the visual backbone starts from it
    c.model.init_swin = ""
    c.model.dtype = "bfloat16" if paper else "float32"  # compute dtype (params float32)
    c.model.remat = paper  # recompute each backbone stage in the backward pass

    c.loss = ml_collections.ConfigDict()
    c.loss.gammas = gammas  # EP-CE (Eq. 9) gamma for positive, neutral, negative targets
    c.loss.multitask = True  # Eq. 10: sum of the fused, visual and audio heads' losses

    # The paper gives no optimiser; AdamW with a linear warm-up and a cosine decay as for
    # Video Swin fine-tuning, no gradient clipping (measured: see docs/avcpnet.md)
    c.optimizer = optimizer_section(1e-4 if paper else 1e-3, name="adamw",
                                    weight_decay=0.05, grad_clip_norm=0.0,
                                    schedule="cosine", warmup_epochs=2.5)
    c.training = training_section(30 if paper else 12, 16, log_every_steps=50,
                                  checkpoint_every_steps=1000)
    c.mesh = mesh_section()
    if a.runlocal:
        c.training.num_epochs = 1
        c.training.batch_size = 4
        c.training.log_every_steps = 1
    return c


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    return build(parse_arg(arg, ARGS))


def sweep(add: Callable[..., None], arg: str | None = None) -> None:
    """table=7 (default): every Table 7 row; table=8: the five fusions; table=9: the five gamma
    settings; each on eMotions, Music_video and Ekman-6 (``data=`` in the argument narrows
    nothing: pass one table)."""
    table = (arg or "table=7").partition("=")[2] or "7"
    for data in TABLE_DATASETS:
        if table == "7":
            for row in ROWS:
                add(config_arg=f"row={row},data={data}")
        elif table == "8":
            for fusion in TABLE8_FUSIONS:
                add(config_arg=f"row=sf,fusion={fusion},data={data}")
        elif table == "9":
            for gammas in TABLE9_GAMMAS:
                add(config_arg=f"row=epce,gammas={gammas},data={data}")
        else:
            raise ConfigError(f"sweep argument {arg!r}: table=7 | table=8 | table=9")
