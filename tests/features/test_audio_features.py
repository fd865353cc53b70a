"""--audio of the extractors: MFCC statistics, or openSMILE functionals per segment (tests of
the openSMILE sets skip without the `opensmile` package).

The openSMILE tests run in a fresh interpreter (`test_opensmile_in_a_fresh_process`): its
native library once crashed (segmentation fault) inside a test worker that had loaded many
other extension modules (Apache Beam, pyarrow, ...), while it runs cleanly in a fresh process,
as the extraction workers are."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from jaxaffect.errors import FormatError
from jaxaffect.features import audio, audio_features

sys.path.insert(0, str(Path(__file__).resolve().parent))
import media_files as mf  # noqa: E402

SR = audio.SAMPLE_RATE


def _speech_like(seconds: float) -> np.ndarray:
    t = np.arange(round(seconds * SR)) / SR
    wave = 0.3 * np.sin(2 * np.pi * 220 * t) * (1 + np.sin(2 * np.pi * 3 * t)) / 2
    wave += 0.05 * np.random.default_rng(0).normal(size=t.size)
    return np.clip(wave * 32767, -32768, 32767).astype(np.int16)


def test_mfcc_kind_is_the_mfcc_statistics():
    x = _speech_like(2.0)
    bounds = np.array([[0.0, 0.7], [0.7, 2.0], [1.99, 2.5]])
    got = audio_features.segment_features("mfcc", x, bounds)
    want = audio.segment_statistics(x, bounds)
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w)
    assert audio_features.stream("mfcc") == {"name": audio.STATISTICS_NAME, "dim": 83}
    assert audio_features.kind_of({}) == "mfcc"
    with pytest.raises(ValueError, match="one of mfcc, compare, egemaps"):
        audio_features.dim("vggish")


def test_missing_opensmile_is_one_line(monkeypatch):
    monkeypatch.setitem(sys.modules, "opensmile", None)  # import fails
    audio_features._smile.cache_clear()
    with pytest.raises(FormatError, match=r'pip install "jaxaffect\[opensmile\]"'):
        audio_features.segment_features("compare", _speech_like(1.0), np.array([[0.0, 1.0]]))
    audio_features._smile.cache_clear()


CHILD = "JAXAFFECT_OPENSMILE_CHILD"
in_child = pytest.mark.skipif(os.environ.get(CHILD) != "1",
                              reason="runs inside test_opensmile_in_a_fresh_process")


def test_opensmile_in_a_fresh_process():
    pytest.importorskip("opensmile")
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-n", "0", "-p", "no:cacheprovider", __file__,
         "-k", "child"], env={**os.environ, CHILD: "1"}, capture_output=True, text=True,
        timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "3 passed" in result.stdout, result.stdout[-2000:]


@in_child
@pytest.mark.parametrize("kind, width", [("egemaps", 88), ("compare", 6373)])
def test_child_opensmile_functionals_per_segment(kind, width):
    opensmile = pytest.importorskip("opensmile")
    x = _speech_like(3.0)
    bounds = np.array([[0.0, 1.0], [1.0, 2.5], [2.999, 3.0], [3.5, 4.0]])
    values, present = audio_features.segment_features(kind, x, bounds)
    assert values.shape == (4, width) and values.dtype == np.float32
    # the too-short and the out-of-range segments are absent (zeros)
    assert present.tolist() == [True, True, False, False] and not values[2:].any()
    # reference: openSMILE on the whole signal, cut by its own start/end arguments
    smile = opensmile.Smile(feature_set=getattr(opensmile.FeatureSet,
                                                audio_features.KINDS[kind][0]),
                            feature_level=opensmile.FeatureLevel.Functionals)
    signal = x.astype(np.float32) / 32768.0
    for i in range(2):
        want = smile.process_signal(signal, SR, start=float(bounds[i, 0]),
                                    end=float(bounds[i, 1])).values[0]
        np.testing.assert_allclose(values[i], want.astype(np.float32), rtol=1e-5, atol=1e-5)
    assert values[0].tobytes() != values[1].tobytes()
    record = audio_features.stream(kind)
    assert record["dim"] == width and record["version"] == opensmile.__version__
    empty, none = audio_features.segment_features(kind, np.zeros(0, np.int16), bounds)
    assert empty.shape == (4, width) and not none.any()


@in_child
def test_child_tam_extraction_with_egemaps(tmp_path):
    pytest.importorskip("opensmile")
    from jaxaffect.families.tam import extract as tx
    from jaxaffect.features import extraction as ex

    path = mf.write_clip(tmp_path / "clip.mp4", seconds=2.0)
    settings = {**tx.SETTINGS, "audio": "egemaps"}
    arrays, _, _ = tx.segment_streams(str(path), settings, ex.Stages())
    assert arrays["audio"].shape == (len(arrays["image"]), 88) and arrays["audio_mask"].any()
    record = tx.stream_record(settings, "tam")
    assert record["streams"]["audio"]["dim"] == 88
    assert record["streams"]["audio"]["name"] == "opensmile-eGeMAPSv02-functionals"
