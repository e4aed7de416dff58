"""When a finished bisection can end on chain: a proof of one wrong op for the OpReferee.

The committee recomputes the disputed op off chain (``referee.decide``, ``Method.RECOMPUTE``)
and m of n members sign. When the op is small enough for the EVM (``chain.op_check_spec.
checkable``) the same ruling can be proven to the contract instead: the guilty party's own
leaf, its proof under the party's committed trace root and the op's input tensors
(``chain.op_referee.OpRefereeClient.prove_wrong_op``). No committee draw, no signatures, no
waiting for the referee's window (docs/op-proofs.md).

Only a ruling with exactly one guilty party by recompute qualifies: a proof convicts the
accused and pays the other party, so when both leaves are wrong (``GUILTY_BOTH``) or the
ruling needs a replay of the program (another instruction, another length), the committee
decides as before.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from ..chain.op_check_spec import checkable
from ..chain.op_referee import Accused
from ..runtime.tensor import tensor_hash
from ..runtime.trace import OpRecord, TraceProof, recompute, verify_trace_proof
from .bisection import Dispute, DisputeError, PartyEvidence
from .referee import Method, decide


@dataclass(frozen=True)
class WrongOp:
    """What ``OpRefereeClient.prove_wrong_op`` needs besides the job and the accused's
    output root: the accused party, its wrong leaf (with input tensors) and its proof."""

    accused: Accused
    record: OpRecord
    proof: TraceProof


def wrong_op(dispute: Dispute, defender: PartyEvidence, challenger: PartyEvidence) -> WrongOp | None:
    """The on-chain proof of a finished dispute's ruling, or None if it has none (the
    committee decides): the ruling must find exactly one party guilty by recompute, and
    its leaf must be checkable by OpCheck.

    The input tensors may come from either party: both leaves commit to the same input
    hashes, so a guilty party that withheld its tensors is proven wrong with the other's.
    """
    try:
        ruling = decide(dispute, defender, challenger)
    except DisputeError:  # needs a replay of the program, or nobody supplied the tensors
        return None
    if ruling.method is not Method.RECOMPUTE or len(ruling.guilty) != 1:
        return None
    (guilty,) = ruling.guilty
    evidence = (defender, challenger)
    accused, other = evidence[guilty], evidence[guilty.other]
    if accused.record is None or accused.op_proof is None:
        return None
    record = accused.record
    if record.inputs is None or not _inputs_match(record):
        donor = other.record
        if donor is None or donor.inputs is None or not _inputs_match(donor):
            return None
        record = replace(record, inputs=donor.inputs)
    if not checkable(record):
        return None
    return WrongOp(Accused(int(guilty) + 1), record,
                   TraceProof(accused.op_proof, accused.step_root, accused.step_proof))


def convicts(trace_root: bytes, record: OpRecord, proof: TraceProof) -> bool:
    """What the contract will find, checked off chain first (a reverted proof costs gas):
    ``record`` sits at its position under ``trace_root``, its input tensors hash to its
    input hashes and the op's output is not the one the leaf commits to."""
    if not verify_trace_proof(trace_root, record, proof):
        return False
    try:
        return tensor_hash(recompute(record)) != record.output_hash
    except ValueError:  # no or other input tensors (TraceError), inputs the op refuses
        return False


def _inputs_match(record: OpRecord) -> bool:
    assert record.inputs is not None
    return len(record.inputs) == len(record.input_hashes) and all(
        tensor_hash(t) == h for t, h in zip(record.inputs, record.input_hashes, strict=True)
    )
