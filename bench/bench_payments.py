"""Per-request payments: chain transactions and gas per paid request, and the latency a
payment adds, on one machine.

    .venv/bin/python bench/bench_payments.py [--requests 1000] [--latency-reps 300] [--write docs/bench-payments.md]

1. Transactions and gas per ``--requests`` paid requests, all on the in-process EVM (gas is
   receipt gas, as a chain charges it: intrinsic + execution - refunds):
   - channel, plain account: the real HTTP flow (PayingClient -> uvicorn -> paywall), every
     transaction any party sends counted: approve, open, then the payee's one `close`;
   - channel, AgentWallet: the same flow with the session key opening the channel through
     the wallet under its policy (vouchers checked by EIP-1271), payee closes;
   - baseline: one ERC-20 `transfer` per request (what a naive pay-per-call does);
   - baseline: one `AgentWallet.pay` per request (the policy-checked equivalent).
2. Latency a paid request adds over an unpaid one on loopback: the same FastAPI handler
   with and without the paywall, called through httpx (unpaid) and PayingClient (paid, channel
   already open; the client signs a voucher, the server checks it). Median and p90 over
   ``--latency-reps`` interleaved requests, plus the two costs inside: voucher signing
   (client) and voucher checking (server's ``Paywall.accept``).

Server and client share this process (and the GIL): both paths pay that equally.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests" / "payments"))
from paid_service import Counters, Server, service_app  # noqa: E402
from payments_chain import E, PayChain, deploy_pay_chain  # noqa: E402

from verimesh.benchinfo import machine  # noqa: E402
from verimesh.chain.backends.base import Receipt  # noqa: E402
from verimesh.chain.backends.boa import BoaBackend  # noqa: E402
from verimesh.chain.compile import load_artifacts  # noqa: E402
from verimesh.chain.payment_channel import PAYMENT_HEADER  # noqa: E402
from verimesh.client.payments import AccountFunder, ChannelBook, PaymentPolicy, WalletFunder  # noqa: E402
from verimesh.client.x402 import PayingClient  # noqa: E402
from verimesh.node.paywall import Paywall  # noqa: E402

PRICE = E // 1000


class CountingBackend(BoaBackend):
    """The in-process EVM, counting every transaction sent after ``reset()`` and its gas."""

    def __init__(self) -> None:
        super().__init__()
        self.reset()

    def reset(self) -> None:
        self.txs = 0
        self.gas = 0
        self.by_function: dict[str, list[int]] = {}

    def transact(self, sender, to, data, value=0, gas=None, function=None) -> Receipt:
        receipt = super().transact(sender, to, data, value, gas, function)
        self.txs += 1
        self.gas += receipt.gas_used
        self.by_function.setdefault(function or "?", []).append(receipt.gas_used)
        return receipt


def policy(chain: PayChain, requests: int) -> PaymentPolicy:
    return PaymentPolicy(
        max_price=PRICE,
        allowed_payees=[chain.payee.address],
        allowed_contracts=[chain.channel.address],
        chain_id=chain.backend.chain_id,
        deposit_requests=requests,
    )


def channel_run(chain: PayChain, backend: CountingBackend, book: ChannelBook, requests: int) -> dict:
    """``requests`` paid HTTP requests, then the payee closes with the last voucher."""
    paywall = Paywall(chain.channel.as_signer(chain.payee), chain.payee.address, PRICE)
    counters = Counters()
    chain.token.as_signer(chain.payer).approve(chain.channel.address, 0)  # count the payer's approve too
    backend.reset()
    with Server(service_app(paywall, counters)) as server, PayingClient(book, base_url=server.url) as http:
        for i in range(requests):
            r = http.post("/v1/echo", json={"i": i})
            assert r.status_code == 200, r.text
        paywall.settle(book.channel_id(chain.payee.address), close=True)
    assert len(counters.served) == requests
    assert chain.token.balance_of(chain.payee.address) >= requests * PRICE
    return {"txs": backend.txs, "gas": backend.gas, "steps": dict(backend.by_function)}


def transfer_run(chain: PayChain, backend: CountingBackend, requests: int, wallet: bool) -> dict:
    backend.reset()
    for _ in range(requests):
        if wallet:
            chain.wallet.pay(chain.payee.address, PRICE)
        else:
            chain.token.as_signer(chain.payer).transfer(chain.payee.address, PRICE)
    return {"txs": backend.txs, "gas": backend.gas, "steps": dict(backend.by_function)}


def latency(chain: PayChain, reps: int) -> dict:
    paywall = Paywall(chain.channel.as_signer(chain.payee), chain.payee.address, PRICE)
    counters = Counters()
    book = ChannelBook(AccountFunder(chain.channel, chain.payer), policy(chain, 10 * reps + 100))
    unpaid_t, paid_t, presigned_t = [], [], []
    # a second channel whose vouchers are signed beforehand: the server's share alone
    second, _ = chain.channel.open(chain.payee.address, (reps + 1) * PRICE)
    headers = [
        {PAYMENT_HEADER: chain.channel.sign_voucher(chain.payer, second, (i + 1) * PRICE).to_header()}
        for i in range(reps)
    ]
    with Server(service_app(paywall, counters)) as server, PayingClient(book, base_url=server.url) as paid:
        plain = httpx.Client(base_url=server.url)
        for i in range(20):  # warm-up; opens the client's channel
            assert paid.post("/v1/echo", json={"i": i}).status_code == 200
            plain.post("/free-echo", json={"i": i})
        for i in range(reps):  # the three kinds interleaved, so load bursts hit all alike
            t0 = time.perf_counter()
            r = plain.post("/free-echo", json={"i": i})
            t1 = time.perf_counter()
            q = paid.post("/v1/echo", json={"i": i})
            t2 = time.perf_counter()
            u = plain.post("/v1/echo", json={"i": i}, headers=headers[i])
            t3 = time.perf_counter()
            assert r.status_code == 200 and q.status_code == 200 and u.status_code == 200, u.text
            unpaid_t.append(t1 - t0)
            paid_t.append(t2 - t1)
            presigned_t.append(t3 - t2)
        plain.close()
        cid = book.channel_id(chain.payee.address)
        sign_t, check_t = [], []
        accepted = paywall.latest_voucher(cid).cumulative
        for i in range(reps):
            t0 = time.perf_counter()
            v = chain.channel.sign_voucher(chain.payer, cid, accepted + (i + 1) * PRICE)
            t1 = time.perf_counter()
            paywall.accept(v.to_header(), "/v1/echo", PRICE)
            t2 = time.perf_counter()
            sign_t.append(t1 - t0)
            check_t.append(t2 - t1)
    return {
        "unpaid": unpaid_t,
        "paid": paid_t,
        "presigned": presigned_t,
        "sign": sign_t,
        "check": check_t,
    }


def ms(values: list[float], q: float = 0.5) -> float:
    ordered = sorted(values)
    return 1000 * ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def report(args: argparse.Namespace, results: dict, lat: dict) -> str:
    n = args.requests
    base = results["transfer"]
    lines = [
        "# Per-request payments: transactions, gas and latency",
        "",
        f"Command: `.venv/bin/python bench/bench_payments.py --requests {n} --latency-reps {args.latency_reps} --write docs/bench-payments.md`",
        "",
        f"Machine: {machine()} (shared with the rest of the team's work); "
        "chain: in-process EVM (titanoboa/py-evm), receipt gas = intrinsic + execution - refunds.",
        "",
        f"## On-chain cost of {n:,} paid requests (price {PRICE} base units each)",
        "",
        "| scheme | transactions | gas | gas per request | tx vs one transfer per request |",
        "|---|---:|---:|---:|---:|",
    ]
    for key, label in (
        ("channel_account", "channel, plain account (approve, open, payee close)"),
        ("channel_wallet", "channel, AgentWallet session key (open via wallet, payee close; EIP-1271 vouchers)"),
        ("transfer", "one ERC-20 transfer per request"),
        ("wallet_pay", "one AgentWallet.pay per request"),
    ):
        r = results[key]
        lines.append(
            f"| {label} | {r['txs']:,} | {r['gas']:,} | {r['gas'] / n:,.0f} | {base['txs'] / r['txs']:,.0f}x fewer |"
            if key.startswith("channel")
            else f"| {label} | {r['txs']:,} | {r['gas']:,} | {r['gas'] / n:,.0f} | 1x |"
        )
    lines += ["", "Transactions of the channel runs (gas each):", ""]
    for key in ("channel_account", "channel_wallet"):
        steps = ", ".join(f"{fn} {g:,}" for fn, gs in results[key]["steps"].items() for g in gs)
        lines.append(f"- {key.replace('_', ', ')}: {steps}")
    ratio = base["txs"] / results["channel_account"]["txs"]
    lines += [
        "",
        f"Target >= 100x fewer transactions: **{'met' if ratio >= 100 else 'NOT met'}** ({ratio:,.0f}x with a plain "
        f"account, {base['txs'] / results['channel_wallet']['txs']:,.0f}x with an AgentWallet). The channel's cost is "
        "fixed per channel, so the ratio grows with the number of requests per channel; the payee may redeem more "
        "often (one `redeem` each time) to limit what it holds unredeemed.",
        "",
        f"## Latency a payment adds (loopback, {args.latency_reps} interleaved requests, channel open)",
        "",
        "| | median ms | p90 ms |",
        "|---|---:|---:|",
        f"| unpaid request (same handler, no paywall) | {ms(lat['unpaid']):.2f} | {ms(lat['unpaid'], 0.9):.2f} |",
        f"| paid request (PayingClient, voucher in header, paywall check) | {ms(lat['paid']):.2f} | {ms(lat['paid'], 0.9):.2f} |",
        f"| **added by the payment** | **{ms(lat['paid']) - ms(lat['unpaid']):.2f}** | |",
        f"| paid request with a voucher signed beforehand (plain httpx: the server's share) | {ms(lat['presigned']):.2f} | {ms(lat['presigned'], 0.9):.2f} |",
        f"| inside: client signs a voucher (eth-account EIP-712) | {ms(lat['sign']):.2f} | {ms(lat['sign'], 0.9):.2f} |",
        f"| inside: server checks a voucher (`Paywall.accept`, cached channel, coincurve ECDSA) | {ms(lat['check']):.2f} | {ms(lat['check'], 0.9):.2f} |",
        "",
        f"Load average when the run started: {args.load}. The p90 column is dominated by other work on the "
        "shared cores; the medians are the figures to quote. Server and client share one process.",
        "",
        "Note: the test/bench server sets TCP_NODELAY on its listening socket. Without it, every response on "
        "this machine waited ~40 ms for the client's delayed ACK (Nagle), for paid and unpaid requests alike.",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--latency-reps", type=int, default=300)
    parser.add_argument("--write", type=Path, default=None, help="write the markdown report here")
    args = parser.parse_args()
    args.load = " / ".join(f"{x:.1f}" for x in os.getloadavg())
    artifacts = load_artifacts(names=["Token", "AgentWallet", "PaymentChannel"])
    results: dict[str, dict] = {}

    backend = CountingBackend()
    chain = deploy_pay_chain(backend, artifacts)
    results["channel_account"] = channel_run(
        chain, backend, ChannelBook(AccountFunder(chain.channel, chain.payer), policy(chain, args.requests)), args.requests
    )
    print("channel (account):", results["channel_account"]["txs"], "txs", results["channel_account"]["gas"], "gas")

    backend = CountingBackend()
    chain = deploy_pay_chain(backend, artifacts)
    results["channel_wallet"] = channel_run(
        chain, backend, ChannelBook(WalletFunder(chain.wallet, chain.channel, chain.agent), policy(chain, args.requests)),
        args.requests,
    )
    print("channel (wallet):", results["channel_wallet"]["txs"], "txs", results["channel_wallet"]["gas"], "gas")

    backend = CountingBackend()
    chain = deploy_pay_chain(backend, artifacts)
    results["transfer"] = transfer_run(chain, backend, args.requests, wallet=False)
    results["wallet_pay"] = transfer_run(chain, backend, args.requests, wallet=True)
    print("transfers:", results["transfer"]["txs"], results["transfer"]["gas"], "wallet.pay:", results["wallet_pay"]["gas"])

    chain = deploy_pay_chain(CountingBackend(), artifacts)
    lat = latency(chain, args.latency_reps)
    text = report(args, results, lat)
    print(text)
    if args.write:
        args.write.write_text(text)


if __name__ == "__main__":
    main()
