"""What an agent costs on chain and in time, next to a plain requester, and what resale costs.

    .venv/bin/python bench/bench_agent.py [--jobs 10] [--requests 10] [--write docs/bench-agent.md]

On a real anvil devnet with one real provider node (in this process, tiny-shakespeare,
4-token generations, the same mode for everyone: audit(0.1819), the agent's choice for a
value at risk of 1 VMT):

1. A plain SDK requester (a dev account) buys ``--jobs`` jobs one after the other.
2. An agent (AgentWallet + session key) buys the same jobs: per job the wallet pays the key
   the escrow under the policy (``fund``), then the key posts. Its one-off set-up
   (deploy the wallet, approve, top up, authorize the key, gas money) is counted apart.
3. Resale: a buyer agent pays a seller agent ``--requests`` times over one channel; the
   seller fulfils each by buying a job. Counted: every transaction either agent sends.

Transactions and gas are read from the chain: every transaction mined during a phase,
grouped by sender (node transactions, commit and reveal, are left out: they are the same
for every requester). Latency is wall time per job (post -> verified output), median.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT / "tests" / "agent"))
from agent_net import agent_net_up, prepare_home  # noqa: E402

from verimesh.benchinfo import machine  # noqa: E402

E = 10**18
MAX_TOKENS = 4


def txs_by_sender(backend, first_block: int, last_block: int) -> dict[str, tuple[int, int]]:
    """{sender: (transactions, gas)} of blocks first..last (anvil mines one tx per block)."""
    w3 = backend.w3
    out: dict[str, tuple[int, int]] = {}
    for number in range(first_block, last_block + 1):
        for tx in w3.eth.get_block(number, full_transactions=True)["transactions"]:
            gas = int(w3.eth.get_transaction_receipt(tx["hash"])["gasUsed"])
            n, g = out.get(tx["from"], (0, 0))
            out[tx["from"]] = (n + 1, g + gas)
    return out


def sum_for(counts: dict[str, tuple[int, int]], senders: list[str]) -> tuple[int, int]:
    picked = [counts.get(s, (0, 0)) for s in senders]
    return sum(p[0] for p in picked), sum(p[1] for p in picked)


def release_bonds(backend, registry, provider: str, timeout: float = 120) -> None:
    """Close the challenge windows so the node finalizes and its bonds come free: one
    provider with the minimum stake (100 VMT) carries at most 10 unfinalized jobs."""
    backend.advance_time(61)
    deadline = time.monotonic() + timeout
    while registry.members(provider).locked:
        if time.monotonic() > deadline:
            raise RuntimeError("the node did not finalize its jobs")
        time.sleep(0.2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=10)
    parser.add_argument("--requests", type=int, default=10)
    parser.add_argument("--cache", type=Path, default=ROOT / ".pytest_cache" / "d",
                        help="where compiled contracts and model bundles are cached")  # fmt: skip
    parser.add_argument("--write", type=Path, default=None)
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="bench-agent-"))
    os.environ["VERIMESH_HOME"] = str(tmp / "home")
    roots = prepare_home(tmp / "home", args.cache / "verimesh-artifacts", args.cache / "verimesh-bundles", ["tiny-shakespeare"])
    model = roots["tiny-shakespeare"]

    from verimesh.agent import Agent, WorkItem
    from verimesh.agent.server import BackgroundServer
    from verimesh.agent.service import AgentService, ServiceConfig
    from verimesh.chain import Deployment
    from verimesh.client import Client, audit
    from verimesh.crypto.wallet import WalletStore

    load = os.getloadavg()
    with agent_net_up(tmp, model) as net:
        dep = Deployment.load(net.deployment)
        mode = audit(0.1819)
        prompts = [f"KING {i}:" for i in range(args.jobs)]

        # 1. plain requester
        client = Client(dep, WalletStore(net.state / "wallets").load("dev1", dep.dev_password or ""))
        backend = client.net.backend
        start = backend.block_number() + 1
        plain_lat = []
        for i, prompt in enumerate(prompts):
            t0 = time.perf_counter()
            client.submit(model=model, task="generate", input=prompt, params={"max_tokens": MAX_TOKENS, "seed": i},
                          mode=mode).result(timeout=300)  # fmt: skip
            plain_lat.append(time.perf_counter() - t0)
        plain = sum_for(txs_by_sender(backend, start, backend.block_number()), [client.signer.address])
        provider = client.net.registry.providers()[0]
        client.close()
        release_bonds(backend, client.net.registry, provider)

        # 2. agent
        start = backend.block_number() + 1
        agent = Agent.provision(net.deployment, "dev3", 100 * E, tmp / "agent", reuse=False)
        setup_end = backend.block_number()
        owner = dep.dev_accounts[3].address
        setup = sum_for(txs_by_sender(backend, start, setup_end), [owner])
        work = [WorkItem(task="generate", model=model, input=p, params={"max_tokens": MAX_TOKENS, "seed": i},
                         value=E, mode=mode) for i, p in enumerate(prompts)]  # fmt: skip
        records = agent.run_jobs(work, timeout=300, max_in_flight=1)
        assert all(r.verified for r in records), [r.error for r in records]
        agent_counts = txs_by_sender(backend, setup_end + 1, backend.block_number())
        per_agent = sum_for(agent_counts, [agent.key.address])
        agent_lat = [r.seconds for r in records]
        agent.close()
        release_bonds(backend, agent.net.registry, provider)

        # 3. resale
        seller = Agent.provision(net.deployment, "dev4", 100 * E, tmp / "seller", name="seller", reuse=False)
        service = AgentService(seller, ServiceConfig(name="qa", generate_model=model, answer_price=3 * E, max_tokens=MAX_TOKENS))
        buyer = Agent.provision(net.deployment, "dev5", 100 * E, tmp / "buyer", name="buyer",
                                counterparties=(seller.key.address,), reuse=False)  # fmt: skip
        start = backend.block_number() + 1
        resale_lat = []
        with BackgroundServer(service.app()) as server:
            http = buyer.buyer(server.url, max_price=3 * E)
            for i in range(args.requests):
                t0 = time.perf_counter()
                r = http.post("/v1/answer", json={"question": f"QUEEN {i}:"})
                assert r.status_code == 200, r.text
                resale_lat.append(time.perf_counter() - t0)
            http.close()
        service.settle(close=True)
        counts = txs_by_sender(backend, start, backend.block_number())
        resale_buyer = sum_for(counts, [buyer.key.address])
        resale_seller = sum_for(counts, [seller.key.address])
        seller.close()
        buyer.close()

    n, m = args.jobs, args.requests
    lines = [
        "# Agents: transactions, gas and time next to a plain requester",
        "",
        f"Command: `.venv/bin/python bench/bench_agent.py --jobs {n} --requests {m} --write docs/bench-agent.md`",
        "",
        f"Machine: {machine()}, shared with the team's work "
        f"(load average at start {load[0]:.1f}); chain: anvil devnet over JSON-RPC; "
        f"one in-process provider node; tiny-shakespeare, {MAX_TOKENS}-token generations, mode {mode} for all.",
        "",
        f"## {n} jobs bought one after the other",
        "",
        "| requester | transactions | per job | gas | gas per job | median s per job |",
        "|---|---:|---:|---:|---:|---:|",
        f"| plain account (SDK) | {plain[0]} | {plain[0] / n:.2f} | {plain[1]:,} | {plain[1] // n:,} | {statistics.median(plain_lat):.2f} |",
        f"| agent (session key: fund + post) | {per_agent[0]} | {per_agent[0] / n:.2f} | {per_agent[1]:,} | {per_agent[1] // n:,} | {statistics.median(agent_lat):.2f} |",
        "",
        f"The agent's one-off set-up by its owner: {setup[0]} transactions, {setup[1]:,} gas (deploy the "
        "AgentWallet, approve, top up, authorize the session key, send it gas money). On top of a plain "
        "account's transactions the agent sends the wallet's policy-checked payments of escrow to its "
        "session key (JobMarket charges `msg.sender`; docs/agents.md, the float): one per batch of jobs, "
        "up to `max_per_payment`; a seller buying one job per request pays one per request.",
        "",
        f"## Resale: {m} answers bought by one agent from another",
        "",
        "| party | transactions | gas | what |",
        "|---|---:|---:|---|",
        f"| buyer agent | {resale_buyer[0]} | {resale_buyer[1]:,} | opens one channel from its wallet; every request is a voucher |",
        f"| seller agent | {resale_seller[0]} | {resale_seller[1]:,} | per request: fund + post of the job it resells; "
        "approve once; the channel's close at the end |",
        "",
        f"Median wall time of a resold answer (x402 request -> the seller buys and waits for a verified job -> answer): "
        f"{statistics.median(resale_lat):.2f} s, against {statistics.median(agent_lat):.2f} s for a job an agent "
        "buys directly. The difference is the seller's work per request: it plans the purchase (registry, "
        "wallet-policy and balance reads, about ten JSON-RPC calls, once per request instead of once per batch) and answers over "
        "HTTP; the voucher itself costs about a millisecond (docs/bench-payments.md).",
        "",
    ]
    text = "\n".join(lines)
    print(text)
    if args.write:
        args.write.write_text(text)


if __name__ == "__main__":
    main()
