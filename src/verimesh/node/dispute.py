"""The dispute player: one party's side of the on-chain bisection game for one job.

Used by validators (as challenger after a disagreeing audit or an outside challenge) and
by provider nodes (as defender, or as the challenging replica after a replicate(k)
mismatch). The rules live in ``verify.bisection``; this module only connects them to
``JobMarket``: each move is one ``dispute_move(job_id, bytes32)``, its deadline is the
contract's round deadline, and a silent party loses by ``dispute_timeout``.

Nothing is stored: the whole game is in the chain's ``DisputeMove`` events, and a party's
answers come from its own trace, so a restarted process builds a new ``DisputePlayer`` and
carries on with ``tick()`` where the chain says it is. Every tick re-reads the chain and
sends at most one transaction; a revert caused by a race (the other side moved first, a
clock ahead of the chain's) is harmless and the next tick sees the new state.

Game end: the contract does not know when the bisection has found its leaf, so the party
whose turn it is then says so with ``refer_dispute``: the turn becomes the referee's (the
DisputeCommittee) and nobody can be timed out while it rules. A party that refers before
the game is over concedes (the committee convicts it). A silent referee annuls the
dispute after its deadline (refund, nobody slashed).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from eth_utils import keccak
from pydantic import BaseModel

from verimesh.chain.contract import checksum
from verimesh.chain.errors import ContractRevert
from verimesh.chain.job_market import Dispute as ChainDispute
from verimesh.chain.job_market import JobMarketClient, JobState
from verimesh.runtime.trace import Trace
from verimesh.verify.bisection import (
    Dispute,
    DisputeError,
    HonestParty,
    Party,
    PartyEvidence,
    Query,
)

log = logging.getLogger("verimesh.dispute")

# JobMarket's dispute kinds and turns (JobMarket.vy CHALLENGER_* and TURN_*).
KIND_EXTERNAL, KIND_REPLICA, KIND_VALIDATOR = 0, 1, 2
TURN_NAMES = {0: "defender", 1: "challenger", 2: "referee"}
# Stands in for the trace root of an outside challenger (``challenge`` puts none on chain);
# the committee takes that root from the challenger's evidence instead.
UNKNOWN_ROOT = keccak(b"verimesh: an outside challenger's trace root is not on chain")

Answer = Callable[[Query], bytes]


class DisputePlayerError(RuntimeError):
    """The player cannot play this dispute as asked (the message says why)."""


@dataclass
class GameState:
    """The game of one disputed job as the chain records it, replayed through the rules."""

    job_id: int
    job_state: JobState
    chain: ChainDispute
    defender: str
    challenger: str
    defender_root: bytes | None
    challenger_root: bytes | None  # None: an outside challenger (not on chain)
    output_roots: tuple[bytes | None, bytes | None]  # (defender, challenger) output roots claimed
    dispute: Dispute | None  # None when both parties claim the same trace root
    moves: list[tuple[str, bytes]] = field(default_factory=list)  # (mover, data) in chain order
    violation: tuple[Party, str] | None = None  # the first move that broke the rules, and why
    late_moves: int = 0  # moves after the end of the bisection (ignored by the rules)
    resolved: dict[str, Any] | None = None  # DisputeResolved args once decided
    annulled: bool = False
    referred_by: str | None = None  # who called refer_dispute (None: not referred, or 64 moves)

    @property
    def conceded(self) -> Party | None:
        """A party that referred the game to the referee before it was over gave up."""
        if self.referred_by is None or self.over:
            return None
        return self.party_of(self.referred_by)

    def replayed(self, challenger_root: bytes) -> Dispute:
        """The game again with the challenger's trace root taken from its evidence (an outside
        challenger's root is not on chain); its moves are checked against that root."""
        assert self.defender_root is not None
        dispute = Dispute(self.defender_root, challenger_root)
        for mover, data in self.moves:
            party = self.party_of(mover)
            if dispute.outcome is not None or party is None:
                break
            try:
                dispute.move(party, data)
            except DisputeError:
                break
        return dispute

    @property
    def over(self) -> bool:
        """True once no bisection move is due: the leaf is found, a party broke the rules,
        or both claim the same trace (the disagreement is in the output alone)."""
        return (
            self.dispute is None or self.violation is not None or self.dispute.outcome is not None
        )

    def party_of(self, address: str) -> Party | None:
        a = address.lower()
        if a == self.defender.lower():
            return Party.DEFENDER
        if a == self.challenger.lower():
            return Party.CHALLENGER
        return None


