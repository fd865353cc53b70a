"""Fast decoding of a TFDS build's serialized examples, identical to `deserialize_example_np`.

TFDS's `features.deserialize_example_np` is written for every feature connector: for each
feature of each example it walks the spec, matches ragged-key patterns, opens error contexts,
converts the protobuf list through `np.array` and nests the result again. For the connectors
our builders use, most of that is work whose outcome is known once the features are known.

`ExampleDecoder` therefore turns the build's `FeaturesDict` into a plan once (one row per stored
feature: its key in the `tf.train.Example` map, which list holds it, the dtype, shape and
encoding), and decodes a record with one C protobuf parse (`Example.FromString`, TFDS's own
proto, so no tensorflow) followed by one pass over the plan: scalars read as Python scalars,
lists as one `np.array`, byte-encoded tensors inflated + `np.frombuffer`. The output is the
nested dict TFDS returns, value for value (same types, dtypes, shapes, Python scalars where
TFDS gives Python scalars, read-only arrays where TFDS gives read-only arrays).

Inflating zlib-encoded tensors is then most of the work (feature streams barely compress).
When the optional `deflate` package (libdeflate) is installed, tensors whose size is known
from their stored shape are inflated by libdeflate (about 1.5x faster than zlib here, and the
zlib checksum is still verified); otherwise, and for the rest, by the standard `zlib`.

Covered: `FeaturesDict` nesting of `Tensor`, `Scalar`, `ClassLabel` and `Text` (no encoder),
with any shape and encoding none/bytes/zlib. A build holding anything else (`Sequence`, `Image`,
`Video`, `Audio`, optional or uint64 features, ...) is decoded by TFDS itself, and so is any
record the plan does not describe (a missing key, an unexpected list kind or length): TFDS then
returns its value or raises its error, so behaviour never differs from `deserialize_example_np`.
"""

from __future__ import annotations

import dataclasses
import zlib
from collections.abc import Iterable
from typing import Any

import numpy as np
import tensorflow_datasets as tfds
from tensorflow_datasets.proto import tf_example_pb2

try:  # optional: libdeflate inflates zlib data faster than zlib itself
    import deflate as _libdeflate
except ImportError:  # pragma: no cover - depends on the environment
    _libdeflate = None

__all__ = ["ExampleDecoder", "inflater"]


def inflater() -> str:
    """Which library inflates zlib-encoded tensors of known size: "libdeflate" or "zlib"."""
    return "zlib" if _libdeflate is None else "libdeflate"


def _inflate(data: bytes, dtype: np.dtype, shape: tuple) -> np.ndarray:
    """Read-only array of `shape` from zlib `data` (as TFDS's zlib + np.frombuffer gives)."""
    if _libdeflate is None or -1 in shape:
        return np.frombuffer(zlib.decompress(data), dtype).reshape(shape)
    size = dtype.itemsize
    for dim in shape:
        size *= int(dim)
    value = np.frombuffer(_libdeflate.zlib_decompress(data, size), dtype).reshape(shape)
    value.flags.writeable = False
    return value

# What a plan row does with the stored list.
_SCALAR = 0  # a list of one value -> a Python scalar (bytes, int, float or bool)
_ARRAY = 1  # list -> np.array(dtype).reshape(shape)
_ENCODED = 2  # one bytes value (zlib or raw) -> np.frombuffer(dtype).reshape(shape)
_ENCODED_DYNAMIC = 3  # as _ENCODED, the unknown dims read from the "<key>/shape" list

# How a one-value list becomes TFDS's Python scalar (`np.array(values, dtype).item()`).
_AS_IS = 0  # bytes; int64 ints; float32/float64 floats (the stored float32 is exact)
_TO_BOOL = 1
_IN_RANGE = 2  # narrower ints: the value itself when the dtype holds it
_VIA_NUMPY = 3
_ALL_UNKNOWN = 4  # _ENCODED_DYNAMIC whose dims are all unknown: the stored shape as it is

_TENSOR_CLASSES = (tfds.features.Tensor, tfds.features.Scalar, tfds.features.ClassLabel,
                   tfds.features.Text)


class _NotPlanned(Exception):
    """A record the plan does not describe (TFDS decodes it instead)."""


