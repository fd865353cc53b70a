"""The TAM benchmarks' protocol table, shared by `configs/tam/ctm.py` (and through it
`finetune.py`) and by the task (class names).

Per dataset key: the build name ("dataset/config" where the builder has configs: the feature
builds of VE-8 and Ekman-6 are their `features` config), the label key or regression targets,
the class names, the paper's T / batch / epochs (Sec. 5.2: T=64, batch 8, 100 epochs for VE-8
and YF-6; T=16, batch 16, 20 epochs for MediaEval) and the default split index (VE-8: the first
of the ten random splits; -1: the build's own lists).
"""

from __future__ import annotations

from typing import Any

from jaxaffect.families.tam import annotations as aa

DATASETS: dict[str, dict[str, Any]] = {
    "ve8": dict(name="video_emotion8/features", label_key="label", classes=aa.VE8_CLASSES,
                num_segments=64, batch_size=8, num_epochs=100, split_index=0),
    "ek6": dict(name="ekman6/features", label_key="label", classes=aa.EK6_CLASSES,
                num_segments=64, batch_size=8, num_epochs=100, split_index=-1),
    "me2015_valence": dict(name="liris_accede", label_key="valence_class",
                           classes=aa.VALENCE_CLASSES, num_segments=16, batch_size=16,
                           num_epochs=20, split_index=-1),
    "me2015_arousal": dict(name="liris_accede", label_key="arousal_class",
                           classes=aa.AROUSAL_CLASSES, num_segments=16, batch_size=16,
                           num_epochs=20, split_index=-1),
    "me2016": dict(name="liris_accede", target_keys=("valence", "arousal"),
                   num_segments=16, batch_size=16, num_epochs=20, split_index=-1),
}
