# pragma version ~=0.4.3
"""
@title verimesh OpCheck (small integer ops recomputed on chain)
@custom:contract-name OpCheck
@license Apache-2.0
@notice The one-op recompute of a dispute, done by the EVM itself for ops small enough to
        afford: the canonical tensor hash of the runtime (verimesh.runtime.tensor:
        sha256(dtype name || 0x00 || ndim (u8) || dims (u64 big endian) || data, C order,
        little endian)) and the `requantize` op (verimesh.runtime.ops.linear: out =
        clip_int8(round(acc * m / 2^shift)) = clip((acc * m + 2^(shift - 1)) >> shift),
        multiplier and shift per tensor or per channel). Given the op's input tensors, a
        contract (or anyone, as a view) gets the hash of the output the runtime must
        produce, and compares it with each party's claimed output hash: no committee needed
        for such an op. Stateless: pure functions only.
@custom:security
        - Bounds: at most `_MAX_ELEMENTS` elements and 8 dimensions; the data length must be
          exactly elements x dtype size, so a truncated or padded tensor is refused, never
          silently reinterpreted.
        - The same input checks as the runtime: multiplier >= 0, shift in [17, 62],
          |acc| < 2^47, multiplier and shift of shape () or (channels,).
"""

# Most elements a tensor may have here (requantize: ~2.7k gas per element, docs/verification.md).
_MAX_ELEMENTS: constant(uint256) = 256
# int64 x _MAX_ELEMENTS bytes.
_MAX_DATA: constant(uint256) = 2048
_MAX_NDIM: constant(uint256) = 8
# The runtime's requantize bounds (verimesh.runtime.fixed).
_MIN_SHIFT: constant(int256) = 17
_MAX_SHIFT: constant(int256) = 62
_ACC_LIMIT: constant(int256) = 2**47


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
    count: uint256 = self._count(dims)
    assert len(data) == count * self._size(dtype), "op_check: data length does not match the shape"
    return sha256(concat(self._header(dtype, dims), data))


@external
@pure
def requantize_hash(
    acc_dtype: String[5],
    dims: DynArray[uint256, _MAX_NDIM],
    acc: Bytes[_MAX_DATA],
    multipliers: DynArray[int256, _MAX_ELEMENTS],
    shifts: DynArray[int256, _MAX_ELEMENTS],
) -> bytes32:
    """
    @dev The canonical hash of requantize(acc, multiplier, shift) with int8 output, the
         runtime's `requantize` op: clip_int8((acc * m + 2^(shift - 1)) >> shift).
    @param acc_dtype "int32" or "int64".
    @param dims The accumulator's shape (the output has the same shape).
    @param acc The accumulator's elements, C order, little endian.
    @param multipliers One value, or one per channel (last dimension); each >= 0, < 2^31.
    @param shifts One value, or one per channel; each in [17, 62].
    @return sha256 of the output's canonical bytes.
    """
    size: uint256 = self._size(acc_dtype)
    assert size == 4 or size == 8, "op_check: requantize takes an int32 or int64 accumulator"
    count: uint256 = self._count(dims)
    assert len(acc) == count * size, "op_check: data length does not match the shape"
    channels: uint256 = 1
    if len(dims) > 0:
        channels = dims[len(dims) - 1]
    assert len(multipliers) == 1 or len(multipliers) == channels, (
        "op_check: multiplier must have one value or one per channel"
    )
    assert len(shifts) == 1 or len(shifts) == channels, (
        "op_check: shift must have one value or one per channel"
    )
    for m: int256 in multipliers:
        assert m >= 0 and m < 2**31, "op_check: multiplier out of range"
    for s: int256 in shifts:
        assert s >= _MIN_SHIFT and s <= _MAX_SHIFT, "op_check: shift must be in [17, 62]"

    # int8 output bytes, 32 per word, first element in a word's most significant byte
    words: uint256[_MAX_ELEMENTS // 32] = empty(uint256[_MAX_ELEMENTS // 32])
    for i: uint256 in range(_MAX_ELEMENTS):
        if i == count:
            break
        a: int256 = self._element(acc, i, size)
        assert a < _ACC_LIMIT and a > -_ACC_LIMIT, "op_check: accumulator magnitude is >= 2^47"
        channel: uint256 = i % channels
        m: int256 = multipliers[0]
        if len(multipliers) > 1:
            m = multipliers[channel]
        s: int256 = shifts[0]
        if len(shifts) > 1:
            s = shifts[channel]
        q: int256 = (a * m + (1 << convert(s - 1, uint256))) >> convert(s, uint256)
        q = max(-128, min(127, q))
        words[i // 32] |= convert(q & 255, uint256) << (8 * (31 - i % 32))  # two's complement
    out: Bytes[_MAX_ELEMENTS] = concat(
        convert(words[0], bytes32),
        convert(words[1], bytes32),
        convert(words[2], bytes32),
        convert(words[3], bytes32),
        convert(words[4], bytes32),
        convert(words[5], bytes32),
        convert(words[6], bytes32),
        convert(words[7], bytes32),
    )
    return sha256(concat(self._header("int8", dims), slice(out, 0, count)))


@internal
@pure
def _element(data: Bytes[_MAX_DATA], index: uint256, size: uint256) -> int256:
    """
    @dev The signed little-endian integer of `size` bytes at element `index`.
    @param data The tensor data.
    @param index The element.
    @param size Bytes per element (4 or 8).
    @return Its value.
    """
    raw: uint256 = 0
    start: uint256 = index * size
    for j: uint256 in range(8):
        if j == size:
            break
        raw |= convert(slice(data, start + j, 1), uint256) << (8 * j)
    value: int256 = convert(raw, int256)
    if raw >= 1 << (8 * size - 1):
        value -= convert(1 << (8 * size), int256)
    return value


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
