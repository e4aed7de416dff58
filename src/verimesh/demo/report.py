"""The demo's verdict: what happened on chain, and the four invariants that decide exit 0.

- every job reached a terminal state (finalized or refunded);
- every cheat was caught: each adversarial provider's result that differed from the honest
  one (or that it withheld) cost it a slash in that job, and no adversarial result went
  unchecked (nobody compared it with an honest one);
- no honest party (requester, honest nodes, validators) was slashed;
- tokens were conserved: the supply is unchanged and sits in holders' balances, JobMarket
  holds exactly what it credited, the Registry exactly its members' stake, and the sum of
  every holder's tokens (wallet + stake + market balance; the burn address is a holder)
  is what it was before the first job.
"""

from __future__ import annotations

from pydantic import BaseModel

from verimesh.demo.ledger import BURN_ADDRESS, TERMINAL, Holdings, JobRecord, Ledger

VMT = 10**18


class PartyBalance(BaseModel):
    """One party's tokens before and after (VMT); ``after_*`` split where they sit."""

    party: str
    address: str
    role: str  # requester | provider | cheater (BEHAVIOUR) | validator | burn | requester's agent ...
    before: float
    after: float
    after_wallet: float
    after_stake: float
    after_market: float

    @property
    def change(self) -> float:
        return self.after - self.before


class Slash(BaseModel):
    job_id: int
    party: str
    amount_vmt: float
    honest: bool


class CheatRecord(BaseModel):
    """One job in which an adversarial provider was assigned, judged from chain state."""

    job_id: int
    party: str
    behaviour: str
    outcome: str  # "wrong result" | "withheld reveal" | "never committed" | "honest result" | "unchecked"
    caught: bool


class NodeKill(BaseModel):
    node: str
    job_id: int
    killed_at_seconds: float
    restarted: bool
    duty_completed: bool  # the killed node revealed the job after its restart


class DemoReport(BaseModel):
    ok: bool
    invariants: dict[str, bool]
    jobs_total: int
    jobs_planned: int
    jobs_verified: int
    jobs_refunded: int
    jobs_by_state: dict[str, int]
    jobs_by_mode: dict[str, int]
    audits_drawn: int
    audits_reported: int
    challenges: int
    disputes_resolved: int
    cheats_attempted: int
    cheats_caught: int
    cheats_unchecked: int
    cheats: list[CheatRecord]
    honest_slashed: int
    slashes: list[Slash]
    tokens_conserved: bool
    token_checks: dict[str, bool]
    tokens_in_open_jobs: float  # VMT JobMarket holds beyond its credits (escrow, bonds of open jobs)
    balances: list[PartyBalance]
    gas_total: int
    transactions: int
    gas_per_job: int
    wall_seconds: float
    chain_time_advanced_seconds: int
    node_kill: NodeKill | None
    parts_not_run: dict[str, str]  # piece -> why it did not run in this demo
    problems: list[str]  # processes that died, a requester that failed, a timeout
    requester: str
    logs: str


def judge_cheats(jobs: list[JobRecord], adversaries: dict[str, tuple[str, str]]) -> list[CheatRecord]:
    """For each job with an adversarial provider: did it cheat, and was it slashed for it?

    The honest answer for a job is what an honest replica revealed, or what an honest
    validator reported in its audit; ``adversaries`` maps address -> (label, behaviour).
    """
    records: list[CheatRecord] = []
    bad = {a.lower() for a in adversaries}
    for job in jobs:
        truths = {roots for p, roots in job.reveals.items() if p.lower() not in bad}
        if job.audit is not None and job.audit[0].lower() not in bad:
            truths.add(job.audit[1])
        for provider in job.providers:
            if provider.lower() not in bad:
                continue
            label, behaviour = adversaries[_key(adversaries, provider)]
            slashed = any(a.lower() == provider.lower() for a in job.slashed)
            if provider in job.reveals:
                if not truths:
                    outcome = "unchecked"
                elif job.reveals[provider] in truths:
                    outcome = "honest result"
                else:
                    outcome = "wrong result"
            elif provider in job.committed:
                outcome = "withheld reveal"
            else:
                outcome = "never committed"
            caught = False if outcome == "honest result" else slashed
            records.append(CheatRecord(job_id=job.job_id, party=label, behaviour=behaviour,
                                       outcome=outcome, caught=caught))  # fmt: skip
    return records


def _key(mapping: dict[str, tuple[str, str]], address: str) -> str:
    return next(a for a in mapping if a.lower() == address.lower())


