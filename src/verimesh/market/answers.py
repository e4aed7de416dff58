"""A provider's answers to an epoch's pool: computed in the exact runtime, committed as one
Merkle root, opened item by item with proofs once the challenge seed says what is scored.

Answer bytes: an embedding is the canonical bytes of its int32 vector (the exact runtime's
output row); a generation is the UTF-8 text of the generated tokens. Both are deterministic
functions of (model root, input), so any validator holding the model can recompute them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from pydantic import BaseModel

from verimesh.crypto.merkle import MerkleError, MerkleProof, MerkleTree, leaf_hash, verify_proof
from verimesh.market.challenges import ChallengeError, TaskSpec
from verimesh.models.api import LoadedModel, output_bytes, run_job
from verimesh.runtime import canonical_bytes, from_canonical_bytes


def compute_answers(model: LoadedModel, spec: TaskSpec, inputs: list[str]) -> list[bytes]:
    """Answer bytes for each input, in order (an embedding does not depend on the other
    texts of its batch, so one answer recomputed alone is the same bytes)."""
    if spec.name == "embeddings":
        result = run_job(model, "embed", inputs, trace=False)
        vectors = from_canonical_bytes(output_bytes(result))
        return [canonical_bytes(np.ascontiguousarray(row)) for row in vectors]
    answers = []
    for prompt in inputs:
        result = run_job(model, "generate", prompt, {"max_tokens": spec.max_tokens}, trace=False)
        answers.append(str(result.output).encode("utf-8"))
    return answers


class AnswerOpening(BaseModel):
    """One opened answer: its bytes and the Merkle path to the committed root."""

    index: int
    data: bytes
    proof: dict  # MerkleProof.to_json()


@dataclass
class AnswerSheet:
    answers: list[bytes]

    def __post_init__(self) -> None:
        self.tree = MerkleTree.from_leaves(self.answers)

    @property
    def root(self) -> bytes:
        return self.tree.root

    def open(self, indices: list[int]) -> list[AnswerOpening]:
        return [AnswerOpening(index=i, data=self.answers[i], proof=self.tree.proof(i).to_json()) for i in indices]


def verify_openings(root: bytes, openings: list[AnswerOpening], pool_size: int) -> dict[int, bytes]:
    """index -> answer bytes, each checked against the committed ``root`` of a sheet of
    ``pool_size`` answers; raises ChallengeError on the first opening that does not verify."""
    out: dict[int, bytes] = {}
    for o in openings:
        try:
            proof = MerkleProof.from_json(o.proof)
        except MerkleError as exc:
            raise ChallengeError(f"opening {o.index}: {exc}") from None
        if proof.index != o.index or proof.leaf_count != pool_size or not verify_proof(root, leaf_hash(o.data), proof):
            raise ChallengeError(f"opening {o.index} does not match the committed answers root")
        out[o.index] = o.data
    return out


def decode_embedding(data: bytes) -> np.ndarray:
    vector = from_canonical_bytes(data)
    if vector.ndim != 1 or vector.dtype != np.int32:
        raise ChallengeError(f"an embedding answer must be a 1-d int32 vector, got {vector.dtype}{list(vector.shape)}")
    return vector