class GameReader:
    """Reads one job's dispute from the chain, keeping the events it already saw."""

    def __init__(self, job_market: JobMarketClient, job_id: int, from_block: int = 0) -> None:
        self.jm = job_market
        self.job_id = job_id
        self.from_block = from_block
        self._next = from_block
        self._events: dict[str, list[dict[str, Any]]] = {
            n: []
            for n in (
                "Revealed",
                "AuditReported",
                "Challenged",
                "DisputeMove",
                "DisputeReferred",
                "DisputeResolved",
                "DisputeAnnulled",
            )
        }

    def _poll(self) -> int:
        """Read this job's events up to the chain's head; returns that head."""
        head = self.jm.backend.block_number()
        if self._next <= head:
            for event in self.jm.get_all_events(self._next, head):
                if event.name in self._events and event["job_id"] == self.job_id:
                    self._events[event.name].append(dict(event.args))
            self._next = head + 1
        return head

    def _snapshot(self) -> tuple[Any, ChainDispute]:
        """The job and dispute records and the events, all as of ONE block: the records are
        read between two looks at the head, and kept only if no block came in between (then
        the events read up to that head describe the very state read). A transaction that
        lands meanwhile (the other side's move, a referral, the verdict) costs one more read."""
        for _ in range(20):
            head = self.jm.backend.block_number()
            job = self.jm.jobs(self.job_id)
            chain = self.jm.disputes(self.job_id)
            if self._poll() == head:
                return job, chain
        raise DisputePlayerError(
            f"job {self.job_id}: new blocks kept coming while the dispute was read; retry"
        )

    def read(self) -> GameState:
        job, chain = self._snapshot()
        if job.state == JobState.NONE:
            raise DisputePlayerError(f"job {self.job_id} does not exist on this JobMarket")
        if not self._events["Challenged"]:
            raise DisputePlayerError(
                f"job {self.job_id} was never disputed (state {job.state.name}); nothing to play"
            )
        defender = self.jm.replica(self.job_id, chain.defender_replica).provider
        revealed = {
            e["replica"]: (e["output_root"], e["trace_root"]) for e in self._events["Revealed"]
        }
        d_out, d_root = revealed.get(chain.defender_replica, (None, None))
        c_out: bytes | None = None
        c_root: bytes | None = None
        if chain.kind == KIND_REPLICA:
            c_out, c_root = revealed.get(chain.challenger_replica, (None, None))
        elif chain.kind == KIND_VALIDATOR and self._events["AuditReported"]:
            report = self._events["AuditReported"][-1]
            c_out, c_root = report["output_root"], report["trace_root"]
        if d_root is None:
            raise DisputePlayerError(
                f"no Revealed event of job {self.job_id}'s defender after block {self.from_block}; "
                "pass a from_block at or before the job's post"
            )
        dispute = None
        if d_root != c_root:
            dispute = Dispute(d_root, c_root if c_root is not None else UNKNOWN_ROOT)
        state = GameState(
            job_id=self.job_id, job_state=job.state, chain=chain, defender=checksum(defender),
            challenger=checksum(chain.challenger), defender_root=d_root, challenger_root=c_root,
            output_roots=(d_out, c_out), dispute=dispute,
        )  # fmt: skip
        for move in self._events["DisputeMove"]:
            state.moves.append((checksum(move["mover"]), move["data"]))
            party = state.party_of(move["mover"])
            if state.over or party is None:
                state.late_moves += 1
                continue
            try:
                dispute.move(party, move["data"])  # type: ignore[union-attr]
            except DisputeError as exc:
                state.violation = (party, str(exc))
        if self._events["DisputeResolved"]:
            state.resolved = self._events["DisputeResolved"][-1]
        state.annulled = bool(self._events["DisputeAnnulled"])
        if self._events["DisputeReferred"]:
            state.referred_by = checksum(self._events["DisputeReferred"][-1]["by"])
        return state


