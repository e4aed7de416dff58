# pragma version ~=0.4.3
"""
@title verimesh DisputeCommittee (JobMarket's referee: m-of-n validator verdicts)
@custom:contract-name DisputeCommittee
@license Apache-2.0
@notice Decides JobMarket disputes with a committee of staked validators instead of one
        referee key. When a dispute reaches the referee turn (the party due to move
        called `JobMarket.refer_dispute`, or the move limit was hit), anyone calls
        `request_committee`; one block later anyone calls `draw_committee`, which draws
        up to `committee_size` validators from the Registry, stake weighted and without
        replacement, from the hash of the request's block. Each member recomputes the
        disputed op off chain (verimesh.verify.referee) and signs an EIP-712
        `DisputeVerdict`; `submit_verdict` accepts the verdict once at least the
        committee's threshold of distinct members signed the very same message, and
        calls `JobMarket.resolve_dispute` (or `resolve_dispute_both`). A member whose
        signature is on a verdict for the same dispute that differs from the accepted
        one is slashed through the Registry (`report_equivocation`). A committee that
        stays silent past its deadline changes nothing here: `JobMarket.dispute_timeout`
        then annuls the dispute and refunds the requester. A dispute whose accused party
        committed a trace with one provably wrong small op ends without a committee: the
        OpReferee (set once by the deployer, `set_op_referee`) checks the proof on chain
        and calls `resolve_by_op_proof` (docs/op-proofs.md).
@custom:security
        - Unsteerable draw: the seed is the hash of the block that holds the request,
          which nobody (short of the block producer) knows when sending the request; the
          draw must happen 1..256 blocks later, and a committee is drawn once per dispute.
          An expired request (nobody drew for 256 blocks) may be renewed; any honest
          party draws before that. The requester, the defender and the challenger are
          excluded from the draw.
        - Bounded work: the draw inspects at most `_MAX_SCAN` Registry list entries (a
          longer list at hashed positions, so no run of neighbours fills the pool) and
          picks at most `_MAX_COMMITTEE` members; a verdict carries at most
          `_MAX_COMMITTEE` signatures.
        - All-or-nothing verdicts: one malformed, foreign, repeated or mismatched
          signature reverts the whole call, with no state change. Signers must be
          strictly ascending, so nobody counts twice. Each signature covers the whole
          message (job, dispute round, verdict, leaf, recomputed output, signer, expiry)
          in this contract's EIP-712 domain, so honest signatures cannot be reused for
          another verdict, dispute, chain or deployment. Low-s, v in {27, 28} only.
        - Threshold: a committee of `size` members needs ceil(size * m / n) signatures
          with m > n / 2 (constructor check), so two different verdicts can only both
          reach it if some member signed both, and such a member is slashable. Safety
          rests on a majority of every drawn committee being honest: a corrupt majority
          decides, and an honest minority that signed the truth is then "equivocating".
        - Slashing goes through Registry.slash (this contract is the Registry's
          `slasher`): at most `equivocation_penalty` per member and job, once; the tokens
          come here and leave in the same call (bounty to the reporter, rest burned), so
          this contract never holds tokens between calls.
        - Only the OpReferee may call `resolve_by_op_proof`; its address is set once, by
          the deployer, and can never change afterwards.
        - Checks, then effects (accepted verdict, slashed flag), then the external calls
          (JobMarket, Registry, token), all trusted contracts fixed at deploy.
"""

from ethereum.ercs import IERC20

import signatures


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


interface IJobMarket:
    def jobs(job_id: uint256) -> Job: view
    def disputes(job_id: uint256) -> Dispute: view
    def replica(job_id: uint256, index: uint256) -> ReplicaView: view
    def resolve_dispute(job_id: uint256, provider_at_fault: bool): nonpayable
    def resolve_dispute_both(job_id: uint256): nonpayable


interface IRegistry:
    def validator_count() -> uint256: view
    def validator_at(index: uint256) -> address: view
    def free_stake(account: address) -> uint256: view
    def slash(account: address, amount: uint256, recipient: address) -> uint256: nonpayable


