"""What ``GET /api/state`` returns: the whole picture of a running network in one document.

Pydantic models because the state crosses a process boundary (the page, scripts, the demo's
report) and FastAPI turns them into the OpenAPI schema. Amounts are integers in token base
units (``token_decimals`` says how to show them); addresses are checksummed 0x hex.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class NodeInfoView(BaseModel):
    """What the node says about itself at ``/v1/info`` (None while it does not answer)."""

    online: bool = Field(description="the last poll of /v1/info answered")
    working: bool | None = Field(None, description="False while the idle policy pauses it")
    status: str = Field("", description="the node's own words, or why it could not be reached")
    tasks: list[str] = Field(default_factory=list)
    models: list[str] = Field(default_factory=list)
    benchmark: dict[str, Any] = Field(default_factory=dict)
    version: str | None = None
    checked_at: float | None = Field(None, description="unix time of the last poll")


class NodeView(BaseModel):
    """A registered provider or validator: chain facts plus what its API reports."""

    address: str
    role: str = Field(description="provider | validator")
    endpoint: str
    stake: int
    locked: int
    price: int
    active: bool
    jobs_assigned: int = 0
    jobs_done: int = Field(0, description="jobs settled with this member paid")
    jobs_slashed: int = 0
    slashed_amount: int = 0
    audits: int = Field(0, description="audits this validator was drawn for")
    audits_abandoned: int = Field(
        0, description="of those, audits it abandoned (nobody gave it the job; docs/contracts.md, 'Abandoned audits')"
    )
    info: NodeInfoView


class JobStep(BaseModel):
    """One event in a job's life; ``state`` is the job's state after it."""

    state: str
    event: str
    block: int
    seen_at: float = Field(description="unix time the dashboard read the event")
    detail: str = ""


class JobView(BaseModel):
    job_id: int
    requester: str
    mode: str = Field(description="audit | replicate")
    mode_param: int = Field(description="audit probability in bps, or the number of replicas")
    price: int = Field(description="per replica")
    escrow: int
    state: str
    providers: list[str] = Field(default_factory=list)
    committed: int = 0
    revealed: int = 0
    validator: str | None = None
    history: list[JobStep] = Field(default_factory=list)
    gas: int | None = Field(
        None, description="gas of every transaction that touched the job; None if unknown"
    )


class VerificationView(BaseModel):
    """An audit draw in audit mode and, once sent, the validator's report."""

    job_id: int
    validator: str | None = Field(description="None: the coin hit but no validator was eligible")
    block: int
    reported: bool = False
    agrees: bool | None = None
    abandoned: bool = Field(False, description="the validator gave the audit up: everyone refunded, nobody slashed")


class DisputeView(BaseModel):
    job_id: int
    challenger: str
    kind: int
    defender_replica: int
    bond: int
    moves: int = 0
    resolved: bool = False
    annulled: bool = False
    defender_at_fault: bool | None = None
    winner: str | None = None
    block: int


class SlashView(BaseModel):
    job_id: int
    account: str
    amount: int
    bounty_to: str
    bounty: int
    requester_share: int
    burned: int
    block: int


class BalanceView(BaseModel):
    """Every token a party holds: in its wallet, credited in JobMarket, staked in Registry."""

    address: str
    label: str = Field(
        description="requester | provider | validator | job_market | registry | burned"
    )
    wallet: int
    market: int = 0
    stake: int = 0

    @property
    def total(self) -> int:
        return self.wallet + self.market + self.stake


class ArenaStanding(BaseModel):
    """One provider in one settled arena epoch."""

    rank: int = Field(description="1 = highest consensus incentive")
    slot: int
    provider: str
    reward: int
    incentive: int = Field(description="share of the consensus, in 1e9 units")


class ArenaEpochView(BaseModel):
    epoch: int
    agrees: bool = Field(description="the finalized payouts equal the consensus replayed from the chain")
    providers: list[ArenaStanding]


class ArenaProviderView(BaseModel):
    """A provider's totals over the arena's settled epochs."""

    provider: str
    model: str | None = Field(None, description="model name (from the local store) or root of its latest answers")
    reward: int
    epochs: int
    ranks: list[int] = Field(description="rank in each settled epoch it took part in")
    last_rank: int
    best_rank: int


class ArenaView(BaseModel):
    """An arena's leaderboard over epochs (``verimesh.market.leaderboard``)."""

    name: str
    address: str
    task_family: str
    settled_epochs: list[int] = Field(default_factory=list)
    providers: list[ArenaProviderView] = Field(default_factory=list)
    epochs: list[ArenaEpochView] = Field(default_factory=list)
    error: str | None = Field(None, description="why the arena could not be read")


class DashboardState(BaseModel):
    chain_id: int
    block: int
    updated_at: float = Field(description="unix time of the last successful chain poll")
    error: str | None = Field(None, description="why the last poll failed, if it did")
    token_symbol: str
    token_decimals: int
    total_supply: int
    contracts: dict[str, str]
    nodes: list[NodeView]
    jobs: list[JobView]
    jobs_by_state: dict[str, int]
    verifications: list[VerificationView]
    disputes: list[DisputeView]
    slashes: list[SlashView]
    balances: list[BalanceView]
    arenas: list[ArenaView] = Field(default_factory=list, description="arenas of $VERIMESH_HOME/arenas.json on this chain")