def replay_game(job_market: JobMarketClient, job_id: int, from_block: int = 0) -> GameState:
    """The dispute of ``job_id`` replayed from chain events (a pure read; committee members
    use it to know where the game ended and who broke its rules)."""
    return GameReader(job_market, job_id, from_block).read()


class PlayerStatus(BaseModel):
    """What one ``tick`` found and did."""

    job_id: int
    party: str  # defender | challenger
    phase: str  # bisecting | over | resolved | annulled
    rounds: int
    chain_turn: str | None
    deadline: int
    action: str | None = None  # moved | referred | claimed-timeout | claimed-annulment
    outcome: dict[str, Any] | None = None
    violation: str | None = None
    winner: str | None = None
    won: bool | None = None

    @property
    def active(self) -> bool:
        return self.phase in ("bisecting", "over")


class DisputePlayer:
    """Plays the party of ``job_market``'s signer in the dispute of ``job_id``."""

    def __init__(
        self,
        job_market: JobMarketClient,
        job_id: int,
        trace: Trace | Callable[[], Trace],
        *,
        from_block: int = 0,
        answer: Answer | None = None,
        clock: Callable[[], int] | None = None,
        spec: Any | None = None,
        input_bytes: bytes | None = None,
        output_bytes: bytes | None = None,
    ) -> None:
        if job_market.signer is None:
            raise DisputePlayerError(
                "the player sends moves: give it a JobMarketClient with a signer"
            )
        self.jm = job_market
        self.job_id = job_id
        self.address = job_market.signer.address
        self._trace_source = trace
        self._party: HonestParty | None = None
        self._answer = answer
        self.reader = GameReader(job_market, job_id, from_block)
        self._clock = clock
        # The job itself, served with the evidence: a committee member replays the program
        # from it when the leaves differ in the instruction (it checks both against the chain).
        self.spec = spec
        self.input_bytes = input_bytes
        # Our output, served too: deep in a generation the member then runs only the
        # disputed step after the tokens before it, which it checks (verify/replay.py).
        self.output_bytes = output_bytes
        self.state: GameState | None = None

    # -- the party's own trace ----------------------------------------------------------------
    @property
    def honest(self) -> HonestParty:
        if self._party is None:
            trace = self._trace_source() if callable(self._trace_source) else self._trace_source
            self._party = HonestParty(trace)
        return self._party

    def now(self) -> int:
        """The next block's timestamp, at best: anvil mines on demand, so the latest block can be
        old; after ``evm_increaseTime`` the chain runs ahead of the wall clock."""
        if self._clock is not None:
            return self._clock()
        return max(self.jm.backend.timestamp(), int(time.time()))

    # -- one step -------------------------------------------------------------------------------
    def tick(self, now: int | None = None) -> PlayerStatus:
        state = self.reader.read()
        self.state = state
        me = state.party_of(self.address)
        if me is None:
            raise DisputePlayerError(
                f"{self.address} is neither the defender {state.defender} nor the challenger "
                f"{state.challenger} of job {self.job_id}'s dispute"
            )
        status = self._status(state, me)
        if not status.active:
            return status
        now = self.now() if now is None else now
        turn, deadline = state.chain.turn, state.chain.deadline
        if turn == 2:  # the rounds are used up: the referee decides, or the dispute is annulled
            if now > deadline:
                status.action = self._send("claimed-annulment", self.jm.dispute_timeout)
            return status
        mine = turn == int(me)
        if not mine and now > deadline:  # the other side is silent: it loses
            status.action = self._send("claimed-timeout", self.jm.dispute_timeout)
        elif mine and not state.over:
            dispute = state.dispute
            assert dispute is not None and dispute.turn == me, "chain and game turns diverged"
            query = dispute.query()
            assert query is not None
            data = (self._answer or self.honest.answer)(query)
            status.action = self._send("moved", self.jm.dispute_move, data)
        elif mine:  # the game is over: hand it to the referee now
            status.action = self._send("referred", self.jm.refer_dispute)
        return status

    def _send(self, action: str, fn: Callable[..., Any], *args: Any) -> str | None:
        try:
            fn(self.job_id, *args)
        except ContractRevert as exc:  # a race with the other side or the clock: re-read next tick
            log.info(
                "job %d: %s reverted (%s); will re-read the chain", self.job_id, action, exc.reason
            )
            return None
        log.info("job %d: %s", self.job_id, action)
        return action

    def _status(self, state: GameState, me: Party) -> PlayerStatus:
        if state.resolved is not None:
            phase = "resolved"
        elif state.annulled or state.job_state == JobState.REFUNDED:
            phase = "annulled"
        elif state.over:
            phase = "over"
        else:
            phase = "bisecting"
        dispute = state.dispute
        outcome = None
        if dispute is not None and dispute.outcome is not None:
            o = dispute.outcome
            outcome = {"kind": o.kind.value, "level": o.level.value, "step": o.step, "index": o.index,
                       "counts": list(o.counts)}  # fmt: skip
        winner = state.resolved["winner"] if state.resolved else None
        return PlayerStatus(
            job_id=self.job_id,
            party=me.name.lower(),
            phase=phase,
            rounds=state.chain.round,
            chain_turn=TURN_NAMES.get(state.chain.turn) if phase in ("bisecting", "over") else None,
            deadline=state.chain.deadline,
            outcome=outcome,
            violation=None
            if state.violation is None
            else f"{state.violation[0].name.lower()}: {state.violation[1]}",
            winner=winner,
            won=None if winner is None else winner.lower() == self.address.lower(),
        )

    # -- final evidence -------------------------------------------------------------------------
    def evidence(self) -> PartyEvidence:
        """This party's proven leaf with its Merkle proofs and op inputs, for the committee."""
        state = self.state or self.reader.read()
        if state.dispute is None or state.dispute.outcome is None:
            raise DisputePlayerError(f"job {self.job_id}: the bisection has not found its leaf yet")
        return self.honest.evidence(state.dispute)

    def leaf_json(self, leaf_index: int, tensors: bool = True) -> dict[str, Any]:
        """Op ``leaf_index`` of our trace with its proof and input tensors (the body of
        ``/v1/jobs/{id}/trace``): a member resuming at a disputed layer asks for the agreed
        leaf before it (verify/replay.py). IndexError past the trace's end."""
        from verimesh.node.execute import leaf_evidence

        return leaf_evidence(self.honest.trace, leaf_index, tensors)

    def evidence_json(self) -> dict[str, Any]:
        """The wire form a party serves at ``/v1/jobs/{id}/evidence``. When both parties
        claim the same trace there is no leaf to prove (``evidence`` is None): the committee
        re-executes the job from the spec and input served here."""
        state = self.state or self.reader.read()
        me = state.party_of(self.address)
        same_trace = state.dispute is None
        return {
            "job_id": self.job_id,
            "party": me.name.lower() if me is not None else None,
            "address": self.address,
            "trace_root": None if same_trace else "0x" + self.honest.trace.root.hex(),
            "evidence": None if same_trace else self.evidence().to_json(),
            "spec": None if self.spec is None else self.spec.model_dump(mode="json"),
            "input_hex": None if self.input_bytes is None else self.input_bytes.hex(),
            "output_hex": None if self.output_bytes is None else self.output_bytes.hex(),
        }
