"""Gas of one on-chain Merkle proof check (merkle.vy) for trees of 1k and 1M leaves.

Run: .venv/bin/python bench/bench_merkle_gas.py
Calls the test wrapper (tests/crypto/MerkleHarness.vy, which imports the module) in the
in-process EVM and reports, per tree size: proof length, execution gas of ``verify``
(ABI decoding of the proof included), and the calldata gas a transaction would add for
the proof (EIP-2028 prices: 16 per non-zero byte, 4 per zero byte). Leaf 0 has the
longest path (ceil(log2 n) siblings); the last leaf of an odd-sized tree skips the levels
where it is carried up, so its proof is shorter.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import boa

from verimesh.crypto.merkle import MerkleTree

HARNESS = Path(__file__).resolve().parents[1] / "tests" / "crypto" / "MerkleHarness.vy"


def calldata_gas(data: bytes) -> int:
    return sum(16 if b else 4 for b in data)


def main() -> None:
    harness = boa.load(str(HARNESS))
    print(f"{'leaves':>10} {'index':>10} {'siblings':>8} {'exec gas':>9} {'calldata gas':>12} {'tx total':>9}")
    for n in (1_000, 1_000_000):
        tree = MerkleTree([hashlib.sha256(i.to_bytes(8, "big")).digest() for i in range(n)])
        for index in (0, n - 1):
            siblings = list(tree.proof(index).siblings)
            args = (tree.root, tree.leaf(index), index, n, siblings)
            assert harness.verify(*args)
            exec_gas = harness._computation.get_gas_used()
            cd_gas = calldata_gas(harness.verify.prepare_calldata(*args))
            total = 21_000 + cd_gas + exec_gas
            print(f"{n:>10,} {index:>10,} {len(siblings):>8} {exec_gas:>9,} {cd_gas:>12,} {total:>9,}")


if __name__ == "__main__":
    main()
