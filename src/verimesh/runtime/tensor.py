"""Integer tensors: the allowed dtypes, their canonical bytes and their hash.

Every value that flows between two ops of the exact runtime is a numpy array of one of a
few integer dtypes. Floats are excluded on purpose: two honest machines must produce the
same bytes, and integer arithmetic is the same everywhere.

Canonical bytes (shared by traces, job outputs and the referee; see docs/runtime.md):

    dtype name (utf8) || 0x00 || ndim (u8) || each dim (u64 big endian) || data

where data is the array in C order, little endian. ``tensor_hash`` is sha256 over them.

Hashing a large weight matrix for every op that reads it would dominate the trace cost of
generation, so the hashes of immutable arrays (not writeable, and not a view of anything
writeable) are cached by identity for as long as the array lives.
"""

from __future__ import annotations

import hashlib
import struct
import weakref
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np

# Integer dtypes only: anything else is a bug in model code or a malicious input.
ALLOWED_DTYPES: dict[str, np.dtype] = {
    name: np.dtype(name) for name in ("int8", "int16", "int32", "int64", "uint8")
}
_NAME_OF: dict[np.dtype, str] = {dt: name for name, dt in ALLOWED_DTYPES.items()}  # fast lookups
MAX_NDIM = 8


class TensorError(ValueError):
    """A tensor with a dtype, shape or encoding the exact runtime does not accept."""


def check_tensor(arr: object, what: str = "tensor") -> np.ndarray:
    """Return ``arr`` if it is an ndarray of an allowed integer dtype, else raise."""
    if not isinstance(arr, np.ndarray):
        raise TensorError(f"{what} must be a numpy array, got {type(arr).__name__}")
    if arr.dtype not in _NAME_OF:
        if arr.dtype.name in ALLOWED_DTYPES:
            raise TensorError(f"{what} has non-native byte order {arr.dtype.str}; use arr.astype({arr.dtype.name!r})")
        raise TensorError(
            f"{what} has dtype {arr.dtype}; the exact runtime accepts only "
            f"{', '.join(ALLOWED_DTYPES)} (quantize floats before they enter the runtime)"
        )
    if arr.ndim > MAX_NDIM:
        raise TensorError(f"{what} has {arr.ndim} dimensions; at most {MAX_NDIM} are allowed")
    return arr


def dtype_name(arr: np.ndarray) -> str:
    """Name of an allowed dtype ("int8", ...), without numpy's slow ``dtype.name``."""
    return _NAME_OF.get(arr.dtype) or arr.dtype.name


_NAME_BYTES: dict[np.dtype, bytes] = {dt: name.encode() + b"\x00" for dt, name in _NAME_OF.items()}


def _header(arr: np.ndarray) -> bytes:
    return _NAME_BYTES[arr.dtype] + bytes([arr.ndim]) + struct.pack(f">{arr.ndim}Q", *arr.shape)


_LITTLE_ENDIAN_HOST = np.dtype("int16").byteorder == "=" and np.little_endian


def _data(arr: np.ndarray) -> np.ndarray:
    """C-order little-endian view (a copy only when the layout demands one)."""
    if _LITTLE_ENDIAN_HOST and arr.dtype.isnative:
        return np.ascontiguousarray(arr)
    return np.ascontiguousarray(arr, dtype=arr.dtype.newbyteorder("<"))


def canonical_bytes(arr: np.ndarray) -> bytes:
    """The canonical encoding of an integer tensor (see module docstring)."""
    check_tensor(arr)
    return _header(arr) + _data(arr).tobytes()


def from_canonical_bytes(data: bytes) -> np.ndarray:
    """Inverse of ``canonical_bytes``; rejects truncated or padded input."""
    name_end = data.find(b"\x00")
    if name_end < 0 or name_end + 2 > len(data):
        raise TensorError("canonical tensor bytes are truncated: no dtype/ndim header")
    name = data[:name_end].decode("utf8", errors="replace")
    if name not in ALLOWED_DTYPES:
        raise TensorError(f"canonical tensor bytes name dtype {name!r}, which is not allowed")
    ndim = data[name_end + 1]
    if ndim > MAX_NDIM:
        raise TensorError(f"canonical tensor bytes declare {ndim} dimensions (max {MAX_NDIM})")
    dims_start = name_end + 2
    data_start = dims_start + 8 * ndim
    if data_start > len(data):
        raise TensorError("canonical tensor bytes are truncated inside the shape")
    shape = struct.unpack(f">{ndim}Q", data[dims_start:data_start])
    dtype = ALLOWED_DTYPES[name].newbyteorder("<")
    expected = int(np.prod(shape, dtype=object)) * dtype.itemsize
    if len(data) - data_start != expected:
        raise TensorError(
            f"canonical tensor bytes hold {len(data) - data_start} data bytes, "
            f"shape {tuple(shape)} of {name} needs {expected}"
        )
    arr = np.frombuffer(data, dtype=dtype, offset=data_start).reshape(shape)
    return arr.astype(ALLOWED_DTYPES[name])


