"""Agent-based simulation of an arena over many epochs, settled by `consensus.settle_epoch`.

Why simulate: the consensus is only worth something if, with real incentives, the best
provider wins quickly, a cartel below half the stake cannot bend rewards and validators who
copy instead of measuring earn less than those who measure. The simulation puts numbers on
each claim and runs plain Yuma (one-sided clipping) on the very same world for comparison.

The world (provider qualities, arrivals, every noise draw) is drawn once from the seed and
indexed by (epoch, validator, provider id), so two runs that differ only in one behaviour
(the cartel, or the clipping rule) see identical randomness: differences are caused, not luck.

Measurement model: each epoch validators score providers on fresh challenges derived from
that epoch's seed (revealed after providers committed their answers). A provider's score on
an epoch's challenge set is its true quality plus an epoch effect shared by every honest
validator (the same challenges), plus each validator's own small noise (its sample of the
challenges, network). Copiers cannot see this epoch's scores before reveal (commit-reveal),
so they submit the previous epoch's public consensus.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

from verimesh.market.consensus import Clipping, ConsensusParams, settle_epoch

HONEST, CARTEL, COPIER, LAZY_CONSTANT, LAZY_RANDOM = "honest", "cartel", "copier", "lazy_constant", "lazy_random"
WEIGHT_UNITS = 1_000_000  # agents submit integer scores with 6 decimals
# Pruning order is a moving average of incentive (as Arena.vy's `slot_rank`): new = 3/10 of
# this epoch + 7/10 of the old, seeded by the provider's first settled epoch. One noisy
# epoch, or a small in-band pull, then rarely decides who is pruned.
STANDING_NEW, STANDING_DEN = 3, 10


@dataclass(frozen=True)
class SimConfig:
    """The arena and its population. Stake fractions are of the total validator stake."""

    epochs: int = 40
    seed: int = 0
    slots: int = 8  # maximum provider slots in the arena
    immunity: int = 4  # epochs a new provider cannot be pruned
    newcomer_every: int = 4  # a newcomer tries to register every this many epochs
    best_arrival: int = 6  # epoch at which the best provider registers (a newcomer)
    best_quality: float = 0.9
    honest_validators: int = 6
    honest_stake: float = 0.55
    cartel_validators: int = 2
    cartel_stake: float = 0.30
    copier_validators: int = 2
    copier_stake: float = 0.10
    lazy_stake: float = 0.05  # split between one constant and one random lazy validator
    epoch_noise: float = 0.06  # sd of the per-epoch challenge effect, shared by all measurers
    private_noise: float = 0.02  # sd of each validator's own measurement noise
    sharpness: float = 2.0  # honest weight = measured score ** sharpness
    cartel_push: float = 0.5  # share of its row the cartel gives its own provider
    pool_per_epoch: int = 1_000 * 10**18

    def __post_init__(self) -> None:
        total = self.honest_stake + self.cartel_stake + self.copier_stake + self.lazy_stake
        if abs(total - 1.0) > 1e-9:
            raise ValueError(f"stake fractions must sum to 1, they sum to {total:.4f}")
        if min(self.honest_stake, self.cartel_stake, self.copier_stake) <= 0 or self.lazy_stake < 0:
            raise ValueError("honest, cartel and copier stake must be > 0 and lazy stake >= 0")
        if self.epochs < 1 or self.slots < 2 or self.immunity < 0:
            raise ValueError("need epochs >= 1, slots >= 2, immunity >= 0")
        if not 1 <= self.best_arrival < self.epochs:
            raise ValueError(
                f"best_arrival must be in [1, epochs): the best provider is a newcomer, got {self.best_arrival}"
            )
        if min(self.honest_validators, self.cartel_validators, self.copier_validators) < 1:
            raise ValueError("need at least one validator of each kind")


@dataclass(frozen=True)
class Provider:
    pid: int
    quality: float
    price: float
    arrival: int  # epoch at which it tries to register


@dataclass
class World:
    """Everything random, drawn once from the seed."""

    config: SimConfig
    providers: list[Provider]
    kinds: list[str]
    stakes: list[int]
    epoch_noise: np.ndarray  # [epoch, pid]
    private_noise: np.ndarray  # [epoch, validator, pid]
    lazy_draws: np.ndarray  # [epoch, pid] weights of the random lazy validator
    cartel_own: int  # pid the cartel pushes up
    best: int  # pid of the best provider


def build_world(config: SimConfig) -> World:
    rng = np.random.default_rng(config.seed)
    providers = []
    initial = rng.uniform(0.25, 0.75, size=config.slots)
    for pid, q in enumerate(initial):
        providers.append(Provider(pid, float(q), float(rng.uniform(0.5, 2.0)), 0))
    arrivals = sorted(set(range(config.newcomer_every, config.epochs, config.newcomer_every)) | {config.best_arrival})
    for epoch in arrivals:
        pid = len(providers)
        q = config.best_quality if epoch == config.best_arrival else float(rng.uniform(0.2, 0.7))
        providers.append(Provider(pid, q, float(rng.uniform(0.5, 2.0)), epoch))
    best = next(p.pid for p in providers if p.arrival == config.best_arrival and p.quality == config.best_quality)
    # the cartel backs a mediocre incumbent: the median-quality initial provider
    cartel_own = int(np.argsort(initial)[config.slots // 2])

    kinds: list[str] = []
    fractions: list[float] = []
    for kind, count, frac in (
        (HONEST, config.honest_validators, config.honest_stake),
        (CARTEL, config.cartel_validators, config.cartel_stake),
        (COPIER, config.copier_validators, config.copier_stake),
    ):
        split = rng.dirichlet(np.full(count, 4.0)) * frac
        kinds += [kind] * count
        fractions += list(split)
    kinds += [LAZY_CONSTANT, LAZY_RANDOM]
    fractions += [config.lazy_stake / 2, config.lazy_stake / 2]
    stakes = [max(1, round(f * 10**9)) for f in fractions]

    n_p = len(providers)
    return World(
        config=config,
        providers=providers,
        kinds=kinds,
        stakes=stakes,
        epoch_noise=rng.normal(0, config.epoch_noise, size=(config.epochs, n_p)),
        private_noise=rng.normal(0, config.private_noise, size=(config.epochs, len(kinds), n_p)),
        lazy_draws=rng.dirichlet(np.ones(n_p), size=config.epochs),
        cartel_own=cartel_own,
        best=best,
    )


@dataclass
class RunResult:
    """Per-epoch series of one run (one clipping rule, cartel on or off)."""

    clipping: str
    cartel_active: bool
    lineup: list[list[int]] = field(default_factory=list)  # pids in the arena per epoch
    provider_rewards: list[dict[int, int]] = field(default_factory=list)  # epoch -> pid -> tokens
    provider_rank: list[dict[int, int]] = field(default_factory=list)  # epoch -> pid -> 1 = best
    validator_rewards: list[list[int]] = field(default_factory=list)  # epoch -> validator -> tokens
    pruned: list[tuple[int, int]] = field(default_factory=list)  # (epoch, pid)
    carry: int = 0


def _measured(world: World, epoch: int, v: int, lineup: Sequence[int]) -> np.ndarray:
    q = np.array([world.providers[p].quality for p in lineup])
    s = q + world.epoch_noise[epoch, lineup] + world.private_noise[epoch, v, lineup]
    return np.clip(s, 1e-3, None)


def _to_ints(row: np.ndarray) -> list[int]:
    ints = [int(v) for v in np.rint(row / row.sum() * WEIGHT_UNITS)]
    if sum(ints) == 0:
        ints = [1] * len(ints)
    return ints


def _weights(world: World, epoch: int, v: int, lineup: list[int], public: dict[int, int],
             cartel_active: bool) -> list[int]:
    """The score vector validator v submits this epoch."""
    kind = world.kinds[v]
    cfg = world.config
    if kind == HONEST or (kind == CARTEL and not cartel_active):
        return _to_ints(_measured(world, epoch, v, lineup) ** cfg.sharpness)
    if kind == CARTEL:
        honest = _measured(world, epoch, v, lineup) ** cfg.sharpness
        rivals = [p for p in lineup if p != world.cartel_own]
        rival = max(rivals, key=lambda p: world.providers[p].quality)  # the strongest competitor
        row = np.array([0.0 if p == rival else h for p, h in zip(lineup, honest, strict=True)])
        if world.cartel_own in lineup:
            k = lineup.index(world.cartel_own)
            row[k] = 0.0
            row = row / row.sum() * (1 - cfg.cartel_push)
            row[k] = cfg.cartel_push
        return _to_ints(row)
    if kind == COPIER:
        # commit-reveal: only the previous epoch's consensus is public; unknown newcomers
        # get the average of what is known
        if not public:
            return [1] * len(lineup)
        mean = sum(public.values()) // len(public)
        return [max(1, public.get(p, mean)) for p in lineup]
    if kind == LAZY_CONSTANT:
        return [1] * len(lineup)
    return _to_ints(world.lazy_draws[epoch, lineup])


def run(world: World, clipping: Clipping, cartel_active: bool) -> RunResult:
    cfg = world.config
    params = ConsensusParams(clipping=clipping)
    result = RunResult(clipping=clipping, cartel_active=cartel_active)
    lineup = [p.pid for p in world.providers if p.arrival == 0]
    registered_at = dict.fromkeys(lineup, 0)
    incentive: dict[int, int] = {}
    bonds: dict[tuple[int, int], int] = {}
    public: dict[int, int] = {}
    carry = 0
    for epoch in range(cfg.epochs):
        for newcomer in (p for p in world.providers if p.arrival == epoch and epoch > 0):
            if len(lineup) >= cfg.slots:
                prunable = [p for p in lineup if epoch - registered_at[p] >= cfg.immunity]
                if not prunable:
                    continue  # full of immune providers: the newcomer is turned away
                victim = min(prunable, key=lambda p: (incentive.get(p, 0), p))
                lineup.remove(victim)
                result.pruned.append((epoch, victim))
                bonds = {k: b for k, b in bonds.items() if k[1] != victim}
            lineup.append(newcomer.pid)
            registered_at[newcomer.pid] = epoch
        m = len(world.kinds)
        weights = [_weights(world, epoch, v, lineup, public, cartel_active) for v in range(m)]
        prev = [[bonds.get((v, p), 0) for p in lineup] for v in range(m)]
        out = settle_epoch(world.stakes, weights, prev, cfg.pool_per_epoch + carry, params)
        carry = out.carry
        bonds = {(v, p): out.bonds[v][j] for v in range(m) for j, p in enumerate(lineup)}
        incentive = {
            p: x if p not in incentive
            else (STANDING_NEW * x + (STANDING_DEN - STANDING_NEW) * incentive[p]) // STANDING_DEN
            for p, x in zip(lineup, out.incentive, strict=True)
        }
        public = dict(zip(lineup, out.consensus, strict=True))
        order = sorted(lineup, key=lambda p: (-out.ranks[lineup.index(p)], p))
        result.lineup.append(list(lineup))
        result.provider_rewards.append(dict(zip(lineup, out.provider_rewards, strict=True)))
        result.provider_rank.append({p: k + 1 for k, p in enumerate(order)})
        result.validator_rewards.append(list(out.validator_rewards))
    result.carry = carry
    return result


def epochs_for_best_to_rank_first(world: World, res: RunResult) -> int | None:
    """Epochs from the best provider's arrival until it first ranks first in an epoch's
    rewards (1 = first on its very first scored epoch); None if it never does."""
    arrival = world.providers[world.best].arrival
    for k, ranks in enumerate(res.provider_rank[arrival:]):
        if ranks.get(world.best) == 1:
            return k + 1
    return None


def best_first_fraction(world: World, res: RunResult) -> float:
    """Fraction of the epochs since its arrival in which the best provider ranked first
    (a noisy epoch of fresh challenges can put a weaker provider ahead once in a while)."""
    ranks = [r.get(world.best) for r in res.provider_rank[world.providers[world.best].arrival:]]
    return sum(r == 1 for r in ranks) / len(ranks)


def reward_shift(a: RunResult, b: RunResult, *, same_lineup_only: bool = False) -> float:
    """Fraction of all provider rewards paid to a different provider in run a than in run b
    (total variation distance, summed epoch by epoch so shifts cannot cancel over time).

    same_lineup_only: count only the epochs before the two runs first prune differently,
    which isolates the cartel's direct pull on consensus from its effect on who survives.
    """
    moved = 0
    paid = 0
    for la, lb, ra, rb in zip(a.lineup, b.lineup, a.provider_rewards, b.provider_rewards, strict=True):
        if same_lineup_only and la != lb:
            break
        pids = set(ra) | set(rb)
        moved += sum(abs(ra.get(p, 0) - rb.get(p, 0)) for p in pids) // 2
        paid += sum(rb.values())
    return moved / paid if paid else 0.0


def _per_stake(world: World, res: RunResult, kinds: Sequence[str]) -> float:
    idx = [i for i, k in enumerate(world.kinds) if k in kinds]
    earned = sum(sum(row[i] for i in idx) for row in res.validator_rewards)
    return earned / sum(world.stakes[i] for i in idx)


def metrics(world: World, res: RunResult, counterfactual: RunResult) -> dict[str, object]:
    honest_per_stake = _per_stake(world, res, [HONEST])
    total_v = sum(sum(row) for row in res.validator_rewards)
    honest_idx = [i for i, k in enumerate(world.kinds) if k == HONEST]
    honest_earned = sum(sum(row[i] for i in honest_idx) for row in res.validator_rewards)
    own = world.cartel_own
    return {
        "epochs_for_best_to_rank_first": epochs_for_best_to_rank_first(world, res),
        "best_first_fraction": round(best_first_fraction(world, res), 6),
        "cartel_reward_shift": round(reward_shift(res, counterfactual), 6),
        "cartel_reward_shift_same_lineup": round(reward_shift(res, counterfactual, same_lineup_only=True), 6),
        "copier_to_honest_earnings": round(_per_stake(world, res, [COPIER]) / honest_per_stake, 6),
        "cartel_to_honest_earnings": round(_per_stake(world, res, [CARTEL]) / honest_per_stake, 6),
        "lazy_to_honest_earnings": round(
            _per_stake(world, res, [LAZY_CONSTANT, LAZY_RANDOM]) / honest_per_stake, 6
        ),
        "honest_validator_share": round(honest_earned / total_v, 6) if total_v else 0.0,
        "cartel_own_provider_rewards_vs_counterfactual": round(
            sum(r.get(own, 0) for r in res.provider_rewards)
            / max(1, sum(r.get(own, 0) for r in counterfactual.provider_rewards)),
            6,
        ),
        "pruned": [{"epoch": e, "provider": p} for e, p in res.pruned],
        "undistributed_carry": res.carry,
    }


GOALS = {
    "epochs_for_best_to_rank_first": ("<=", 10),
    "cartel_reward_shift": ("<", 0.05),
    "copier_to_honest_earnings": ("<", 1.0),
}


def goals_met(m: dict[str, object]) -> dict[str, bool]:
    out = {}
    for key, (op, bound) in GOALS.items():
        value = m[key]
        out[key] = value is not None and (value <= bound if op == "<=" else value < bound)
    return out


@dataclass
class Simulation:
    """Both clipping rules, each with and without the cartel, on one world."""

    world: World
    runs: dict[tuple[str, bool], RunResult]

    def report(self) -> dict[str, object]:
        w = self.world
        out: dict[str, object] = {
            "config": asdict(w.config),
            "stake_shares": {
                kind: round(sum(s for s, k in zip(w.stakes, w.kinds, strict=True) if k in kinds) / sum(w.stakes), 6)
                for kind, kinds in (
                    ("honest", [HONEST]), ("cartel", [CARTEL]), ("copier", [COPIER]),
                    ("lazy", [LAZY_CONSTANT, LAZY_RANDOM]),
                )
            },
            "providers": [asdict(p) for p in w.providers],
            "best_provider": w.best,
            "cartel_provider": w.cartel_own,
        }
        for clipping in ("two_sided", "yuma"):
            m = metrics(w, self.runs[(clipping, True)], self.runs[(clipping, False)])
            m["goals_met"] = goals_met(m)
            out[clipping] = m
        return out


def simulate(config: SimConfig) -> Simulation:
    world = build_world(config)
    runs = {(c, a): run(world, c, a) for c in ("two_sided", "yuma") for a in (True, False)}
    return Simulation(world, runs)
