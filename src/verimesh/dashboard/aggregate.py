"""Fold contract events into the dashboard's picture of the network.

The chain is the source of truth: every job, state change, audit, dispute and slash shown
comes from a Registry or JobMarket event, applied once and in chain order (``EventCursor``
guarantees both). Reads of current values (stakes, balances) are done by the follower;
this module only remembers what the events said, so it can be tested event by event.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from verimesh.chain.abi import Event
from verimesh.chain.job_market import JobState, Mode
from verimesh.chain.registry import Role
from verimesh.dashboard.models import DisputeView, JobStep, JobView, SlashView, VerificationView

ZERO = "0x0000000000000000000000000000000000000000"

# Registry events that say who is a member; stakes themselves are read from the contract.
REGISTRY_EVENTS = ("Registered", "Updated", "StakeAdded", "Deregistered")
JOB_EVENTS = (
    "JobPosted", "ProviderAssigned", "Committed", "Revealed", "AuditDrawn", "AuditReported",
    "AuditAbandoned", "Challenged", "DisputeMove", "DisputeResolved", "DisputeAnnulled", "Slashed", "Credited",
    "Finalized", "Refunded",
)  # fmt: skip


def state_name(state: int) -> str:
    return JobState(state).name.lower()


@dataclass
class MemberRecord:
    role: str
    jobs_assigned: int = 0
    jobs_paid: set[int] = field(default_factory=set)
    jobs_slashed: set[int] = field(default_factory=set)
    slashed_amount: int = 0
    audits: int = 0
    audits_abandoned: int = 0


@dataclass
class ChainView:
    """Everything the events told so far. ``apply`` one event at a time, in chain order."""

    members: dict[str, MemberRecord] = field(default_factory=dict)
    requesters: set[str] = field(default_factory=set)
    jobs: dict[int, JobView] = field(default_factory=dict)
    job_txs: dict[int, list[bytes]] = field(default_factory=dict)  # for gas per job
    verifications: dict[int, VerificationView] = field(default_factory=dict)
    disputes: dict[int, DisputeView] = field(default_factory=dict)
    slashes: list[SlashView] = field(default_factory=list)

    def apply(self, event: Event, seen_at: float) -> None:
        handler = getattr(self, f"_on_{event.name}", None)
        if handler is None:
            return
        handler(event, seen_at)
        job_id = event.args.get("job_id")
        if job_id is not None and job_id in self.jobs:
            txs = self.job_txs.setdefault(job_id, [])
            if event.tx_hash not in txs:
                txs.append(event.tx_hash)

    # -- Registry ----------------------------------------------------------------------
    def _on_Registered(self, e: Event, seen_at: float) -> None:
        role = "validator" if e["role"] == Role.VALIDATOR else "provider"
        self.members.setdefault(e["account"], MemberRecord(role)).role = role

    def _on_Updated(self, e: Event, seen_at: float) -> None:
        self.members.setdefault(e["account"], MemberRecord("provider"))

    # -- JobMarket ---------------------------------------------------------------------
    def _step(self, e: Event, seen_at: float, state: str | None = None, detail: str = "") -> None:
        job = self.jobs.get(e["job_id"])
        if job is None:  # a job posted before the dashboard's start block
            return
        if state is not None:
            job.state = state
        job.history.append(JobStep(state=job.state, event=e.name, block=e.block_number, seen_at=seen_at,
                                   detail=detail))  # fmt: skip

    def _on_JobPosted(self, e: Event, seen_at: float) -> None:
        mode = Mode(e["mode"])
        self.requesters.add(e["requester"])
        self.jobs[e["job_id"]] = JobView(
            job_id=e["job_id"],
            requester=e["requester"],
            mode=mode.name.lower(),
            mode_param=e["mode_param"],
            price=e["price"],
            escrow=e["escrow"],
            state=state_name(JobState.ASSIGNED),
        )
        label = f"p={e['mode_param'] / 100:g}%" if mode == Mode.AUDIT else f"k={e['mode_param']}"
        self._step(e, seen_at, detail=f"{mode.name.lower()} {label}")

    def _on_ProviderAssigned(self, e: Event, seen_at: float) -> None:
        job = self.jobs.get(e["job_id"])
        if job is not None:
            job.providers.append(e["provider"])
        self.members.setdefault(e["provider"], MemberRecord("provider")).jobs_assigned += 1

    def _on_Committed(self, e: Event, seen_at: float) -> None:
        if (job := self.jobs.get(e["job_id"])) is not None:
            job.committed += 1
        self._step(e, seen_at, state_name(e["state"]), f"replica {e['replica']}")

    def _on_Revealed(self, e: Event, seen_at: float) -> None:
        if (job := self.jobs.get(e["job_id"])) is not None:
            job.revealed += 1
        self._step(e, seen_at, state_name(e["state"]), f"replica {e['replica']}")

    def _on_AuditDrawn(self, e: Event, seen_at: float) -> None:
        validator = None if e["validator"] == ZERO else e["validator"]
        self.verifications[e["job_id"]] = VerificationView(
            job_id=e["job_id"], validator=validator, block=e.block_number
        )
        if (job := self.jobs.get(e["job_id"])) is not None:
            job.validator = validator
        if validator is not None:
            self.members.setdefault(validator, MemberRecord("validator")).audits += 1
            self._step(e, seen_at, state_name(JobState.AUDITING), "validator drawn")
        else:
            self._step(e, seen_at, detail="no eligible validator: unaudited")

    def _on_AuditReported(self, e: Event, seen_at: float) -> None:
        v = self.verifications.get(e["job_id"])
        if v is not None:
            v.reported, v.agrees = True, e["agrees"]
        state = JobState.REVEALED if e["agrees"] else JobState.DISPUTED
        self._step(e, seen_at, state_name(state), "agrees" if e["agrees"] else "disagrees")

    def _on_AuditAbandoned(self, e: Event, seen_at: float) -> None:
        """The drawn validator got no job to audit and gave the audit up (everyone refunded,
        nobody slashed). Counted per validator: nobody can prove who withheld the job, so a
        validator that abandons far more often than others is worth a look."""
        if (v := self.verifications.get(e["job_id"])) is not None:
            v.abandoned = True
        self.members.setdefault(e["validator"], MemberRecord("validator")).audits_abandoned += 1
        self._step(e, seen_at, detail="audit abandoned: nobody gave the validator the job")

    def _on_Challenged(self, e: Event, seen_at: float) -> None:
        self.disputes[e["job_id"]] = DisputeView(
            job_id=e["job_id"],
            challenger=e["challenger"],
            kind=e["kind"],
            defender_replica=e["defender_replica"],
            bond=e["bond"],
            block=e.block_number,
        )
        self._step(
            e, seen_at, state_name(JobState.DISPUTED), f"replica {e['defender_replica']} challenged"
        )

    def _on_DisputeMove(self, e: Event, seen_at: float) -> None:
        if (d := self.disputes.get(e["job_id"])) is not None:
            d.moves += 1
        self._step(e, seen_at, detail=f"round {e['round']}")

    def _on_DisputeResolved(self, e: Event, seen_at: float) -> None:
        if (d := self.disputes.get(e["job_id"])) is not None:
            d.resolved, d.defender_at_fault, d.winner = True, e["defender_at_fault"], e["winner"]
        self._step(
            e,
            seen_at,
            detail="defender at fault" if e["defender_at_fault"] else "challenger at fault",
        )

    def _on_DisputeAnnulled(self, e: Event, seen_at: float) -> None:
        if (d := self.disputes.get(e["job_id"])) is not None:
            d.resolved, d.annulled = True, True
        self._step(e, seen_at, detail="annulled")

    def _on_Slashed(self, e: Event, seen_at: float) -> None:
        slash = SlashView(
            job_id=e["job_id"],
            account=e["account"],
            amount=e["amount"],
            bounty_to=e["bounty_to"],
            bounty=e["bounty"],
            requester_share=e["requester_share"],
            burned=e["burned"],
            block=e.block_number,
        )
        self.slashes.append(slash)
        member = self.members.setdefault(e["account"], MemberRecord("provider"))
        member.jobs_slashed.add(e["job_id"])
        member.slashed_amount += e["amount"]
        self._step(e, seen_at, detail=f"{e['account'][:10]} slashed")

    def _on_Credited(self, e: Event, seen_at: float) -> None:
        job = self.jobs.get(e["job_id"])
        if e["account"] in self.members and (job is None or e["account"] != job.requester):
            self.members[e["account"]].jobs_paid.add(e["job_id"])

    def _on_Finalized(self, e: Event, seen_at: float) -> None:
        self._step(e, seen_at, state_name(JobState.FINALIZED))

    def _on_Refunded(self, e: Event, seen_at: float) -> None:
        self._step(e, seen_at, state_name(JobState.REFUNDED))

    def jobs_by_state(self) -> dict[str, int]:
        counts = {s.name.lower(): 0 for s in JobState if s != JobState.NONE}
        for job in self.jobs.values():
            counts[job.state] += 1
        return counts
