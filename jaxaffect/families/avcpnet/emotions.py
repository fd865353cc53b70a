"""Class lists of the raw-video datasets and their emotion-to-polarity maps (EP-CE, Eq. 9).

eMotions and Music_video share six categories; Ekman-6 and VideoEmotion-8 keep their own
lists (the order of their classInd.txt files). Polarity ids: 0 positive, 1 neutral, 2 negative.
The paper gives the map for eMotions only implicitly (three polarities, "neutral" its own);
for Ekman-6 and VE-8, which have no neutral class, joy/surprise (and anticipation/trust for
VE-8) count as positive and the rest as negative, the usual split of Plutchik's wheel.
"""

from __future__ import annotations

import numpy as np

EMOTIONS6 = ("excitation", "fear", "neutral", "relaxation", "sadness", "tension")
EKMAN6 = ("anger", "disgust", "fear", "joy", "sadness", "surprise")
VE8 = ("anger", "anticipation", "disgust", "fear", "joy", "sadness", "surprise", "trust")

POLARITIES = ("positive", "neutral", "negative")
POLARITY_OF_EMOTION = {
    "excitation": "positive", "relaxation": "positive", "joy": "positive",
    "surprise": "positive", "anticipation": "positive", "trust": "positive",
    "neutral": "neutral",
    "fear": "negative", "sadness": "negative", "tension": "negative", "anger": "negative",
    "disgust": "negative",
}


def polarity_of(class_names: tuple[str, ...] | list[str]) -> np.ndarray:
    """One polarity id (0 positive, 1 neutral, 2 negative) per class, in class order (names
    compared case-insensitively: VE-8's classInd.txt capitalises them)."""
    unknown = [c for c in class_names if c.lower() not in POLARITY_OF_EMOTION]
    if unknown:
        raise ValueError(f"no polarity for classes {unknown}; known: "
                         f"{sorted(POLARITY_OF_EMOTION)}")
    return np.asarray([POLARITIES.index(POLARITY_OF_EMOTION[c.lower()]) for c in class_names],
                      np.int32)
