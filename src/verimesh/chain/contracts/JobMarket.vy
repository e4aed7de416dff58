# pragma version ~=0.4.3
"""
@title verimesh JobMarket (job escrow state machine)
@custom:contract-name JobMarket
@license Apache-2.0
@notice A requester escrows payment for a compute job; the contract draws providers from
        the Registry by on-chain randomness and locks a bond of their stake; providers
        commit to a result hash, then reveal it; the result is checked by an audit
        (`MODE_AUDIT`, one provider, a validator recomputes with probability p) or by
        replication (`MODE_REPLICATE`, k providers must agree); anyone may challenge
        during the challenge window, which opens a dispute that a referee decides (the
        bisection game that narrows a dispute down to one operation drives the dispute
        rounds from off chain; the party due to move ends it with `refer_dispute`). The
        referee is the DisputeCommittee contract in every deployment: an m-of-n verdict
        of staked validators drawn by chain randomness (`resolve_dispute`, or
        `resolve_dispute_both` when both results are wrong). Honest providers are paid,
        liars and silent parties are slashed, and every state has a deadline after which
        anyone can move the job on.

        States (`jobs(id).state`): ASSIGNED (posted, providers drawn, waiting for every
        commitment) -> COMMITTED (waiting for every reveal) -> REVEALED (challenge window
        open) or AUDITING (drawn validator must report) or DISPUTED (replicas disagree,
        audit disagrees, or challenged) -> FINALIZED; or ASSIGNED/COMMITTED -> REFUNDED on
        a missed deadline; DISPUTED -> REFUNDED if the referee stays silent.
@custom:security
        - Conservation: the JobMarket's token balance always equals
          sum(balances) + the escrow (price * replicas + audit fee) of every job not yet
          FINALIZED/REFUNDED + the open challenge bonds. Tokens enter only through
          `deposit` and `post_job` (credited to a balance or a job's escrow), `challenge`
          (the bond), and Registry.slash (split in the same call). Tokens leave only
          through `withdraw` (debits the caller's balance) and the burn part of a slash.
          Every settlement (finalize, timeout, dispute verdict, annulment) first moves the
          job to a final state, which is never left, and then books exactly its escrow
          and bond into balances: each replica's price to exactly one of {that provider,
          the requester}, the audit fee to exactly one of {validator, requester}, the
          challenge bond to exactly one of {challenger, split}, and every slashed amount
          as bounty + requester share + burn (the burn takes the remainder, so the three
          add up exactly).
        - No stuck money: ASSIGNED and COMMITTED end by `timeout` after their deadline,
          REVEALED and AUDITING by `finalize` after the challenge/report deadline,
          DISPUTED by `dispute_timeout` after each round deadline (the silent party
          loses; a silent referee annuls and refunds).
        - Assignment randomness mixes block.prevrandao with the job id; the requester is
          excluded from the draw and Registry.draw never returns a member twice, so
          nobody is assigned twice and nobody serves its own job. A requester can only
          steer the draw by delaying its own post; a block proposer can bias prevrandao
          by one bit per skipped slot. The stake bond, not the draw, is what makes
          cheating unprofitable.
        - Commitments bind the job id and the provider address, so one provider cannot
          copy another's commitment; reveals are only accepted after all replicas
          committed. The audit coin and the validator draw use the hash of the block
          holding the last commitment: unknown when the result was fixed, and the same
          whenever the provider reveals, so waiting for a lucky block does not help; a
          reveal that cannot read that hash (same block, or > 256 blocks later) is
          audited for certain. Withholding the reveal instead costs the bond (timeout).
        - Payouts are pull payments (`balances` + `withdraw`): no settlement depends on a
          receiver accepting a transfer, so none can be blocked.
        - Only Registry-locked bonds are slashed; Registry is told to send the slashed
          tokens here and they are split in the same transaction.
        - Deterrence: an audit-mode job with p > 0 is only accepted if p (S + R) >= g for
          a provider that skips all the work (S = bond, R = g = price), so cheating on it
          loses money in expectation (`min_audit_bps`). p = 0 is an unaudited job,
          protected by challenges only.
        - Bounds: at most `_MAX_REPLICAS` replicas (loops over replicas are bounded),
          windows between `_MIN_WINDOW` and `_MAX_WINDOW`, at most `_MAX_DISPUTE_ROUNDS`
          dispute moves, prices below 2**96 and market balances below 2**224 (packed
          storage; balances are backed by tokens held here, so a token whose supply stays
          below 2**224, as any real token's does, never reaches that bound).
        - `@nonreentrant` on every function that moves tokens; state is written before
          any external call (checks-effects-interactions).
"""

from ethereum.ercs import IERC20


interface IRegistry:
    def lock(account: address, amount: uint256): nonpayable
    def unlock(account: address, amount: uint256): nonpayable
    def slash(account: address, amount: uint256, recipient: address) -> uint256: nonpayable
    def draw(
        role: uint8,
        seed: uint256,
        count: uint256,
        max_price: uint256,
        bond: uint256,
        exclude: DynArray[address, 9],
    ) -> DynArray[address, 8]: nonpayable


# Verification modes.
MODE_AUDIT: public(constant(uint8)) = 0
MODE_REPLICATE: public(constant(uint8)) = 1

# Job states (0 = no such job).
STATE_ASSIGNED: public(constant(uint8)) = 1
STATE_COMMITTED: public(constant(uint8)) = 2
STATE_REVEALED: public(constant(uint8)) = 3
STATE_AUDITING: public(constant(uint8)) = 4
STATE_DISPUTED: public(constant(uint8)) = 5
STATE_FINALIZED: public(constant(uint8)) = 6
STATE_REFUNDED: public(constant(uint8)) = 7

# Who opened a dispute.
CHALLENGER_EXTERNAL: public(constant(uint8)) = 0
CHALLENGER_REPLICA: public(constant(uint8)) = 1
CHALLENGER_VALIDATOR: public(constant(uint8)) = 2

# Whose move it is in a dispute.
TURN_DEFENDER: public(constant(uint8)) = 0
TURN_CHALLENGER: public(constant(uint8)) = 1
TURN_REFEREE: public(constant(uint8)) = 2

# How a dispute ended (DisputeResolved.reason).
REASON_REFEREE: public(constant(uint8)) = 0
REASON_TIMEOUT: public(constant(uint8)) = 1
REASON_BOTH_AT_FAULT: public(constant(uint8)) = 2  # the referee found both results wrong

# Who a verdict finds at fault (the committee's `guilty` codes).
_GUILTY_DEFENDER: constant(uint8) = 1
_GUILTY_CHALLENGER: constant(uint8) = 2
_GUILTY_BOTH: constant(uint8) = 3

# Registry roles (mirrors Registry.ROLE_*).
_ROLE_PROVIDER: constant(uint8) = 1
_ROLE_VALIDATOR: constant(uint8) = 2

# Where burned stake goes: nobody holds its key, and it works with any ERC-20.
BURN_ADDRESS: public(constant(address)) = 0x000000000000000000000000000000000000dEaD
# Basis points in one whole.
_BPS: constant(uint256) = 10_000
# Most replicas a job may ask for (bounds every loop over replicas and the packed masks).
_MAX_REPLICAS: constant(uint256) = 8
# Shortest window (s): shorter would not survive one slow block.
_MIN_WINDOW: constant(uint256) = 60
# Longest window (s): longer would tie up stake and escrow for too long.
_MAX_WINDOW: constant(uint256) = 30 * 86400
# Most dispute moves: bisection over steps then ops (2 x 32 levels) fits.
_MAX_DISPUTE_ROUNDS: constant(uint256) = 64
# Price per replica must fit the 96 bits beside the requester in one storage word.
_MAX_PRICE: constant(uint256) = 2**96 - 1

# Packed status word layout (bit offsets), see `_pack_status`.
_OFF_AUDITED: constant(uint256) = 4
_OFF_MODE: constant(uint256) = 8
_OFF_MODE_PARAM: constant(uint256) = 16
_OFF_REPLICAS: constant(uint256) = 32
_OFF_COMMITTED: constant(uint256) = 40
_OFF_REVEALED: constant(uint256) = 48
_OFF_COMMIT_DEADLINE: constant(uint256) = 56
_OFF_REVEAL_WINDOW: constant(uint256) = 96
_OFF_CHALLENGE_DEADLINE: constant(uint256) = 120
_OFF_CHALLENGE_WINDOW: constant(uint256) = 160
_OFF_SEED_BLOCK: constant(uint256) = 184
_OFF_REQUESTER: constant(uint256) = 224
_MASK_4: constant(uint256) = 2**4 - 1
_MASK_8: constant(uint256) = 2**8 - 1
_MASK_16: constant(uint256) = 2**16 - 1
_MASK_24: constant(uint256) = 2**24 - 1
_MASK_32: constant(uint256) = 2**32 - 1
_MASK_40: constant(uint256) = 2**40 - 1
# Bits of the status word that `_save` keeps (the requester's id, set once by `post_job`).
_REQUESTER_BITS: constant(uint256) = _MASK_32 << _OFF_REQUESTER
# An account word: market balance (low 224 bits) | requester id << 224, see `_accounts`.
_MASK_BALANCE: constant(uint256) = 2**224 - 1
_OFF_ACCOUNT_ID: constant(uint256) = 224
# Blocks whose hash the EVM can still read (BLOCKHASH window).
_BLOCKHASH_WINDOW: constant(uint256) = 256
_MASK_160: constant(uint256) = 2**160 - 1

