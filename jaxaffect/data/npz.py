"""Deterministic .npz writing: the same arrays always give the same bytes.

`np.savez` stamps every zip member with the current time, so two writes of the same data
differ; here members carry a fixed timestamp. Files are plain uncompressed .npz (np.load reads
them, pickled objects are refused).
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Mapping

import numpy as np
from etils import epath

FIXED_DATE = (1980, 1, 1, 0, 0, 0)  # the earliest date a zip member can carry


def write_npz(path: str | epath.PathLike, arrays: Mapping[str, np.ndarray]) -> None:
    """Writes `arrays` (name -> array) to `path` (parent folders created), byte-reproducibly."""
    path = epath.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as f, zipfile.ZipFile(f, "w", zipfile.ZIP_STORED) as zf:
        for key, value in arrays.items():
            buf = io.BytesIO()
            np.lib.format.write_array(buf, np.asarray(value), allow_pickle=False)
            zf.writestr(zipfile.ZipInfo(f"{key}.npy", date_time=FIXED_DATE), buf.getvalue())
