"""The provider daemon: join the network, follow JobMarket, do every duty of every job.

One thread (``run``) owns the chain: it reads new JobMarket events from a journaled block
cursor, and drives each journaled job one idempotent step at a time (see ``journal.py``):
execute, commit, reveal once all replicas committed, finalize after the challenge window,
withdraw the payment. Before every step it re-reads the job on chain, so a step done by a
previous life of the process (killed between the transaction and the journal write) is
recognised and not repeated. The HTTP API runs in a uvicorn thread beside it and wakes the
loop when a requester uploads an input, so a job starts within milliseconds of its upload.

When the chain endpoint goes away, every chain call fails; the loop logs one clear line,
backs off (0.5 s doubling to 30 s) and keeps serving HTTP; duties resume when it is back.

Disputes: a job of ours that turns DISPUTED (a replica disagreed, or a validator's audit or
an outside challenger did) stays at step ``revealed`` in the journal, marked as disputed in
its meta table, and every pass ticks B2's ``node.dispute.DisputePlayer`` for it: the node
plays the bisection from its own trace (recomputed once, exactly) and serves its final
evidence at ``/v1/jobs/{id}/evidence``. The player keeps no state (the game is in the chain's
events), so after a kill the node simply builds a new one and carries on. When the game ends
at its leaf, the node fetches the other party's evidence and, if that party's op is one the
chain can recompute and it is wrong, proves it with ``OpReferee.prove_wrong_op``: the dispute
is settled at once, no committee needed (``node.evidence.OpProofs``, journaled in the meta
table so that a restart neither repeats nor forgets it). Otherwise the committee rules.

Adversaries (``settings.behaviour``, tests and demos only): the compute cheats run in the
executor (``node.execute``); the protocol cheats are here: ``copy-replica`` computes nothing,
commits garbage and then tries to reveal the roots another replica revealed (the contract
refuses: they do not open its commitment), ``withhold-reveal`` commits and never reveals.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from verimesh.chain import (
    ChainError,
    ContractRevert,
    Deployment,
    DeploymentError,
    JobState,
    Network,
    Role,
    Signer,
)
from verimesh.chain.agent_wallet import eip1271_checker
from verimesh.chain.job_market import commitment
from verimesh.crypto.eip712 import Domain
from verimesh.crypto.eip1271 import Eip1271SignatureChecker
from verimesh.crypto.envelope import Verifier
from verimesh.crypto.nonces import SqliteNonceStore
from verimesh.crypto.wallet import Wallet
from verimesh.models.store import ModelStore
from verimesh.node.api import AccessDenied, NodeInfo, NodeServices, Rejected, create_app
from verimesh.node.config import IdlePolicy, ResourceCaps
from verimesh.node.evidence import OpProofs, fetch_evidence
from verimesh.node.execute import (
    Execution,
    Executor,
    InProcessExecutor,
    WorkerExecutor,
    leaf_evidence,
)
from verimesh.node.idle import IdleMonitor
from verimesh.node.jobs import (
    RUNTIME_VERSION,
    TASKS,
    JobSpec,
    JobUpload,
    canonical_json,
    ensure_model,
    hex_root,
    publish_models,
)
from verimesh.node.journal import ACTIVE_STEPS, Assignment, JobDuty, Journal, crash_point
from verimesh.node.recent import Recent
from verimesh.node.status import DeviceReporter
from verimesh.node.worker import WorkerCancelled
from verimesh.runtime.trace import Trace
from verimesh.store.errors import StoreError, UnknownBlobError
from verimesh.store.local import BlobStore
from verimesh.verify.adversary import Behaviour
from verimesh.verify.bisection import Party

log = logging.getLogger("verimesh.node")

VMT = 10**18
_EVENT_BATCH = 2_000  # blocks per get_logs call: bounded responses on long-lived chains
_MAX_BACKOFF = 30.0
TRACES_KEPT = 2  # re-runs kept to serve leaves outside a dispute we play (each holds every op's tensors)
_FINALIZE_STAGGER = 10  # seconds of chain time between replicas' finalize attempts
_KIND_REPLICA, _KIND_VALIDATOR = 1, 2  # JobMarket CHALLENGER_* kinds of a dispute
_REASON_BOTH_AT_FAULT = 2  # JobMarket REASON_BOTH_AT_FAULT: the committee found both parties lying


class RegistrationError(RuntimeError):
    """The node cannot join as configured; retrying will not help (the message says what will)."""


@dataclass
class DaemonSettings:
    """What the daemon needs; ``cli/node.py`` builds it from flags and the TOML config."""

    home: Path
    deployment: Path
    wallet: Wallet
    host: str = "127.0.0.1"
    port: int = 8700
    endpoint: str | None = None  # public base URL; default http://host:port
    price: int = 1 * VMT
    stake: int | None = None  # default: the registry's minimum provider stake
    models: list[str] = field(default_factory=list)  # model roots (0x hex) this node serves
    poll_interval: float = 0.2  # seconds between chain polls when idle
    benchmark: dict[str, Any] = field(default_factory=dict)
    idle: IdlePolicy | None = None  # None: work whenever there is a job (tests, servers)
    caps: ResourceCaps | None = None  # None: run jobs in-process without caps
    in_process: bool = False  # run jobs in the node process even with caps (benchmarks, servers)
    blob_cap_bytes: int | None = None  # None: no cap on the node's blob store
    behaviour: Behaviour = Behaviour.HONEST  # an adversary of the zoo (tests, demos); never advertised

    @property
    def public_endpoint(self) -> str:
        return self.endpoint or f"http://{self.host}:{self.port}"


class NodeDaemon:
    """A provider node. ``start()`` then ``run(stop_event)``; or ``serve_forever()``."""

    def __init__(self, settings: DaemonSettings, executor: Executor | None = None) -> None:
        self.settings = settings
        self.home = settings.home
        self.home.mkdir(parents=True, exist_ok=True)
        self.deployment = Deployment.load(settings.deployment)
        self.signer = Signer.from_wallet(settings.wallet)
        self.address = self.signer.address
        self.journal = Journal(self.home / "journal.sqlite")
        self.store = BlobStore(self.home / "blobs", cap_bytes=settings.blob_cap_bytes)
        self.domain = Domain(
            chain_id=self.deployment.chain_id, verifying_contract=self.deployment.contracts.job_market
        )
        # Contract wallets (EIP-1271, e.g. AgentWallet) sign like accounts. Their check reads
        # the chain only after ECDSA fails, so accounts still pass while the chain is down.
        self.verifier = Verifier(
            self.domain,
            SqliteNonceStore(self.home / "nonces.sqlite"),
            signature_checker=Eip1271SignatureChecker(self._read_wallet),
        )
        self.executor: Executor | None = executor  # built in run() when None (needs the stop event)
        self.idle_monitor = IdleMonitor(settings.idle) if settings.idle is not None else None
        self.models = ModelStore()
        publish_models(self.store, self.models, settings.models)
        self.net: Network | None = None
        self.wake = threading.Event()
        self._all_committed: set[int] = set()  # jobs whose last commitment we just sent
        self._players: dict[int, Any] = {}  # job id -> DisputePlayer (None: not a party of it)
        self._traces_wanted: set[int] = set()  # disputed jobs whose trace drive() must recompute
        self._dispute_traces: dict[int, Any] = {}  # job id -> our full trace (op inputs kept)
        self._traces: Recent[int, Trace] = Recent(TRACES_KEPT)  # traces served outside a dispute we play
        self.proofs = OpProofs(self.journal)  # on-chain op proofs that end disputes
        self._evidence_wanted: dict[int, tuple[str, int]] = {}  # job -> other party's (endpoint, replica)
        self._peer_evidence: dict[int, tuple[dict[str, Any] | None, str]] = {}  # job -> (body, why none)
        self._http = httpx.Client(timeout=10)
        self._chain_lock = threading.RLock()  # one chain conversation at a time (nonces!)
        self._status = "starting"
        self._backoff = 0.0
        self._server = None

    # -- chain connection -----------------------------------------------------------------
    def network(self) -> Network:
        """The chain clients, connecting on first use (raises while the endpoint is down)."""
        if self.net is None:
            self.net = Network.connect(self.deployment, self.signer)
        return self.net

    def _read_wallet(self, to: str, data: bytes) -> bytes | None:
        """``isValidSignature`` of a contract signer, on this node's chain connection. A chain
        that cannot be reached is the node's problem, not a bad signature: 503, retry."""
        try:
            return eip1271_checker(self.network().backend).read(to, data)
        except ChainError as exc:  # a revert (invalid signature) is handled inside read()
            raise Rejected(
                503, f"this node cannot reach the chain to check contract signer {to} ({exc}); retry"
            ) from None

    def capabilities(self) -> bytes:
        """bytes32 registered on chain: sha256 of what ``/v1/info`` advertises (tasks, runtime,
        benchmark, models), so a requester can check the endpoint against the registry."""
        doc = {
            "runtime_version": RUNTIME_VERSION,
            "tasks": list(TASKS),
            "benchmark": self.settings.benchmark,
            "models": sorted(self.settings.models),
        }
        return hashlib.sha256(canonical_json(doc)).digest()

    def register(self) -> None:
        """Register as a provider (or update endpoint, capabilities, price) if needed."""
        net = self.network()
        member = net.registry.members(self.address)
        caps = self.capabilities()
        endpoint = self.settings.public_endpoint
        if member.role == Role.NONE:
            stake = self.settings.stake or net.registry.min_provider_stake()
            balance = net.token.balance_of(self.address)
            if balance < stake:
                raise RegistrationError(
                    f"{self.address} holds {balance / VMT:g} VMT but registering needs a stake of "
                    f"{stake / VMT:g} VMT: fund the wallet (devnet: use a dev account) or lower --stake"
                )
            if net.token.allowance(self.address, net.registry.address) < stake:
                net.token.approve(net.registry.address, stake)
            net.registry.register(Role.PROVIDER, stake, endpoint, caps, self.settings.price)
            log.info("registered as provider %s: stake %g VMT, price %g VMT, endpoint %s",
                     self.address, stake / VMT, self.settings.price / VMT, endpoint)  # fmt: skip
        elif member.role != Role.PROVIDER:
            raise RegistrationError(f"{self.address} is registered as {member.role.name}, not as a provider")
        elif not member.active:
            raise RegistrationError(
                f"{self.address} left the registry (deregistered); once its unbonding is withdrawn "
                "(`verimesh wallet balance` shows it) it can register again, or use another wallet"
            )
        elif (member.endpoint, member.capabilities, member.price) != (endpoint, caps, self.settings.price):
            net.registry.update(endpoint, caps, self.settings.price)
            log.info("updated registry entry: endpoint %s, price %g VMT", endpoint, self.settings.price / VMT)
        if self.journal.cursor() is None:
            self.journal.record_assignments([], self.deployment.block)

    # -- HTTP -----------------------------------------------------------------------------
    def services(self) -> NodeServices:
        return NodeServices(
            info=self.info,
            journal=self.journal,
            store=self.store,
            verifier=self.verifier,
            accept_upload=self.accept_upload,
            result_readers=self._validators,
            dispute_readers=self._dispute_parties,
            dispute_data=self._dispute_data,
            dispute_evidence=self._dispute_evidence,
        )

    def info(self) -> NodeInfo:
        return NodeInfo(
            address=self.address,
            chain_id=self.deployment.chain_id,
            job_market=self.deployment.contracts.job_market,
            endpoint=self.settings.public_endpoint,
            runtime_version=RUNTIME_VERSION,
            tasks=list(TASKS),
            capabilities_hash=hex_root(self.capabilities()),
            benchmark=self.settings.benchmark,
            price=self.settings.price,
            models=sorted(self.settings.models),
            working=self._backoff == 0.0,
            status=self._status,
        )

    def start_http(self) -> None:
        """Serve the API on ``host:port`` in a background thread."""
        import uvicorn

        config = uvicorn.Config(
            create_app(self.services()),
            host=self.settings.host,
            port=self.settings.port,
            log_level="warning",
            lifespan="off",
            timeout_graceful_shutdown=2,
        )
        self._server = uvicorn.Server(config)
        thread = threading.Thread(target=self._server.run, name="http", daemon=True)
        thread.start()
        deadline = time.monotonic() + 15
        while not self._server.started:
            if not thread.is_alive():
                raise RuntimeError(
                    f"the HTTP API could not start on {self.settings.host}:{self.settings.port} "
                    "(port in use?); pick another with --port"
                )
            if time.monotonic() > deadline:
                raise RuntimeError("the HTTP API did not start within 15 s")
            time.sleep(0.01)
        log.info("serving the node API on http://%s:%d", self.settings.host, self.settings.port)

    def stop_http(self) -> None:
        if self._server is not None:
            self._server.should_exit = True

    def accept_upload(self, job_id: int, signer: str, upload: JobUpload) -> None:
        """A requester's spec + input: check against the chain, store, then wake the loop."""
        duty = self.journal.job(job_id)
        if duty is None:
            # The upload usually arrives before our next poll saw the assignment: look now.
            try:
                with self._chain_lock:
                    self.follow_events()
            except Exception as exc:  # chain down: the requester retries later
                raise Rejected(503, f"this node cannot reach the chain right now ({exc}); retry") from None
            duty = self.journal.job(job_id)
            if duty is None:
                raise Rejected(404, f"job {job_id} is not assigned to this node {self.address}")
        if signer.lower() != duty.requester.lower():
            raise AccessDenied(f"only job {job_id}'s requester {duty.requester} may upload its input")
        data = upload.check(
            bytes.fromhex(duty.spec_hash[2:]), bytes.fromhex(duty.input_root[2:]), bytes.fromhex(duty.model_root[2:])
        )
        if duty.step != "assigned":
            return  # already have it (a retried upload): idempotent
        self.store.put(data, pin=True)
        self.journal.advance(job_id, ("assigned",), "ready", spec_json=upload.spec.model_dump_json())
        crash_point("after_input_stored")
        log.info("job %d: input received (%s, %d bytes)", job_id, upload.spec.task, len(data))
        self.wake.set()

    def _validators(self, job_id: int) -> set[str]:
        with self._chain_lock:
            audit = self.network().job_market.audits(job_id)
        zero = "0x" + "00" * 20
        return {audit.validator} if audit.validator.lower() != zero else set()

    def _dispute_parties(self, job_id: int) -> set[str]:
        """Who may read a job's dispute data: its providers, the referee and every registered
        validator (the committee that rules on a dispute is drawn from the validators, and
        evidence only ever proves what the parties committed to on chain anyway)."""
        with self._chain_lock:
            net = self.network()
            parties = set(net.job_market.assigned(job_id)) | {net.job_market.referee()}
            parties |= set(net.registry.validators())
        return parties | self._validators(job_id)

    def _dispute_data(self, job_id: int, leaf_index: int, tensors: bool = True) -> dict[str, Any]:
        duty = self.journal.job(job_id)
        if duty is None or duty.spec_json is None or duty.output_root is None:
            raise Rejected(409, f"job {job_id} has not been executed on this node yet")
        spec = JobSpec.model_validate_json(duty.spec_json)
        if self.executor is None:
            raise Rejected(503, "the node is starting; retry in a few seconds")
        player, executor = self._players.get(job_id), self.executor
        try:
            if player is not None:  # the trace we play the dispute from: no re-run per leaf asked
                evidence = player.leaf_json(leaf_index, tensors)
            else:  # a re-run, kept for the next leaves asked (a member or a watcher reads several)
                trace = self._traces.get(job_id, lambda: executor.trace(spec, self.store.get(spec.input_root)))
                evidence = leaf_evidence(trace, leaf_index, tensors)
        except IndexError as exc:
            raise Rejected(404, str(exc)) from None
        except StoreError:  # a settled job's input may be evicted once its trace is no longer kept
            raise Rejected(410, f"this node no longer holds job {job_id}'s input to re-run it") from None
        if evidence["job_trace_root"] != duty.trace_root:  # the re-run must be the committed run
            log.error("job %d: re-run trace root %s differs from the committed %s", job_id,
                      evidence["job_trace_root"], duty.trace_root)  # fmt: skip
            raise Rejected(409, "this node cannot reproduce its committed trace; see its log")
        return evidence

    def _stored(self, root: str | None) -> bytes | None:
        """A blob we hold (our own output, say), or None if it is gone or was never here."""
        if root is None:
            return None
        try:
            return self.store.get(root)
        except StoreError:
            return None

    # -- the loop -------------------------------------------------------------------------
    def _dispute_evidence(self, job_id: int) -> dict[str, Any]:
        """Our final evidence in the dispute of ``job_id`` (for the committee), once the
        bisection has found its leaf."""
        from verimesh.node.dispute import DisputePlayerError

        player = self._players.get(job_id)
        if player is None:
            raise Rejected(404, f"this node is not playing a dispute of job {job_id} (or has not started yet)")
        try:
            with self._chain_lock:
                return player.evidence_json()
        except DisputePlayerError as exc:
            raise Rejected(409, str(exc)) from None

    def _make_executor(self, stop: threading.Event) -> Executor:
        """The capped worker subprocess (with the idle policy) unless told to run in-process."""
        behaviour = self.settings.behaviour
        if self.settings.caps is None or self.settings.in_process:
            return InProcessExecutor(behaviour)
        return WorkerExecutor(self.settings.caps, monitor=self.idle_monitor, stop=stop, behaviour=behaviour)

    def run(self, stop: threading.Event) -> None:
        """Poll the chain and drive duties until ``stop`` is set. Never raises for chain trouble."""
        if self.executor is None:
            self.executor = self._make_executor(stop)
        if self.settings.behaviour is not Behaviour.HONEST:  # local log only: a cheat does not advertise
            log.warning("ADVERSARY: this node behaves as %r (tests and demos only)", self.settings.behaviour.value)
        # device.json for `verimesh node status`; also keeps the idle grace timer sampled.
        DeviceReporter(self.home, self.idle_monitor, self.executor, self.settings.caps).start(stop)
        registered = False
        while not stop.is_set():
            try:
                with self._chain_lock:
                    if not registered:
                        self.register()
                        registered = True
                    self.follow_events()
                for duty in self.journal.active():
                    # Take every step that is due now (execute -> commit -> reveal for a
                    # single replica) without waiting a poll interval between them.
                    while duty is not None and duty.step in ACTIVE_STEPS and not stop.is_set():
                        self.drive(duty)
                        after = self.journal.job(duty.job_id)
                        if after is None or after.step == duty.step:
                            break
                        duty = after
                if self._backoff:
                    log.info("chain endpoint is back; resuming duties")
                self._backoff = 0.0
                self._status = self._describe()
            except (RegistrationError, DeploymentError):
                raise  # the owner must act (fund the wallet, fix the deployment): stop with the reason
            except Exception as exc:  # chain down or a transient error: log, back off, retry
                self._backoff = min(_MAX_BACKOFF, max(0.5, self._backoff * 2))
                self._status = f"chain error, retrying in {self._backoff:.1f} s: {_one_line(exc)}"
                log.warning("%s", self._status)
                self.net = None if _connection_trouble(exc) else self.net
                stop.wait(self._backoff)
                continue
            self.wake.wait(self.settings.poll_interval)
            self.wake.clear()

    def _describe(self) -> str:
        progress = getattr(self.executor, "last_progress", None)
        if progress is not None and progress.state == "paused":
            return f"job paused: {progress.reason}"
        counts = self.journal.counts()
        active = {k: v for k, v in counts.items() if k not in ("done", "failed")}
        if not active:
            return f"idle, waiting for jobs ({counts.get('done', 0)} done, {counts.get('failed', 0)} failed)"
        return "working: " + ", ".join(f"{v} {k}" for k, v in sorted(active.items()))

    def follow_events(self) -> list[int]:
        """Journal jobs assigned to us in blocks after the cursor; returns new job ids."""
        jm = self.network().job_market
        head = self.network().backend.block_number()
        cursor = self.journal.cursor()
        start = (self.deployment.block if cursor is None else cursor) + 1
        new: list[int] = []
        while start <= head:
            end = min(head, start + _EVENT_BATCH - 1)
            posted: dict[int, dict[str, Any]] = {}
            found: list[Assignment] = []
            for event in jm.get_all_events(start, end):
                if event.name == "JobPosted":
                    posted[event["job_id"]] = event.args
                elif event.name == "ProviderAssigned" and event["provider"].lower() == self.address.lower():
                    p = posted.get(event["job_id"])
                    if p is None:  # cannot happen: both come from one post_job transaction
                        log.error("job %d: ProviderAssigned without JobPosted in blocks %d-%d", event["job_id"], start, end)
                        continue
                    found.append(
                        Assignment(
                            job_id=event["job_id"],
                            replica=event["replica"],
                            requester=p["requester"],
                            spec_hash=hex_root(p["spec_hash"]),
                            model_root=hex_root(p["model_root"]),
                            input_root=hex_root(p["input_root"]),
                            commit_deadline=p["commit_deadline"],
                            reveal_deadline=p["reveal_deadline"],
                        )
                    )
            fresh = self.journal.record_assignments(found, end)
            for job_id in fresh:
                log.info("job %d: assigned to us", job_id)
                crash_point("after_assigned")
            new += fresh
            start = end + 1
        return new

    def chain_now(self) -> int:
        return self.network().backend.now()

    def drive(self, duty: JobDuty) -> None:
        """Do the next step of one job, if it is due. Each branch is idempotent."""
        step = {
            "assigned": self._await_input,
            "ready": self._execute,
            "executed": self._commit,
            "committed": self._reveal,
            "revealed": self._finalize,
            "finalized": self._withdraw,
        }[duty.step]
        if duty.step == "ready":
            if self.idle_monitor is not None and not self.idle_monitor.state().idle:
                return  # the owner needs the device: start when the idle policy allows
            step(duty)  # no chain lock while the runtime works: the API stays responsive
            return
        if duty.job_id in self._traces_wanted:  # a dispute needs our trace: recompute it, no chain lock
            spec = JobSpec.model_validate_json(duty.spec_json or "{}")
            assert self.executor is not None
            self._dispute_traces[duty.job_id] = self.executor.trace(spec, self.store.get(spec.input_root))
            self._traces_wanted.discard(duty.job_id)
        wanted = self._evidence_wanted.pop(duty.job_id, None)
        if wanted is not None:  # no chain lock: the other node may be asking for ours right now
            endpoint, replica = wanted
            self._peer_evidence[duty.job_id] = fetch_evidence(
                self._http, self.settings.wallet, self.domain, endpoint, duty.job_id, replica
            )
        with self._chain_lock:
            step(duty)

    def _await_input(self, duty: JobDuty) -> None:
        if self.chain_now() > duty.commit_deadline:
            job = self.network().job_market.jobs(duty.job_id)
            self._end_missed(duty, job.state, "no input was uploaded before the commit deadline")

    def _execute(self, duty: JobDuty) -> None:
        if self.settings.behaviour is Behaviour.COPY_REPLICA:
            self._copy_instead(duty)
            return
        spec = JobSpec.model_validate_json(duty.spec_json or "{}")
        input_bytes = self.store.get(spec.input_root)
        # Chain trouble while looking for peers propagates: the loop backs off and retries.
        peers = [] if self.models.has(spec.model_root_bytes) else self._peers()
        try:
            if ensure_model(self.store, self.models, spec.model_root, peers):
                log.info("job %d: fetched model %s from peers", duty.job_id, spec.model_root[:10])
                self.settings.models.append(spec.model_root)
            log.info("job %d: running %s on model %s", duty.job_id, spec.task, spec.model_root[:10])
            assert self.executor is not None  # built at the start of run()
            result: Execution = self.executor.run(spec, input_bytes)
        except WorkerCancelled:
            return  # the node is stopping: the job stays "ready" and runs again after restart
        except Exception as exc:
            # A job we cannot run (model missing, bad params): we will not commit, so the
            # requester gets a refund at the commit deadline; our bond pays for it.
            log.error("job %d: execution failed: %s", duty.job_id, exc)
            self.journal.fail(duty.job_id, f"execution failed: {exc}")
            self._release_blobs(duty.job_id)
            return
        self.store.put(result.output_bytes, pin=True)
        salt = secrets.token_bytes(32)
        self.journal.advance(
            duty.job_id, ("ready",), "executed",
            **executed_fields(result), salt=hex_root(salt), durable=True,
        )  # fmt: skip
        log.info("job %d: executed in %.2f s, output %s", duty.job_id, result.seconds, hex_root(result.output_root)[:10])
        crash_point("after_executed")

    def _copy_instead(self, duty: JobDuty) -> None:
        """copy-replica: compute nothing and commit to garbage, planning to reveal whatever
        another replica reveals. (Waiting for a reveal BEFORE committing gets nowhere: the
        contract opens reveals only once every replica has committed.)"""
        garbage = secrets.token_bytes(32)
        self.journal.advance(
            duty.job_id, ("ready",), "executed",
            output_root=hex_root(garbage), trace_root=hex_root(garbage), salt=hex_root(secrets.token_bytes(32)),
            durable=True,
        )  # fmt: skip
        log.warning("job %d: ADVERSARY copy-replica: committing garbage, will copy another replica's reveal", duty.job_id)

    def _peers(self) -> list[str]:
        """Endpoints of the other active providers: where a missing model may be fetched."""
        with self._chain_lock:
            reg = self.network().registry
            members = [reg.members(a) for a in reg.providers() if a.lower() != self.address.lower()]
        return [m.endpoint for m in members if m.active]

    # Commit and reveal try the transaction first and read the chain only when it reverts:
    # on the hot path (a job just executed by this process) that saves two calls per step,
    # and after a crash the revert ("already committed") sends us to the careful path.
    def _commit(self, duty: JobDuty) -> None:
        jm = self.network().job_market
        digest = commitment(
            duty.job_id, self.address, _b(duty.output_root), _b(duty.trace_root), _b(duty.salt)
        )
        try:
            tx = jm.commit(duty.job_id, digest)
        except ContractRevert as exc:
            replica = jm.replica(duty.job_id, duty.replica)
            if replica.committed:  # a previous life of this node committed it
                if replica.digest != digest and not replica.revealed:
                    raise RuntimeError(f"job {duty.job_id}: the chain holds a commitment that is not ours") from exc
                self.journal.advance(duty.job_id, ("executed",), "committed")
                return
            job = jm.jobs(duty.job_id)
            if job.state != JobState.ASSIGNED or self.chain_now() > duty.commit_deadline:
                self._end_missed(duty, job.state, f"could not commit: {exc.reason}")
                return
            raise
        crash_point("after_commit_sent")
        self.journal.advance(duty.job_id, ("executed",), "committed", commit_tx=_tx_hash(tx))
        if tx.event("Committed", jm.address)["state"] == JobState.COMMITTED:
            self._all_committed.add(duty.job_id)  # we were the last: reveal without asking
        log.info("job %d: committed", duty.job_id)

    def _reveal(self, duty: JobDuty) -> None:
        jm = self.network().job_market
        if self.settings.behaviour in (Behaviour.WITHHOLD_REVEAL, Behaviour.COPY_REPLICA):
            self._cheat_reveal(duty)
            return
        if duty.job_id not in self._all_committed:
            job = jm.jobs(duty.job_id)
            if job.state == JobState.ASSIGNED:
                if self.chain_now() > job.commit_deadline:
                    self._end_missed(duty, job.state, "another replica missed the commit deadline")
                return  # others still committing
            if job.state != JobState.COMMITTED:
                if jm.replica(duty.job_id, duty.replica).revealed:  # a previous life revealed
                    self.journal.advance(duty.job_id, ("committed",), "revealed")
                else:
                    self._end_missed(duty, job.state, "the job left its reveal phase before we revealed")
                return
        self._all_committed.discard(duty.job_id)
        try:
            tx = jm.reveal(duty.job_id, _b(duty.output_root), _b(duty.trace_root), _b(duty.salt))
        except ContractRevert as exc:
            if jm.replica(duty.job_id, duty.replica).revealed:
                self.journal.advance(duty.job_id, ("committed",), "revealed")
                return
            job = jm.jobs(duty.job_id)
            if job.state == JobState.COMMITTED and self.chain_now() <= job.reveal_deadline:
                raise  # unexpected: let the loop log it and retry
            self._end_missed(duty, job.state, f"could not reveal: {exc.reason}")
            return
        crash_point("after_reveal_sent")
        self.journal.advance(duty.job_id, ("committed",), "revealed", reveal_tx=_tx_hash(tx))
        log.info("job %d: revealed output %s", duty.job_id, duty.output_root[:10] if duty.output_root else "?")

    def _cheat_reveal(self, duty: JobDuty) -> None:
        """withhold-reveal: never reveal. copy-replica: reveal the roots another replica
        revealed, with our salt (the contract rejects them: they do not open our commitment).
        Either way the reveal deadline passes and ``timeout`` slashes our bond."""
        jm = self.network().job_market
        job = jm.jobs(duty.job_id)
        if job.state != JobState.COMMITTED:
            if job.state != JobState.ASSIGNED:  # ASSIGNED: others still committing
                self._all_committed.discard(duty.job_id)
                self.journal.fail(duty.job_id, f"adversary {self.settings.behaviour.value}: "
                                  f"the job ended in state {job.state.name} without our reveal")  # fmt: skip
                self._release_blobs(duty.job_id)
            return
        if self.settings.behaviour is Behaviour.WITHHOLD_REVEAL:
            return
        for event in jm.get_events("Revealed", self.deployment.block):
            if event["job_id"] != duty.job_id or event["provider"].lower() == self.address.lower():
                continue
            copied = (event["output_root"], event["trace_root"])
            if self.journal.get_meta(f"copied:{duty.job_id}") == hex_root(copied[1]):
                return  # tried these already
            self.journal.set_meta(f"copied:{duty.job_id}", hex_root(copied[1]))
            try:
                jm.reveal(duty.job_id, copied[0], copied[1], _b(duty.salt))
            except ContractRevert as exc:
                log.warning("job %d: ADVERSARY copy-replica: reveal of replica %d's roots refused: %s",
                            duty.job_id, event["replica"], exc.reason)  # fmt: skip
                return
            log.error("job %d: copy-replica's reveal was ACCEPTED: commit-reveal is broken", duty.job_id)
            self.journal.advance(duty.job_id, ("committed",), "revealed")
            return

    def _finalize(self, duty: JobDuty) -> None:
        jm = self.network().job_market
        job = jm.jobs(duty.job_id)
        if job.state == JobState.DISPUTED:
            self._play_dispute(duty)
            return
        disputed = self.journal.get_meta(_disputed(duty.job_id)) is not None
        if job.state == JobState.FINALIZED and disputed and not self._won_dispute(duty):
            return
        if job.state == JobState.FINALIZED:
            self.journal.advance(duty.job_id, ("revealed",), "finalized")
            return
        if job.state == JobState.REFUNDED:
            self.journal.fail(duty.job_id, "job was refunded after reveal")
            self._release_blobs(duty.job_id)
            return
        if job.state == JobState.COMMITTED:
            # Another replica has not revealed yet; after the deadline, end it ourselves.
            if self.chain_now() > job.reveal_deadline:
                self._end_missed(duty, job.state, "another replica missed the reveal deadline")
            return
        # Replica 0 finalizes first; the others wait a little longer each, so that k
        # replicas do not race k transactions of which k-1 revert (gas on a real chain).
        due = job.challenge_deadline + _FINALIZE_STAGGER * duty.replica
        if job.state in (JobState.REVEALED, JobState.AUDITING) and self.chain_now() > due:
            try:
                tx = jm.finalize(duty.job_id)
            except ContractRevert:
                if jm.jobs(duty.job_id).state == JobState.FINALIZED:  # another replica was first
                    self.journal.advance(duty.job_id, ("revealed",), "finalized")
                return  # else our clock ran ahead of the chain's: try again next poll
            crash_point("after_finalize_sent")
            self.journal.advance(duty.job_id, ("revealed",), "finalized", finalize_tx=_tx_hash(tx))
            log.info("job %d: finalized", duty.job_id)
        # DISPUTED: the referee decides; we keep serving evidence and wait for the verdict.

    def _play_dispute(self, duty: JobDuty) -> None:
        """One tick of our side of the job's dispute (the journal meta marks it, so a
        restarted node knows the job was disputed even after the verdict)."""
        from verimesh.node.dispute import DisputePlayer, DisputePlayerError

        if duty.job_id not in self._players:
            if not self.journal.get_meta(_disputed(duty.job_id)):
                self.journal.set_meta(_disputed(duty.job_id), "1")
                log.warning("job %d: DISPUTED; playing the bisection game", duty.job_id)
            trace = self._dispute_traces.pop(duty.job_id, None)
            if trace is None:  # recomputing it takes as long as the job: drive() does it unlocked
                self._traces_wanted.add(duty.job_id)
                self.wake.set()
                return
            spec = JobSpec.model_validate_json(duty.spec_json or "{}")
            self._players[duty.job_id] = DisputePlayer(
                self.network().job_market, duty.job_id, trace, from_block=self.deployment.block,
                spec=spec, input_bytes=self.store.get(spec.input_root),
                output_bytes=self._stored(duty.output_root),
            )
        player = self._players[duty.job_id]
        if player is None:
            return  # a replica that is no party of the dispute: wait for the verdict
        try:
            status = player.tick()
        except DisputePlayerError as exc:
            log.info("job %d: not a party of its dispute (%s); waiting for the verdict", duty.job_id, exc)
            self._players[duty.job_id] = None
            return
        except (ChainError, ConnectionError):
            raise  # the chain is down: the loop backs off
        except Exception as exc:  # a transient error (an HTTP or chain hiccup): re-read next poll
            log.info("job %d: dispute tick failed, retrying next poll: %s", duty.job_id, _one_line(exc))
            return
        if status.action:
            log.info("job %d: dispute %s as %s (round %d%s)", duty.job_id, status.action, status.party,
                     status.rounds, f", {status.phase}" if status.phase != "bisecting" else "")  # fmt: skip
        if status.phase == "over" and self.proofs.due(duty.job_id):
            self._try_op_proof(duty.job_id, player)

    def _try_op_proof(self, job_id: int, player: Any) -> None:
        """The game is over: if the other party's op at the leaf is provably wrong on chain,
        prove it (``node.evidence.OpProofs``). Its evidence is fetched by ``drive`` outside
        the chain lock, so this takes two passes of the loop."""
        state = player.state
        me = state.party_of(self.address)
        fetched = self._peer_evidence.pop(job_id, None)
        if fetched is None:
            if self.proofs.may_ask(job_id):
                other = (state.defender, state.challenger)[me.other]
                member = self.network().registry.members(other)
                if member.role == Role.NONE:  # an outside challenger: its roots are not on chain anyway
                    self.proofs.give_up(job_id, "the other party is not a registered member")
                    return
                replica = (state.chain.defender_replica, state.chain.challenger_replica)[me.other]
                self._evidence_wanted[job_id] = (member.endpoint, replica)
                self.wake.set()
            return
        body, why = fetched
        if body is None:
            self.proofs.unanswered(job_id, why)
            return
        mine = player.evidence_json()
        bodies = (mine, body) if me is Party.DEFENDER else (body, mine)
        self.proofs.settle(self.network(), job_id, state, bodies, me)

    def _won_dispute(self, duty: JobDuty) -> bool:
        """After a dispute's verdict: True if our result is the one the verdict paid. The
        contract pays every replica holding the winner's result and slashes every one
        holding the loser's (``JobMarket._resolve``)."""
        jm = self.network().job_market
        verdicts = [e for e in jm.get_events("DisputeResolved", self.deployment.block) if e["job_id"] == duty.job_id]
        if not verdicts:
            return True  # not resolved by a verdict: the ordinary path reads the chain
        at_fault = bool(verdicts[-1]["defender_at_fault"])
        dispute = jm.disputes(duty.job_id)
        defender = jm.replica(duty.job_id, dispute.defender_replica).digest
        if dispute.kind == _KIND_REPLICA:
            challenger = jm.replica(duty.job_id, dispute.challenger_replica).digest
        elif dispute.kind == _KIND_VALIDATOR:
            challenger = jm.audits(duty.job_id).digest
        else:
            challenger = bytes(32)  # an outside challenger puts no result on chain
        good, bad = (challenger, defender) if at_fault else (defender, challenger)
        mine = jm.replica(duty.job_id, duty.replica).digest
        if verdicts[-1]["reason"] == _REASON_BOTH_AT_FAULT:  # both results wrong: both slashed
            good, bad = bytes(32), (mine if mine in (defender, challenger) else bytes(32))
        player = self._players.pop(duty.job_id, None)
        if player is not None:  # late readers of the dispute's leaves are served from its trace
            self._traces.put(duty.job_id, player.honest.trace)
        if mine == good:
            log.info("job %d: won the dispute", duty.job_id)
            return True
        slashed = mine == bad
        self.journal.fail(duty.job_id, f"lost the dispute (winner {verdicts[-1]['winner']})"
                          + ("; our bond was slashed" if slashed else "; released unpaid"))  # fmt: skip
        self._release_blobs(duty.job_id)
        log.warning("job %d: lost the dispute%s", duty.job_id, "; bond slashed" if slashed else "")
        return False

    def _withdraw(self, duty: JobDuty) -> None:
        jm = self.network().job_market
        balance = jm.balances(self.address)
        if balance > 0:
            jm.withdraw(balance)
            crash_point("after_withdraw_sent")
            log.info("withdrew %g VMT earned", balance / VMT)
        self.journal.advance(duty.job_id, ("finalized",), "done")
        self._release_blobs(duty.job_id)

    def _release_blobs(self, job_id: int) -> None:
        """A finished job's input and output need no protection any more: the store's cap may
        now evict them, least recently used first. Models stay pinned (the node serves them),
        and so does a blob that a job still in flight shares."""
        done = self.journal.job(job_id)
        if done is None:
            return
        in_use = {r for d in self.journal.active() for r in (d.input_root, d.output_root) if r}
        for root in {done.input_root, done.output_root} - in_use - {None}:
            with contextlib.suppress(UnknownBlobError):
                self.store.pin(root, False)

    def _end_missed(self, duty: JobDuty, state: JobState, reason: str) -> None:
        """A deadline passed: call ``timeout`` (it releases our bond if we did our part)."""
        jm = self.network().job_market
        if state in (JobState.ASSIGNED, JobState.COMMITTED):
            try:
                jm.timeout(duty.job_id)
            except ContractRevert:
                if jm.jobs(duty.job_id).state in (JobState.ASSIGNED, JobState.COMMITTED):
                    return  # the chain's clock is behind ours: try again next poll
                # else someone else (the requester, another replica) ended it first
        self.journal.fail(duty.job_id, reason)
        self._release_blobs(duty.job_id)
        log.warning("job %d: %s (job ended in state %s)", duty.job_id, reason, state.name)

    def pending_seconds(self) -> float:
        return self.settings.poll_interval


