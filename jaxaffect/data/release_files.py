"""Reading a user's release folder safely: paths stay inside it, text is UTF-8, arrays are what
they claim to be; and .npz files written byte-reproducibly. Every refusal is a `FormatError`
naming the file (and line or field).

Builders join ids and names taken from annotation files into paths; `inside` resolves such a
path and refuses one that leaves the release folder (`..`, an absolute path, or a symlink that
points outside, unless symlinks are allowed).
"""

from __future__ import annotations

import contextlib
import io
import os
import threading
import zipfile
from collections.abc import Iterator, Mapping, MutableMapping
from pathlib import Path
from typing import Any

import numpy as np
from etils import epath

from jaxaffect.errors import FormatError

FIXED_DATE = (1980, 1, 1, 0, 0, 0)  # the earliest date a zip member can carry
# What a user may explicitly allow in a build (`jaxaffect build --allow ...`); builders read
# them with `allowed(name)`. Environment variables, so that worker processes see them too.
ALLOWANCES: dict[str, str] = {
    "symlinks": "follow symlinks that point outside the release folder",
    "split_overlap": "the same video in the train and the test list (releases known to "
                     "overlap); the overlap is still counted in the build's metadata",
    "absent_modality": "a feature file the annotations reference may be missing: its "
                       "modality is treated as absent (counted and listed in the metadata)",
}
ALLOW_SYMLINKS_ENV = "JAXAFFECT_ALLOW_SYMLINKS"


def allowance_env(name: str) -> str:
    if name not in ALLOWANCES:
        raise KeyError(f"unknown allowance {name!r}; known: {sorted(ALLOWANCES)}")
    return f"JAXAFFECT_ALLOW_{name.upper()}"


def allowed(name: str) -> bool:
    """Whether the user allowed `name` (one of ALLOWANCES) for this build."""
    return os.environ.get(allowance_env(name), "") not in ("", "0", "false", "no")


def symlinks_allowed() -> bool:
    return allowed("symlinks")


def inside(root: str | os.PathLike, relative: str, *, where: str,
           allow_symlinks: bool | None = None) -> Path:
    """`root / relative`, refused when it resolves outside `root`.

    `where` names the source of `relative` (e.g. "trainlist01.txt:12") for the message. With
    symlinks allowed, a link may point anywhere, but `..` and absolute names are still refused.
    """
    allow = symlinks_allowed() if allow_symlinks is None else allow_symlinks
    base = Path(os.path.abspath(os.fspath(root)))
    if not relative or os.path.isabs(relative) or "\0" in relative:
        raise FormatError(f"{where}: {relative!r} is not a relative path inside the release")
    joined = Path(os.path.normpath(base / relative))
    if joined != base and base not in joined.parents:
        raise FormatError(f"{where}: {relative!r} leaves the release folder {base}")
    if not allow:
        real_base = Path(os.path.realpath(base))
        real = Path(os.path.realpath(joined))
        if real != real_base and real_base not in real.parents:
            raise FormatError(f"{where}: {relative!r} is a symlink to {real}, outside the "
                              f"release folder {base} (`jaxaffect build --allow symlinks`, "
                              f"or {ALLOW_SYMLINKS_ENV}=1, follows it)")
    return joined


def outside_release(root: str | os.PathLike, paths: Mapping[str, Any]) -> list[str]:
    """Sorted keys of `paths` whose file resolves outside `root` (symlinks the user allowed;
    builders record them in the build's metadata)."""
    base = os.path.realpath(root)
    return sorted(key for key, path in paths.items()
                  if os.path.commonpath([base, os.path.realpath(os.fspath(path))]) != base)


def read_utf8(path: str | os.PathLike) -> str:
    """The text of a release file; bytes that are not UTF-8 give one error with file and line."""
    data = Path(path).read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data[:e.start].count(b"\n") + 1
        raise FormatError(f"{path}:{line}: not UTF-8 (byte {data[e.start]:#04x} at offset "
                          f"{e.start}); save the file as UTF-8") from None