# Packed dispute words (bit offsets), see `_dispute_head` and `_dispute_game`.
_OFF_KIND: constant(uint256) = 160
_OFF_CHALLENGER_REPLICA: constant(uint256) = 168
_OFF_DEFENDER_REPLICA: constant(uint256) = 176
_OFF_ROUND: constant(uint256) = 160
_OFF_TURN: constant(uint256) = 168
_OFF_DEADLINE: constant(uint256) = 176
_OFF_CLOSED: constant(uint256) = 216


# The decoded job record. Storage keeps it in the status word (`_job_status`, with the
# requester as a 32-bit id) and replica 0's seat (`_seats`, which holds the price beside
# the provider), because every fresh storage word costs ~22k gas; `jobs(id)` decodes it.
struct Job:
    requester: address
    price: uint256  # per replica
    state: uint8
    mode: uint8
    mode_param: uint256  # audit probability in bps, or number of replicas
    replicas: uint256
    committed_mask: uint256  # bit i = replica i committed
    revealed_mask: uint256  # bit i = replica i revealed
    commit_deadline: uint256
    reveal_deadline: uint256
    challenge_deadline: uint256  # 0 until all revealed; audit report deadline when AUDITING
    challenge_window: uint256
    audited: bool  # a validator was drawn (its record is in `audits`)
    seed_block: uint256  # block of the last commitment; its hash seeds the audit draw


# One assigned provider (decoded from `_seats` and `_digests`). `digest` is its commitment
# until it reveals, then keccak256(output_root || trace_root): the roots themselves live in
# the Revealed event.
struct Replica:
    provider: address
    digest: bytes32


struct ReplicaView:
    provider: address
    digest: bytes32
    committed: bool
    revealed: bool


struct Audit:
    validator: address
    digest: bytes32  # keccak256(output_root || trace_root) reported; empty until reported


struct Dispute:
    challenger: address
    kind: uint8  # CHALLENGER_*
    challenger_replica: uint256  # the challenging replica when kind == CHALLENGER_REPLICA
    defender_replica: uint256
    bond: uint256  # token bond held here (external challengers only)
    round: uint256
    turn: uint8  # TURN_*
    deadline: uint256


event JobPosted:
    job_id: indexed(uint256)
    requester: indexed(address)
    spec_hash: bytes32
    model_root: bytes32
    input_root: bytes32
    mode: uint8
    mode_param: uint256
    price: uint256
    escrow: uint256
    from_balance: uint256  # part of the escrow taken from the requester's market balance
    commit_deadline: uint256
    reveal_deadline: uint256


event ProviderAssigned:
    job_id: indexed(uint256)
    provider: indexed(address)
    replica: uint256
    bond: uint256


event Committed:
    job_id: indexed(uint256)
    provider: indexed(address)
    replica: uint256
    commitment: bytes32
    state: uint8


event Revealed:
    job_id: indexed(uint256)
    provider: indexed(address)
    replica: uint256
    output_root: bytes32
    trace_root: bytes32
    state: uint8  # the job's state after this reveal
    challenge_deadline: uint256


event AuditDrawn:
    job_id: indexed(uint256)
    validator: indexed(address)  # empty: drawn but no eligible validator; job goes unaudited
    report_deadline: uint256


event AuditReported:
    job_id: indexed(uint256)
    validator: indexed(address)
    output_root: bytes32
    trace_root: bytes32
    agrees: bool
    challenge_deadline: uint256


event AuditAbandoned:
    job_id: indexed(uint256)
    validator: indexed(address)


event Challenged:
    job_id: indexed(uint256)
    challenger: indexed(address)
    kind: uint8
    defender_replica: uint256
    bond: uint256
    deadline: uint256


event DisputeMove:
    job_id: indexed(uint256)
    mover: indexed(address)
    round: uint256
    data: bytes32
    next_turn: uint8
    deadline: uint256


event DisputeReferred:
    job_id: indexed(uint256)
    by: indexed(address)
    round: uint256
    deadline: uint256  # the referee's deadline


event DisputeResolved:
    job_id: indexed(uint256)
    defender_at_fault: bool
    reason: uint8
    winner: indexed(address)


event DisputeAnnulled:
    job_id: indexed(uint256)


event Credited:
    job_id: indexed(uint256)
    account: indexed(address)
    amount: uint256


event Deposited:
    account: indexed(address)
    amount: uint256


event Withdrawn:
    account: indexed(address)
    amount: uint256


event Slashed:
    job_id: indexed(uint256)
    account: indexed(address)
    amount: uint256
    bounty_to: address
    bounty: uint256
    requester_share: uint256
    burned: uint256


event Finalized:
    job_id: indexed(uint256)
    paid: uint256
    refunded: uint256


event Refunded:
    job_id: indexed(uint256)
    requester: indexed(address)
    amount: uint256


event RefereeChanged:
    previous_referee: indexed(address)
    new_referee: indexed(address)


token: public(immutable(IERC20))
registry: public(immutable(IRegistry))
owner: public(immutable(address))
# Bond per assigned provider/validator = max(min_bond, price * bond_multiplier_bps / 10000).
min_bond: public(immutable(uint256))
bond_multiplier_bps: public(immutable(uint256))
# Audit fee escrowed in audit mode (p > 0) = price * audit_fee_bps / 10000.
audit_fee_bps: public(immutable(uint256))
# Token bond an outside challenger posts.
challenge_bond: public(immutable(uint256))
# Split of every slashed amount: bounty to the winner, share to the requester, rest burned.
bounty_bps: public(immutable(uint256))
requester_share_bps: public(immutable(uint256))
# Seconds each dispute party (and finally the referee) has for its move.
dispute_round_window: public(immutable(uint256))

referee: public(address)
job_count: public(uint256)
# Each account's tokens inside the market: settlements credit payments, refunds, bounties
# and returned bonds here (pull payments: a receiver that cannot receive, e.g. under a
# token blacklist, can never block a settlement); `deposit` adds to it; `post_job` spends
# it before pulling from the wallet (a prepaid requester saves a token transfer per job);
# `withdraw` takes it out. Stored in the low 224 bits of the account word, beside the
# account's requester id (so `post_job` reads both in one word); `balances(a)` decodes it.
_accounts: HashMap[address, uint256]

# state, mode, mode_param, replicas, masks, deadlines, requester id: see `_pack_status`
_job_status: HashMap[uint256, uint256]
# job -> replica index -> provider (low 160 bits) | price per replica (high 96 bits)
_seats: HashMap[uint256, HashMap[uint256, uint256]]
# job -> replica index -> commitment, then result digest (see `Replica`)
_digests: HashMap[uint256, HashMap[uint256, bytes32]]
# Requesters by a 32-bit id (from 1, kept in the top bits of the account word), so that a
# job's requester fits in its status word: a requester's first job writes its id once,
# every later job saves a fresh word.
_requesters: HashMap[uint256, address]
_requester_count: uint256
audits: public(HashMap[uint256, Audit])
# A dispute in two words (`disputes(id)` decodes them; the bond is `challenge_bond` for an
# external challenger and zero otherwise, so it is not stored):
# challenger (low 160 bits) | kind << 160 | challenger_replica << 168 | defender_replica << 176
_dispute_head: HashMap[uint256, uint256]
# What a move reads and writes: the defender's address (low 160 bits) | round << 160 |
# turn << 168 | deadline (40 bits) << 176 | closed << 216 (set when the dispute is settled,
# so a move need not read the job).
_dispute_game: HashMap[uint256, uint256]


