"""AV-CPNet: end-to-end audio-visual emotion recognition in short videos (Wu et al., eMotions).

task "avcpnet" (every row of Tables 7-9), the raw-video builds it reads (`tfds_builders/
emotions`, `music_video`, and the `raw` configs of `ekman6` and `video_emotion8`), the importer
of Video Swin-T weights in torchvision's swin3d_t layout (`jaxaffect convert swin3d`), the
synthetic short-video corpus and the demo.
"""

import argparse

from jaxaffect.family import Converter, Corpus, Family


def add_convert_arguments(parser: argparse.ArgumentParser) -> None:
    """The arguments of `jaxaffect convert swin3d`."""
    parser.add_argument("checkpoint", help="a local state dict in torchvision's swin3d_t "
                                           "layout (.pth; nothing is downloaded)")
    parser.add_argument("out_dir", help="where params.npz and swin3d.json go")
    parser.add_argument("--reader", default="auto", choices=["auto", "torch", "builtin"],
                        help="torch.load when torch is installed, else the built-in reader "
                             "(tensors and plain containers only)")


FAMILY = Family(
    name="avcpnet",
    summary="AV-CPNet end-to-end audio-visual emotion recognition from raw short videos",
    tasks={"avcpnet": "jaxaffect.families.avcpnet.task:AVCPNetTask"},
    demo="jaxaffect.families.avcpnet.demo:AVCPNetDemo",
    demo_help="visual-only, audio-only and AV-CPNet on synthetic short videos",
    corpora={"emotions": Corpus(
        writer="jaxaffect.families.avcpnet.synthetic:synthesize_with_progress",
        help="short videos with audio in the eMotions layout", size_help="clips (default 240)")},
    converters={"swin3d": Converter(run="jaxaffect.families.avcpnet.convert:run_cli",
                                    help="a swin3d_t state dict -> params.npz + swin3d.json",
                                    add_arguments=add_convert_arguments)},
    examples=(
        "jaxaffect build emotions --manual_dir ~/emotions_release --data_dir ~/tfds",
        "jaxaffect train --config configs/avcpnet/avcpnet.py:data=emotions --workdir "
        "runs/avcp --seeds 0,1,2 --config.data.data_dir=~/tfds",
        "jaxaffect predict --workdir runs/avcp/seed_0 --video some_clip.mp4",
    ),
)
