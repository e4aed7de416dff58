# pragma version ~=0.4.3
# pragma optimize codesize
"""
@title verimesh OpCheck (small integer ops recomputed on chain)
@custom:contract-name OpCheck
@license Apache-2.0
@notice The one-op recompute of a dispute, done by the EVM itself for ops small enough to
        afford. `recompute(op, params, inputs)` returns the runtime's canonical tensor hash
        (verimesh.runtime.tensor: sha256(dtype name || 0x00 || ndim (u8) || dims (u64 big
        endian) || data, C order, little endian)) of each input and of the output the
        runtime's op must produce from them, so a contract can compare it with the output
        hash a trace leaf commits to: no committee needed for such an op. `params` is the
        op's canonical params JSON exactly as the leaf commits to it
        (verimesh.runtime.trace.canonical_params: sorted keys, no spaces); the contract
        parses only the canonical form of the typed params each op takes (no leading
        zeros, no "-0", no spaces, known keys in sorted order), so the params it recomputes
        with are exactly the ones the leaf commits to.
        Ops, bit for bit the reference path of verimesh.runtime.ops:
        - requantize(acc, m, shift): clip((acc * m + 2^(shift - 1)) >> shift) into
          out_dtype (default int8); m, shift int32 of shape () or (channels,).
        - mul(a, b, m, shift): requantize(a * b, m, shift), a and b broadcast (default
          int8).
        - add(a, b, m_a, m_b, shift): clip((a * m_a + b * m_b + 2^(shift - 1)) >> shift),
          a and b broadcast (default int16).
        - argmax(x): first index of the largest value of each last-axis row, as int64.
        - reshape(x) {shape} and slice(x) {axis, start, stop}: numpy's semantics.
        - rmsnorm(x, gamma) {eps, shift, out_dtype}: the exact integer rmsnorm (isqrt spec
          of verimesh.runtime.fixed.scaled_rsqrt_mul_reference).
        - rope(x, cos, sin, positions) {frac_bits, out_dtype, style}: rotary embedding,
          "half" or "interleaved" pairs.
        Stateless: pure functions only. The code is near the EIP-170 size limit and a deploy
        costs 200 gas per byte (tests/contracts/test_op_check_contract.py keeps it within
        the devnet's 5M gas per transaction): more ops need a second contract.
@custom:security
        - Bounds: at most `_MAX_ELEMENTS` elements and `_MAX_DATA` bytes per input tensor,
          `_MAX_ELEMENTS` elements per output, 8 dimensions, `_MAX_INPUTS` inputs; the data
          length must be exactly elements x dtype size, so a truncated or padded tensor is
          refused, never silently reinterpreted.
        - The same input checks as the runtime (dtypes, shapes, params, multiplier >= 0,
          shift in [17, 62], |acc| < 2^47 ...): inputs or params the runtime would refuse
          revert here, so the contract never computes an output for a leaf an honest
          runtime cannot produce. Arithmetic is in int256, exact for every value the
          checks admit (|a * m| < 2^79); `unsafe_*` only where the bound is stated.
"""

# Most elements of any tensor here, input or output (gas: docs/verification.md).
_MAX_ELEMENTS: constant(uint256) = 512
# Most data bytes of an input tensor: 512 elements of up to 4 bytes, 256 int64 elements.
_MAX_DATA: constant(uint256) = 2048
_MAX_WORDS: constant(uint256) = _MAX_DATA // 32
# Output data: up to _MAX_ELEMENTS int64 elements (e.g. argmax).
_MAX_OUT_WORDS: constant(uint256) = _MAX_ELEMENTS // 4
_MAX_NDIM: constant(uint256) = 8
# add takes 5 inputs (a, b, m_a, m_b, shift).
_MAX_INPUTS: constant(uint256) = 5
_MAX_PARAMS: constant(uint256) = 128
# The runtime's requantize bounds (verimesh.runtime.fixed).
_MIN_SHIFT: constant(int256) = 17
_MAX_SHIFT: constant(int256) = 62
_ACC_LIMIT: constant(int256) = 2**47
# Dtype codes (`_code`) and sets of them (bit `code`), as the ops' input checks name them.
_INT8: constant(uint256) = 1 << 1
_INT16: constant(uint256) = 1 << 2
_INT32: constant(uint256) = 1 << 3
_INT64: constant(uint256) = 1 << 4
_UINT8: constant(uint256) = 1 << 5
# The rescaling ops of `_arith` (their input count is 3 + kind).
_REQUANTIZE: constant(uint256) = 0
_MUL: constant(uint256) = 1
_ADD: constant(uint256) = 2
# Byte-swap masks: every other byte, 2-byte pair, 4-byte and 8-byte group of a word.
_M8: constant(uint256) = 450552876409790643671482431940419874915447411150352389258589821042463539455
_M16: constant(uint256) = 1766820105243087041267848467410591083712559083657179364930612997358944255
_M32: constant(uint256) = 26959946660873538060741835960174461801791452538186943042387869433855
_M64: constant(uint256) = 6277101735386680763495507056286727952657427581105975853055


struct Tensor:
    dtype: String[5]
    dims: DynArray[uint256, _MAX_NDIM]
    data: Bytes[_MAX_DATA]


