"""Conservation and state invariants of Token, Registry, JobMarket, the DisputeCommittee
(JobMarket's referee) and the OpReferee (its proofs of one wrong op) under random use.

A hypothesis state machine drives every public state-changing function of the five
contracts (including calls that must revert) by random actors, with time travel and block
mining, on titanoboa's in-process EVM. Each call is first run on the reference model
(`invariant_model.Model`), which says whether it must revert and with which reason, or what
it must change. After every step the chain must equal the model, and:

- conservation: sum of the balances of every actor, Registry, JobMarket and the burn
  address == totalSupply == minted - burned; Registry holds exactly sum(stake + unbonding)
  of its members; JobMarket holds exactly escrow + challenge bonds of open jobs + what
  settled jobs credited and deposits (`balances`);
- state: settled jobs hold nothing; locked <= stake and locked == bonds of the member's
  open jobs; nobody is assigned twice to a job, nobody serves its own job;
- reachability: every few steps (and at the end of every sequence) the test travels past
  every deadline, settles every open job with timeout / finalize / dispute_timeout,
  withdraws every market balance and checks that JobMarket is empty (then rolls that back);
- at the end of every sequence a drain settles all jobs, withdraws every market balance, deregisters and
  withdraws everyone: Registry and JobMarket must end holding exactly zero.

Each sequence runs inside `boa.env.anchor()`, so it starts from the same deployed state
at no redeploy cost. Sizes: see `SEQUENCES` / `STEPS`; measured times in
docs/bench-invariants.md.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import os
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import boa
import pytest
from boa.contracts.base_evm_contract import BoaError
from contract_world import load  # compiled once per process, shared with the other contract tests
from eth_abi import decode
from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_utils import keccak
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    rule,
    run_state_machine_as_test,
)
from invariant_model import (
    ASSIGNED,
    AUDITING,
    BURN,
    COMMITTED,
    DISPUTED,
    EMPTY32,
    GUILTY_CHALLENGER,
    GUILTY_DEFENDER,
    MAX_UINT,
    MODE_AUDIT,
    MODE_REPLICATE,
    OPEN_STATES,
    PATHS,
    REVEALED,
    ROLE_PROVIDER,
    ROLE_VALIDATOR,
    SECP256K1_N,
    TURN_CHALLENGER,
    TURN_DEFENDER,
    TURN_REFEREE,
    ZERO,
    Chain,
    CommitteeParams,
    E,
    Model,
    Params,
    Revert,
    commitment_of,
    digest_of,
)
from invariant_op_proofs import FLAWS, TRACE_BAD, TRACE_GOOD, proof_args

# CI size: >= 200 sequences (issue 2). VERIMESH_INVARIANT_SEQUENCES raises it for soak runs.
SEQUENCES = int(os.environ.get("VERIMESH_INVARIANT_SEQUENCES", "200"))
STEPS = int(os.environ.get("VERIMESH_INVARIANT_STEPS", "30"))
# Run the full "settle everything" probe after every PROBE_EVERY-th step.
PROBE_EVERY = int(os.environ.get("VERIMESH_INVARIANT_PROBE_EVERY", "10"))

PARAMS = Params(
    min_provider_stake=100 * E,
    min_validator_stake=100 * E,
    unbonding_delay=7 * 86400,
    min_bond=10 * E,
    bond_multiplier_bps=20_000,
    audit_fee_bps=10_000,
    challenge_bond=50 * E,
    bounty_bps=5_000,
    requester_share_bps=3_000,
    dispute_round_window=3600,
)
REVERT_PREFIXES = ("token: ", "registry: ", "job_market: ", "dispute_committee: ", "op_referee: ")
# DisputeCommittee of the invariant world: committees of up to 3, 2 signatures (of 3).
COMMITTEE_SIZE, COMMITTEE_THRESHOLD = 3, 2
EQUIVOCATION_PENALTY = 40 * E
REPORTER_BOUNTY_BPS = 5_000
LEAF = 7
OP_OUT, OP_OUT_OTHER = b"\x77" * 32, b"\x78" * 32
ERROR_SELECTOR = bytes.fromhex("08c379a0")  # Error(string)
# What `Harness.act` returns for a call that reverted (as the model said it must).
REVERTED = object()

ACTOR_NAMES = ("owner", "referee", "prov0", "prov1", "prov2", "prov3", "prov4",
               "val0", "val1", "val2", "req0", "req1", "outsider")
PROVIDERS = ("prov0", "prov1", "prov2", "prov3", "prov4")
VALIDATORS = ("val0", "val1", "val2")
REQUESTERS = ("req0", "req1")
START_BALANCE = 5_000 * E

# Results: an honest one and a cheat's. The trace roots are real (invariant_op_proofs): the
# cheat's trace holds a wrong op that OpReferee.prove_wrong_op convicts, the honest one none.
OUT_GOOD, OUT_BAD = b"\x0a" * 32, b"\xba" * 32
RESULTS = ((OUT_GOOD, TRACE_GOOD), (OUT_BAD, TRACE_BAD), (OUT_BAD, TRACE_GOOD))
CAPABILITIES = b"\xca" * 32

# Counts of (function, outcome) over the whole run, reported for docs/bench-invariants.md.
STATS: Counter[str] = Counter()


@dataclass
class World:
    token: Any
    registry: Any
    market: Any
    committee: Any
    op_referee: Any
    actors: dict[str, str]  # name -> address
    keys: dict[str, bytes]  # address -> private key (for permit signatures)
    base_model: Model
    slots: dict[str, int]  # storage slots of the public mappings read raw (speed)


@functools.cache
def _hash_slot(slot: int, key: str) -> int:
    """Vyper HashMap[address, _] location: keccak256(slot || key), both 32-byte words."""
    return int.from_bytes(keccak(slot.to_bytes(32, "big") + bytes(12) + bytes.fromhex(key[2:])),
                          "big")


def revert_reason(contract: Any) -> str | None:
    """The Error(string) reason of the call that just reverted on `contract`, else None."""
    output = bytes(contract._computation.output)
    if output[:4] != ERROR_SELECTOR:
        return None
    return decode(["string"], output[4:])[0]


def _quiet_repr(contract: Any) -> None:
    """titanoboa takes repr(contract) on EVERY revert, and its repr dumps all storage it has
    seen: a third of this test's time. The reason string is all the test needs, so these
    instances get a short repr (a subclass, so other tests' contracts are untouched)."""
    base = type(contract)
    contract.__class__ = type(f"Quiet{base.__name__}", (base,), {
        "__repr__": lambda self: f"<{self.compiler_data.contract_path} at {self.address}>"})


@pytest.fixture(scope="module")
def invariant_world() -> World:
    """Deployed once per module; titanoboa's plugin anchors each test (and the state
    machine anchors each sequence), so everything starts from this state."""
    return _deploy()


def _deploy() -> World:
    keys = {name: keccak(f"verimesh invariants {name}".encode()) for name in ACTOR_NAMES}
    actors = {name: Account.from_key(k).address for name, k in keys.items()}
    owner, referee = actors["owner"], actors["referee"]
    boa.env.evm.patch.prev_hashes = [keccak(b"block %d" % i) for i in range(256)]
    boa.env.evm.patch.prevrandao = keccak(b"genesis randao")
    with boa.env.prank(owner):
        token = load("Token.vy", "Verimesh Test Token", "VMT", 18, owner)
        registry = load("Registry.vy", token.address,
                            PARAMS.min_provider_stake, PARAMS.min_validator_stake,
                            PARAMS.unbonding_delay)
        market = load("JobMarket.vy", token.address, registry.address,
                          referee, PARAMS.min_bond, PARAMS.bond_multiplier_bps,
                          PARAMS.audit_fee_bps, PARAMS.challenge_bond, PARAMS.bounty_bps,
                          PARAMS.requester_share_bps, PARAMS.dispute_round_window)
        registry.set_job_market(market.address)
        committee = load("DisputeCommittee.vy", market.address, registry.address,
                             token.address, COMMITTEE_SIZE, COMMITTEE_THRESHOLD, EQUIVOCATION_PENALTY,
                             REPORTER_BOUNTY_BPS)
        registry.set_slasher(committee.address)
        market.set_referee(committee.address)
        op_check = load("OpCheck.vy")
        op_referee = load("OpReferee.vy", committee.address, op_check.address)
        committee.set_op_referee(op_referee.address)
    for contract in (token, registry, market, committee, op_referee):
        _quiet_repr(contract)
    model = Model(params=PARAMS, token=str(token.address), registry=str(registry.address),
                  market=str(market.address), owner=owner, referee=str(committee.address), minter=owner,
                  committee=CommitteeParams(address=str(committee.address), chain_id=boa.env.evm.patch.chain_id,
                                            size=COMMITTEE_SIZE, threshold=COMMITTEE_THRESHOLD,
                                            penalty=EQUIVOCATION_PENALTY,
                                            reporter_bounty_bps=REPORTER_BOUNTY_BPS))
    token_layout = token.compiler_data.storage_layout["storage_layout"]
    market_layout = market.compiler_data.storage_layout["storage_layout"]
    w = World(token=token, registry=registry, market=market, committee=committee, op_referee=op_referee,
              actors=actors,
              keys={actors[n]: k for n, k in keys.items()}, base_model=model,
              slots={"balanceOf": token_layout["balanceOf"]["slot"],
                     "totalSupply": token_layout["totalSupply"]["slot"],
                     # JobMarket keeps a balance in the low 224 bits of an account word
                     "market_accounts": market_layout["_accounts"]["slot"]})
    # Funded actors with unlimited allowances; three providers and a validator registered.
    setup = Harness(w, model)
    for who in actors.values():
        setup.act(owner, token, "mint", (who, START_BALANCE),
                  lambda c, who=who: model.mint(owner, who, START_BALANCE))
        for spender in (model.registry, model.market):
            setup.act(who, token, "approve", (spender, MAX_UINT),
                      lambda c, who=who, s=spender: model.approve(who, s, MAX_UINT))
    for name, stake, price in (("prov0", 150 * E, 0), ("prov1", 150 * E, 1 * E),
                               ("prov2", 200 * E, 4 * E), ("val0", 120 * E, 0),
                               ("val1", 160 * E, 0), ("val2", 300 * E, 0)):
        role = ROLE_VALIDATOR if name.startswith("val") else ROLE_PROVIDER
        who = actors[name]
        setup.act(who, registry, "register", (role, stake, "http://127.0.0.1:9000",
                                               CAPABILITIES, price),
                  lambda c, who=who, role=role, stake=stake, price=price: model.register(
                      who, role, stake, "http://127.0.0.1:9000", CAPABILITIES, price))
    setup.check_all()
    return w


class Harness:
    """Runs one call on the model and on the chain and demands the same outcome."""

    def __init__(self, w: World, model: Model) -> None:
        self.w = w
        self.model = model
        self.addresses = [*w.actors.values(), model.registry, model.market, BURN, model.token,
                          str(w.committee.address)]
        # Per job, the model's replica records when the chain last matched them: replicas
        # only change on commit/reveal, so unchanged ones are not re-read (speed).
        self.replicas_seen: dict[int, list[tuple]] = {}

    @staticmethod
    def chain() -> Chain:
        patch = boa.env.evm.patch
        return Chain(timestamp=patch.timestamp, number=patch.block_number,
                     prevrandao=bytes(patch.prevrandao), prev_hashes=patch.prev_hashes)

    def act(self, sender: str, contract: Any, fname: str, args: tuple,
            model_fn: Callable[[Chain], Any]) -> Any:
        """Calls `contract.fname(*args)` as `sender`; returns its result, or REVERTED."""
        expected_reason = None
        expected = None
        try:
            expected = model_fn(self.chain())
        except Revert as r:
            expected_reason = r.reason
        try:
            with boa.env.prank(sender):
                out = getattr(contract, fname)(*args)
        except BoaError:
            reason = revert_reason(contract)
            STATS[f"{fname} reverted: {reason}"] += 1
            assert reason is not None and reason.startswith(REVERT_PREFIXES), (
                f"{fname}{args} by {sender} reverted without a prefixed reason: {reason!r}")
            assert reason == expected_reason, (
                f"{fname}{args} by {sender} reverted with {reason!r}; the model expected "
                + (f"{expected_reason!r}" if expected_reason else "success"))
            return REVERTED
        STATS[f"{fname} ok"] += 1
        assert expected_reason is None, (
            f"{fname}{args} by {sender} succeeded; the model expected {expected_reason!r}")
        if expected is not None:
            assert out == expected, f"{fname} returned {out}, the model expected {expected}"
        return out

    # ------------------------------------------------------------------ chain reads
    def raw(self, contract: Any, slot: int) -> int:
        return boa.env.get_storage(contract.address, slot)

    def chain_balance(self, account: str) -> int:
        return self.raw(self.w.token, _hash_slot(self.w.slots["balanceOf"], account))

    def chain_market_balance(self, account: str) -> int:
        word = self.raw(self.w.market, _hash_slot(self.w.slots["market_accounts"], account))
        return word & (2**224 - 1)

    # ------------------------------------------------------------------ checks
    def check_conservation(self) -> None:
        m = self.model
        supply = self.raw(self.w.token, self.w.slots["totalSupply"])
        chain_balances = {a: self.chain_balance(a) for a in self.addresses}
        assert sum(chain_balances.values()) == supply, (
            "tokens exist outside the known holders: sum of balances != totalSupply")
        assert supply == m.total_supply == m.minted - m.burned, "totalSupply != minted - burned"
        for a, bal in chain_balances.items():
            assert bal == m.balance(a), f"balance of {a}: chain {bal}, model {m.balance(a)}"
        assert chain_balances[m.registry] == m.registry_should_hold(), (
            "Registry balance != sum(stake + unbonding) of its members")
        assert chain_balances[m.market] == m.market_should_hold(), (
            "JobMarket balance != escrow + bonds of open jobs + market balances")
        for a in self.w.actors.values():
            got = self.chain_market_balance(a)
            want = m.market_balances.get(a, 0)
            assert got == want, f"market balance of {a}: chain {got}, model {want}"
        assert set(m.market_balances) <= set(self.w.actors.values()), "credit to a non-actor"

    def check_model_state(self) -> None:
        """Invariants the model itself must satisfy (the chain equals the model)."""
        m = self.model
        locked = m.locked_by_jobs()
        for account, member in m.members.items():
            assert 0 <= member.locked <= member.stake, f"locked > stake for {account}"
            if account in m.equivocated:
                # the committee's slash takes locked stake first (Registry.slash); JobMarket
                # then unlocks or slashes what is left of those bonds
                assert member.locked <= locked.get(account, 0)
            else:
                assert member.locked == locked.get(account, 0), (
                    f"{account} has {member.locked} locked but its open jobs bond "
                    f"{locked.get(account, 0)}")
            assert member.role in (ROLE_PROVIDER, ROLE_VALIDATOR)
        for account, bond in locked.items():
            assert bond == 0 or account in m.members, f"{account} bonded but not a member"
        for job_id, job in m.jobs.items():
            providers = [r.provider for r in job.replicas]
            assert len(set(providers)) == len(providers), f"job {job_id}: provider twice"
            assert job.requester not in providers, f"job {job_id}: requester serves itself"
            if job.audited:
                assert job.validator not in (job.requester, providers[0])
            if job.state not in OPEN_STATES:
                assert m.job_holding(job) == 0

    def check_member(self, account: str) -> None:
        got = self.w.registry.members(account)
        want = self.model.member(account)
        for name in ("role", "stake", "locked", "unbonding", "unbond_at", "endpoint",
                     "capabilities", "price", "active"):
            g, x = getattr(got, name), getattr(want, name)
            if isinstance(g, bytes):
                x = bytes(x)
            assert g == x, f"member {account}.{name}: chain {g!r}, model {x!r}"

    def check_job(self, job_id: int, full: bool = False) -> None:
        mk = self.w.market
        job = self.model.jobs[job_id]
        got = mk.jobs(job_id)
        want = {
            "requester": job.requester, "price": job.price, "state": job.state,
            "mode": job.mode, "mode_param": job.mode_param, "replicas": len(job.replicas),
            "committed_mask": job.committed_mask, "revealed_mask": job.revealed_mask,
            "commit_deadline": job.commit_deadline, "reveal_deadline": job.reveal_deadline,
            "challenge_deadline": job.challenge_deadline,
            "challenge_window": job.challenge_window, "audited": job.audited,
            "seed_block": job.seed_block,
        }
        for name, x in want.items():
            g = getattr(got, name)
            assert g == x, f"job {job_id}.{name}: chain {g!r}, model {x!r}"
        records = [(r.provider, r.digest, r.committed, r.revealed) for r in job.replicas]
        seen = self.replicas_seen.get(job_id, [None] * len(records))
        for i, record in enumerate(records):
            if full or seen[i] != record:
                view = mk.replica(job_id, i)
                got_record = (view.provider, view.digest, view.committed, view.revealed)
                assert got_record == record, f"job {job_id} replica {i}: chain {got_record}"
        self.replicas_seen[job_id] = records
        if full or job.audited:
            validator, audit_digest = mk.audits(job_id)
            assert (validator, audit_digest) == (job.validator, job.audit_digest), (
                f"job {job_id} audit: chain {(validator, audit_digest)}")
        self.check_dispute(job_id)

    def check_dispute(self, job_id: int) -> None:
        job = self.model.jobs[job_id]
        if job.dispute is not None:
            d = self.w.market.disputes(job_id)
            x = job.dispute
            assert (d.challenger, d.kind, d.challenger_replica, d.defender_replica, d.bond,
                    d.round, d.turn, d.deadline) == (
                x.challenger, x.kind, x.challenger_replica, x.defender_replica, x.bond,
                x.round, x.turn, x.deadline), f"job {job_id} dispute: chain {d}, model {x}"

    def check_committee(self, job_id: int) -> None:
        record = self.model.committees[job_id]
        got = self.w.committee.committees(job_id)
        want = (record.dispute_round, record.seed, record.deadline, record.threshold, len(record.members),
                record.accepted, record.guilty)
        assert tuple(got) == want, f"committee of job {job_id}: chain {got}, model {want}"
        assert list(self.w.committee.members(job_id)) == record.members
        for member in record.members:
            assert self.w.committee.slashed(job_id, member) == (member in record.slashed)

    def check_lists(self) -> None:
        r = self.w.registry
        m = self.model
        assert r.provider_count() == len(m.lists[ROLE_PROVIDER])
        assert r.validator_count() == len(m.lists[ROLE_VALIDATOR])

    def check_list_order(self) -> None:
        r = self.w.registry
        m = self.model
        assert [r.provider_at(i) for i in range(len(m.lists[1]))] == m.lists[1]
        assert [r.validator_at(i) for i in range(len(m.lists[2]))] == m.lists[2]

    def check_touched(self) -> None:
        """Re-reads what the model changed since the last check (views are slow)."""
        m = self.model
        for account in sorted(m.touched_members):
            self.check_member(account)
        for job_id in sorted(m.touched_jobs):
            self.check_job(job_id)
        if m.lists_touched:
            self.check_lists()
        for job_id in sorted(m.touched_committees):
            self.check_committee(job_id)
        m.touched_members.clear()
        m.touched_jobs.clear()
        m.touched_committees.clear()
        m.lists_touched = False

    def check_all(self) -> None:
        self.check_conservation()
        self.check_model_state()
        for account in self.w.actors.values():
            self.check_member(account)
        for job_id in self.model.jobs:
            self.check_job(job_id, full=True)
        self.check_lists()
        self.check_list_order()
        assert self.w.market.job_count() == len(self.model.jobs)
        assert self.w.market.referee() == self.model.referee
        for job_id in self.model.committees:
            self.check_committee(job_id)
        assert self.w.token.minter() == self.model.minter

    # ------------------------------------------------------------------ settling
    def settle_all_jobs(self) -> None:
        """Travels past every deadline and ends every open job with the applicable call."""
        open_jobs = [j for j, job in self.model.jobs.items() if job.state in OPEN_STATES]
        if not open_jobs:
            return
        last = max(self.model.settle_call(self.model.jobs[j])[1] for j in open_jobs)
        now = boa.env.evm.patch.timestamp
        if last >= now:
            boa.env.time_travel(seconds=last - now + 1)
        keeper = self.w.actors["outsider"]
        for job_id in open_jobs:
            call, _ = self.model.settle_call(self.model.jobs[job_id])
            model_fn = getattr(self.model, call)
            done = self.act(keeper, self.w.market, call, (job_id,),
                            lambda c, f=model_fn, j=job_id: f(c, j))
            assert done is not REVERTED and self.model.jobs[job_id].state not in OPEN_STATES, (
                f"job {job_id}: {call} after every deadline did not settle it")
        self.check_touched()

    def withdraw_all(self) -> None:
        """Everyone takes its whole market balance out; JobMarket must then be empty."""
        for account in self.w.actors.values():
            amount = self.model.market_balances.get(account, 0)
            if amount > 0:
                self.act(account, self.w.market, "withdraw", (amount,),
                         lambda c, a=account, x=amount: self.model.market_withdraw(a, x))
        assert self.chain_balance(self.model.market) == 0, (
            "JobMarket still holds tokens after every job settled and everyone withdrew")

    def drain(self) -> None:
        """Settles every job, empties every market balance, deregisters and withdraws every
        member: both contracts must end holding exactly zero, every member forgotten."""
        self.settle_all_jobs()
        self.withdraw_all()
        m = self.model
        for account in self.w.actors.values():
            if m.member(account).active:
                self.act(account, self.w.registry, "deregister", (),
                         lambda c, a=account: m.deregister(c, a))
            assert m.member(account).locked == 0
        boa.env.time_travel(seconds=m.params.unbonding_delay + 1)
        for account in self.w.actors.values():
            if m.member(account).unbonding > 0:
                self.act(account, self.w.registry, "withdraw", (),
                         lambda c, a=account: m.withdraw(c, a))
        self.check_touched()  # the chain must have forgotten them too (role 0)
        self.check_conservation()
        assert self.chain_balance(m.registry) == 0, "Registry holds tokens after the drain"
        assert self.chain_balance(m.market) == 0, "JobMarket holds tokens after the drain"
        assert not m.members, f"members left after the drain: {m.members}"
        assert self.w.registry.provider_count() == self.w.registry.validator_count() == 0
        held = sum(self.chain_balance(a) for a in [*self.w.actors.values(), BURN])
        assert held == m.minted - m.burned, "after the drain, actors + burn != supply"


def tracked(fn: Callable) -> Callable:
    """Marks a step as running, so teardown knows whether the sequence failed mid-step."""

    @functools.wraps(fn)
    def wrapper(self: InvariantMachine, *args: Any, **kwargs: Any) -> Any:
        self.busy = True
        result = fn(self, *args, **kwargs)
        self.busy = False
        return result

    return wrapper


# Hypothesis favours the first entry of a list (it shrinks towards it): the productive
# choice comes first everywhere, the edge cases after it.
AMOUNT_KINDS = st.sampled_from(["third", "fixed", "all", "one", "zero", "all+1"])
WINDOWS = st.sampled_from([600, 3600, 86400, 60])
SECONDS = st.sampled_from([1, 61, 601, 3601, 86401, 7 * 86400 + 1])


class InvariantMachine(RuleBasedStateMachine):
    """Random sequences of every public state-changing call, checked against the model."""

    w: ClassVar[World]

    def __init__(self) -> None:
        super().__init__()
        self._anchor = boa.env.anchor()
        self._anchor.__enter__()
        self.model = copy.deepcopy(self.w.base_model)
        self.h = Harness(self.w, self.model)
        self.names = list(self.w.actors)
        self.intent: dict[tuple[int, str], tuple[bytes, bytes, bytes]] = {}
        self.steps = 0
        self.busy = False
        self.stray_odds = 8
        STATS["sequences"] += 1

    # ------------------------------------------------------------------ helpers
    def who(self, data: st.DataObject, preferred: list[str] | tuple[str, ...] = ()) -> str:
        """Mostly one of `preferred` (addresses or actor names), else anyone: one time in
        `self.stray_odds` (lower in `job_action`, which hunts for revert paths)."""
        pool = [self.w.actors.get(p, p) for p in preferred]
        if pool and data.draw(st.integers(0, self.stray_odds - 1)) < self.stray_odds - 1:
            return data.draw(st.sampled_from(pool))
        return self.w.actors[data.draw(st.sampled_from(self.names))]

    def amount(self, data: st.DataObject, cap: int, fixed: int) -> int:
        kind = data.draw(AMOUNT_KINDS)
        return {"zero": 0, "one": 1, "third": cap // 3, "all": cap, "all+1": cap + 1,
                "fixed": fixed}[kind]

    def job(self, data: st.DataObject, states: tuple[int, ...]) -> int:
        """Mostly a job in one of `states`, sometimes any id (including unknown ones)."""
        fitting = [j for j, job in self.model.jobs.items() if job.state in states]
        if fitting and data.draw(st.integers(0, 15)) < 15:
            return data.draw(st.sampled_from(fitting))
        if self.model.jobs and data.draw(st.integers(0, 3)) < 3:
            return data.draw(st.sampled_from(sorted(self.model.jobs)))
        return data.draw(st.sampled_from([0, len(self.model.jobs) + 1]))

    def act(self, sender: str, contract: Any, fname: str, args: tuple,
            model_fn: Callable[[Any], Any]) -> Any:
        return self.h.act(sender, contract, fname, args, model_fn)

    # ------------------------------------------------------------------ Token
    def do_token_transfer(self, data: st.DataObject) -> None:
        sender = self.who(data)
        to = data.draw(st.sampled_from([*self.w.actors.values(), ZERO]))
        amount = self.amount(data, self.model.balance(sender), 10 * E)
        self.act(sender, self.w.token, "transfer", (to, amount),
                 lambda c: self.model.transfer(sender, to, amount))

    def do_token_transfer_from(self, data: st.DataObject) -> None:
        spender = self.who(data)
        owner = self.who(data)
        to = self.who(data)
        amount = self.amount(data, self.model.balance(owner), 10 * E)
        self.act(spender, self.w.token, "transferFrom", (owner, to, amount),
                 lambda c: self.model.transfer_from(spender, owner, to, amount))

    def do_token_approve(self, data: st.DataObject) -> None:
        sender = self.who(data)
        spender = data.draw(st.sampled_from(
            [self.model.registry, self.model.market, self.w.actors["outsider"], ZERO]))
        amount = data.draw(st.sampled_from([MAX_UINT, 300 * E, 60 * E, 1, 0]))
        self.act(sender, self.w.token, "approve", (spender, amount),
                 lambda c: self.model.approve(sender, spender, amount))

    def sign_permit(self, key: bytes, owner: str, spender: str, amount: int, nonce: int,
                    deadline: int, malleable: bool) -> tuple[int, int, int]:
        """An EIP-2612 signature by `key` (eth-account), or its high-s twin if `malleable`."""
        message = {
            "types": {
                "EIP712Domain": [
                    {"name": "name", "type": "string"}, {"name": "version", "type": "string"},
                    {"name": "chainId", "type": "uint256"},
                    {"name": "verifyingContract", "type": "address"}],
                "Permit": [
                    {"name": "owner", "type": "address"}, {"name": "spender", "type": "address"},
                    {"name": "value", "type": "uint256"}, {"name": "nonce", "type": "uint256"},
                    {"name": "deadline", "type": "uint256"}],
            },
            "primaryType": "Permit",
            "domain": {"name": "Verimesh Test Token", "version": "1",
                       "chainId": boa.env.evm.patch.chain_id,
                       "verifyingContract": self.model.token},
            "message": {"owner": owner, "spender": spender, "value": amount, "nonce": nonce,
                        "deadline": deadline},
        }
        signed = Account.sign_message(encode_typed_data(full_message=message), key)
        v, r, s = signed.v, signed.r, signed.s
        if malleable:
            v, s = 55 - v, SECP256K1_N - s
        return v, r, s

    def permit_variant(self, data: st.DataObject, owner: str) -> tuple[str, int, int, bytes]:
        """A permit signature variant: (variant, deadline, nonce, signing key)."""
        variant = data.draw(st.sampled_from(
            ["valid", "expired", "valid", "wrong_signer", "malleable", "stale_nonce"]))
        now = boa.env.evm.patch.timestamp
        deadline = now - 1 if variant == "expired" else now + 3600
        nonce = self.model.nonces.get(owner, 0) + (1 if variant == "stale_nonce" else 0)
        key = self.w.keys[owner]
        if variant == "wrong_signer":
            key = self.w.keys[next(a for a in self.w.actors.values() if a != owner)]
        return variant, deadline, nonce, key

    def do_token_permit(self, data: st.DataObject) -> None:
        owner = self.who(data)
        relayer = self.who(data)
        spender = data.draw(st.sampled_from(
            [self.model.registry, self.model.market, self.w.actors["outsider"], ZERO]))
        amount = data.draw(st.sampled_from([MAX_UINT, 60 * E, 0]))
        variant, deadline, nonce, signer_key = self.permit_variant(data, owner)
        v, r, s = self.sign_permit(signer_key, owner, spender, amount, nonce, deadline,
                                   malleable=variant == "malleable")
        valid = variant in ("valid", "expired")
        self.act(relayer, self.w.token, "permit",
                 (owner, spender, amount, deadline, v, r.to_bytes(32, "big"),
                  s.to_bytes(32, "big")),
                 lambda c: self.model.permit(c, owner, spender, amount, deadline, s, valid))

    def do_token_mint(self, data: st.DataObject) -> None:
        sender = self.who(data, [self.model.minter])
        to = data.draw(st.sampled_from([*self.w.actors.values(), ZERO]))
        amount = data.draw(st.sampled_from([100 * E, 1, 0]))
        self.act(sender, self.w.token, "mint", (to, amount),
                 lambda c: self.model.mint(sender, to, amount))

    def do_token_burn(self, data: st.DataObject) -> None:
        sender = self.who(data)
        amount = self.amount(data, self.model.balance(sender), 1 * E)
        self.act(sender, self.w.token, "burn", (amount,),
                 lambda c: self.model.burn(sender, amount))

    def do_token_set_minter(self, data: st.DataObject) -> None:
        sender = self.who(data, [self.model.minter])
        new = data.draw(st.sampled_from([self.w.actors["owner"], self.w.actors["outsider"],
                                         ZERO]))
        self.act(sender, self.w.token, "set_minter", (new,),
                 lambda c: self.model.set_minter(sender, new))

    # ------------------------------------------------------------------ Registry
    def do_registry_register(self, data: st.DataObject) -> None:
        newcomers = [a for n, a in self.w.actors.items()
                     if n.startswith(("prov", "val")) and a not in self.model.members]
        sender = self.who(data, newcomers)
        name = next(n for n, a in self.w.actors.items() if a == sender)
        role = ROLE_VALIDATOR if name.startswith("val") else ROLE_PROVIDER
        role = data.draw(st.sampled_from([role] * 6 + [ROLE_PROVIDER, ROLE_VALIDATOR, 0, 3]))
        stake = data.draw(st.sampled_from(
            [100 * E, 130 * E, 130 * E, 300 * E, 100 * E - 1, 2**120, 6_000 * E]))
        endpoint = data.draw(st.sampled_from(["http://127.0.0.1:9001"] * 7 + [""]))
        price = data.draw(st.sampled_from([0, 1, 1 * E, 4 * E, 30 * E]))
        self.act(sender, self.w.registry, "register",
                 (role, stake, endpoint, CAPABILITIES, price),
                 lambda c: self.model.register(sender, role, stake, endpoint, CAPABILITIES,
                                               price))

    def do_registry_register_with_permit(self, data: st.DataObject) -> None:
        """register, with the stake allowance given by an EIP-2612 signature in the same call."""
        newcomers = [a for n, a in self.w.actors.items()
                     if n.startswith(("prov", "val")) and a not in self.model.members]
        sender = self.who(data, newcomers)
        role = data.draw(st.sampled_from([ROLE_PROVIDER, ROLE_VALIDATOR, 0]))
        stake = data.draw(st.sampled_from([130 * E, 100 * E - 1, 6_000 * E]))
        price = data.draw(st.sampled_from([0, 1 * E, 4 * E]))
        variant, deadline, nonce, key = self.permit_variant(data, sender)
        v, r, s = self.sign_permit(key, sender, self.model.registry, stake, nonce, deadline,
                                   malleable=variant == "malleable")
        valid = variant in ("valid", "expired")
        endpoint = "http://127.0.0.1:9003"
        self.act(sender, self.w.registry, "register_with_permit",
                 (role, stake, endpoint, CAPABILITIES, price, deadline, v,
                  r.to_bytes(32, "big"), s.to_bytes(32, "big")),
                 lambda c: self.model.register_with_permit(
                     c, sender, role, stake, endpoint, CAPABILITIES, price, deadline, s, valid))

    def do_registry_add_stake(self, data: st.DataObject) -> None:
        sender = self.who(data, list(self.model.members))
        amount = data.draw(st.sampled_from([25 * E, 25 * E, 1, 0, 2**120, 6_000 * E]))
        self.act(sender, self.w.registry, "add_stake", (amount,),
                 lambda c: self.model.add_stake(sender, amount))

    def do_registry_update(self, data: st.DataObject) -> None:
        sender = self.who(data, list(self.model.members))
        endpoint = data.draw(st.sampled_from(["http://127.0.0.1:9002"] * 5 + [""]))
        capabilities = data.draw(st.sampled_from([CAPABILITIES, b"\x01" * 32]))
        price = data.draw(st.sampled_from([0, 1 * E, 4 * E, 30 * E]))
        self.act(sender, self.w.registry, "update", (endpoint, capabilities, price),
                 lambda c: self.model.update(sender, endpoint, capabilities, price))

    def do_registry_request_unbond(self, data: st.DataObject) -> None:
        sender = self.who(data, list(self.model.members))
        m = self.model.member(sender)
        amount = self.amount(data, m.stake - m.locked, 10 * E)
        self.act(sender, self.w.registry, "request_unbond", (amount,),
                 lambda c: self.model.request_unbond(c, sender, amount))

    def do_registry_withdraw(self, data: st.DataObject) -> None:
        sender = self.who(data, [a for a, m in self.model.members.items() if m.unbonding])
        self.act(sender, self.w.registry, "withdraw", (),
                 lambda c: self.model.withdraw(c, sender))

    def do_registry_deregister(self, data: st.DataObject) -> None:
        sender = self.who(data, [a for a, m in self.model.members.items() if m.active])
        self.act(sender, self.w.registry, "deregister", (),
                 lambda c: self.model.deregister(c, sender))

    def do_registry_restricted(self, data: st.DataObject) -> None:
        """lock/unlock/slash/draw are JobMarket-only; set_job_market was used once."""
        sender = self.who(data, ["owner"])
        victim = self.who(data, list(self.model.members))
        call = data.draw(st.sampled_from(["lock", "unlock", "slash", "draw", "set_job_market"]))
        args: tuple = {
            "lock": (victim, 1), "unlock": (victim, 1), "slash": (victim, 1, sender),
            "draw": (ROLE_PROVIDER, 7, 1, 10**30, 0, []), "set_job_market": (sender,),
        }[call]

        def expect(c: Chain) -> None:
            if call == "slash":
                raise Revert("registry: caller is not the job market or the slasher")
            if call != "set_job_market":
                raise Revert("registry: caller is not the job market")
            if sender != self.model.owner:
                raise Revert("registry: caller is not the owner")
            raise Revert("registry: job market already set")

        self.act(sender, self.w.registry, call, args, expect)

    # ------------------------------------------------------------------ JobMarket
    def do_market_set_referee(self, data: st.DataObject) -> None:
        sender = self.who(data, ["owner"])
        new = data.draw(st.sampled_from([str(self.w.committee.address), self.w.actors["referee"],
                                         self.w.actors["outsider"], ZERO]))
        self.act(sender, self.w.market, "set_referee", (new,),
                 lambda c: self.model.set_referee(sender, new))

    def do_market_post_job(self, data: st.DataObject) -> None:
        """Mostly a valid job; one time in six a single parameter is out of range."""
        sender = self.who(data, REQUESTERS)
        mode = data.draw(st.sampled_from([MODE_REPLICATE, MODE_AUDIT]))
        if mode == MODE_AUDIT:
            param = data.draw(st.sampled_from([5000, 10_000, 0, 1000]))  # 10% deters only cheap jobs
        else:
            param = data.draw(st.sampled_from([2, 1, 3]))
        price = data.draw(st.sampled_from([4 * E + 1, 1 * E, 30 * E, 1, 7]))
        windows = [data.draw(WINDOWS) for _ in range(3)]
        if data.draw(st.integers(0, 5)) == 5:
            bad = data.draw(st.sampled_from(["mode", "param", "price", "window"]))
            if bad == "mode":
                mode = 2
            elif bad == "param":
                param = 10_001 if mode == MODE_AUDIT else data.draw(st.sampled_from([0, 9]))
            elif bad == "price":
                price = data.draw(st.sampled_from([0, 2**96]))
            else:
                windows[data.draw(st.integers(0, 2))] = data.draw(
                    st.sampled_from([59, 30 * 86400 + 1]))
        self.act(sender, self.w.market, "post_job",
                 (b"\x51" * 32, b"\x52" * 32, b"\x53" * 32, mode, param, price, *windows),
                 lambda c: self.model.post_job(c, sender, mode, param, price, *windows))

    def _assigned(self, job_id: int, pending: str) -> list[str]:
        job = self.model.jobs.get(job_id)
        if job is None:
            return []
        return [r.provider for r in job.replicas if not getattr(r, pending)]

    def do_market_commit(self, data: st.DataObject) -> None:
        job_id = self.job(data, (ASSIGNED,))
        sender = self.who(data, self._assigned(job_id, "committed"))
        honest = data.draw(st.integers(0, 4)) < 4
        out, trace = (OUT_GOOD, TRACE_GOOD) if honest else (OUT_BAD, TRACE_BAD)
        salt = keccak(b"salt %d" % data.draw(st.integers(0, 3)))
        commitment = commitment_of(job_id, sender, out, trace, salt)
        if data.draw(st.integers(0, 15)) == 15:
            commitment = EMPTY32
        if self.act(sender, self.w.market, "commit", (job_id, commitment),
                    lambda c: self.model.commit(c, sender, job_id, commitment)) is not REVERTED:
            self.intent[(job_id, sender)] = (out, trace, salt)

    def do_market_reveal(self, data: st.DataObject) -> None:
        job_id = self.job(data, (COMMITTED,))
        sender = self.who(data, self._assigned(job_id, "revealed"))
        out, trace, salt = self.intent.get((job_id, sender), (OUT_GOOD, TRACE_GOOD, EMPTY32))
        if data.draw(st.integers(0, 3)) == 3:
            salt = keccak(b"wrong salt")
        self.act(sender, self.w.market, "reveal", (job_id, out, trace, salt),
                 lambda c: self.model.reveal(c, sender, job_id, out, trace, salt))

    def do_market_audit_report(self, data: st.DataObject) -> None:
        job_id = self.job(data, (AUDITING,))
        job = self.model.jobs.get(job_id)
        sender = self.who(data, [job.validator] if job and job.audited else [])
        good = data.draw(st.integers(0, 3)) < 3
        out, trace = (OUT_GOOD, TRACE_GOOD) if good else (OUT_BAD, TRACE_BAD)
        self.act(sender, self.w.market, "audit_report", (job_id, out, trace),
                 lambda c: self.model.audit_report(c, sender, job_id, out, trace))

    def do_market_abandon_audit(self, data: st.DataObject) -> None:
        job_id = self.job(data, (AUDITING,))
        job = self.model.jobs.get(job_id)
        sender = self.who(data, [job.validator] if job and job.audited else [])
        self.act(sender, self.w.market, "abandon_audit", (job_id,),
                 lambda c: self.model.abandon_audit(c, sender, job_id))

    def do_market_challenge(self, data: st.DataObject) -> None:
        job_id = self.job(data, (REVEALED, AUDITING))
        sender = self.who(data, [*REQUESTERS, "outsider", *PROVIDERS])
        job = self.model.jobs.get(job_id)
        replicas = len(job.replicas) if job else 1
        replica = data.draw(st.integers(0, replicas))
        self.act(sender, self.w.market, "challenge", (job_id, replica),
                 lambda c: self.model.challenge(c, sender, job_id, replica))

    def do_market_dispute_move(self, data: st.DataObject) -> None:
        """One to 65 moves (64 exhaust the rounds: then only the referee may decide)."""
        job_id = self.job(data, (DISPUTED,))
        self.dispute_moves(data, job_id, data.draw(st.sampled_from([1, 2, 3, 65])))

    def dispute_moves(self, data: st.DataObject, job_id: int, moves: int) -> None:
        for i in range(moves):
            job = self.model.jobs.get(job_id)
            due: list[str] = []
            if job is not None and job.dispute is not None:
                d = job.dispute
                if d.turn == TURN_DEFENDER:
                    due = [job.replicas[d.defender_replica].provider]
                elif d.turn == TURN_CHALLENGER:
                    due = [d.challenger]
            sender = self.who(data, due) if i == 0 else (due[0] if due else self.who(data))
            payload = keccak(b"move %d" % i)
            done = self.act(sender, self.w.market, "dispute_move", (job_id, payload),
                            lambda c, s=sender: self.model.dispute_move(c, s, job_id))
            if done is REVERTED:
                break
            self.h.check_dispute(job_id)

    def do_market_dispute_timeout(self, data: st.DataObject) -> None:
        job_id = self.job(data, (DISPUTED,))
        sender = self.who(data)
        self.act(sender, self.w.market, "dispute_timeout", (job_id,),
                 lambda c: self.model.dispute_timeout(c, job_id))

    def do_market_resolve_dispute(self, data: st.DataObject) -> None:
        job_id = self.job(data, (DISPUTED,))
        sender = self.who(data, [self.model.referee])
        at_fault = data.draw(st.booleans())
        self.act(sender, self.w.market, "resolve_dispute", (job_id, at_fault),
                 lambda c: self.model.resolve_dispute(c, sender, job_id, at_fault))

    def due_party(self, job_id: int) -> list[str]:
        job = self.model.jobs.get(job_id)
        if job is None or job.dispute is None:
            return []
        d = job.dispute
        if d.turn == TURN_DEFENDER:
            return [job.replicas[d.defender_replica].provider]
        if d.turn == TURN_CHALLENGER:
            return [d.challenger]
        return []

    def do_market_refer_dispute(self, data: st.DataObject) -> None:
        job_id = self.job(data, (DISPUTED,))
        sender = self.who(data, self.due_party(job_id))
        self.act(sender, self.w.market, "refer_dispute", (job_id,),
                 lambda c: self.model.refer_dispute(c, sender, job_id))

    def do_market_resolve_dispute_both(self, data: st.DataObject) -> None:
        job_id = self.job(data, (DISPUTED,))
        sender = self.who(data, [self.model.referee])
        self.act(sender, self.w.market, "resolve_dispute_both", (job_id,),
                 lambda c: self.model.resolve_dispute_both(c, sender, job_id))

    # ------------------------------------------------------------------ DisputeCommittee
    def referred_job(self, data: st.DataObject) -> int:
        """Mostly a disputed job in the referee turn, else any disputed job or any id."""
        waiting = [j for j, job in self.model.jobs.items()
                   if job.state == DISPUTED and job.dispute is not None and job.dispute.turn == TURN_REFEREE]
        if waiting and data.draw(st.integers(0, 7)) < 7:
            return data.draw(st.sampled_from(waiting))
        return self.job(data, (DISPUTED,))

    def do_committee_request(self, data: st.DataObject) -> None:
        job_id = self.referred_job(data)
        sender = self.who(data)
        self.act(sender, self.w.committee, "request_committee", (job_id,),
                 lambda c: self.model.request_committee(c, job_id))

    def do_committee_draw(self, data: st.DataObject) -> None:
        job_id = self.referred_job(data)
        if data.draw(st.integers(0, 3)) < 3:
            self.mine(data.draw(st.sampled_from([1, 1, 2, 257])), data.draw(st.integers(0, 2**32)))
        sender = self.who(data)
        self.act(sender, self.w.committee, "draw_committee", (job_id,),
                 lambda c: self.model.draw_committee(c, job_id))

    def sign_verdict(self, job_id: int, member: str, guilty: int, output: bytes) -> bytes:
        digest = self.model.verdict_digest(job_id, guilty, LEAF, output, member)
        signed = Account.unsafe_sign_hash(digest, self.w.keys[member])
        return bytes(signed.signature)

    def do_committee_submit(self, data: st.DataObject) -> None:
        """A verdict with mostly enough honest signatures; sometimes too few, a stranger's,
        a signature of another verdict, or the signers out of order."""
        drawn = [j for j, c in self.model.committees.items() if not c.accepted]
        if not drawn:
            self.do_committee_draw(data)
            return
        job_id = data.draw(st.sampled_from(drawn))
        record = self.model.committees[job_id]
        guilty = data.draw(st.sampled_from([1, 2, 3, 0]))
        count = data.draw(st.sampled_from([record.threshold, len(record.members), record.threshold - 1]))
        signers = list(record.members[:max(count, 0)])
        flaw = data.draw(st.sampled_from(["none"] * 6 + ["stranger", "other verdict", "unordered"]))
        if flaw == "stranger":
            strangers = [a for a in self.w.actors.values() if a not in record.members]
            signers.append(data.draw(st.sampled_from(strangers)))
        signers.sort(key=lambda a: int(a, 16))
        signatures = [(a, self.sign_verdict(job_id, a, guilty, OP_OUT)) for a in signers]
        if flaw == "other verdict" and signatures:
            a = signatures[-1][0]
            signatures[-1] = (a, self.sign_verdict(job_id, a, guilty % 3 + 1, OP_OUT))
        if flaw == "unordered":
            signatures.reverse()
        sender = self.who(data)
        self.act(sender, self.w.committee, "submit_verdict", (job_id, guilty, LEAF, OP_OUT, signatures),
                 lambda c: self.model.submit_verdict(c, job_id, guilty, LEAF, OP_OUT, signatures))

    def do_committee_report(self, data: st.DataObject) -> None:
        """A member signed another verdict than the accepted one (or the accepted one itself)."""
        decided = [j for j, c in self.model.committees.items() if c.accepted]
        job_id = data.draw(st.sampled_from(decided)) if decided else self.job(data, (DISPUTED,))
        record = self.model.committees.get(job_id)
        members = record.members if record else list(self.w.actors.values())[:1]
        member = data.draw(st.sampled_from(members))
        accepted = record.guilty if record and record.guilty else 1
        guilty, output = data.draw(st.sampled_from([
            (accepted % 3 + 1, OP_OUT), (accepted, OP_OUT_OTHER), (accepted, OP_OUT)]))
        signature = self.sign_verdict(job_id, member, guilty, output) if record else b"\x01" * 65
        reporter = self.who(data)
        self.act(reporter, self.w.committee, "report_equivocation",
                 (job_id, guilty, LEAF, output, member, signature),
                 lambda c: self.model.report_equivocation(c, reporter, job_id, guilty, LEAF, output, member,
                                                          signature))

    def committee_decides(self, data: st.DataObject, job_id: int) -> None:
        """The whole committee path of a dispute: the due party refers, anyone requests and
        (a block later) draws, a threshold of members signs one verdict and submits it."""
        due = self.due_party(job_id)
        if due:
            self.act(due[0], self.w.market, "refer_dispute", (job_id,),
                     lambda c: self.model.refer_dispute(c, due[0], job_id))
        keeper = self.w.actors["outsider"]
        if job_id not in self.model.committee_requests or job_id not in self.model.committees:
            self.act(keeper, self.w.committee, "request_committee", (job_id,),
                     lambda c: self.model.request_committee(c, job_id))
            self.mine(1, data.draw(st.integers(0, 2**32)))
            self.act(keeper, self.w.committee, "draw_committee", (job_id,),
                     lambda c: self.model.draw_committee(c, job_id))
        record = self.model.committees.get(job_id)
        if record is None or record.accepted:
            return
        guilty = data.draw(st.sampled_from([1, 2, 3]))
        signers = sorted(record.members[:record.threshold], key=lambda a: int(a, 16))
        signatures = [(a, self.sign_verdict(job_id, a, guilty, OP_OUT)) for a in signers]
        self.act(keeper, self.w.committee, "submit_verdict", (job_id, guilty, LEAF, OP_OUT, signatures),
                 lambda c: self.model.submit_verdict(c, job_id, guilty, LEAF, OP_OUT, signatures))
        outvoted = [a for a in record.members if a not in signers]
        if record.accepted and outvoted and data.draw(st.booleans()):
            # a member that signed the other verdict: anyone reports it
            liar, other = outvoted[0], guilty % 3 + 1
            signature = self.sign_verdict(job_id, liar, other, OP_OUT)
            reporter = self.who(data, REQUESTERS)
            self.act(reporter, self.w.committee, "report_equivocation",
                     (job_id, other, LEAF, OP_OUT, liar, signature),
                     lambda c: self.model.report_equivocation(c, reporter, job_id, other, LEAF, OP_OUT, liar,
                                                              signature))

    # ------------------------------------------------------------------ OpReferee
    def committed_result(self, job_id: int, accused: int) -> tuple[bytes, bytes] | None:
        """The (output root, trace root) the accused party of a dispute revealed, if any."""
        job = self.model.jobs.get(job_id)
        if job is None or job.dispute is None or accused not in (GUILTY_DEFENDER, GUILTY_CHALLENGER):
            return None
        digest = Model.accused_digest(job, accused)
        return next((r for r in RESULTS if digest is not None and digest_of(*r) == digest), None)

    def prove(self, sender: str, job_id: int, accused: int, result: tuple[bytes, bytes],
              flaw: str | None) -> None:
        args, wrong = proof_args(job_id, accused, *result, flaw)
        self.act(sender, self.w.op_referee, "prove_wrong_op", args,
                 lambda c: self.model.prove_wrong_op(c, job_id, accused, *result,
                                                     FLAWS[flaw] if flaw else None, wrong))

    def prove_cheat(self, data: st.DataObject, job_id: int) -> None:
        """Anyone proves the wrong op of the party whose trace holds one (else tries the
        honest party, which must fail: an honest trace has no wrong op); a third of the
        proofs are forged, and the dispute goes on."""
        results = {a: self.committed_result(job_id, a) for a in (GUILTY_DEFENDER, GUILTY_CHALLENGER)}
        cheats = [a for a, r in results.items() if r is not None and r[1] == TRACE_BAD]
        accused = cheats[0] if cheats else data.draw(st.sampled_from(sorted(results)))
        result = results[accused] or data.draw(st.sampled_from(RESULTS))
        flaw = data.draw(st.sampled_from([None, None, *sorted(FLAWS)])) if data.draw(st.integers(0, 2)) == 2 else None
        self.prove(self.who(data), job_id, accused, result, flaw)

    def do_referee_prove(self, data: st.DataObject) -> None:
        """A proof against either party (or none), mostly with its committed roots, often
        against an honest trace, sometimes forged."""
        job_id = self.job(data, (DISPUTED,))
        accused = data.draw(st.sampled_from([1, 2, 1, 2, 0, 3]))
        committed = self.committed_result(job_id, accused)
        if committed is None or data.draw(st.integers(0, 3)) == 3:
            # roots that are not the accused's (or an external challenger's, who has none)
            committed = data.draw(st.sampled_from([r for r in RESULTS if r != committed]))
        flaw = data.draw(st.sampled_from([None, None, *sorted(FLAWS)]))
        self.prove(self.who(data), job_id, accused, committed, flaw)

    def do_market_finalize(self, data: st.DataObject) -> None:
        job_id = self.job(data, (REVEALED, AUDITING))
        sender = self.who(data)
        self.act(sender, self.w.market, "finalize", (job_id,),
                 lambda c: self.model.finalize(c, job_id))

    def do_market_timeout(self, data: st.DataObject) -> None:
        job_id = self.job(data, (ASSIGNED, COMMITTED))
        sender = self.who(data)
        self.act(sender, self.w.market, "timeout", (job_id,),
                 lambda c: self.model.timeout(c, job_id))

    def do_market_deposit(self, data: st.DataObject) -> None:
        sender = self.who(data, REQUESTERS)
        amount = self.amount(data, self.model.balance(sender), 5 * E)
        self.act(sender, self.w.market, "deposit", (amount,),
                 lambda c: self.model.deposit(sender, amount))

    def do_market_withdraw(self, data: st.DataObject) -> None:
        sender = self.who(data, [a for a, v in self.model.market_balances.items() if v])
        amount = self.amount(data, self.model.market_balances.get(sender, 0), 1 * E)
        self.act(sender, self.w.market, "withdraw", (amount,),
                 lambda c: self.model.market_withdraw(sender, amount))

    def do_market_set_referee_back(self, data: st.DataObject) -> None:
        """Keeps the referee mostly the committee or the named account, so verdicts stay
        reachable both ways."""
        named = data.draw(st.sampled_from([str(self.w.committee.address), self.w.actors["referee"]]))
        if self.model.referee != named:
            owner = self.w.actors["owner"]
            self.act(owner, self.w.market, "set_referee", (named,),
                     lambda c: self.model.set_referee(owner, named))

    # ------------------------------------------------------------------ honest progress
    def commit_as(self, data: st.DataObject, job_id: int, provider: str) -> None:
        honest = data.draw(st.integers(0, 5)) < 5
        out, trace = (OUT_GOOD, TRACE_GOOD) if honest else (OUT_BAD, TRACE_BAD)
        salt = keccak(b"salt %d" % data.draw(st.integers(0, 3)))
        commitment = commitment_of(job_id, provider, out, trace, salt)
        if self.act(provider, self.w.market, "commit", (job_id, commitment),
                    lambda c: self.model.commit(c, provider, job_id, commitment)) is not REVERTED:
            self.intent[(job_id, provider)] = (out, trace, salt)

    def do_advance(self, data: st.DataObject) -> None:
        """The honest next step of one open job, so sequences reach the late states."""
        open_jobs = [j for j, job in self.model.jobs.items() if job.state in OPEN_STATES]
        if not open_jobs:
            self.do_market_post_job(data)
            return
        job_id = data.draw(st.sampled_from(open_jobs))
        job = self.model.jobs[job_id]
        now = boa.env.evm.patch.timestamp
        market, model = self.w.market, self.model
        keeper = self.w.actors["outsider"]
        call, deadline = model.settle_call(job)
        if data.draw(st.integers(0, 3)) == 3:
            self.mischief(data, job_id)
            now = boa.env.evm.patch.timestamp
            if job.state not in OPEN_STATES:
                return
            call, deadline = model.settle_call(job)
        if now > deadline:
            self.act(keeper, market, call, (job_id,),
                     lambda c: getattr(model, call)(c, job_id))
        elif data.draw(st.integers(0, 7)) == 7:
            # A bonded member leaves mid-job: its bond must follow it into unbonding.
            leaver = data.draw(st.sampled_from(
                [r.provider for r in job.replicas] + ([job.validator] if job.audited else [])))
            self.act(leaver, self.w.registry, "deregister", (),
                     lambda c: model.deregister(c, leaver))
        elif job.state == ASSIGNED:
            for r in job.replicas:
                if not r.committed and data.draw(st.integers(0, 9)) < 9:
                    self.commit_as(data, job_id, r.provider)
        elif job.state == COMMITTED:
            if data.draw(st.integers(0, 3)) < 3:
                self.mine(1, data.draw(st.integers(0, 2**32)))
            for r in job.replicas:
                if not r.revealed and data.draw(st.integers(0, 9)) < 9:
                    out, trace, salt = self.intent[(job_id, r.provider)]  # set by its commit
                    self.act(r.provider, market, "reveal", (job_id, out, trace, salt),
                             lambda c, p=r.provider, o=out, t=trace, x=salt: model.reveal(
                                 c, p, job_id, o, t, x))
        elif job.state == AUDITING and data.draw(st.integers(0, 5)) == 5:
            # nobody handed the validator the job: it abandons the audit
            self.act(job.validator, market, "abandon_audit", (job_id,),
                     lambda c: model.abandon_audit(c, job.validator, job_id))
        elif job.state == AUDITING:
            good = data.draw(st.integers(0, 3)) < 3
            out, trace = (OUT_GOOD, TRACE_GOOD) if good else (OUT_BAD, TRACE_BAD)
            self.act(job.validator, market, "audit_report", (job_id, out, trace),
                     lambda c: model.audit_report(c, job.validator, job_id, out, trace))
        elif job.state == REVEALED:
            if data.draw(st.booleans()):
                challenger = self.who(data, [job.requester, "outsider"])
                replica = data.draw(st.integers(0, len(job.replicas) - 1))
                self.act(challenger, market, "challenge", (job_id, replica),
                         lambda c: model.challenge(c, challenger, job_id, replica))
            else:
                boa.env.time_travel(seconds=deadline - now + 1)
                self.act(keeper, market, "finalize", (job_id,),
                         lambda c: model.finalize(c, job_id))
        else:
            how = data.draw(st.sampled_from(["committee", "referee", "move", "silence", "exhaust",
                                             "op proof"]))
            if how == "committee":
                self.committee_decides(data, job_id)
                return
            if how == "op proof":
                self.prove_cheat(data, job_id)
                return
            if how == "referee":
                referee = model.referee
                at_fault = data.draw(st.booleans())
                self.act(referee, market, "resolve_dispute", (job_id, at_fault),
                         lambda c: model.resolve_dispute(c, referee, job_id, at_fault))
                return
            if how in ("move", "exhaust"):
                # 65: the last move must revert, the referee alone may decide after 64
                self.dispute_moves(data, job_id, 65 if how == "exhaust" else 1)
            if how in ("silence", "exhaust") and job.state == DISPUTED:
                assert job.dispute is not None
                boa.env.time_travel(seconds=job.dispute.deadline - now + 1)
                self.act(keeper, market, "dispute_timeout", (job_id,),
                         lambda c: model.dispute_timeout(c, job_id))

    def mischief(self, data: st.DataObject, job_id: int) -> None:
        """A call that is wrong for the job's current (often short-lived) state: the wrong
        actor, a second commit or reveal, a bad salt, a call before its deadline."""
        job = self.model.jobs[job_id]
        market, model = self.w.market, self.model
        providers = [r.provider for r in job.replicas]
        outsider = self.w.actors["outsider"]
        first = providers[0]
        tries: list[tuple[str, str, tuple, Callable[[Chain], Any]]] = []
        if job.state == ASSIGNED:
            done = [r.provider for r in job.replicas if r.committed]
            c = commitment_of(job_id, first, OUT_GOOD, TRACE_GOOD, EMPTY32)
            if done:
                tries.append((done[0], "commit", (job_id, c),
                              lambda ch: model.commit(ch, done[0], job_id, c)))
            tries += [
                (first, "commit", (job_id, EMPTY32),
                 lambda ch: model.commit(ch, first, job_id, EMPTY32)),
                (outsider, "commit", (job_id, c), lambda ch: model.commit(ch, outsider, job_id, c)),
                (first, "reveal", (job_id, OUT_GOOD, TRACE_GOOD, EMPTY32),
                 lambda ch: model.reveal(ch, first, job_id, OUT_GOOD, TRACE_GOOD, EMPTY32)),
                (outsider, "timeout", (job_id,), lambda ch: model.timeout(ch, job_id)),
            ]
        elif job.state == COMMITTED:
            out, trace, _ = self.intent.get((job_id, first), (OUT_GOOD, TRACE_GOOD, EMPTY32))
            bad_salt = keccak(b"wrong salt")
            c = commitment_of(job_id, first, out, trace, bad_salt)
            tries += [
                (first, "reveal", (job_id, out, trace, bad_salt),
                 lambda ch: model.reveal(ch, first, job_id, out, trace, bad_salt)),
                (outsider, "reveal", (job_id, out, trace, bad_salt),
                 lambda ch: model.reveal(ch, outsider, job_id, out, trace, bad_salt)),
                (first, "commit", (job_id, c), lambda ch: model.commit(ch, first, job_id, c)),
                (outsider, "timeout", (job_id,), lambda ch: model.timeout(ch, job_id)),
            ]
        elif job.state in (REVEALED, AUDITING):
            tries += [
                (first, "challenge", (job_id, 0), lambda ch: model.challenge(ch, first, job_id, 0)),
                (outsider, "challenge", (job_id, len(providers)),
                 lambda ch: model.challenge(ch, outsider, job_id, len(providers))),
                (outsider, "finalize", (job_id,), lambda ch: model.finalize(ch, job_id)),
                (outsider, "audit_report", (job_id, OUT_GOOD, TRACE_GOOD),
                 lambda ch: model.audit_report(ch, outsider, job_id, OUT_GOOD, TRACE_GOOD)),
                (first, "dispute_move", (job_id, EMPTY32),
                 lambda ch: model.dispute_move(ch, first, job_id)),
            ]
        else:
            tries += [
                (outsider, "dispute_move", (job_id, EMPTY32),
                 lambda ch: model.dispute_move(ch, outsider, job_id)),
                (outsider, "resolve_dispute", (job_id, True),
                 lambda ch: model.resolve_dispute(ch, outsider, job_id, True)),
                (outsider, "refer_dispute", (job_id,),
                 lambda ch: model.refer_dispute(ch, outsider, job_id)),
                (outsider, "dispute_timeout", (job_id,),
                 lambda ch: model.dispute_timeout(ch, job_id)),
                (outsider, "finalize", (job_id,), lambda ch: model.finalize(ch, job_id)),
            ]
        late: list[tuple[str, str, tuple, Callable[[Chain], Any]]] = []
        if job.state in (REVEALED, AUDITING):
            late += [
                (outsider, "challenge", (job_id, 0),
                 lambda ch: model.challenge(ch, outsider, job_id, 0)),
                (job.validator, "audit_report", (job_id, OUT_GOOD, TRACE_GOOD),
                 lambda ch: model.audit_report(ch, job.validator, job_id, OUT_GOOD, TRACE_GOOD)),
                (job.validator, "abandon_audit", (job_id,),
                 lambda ch: model.abandon_audit(ch, job.validator, job_id)),
            ]
        elif job.state == DISPUTED and job.dispute is not None:
            d = job.dispute
            mover = providers[d.defender_replica] if d.turn == TURN_DEFENDER else d.challenger
            late.append((mover, "dispute_move", (job_id, EMPTY32),
                         lambda ch: model.dispute_move(ch, mover, job_id)))
        if late and data.draw(st.booleans()):
            # Too late: just past the deadline that closes this state.
            _, deadline = model.settle_call(job)
            now = boa.env.evm.patch.timestamp
            if deadline >= now:
                boa.env.time_travel(seconds=deadline - now + 1)
            tries = late
        sender, fname, args, model_fn = data.draw(st.sampled_from(tries))
        self.act(sender, market, fname, args, model_fn)

    # ------------------------------------------------------------------ rules
    def dispatch(self, data: st.DataObject, actions: list[tuple[str, int]]) -> None:
        names = [name for name, weight in actions for _ in range(weight)]
        getattr(self, "do_" + data.draw(st.sampled_from(names)))(data)

    @rule(data=st.data())
    @tracked
    def token_action(self, data: st.DataObject) -> None:
        self.dispatch(data, [("token_transfer", 2), ("token_transfer_from", 1),
                             ("token_approve", 2), ("token_permit", 2), ("token_mint", 1),
                             ("token_burn", 1), ("token_set_minter", 1)])

    @rule(data=st.data())
    @tracked
    def registry_action(self, data: st.DataObject) -> None:
        self.dispatch(data, [("registry_register", 3), ("registry_register_with_permit", 2),
                             ("registry_add_stake", 2),
                             ("registry_update", 1), ("registry_request_unbond", 2),
                             ("registry_withdraw", 2), ("registry_deregister", 1),
                             ("registry_restricted", 1)])

    @rule(data=st.data())
    @tracked
    def post_job(self, data: st.DataObject) -> None:
        self.do_market_post_job(data)

    @rule(data=st.data())
    @tracked
    def job_action(self, data: st.DataObject) -> None:
        """Single JobMarket calls by often the wrong actor or at the wrong time."""
        self.stray_odds = 3
        try:
            self._job_action(data)
        finally:
            self.stray_odds = 8

    def _job_action(self, data: st.DataObject) -> None:
        self.dispatch(data, [("market_commit", 2), ("market_reveal", 2),
                             ("market_audit_report", 1), ("market_abandon_audit", 1),
                             ("market_challenge", 2),
                             ("market_dispute_move", 1), ("market_dispute_timeout", 1),
                             ("market_resolve_dispute", 1), ("market_finalize", 1),
                             ("market_timeout", 1), ("market_deposit", 1),
                             ("market_withdraw", 1), ("market_set_referee", 1),
                             ("market_set_referee_back", 1), ("market_refer_dispute", 1),
                             ("market_resolve_dispute_both", 1)])

    @rule(data=st.data())
    @tracked
    def dispute_story(self, data: st.DataObject) -> None:
        """A replicate(2) job whose replicas disagree, referred to the committee at once:
        disputes are otherwise too rare in short sequences to reach the committee."""
        requester = self.who(data, REQUESTERS)
        args = (b"\x51" * 32, b"\x52" * 32, b"\x53" * 32, MODE_REPLICATE, 2, 1 * E, 600, 600, 600)
        job_id = self.act(requester, self.w.market, "post_job", args,
                          lambda c: self.model.post_job(c, requester, MODE_REPLICATE, 2, 1 * E, 600, 600, 600))
        if job_id is REVERTED:
            return
        job = self.model.jobs[job_id]
        cheat = data.draw(st.integers(0, 1))  # replica 0 challenges, replica 1 defends
        for i, r in enumerate(job.replicas):
            # one replica cheats: an output of its own, or the same output with a trace that
            # betrays it (a wrong op)
            out, trace = data.draw(st.sampled_from(RESULTS[1:])) if i == cheat else (OUT_GOOD, TRACE_GOOD)
            salt = keccak(b"story salt")
            c = commitment_of(job_id, r.provider, out, trace, salt)
            self.act(r.provider, self.w.market, "commit", (job_id, c),
                     lambda ch, p=r.provider, c=c: self.model.commit(ch, p, job_id, c))
            self.intent[(job_id, r.provider)] = (out, trace, salt)
        self.mine(1, data.draw(st.integers(0, 2**32)))
        for r in job.replicas:
            out, trace, salt = self.intent[(job_id, r.provider)]
            self.act(r.provider, self.w.market, "reveal", (job_id, out, trace, salt),
                     lambda ch, p=r.provider, o=out, t=trace, x=salt: self.model.reveal(ch, p, job_id, o, t, x))
        if job.state != DISPUTED:
            return
        how = data.draw(st.sampled_from(["committee", "op proof", "refer"]))
        if how == "committee":
            self.committee_decides(data, job_id)
        elif how == "op proof":
            self.prove_cheat(data, job_id)
        else:
            due = self.due_party(job_id)
            self.act(due[0], self.w.market, "refer_dispute", (job_id,),
                     lambda c: self.model.refer_dispute(c, due[0], job_id))

    @rule(data=st.data())
    @tracked
    def committee_action(self, data: st.DataObject) -> None:
        """DisputeCommittee calls, often at the wrong time or with flawed signatures."""
        self.dispatch(data, [("committee_request", 1), ("committee_draw", 2), ("committee_submit", 2),
                             ("committee_report", 1), ("referee_prove", 2)])

    @rule(data=st.data())
    @tracked
    def advance(self, data: st.DataObject) -> None:
        self.do_advance(data)

    @rule(data=st.data())
    @tracked
    def advance_more(self, data: st.DataObject) -> None:
        """A second honest-progress rule: jobs need several steps each to finish."""
        self.do_advance(data)

    # ------------------------------------------------------------------ time
    @rule(seconds=SECONDS)
    @tracked
    def time_travel(self, seconds: int) -> None:
        boa.env.time_travel(seconds=seconds)

    @rule(blocks=st.sampled_from([1, 1, 2, 300]), salt=st.integers(0, 2**32))
    @tracked
    def mine_blocks(self, blocks: int, salt: int) -> None:
        self.mine(blocks, salt)

    def mine(self, blocks: int, salt: int) -> None:
        """New blocks: fresh block hashes and a fresh prevrandao (the randomness sources)."""
        patch = boa.env.evm.patch
        seed = hashlib.sha256(b"%d/%d" % (salt, patch.block_number)).digest()
        fresh = [hashlib.sha256(seed + bytes([i])).digest() for i in range(min(blocks, 256))]
        patch.prev_hashes = (fresh + list(patch.prev_hashes))[:256]
        patch.prevrandao = keccak(b"randao %d" % salt)
        boa.env.time_travel(blocks=blocks)

    # ------------------------------------------------------------------ checks
    @invariant()
    @tracked
    def checks(self) -> None:
        self.steps += 1
        STATS["steps"] += 1
        self.h.check_conservation()
        self.h.check_model_state()
        self.h.check_touched()
        if self.steps % PROBE_EVERY == 0:
            self.probe_settlement()

    def probe_settlement(self) -> None:
        """Every open job can be ended from here and then all its money leaves."""
        if not any(j.state in OPEN_STATES for j in self.model.jobs.values()):
            return
        STATS["settlement probes"] += 1
        saved = copy.deepcopy(self.model)
        with boa.env.anchor():
            self.h.settle_all_jobs()
            self.h.check_conservation()
            self.h.check_model_state()
            self.h.withdraw_all()
            self.h.check_conservation()
        self.model = saved
        self.h.model = saved

    def teardown(self) -> None:
        try:
            if not self.busy:
                self.h.check_all()
                self.h.drain()
                STATS["drains"] += 1
        finally:
            self._anchor.__exit__(None, None, None)


@pytest.mark.slow
def test_random_sequences_conserve_tokens(invariant_world: World) -> None:
    InvariantMachine.w = invariant_world
    started, cpu_started = time.perf_counter(), time.process_time()
    run_state_machine_as_test(
        InvariantMachine,
        settings=settings(
            max_examples=SEQUENCES,
            stateful_step_count=STEPS,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                   HealthCheck.filter_too_much],
        ),
    )
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    print(f"\ninvariants: {STATS['sequences']} sequences, {STATS['steps']} steps, "
          f"{STATS['settlement probes']} settlement probes, {STATS['drains']} drains, "
          f"{elapsed:.1f} s wall, {cpu:.1f} s cpu")
    for key in sorted(STATS):
        print(f"  {key}: {STATS[key]}")
    for key in sorted(PATHS):
        print(f"  path {key}: {PATHS[key]}")


