"""Gas per job lifecycle step on the anvil devnet (and the in-process EVM for comparison),
plus transaction throughput through verimesh's JSON-RPC backend.

Run: .venv/bin/python bench/bench_gas.py [--jobs 5] [--transfers 200] [--write docs/bench-chain.md]

For each job shape (audit(0) = one provider, no audit; replicate(1); replicate(2)) it runs
--jobs honest jobs through `verimesh.chain.lifecycle` and as many timeout-refund jobs, and
reports the median gas of every step and the total per job, post to settlement. Not per job:
the escrow approval (one large approval or a deposit serves many jobs) and the withdrawals
of credited market balances (pull payments: one withdrawal collects many jobs), listed apart.
Gas is what the chain charges (receipt gasUsed: intrinsic + execution - refunds); the
in-process figures are computed the same way and match anvil's.

Throughput: --transfers token transfers sent one after another from one account through
RpcBackend (local nonces, 5 ms receipt polling) with an explicit gas limit and with a gas
estimate per transaction, then the same transfers done the web3.py default way, and the
block rate of the whole devnet lifecycle run. Target to record against: <= 250k gas per
unbatched job (Ritual Infernet's subscribe-and-deliver is ~350k).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import time
from collections import defaultdict
from pathlib import Path

from verimesh.benchinfo import machine
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


def step_medians(runs: list[JobRun], payouts: bool = False) -> list[tuple[str, int]]:
    """Median gas per step name (the replicas' commits/reveals summed within a job)."""
    per_step: dict[str, list[int]] = defaultdict(list)
    order: list[str] = []
    for run in runs:
        sums: dict[str, int] = defaultdict(int)
        for s in run.payouts if payouts else run.steps:
            sums[s.name] += s.gas
            if s.name not in order:
                order.append(s.name)
        for name, gas in sums.items():
            per_step[name].append(gas)
    return [(name, int(statistics.median(per_step[name]))) for name in order]


def tx_rate(url: str, n: int, gas_limit: int | None) -> float:
    """Sequential token transfers per second through ``RpcBackend``."""
    backend = RpcBackend(url, gas_limit=gas_limit)
    deployer, receiver = dev_signers(2)
    net = deploy_network(backend, deployer)
    net.token.mint(deployer.address, n)
    start = time.perf_counter()
    for _ in range(n):
        net.token.transfer(receiver.address, 1, signer=deployer)
    return n / (time.perf_counter() - start)


def tx_rate_web3_default(url: str, n: int) -> float:
    """The same transfers the way web3.py does it by default: nonce and gas asked from the
    node per transaction, ``wait_for_transaction_receipt`` with its 100 ms polling."""
    backend = RpcBackend(url, gas_limit=devnet.DEVNET_GAS_LIMIT)
    deployer, receiver = dev_signers(2)
    net = deploy_network(backend, deployer)
    net.token.mint(deployer.address, n)
    w3 = backend.w3
    data = net.token.abi.function("transfer", 2).encode((receiver.address, 1))
    start = time.perf_counter()
    for _ in range(n):
        tx = {
            "chainId": backend.chain_id,
            "to": net.token.address,
            "data": data,
            "value": 0,
            "nonce": w3.eth.get_transaction_count(deployer.address, "pending"),
            "maxFeePerGas": 2 * w3.eth.get_block("latest")["baseFeePerGas"]
            + w3.eth.max_priority_fee,
            "maxPriorityFeePerGas": w3.eth.max_priority_fee,
        }
        tx["gas"] = w3.eth.estimate_gas({**tx, "from": deployer.address})
        tx_hash = w3.eth.send_raw_transaction(deployer.sign_transaction(tx))
        w3.eth.wait_for_transaction_receipt(tx_hash)
    return n / (time.perf_counter() - start)


def anvil_version() -> str:
    """The first line of ``anvil --version`` (the EVM whose gas the table reports)."""
    anvil = subprocess.run([str(devnet.find_anvil()), "--version"], capture_output=True, text=True)
    return anvil.stdout.split("\n")[0]


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
            f"| **{label}** | **total per job** ({mark} the {TARGET // 1000}k target) "
            f"| **{total:,}** | **{boa_total:,}** |"
        )
        boa_payouts = dict(step_medians(boa_runs[label], payouts=True))
        for name, gas in step_medians(rpc_runs[label], payouts=True):
            lines.append(
                f"| {label} | {name} (all payees; once for many jobs) | {gas:,} | {boa_payouts.get(name, 0):,} |"
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
        explicit = tx_rate(node.url, args.transfers, devnet.DEVNET_GAS_LIMIT)
        estimated = tx_rate(node.url, args.transfers, None)
        default = tx_rate_web3_default(node.url, max(20, args.transfers // 4))
    finally:
        node.stop()

    lines = [
        "# Chain benchmark: gas per job and devnet throughput",
        "",
        f"Command: `.venv/bin/python bench/bench_gas.py --jobs {args.jobs} --transfers {args.transfers}"
        + (f" --write {args.write}`" if args.write else "`"),
        "",
        f"Machine: {machine(anvil_version())}.",
        "",
        f"Target: <= {TARGET:,} gas per unbatched job (Ritual Infernet's subscribe-and-deliver is ~350k).",
        "Gas is receipt `gasUsed` (intrinsic + execution - refunds), median over the jobs of each shape;",
        "commit/reveal/withdraw rows sum all replicas of a job. Not counted per job: the requester's",
        "escrow approval (~46k; one large approval or a `deposit` serves many jobs) and the",
        "withdrawals of credited market balances (pull payments: one withdrawal collects many jobs).",
        "",
        *table(rpc_runs, boa_runs),
        "",
        "Throughput (sequential token transfers from one account to anvil, local signing):",
        "",
        "| what | rate |",
        "|---|---:|",
        f"| `RpcBackend`, explicit gas limit (the devnet setting) | {explicit:.1f} tx/s |",
        f"| `RpcBackend`, `eth_estimateGas` per transaction | {estimated:.1f} tx/s |",
        f"| web3.py defaults: node nonce + fee + estimate per tx, `wait_for_transaction_receipt` (100 ms polling) | {default:.1f} tx/s |",
        f"| whole devnet lifecycle run above ({n_tx} blocks) | {n_tx / lifecycle_seconds:.1f} blocks/s |",
    ]
    lines += [
        "",
        "Notes:",
        "- The in-process EVM (`BoaBackend`) charges the same gas as anvil, unit for unit",
        "  (`tests/chain/test_chain_backends.py::test_in_process_gas_matches_the_devnet`), so contract",
        "  gas work can iterate in-process. Medians over jobs may differ by a few gas: the drawn",
        "  providers and cold/warm storage vary per job.",
        "- The per-job total is post_job + every replica's commit and reveal + finalize (or",
        "  timeout); it is what an unbatched job costs on any EVM chain.",
        "- Transfers are sequential from one account (each waits for its receipt): the rate is",
        "  round trips, not anvil's capacity. Receipts are polled every 5 ms by `RpcBackend`.",
        "  The 2 cores are shared with other jobs: rates vary between runs, gas does not.",
    ]
    report = "\n".join(lines) + "\n"
    print(report)
    if args.write:
        args.write.write_text(report)


if __name__ == "__main__":
    main()