@external
@pure
def recompute(
    op: String[32], params: Bytes[_MAX_PARAMS], inputs: DynArray[Tensor, _MAX_INPUTS]
) -> (DynArray[bytes32, _MAX_INPUTS], bytes32):
    """
    @dev Recomputes one op of the runtime from its input tensors.
    @param op The op's name, as the trace leaf records it.
    @param params The op's canonical params JSON, as the trace leaf commits to it.
    @param inputs The op's input tensors, in order.
    @return The canonical hash of each input, and of the output the runtime computes.
    """
    hashes: DynArray[bytes32, _MAX_INPUTS] = []
    for t: Tensor in inputs:
        hashes.append(self._hash(t))  # also checks dtype, shape and data length
    out: bytes32 = empty(bytes32)
    kind: uint256 = _ADD + 1  # not a rescaling op
    if op == "requantize":
        kind = _REQUANTIZE
    elif op == "mul":
        kind = _MUL
    elif op == "add":
        kind = _ADD
    if kind <= _ADD:
        out = self._arith(params, inputs, kind)
    elif op == "argmax":
        out = self._argmax(params, inputs)
    elif op == "reshape":
        out = self._reshape(params, inputs)
    elif op == "slice":
        out = self._slice(params, inputs)
    elif op == "rmsnorm":
        out = self._rmsnorm(params, inputs)
    elif op == "rope":
        out = self._rope(params, inputs)
    else:
        raise "op_check: unsupported op"
    return hashes, out


# --- arithmetic ops -----------------------------------------------------------------------


@internal
@pure
def _arith(params: Bytes[_MAX_PARAMS], inputs: DynArray[Tensor, _MAX_INPUTS], kind: uint256) -> bytes32:
    """
    @dev The rescaling ops of runtime ops/linear.py (reference path), everything broadcast
         like numpy, m and shift int32 of shape () or (channels,), channels the last axis:
         - `_REQUANTIZE` (acc, m, shift): clip((acc * m + 2^(shift - 1)) >> shift), acc of
           any dtype with |acc| < 2^47 (fixed.requantize_reference), default int8;
         - `_MUL` (a, b, m, shift): the same with acc = a * b, a and b int8, int16 or uint8,
           default int8;
         - `_ADD` (a, b, m_a, m_b, shift): clip((a * m_a + b * m_b + 2^(shift - 1)) >>
           shift), a and b int8, int16, int32 or uint8, default int16.
    @param params {} or {"out_dtype": <dtype>}.
    @param inputs The op's inputs, as above.
    @param kind `_REQUANTIZE`, `_MUL` or `_ADD`.
    @return The output's canonical hash.
    """
    n: uint256 = 3 + kind  # inputs: 3, 4, 5
    self._arity(len(inputs), n)
    fallback: String[5] = "int8"
    if kind == _ADD:
        fallback = "int16"
    out_dtype: String[5] = self._out_dtype(params, fallback)
    dims: DynArray[uint256, _MAX_NDIM] = inputs[0].dims
    first_m: uint256 = 1  # the first multiplier input
    if kind != _REQUANTIZE:
        first_m = 2
        allowed: uint256 = _INT8 | _INT16 | _UINT8
        if kind == _ADD:
            allowed |= _INT32
        self._need(inputs[0].dtype, allowed)
        self._need(inputs[1].dtype, allowed)
        dims = self._broadcast(dims, inputs[1].dims)
    channels: uint256 = self._last(dims)
    for i: uint256 in range(1, _MAX_INPUTS):
        if i == n:
            break
        if i >= first_m:  # the multipliers and the shift
            self._check_multiplier(inputs[i], inputs[n - 1], channels)
            dims = self._broadcast(dims, inputs[i].dims)
    acc: DynArray[int256, _MAX_ELEMENTS] = self._expand(inputs[0], dims)
    b: DynArray[int256, _MAX_ELEMENTS] = []
    ma: DynArray[int256, _MAX_ELEMENTS] = []
    if kind != _REQUANTIZE:
        b = self._expand(inputs[1], dims)
    if kind == _ADD:
        ma = self._values(inputs[2])
    ms: DynArray[int256, _MAX_ELEMENTS] = self._values(inputs[n - 2])
    shifts: DynArray[int256, _MAX_ELEMENTS] = self._values(inputs[n - 1])
    self._check_ranges(ms, shifts)
    self._check_ranges(ma, shifts)
    lo: int256 = 0
    hi: int256 = 0
    lo, hi = self._range(self._code(out_dtype))
    mv: int256 = 0
    mva: int256 = 0
    sh: uint256 = 0
    c: uint256 = 0
    for i: uint256 in range(_MAX_ELEMENTS):
        if i == len(acc):
            break
        if i == 0 or len(ms) > 1:
            mv = ms[c]
        if i == 0 or len(shifts) > 1:
            sh = convert(shifts[c], uint256)
        a: int256 = acc[i]
        t: int256 = 0
        if kind == _ADD:
            if i == 0 or len(ma) > 1:
                mva = ma[c]
            # |a|, |b| < 2^31 and 0 <= m < 2^31: every term below 2^63
            t = unsafe_add(unsafe_mul(a, mva), unsafe_mul(b[i], mv))
        else:
            if kind == _MUL:
                a = unsafe_mul(a, b[i])  # |a|, |b| <= 2^15
            assert a < _ACC_LIMIT and a > -_ACC_LIMIT, "op_check: accumulator magnitude is >= 2^47"
            t = unsafe_mul(a, mv)  # |acc| < 2^47, 0 <= m < 2^31
        # 17 <= shift <= 62: |t| + 2^61 < 2^255
        q: int256 = unsafe_add(t, 1 << unsafe_sub(sh, 1)) >> sh
        acc[i] = self._clip(q, lo, hi)
        c = unsafe_add(c, 1)
        if c == channels:
            c = 0
    return self._output_hash(out_dtype, dims, acc)


