"""An autonomous agent buys verified MiniLM embeddings on a local verimesh network.

Prerequisites (see docs/agents.md):

    verimesh devnet up
    verimesh models import minilm
    verimesh node run --dev dev2 --port 8701 --home ~/.verimesh/node2 --model minilm --max-cpu 100 --grace 0

Then:

    python examples/agent_buys_embeddings.py

The owner (dev account dev1) funds a fresh AgentWallet with the budget and authorizes a
session key; the agent holds only that key. It discovers the providers and their prices,
plans the jobs within its budget, picks a verification mode per job by the value it has
at risk (audit(p) for everyday documents, replicas for the one that matters), buys, checks
every result against the roots committed on chain, uses the vectors (a small semantic
search), and shows its ledger: every token with its transaction. Exit code 0 only if every
planned job was verified.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

from verimesh.agent import VMT, Agent, WorkItem
from verimesh.agent.work import embedding_work
from verimesh.paths import verimesh_home

DOCUMENTS = [
    "A man is eating food.",
    "A man is riding a horse.",
    "A woman is playing the violin.",
    "Two men pushed carts through the woods.",
    "A monkey is playing drums.",
    "The new movie is awesome.",
]
QUERY = "Someone is making music."


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--state-dir", type=Path, default=verimesh_home() / "devnet", help="the devnet's folder")
    parser.add_argument("--owner", default="dev1", help="dev account that owns and funds the agent's wallet")
    parser.add_argument("--model", default="minilm", help="encoder: a name in the local model store or a 0x root")
    parser.add_argument("--budget", type=float, default=10.0, help="VMT the owner gives the agent")
    parser.add_argument("--home", type=Path, default=None, help="agent state folder [a temporary one]")
    args = parser.parse_args()

    home = args.home or Path(tempfile.mkdtemp(prefix="verimesh-agent-"))
    agent = Agent.provision(args.state_dir / "deployment.json", args.owner, round(args.budget * VMT), home, name="embedder")
    print(f"agent wallet {agent.wallet.address} (owner {args.owner}), session key {agent.key.address}")
    for offer in agent.discover():
        print(f"  provider {offer.address[:10]} {offer.price / VMT:g} VMT/job at {offer.endpoint} "
              f"{'holds the model' if offer.models else ''}")

    # Everyday documents are worth little (audit); the query decides the answer (more at risk).
    work = embedding_work(DOCUMENTS, args.model, value=VMT, label="docs")
    work.append(WorkItem(task="embed", model=args.model, input=QUERY, value=50 * VMT, label="query"))
    plan = agent.plan(work)
    print(f"plan: {len(plan.purchases)} jobs, {plan.escrow / VMT:g} VMT in escrow at most")
    for purchase in plan.purchases:
        print(f"  {purchase.item.label:<8} {purchase.mode!s:<14} {purchase.reason}")
    for skipped in plan.skipped:
        print(f"  {skipped.item.label:<8} skipped: {skipped.reason}")

    records = agent.run_jobs(work, timeout=300, on_record=lambda r: print("  " + r.line()))
    by_label = {r.label: r for r in records}
    if all(r.verified for r in records):
        docs = np.asarray(by_label["docs-0"].output, dtype=np.float64)
        scores = docs @ np.asarray(by_label["query"].output, dtype=np.float64)
        print(f"closest to {QUERY!r}: {DOCUMENTS[int(np.argmax(scores))]!r} (cosine {scores.max():.3f})")

    print("ledger:")
    for row in agent.ledger.rows():
        print("  " + row.line())
    summary = agent.summary()
    agent.close()
    print(f"spent {summary['spent'] / VMT:g} VMT of {args.budget:g}; unused float returned to the wallet")
    return 0 if records and all(r.verified for r in records) else 1


if __name__ == "__main__":
    sys.exit(main())