@deploy
def __init__(
    token_: IERC20,
    registry_: IRegistry,
    referee_: address,
    min_bond_: uint256,
    bond_multiplier_bps_: uint256,
    audit_fee_bps_: uint256,
    challenge_bond_: uint256,
    bounty_bps_: uint256,
    requester_share_bps_: uint256,
    dispute_round_window_: uint256,
):
    """
    @dev Deploys the market; the deployer becomes owner (its only power: `set_referee`).
    @param token_ The payment and stake token.
    @param registry_ The Registry whose members are drawn and bonded.
    @param referee_ The account that decides disputes.
    @param min_bond_ Smallest bond locked per assigned provider or validator (more than
           zero: a job without a bond would let a provider cheat for free).
    @param bond_multiplier_bps_ Bond as a multiple of the price, in bps.
    @param audit_fee_bps_ Audit fee as a fraction of the price, in bps.
    @param challenge_bond_ Token bond of an outside challenger (more than zero).
    @param bounty_bps_ Share of a slash paid to the dispute winner, in bps.
    @param requester_share_bps_ Share of a slash refunded to the requester, in bps.
    @param dispute_round_window_ Seconds per dispute move.
    """
    assert token_.address != empty(address), "job_market: token is the zero address"
    assert registry_.address != empty(address), "job_market: registry is the zero address"
    assert referee_ != empty(address), "job_market: referee is the zero address"
    assert min_bond_ > 0, "job_market: zero minimum bond"
    assert challenge_bond_ > 0, "job_market: zero challenge bond"
    assert bounty_bps_ + requester_share_bps_ <= _BPS, "job_market: slash split above 10000 bps"
    assert dispute_round_window_ >= _MIN_WINDOW and dispute_round_window_ <= _MAX_WINDOW, (
        "job_market: dispute round window out of range"
    )
    token = token_
    registry = registry_
    owner = msg.sender
    min_bond = min_bond_
    bond_multiplier_bps = bond_multiplier_bps_
    audit_fee_bps = audit_fee_bps_
    challenge_bond = challenge_bond_
    bounty_bps = bounty_bps_
    requester_share_bps = requester_share_bps_
    dispute_round_window = dispute_round_window_
    self.referee = referee_
    log RefereeChanged(previous_referee=empty(address), new_referee=referee_)


@external
def set_referee(new_referee: address):
    """
    @dev Replaces the referee (the deployment sets the DisputeCommittee); owner only.
    @param new_referee The next referee; not the zero address.
    """
    assert msg.sender == owner, "job_market: caller is not the owner"
    assert new_referee != empty(address), "job_market: referee is the zero address"
    log RefereeChanged(previous_referee=self.referee, new_referee=new_referee)
    self.referee = new_referee


@external
@nonreentrant
def post_job(
    spec_hash: bytes32,
    model_root: bytes32,
    input_root: bytes32,
    mode: uint8,
    mode_param: uint256,
    price: uint256,
    commit_window: uint256,
    reveal_window: uint256,
    challenge_window: uint256,
) -> uint256:
    """
    @dev Escrows `escrow_for(mode, mode_param, price)` from the caller's market balance
         and, for any remainder, from its wallet (approve first); draws the providers and
         locks their bonds.
    @param spec_hash Hash of the job spec (commits to model, input, task, params, runtime).
    @param model_root Blob root of the model (logged for providers).
    @param input_root Blob root of the input (logged for providers).
    @param mode MODE_AUDIT or MODE_REPLICATE.
    @param mode_param Audit probability in bps (0..10000), or number of replicas (1..8).
    @param price Payment per replica; providers asking more are not drawn.
    @param commit_window Seconds from now until every commitment is due.
    @param reveal_window Seconds after the commit deadline until every reveal is due.
    @param challenge_window Seconds the result stays open to challenge after the reveals.
    @return The new job id (ids start at 1).
    """
    replicas: uint256 = 1
    if mode == MODE_AUDIT:
        assert mode_param <= _BPS, "job_market: audit probability above 10000 bps"
    elif mode == MODE_REPLICATE:
        assert mode_param >= 1 and mode_param <= _MAX_REPLICAS, (
            "job_market: replicas must be between 1 and 8"
        )
        replicas = mode_param
    else:
        raise "job_market: unknown mode"
    assert price > 0, "job_market: zero price"
    assert price <= _MAX_PRICE, "job_market: price above 2**96 - 1"
    if mode == MODE_AUDIT and mode_param > 0:
        # p (S + R) >= g with S = bond, R = g = price (a provider that skips all the work).
        assert mode_param * (self._bond(price) + price) >= price * _BPS, (
            "job_market: audit probability below the deterrence minimum; see min_audit_bps(price)"
        )
    assert commit_window >= _MIN_WINDOW and commit_window <= _MAX_WINDOW, (
        "job_market: commit window out of range"
    )
    assert reveal_window >= _MIN_WINDOW and reveal_window <= _MAX_WINDOW, (
        "job_market: reveal window out of range"
    )
    assert challenge_window >= _MIN_WINDOW and challenge_window <= _MAX_WINDOW, (
        "job_market: challenge window out of range"
    )

    job_id: uint256 = self.job_count + 1
    self.job_count = job_id
    commit_deadline: uint256 = block.timestamp + commit_window
    # A fresh status word (layout: `_pack_status`): nothing committed, revealed or drawn.
    status: uint256 = (
        convert(STATE_ASSIGNED, uint256)
        | (convert(mode, uint256) << _OFF_MODE)
        | (mode_param << _OFF_MODE_PARAM)
        | (replicas << _OFF_REPLICAS)
        | (commit_deadline << _OFF_COMMIT_DEADLINE)
        | (reveal_window << _OFF_REVEAL_WINDOW)
        | (challenge_window << _OFF_CHALLENGE_WINDOW)
    )
    account: uint256 = self._accounts[msg.sender]
    requester_id: uint256 = account >> _OFF_ACCOUNT_ID
    new_requester: bool = requester_id == 0
    if new_requester:
        requester_id = self._requester_count + 1
        assert requester_id <= _MASK_32, "job_market: too many requesters"
        self._requester_count = requester_id
        self._requesters[requester_id] = msg.sender
    self._job_status[job_id] = status | (requester_id << _OFF_REQUESTER)
    escrow: uint256 = self._escrow(mode, mode_param, price)
    # Spend the requester's market balance first, pull the rest from its wallet.
    balance: uint256 = account & _MASK_BALANCE
    from_balance: uint256 = min(balance, escrow)
    if from_balance > 0 or new_requester:
        self._accounts[msg.sender] = (balance - from_balance) | (requester_id << _OFF_ACCOUNT_ID)
    log JobPosted(
        job_id=job_id,
        requester=msg.sender,
        spec_hash=spec_hash,
        model_root=model_root,
        input_root=input_root,
        mode=mode,
        mode_param=mode_param,
        price=price,
        escrow=escrow,
        from_balance=from_balance,
        commit_deadline=commit_deadline,
        reveal_deadline=commit_deadline + reveal_window,
    )

    bond: uint256 = self._bond(price)
    providers: DynArray[address, 8] = extcall registry.draw(
        _ROLE_PROVIDER, self._assignment_seed(job_id), replicas, price, bond, [msg.sender]
    )
    assert len(providers) == replicas, "job_market: too few eligible providers"
    for i: uint256 in range(_MAX_REPLICAS):
        if i == replicas:
            break
        self._seats[job_id][i] = convert(providers[i], uint256) | (price << 160)
        log ProviderAssigned(job_id=job_id, provider=providers[i], replica=i, bond=bond)

    if escrow > from_balance:
        self._pull(escrow - from_balance)
    return job_id


@external
def commit(job_id: uint256, commitment: bytes32):
    """
    @dev Records an assigned provider's commitment before the commit deadline.
    @param job_id The job.
    @param commitment keccak256(job_id (32 bytes) || provider (20 bytes) || output_root ||
           trace_root || salt), see `commitment_for`.
    """
    # The status word is read and updated in place (see `_pack_status` for its layout).
    status: uint256 = self._status(job_id)
    assert status & _MASK_4 == convert(STATE_ASSIGNED, uint256), (
        "job_market: job is not awaiting commitments"
    )
    assert block.timestamp <= (status >> _OFF_COMMIT_DEADLINE) & _MASK_40, (
        "job_market: commit deadline passed"
    )
    assert commitment != empty(bytes32), "job_market: empty commitment"
    replicas: uint256 = (status >> _OFF_REPLICAS) & _MASK_8
    index: uint256 = self._replica_index(job_id, replicas, msg.sender)
    bit: uint256 = 1 << index
    assert (status >> _OFF_COMMITTED) & bit == 0, "job_market: already committed"
    self._digests[job_id][index] = commitment
    status |= bit << _OFF_COMMITTED
    state: uint8 = STATE_ASSIGNED
    if (status >> _OFF_COMMITTED) & _MASK_8 == (1 << replicas) - 1:
        # The last commitment: COMMITTED, and its block seeds the audit draw (the seed
        # bits are still zero: they are only written here).
        state = STATE_COMMITTED
        status = self._with_state(status, STATE_COMMITTED) | (
            (block.number & _MASK_40) << _OFF_SEED_BLOCK
        )
    self._job_status[job_id] = status
    log Committed(
        job_id=job_id, provider=msg.sender, replica=index, commitment=commitment, state=state
    )


