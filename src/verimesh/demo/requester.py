"""The demo's requester, as its own process: an autonomous agent (``verimesh.agent``) that
spends a budget on the planned jobs.

    python -m verimesh.demo.requester DEPLOYMENT_JSON OWNER PLAN_JSON HOME --budget VMT

The owner (a dev account) funds an AgentWallet with the budget; the agent acts through a
session key whose spending policy the chain enforces. For each job the agent picks the
verification mode from the value it has at risk (``agent.policy.choose_mode``): the plan
gives each job a value, the agent turns it into audit(p) or replicate(k). One JSON line per
finished job goes to stdout (kept as the requester's log); the demo's report never relies
on it: it reads the chain.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from verimesh.agent import Agent, WorkItem
from verimesh.agent.policy import ModeRule
from verimesh.client import replicate
from verimesh.demo.plan import JobOrder

VMT = 10**18
JOB_TIMEOUT = 420.0
SETTLE_LIMIT = 600.0  # seconds the agent stays to claim the refunds of jobs left open
TERMINAL_STATES = ("finalized", "refunded")
# The demo's network has a known share of cheaters and no track record: the agent may audit
# every job (p up to 1) before it falls back to replicas (see demo/plan.py for the values).
DEMO_RULE = ModeRule(max_audit_p=1.0)


def emit(kind: str, **fields: object) -> None:
    print(json.dumps({"event": kind, "t": round(time.time(), 3), **fields}), flush=True)


def wait_for_providers(agent: Agent, count: int, poll: float = 0.5) -> None:
    """The demo starts the agent while the nodes are still starting: it provisions its
    wallet meanwhile, then buys once the market has ``count`` providers to draw from."""
    registry = agent.net.registry
    while count and registry.provider_count() < count:
        time.sleep(poll)
    emit("market-open", providers=registry.provider_count())


def settle_open_jobs(agent: Agent, records: list, limit: float = SETTLE_LIMIT, poll: float = 1.0) -> None:
    """Stay until every job the agent paid for has ended on chain.

    ``run_jobs`` gives up on a job after JOB_TIMEOUT; a job whose provider withheld its
    reveal is still open then, and only a party of the job (here: its requester) calls
    ``timeout`` once the reveal deadline has passed. ``refresh`` does that and books the
    refund, so the agent's escrow never stays locked in a job nobody finishes.
    """
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        agent.refresh(records)
        open_jobs = [r.job_id for r in records if r.job_id is not None and r.chain_state not in TERMINAL_STATES]
        if not open_jobs:
            return
        emit("waiting", open_jobs=open_jobs)
        time.sleep(poll)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("deployment", type=Path)
    parser.add_argument("owner", help="dev account that owns and funds the agent's wallet (dev1)")
    parser.add_argument("plan", type=Path, help="JSON list of JobOrder")
    parser.add_argument("home", type=Path, help="the agent's state folder")
    parser.add_argument("--budget", type=float, required=True, help="VMT the owner gives the agent")
    parser.add_argument("--in-flight", type=int, default=4, help="jobs bought at once")
    parser.add_argument("--wait-providers", type=int, default=0,
                        help="after provisioning, wait until this many providers are registered")  # fmt: skip
    args = parser.parse_args(argv)

    orders = [JobOrder.model_validate(o) for o in json.loads(args.plan.read_text())]
    agent = Agent.provision(args.deployment, args.owner, round(args.budget * VMT), args.home,
                            name="requester", rule=DEMO_RULE, reuse=False)  # fmt: skip
    summary = agent.summary()
    emit("provisioned", wallet=summary["wallet"], session_key=summary["session_key"], budget=summary["budget"])
    wait_for_providers(agent, args.wait_providers)
    work = [
        WorkItem(task=o.task, model=o.model, input=o.input, params=o.params, value=round(o.value * VMT),
                 mode=replicate(o.replicas) if o.replicas else None, label=f"{o.task}-{i}")
        for i, o in enumerate(orders)
    ]
    records = agent.run_jobs(
        work, timeout=JOB_TIMEOUT, max_in_flight=args.in_flight,
        on_record=lambda r: emit("job", **json.loads(r.model_dump_json())),
    )  # fmt: skip
    settle_open_jobs(agent, records)
    states = [r.state for r in records]
    emit("done", outcomes={s: states.count(s) for s in sorted(set(states))})
    agent.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
