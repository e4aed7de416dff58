"""Write ``merkle_vectors.json``: the vectors both Merkle verifiers (Python, Vyper) must pass.

Run from the repository root: ``.venv/bin/python tests/crypto/gen_merkle_vectors.py``.
The output is deterministic; ``test_merkle_vectors.py`` fails if the file is stale.

Valid cases: trees of 1..33 leaves, a proof for every index. Invalid cases: each one breaks
exactly one thing a proof binds (leaf, index, count, sibling order, length, root, prefix).
``malformed`` marks the invalid cases whose shape is wrong (not just their hashes): there
``root_from_proof`` raises in Python and reverts in Vyper instead of returning a root.
"""

from __future__ import annotations

import json
from pathlib import Path

from verimesh.crypto.merkle import MerkleProof, MerkleTree, leaf_hash, node_hash

VECTORS_PATH = Path(__file__).with_name("merkle_vectors.json")
MAX_LEAVES = 33


def _hex(b: bytes) -> str:
    return "0x" + b.hex()


def leaf_data(leaf_count: int, index: int) -> bytes:
    return f"verimesh vector {leaf_count}/{index}".encode()


def siblings_needed(index: int, leaf_count: int) -> int:
    """How many siblings the path of ``index`` in a ``leaf_count``-leaf tree uses.

    Written from the tree's shape rather than from ``root_from_proof``, so the ``malformed``
    flag in the file is an independent statement about each proof.
    """
    needed, i, width = 0, index, leaf_count
    while width > 1:
        if i % 2 == 1 or i + 1 < width:
            needed += 1
        i //= 2
        width = (width + 1) // 2
    return needed


def is_malformed(proof: MerkleProof) -> bool:
    if not 0 <= proof.index < proof.leaf_count < 2**64:
        return True
    return len(proof.siblings) != siblings_needed(proof.index, proof.leaf_count)


def _invalid(name: str, root: bytes, digest: bytes, proof: MerkleProof) -> dict:
    return {
        "name": name,
        "root": _hex(root),
        "leaf_digest": _hex(digest),
        "index": proof.index,
        "leaf_count": proof.leaf_count,
        "siblings": [_hex(s) for s in proof.siblings],
        "malformed": is_malformed(proof),
    }


def invalid_cases() -> list[dict]:
    cases: list[dict] = []
    for n in (1, 2, 3, 5, 8, 13, 33):
        tree = MerkleTree.from_leaves(leaf_data(n, i) for i in range(n))
        i = n // 2
        p = tree.proof(i)
        leaf, root = tree.leaf(i), tree.root
        tag = f"n={n} i={i}"
        cases.append(_invalid(f"{tag}: wrong leaf", root, leaf_hash(b"not a leaf"), p))
        cases.append(_invalid(f"{tag}: raw leaf data instead of its hash", root, leaf_data(n, i).ljust(32, b"\0")[:32], p))
        cases.append(_invalid(f"{tag}: tampered root", bytes([root[0] ^ 1]) + root[1:], leaf, p))
        cases.append(_invalid(f"{tag}: index = leaf count", root, leaf, MerkleProof(n, n, p.siblings)))
        cases.append(_invalid(f"{tag}: huge index", root, leaf, MerkleProof(2**255, n, p.siblings)))
        cases.append(_invalid(f"{tag}: leaf count too big for 64 bits", root, leaf, MerkleProof(i, 2**64 + n, p.siblings)))
        cases.append(_invalid(f"{tag}: proof one sibling too long", root, leaf, MerkleProof(i, n, (*p.siblings, leaf))))
        cases.append(_invalid(f"{tag}: claims one more leaf", root, leaf, MerkleProof(i, n + 1, p.siblings)))
        if p.siblings:
            cases.append(_invalid(f"{tag}: proof one sibling short", root, leaf, MerkleProof(i, n, p.siblings[:-1])))
            flipped = bytes([p.siblings[0][0] ^ 0x80]) + p.siblings[0][1:]
            cases.append(_invalid(f"{tag}: tampered sibling", root, leaf, MerkleProof(i, n, (flipped, *p.siblings[1:]))))
        if len(p.siblings) > 1:
            swapped = (p.siblings[1], p.siblings[0], *p.siblings[2:])
            cases.append(_invalid(f"{tag}: siblings out of order", root, leaf, MerkleProof(i, n, swapped)))
        if n > 1:
            j = (i + 1) % n
            cases.append(_invalid(f"{tag}: proof moved to index {j}", root, leaf, MerkleProof(j, n, p.siblings)))
        if n >= 4:
            # An inner node offered as a leaf of a tree with half the leaves.
            inner = node_hash(tree.leaf(0), tree.leaf(1))
            half = MerkleTree([inner, *[tree.leaf(k) for k in range(2, n)]])
            cases.append(_invalid(f"{tag}: inner node as leaf", root, inner, MerkleProof(0, n - 1, half.proof(0).siblings)))
    empty = MerkleTree([])
    cases.append(_invalid("empty tree has no leaf 0", empty.root, leaf_hash(b""), MerkleProof(0, 0, ())))
    return cases


def build() -> dict:
    trees = []
    for n in range(1, MAX_LEAVES + 1):
        leaves = [leaf_data(n, i) for i in range(n)]
        tree = MerkleTree.from_leaves(leaves)
        trees.append(
            {
                "leaf_count": n,
                "leaves": [_hex(x) for x in leaves],
                "root": _hex(tree.root),
                "proofs": [[_hex(s) for s in tree.proof(i).siblings] for i in range(n)],
            }
        )
    invalid = invalid_cases()
    return {
        "scheme": "leaf=sha256(0x00||data) node=sha256(0x01||l||r) odd-carried root=sha256(0x02||u64be(n)||top)",
        "trees": trees,
        "invalid": invalid,
    }


def render() -> str:
    return json.dumps(build(), indent=1) + "\n"


if __name__ == "__main__":
    VECTORS_PATH.write_text(render())
    print(f"wrote {VECTORS_PATH}")
