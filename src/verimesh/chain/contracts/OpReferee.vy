# pragma version ~=0.4.3
"""
@title verimesh OpReferee (on-chain fraud proof of one wrong op)
@custom:contract-name OpReferee
@license Apache-2.0
@notice Ends a JobMarket dispute without a committee when one party's committed trace
        holds an op leaf whose output is not what the op computes from that leaf's own
        inputs, and the op is small enough for the EVM to recompute (OpCheck). Anyone may
        submit the proof (`prove_wrong_op`): the accused party's output and trace roots
        (their keccak256 must be the digest JobMarket holds for that party), the op leaf's
        fields, its Merkle proof under its step root, the step root's Merkle proof under
        the trace root, and the op's input tensors. The contract rebuilds the leaf bytes
        exactly as the runtime does (verimesh.runtime.trace.OpRecord.leaf_bytes), checks
        both proofs with the `merkle` module (verimesh.crypto.merkle), has OpCheck hash the
        inputs and recompute the op, and if the leaf's committed output hash differs from
        the recomputed one, rules the accused guilty through the DisputeCommittee (JobMarket's
        referee), which calls `JobMarket.resolve_dispute`. Stateless.
@custom:security
        - Sound at any leaf position: the runtime that every honest party runs commits, for
          each op, the hash of exactly the output the op computes from the inputs it
          commits to (and OpCheck recomputes bit for bit what the runtime computes), so an
          honest trace holds no leaf this contract accepts. A proven leaf convicts the
          party whose committed roots it sits under, whatever the bisection game found.
        - Binding: the roots must hash to the accused's digest on chain (the defender's
          replica; the challenging replica's or the validator's audit report); the leaf
          must sit at its own (step, index) under them (sha256 Merkle proofs, the leaf
          count bound into each root); the input tensors must hash to the leaf's input
          hashes. Anything else reverts with an `op_referee:` reason and no state change.
        - An external challenger commits no trace: accusing it reverts (proving its
          defender wrong works as for any other dispute).
        - A proof convicts one party; it does not certify the other one (neither does the
          committee, which looks at the first differing leaf only).
        - Checks, then the event, then the one interaction: the DisputeCommittee (fixed at
          deploy) settles through JobMarket, which refuses a job that is no longer
          DISPUTED, so a dispute is settled once. OpCheck is fixed at deploy and called
          with STATICCALL.
"""

from . import merkle

# One op input tensor, as OpCheck takes it (C order, little endian).
struct Tensor:
    dtype: String[5]
    dims: DynArray[uint256, _MAX_NDIM]
    data: Bytes[_MAX_DATA]


# What the trace leaf commits to (verimesh.runtime.trace.OpRecord, without the tensors).
struct OpLeaf:
    step: uint32
    index: uint32
    op: String[_MAX_NAME]
    params: Bytes[_MAX_PARAMS]  # canonical params JSON (runtime.trace.canonical_params)
    input_hashes: DynArray[bytes32, _MAX_INPUTS]
    output_hash: bytes32


# A Merkle inclusion proof (verimesh.crypto.merkle.MerkleProof).
struct MerkleProof:
    index: uint256
    leaf_count: uint256
    siblings: DynArray[bytes32, _MAX_DEPTH]


# Mirrors of JobMarket's view structs (field order is the ABI).
struct Job:
    requester: address
    price: uint256
    state: uint8
    mode: uint8
    mode_param: uint256
    replicas: uint256
    committed_mask: uint256
    revealed_mask: uint256
    commit_deadline: uint256
    reveal_deadline: uint256
    challenge_deadline: uint256
    challenge_window: uint256
    audited: bool
    seed_block: uint256


struct Dispute:
    challenger: address
    kind: uint8
    challenger_replica: uint256
    defender_replica: uint256
    bond: uint256
    round: uint256
    turn: uint8
    deadline: uint256


struct ReplicaView:
    provider: address
    digest: bytes32
    committed: bool
    revealed: bool


struct Audit:
    validator: address
    digest: bytes32


interface IJobMarket:
    def jobs(job_id: uint256) -> Job: view
    def disputes(job_id: uint256) -> Dispute: view
    def replica(job_id: uint256, index: uint256) -> ReplicaView: view
    def audits(job_id: uint256) -> Audit: view


interface IDisputeCommittee:
    def job_market() -> address: view
    def resolve_by_op_proof(job_id: uint256, guilty: uint256): nonpayable


