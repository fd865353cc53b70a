"""AMER: multimodal emotion reasoning on MEmoR (Shen et al., ACM MM 2020).

task "amer" (AMER, its ablations and the Table 3 baselines), the MEmoR release layout
(`tfds_builders/memor`), the importer of the authors' PyTorch weights (`jaxaffect convert
memor`), the synthetic MEmoR-layout corpus and the demo.
"""

import argparse

from jaxaffect.family import Converter, Corpus, Extractor, Family


def add_convert_arguments(parser: argparse.ArgumentParser) -> None:
    """The arguments of `jaxaffect convert memor`."""
    parser.add_argument("checkpoint", help="the authors' AMER checkpoint (.pth; torch is "
                                           "optional)")
    parser.add_argument("out_dir", help="where params.npz and amer.json go")
    parser.add_argument("--reader", default="auto", choices=["auto", "torch", "builtin"],
                        help="torch.load when torch is installed, else the built-in reader "
                             "(tensors and plain containers only)")


def _extract_arguments(parser: argparse.ArgumentParser) -> None:
    from jaxaffect.families.amer import extract

    extract.add_arguments(parser)


FAMILY = Family(
    name="amer",
    summary="AMER emotion reasoning for speakers and non-speakers on MEmoR",
    tasks={"amer": "jaxaffect.families.amer.task:AMERTask"},
    demo="jaxaffect.families.amer.demo:AMERDemo",
    demo_help="MDL, MDL with personality and AMER (--full: every Table 3 row)",
    corpora={"memor": Corpus(writer="jaxaffect.families.amer.synthetic:synthesize",
                             help="the MEmoR release layout",
                             size_help="annotations (default 480)")},
    converters={"memor": Converter(run="jaxaffect.families.amer.convert:run_cli",
                                   help="the authors' AMER .pth -> params.npz + amer.json",
                                   add_arguments=add_convert_arguments)},
    extractors={"memor": Extractor(
        run="jaxaffect.families.amer.extract:run",
        help="videos + subtitles + annotations.csv -> the MEmoR release layout: subtitle "
             "cues as segments, speaker-named face tracks, audio, text, frame descriptors",
        add_arguments=_extract_arguments,
        one_video="jaxaffect.families.amer.extract:release_for_video",
        inputs=("subtitles", "person", "moment", "personality"),
        required=("subtitles", "person", "moment"))},
    examples=(
        "jaxaffect build memor --manual_dir ~/memor_release --data_dir ~/tfds",
        "jaxaffect train --config configs/amer/amer.py:labels=fine --workdir runs/amer "
        "--seeds 0,1,2 --config.data.data_dir=~/tfds",
        "jaxaffect convert memor released_model.pth runs/amer_imported",
        "jaxaffect extract memor --videos ~/clips --subtitles ~/subs --annotations "
        "~/annotations.csv --out ~/my_memor_release",
    ),
)
