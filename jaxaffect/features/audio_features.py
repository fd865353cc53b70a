"""Per-segment audio features by name: our MFCC statistics, or openSMILE's functionals.

`--audio` of the extractors picks one:

* ``mfcc`` (default): `features.audio.segment_statistics` (83 values, numpy only).
* ``compare``: openSMILE's ComParE 2016 functionals (6,373 values), the set MEmoR's authors used
  (AMER paper Sec. 4.1).
* ``egemaps``: openSMILE's eGeMAPS v02 functionals (88 values), the minimalistic standard set.

openSMILE comes from the `opensmile` package (audEERING; it ships the SMILExtract library; its
licence allows research and education use, see the package), installed with
``pip install "jaxaffect[opensmile]"``. Each segment is passed on its own (int16 samples scaled
to [-1, 1], float32); a segment openSMILE finds too short (its output is NaN) or with no
samples is absent (zeros, present False), as MFCC segments with fewer than two frames are.
"""

from __future__ import annotations

import functools
import warnings
from typing import Any

import numpy as np

from jaxaffect.errors import FormatError
from jaxaffect.features import audio

KINDS: dict[str, tuple[str | None, int | None]] = {
    "mfcc": (None, None),  # width: audio.statistics_dim()
    "compare": ("ComParE_2016", 6373),
    "egemaps": ("eGeMAPSv02", 88),
}
INSTALL = 'pip install "jaxaffect[opensmile]"'


def _opensmile():
    try:
        import opensmile
    except ImportError:
        raise FormatError(f"--audio compare/egemaps need openSMILE: {INSTALL} (free for "
                          "research and education; see the opensmile package's licence)"
                          ) from None
    return opensmile


@functools.lru_cache(maxsize=4)
def _smile(feature_set: str) -> Any:
    opensmile = _opensmile()
    return opensmile.Smile(feature_set=getattr(opensmile.FeatureSet, feature_set),
                           feature_level=opensmile.FeatureLevel.Functionals)


def dim(kind: str) -> int:
    """Values per segment of feature kind `kind`."""
    if kind not in KINDS:
        raise ValueError(f"audio features {kind!r}: one of {', '.join(KINDS)}")
    return audio.statistics_dim() if kind == "mfcc" else int(KINDS[kind][1])


def stream(kind: str) -> dict[str, Any]:
    """The extraction.json entry of an audio stream of kind `kind` (name, width, and the
    openSMILE version for its sets)."""
    if kind == "mfcc":
        return {"name": audio.STATISTICS_NAME, "dim": dim(kind)}
    return {"name": f"opensmile-{KINDS[kind][0]}-functionals", "dim": dim(kind),
            "version": str(_opensmile().__version__)}


def opensmile_functionals(samples: np.ndarray, bounds: np.ndarray, sample_rate: int,
                          feature_set: str) -> tuple[np.ndarray, np.ndarray]:
    """(float32 [S, D], present bool [S]): openSMILE functionals of each segment [start, end)
    (seconds) of int16 mono `samples`."""
    smile = _smile(feature_set)
    bounds = np.asarray(bounds, np.float64).reshape(-1, 2)
    out = np.zeros((len(bounds), len(smile.feature_names)), np.float32)
    present = np.zeros(len(bounds), bool)
    signal = audio.as_float(np.asarray(samples)).astype(np.float32)
    for i, (start, end) in enumerate(bounds):
        lo, hi = max(0, round(start * sample_rate)), min(signal.size, round(end * sample_rate))
        if hi <= lo:
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "Segment too short, filling with NaN."
            values = np.asarray(smile.process_signal(signal[lo:hi], sample_rate).values,
                                np.float64).reshape(-1)
        if np.all(np.isfinite(values)):
            out[i], present[i] = values.astype(np.float32), True
    return out, present


def segment_features(kind: str, samples: np.ndarray, bounds: np.ndarray,
                     sample_rate: int = audio.SAMPLE_RATE) -> tuple[np.ndarray, np.ndarray]:
    """(float32 [S, dim(kind)], present bool [S]) of segments `bounds` [S, 2] (seconds)."""
    if kind == "mfcc":
        return audio.segment_statistics(samples, bounds, sample_rate)
    d = dim(kind)
    if np.asarray(samples).size == 0 or len(np.asarray(bounds).reshape(-1, 2)) == 0:
        n = len(np.asarray(bounds).reshape(-1, 2))
        return np.zeros((n, d), np.float32), np.zeros(n, bool)
    return opensmile_functionals(samples, bounds, sample_rate, str(KINDS[kind][0]))


def add_argument(parser: Any) -> None:
    """The extractors' --audio option."""
    parser.add_argument("--audio", default="mfcc", choices=list(KINDS),
                        help="per-segment audio features: mfcc (our MFCC statistics, 83; "
                             "default), compare (openSMILE ComParE 2016 functionals, 6373, as "
                             "MEmoR) or egemaps (openSMILE eGeMAPS v02, 88); openSMILE needs "
                             f"{INSTALL}")


def kind_of(settings: dict[str, Any]) -> str:
    """The audio feature kind of an extraction's settings (records made before the option
    existed hold MFCC statistics)."""
    return str(settings.get("audio", "mfcc"))