@external
@nonreentrant
def reveal(job_id: uint256, output_root: bytes32, trace_root: bytes32, salt: bytes32):
    """
    @dev Opens an assigned provider's commitment; allowed once every replica committed and
         before the reveal deadline. The last reveal compares replicas (a mismatch opens a
         dispute) or, in audit mode, draws the audit.
    @param job_id The job.
    @param output_root Merkle root of the output blob.
    @param trace_root Merkle root of the execution trace.
    @param salt The secret salt used in the commitment.
    """
    # The status word is read and updated in place (see `_pack_status` for its layout).
    status: uint256 = self._status(job_id)
    assert status & _MASK_4 == convert(STATE_COMMITTED, uint256), (
        "job_market: job is not in its reveal phase"
    )
    commit_deadline: uint256 = (status >> _OFF_COMMIT_DEADLINE) & _MASK_40
    assert block.timestamp <= commit_deadline + ((status >> _OFF_REVEAL_WINDOW) & _MASK_24), (
        "job_market: reveal deadline passed"
    )
    replicas: uint256 = (status >> _OFF_REPLICAS) & _MASK_8
    index: uint256 = self._replica_index(job_id, replicas, msg.sender)
    bit: uint256 = 1 << index
    assert (status >> _OFF_REVEALED) & bit == 0, "job_market: already revealed"
    assert self._commitment(job_id, msg.sender, output_root, trace_root, salt) == (
        self._digests[job_id][index]
    ), "job_market: reveal does not match the commitment"
    self._digests[job_id][index] = keccak256(concat(output_root, trace_root))
    status |= bit << _OFF_REVEALED
    if (status >> _OFF_REVEALED) & _MASK_8 == (1 << replicas) - 1:
        status = self._after_reveals(job_id, status)
    self._job_status[job_id] = status
    log Revealed(
        job_id=job_id,
        provider=msg.sender,
        replica=index,
        output_root=output_root,
        trace_root=trace_root,
        state=convert(status & _MASK_4, uint8),
        challenge_deadline=(status >> _OFF_CHALLENGE_DEADLINE) & _MASK_40,
    )


@external
def audit_report(job_id: uint256, output_root: bytes32, trace_root: bytes32):
    """
    @dev The drawn validator reports its own result before the report deadline. Agreement
         reopens a full challenge window; disagreement opens a dispute against the
         provider with the validator as challenger.
    @param job_id The job.
    @param output_root The validator's output root.
    @param trace_root The validator's trace root.
    """
    job: Job = self._load_status(job_id)
    self._check_drawn_validator(job_id, job)
    digest: bytes32 = keccak256(concat(output_root, trace_root))
    self.audits[job_id].digest = digest
    agrees: bool = digest == self._digests[job_id][0]
    if agrees:
        job.state = STATE_REVEALED
        job.challenge_deadline = block.timestamp + job.challenge_window
    else:
        job.state = STATE_DISPUTED
    self._save(job_id, job)
    log AuditReported(
        job_id=job_id,
        validator=msg.sender,
        output_root=output_root,
        trace_root=trace_root,
        agrees=agrees,
        challenge_deadline=job.challenge_deadline,
    )
    if not agrees:
        self._open_dispute(job_id, msg.sender, CHALLENGER_VALIDATOR, 0, 0, 0)


@external
@nonreentrant
def abandon_audit(job_id: uint256):
    """
    @dev The drawn validator declares, before the report deadline, that it cannot audit:
         nobody gave it the job (a provider that withholds its spec and input from the
         auditor while the requester is offline). Whoever is to blame, nobody can prove it
         on chain, so nobody is paid or slashed: every bond is released and the requester
         refunded in full, as when a dispute is annulled. A silent validator is slashed
         instead (`finalize`).
    @param job_id The job being audited.
    """
    job: Job = self._load(job_id)
    self._check_drawn_validator(job_id, job)
    job.state = STATE_REFUNDED
    self._save(job_id, job)
    log AuditAbandoned(job_id=job_id, validator=msg.sender)
    self._release_and_refund(job_id, job)


@external
@nonreentrant
def challenge(job_id: uint256, replica: uint256):
    """
    @dev Disputes a revealed result during the challenge window, posting `challenge_bond`
         (approve first). The defender moves first.
    @param job_id The job.
    @param replica Index of the replica whose result is challenged.
    """
    job: Job = self._load_status(job_id)
    assert job.state != STATE_AUDITING, "job_market: audit in progress; challenge after its report"
    assert job.state == STATE_REVEALED, "job_market: job is not open to challenge"
    assert block.timestamp <= job.challenge_deadline, "job_market: challenge window closed"
    assert replica < job.replicas, "job_market: no such replica"
    assert msg.sender != self._provider(job_id, replica), (
        "job_market: cannot challenge your own result"
    )
    job.state = STATE_DISPUTED
    self._save(job_id, job)
    self._open_dispute(job_id, msg.sender, CHALLENGER_EXTERNAL, 0, replica, challenge_bond)
    self._pull(challenge_bond)


@external
def dispute_move(job_id: uint256, data: bytes32):
    """
    @dev One move of the dispute game by the party whose turn it is, before the round
         deadline; the bisection protocol gives `data` its meaning (e.g. a sub-trace root).
    @param job_id The disputed job.
    @param data The move's payload, logged for the other party.
    """
    game: uint256 = self._mover_turn(job_id)
    turn: uint8 = TURN_DEFENDER
    if convert((game >> _OFF_TURN) & _MASK_8, uint8) == TURN_DEFENDER:
        turn = TURN_CHALLENGER
    round: uint256 = ((game >> _OFF_ROUND) & _MASK_8) + 1
    if round == _MAX_DISPUTE_ROUNDS:
        turn = TURN_REFEREE
    deadline: uint256 = block.timestamp + dispute_round_window
    self._dispute_game[job_id] = self._pack_game(game & _MASK_160, round, turn, deadline)
    log DisputeMove(
        job_id=job_id,
        mover=msg.sender,
        round=round,
        data=data,
        next_turn=turn,
        deadline=deadline,
    )


@external
def refer_dispute(job_id: uint256):
    """
    @dev The party whose turn it is ends the game and hands the dispute to the referee
         (the bisection reached its last leaf, so it has nothing left to move). The
         referee then has one round window; if it stays silent, `dispute_timeout` annuls.
         A party that refers before the game is over concedes: the referee rules on the
         game as it stands.
    @param job_id The disputed job.
    """
    game: uint256 = self._mover_turn(job_id)
    deadline: uint256 = block.timestamp + dispute_round_window
    round: uint256 = (game >> _OFF_ROUND) & _MASK_8
    self._dispute_game[job_id] = self._pack_game(game & _MASK_160, round, TURN_REFEREE, deadline)
    log DisputeReferred(job_id=job_id, by=msg.sender, round=round, deadline=deadline)


@internal
@view
def _mover_turn(job_id: uint256) -> uint256:
    """
    @dev Checks that the caller is the dispute party due to move, before the deadline.
         Reads the game word only (and the head word on the challenger's turn): the
         closed bit stands for the job's state (a job is disputed at most once, and its
         dispute is closed exactly when the job leaves DISPUTED).
    @param job_id The disputed job.
    @return The game word.
    """
    game: uint256 = self._dispute_game[job_id]
    if game == 0:
        # Never disputed: an unknown job reverts as `_load` does.
        self._status(job_id)
    assert game != 0 and (game >> _OFF_CLOSED) & 1 == 0, "job_market: job is not disputed"
    turn: uint8 = convert((game >> _OFF_TURN) & _MASK_8, uint8)
    assert turn != TURN_REFEREE, "job_market: dispute rounds exhausted; the referee decides"
    assert block.timestamp <= (game >> _OFF_DEADLINE) & _MASK_40, (
        "job_market: round deadline passed"
    )
    mover: uint256 = game
    if turn != TURN_DEFENDER:
        mover = self._dispute_head[job_id]
    assert msg.sender == convert(convert(mover & _MASK_160, uint160), address), (
        "job_market: not your turn"
    )
    return game