# One committee member's signature of a verdict.
struct Signature:
    signer: address
    signature: Bytes[65]


# A drawn committee and, once accepted, its verdict (`committees(job_id)`). Storage keeps
# it in two words (`_seeds`, `_packed`): every fresh storage word costs ~22k gas.
struct Committee:
    dispute_round: uint256  # JobMarket's move count when the game went to the referee
    seed: bytes32
    deadline: uint256  # JobMarket's referee deadline; also every signature's EIP-712 expiry
    threshold: uint256  # signatures needed
    size: uint256  # members drawn
    accepted: bool
    guilty: uint256  # accepted verdict: 1 defender, 2 challenger, 3 both


# JobMarket states and turns this contract reads.
_STATE_DISPUTED: constant(uint8) = 5
_TURN_REFEREE: constant(uint8) = 2
# Verdict codes (verimesh.verify.committee.GUILTY_*).
GUILTY_DEFENDER: public(constant(uint256)) = 1
GUILTY_CHALLENGER: public(constant(uint256)) = 2
GUILTY_BOTH: public(constant(uint256)) = 3
# Largest committee: bounds the draw, the stored member list and a verdict's signatures.
_MAX_COMMITTEE: constant(uint256) = 16
# Most Registry list entries one draw inspects (same bound as Registry.draw).
_MAX_SCAN: constant(uint256) = 32
# Separates the pool's probe positions from the draw's own hashes of the seed.
_POOL_TAG: constant(bytes32) = keccak256("verimesh.committee.pool")
# Blocks whose hash the EVM can still read (BLOCKHASH window).
_BLOCKHASH_WINDOW: constant(uint256) = 256
# Basis points in one whole.
_BPS: constant(uint256) = 10_000
# Where burned stake goes (as in JobMarket).
BURN_ADDRESS: public(constant(address)) = 0x000000000000000000000000000000000000dEaD

_DOMAIN_TYPEHASH: constant(bytes32) = keccak256(
    "EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
)
# verimesh.verify.committee.Verdict plus the envelope fields of verimesh.crypto.eip712.
_VERDICT_TYPEHASH: constant(bytes32) = keccak256(
    "DisputeVerdict(uint256 job_id,uint256 dispute_round,uint256 guilty,uint256 leaf_index,"
    "bytes32 recomputed_output,address signer,uint256 nonce,uint64 expiry)"
)
# verimesh's EIP-712 domain name and version (verimesh.crypto.eip712).
_NAME_HASH: constant(bytes32) = keccak256("verimesh")
_VERSION_HASH: constant(bytes32) = keccak256("1")
# Verdicts carry no replay nonce (one verdict per dispute): always 0.
_VERDICT_NONCE: constant(uint256) = 0
# Packed committee word (bit offsets, low to high): dispute round 16, deadline 64,
# threshold 8, size 8, accepted 8, guilty 8.
_OFF_DEADLINE: constant(uint256) = 16
_OFF_THRESHOLD: constant(uint256) = 80
_OFF_SIZE: constant(uint256) = 88
_OFF_ACCEPTED: constant(uint256) = 96
_OFF_GUILTY: constant(uint256) = 104
_MASK_8: constant(uint256) = 2**8 - 1
_MASK_16: constant(uint256) = 2**16 - 1
_MASK_64: constant(uint256) = 2**64 - 1


event CommitteeRequested:
    job_id: indexed(uint256)
    dispute_round: uint256
    seed_block: uint256


event CommitteeDrawn:
    job_id: indexed(uint256)
    dispute_round: uint256
    seed: bytes32
    members: DynArray[address, _MAX_COMMITTEE]
    threshold: uint256
    deadline: uint256


event VerdictSigned:
    job_id: indexed(uint256)
    signer: indexed(address)
    guilty: uint256
    leaf_index: uint256
    recomputed_output: bytes32
    signature: Bytes[65]


