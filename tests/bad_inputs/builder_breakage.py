"""Shared by the bad-input builder tests: break a copy of a builder's dummy data in one way,
then check the refusal (one `FormatError` line naming the file and line or field) and that no
part of a build is left in the data_dir.

A case is a `Breakage`: a function that edits the copied manual_dir and returns the pieces the
message must contain, the first one being where it must start (the file, with line or field).
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from jaxaffect.errors import FormatError

REPO = Path(__file__).resolve().parents[2]


@dataclasses.dataclass(frozen=True)
class Breakage:
    """One way to break a release: `apply(manual_dir, *context)` edits the copy and returns
    the message's pieces. `late`: found while generating (feature contents), so the builder's
    cheap `check_manual_dir` lets it through."""

    name: str
    apply: Callable[..., list[str]]
    late: bool = False


def lines(path: Path) -> list[bytes]:
    """The non-blank lines of a text file, as bytes."""
    return [ln for ln in path.read_bytes().splitlines() if ln.strip()]


def write_lines(path: Path, new_lines: Sequence[bytes | str]) -> None:
    path.write_bytes(b"\n".join(ln.encode() if isinstance(ln, str) else ln
                                for ln in new_lines) + b"\n")


def replace_line(path: Path, lineno: int, text: bytes | str) -> None:
    """Replaces line `lineno` (1-based, counting non-blank lines; the dummy files have none)."""
    old = lines(path)
    old[lineno - 1] = text.encode() if isinstance(text, str) else text
    write_lines(path, old)


def append_line(path: Path, text: bytes | str) -> int:
    """Appends a line; returns its line number."""
    old = lines(path)
    write_lines(path, [*old, text])
    return len(old) + 1


def move_out_and_link(path: Path, elsewhere: Path) -> None:
    """Moves `path` to `elsewhere` (outside the release) and leaves a symlink to it."""
    elsewhere.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(path, elsewhere)
    os.symlink(elsewhere, path)


def rewrite_npz(path: Path, **changes: Any) -> None:
    """Rewrites a feature file with some arrays replaced (None removes one), bypassing the
    project's writer so that malformed arrays can be stored."""
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    arrays.update(changes)
    path.unlink()
    with path.open("wb") as f:
        np.savez(f, **{k: v for k, v in arrays.items() if v is not None})


def edit_npz(path: Path, **changes: Any) -> None:
    """Rewrites an .npz with arrays replaced (a callable gets the old arrays; None removes)."""
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    rewrite_npz(path, **{k: v(arrays) if callable(v) else v for k, v in changes.items()})


def with_value(key: str, index: Any, value: Any, dtype: Any = None) -> Callable:
    """An `edit_npz` change: a copy of `key` (cast to dtype) with `value` at `index`."""
    def change(arrays):
        x = arrays[key].astype(dtype or arrays[key].dtype)
        x[index] = value
        return x
    return change


def move_out(manual: Path, tmp_path: Path, rel: str) -> None:
    """Moves manual/rel outside the manual_dir and leaves a symlink to it."""
    move_out_and_link(manual / rel, tmp_path / "outside" / rel)


def feature_breakages(target: Callable[[Path], Path]) -> list[Breakage]:
    """Broken feature files, shared by all builders; `target(manual_dir)` picks the file (not
    the first video in sorted id order, whose sizes are the build's reference)."""

    def string_array(m, *_):
        path = target(m)
        rewrite_npz(path, image=np.array([["0.5", "1.5"]]))
        return [f"{path}: stream 'image'", "floating-point", "dtype <U"]

    def nan_mask(m, *_):
        path = target(m)
        with np.load(path) as z:
            steps = z["audio"].shape[0]
        rewrite_npz(path, audio_mask=np.full(steps, np.nan, np.float32))
        return [f"{path}: mask 'audio_mask'", "only 0/1", "nan"]

    def nan_feature(m, *_):
        path = target(m)
        with np.load(path) as z:
            motion = z["motion"].copy()
        motion[0, 0] = np.nan
        rewrite_npz(path, motion=motion)
        return [f"{path}: stream 'motion'", "NaN or inf"]

    def missing_stream(m, *_):
        path = target(m)
        rewrite_npz(path, audio=None)
        return [f"{path}: missing array 'audio'"]

    def wrong_size(m, *_):
        path = target(m)
        with np.load(path) as z:
            image = z["image"]
        rewrite_npz(path, image=np.zeros((image.shape[0], image.shape[1] + 1), np.float32))
        return [f"{path}: stream 'image' has d={image.shape[1] + 1}", "dataset uses"]

    def not_npz(m, *_):
        path = target(m)
        path.write_bytes(b"these are not the features you are looking for\n")
        return [f"{path}: not a readable .npz file"]

    return [Breakage(f.__name__, f, late=True) for f in
            (string_array, nan_mask, nan_feature, missing_stream, wrong_size, not_npz)]


def assert_refused(error: BaseException, needles: Sequence[str]) -> None:
    """A FormatError of one line that starts with needles[0] and contains all of them."""
    assert isinstance(error, FormatError), repr(error)
    msg = str(error)
    assert "\n" not in msg, msg
    assert msg.startswith(needles[0]), msg
    for needle in needles[1:]:
        assert needle in msg, (needle, msg)


def assert_nothing_built(data_dir: Path) -> None:
    """No file at all under data_dir, and no version or `incomplete.*` folder of a dataset."""
    if not data_dir.exists():
        return
    files = [p for p in data_dir.rglob("*") if not p.is_dir()]
    assert not files, files
    leftovers = [p for p in data_dir.glob("*/*") if p.parent.name != "downloads"]
    assert not leftovers, leftovers


def built_metadata(builder_dir: str | os.PathLike) -> dict[str, Any]:
    """The metadata a build wrote to disk (metadata.json of the builder directory)."""
    return json.loads((Path(builder_dir) / "metadata.json").read_text())


def run_cli(*args: str) -> subprocess.CompletedProcess:
    """`python -m jaxaffect.cli ...` in a fresh process: what a user sees on stdout/stderr."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])])}
    return subprocess.run([sys.executable, "-m", "jaxaffect.cli", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)


def assert_refused_build(module: Any, manual: Path, data_dir: Path, needles: Sequence[str],
                         late: bool) -> None:
    """A build of `manual` with builder `module` fails with one named FormatError, leaves
    nothing, and the cheap pre-build check (`module.check_manual_dir`) says the same unless the
    problem is only found while writing (`late`: feature contents)."""
    from jaxaffect.errors import FormatError
    from tfds_builders.testing import prepare

    with pytest.raises(FormatError) as e:
        prepare(module.Builder, manual, data_dir)
    assert_refused(e.value, needles)
    assert_nothing_built(data_dir)
    if late:
        module.check_manual_dir(str(manual))
    else:
        with pytest.raises(FormatError) as early:
            module.check_manual_dir(str(manual))
        assert str(early.value) == str(e.value)