@internal
@pure
def _pack_game(defender: uint256, round: uint256, turn: uint8, deadline: uint256) -> uint256:
    """
    @dev Packs a dispute's game word (open: closed bit zero).
    @param defender The defending provider's address as a number.
    @param round Moves made so far (at most 64).
    @param turn TURN_*.
    @param deadline The round deadline (40-bit timestamp).
    @return The game word.
    """
    return (
        defender
        | (round << _OFF_ROUND)
        | (convert(turn, uint256) << _OFF_TURN)
        | (deadline << _OFF_DEADLINE)
    )


@internal
@view
def _load_dispute(job_id: uint256) -> Dispute:
    """
    @dev Decodes a dispute's two words (all zero for a job never disputed).
    @param job_id The job.
    @return The dispute record.
    """
    head: uint256 = self._dispute_head[job_id]
    game: uint256 = self._dispute_game[job_id]
    kind: uint8 = convert((head >> _OFF_KIND) & _MASK_8, uint8)
    bond: uint256 = 0
    if kind == CHALLENGER_EXTERNAL and head != 0:
        bond = challenge_bond
    return Dispute(
        challenger=convert(convert(head & _MASK_160, uint160), address),
        kind=kind,
        challenger_replica=(head >> _OFF_CHALLENGER_REPLICA) & _MASK_8,
        defender_replica=(head >> _OFF_DEFENDER_REPLICA) & _MASK_8,
        bond=bond,
        round=(game >> _OFF_ROUND) & _MASK_8,
        turn=convert((game >> _OFF_TURN) & _MASK_8, uint8),
        deadline=(game >> _OFF_DEADLINE) & _MASK_40,
    )


@internal
def _close_dispute(job_id: uint256):
    """
    @dev Marks a dispute settled (moves and referrals are refused from now on); the fields
         `disputes(id)` shows are unchanged.
    @param job_id The job.
    """
    self._dispute_game[job_id] = self._dispute_game[job_id] | (1 << _OFF_CLOSED)


@external
@nonreentrant
def dispute_timeout(job_id: uint256):
    """
    @dev Ends a dispute whose round deadline passed: the party that had to move loses; if
         the referee was due, the dispute is annulled and the requester refunded.
    @param job_id The disputed job.
    """
    job: Job = self._load_disputed(job_id)
    dispute: Dispute = self._load_dispute(job_id)
    assert block.timestamp > dispute.deadline, "job_market: round deadline not reached"
    if dispute.turn == TURN_DEFENDER:
        self._resolve(job_id, job, dispute, _GUILTY_DEFENDER, REASON_TIMEOUT)
    elif dispute.turn == TURN_CHALLENGER:
        self._resolve(job_id, job, dispute, _GUILTY_CHALLENGER, REASON_TIMEOUT)
    else:
        self._annul(job_id, job, dispute)


@external
@nonreentrant
def resolve_dispute(job_id: uint256, provider_at_fault: bool):
    """
    @dev The referee's verdict on a dispute.
    @param job_id The disputed job.
    @param provider_at_fault True if the defending provider's result is wrong, False if the
           challenger is wrong.
    """
    job: Job = self._referee_job(job_id)
    guilty: uint8 = _GUILTY_CHALLENGER
    if provider_at_fault:
        guilty = _GUILTY_DEFENDER
    self._resolve(job_id, job, self._load_dispute(job_id), guilty, REASON_REFEREE)


@external
@nonreentrant
def resolve_dispute_both(job_id: uint256):
    """
    @dev The referee's verdict that both results are wrong: everyone holding either
         result is slashed with the bounty to the requester, nobody is paid, the requester
         is refunded (an outside challenger's bond is split like a slash).
    @param job_id The disputed job.
    """
    job: Job = self._referee_job(job_id)
    self._resolve(job_id, job, self._load_dispute(job_id), _GUILTY_BOTH, REASON_BOTH_AT_FAULT)


@external
@nonreentrant
def finalize(job_id: uint256):
    """
    @dev Settles an unchallenged job after its challenge window (or after a silent
         validator's report deadline): pays every provider, releases bonds, pays or
         refunds the audit fee.
    @param job_id The job.
    """
    status: uint256 = self._status(job_id)
    state: uint8 = convert(status & _MASK_4, uint8)
    challenge_deadline: uint256 = (status >> _OFF_CHALLENGE_DEADLINE) & _MASK_40
    if state == STATE_REVEALED:
        assert block.timestamp > challenge_deadline, "job_market: challenge window still open"
    elif state == STATE_AUDITING:
        assert block.timestamp > challenge_deadline, (
            "job_market: audit report deadline not reached"
        )
    else:
        raise "job_market: job is not ready to finalize"
    self._job_status[job_id] = self._with_state(status, STATE_FINALIZED)
    job: Job = self._unpack(self._seats[job_id][0] >> 160, empty(address), status)
    # Unchallenged (or audited and agreed): every replica revealed replica 0's result (a
    # mismatch would have opened a dispute), so all are paid without reading their digests;
    # the result and the requester are only read when the audit needs them.
    good: bytes32 = empty(bytes32)
    if job.audited:
        good = self._digests[job_id][0]
        job.requester = self._requester(job_id)
    paid: uint256 = 0
    refund: uint256 = 0
    paid, refund = self._settle(job_id, job, good, empty(bytes32), empty(bytes32), empty(address), True)
    log Finalized(job_id=job_id, paid=paid, refunded=refund)
    if refund > 0:
        self._credit(job_id, self._requester(job_id), refund)


@external
@nonreentrant
def timeout(job_id: uint256):
    """
    @dev Ends a job whose commit or reveal deadline passed with some provider silent:
         silent providers are slashed, the others released, the requester refunded.
    @param job_id The job.
    """
    job: Job = self._load(job_id)
    done_mask: uint256 = 0
    if job.state == STATE_ASSIGNED:
        assert block.timestamp > job.commit_deadline, "job_market: commit deadline not reached"
        done_mask = job.committed_mask
    elif job.state == STATE_COMMITTED:
        assert block.timestamp > job.reveal_deadline, "job_market: reveal deadline not reached"
        done_mask = job.revealed_mask
    else:
        raise "job_market: job has no missed deadline"
    job.state = STATE_REFUNDED
    self._save(job_id, job)
    bond: uint256 = self._bond(job.price)
    refund: uint256 = self._escrow(job.mode, job.mode_param, job.price)
    for i: uint256 in range(_MAX_REPLICAS):
        if i == job.replicas:
            break
        provider: address = self._provider(job_id, i)
        if done_mask & (1 << i) != 0:
            extcall registry.unlock(provider, bond)
        else:
            refund += self._penalize(job_id, provider, bond, job.requester, job.requester)
    log Refunded(job_id=job_id, requester=job.requester, amount=refund)
    self._credit(job_id, job.requester, refund)


@external
@nonreentrant
def deposit(amount: uint256):
    """
    @dev Adds tokens to the caller's market balance (approve first), e.g. to prepay jobs.
    @param amount Base units; more than zero.
    """
    assert amount > 0, "job_market: zero amount"
    self._add_balance(msg.sender, amount)
    log Deposited(account=msg.sender, amount=amount)
    self._pull(amount)


@external
@nonreentrant
def withdraw(amount: uint256):
    """
    @dev Sends tokens from the caller's market balance to the caller.
    @param amount Base units; at most the balance, more than zero.
    """
    assert amount > 0, "job_market: zero amount"
    account: uint256 = self._accounts[msg.sender]
    assert amount <= account & _MASK_BALANCE, "job_market: amount exceeds balance"
    self._accounts[msg.sender] = account - amount
    log Withdrawn(account=msg.sender, amount=amount)
    self._push(msg.sender, amount)


@external
@view
def jobs(job_id: uint256) -> Job:
    """
    @dev The decoded job record (all zero for an unknown id).
    @param job_id The job.
    @return The job.
    """
    status: uint256 = self._job_status[job_id]
    if status == 0:
        return empty(Job)
    return self._unpack(self._seats[job_id][0] >> 160, self._requesters[status >> _OFF_REQUESTER], status)


@external
@view
def balances(account: address) -> uint256:
    """
    @dev An account's tokens inside the market (what `withdraw` may take out).
    @param account The account.
    @return Base units.
    """
    return self._accounts[account] & _MASK_BALANCE


@external
@view
def disputes(job_id: uint256) -> Dispute:
    """
    @dev The decoded dispute record of a job (all zero if it was never disputed).
    @param job_id The job.
    @return challenger, kind, challenger_replica, defender_replica, bond, round, turn,
            deadline.
    """
    return self._load_dispute(job_id)


