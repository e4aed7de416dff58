"""What the chain says: parties' holdings, jobs by state, slashes, disputes and gas.

Every figure the demo shows or checks comes from here (contract views and events), never
from what the processes it started print about themselves: the nodes, the validator and the
requester are the parties under test.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from verimesh.chain import Deployment, JobState, Network, Role
from verimesh.chain.abi import Event

BURN_ADDRESS = "0x000000000000000000000000000000000000dEaD"
TERMINAL = (JobState.FINALIZED, JobState.REFUNDED)
# Jobs whose verification is still running: the demo never fast-forwards chain time over them.
IN_VERIFICATION = (JobState.AUDITING, JobState.DISPUTED)


@dataclass(frozen=True)
class Holdings:
    """One party's tokens: in its wallet, staked in the Registry, credited in JobMarket."""

    wallet: int
    stake: int
    market: int

    @property
    def total(self) -> int:
        return self.wallet + self.stake + self.market


@dataclass
class JobRecord:
    """A job as the chain tells it: posted, assigned, revealed, checked, settled."""

    job_id: int
    requester: str
    model_root: str
    mode: int
    mode_param: int
    price: int
    escrow: int
    providers: list[str] = field(default_factory=list)
    state: JobState = JobState.ASSIGNED
    committed: set[str] = field(default_factory=set)
    reveals: dict[str, bytes] = field(default_factory=dict)  # provider -> output||trace roots
    audit: tuple[str, bytes, bool] | None = None  # (validator, roots, agrees)
    audit_drawn: str | None = None  # validator drawn ("" when none was eligible)
    challenged_by: str | None = None
    dispute_resolved: bool = False
    slashed: dict[str, int] = field(default_factory=dict)  # account -> amount slashed
    refunded: int = 0