@dataclasses.dataclass(frozen=True)
class _Row:
    """One stored feature: where it is, how it becomes a value, and where the value goes."""

    key: str  # key of the value in the Example's feature map
    list_name: str  # "bytes_list", "float_list" or "int64_list"
    op: int
    dtype: Any  # numpy dtype: of the stored list (_SCALAR, _ARRAY), of the data otherwise
    shape: tuple  # feature shape; None dims as -1, except for _ENCODED_DYNAMIC
    shape_key: str = ""  # key of the stored shape (_ENCODED_DYNAMIC)
    zlib: bool = False
    scalar: int = _VIA_NUMPY  # how a _SCALAR value is converted / an _ENCODED_DYNAMIC shape read
    bounds: tuple[int, int] = (0, 0)  # _IN_RANGE: the values the dtype holds
    path: tuple[str, ...] = ()  # keys in the nested output dict
    parent: int = 0  # index of the output dict the value goes into (0: the top level)
    opens: tuple = ()  # (index, parent index, key) of the dicts first needed by this row


def _list_name(dtype: np.dtype) -> str:
    """The `tf.train.Feature` list TFDS writes values of `dtype` to."""
    if dtype.kind in "biu":
        return "int64_list"
    if dtype.kind == "f":
        return "float_list"
    return "bytes_list"


def _scalar_conversion(dtype: np.dtype) -> int:
    if dtype.kind in "OSU" or dtype in (np.int64, np.float32, np.float64):
        return _AS_IS
    if dtype == np.bool_:
        return _TO_BOOL
    if dtype.kind in "iu":
        return _IN_RANGE
    return _VIA_NUMPY


def _leaf_row(path: tuple[str, ...], feature: Any) -> _Row | str:
    """The plan row of one leaf feature, or why it is not covered."""
    name = "/".join(path)
    if type(feature) not in _TENSOR_CLASSES:
        return f"{name}: {type(feature).__name__} feature"
    if isinstance(feature, tfds.features.Text) and feature.encoder is not None:
        return f"{name}: Text with an encoder"
    if getattr(feature, "_optional", False):
        return f"{name}: optional feature"
    dtype = np.dtype(feature.np_dtype)
    if dtype == np.uint64:
        return f"{name}: uint64 feature"
    shape = tuple(feature.shape)
    known = tuple(-1 if d is None else d for d in shape)
    encoding = feature._encoding  # pylint: disable=protected-access
    info = feature.get_serialized_info()
    if encoding == tfds.features.Encoding.NONE:
        if not isinstance(info, tfds.features.TensorInfo) or info.sequence_rank:
            return f"{name}: unexpected serialized form {info}"
        if shape.count(None) > 1:
            return f"{name}: several unknown dimensions without an encoding"
        stored = np.dtype(info.np_dtype)
        if not shape:
            how = _scalar_conversion(stored)
            bounds = (int(np.iinfo(stored).min), int(np.iinfo(stored).max)) \
                if how == _IN_RANGE else (0, 0)
            return _Row(name, _list_name(stored), _SCALAR, stored, (), scalar=how,
                        bounds=bounds)
        return _Row(name, _list_name(stored), _ARRAY, stored, known)
    is_zlib = encoding == tfds.features.Encoding.ZLIB
    if isinstance(info, dict):  # several unknown dimensions: {"shape", "value"}
        if set(info) != {"shape", "value"} or any(i.sequence_rank for i in info.values()):
            return f"{name}: unexpected serialized form {info}"
        return _Row(f"{name}/value", "bytes_list", _ENCODED_DYNAMIC, dtype, shape,
                    shape_key=f"{name}/shape", zlib=is_zlib,
                    scalar=_ALL_UNKNOWN if set(shape) == {None} else _VIA_NUMPY)
    if info.sequence_rank:
        return f"{name}: unexpected serialized form {info}"
    return _Row(name, "bytes_list", _ENCODED, dtype, known, zlib=is_zlib)


