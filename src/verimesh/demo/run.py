"""The demo from start to verdict: bring the network up, let the market work, judge it.

1. A fresh devnet (anvil + contracts + funded dev accounts) in a temporary run folder.
2. N provider nodes (C of them cheating with a behaviour from the adversary zoo), the
   validator, the dashboard, then the requester, which buys J real jobs within a budget.
3. While the jobs run: one honest node is killed with SIGKILL in the middle of a job and
   restarted; its journal finishes the job. The view shows nodes, jobs, disputes, balances.
4. Once every job is posted and no honest party has work left, chain time is fast-forwarded
   over the remaining windows (challenge windows; deadlines only a silent cheater is
   missing), so the nodes finalize and deadbeats are timed out without minutes of waiting.
5. The report is read from the chain; every process is stopped, whatever happened.
"""

from __future__ import annotations

import json
import signal
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from verimesh.chain import JobState
from verimesh.demo.config import DemoConfig
from verimesh.demo.ledger import BURN_ADDRESS, TERMINAL, Holdings, JobRecord, Ledger
from verimesh.demo.network import DemoNetwork, NodeSpec
from verimesh.demo.parts import missing_parts
from verimesh.demo.plan import EMBED_MODEL, GENERATE_MODEL, plan_jobs
from verimesh.demo.report import DemoReport, NodeKill, build_report

REQUESTER_ACCOUNT = "dev1"
STARTUP_TIMEOUT = 240.0  # seconds for a node to come up (the first one self-benchmarks)
KILL_AFTER = 2.0  # seconds a node must have been working on a job before the demo kills it
RESTART_DELAY = 1.0
FINALIZE_STAGGER = 10  # node.daemon: replicas finalize this many seconds apart
BUDGET_PER_JOB_VMT = 3.0
# Jobs the agent keeps open at once. All of them, up to this many: a job stuck on a cheater
# that withholds its reveal must not hold a slot that later jobs wait for (the clock is only
# fast-forwarded once every job is posted).
IN_FLIGHT = 20


@dataclass
class Progress:
    """What the live view shows; refreshed by the demo loop from chain and processes."""

    phase: str = "starting"
    started: float = field(default_factory=time.monotonic)
    ledger: Ledger | None = None
    network: DemoNetwork | None = None
    parties: dict[str, str] = field(default_factory=dict)
    roles: dict[str, str] = field(default_factory=dict)
    before: dict[str, Holdings] = field(default_factory=dict)
    jobs_planned: int = 0
    kill: NodeKill | None = None
    advanced: int = 0
    notes: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # what went wrong outside the chain

    def note(self, text: str) -> None:
        self.notes.append(f"{time.monotonic() - self.started:6.1f}s  {text}")


def run_demo(config: DemoConfig, on_progress: Callable[[Progress], None] = lambda p: None) -> DemoReport:
    """Run the whole demo; always stops what it started (also on Ctrl-C, which re-raises)."""
    config.check()

    progress = Progress()
    run_dir = Path(tempfile.mkdtemp(prefix="verimesh-demo-"))
    net = DemoNetwork(run_dir)
    progress.network = net
    try:
        progress.phase = "preparing models"
        on_progress(progress)
        ensure_models([EMBED_MODEL, GENERATE_MODEL])
        return _run(config, net, progress, on_progress)
    finally:
        # A second Ctrl-C (or SIGTERM) during the shutdown must not leave orphans behind.
        held = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            survivors = net.shutdown()
            if survivors:
                progress.note(f"processes that survived SIGKILL: {survivors}")
            net.clean_homes()
        finally:
            for sig, handler in held.items():
                signal.signal(sig, handler)