class StandInValueError(TensorError):
    """Code read a value of a stand-in, which has none (see ``stand_in``)."""


class _StandIn(np.ndarray):
    """A data-less tensor: shapes and dtypes only. Reading an element as a Python value is
    an error, so code that branches on an op's values cannot run on one unnoticed."""

    def _refuse(self, *args: Any, **kwargs: Any) -> Any:
        raise StandInValueError("a stand-in has a shape and a dtype but no values")

    __getitem__ = __int__ = __index__ = __float__ = __bool__ = item = tolist = _refuse  # type: ignore[assignment]


def stand_in(shape: tuple[int, ...] | list[int], dtype: str) -> np.ndarray:
    """A read-only tensor of ``shape`` and ``dtype`` holding no data (every stride is 0, no
    element can be read as a value): what an op's output is to a walk of the program that
    computes nothing (runtime/program.py)."""
    if dtype not in ALLOWED_DTYPES:
        raise TensorError(f"a stand-in needs one of the dtypes {', '.join(ALLOWED_DTYPES)}, got {dtype!r}")
    return np.broadcast_to(np.zeros((), dtype=ALLOWED_DTYPES[dtype]), tuple(shape)).view(_StandIn)


def is_stand_in(arr: np.ndarray) -> bool:
    """True for a tensor with no data of its own (``stand_in``, or a view of one): a real
    tensor of one or more dimensions always has a nonzero stride."""
    return isinstance(arr, _StandIn) or (arr.ndim > 0 and not any(arr.strides))


def is_immutable(arr: np.ndarray) -> bool:
    """True if no code can change this array's bytes through numpy while it lives."""
    a: object = arr
    while isinstance(a, np.ndarray):
        if a.flags.writeable:
            return False
        a = a.base
    return a is None or isinstance(a, bytes)


def freeze(arr: np.ndarray) -> np.ndarray:
    """Mark an array (that owns its data) read-only so its hash and float copies can be cached.

    Model loaders call this on weights and tables: they never change during a job.
    """
    check_tensor(arr)
    if arr.base is not None and not is_immutable(arr):
        arr = arr.copy()
    arr.flags.writeable = False
    return arr


# Facts about immutable arrays (hash, max |x|, float copies, validated constants), keyed by
# id and dropped by a weakref callback when the array dies (before its id can be reused).
_facts: dict[int, tuple[weakref.ref, dict[str, Any]]] = {}


def _remember(arr: np.ndarray, what: str, value: Any) -> None:
    entry = _facts.get(id(arr))
    if entry is None or entry[0]() is not arr:
        key = id(arr)
        entry = _facts[key] = (weakref.ref(arr, lambda _ref, key=key: _facts.pop(key, None)), {})
    entry[1][what] = value


def cached_fact(arr: np.ndarray, what: str, compute: Callable[[np.ndarray], Any]) -> Any:
    """``compute(arr)``, remembered for the array's lifetime if the array is immutable."""
    entry = _facts.get(id(arr))
    if entry is not None and entry[0]() is arr and what in entry[1]:
        return entry[1][what]
    value = compute(arr)
    if is_immutable(arr):
        _remember(arr, what, value)
    return value


def _sha256(arr: np.ndarray) -> bytes:
    check_tensor(arr)
    h = hashlib.sha256(_header(arr))
    h.update(_data(arr).reshape(-1).view(np.uint8))  # hashlib releases the GIL for big buffers
    return h.digest()


def tensor_hash(arr: np.ndarray) -> bytes:
    """sha256 over ``canonical_bytes(arr)``, computed without building the joined bytes."""
    entry = _facts.get(id(arr))  # the cached_fact lookup, inlined: this runs for every op input
    if entry is not None and entry[0]() is arr:
        digest = entry[1].get("sha256")
        if isinstance(digest, Future):  # being hashed in the background: wait for it
            digest = entry[1]["sha256"] = digest.result()
        if digest is not None:
            return digest
    return cached_fact(arr, "sha256", _sha256)


# Hashing large immutable tensors on a worker thread lets tracing overlap with the next op
# (hashlib releases the GIL), which hides most of its cost whenever a core is idle.
BACKGROUND_HASH_BYTES = 1 << 16
_hash_pool: ThreadPoolExecutor | None = None


def tensor_hash_deferred(arr: np.ndarray) -> bytes | Future:
    """``tensor_hash(arr)``, or a Future of it when ``arr`` is large and immutable."""
    entry = _facts.get(id(arr))
    if entry is not None and entry[0]() is arr:
        digest = entry[1].get("sha256")
        if digest is not None:
            return digest
    if arr.nbytes < BACKGROUND_HASH_BYTES or not is_immutable(arr):
        return tensor_hash(arr)
    check_tensor(arr)
    global _hash_pool
    if _hash_pool is None:
        _hash_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="verimesh-hash")
    future = _hash_pool.submit(_sha256, arr)
    _remember(arr, "sha256", future)
    return future


def settle(digest: bytes | Future) -> bytes:
    """The bytes of a hash from ``tensor_hash_deferred``."""
    return digest.result() if isinstance(digest, Future) else digest