def float_array(x: Any, where: str, error: type[FormatError] = FormatError, *,
                note: bool = True) -> np.ndarray:
    """A real floating-point feature array as float32; strings, objects, ints and non-finite
    values are refused (ints are refused because they usually mean ids or a wrong array).

    Another float dtype (float64, float16) is converted and, during a build, counted in the
    build's conversion notes (`record_conversion`); `note=False` for arrays the reader made
    itself (e.g. numbers parsed from JSON), whose dtype says nothing about the release."""
    arr = np.asarray(x)
    if not np.issubdtype(arr.dtype, np.floating):
        raise error(f"{where} must hold floating-point features, got dtype {arr.dtype}")
    with np.errstate(over="ignore"):  # values beyond float32 are reported below
        out = arr.astype(np.float32, copy=False)
    if arr.size and not np.all(np.isfinite(out)):
        beyond = " (finite in the file but beyond float32)" if np.all(np.isfinite(arr)) else ""
        raise error(f"{where} holds NaN or inf values{beyond}")
    if note and arr.dtype != np.float32:
        record_conversion(f"{arr.dtype} features", where)
    return out


def mask_array(x: Any, where: str, error: type[FormatError] = FormatError) -> np.ndarray:
    """A presence mask as bool: bool arrays, or numbers that are exactly 0 or 1 (NaN, other
    values and strings are refused rather than read as True). Numbers are counted, during a
    build, in its conversion notes (`record_conversion`)."""
    arr = np.asarray(x)
    if arr.dtype == np.bool_:
        return arr
    if not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
        raise error(f"{where} must be bool or 0/1 numbers, got dtype {arr.dtype}")
    ok = (arr == 0) | (arr == 1)
    if not np.all(ok):
        bad = arr[~ok].ravel()[0].item()
        raise error(f"{where} must hold only 0/1 (or True/False), found {bad!r}")
    record_conversion(f"{arr.dtype} masks", where)
    return arr.astype(bool)


# ------------------------------------------------------------------------ conversion notes
# `float_array` and `mask_array` convert what they accept (float64 features to float32, 0/1
# numbers to bool). During a build (`jaxaffect.data.build.build_dataset`) each conversion is
# counted per kind ("float64 features", "int64 masks"), distinct arrays only (a file read
# twice counts once), with the first location; the build prints one note line per kind at its
# end and records the counts in the build's metadata (CONVERSIONS_KEY). Outside a build
# nothing is kept.
CONVERSIONS_KEY = "release_conversions"


class Conversions:
    """The conversions of one build: kind -> {"count", "first", "stored_as"}. `root` (the
    release folder) is stripped from the locations kept in the metadata; `metadata`, once
    attached, receives the entry under CONVERSIONS_KEY as soon as there is one."""

    def __init__(self, root: str | os.PathLike | None = None) -> None:
        self.kinds: dict[str, dict[str, Any]] = {}
        self._seen: set[int] = set()  # hashes of (kind, where): a few bytes per array
        self._metadata: MutableMapping[str, Any] | None = None
        self._entry: dict[str, dict[str, Any]] = {}
        # The release folder as given and as an absolute path: locations start with either.
        self._roots = () if root is None else tuple(sorted(
            {os.fspath(root).rstrip(os.sep) + os.sep, os.path.abspath(os.fspath(root)) + os.sep},
            key=len, reverse=True))
        self._lock = threading.Lock()

    def record(self, kind: str, where: str) -> None:
        with self._lock:
            key = hash((kind, where))
            if key in self._seen:
                return
            self._seen.add(key)
            if kind in self.kinds:
                self.kinds[kind]["count"] += 1
                self._entry[kind]["count"] += 1
                return
            self.kinds[kind] = {"count": 1, "first": where}
            first = next((where[len(r):] for r in self._roots if where.startswith(r)), where)
            self._entry[kind] = {"count": 1, "first": first,
                                 "stored_as": "bool" if kind.endswith("masks") else "float32"}
            self._publish()

    def attach(self, metadata: MutableMapping[str, Any] | None) -> None:
        """Records the counts in `metadata` (a builder's `info.metadata`, written with the
        build) from now on; None attaches nothing."""
        with self._lock:
            self._metadata = metadata
            self._publish()

    def _publish(self) -> None:
        if self._metadata is not None and self._entry:
            self._metadata[CONVERSIONS_KEY] = self._entry  # the same dict, kept up to date

    def notes(self) -> list[str]:
        """One line per kind, in the order first met."""
        return [_note_line(kind, v["count"], v["first"]) for kind, v in self.kinds.items()]