@internal
@pure
def _argmax(params: Bytes[_MAX_PARAMS], inputs: DynArray[Tensor, _MAX_INPUTS]) -> bytes32:
    """
    @dev argmax(x): index of the largest value of each last-axis row, the first one on a
         tie, as int64 of shape x.shape[:-1] (runtime ops/sampling.py).
    @param params {}.
    @param inputs x (any dtype, a non-empty last axis).
    @return The output's canonical hash.
    """
    self._arity(len(inputs), 1)
    self._params_ok(params == b"{}")
    dims: DynArray[uint256, _MAX_NDIM] = inputs[0].dims
    self._fits(len(dims) > 0 and dims[len(dims) - 1] > 0)  # a non-empty last axis
    width: uint256 = dims.pop()
    x: DynArray[int256, _MAX_ELEMENTS] = self._values(inputs[0])
    out: DynArray[int256, _MAX_ELEMENTS] = []
    best: int256 = 0
    at: uint256 = 0
    j: uint256 = 0
    for i: uint256 in range(_MAX_ELEMENTS):
        if i == len(x):
            break
        if j == 0 or x[i] > best:
            best = x[i]
            at = j
        j = self._next(j, width)
        if j == 0:
            out.append(convert(at, int256))
    return self._output_hash("int64", dims, out)


# --- data movement ops --------------------------------------------------------------------


@internal
@pure
def _reshape(params: Bytes[_MAX_PARAMS], inputs: DynArray[Tensor, _MAX_INPUTS]) -> bytes32:
    """
    @dev reshape(x) {"shape": [...]}: numpy's x.reshape(shape), at most one -1 (runtime
         ops/shape.py). The data is unchanged, only the header.
    @param params {"shape":[d0,d1,...]}.
    @param inputs x.
    @return The output's canonical hash.
    """
    self._arity(len(inputs), 1)
    shape: DynArray[int256, _MAX_NDIM] = []
    pos: uint256 = 0
    shape, pos = self._int_list(params, self._lit(params, 0, b'{"shape":'))
    self._close(params, pos)
    count: uint256 = self._count(inputs[0].dims)
    known: uint256 = 1
    free: uint256 = _MAX_NDIM  # the axis of the -1, if any
    ok: bool = True
    dims: DynArray[uint256, _MAX_NDIM] = []
    for i: uint256 in range(_MAX_NDIM):
        if i == len(shape):
            break
        d: uint256 = 0
        if shape[i] == -1 and free == _MAX_NDIM:
            free = i
        elif shape[i] >= 0 and shape[i] <= convert(_MAX_ELEMENTS, int256):
            d = convert(shape[i], uint256)
            known *= d
        else:
            ok = False  # a second -1, another negative, or a dim above the bound
        dims.append(d)
    if free < _MAX_NDIM and known > 0:
        dims[free] = count // known
    self._fits(ok and (free == _MAX_NDIM or known > 0) and self._count(dims) == count)
    return sha256(concat(self._header(inputs[0].dtype, dims), inputs[0].data))


@internal
@pure
def _slice(params: Bytes[_MAX_PARAMS], inputs: DynArray[Tensor, _MAX_INPUTS]) -> bytes32:
    """
    @dev slice(x) {"axis", "start", "stop"}: x[..., start:stop, ...] along axis (runtime
         ops/shape.py), axis in [-ndim, ndim), 0 <= start <= stop <= x.shape[axis].
    @param params {"axis":a,"start":s,"stop":e}.
    @param inputs x.
    @return The output's canonical hash.
    """
    self._arity(len(inputs), 1)
    dims: DynArray[uint256, _MAX_NDIM] = inputs[0].dims
    axis_value: int256 = 0
    start: int256 = 0
    stop: int256 = 0
    pos: uint256 = 0
    axis_value, pos = self._int(params, self._lit(params, 0, b'{"axis":'))
    start, pos = self._int(params, self._lit(params, pos, b',"start":'))
    stop, pos = self._int(params, self._lit(params, pos, b',"stop":'))
    self._close(params, pos)
    n: int256 = convert(len(dims), int256)
    self._fits(axis_value >= -n and axis_value < n)
    axis: uint256 = convert((axis_value + n) % n, uint256)
    self._fits(start >= 0 and start <= stop and stop <= convert(dims[axis], int256))
    strides: uint256[_MAX_NDIM] = self._strides(dims)
    first: uint256 = convert(start, uint256) * strides[axis]
    dims[axis] = convert(stop - start, uint256)
    code: uint256 = self._code(inputs[0].dtype)
    if axis == 0 or self._count(inputs[0].dims) == strides[axis] * inputs[0].dims[axis]:
        # everything before the axis has size 1: one contiguous run of the data
        size: uint256 = self._size(code)
        run: uint256 = dims[axis] * strides[axis] * size
        return sha256(concat(self._header(inputs[0].dtype, dims), slice(inputs[0].data, first * size, run)))
    out: DynArray[int256, _MAX_ELEMENTS] = self._gather(self._values(inputs[0]), dims, strides, first)
    return self._output_hash(inputs[0].dtype, dims, out)


# --- normalisation ops --------------------------------------------------------------------


