"""Gas per job lifecycle step on the anvil devnet (and the in-process EVM for comparison),
plus transaction throughput through verimesh's JSON-RPC backend.

Run: .venv/bin/python bench/bench_gas.py [--jobs 5] [--transfers 200] [--write docs/bench-chain.md]

For each job shape (audit(0) = one provider, no audit; replicate(1); replicate(2)) it runs
--jobs honest jobs through `verimesh.chain.lifecycle` (post, commit, reveal, finalize, and the
pull-payment claims where the contracts have them) and a timeout-refund job, and reports the
median gas of every step and the total per job. Gas is what the chain charges (receipt
gasUsed: intrinsic + execution - refunds); the in-process figures are computed the same way.
Token approvals are setup, listed separately (a requester approves once for many jobs).

Throughput: --transfers token transfers sent one after another from one account with an
explicit gas limit and 5 ms receipt polling, then the same with web3's default 100 ms polling,
and the wall time of the whole lifecycle run. Target to record against: <= 250k gas per
unbatched job (Ritual Infernet's subscribe-and-deliver is ~350k).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import time
from collections import defaultdict
from pathlib import Path

from verimesh.chain import devnet
from verimesh.chain.accounts import dev_signers
from verimesh.chain.backends.base import Backend
from verimesh.chain.backends.boa import BoaBackend
from verimesh.chain.backends.rpc import RpcBackend
from verimesh.chain.deploy import deploy_network, fund_accounts
from verimesh.chain.job_market import Mode
from verimesh.chain.lifecycle import VMT, JobRun, register_providers, run_job, run_timeout

TARGET = 250_000
SHAPES = [
    ("audit(0)", Mode.AUDIT, 0),
    ("replicate(1)", Mode.REPLICATE, 1),
    ("replicate(2)", Mode.REPLICATE, 2),
]


def measure(backend: Backend, jobs: int) -> dict[str, list[JobRun]]:
    deployer, requester, *providers = dev_signers(4)
    net = deploy_network(backend, deployer)
    fund_accounts(net, deployer, [requester.address] + [p.address for p in providers], 10_000 * VMT)
    register_providers(net, providers, stake=1_000 * VMT, price=5 * VMT)
    runs: dict[str, list[JobRun]] = {}
    for label, mode, param in SHAPES:
        runs[label] = [run_job(net, requester, providers, mode, param)[0] for _ in range(jobs)]
    runs["timeout refund"] = [run_timeout(net, requester)[0] for _ in range(jobs)]
    return runs


def step_medians(runs: list[JobRun]) -> list[tuple[str, int]]:
    """Median gas per step name (replicas' commits/reveals summed within a job)."""
    per_step: dict[str, list[int]] = defaultdict(list)
    order: list[str] = []
    for run in runs:
        sums: dict[str, int] = defaultdict(int)
        for s in run.steps:
            sums[s.name] += s.gas
            if s.name not in order:
                order.append(s.name)
        for name, gas in sums.items():
            per_step[name].append(gas)
    return [(name, int(statistics.median(per_step[name]))) for name in order]


def tx_rate(url: str, n: int, poll: float) -> float:
    """Sequential token transfers per second through RpcBackend polling every ``poll`` s."""
    backend = RpcBackend(url, gas_limit=devnet.DEVNET_GAS_LIMIT, poll_interval=poll)
    deployer, receiver = dev_signers(2)
    net = deploy_network(backend, deployer)
    net.token.mint(deployer.address, n)
    start = time.perf_counter()
    for _ in range(n):
        net.token.transfer(receiver.address, 1, signer=deployer)
    return n / (time.perf_counter() - start)


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    anvil = subprocess.run(
        [str(devnet.find_anvil()), "--version"], capture_output=True, text=True
    ).stdout.split("\n")[0]
    return (
        f"{cpu}, {len(os.sched_getaffinity(0))} cores, Python {platform.python_version()}, {anvil}"
    )


def table(rpc_runs: dict[str, list[JobRun]], boa_runs: dict[str, list[JobRun]]) -> list[str]:
    lines = ["| job | step | gas (anvil) | gas (in-process) |", "|---|---|---:|---:|"]
    for label in rpc_runs:
        boa = dict(step_medians(boa_runs[label]))
        for name, gas in step_medians(rpc_runs[label]):
            lines.append(f"| {label} | {name} | {gas:,} | {boa.get(name, 0):,} |")
        total = int(statistics.median(r.gas for r in rpc_runs[label]))
        boa_total = int(statistics.median(r.gas for r in boa_runs[label]))
        mark = "within" if total <= TARGET else "ABOVE"
        lines.append(
            f"| **{label}** | **total per job** ({mark} the {TARGET // 1000}k target) | **{total:,}** | **{boa_total:,}** |"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=5, help="jobs per shape (medians are reported)")
    parser.add_argument("--transfers", type=int, default=200, help="transfers for the tx/s figure")
    parser.add_argument("--write", type=Path, help="write the markdown report to this file")
    args = parser.parse_args()

    boa_runs = measure(BoaBackend(), args.jobs)
    node = devnet.start_anvil()
    try:
        start = time.perf_counter()
        rpc = RpcBackend(node.url, gas_limit=devnet.DEVNET_GAS_LIMIT)
        rpc_runs = measure(rpc, args.jobs)
        lifecycle_seconds = time.perf_counter() - start
        n_tx = rpc.block_number()  # automine: one block per transaction (+ time-travel blocks)
        fast = tx_rate(node.url, args.transfers, 0.005)
        slow = tx_rate(node.url, max(20, args.transfers // 10), 0.1)
    finally:
        node.stop()

    lines = [
        "# Chain benchmark: gas per job and devnet throughput",
        "",
        f"Command: `.venv/bin/python bench/bench_gas.py --jobs {args.jobs} --transfers {args.transfers}"
        + (f" --write {args.write}`" if args.write else "`"),
        "",
        f"Machine: {machine()}.",
        "",
        f"Target: <= {TARGET:,} gas per unbatched job (Ritual Infernet's subscribe-and-deliver is ~350k).",
        "Gas is receipt `gasUsed` (intrinsic + execution - refunds), median over the jobs of each shape;",
        "commit/reveal/claim rows sum all replicas of a job. Approvals are setup, not counted per job.",
        "",
        *table(rpc_runs, boa_runs),
        "",
        "Throughput through `RpcBackend` (local signing, explicit gas limit, nonces counted locally):",
        "",
        "| what | rate |",
        "|---|---:|",
        f"| sequential token transfers, 5 ms receipt polling | {fast:.1f} tx/s |",
        f"| sequential token transfers, web3's default 100 ms polling | {slow:.1f} tx/s |",
        f"| whole devnet lifecycle run above ({n_tx} blocks) | {n_tx / lifecycle_seconds:.1f} blocks/s |",
    ]
    report = "\n".join(lines) + "\n"
    print(report)
    if args.write:
        args.write.write_text(report)


if __name__ == "__main__":
    main()
