"""How an agent picks a verification mode: by the value it has at risk on one job.

A provider that returns a wrong result gains the work it skipped (about the price) plus
whatever someone would pay it to make this particular result wrong, which is at most what
the result is worth to the agent: its value at risk ``v``. Under ``audit(p)`` that cheat is
caught with probability p and then loses its bond S and the reward R = price, so it does
not pay when ``p (S + R) >= price + v`` (``verify.economics``). The agent therefore takes

    p = max(min_audit_p, (price + v) / (S + R))

and uses ``audit(p)`` while p stays at or below ``max_audit_p`` (cheap: one provider, a
validator recomputes with probability p). Above it, deterrence by audit alone would need
near-certain audits, so the agent buys redundancy instead: ``replicate(2)`` (any cheat is
caught if the other drawn replica is honest), ``replicate(3)`` when the value is more than
``replicate3_factor`` times what a provider forfeits (S + R), so that two colluding drawn
providers are still outvoted by an honest third in the dispute.

``MarketTerms`` mirrors JobMarket's bond and escrow formulas (tests pin them to the
contract) so the planner can price a plan without a chain call per job.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from verimesh.chain.job_market import JobMarketClient, Mode
from verimesh.client.sdk import VerificationMode, audit, replicate
from verimesh.verify.economics import BPS, min_audit_probability


@dataclass(frozen=True)
class MarketTerms:
    """JobMarket's money parameters (the constructor's; immutable on chain)."""

    min_bond: int
    bond_multiplier_bps: int
    audit_fee_bps: int

    @classmethod
    def read(cls, market: JobMarketClient) -> MarketTerms:
        return cls(market.min_bond(), market.bond_multiplier_bps(), market.audit_fee_bps())

    def bond(self, price: int) -> int:
        """What each drawn provider locks (and loses if caught): max(min_bond, price x multiplier)."""
        return max(self.min_bond, price * self.bond_multiplier_bps // BPS)

    def escrow(self, mode: VerificationMode, price: int) -> int:
        """What posting the job takes from the requester (``JobMarket.escrow_for``)."""
        if mode.mode == Mode.REPLICATE:
            return price * mode.param
        if mode.param == 0:
            return price
        return price + price * self.audit_fee_bps // BPS


@dataclass(frozen=True)
class ModeRule:
    """The agent's knobs for choosing a mode; the defaults suit the devnet's terms."""

    min_audit_p: float = 0.05  # never audit less often than this, whatever the value
    max_audit_p: float = 0.25  # above this, replicate instead of auditing
    replicate3_factor: float = 10.0  # replicate(3) when v > factor x (S + R)
    # Share of audits assumed to reach a validator that agrees without checking (careless,
    # or bought by the cheat): such an audit catches nothing, so the needed p is divided by
    # (1 - share) (docs/verification.md, "Collusion"). 0 trusts every drawn validator.
    careless_validators: float = 0.0

    def __post_init__(self) -> None:
        if not 0 < self.min_audit_p <= self.max_audit_p <= 1:
            raise ValueError("need 0 < min_audit_p <= max_audit_p <= 1")
        if self.replicate3_factor <= 0:
            raise ValueError("replicate3_factor must be > 0")
        if not 0 <= self.careless_validators < 1:
            raise ValueError(f"careless_validators must be in [0, 1), got {self.careless_validators}")


DEFAULT_RULE = ModeRule()


@dataclass(frozen=True)
class ModeChoice:
    mode: VerificationMode
    reason: str


def choose_mode(value: int, price: int, terms: MarketTerms, rule: ModeRule = DEFAULT_RULE, providers: int = 8) -> ModeChoice:
    """The verification mode for a job worth ``value`` (base units) at ``price`` per replica,
    when ``providers`` distinct providers are registered (replicas cannot exceed them)."""
    if value < 0 or price <= 0:
        raise ValueError(f"need value >= 0 and price > 0, got value={value} price={price}")
    forfeit = terms.bond(price) + price  # S + R
    needed = min(1.0, min_audit_probability(forfeit, 0, price + value) / (1 - rule.careless_validators))
    p = max(rule.min_audit_p, needed)
    if p <= rule.max_audit_p or providers < 2:
        p = min(1.0, math.ceil(p * BPS) / BPS)  # round up to whole bps: never below the need
        why = f"value {value / 10**18:g} VMT: a cheat forfeits {forfeit / 10**18:g} VMT, p >= {needed:.3f} deters it"
        if providers < 2 and needed > rule.max_audit_p:
            why += " (only one provider: audits instead of replicas)"
        return ModeChoice(audit(p), why)
    k = 3 if value > rule.replicate3_factor * forfeit and providers >= 3 else 2
    return ModeChoice(
        replicate(k),
        f"value {value / 10**18:g} VMT needs p = {needed:.2f} > {rule.max_audit_p:g}: {k} replicas must agree",
    )
