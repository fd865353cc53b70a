"""Tests of the LIRIS-ACCEDE builder: the dummy manual_dir and an error naming a missing file."""

import numpy as np
import pytest
import tensorflow_datasets as tfds

from jaxaffect.errors import FormatError
from jaxaffect.families.tam import annotations as aa
from tfds_builders import affect_video as av
from tfds_builders.liris_accede import liris_accede_dataset_builder as liris
from tfds_builders.testing import copy_dummy_data, prepare


class LirisAccedeTest(tfds.testing.DatasetBuilderTestCase):
    DATASET_CLASS = liris.Builder
    SPLITS = {"train": 4, "validation": 2, "test": 3}
    SKIP_CHECKSUMS = True


@pytest.fixture
def manual_dir(tmp_path):
    return copy_dummy_data(liris.Builder, tmp_path)


def test_values_classes_and_sets(manual_dir, tmp_path):
    builder = prepare(liris.Builder, manual_dir, tmp_path / "data")
    records = {r.name[:-4]: r for r in liris.read_records(manual_dir)}
    values = np.array([[r.valence, r.arousal] for r in records.values()])
    # Tertiles by hand over all 9 clips of the dummy ranking file.
    lo, hi = np.quantile(values, [1 / 3, 2 / 3], axis=0)
    for split, code in (("train", 1), ("validation", 2), ("test", 0)):
        source = builder.as_data_source(split=split)
        for ex in (source[i] for i in range(len(source))):
            r = records[ex["video_id"].decode()]
            assert ex["set"] == code == r.set
            np.testing.assert_allclose([ex["valence"], ex["arousal"]], [r.valence, r.arousal],
                                       rtol=1e-6)
            for j, key in enumerate(("valence_class", "arousal_class")):
                v = values[list(records).index(ex["video_id"].decode()), j]
                assert ex[key] == (0 if v < lo[j] else 2 if v >= hi[j] else 1)
            feats, masks = av.read_video(av.feature_path(manual_dir, ex["video_id"].decode()))
            np.testing.assert_array_equal(ex["streams"]["motion"], feats["motion"])
            np.testing.assert_array_equal(ex["masks"]["motion"], masks["motion"])
    assert aa.SET_NAMES == dict(enumerate(liris.SET_CLASSES))


def test_missing_feature_file_names_it(manual_dir, tmp_path):
    (manual_dir / "features" / "ACCEDE00398.npz").unlink()
    with pytest.raises(FormatError, match=r"ACCEDE00398\.npz: feature file not found"):
        prepare(liris.Builder, manual_dir, tmp_path / "data")


if __name__ == "__main__":
    tfds.testing.test_main()