# ---------------------------------------------------------------------- bugs found
# Minimal reproductions of what the random sequences found (CONTRACTS.md, "Bugs found by
# invariants"), kept as regression tests once fixed.


def test_deregister_after_full_slash_forgets_member(invariant_world: World) -> None:
    """B1 (fixed in 1eee747): a member slashed to nothing used to stay registered forever."""
    w = invariant_world
    prov0, prov1, prov2, req0 = (w.actors[n] for n in ("prov0", "prov1", "prov2", "req0"))
    for other in (prov1, prov2):  # leave prov0 (stake 150 VMT) as the only provider
        with boa.env.prank(other):
            w.registry.deregister()
    price = 75 * E  # bond = max(10, 2 * 75) = 150 VMT: prov0's whole stake
    with boa.env.prank(req0):
        job_id = w.market.post_job(b"\x51" * 32, b"\x52" * 32, b"\x53" * 32, MODE_AUDIT, 0,
                                   price, 600, 600, 600)
    assert list(w.market.assigned(job_id)) == [prov0]
    boa.env.time_travel(seconds=601)
    w.market.timeout(job_id)  # prov0 never committed: its whole stake is slashed
    assert w.registry.members(prov0).stake == 0
    with boa.env.prank(prov0):
        w.registry.deregister()
    assert w.registry.members(prov0).role == 0, "a member left with nothing must be forgotten"
    with boa.env.prank(prov0):  # ... so it may register again
        w.registry.register(ROLE_PROVIDER, 100 * E, "http://127.0.0.1:9000", CAPABILITIES, 0)
