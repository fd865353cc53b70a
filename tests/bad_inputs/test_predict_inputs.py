"""`jaxaffect predict` refuses features it cannot honestly predict from, in one line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from jaxaffect import cli
from jaxaffect.families.perr import erato_format as ef

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]
DIMS = {"person_a": 3, "person_b": 3, "background": 2, "audio": 2, "text": 2}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    from jaxaffect.data.build import build_dataset

    root = tmp_path_factory.mktemp("predict")
    ef.write_random_manual_dir(root / "manual", num_clips=40, dims=DIMS, max_steps=5, seed=2)
    builder_dir = build_dataset("erato", str(root / "manual"), str(root / "tfds"))
    workdir = root / "run"
    assert cli.main(["train", "--no_progress", "--config",
                     str(REPO / "configs/perr/lstm.py") + ":runlocal", "--workdir",
                     str(workdir), f"--config.data.builder_dir={builder_dir}",
                     "--config.training.batch_size=4", "--config.training.num_epochs=1",
                     "--config.mesh.num_devices=1", "--config.mesh.data=1"]) == 0
    return workdir, root / "manual"


def _clip(manual: Path) -> ef.ClipFeatures:
    first = sorted(ef.read_annotations(manual), key=lambda a: a.clip_id)[0]
    return ef.read_clip(ef.feature_path(manual, first.clip_id))


def _predict(workdir: Path, path: Path, capsys) -> tuple[int, list[str]]:
    code = cli.main(["predict", "--workdir", str(workdir), "--features", str(path)])
    return code, capsys.readouterr().err.strip().splitlines()


def test_a_normal_clip_predicts(run, tmp_path, capsys):
    workdir, manual = run
    path = tmp_path / "ok.npz"
    ef.write_clip(path, _clip(manual))
    assert cli.main(["predict", "--workdir", str(workdir), "--features", str(path)]) == 0
    assert "ok.npz:" in capsys.readouterr().out


def test_huge_features_are_refused_not_answered_with_nan(run, tmp_path, capsys):
    workdir, manual = run
    clip = _clip(manual)
    huge = {s: np.full_like(x, 3e38) for s, x in clip.features.items()}
    path = tmp_path / "huge.npz"
    ef.write_clip(path, ef.ClipFeatures(huge, clip.masks))
    code, err = _predict(workdir, path, capsys)
    assert code == 1 and len(err) == 1 and "huge.npz" in err[0] and "not finite" in err[0]


def test_a_clip_with_every_mask_false_is_refused(run, tmp_path, capsys):
    workdir, manual = run
    clip = _clip(manual)
    path = tmp_path / "absent.npz"
    ef.write_clip(path, ef.ClipFeatures(clip.features,
                                        {s: np.zeros_like(m) for s, m in clip.masks.items()}))
    code, err = _predict(workdir, path, capsys)
    assert code == 1 and len(err) == 1 and "absent.npz" in err[0] and "mask" in err[0]


@pytest.mark.parametrize("breakage", ["strings", "nan_mask", "not_npz"])
def test_broken_feature_files_are_one_line(run, tmp_path, capsys, breakage):
    from jaxaffect.data.release_files import write_npz

    workdir, manual = run
    clip = _clip(manual)
    arrays = {**{s: x for s, x in clip.features.items()},
              **{s + "_mask": m for s, m in clip.masks.items()}}
    path = tmp_path / f"{breakage}.npz"
    if breakage == "strings":
        arrays["text"] = np.full(arrays["text"].shape, "x")
        write_npz(path, arrays)
    elif breakage == "nan_mask":
        mask = arrays["audio_mask"].astype(np.float64)
        mask[0] = np.nan  # would read as True if cast to bool
        arrays["audio_mask"] = mask
        write_npz(path, arrays)
    else:
        path.write_text("not a zip")
    code, err = _predict(workdir, path, capsys)
    assert code == 1 and len(err) == 1 and f"{breakage}.npz" in err[0], err
