"""Bad inputs to the raw-video builders (eMotions, Music_video, the `raw` configs of Ekman-6 and
VideoEmotion-8): a bad release table row is refused with one FormatError line naming file,
line and field, leaving nothing built; a clip that cannot be decoded is skipped, named on
stderr and listed in metadata.json, unless every clip of a split fails.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from builder_breakage import (
    Breakage,
    assert_nothing_built,
    assert_refused,
    assert_refused_build,
    built_metadata,
    lines,
    replace_line,
    write_lines,
)

from jaxaffect.data.build import build_dataset
from jaxaffect.data.records import builder_dir_for
from jaxaffect.errors import ConfigError, FormatError
from tfds_builders.ekman6 import ekman6_dataset_builder as ek6
from tfds_builders.emotions import emotions_dataset_builder as emo
from tfds_builders.music_video import music_video_dataset_builder as mv
from tfds_builders.testing import copy_dummy_data, prepare


def _csv(m: Path) -> Path:
    return m / "emotions.csv"


def _row(m: Path, lineno: int) -> list[str]:
    return lines(_csv(m))[lineno - 1].decode().split(",")


def _set(m: Path, lineno: int, column: int, value: str) -> str:
    row = _row(m, lineno)
    row[column] = value
    replace_line(_csv(m), lineno, ",".join(row))
    return f"{_csv(m)}:{lineno}"


# ------------------------------------------------------------ emotions.csv breakages
# Columns: id,category,platform,split,balanced_split,test_split,file; line 2 is e01.

def unknown_category(m):
    return [f"{_set(m, 4, 1, 'happy')}: field 'category'", "'happy' is not one of",
            "excitation"]


def unknown_platform(m):
    return [f"{_set(m, 5, 2, 'youtube')}: field 'platform'", "douyin, kuaishou, tiktok"]


def unknown_split(m):
    return [f"{_set(m, 6, 3, 'val')}: field 'split'", "'val' is not one of"]


def empty_split(m):
    return [f"{_set(m, 6, 3, '')}: field 'split'", "empty is not one of"]


def unknown_balanced_split(m):
    return [f"{_set(m, 3, 4, 'dev')}: field 'balanced_split'", "'dev'"]


def duplicate_id(m):
    where = _set(m, 9, 0, "e02")
    return [f"{where}: field 'id': duplicate id 'e02'", f"first at {_csv(m)}:3"]


def missing_column(m):
    rows = [ln.decode().split(",") for ln in lines(_csv(m))]
    write_lines(_csv(m), [",".join(r[:2] + r[3:]) for r in rows])  # drop `platform`
    return [f"{_csv(m)}:1: missing column 'platform'"]


def duplicate_column(m):
    replace_line(_csv(m), 1, "id,category,platform,split,split,test_split,file")
    return [f"{_csv(m)}:1: column 'split' appears more than once"]


def wrong_field_count(m):
    replace_line(_csv(m), 7, "e06,tension,tiktok,train")
    return [f"{_csv(m)}:7: 4 fields, the header has 7"]


def missing_video_file(m):
    (m / "videos" / "e04.mp4").unlink()
    return [f"{_csv(m)}:5: field 'id': no video file videos/e04.<mp4|", str(m)]


def missing_listed_file(m):
    (m / "clips" / "e07.mkv").unlink()
    return [f"{_csv(m)}:8: field 'file': video file clips/e07.mkv not found"]


def several_video_files(m):
    (m / "videos" / "e04.webm").write_bytes((m / "videos" / "e04.mp4").read_bytes())
    return [f"{_csv(m)}:5: field 'id': several video files for 'videos/e04'",
            "e04.mp4, e04.webm"]


def path_escape(m):
    where = _set(m, 8, 6, "../outside.mp4")
    return [f"{where}: field 'file': '../outside.mp4' leaves the release folder"]


def symlink_escape(m):
    outside = m.parent / "elsewhere" / "e10.mp4"
    outside.parent.mkdir()
    (m / "videos" / "e10.mp4").rename(outside)
    os.symlink(outside, m / "videos" / "e10.mp4")
    return [f"{_csv(m)}:11: field 'id': 'videos/e10.mp4' is a symlink", "outside"]


def not_utf8(m):
    replace_line(_csv(m), 3, b"e02,fear,kuaishou,train,train,train,\xff")
    return [f"{_csv(m)}:3: not UTF-8"]


def header_only(m):
    write_lines(_csv(m), [lines(_csv(m))[0]])
    return [f"{_csv(m)}: no clips listed"]


def missing_table(m):
    _csv(m).unlink()
    return [f"{_csv(m)}: release table not found"]


CASES = [Breakage(f.__name__, f) for f in (
    unknown_category, unknown_platform, unknown_split, empty_split, unknown_balanced_split,
    duplicate_id, missing_column, duplicate_column, wrong_field_count, missing_video_file,
    missing_listed_file, several_video_files, path_escape, symlink_escape, not_utf8,
    header_only, missing_table)]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_bad_emotions_table_is_refused(case, tmp_path):
    manual = copy_dummy_data(emo.Builder, tmp_path)
    needles = case.apply(manual)
    assert_refused_build(emo, manual, tmp_path / "data", needles, case.late)


@pytest.mark.parametrize("column", ["balanced_split", "test_split"])
def test_variant_without_its_column_is_refused(column, tmp_path):
    manual = copy_dummy_data(emo.Builder, tmp_path)
    rows = [ln.decode().split(",") for ln in lines(_csv(manual))]
    drop = rows[0].index(column)
    write_lines(_csv(manual), [",".join(r[:drop] + r[drop + 1:]) for r in rows])
    config = {"balanced_split": "balanced_224", "test_split": "test"}[column]
    with pytest.raises(FormatError) as e:
        prepare(emo.Builder, manual, tmp_path / "data", config=config)
    assert_refused(e.value, [f"{_csv(manual)}: column {column!r} is absent",
                             f"config {config.removesuffix('_224')!r}"])
    assert_nothing_built(tmp_path / "data")
    with pytest.raises(FormatError, match="is absent"):
        emo.check_manual_dir(str(manual), config=config)
    emo.check_manual_dir(str(manual))  # the full variant does not need the column


def test_variant_with_an_empty_column_is_refused(tmp_path):
    manual = copy_dummy_data(emo.Builder, tmp_path)
    for lineno in range(2, 14):
        _set(manual, lineno, 5, "")
    with pytest.raises(FormatError) as e:
        build_dataset("emotions", str(manual), str(tmp_path / "data"), "array_record",
                      config="test")
    assert_refused(e.value, [f"{_csv(manual)}: column 'test_split' is empty in every row"])
    assert_nothing_built(tmp_path / "data")


# ------------------------------------------------------------ clips that do not decode

def test_broken_clip_is_skipped_named_and_listed(tmp_path, capfd):
    manual = copy_dummy_data(emo.Builder, tmp_path)
    truncated = manual / "videos" / "e02.mp4"
    truncated.write_bytes(truncated.read_bytes()[:600])
    (manual / "videos" / "e11.mp4").write_text("not a video\n")
    builder = prepare(emo.Builder, manual, tmp_path / "data")
    assert builder.info.splits["train"].num_examples == 5
    assert builder.info.splits["test"].num_examples == 2
    skipped = built_metadata(builder.data_dir)["skipped_clips"]
    assert [s["video_id"] for s in skipped] == ["e02", "e11"]
    assert skipped[0]["file"] == str(truncated)
    assert "not a decodable media file" in skipped[0]["reason"]
    err = capfd.readouterr().err
    line = next(ln for ln in err.splitlines() if "'e02'" in ln)
    assert f"skipped clip 'e02' (listed at {_csv(manual)}:3): {truncated}: not a" in line


def test_audio_only_clip_is_skipped(tmp_path):
    import av
    import numpy as np

    manual = copy_dummy_data(mv.Builder, tmp_path)
    path = manual / "videos" / "m2.mp4"
    with av.open(str(path), "w") as container:
        sound = container.add_stream("aac", rate=16000)
        sound.layout = "mono"
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp",
                                           layout="mono")
        frame.sample_rate, frame.pts = 16000, 0
        container.mux(sound.encode(frame))
        container.mux(sound.encode(None))
    builder = prepare(mv.Builder, manual, tmp_path / "data")
    skipped = built_metadata(builder.data_dir)["skipped_clips"]
    assert skipped == [{"video_id": "m2", "file": str(path), "reason": "no video stream"}]


def test_split_whose_every_clip_fails_is_refused(tmp_path):
    manual = copy_dummy_data(mv.Builder, tmp_path)
    tests = [f"videos/{v}.mp4" for v in ("m7", "m9")] + ["videos/landscape/m8.mp4"]
    for rel in tests:
        (manual / rel).write_bytes(b"")
    with pytest.raises(FormatError) as e:
        prepare(mv.Builder, manual, tmp_path / "data")
    assert_refused(e.value, [str(manual / "videos/m7.mp4"),
                             "split 'test': none of its 3 clips could be decoded",
                             "empty file"])
    assert_nothing_built(tmp_path / "data")


def test_music_video_bad_row_names_line_and_field(tmp_path):
    manual = copy_dummy_data(mv.Builder, tmp_path)
    table = manual / "music_video.csv"
    replace_line(table, 3, "m2,anger,train,")
    assert_refused_build(mv, manual, tmp_path / "data",
                         [f"{table}:3: field 'category'", "'anger' is not one of"], False)


# ------------------------------------------------------------ Ekman-6 / VE-8 raw configs

def test_class_list_raw_missing_video_names_list_line(tmp_path):
    manual = copy_dummy_data(ek6.Builder, tmp_path)
    (manual / "joy" / "1112.mp4").unlink()
    listed = next(manual / f for f in ("trainlist01.txt", "testlist01.txt")
                  if b"joy/1112" in [ln.split()[0] for ln in lines(manual / f)])
    lineno = [ln.split()[0] for ln in lines(listed)].index(b"joy/1112") + 1
    with pytest.raises(FormatError) as e:
        build_dataset("ekman6", str(manual), str(tmp_path / "data"), "array_record",
                      config="raw")
    assert_refused(e.value, [f"{listed}:{lineno}: no video file joy/1112.<mp4|"])
    assert_nothing_built(tmp_path / "data")
    # The feature config does not read the videos.
    ek6.check_manual_dir(str(manual))
    ek6.check_manual_dir(str(manual), config="features")


def test_class_list_raw_broken_clip_is_skipped(tmp_path):
    manual = copy_dummy_data(ek6.Builder, tmp_path)
    (manual / "fear" / "601.mp4").write_text("oops\n")
    builder = prepare(ek6.Builder, manual, tmp_path / "data", config="raw")
    meta = built_metadata(builder.data_dir)
    assert [s["video_id"] for s in meta["skipped_clips"]] == ["fear/601"]
    assert meta["class_names"] == list(ek6.Builder.CLASS_NAMES)
    total = sum(s.num_examples for s in builder.info.splits.values())
    assert total == 17


def test_builds_of_several_configs_need_the_config_named(tmp_path):
    manual = copy_dummy_data(ek6.Builder, tmp_path)
    data = tmp_path / "data"
    features = build_dataset("ekman6", str(manual), str(data), "array_record")
    assert builder_dir_for(str(data), "ekman6") == features  # one config built: found
    raw = build_dataset("ekman6", str(manual), str(data), "array_record", config="raw")
    assert Path(features).parent.name == "features" and Path(raw).parent.name == "raw"
    with pytest.raises(ConfigError) as e:
        builder_dir_for(str(data), "ekman6")
    msg = str(e.value)
    assert "\n" not in msg and "ekman6/features, ekman6/raw" in msg
    assert "data.name='ekman6/features'" in msg
    assert builder_dir_for(str(data), "ekman6/raw") == raw
    assert builder_dir_for(str(data), "ekman6/features") == features