event VerdictAccepted:
    job_id: indexed(uint256)
    guilty: uint256
    leaf_index: uint256
    recomputed_output: bytes32
    signers: DynArray[address, _MAX_COMMITTEE]
    submitter: indexed(address)


event OpRefereeSet:
    op_referee: indexed(address)


event ResolvedByOpProof:
    job_id: indexed(uint256)
    guilty: uint256
    op_referee: indexed(address)


event EquivocationSlashed:
    job_id: indexed(uint256)
    member: indexed(address)
    reporter: indexed(address)
    amount: uint256
    bounty: uint256
    burned: uint256


job_market: public(immutable(IJobMarket))
registry: public(immutable(IRegistry))
token: public(immutable(IERC20))
# n: most members per committee; m: signatures needed from a full committee.
committee_size: public(immutable(uint256))
threshold: public(immutable(uint256))
# Stake taken from a member that signed another verdict than the accepted one.
equivocation_penalty: public(immutable(uint256))
# Share of that penalty paid to whoever proved it, in bps; the rest is burned.
reporter_bounty_bps: public(immutable(uint256))

# Who may set the OpReferee, once.
deployer: public(immutable(address))
# The contract whose on-chain op proofs decide disputes without a committee (empty: none).
op_referee: public(address)

# job id => block whose hash seeds the draw (0 = not requested)
request_block: public(HashMap[uint256, uint256])
_seeds: HashMap[uint256, bytes32]
_packed: HashMap[uint256, uint256]
_members: HashMap[uint256, DynArray[address, _MAX_COMMITTEE]]
# job id => the accepted verdict's payload hash (see `_payload_hash`)
_accepted_payload: HashMap[uint256, bytes32]
slashed: public(HashMap[uint256, HashMap[address, bool]])


@deploy
def __init__(
    job_market_: IJobMarket,
    registry_: IRegistry,
    token_: IERC20,
    committee_size_: uint256,
    threshold_: uint256,
    equivocation_penalty_: uint256,
    reporter_bounty_bps_: uint256,
):
    """
    @dev Deploys the committee. JobMarket must name it as referee (`set_referee`) and the
         Registry as slasher (`set_slasher`) before it can decide or slash.
    @param job_market_ The JobMarket whose disputes it decides.
    @param registry_ The Registry validators are drawn from and slashed through.
    @param token_ The stake token (slashed stake passes through here).
    @param committee_size_ n, most members per committee (1.._MAX_COMMITTEE).
    @param threshold_ m, signatures a full committee needs (n / 2 < m <= n).
    @param equivocation_penalty_ Stake slashed from an equivocating member.
    @param reporter_bounty_bps_ Reporter's share of that penalty, in bps.
    """
    assert job_market_.address != empty(address), "dispute_committee: job market is the zero address"
    assert registry_.address != empty(address), "dispute_committee: registry is the zero address"
    assert token_.address != empty(address), "dispute_committee: token is the zero address"
    assert committee_size_ >= 1 and committee_size_ <= _MAX_COMMITTEE, (
        "dispute_committee: committee size must be between 1 and 16"
    )
    assert threshold_ * 2 > committee_size_ and threshold_ <= committee_size_, (
        "dispute_committee: threshold must be a majority of the committee size"
    )
    assert reporter_bounty_bps_ <= _BPS, "dispute_committee: reporter bounty above 10000 bps"
    job_market = job_market_
    registry = registry_
    token = token_
    committee_size = committee_size_
    threshold = threshold_
    equivocation_penalty = equivocation_penalty_
    reporter_bounty_bps = reporter_bounty_bps_
    deployer = msg.sender


@external
def set_op_referee(op_referee_: address):
    """
    @dev Names the OpReferee, the only caller of `resolve_by_op_proof`. The deployer
         calls it once, right after deploying the OpReferee (which needs this contract's
         address first); the address is fixed from then on.
    @param op_referee_ The OpReferee contract.
    """
    assert msg.sender == deployer, "dispute_committee: caller is not the deployer"
    assert self.op_referee == empty(address), "dispute_committee: op referee already set"
    assert op_referee_ != empty(address), "dispute_committee: op referee is the zero address"
    self.op_referee = op_referee_
    log OpRefereeSet(op_referee=op_referee_)