interface IOpCheck:
    def recompute(
        op: String[_MAX_NAME], params: Bytes[_MAX_PARAMS], inputs: DynArray[Tensor, _MAX_INPUTS]
    ) -> (DynArray[bytes32, _MAX_INPUTS], bytes32): view


# Bounds of OpCheck.recompute (verimesh.chain.op_check_spec): op name, params JSON, inputs,
# dimensions and bytes per tensor.
_MAX_NAME: constant(uint256) = 32
_MAX_PARAMS: constant(uint256) = 128
_MAX_INPUTS: constant(uint256) = 5
_MAX_NDIM: constant(uint256) = 8
_MAX_DATA: constant(uint256) = 2048
# Deepest Merkle proof (merkle.vy: 2^64 leaves).
_MAX_DEPTH: constant(uint256) = 64
# Parties (verimesh.verify.committee.GUILTY_*).
ACCUSED_DEFENDER: public(constant(uint8)) = 1
ACCUSED_CHALLENGER: public(constant(uint8)) = 2
# JobMarket's disputed state and challenger kinds.
_STATE_DISPUTED: constant(uint8) = 5
_CHALLENGER_EXTERNAL: constant(uint8) = 0
_CHALLENGER_REPLICA: constant(uint8) = 1
_CHALLENGER_VALIDATOR: constant(uint8) = 2
# runtime.trace.LEAF_TAG
_LEAF_TAG: constant(Bytes[14]) = b"verimesh-op-v1"


event WrongOpProven:
    job_id: indexed(uint256)
    accused: uint8
    prover: indexed(address)
    step: uint256
    index: uint256
    op: String[_MAX_NAME]


job_market: public(immutable(IJobMarket))
committee: public(immutable(IDisputeCommittee))
op_check: public(immutable(IOpCheck))


@deploy
def __init__(committee_: IDisputeCommittee, op_check_: IOpCheck):
    """
    @dev Deploys the referee. The DisputeCommittee must then name it (`set_op_referee`).
    @param committee_ JobMarket's referee, which settles what this contract proves.
    @param op_check_ The contract that recomputes ops (OpCheck).
    """
    assert committee_.address != empty(address), "op_referee: committee is the zero address"
    assert op_check_.address != empty(address), "op_referee: op check is the zero address"
    committee = committee_
    op_check = op_check_
    job_market = IJobMarket(staticcall committee_.job_market())


@external
def prove_wrong_op(
    job_id: uint256,
    accused: uint8,
    output_root: bytes32,
    trace_root: bytes32,
    leaf: OpLeaf,
    op_proof: MerkleProof,
    step_root: bytes32,
    step_proof: MerkleProof,
    inputs: DynArray[Tensor, _MAX_INPUTS],
):
    """
    @dev Proves that the `accused` party of a disputed job committed a trace with a wrong
         op, and settles the dispute against it. Anyone may call it while the job is
         DISPUTED, at any point of the game.
    @param job_id The disputed job.
    @param accused 1 the defender, 2 the challenger (a replica or the auditing validator).
    @param output_root The accused's output root.
    @param trace_root The accused's trace root (keccak256(output_root || trace_root) is
           its digest on chain).
    @param leaf The op leaf's fields.
    @param op_proof The leaf's proof under `step_root` (index = leaf.index).
    @param step_root The root of the leaf's step.
    @param step_proof The step root's proof under `trace_root` (index = leaf.step).
    @param inputs The op's input tensors, in the leaf's order.
    """
    assert accused == ACCUSED_DEFENDER or accused == ACCUSED_CHALLENGER, (
        "op_referee: accused must be 1 (defender) or 2 (challenger)"
    )
    assert keccak256(concat(output_root, trace_root)) == self._committed_digest(job_id, accused), (
        "op_referee: the roots are not the accused party's committed result"
    )
    assert op_proof.index == convert(leaf.index, uint256), (
        "op_referee: the op proof is not for the leaf's index"
    )
    assert step_proof.index == convert(leaf.step, uint256), (
        "op_referee: the step proof is not for the leaf's step"
    )
    assert merkle._verify(
        step_root, merkle._leaf_hash(self._leaf_bytes(leaf)), op_proof.index, op_proof.leaf_count,
        op_proof.siblings
    ), "op_referee: the op leaf is not under the step root"
    assert merkle._verify(
        trace_root, merkle._leaf_hash(concat(step_root, b"")), step_proof.index, step_proof.leaf_count,
        step_proof.siblings
    ), "op_referee: the step root is not under the trace root"
    assert len(inputs) == len(leaf.input_hashes), (
        "op_referee: the number of input tensors differs from the leaf's"
    )

    input_hashes: DynArray[bytes32, _MAX_INPUTS] = []
    output_hash: bytes32 = empty(bytes32)
    input_hashes, output_hash = staticcall op_check.recompute(leaf.op, leaf.params, inputs)
    assert len(input_hashes) == len(leaf.input_hashes), "op_referee: op check returned other inputs"
    for i: uint256 in range(_MAX_INPUTS):
        if i == len(input_hashes):
            break
        assert input_hashes[i] == leaf.input_hashes[i], (
            "op_referee: an input tensor does not match the leaf's input hash"
        )
    assert output_hash != leaf.output_hash, "op_referee: the op is correct"

    log WrongOpProven(
        job_id=job_id,
        accused=accused,
        prover=msg.sender,
        step=convert(leaf.step, uint256),
        index=convert(leaf.index, uint256),
        op=leaf.op,
    )
    extcall committee.resolve_by_op_proof(job_id, convert(accused, uint256))


