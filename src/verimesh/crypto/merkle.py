"""Binary Merkle trees over sha256, shared by traces, the blob store and the contracts.

Why this exact shape:
- Leaves and inner nodes are hashed with different one-byte prefixes (0x00 / 0x01), so an
  inner node can never be passed off as a leaf (the second-preimage attack on naive trees).
- A level with an odd number of nodes carries its last node up unchanged instead of
  duplicating it, so two different leaf lists never share a tree.
- The published root binds the leaf count: ``root = sha256(0x02 || n as uint64 || top)``.
  A proof therefore needs no trusted side channel for the tree's size, and bisection over a
  trace can rely on both parties agreeing on how many operations there were.

``verify_proof`` here and ``merkle.vy`` in ``verimesh.chain.contracts`` implement the same
check; ``tests/crypto/merkle_vectors.json`` pins both to the same vectors.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

LEAF_PREFIX = b"\x00"
NODE_PREFIX = b"\x01"
ROOT_PREFIX = b"\x02"
HASH_SIZE = 32
# Deep enough for 2^64 leaves; the Vyper verifier uses the same bound for its loop.
MAX_DEPTH = 64
EMPTY_TOP = bytes(HASH_SIZE)


class MerkleError(ValueError):
    """A proof or a tree request that cannot be satisfied (bad index, wrong length...)."""


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def leaf_hash(data: bytes) -> bytes:
    """Hash of one leaf's bytes, domain-separated from inner nodes."""
    return sha256(LEAF_PREFIX + data)


def node_hash(left: bytes, right: bytes) -> bytes:
    return sha256(NODE_PREFIX + left + right)


def bind_root(leaf_count: int, top: bytes) -> bytes:
    """Root published for a tree of ``leaf_count`` leaves whose top node is ``top``."""
    if not 0 <= leaf_count < 2**64:
        raise MerkleError(f"leaf count {leaf_count} does not fit in 64 bits")
    return sha256(ROOT_PREFIX + leaf_count.to_bytes(8, "big") + top)


@dataclass(frozen=True)
class MerkleProof:
    """Inclusion proof of the leaf at ``index`` in a tree of ``leaf_count`` leaves.

    ``siblings`` lists the sibling hashes from the leaf level upwards, skipping levels where
    the node had no sibling (it was carried up).
    """

    index: int
    leaf_count: int
    siblings: tuple[bytes, ...]

    def to_json(self) -> dict:
        return {
            "index": self.index,
            "leaf_count": self.leaf_count,
            "siblings": ["0x" + s.hex() for s in self.siblings],
        }

    @classmethod
    def from_json(cls, obj: dict) -> MerkleProof:
        try:
            siblings = tuple(bytes.fromhex(str(s).removeprefix("0x")) for s in obj["siblings"])
            return cls(int(obj["index"]), int(obj["leaf_count"]), siblings)
        except (KeyError, TypeError, ValueError) as exc:
            raise MerkleError(f"malformed Merkle proof: {exc}") from exc


class MerkleTree:
    """A tree built once from leaf hashes; keeps every level so proofs cost O(log n)."""

    def __init__(self, leaf_hashes: Sequence[bytes]) -> None:
        for h in leaf_hashes:
            if len(h) != HASH_SIZE:
                raise MerkleError(f"leaf hash must be {HASH_SIZE} bytes, got {len(h)}")
        self._levels: list[list[bytes]] = [list(leaf_hashes)]
        while len(self._levels[-1]) > 1:
            level = self._levels[-1]
            up = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
            if len(level) % 2:
                up.append(level[-1])
            self._levels.append(up)

    @classmethod
    def from_leaves(cls, leaves: Iterable[bytes]) -> MerkleTree:
        """Tree over raw leaf bytes (each is hashed with the leaf prefix)."""
        return cls([leaf_hash(x) for x in leaves])

    @property
    def leaf_count(self) -> int:
        return len(self._levels[0])

    @property
    def top(self) -> bytes:
        return self._levels[-1][0] if self.leaf_count else EMPTY_TOP

    @property
    def root(self) -> bytes:
        return bind_root(self.leaf_count, self.top)

    def leaf(self, index: int) -> bytes:
        self._check_index(index)
        return self._levels[0][index]

    def proof(self, index: int) -> MerkleProof:
        self._check_index(index)
        siblings: list[bytes] = []
        i = index
        for level in self._levels[:-1]:
            sibling = i ^ 1
            if sibling < len(level):
                siblings.append(level[sibling])
            i //= 2
        return MerkleProof(index, self.leaf_count, tuple(siblings))

    def _check_index(self, index: int) -> None:
        if not 0 <= index < self.leaf_count:
            raise MerkleError(f"leaf index {index} is outside a tree of {self.leaf_count} leaves")


