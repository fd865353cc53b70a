"""LIReC: interactions, relationships and weakly supervised character pairs on MovieGraphs
(Kukleva et al.).

task "lirec" (all settings), the released data layout, the importer of the released PyTorch
checkpoints (`jaxaffect convert lirec`), the synthetic corpus and demo.
"""

import argparse

from jaxaffect.family import Converter, Corpus, Extractor, Family

MODEL_KINDS: tuple[str, ...] = ("interactions", "relationships", "joint", "characters", "all")


def _extract_arguments(parser: argparse.ArgumentParser) -> None:
    from jaxaffect.families.lirec.extract import add_arguments

    add_arguments(parser)


def add_convert_arguments(parser: argparse.ArgumentParser) -> None:
    """The arguments of `jaxaffect convert lirec`."""
    parser.add_argument("checkpoint", help="a released .pth.tar (torch is optional)")
    parser.add_argument("out_dir", help="where params.npz and lirec.json go")
    parser.add_argument("--kind", default=None, choices=MODEL_KINDS,
                        help="model kind (default: from the file name or the keys)")
    parser.add_argument("--reader", default="auto", choices=["auto", "torch", "builtin"],
                        help="torch.load when torch is installed, else the built-in reader "
                             "(tensors and plain containers only)")


FAMILY = Family(
    name="lirec",
    summary="LIReC interactions, relationships and character pairs on MovieGraphs",
    tasks={"lirec": "jaxaffect.families.lirec.task:LIReCTask"},
    demo="jaxaffect.families.lirec.demo:LIReCDemo",
    demo_help="interactions and full/weak character pairs",
    corpora={"lirec": Corpus(writer="jaxaffect.families.lirec.synthetic:synthesize",
                             help="the LIReC MovieGraphs layout",
                             size_help="movies (default 14)")},
    converters={"lirec": Converter(run="jaxaffect.families.lirec.convert:run_cli",
                                   help="released LIReC .pth.tar -> params.npz + lirec.json",
                                   add_arguments=add_convert_arguments)},
    extractors={"lirec": Extractor(
        run="jaxaffect.families.lirec.extract:run",
        help="scene videos + subtitles + labels -> the LIReC release layout: grid colour and "
             "motion features per 16 frames, speaker-named face tracks, token states of the "
             "dialogue",
        add_arguments=_extract_arguments,
        one_video="jaxaffect.families.lirec.extract:release_for_video",
        inputs=("subtitles", "characters"),
        required=("characters",))},
    examples=(
        "jaxaffect train --config configs/lirec/characters.py:setting=characters_weak "
        "--workdir runs/lirec_weak",
        "jaxaffect convert lirec models_release/int_rel.pth.tar runs/lirec_int_rel",
        "jaxaffect extract lirec --videos ~/scenes --subtitles ~/subs --labels ~/lirec_labels "
        "--out ~/my_lirec_release",
    ),
)
