"""A pure-Python reference model of Token, Registry and JobMarket for the invariant test.

Why a model: "the JobMarket holds exactly the escrow of its open jobs" is only a strong
statement if "what it should hold" is computed independently of the contract. Each method
below mirrors one external function: it first runs every check in the contract's order and
raises `Revert(reason)` without touching anything (the contract reverts atomically), then
applies the effects. The test runs the same call on the EVM and demands the same outcome:
the same revert reason, or success and identical state afterwards.

Randomness is replicated exactly (prevrandao / blockhash mixed with the job id, as in
JobMarket), so the model also predicts WHICH providers and validator are drawn.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from eth_abi import encode
from eth_utils import keccak

from verimesh.chain.registry import draw_start
from verimesh.crypto.eip712 import Domain, fast_digest
from verimesh.crypto.envelope import ecdsa_signature_checker
from verimesh.verify.committee import Verdict, committee_threshold, draw_committee, scan_pool

E = 10**18
MAX_UINT = 2**256 - 1
ZERO = "0x0000000000000000000000000000000000000000"
BURN = "0x000000000000000000000000000000000000dEaD"
BPS = 10_000
MAX_REPLICAS = 8
MIN_WINDOW = 60
MAX_WINDOW = 30 * 86400
MAX_DISPUTE_ROUNDS = 64
MAX_PRICE = 2**96 - 1
MAX_AMOUNT = 2**120 - 1
MAX_SCAN = 32
BLOCKHASH_WINDOW = 256
# secp256k1 order and its half (EIP-2 low-s rule in Token.permit).
SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
MAX_S = SECP256K1_N // 2

ROLE_PROVIDER, ROLE_VALIDATOR = 1, 2
MODE_AUDIT, MODE_REPLICATE = 0, 1
ASSIGNED, COMMITTED, REVEALED, AUDITING, DISPUTED, FINALIZED, REFUNDED = range(1, 8)
OPEN_STATES = (ASSIGNED, COMMITTED, REVEALED, AUDITING, DISPUTED)
CHALLENGER_EXTERNAL, CHALLENGER_REPLICA, CHALLENGER_VALIDATOR = 0, 1, 2
TURN_DEFENDER, TURN_CHALLENGER, TURN_REFEREE = 0, 1, 2
GUILTY_DEFENDER, GUILTY_CHALLENGER, GUILTY_BOTH = 1, 2, 3
EMPTY32 = b"\x00" * 32

# How often each interesting branch of the contracts ran (coverage report of the test).
PATHS: Counter[str] = Counter()


class Revert(Exception):
    """The call must revert with exactly this reason."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def require(cond: bool, reason: str) -> None:
    if not cond:
        raise Revert(reason)


def digest_of(output_root: bytes, trace_root: bytes) -> bytes:
    return keccak(output_root + trace_root)


def commitment_of(job_id: int, provider: str, output_root: bytes, trace_root: bytes,
                  salt: bytes) -> bytes:
    return keccak(job_id.to_bytes(32, "big") + bytes.fromhex(provider[2:]) + output_root
                  + trace_root + salt)


@dataclass(frozen=True)
class Params:
    min_provider_stake: int
    min_validator_stake: int
    unbonding_delay: int
    min_bond: int
    bond_multiplier_bps: int
    audit_fee_bps: int
    challenge_bond: int
    bounty_bps: int
    requester_share_bps: int
    dispute_round_window: int


@dataclass
class Member:
    role: int = 0
    stake: int = 0  # includes locked
    locked: int = 0
    unbonding: int = 0
    unbond_at: int = 0
    endpoint: str = ""
    capabilities: bytes = EMPTY32
    price: int = 0
    active: bool = False


@dataclass
class Replica:
    provider: str
    digest: bytes = EMPTY32
    committed: bool = False
    revealed: bool = False


@dataclass
class Dispute:
    challenger: str
    kind: int
    challenger_replica: int
    defender_replica: int
    bond: int
    round: int
    turn: int
    deadline: int


@dataclass
class Job:
    requester: str
    price: int
    state: int
    mode: int
    mode_param: int
    commit_deadline: int
    reveal_deadline: int
    challenge_window: int
    replicas: list[Replica]
    challenge_deadline: int = 0
    audited: bool = False
    seed_block: int = 0
    validator: str = ZERO
    audit_digest: bytes = EMPTY32
    dispute: Dispute | None = None

    @property
    def committed_mask(self) -> int:
        return sum(1 << i for i, r in enumerate(self.replicas) if r.committed)

    @property
    def revealed_mask(self) -> int:
        return sum(1 << i for i, r in enumerate(self.replicas) if r.revealed)


@dataclass(frozen=True)
class CommitteeParams:
    address: str  # the DisputeCommittee
    chain_id: int
    size: int  # n
    threshold: int  # m
    penalty: int
    reporter_bounty_bps: int


@dataclass
class CommitteeRecord:
    """DisputeCommittee's record of one job: drawn members and, once accepted, the verdict."""

    dispute_round: int
    seed: bytes
    deadline: int
    threshold: int
    members: list[str]
    accepted: bool = False
    guilty: int = 0
    payload: tuple[int, int, bytes] | None = None
    slashed: set[str] = field(default_factory=set)


@dataclass
class Chain:
    """The block context a call runs in (read from the EVM before the call)."""

    timestamp: int
    number: int
    prevrandao: bytes
    prev_hashes: list[bytes]

    def blockhash(self, number: int) -> bytes:
        # py-evm: depth = current - number - 1, only the last 256 blocks, else zero.
        depth = self.number - number - 1
        if depth < 0 or depth >= BLOCKHASH_WINDOW or depth >= len(self.prev_hashes):
            return EMPTY32
        return bytes(self.prev_hashes[depth]).rjust(32, b"\x00")