@internal
@pure
def _rmsnorm(params: Bytes[_MAX_PARAMS], inputs: DynArray[Tensor, _MAX_INPUTS]) -> bytes32:
    """
    @dev rmsnorm(x, gamma) {eps, shift, out_dtype} (runtime ops/norm.py, reference path):
         per last-axis row, V = sum(x^2) + eps, u = round(x * 2^24 / sqrt(V)) by the exact
         integer spec of fixed.scaled_rsqrt_mul_reference, out = clip(round(u * gamma /
         2^shift)).
    @param params {"eps":e[,"out_dtype":d],"shift":s}, 1 <= eps < 2^60, 1 <= shift <= 62.
    @param inputs x (int8, int16 or int32, a non-empty last axis), gamma (int32, (D,)).
    @return The output's canonical hash.
    """
    self._arity(len(inputs), 2)
    eps: int256 = 0
    shift_bits: int256 = 0
    out_dtype: String[5] = "int8"
    pos: uint256 = self._key(params, 1, True, b'"eps":')
    self._params_ok(pos != 0 and self._char(params, 0) == 123)  # "{"
    eps, pos = self._int(params, pos)
    p: uint256 = self._key(params, pos, False, b'"out_dtype":')
    if p != 0:
        out_dtype, pos = self._dtype_at(params, p)
    p = self._key(params, pos, False, b'"shift":')
    self._params_ok(p != 0)
    shift_bits, pos = self._int(params, p)
    self._close(params, pos)
    self._params_ok(eps >= 1 and eps < 2**60 and shift_bits >= 1 and shift_bits <= 62)
    self._need(inputs[0].dtype, _INT8 | _INT16 | _INT32)
    dims: DynArray[uint256, _MAX_NDIM] = inputs[0].dims
    width: uint256 = self._last(dims)
    # x [..., D] with D > 0, gamma int32 [D]
    self._fits(
        len(dims) > 0
        and width > 0
        and inputs[1].dtype == "int32"
        and len(inputs[1].dims) == 1
        and inputs[1].dims[0] == width
    )
    x: DynArray[int256, _MAX_ELEMENTS] = self._values(inputs[0])
    gamma: DynArray[int256, _MAX_ELEMENTS] = self._values(inputs[1])
    lo: int256 = 0
    hi: int256 = 0
    lo, hi = self._range(self._code(out_dtype))
    sh: uint256 = convert(shift_bits, uint256)
    for r: uint256 in range(_MAX_ELEMENTS):
        base: uint256 = r * width
        if base == len(x):
            break
        peak: int256 = 0
        v: int256 = eps
        for j: uint256 in range(_MAX_ELEMENTS):
            if j == width:
                break
            xj: int256 = x[base + j]
            peak = max(peak, abs(xj))
            v += xj * xj
        assert convert(width, int256) * peak * peak + eps < 2**62, (
            "op_check: rmsnorm variance is >= 2^62"
        )
        # k = floor((bit_length(V) - 29) / 2); V' = V / 4^k in [2^28, 2^30); inv = isqrt(2^60 // V')
        k: int256 = convert(self._bit_length(convert(v, uint256)), int256) - 29
        if k < 0:
            k -= 1
        k = k // 2  # floor: rounds towards zero, hence the -1 above for negatives
        v_norm: uint256 = convert(v, uint256)
        if k >= 0:
            v_norm = v_norm >> convert(2 * k, uint256)
        else:
            v_norm = v_norm << convert(-2 * k, uint256)
        inv: int256 = convert(isqrt((1 << 60) // v_norm), int256)
        e: int256 = 30 + k - 24
        for j: uint256 in range(_MAX_ELEMENTS):
            if j == width:
                break
            u: int256 = x[base + j] * inv
            if e > 0:
                u = (u + (1 << convert(e - 1, uint256))) >> convert(e, uint256)
            else:
                u = u << convert(-e, uint256)
            q: int256 = (u * gamma[j] + (1 << (sh - 1))) >> sh
            x[base + j] = self._clip(q, lo, hi)
    return self._output_hash(out_dtype, dims, x)


@internal
@pure
def _rope(params: Bytes[_MAX_PARAMS], inputs: DynArray[Tensor, _MAX_INPUTS]) -> bytes32:
    """
    @dev rope(x, cos, sin, positions) {frac_bits, out_dtype, style} (runtime
         ops/attention.py, reference path): each pair (a, b) of a row at position p turns
         into clip(round((x_a c - x_b s) / 2^f)), clip(round((x_b c + x_a s) / 2^f)) with
         c, s = cos[p, i], sin[p, i]; pairs (i, i + D/2) for style "half", (2i, 2i + 1) for
         "interleaved".
    @param params Any of "frac_bits" (1..30, default 14), "out_dtype" (default int16),
           "style" ("half" default, or "interleaved").
    @param inputs x (int8 or int16, [..., T, D], D even), cos and sin (int16 or int32,
           [max_pos, D/2]), positions (int32 or int64, [T], each in [0, max_pos)).
    @return The output's canonical hash.
    """
    self._arity(len(inputs), 4)
    frac: int256 = 14
    out_dtype: String[5] = "int16"
    interleaved: bool = False
    pos: uint256 = self._lit(params, 0, b"{")
    first: bool = True
    p: uint256 = self._key(params, pos, first, b'"frac_bits":')
    if p != 0:
        frac, pos = self._int(params, p)
        first = False
    p = self._key(params, pos, first, b'"out_dtype":')
    if p != 0:
        out_dtype, pos = self._dtype_at(params, p)
        first = False
    p = self._key(params, pos, first, b'"style":')
    if p != 0:
        if self._at(params, p, b'"interleaved"'):
            interleaved = True
            pos = p + 13
        else:
            pos = self._lit(params, p, b'"half"')
    self._close(params, pos)
    self._params_ok(frac >= 1 and frac <= 30)
    self._need(inputs[0].dtype, _INT8 | _INT16)
    self._need(inputs[1].dtype, _INT16 | _INT32)
    self._need(inputs[2].dtype, _INT16 | _INT32)
    self._need(inputs[3].dtype, _INT32 | _INT64)
    dims: DynArray[uint256, _MAX_NDIM] = inputs[0].dims
    n: uint256 = len(dims)
    half: uint256 = 0
    rows: uint256 = 0
    if n >= 2:
        half = dims[n - 1] // 2
        rows = dims[n - 2]
    table: DynArray[uint256, _MAX_NDIM] = inputs[1].dims
    sin_dims: DynArray[uint256, _MAX_NDIM] = inputs[2].dims
    # x [..., T, D] with D even, cos and sin [max_pos, D / 2], positions [T]
    self._fits(
        n >= 2
        and dims[n - 1] == 2 * half
        and len(table) == 2
        and table[1] == half
        and len(sin_dims) == 2
        and sin_dims[0] == table[0]
        and sin_dims[1] == half
        and len(inputs[3].dims) == 1
        and inputs[3].dims[0] == rows
    )
    positions: DynArray[int256, _MAX_ELEMENTS] = self._values(inputs[3])
    for t: int256 in positions:
        self._fits(t >= 0 and t < convert(table[0], int256))  # positions in [0, max_pos)
    x: DynArray[int256, _MAX_ELEMENTS] = self._values(inputs[0])
    cos: DynArray[int256, _MAX_ELEMENTS] = self._values(inputs[1])
    sin: DynArray[int256, _MAX_ELEMENTS] = self._values(inputs[2])
    lo: int256 = 0
    hi: int256 = 0
    lo, hi = self._range(self._code(out_dtype))
    f: uint256 = convert(frac, uint256)
    unit: int256 = 1 << (f - 1)
    t: uint256 = 0
    for r: uint256 in range(_MAX_ELEMENTS):
        start: uint256 = r * 2 * half
        if start >= len(x) or half == 0:
            break
        at: uint256 = convert(positions[t], uint256) * half
        for i: uint256 in range(_MAX_ELEMENTS):
            if i == half:
                break
            a: uint256 = start + i
            b: uint256 = a + half
            if interleaved:
                a = start + 2 * i
                b = a + 1
            xa: int256 = x[a]
            xb: int256 = x[b]
            c: int256 = cos[at + i]
            s: int256 = sin[at + i]
            x[a] = self._clip((xa * c - xb * s + unit) >> f, lo, hi)
            x[b] = self._clip((xb * c + xa * s + unit) >> f, lo, hi)
        t += 1
        if t == rows:
            t = 0
    return self._output_hash(out_dtype, dims, x)


# --- shared checks and arithmetic ---------------------------------------------------------


@internal
@pure
def _arity(given: uint256, wanted: uint256):
    """
    @dev Requires the op's number of inputs.
    @param given How many inputs were passed.
    @param wanted How many the op takes.
    """
    assert given == wanted, "op_check: wrong number of inputs for the op"


@internal
@pure
def _fits(ok: bool):
    """
    @dev Requires input shapes (or indices, axes, positions) that fit the op, as the
         runtime checks them (the one place that says so).
    @param ok Whether they do.
    """
    assert ok, "op_check: input shapes do not fit the op"


@internal
@pure
def _need(dtype: String[5], allowed: uint256):
    """
    @dev Requires an input dtype among those an op accepts.
    @param dtype The input's dtype name.
    @param allowed The accepted dtypes (bits `_INT8` ...).
    """
    assert (1 << self._code(dtype)) & allowed != 0, "op_check: input dtype not accepted by the op"


@internal
@pure
def _check_multiplier(m: Tensor, s: Tensor, channels: uint256):
    """
    @dev The runtime's checks of a multiplier and shift pair: int32, shape () or (channels,).
    @param m The multiplier.
    @param s The shift.
    @param channels The size of the last axis.
    """
    self._need(m.dtype, _INT32)
    self._need(s.dtype, _INT32)
    for dims: DynArray[uint256, _MAX_NDIM] in [m.dims, s.dims]:
        self._fits(len(dims) == 0 or (len(dims) == 1 and dims[0] == channels))


@internal
@pure
def _check_ranges(ms: DynArray[int256, _MAX_ELEMENTS], shifts: DynArray[int256, _MAX_ELEMENTS]):
    """
    @dev The runtime's value checks of a multiplier and shift: m >= 0, shift in [17, 62].
    @param ms The multiplier values.
    @param shifts The shift values.
    """
    for m: int256 in ms:
        assert m >= 0, "op_check: multiplier must be >= 0"
    for s: int256 in shifts:
        assert s >= _MIN_SHIFT and s <= _MAX_SHIFT, "op_check: shift must be in [17, 62]"


@internal
@pure
def _clip(v: int256, lo: int256, hi: int256) -> int256:
    """
    @dev Saturation into [lo, hi] (fixed.clip_to: never wrap-around).
    @param v The value.
    @param lo The smallest value of the dtype.
    @param hi The largest value of the dtype.
    @return v, lo or hi.
    """
    return max(lo, min(hi, v))


@internal
@pure
def _next(i: uint256, n: uint256) -> uint256:
    """
    @dev The next index of a cyclic counter: i + 1, back to 0 at n.
    @param i The index.
    @param n The cycle length.
    @return (i + 1) % n.
    """
    j: uint256 = unsafe_add(i, 1)
    if j == n:
        return 0
    return j


@internal
@pure
def _bit_length(v: uint256) -> uint256:
    """
    @dev Python's int.bit_length of a number below 2^64.
    @param v The number.
    @return The number of bits needed to write it (0 for 0).
    """
    n: uint256 = 0
    x: uint256 = v
    for s: uint256 in [32, 16, 8, 4, 2, 1]:
        if x >> s != 0:
            x = x >> s
            n += s
    if x != 0:
        n += 1
    return n


# --- shapes -------------------------------------------------------------------------------


@internal
@pure
def _last(dims: DynArray[uint256, _MAX_NDIM]) -> uint256:
    """
    @dev The channel count of a shape: its last dim, 1 for a scalar.
    @param dims The shape.
    @return The size of the last axis.
    """
    if len(dims) == 0:
        return 1
    return dims[len(dims) - 1]


@internal
@pure
def _broadcast(a: DynArray[uint256, _MAX_NDIM], b: DynArray[uint256, _MAX_NDIM]) -> DynArray[uint256, _MAX_NDIM]:
    """
    @dev numpy's broadcast_shapes(a, b), within the element bound.
    @param a A shape.
    @param b A shape.
    @return The broadcast shape.
    """
    n: uint256 = max(len(a), len(b))
    out: DynArray[uint256, _MAX_NDIM] = []
    for i: uint256 in range(_MAX_NDIM):
        if i == n:
            break
        da: uint256 = 1
        db: uint256 = 1
        if i + len(a) >= n:
            da = a[i + len(a) - n]
        if i + len(b) >= n:
            db = b[i + len(b) - n]
        if da == 1:
            da = db
        self._fits(db == da or db == 1)  # numpy broadcasting
        out.append(da)
    self._count(out)
    return out


@internal
@pure
def _expand(t: Tensor, out_dims: DynArray[uint256, _MAX_NDIM]) -> DynArray[int256, _MAX_ELEMENTS]:
    """
    @dev The values of a tensor broadcast to out_dims (numpy rules, dims right-aligned).
    @param t The tensor.
    @param out_dims The broadcast shape (from `_broadcast`).
    @return The broadcast values, C order.
    """
    x: DynArray[int256, _MAX_ELEMENTS] = self._values(t)
    if len(x) == self._count(out_dims) and len(t.dims) == len(out_dims):
        return x  # same count and ndim under broadcasting: the same shape
    strides: uint256[_MAX_NDIM] = self._strides(t.dims)
    out_strides: uint256[_MAX_NDIM] = empty(uint256[_MAX_NDIM])
    offset: uint256 = len(out_dims) - len(t.dims)
    for i: uint256 in range(_MAX_NDIM):
        if i == len(t.dims):
            break
        if t.dims[i] != 1:
            out_strides[i + offset] = strides[i]
    return self._gather(x, out_dims, out_strides, 0)


@internal
@pure
def _strides(dims: DynArray[uint256, _MAX_NDIM]) -> uint256[_MAX_NDIM]:
    """
    @dev C-order element strides of a shape.
    @param dims The shape.
    @return The stride of each axis (in elements).
    """
    strides: uint256[_MAX_NDIM] = empty(uint256[_MAX_NDIM])
    step: uint256 = 1
    for r: uint256 in range(_MAX_NDIM):
        if r == len(dims):
            break
        i: uint256 = len(dims) - 1 - r
        strides[i] = step
        step *= dims[i]
    return strides


@internal
@pure
def _gather(
    x: DynArray[int256, _MAX_ELEMENTS], out_dims: DynArray[uint256, _MAX_NDIM], strides: uint256[_MAX_NDIM], base: uint256
) -> DynArray[int256, _MAX_ELEMENTS]:
    """
    @dev out[idx] = x[base + sum(idx[k] * strides[k])] for every index of out_dims, C order
         (an odometer over the output index).
    @param x The source values.
    @param out_dims The output shape.
    @param strides The source stride of each output axis (0 to repeat).
    @param base The source index of out[0, ..., 0].
    @return The output values.
    """
    count: uint256 = self._count(out_dims)
    nd: uint256 = len(out_dims)
    idx: uint256[_MAX_NDIM] = empty(uint256[_MAX_NDIM])
    src: uint256 = base
    out: DynArray[int256, _MAX_ELEMENTS] = []
    for i: uint256 in range(_MAX_ELEMENTS):
        if i == count:
            break
        out.append(x[src])
        for r: uint256 in range(_MAX_NDIM):
            if r == nd:
                break
            k: uint256 = nd - 1 - r
            idx[k] += 1
            src += strides[k]
            if idx[k] < out_dims[k]:
                break
            src -= strides[k] * out_dims[k]
            idx[k] = 0
    return out


# --- params -------------------------------------------------------------------------------


@internal
@pure
def _out_dtype(params: Bytes[_MAX_PARAMS], fallback: String[5]) -> String[5]:
    """
    @dev The out_dtype of params that are {} or {"out_dtype": <dtype>}, canonical JSON.
    @param params The canonical params JSON.
    @param fallback The op's default out_dtype.
    @return The dtype name.
    """
    out: String[5] = fallback
    pos: uint256 = self._lit(params, 0, b"{")
    p: uint256 = self._key(params, pos, True, b'"out_dtype":')
    if p != 0:
        out, pos = self._dtype_at(params, p)
    self._close(params, pos)
    return out


@internal
@pure
def _params_ok(ok: bool):
    """
    @dev Requires params in the canonical form the op takes (the one place that says so).
    @param ok Whether they are.
    """
    assert ok, "op_check: unsupported params"


@internal
@pure
def _at(params: Bytes[_MAX_PARAMS], pos: uint256, lit: Bytes[16]) -> bool:
    """
    @dev Whether the literal bytes `lit` are at `pos` of the params.
    @param params The params JSON.
    @param pos Where `lit` would start.
    @param lit The bytes.
    @return True if they are there.
    """
    if pos + len(lit) > len(params):
        return False
    return slice(params, pos, len(lit)) == lit


@internal
@pure
def _key(params: Bytes[_MAX_PARAMS], pos: uint256, first: bool, key: Bytes[16]) -> uint256:
    """
    @dev Where the value of an optional key starts, if the key comes next in the object.
    @param params The params JSON.
    @param pos The position after "{" or after the previous value.
    @param first Whether no key came before (else a "," must precede the key).
    @param key The quoted key and its colon, e.g. '"eps":'.
    @return The position after the key, or 0 if the key is not next.
    """
    p: uint256 = pos
    if not first:
        if not self._at(params, p, b","):
            return 0
        p += 1
    if self._at(params, p, key):
        return p + len(key)
    return 0


@internal
@pure
def _dtype_at(params: Bytes[_MAX_PARAMS], pos: uint256) -> (String[5], uint256):
    """
    @dev A quoted dtype name at `pos` of the params.
    @param params The params JSON.
    @param pos Where the opening quote is.
    @return The dtype name and the position after the closing quote.
    """
    n: uint256 = 4
    if self._char(params, pos + 5) != 34:  # '"': "int8" is the one 4-letter name
        n = 5
    self._params_ok(self._char(params, pos) == 34 and self._char(params, pos + n + 1) == 34)
    name: String[5] = convert(slice(params, pos + 1, n), String[5])
    self._code(name)  # an allowed dtype
    return name, pos + n + 2


@internal
@pure
def _lit(params: Bytes[_MAX_PARAMS], pos: uint256, lit: Bytes[16]) -> uint256:
    """
    @dev Requires the literal bytes `lit` at `pos` of the params.
    @param params The params JSON.
    @param pos Where `lit` must start.
    @param lit The expected bytes.
    @return The position after them.
    """
    self._params_ok(self._at(params, pos, lit))
    return pos + len(lit)


@internal
@pure
def _close(params: Bytes[_MAX_PARAMS], pos: uint256):
    """
    @dev Requires the params to end with the "}" at `pos`.
    @param params The params JSON.
    @param pos The position after the last value parsed.
    """
    self._params_ok(pos + 1 == len(params) and self._char(params, pos) == 125)  # "}"


@internal
@pure
def _char(params: Bytes[_MAX_PARAMS], pos: uint256) -> uint256:
    """
    @dev The byte at `pos`, or 256 past the end.
    @param params The params JSON.
    @param pos The position.
    @return The byte value.
    """
    if pos >= len(params):
        return 256
    return convert(slice(params, pos, 1), uint256)


@internal
@pure
def _int(params: Bytes[_MAX_PARAMS], pos: uint256) -> (int256, uint256):
    """
    @dev A canonical JSON integer at `pos` (as Python's json writes an int): an optional
         "-", then "0" or a nonzero digit and up to 18 more digits; never "-0".
    @param params The params JSON.
    @param pos Where the integer starts.
    @return Its value and the position after it.
    """
    p: uint256 = pos
    negative: bool = self._char(params, p) == 45  # "-"
    if negative:
        p += 1
    start: uint256 = p
    value: uint256 = 0
    for i: uint256 in range(19):
        c: uint256 = self._char(params, p)
        if c < 48 or c > 57:
            break
        value = value * 10 + c - 48
        p += 1
    self._params_ok(p > start and (p == start + 1 or self._char(params, start) != 48))
    if negative:
        self._params_ok(value > 0)
        return -convert(value, int256), p
    return convert(value, int256), p


@internal
@pure
def _int_list(params: Bytes[_MAX_PARAMS], pos: uint256) -> (DynArray[int256, _MAX_NDIM], uint256):
    """
    @dev A canonical JSON list of at most 8 integers at `pos`: "[]" or "[a,b,...]".
    @param params The params JSON.
    @param pos Where the list starts.
    @return Its values and the position after it.
    """
    p: uint256 = self._lit(params, pos, b"[")
    out: DynArray[int256, _MAX_NDIM] = []
    if self._char(params, p) == 93:  # "]"
        return out, p + 1
    for i: uint256 in range(_MAX_NDIM):
        v: int256 = 0
        v, p = self._int(params, p)
        out.append(v)
        c: uint256 = self._char(params, p)
        p += 1
        if c == 93:  # "]"
            return out, p
        self._params_ok(c == 44)  # ","
    self._params_ok(False)
    return out, p


# --- tensors ------------------------------------------------------------------------------


@internal
@pure
def _hash(t: Tensor) -> bytes32:
    """
    @dev The canonical hash of a tensor, after checking its dtype, shape and data length.
    @param t The tensor.
    @return sha256 of the canonical bytes.
    """
    count: uint256 = self._count(t.dims)
    assert len(t.data) == count * self._size(self._code(t.dtype)), "op_check: data length does not match the shape"
    return sha256(concat(self._header(t.dtype, t.dims), t.data))


@internal
@pure
def _values(t: Tensor) -> DynArray[int256, _MAX_ELEMENTS]:
    """
    @dev The elements of a tensor whose data length `_hash` has checked, as integers.
         One 32-byte word is read and byte-swapped at a time, so each element is one mask
         and shift of it (little endian); the sign comes from (raw ^ half) - half.
    @param t The tensor.
    @return Its elements, C order.
    """
    code: uint256 = self._code(t.dtype)
    size: uint256 = self._size(code)
    bits: uint256 = unsafe_mul(size, 8)
    per_word: uint256 = unsafe_div(32, size)
    mask: uint256 = (1 << bits) - 1
    half: uint256 = 0
    if code != 5:  # signed
        half = 1 << unsafe_sub(bits, 1)
    half_value: int256 = convert(half, int256)
    count: uint256 = unsafe_div(len(t.data), size)
    padded: Bytes[_MAX_DATA + 32] = concat(t.data, empty(bytes32))
    out: DynArray[int256, _MAX_ELEMENTS] = []
    k: uint256 = 0
    for w: uint256 in range(_MAX_WORDS):
        if k == count:
            break
        word: uint256 = self._swap(convert(extract32(padded, unsafe_mul(w, 32)), uint256))
        for j: uint256 in range(32):
            if j == per_word or k == count:
                break
            out.append(unsafe_sub(convert((word & mask) ^ half, int256), half_value))  # < 2^64
            word = word >> bits
            k = unsafe_add(k, 1)
    return out


@internal
@pure
def _output_hash(
    dtype: String[5], dims: DynArray[uint256, _MAX_NDIM], values: DynArray[int256, _MAX_ELEMENTS]
) -> bytes32:
    """
    @dev The canonical hash of an op's output given by its values (each within the dtype).
    @param dtype The output dtype.
    @param dims The output shape (its element count is len(values)).
    @param values The elements, C order.
    @return sha256 of the canonical bytes.
    """
    size: uint256 = self._size(self._code(dtype))
    bits: uint256 = unsafe_mul(size, 8)
    per_word: uint256 = unsafe_div(32, size)
    mask: int256 = convert((1 << bits) - 1, int256)
    words: uint256[_MAX_OUT_WORDS] = empty(uint256[_MAX_OUT_WORDS])
    n: uint256 = len(values)
    k: uint256 = 0
    for w: uint256 in range(_MAX_OUT_WORDS):
        if k == n:
            break
        word: uint256 = 0
        at: uint256 = 0
        for j: uint256 in range(32):
            if j == per_word or k == n:
                break
            word |= convert(values[k] & mask, uint256) << at  # two's complement
            at = unsafe_add(at, bits)
            k = unsafe_add(k, 1)
        words[w] = self._swap(word)
    return sha256(concat(self._header(dtype, dims), slice(abi_encode(words), 0, n * size)))


@internal
@pure
def _swap(x: uint256) -> uint256:
    """
    @dev Reverses the byte order of a word (big endian memory word <-> little endian data).
    @param x The word.
    @return Its bytes in reverse order.
    """
    v: uint256 = ((x >> 8) & _M8) | ((x & _M8) << 8)
    v = ((v >> 16) & _M16) | ((v & _M16) << 16)
    v = ((v >> 32) & _M32) | ((v & _M32) << 32)
    v = ((v >> 64) & _M64) | ((v & _M64) << 64)
    return (v >> 128) | (v << 128)


@internal
@pure
def _count(dims: DynArray[uint256, _MAX_NDIM]) -> uint256:
    """
    @dev Number of elements of a shape, bounded by `_MAX_ELEMENTS` (each dim too).
    @param dims The shape.
    @return The product of the dims (1 for a scalar).
    """
    count: uint256 = 1
    small: bool = True
    for d: uint256 in dims:
        if d > _MAX_ELEMENTS:
            small = False
        else:
            count *= d  # at most 8 factors of at most _MAX_ELEMENTS: no overflow
    assert small and count <= _MAX_ELEMENTS, "op_check: tensor too large to check on chain"
    return count


@internal
@pure
def _code(dtype: String[5]) -> uint256:
    """
    @dev The code of an allowed dtype: 1 int8, 2 int16, 3 int32, 4 int64, 5 uint8.
    @param dtype The dtype name.
    @return Its code.
    """
    if dtype == "int8":
        return 1
    if dtype == "int16":
        return 2
    if dtype == "int32":
        return 3
    if dtype == "int64":
        return 4
    if dtype == "uint8":
        return 5
    raise "op_check: dtype must be int8, int16, int32, int64 or uint8"


@internal
@pure
def _size(code: uint256) -> uint256:
    """
    @dev Bytes per element of a dtype.
    @param code The dtype's code.
    @return 1, 2, 4 or 8.
    """
    if code == 5:
        return 1
    return 1 << (code - 1)


@internal
@pure
def _range(code: uint256) -> (int256, int256):
    """
    @dev The smallest and largest value of a dtype.
    @param code The dtype's code.
    @return (min, max).
    """
    if code == 5:
        return 0, 255
    top: int256 = convert(1 << (8 * self._size(code) - 1), int256)
    return -top, top - 1


@internal
@pure
def _header(dtype: String[5], dims: DynArray[uint256, _MAX_NDIM]) -> Bytes[80]:
    """
    @dev The canonical header: dtype name || 0x00 || ndim (u8) || dims (u64 big endian).
         Every shape reaching it has passed `_count` (dims <= _MAX_ELEMENTS < 2^64).
    @param dtype The dtype name.
    @param dims The shape.
    @return The header bytes.
    """
    words: uint256[2] = [0, 0]
    for i: uint256 in range(_MAX_NDIM):
        if i == len(dims):
            break
        words[i // 4] |= dims[i] << (64 * (3 - i % 4))
    packed: Bytes[64] = concat(convert(words[0], bytes32), convert(words[1], bytes32))
    return concat(
        convert(dtype, Bytes[5]),
        x"00",
        slice(convert(len(dims), bytes32), 31, 1),
        slice(packed, 0, 8 * len(dims)),
    )