def party_balances(
    parties: dict[str, str], roles: dict[str, str], before: dict[str, Holdings], after: dict[str, Holdings]
) -> list[PartyBalance]:
    return [
        PartyBalance(
            party=label, address=parties[label], role=roles[label],
            before=before[label].total / VMT, after=after[label].total / VMT,
            after_wallet=after[label].wallet / VMT, after_stake=after[label].stake / VMT,
            after_market=after[label].market / VMT,
        )
        for label in parties
    ]


def conservation(ledger: Ledger, parties: dict[str, str], supply_before: int, total_before: int) -> dict[str, bool]:
    """The token checks. Every holder counts (the burn address too), so what left one
    party arrived at another: the sum of everyone's holdings does not move."""
    checks = ledger.books_balance(list(parties.values()))
    checks["supply_unchanged"] = ledger.net.token.total_supply() == supply_before
    checks["holdings_sum_unchanged"] = ledger.everyone_total(list(parties.values())) == total_before
    return checks


def build_report(
    *,
    ledger: Ledger,
    parties: dict[str, str],
    roles: dict[str, str],
    adversaries: dict[str, tuple[str, str]],
    before: dict[str, Holdings],
    after: dict[str, Holdings],
    supply_before: int,
    total_before: int,
    gas: tuple[int, int],
    jobs_planned: int,
    wall_seconds: float,
    advanced: int,
    node_kill: NodeKill | None,
    parts_not_run: dict[str, str],
    requester: str,
    logs: str,
    problems: list[str],
) -> DemoReport:
    jobs = sorted(ledger.jobs.values(), key=lambda j: j.job_id)
    labels = {address.lower(): label for label, address in parties.items()}
    honest = {a.lower() for label, a in parties.items() if not roles[label].startswith("cheater")}
    honest.discard(BURN_ADDRESS.lower())
    slashes = [
        Slash(job_id=j.job_id, party=labels.get(a.lower(), a), amount_vmt=amount / VMT, honest=a.lower() in honest)
        for j in jobs
        for a, amount in j.slashed.items()
    ]
    cheats = judge_cheats(jobs, adversaries)
    attempted = [c for c in cheats if c.outcome not in ("honest result", "unchecked")]
    unchecked = [c for c in cheats if c.outcome == "unchecked"]
    checks = conservation(ledger, parties, supply_before, total_before)
    by_mode: dict[str, int] = {}
    for j in jobs:
        mode = f"audit({j.mode_param / 10_000:g})" if j.mode == 0 else f"replicate({j.mode_param})"
        by_mode[mode] = by_mode.get(mode, 0) + 1
    invariants = {
        "all_jobs_terminal": bool(jobs) and all(j.state in TERMINAL for j in jobs) and len(jobs) == jobs_planned,
        "every_cheat_caught": all(c.caught for c in attempted) and not unchecked,
        "no_honest_slashed": not any(s.honest for s in slashes),
        "tokens_conserved": all(checks.values()),
    }
    gas_total, txs = gas
    return DemoReport(
        ok=all(invariants.values()),
        invariants=invariants,
        jobs_total=len(jobs),
        jobs_planned=jobs_planned,
        jobs_verified=sum(1 for j in jobs if j.state.name == "FINALIZED"),
        jobs_refunded=sum(1 for j in jobs if j.state.name == "REFUNDED"),
        jobs_by_state=dict(ledger.states()),
        jobs_by_mode=by_mode,
        audits_drawn=sum(1 for j in jobs if j.audit_drawn),
        audits_reported=sum(1 for j in jobs if j.audit is not None),
        challenges=sum(1 for j in jobs if j.challenged_by),
        disputes_resolved=sum(1 for j in jobs if j.dispute_resolved),
        cheats_attempted=len(attempted),
        cheats_caught=sum(1 for c in attempted if c.caught),
        cheats_unchecked=len(unchecked),
        cheats=cheats,
        honest_slashed=sum(1 for s in slashes if s.honest),
        slashes=slashes,
        tokens_conserved=invariants["tokens_conserved"],
        token_checks=checks,
        tokens_in_open_jobs=ledger.held_for_open_jobs(list(parties.values())) / VMT,
        balances=party_balances(parties, roles, before, after),
        gas_total=gas_total,
        transactions=txs,
        gas_per_job=gas_total // len(jobs) if jobs else 0,
        wall_seconds=round(wall_seconds, 1),
        chain_time_advanced_seconds=advanced,
        node_kill=node_kill,
        parts_not_run=parts_not_run,
        requester=requester,
        logs=logs,
        problems=problems,
    )
