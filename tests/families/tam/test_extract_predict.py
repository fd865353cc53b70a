"""From videos to a prediction: `jaxaffect extract tam` on the VideoEmotion-8 dummy release
(real encoded videos + the benchmark's lists), `build` unchanged, a tiny CTM run, then
`predict --video` extracting the new video as the dataset was."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from jaxaffect import cli
from jaxaffect.data import build, prepared
from jaxaffect.families.tam.annotations import VE8_CLASSES
from jaxaffect.families.tam.configs import ctm as ctm_config

REPO = Path(__file__).resolve().parents[3]
VE8 = REPO / "tfds_builders/video_emotion8/dummy_data"

from test_tam_task import tiny  # noqa: E402 (the task tests' tiny CTM settings)

pytestmark = pytest.mark.slow


def test_extract_build_train_predict_video(tmp_path, capsys):
    from jaxaffect.train import train

    layout = tmp_path / "layout"
    assert cli.main(["extract", "tam", "--videos", str(VE8), "--out", str(layout),
                     "--no_progress", "--segment_seconds", "0.5"]) == 0
    assert len(list((layout / "features").rglob("*.npz"))) == 24
    record = json.loads((layout / "extraction.json").read_text())
    builder_dir = build.build_dataset("video_emotion8", str(layout), str(tmp_path / "tfds"),
                                      "array_record")
    meta = prepared.load_metadata(builder_dir)
    assert meta["extraction"] == record
    assert meta["stream_dims"] == {s: v["dim"] for s, v in record["streams"].items()}

    config = tiny(ctm_config.get_config("dataset=ve8,split=0,runlocal"), builder_dir)
    workdir = tmp_path / "run"
    assert train(config, str(workdir), progress=False)["finished"]
    video = sorted(VE8.glob("Joy/*.mp4"))[0]
    capsys.readouterr()
    assert cli.main(["predict", "--workdir", str(workdir), "--video", str(video), "--json"]) == 0
    out = capsys.readouterr().out
    result = json.loads(out[out.index("{"):])
    assert result["prediction"] in VE8_CLASSES
    assert abs(sum(result["probabilities"].values()) - 1.0) < 1e-5
    # the same prediction as from the layout's own feature file of that video
    feature_file = layout / "features" / "Joy" / f"{video.stem}.npz"
    assert cli.main(["predict", "--workdir", str(workdir), "--features", str(feature_file),
                     "--json"]) == 0
    out = capsys.readouterr().out
    again = json.loads(out[out.index("{"):])
    np.testing.assert_allclose(list(again["probabilities"].values()),
                               list(result["probabilities"].values()), rtol=1e-6)
    # a broken video: one line naming it
    bad = tmp_path / "bad.mp4"
    bad.write_text("not a video")
    assert cli.main(["predict", "--workdir", str(workdir), "--video", str(bad)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(bad) in err[0] and "decode" in err[0]

    # a dataset built from released feature files cannot take a video
    from types import SimpleNamespace

    from jaxaffect.config_loading import ConfigError
    from jaxaffect.evaluate import extract_like_dataset

    released = build.build_dataset("video_emotion8", str(VE8), str(tmp_path / "tfds2"),
                                   "array_record")
    with pytest.raises(ConfigError, match="not made by `jaxaffect extract`.*--features"):
        extract_like_dataset(SimpleNamespace(builder_dir=released), str(video), {},
                             str(tmp_path))
    # inputs the extractor does not take are refused by name
    with pytest.raises(ConfigError, match="takes no --subtitles"):
        extract_like_dataset(SimpleNamespace(builder_dir=builder_dir), str(video),
                             {"subtitles": "x.srt"}, str(tmp_path))
