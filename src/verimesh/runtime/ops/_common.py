"""Input checks shared by the op modules (clear errors instead of numpy tracebacks)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..tensor import TensorError, dtype_name


class OpError(ValueError):
    """An op called with inputs or params that do not fit its contract."""


def arity(op: str, inputs: Sequence[np.ndarray], *allowed: int) -> None:
    if len(inputs) not in allowed:
        want = " or ".join(str(n) for n in allowed)
        raise OpError(f"{op} takes {want} input tensors, got {len(inputs)}")


def dtype_in(op: str, what: str, arr: np.ndarray, *names: str) -> None:
    if dtype_name(arr) not in names:
        raise TensorError(f"{op}: {what} must be {' or '.join(names)}, got {arr.dtype}")


def param(op: str, params: dict[str, Any], name: str, kind: type, default: Any = ...) -> Any:
    if name not in params:
        if default is ...:
            raise OpError(f"{op} needs the param {name!r}")
        return default
    value = params[name]
    if kind is int and (isinstance(value, bool) or not isinstance(value, int)):
        raise OpError(f"{op}: param {name!r} must be an int, got {value!r}")
    if not isinstance(value, kind):
        raise OpError(f"{op}: param {name!r} must be {kind.__name__}, got {value!r}")
    return value


def no_extra_params(op: str, params: dict[str, Any], *known: str) -> None:
    extra = sorted(set(params) - set(known))
    if extra:
        raise OpError(f"{op}: unknown params {extra}; it accepts {sorted(known)}")