class Ledger:
    """Reads one deployment. ``refresh()`` pulls new JobMarket events into ``jobs``."""

    def __init__(self, deployment: Deployment) -> None:
        self.deployment = deployment
        self.net = Network.connect(deployment)
        self.jobs: dict[int, JobRecord] = {}
        self.events: list[Event] = []
        self._cursor = deployment.block

    # -- holdings ---------------------------------------------------------------------
    def holdings(self, address: str) -> Holdings:
        member = self.net.registry.members(address)
        stake = member.stake + member.unbonding if member.role != Role.NONE else 0
        return Holdings(
            self.net.token.balance_of(address), stake, self.net.job_market.balances(address)
        )

    def snapshot(self, parties: dict[str, str]) -> dict[str, Holdings]:
        return {label: self.holdings(address) for label, address in parties.items()}

    # -- jobs -------------------------------------------------------------------------
    def refresh(self) -> list[Event]:
        """Read events since the last call, update the job records, re-read open jobs."""
        head = self.net.backend.block_number()
        if head <= self._cursor:
            return []
        new = self.net.job_market.get_all_events(self._cursor + 1, head)
        self._cursor = head
        self.events += new
        for event in new:
            self._apply(event)
        for job in self.jobs.values():
            if job.state not in TERMINAL:
                job.state = self.net.job_market.jobs(job.job_id).state
        return new

    def _apply(self, e: Event) -> None:
        if e.name == "JobPosted":
            self.jobs[e["job_id"]] = JobRecord(
                job_id=e["job_id"], requester=e["requester"], model_root="0x" + e["model_root"].hex(),
                mode=e["mode"], mode_param=e["mode_param"], price=e["price"], escrow=e["escrow"],
            )  # fmt: skip
            return
        job = self.jobs.get(e.args.get("job_id", -1))
        if job is None:
            return
        if e.name == "ProviderAssigned":
            job.providers.append(e["provider"])
        elif e.name == "Committed":
            job.committed.add(e["provider"])
        elif e.name == "Revealed":
            job.reveals[e["provider"]] = e["output_root"] + e["trace_root"]
        elif e.name == "AuditDrawn":
            job.audit_drawn = e["validator"] if int(e["validator"], 16) else ""
        elif e.name == "AuditReported":
            job.audit = (e["validator"], e["output_root"] + e["trace_root"], e["agrees"])
        elif e.name == "Challenged":
            job.challenged_by = e["challenger"]
        elif e.name in ("DisputeResolved", "DisputeAnnulled"):
            job.dispute_resolved = True
        elif e.name == "Slashed":
            job.slashed[e["account"]] = job.slashed.get(e["account"], 0) + e["amount"]
        elif e.name == "Refunded":
            job.refunded += e["amount"]

    def states(self) -> Counter[str]:
        return Counter(job.state.name.lower() for job in self.jobs.values())

    def all_terminal(self) -> bool:
        return all(job.state in TERMINAL for job in self.jobs.values())

    def verifying(self) -> bool:
        return any(job.state in IN_VERIFICATION for job in self.jobs.values())

    # -- gas --------------------------------------------------------------------------
    def gas_of_contract_calls(self, from_block: int) -> tuple[int, int]:
        """(gas, transactions) of every transaction sent to a verimesh contract from
        ``from_block`` on: the protocol's on-chain cost over the demo."""
        addresses = {
            a.lower() for a in self.deployment.contracts.model_dump().values() if isinstance(a, str)
        }
        w3 = self.net.backend.w3  # type: ignore[attr-defined]  # the demo runs on JSON-RPC
        gas = txs = 0
        for number in range(from_block, w3.eth.block_number + 1):
            receipts: Any = w3.provider.make_request("eth_getBlockReceipts", [hex(number)])["result"]
            for receipt in receipts or []:
                if (receipt.get("to") or "").lower() in addresses:
                    gas += int(receipt["gasUsed"], 16)
                    txs += 1
        return gas, txs

    # -- token books ------------------------------------------------------------------
    def token_holders(self) -> set[str]:
        """Every address that ever received the token (from its Transfer events)."""
        token = self.net.token
        holders = set()
        for e in token.get_events("Transfer", 0):
            holders.add(e["receiver"] if "receiver" in e.args else e["to"])
        return holders

    def everyone_total(self, extra: list[str]) -> int:
        """Tokens of every holder (wallet + stake + market balance), the contracts that keep
        stake and credits excluded (their tokens are counted as the members' stake and
        credits): constant unless tokens are minted, or stuck in an open job's escrow."""
        keepers = {self.net.registry.address.lower(), self.net.job_market.address.lower()}
        addresses = {a.lower(): a for a in [*self.token_holders(), *extra]}
        return sum(self.holdings(a).total for key, a in addresses.items() if key not in keepers)

    def held_for_open_jobs(self, extra: list[str]) -> int:
        """Tokens JobMarket holds beyond what it credited: escrow and bonds of open jobs."""
        jm = self.net.job_market
        credited = sum(jm.balances(h) for h in {*self.token_holders(), *extra})
        return self.net.token.balance_of(jm.address) - credited

    def books_balance(self, members: list[str]) -> dict[str, bool]:
        """The checks behind ``tokens_conserved`` that need no before/after: every token
        of the supply is in some holder's balance; JobMarket holds exactly the credited
        balances once no job is open; the Registry holds exactly its members' stake."""
        token, jm, reg = self.net.token, self.net.job_market, self.net.registry
        holders = self.token_holders()
        supply = token.total_supply()
        holder_sum = sum(token.balance_of(h) for h in holders)
        credited = sum(jm.balances(h) for h in holders | set(members))
        staked = 0
        for m in {*reg.providers(), *reg.validators(), *members}:
            member = reg.members(m)
            if member.role != Role.NONE:
                staked += member.stake + member.unbonding
        return {
            "supply_in_balances": holder_sum == supply,
            "job_market_holds_credits": token.balance_of(jm.address) == credited,
            "registry_holds_stakes": token.balance_of(reg.address) == staked,
        }