def _run(config: DemoConfig, net: DemoNetwork, progress: Progress, on_progress: Callable[[Progress], None]) -> DemoReport:
    parts_not_run = missing_parts(config)
    progress.phase = "starting the devnet"
    on_progress(progress)
    deployment = net.start_chain()
    ledger = Ledger(deployment)
    progress.ledger = ledger
    accounts = {a.name: a.address for a in deployment.dev_accounts}
    cheats = config.draw_cheats() if "cheaters" not in parts_not_run else []
    nodes = net.plan_nodes(config.nodes, cheats)
    validators = net.plan_validators(config.validators if "validator" not in parts_not_run else 0)
    parties = {"requester": accounts[REQUESTER_ACCOUNT]}
    roles = {"requester": "requester"}
    for spec in [*nodes, *validators]:
        parties[spec.name] = accounts[spec.account]
        roles[spec.name] = _role(spec)
    parties["burn"], roles["burn"] = BURN_ADDRESS, "burn"
    progress.parties, progress.roles = parties, roles
    adversaries = {parties[n.name]: (n.name, n.adversary) for n in nodes if n.adversary}
    before = progress.before = ledger.snapshot(parties)
    supply_before = ledger.net.token.total_supply()
    total_before = ledger.everyone_total(list(parties.values()))
    start_block = deployment.block + 1
    progress.note(f"devnet at {deployment.rpc_url}; run folder {net.run_dir}")
    if config.dashboard:
        progress.note(f"dashboard at {net.start_dashboard()} (open it in a browser)")

    orders = plan_jobs(config.jobs)
    progress.jobs_planned = len(orders)
    plan_path = net.run_dir / "plan.json"
    plan_path.write_text(json.dumps([o.model_dump() for o in orders]))
    agent_home = net.run_dir / "agent"
    # The agent's wallet lets one payment move at most half the budget: a few jobs' worth
    # at least, so that one job's escrow (2 VMT) always fits.
    budget = BUDGET_PER_JOB_VMT * max(len(orders), 4)
    # The agent provisions its wallet while the nodes start; it buys once they are registered.
    net.start_requester([
        sys.executable, "-m", "verimesh.demo.requester", str(net.deployment_path), REQUESTER_ACCOUNT,
        str(plan_path), str(agent_home), "--budget", f"{budget:g}", "--in-flight", str(min(len(orders), IN_FLIGHT)),
        "--wait-providers", str(len(nodes)),
    ])  # fmt: skip
    progress.note(f"requester agent will buy {len(orders)} jobs with a budget of {budget:g} VMT")

    progress.phase = "starting nodes and validators"
    on_progress(progress)
    net.start_nodes([EMBED_MODEL, GENERATE_MODEL], STARTUP_TIMEOUT, lambda: on_progress(progress))
    cheating = ", ".join(f"{n.name}: {n.adversary}" for n in nodes if n.adversary)
    progress.note(f"{len(nodes)} nodes registered" + (f" ({cheating})" if cheating else "")
                  + f", {len(validators)} validator(s) staked")  # fmt: skip
    progress.phase = "jobs running"

    generate_root = _model_root(GENERATE_MODEL)
    honest = [n for n in nodes if not n.adversary]
    watcher = KillWatcher(net, honest, generate_root, progress)
    deadline = time.monotonic() + config.timeout
    requester = net.supervisor.children["requester"]
    while time.monotonic() < deadline:
        _add_agent_parties(agent_home, progress)
        ledger.refresh()
        watcher.step(ledger)
        if len(ledger.jobs) >= len(orders) or not requester.alive():
            _fast_forward(ledger, honest, parties, progress)
        on_progress(progress)
        if not requester.alive() and ledger.all_terminal() and not watcher.pending():
            break
        time.sleep(0.25)
    else:
        progress.problems.append(f"gave up after --timeout {config.timeout:g} s with jobs still open")
    progress.problems += _process_problems(net, requester, len(ledger.jobs), len(orders))
    for problem in progress.problems:
        progress.note(problem)
    progress.phase = "reading the chain"
    on_progress(progress)
    ledger.refresh()
    after = ledger.snapshot(parties)
    report = build_report(
        ledger=ledger, parties=parties, roles=roles, adversaries=adversaries, before=before, after=after,
        supply_before=supply_before, total_before=total_before, gas=ledger.gas_of_contract_calls(start_block), jobs_planned=len(orders),
        wall_seconds=time.monotonic() - progress.started, advanced=progress.advanced,
        node_kill=watcher.result(ledger), parts_not_run=parts_not_run, requester=parties["requester"],
        logs=str(net.supervisor.log_dir), problems=progress.problems,
    )  # fmt: skip
    progress.phase = "done"
    on_progress(progress)
    return report


def _process_problems(net: DemoNetwork, requester, posted: int, planned: int) -> list[str]:
    """Processes that died on their own (the demo's kill -9 is restarted, so not counted),
    and jobs the agent did not post (its log says why: budget, policy, market)."""
    problems = []
    if requester.process is not None and requester.process.returncode not in (None, 0):
        problems.append(f"the requester agent exited with code {requester.process.returncode}: "
                        f"{requester.log_tail(600).strip()}")  # fmt: skip
    elif posted < planned:
        reasons = sorted({e.get("error") or e.get("state", "") for e in _requester_events(requester.log)
                          if e.get("event") == "job" and e.get("job_id") is None})  # fmt: skip
        problems.append(f"the requester agent posted {posted} of {planned} jobs: {'; '.join(reasons)[:400]}")
    for child in net.supervisor.children.values():
        if child.name != "requester" and not child.alive():
            problems.append(f"{child.name} died during the run (see {child.log})")
    return problems


def _requester_events(log: Path) -> list[dict]:
    events = []
    for line in log.read_text(errors="replace").splitlines() if log.is_file() else []:
        if line.startswith("{"):
            try:
                events.append(json.loads(line))
            except ValueError:
                continue
    return events


def ensure_models(names: list[str]) -> None:
    """Import the bundled models the nodes serve into the user's model store, once (from
    the installed model packages, offline; about 15 s each)."""
    from verimesh.models.api import import_model
    from verimesh.models.store import ModelNotFoundError, ModelStore

    store = ModelStore()
    for name in names:
        try:
            store.resolve(name)
        except ModelNotFoundError:
            import_model(name, store)