@dataclass
class Model:
    params: Params
    token: str
    registry: str
    market: str
    owner: str
    referee: str
    minter: str
    balances: dict[str, int] = field(default_factory=dict)
    allowances: dict[tuple[str, str], int] = field(default_factory=dict)
    nonces: dict[str, int] = field(default_factory=dict)
    total_supply: int = 0
    minted: int = 0
    burned: int = 0  # by Token.burn (the BURN_ADDRESS keeps its tokens: they stay in supply)
    members: dict[str, Member] = field(default_factory=dict)
    lists: dict[int, list[str]] = field(default_factory=lambda: {1: [], 2: []})
    jobs: dict[int, Job] = field(default_factory=dict)
    # JobMarket.balances: what settlements credited (pull payments) plus deposits.
    market_balances: dict[str, int] = field(default_factory=dict)
    # What calls changed since the test last compared them with the chain.
    touched_members: set[str] = field(default_factory=set)
    touched_jobs: set[int] = field(default_factory=set)
    lists_touched: bool = False
    # DisputeCommittee (None: a model without one)
    committee: CommitteeParams | None = None
    committee_requests: dict[int, int] = field(default_factory=dict)
    committees: dict[int, CommitteeRecord] = field(default_factory=dict)
    touched_committees: set[int] = field(default_factory=set)
    # members slashed by the committee: their locked stake may be below their jobs' bonds
    equivocated: set[str] = field(default_factory=set)

    # ---------------------------------------------------------------- derived amounts
    def bond(self, price: int) -> int:
        return max(self.params.min_bond, price * self.params.bond_multiplier_bps // BPS)

    def audit_fee(self, price: int) -> int:
        return price * self.params.audit_fee_bps // BPS

    def escrow(self, mode: int, mode_param: int, price: int) -> int:
        if mode == MODE_REPLICATE:
            return price * mode_param
        if mode_param == 0:
            return price
        return price + self.audit_fee(price)

    def member(self, account: str) -> Member:
        return self.members.get(account, Member())

    def balance(self, account: str) -> int:
        return self.balances.get(account, 0)

    def job_holding(self, job: Job) -> int:
        """What JobMarket must hold for one job: escrow + open challenge bond, 0 once settled."""
        if job.state not in OPEN_STATES:
            return 0
        held = self.escrow(job.mode, job.mode_param, job.price)
        if job.dispute is not None and job.state == DISPUTED:
            held += job.dispute.bond
        return held

    def market_should_hold(self) -> int:
        return sum(self.job_holding(j) for j in self.jobs.values()) + sum(
            self.market_balances.values())

    def registry_should_hold(self) -> int:
        return sum(m.stake + m.unbonding for m in self.members.values())

    def locked_by_jobs(self) -> dict[str, int]:
        """Bonds that open jobs hold on each member (what `locked` must equal)."""
        locked: dict[str, int] = {}
        for job in self.jobs.values():
            if job.state not in OPEN_STATES:
                continue
            bond = self.bond(job.price)
            for r in job.replicas:
                locked[r.provider] = locked.get(r.provider, 0) + bond
            if job.audited:
                locked[job.validator] = locked.get(job.validator, 0) + bond
        return locked

    # ---------------------------------------------------------------- token internals
    def _check_transfer(self, owner: str, to: str, amount: int) -> None:
        require(to != ZERO, "token: transfer to the zero address")
        require(self.balance(owner) >= amount, "token: transfer amount exceeds balance")

    def _do_transfer(self, owner: str, to: str, amount: int) -> None:
        self.balances[owner] = self.balance(owner) - amount
        self.balances[to] = self.balance(to) + amount

    def _check_transfer_from(self, spender: str, owner: str, to: str, amount: int) -> None:
        allowance = self.allowances.get((owner, spender), 0)
        require(allowance == MAX_UINT or allowance >= amount, "token: insufficient allowance")
        self._check_transfer(owner, to, amount)

    def _do_transfer_from(self, spender: str, owner: str, to: str, amount: int) -> None:
        allowance = self.allowances.get((owner, spender), 0)
        if allowance != MAX_UINT:
            self.allowances[(owner, spender)] = allowance - amount
        self._do_transfer(owner, to, amount)

    # ---------------------------------------------------------------- Token
    def transfer(self, sender: str, to: str, amount: int) -> None:
        self._check_transfer(sender, to, amount)
        self._do_transfer(sender, to, amount)

    def transfer_from(self, sender: str, owner: str, to: str, amount: int) -> None:
        self._check_transfer_from(sender, owner, to, amount)
        self._do_transfer_from(sender, owner, to, amount)

    def approve(self, sender: str, spender: str, amount: int) -> None:
        require(spender != ZERO, "token: approve to the zero address")
        self.allowances[(sender, spender)] = amount

    def permit(self, chain: Chain, owner: str, spender: str, amount: int, deadline: int,
               s: int, signed_by_owner_for_current_nonce: bool) -> None:
        require(chain.timestamp <= deadline, "token: permit expired")
        require(s <= MAX_S, "token: malleable signature")
        require(signed_by_owner_for_current_nonce, "token: invalid permit signature")
        require(spender != ZERO, "token: approve to the zero address")
        self.nonces[owner] = self.nonces.get(owner, 0) + 1
        self.allowances[(owner, spender)] = amount

    def mint(self, sender: str, to: str, amount: int) -> None:
        require(sender == self.minter, "token: caller is not the minter")
        require(to != ZERO, "token: mint to the zero address")
        self.total_supply += amount
        self.minted += amount
        self.balances[to] = self.balance(to) + amount

    def burn(self, sender: str, amount: int) -> None:
        require(self.balance(sender) >= amount, "token: burn amount exceeds balance")
        self.balances[sender] -= amount
        self.total_supply -= amount
        self.burned += amount

    def set_minter(self, sender: str, new_minter: str) -> None:
        require(sender == self.minter, "token: caller is not the minter")
        require(new_minter != ZERO, "token: minter is the zero address")
        self.minter = new_minter

    # ---------------------------------------------------------------- Registry internals
    def _min_stake(self, role: int) -> int:
        if role == ROLE_PROVIDER:
            return self.params.min_provider_stake
        return self.params.min_validator_stake

    def _start_unbond(self, chain: Chain, account: str, amount: int) -> None:
        m = self.members[account]
        m.unbonding += amount
        m.unbond_at = chain.timestamp + self.params.unbonding_delay

    def _forget_if_empty(self, account: str) -> None:
        m = self.members[account]
        if not m.active and m.stake == 0 and m.unbonding == 0:
            del self.members[account]

    def _touch(self, account: str) -> None:
        self.touched_members.add(account)

    def _unlock(self, chain: Chain, account: str, amount: int) -> None:
        m = self.members[account]
        released = min(amount, m.locked)
        m.locked -= released
        if not m.active:
            PATHS["unlock of a deregistered member"] += 1
            m.stake -= released
            if released > 0:
                self._start_unbond(chain, account, released)
        self._touch(account)

    def _slash(self, account: str, amount: int, recipient: str = "") -> int:
        """Registry.slash to ``recipient`` (default: the market); returns what it took."""
        m = self.member(account)
        from_locked = min(amount, m.locked)
        locked = m.locked - from_locked
        stake = m.stake - from_locked
        from_free = min(amount - from_locked, stake - locked)
        stake -= from_free
        from_unbonding = min(amount - from_locked - from_free, m.unbonding)
        taken = from_locked + from_free + from_unbonding
        PATHS["slash reached free stake" if from_free else "slash from locked only"] += 1
        if from_unbonding:
            PATHS["slash reached unbonding"] += 1
        if account in self.members and not self.members[account].active:
            PATHS["slash of a deregistered member"] += 1
        if account in self.members:
            m.locked, m.stake, m.unbonding = locked, stake, m.unbonding - from_unbonding
            self._forget_if_empty(account)
        self._touch(account)
        if taken > 0:
            self._do_transfer(self.registry, recipient or self.market, taken)
        return taken

    def _draw(self, role: int, seed: int, count: int, max_price: int, bond: int,
              exclude: list[str]) -> list[str]:
        """Registry.draw without effects: which members it would pick."""
        listed = self.lists[role]
        n = len(listed)
        picked: list[str] = []
        if n == 0 or count == 0:
            return picked
        for seat in range(count):
            start = draw_start(seed, seat, n)
            for i in range(min(n, MAX_SCAN)):
                candidate = listed[(start + i) % n]
                m = self.members[candidate]
                if candidate in exclude or candidate in picked or m.price > max_price or m.stake - m.locked < bond:
                    continue
                picked.append(candidate)
                break
            else:
                break  # a seat that finds nobody ends the draw
        return picked

    def _lock(self, account: str, amount: int) -> None:
        self.members[account].locked += amount
        self._touch(account)

    # ---------------------------------------------------------------- Registry
    def register(self, sender: str, role: int, stake: int, endpoint: str,
                 capabilities: bytes, price: int) -> None:
        require(role in (ROLE_PROVIDER, ROLE_VALIDATOR), "registry: unknown role")
        require(sender not in self.members, "registry: already registered")
        require(stake >= self._min_stake(role), "registry: stake below the role minimum")
        require(stake <= MAX_AMOUNT, "registry: stake above 2**120 - 1")
        require(len(endpoint) > 0, "registry: empty endpoint")
        self._check_transfer_from(self.registry, sender, self.registry, stake)
        self.members[sender] = Member(role=role, stake=stake, endpoint=endpoint,
                                      capabilities=capabilities, price=price, active=True)
        self.lists[role].append(sender)
        self.lists_touched = True
        self._do_transfer_from(self.registry, sender, self.registry, stake)
        self._touch(sender)

    def register_with_permit(self, chain: Chain, sender: str, role: int, stake: int,
                             endpoint: str, capabilities: bytes, price: int, deadline: int,
                             s: int, signed_by_owner_for_current_nonce: bool) -> None:
        """Token.permit(sender -> Registry, stake) and then register, atomically."""
        key = (sender, self.registry)
        before = (self.allowances.get(key), self.nonces.get(sender))
        try:
            self.permit(chain, sender, self.registry, stake, deadline, s,
                        signed_by_owner_for_current_nonce)
            self.register(sender, role, stake, endpoint, capabilities, price)
        except Revert:
            for table, k, value in ((self.allowances, key, before[0]),
                                    (self.nonces, sender, before[1])):
                if value is None:
                    table.pop(k, None)
                else:
                    table[k] = value
            raise

    def add_stake(self, sender: str, amount: int) -> None:
        m = self.member(sender)
        require(m.active, "registry: not an active member")
        require(amount > 0, "registry: zero amount")
        require(m.stake + amount <= MAX_AMOUNT, "registry: stake above 2**120 - 1")
        self._check_transfer_from(self.registry, sender, self.registry, amount)
        m.stake += amount
        self._do_transfer_from(self.registry, sender, self.registry, amount)
        self._touch(sender)

    def update(self, sender: str, endpoint: str, capabilities: bytes, price: int) -> None:
        m = self.member(sender)
        require(m.active, "registry: not an active member")
        require(len(endpoint) > 0, "registry: empty endpoint")
        m.endpoint, m.capabilities, m.price = endpoint, capabilities, price
        self._touch(sender)

    def request_unbond(self, chain: Chain, sender: str, amount: int) -> None:
        m = self.member(sender)
        require(m.role != 0, "registry: not registered")
        require(amount > 0, "registry: zero amount")
        require(amount <= m.stake - m.locked, "registry: amount exceeds free stake")
        if m.active:
            require(m.stake - amount >= self._min_stake(m.role),
                    "registry: stake would fall below the role minimum; deregister to leave")
        m.stake -= amount
        self._start_unbond(chain, sender, amount)
        self._touch(sender)

    def withdraw(self, chain: Chain, sender: str) -> None:
        m = self.member(sender)
        require(m.unbonding > 0, "registry: nothing to withdraw")
        require(chain.timestamp >= m.unbond_at, "registry: still unbonding")
        amount = m.unbonding
        m.unbonding = 0
        self._forget_if_empty(sender)
        self._do_transfer(self.registry, sender, amount)
        self._touch(sender)

    def deregister(self, chain: Chain, sender: str) -> None:
        m = self.member(sender)
        require(m.active, "registry: not an active member")
        listed = self.lists[m.role]  # swap and pop, as Registry._list_remove
        index = listed.index(sender)
        listed[index] = listed[-1]
        listed.pop()
        self.lists_touched = True
        free = m.stake - m.locked
        m.active = False
        m.stake = m.locked
        if free > 0:
            self._start_unbond(chain, sender, free)
        self._forget_if_empty(sender)  # slashed to nothing: forgotten at once (fix of B1)
        self._touch(sender)

    # ---------------------------------------------------------------- JobMarket
    def set_referee(self, sender: str, new_referee: str) -> None:
        require(sender == self.owner, "job_market: caller is not the owner")
        require(new_referee != ZERO, "job_market: referee is the zero address")
        self.referee = new_referee

    def post_job(self, chain: Chain, sender: str, mode: int, mode_param: int, price: int,
                 commit_window: int, reveal_window: int, challenge_window: int) -> int:
        replicas = 1
        if mode == MODE_AUDIT:
            require(mode_param <= BPS, "job_market: audit probability above 10000 bps")
        elif mode == MODE_REPLICATE:
            require(1 <= mode_param <= MAX_REPLICAS, "job_market: replicas must be between 1 and 8")
            replicas = mode_param
        else:
            raise Revert("job_market: unknown mode")
        require(price > 0, "job_market: zero price")
        require(price <= MAX_PRICE, "job_market: price above 2**96 - 1")
        if mode == MODE_AUDIT and mode_param > 0:
            require(mode_param * (self.bond(price) + price) >= price * BPS,
                    "job_market: audit probability below the deterrence minimum; see min_audit_bps(price)")
        for window, name in ((commit_window, "commit"), (reveal_window, "reveal"),
                             (challenge_window, "challenge")):
            require(MIN_WINDOW <= window <= MAX_WINDOW, f"job_market: {name} window out of range")
        job_id = len(self.jobs) + 1
        bond = self.bond(price)
        seed = int.from_bytes(keccak(encode(["bytes32", "uint256"], [chain.prevrandao, job_id])),
                              "big")
        providers = self._draw(ROLE_PROVIDER, seed, replicas, price, bond, [sender])
        require(len(providers) == replicas, "job_market: too few eligible providers")
        escrow = self.escrow(mode, mode_param, price)
        # The requester's market balance pays first, its wallet the remainder.
        from_balance = min(self.market_balances.get(sender, 0), escrow)
        if from_balance:
            PATHS["post_job paid from market balance"] += 1
        if escrow > from_balance:
            self._check_transfer_from(self.market, sender, self.market, escrow - from_balance)
        self.market_balances[sender] = self.market_balances.get(sender, 0) - from_balance
        for p in providers:
            self._lock(p, bond)
        self.jobs[job_id] = Job(
            requester=sender, price=price, state=ASSIGNED, mode=mode, mode_param=mode_param,
            commit_deadline=chain.timestamp + commit_window,
            reveal_deadline=chain.timestamp + commit_window + reveal_window,
            challenge_window=challenge_window, replicas=[Replica(p) for p in providers])
        if escrow > from_balance:
            self._do_transfer_from(self.market, sender, self.market, escrow - from_balance)
        self.touched_jobs.add(job_id)
        return job_id

    def _load(self, job_id: int) -> Job:
        require(job_id in self.jobs, "job_market: unknown job")
        return self.jobs[job_id]

    def _replica_index(self, job: Job, sender: str) -> int:
        for i, r in enumerate(job.replicas):
            if r.provider == sender:
                return i
        raise Revert("job_market: caller is not assigned to this job")

    def commit(self, chain: Chain, sender: str, job_id: int, commitment: bytes) -> None:
        job = self._load(job_id)
        require(job.state == ASSIGNED, "job_market: job is not awaiting commitments")
        require(chain.timestamp <= job.commit_deadline, "job_market: commit deadline passed")
        require(commitment != EMPTY32, "job_market: empty commitment")
        index = self._replica_index(job, sender)
        replica = job.replicas[index]
        require(not replica.committed, "job_market: already committed")
        replica.digest, replica.committed = commitment, True
        if all(r.committed for r in job.replicas):
            job.state = COMMITTED
            job.seed_block = chain.number
        self.touched_jobs.add(job_id)

    def reveal(self, chain: Chain, sender: str, job_id: int, output_root: bytes,
               trace_root: bytes, salt: bytes) -> None:
        job = self._load(job_id)
        require(job.state == COMMITTED, "job_market: job is not in its reveal phase")
        require(chain.timestamp <= job.reveal_deadline, "job_market: reveal deadline passed")
        index = self._replica_index(job, sender)
        replica = job.replicas[index]
        require(not replica.revealed, "job_market: already revealed")
        require(commitment_of(job_id, sender, output_root, trace_root, salt) == replica.digest,
                "job_market: reveal does not match the commitment")
        replica.digest, replica.revealed = digest_of(output_root, trace_root), True
        if all(r.revealed for r in job.replicas):
            self._after_reveals(chain, job_id, job)
        self.touched_jobs.add(job_id)

    def _after_reveals(self, chain: Chain, job_id: int, job: Job) -> None:
        first = job.replicas[0].digest
        for i, r in enumerate(job.replicas[1:], start=1):
            if r.digest != first:
                job.state = DISPUTED
                self._open_dispute(chain, job, job.replicas[0].provider, CHALLENGER_REPLICA,
                                   0, i, 0)
                return
        job.state = REVEALED
        job.challenge_deadline = chain.timestamp + job.challenge_window
        if job.mode != MODE_AUDIT or job.mode_param == 0:
            return
        age = chain.number - job.seed_block
        if age == 0 or age > BLOCKHASH_WINDOW:
            fresh, source = False, chain.prevrandao
        else:
            fresh, source = True, chain.blockhash(job.seed_block)
        seed = int.from_bytes(keccak(encode(["bytes32", "uint256"], [source, job_id])), "big")
        PATHS[f"audit coin {'fresh' if fresh else 'stale (audit for certain)'}"] += 1
        if fresh and seed % BPS >= job.mode_param:
            PATHS["audit not drawn"] += 1
            return
        draw_seed = int.from_bytes(keccak(encode(["uint256"], [seed])), "big")
        bond = self.bond(job.price)
        drawn = self._draw(ROLE_VALIDATOR, draw_seed, 1, self.audit_fee(job.price), bond,
                           [job.requester, job.replicas[0].provider])
        PATHS["audit drawn, validator found" if drawn else "audit drawn, no validator"] += 1
        if drawn:
            self._lock(drawn[0], bond)
            job.validator, job.audited, job.state = drawn[0], True, AUDITING

    def _open_dispute(self, chain: Chain, job: Job, challenger: str, kind: int,
                      challenger_replica: int, defender_replica: int, bond: int) -> None:
        job.dispute = Dispute(challenger=challenger, kind=kind,
                              challenger_replica=challenger_replica,
                              defender_replica=defender_replica, bond=bond, round=0,
                              turn=TURN_DEFENDER,
                              deadline=chain.timestamp + self.params.dispute_round_window)

    def audit_report(self, chain: Chain, sender: str, job_id: int, output_root: bytes,
                     trace_root: bytes) -> None:
        job = self._load(job_id)
        require(job.state == AUDITING, "job_market: job is not being audited")
        require(sender == job.validator, "job_market: caller is not the drawn validator")
        require(chain.timestamp <= job.challenge_deadline,
                "job_market: audit report deadline passed")
        job.audit_digest = digest_of(output_root, trace_root)
        if job.audit_digest == job.replicas[0].digest:
            job.state = REVEALED
            job.challenge_deadline = chain.timestamp + job.challenge_window
        else:
            job.state = DISPUTED
            self._open_dispute(chain, job, sender, CHALLENGER_VALIDATOR, 0, 0, 0)
        self.touched_jobs.add(job_id)

    def challenge(self, chain: Chain, sender: str, job_id: int, replica: int) -> None:
        job = self._load(job_id)
        require(job.state != AUDITING,
                "job_market: audit in progress; challenge after its report")
        require(job.state == REVEALED, "job_market: job is not open to challenge")
        require(chain.timestamp <= job.challenge_deadline, "job_market: challenge window closed")
        require(replica < len(job.replicas), "job_market: no such replica")
        require(sender != job.replicas[replica].provider,
                "job_market: cannot challenge your own result")
        bond = self.params.challenge_bond
        self._check_transfer_from(self.market, sender, self.market, bond)
        job.state = DISPUTED
        self._open_dispute(chain, job, sender, CHALLENGER_EXTERNAL, 0, replica, bond)
        self._do_transfer_from(self.market, sender, self.market, bond)
        self.touched_jobs.add(job_id)

    def _mover_turn(self, chain: Chain, sender: str, job_id: int) -> Dispute:
        job = self._load(job_id)
        require(job.state == DISPUTED, "job_market: job is not disputed")
        d = job.dispute
        assert d is not None
        require(d.turn != TURN_REFEREE,
                "job_market: dispute rounds exhausted; the referee decides")
        require(chain.timestamp <= d.deadline, "job_market: round deadline passed")
        if d.turn == TURN_DEFENDER:
            require(sender == job.replicas[d.defender_replica].provider,
                    "job_market: not your turn")
        else:
            require(sender == d.challenger, "job_market: not your turn")
        return d

    def refer_dispute(self, chain: Chain, sender: str, job_id: int) -> None:
        d = self._mover_turn(chain, sender, job_id)
        PATHS[f"dispute referred on turn {d.turn}"] += 1
        d.turn = TURN_REFEREE
        d.deadline = chain.timestamp + self.params.dispute_round_window
        self.touched_jobs.add(job_id)

    def dispute_move(self, chain: Chain, sender: str, job_id: int) -> None:
        d = self._mover_turn(chain, sender, job_id)
        d.turn = TURN_CHALLENGER if d.turn == TURN_DEFENDER else TURN_DEFENDER
        d.round += 1
        if d.round == MAX_DISPUTE_ROUNDS:
            d.turn = TURN_REFEREE
        d.deadline = chain.timestamp + self.params.dispute_round_window
        self.touched_jobs.add(job_id)

    def dispute_timeout(self, chain: Chain, job_id: int) -> None:
        job = self._load(job_id)
        require(job.state == DISPUTED, "job_market: job is not disputed")
        d = job.dispute
        assert d is not None
        require(chain.timestamp > d.deadline, "job_market: round deadline not reached")
        PATHS[f"dispute_timeout on turn {d.turn}"] += 1
        if d.turn == TURN_DEFENDER:
            self._resolve(chain, job_id, job, GUILTY_DEFENDER)
        elif d.turn == TURN_CHALLENGER:
            self._resolve(chain, job_id, job, GUILTY_CHALLENGER)
        else:
            self._annul(chain, job_id, job)

    def resolve_dispute(self, chain: Chain, sender: str, job_id: int, at_fault: bool) -> None:
        require(sender == self.referee, "job_market: caller is not the referee")
        job = self._load(job_id)
        require(job.state == DISPUTED, "job_market: job is not disputed")
        self._resolve(chain, job_id, job, GUILTY_DEFENDER if at_fault else GUILTY_CHALLENGER)

    def resolve_dispute_both(self, chain: Chain, sender: str, job_id: int) -> None:
        require(sender == self.referee, "job_market: caller is not the referee")
        job = self._load(job_id)
        require(job.state == DISPUTED, "job_market: job is not disputed")
        self._resolve(chain, job_id, job, GUILTY_BOTH)

    def finalize(self, chain: Chain, job_id: int) -> None:
        job = self._load(job_id)
        if job.state == REVEALED:
            require(chain.timestamp > job.challenge_deadline,
                    "job_market: challenge window still open")
        elif job.state == AUDITING:
            require(chain.timestamp > job.challenge_deadline,
                    "job_market: audit report deadline not reached")
        else:
            raise Revert("job_market: job is not ready to finalize")
        job.state = FINALIZED
        _, refund = self._settle(chain, job, job.replicas[0].digest, EMPTY32, EMPTY32, ZERO)
        self._credit(job.requester, refund)
        self.touched_jobs.add(job_id)

    def timeout(self, chain: Chain, job_id: int) -> None:
        job = self._load(job_id)
        if job.state == ASSIGNED:
            require(chain.timestamp > job.commit_deadline,
                    "job_market: commit deadline not reached")
            done = [r.committed for r in job.replicas]
        elif job.state == COMMITTED:
            require(chain.timestamp > job.reveal_deadline,
                    "job_market: reveal deadline not reached")
            done = [r.revealed for r in job.replicas]
        else:
            raise Revert("job_market: job has no missed deadline")
        job.state = REFUNDED
        bond = self.bond(job.price)
        refund = self.escrow(job.mode, job.mode_param, job.price)
        for r, ok in zip(job.replicas, done, strict=True):
            if ok:
                self._unlock(chain, r.provider, bond)
            else:
                refund += self._penalize(r.provider, bond, job.requester, job.requester)
        self._credit(job.requester, refund)
        self.touched_jobs.add(job_id)

    def deposit(self, sender: str, amount: int) -> None:
        require(amount > 0, "job_market: zero amount")
        self._check_transfer_from(self.market, sender, self.market, amount)
        self.market_balances[sender] = self.market_balances.get(sender, 0) + amount
        self._do_transfer_from(self.market, sender, self.market, amount)

    def market_withdraw(self, sender: str, amount: int) -> None:
        require(amount > 0, "job_market: zero amount")
        balance = self.market_balances.get(sender, 0)
        require(amount <= balance, "job_market: amount exceeds balance")
        self.market_balances[sender] = balance - amount
        self._do_transfer(self.market, sender, amount)

    # ---------------------------------------------------------------- settlement
    def _credit(self, account: str, amount: int) -> None:
        if amount > 0:
            self.market_balances[account] = self.market_balances.get(account, 0) + amount

    def _split(self, amount: int, bounty_to: str, requester: str) -> int:
        bounty = amount * self.params.bounty_bps // BPS
        share = amount * self.params.requester_share_bps // BPS
        burned = amount - bounty - share
        if burned > 0:
            self._do_transfer(self.market, BURN, burned)
        if bounty_to == requester:
            return share + bounty
        self._credit(bounty_to, bounty)
        return share

    def _penalize(self, account: str, bond: int, bounty_to: str, requester: str) -> int:
        return self._split(self._slash(account, bond), bounty_to, requester)

    def _settle(self, chain: Chain, job: Job, good: bytes, bad: bytes, also_bad: bytes,
                winner: str) -> tuple[int, int]:
        bond = self.bond(job.price)
        paid = refund = 0
        for r in job.replicas:
            if good != EMPTY32 and r.digest == good:
                self._unlock(chain, r.provider, bond)
                self._credit(r.provider, job.price)
                paid += job.price
            elif bad != EMPTY32 and r.digest in (bad, also_bad):
                refund += job.price
                refund += self._penalize(r.provider, bond, winner, job.requester)
            else:
                self._unlock(chain, r.provider, bond)
                refund += job.price
        if job.mode != MODE_AUDIT or job.mode_param == 0:
            return paid, refund
        fee = self.audit_fee(job.price)
        if not job.audited:
            return paid, refund + fee
        if good != EMPTY32 and job.audit_digest == good:
            self._unlock(chain, job.validator, bond)
            self._credit(job.validator, fee)
            return paid + fee, refund
        refund += fee
        if job.audit_digest == EMPTY32:
            PATHS["silent validator slashed"] += 1
            refund += self._penalize(job.validator, bond, job.requester, job.requester)
        elif bad != EMPTY32 and job.audit_digest in (bad, also_bad):
            refund += self._penalize(job.validator, bond, winner, job.requester)
        else:
            self._unlock(chain, job.validator, bond)
        return paid, refund

    def _resolve(self, chain: Chain, job_id: int, job: Job, guilty: int) -> None:
        d = job.dispute
        assert d is not None
        defender = job.replicas[d.defender_replica]
        challenger_digest = EMPTY32
        if d.kind == CHALLENGER_REPLICA:
            challenger_digest = job.replicas[d.challenger_replica].digest
        elif d.kind == CHALLENGER_VALIDATOR:
            challenger_digest = job.audit_digest
        good, bad, also_bad, winner = defender.digest, challenger_digest, EMPTY32, defender.provider
        if guilty == GUILTY_DEFENDER:
            good, bad, winner = challenger_digest, defender.digest, d.challenger
        elif guilty == GUILTY_BOTH:
            good, bad, also_bad, winner = EMPTY32, defender.digest, challenger_digest, job.requester
        PATHS[f"verdict kind={d.kind} guilty={guilty}"] += 1
        job.state = FINALIZED
        _, refund = self._settle(chain, job, good, bad, also_bad, winner)
        if d.kind == CHALLENGER_EXTERNAL:
            if guilty == GUILTY_DEFENDER:
                self._credit(d.challenger, d.bond)
            else:
                refund += self._split(d.bond, winner, job.requester)
        self._credit(job.requester, refund)
        self.touched_jobs.add(job_id)

    def _annul(self, chain: Chain, job_id: int, job: Job) -> None:
        d = job.dispute
        assert d is not None
        job.state = REFUNDED
        self._credit(d.challenger, d.bond)
        self._release_and_refund(chain, job_id, job)

    def _release_and_refund(self, chain: Chain, job_id: int, job: Job) -> None:
        bond = self.bond(job.price)
        for r in job.replicas:
            self._unlock(chain, r.provider, bond)
        if job.audited:
            self._unlock(chain, job.validator, bond)
        self._credit(job.requester, self.escrow(job.mode, job.mode_param, job.price))
        self.touched_jobs.add(job_id)

    def abandon_audit(self, chain: Chain, sender: str, job_id: int) -> None:
        """The drawn validator got no job to audit: nobody paid or slashed, all refunded."""
        job = self._load(job_id)
        require(job.state == AUDITING, "job_market: job is not being audited")
        require(sender == job.validator, "job_market: caller is not the drawn validator")
        require(chain.timestamp <= job.challenge_deadline,
                "job_market: audit report deadline passed")
        job.state = REFUNDED
        PATHS["audit abandoned"] += 1
        self._release_and_refund(chain, job_id, job)

    # ---------------------------------------------------------------- settling everything
    def settle_call(self, job: Job) -> tuple[str, int]:
        """The call that ends an open job once every deadline passed, and that deadline."""
        if job.state in (ASSIGNED, COMMITTED):
            return "timeout", job.commit_deadline if job.state == ASSIGNED else job.reveal_deadline
        if job.state in (REVEALED, AUDITING):
            return "finalize", job.challenge_deadline
        assert job.state == DISPUTED and job.dispute is not None
        return "dispute_timeout", job.dispute.deadline

    # ---------------------------------------------------------------- DisputeCommittee
    def _referee_turn(self, job_id: int) -> Dispute:
        job = self.jobs.get(job_id)
        require(job is not None and job.state == DISPUTED, "dispute_committee: job is not disputed")
        assert job is not None and job.dispute is not None
        require(job.dispute.turn == TURN_REFEREE,
                "dispute_committee: dispute has not reached the referee turn")
        return job.dispute

    def request_committee(self, chain: Chain, job_id: int) -> None:
        self._referee_turn(job_id)
        require(job_id not in self.committees, "dispute_committee: committee already drawn")
        requested = self.committee_requests.get(job_id, 0)
        require(requested == 0 or chain.number > requested + BLOCKHASH_WINDOW,
                "dispute_committee: committee already requested")
        if requested:
            PATHS["committee request renewed"] += 1
        self.committee_requests[job_id] = chain.number

    def draw_committee(self, chain: Chain, job_id: int) -> list[str]:
        """The draw, by the Python mirror (``verify.committee``): the chain must agree."""
        assert self.committee is not None
        d = self._referee_turn(job_id)
        require(job_id not in self.committees, "dispute_committee: committee already drawn")
        requested = self.committee_requests.get(job_id, 0)
        require(requested != 0, "dispute_committee: committee not requested")
        require(chain.number > requested, "dispute_committee: wait one block after the request")
        require(chain.number <= requested + BLOCKHASH_WINDOW,
                "dispute_committee: seed block too old; request again")
        job = self.jobs[job_id]
        seed = keccak(encode(["bytes32", "uint256"], [chain.blockhash(requested), job_id]))
        listed = self.lists[ROLE_VALIDATOR]
        free = {a: self.members[a].stake - self.members[a].locked for a in listed}
        exclude = [job.requester, job.replicas[d.defender_replica].provider, d.challenger]
        pool = scan_pool(seed, listed, free, exclude)
        require(len(pool) > 0, "dispute_committee: no eligible validator")
        size = min(self.committee.size, len(pool))
        members = draw_committee(seed, pool, size)
        PATHS[f"committee of {size} drawn"] += 1
        self.committees[job_id] = CommitteeRecord(
            dispute_round=d.round, seed=seed, deadline=d.deadline,
            threshold=committee_threshold(size, self.committee.size, self.committee.threshold),
            members=members)
        self.touched_committees.add(job_id)
        return members

    def verdict_digest(self, job_id: int, guilty: int, leaf: int, output: bytes, signer: str) -> bytes:
        assert self.committee is not None
        c = self.committees[job_id]
        verdict = Verdict(job_id=job_id, dispute_round=c.dispute_round, guilty=guilty, leaf_index=leaf,
                          recomputed_output=output)
        domain = Domain(chain_id=self.committee.chain_id, verifying_contract=self.committee.address)
        return fast_digest(domain, verdict, signer, 0, c.deadline)

    def _check_verdict_signature(self, job_id: int, guilty: int, leaf: int, output: bytes,
                                 signer: str, signature: bytes) -> None:
        digest = self.verdict_digest(job_id, guilty, leaf, output, signer)
        require(ecdsa_signature_checker(signer, digest, signature),
                "dispute_committee: signature does not match this verdict")

    def submit_verdict(self, chain: Chain, job_id: int, guilty: int, leaf: int, output: bytes,
                       signatures: list[tuple[str, bytes]]) -> None:
        assert self.committee is not None
        c = self.committees.get(job_id)
        require(c is not None, "dispute_committee: committee not drawn")
        assert c is not None
        require(not c.accepted, "dispute_committee: verdict already accepted")
        require(chain.timestamp <= c.deadline, "dispute_committee: verdict deadline passed")
        require(1 <= guilty <= 3, "dispute_committee: guilty must be 1, 2 or 3")
        require(len(signatures) >= c.threshold, "dispute_committee: too few signatures")
        last = 0
        for signer, signature in signatures:
            require(int(signer, 16) > last,
                    "dispute_committee: signers not in strictly ascending order (duplicate?)")
            last = int(signer, 16)
            require(signer in c.members, "dispute_committee: signer is not on the committee")
            self._check_verdict_signature(job_id, guilty, leaf, output, signer, signature)
        # JobMarket checks the referee and the job's state before any effect.
        if guilty == GUILTY_BOTH:
            self.resolve_dispute_both(chain, self.committee.address, job_id)
        else:
            self.resolve_dispute(chain, self.committee.address, job_id, guilty == GUILTY_DEFENDER)
        PATHS[f"committee verdict guilty={guilty}"] += 1
        c.accepted, c.guilty, c.payload = True, guilty, (guilty, leaf, output)
        self.touched_committees.add(job_id)

    def report_equivocation(self, chain: Chain, sender: str, job_id: int, guilty: int, leaf: int,
                            output: bytes, member: str, signature: bytes) -> None:
        assert self.committee is not None
        c = self.committees.get(job_id)
        require(c is not None and c.accepted, "dispute_committee: no accepted verdict to compare with")
        assert c is not None
        require(member in c.members, "dispute_committee: not a committee member")
        require(member not in c.slashed, "dispute_committee: member already slashed for this job")
        require((guilty, leaf, output) != c.payload, "dispute_committee: that is the accepted verdict")
        self._check_verdict_signature(job_id, guilty, leaf, output, member, signature)
        c.slashed.add(member)
        self.equivocated.add(member)
        taken = self._slash(member, self.committee.penalty, self.committee.address)
        bounty = taken * self.committee.reporter_bounty_bps // BPS
        PATHS["equivocating member slashed" if taken else "equivocating member held nothing"] += 1
        if bounty:
            self._do_transfer(self.committee.address, sender, bounty)
        if taken - bounty:
            self._do_transfer(self.committee.address, BURN, taken - bounty)

    # ---------------------------------------------------------------- OpReferee
    @staticmethod
    def accused_digest(job: Job, accused: int) -> bytes | None:
        """The result digest a disputed job's `accused` party (1 defender, 2 challenger)
        committed: a replica's, or the auditing validator's; None for an external challenger."""
        d = job.dispute
        assert d is not None
        if accused == GUILTY_DEFENDER:
            return job.replicas[d.defender_replica].digest
        if d.kind == CHALLENGER_REPLICA:
            return job.replicas[d.challenger_replica].digest
        if d.kind == CHALLENGER_VALIDATOR:
            return job.audit_digest
        return None

    def prove_wrong_op(self, chain: Chain, job_id: int, accused: int, output_root: bytes,
                       trace_root: bytes, flaw: str | None, wrong: bool) -> None:
        """`OpReferee.prove_wrong_op`: `flaw` is the revert reason the proof's own content
        earns once the roots are the accused's (a forged index, a tampered input, ...),
        `wrong` whether the leaf's output really differs from what the op computes. The
        DisputeCommittee then settles through JobMarket as the referee."""
        assert self.committee is not None
        require(accused in (GUILTY_DEFENDER, GUILTY_CHALLENGER),
                 "op_referee: accused must be 1 (defender) or 2 (challenger)")
        job = self.jobs.get(job_id)
        require(job is not None and job.state == DISPUTED, "op_referee: job is not disputed")
        assert job is not None and job.dispute is not None
        d = job.dispute
        committed = self.accused_digest(job, accused)
        require(committed is not None,
                "op_referee: an external challenger committed no trace to prove wrong")
        require(digest_of(output_root, trace_root) == committed,
                "op_referee: the roots are not the accused party's committed result")
        if flaw is not None:
            raise Revert(flaw)
        require(wrong, "op_referee: the op is correct")
        self.resolve_dispute(chain, self.committee.address, job_id, accused == GUILTY_DEFENDER)
        PATHS[f"op proof accused={accused} kind={d.kind}"] += 1
