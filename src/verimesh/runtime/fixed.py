"""Fixed-point integer arithmetic with ONE rounding rule: round half up.

Every rounding in the exact runtime goes through the three functions below, so "how does
verimesh round" has a single answer:

- ``round_shift(x, s)``   = floor((x + 2^(s-1)) / 2^s)      for s >= 1 (x itself for s == 0)
- ``div_round(a, b)``     = floor((2a + b) / (2b))           for b >= 1
- ``requantize(acc, m, s)`` = clip(round_shift(acc * m, s))  i.e. round(acc * m / 2^s)

"Half up" means towards +infinity: round_shift(-3, 1) == -1 and round_shift(3, 1) == 2.
Arithmetic right shift of numpy int64 is floor division by a power of two, for negative
numbers too, so the formulas are exact in int64 as long as nothing overflows; each
function states and checks the bound it needs.

Real-valued scales (weight scale x activation scale / output scale) become an integer
multiplier ``m`` in [2^30, 2^31) and a shift: ``real ~= m / 2^shift``. They are computed
once at import time and committed with the model as int32 tensors.
"""

from __future__ import annotations

import math

import numpy as np

from .tensor import ALLOWED_DTYPES, TensorError, cached_fact

MULTIPLIER_BITS = 31  # m < 2^31: fits int32, and acc * m stays exact in int64 (see requantize)
MIN_SHIFT = 17  # requantize splits m at 16 bits (see below); smaller shifts mean real >= 2^14
MAX_SHIFT = 62
ACC_LIMIT = 1 << 47  # |acc| < 2^47 for requantize's two-step product
DIRECT_LIMIT = 1 << 31  # below it acc * m fits int64 and requantize is computed directly


class FixedPointError(ValueError):
    """An integer computation whose inputs break the bound it was proven exact for."""


def dtype_range(dtype: str | np.dtype) -> tuple[int, int]:
    info = np.iinfo(np.dtype(dtype))
    return int(info.min), int(info.max)


def out_dtype(name: str) -> np.dtype:
    if name not in ALLOWED_DTYPES:
        raise TensorError(f"out_dtype {name!r} is not one of {', '.join(ALLOWED_DTYPES)}")
    return ALLOWED_DTYPES[name]


def clip_to(x: np.ndarray, dtype: str | np.dtype) -> np.ndarray:
    """Saturate int64 values into ``dtype`` (saturation, never wrap-around)."""
    lo, hi = dtype_range(dtype)
    return np.clip(x, lo, hi).astype(dtype)


def round_shift(x: np.ndarray, shift: np.ndarray | int) -> np.ndarray:
    """round(x / 2^shift), half up, for int64 ``x`` and 0 <= shift <= 62 (elementwise allowed).

    Needs |x| + 2^(shift-1) < 2^63: callers keep |x| < 2^62.
    """
    x = np.asarray(x, dtype=np.int64)
    shift = np.asarray(shift, dtype=np.int64)
    half = np.where(shift > 0, np.left_shift(np.int64(1), np.maximum(shift - 1, 0)), 0)
    return (x + half) >> shift


def div_round(a: np.ndarray, b: np.ndarray | int) -> np.ndarray:
    """round(a / b), half up, for int64 ``a`` and integer b >= 1 (|a| < 2^61)."""
    a = np.asarray(a, dtype=np.int64)
    b = np.asarray(b, dtype=np.int64)
    if np.any(b < 1):
        raise FixedPointError("div_round needs a positive divisor")
    return (2 * a + b) // (2 * b)


def quantize_multiplier(real: float) -> tuple[int, int]:
    """(m, shift) with m in [2^30, 2^31) and m / 2^shift the closest such value to ``real``.

    ``real`` must be in (2^-32, 2^14): the range every scale ratio of a quantized
    transformer falls in. Tiny reals below it are refused rather than silently zeroed.
    """
    if not math.isfinite(real) or real <= 0:
        raise FixedPointError(f"scale ratio must be a positive finite number, got {real}")
    mantissa, exponent = math.frexp(real)  # real = mantissa * 2^exponent, mantissa in [0.5, 1)
    m = round(mantissa * (1 << MULTIPLIER_BITS))
    if m == 1 << MULTIPLIER_BITS:  # rounding carried into the next power of two
        m //= 2
        exponent += 1
    shift = MULTIPLIER_BITS - exponent
    if shift < MIN_SHIFT:
        raise FixedPointError(
            f"scale ratio {real} is too large (>= 2^{MULTIPLIER_BITS - MIN_SHIFT}); "
            "use a larger output scale"
        )
    if shift > MAX_SHIFT:
        raise FixedPointError(f"scale ratio {real} is too small (< 2^-31); check the scales")
    return m, shift