def _add_agent_parties(home: Path, progress: Progress) -> None:
    """The agent's wallet contract and session key hold the requester's tokens once it is
    provisioned; its agent.json names them (the balances themselves come from the chain)."""
    if "agent wallet" in progress.parties:
        return
    try:
        record = json.loads((home / "agent.json").read_text())
    except (OSError, ValueError):
        return
    for label, key in (("agent wallet", "wallet"), ("agent key", "session_key")):
        progress.parties[label], progress.roles[label] = record[key], f"requester's {label.split()[1]}"
        progress.before[label] = Holdings(0, 0, 0)
    progress.note(f"requester agent: wallet {record['wallet']}, session key {record['session_key']}")


def _role(spec: NodeSpec) -> str:
    if spec.name.startswith("validator"):
        return "validator"
    return f"cheater ({spec.adversary})" if spec.adversary else "provider"


def _model_root(name: str) -> str:
    from verimesh.models.store import ModelStore
    from verimesh.node.jobs import hex_root

    return hex_root(ModelStore().resolve(name))


class KillWatcher:
    """Kills one honest node with SIGKILL while it works on a job, then restarts it.

    It prefers a generation job (seconds of work, so the kill lands mid-job); it watches
    the chain for a job assigned to an honest node that has not committed it yet.
    """

    def __init__(self, net: DemoNetwork, honest: list[NodeSpec], generate_root: str, progress: Progress) -> None:
        self.net = net
        self.honest = {n.name: n for n in honest}
        self.generate_root = generate_root
        self.progress = progress
        self.first_seen: dict[tuple[int, str], float] = {}
        self.victim: NodeSpec | None = None
        self.job_id: int | None = None
        self.killed_at: float | None = None
        self.restarted = False

    def pending(self) -> bool:
        return self.victim is not None and not self.restarted

    def step(self, ledger: Ledger) -> None:
        if self.victim is not None:
            if not self.restarted and time.monotonic() - (self.killed_at or 0) >= RESTART_DELAY:
                self.net.supervisor.restart(self.victim.name)
                self.restarted = True
                self.progress.note(f"{self.victim.name} restarted: its journal resumes job {self.job_id}")
            return
        addresses = {self.progress.parties[name]: name for name in self.honest}
        now = time.monotonic()
        candidates: list[tuple[bool, int, str]] = []
        for job in ledger.jobs.values():
            if job.state != JobState.ASSIGNED:
                continue
            for provider in job.providers:
                name = addresses.get(provider)
                if name is None or provider in job.committed:
                    continue
                seen = self.first_seen.setdefault((job.job_id, name), now)
                if now - seen >= KILL_AFTER:
                    candidates.append((job.model_root != self.generate_root, job.job_id, name))
        if not candidates:
            return
        has_generation = any(j.model_root == self.generate_root for j in ledger.jobs.values())
        candidates.sort()
        is_embed, job_id, name = candidates[0]
        if is_embed and not has_generation and len(ledger.jobs) < min(2, self.progress.jobs_planned):
            return  # early on, wait a little for a generation job to show up
        self.victim, self.job_id = self.honest[name], job_id
        self.net.supervisor.kill_hard(name)
        self.killed_at = time.monotonic()
        self.progress.note(f"{name} killed with SIGKILL in the middle of job {job_id}")

    def result(self, ledger: Ledger) -> NodeKill | None:
        if self.victim is None or self.job_id is None:
            return None
        job: JobRecord = ledger.jobs[self.job_id]
        address = self.progress.parties[self.victim.name]
        return NodeKill(
            node=self.victim.name, job_id=self.job_id,
            killed_at_seconds=round((self.killed_at or 0) - self.progress.started, 1),
            restarted=self.restarted, duty_completed=address in job.reveals and job.state in TERMINAL,
        )  # fmt: skip


def _fast_forward(ledger: Ledger, honest: list[NodeSpec], parties: dict[str, str], progress: Progress) -> None:
    """Advance chain time over the windows still open, but only once no honest party has
    anything left to do before them: no job is being audited or disputed, and in every
    open job each honest provider has committed (and revealed, once all committed)."""
    if ledger.verifying():
        return
    honest_addresses = {parties[n.name] for n in honest}
    targets: list[int] = []
    for job in ledger.jobs.values():
        if job.state in TERMINAL:
            continue
        mine = [p for p in job.providers if p in honest_addresses]
        if job.state == JobState.ASSIGNED:
            if any(p not in job.committed for p in mine):
                return
            targets.append(_job(ledger, job.job_id).commit_deadline + 1)
        elif job.state == JobState.COMMITTED:
            if any(p not in job.reveals for p in mine):
                return
            targets.append(_job(ledger, job.job_id).reveal_deadline + 1)
        elif job.state == JobState.REVEALED:
            chain_job = _job(ledger, job.job_id)
            targets.append(chain_job.challenge_deadline + FINALIZE_STAGGER * (chain_job.replicas - 1) + 2)
    if not targets:
        return
    # anvil stamps the next block with wall time plus every offset added so far
    now = max(ledger.net.backend.timestamp(), int(time.time()) + progress.advanced)
    step = max(targets) - now
    if step > 0:
        ledger.net.backend.advance_time(step)
        progress.advanced += step
        progress.note(f"chain time advanced {step} s over the open windows (devnet only)")


def _job(ledger: Ledger, job_id: int):
    return ledger.net.job_market.jobs(job_id)
