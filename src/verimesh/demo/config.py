"""What a demo run is asked to do, checked before anything starts."""

from __future__ import annotations

import random
from dataclasses import dataclass

from verimesh.chain.devnet import DEV_ACCOUNTS

# Provider cheats the demo draws from the adversary zoo (verify.adversary.Behaviour). Each
# is caught by comparison with an honest result (audit or replica) or by a missed deadline.
ZOO = [
    "wrong-output",
    "skip-layers",
    "lower-precision",
    "one-bad-op",
    "random-output",
    "withhold-reveal",
]
RESERVED_ACCOUNTS = 2  # dev0 deploys the contracts, dev1 is the requester
MAX_JOBS = 200


class DemoConfigError(ValueError):
    """A flag combination the demo cannot run; the message says which flag to change."""


@dataclass(frozen=True)
class DemoConfig:
    nodes: int = 5
    jobs: int = 20
    cheaters: int = 1
    validators: int = 2  # two: an audit dispute's committee cannot include its challenger
    dashboard: bool = True
    json: bool = False
    timeout: float = 600.0  # seconds before the demo gives up waiting for the jobs
    seed: int | None = None  # draws the cheaters' behaviours; random when None

    def check(self) -> None:
        accounts = DEV_ACCOUNTS - RESERVED_ACCOUNTS - self.validators
        if self.nodes < 2:
            raise DemoConfigError(f"--nodes must be at least 2 (got {self.nodes}): a network needs providers to compare")
        if self.nodes > accounts:
            raise DemoConfigError(
                f"--nodes {self.nodes} is more than the devnet's {DEV_ACCOUNTS} funded accounts allow "
                f"({RESERVED_ACCOUNTS} are the deployer and the requester, {self.validators} the validators); "
                f"use --nodes {accounts} or fewer"
            )
        if self.cheaters < 0:
            raise DemoConfigError(f"--cheaters must be >= 0 (got {self.cheaters})")
        if self.cheaters * 2 >= self.nodes:
            raise DemoConfigError(
                f"--cheaters {self.cheaters} with --nodes {self.nodes}: cheaters must be fewer than half "
                f"of the nodes (a replicated job needs an honest replica to compare with); "
                f"use --cheaters {max(0, (self.nodes - 1) // 2)} or more --nodes"
            )
        if not 1 <= self.jobs <= MAX_JOBS:
            raise DemoConfigError(f"--jobs must be between 1 and {MAX_JOBS} (got {self.jobs})")
        if self.timeout <= 0:
            raise DemoConfigError(f"--timeout must be > 0 seconds (got {self.timeout})")

    def draw_cheats(self) -> list[str]:
        """Distinct behaviours for the cheaters (repeats only beyond the zoo's size)."""
        rng = random.Random(self.seed)
        start = rng.randrange(len(ZOO))
        return [ZOO[(start + i) % len(ZOO)] for i in range(self.cheaters)]