@external
def resolve_by_op_proof(job_id: uint256, guilty: uint256):
    """
    @dev Settles a dispute the OpReferee decided on chain: it proved that the `guilty`
         party's committed trace holds an op whose output is not what the op computes from
         its own inputs. Allowed at any point of a DISPUTED job (during the game, in the
         referee turn, with or without a drawn committee); JobMarket refuses any other
         state, so a settled dispute cannot be settled twice.
    @param job_id The disputed job.
    @param guilty 1 defender, 2 challenger.
    """
    assert msg.sender == self.op_referee and msg.sender != empty(address), (
        "dispute_committee: caller is not the op referee"
    )
    assert guilty == GUILTY_DEFENDER or guilty == GUILTY_CHALLENGER, (
        "dispute_committee: guilty must be 1 or 2"
    )
    log ResolvedByOpProof(job_id=job_id, guilty=guilty, op_referee=msg.sender)
    extcall job_market.resolve_dispute(job_id, guilty == GUILTY_DEFENDER)


@external
def request_committee(job_id: uint256):
    """
    @dev Fixes the block whose hash will seed the draw. Anyone may call it once the job's
         dispute is in the referee turn; again only if an earlier request expired undrawn.
    @param job_id The disputed job.
    """
    dispute: Dispute = self._referee_turn(job_id)
    assert self._packed[job_id] == 0, "dispute_committee: committee already drawn"
    requested: uint256 = self.request_block[job_id]
    assert requested == 0 or block.number > requested + _BLOCKHASH_WINDOW, (
        "dispute_committee: committee already requested"
    )
    self.request_block[job_id] = block.number
    log CommitteeRequested(job_id=job_id, dispute_round=dispute.round, seed_block=block.number)


@external
def draw_committee(job_id: uint256) -> DynArray[address, _MAX_COMMITTEE]:
    """
    @dev Draws the committee from the hash of the request's block: up to `committee_size`
         validators, stake weighted, without replacement, none of the dispute's parties.
         Anyone may call it 1..256 blocks after the request.
    @param job_id The disputed job.
    @return The members in draw order.
    """
    dispute: Dispute = self._referee_turn(job_id)
    assert self._packed[job_id] == 0, "dispute_committee: committee already drawn"
    requested: uint256 = self.request_block[job_id]
    assert requested != 0, "dispute_committee: committee not requested"
    assert block.number > requested, "dispute_committee: wait one block after the request"
    assert block.number <= requested + _BLOCKHASH_WINDOW, (
        "dispute_committee: seed block too old; request again"
    )
    seed: bytes32 = keccak256(abi_encode(blockhash(requested), job_id))
    defender: address = (staticcall job_market.replica(job_id, dispute.defender_replica)).provider
    requester: address = (staticcall job_market.jobs(job_id)).requester
    pool: DynArray[address, _MAX_SCAN] = []
    weights: DynArray[uint256, _MAX_SCAN] = []
    pool, weights = self._scan(seed, [requester, defender, dispute.challenger])
    assert len(pool) > 0, "dispute_committee: no eligible validator"
    size: uint256 = min(committee_size, len(pool))
    members: DynArray[address, _MAX_COMMITTEE] = self._draw(seed, pool, weights, size)
    needed: uint256 = self._threshold_for(size)
    self._seeds[job_id] = seed
    self._packed[job_id] = self._pack(
        Committee(
            dispute_round=dispute.round,
            seed=seed,
            deadline=dispute.deadline,
            threshold=needed,
            size=size,
            accepted=False,
            guilty=0,
        )
    )
    self._members[job_id] = members
    log CommitteeDrawn(
        job_id=job_id,
        dispute_round=dispute.round,
        seed=seed,
        members=members,
        threshold=needed,
        deadline=dispute.deadline,
    )
    return members


