"""`jaxaffect build` into a data_dir that already holds a complete build: skipped with a reason,
or replaced with --overwrite only once the new build is complete."""

from __future__ import annotations

from jaxaffect import cli
from jaxaffect.data import prepared, records
from jaxaffect.families.perr.erato_format import write_random_manual_dir

DIMS = {"person_a": 3, "person_b": 3, "background": 2, "audio": 2, "text": 2}


def _last_line(text: str) -> str:
    return text.strip().splitlines()[-1]


def _sizes(builder_dir: str) -> dict[str, int]:
    return {s: prepared.split_size(builder_dir, s) for s in prepared.split_names(builder_dir)}


def test_existing_build_is_skipped_then_overwritten(tmp_path, capsys):
    write_random_manual_dir(tmp_path / "a", num_clips=10, dims=DIMS, max_steps=3, seed=0)
    write_random_manual_dir(tmp_path / "b", num_clips=25, dims=DIMS, max_steps=3, seed=1)
    data_dir = str(tmp_path / "tfds")
    build = ["build", "erato", "--data_dir", data_dir, "--manual_dir"]
    assert cli.main(build + [str(tmp_path / "a")]) == 0
    first = _last_line(capsys.readouterr().out)
    assert first.startswith("built erato into ")
    builder_dir = first.split(" into ")[1].strip()
    before = _sizes(builder_dir)
    assert sum(before.values()) == 10

    assert cli.main(build + [str(tmp_path / "b")]) == 0
    out = _last_line(capsys.readouterr().out)
    assert out.startswith("skipped:") and "was not read" in out and "--overwrite" in out
    assert _sizes(builder_dir) == before

    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "annotations.csv").write_text("clip_id,label,split\nx,nope,train\n")
    assert cli.main(build + [str(tmp_path / "broken"), "--overwrite"]) == 1
    assert "nope" in capsys.readouterr().err
    assert _sizes(builder_dir) == before  # a failed rebuild leaves the old build

    assert cli.main(build + [str(tmp_path / "b"), "--overwrite"]) == 0
    assert _last_line(capsys.readouterr().out) == f"rebuilt erato into {builder_dir}"
    records.dataset_files.cache_clear()  # the same path now holds another build
    assert sum(_sizes(builder_dir).values()) == 25
    leftovers = [p.name for p in (tmp_path / "tfds").rglob(".*")]
    assert leftovers == []