def multiplier_tensors(reals: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel (or 0-d) int32 ``multiplier`` and ``shift`` tensors for ``requantize``."""
    flat = np.asarray(reals, dtype=np.float64)
    pairs = [quantize_multiplier(float(r)) for r in flat.reshape(-1)]
    m = np.array([p[0] for p in pairs], dtype=np.int32).reshape(flat.shape)
    s = np.array([p[1] for p in pairs], dtype=np.int32).reshape(flat.shape)
    return m, s


def check_multiplier(m: np.ndarray, shift: np.ndarray) -> None:
    if m.dtype != np.int32 or shift.dtype != np.int32:
        raise TensorError(
            f"multiplier and shift must be int32 tensors (got {m.dtype}, {shift.dtype}); "
            "build them with verimesh.runtime.fixed.multiplier_tensors"
        )
    if not cached_fact(m, "multiplier_ok", lambda a: a.size == 0 or int(a.min()) >= 0):
        raise FixedPointError("multiplier must be >= 0")
    if not cached_fact(
        shift, "shift_ok", lambda a: a.size == 0 or MIN_SHIFT <= int(a.min()) <= int(a.max()) <= MAX_SHIFT
    ):
        raise FixedPointError(f"shift must be in [{MIN_SHIFT}, {MAX_SHIFT}]")


def requantize(
    acc: np.ndarray, m: np.ndarray, shift: np.ndarray, dtype: str, bound: int | None = None
) -> np.ndarray:
    """clip(round(acc * m / 2^shift)) into ``dtype``; ``m``/``shift`` broadcast on the last axis.

    Exact in int64 for any |acc| < 2^47 and 0 <= m < 2^31, 17 <= shift <= 62, although
    acc * m itself may need 78 bits. Split m = mh * 2^16 + ml (ml < 2^16, mh < 2^15):

        acc*m + 2^(s-1) = 2^16 * (acc*mh + 2^(s-17)) + acc*ml
        floor(that / 2^s) = floor((acc*mh + 2^(s-17) + floor(acc*ml / 2^16)) / 2^(s-16))

    (floor(floor(x / a) / b) == floor(x / (a*b)) for positive integers a, b). Every term is
    below 2^62 in magnitude: |acc*mh| < 2^62, |acc*ml| < 2^63, 2^(s-17) <= 2^45.
    When |acc| < 2^31 (the common case) the one-line definition is already exact in int64.
    ``bound``: a proven upper bound on |acc| (e.g. K max|x| max|w| + max|bias| for a linear
    layer), which spares the two passes that would find max |acc|.
    """
    check_multiplier(m, shift)
    acc = np.asarray(acc, dtype=np.int64)
    if bound is not None and bound < DIRECT_LIMIT:
        peak = bound
    else:
        peak = max(-int(acc.min()), int(acc.max())) if acc.size else 0
    if peak >= ACC_LIMIT:
        raise FixedPointError(
            f"accumulator magnitude {peak} is >= 2^47; requantize in two steps or use smaller inputs"
        )
    m64 = m.astype(np.int64)
    s64 = shift.astype(np.int64)
    if peak < DIRECT_LIMIT:  # acc * m + 2^(s-1) < 2^31 * 2^31 + 2^61 < 2^63: the definition itself
        t = acc * m64  # a new array: the passes below work in place on it
        t += np.int64(1) << (s64 - 1)
        t >>= s64
        lo, hi = dtype_range(dtype)
        np.clip(t, lo, hi, out=t)
        return t.astype(dtype)
    mh, ml = m64 >> 16, m64 & 0xFFFF
    t = acc * mh + (np.int64(1) << (s64 - 17)) + ((acc * ml) >> 16)
    return clip_to(t >> (s64 - 16), dtype)


def requantize_reference(acc: np.ndarray, m: np.ndarray, shift: np.ndarray, dtype: str) -> np.ndarray:
    """``requantize`` in unbounded Python integers, straight from the definition (slow)."""
    check_multiplier(m, shift)
    acc_obj = np.asarray(acc).astype(object)
    if acc_obj.size and max(abs(int(v)) for v in acc_obj.reshape(-1)) >= ACC_LIMIT:
        raise FixedPointError("accumulator magnitude is >= 2^47")
    s_obj = shift.astype(object)
    return clip_to_reference((acc_obj * m.astype(object) + (1 << (s_obj - 1))) >> s_obj, dtype)


def clip_to_reference(x: np.ndarray, dtype: str | np.dtype) -> np.ndarray:
    """Saturate an object array of Python ints into ``dtype``."""
    lo, hi = dtype_range(dtype)
    flat = [min(max(int(v), lo), hi) for v in np.asarray(x, dtype=object).reshape(-1)]
    return np.array(flat, dtype=dtype).reshape(np.shape(x))


# ---------------------------------------------------------------------------------------
# Integer square roots. Norms need 1/sqrt(V) of an integer V; the exact spec is
#   k      = (bit_length(V) - 29) // 2            (floor; may be negative)
#   V'     = V >> 2k  (or V << -2k)                so V' has 29 or 30 bits: [2^28, 2^30)
#   inv    = isqrt(2^60 // V')                     in (2^15, 2^16]: 1/sqrt(V) ~= inv / 2^(30+k)
#   result = round_shift(x * inv, 30 + k - frac)  (a left shift when that is negative)
# i.e. round(x * 2^frac / sqrt(V)) up to 16 bits of precision in inv.


def isqrt_array(n: np.ndarray) -> np.ndarray:
    """floor(sqrt(n)) elementwise for int64 0 <= n < 2^62, exactly.

    A float64 square root gives a first guess (possibly off by one or two for large n); the
    integer corrections below make the result exact whatever the float rounding did.
    """
    n = np.asarray(n, dtype=np.int64)
    if np.any(n < 0) or np.any(n >= 1 << 62):
        raise FixedPointError("isqrt_array needs 0 <= n < 2^62")
    r = np.sqrt(n.astype(np.float64)).astype(np.int64)
    r = np.minimum(r, (1 << 31) - 1)
    for _ in range(4):
        r = np.where(r * r > n, r - 1, r)
        r = np.where((r + 1) * (r + 1) <= n, r + 1, r)
    return r


def bit_length_array(n: np.ndarray) -> np.ndarray:
    """Python's int.bit_length elementwise for int64 0 <= n < 2^62, exactly."""
    n = np.asarray(n, dtype=np.int64)
    _, e = np.frexp(n.astype(np.float64))  # n ~= f * 2^e with f in [0.5, 1): bit length ~= e
    b = e.astype(np.int64)
    one = np.int64(1)
    b = np.where((b > 0) & ((one << np.maximum(b - 1, 0)) > n), b - 1, b)
    b = np.where((one << np.minimum(b, 62)) <= n, b + 1, b)
    return b


def scaled_rsqrt_mul(x: np.ndarray, v: np.ndarray, frac: int) -> np.ndarray:
    """round(x * 2^frac / sqrt(v)) by the exact spec above; ``v`` broadcasts against ``x``.

    Needs 1 <= v < 2^62, |x| < 2^47 (so x * inv < 2^63) and |x| <= sqrt(v) when the shift
    goes left (true for norms: each component is at most the norm).
    """
    x = np.asarray(x, dtype=np.int64)
    v = np.asarray(v, dtype=np.int64)
    if np.any(v < 1):
        raise FixedPointError("rsqrt of a value < 1: norms need eps >= 1 or a nonzero vector")
    k = (bit_length_array(v) - 29) // 2
    v_norm = np.where(k >= 0, v >> np.maximum(2 * k, 0), v << np.maximum(-2 * k, 0))
    inv = isqrt_array((np.int64(1) << 60) // v_norm)
    e = 30 + k - frac
    prod = x * inv
    return np.where(e >= 0, round_shift(prod, np.maximum(e, 0)), prod << np.maximum(-e, 0))


def scaled_rsqrt_mul_reference(x: int, v: int, frac: int) -> int:
    """One element of ``scaled_rsqrt_mul`` in Python integers."""
    if v < 1:
        raise FixedPointError("rsqrt of a value < 1")
    k = (v.bit_length() - 29) // 2
    v_norm = v >> (2 * k) if k >= 0 else v << (-2 * k)
    inv = math.isqrt((1 << 60) // v_norm)
    e = 30 + k - frac
    return (x * inv + (1 << (e - 1))) >> e if e > 0 else (x * inv) << (-e)


def add_multipliers(ratio_a: float, ratio_b: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(m_a, m_b, shift) int32 0-d tensors for the ``add`` op: out ~= a*ratio_a + b*ratio_b.

    Both multipliers share one shift, chosen so the larger one lies in [2^30, 2^31).
    """
    big = max(ratio_a, ratio_b)
    _, shift = quantize_multiplier(big)
    ms = []
    for r in (ratio_a, ratio_b):
        if r < 0 or not math.isfinite(r):
            raise FixedPointError(f"add ratios must be finite and >= 0, got {r}")
        ms.append(np.array(round(r * 2.0**shift), dtype=np.int32))
    return ms[0], ms[1], np.array(shift, dtype=np.int32)