@external
@view
def assigned(job_id: uint256) -> DynArray[address, _MAX_REPLICAS]:
    """
    @dev The providers assigned to a job, by replica index.
    @param job_id The job.
    @return Their addresses (empty for an unknown id).
    """
    replicas: uint256 = (self._job_status[job_id] >> _OFF_REPLICAS) & _MASK_8
    result: DynArray[address, _MAX_REPLICAS] = []
    for i: uint256 in range(_MAX_REPLICAS):
        if i == replicas:
            break
        result.append(self._provider(job_id, i))
    return result


@external
@view
def replica(job_id: uint256, index: uint256) -> ReplicaView:
    """
    @dev One replica of a job.
    @param job_id The job.
    @param index The replica index.
    @return provider, digest (commitment before reveal, keccak256(output_root ||
            trace_root) after), committed, revealed.
    """
    job: Job = self._unpack(0, empty(address), self._job_status[job_id])
    assert index < job.replicas, "job_market: no such replica"
    return ReplicaView(
        provider=self._provider(job_id, index),
        digest=self._digests[job_id][index],
        committed=job.committed_mask & (1 << index) != 0,
        revealed=job.revealed_mask & (1 << index) != 0,
    )


@external
@view
def bond_for(price: uint256) -> uint256:
    """
    @dev The bond locked on each provider (and the validator) of a job at `price`.
    @param price Price per replica.
    @return max(min_bond, price * bond_multiplier_bps / 10000).
    """
    return self._bond(price)


@external
@view
def escrow_for(mode: uint8, mode_param: uint256, price: uint256) -> uint256:
    """
    @dev What `post_job` pulls from the requester.
    @param mode MODE_AUDIT or MODE_REPLICATE.
    @param mode_param Audit probability (bps) or replicas.
    @param price Price per replica.
    @return price * replicas, plus the audit fee in audit mode with p > 0.
    """
    return self._escrow(mode, mode_param, price)


@external
@view
def audit_fee_for(price: uint256) -> uint256:
    """
    @dev The audit fee of an audit-mode job with p > 0 (paid to the validator if drawn and
         right, else refunded).
    @param price Price per replica.
    @return price * audit_fee_bps / 10000.
    """
    return price * audit_fee_bps // _BPS


@external
@view
def min_audit_bps(price: uint256) -> uint256:
    """
    @dev Smallest audit probability `post_job` accepts at `price` (besides 0, unaudited):
         p (S + R) >= g with S = bond_for(price), R = g = price.
    @param price Price per replica (more than zero).
    @return ceil(price * 10000 / (bond_for(price) + price)) in bps.
    """
    return (price * _BPS + self._bond(price) + price - 1) // (self._bond(price) + price)


@external
@pure
def commitment_for(
    job_id: uint256, provider: address, output_root: bytes32, trace_root: bytes32, salt: bytes32
) -> bytes32:
    """
    @dev The commitment a provider submits, computed the same way `reveal` checks it.
    @param job_id The job.
    @param provider The committing provider.
    @param output_root Merkle root of the output.
    @param trace_root Merkle root of the trace.
    @param salt A fresh secret 32-byte salt.
    @return The commitment hash.
    """
    return self._commitment(job_id, provider, output_root, trace_root, salt)


@internal
@pure
def _commitment(
    job_id: uint256, provider: address, output_root: bytes32, trace_root: bytes32, salt: bytes32
) -> bytes32:
    """
    @dev keccak256(job_id || provider || output_root || trace_root || salt): the job id
         and provider inside stop a commitment from being copied to another job or by
         another provider.
    @param job_id The job.
    @param provider The committing provider.
    @param output_root Merkle root of the output.
    @param trace_root Merkle root of the trace.
    @param salt The secret salt.
    @return The commitment hash.
    """
    return keccak256(
        concat(convert(job_id, bytes32), convert(provider, bytes20), output_root, trace_root, salt)
    )


