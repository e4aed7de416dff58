"""The demo's requester, as its own process: buys the planned jobs through the SDK.

    python -m verimesh.demo.requester DEPLOYMENT_JSON ACCOUNT PLAN_JSON [--concurrency N]

It holds a budget in its wallet and stops buying when the next job's escrow would exceed
what is left. Jobs run concurrently (the nodes work in parallel); each one is posted,
handed to its providers, and its output fetched and checked against the root revealed on
chain. One JSON line per event goes to stdout (the demo keeps it as the requester's log);
the demo's report never relies on it: it reads the chain.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from verimesh.chain import Deployment
from verimesh.client import Client, JobFailed, ResultError, audit, replicate
from verimesh.client.sdk import JobTimeout, VerificationMode
from verimesh.crypto.wallet import WalletStore
from verimesh.demo.plan import JobOrder

COMMIT_WINDOW = 150  # seconds: a 2-core machine running five nodes is slow to start a job
REVEAL_WINDOW = 60  # the contracts' minimum
CHALLENGE_WINDOW = 60
RESULT_TIMEOUT = 420.0

_print_lock = threading.Lock()


def emit(kind: str, **fields: object) -> None:
    with _print_lock:
        print(json.dumps({"event": kind, "t": round(time.time(), 3), **fields}), flush=True)


def parse_mode(text: str) -> VerificationMode:
    kind, _, value = text.partition(":")
    return audit(float(value)) if kind == "audit" else replicate(int(value))


class Budget:
    """Tokens the requester may still commit to escrow (thread-safe)."""

    def __init__(self, amount: int) -> None:
        self.left = amount
        self._lock = threading.Lock()

    def take(self, amount: int) -> bool:
        with self._lock:
            if amount > self.left:
                return False
            self.left -= amount
            return True


def buy(client: Client, order: JobOrder, index: int, budget: Budget, submit_lock: threading.Lock) -> str:
    mode = parse_mode(order.mode)
    jm = client.net.job_market
    with submit_lock:  # one post at a time: prices and the budget are read consistently
        price = client.market_price(mode.replicas)
        escrow = jm.escrow_for(mode.mode, mode.param, price)
        if not budget.take(escrow):
            emit("skipped", index=index, reason=f"budget left {budget.left} < escrow {escrow}")
            return "skipped"
        try:
            handle = client.submit(
                model=order.model, task=order.task, input=order.input, params=order.params, mode=mode,
                max_price=price, commit_window=COMMIT_WINDOW, reveal_window=REVEAL_WINDOW,
                challenge_window=CHALLENGE_WINDOW,
            )  # fmt: skip
        except JobFailed as exc:
            emit("refused", index=index, reason=str(exc))
            return "refused"
    emit("posted", index=index, job_id=handle.job_id, task=order.task, mode=str(mode),
         providers=handle.providers, escrow=escrow)  # fmt: skip
    try:
        out = handle.result(timeout=RESULT_TIMEOUT)
    except JobFailed as exc:
        emit("failed", index=index, job_id=handle.job_id, reason=exc.reason,
             refund=exc.refund.amount if exc.refund else 0)  # fmt: skip
        return "failed"
    except (JobTimeout, ResultError) as exc:
        emit("no-result", index=index, job_id=handle.job_id, reason=str(exc))
        return "no-result"
    preview = out.output if isinstance(out.output, str) else f"{len(out.output)} values"
    emit("verified", index=index, job_id=handle.job_id, provider=out.provider,
         output_root=out.output_root, output=str(preview)[:80])  # fmt: skip
    return "verified"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("deployment", type=Path)
    parser.add_argument("account", help="dev account that pays (dev1)")
    parser.add_argument("plan", type=Path, help="JSON list of JobOrder")
    parser.add_argument("--budget", type=float, required=True, help="VMT the requester may spend")
    parser.add_argument("--concurrency", type=int, default=3)
    args = parser.parse_args(argv)

    deployment = Deployment.load(args.deployment)
    wallet = WalletStore(args.deployment.parent / "wallets").load(args.account, deployment.dev_password or "")
    client = Client(deployment, wallet)
    orders = [JobOrder.model_validate(o) for o in json.loads(args.plan.read_text())]
    budget = Budget(round(args.budget * 10**18))
    emit("start", requester=client.signer.address, jobs=len(orders), budget=budget.left)
    submit_lock = threading.Lock()
    with ThreadPoolExecutor(max_workers=max(1, args.concurrency)) as pool:
        outcomes = list(pool.map(lambda io: buy(client, io[1], io[0], budget, submit_lock), enumerate(orders)))
    counts = {k: outcomes.count(k) for k in sorted(set(outcomes))}
    emit("done", outcomes=counts, budget_left=budget.left)
    client.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