@external
def publish_signature(
    job_id: uint256,
    guilty: uint256,
    leaf_index: uint256,
    recomputed_output: bytes32,
    signature: Bytes[65],
):
    """
    @dev A member posts its verdict signature where the other members can collect it
         (the VerdictSigned event); nothing is stored. Optional: signatures may also be
         exchanged off chain. Checked like one signature of `submit_verdict`.
    @param job_id The disputed job.
    @param guilty 1 defender, 2 challenger, 3 both.
    @param leaf_index step * 2**32 + op index of the disputed op.
    @param recomputed_output Tensor hash the member recomputed for that op.
    @param signature The caller's 65-byte EIP-712 signature of that verdict.
    """
    committee: Committee = self._drawn(job_id)
    assert not committee.accepted, "dispute_committee: verdict already accepted"
    assert block.timestamp <= committee.deadline, "dispute_committee: verdict deadline passed"
    assert guilty >= GUILTY_DEFENDER and guilty <= GUILTY_BOTH, (
        "dispute_committee: guilty must be 1, 2 or 3"
    )
    assert msg.sender in self._members[job_id], "dispute_committee: signer is not on the committee"
    self._check_signature(
        msg.sender,
        self._digest(job_id, committee, guilty, leaf_index, recomputed_output, msg.sender),
        signature,
    )
    log VerdictSigned(
        job_id=job_id,
        signer=msg.sender,
        guilty=guilty,
        leaf_index=leaf_index,
        recomputed_output=recomputed_output,
        signature=signature,
    )


@external
def submit_verdict(
    job_id: uint256,
    guilty: uint256,
    leaf_index: uint256,
    recomputed_output: bytes32,
    signatures_: DynArray[Signature, _MAX_COMMITTEE],
):
    """
    @dev Accepts a verdict signed by at least the committee's threshold of distinct
         members (signers strictly ascending) before the deadline, and hands it to
         JobMarket. Anyone may submit it.
    @param job_id The disputed job.
    @param guilty 1 defender, 2 challenger, 3 both.
    @param leaf_index step * 2**32 + op index of the disputed op.
    @param recomputed_output Tensor hash the committee recomputed for that op.
    @param signatures_ (signer, 65-byte signature) pairs, signers ascending.
    """
    committee: Committee = self._drawn(job_id)
    assert not committee.accepted, "dispute_committee: verdict already accepted"
    assert block.timestamp <= committee.deadline, "dispute_committee: verdict deadline passed"
    assert guilty >= GUILTY_DEFENDER and guilty <= GUILTY_BOTH, (
        "dispute_committee: guilty must be 1, 2 or 3"
    )
    assert len(signatures_) >= committee.threshold, "dispute_committee: too few signatures"
    members: DynArray[address, _MAX_COMMITTEE] = self._members[job_id]
    signers: DynArray[address, _MAX_COMMITTEE] = []
    last: uint256 = 0
    for entry: Signature in signatures_:
        assert convert(entry.signer, uint256) > last, (
            "dispute_committee: signers not in strictly ascending order (duplicate?)"
        )
        last = convert(entry.signer, uint256)
        assert entry.signer in members, "dispute_committee: signer is not on the committee"
        self._check_signature(
            entry.signer,
            self._digest(job_id, committee, guilty, leaf_index, recomputed_output, entry.signer),
            entry.signature,
        )
        signers.append(entry.signer)

    committee.accepted = True
    committee.guilty = guilty
    self._packed[job_id] = self._pack(committee)
    self._accepted_payload[job_id] = self._payload_hash(guilty, leaf_index, recomputed_output)
    log VerdictAccepted(
        job_id=job_id,
        guilty=guilty,
        leaf_index=leaf_index,
        recomputed_output=recomputed_output,
        signers=signers,
        submitter=msg.sender,
    )
    if guilty == GUILTY_BOTH:
        extcall job_market.resolve_dispute_both(job_id)
    else:
        extcall job_market.resolve_dispute(job_id, guilty == GUILTY_DEFENDER)


