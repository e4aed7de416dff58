"""The Merkle tree every commitment in verimesh rests on."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from verimesh.crypto.merkle import (
    MerkleError,
    MerkleProof,
    MerkleTree,
    bind_root,
    leaf_hash,
    merkle_root,
    node_hash,
    verify_proof,
)

leaves_st = st.lists(st.binary(max_size=40), min_size=1, max_size=70)


@given(leaves_st, st.data())
def test_every_leaf_proves_against_the_root(leaves, data):
    tree = MerkleTree.from_leaves(leaves)
    i = data.draw(st.integers(0, len(leaves) - 1))
    assert verify_proof(tree.root, leaf_hash(leaves[i]), tree.proof(i))


@given(leaves_st, st.data())
def test_a_proof_does_not_prove_another_leaf_or_position(leaves, data):
    tree = MerkleTree.from_leaves(leaves)
    i = data.draw(st.integers(0, len(leaves) - 1))
    proof = tree.proof(i)
    assert not verify_proof(tree.root, leaf_hash(leaves[i] + b"x"), proof)
    if len(leaves) > 1:
        j = (i + 1) % len(leaves)
        if leaves[j] != leaves[i]:
            moved = MerkleProof(j, proof.leaf_count, proof.siblings)
            assert not verify_proof(tree.root, leaf_hash(leaves[i]), moved)


def test_an_inner_node_cannot_be_passed_off_as_a_leaf():
    tree = MerkleTree.from_leaves([b"a", b"b", b"c", b"d"])
    inner = node_hash(leaf_hash(b"a"), leaf_hash(b"b"))
    forged = MerkleTree([inner, node_hash(leaf_hash(b"c"), leaf_hash(b"d"))])
    assert forged.top == tree.top
    assert forged.root != tree.root  # the count binds the root
    assert not verify_proof(tree.root, inner, MerkleProof(0, 2, (forged.leaf(1),)))


def test_root_binds_the_leaf_count():
    assert merkle_root([b"a", b"b", b"c"]) != merkle_root([b"a", b"b", b"c", b"c"])
    assert MerkleTree([]).root == bind_root(0, bytes(32))


def test_odd_levels_carry_the_last_node_up():
    a, b, c = (leaf_hash(x) for x in (b"a", b"b", b"c"))
    assert MerkleTree([a, b, c]).top == node_hash(node_hash(a, b), c)


def test_malformed_proofs_are_rejected_not_crashing():
    tree = MerkleTree.from_leaves([b"a", b"b", b"c"])
    proof = tree.proof(2)
    assert not verify_proof(tree.root, leaf_hash(b"c"), MerkleProof(2, 3, ()))
    assert not verify_proof(tree.root, leaf_hash(b"c"), MerkleProof(2, 3, (*proof.siblings, b"\0" * 32)))
    assert not verify_proof(tree.root, leaf_hash(b"c"), MerkleProof(3, 3, proof.siblings))
    with pytest.raises(MerkleError, match="outside a tree of 3 leaves"):
        tree.proof(3)
    with pytest.raises(MerkleError, match="malformed"):
        MerkleProof.from_json({"index": 1})


def test_proof_json_round_trip():
    tree = MerkleTree.from_leaves([bytes([i]) for i in range(9)])
    proof = tree.proof(8)
    assert MerkleProof.from_json(proof.to_json()) == proof


def test_blob_root_is_the_tree_over_fixed_chunks():
    from verimesh.crypto.merkle import CHUNK_SIZE, blob_root, blob_tree, chunk_count

    data = bytes(range(256)) * (CHUNK_SIZE // 256) * 2 + b"tail"
    tree = blob_tree(data)
    assert tree.leaf_count == chunk_count(len(data)) == 3
    assert blob_root(data) == merkle_root([data[:CHUNK_SIZE], data[CHUNK_SIZE : 2 * CHUNK_SIZE], b"tail"])
    assert verify_proof(blob_root(data), leaf_hash(b"tail"), tree.proof(2))
    assert chunk_count(0) == 0 and blob_root(b"") == MerkleTree([]).root
