"""Arrays a release stores in another dtype than the build (float64 features, 0/1 int64
masks) are converted, and a build says so: one `note:` line per kind on stderr, with the count
and the first array, and the counts in its metadata.json. Data already float32/bool: no note.

A real `build_dataset` of ERATO's dummy data (per-clip .npz files), some clips rewritten.
"""

from __future__ import annotations

import numpy as np
import pytest
from builder_breakage import built_metadata, edit_npz

from jaxaffect.data import release_files as rf
from jaxaffect.data.build import build_dataset
from jaxaffect.families.perr import erato_format as ef
from tfds_builders.erato import erato_dataset_builder as eb
from tfds_builders.testing import copy_dummy_data

WIDENED = ("c04", "c08")  # a train and a test clip; not c01, the reference for the sizes


def _notes(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("note:")]


def _widen(manual, clip_ids):
    """Rewrites the clips' features as float64 and their masks as int64 0/1."""
    paths = [manual / "features" / f"{c}.npz" for c in clip_ids]
    for path in paths:
        edit_npz(path, **{s: (lambda a, s=s: a[s].astype(np.float64)) for s in ef.STREAMS},
                 **{s + "_mask": (lambda a, s=s: a[s + "_mask"].astype(np.int64))
                    for s in ef.STREAMS})
    return paths


def test_float64_features_and_int64_masks_give_one_note_per_kind(tmp_path, capfd):
    manual = copy_dummy_data(eb.Builder, tmp_path)
    paths = _widen(manual, WIDENED)
    capfd.readouterr()
    builder_dir = build_dataset("erato", str(manual), str(tmp_path / "data"), "array_record")
    notes = _notes(capfd.readouterr().err)
    n = len(WIDENED) * len(ef.STREAMS)
    assert len(notes) == 2, notes
    features, masks = notes
    firsts = {f"{p}: stream {ef.STREAMS[0]!r}" for p in paths}
    assert features.startswith(f"note: {n} feature arrays were float64 in the release (first: ")
    assert features.endswith("); stored as float32 (values beyond float32 would have been "
                             "refused)")
    assert features[len(f"note: {n} feature arrays were float64 in the release (first: "):
                    -len("); stored as float32 (values beyond float32 would have been refused)")
                    ] in firsts
    first_masks = {f"{p}: mask {ef.STREAMS[0] + '_mask'!r}" for p in paths}
    assert masks.startswith(f"note: {n} masks were int64 0/1 (first: ")
    assert masks.endswith("); stored as bool")
    assert masks[len(f"note: {n} masks were int64 0/1 (first: "):-len("); stored as bool")
                 ] in first_masks

    recorded = built_metadata(builder_dir)[rf.CONVERSIONS_KEY]
    assert set(recorded) == {"float64 features", "int64 masks"}
    assert recorded["float64 features"]["count"] == n
    assert recorded["float64 features"]["stored_as"] == "float32"
    assert recorded["int64 masks"] == {"count": n, "stored_as": "bool",
                                       "first": recorded["int64 masks"]["first"]}
    # Locations relative to the release folder: the build does not depend on where it lay.
    assert recorded["int64 masks"]["first"] in {
        f.removeprefix(f"{manual}/") for f in first_masks}

    # A reused build reads nothing and says nothing.
    build_dataset("erato", str(manual), str(tmp_path / "data"), "array_record")
    assert _notes(capfd.readouterr().err) == []


def test_float32_and_bool_release_gives_no_note(tmp_path, capfd):
    manual = copy_dummy_data(eb.Builder, tmp_path)
    capfd.readouterr()
    builder_dir = build_dataset("erato", str(manual), str(tmp_path / "data"), "array_record")
    assert _notes(capfd.readouterr().err) == []
    assert rf.CONVERSIONS_KEY not in built_metadata(builder_dir)


def test_one_array_reads_singular_and_a_rebuild_notes_once(tmp_path, capfd):
    manual = copy_dummy_data(eb.Builder, tmp_path)
    data = tmp_path / "data"
    build_dataset("erato", str(manual), str(data), "array_record")
    path = manual / "features" / "c05.npz"
    edit_npz(path, audio=lambda a: a["audio"].astype(np.float64))
    capfd.readouterr()
    builder_dir = build_dataset("erato", str(manual), str(data), "array_record",
                                overwrite=True)
    assert _notes(capfd.readouterr().err) == [
        f"note: 1 feature array was float64 in the release (first: {path}: stream 'audio'); "
        "stored as float32 (values beyond float32 would have been refused)"]
    assert built_metadata(builder_dir)[rf.CONVERSIONS_KEY] == {"float64 features": {
        "count": 1, "first": "features/c05.npz: stream 'audio'", "stored_as": "float32"}}


def test_a_refused_build_prints_no_note(tmp_path, capfd):
    manual = copy_dummy_data(eb.Builder, tmp_path)
    _widen(manual, WIDENED)
    edit_npz(manual / "features" / "c09.npz", text=lambda a: a["text"].astype(np.int64))
    capfd.readouterr()
    with pytest.raises(ef.EratoFormatError, match="c09.npz: stream 'text'"):
        build_dataset("erato", str(manual), str(tmp_path / "data"), "array_record")
    assert _notes(capfd.readouterr().err) == []