@external
def report_equivocation(
    job_id: uint256,
    guilty: uint256,
    leaf_index: uint256,
    recomputed_output: bytes32,
    member: address,
    signature: Bytes[65],
):
    """
    @dev Slashes a committee member that signed a verdict for this dispute other than the
         accepted one: `equivocation_penalty` through Registry.slash, the reporter's bounty
         to the caller, the rest burned. Once per member and job.
    @param job_id The decided job.
    @param guilty The other verdict's guilty code.
    @param leaf_index The other verdict's leaf index.
    @param recomputed_output The other verdict's recomputed output.
    @param member The member that signed it.
    @param signature Its 65-byte EIP-712 signature of that other verdict.
    """
    committee: Committee = self._load(job_id)
    assert committee.accepted, "dispute_committee: no accepted verdict to compare with"
    assert member in self._members[job_id], "dispute_committee: not a committee member"
    assert not self.slashed[job_id][member], "dispute_committee: member already slashed for this job"
    assert self._payload_hash(guilty, leaf_index, recomputed_output) != self._accepted_payload[job_id], (
        "dispute_committee: that is the accepted verdict"
    )
    self._check_signature(
        member, self._digest(job_id, committee, guilty, leaf_index, recomputed_output, member), signature
    )
    self.slashed[job_id][member] = True
    taken: uint256 = extcall registry.slash(member, equivocation_penalty, self)
    bounty: uint256 = taken * reporter_bounty_bps // _BPS
    burned: uint256 = taken - bounty
    log EquivocationSlashed(
        job_id=job_id, member=member, reporter=msg.sender, amount=taken, bounty=bounty, burned=burned
    )
    if bounty > 0:
        assert extcall token.transfer(msg.sender, bounty), "dispute_committee: transfer failed"
    if burned > 0:
        assert extcall token.transfer(BURN_ADDRESS, burned), "dispute_committee: transfer failed"


@external
@view
def committees(job_id: uint256) -> Committee:
    """
    @dev A job's committee record (all zero until drawn).
    @param job_id The job.
    @return dispute_round, seed, deadline, threshold, size, accepted, guilty.
    """
    return self._load(job_id)


@external
@view
def is_member(job_id: uint256, account: address) -> bool:
    """
    @dev Whether `account` sits on the job's committee.
    @param job_id The job.
    @param account The account.
    @return True for a drawn member.
    """
    return account in self._members[job_id]


@external
@view
def members(job_id: uint256) -> DynArray[address, _MAX_COMMITTEE]:
    """
    @dev A job's committee in draw order (empty until drawn).
    @param job_id The job.
    @return The members.
    """
    return self._members[job_id]


@external
@view
def verdict_digest(
    job_id: uint256, guilty: uint256, leaf_index: uint256, recomputed_output: bytes32, signer: address
) -> bytes32:
    """
    @dev The EIP-712 digest `signer` signs for a verdict on a drawn committee's dispute.
    @param job_id The job.
    @param guilty 1 defender, 2 challenger, 3 both.
    @param leaf_index step * 2**32 + op index.
    @param recomputed_output The recomputed tensor hash.
    @param signer The member.
    @return The digest (expiry = the committee's deadline).
    """
    return self._digest(job_id, self._drawn(job_id), guilty, leaf_index, recomputed_output, signer)


@external
@view
def domain_separator() -> bytes32:
    """
    @dev verimesh's EIP-712 domain with this contract as verifying contract.
    @return The domain separator for the current chain id.
    """
    return self._domain_separator()


@external
@view
def threshold_for(size: uint256) -> uint256:
    """
    @dev Signatures a committee of `size` members needs.
    @param size Members drawn.
    @return ceil(size * threshold / committee_size).
    """
    return self._threshold_for(size)


@internal
@view
def _referee_turn(job_id: uint256) -> Dispute:
    """
    @dev Reads the job's dispute; reverts unless it is waiting for the referee.
    @param job_id The job.
    @return The dispute record.
    """
    assert (staticcall job_market.jobs(job_id)).state == _STATE_DISPUTED, (
        "dispute_committee: job is not disputed"
    )
    dispute: Dispute = staticcall job_market.disputes(job_id)
    assert dispute.turn == _TURN_REFEREE, "dispute_committee: dispute has not reached the referee turn"
    return dispute