def _note_line(kind: str, count: int, first: str) -> str:
    dtype, what = kind.rsplit(" ", 1)
    many = count != 1
    if what == "masks":
        return (f"note: {count:,} {'masks were' if many else 'mask was'} {dtype} 0/1 "
                f"(first: {first}); stored as bool")
    beyond = (" (values beyond float32 would have been refused)"
              if np.finfo(np.dtype(dtype)).max > np.finfo(np.float32).max else "")
    return (f"note: {count:,} feature {'arrays were' if many else 'array was'} {dtype} in the "
            f"release (first: {first}); stored as float32{beyond}")


_active: Conversions | None = None


def record_conversion(kind: str, where: str) -> None:
    """Counts one converted array of `kind` at `where` in the running build's notes (nothing
    outside a build)."""
    collector = _active
    if collector is not None:
        collector.record(kind, where)


@contextlib.contextmanager
def collect_conversions(root: str | os.PathLike | None = None) -> Iterator[Conversions]:
    """A fresh collector for the conversions made inside the block (one build); a nested block
    (a build started within a build) has its own and leaves the outer one as it was."""
    global _active
    previous, _active = _active, Conversions(root)
    try:
        yield _active
    finally:
        _active = previous


def read_npz(path: str | epath.PathLike, error: type[FormatError] = FormatError
             ) -> dict[str, np.ndarray]:
    """Every array of an .npz file (pickled objects refused); `error` (a FormatError) for a
    missing or unreadable file."""
    path = epath.Path(path)
    if not path.exists():
        raise error(f"{path}: feature file not found")
    try:
        with path.open("rb") as f, np.load(f, allow_pickle=False) as z:
            return {k: np.asarray(z[k]) for k in z.files}
    except Exception as e:  # BadZipFile, ValueError (pickled arrays), OSError, EOFError
        raise error(f"{path}: not a readable .npz file ({type(e).__name__}: {e})"
                          ) from None


def write_npz(path: str | epath.PathLike, arrays: Mapping[str, np.ndarray]) -> None:
    """Writes `arrays` (name -> array) to `path` (parent folders created), byte-reproducibly:
    `np.savez` stamps members with the current time, here they carry a fixed date. Plain
    uncompressed .npz (np.load reads it; pickled objects are refused)."""
    path = epath.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as f, zipfile.ZipFile(f, "w", zipfile.ZIP_STORED) as zf:
        for key, value in arrays.items():
            buf = io.BytesIO()
            np.lib.format.write_array(buf, np.asarray(value), allow_pickle=False)
            zf.writestr(zipfile.ZipInfo(f"{key}.npy", date_time=FIXED_DATE), buf.getvalue())


def check_streams(features: Mapping[str, np.ndarray], masks: Mapping[str, np.ndarray],
                  streams: tuple[str, ...], where: str,
                  expected_dims: Mapping[str, int] | None = None,
                  error: type[FormatError] = FormatError) -> int:
    """Checks per-stream feature sequences `[T, d_s]` and masks `[T]`: every stream present,
    one shared T > 0, d_s as expected, finite values. Returns T."""
    steps = None
    for s in streams:
        if s not in features or s not in masks:
            raise error(f"{where}: missing stream {s!r} or its mask {s + '_mask'!r}")
        x, m = np.asarray(features[s]), np.asarray(masks[s])
        if x.ndim != 2:
            raise error(f"{where}: stream {s!r} must be [T, d], got shape {x.shape}")
        if m.ndim != 1 or m.shape[0] != x.shape[0]:
            raise error(f"{where}: mask {s + '_mask'!r} must be [T] with T={x.shape[0]}, "
                        f"got {m.shape}")
        if steps is None:
            steps = x.shape[0]
        elif x.shape[0] != steps:
            raise error(f"{where}: stream {s!r} has T={x.shape[0]} but earlier streams have "
                        f"T={steps}")
        if expected_dims is not None and x.shape[1] != expected_dims[s]:
            raise error(f"{where}: stream {s!r} has d={x.shape[1]}, dataset uses "
                        f"d={expected_dims[s]}")
        if not np.all(np.isfinite(x)):
            raise error(f"{where}: stream {s!r} holds NaN or inf values")
    if not steps:
        raise error(f"{where}: no time steps")
    return int(steps)
