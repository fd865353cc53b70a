"""Regenerates this dummy manual_dir (deterministic): python make_dummy_data.py

A small synthetic corpus (3 movies: train / val / test) in the release layout, complete (every
file the labels reference exists, so it builds without `--allow`), with one edit that exercises
the reader's fallback: one scene's BERT features are stored as the all-layer file
([N, 12 * D], no second-to-last file). Broken variants (missing files, bad encodings, ids that
leave the folder, NaN features, ...) are made from a copy by tests/bad_inputs/test_lirec_builder.py.
"""

import shutil
import tempfile
from pathlib import Path

import numpy as np

from jaxaffect.families.lirec import release_format as lf
from jaxaffect.families.lirec import synthetic as ls

ALL_LAYER_BERT = ("tt9000001", "scene-001.ss-0000.es-0009")


def main() -> None:
    here = Path(__file__).parent
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "corpus"
        ls.write_lirec_corpus(root, num_movies=3, seed=1, small=True)
        paths = lf.bert_paths(root, *ALL_LAYER_BERT)
        layer = np.load(paths["layer"])
        layers = np.zeros((len(layer), lf.BERT_LAYERS, layer.shape[1]), np.float32)
        layers[:, -2] = layer
        layers[:, -1] = 1.0  # other layers differ, so reading the wrong one shows
        paths["layer"].unlink()
        np.save(paths["all"], layers.reshape(len(layer), -1))
        for item in here.iterdir():
            if item.name != Path(__file__).name:
                shutil.rmtree(item) if item.is_dir() else item.unlink()
        for item in root.iterdir():
            shutil.move(str(item), here / item.name)


if __name__ == "__main__":
    main()
