# pragma version ~=0.4.3
"""
@title Test-only wrapper around the merkle module
@notice Exposes `merkle.vy`'s internal functions so tests and benches can call them. It
        finds the module through the Python search path (the installed package).
"""

from verimesh.chain.contracts import merkle


@external
@pure
def verify(
    root: bytes32,
    leaf_digest: bytes32,
    index: uint256,
    leaf_count: uint256,
    siblings: DynArray[bytes32, 64],
) -> bool:
    return merkle._verify(root, leaf_digest, index, leaf_count, siblings)


@external
@pure
def root_from_proof(
    leaf_digest: bytes32, index: uint256, leaf_count: uint256, siblings: DynArray[bytes32, 64]
) -> bytes32:
    return merkle._root_from_proof(leaf_digest, index, leaf_count, siblings)


@external
@pure
def leaf_hash(data: Bytes[1024]) -> bytes32:
    return merkle._leaf_hash(data)