@external
@view
def committed_digest(job_id: uint256, accused: uint8) -> bytes32:
    """
    @dev The digest a proof against `accused` must match: keccak256(output_root ||
         trace_root) of that party. Reverts where `prove_wrong_op` would.
    @param job_id A disputed job.
    @param accused 1 the defender, 2 the challenger.
    @return The party's committed digest.
    """
    assert accused == ACCUSED_DEFENDER or accused == ACCUSED_CHALLENGER, (
        "op_referee: accused must be 1 (defender) or 2 (challenger)"
    )
    return self._committed_digest(job_id, accused)


@external
@pure
def leaf_hash(leaf: OpLeaf) -> bytes32:
    """
    @dev The trace leaf hash of an op record (runtime.trace.OpRecord.leaf_hash).
    @param leaf The op leaf's fields.
    @return sha256(0x00 || leaf bytes).
    """
    return merkle._leaf_hash(self._leaf_bytes(leaf))


@internal
@view
def _committed_digest(job_id: uint256, accused: uint8) -> bytes32:
    """
    @dev keccak256(output_root || trace_root) the accused party revealed: the defender's
         replica, the challenging replica or the auditing validator's report.
    @param job_id The job (must be DISPUTED).
    @param accused 1 the defender, 2 the challenger.
    @return The digest.
    """
    assert (staticcall job_market.jobs(job_id)).state == _STATE_DISPUTED, "op_referee: job is not disputed"
    dispute: Dispute = staticcall job_market.disputes(job_id)
    if accused == ACCUSED_DEFENDER:
        return (staticcall job_market.replica(job_id, dispute.defender_replica)).digest
    if dispute.kind == _CHALLENGER_REPLICA:
        return (staticcall job_market.replica(job_id, dispute.challenger_replica)).digest
    assert dispute.kind == _CHALLENGER_VALIDATOR, (
        "op_referee: an external challenger committed no trace to prove wrong"
    )
    return (staticcall job_market.audits(job_id)).digest


@internal
@pure
def _leaf_bytes(leaf: OpLeaf) -> Bytes[merkle._MAX_LEAF_BYTES]:
    """
    @dev The leaf's bytes exactly as the runtime commits them (runtime.trace.OpRecord.
         leaf_bytes): tag || step u32 || index u32 || len(name) u16 || name || len(params)
         u32 || params || n_inputs u16 || input hashes || output hash, integers big endian.
    @param leaf The op leaf's fields.
    @return The bytes.
    """
    name: Bytes[_MAX_NAME] = convert(leaf.op, Bytes[_MAX_NAME])
    hashes: bytes32[_MAX_INPUTS] = empty(bytes32[_MAX_INPUTS])
    for i: uint256 in range(_MAX_INPUTS):
        if i == len(leaf.input_hashes):
            break
        hashes[i] = leaf.input_hashes[i]
    all_hashes: Bytes[32 * _MAX_INPUTS] = concat(hashes[0], hashes[1], hashes[2], hashes[3], hashes[4])
    return concat(
        _LEAF_TAG,
        convert(leaf.step, bytes4),
        convert(leaf.index, bytes4),
        convert(convert(len(name), uint16), bytes2),
        name,
        convert(convert(len(leaf.params), uint32), bytes4),
        leaf.params,
        convert(convert(len(leaf.input_hashes), uint16), bytes2),
        slice(all_hashes, 0, 32 * len(leaf.input_hashes)),
        leaf.output_hash,
    )
