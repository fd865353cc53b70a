"""PERR: pairwise emotional relationship recognition with SMTA on ERATO (Gao et al.).

task "perr" (SMTA, LSTM and attention baselines), the ERATO manual_dir format, the synthetic
ERATO-layout corpus and `jaxaffect demo perr`.
"""

from jaxaffect.family import Corpus, Extractor, Family


def _extract_arguments(parser):
    from jaxaffect.families.perr import extract

    extract.add_arguments(parser)


FAMILY = Family(
    name="perr",
    summary="SMTA pairwise emotional relationships on ERATO",
    tasks={"perr": "jaxaffect.families.perr.task:PERRTask"},
    demo="jaxaffect.families.perr.demo:PERRDemo",
    demo_help="SMTA vs LSTM on a synthetic ERATO-layout corpus (the default)",
    corpora={"erato": Corpus(writer="jaxaffect.families.perr.synthetic:synthesize",
                             help="the ERATO layout", size_help="clips (default 2000)")},
    extractors={"perr": Extractor(
        run="jaxaffect.families.perr.extract:run",
        help="videos (+ subtitles, annotations.csv) -> the erato layout: two main faces, "
             "background, audio, text per time step",
        add_arguments=_extract_arguments,
        one_video="jaxaffect.families.perr.extract:features_for_video",
        inputs=("subtitles",))},
    is_default=True,
    examples=(
        "jaxaffect build erato --manual_dir ~/erato_release --data_dir ~/tfds",
        "jaxaffect train --config configs/perr/smta.py:attention=transformer,labels=fine,"
        "data=erato --workdir runs/smta_t --seeds 0,1,2",
        "jaxaffect predict --workdir runs/smta_t/seed_0 --features clip.npz",
        "jaxaffect extract perr --videos ~/clips --subtitles ~/subs --annotations "
        "~/annotations.csv --out ~/my_erato_layout",
        "jaxaffect predict --workdir runs/smta_t/seed_0 --video clip.mp4 --subtitles clip.srt",
    ),
)
