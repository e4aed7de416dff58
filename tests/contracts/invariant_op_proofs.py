"""Real traces for the invariant test's results, so that its random sequences can also end
disputes with `OpReferee.prove_wrong_op`.

The honest result's trace root (TRACE_GOOD) and the cheat's (TRACE_BAD) are the roots of a
small requantize program run by the runtime, the cheat with one flipped output bit at
`TARGET` (`adversary.WrongOpContext`): the same leaf position holds the right op in one trace
and a provably wrong one in the other. `proof_args` builds a call from either trace, with
or without one of the flaws the contract must refuse, and says which reason that flaw earns
once the roots match the accused (the model checks the roots itself).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from op_programs import requantize_program

from verimesh.chain.op_referee import WrongOpProof
from verimesh.runtime import ExecutionContext
from verimesh.verify.adversary import WrongOpContext

SIZES = [[3, 2], [4]]  # requantize ops per step: 2 steps, 3 leaves
TARGET = 2  # the cheat's wrong op: step 1, index 0


HONEST = requantize_program(ExecutionContext(keep_tensors=True), SIZES, seed=11)
CHEAT = requantize_program(WrongOpContext(TARGET), SIZES, seed=11)
TRACE_GOOD, TRACE_BAD = HONEST.root, CHEAT.root
STEP, INDEX = HONEST.position(TARGET)

# flaw -> the reason it earns once the roots are the accused's committed ones
FLAWS: dict[str, str] = {
    "op index": "op_referee: the op proof is not for the leaf's index",
    "step index": "op_referee: the step proof is not for the leaf's step",
    "other trace": "op_referee: the op leaf is not under the step root",
    "step root": "op_referee: the step root is not under the trace root",
    "input count": "op_referee: the number of input tensors differs from the leaf's",
    "input data": "op_referee: an input tensor does not match the leaf's input hash",
}


def proof_args(job_id: int, accused: int, output_root: bytes, trace_root: bytes,
               flaw: str | None) -> tuple[tuple[Any, ...], bool]:
    """The call's arguments proving the leaf at (STEP, INDEX) of the trace whose root is
    `trace_root` (the cheat's if it is TRACE_BAD, else the honest one's), spoiled by `flaw`;
    and whether that leaf is really wrong."""
    trace = CHEAT if trace_root == TRACE_BAD else HONEST
    record = trace.leaf(STEP, INDEX)
    proof = trace.proof(STEP, INDEX)
    built = WrongOpProof.build(job_id, 1, record, proof, output_root, trace_root)
    op_index, op_count, op_siblings = built.op_proof
    step_index, step_count, step_siblings = built.step_proof
    if flaw == "op index":
        built = replace(built, op_proof=(op_index + 1, op_count, op_siblings))
    elif flaw == "step index":
        built = replace(built, step_proof=(step_index + 1, step_count, step_siblings))
    elif flaw == "other trace":
        # the other trace's leaf at the same position, with this trace's proofs
        other = HONEST if trace is CHEAT else CHEAT
        built = replace(built, leaf=WrongOpProof.build(job_id, 1, other.leaf(STEP, INDEX), proof,
                                                       output_root, trace_root).leaf)
    elif flaw == "step root":
        # the other trace's leaf with its proof under its own step root: that step root is
        # not in this trace
        other = HONEST if trace is CHEAT else CHEAT
        theirs = WrongOpProof.build(job_id, 1, other.leaf(STEP, INDEX), other.proof(STEP, INDEX),
                                    output_root, trace_root)
        built = replace(built, leaf=theirs.leaf, op_proof=theirs.op_proof, step_root=theirs.step_root)
    elif flaw == "input count":
        built = replace(built, inputs=built.inputs[:-1])
    elif flaw == "input data":
        dtype, dims, data = built.inputs[0]
        built = replace(built, inputs=[(dtype, dims, bytes([data[0] ^ 1]) + data[1:]), *built.inputs[1:]])
    else:
        assert flaw is None, flaw
    args = list(built.args())
    args[1] = accused  # also a party that does not exist, which the client would refuse
    return tuple(args), trace is CHEAT