@internal
@view
def _drawn(job_id: uint256) -> Committee:
    """
    @dev The job's committee; reverts if none was drawn.
    @param job_id The job.
    @return The committee record.
    """
    committee: Committee = self._load(job_id)
    assert committee.size != 0, "dispute_committee: committee not drawn"
    return committee


@internal
@view
def _load(job_id: uint256) -> Committee:
    """
    @dev Decodes a job's committee from its two storage words.
    @param job_id The job.
    @return The record (all zero if none).
    """
    word: uint256 = self._packed[job_id]
    return Committee(
        dispute_round=word & _MASK_16,
        seed=self._seeds[job_id],
        deadline=(word >> _OFF_DEADLINE) & _MASK_64,
        threshold=(word >> _OFF_THRESHOLD) & _MASK_8,
        size=(word >> _OFF_SIZE) & _MASK_8,
        accepted=(word >> _OFF_ACCEPTED) & _MASK_8 != 0,
        guilty=(word >> _OFF_GUILTY) & _MASK_8,
    )


@internal
@pure
def _pack(committee: Committee) -> uint256:
    """
    @dev Packs everything but the seed into one word. Bounds: dispute round <= 64 moves,
         deadline a timestamp (< 2**64), threshold and size <= 16, guilty <= 3.
    @param committee The record.
    @return The packed word (never zero for a drawn committee: size >= 1).
    """
    accepted: uint256 = 0
    if committee.accepted:
        accepted = 1
    return (
        committee.dispute_round
        | (committee.deadline << _OFF_DEADLINE)
        | (committee.threshold << _OFF_THRESHOLD)
        | (committee.size << _OFF_SIZE)
        | (accepted << _OFF_ACCEPTED)
        | (committee.guilty << _OFF_GUILTY)
    )


@internal
@view
def _scan(
    seed: bytes32, exclude: DynArray[address, 3]
) -> (DynArray[address, _MAX_SCAN], DynArray[uint256, _MAX_SCAN]):
    """
    @dev The draw's pool, without the excluded parties and validators with no free stake,
         sorted by address (insertion sort of at most 32 entries: the order the Python
         mirror uses). A list of at most `_MAX_SCAN` validators is taken whole. A longer
         one is probed at `_MAX_SCAN` positions keccak256(seed || _POOL_TAG || i) modulo
         its length, a position drawn twice counted once: a window of consecutive entries
         would let validators that registered in a row (a cartel's accounts) fill most of
         a pool, and so the majority of a committee, far more often than their stake share.
    @param seed The draw's seed.
    @param exclude The dispute's parties.
    @return (validators ascending, their free stake).
    """
    pool: DynArray[address, _MAX_SCAN] = []
    weights: DynArray[uint256, _MAX_SCAN] = []
    n: uint256 = staticcall registry.validator_count()
    if n == 0:
        return pool, weights
    start: uint256 = convert(seed, uint256) % n
    for i: uint256 in range(_MAX_SCAN):
        if i == n:
            break
        position: uint256 = (start + i) % n
        if n > _MAX_SCAN:
            position = convert(keccak256(concat(seed, _POOL_TAG, convert(i, bytes32))), uint256) % n
        candidate: address = staticcall registry.validator_at(position)
        if candidate in exclude or candidate in pool:
            continue
        weight: uint256 = staticcall registry.free_stake(candidate)
        if weight == 0:
            continue
        # Insert in ascending address order.
        pool.append(candidate)
        weights.append(weight)
        j: uint256 = len(pool) - 1
        for _: uint256 in range(_MAX_SCAN):
            if j == 0 or convert(pool[j - 1], uint256) < convert(candidate, uint256):
                break
            pool[j] = pool[j - 1]
            weights[j] = weights[j - 1]
            j -= 1
        pool[j] = candidate
        weights[j] = weight
    return pool, weights


