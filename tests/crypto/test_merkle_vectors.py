"""Python and Vyper Merkle verifiers against the same shared vectors, and against each other."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import boa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from verimesh.crypto.merkle import (
    MerkleError,
    MerkleProof,
    MerkleTree,
    leaf_hash,
    root_from_proof,
    verify_proof,
)

HERE = Path(__file__).parent
VECTORS = json.loads((HERE / "merkle_vectors.json").read_text())


def _b(h: str) -> bytes:
    return bytes.fromhex(h.removeprefix("0x"))


@pytest.fixture(scope="module")
def harness():
    return boa.load(str(HERE / "MerkleHarness.vy"))


def _valid_cases():
    for tree in VECTORS["trees"]:
        for index, siblings in enumerate(tree["proofs"]):
            yield tree, index, [_b(s) for s in siblings]


def test_vectors_file_is_up_to_date():
    spec = importlib.util.spec_from_file_location("gen_merkle_vectors", HERE / "gen_merkle_vectors.py")
    assert spec is not None and spec.loader is not None
    generator = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generator)
    assert (HERE / "merkle_vectors.json").read_text() == generator.render(), (
        "merkle_vectors.json is stale: run .venv/bin/python tests/crypto/gen_merkle_vectors.py"
    )


def test_vectors_cover_1_to_33_leaves_and_every_index():
    assert [t["leaf_count"] for t in VECTORS["trees"]] == list(range(1, 34))
    assert all(len(t["proofs"]) == t["leaf_count"] for t in VECTORS["trees"])
    assert len(VECTORS["invalid"]) > 50
    assert any(c["malformed"] for c in VECTORS["invalid"])
    assert any(not c["malformed"] for c in VECTORS["invalid"])


def test_python_accepts_every_valid_vector():
    for tree, index, siblings in _valid_cases():
        n = tree["leaf_count"]
        assert MerkleTree.from_leaves(_b(x) for x in tree["leaves"]).root == _b(tree["root"])
        proof = MerkleProof(index, n, tuple(siblings))
        assert verify_proof(_b(tree["root"]), leaf_hash(_b(tree["leaves"][index])), proof)


def test_vyper_accepts_every_valid_vector(harness):
    for tree, index, siblings in _valid_cases():
        n = tree["leaf_count"]
        digest = leaf_hash(_b(tree["leaves"][index]))
        assert harness.verify(_b(tree["root"]), digest, index, n, siblings), (n, index)


def test_vyper_root_and_leaf_hash_match_python(harness):
    # Each EVM call costs milliseconds: the ends of every tree cover both path shapes.
    for tree, index, siblings in _valid_cases():
        n = tree["leaf_count"]
        if index not in (0, n - 1):
            continue
        leaf = _b(tree["leaves"][index])
        assert harness.leaf_hash(leaf) == leaf_hash(leaf)
        assert harness.root_from_proof(leaf_hash(leaf), index, n, siblings) == _b(tree["root"])
    assert harness.leaf_hash(b"") == leaf_hash(b"")
    assert harness.leaf_hash(b"\xff" * 1024) == leaf_hash(b"\xff" * 1024)


@pytest.mark.parametrize("case", VECTORS["invalid"], ids=lambda c: c["name"])
def test_both_reject_every_invalid_vector(harness, case):
    root, digest = _b(case["root"]), _b(case["leaf_digest"])
    siblings = [_b(s) for s in case["siblings"]]
    index, n = case["index"], case["leaf_count"]
    proof = MerkleProof(index, n, tuple(siblings))
    assert not verify_proof(root, digest, proof)
    assert not harness.verify(root, digest, index, n, siblings)
    if case["malformed"]:
        with pytest.raises(MerkleError):
            root_from_proof(digest, proof)
        with boa.reverts("merkle: malformed proof (index, leaf count or sibling count)"):
            harness.root_from_proof(digest, index, n, siblings)
    else:
        assert harness.root_from_proof(digest, index, n, siblings) == root_from_proof(digest, proof)


@settings(max_examples=50, deadline=None)
@given(
    leaves=st.lists(st.binary(max_size=48), min_size=1, max_size=300),
    data=st.data(),
)
def test_vyper_and_python_agree_on_random_trees_and_tampering(harness, leaves, data):
    tree = MerkleTree.from_leaves(leaves)
    n = tree.leaf_count
    index = data.draw(st.integers(0, n - 1), label="index")
    proof = tree.proof(index)
    siblings = list(proof.siblings)
    assert harness.verify(tree.root, tree.leaf(index), index, n, siblings)
    # Any of: another index, another claimed count, a dropped or altered sibling.
    claimed_index = data.draw(st.integers(0, n + 2), label="claimed index")
    claimed_count = data.draw(st.integers(0, n + 4), label="claimed count")
    if siblings and data.draw(st.booleans(), label="tamper a sibling"):
        k = data.draw(st.integers(0, len(siblings) - 1), label="sibling")
        siblings[k] = bytes([siblings[k][0] ^ 1]) + siblings[k][1:]
    claimed = MerkleProof(claimed_index, claimed_count, tuple(siblings))
    expected = verify_proof(tree.root, tree.leaf(index), claimed)
    assert harness.verify(tree.root, tree.leaf(index), claimed_index, claimed_count, siblings) == expected
