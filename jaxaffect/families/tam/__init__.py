"""TAM: cross-temporal multimodal transformer with time-sync-comment pretraining (VE-8,
Ekman-6, LIRIS-ACCEDE, Bilibili danmaku).

tasks "tam" (fusion strategies, fine-tuning) and "tam_pretrain" (TSC pretraining); their config
files in configs/ (`configs/tam/` links there); danmaku, lexicon and annotation readers used by
the builders; the synthetic corpus and demo.
"""

from jaxaffect.family import Corpus, Extractor, Family


def _tam_arguments(parser):
    from jaxaffect.families.tam import extract

    extract.add_arguments(parser)


def _tsc_arguments(parser):
    from jaxaffect.families.tam import extract

    extract.add_arguments(parser, danmaku=True)


FAMILY = Family(
    name="tam",
    summary="CTM transformer + time-sync-comment pretraining",
    tasks={"tam": "jaxaffect.families.tam.task:TAMTask",
           "tam_pretrain": "jaxaffect.families.tam.pretrain_task:TAMPretrainTask"},
    demo="jaxaffect.families.tam.demo:TAMDemo",
    demo_help="TSC pretraining then few-label fine-tuning, with and without pretraining",
    corpora={"tam": Corpus(writer="jaxaffect.families.tam.synthetic:synthesize",
                           help="bilibili_tsc + video_emotion8 layouts",
                           size_help="comment videos (default 300)"),
             "tsc": Corpus(writer="jaxaffect.families.tam.synthetic:synthesize_tsc",
                           help="a bilibili_tsc manual_dir alone (config custom), for builds "
                                "at scale",
                           size_help="comment videos (default 1000)")},
    extractors={
        "tam": Extractor(run="jaxaffect.families.tam.extract:run",
                         help="videos (+ their benchmark's list files) -> the segment-feature "
                              "layout of video_emotion8 / ekman6 / liris_accede",
                         add_arguments=_tam_arguments,
                         one_video="jaxaffect.families.tam.extract:features_for_video"),
        "tsc": Extractor(run="jaxaffect.families.tam.extract:run_tsc",
                         help="videos + danmaku XML files -> the bilibili_tsc layout",
                         add_arguments=_tsc_arguments,
                         one_video="jaxaffect.families.tam.extract:features_for_video"),
    },
    examples=(
        "jaxaffect extract tam --videos ~/my_clips --out ~/my_ve8_layout --workers 2",
        "jaxaffect build bilibili_tsc --manual_dir ~/bilibili --data_dir ~/tfds "
        "--builder_config dutir",
        "jaxaffect train --config configs/tam/pretrain.py --workdir runs/tam_pre",
        "jaxaffect train --config configs/tam/ctm.py:dataset=ve8 --workdir runs/tam_ve8 "
        "--splits 0-9",
    ),
)