@internal
@pure
def _draw(
    seed: bytes32,
    pool: DynArray[address, _MAX_SCAN],
    weights: DynArray[uint256, _MAX_SCAN],
    size: uint256,
) -> DynArray[address, _MAX_COMMITTEE]:
    """
    @dev Stake-weighted draw without replacement (verimesh.verify.committee.draw_committee):
         draw k takes keccak256(seed || uint256(k)) modulo the weight still in the pool and
         picks the member whose cumulative-weight interval holds it; a picked member's
         weight drops to zero.
    @param seed The draw's seed.
    @param pool Validators ascending by address.
    @param weights Their weights (all > 0).
    @param size Members to draw (at most the pool size and `_MAX_COMMITTEE`).
    @return The members in draw order.
    """
    left: DynArray[uint256, _MAX_SCAN] = weights
    total: uint256 = 0
    for w: uint256 in weights:
        total += w
    chosen: DynArray[address, _MAX_COMMITTEE] = []
    for k: uint256 in range(_MAX_COMMITTEE):
        if k == size:
            break
        r: uint256 = convert(keccak256(concat(seed, convert(k, bytes32))), uint256) % total
        for i: uint256 in range(_MAX_SCAN):
            if i == len(pool):
                break
            if r < left[i]:
                chosen.append(pool[i])
                total -= left[i]
                left[i] = 0
                break
            r -= left[i]
    return chosen


@internal
@view
def _threshold_for(size: uint256) -> uint256:
    """
    @dev Signatures a committee of `size` members needs: the contract's m-of-n ratio,
         rounded up, so it stays a strict majority of the members actually drawn.
    @param size Members drawn.
    @return ceil(size * threshold / committee_size).
    """
    return (size * threshold + committee_size - 1) // committee_size


@internal
@pure
def _payload_hash(guilty: uint256, leaf_index: uint256, recomputed_output: bytes32) -> bytes32:
    """
    @dev Identifies a verdict's content (what members must agree on).
    @param guilty The guilty code.
    @param leaf_index The leaf index.
    @param recomputed_output The recomputed output.
    @return keccak256 of the three.
    """
    return keccak256(abi_encode(guilty, leaf_index, recomputed_output))


@internal
@view
def _digest(
    job_id: uint256,
    committee: Committee,
    guilty: uint256,
    leaf_index: uint256,
    recomputed_output: bytes32,
    signer: address,
) -> bytes32:
    """
    @dev The EIP-712 digest of a DisputeVerdict (verimesh.crypto.eip712.fast_digest).
    @param job_id The job.
    @param committee Its committee (dispute round and deadline = expiry).
    @param guilty The guilty code.
    @param leaf_index The leaf index.
    @param recomputed_output The recomputed output.
    @param signer The signing member (part of the message).
    @return keccak256(0x1901 || domain separator || struct hash).
    """
    struct_hash: bytes32 = keccak256(
        abi_encode(
            _VERDICT_TYPEHASH,
            job_id,
            committee.dispute_round,
            guilty,
            leaf_index,
            recomputed_output,
            signer,
            _VERDICT_NONCE,
            committee.deadline,
        )
    )
    return keccak256(concat(x"1901", self._domain_separator(), struct_hash))


@internal
@view
def _domain_separator() -> bytes32:
    """
    @dev verimesh's domain (name "verimesh", version "1") for this chain and contract.
    @return The separator.
    """
    return keccak256(abi_encode(_DOMAIN_TYPEHASH, _NAME_HASH, _VERSION_HASH, chain.id, self))


@internal
@pure
def _check_signature(signer: address, digest: bytes32, signature: Bytes[65]):
    """
    @dev Reverts unless `signature` is `signer`'s ECDSA signature of `digest`.
    @param signer The claimed signer.
    @param digest The EIP-712 digest it must have signed.
    @param signature 65 bytes r || s || v.
    """
    recovered: address = signatures._recover(digest, signature)
    assert recovered != empty(address), "dispute_committee: malformed signature"
    assert recovered == signer, "dispute_committee: signature does not match this verdict"
