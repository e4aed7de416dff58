"""Agents on a real anvil devnet with a real provider node (tiny-shakespeare): buying jobs,
being stopped by the wallet's on-chain policy, and reselling to another agent over a
payment channel, end to end, with the bad inputs of those paths."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from agent_net import AgentNet
from fastapi import FastAPI
from fastapi.responses import JSONResponse

from verimesh.agent import Agent, SessionPolicy, WorkItem
from verimesh.agent.offers import ServiceUnavailable, discover_service
from verimesh.agent.server import BackgroundServer
from verimesh.agent.service import AgentService, ServiceConfig
from verimesh.agent.wallet import BudgetRefused
from verimesh.chain import Deployment, Network, Signer
from verimesh.chain.payment_channel import PAYMENT_HEADER, sign_voucher
from verimesh.client.payments import OfferRejected
from verimesh.client.x402 import MalformedOfferError

pytestmark = [pytest.mark.devnet]
E = 10**18
PRICE = 3 * E  # the seller's price per answer; the node asks 1 VMT per job


def local_answer(root: str, text: str, max_tokens: int, seed: int = 0) -> dict:
    """The same job run here: what any honest provider must have committed to."""
    from verimesh.models.api import load_model, run_job

    out = run_job(load_model(root), "generate", text, {"max_tokens": max_tokens, "seed": seed})
    return {"output_root": out.output_root, "output": out.output}


def revealed_root(net: Network, job_id: int) -> str:
    events = [e for e in net.job_market.get_events("Revealed", 0) if e["job_id"] == job_id]
    return "0x" + events[-1]["output_root"].hex()


def test_agent_buys_verified_jobs_and_books_every_token(devnet_node: AgentNet, tmp_path: Path) -> None:
    agent = Agent.provision(devnet_node.deployment, "dev1", 20 * E, tmp_path / "buyer")
    net = agent.net
    work = [
        WorkItem(task="generate", model=devnet_node.model, input="ROMEO:", params={"max_tokens": 6, "seed": 1},
                 value=E, label="cheap"),
        WorkItem(task="generate", model=devnet_node.model, input="JULIET:", params={"max_tokens": 6, "seed": 2},
                 value=50 * E, label="dear"),
    ]  # fmt: skip
    offers = agent.discover()
    assert [o.address for o in offers] and offers[0].reachable and devnet_node.model in offers[0].models
    records = agent.run_jobs(work, timeout=120)
    assert [r.state for r in records] == ["verified", "verified"], [r.error for r in records]
    cheap, dear = records
    assert cheap.mode == "audit(0.1819)"  # p = (1 + 1) / (10 + 1): the cheat forfeits bond + reward
    assert dear.mode == "audit(1)" and "only one provider" in dear.mode_reason  # no replicas to buy
    for record, item in zip(records, work, strict=True):
        local = local_answer(devnet_node.model, item.input, 6, item.params["seed"])
        assert record.output_root == local["output_root"] == revealed_root(net, record.job_id)
        assert record.output == local["output"]
    # every job is in the ledger with the transaction that posted it, for its escrow
    jobs = agent.ledger.rows("job")
    assert [int(r.ref) for r in jobs] == [r.job_id for r in records]
    for row, record in zip(jobs, records, strict=True):
        job = net.job_market.jobs(record.job_id)
        assert row.amount == record.escrow == net.job_market.escrow_for(job.mode, job.mode_param, job.price)
        receipt = net.backend.w3.eth.get_transaction_receipt(row.tx_hash)
        assert receipt["status"] == 1 and receipt["from"] == agent.key.address
    funded = agent.ledger.total("fund")
    assert funded == sum(r.escrow for r in records)
    wallet = agent.wallet.address
    agent.close()
    assert net.token.balance_of(wallet) == 20 * E - funded  # nothing left on the key


def test_the_wallet_policy_stops_an_over_budget_agent(devnet_node: AgentNet, tmp_path: Path) -> None:
    policy = SessionPolicy(allowance=3 * E, max_per_payment=2 * E)
    agent = Agent.provision(devnet_node.deployment, "dev3", 3 * E, tmp_path / "greedy", policy=policy)
    work = [
        WorkItem(task="generate", model=devnet_node.model, input=f"KING {i}:", params={"max_tokens": 3, "seed": i},
                 value=E, label=f"job-{i}")
        for i in range(3)
    ]  # fmt: skip
    # Its own planner would buy one job (2 VMT escrow of 3) and skip the rest...
    plan = agent.plan(work)
    assert len(plan.purchases) == 1 and all("over budget" in s.reason for s in plan.skipped)
    # ...but an agent that ignores its plan (a bug, a prompt injection) is stopped by the chain.
    records = agent.run_jobs(work, timeout=120, max_in_flight=1, plan=False)
    assert [r.state for r in records] == ["verified", "unfunded", "unfunded"], [r.error for r in records]
    assert "agent_wallet: over period allowance" in records[1].error
    assert records[1].job_id is None and agent.ledger.total("fund") == 2 * E
    agent.close()


def test_an_agent_resells_answers_to_another_agent_over_a_channel(devnet_node: AgentNet, tmp_path: Path) -> None:
    seller = Agent.provision(devnet_node.deployment, "dev4", 20 * E, tmp_path / "seller", name="seller")
    service = AgentService(seller, ServiceConfig(name="qa", generate_model=devnet_node.model, answer_price=PRICE, max_tokens=6))
    buyer = Agent.provision(devnet_node.deployment, "dev5", 30 * E, tmp_path / "buyer", name="buyer",
                            counterparties=(seller.key.address,))  # fmt: skip
    net = buyer.net
    with BackgroundServer(service.app()) as server:
        client = buyer.buyer(server.url, max_price=PRICE)
        assert client.info.routes[0].price == PRICE
        answers = [client.post("/v1/answer", json={"question": q}) for q in ("ROMEO:", "JULIET:")]
        assert [a.status_code for a in answers] == [200, 200], [a.text for a in answers]
        for answer, question in zip(answers, ("ROMEO:", "JULIET:"), strict=True):
            body = answer.json()
            local = local_answer(devnet_node.model, question, 6)
            assert body["answer"] == local["output"]
            assert body["job"]["output_root"] == local["output_root"] == revealed_root(net, body["job"]["job_id"])

        # Bad input on the seller: a forged voucher and a replayed one buy nothing.
        channel_id = client.book.channel_id(seller.key.address)
        jobs_before = len(seller.ledger.rows("job"))
        thief = Signer.random()  # signs a voucher on the buyer's channel
        forged = sign_voucher(thief, net.backend.chain_id, net.payment_channel.address, channel_id, 3 * PRICE)
        r = httpx.post(server.url + "/v1/answer", json={"question": "x"}, headers={PAYMENT_HEADER: forged.to_header()})
        assert r.status_code == 402 and r.json()["error"] == "bad_signature"
        replay = client.book.funder.sign(channel_id, 2 * PRICE)  # the buyer's last served voucher, again
        r = httpx.post(server.url + "/v1/answer", json={"question": "x"}, headers={PAYMENT_HEADER: replay.to_header()})
        assert r.status_code == 402 and r.json()["error"] == "replayed_voucher"
        assert len(seller.ledger.rows("job")) == jobs_before
        client.close()

    # The books of both sides agree, voucher for voucher.
    paid = buyer.ledger.rows("voucher")
    earned = seller.ledger.rows("earn")
    assert [(r.amount, r.ref) for r in paid] == [(r.amount, r.ref) for r in earned] == [
        (PRICE, f"{channel_id}:{PRICE}"), (PRICE, f"{channel_id}:{2 * PRICE}")]  # fmt: skip
    assert len(seller.ledger.rows("job")) == 2 and seller.ledger.totals()["spent"] < 2 * PRICE  # margin kept
    deposit = buyer.ledger.total("channel")
    assert buyer.ledger.rows("channel")[0].tx_hash

    # The buyer starts closing its channel: the seller redeems at once (it would lose the
    # vouchers after the challenge period), whatever its threshold; then it closes the channel.
    key_before = net.token.balance_of(seller.key.address)
    buyer_wallet_before = net.token.balance_of(buyer.wallet.address)
    assert service.settle_due(min_amount=100 * E) == 0  # open channel, 6 VMT < threshold: wait
    buyer.wallet.start_channel_close(net.payment_channel.address, channel_id)
    assert service.settle_due(min_amount=100 * E) == 2 * PRICE
    assert net.token.balance_of(seller.key.address) == key_before + 2 * PRICE
    assert service.settle(close=True) == 0  # nothing left to redeem; the close returns the rest
    assert net.payment_channel.channels(channel_id).settled
    assert net.token.balance_of(buyer.wallet.address) == buyer_wallet_before + deposit - 2 * PRICE
    assert [r.tx_hash is not None for r in seller.ledger.rows("redeem")] == [True, True]
    seller.close()
    buyer.close()


def test_bad_offers_unknown_payees_and_a_vanishing_seller(devnet_node: AgentNet, tmp_path: Path) -> None:
    # A seller whose own budget covers one job (2 VMT escrow): its second sale fails and the
    # buyer is not charged for it.
    poor = Agent.provision(devnet_node.deployment, "dev6", 2 * E, tmp_path / "poor", name="poor",
                           policy=SessionPolicy(allowance=2 * E, max_per_payment=2 * E))  # fmt: skip
    service = AgentService(poor, ServiceConfig(name="poor", generate_model=devnet_node.model, answer_price=PRICE, max_tokens=3))
    buyer = Agent.provision(devnet_node.deployment, "dev7", 30 * E, tmp_path / "b2", name="b2",
                            counterparties=(poor.key.address,))  # fmt: skip
    stranger = Agent.provision(devnet_node.deployment, "dev8", 30 * E, tmp_path / "b3", name="b3")  # no counterparties
    net = buyer.net
    server = BackgroundServer(service.app())
    try:
        # not a service at all / a price above the buyer's cap / a payee its wallet may not pay
        with pytest.raises(ServiceUnavailable, match="not a verimesh agent service"):
            discover_service(devnet_node.node_url)
        with pytest.raises(OfferRejected, match="above this buyer's max_price"):
            buyer.buyer(server.url, max_price=E).post("/v1/answer", json={"question": "a"})
        with pytest.raises(BudgetRefused, match="counterparty not allowed"):
            stranger.buyer(server.url, max_price=PRICE).post("/v1/answer", json={"question": "a"})
        assert stranger.ledger.rows() == []

        client = buyer.buyer(server.url, max_price=PRICE)
        assert client.post("/v1/answer", json={"question": "ROMEO:"}).status_code == 200
        failed = client.post("/v1/answer", json={"question": "JULIET:"})
        assert failed.status_code == 503 and "over budget" in failed.json()["detail"]
        assert [r.amount for r in buyer.ledger.rows("voucher")] == [PRICE]  # not charged for the 503
        channel_id = client.book.channel_id(poor.key.address)
    finally:
        server.stop()  # the seller vanishes mid-channel, holding one unredeemed voucher
    with pytest.raises(httpx.ConnectError):
        client.post("/v1/answer", json={"question": "again"})
    assert [r.amount for r in buyer.ledger.rows("voucher")] == [PRICE]

    # A 402 whose offer is malformed: a clear error, nothing paid, no channel opened.
    info = service.info().model_dump(mode="json")
    bogus = FastAPI()
    bogus.get("/v1/service")(lambda: info)
    bogus.post("/v1/answer")(lambda: JSONResponse({"x402_version": 1, "error": "payment_required",
                                                   "accepts": [{"price": -1}]}, status_code=402))  # fmt: skip
    with BackgroundServer(bogus) as fake, pytest.raises(MalformedOfferError, match="malformed offer"):
        buyer.buyer(fake.url, max_price=PRICE).post("/v1/answer", json={"question": "a"})
    assert len(buyer.ledger.rows("channel")) == 1

    # The buyer's funds are recoverable without the seller: start closing, wait out the
    # challenge period (the seller could still redeem its one voucher), withdraw.
    wallet = buyer.funds.wallet
    channel = net.payment_channel.address
    deposit = buyer.ledger.total("channel")
    before = net.token.balance_of(wallet.address)
    wallet.start_channel_close(channel, channel_id)
    net.backend.advance_time(Deployment.load(devnet_node.deployment).params.channel_challenge_period + 1)
    wallet.withdraw_channel(channel, channel_id)
    assert net.token.balance_of(wallet.address) == before + deposit  # the seller never redeemed
    for agent in (poor, buyer, stranger):
        agent.close()


def test_cli_run_and_ledger(devnet_node: AgentNet, tmp_path: Path) -> None:
    home = tmp_path / "cli-agent"
    base = [sys.executable, "-m", "verimesh.cli.main", "agent"]
    run = subprocess.run(
        [*base, "run", "--budget", "5", "--goal", "generate:ROMEO:", "--generate-model", devnet_node.model,
         "--max-tokens", "4", "--deployment", str(devnet_node.deployment), "--owner", "dev9", "--home", str(home),
         "--timeout", "120", "--json"],
        capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    lines = [json.loads(x) for x in run.stdout.splitlines() if x.startswith("{")]
    record, summary = lines[0], lines[-1]
    assert record["state"] == "verified" and record["mode"].startswith("audit(")
    assert summary["results"] == [local_answer(devnet_node.model, "ROMEO:", 4)["output"]]
    assert summary["summary"]["spent"] == record["escrow"]
    # the same CLI in this process (no second interpreter start-up)
    from typer.testing import CliRunner

    from verimesh.cli.agent import app

    ledger = CliRunner().invoke(app, ["ledger", "--home", str(home), "--json"])
    rows = [json.loads(x) for x in ledger.stdout.splitlines()]
    assert [r["kind"] for r in rows] == ["fund", "job"] and all(r["tx_hash"] for r in rows)
    bad = CliRunner().invoke(app, ["run", "--budget", "5", "--goal", "dance:now", "--deployment", str(devnet_node.deployment)])
    assert bad.exit_code == 2 and "unknown goal kind 'dance'" in bad.output
    missing = CliRunner().invoke(app, ["ledger", "--home", str(tmp_path / "nowhere")])
    assert missing.exit_code == 1 and "no ledger at" in missing.output


def test_cli_serve_sells_answers_and_settles_at_ctrl_c(devnet_node: AgentNet, tmp_path: Path) -> None:
    import signal
    import time

    from verimesh.chain.devnet import free_port

    port = free_port()
    serve = subprocess.Popen(
        [sys.executable, "-m", "verimesh.cli.main", "agent", "serve", "--budget", "10", "--generate-model",
         devnet_node.model, "--port", str(port), "--deployment", str(devnet_node.deployment), "--owner", "dev0",
         "--home", str(tmp_path / "serve")],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while True:
            assert serve.poll() is None and time.monotonic() < deadline, serve.stdout.read() if serve.poll() else "no start"
            try:
                info = discover_service(url)
                break
            except ServiceUnavailable:
                time.sleep(0.2)
        buyer = Agent.provision(devnet_node.deployment, "dev7", 20 * E, tmp_path / "cli-buyer", counterparties=(info.payee,))
        client = buyer.buyer(url, max_price=PRICE)
        r = client.post("/v1/answer", json={"question": "ROMEO:", "max_tokens": 4})
        assert r.status_code == 200 and r.json()["answer"] == local_answer(devnet_node.model, "ROMEO:", 4)["output"]
        client.close()
        wallet_before = buyer.net.token.balance_of(buyer.wallet.address)
    finally:
        serve.send_signal(signal.SIGINT)
        out, _ = serve.communicate(timeout=60)
    assert serve.returncode == 0, out
    assert "redeemed 3 VMT" in out
    # closing the channel returned the rest of the buyer's deposit to its wallet
    assert buyer.net.token.balance_of(buyer.wallet.address) == wallet_before + buyer.ledger.total("channel") - PRICE
    buyer.close()


def test_a_job_nobody_runs_is_reclaimed_and_booked(devnet_node: AgentNet, tmp_path: Path) -> None:
    agent = Agent.provision(devnet_node.deployment, "dev3", 10 * E, tmp_path / "unlucky")
    missing_model = "0x" + "ab" * 32  # no node holds it or can fetch it: nobody commits
    item = WorkItem(task="generate", model=missing_model, input="x", params={"max_tokens": 2}, value=E, label="lost")
    (record,) = agent.run_jobs([item], timeout=3)
    assert record.state == "failed" and record.job_id is not None and not record.verified
    assert agent.ledger.rows("job")[0].tx_hash == record.post_tx
    job = agent.net.job_market.jobs(record.job_id)
    agent.net.backend.advance_time(job.commit_deadline - agent.net.backend.timestamp() + 1)
    agent.refresh([record])  # claims the refund (timeout on chain) and books it
    assert record.state == "refunded" and record.chain_state == "refunded"
    # the escrow back, plus the requester's cut of the silent provider's slashed bond
    (refunded,) = [e for e in agent.net.job_market.get_events("Refunded", 0) if e["job_id"] == record.job_id]
    assert record.refunded == refunded["amount"] > record.escrow
    refund = agent.ledger.rows("refund")[0]
    assert refund.amount == refunded["amount"] and refund.ref == str(record.job_id) and refund.tx_hash
    agent.close()  # the refund, in the key's market balance, goes back to the wallet
    assert agent.net.token.balance_of(agent.wallet.address) == 10 * E - record.escrow + record.refunded


def test_a_seller_redeems_before_its_buyers_key_expires(devnet_node: AgentNet, tmp_path: Path) -> None:
    from verimesh.client.x402 import PaymentFailed

    seller = Agent.provision(devnet_node.deployment, "dev4", 20 * E, tmp_path / "s", name="s")
    service = AgentService(seller, ServiceConfig(name="qa", generate_model=devnet_node.model, answer_price=PRICE, max_tokens=3))
    policy = SessionPolicy(allowance=30 * E, max_per_payment=15 * E, lifetime=600, counterparties=(seller.key.address,))
    buyer = Agent.provision(devnet_node.deployment, "dev5", 30 * E, tmp_path / "b", name="b", policy=policy)
    net = buyer.net
    start = net.backend.timestamp()  # the key expires at about start + 600
    with BackgroundServer(service.app()) as server:
        client = buyer.buyer(server.url, max_price=PRICE)
        assert client.post("/v1/answer", json={"question": "ROMEO:"}).status_code == 200
        assert service.settle_due(min_amount=PRICE) == PRICE  # redeemed while the key is valid
        assert client.post("/v1/answer", json={"question": "JULIET:"}).status_code == 200
        channel_id = client.book.channel_id(seller.key.address)
        assert service.settle_due(min_amount=100 * E) == 0  # below the threshold, key valid: wait
        # 200 s before the key expires, within the margin: the seller redeems what it holds
        net.backend.advance_time(policy.lifetime - 200 - (net.backend.timestamp() - start))
        assert service.settle_due(min_amount=100 * E) == PRICE
        net.backend.advance_time(201)  # the buyer's session key expires
        service.paywall.cache_seconds = 0  # read the chain again now instead of in 5 s
        with pytest.raises(PaymentFailed, match="bad_signature"):
            client.post("/v1/answer", json={"question": "KING:"})
        client.close()
    assert service.settle() == 0  # nothing was left unredeemed when the key expired
    # The buyer's owner takes the rest of the deposit back after the challenge period.
    owner = Deployment.load(devnet_node.deployment).dev_signer("dev5", devnet_node.state)
    wallet = buyer.wallet.as_signer(owner)
    before = net.token.balance_of(wallet.address)
    wallet.start_channel_close(net.payment_channel.address, channel_id)
    net.backend.advance_time(Deployment.load(devnet_node.deployment).params.channel_challenge_period + 1)
    wallet.withdraw_channel(net.payment_channel.address, channel_id)
    assert net.token.balance_of(wallet.address) == before + buyer.ledger.total("channel") - 2 * PRICE
    buyer.close()
    seller.close()