def serve_forever(daemon: NodeDaemon, stop: threading.Event, on_ready: Callable[[], None] | None = None) -> None:
    """Start the API, then run the loop until ``stop``; the API stops with it."""
    daemon.start_http()
    if on_ready:
        on_ready()
    try:
        daemon.run(stop)
    finally:
        daemon.stop_http()
        daemon.journal.close()
        daemon._http.close()


def executed_fields(result: Execution) -> dict[str, str]:
    """The journal fields of an execution: what the node commits to (output and trace roots)
    and serves with the result (the step roots under the trace root, the decoded output)."""
    return {
        "output_root": hex_root(result.output_root),
        "trace_root": hex_root(result.trace_root),
        "step_roots": json.dumps([hex_root(root) for root in result.step_roots]),
        "output_json": json.dumps(result.output),
    }


def _disputed(job_id: int) -> str:
    """Journal meta key marking a job of ours that was disputed."""
    return f"disputed:{job_id}"


def _b(hex_value: str | None) -> bytes:
    assert hex_value is not None
    return bytes.fromhex(hex_value[2:])


def _tx_hash(tx: Any) -> str | None:
    value = getattr(tx.receipt, "tx_hash", None)
    if isinstance(value, bytes):
        return "0x" + value.hex()
    return value


def _one_line(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:200]


def _connection_trouble(exc: BaseException) -> bool:
    name = type(exc).__name__.lower()
    return "connection" in name or "timeout" in name