@internal
@view
def _bond(price: uint256) -> uint256:
    """
    @dev Bond per assigned member for a job at `price`.
    @param price Price per replica.
    @return max(min_bond, price * bond_multiplier_bps / 10000).
    """
    return max(min_bond, price * bond_multiplier_bps // _BPS)


@internal
@view
def _escrow(mode: uint8, mode_param: uint256, price: uint256) -> uint256:
    """
    @dev The tokens a job holds in escrow.
    @param mode MODE_AUDIT or MODE_REPLICATE.
    @param mode_param Audit probability (bps) or replicas.
    @param price Price per replica.
    @return price * replicas (+ audit fee when audits are possible).
    """
    if mode == MODE_REPLICATE:
        return price * mode_param
    if mode_param == 0:
        return price
    return price + price * audit_fee_bps // _BPS


@internal
@view
def _assignment_seed(job_id: uint256) -> uint256:
    """
    @dev Randomness for drawing a job's providers: the beacon (prevrandao) mixed with the
         job id. The requester could only steer it by delaying its own post, and it is
         excluded from the draw anyway.
    @param job_id The job.
    @return 256 pseudo-random bits.
    """
    return convert(keccak256(abi_encode(block.prevrandao, job_id)), uint256)


@internal
@view
def _audit_seed(job_id: uint256, seed_block: uint256) -> (bool, uint256):
    """
    @dev Randomness for the audit coin and the validator draw: the hash of the block that
         holds the last commitment, which did not exist when the provider fixed its result
         and does not depend on when it reveals. (Randomness read at reveal time would let
         a cheating provider wait for a block that skips the audit.) If that hash is not
         readable (reveal in the same block, or more than 256 blocks later) the seed is
         not fresh and the caller audits for certain.
    @param job_id The job.
    @param seed_block The block of the last commitment.
    @return (fresh, 256 pseudo-random bits).
    """
    age: uint256 = block.number - seed_block
    if age == 0 or age > _BLOCKHASH_WINDOW:
        return False, convert(keccak256(abi_encode(block.prevrandao, job_id)), uint256)
    return True, convert(keccak256(abi_encode(blockhash(seed_block), job_id)), uint256)


@internal
@view
def _load(job_id: uint256) -> Job:
    """
    @dev Reads and decodes a job; reverts for an unknown id.
    @param job_id The job.
    @return The decoded job.
    """
    status: uint256 = self._status(job_id)
    return self._unpack(
        self._seats[job_id][0] >> 160, self._requesters[status >> _OFF_REQUESTER], status
    )


@internal
def _save(job_id: uint256, job: Job):
    """
    @dev Writes a job's status word, keeping its requester id (fixed by `post_job`; the
         word was read before, so the extra read is warm).
    @param job_id The job.
    @param job The decoded job.
    """
    self._job_status[job_id] = self._pack_status(job) | (self._job_status[job_id] & _REQUESTER_BITS)


@internal
@view
def _requester(job_id: uint256) -> address:
    """
    @dev A job's requester, from the id in its status word.
    @param job_id The job.
    @return The requester.
    """
    return self._requesters[self._job_status[job_id] >> _OFF_REQUESTER]


@internal
@view
def _provider(job_id: uint256, index: uint256) -> address:
    """
    @dev The provider in a job's seat `index` (empty if none).
    @param job_id The job.
    @param index The replica index.
    @return The provider.
    """
    return convert(convert(self._seats[job_id][index] & _MASK_160, uint160), address)


@internal
@view
def _replica(job_id: uint256, index: uint256) -> Replica:
    """
    @dev One replica's provider and digest.
    @param job_id The job.
    @param index The replica index.
    @return The replica.
    """
    return Replica(provider=self._provider(job_id, index), digest=self._digests[job_id][index])


@internal
@view
def _load_disputed(job_id: uint256) -> Job:
    """
    @dev Reads a job that must be DISPUTED.
    @param job_id The job.
    @return The decoded job.
    """
    job: Job = self._load(job_id)
    assert job.state == STATE_DISPUTED, "job_market: job is not disputed"
    return job


@internal
@view
def _referee_job(job_id: uint256) -> Job:
    """
    @dev Checks that the caller is the referee and reads the disputed job it rules on.
    @param job_id The job.
    @return The decoded job.
    """
    assert msg.sender == self.referee, "job_market: caller is not the referee"
    return self._load_disputed(job_id)


@internal
def _pull(amount: uint256):
    """
    @dev Takes `amount` tokens from the caller's wallet (approved to this contract).
    @param amount Base units.
    """
    assert extcall token.transferFrom(msg.sender, self, amount), "job_market: transfer failed"


@internal
def _push(receiver: address, amount: uint256):
    """
    @dev Sends `amount` tokens held here to `receiver`.
    @param receiver The receiver.
    @param amount Base units.
    """
    assert extcall token.transfer(receiver, amount), "job_market: transfer failed"


@internal
@view
def _status(job_id: uint256) -> uint256:
    """
    @dev A job's status word; reverts for an unknown id.
    @param job_id The job.
    @return The status word (layout: `_pack_status`).
    """
    status: uint256 = self._job_status[job_id]
    assert status != 0, "job_market: unknown job"
    return status


@internal
@view
def _check_drawn_validator(job_id: uint256, job: Job):
    """
    @dev Checks that the job is being audited, by the caller, before the report deadline.
    @param job_id The job.
    @param job The decoded job (its state and deadline are all this reads).
    """
    assert job.state == STATE_AUDITING, "job_market: job is not being audited"
    assert msg.sender == self.audits[job_id].validator, "job_market: caller is not the drawn validator"
    assert block.timestamp <= job.challenge_deadline, "job_market: audit report deadline passed"


@internal
@view
def _load_status(job_id: uint256) -> Job:
    """
    @dev Like `_load` but reads the status word only (requester and price read as zero):
         most calls do not need them, and each skipped storage read saves 2.1k gas.
    @param job_id The job.
    @return The decoded job without requester and price.
    """
    status: uint256 = self._status(job_id)
    return self._unpack(0, empty(address), status)


@internal
@pure
def _pack_status(job: Job) -> uint256:
    """
    @dev Packs a job but its requester and price into one word. Bits (low to high):
         state 4, audited 4, mode 8, mode_param 16, replicas 8, committed mask 8, revealed
         mask 8, commit deadline 40, reveal window 24 (the reveal deadline is the commit
         deadline plus it), challenge deadline 40, challenge window 24, seed block 40;
         the requester's id takes the top 32 bits (`_REQUESTER_BITS`, written by
         `post_job` and kept by `_save`). 40-bit timestamps last until year 36812;
         windows are at most 30 days < 2**24 s; 40-bit block numbers outlast any chain.
    @param job The decoded job.
    @return The status word (requester id zero).
    """
    return (
        convert(job.state, uint256)
        | (convert(job.audited, uint256) << _OFF_AUDITED)
        | (convert(job.mode, uint256) << _OFF_MODE)
        | (job.mode_param << _OFF_MODE_PARAM)
        | (job.replicas << _OFF_REPLICAS)
        | (job.committed_mask << _OFF_COMMITTED)
        | (job.revealed_mask << _OFF_REVEALED)
        | (job.commit_deadline << _OFF_COMMIT_DEADLINE)
        | ((job.reveal_deadline - job.commit_deadline) << _OFF_REVEAL_WINDOW)
        | (job.challenge_deadline << _OFF_CHALLENGE_DEADLINE)
        | (job.challenge_window << _OFF_CHALLENGE_WINDOW)
        | (job.seed_block << _OFF_SEED_BLOCK)
    )


@internal
@pure
def _unpack(price: uint256, requester: address, status: uint256) -> Job:
    """
    @dev Decodes a job's status word (inverse of `_pack_status`).
    @param price The price per replica (from replica 0's seat).
    @param requester The requester (from the id in the status word).
    @param status The status word.
    @return The decoded job.
    """
    commit_deadline: uint256 = (status >> _OFF_COMMIT_DEADLINE) & _MASK_40
    return Job(
        requester=requester,
        price=price,
        state=convert(status & _MASK_4, uint8),
        mode=convert((status >> _OFF_MODE) & _MASK_8, uint8),
        mode_param=(status >> _OFF_MODE_PARAM) & _MASK_16,
        replicas=(status >> _OFF_REPLICAS) & _MASK_8,
        committed_mask=(status >> _OFF_COMMITTED) & _MASK_8,
        revealed_mask=(status >> _OFF_REVEALED) & _MASK_8,
        commit_deadline=commit_deadline,
        reveal_deadline=commit_deadline + ((status >> _OFF_REVEAL_WINDOW) & _MASK_24),
        challenge_deadline=(status >> _OFF_CHALLENGE_DEADLINE) & _MASK_40,
        challenge_window=(status >> _OFF_CHALLENGE_WINDOW) & _MASK_24,
        audited=(status >> _OFF_AUDITED) & _MASK_4 != 0,
        seed_block=(status >> _OFF_SEED_BLOCK) & _MASK_40,
    )


@internal
@view
def _replica_index(job_id: uint256, replicas: uint256, provider: address) -> uint256:
    """
    @dev The replica index of `provider` in a job; reverts if it is not assigned.
    @param job_id The job.
    @param replicas The job's number of replicas.
    @param provider The caller.
    @return Its replica index.
    """
    for i: uint256 in range(_MAX_REPLICAS):
        if i == replicas:
            break
        if self._provider(job_id, i) == provider:
            return i
    raise "job_market: caller is not assigned to this job"


@internal
def _after_reveals(job_id: uint256, status: uint256) -> uint256:
    """
    @dev Runs when the last replica revealed: opens a dispute on a replica mismatch, draws
         the audit in audit mode, otherwise opens the challenge window.
    @param job_id The job.
    @param status The job's status word (all revealed; challenge deadline still zero).
    @return The status word with the next state and deadline.
    """
    first: bytes32 = self._digests[job_id][0]
    replicas: uint256 = (status >> _OFF_REPLICAS) & _MASK_8
    for i: uint256 in range(1, _MAX_REPLICAS):
        if i == replicas:
            break
        if self._digests[job_id][i] != first:
            self._open_dispute(job_id, self._provider(job_id, 0), CHALLENGER_REPLICA, 0, i, 0)
            return self._with_state(status, STATE_DISPUTED)
    challenge_deadline: uint256 = block.timestamp + ((status >> _OFF_CHALLENGE_WINDOW) & _MASK_24)
    result: uint256 = self._with_state(status, STATE_REVEALED) | (
        challenge_deadline << _OFF_CHALLENGE_DEADLINE
    )
    mode_param: uint256 = (status >> _OFF_MODE_PARAM) & _MASK_16
    if (status >> _OFF_MODE) & _MASK_8 != convert(MODE_AUDIT, uint256) or mode_param == 0:
        return result
    fresh: bool = False
    seed: uint256 = 0
    fresh, seed = self._audit_seed(job_id, (status >> _OFF_SEED_BLOCK) & _MASK_40)
    if fresh and seed % _BPS >= mode_param:
        return result
    # Audited. The requester and the price are only read on this path.
    seat: uint256 = self._seats[job_id][0]
    requester: address = self._requester(job_id)
    price: uint256 = seat >> 160
    drawn: DynArray[address, 8] = extcall registry.draw(
        _ROLE_VALIDATOR,
        convert(keccak256(abi_encode(seed)), uint256),
        1,
        price * audit_fee_bps // _BPS,
        self._bond(price),
        [requester, convert(convert(seat & _MASK_160, uint160), address)],
    )
    validator: address = empty(address)
    if len(drawn) == 1:
        validator = drawn[0]
        self.audits[job_id].validator = validator
        result = self._with_state(result, STATE_AUDITING) | (1 << _OFF_AUDITED)
        log AuditDrawn(job_id=job_id, validator=validator, report_deadline=challenge_deadline)
    return result


@internal
@pure
def _with_state(status: uint256, state: uint8) -> uint256:
    """
    @dev A status word with its state replaced.
    @param status The status word.
    @param state The new state.
    @return The updated word.
    """
    return (status & ~_MASK_4) | convert(state, uint256)


@internal
def _open_dispute(
    job_id: uint256,
    challenger: address,
    kind: uint8,
    challenger_replica: uint256,
    defender_replica: uint256,
    bond: uint256,
):
    """
    @dev Records a new dispute; the defender moves first. The caller sets the job state.
    @param job_id The job.
    @param challenger Who challenges.
    @param kind CHALLENGER_EXTERNAL, CHALLENGER_REPLICA or CHALLENGER_VALIDATOR.
    @param challenger_replica The challenging replica (kind REPLICA), else 0.
    @param defender_replica The replica whose result is challenged.
    @param bond Token bond the challenger posted (external only).
    """
    deadline: uint256 = block.timestamp + dispute_round_window
    self._dispute_head[job_id] = (
        convert(challenger, uint256)
        | (convert(kind, uint256) << _OFF_KIND)
        | (challenger_replica << _OFF_CHALLENGER_REPLICA)
        | (defender_replica << _OFF_DEFENDER_REPLICA)
    )
    defender: address = self._provider(job_id, defender_replica)
    self._dispute_game[job_id] = self._pack_game(
        convert(defender, uint256), 0, TURN_DEFENDER, deadline
    )
    log Challenged(
        job_id=job_id,
        challenger=challenger,
        kind=kind,
        defender_replica=defender_replica,
        bond=bond,
        deadline=deadline,
    )


@internal
def _resolve(job_id: uint256, job: Job, dispute: Dispute, guilty: uint8, reason: uint8):
    """
    @dev Applies a verdict: the losing side's result is "bad", the winner's "good"; every
         replica (and the validator) holding the good result is paid, holding a bad
         result is slashed (bounty to the winner), anyone else is released unpaid. When
         both are at fault both results are bad and the requester takes the bounties.
    @param job_id The job.
    @param job The decoded job (DISPUTED).
    @param dispute The dispute record.
    @param guilty _GUILTY_DEFENDER, _GUILTY_CHALLENGER or _GUILTY_BOTH.
    @param reason REASON_REFEREE, REASON_TIMEOUT or REASON_BOTH_AT_FAULT.
    """
    defender: Replica = self._replica(job_id, dispute.defender_replica)
    challenger_digest: bytes32 = empty(bytes32)
    if dispute.kind == CHALLENGER_REPLICA:
        challenger_digest = self._digests[job_id][dispute.challenger_replica]
    elif dispute.kind == CHALLENGER_VALIDATOR:
        challenger_digest = self.audits[job_id].digest
    good: bytes32 = defender.digest
    bad: bytes32 = challenger_digest
    also_bad: bytes32 = empty(bytes32)
    winner: address = defender.provider
    if guilty == _GUILTY_DEFENDER:
        good = challenger_digest
        bad = defender.digest
        winner = dispute.challenger
    elif guilty == _GUILTY_BOTH:
        good = empty(bytes32)
        bad = defender.digest
        also_bad = challenger_digest
        winner = job.requester

    settled: Job = job
    settled.state = STATE_FINALIZED
    self._save(job_id, settled)
    self._close_dispute(job_id)
    log DisputeResolved(
        job_id=job_id,
        defender_at_fault=guilty != _GUILTY_CHALLENGER,
        reason=reason,
        winner=winner,
    )
    paid: uint256 = 0
    refund: uint256 = 0
    paid, refund = self._settle(job_id, job, good, bad, also_bad, winner, False)
    if dispute.kind == CHALLENGER_EXTERNAL:
        if guilty == _GUILTY_DEFENDER:
            self._credit(job_id, dispute.challenger, dispute.bond)
        else:
            refund += self._split(job_id, dispute.challenger, dispute.bond, winner, job.requester)
    log Finalized(job_id=job_id, paid=paid, refunded=refund)
    self._credit(job_id, job.requester, refund)


@internal
def _annul(job_id: uint256, job: Job, dispute: Dispute):
    """
    @dev Ends a dispute the referee never decided: nobody is slashed or paid, every bond
         is released, the challenge bond returned and the requester fully refunded.
    @param job_id The job.
    @param job The decoded job (DISPUTED).
    @param dispute The dispute record.
    """
    settled: Job = job
    settled.state = STATE_REFUNDED
    self._save(job_id, settled)
    self._close_dispute(job_id)
    log DisputeAnnulled(job_id=job_id)
    self._credit(job_id, dispute.challenger, dispute.bond)
    self._release_and_refund(job_id, job)


@internal
def _release_and_refund(job_id: uint256, job: Job):
    """
    @dev Releases every replica's bond and the validator's, and refunds the requester's
         whole escrow: the end of a job nobody can be blamed for.
    @param job_id The job (already REFUNDED).
    @param job The decoded job.
    """
    bond: uint256 = self._bond(job.price)
    for i: uint256 in range(_MAX_REPLICAS):
        if i == job.replicas:
            break
        extcall registry.unlock(self._provider(job_id, i), bond)
    if job.audited:
        extcall registry.unlock(self.audits[job_id].validator, bond)
    refund: uint256 = self._escrow(job.mode, job.mode_param, job.price)
    log Refunded(job_id=job_id, requester=job.requester, amount=refund)
    self._credit(job_id, job.requester, refund)


@internal
def _settle(
    job_id: uint256,
    job: Job,
    good: bytes32,
    bad: bytes32,
    also_bad: bytes32,
    winner: address,
    unanimous: bool,
) -> (uint256, uint256):
    """
    @dev Pays, releases or slashes every replica and the validator by its result. The
         job must already be in a final state.
    @param job_id The job.
    @param job The decoded job.
    @param good The result digest that earns payment (empty: none).
    @param bad The result digest that is slashed (empty: none).
    @param also_bad A second slashed digest when both parties are at fault (else empty).
    @param winner Who gets the bounty of slashes for a bad result.
    @param unanimous Every replica holds the good result (an unchallenged job): each is
           paid without reading its digest; `good` then only matters for the validator.
    @return (paid to providers and validator, owed to the requester).
    """
    bond: uint256 = self._bond(job.price)
    paid: uint256 = 0
    refund: uint256 = 0
    for i: uint256 in range(_MAX_REPLICAS):
        if i == job.replicas:
            break
        replica: Replica = Replica(provider=self._provider(job_id, i), digest=empty(bytes32))
        if not unanimous:
            replica.digest = self._digests[job_id][i]
        if unanimous or (good != empty(bytes32) and replica.digest == good):
            extcall registry.unlock(replica.provider, bond)
            self._credit(job_id, replica.provider, job.price)
            paid += job.price
        elif bad != empty(bytes32) and (replica.digest == bad or replica.digest == also_bad):
            refund += job.price
            refund += self._penalize(job_id, replica.provider, bond, winner, job.requester)
        else:
            extcall registry.unlock(replica.provider, bond)
            refund += job.price

    if job.mode != MODE_AUDIT or job.mode_param == 0:
        return paid, refund
    fee: uint256 = job.price * audit_fee_bps // _BPS
    if not job.audited:
        return paid, refund + fee
    audit: Audit = self.audits[job_id]
    if good != empty(bytes32) and audit.digest == good:
        extcall registry.unlock(audit.validator, bond)
        self._credit(job_id, audit.validator, fee)
        return paid + fee, refund
    refund += fee
    if audit.digest == empty(bytes32):
        # Drawn but never reported: the requester lost its audit, so it takes the bounty.
        refund += self._penalize(job_id, audit.validator, bond, job.requester, job.requester)
    elif bad != empty(bytes32) and (audit.digest == bad or audit.digest == also_bad):
        refund += self._penalize(job_id, audit.validator, bond, winner, job.requester)
    else:
        extcall registry.unlock(audit.validator, bond)
    return paid, refund


@internal
def _penalize(
    job_id: uint256, account: address, bond: uint256, bounty_to: address, requester: address
) -> uint256:
    """
    @dev Slashes `account`'s bond through the Registry (the tokens come here) and splits it.
    @param job_id The job.
    @param account The member at fault.
    @param bond The bond locked for this job.
    @param bounty_to Who earns the bounty.
    @param requester The job's requester.
    @return The requester's share (paid by the caller together with its refund).
    """
    taken: uint256 = extcall registry.slash(account, bond, self)
    return self._split(job_id, account, taken, bounty_to, requester)


@internal
def _split(
    job_id: uint256, account: address, amount: uint256, bounty_to: address, requester: address
) -> uint256:
    """
    @dev Splits a forfeited amount held here: bounty to `bounty_to`, a share to the
         requester, the remainder to BURN_ADDRESS, so the three parts add up exactly.
    @param job_id The job.
    @param account Whose tokens were forfeited.
    @param amount The forfeited tokens.
    @param bounty_to Who earns the bounty (the requester itself after a timeout).
    @param requester The job's requester.
    @return The requester's part (share, plus the bounty if it is the bounty taker).
    """
    bounty: uint256 = amount * bounty_bps // _BPS
    requester_share: uint256 = amount * requester_share_bps // _BPS
    burned: uint256 = amount - bounty - requester_share
    log Slashed(
        job_id=job_id,
        account=account,
        amount=amount,
        bounty_to=bounty_to,
        bounty=bounty,
        requester_share=requester_share,
        burned=burned,
    )
    if burned > 0:
        self._push(BURN_ADDRESS, burned)
    if bounty_to == requester:
        return requester_share + bounty
    self._credit(job_id, bounty_to, bounty)
    return requester_share


@internal
def _credit(job_id: uint256, account: address, amount: uint256):
    """
    @dev Books tokens a settlement owes `account`; `claim` pays them out. Skips zero.
    @param job_id The job being settled.
    @param account The receiver.
    @param amount Base units.
    """
    if amount > 0:
        self._add_balance(account, amount)
        log Credited(job_id=job_id, account=account, amount=amount)


@internal
def _add_balance(account: address, amount: uint256):
    """
    @dev Adds to an account's market balance, keeping its requester id.
    @param account The account.
    @param amount Base units.
    """
    word: uint256 = self._accounts[account]
    assert (word & _MASK_BALANCE) + amount <= _MASK_BALANCE, "job_market: balance above 2**224 - 1"
    self._accounts[account] = word + amount
