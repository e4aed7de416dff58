"""One agent sells semantic search, another buys it: agent-to-agent resale, settled end to end.

Prerequisites (see docs/agents.md):

    verimesh devnet up
    verimesh models import minilm
    verimesh node run --dev dev2 --port 8701 --home ~/.verimesh/node2 --model minilm --max-cpu 100 --grace 0

Then:

    python examples/agent_resells_search.py

The seller agent (owned by dev1) buys embeddings of its documents from the network (verified
jobs on JobMarket) and sells search over them at a price per query (x402: an unpaid request
gets 402 with the offer). The buyer agent (owned by dev3, its wallet allowed to pay the
seller) opens a payment channel from its AgentWallet and pays each query with a signed
voucher: no transaction per request. Each query the seller fulfils by buying one more
embedding job; it keeps the margin. At the end the seller redeems and closes the channel:
it receives exactly what it served, the buyer's wallet gets the rest of its deposit back.
Both ledgers are printed. ``--sell answer --model tiny-shakespeare`` sells question
answering with generation instead. Exit code 0 only if every request was served.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from verimesh.agent import VMT, Agent
from verimesh.agent.server import BackgroundServer
from verimesh.agent.service import ANSWER_PATH, SEARCH_PATH, AgentService, ServiceConfig
from verimesh.paths import verimesh_home

DOCUMENTS = [
    "verimesh pays idle laptops for AI jobs",
    "a cheating provider loses its stake",
    "results are compared bit for bit",
    "agents pay per request over payment channels",
    "the chain holds escrow and stake",
]
QUERIES = ["who gets slashed?", "how do machines pay each other?", "where is the money kept?"]
QUESTIONS = ["ROMEO:", "JULIET:", "KING:"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--state-dir", type=Path, default=verimesh_home() / "devnet", help="the devnet's folder")
    parser.add_argument("--seller-owner", default="dev1")
    parser.add_argument("--buyer-owner", default="dev3")
    parser.add_argument("--sell", choices=["search", "answer"], default="search")
    parser.add_argument("--model", default=None, help="encoder for search [minilm], decoder for answers [smollm2]")
    parser.add_argument("--price", type=float, default=3.0, help="VMT per request the seller asks")
    parser.add_argument("--home", type=Path, default=None, help="folder for both agents' state [temporary]")
    args = parser.parse_args()

    home = args.home or Path(tempfile.mkdtemp(prefix="verimesh-agents-"))
    deployment = args.state_dir / "deployment.json"
    price = round(args.price * VMT)
    search = args.sell == "search"
    model = args.model or ("minilm" if search else "smollm2")

    seller = Agent.provision(deployment, args.seller_owner, 20 * VMT, home / "seller", name="seller")
    config = ServiceConfig(name="search" if search else "answers", embed_model=model if search else None,
                           generate_model=None if search else model, search_price=price, answer_price=price,
                           max_tokens=8)  # fmt: skip
    service = AgentService(seller, config)
    if search:
        print("seller: buying embeddings of its documents...")
        for record in service.index_documents(DOCUMENTS):
            print("  " + record.line())

    # The buyer's owner allows exactly this seller's payee (and the network's channel contract).
    buyer = Agent.provision(deployment, args.buyer_owner, 30 * VMT, home / "buyer", name="buyer",
                            counterparties=(seller.key.address,))  # fmt: skip
    served = 0
    with BackgroundServer(service.app()) as server:
        print(f"seller: serving on {server.url}")
        client = buyer.buyer(server.url, max_price=price)
        print(f"buyer: found {client.info.name!r}: " + ", ".join(f"{r.path} {r.price / VMT:g} VMT" for r in client.info.routes))
        for text in QUERIES if search else QUESTIONS:
            if search:
                response = client.post(SEARCH_PATH, json={"query": text, "k": 1})
            else:
                response = client.post(ANSWER_PATH, json={"question": text})
            if response.status_code != 200:
                print(f"buyer: {text!r} -> HTTP {response.status_code}: {response.text[:200]}")
                continue
            body = response.json()
            served += 1
            result = body["hits"][0]["document"] if search else body["answer"]
            print(f"buyer: {text!r} -> {result!r} (job {body['job']['job_id']}, {body['job']['mode']}, "
                  f"root {body['job']['output_root'][:18]}...)")
        client.close()

    redeemed = service.settle(close=True)
    print(f"seller: redeemed {redeemed / VMT:g} VMT and closed the channel (the buyer's rest went back to its wallet)")
    for agent in (seller, buyer):
        print(f"{agent.name} ledger:")
        for row in agent.ledger.rows():
            print("  " + row.line())
    s, b = seller.summary(), buyer.summary()
    print(f"seller earned {s['earned'] / VMT:g} VMT, spent {s['spent'] / VMT:g} VMT on jobs "
          f"(margin {(s['earned'] - s['spent']) / VMT:g} VMT before refunds of unused audit fees)")
    print(f"buyer paid {b['voucher'] / VMT:g} VMT for {served} requests with {1} channel")
    seller.close()
    buyer.close()
    total = len(QUERIES if search else QUESTIONS)
    return 0 if served == total else 1


if __name__ == "__main__":
    sys.exit(main())
