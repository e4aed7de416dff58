# pragma version ~=0.4.3
"""
@title Merkle inclusion proofs (verimesh scheme)
@notice A stateless module that checks that a leaf sits at a given index of a verimesh
        Merkle tree. It is the on-chain twin of `verimesh.crypto.merkle.root_from_proof`:
        leaf = sha256(0x00 || data), node = sha256(0x01 || left || right), a level with
        an odd number of nodes carries its last node up unchanged, and the published root
        is sha256(0x02 || uint64_be(leaf_count) || top). Contracts beside it import it
        with `from . import merkle` (works with `verimesh.chain.compile` and boa); code
        elsewhere with `from verimesh.chain.contracts import merkle` (found through the
        Python search path). Call `merkle._verify(...)`; the module has no storage, so it
        needs no `uses`/`initializes`.
@custom:security
        - Domain separation: the 0x00/0x01 prefixes stop an inner node from being
          presented as a leaf (second-preimage attack on naive trees).
        - The root binds the leaf count, so a proof cannot claim a different tree size,
          and `index < leaf_count` is enforced.
        - A proof must use exactly the siblings its (index, leaf_count) path needs: a
          short or long proof is rejected, never silently padded or truncated.
        - Loops are bounded by `_MAX_DEPTH` (2^64 leaves), the same bound as the Python side.
        - `tests/crypto/merkle_vectors.json` pins this module and the Python code to the
          same vectors.
"""

# Deepest tree a proof may describe: leaf_count < 2^64 needs at most 64 levels.
_MAX_DEPTH: constant(uint256) = 64
# Leaf counts are bound into the root as 8 big-endian bytes.
_MAX_LEAF_COUNT: constant(uint256) = 2**64 - 1
# Longest leaf payload `_leaf_hash` accepts; larger leaves are hashed off chain.
_MAX_LEAF_BYTES: constant(uint256) = 1024


@internal
@pure
def _leaf_hash(data: Bytes[_MAX_LEAF_BYTES]) -> bytes32:
    """
    @dev Hash of one leaf's bytes, domain-separated from inner nodes by the 0x00 prefix.
    @param data The leaf's raw bytes (at most `_MAX_LEAF_BYTES`).
    @return sha256(0x00 || data).
    """
    return sha256(concat(x"00", data))


@internal
@pure
def _node_hash(left: bytes32, right: bytes32) -> bytes32:
    """
    @dev Hash of an inner node from its two children.
    @param left The left child's hash.
    @param right The right child's hash.
    @return sha256(0x01 || left || right).
    """
    return sha256(concat(x"01", left, right))


@internal
@pure
def _bind_root(leaf_count: uint256, top: bytes32) -> bytes32:
    """
    @dev The published root of a tree: binds the leaf count so that the tree size is part
         of what a proof proves. `leaf_count` must be below 2^64 (checked by the callers).
    @param leaf_count Number of leaves of the tree.
    @param top The tree's top node (zero for the empty tree).
    @return sha256(0x02 || uint64_be(leaf_count) || top).
    """
    return sha256(concat(x"02", convert(convert(leaf_count, uint64), bytes8), top))


@internal
@pure
def _compute_root(
    leaf_digest: bytes32,
    index: uint256,
    leaf_count: uint256,
    siblings: DynArray[bytes32, _MAX_DEPTH],
) -> (bool, bytes32):
    """
    @dev Walks from the leaf to the top, using a sibling only on levels where the node
         has one (the last node of an odd level is carried up without a sibling).
    @param leaf_digest The leaf's hash (see `_leaf_hash`).
    @param index Position of the leaf, 0-based.
    @param leaf_count Number of leaves of the tree.
    @param siblings Sibling hashes from the leaf level upwards, skipping carried levels.
    @return (True, root) for a well-formed proof; (False, empty) when the index is out of
            range, the count does not fit in 64 bits, or the proof is too short or too long.
    """
    if index >= leaf_count or leaf_count > _MAX_LEAF_COUNT:
        return False, empty(bytes32)
    node: bytes32 = leaf_digest
    i: uint256 = index
    width: uint256 = leaf_count
    used: uint256 = 0
    for _level: uint256 in range(_MAX_DEPTH):
        if width <= 1:
            break
        if i % 2 == 1 or i + 1 < width:
            if used == len(siblings):
                return False, empty(bytes32)
            sibling: bytes32 = siblings[used]
            used += 1
            if i % 2 == 1:
                node = self._node_hash(sibling, node)
            else:
                node = self._node_hash(node, sibling)
        i = i // 2
        width = (width + 1) // 2
    if used != len(siblings):
        return False, empty(bytes32)
    return True, self._bind_root(leaf_count, node)


@internal
@pure
def _root_from_proof(
    leaf_digest: bytes32,
    index: uint256,
    leaf_count: uint256,
    siblings: DynArray[bytes32, _MAX_DEPTH],
) -> bytes32:
    """
    @dev The root a leaf and its proof imply; reverts on a malformed proof. Use it when
         the caller needs the root itself (e.g. to compare two parties' claims).
    @param leaf_digest The leaf's hash (see `_leaf_hash`).
    @param index Position of the leaf, 0-based.
    @param leaf_count Number of leaves of the tree.
    @param siblings Sibling hashes from the leaf level upwards, skipping carried levels.
    @return The bound root of the tree the proof describes.
    """
    ok: bool = False
    root: bytes32 = empty(bytes32)
    ok, root = self._compute_root(leaf_digest, index, leaf_count, siblings)
    assert ok, "merkle: malformed proof (index, leaf count or sibling count)"
    return root


@internal
@pure
def _verify(
    root: bytes32,
    leaf_digest: bytes32,
    index: uint256,
    leaf_count: uint256,
    siblings: DynArray[bytes32, _MAX_DEPTH],
) -> bool:
    """
    @dev True iff `leaf_digest` sits at `index` of the `leaf_count`-leaf tree whose root
         is `root`. Never reverts: a malformed proof is simply not a valid one.
    @param root The published (count-bound) root.
    @param leaf_digest The leaf's hash (see `_leaf_hash`).
    @param index Position of the leaf, 0-based.
    @param leaf_count Number of leaves of the tree.
    @param siblings Sibling hashes from the leaf level upwards, skipping carried levels.
    @return Whether the proof is well formed and leads to `root`.
    """
    ok: bool = False
    computed: bytes32 = empty(bytes32)
    ok, computed = self._compute_root(leaf_digest, index, leaf_count, siblings)
    return ok and computed == root
