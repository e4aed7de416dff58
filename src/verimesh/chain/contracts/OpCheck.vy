# pragma version ~=0.4.3
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
        (verimesh.runtime.trace.canonical_params); the contract rebuilds the canonical
        JSON of the typed params it understands and requires byte equality, so a leaf
        cannot claim params other than the ones recomputed here.
        Ops (bit for bit verimesh.runtime.ops, reference path):
        - requantize(acc, multiplier, shift) = clip(round_half_up(acc * m / 2^shift)),
          multiplier and shift int32 of shape () or (channels,), params {} or
          {"out_dtype": ...} (default int8).
        Stateless: pure functions only.
@custom:security
        - Bounds: at most `_MAX_ELEMENTS` elements per tensor, 8 dimensions, 4 inputs; the
          data length must be exactly elements x dtype size, so a truncated or padded
          tensor is refused, never silently reinterpreted.
        - The same input checks as the runtime (dtypes, shapes, multiplier >= 0, shift in
          [17, 62], |acc| < 2^47 ...); inputs the runtime would refuse revert here, so the
          contract never computes an output for a leaf an honest runtime cannot produce.
"""

# Most elements a tensor may have here (gas: docs/verification.md).
_MAX_ELEMENTS: constant(uint256) = 256
# int64 x _MAX_ELEMENTS bytes.
_MAX_DATA: constant(uint256) = 8 * _MAX_ELEMENTS
_MAX_WORDS: constant(uint256) = _MAX_DATA // 32
_MAX_NDIM: constant(uint256) = 8
_MAX_INPUTS: constant(uint256) = 4
_MAX_PARAMS: constant(uint256) = 128
# The runtime's requantize bounds (verimesh.runtime.fixed).
_MIN_SHIFT: constant(int256) = 17
_MAX_SHIFT: constant(int256) = 62
_ACC_LIMIT: constant(int256) = 2**47
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
    if op == "requantize":
        out = self._requantize(params, inputs)
    else:
        raise "op_check: unsupported op"
    return hashes, out


@external
@pure
def tensor_hash(dtype: String[5], dims: DynArray[uint256, _MAX_NDIM], data: Bytes[_MAX_DATA]) -> bytes32:
    """
    @dev The runtime's canonical tensor hash of an int8/int16/int32/int64/uint8 tensor.
    @param dtype The dtype name ("int8", ...).
    @param dims The shape.
    @param data The elements, C order, little endian (exactly elements x size bytes).
    @return sha256 of the canonical bytes.
    """
    return self._hash(Tensor(dtype=dtype, dims=dims, data=data))


# --- ops ------------------------------------------------------------------------------------


@internal
@pure
def _requantize(params: Bytes[_MAX_PARAMS], inputs: DynArray[Tensor, _MAX_INPUTS]) -> bytes32:
    """
    @dev requantize(acc, m, shift): clip((acc * m + 2^(shift - 1)) >> shift) into
         out_dtype, m and shift broadcast on the last axis (runtime ops/linear.py, fixed.py).
    @param params {} or {"out_dtype": <dtype>} (default int8).
    @param inputs acc (any dtype), multiplier and shift (int32, shape () or (channels,)).
    @return The output's canonical hash.
    """
    assert len(inputs) == 3, "op_check: requantize takes 3 inputs"
    out_dtype: String[5] = self._out_dtype(params, "int8")
    dims: DynArray[uint256, _MAX_NDIM] = inputs[0].dims
    channels: uint256 = 1
    if len(dims) > 0:
        channels = dims[len(dims) - 1]
    self._check_channelwise(inputs[1].dims, channels)
    self._check_channelwise(inputs[2].dims, channels)
    assert inputs[1].dtype == "int32" and inputs[2].dtype == "int32", (
        "op_check: multiplier and shift must be int32"
    )
    acc: DynArray[int256, _MAX_ELEMENTS] = self._values(inputs[0])
    ms: DynArray[int256, _MAX_ELEMENTS] = self._values(inputs[1])
    shifts: DynArray[int256, _MAX_ELEMENTS] = self._values(inputs[2])
    for m: int256 in ms:
        assert m >= 0, "op_check: multiplier must be >= 0"
    for s: int256 in shifts:
        assert s >= _MIN_SHIFT and s <= _MAX_SHIFT, "op_check: shift must be in [17, 62]"
    if len(dims) == 0 and (len(inputs[1].dims) == 1 or len(inputs[2].dims) == 1):
        dims = [1]  # numpy broadcasting: a scalar acc with (1,) multiplier or shift
    lo: int256 = 0
    hi: int256 = 0
    lo, hi = self._range(out_dtype)
    out: DynArray[int256, _MAX_ELEMENTS] = []
    for i: uint256 in range(_MAX_ELEMENTS):
        if i == len(acc):
            break
        a: int256 = acc[i]
        assert a < _ACC_LIMIT and a > -_ACC_LIMIT, "op_check: accumulator magnitude is >= 2^47"
        m: int256 = ms[0]
        if len(ms) > 1:
            m = ms[i % channels]
        s: int256 = shifts[0]
        if len(shifts) > 1:
            s = shifts[i % channels]
        q: int256 = (a * m + (1 << convert(s - 1, uint256))) >> convert(s, uint256)
        out.append(max(lo, min(hi, q)))
    return self._output_hash(out_dtype, dims, out)


# --- params ---------------------------------------------------------------------------------


@internal
@pure
def _out_dtype(params: Bytes[_MAX_PARAMS], fallback: String[5]) -> String[5]:
    """
    @dev The out_dtype of params that are {} or {"out_dtype": <dtype>}, canonical JSON.
    @param params The canonical params JSON.
    @param fallback The op's default out_dtype.
    @return The dtype name.
    """
    if params == b"{}":
        return fallback
    for d: String[5] in ["int8", "int16", "int32", "int64", "uint8"]:
        if params == concat(b'{"out_dtype":"', convert(d, Bytes[5]), b'"}'):
            return d
    raise "op_check: unsupported params"


# --- tensors --------------------------------------------------------------------------------


@internal
@pure
def _check_channelwise(dims: DynArray[uint256, _MAX_NDIM], channels: uint256):
    """
    @dev Requires a per-tensor or per-channel shape: () or (channels,).
    @param dims The shape of the multiplier or shift.
    @param channels The size of the last axis.
    """
    assert len(dims) == 0 or (len(dims) == 1 and dims[0] == channels), (
        "op_check: multiplier and shift must have shape () or (channels,)"
    )


@internal
@pure
def _hash(t: Tensor) -> bytes32:
    """
    @dev The canonical hash of a tensor, after checking its dtype, shape and data length.
    @param t The tensor.
    @return sha256 of the canonical bytes.
    """
    count: uint256 = self._count(t.dims)
    assert len(t.data) == count * self._size(t.dtype), "op_check: data length does not match the shape"
    return sha256(concat(self._header(t.dtype, t.dims), t.data))


@internal
@pure
def _output_hash(dtype: String[5], dims: DynArray[uint256, _MAX_NDIM], values: DynArray[int256, _MAX_ELEMENTS]) -> bytes32:
    """
    @dev The canonical hash of an op's output given by its values (each within the dtype).
    @param dtype The output dtype.
    @param dims The output shape (its element count is len(values)).
    @param values The elements, C order.
    @return sha256 of the canonical bytes.
    """
    size: uint256 = self._size(dtype)
    bits: uint256 = 8 * size
    per_word: uint256 = 32 // size
    mask: int256 = convert((1 << bits) - 1, int256)
    words: uint256[_MAX_WORDS] = empty(uint256[_MAX_WORDS])
    word: uint256 = 0
    n: uint256 = len(values)
    for i: uint256 in range(_MAX_ELEMENTS):
        if i == n:
            break
        j: uint256 = i % per_word
        word |= convert(values[i] & mask, uint256) << (bits * j)  # two's complement
        if j == per_word - 1 or i == n - 1:
            words[i // per_word] = self._swap(word)
            word = 0
    return sha256(concat(self._header(dtype, dims), slice(abi_encode(words), 0, n * size)))


@internal
@pure
def _values(t: Tensor) -> DynArray[int256, _MAX_ELEMENTS]:
    """
    @dev The elements of a tensor whose data length `_hash` has checked, as integers.
         One 32-byte word is read and byte-swapped at a time; each element is then one
         shift and mask of it (little endian within the word).
    @param t The tensor.
    @return Its elements, C order.
    """
    size: uint256 = self._size(t.dtype)
    bits: uint256 = 8 * size
    per_word: uint256 = 32 // size
    mask: uint256 = (1 << bits) - 1
    half: uint256 = 1 << (bits - 1)
    full: int256 = convert(1 << bits, int256)
    signed: bool = t.dtype != "uint8"
    count: uint256 = len(t.data) // size
    padded: Bytes[_MAX_DATA + 32] = concat(t.data, empty(bytes32))
    out: DynArray[int256, _MAX_ELEMENTS] = []
    word: uint256 = 0
    for i: uint256 in range(_MAX_ELEMENTS):
        if i == count:
            break
        j: uint256 = i % per_word
        if j == 0:
            word = self._swap(convert(extract32(padded, i * size), uint256))
        raw: uint256 = (word >> (bits * j)) & mask
        if signed and raw >= half:
            out.append(convert(raw, int256) - full)
        else:
            out.append(convert(raw, int256))
    return out


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
    @dev Number of elements of a shape, bounded by `_MAX_ELEMENTS`.
    @param dims The shape.
    @return The product of the dims (1 for a scalar).
    """
    count: uint256 = 1
    for d: uint256 in dims:
        assert d <= _MAX_ELEMENTS, "op_check: tensor too large to check on chain"
        count *= d
    assert count <= _MAX_ELEMENTS, "op_check: tensor too large to check on chain"
    return count