def merkle_root(leaves: Iterable[bytes]) -> bytes:
    """Root over raw leaf bytes."""
    return MerkleTree.from_leaves(leaves).root


def proof_nodes(leaf_digest: bytes, proof: MerkleProof) -> tuple[bytes, list[tuple[int, int, bytes]]]:
    """Root implied by a leaf hash and its proof, and every node the proof reveals on the way
    as ``(level, position, hash)``: the path from the leaf up and the siblings beside it
    (level 0 holds the leaves). Bisection compares traces through these nodes; raises
    ``MerkleError`` on a malformed proof."""
    if not 0 <= proof.index < proof.leaf_count:
        raise MerkleError(f"leaf index {proof.index} is outside a tree of {proof.leaf_count} leaves")
    node, i, width, used, level = leaf_digest, proof.index, proof.leaf_count, 0, 0
    revealed = [(0, i, node)]
    while width > 1:
        if i % 2 == 1 or i + 1 < width:
            if used == len(proof.siblings):
                raise MerkleError("Merkle proof is too short for its tree")
            sibling = proof.siblings[used]
            used += 1
            revealed.append((level, i ^ 1, sibling))
            node = node_hash(sibling, node) if i % 2 else node_hash(node, sibling)
        i //= 2
        width = (width + 1) // 2
        level += 1
        revealed.append((level, i, node))
    if used != len(proof.siblings):
        raise MerkleError("Merkle proof is too long for its tree")
    return bind_root(proof.leaf_count, node), revealed


def root_from_proof(leaf_digest: bytes, proof: MerkleProof) -> bytes:
    """Root implied by a leaf hash and its proof; raises ``MerkleError`` on a malformed proof."""
    return proof_nodes(leaf_digest, proof)[0]


def verify_proof(root: bytes, leaf_digest: bytes, proof: MerkleProof) -> bool:
    """True iff ``leaf_digest`` sits at ``proof.index`` of the tree whose root is ``root``."""
    try:
        return root_from_proof(leaf_digest, proof) == root
    except MerkleError:
        return False


# Blobs (models, inputs, outputs) are cut into fixed chunks so that a peer can serve, and a
# fetcher verify, any chunk on its own. 256 KiB keeps proofs short and retries cheap.
CHUNK_SIZE = 256 * 1024


def chunk_count(size: int, chunk_size: int = CHUNK_SIZE) -> int:
    """Number of chunks of a blob of ``size`` bytes (0 for the empty blob)."""
    if size < 0:
        raise MerkleError(f"blob size must be >= 0, got {size}")
    return -(-size // chunk_size)


def iter_chunks(data: bytes, chunk_size: int = CHUNK_SIZE) -> Iterable[bytes]:
    view = memoryview(data)
    for start in range(0, len(data), chunk_size):
        yield bytes(view[start : start + chunk_size])


def blob_tree(data: bytes, chunk_size: int = CHUNK_SIZE) -> MerkleTree:
    """Tree whose leaves are the blob's chunks; proofs from it verify single chunks."""
    return MerkleTree.from_leaves(iter_chunks(data, chunk_size))


def blob_root(data: bytes, chunk_size: int = CHUNK_SIZE) -> bytes:
    """Content id of a blob: the Merkle root over its fixed-size chunks."""
    return blob_tree(data, chunk_size).root
