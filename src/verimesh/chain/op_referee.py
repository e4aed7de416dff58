"""Typed client of OpReferee.vy: end a dispute by proving on chain that one party's trace
holds a wrong op (docs/op-proofs.md).

The proof is one op record of the accused party's trace (``runtime.trace.OpRecord`` with
its input tensors kept) and its ``TraceProof`` under that party's committed roots. The
contract rebuilds the leaf, checks both Merkle proofs, has OpCheck recompute the op from
the inputs and, if the leaf's output hash is not the recomputed one, settles the dispute
against the accused through the DisputeCommittee. Whether an op is small enough for that
is ``chain.op_check_spec.checkable(record)``; ``verify.onchain_op`` decides from a finished
bisection whether a proof exists.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from verimesh.chain.accounts import Signer
from verimesh.chain.contract import ContractClient, Tx
from verimesh.chain.errors import ChainError
from verimesh.chain.op_check_spec import tensor_arg
from verimesh.crypto.merkle import MerkleProof
from verimesh.runtime.trace import OpRecord, TraceProof


class Accused(IntEnum):
    """The dispute party a proof accuses (the contract's ``accused``)."""

    DEFENDER = 1
    CHALLENGER = 2  # the challenging replica or the auditing validator


@dataclass(frozen=True)
class WrongOpProof:
    """Everything ``prove_wrong_op`` sends, in the contract's argument order."""

    job_id: int
    accused: Accused
    output_root: bytes
    trace_root: bytes
    leaf: tuple[Any, ...]  # OpLeaf: step, index, op, params, input hashes, output hash
    op_proof: tuple[int, int, list[bytes]]  # MerkleProof: index, leaf count, siblings
    step_root: bytes
    step_proof: tuple[int, int, list[bytes]]
    inputs: list[tuple[str, list[int], bytes]]  # Tensor: dtype, dims, little-endian data

    @classmethod
    def build(
        cls, job_id: int, accused: int, record: OpRecord, proof: TraceProof, output_root: bytes, trace_root: bytes
    ) -> WrongOpProof:
        """The call's arguments for ``record`` (which must carry its input tensors) at
        ``proof`` under the accused's roots."""
        if record.inputs is None:
            raise ChainError(
                f"op record {record.step}/{record.index} carries no input tensors; the contract "
                "recomputes the op from them (run the job with ExecutionContext(keep_tensors=True))"
            )
        return cls(
            job_id=job_id,
            accused=Accused(accused),
            output_root=output_root,
            trace_root=trace_root,
            leaf=leaf_arg(record),
            op_proof=_proof_arg(proof.op_proof),
            step_root=proof.step_root,
            step_proof=_proof_arg(proof.step_proof),
            inputs=[tensor_arg(t) for t in record.inputs],
        )

    def args(self) -> tuple[Any, ...]:
        return (self.job_id, int(self.accused), self.output_root, self.trace_root, self.leaf, self.op_proof,
                self.step_root, self.step_proof, self.inputs)


def leaf_arg(record: OpRecord) -> tuple[Any, ...]:
    """The ``OpLeaf`` struct of a record: what its trace leaf commits to."""
    return (record.step, record.index, record.op, record.params_json, list(record.input_hashes), record.output_hash)


def _proof_arg(proof: MerkleProof) -> tuple[int, int, list[bytes]]:
    return (proof.index, proof.leaf_count, list(proof.siblings))


class OpRefereeClient(ContractClient):
    """Settles a dispute against a party whose committed trace holds a provably wrong op."""

    # -- parameters ----------------------------------------------------------------------
    def job_market(self) -> str:
        return self.call("job_market")

    def committee(self) -> str:
        """The DisputeCommittee (JobMarket's referee) that settles what is proven here."""
        return self.call("committee")

    def op_check(self) -> str:
        """The OpCheck contract that recomputes the op."""
        return self.call("op_check")

    # -- views ---------------------------------------------------------------------------
    def committed_digest(self, job_id: int, accused: int) -> bytes:
        """keccak256(output_root || trace_root) of the accused party of a disputed job."""
        return self.call("committed_digest", job_id, int(accused))

    def leaf_hash(self, record: OpRecord) -> bytes:
        """On-chain twin of ``OpRecord.leaf_hash`` (tests pin both)."""
        return self.call("leaf_hash", leaf_arg(record))

    # -- transactions --------------------------------------------------------------------
    def prove_wrong_op(
        self,
        job_id: int,
        accused: int,
        record: OpRecord,
        proof: TraceProof,
        output_root: bytes,
        trace_root: bytes,
        *,
        signer: Signer | None = None,
    ) -> Tx:
        """Prove that ``record`` (with its input tensors), at ``proof`` under the accused
        party's committed ``output_root``/``trace_root``, is a wrong op, and settle job
        ``job_id`` against that party (``accused``: 1 defender, 2 challenger). Reverts with
        an ``op_referee:`` reason (``ContractRevert``) if anything does not check, e.g.
        "op_referee: the op is correct" for an honest leaf."""
        built = WrongOpProof.build(job_id, accused, record, proof, output_root, trace_root)
        return self.transact("prove_wrong_op", *built.args(), signer=signer)
