"""When cheating loses money: stake, audit probability and detection.

A provider that cheats on a job saves the work it skipped (its gain g). With probability
p the job is audited; an audited cheat is always caught (the bisection ends at one op and
the referee recomputes it), and the provider loses its slashable bond S and the reward R
it would have been paid. Its expected change in wealth from cheating once is therefore

    g - p (S + R)

so cheating loses money exactly when p (S + R) >= g, and the smallest stake that deters
it is S = g / p - R. Over k cheated jobs, the chance of being caught at least once is
1 - (1 - p)^k. JobMarket's bond per job is max(min_bond, price x bond_multiplier_bps /
10000) (docs/contracts.md); ``required_bond_multiplier_bps`` gives the multiplier that
makes a chosen p deter a provider that skips all the work (g = price x gain_fraction).

JobMarket ENFORCES the rule for that worst case (S = bond, R = g = price): ``post_job``
refuses an audit-mode job with 0 < p below ``min_audit_bps(price)``. ``min_audit_bps`` and
``audit_job_allowed`` here are the integer mirror of that check (tests pin them to the
contract); p = 0 is an unaudited job, which only challenges protect.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

BPS = 10_000


def _check_p(p: float) -> None:
    if not 0 < p <= 1:
        raise ValueError(f"audit probability must be in (0, 1], got {p}; p = 0 deters nobody")


def cheating_loses(p: float, stake: float, reward: float, gain: float) -> bool:
    """p (S + R) >= g."""
    _check_p(p)
    return p * (stake + reward) >= gain


def expected_cheat_profit(p: float, stake: float, reward: float, gain: float) -> float:
    """Expected wealth change of cheating once instead of working honestly: g - p (S + R)."""
    _check_p(p)
    return gain - p * (stake + reward)


def min_stake(p: float, reward: float, gain: float) -> float:
    """Smallest slashable stake S with p (S + R) >= g (never negative)."""
    _check_p(p)
    return max(0.0, gain / p - reward)


def min_audit_probability(stake: float, reward: float, gain: float) -> float:
    """Smallest p with p (S + R) >= g (1.0 if even certain audits cannot deter)."""
    if stake + reward <= 0:
        raise ValueError("stake + reward must be positive")
    return min(1.0, gain / (stake + reward))


def detection_probability(p: float, k: int) -> float:
    """Chance an audit(p) catches a provider that cheats on k jobs: 1 - (1 - p)^k."""
    _check_p(p)
    if k < 0:
        raise ValueError(f"k must be >= 0, got {k}")
    return 1.0 - (1.0 - p) ** k


def jobs_to_detect(p: float, confidence: float) -> int:
    """Fewest cheated jobs after which a cheat is caught with at least ``confidence``."""
    _check_p(p)
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    if p == 1:
        return 1
    return math.ceil(math.log(1 - confidence) / math.log(1 - p) - 1e-12)


def audit_probability_for(k: int, confidence: float) -> float:
    """Smallest p that catches a provider cheating on k jobs with ``confidence``."""
    if k < 1 or not 0 < confidence < 1:
        raise ValueError("need k >= 1 and confidence in (0, 1)")
    return 1.0 - (1.0 - confidence) ** (1.0 / k)


def seats_captured_probability(cartel: int, eligible: int, seats: int) -> float:
    """Chance that a cartel of ``cartel`` among ``eligible`` equally likely providers holds
    all ``seats`` replicas of one job: C(cartel, seats) / C(eligible, seats), about f^k for
    a cartel share f. Registry.draw starts every seat at its own hashed position, so
    registering next to each other does not help (docs/verification.md, "Collusion")."""
    if not 0 <= cartel <= eligible or seats < 1 or seats > eligible:
        raise ValueError(f"need 0 <= cartel <= eligible and 1 <= seats <= eligible, got {cartel}, {eligible}, {seats}")
    return math.comb(cartel, seats) / math.comb(eligible, seats)


def detection_with_colluding_auditors(p: float, colluding_share: float, k: int) -> float:
    """1 - (1 - p (1 - v))^k: an audit by one of the cheat's accomplices (a share v of the
    validators' draw weight, or a lazy validator that reports the provider's revealed roots
    without re-running) lets the cheat through, so only p (1 - v) of its jobs catch it."""
    if not 0 <= colluding_share <= 1:
        raise ValueError(f"the colluding share must be in [0, 1], got {colluding_share}")
    _check_p(p)
    if colluding_share == 1:
        return 0.0
    return detection_probability(p * (1 - colluding_share), k)


def probe_profit(
    lazy_share: float, bounty_share: float = 0.5, requester_share: float = 0.3, audit_fee: float = 0.0
) -> float:
    """What a probe of the auditors earns per audited probe job, in units of the job's bond.

    A lazy validator agrees with a revealed result without re-running it. The contracts
    already slash an auditor whose digest a later challenge proves wrong, so anyone can
    hunt lazy auditors: post a job as requester R, and when the prober's own provider P is
    drawn, reveal a wrong result; if the auditor agrees, challenge it from a third account
    C and win. With a share v of audits lazy, bounty share b and requester share r of a
    slashed bond (JobMarket's ``bounty_bps``, ``requester_share_bps``) and the audit fee f
    (in bonds):

    - a lazy auditor (v): P and the auditor are both slashed, C takes both bounties and R
      both requester shares and its whole escrow back: 2b + 2r - 1;
    - a diligent auditor (1 - v): it challenges, wins and earns the fee; P is slashed and
      R takes back r: -(1 - r + f).

    Positive only above v = (1 - r + f) / (2b + r + f): 0.54 to 0.67 at the deployment's
    defaults (f = 0 to 0.5 bonds: the fee is the price, the bond at least twice it). Compute
    and gas are left out (they only lower it); unaudited probe jobs cost nothing (P is paid
    by R)."""
    for name, share in (("lazy", lazy_share), ("bounty", bounty_share), ("requester", requester_share)):
        if not 0 <= share <= 1:
            raise ValueError(f"the {name} share must be in [0, 1], got {share}")
    if bounty_share + requester_share > 1:
        raise ValueError("the bounty and the requester's share cannot exceed the slashed bond")
    if audit_fee < 0:
        raise ValueError(f"the audit fee cannot be negative, got {audit_fee}")
    caught = 2 * bounty_share + 2 * requester_share - 1
    return lazy_share * caught - (1 - lazy_share) * (1 - requester_share + audit_fee)


def probe_break_even(bounty_share: float = 0.5, requester_share: float = 0.3, audit_fee: float = 0.0) -> float:
    """The lazy share of audits above which probing pays: (1 - r + f) / (2b + r + f) (1.0:
    never)."""
    probe_profit(0.0, bounty_share, requester_share, audit_fee)  # checks the arguments
    paid = 2 * bounty_share + requester_share + audit_fee
    return 1.0 if paid == 0 else min(1.0, (1 - requester_share + audit_fee) / paid)


@dataclass(frozen=True)
class BondRule:
    """JobMarket's bond: max(min_bond, price x multiplier_bps / 10000)."""

    min_bond: float = 10.0  # VMT, devnet value (docs/contracts.md)
    multiplier_bps: int = 20_000

    def bond(self, price: float) -> float:
        return max(self.min_bond, price * self.multiplier_bps / BPS)


def required_bond_multiplier_bps(p: float, gain_fraction: float = 1.0) -> int:
    """Bond multiplier (bps of the price) so that p (bond + price) >= gain_fraction x price."""
    _check_p(p)
    return max(0, math.ceil((gain_fraction / p - 1.0) * BPS - 1e-9))


def job_bond(price: int, min_bond: int, bond_multiplier_bps: int) -> int:
    """JobMarket.bond_for: max(min_bond, price x bond_multiplier_bps / 10000), in base units."""
    return max(min_bond, price * bond_multiplier_bps // BPS)


def min_audit_bps(price: int, min_bond: int, bond_multiplier_bps: int) -> int:
    """JobMarket.min_audit_bps: the smallest p (bps) with p (S + R) >= g, where S is the
    job's bond and R = g = price: ceil(price x 10000 / (bond + price))."""
    if price <= 0:
        raise ValueError(f"price must be positive, got {price}")
    bond = job_bond(price, min_bond, bond_multiplier_bps)
    return -(-price * BPS // (bond + price))


def audit_job_allowed(p_bps: int, price: int, min_bond: int, bond_multiplier_bps: int) -> bool:
    """Whether JobMarket.post_job accepts audit(p_bps) at ``price`` (the deterrence check)."""
    return p_bps == 0 or p_bps * (job_bond(price, min_bond, bond_multiplier_bps) + price) >= price * BPS
