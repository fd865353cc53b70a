"""What the builder READMEs' "Small datasets" paragraphs state, checked on each builder's
dummy data (a tiny release) with the default config: a training batch larger than the train
split, and an empty (or absent) validation split, are refused before the workdir exists with
one ConfigError line (what the CLI prints) that names what to change."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from jaxaffect.config_loading import ConfigError, load_config
from jaxaffect.data.build import build_dataset, builder_class
from jaxaffect.data.prepared import load_metadata, split_names
from jaxaffect.data.splits import in_hash_fraction
from jaxaffect.train import train
from tfds_builders.testing import copy_dummy_data

REPO = Path(__file__).resolve().parents[1]


def _build(name: str, tmp_path: Path, edit: Callable[[Path], None] | None = None,
           config: str | None = None) -> str:
    manual = copy_dummy_data(builder_class(name), tmp_path)
    if edit is not None:
        edit(manual)
    return build_dataset(name, str(manual), str(tmp_path / "tfds"), "array_record",
                         config=config)


def _refused(spec: str, builder_dir: str, tmp_path: Path, error: type[Exception], message: str,
             batch_size: int | None = None) -> None:
    config = load_config(str(REPO / spec))
    config.data.builder_dir = builder_dir
    config.mesh.num_devices, config.mesh.data, config.mesh.fsdp = 1, 1, 1
    if batch_size is not None:
        config.training.batch_size = batch_size
    workdir = tmp_path / "never"
    with pytest.raises(error) as e:
        train(config, str(workdir), progress=False)
    assert message in str(e.value), str(e.value)
    assert not workdir.exists()


def test_erato_batch_then_carved_validation(tmp_path):
    # 6 train clips, no fine label with 5 of them: at validation_fraction 0.1 nothing is carved.
    builder_dir = _build("erato", tmp_path)
    _refused("configs/perr/smta.py:data=erato", builder_dir, tmp_path, ConfigError,
             f"split 'train' with training.batch_size=16: {builder_dir}, split 'train': "
             "6 examples, fewer than one batch of 16")
    _refused("configs/perr/smta.py:data=erato", builder_dir, tmp_path, ConfigError,
             "the validation split is empty (model selection needs one); raise "
             "data.validation_fraction", batch_size=1)


def test_ekman6_batch_then_class_list_carve(tmp_path):
    builder_dir = _build("ekman6", tmp_path / "two_per_class")
    _refused("configs/tam/ctm.py:dataset=ek6", builder_dir, tmp_path, ConfigError,
             "split 'train' with training.batch_size=8: 6 examples, fewer than one batch of 8")

    def one_per_class(manual: Path) -> None:  # every class keeps a single training video
        lines = (manual / "trainlist01.txt").read_text().splitlines()
        (manual / "trainlist01.txt").write_text("\n".join(lines[::2]) + "\n")

    builder_dir = _build("ekman6", tmp_path / "one_per_class", one_per_class)
    _refused("configs/tam/ctm.py:dataset=ek6", builder_dir, tmp_path, ConfigError,
             "the validation split is empty", batch_size=1)


def test_bilibili_tsc_hash_carve(tmp_path):
    builder_dir = _build("bilibili_tsc", tmp_path)
    _refused("configs/tam/pretrain.py", builder_dir, tmp_path, ConfigError,
             "no usable validation split (model selection needs one): split 'validation' is "
             "empty (data.validation_fraction=0.05); raise data.validation_fraction",
             batch_size=1)


def test_lirec_without_val_movies(tmp_path):
    def no_val(manual: Path) -> None:
        path = manual / "others" / "split.json"
        split = json.loads(path.read_text())
        split["train"] += split.pop("val")
        path.write_text(json.dumps(split))

    builder_dir = _build("moviegraphs_lirec", tmp_path, no_val)
    assert split_names(builder_dir) == ["test", "train"]
    _refused("configs/lirec/interactions.py:data=moviegraphs", builder_dir, tmp_path,
             ConfigError, "no split 'validation' (has ['test', 'train']); add examples to the "
             "build's validation split", batch_size=1)


def test_memor_without_validation_clips(tmp_path):
    def no_validation_clip(manual: Path) -> None:
        from jaxaffect.families.amer import release_format as rf

        annotations = rf.read_annotations(manual)
        ids = (manual / "train_id.txt").read_text().split()
        kept = [i for i in ids if not in_hash_fraction(annotations[int(i)].clip, 0.1)]
        assert 0 < len(kept) < len(ids)
        (manual / "train_id.txt").write_text("\n".join(kept) + "\n")

    builder_dir = _build("memor", tmp_path, no_validation_clip, config="official")
    assert load_metadata(builder_dir)["empty_splits"] == ["validation"]
    _refused("configs/amer/amer.py:data=memor", builder_dir, tmp_path, ConfigError,
             "no split 'validation' (has ['test', 'train']); add examples to the build's "
             "validation split", batch_size=1)