def _plan(features: Any) -> tuple[tuple[_Row, ...], str]:
    """(rows in TFDS's output order, "") or ((), why the features are not covered)."""
    if not isinstance(features, tfds.features.FeaturesDict):
        return (), f"top-level {type(features).__name__}"
    rows: list[_Row] = []
    dicts: dict[tuple[str, ...], int] = {(): 0}  # output dicts by path, in creation order

    def walk(node: Any, prefix: tuple[str, ...]) -> str:
        for key, child in sorted(node.items()):  # TFDS nests in sorted key order
            path = prefix + (key,)
            if type(child) is tfds.features.FeaturesDict:
                why = walk(child, path) if child.keys() else f"{key}: empty FeaturesDict"
            else:
                row = _leaf_row(path, child)
                if isinstance(row, str):
                    return row
                opens = []
                for depth in range(1, len(path)):  # dicts this row is the first to need
                    if path[:depth] not in dicts:
                        dicts[path[:depth]] = len(dicts)
                        opens.append((dicts[path[:depth]], dicts[path[:depth - 1]],
                                      path[depth - 1]))
                rows.append(dataclasses.replace(row, path=path, parent=dicts[prefix],
                                                opens=tuple(opens)))
                why = ""
            if why:
                return why
        return ""

    why = walk(features, ())
    if why:
        return (), why
    # The plan's keys must be exactly TFDS's flat serialized keys.
    flat = tfds.core.utils.flatten_nest_dict(features.get_serialized_info())
    planned = {r.key for r in rows} | {r.shape_key for r in rows if r.shape_key}
    if planned != set(flat):
        return (), f"serialized keys {sorted(flat)} differ from the plan's {sorted(planned)}"
    return tuple(rows), ""


class ExampleDecoder:
    """`decoder(record)` == `features.deserialize_example_np(record)`, faster (see module doc).

    Picklable (grain worker processes rebuild nothing). `fallback_reason` says why a build is
    decoded by TFDS (empty when the plan covers it); `fallbacks` counts records the plan did
    not describe and TFDS decoded.
    """

    def __init__(self, features: Any):
        self.features = features
        self._rows, self.fallback_reason = _plan(features)
        self._num_dicts = 1 + sum(len(r.opens) for r in self._rows)
        self.fallbacks = 0

    def __call__(self, record: bytes) -> dict[str, Any]:
        if self._rows:
            try:
                return self._decode(record)
            except Exception:  # noqa: BLE001 - anything unplanned is TFDS's to decode or refuse
                self.fallbacks += 1
        return self.features.deserialize_example_np(record)

    def decode_many(self, records: Iterable[bytes]) -> list[dict[str, Any]]:
        """Every record decoded, in order."""
        return [self(r) for r in records]

    def _decode(self, record: bytes) -> dict[str, Any]:
        feature_map = tf_example_pb2.Example.FromString(record).features.feature
        dicts: list[Any] = [None] * self._num_dicts
        dicts[0] = {}
        for row in self._rows:  # in TFDS's (sorted, depth-first) order
            stored = feature_map[row.key]
            values = getattr(stored, row.list_name).value
            if not values and stored.WhichOneof("kind") != row.list_name:
                raise _NotPlanned(row.key)
            op = row.op
            if op == _ARRAY:
                value = np.array(values[:], row.dtype)
                if row.shape != (-1,):
                    value = value.reshape(row.shape)
            elif len(values) != 1:
                raise _NotPlanned(row.key)
            elif op == _SCALAR:
                value = values[0]
                how = row.scalar
                if how == _TO_BOOL:
                    value = bool(value)
                elif how == _IN_RANGE:
                    low, high = row.bounds
                    if not low <= value <= high:
                        raise _NotPlanned(row.key)
                elif how == _VIA_NUMPY:
                    value = row.dtype.type(value).item()
            else:
                data = values[0]
                shape = row.shape
                if op == _ENCODED_DYNAMIC:
                    dims = feature_map[row.shape_key].int64_list.value
                    if len(dims) != len(shape) or len(data) < len(shape):
                        raise _NotPlanned(row.shape_key)
                    shape = tuple(dims) if row.scalar == _ALL_UNKNOWN else tuple(
                        dims[i] if d is None else d for i, d in enumerate(shape))
                if row.zlib:
                    value = _inflate(data, row.dtype, shape)
                else:
                    value = np.frombuffer(data, row.dtype).reshape(shape)
            for index, parent, key in row.opens:
                dicts[index] = dicts[parent][key] = {}
            dicts[row.parent][row.path[-1]] = value
        return dicts[0]
