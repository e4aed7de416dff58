"""Gas of one unbatched job, measured as a real transaction would pay it (see `tx_gas`).

Target (issue 2): post + commit + reveal + finalize <= 250k gas for an audit-mode job with
one provider that is not audited. Steady state: the provider and requester have used the
market before (their claimable balances and the market's token balance are non-zero, as
on any live market). The figures are recorded in docs/contracts.md.
"""

from __future__ import annotations

from collections.abc import Iterator

import boa
import pytest
from contract_world import (
    CONTRACTS,
    INPUT,
    JOB_PRICE,
    MODE_AUDIT,
    MODE_REPLICATE,
    MODEL,
    OUTPUT,
    SALT,
    SPEC,
    TRACE,
    WINDOW,
    World,
    deploy,
    tx_gas,
)

# tx_gas ends "transactions" in the EVM, which titanoboa's per-test anchor cannot span;
# these tests run in their own EVM instead (see `gas_world`).
pytestmark = pytest.mark.ignore_isolation

# A regression ceiling, not the 250k target: see docs/contracts.md "Gas" for the figures
# and the floor of this design.
GAS_CEILING = 275_000


@pytest.fixture
def gas_world() -> Iterator[World]:
    """A world in its own EVM: `tx_gas` commits state between transactions, which the
    anchors of the shared test EVM must not see."""
    with boa.swap_env(boa.Env()):
        yield deploy(providers=3, validators=1)


def run_job(world: World, mode: int, param: int) -> dict[str, int]:
    """Runs one job to finalization and returns the gas of each transaction."""
    m = world.market
    gas: dict[str, int] = {}
    with boa.env.prank(world.requester):
        gas["post_job"] = tx_gas(m, lambda: m.post_job(
            SPEC, MODEL, INPUT, mode, param, JOB_PRICE, WINDOW, WINDOW, WINDOW))
    job_id = m.job_count()
    providers = list(m.assigned(job_id))
    for i, p in enumerate(providers):
        c = m.commitment_for(job_id, p, OUTPUT, TRACE, SALT)
        with boa.env.prank(p):
            gas[f"commit[{i}]"] = tx_gas(m, lambda c=c: m.commit(job_id, c))
    boa.env.time_travel(blocks=1)  # reveal in a later block than the commitments
    for i, p in enumerate(providers):
        with boa.env.prank(p):
            gas[f"reveal[{i}]"] = tx_gas(m, lambda: m.reveal(job_id, OUTPUT, TRACE, SALT))
    boa.env.time_travel(seconds=WINDOW + 1)
    gas["finalize"] = tx_gas(m, lambda: m.finalize(job_id))
    gas["total"] = sum(gas.values())
    return gas


def _warm_up(world: World) -> None:
    """One job per provider, so that every account has used the market before."""
    for _ in range(len(world.providers)):
        run_job(world, MODE_REPLICATE, len(world.providers))


def test_audit_job_gas(gas_world: World) -> None:
    _warm_up(gas_world)
    gas = run_job(gas_world, MODE_AUDIT, 0)
    print("\naudit(p=0), 1 provider, escrow from wallet:", gas)
    assert gas["total"] <= GAS_CEILING, gas


def test_audit_job_gas_prepaid(gas_world: World) -> None:
    _warm_up(gas_world)
    with boa.env.prank(gas_world.requester):
        gas_world.market.deposit(100 * JOB_PRICE)
    gas = run_job(gas_world, MODE_AUDIT, 0)
    print("\naudit(p=0), 1 provider, escrow from market balance:", gas)
    assert gas["total"] <= GAS_CEILING, gas


# Regression ceilings for the other shapes (measured values are in docs/contracts.md).
@pytest.mark.parametrize(("mode", "param", "ceiling"), [
    (MODE_AUDIT, 2000, 300_000),  # p = 20% (at least min_audit_bps = 16.67% at this price); not audited
    (MODE_REPLICATE, 2, 440_000),
    (MODE_REPLICATE, 3, 600_000),
])
def test_gas_report(gas_world: World, mode: int, param: int, ceiling: int) -> None:
    _warm_up(gas_world)
    gas = run_job(gas_world, mode, param)
    if mode == MODE_AUDIT:
        # The audit coin comes from a block hash, so an audit(p) job may be drawn for audit
        # (then `finalize` only opens the audit). The row measures the unaudited path: redraw
        # until one is not audited (ten audits in a row at p = 20% happen once in 1e7).
        for _ in range(10):
            if not gas_world.market.jobs(gas_world.market.job_count()).audited:
                break
            gas = run_job(gas_world, mode, param)
        assert not gas_world.market.jobs(gas_world.market.job_count()).audited
    print(f"\nmode {mode} param {param}:", gas)
    assert gas["total"] <= ceiling, gas



def test_job_market_deploys_within_the_devnet_gas_limit() -> None:
    """A deploy costs 200 gas per byte of runtime code: JobMarket's (intrinsic cost and
    constructor arguments included) must fit the devnet's per-transaction gas limit, which
    deploy_network uses (packing storage costs code bytes)."""
    from eth_abi import encode

    from verimesh.chain.devnet import DEVNET_GAS_LIMIT

    deployer = boa.load_partial(str(CONTRACTS / "JobMarket.vy"))
    someone = "0x" + "11" * 20
    args = (someone, someone, someone, 10**19, 20_000, 10_000, 5 * 10**18, 5_000, 3_000, 3_600)
    data = deployer.compiler_data.bytecode + encode(
        ["address"] * 3 + ["uint256"] * 7, list(args)
    )
    with boa.swap_env(boa.Env()):
        contract = deployer.deploy(*args)
        execution = contract._computation.get_gas_used()
    calldata = sum(4 if b == 0 else 16 for b in data) + 2 * ((len(data) + 31) // 32)
    gas = 21_000 + 32_000 + calldata + execution
    runtime = len(deployer.compiler_data.bytecode_runtime)
    print("\nJobMarket runtime bytes:", runtime, "deploy gas:", gas)
    assert runtime <= 24_576
    assert gas < DEVNET_GAS_LIMIT, gas