@internal
@pure
def _size(dtype: String[5]) -> uint256:
    """
    @dev Bytes per element of an allowed dtype.
    @param dtype The dtype name.
    @return 1, 2, 4 or 8.
    """
    if dtype == "int8" or dtype == "uint8":
        return 1
    if dtype == "int16":
        return 2
    if dtype == "int32":
        return 4
    if dtype == "int64":
        return 8
    raise "op_check: dtype must be int8, int16, int32, int64 or uint8"


@internal
@pure
def _range(dtype: String[5]) -> (int256, int256):
    """
    @dev The smallest and largest value of an allowed dtype.
    @param dtype The dtype name.
    @return (min, max).
    """
    if dtype == "uint8":
        return 0, 255
    bits: uint256 = 8 * self._size(dtype)
    top: int256 = convert(1 << (bits - 1), int256)
    return -top, top - 1


@internal
@pure
def _header(dtype: String[5], dims: DynArray[uint256, _MAX_NDIM]) -> Bytes[80]:
    """
    @dev The canonical header: dtype name || 0x00 || ndim (u8) || dims (u64 big endian).
    @param dtype The dtype name.
    @param dims The shape.
    @return The header bytes.
    """
    words: uint256[2] = [0, 0]
    for i: uint256 in range(_MAX_NDIM):
        if i == len(dims):
            break
        assert dims[i] < 2**64, "op_check: dimension above 2**64 - 1"
        words[i // 4] |= dims[i] << (64 * (3 - i % 4))
    packed: Bytes[64] = concat(convert(words[0], bytes32), convert(words[1], bytes32))
    return concat(
        convert(dtype, Bytes[5]),
        x"00",
        slice(convert(len(dims), bytes32), 31, 1),
        slice(packed, 0, 8 * len(dims)),
    )
