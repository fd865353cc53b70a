"""TAM: cross-temporal multimodal transformer with time-sync-comment pretraining (VE-8,
Ekman-6, LIRIS-ACCEDE, Bilibili danmaku).

tasks "tam" (fusion strategies, fine-tuning) and "tam_pretrain" (TSC pretraining); their config
files in configs/ (`configs/tam/` links there); danmaku, lexicon and annotation readers used by
the builders; the synthetic corpus and demo.
"""

from jaxaffect.family import Corpus, Family

FAMILY = Family(
    name="tam",
    summary="CTM transformer + time-sync-comment pretraining",
    tasks={"tam": "jaxaffect.families.tam.task:TAMTask",
           "tam_pretrain": "jaxaffect.families.tam.pretrain_task:TAMPretrainTask"},
    demo="jaxaffect.families.tam.demo:TAMDemo",
    demo_help="TSC pretraining then few-label fine-tuning, with and without pretraining",
    corpora={"tam": Corpus(writer="jaxaffect.families.tam.synthetic:synthesize",
                           help="bilibili_tsc + video_emotion8 layouts",
                           size_help="comment videos (default 300)")},
    examples=(
        "jaxaffect build bilibili_tsc --manual_dir ~/bilibili --data_dir ~/tfds "
        "--builder_config dutir",
        "jaxaffect train --config configs/tam/pretrain.py --workdir runs/tam_pre",
        "jaxaffect train --config configs/tam/ctm.py:dataset=ve8 --workdir runs/tam_ve8 "
        "--splits 0-9",
    ),
)
