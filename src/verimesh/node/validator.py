"""The validator daemon: stake as a validator, audit the jobs the chain draws us for, challenge
wrong results, play the disputes, and serve our dispute evidence.

One thread (``run``) owns the chain, like the provider daemon: it reads JobMarket events
from a journaled block cursor and drives each duty one idempotent step at a time:

    audit:   drawn -> executed -> reported -> done | failed   (drawn -> done: abandoned)
    dispute: playing -> done

- ``drawn`` (``AuditDrawn`` names us): ask the provider for the result and the job spec
  (``POST /v1/jobs/{id}/result``, which the drawn validator may read), check the spec
  against the ``spec_hash`` posted on chain, fetch the input blob by root from the
  provider and the model from the providers (every chunk verified against its root), and
  re-execute the job in the exact runtime. With ``audit_depth="spot"`` (the default) a
  generation job or embedding batch whose result carries step roots matching the
  provider's reveal is first spot-checked (``verify.spot``: every token, and the trace at
  the last step and sampled others; or sampled rows of the batch); if that passes, the
  provider's roots are ours to report, and only a failed or impossible spot check costs
  the whole re-execution.
  If no valid spec, input or model reached us ``abandon_margin`` seconds before the report
  deadline (a provider that withholds the job while its requester is offline), we
  ``abandon_audit``: every bond is released and the requester refunded, nobody slashed.
- ``executed``: our roots are journaled; ``audit_report`` them before the report deadline.
  Equal roots reopen the challenge window (we are paid at ``finalize``); different roots
  open a dispute with us as the challenger.
- ``playing``: ``node.dispute.DisputePlayer`` plays the bisection from our own trace (the
  re-run with op inputs kept) until the dispute is resolved or annulled; then we withdraw.
  When the game ends at its leaf and the provider's op there is one the chain can recompute
  and it is wrong, we prove it with ``OpReferee.prove_wrong_op`` (``node.evidence.OpProofs``):
  the dispute is settled without a committee.

Committees: a game that reached the referee is first checked for such an op proof (every
validator fetches both parties' evidence; the first proof settles the dispute, the others
revert harmlessly); only if there is none is a committee requested and drawn. A seated member
also proves instead of signing when it can. Each daemon tries one proof per dispute at most
(journaled in the meta table).

Everything else is re-derived from the chain after a restart: a step done by a previous
life (killed between the transaction and the journal write) is recognised by re-reading
the chain before acting (``audits(job).digest`` set = already reported).

Adversaries (``--adversary``): ``griefing-challenger`` re-executes with one op's output
flipped (``Behaviour.ONE_BAD_OP``), so it reports and defends a wrong result against an
honest provider and must lose its bond; ``false-verdict`` signs committee verdicts that
blame the party the evidence clears (``node.evidence``).
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections import Counter
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from verimesh.chain import ChainError, ContractRevert, Deployment, JobState, Network, Role, Signer
from verimesh.chain.errors import DeploymentError
from verimesh.chain.job_market import result_digest
from verimesh.crypto.eip712 import Domain
from verimesh.crypto.envelope import Verifier, seal
from verimesh.crypto.messages import JobResultRequest
from verimesh.crypto.nonces import SqliteNonceStore
from verimesh.crypto.wallet import Wallet
from verimesh.models.store import ModelStore
from verimesh.node.dispute import DisputePlayer, GameState, PlayerStatus
from verimesh.node.evidence import LeafSource, OpProofs, fetch_evidence, fetch_leaf
from verimesh.node.jobs import (
    JobResultBody,
    JobSpec,
    JobUpload,
    decode_input,
    ensure_model,
    hex_root,
)
from verimesh.node.recent import Recent
from verimesh.sqlite_wal import WalDatabase
from verimesh.store.fetch import fetch
from verimesh.store.local import BlobStore
from verimesh.verify.adversary import Behaviour
from verimesh.verify.bisection import Party
from verimesh.verify.spot import SpotResult, SpotUnavailable, spot_audit

log = logging.getLogger("verimesh.validator")

VMT = 10**18
_EVENT_BATCH = 2_000
_MAX_BACKOFF = 30.0
_ZERO_DIGEST = bytes(32)
_TURN_REFEREE = 2
VALIDATOR_BEHAVIOURS = (Behaviour.HONEST, Behaviour.GRIEFING_CHALLENGER, Behaviour.FALSE_VERDICT)
AUDIT_DEPTHS = ("spot", "full")
# Seconds of chain time after a referral that validators wait for both parties' evidence,
# to settle the dispute by an op proof, before they request a committee anyway.
_PROOF_GRACE = 30
DECIDED_PLAYERS = 2  # rebuilt players of decided disputes kept for late readers


class RegistrationError(RuntimeError):
    """The validator cannot join as configured; the message says what to change."""


class AuditError(RuntimeError):
    """This audit cannot proceed now (provider unreachable, spec missing); retried next poll."""


@dataclass
class ValidatorSettings:
    """What the validator needs; ``cli/validator.py`` builds it from flags."""

    home: Path
    deployment: Path
    wallet: Wallet
    host: str = "127.0.0.1"
    port: int = 8800
    endpoint: str | None = None  # public base URL; default http://host:port
    stake: int | None = None  # default: the registry's minimum validator stake
    price: int = 0  # the audit fee we ask; jobs whose fee is lower are not drawn for us
    poll_interval: float = 0.2
    behaviour: Behaviour = Behaviour.HONEST
    http_timeout: float = 30.0
    # chain seconds before the report deadline at which an audit we still cannot run (no
    # valid spec, input or model reached us) is abandoned on chain instead of left silent
    abandon_margin: float = 20.0
    # "spot": check every token of a generation job and re-run its last step and
    # ``spot_steps`` sampled others (or re-embed sampled rows of an embedding batch), the
    # whole job only if that finds something (verify/spot.py); "full": always re-run the
    # whole job. Jobs that cannot be spot-checked are audited in full either way.
    audit_depth: str = "spot"
    spot_steps: int = 1
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def public_endpoint(self) -> str:
        return self.endpoint or f"http://{self.host}:{self.port}"


# -- journal ------------------------------------------------------------------------------------
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS posted (
    job_id INTEGER PRIMARY KEY, block INTEGER NOT NULL, requester TEXT NOT NULL,
    spec_hash TEXT NOT NULL, model_root TEXT NOT NULL, input_root TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS duties (
    job_id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,            -- audit | dispute
    step TEXT NOT NULL,            -- drawn | executed | reported | playing | done | failed
    report_deadline INTEGER NOT NULL DEFAULT 0,
    spec_json TEXT, output_root TEXT, trace_root TEXT,
    agrees INTEGER, error TEXT, updated_at REAL NOT NULL,
    checked TEXT                   -- what the audit re-ran: a spot check's steps, or the whole job
);
CREATE TABLE IF NOT EXISTS committees (
    job_id INTEGER PRIMARY KEY,
    step TEXT NOT NULL,            -- summon | seated | signed | done | failed
    dispute_round INTEGER, deadline INTEGER, threshold INTEGER, members TEXT,
    verdict_json TEXT, error TEXT, updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS signatures (
    job_id INTEGER NOT NULL, signer TEXT NOT NULL, verdict_json TEXT NOT NULL, signature TEXT NOT NULL,
    PRIMARY KEY (job_id, signer, verdict_json)
);
"""


class Duty(dict):
    """One journaled row (a dict with attribute access)."""

    __getattr__ = dict.get


class ValidatorJournal(WalDatabase):
    """SQLite (WAL) memory of the validator: event cursor, posted jobs, duties."""

    def __init__(self, path: Path) -> None:
        super().__init__(path, _SCHEMA)
        self.add_missing_column("duties", "checked", "TEXT")  # a journal from before spot audits

    def cursor(self) -> int | None:
        value = self.get_meta("event_cursor")
        return int(value) if value is not None else None

    def get_meta(self, key: str) -> str | None:
        with self._lock:
            row = self._conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def set_meta(self, key: str, value: str) -> None:
        with self.tx() as c:
            c.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    def posted(self, job_id: int) -> Duty | None:
        return self._one("SELECT * FROM posted WHERE job_id = ?", (job_id,))

    def duty(self, job_id: int) -> Duty | None:
        return self._one("SELECT * FROM duties WHERE job_id = ?", (job_id,))

    def active(self) -> list[Duty]:
        return self._unfinished("duties")

    def _unfinished(self, table: str) -> list[Duty]:
        """Rows of ``table`` (duties or committees) not yet done or failed, by job."""
        with self._lock:
            cur = self._conn.execute(
                f"SELECT * FROM {table} WHERE step NOT IN ('done', 'failed') ORDER BY job_id"
            )
            names = [d[0] for d in cur.description]
            return [Duty(zip(names, row, strict=True)) for row in cur.fetchall()]

    def counts(self) -> dict[str, int]:
        with self._lock:
            return dict(
                self._conn.execute("SELECT step, COUNT(*) FROM duties GROUP BY step").fetchall()
            )

    def all_rows(self) -> list[tuple[str, str, str, str]]:
        """(job, duty, step, detail) of every audit and committee seat, for ``status``."""
        with self._lock:
            audits = self._conn.execute(
                "SELECT job_id, step, agrees, error, checked FROM duties ORDER BY job_id"
            ).fetchall()
            seats = self._conn.execute(
                "SELECT job_id, step, verdict_json, error FROM committees ORDER BY job_id"
            ).fetchall()
        rows = []
        for job_id, step, agrees, error, checked in audits:
            detail = (
                error or {None: "", 1: "agreed with the provider", 0: "disagreed: dispute"}[agrees]
            )
            if checked and not error:
                detail = f"{detail} ({checked})" if detail else checked
            rows.append((str(job_id), "audit", step, detail))
        for job_id, step, verdict, error in seats:
            detail = error or (f"signed guilty={json.loads(verdict)['guilty']}" if verdict else "")
            rows.append((str(job_id), "committee", step, detail))
        return rows

    def _one(self, sql: str, args: tuple) -> Duty | None:
        with self._lock:
            cur = self._conn.execute(sql, args)
            row = cur.fetchone()
            return Duty(zip([d[0] for d in cur.description], row, strict=True)) if row else None

    def advance(
        self, job_id: int, from_steps: tuple[str, ...], to_step: str, **fields: Any
    ) -> bool:
        return self._move("duties", job_id, from_steps, to_step, fields)

    def _move(
        self, table: str, job_id: int, from_steps: tuple[str, ...], to_step: str, fields: dict[str, Any]
    ) -> bool:
        """Move a row of ``table`` to ``to_step`` (setting ``fields``) only from one of
        ``from_steps``: a step taken twice, or out of order, changes nothing."""
        sets = ", ".join([*(f"{k} = ?" for k in fields), "step = ?", "updated_at = ?"])
        marks = ", ".join("?" for _ in from_steps)
        with self.tx() as c:
            cur = c.execute(
                f"UPDATE {table} SET {sets} WHERE job_id = ? AND step IN ({marks})",
                (*fields.values(), to_step, time.time(), job_id, *from_steps),
            )
            return cur.rowcount == 1

    def fail(self, job_id: int, reason: str) -> None:
        self.advance(
            job_id, ("drawn", "executed", "reported", "playing"), "failed", error=reason[:2000]
        )

    # -- committees ---------------------------------------------------------------------------
    def committee(self, job_id: int) -> Duty | None:
        return self._one("SELECT * FROM committees WHERE job_id = ?", (job_id,))

    def open_committees(self) -> list[Duty]:
        return self._unfinished("committees")

    def set_committee(
        self, job_id: int, from_steps: tuple[str, ...], to_step: str, **fields: Any
    ) -> bool:
        return self._move("committees", job_id, from_steps, to_step, fields)

    def add_signature(self, job_id: int, signer: str, verdict_json: str, signature: str) -> None:
        with self.tx() as c:
            c.execute(
                "INSERT OR IGNORE INTO signatures VALUES (?, ?, ?, ?)",
                (job_id, signer, verdict_json, signature),
            )

    def signatures(self, job_id: int) -> list[tuple[str, str, str]]:
        """(signer, verdict_json, signature) of every stored signature for the job."""
        with self._lock:
            return self._conn.execute(
                "SELECT signer, verdict_json, signature FROM signatures WHERE job_id = ? ORDER BY signer",
                (job_id,),
            ).fetchall()


# -- the daemon ---------------------------------------------------------------------------------
class ValidatorDaemon:
    """A validator. ``start_http()``, then ``run(stop_event)``; or ``serve_forever``."""

    def __init__(self, settings: ValidatorSettings) -> None:
        if settings.audit_depth not in AUDIT_DEPTHS:
            raise ValueError(f"audit depth must be one of {', '.join(AUDIT_DEPTHS)}, got {settings.audit_depth!r}")
        if settings.spot_steps < 0:
            raise ValueError(f"spot steps must be >= 0, got {settings.spot_steps}")
        if settings.behaviour not in VALIDATOR_BEHAVIOURS:
            raise ValueError(
                f"{settings.behaviour.value!r} is a provider behaviour; a validator can be "
                f"{', '.join(b.value for b in VALIDATOR_BEHAVIOURS)}"
            )
        self.settings = settings
        self.home = settings.home
        self.home.mkdir(parents=True, exist_ok=True)
        self.deployment = Deployment.load(settings.deployment)
        self.wallet = settings.wallet  # signs envelopes and verdicts (EIP-712)
        self.signer = Signer.from_wallet(settings.wallet)  # sends transactions
        self.address = self.signer.address
        self.journal = ValidatorJournal(self.home / "validator.sqlite")
        self.proofs = OpProofs(self.journal)  # on-chain op proofs that end disputes
        self.store = BlobStore(self.home / "blobs")
        self.models = ModelStore()
        self.domain = Domain(
            chain_id=self.deployment.chain_id,
            verifying_contract=self.deployment.contracts.job_market,
        )
        self.verifier = Verifier(self.domain, SqliteNonceStore(self.home / "nonces.sqlite"))
        self.http = httpx.Client(timeout=settings.http_timeout)
        self._audits: dict[int, Future] = {}  # job -> its re-execution in the audit thread
        # how this process audited: "spot passed", "spot failed" (then also "full"), "full"
        self.audits: Counter[str] = Counter()
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="audit")
        self._nudged = 0.0  # when we last asked a devnet for a block (see _next_block)
        self.net: Network | None = None
        self.players: dict[int, DisputePlayer] = {}
        self.decided: Recent[int, DisputePlayer] = Recent(DECIDED_PLAYERS)  # rebuilt for late readers
        self._delivered: set[tuple[int, str]] = (
            set()
        )  # (job, member) that took our verdict signature
        self.last_status: dict[int, PlayerStatus] = {}
        self.wake = threading.Event()
        self._chain_lock = threading.RLock()
        self._status = "starting"
        self._backoff = 0.0
        self._server = None

    # -- chain ------------------------------------------------------------------------------------
    def network(self) -> Network:
        if self.net is None:
            self.net = Network.connect(self.deployment, self.signer)
        return self.net

    def chain_now(self) -> int:
        return self.network().backend.now()

    def register(self) -> None:
        """Register as a validator with stake (or update the endpoint and price) if needed."""
        net = self.network()
        member = net.registry.members(self.address)
        endpoint = self.settings.public_endpoint
        if member.role == Role.NONE:
            stake = self.settings.stake or net.registry.min_validator_stake()
            balance = net.token.balance_of(self.address)
            if balance < stake:
                raise RegistrationError(
                    f"{self.address} holds {balance / VMT:g} VMT but a validator stake of {stake / VMT:g} VMT "
                    "is needed: fund the wallet (devnet: use a dev account) or lower --stake"
                )
            if net.token.allowance(self.address, net.registry.address) < stake:
                net.token.approve(net.registry.address, stake)
            net.registry.register(Role.VALIDATOR, stake, endpoint, bytes(32), self.settings.price)
            log.info(
                "registered as validator %s: stake %g VMT, endpoint %s",
                self.address,
                stake / VMT,
                endpoint,
            )
        elif member.role != Role.VALIDATOR:
            raise RegistrationError(
                f"{self.address} is registered as {member.role.name}, not as a validator; use another wallet"
            )
        elif not member.active:
            raise RegistrationError(
                f"{self.address} left the registry; use another wallet or re-register once unbonded"
            )
        elif (member.endpoint, member.price) != (endpoint, self.settings.price):
            net.registry.update(endpoint, member.capabilities, self.settings.price)
        if self.journal.cursor() is None:
            with self.journal.tx() as c:
                c.execute(
                    "INSERT OR REPLACE INTO meta VALUES ('event_cursor', ?)",
                    (str(self.deployment.block),),
                )

    def follow_events(self) -> None:
        """Journal posted jobs, audits drawn for us and disputes we are challenger in."""
        jm = self.network().job_market
        head = self.network().backend.block_number()
        cursor = self.journal.cursor()
        start = (self.deployment.block if cursor is None else cursor) + 1
        me = self.address.lower()
        while start <= head:
            end = min(head, start + _EVENT_BATCH - 1)
            events = jm.get_all_events(start, end)
            with self.journal.tx() as c:
                for e in events:
                    if e.name == "JobPosted":
                        c.execute(
                            "INSERT OR IGNORE INTO posted VALUES (?, ?, ?, ?, ?, ?)",
                            (e["job_id"], e.block_number, e["requester"], hex_root(e["spec_hash"]),
                             hex_root(e["model_root"]), hex_root(e["input_root"])),
                        )  # fmt: skip
                    elif e.name == "AuditDrawn" and e["validator"].lower() == me:
                        c.execute(
                            "INSERT OR IGNORE INTO duties (job_id, kind, step, report_deadline, updated_at)"
                            " VALUES (?, 'audit', 'drawn', ?, ?)",
                            (e["job_id"], e["report_deadline"], time.time()),
                        )
                        log.info("job %d: drawn as its auditor", e["job_id"])
                    elif e.name == "Challenged" and e["challenger"].lower() == me:
                        c.execute(
                            "UPDATE duties SET step = 'playing', updated_at = ? WHERE job_id = ? AND step IN ('reported', 'executed', 'drawn')",
                            (time.time(), e["job_id"]),
                        )
                    elif e.name == "DisputeReferred" or (
                        e.name == "DisputeMove" and e["next_turn"] == _TURN_REFEREE
                    ):
                        c.execute(  # the game reached the referee: a committee must be drawn
                            "INSERT OR IGNORE INTO committees (job_id, step, updated_at) VALUES (?, 'summon', ?)",
                            (e["job_id"], time.time()),
                        )
                c.execute("INSERT OR REPLACE INTO meta VALUES ('event_cursor', ?)", (str(end),))
            start = end + 1

    # -- the loop ---------------------------------------------------------------------------------
    def run(self, stop: threading.Event) -> None:
        """Follow the chain and do every duty until ``stop`` is set."""
        registered = False
        while not stop.is_set():
            try:
                with self._chain_lock:
                    if not registered:
                        self.register()
                        registered = True
                    self.follow_events()
                for duty in self.journal.active():
                    if stop.is_set():
                        break
                    self._isolated(self.drive, duty, "audit")
                for seat in self.journal.open_committees():
                    if stop.is_set():
                        break
                    self._isolated(self.sit, seat, "committee seat")
                if self._backoff:
                    log.info("chain endpoint is back; resuming duties")
                self._backoff = 0.0
                self._status = self._describe()
            except (RegistrationError, DeploymentError):
                raise
            except Exception as exc:  # chain down or transient: log, back off, retry
                self._backoff = min(_MAX_BACKOFF, max(0.5, self._backoff * 2))
                self._status = f"error, retrying in {self._backoff:.1f} s: {_one_line(exc)}"
                chain_trouble = (
                    isinstance(exc, ChainError) or "connection" in type(exc).__name__.lower()
                )
                log.warning(
                    "%s",
                    self._status,
                    exc_info=not chain_trouble or log.isEnabledFor(logging.DEBUG),
                )
                if "connection" in type(exc).__name__.lower():
                    self.net = None
                stop.wait(self._backoff)
                continue
            self.wake.wait(self.settings.poll_interval)
            self.wake.clear()

    def _isolated(self, step: Any, duty: Duty, what: str) -> None:
        """One duty's trouble (a provider down, a bug) must not stall the others: log, retry next poll."""
        try:
            step(duty)
        except ContractRevert as exc:
            log.warning("job %d: %s step reverted: %s", duty.job_id, what, exc.reason)
        except (AuditError, httpx.HTTPError) as exc:
            log.warning("job %d: %s step failed, retrying: %s", duty.job_id, what, _one_line(exc))

    def _describe(self) -> str:
        counts = self.journal.counts()
        active = {k: v for k, v in counts.items() if k not in ("done", "failed")}
        if not active:
            return f"waiting for audits ({counts.get('done', 0)} done, {counts.get('failed', 0)} failed)"
        return "working: " + ", ".join(f"{v} {k}" for k, v in sorted(active.items()))

    def drive(self, duty: Duty) -> None:
        step = {
            "drawn": self._execute,
            "executed": self._report,
            "reported": self._settle,
            "playing": self._play,
        }[duty.step]
        step(duty)

    # -- audit steps --------------------------------------------------------------------------------
    def _execute(self, duty: Duty) -> None:
        """Re-execute the job in the audit thread, so that while a big job runs the loop
        keeps playing disputes and sitting on committees; journal the roots when done."""
        job_id = duty.job_id
        running = self._audits.get(job_id)
        if running is not None:
            if not running.done():
                return
            del self._audits[job_id]
            try:
                spec, output_root, trace_root, checked = running.result()
            except (
                Exception
            ) as exc:  # a job we cannot run: we will not report; the deadline decides
                log.error("job %d: re-execution failed: %s", job_id, exc)
                self.journal.fail(job_id, f"re-execution failed: {exc}")
                return
            self.journal.advance(
                job_id, ("drawn",), "executed", spec_json=spec.model_dump_json(),
                output_root=hex_root(output_root), trace_root=hex_root(trace_root), checked=checked,
            )  # fmt: skip
            self.wake.set()  # report at once
            return
        with self._chain_lock:
            if self.network().job_market.jobs(job_id).state != JobState.AUDITING:
                if self._abandoned_by_us(job_id):  # a previous life abandoned it, then died
                    self.journal.advance(job_id, ("drawn",), "done", error="audit abandoned (found on chain)")
                else:
                    self.journal.fail(job_id, "the job left its audit before we could re-execute it")
                return
            if self.chain_now() > duty.report_deadline:
                self.journal.fail(job_id, "the report deadline passed before the re-execution")
                return
        try:
            spec, input_bytes, body = self._job_inputs(job_id)
        except AuditError as exc:
            if not self._abandon_if_late(duty, str(exc)):
                log.warning("job %d: cannot audit yet: %s", job_id, exc)
            return
        claim = self._spot_claim(job_id, body)
        self._audits[job_id] = self._pool.submit(self._reexecute, job_id, spec, input_bytes, claim)

    def _abandon_if_late(self, duty: Duty, why: str) -> bool:
        """Nobody gave us a job we can run, and the report deadline is near: abandon the audit
        (bonds released, requester refunded) rather than stay silent and be slashed. Who
        withheld it cannot be proven on chain, so nobody is paid or slashed."""
        with self._chain_lock:
            if self.chain_now() < duty.report_deadline - self.settings.abandon_margin:
                return False
            try:
                self.network().job_market.abandon_audit(duty.job_id)
            except ContractRevert as exc:  # reported, settled or too late: the next poll decides
                log.warning("job %d: could not abandon the audit: %s", duty.job_id, exc.reason)
                return False
            self.journal.advance(duty.job_id, ("drawn",), "done", error=f"audit abandoned: {why}"[:2000])
        log.warning("job %d: audit ABANDONED (nobody gave us the job; everyone refunded): %s", duty.job_id, why)
        return True

    def _spot_claim(self, job_id: int, body: JobResultBody | None) -> JobResultBody | None:
        """The provider's result with its step roots, if we spot-check and it is the result
        the provider revealed on chain; None: audit in full."""
        if self.settings.audit_depth != "spot" or self._compute_behaviour() is not Behaviour.HONEST:
            return None
        try:
            if body is None:
                body = self._result(self._provider_endpoint(job_id)[1], job_id)
            revealed = self.network().job_market.replica(job_id, 0).digest
        except (AuditError, ChainError) as exc:
            log.info("job %d: no result to spot-check (%s): auditing in full", job_id, exc)
            return None
        if body.step_roots is None:
            return None
        if result_digest(_b(body.output_root), _b(body.trace_root)) != revealed:
            log.warning("job %d: the provider serves other roots than it revealed: auditing in full", job_id)
            return None
        return body

    def _abandoned_by_us(self, job_id: int) -> bool:
        """Did we abandon this audit on chain? (A life killed between the transaction and the
        journal write left the duty at ``drawn``.)"""
        posted = self.journal.posted(job_id)
        events = self.network().job_market.get_events("AuditAbandoned", posted.block if posted else 0)
        return any(e["job_id"] == job_id and e["validator"].lower() == self.address.lower() for e in events)

    def _reexecute(
        self, job_id: int, spec: JobSpec, input_bytes: bytes, claim: JobResultBody | None
    ) -> tuple[JobSpec, bytes, bytes, str]:
        """(spec, output root, trace root, what we checked) to report: the provider's own
        roots when a spot check of its claim passes, else those of our full re-execution."""
        from verimesh.node.execute import execute

        started = time.perf_counter()
        spot = None if claim is None else self._spot_audit(job_id, spec, input_bytes, claim)
        if spot is not None:
            self.audits[f"spot {'passed' if spot.ok else 'failed'}"] += 1
            if spot.ok:
                log.info("job %d: spot audit of %s passed in %.2f s", job_id, spot.label,
                         time.perf_counter() - started)  # fmt: skip
                self.wake.set()
                assert claim is not None
                return spec, _b(claim.output_root), _b(claim.trace_root), f"spot check of {spot.label}"
            log.warning("job %d: spot audit of %s found: %s; re-running the whole job",
                        job_id, spot.label, spot.mismatch)  # fmt: skip
        self.audits["full"] += 1
        behaviour = self._compute_behaviour()
        execution, _ = execute(spec, decode_input(input_bytes), behaviour=behaviour)
        log.info("job %d: re-executed in %.2f s%s", job_id, time.perf_counter() - started,
                 "" if behaviour is Behaviour.HONEST else f" (as {behaviour.value})")  # fmt: skip
        self.wake.set()
        checked = "whole job re-run" if spot is None else f"whole job re-run: spot check of {spot.label} failed"
        return spec, execution.output_root, execution.trace_root, checked

    def _spot_audit(self, job_id: int, spec: JobSpec, input_bytes: bytes, claim: JobResultBody) -> SpotResult | None:
        """Spot-check the claim (verify/spot.py): its ``SpotResult``, or None (reason logged)
        when it cannot be spot-checked and the caller re-runs the whole job."""
        from verimesh.node.execute import ExecutionError, job_arguments, load_job_model

        try:
            model = load_job_model(spec)
            text, params = job_arguments(spec, decode_input(input_bytes))
            assert claim.step_roots is not None  # _spot_claim hands over only claims with them
            return spot_audit(
                model.impl, text, params, claim.output_bytes(), _b(claim.output_root), _b(claim.trace_root),
                [_b(r) for r in claim.step_roots], random.SystemRandom(), extra=self.settings.spot_steps,
            )  # fmt: skip
        except (SpotUnavailable, ExecutionError, ValueError) as exc:
            log.info("job %d: not spot-checkable (%s): auditing in full", job_id, exc)
            return None

    def _compute_behaviour(self) -> Behaviour:
        """How we compute: a griefing challenger flips one op so its result is wrong."""
        if self.settings.behaviour is Behaviour.GRIEFING_CHALLENGER:
            return Behaviour.ONE_BAD_OP
        return Behaviour.HONEST

    def _job_inputs(self, job_id: int) -> tuple[JobSpec, bytes, JobResultBody | None]:
        """The job's spec (from the provider, checked against the chain's spec_hash), its input
        (by root, from the provider's blob store) and its model (from the providers); and the
        provider's result when we asked it for the spec."""
        posted = self.journal.posted(job_id)
        if posted is None:
            raise AuditError(
                f"job {job_id}'s JobPosted event was not seen (deployment block too late?)"
            )
        net = self.network()
        provider, endpoint = self._provider_endpoint(job_id)
        spec = self._uploaded_spec(job_id)  # the requester's copy: a provider cannot withhold it
        body = None
        if spec is None:
            body = self._result(endpoint, job_id)
            spec = getattr(body, "spec", None)
        if spec is None:
            raise AuditError(
                f"provider {provider} did not send the job spec with its result; cannot re-execute"
            )
        if hex_root(spec.hash()) != posted.spec_hash:
            raise AuditError(
                f"provider {provider} sent a spec that does not hash to the posted spec_hash"
            )
        if (spec.model_root, spec.input_root) != (posted.model_root, posted.input_root):
            raise AuditError("the spec's model or input root differs from the posted ones")
        if not self.store.has(spec.input_root):
            fetch(self.store, spec.input_root, [endpoint], pin=True)
        input_bytes = self.store.get(spec.input_root)
        peers = [endpoint] + [
            m.endpoint
            for m in (net.registry.members(a) for a in net.registry.providers())
            if m.active
        ]
        if ensure_model(self.store, self.models, spec.model_root, list(dict.fromkeys(peers))):
            log.info("job %d: fetched model %s", job_id, spec.model_root[:10])
        return spec, input_bytes, body

    def _provider_endpoint(self, job_id: int) -> tuple[str, str]:
        """(address, API base URL) of the provider of an audited job (its only replica)."""
        net = self.network()
        provider = net.job_market.assigned(job_id)[0]
        return provider, net.registry.members(provider).endpoint.rstrip("/")

    def accept_upload(self, job_id: int, signer: str, upload: JobUpload) -> None:
        """The requester's spec + input of a job we were drawn to audit.

        A provider that refuses its auditor the spec or the input would otherwise escape
        the audit (and leave the validator to miss its report deadline): the requester,
        who wants its result checked, hands them over too (the SDK does when it sees the
        job under audit). Checked against the chain like a provider checks an upload.
        """
        posted = self.journal.posted(job_id)
        if posted is None:
            raise LookupError(f"job {job_id} is not known to this validator (yet)")
        if signer.lower() != posted.requester.lower():
            raise PermissionError(f"only job {job_id}'s requester {posted.requester} may upload its input")
        if self.network().job_market.audits(job_id).validator.lower() != self.address.lower():
            raise PermissionError(f"this validator was not drawn to audit job {job_id}")
        data = upload.check(
            bytes.fromhex(posted.spec_hash[2:]), bytes.fromhex(posted.input_root[2:]),
            bytes.fromhex(posted.model_root[2:]),
        )  # fmt: skip
        self.store.put(data, pin=True)
        folder = self.home / "uploads"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{job_id}.json").write_text(upload.spec.model_dump_json())
        self.wake.set()
        log.info("job %d: spec and input received from the requester", job_id)

    def _uploaded_spec(self, job_id: int) -> JobSpec | None:
        path = self.home / "uploads" / f"{job_id}.json"
        return JobSpec.model_validate_json(path.read_text()) if path.exists() else None

    def _result(self, endpoint: str, job_id: int) -> JobResultBody:
        envelope = seal(
            self.wallet, JobResultRequest(job_id=job_id, requester=self.address), self.domain
        )
        try:
            r = self.http.post(f"{endpoint}/v1/jobs/{job_id}/result", content=envelope.model_dump_json(),
                               headers={"content-type": "application/json"})  # fmt: skip
        except httpx.HTTPError as exc:
            raise AuditError(f"provider at {endpoint} unreachable: {exc}") from None
        if r.status_code != 200:
            raise AuditError(
                f"provider at {endpoint} answered HTTP {r.status_code}: {r.text[:300]}"
            )
        return JobResultBody.model_validate_json(r.content)

    def _report(self, duty: Duty) -> None:
        job_id = duty.job_id
        with self._chain_lock:
            jm = self.network().job_market
            out, trace = _b(duty.output_root), _b(duty.trace_root)
            try:
                tx = jm.audit_report(job_id, out, trace)
            except ContractRevert as exc:
                if jm.audits(job_id).digest != _ZERO_DIGEST:  # a previous life reported
                    agrees = jm.jobs(job_id).state != JobState.DISPUTED
                else:
                    self.journal.fail(job_id, f"could not report: {exc.reason}")
                    return
            else:
                agrees = tx.event("AuditReported", jm.address)["agrees"]
            step = "reported" if agrees else "playing"
            self.journal.advance(job_id, ("executed",), step, agrees=int(agrees))
            if agrees:
                log.info("job %d: audit agrees with the provider", job_id)
            else:
                log.warning("job %d: audit DISAGREES with the provider: dispute opened", job_id)

    def _settle(self, duty: Duty) -> None:
        """After an agreeing report: finalize once the window closes, then withdraw."""
        with self._chain_lock:
            jm = self.network().job_market
            job = jm.jobs(duty.job_id)
            if job.state == JobState.REVEALED and self.chain_now() > job.challenge_deadline + 5:
                try:
                    jm.finalize(duty.job_id)
                except ContractRevert:
                    return  # the provider was first, or our clock is ahead: re-read next poll
                job = jm.jobs(duty.job_id)
            if job.state == JobState.DISPUTED:  # someone challenged the result we agreed with
                self.journal.advance(duty.job_id, ("reported",), "done")
                return
            if job.state in (JobState.FINALIZED, JobState.REFUNDED):
                self._withdraw()
                self.journal.advance(duty.job_id, ("reported",), "done")

    # -- disputes -----------------------------------------------------------------------------------
    def player(self, job_id: int) -> DisputePlayer:
        """The player of a dispute we play, built (our trace: a re-run) once and kept until
        its game is decided."""
        player = self.players.get(job_id)
        if player is None:
            player = self.players[job_id] = self._build_player(job_id)
        return player

    def _build_player(self, job_id: int) -> DisputePlayer:
        duty = self.journal.duty(job_id)
        posted = self.journal.posted(job_id)
        if duty is None or duty.spec_json is None:
            raise AuditError(f"job {job_id}: no journaled spec to rebuild our trace from")
        spec = JobSpec.model_validate_json(duty.spec_json)
        behaviour = self._compute_behaviour()

        def trace() -> Any:
            """Our re-run, traced; its output is served with our evidence, so the
            committee can fast-forward to a disputed step deep in a generation."""
            from verimesh.node.execute import execute

            execution, ctx = execute(spec, decode_input(self.store.get(spec.input_root)),
                                     keep_tensors=True, behaviour=behaviour)  # fmt: skip
            player.output_bytes = execution.output_bytes
            return ctx.trace

        player = DisputePlayer(
            self.network().job_market, job_id, trace,
            from_block=posted.block if posted else self.deployment.block,
            spec=spec, input_bytes=self.store.get(spec.input_root),
        )  # fmt: skip
        return player

    def _play(self, duty: Duty) -> None:
        player = self.player(duty.job_id)
        player.honest  # noqa: B018 - our trace (a re-run of the job) is computed outside the chain lock
        with self._chain_lock:
            status = player.tick()
        previous = self.last_status.get(duty.job_id)
        if previous is None or (previous.phase, previous.rounds) != (status.phase, status.rounds):
            log.info("job %d: dispute %s, round %d%s", duty.job_id, status.phase, status.rounds,
                     f", {status.action}" if status.action else "")  # fmt: skip
        self.last_status[duty.job_id] = status
        if status.phase == "over" and self.proofs.due(duty.job_id):
            self._try_op_proof(duty.job_id, player)
        if status.active:
            return
        won = "won" if status.won else ("annulled" if status.phase == "annulled" else "lost")
        log.info("job %d: dispute %s", duty.job_id, won)
        with self._chain_lock:
            self._withdraw()
        self.journal.advance(duty.job_id, ("playing",), "done" if status.won or status.phase == "annulled" else "failed",
                             error=None if status.won else f"dispute {won}")  # fmt: skip
        self.players.pop(duty.job_id, None)

    def _try_op_proof(self, job_id: int, player: DisputePlayer) -> None:
        """Our game is over: if the provider's op at the leaf is provably wrong on chain, prove
        it (``node.evidence.OpProofs``); the griefing adversary never does."""
        if self.settings.behaviour is not Behaviour.HONEST or not self.proofs.may_ask(job_id):
            return
        state = player.state
        assert state is not None
        me = state.party_of(self.address)
        assert me is not None
        with self._chain_lock:
            endpoints = self._party_endpoints(state)
        endpoint = endpoints[me.other]
        if endpoint is None:
            self.proofs.give_up(job_id, "the other party is not a registered member")
            return
        replica = (state.chain.defender_replica, state.chain.challenger_replica)[me.other]
        body, why = fetch_evidence(self.http, self.wallet, self.domain, endpoint, job_id, replica)
        if body is None:
            self.proofs.unanswered(job_id, why)
            return
        mine = player.evidence_json()
        bodies = (mine, body) if me is Party.DEFENDER else (body, mine)
        with self._chain_lock:
            self.proofs.settle(self.network(), job_id, state, bodies, me)

    def _party_endpoints(self, state: GameState) -> list[str | None]:
        """The (defender, challenger) API endpoints from the registry (None: not a member)."""
        net = self.network()
        endpoints: list[str | None] = []
        for address in (state.defender, state.challenger):
            member = net.registry.members(address)
            endpoints.append(member.endpoint if member.role != Role.NONE else None)
        return endpoints

    def _party_bodies(
        self, state: GameState, job_id: int, endpoints: list[str | None]
    ) -> tuple[list[dict[str, Any] | None], list[str]]:
        """Both parties' evidence bodies (None where a party served none) and why not."""
        replicas = (state.chain.defender_replica, state.chain.challenger_replica)
        bodies, why = [], []
        for endpoint, replica in zip(endpoints, replicas, strict=True):
            body, reason = (None, "not a registered member") if endpoint is None else fetch_evidence(
                self.http, self.wallet, self.domain, endpoint, job_id, replica)  # fmt: skip
            bodies.append(body)
            why.append(reason)
        return bodies, why

    def _leaf_source(self, state: GameState, job_id: int, endpoints: list[str | None], tensors: bool = True) -> LeafSource:
        """Fetches one leaf of a party's trace from its node (``tensors=False``: without its
        input tensors), for the agreed leaves of an instruction dispute
        (``node.evidence.agreed_leaves`` checks what comes back)."""
        replicas = (state.chain.defender_replica, state.chain.challenger_replica)

        def fetch(party: Party, leaf_index: int) -> dict[str, Any] | None:
            endpoint = endpoints[party]
            if endpoint is None:
                return None
            body, why = fetch_leaf(self.http, self.wallet, self.domain, endpoint, job_id, replicas[party], leaf_index,
                                   tensors)  # fmt: skip
            if body is None:
                log.info("job %d: the %s served no leaf %d (%s)", job_id, party.name.lower(), leaf_index, why)
            return body

        return fetch

    def evidence_for(self, job_id: int) -> dict[str, Any]:
        """Our final evidence for the committee (with the job's spec and input, so a member
        can replay the program when the leaves differ in the instruction)."""
        return self._playing(job_id).evidence_json()

    def leaf_for(self, job_id: int, leaf_index: int, tensors: bool = True) -> dict[str, Any]:
        """One leaf of our trace with its proof and inputs (unless ``tensors`` is False), for
        a member settling an instruction dispute from the agreed leaves (IndexError past our
        trace's end)."""
        return self._playing(job_id).leaf_json(leaf_index, tensors)

    def _playing(self, job_id: int) -> DisputePlayer:
        """The player whose trace we serve: the live one while we play, else (a decided
        dispute, read late by a member or a watcher) one rebuilt on demand, of which only the
        last ``DECIDED_PLAYERS`` are kept: a re-run's trace holds every op's tensors."""
        duty = self.journal.duty(job_id)
        if duty is None or duty.step not in ("playing", "done", "failed") or duty.agrees:
            raise LookupError(f"this validator plays no dispute of job {job_id}")
        if duty.step == "playing" or job_id in self.players:
            return self.player(job_id)
        return self.decided.get(job_id, lambda: self._build_player(job_id))

    # -- committee ----------------------------------------------------------------------------------
    def committee_client(self) -> Any:
        """The DisputeCommittee client, or None for a deployment whose referee is a plain key."""
        return getattr(self.network(), "committee", None)

    def sit(self, seat: Duty) -> None:
        """One step of a committee duty (module docstring of ``node.evidence``)."""
        {"summon": self._summon, "seated": self._rule_and_sign, "signed": self._collect_and_submit}[
            seat.step
        ](seat)

    def _summon(self, seat: Duty) -> None:
        """A game reached the referee: request the committee, draw it a block later (anyone
        may; the first transaction wins, the others revert harmlessly), then take our seat."""
        job_id = seat.job_id
        if self._proving_instead(job_id):
            return
        with self._chain_lock:
            jm, committee = self.network().job_market, self.committee_client()
            if committee is None:
                self.journal.set_committee(
                    job_id,
                    ("summon",),
                    "done",
                    error="no committee contract: a referee key decides",
                )
                return
            info = committee.committee(job_id)
            if info.size == 0:
                if jm.jobs(job_id).state != JobState.DISPUTED:
                    self.journal.set_committee(
                        job_id, ("summon",), "done", error="dispute ended before a committee"
                    )
                    return
                try:
                    if committee.request_block(job_id) == 0:
                        committee.request_committee(job_id)
                    elif self.network().backend.block_number() > committee.request_block(job_id):
                        committee.draw_committee(job_id)
                    else:
                        self._next_block()
                except ContractRevert as exc:
                    log.debug("job %d: committee request/draw reverted: %s", job_id, exc.reason)
                return
            members = committee.members(job_id)
        seated = self.address.lower() in {m.lower() for m in members}
        self.journal.set_committee(
            job_id, ("summon",), "seated" if seated else "done", dispute_round=info.dispute_round,
            deadline=info.deadline, threshold=info.threshold, members=json.dumps(members),
        )  # fmt: skip
        if seated:
            log.info("job %d: seated on its dispute committee (%d members, %d signatures needed)",
                     job_id, len(members), info.threshold)  # fmt: skip

    def _proving_instead(self, job_id: int) -> bool:
        """Before a committee is requested: settle the dispute by an on-chain op proof if there
        is one. True while that is being tried (the parties' evidence is awaited for
        ``_PROOF_GRACE`` seconds after the referral) or once it succeeded; False: go on with
        the committee (none requested yet, or it already was)."""
        from verimesh.node.dispute import replay_game

        posted = self.journal.posted(job_id)
        if not self.proofs.due(job_id) or self.settings.behaviour is not Behaviour.HONEST or posted is None:
            return False
        with self._chain_lock:
            net, committee = self.network(), self.committee_client()
            if getattr(net, "op_referee", None) is None or committee is None:
                return False
            if committee.committee(job_id).size or committee.request_block(job_id):
                return False  # someone requested a committee already: it rules
            state = replay_game(net.job_market, job_id, posted.block)
            if state.job_state != JobState.DISPUTED:
                return False
            endpoints = self._party_endpoints(state)
        bodies, why = self._party_bodies(state, job_id, endpoints)  # no chain lock over HTTP
        if None in bodies:
            referred_at = state.chain.deadline - self.window()
            if self.chain_now() <= referred_at + _PROOF_GRACE:
                return True  # a party may not have ticked past the game's end yet
            self.proofs.give_up(job_id, "; ".join(w for w in why if w))
            return False
        with self._chain_lock:
            return self.proofs.settle(self.network(), job_id, state, (bodies[0], bodies[1]))

    def _next_block(self) -> None:
        """The draw needs a block after the request. A real chain makes one within seconds;
        an idle devnet (anvil mines only on transactions) never would, so ask it to mine one.
        A real chain refuses the devnet call: then we simply wait for its next block."""
        if time.monotonic() - self._nudged < 1.0:
            return
        self._nudged = time.monotonic()
        with suppress(ChainError):
            self.network().backend.advance_time(0)

    def _rule_and_sign(self, seat: Duty) -> None:
        from verimesh.node.dispute import replay_game
        from verimesh.node.evidence import PostedJob, rule, verdict_of
        from verimesh.verify.committee import sign_verdict

        job_id = seat.job_id
        posted = self.journal.posted(job_id)
        if posted is None:
            self.journal.set_committee(
                job_id, ("seated",), "failed", error="JobPosted of the job was never seen"
            )
            return
        with self._chain_lock:
            state = replay_game(self.network().job_market, job_id, posted.block)
            endpoints = self._party_endpoints(state)
        bodies, why = self._party_bodies(state, job_id, endpoints)
        if None in bodies and self.chain_now() < seat.deadline - self.window() // 2:
            log.info(
                "job %d: waiting for dispute evidence (%s)", job_id, "; ".join(w for w in why if w)
            )
            return  # a party may still be computing its trace: ask again next poll
        ruling = rule(state, (bodies[0], bodies[1]), PostedJob(spec_hash=posted.spec_hash, model_root=posted.model_root,
                                                              input_root=posted.input_root),
                      self._leaf_source(state, job_id, endpoints),
                      self._leaf_source(state, job_id, endpoints, tensors=False))  # fmt: skip
        lie = self.settings.behaviour is Behaviour.FALSE_VERDICT
        if not lie and self.proofs.due(job_id):  # a proof settles it at once, no signatures needed
            with self._chain_lock:
                if self.proofs.settle(self.network(), job_id, state, (bodies[0], bodies[1])):
                    self.journal.set_committee(
                        job_id, ("seated",), "done", error="settled by an on-chain op proof"
                    )
                    return
        verdict = verdict_of(ruling, job_id, seat.dispute_round, lie=lie)
        with self._chain_lock:
            domain = self.committee_client().domain()
        sig = sign_verdict(self.signer, verdict, domain, seat.deadline)
        self.journal.add_signature(
            job_id, sig.signer, verdict.model_dump_json(), "0x" + sig.signature.hex()
        )
        self.journal.set_committee(
            job_id, ("seated",), "signed", verdict_json=verdict.model_dump_json()
        )
        log.info("job %d: ruled %s guilty (%s, %.3f s): %s%s", job_id, _guilty_name(verdict.guilty),
                 ruling.method.value, ruling.seconds, "; ".join(ruling.reasons) or "-",
                 " [signed the OPPOSITE: false-verdict adversary]" if lie else "")  # fmt: skip

    def window(self) -> int:
        return self.network().job_market.dispute_round_window()

    def _collect_and_submit(self, seat: Duty) -> None:
        """Exchange signatures with the other members; submit once enough agree with ours;
        after the verdict, report members who signed another one (equivocation)."""
        from verimesh.node.evidence import SignedVerdict
        from verimesh.verify.committee import Verdict, aggregate

        job_id = seat.job_id
        members = json.loads(seat.members)
        mine = self.journal.signatures(job_id)
        own = next((row for row in mine if row[0].lower() == self.address.lower()), None)
        assert own is not None
        signed = SignedVerdict(
            verdict=Verdict.model_validate_json(own[1]), signer=own[0], signature=own[2]
        )
        with self._chain_lock:
            net = self.network()
            others = {
                a: net.registry.members(a).endpoint
                for a in members
                if a.lower() != self.address.lower()
            }
        held = {(a.lower(), v) for a, v, _ in self.journal.signatures(job_id)}
        for address, endpoint in others.items():
            base = f"{endpoint.rstrip('/')}/v1/committee/{job_id}/signatures"
            try:
                if (job_id, address) not in self._delivered:  # hand ours over once it was taken
                    r = self.http.post(
                        base,
                        content=signed.model_dump_json(),
                        headers={"content-type": "application/json"},
                    )
                    if r.status_code == 202:
                        self._delivered.add((job_id, address))
                if any(a == address.lower() for a, _ in held):
                    continue  # we hold this member's signature already
                r = self.http.get(base)
                for item in r.json() if r.status_code == 200 else []:
                    try:
                        self.receive_signature(SignedVerdict.model_validate(item))
                    except (ValueError, LookupError) as exc:
                        log.debug(
                            "job %d: dropped a signature from %s's list: %s", job_id, address, exc
                        )
            except (httpx.HTTPError, ValueError) as exc:
                log.debug("job %d: member %s unreachable: %s", job_id, address, exc)
        with self._chain_lock:
            committee = self.committee_client()
            info = committee.committee(job_id)
            if info.accepted:
                self._report_equivocations(job_id, committee)
                self.journal.set_committee(job_id, ("signed",), "done")
                return
            if self.chain_now() > seat.deadline:
                self.journal.set_committee(
                    job_id, ("signed",), "failed", error="no verdict before the deadline"
                )
                return
            agreeing = [
                signed_row
                for signed_row in self.journal.signatures(job_id)
                if signed_row[1] == seat.verdict_json
            ]
            if len(agreeing) < seat.threshold:
                return
            sigs = [
                SignedVerdict(verdict=signed.verdict, signer=a, signature=sg).as_signature()
                for a, _, sg in agreeing
            ]
            try:
                committee.submit_verdict(
                    aggregate(signed.verdict, seat.deadline, sigs[: len(sigs)])
                )
                log.info(
                    "job %d: submitted the committee verdict (%d signatures)", job_id, len(sigs)
                )
            except ContractRevert as exc:
                log.info("job %d: verdict submission reverted (%s); re-reading", job_id, exc.reason)

    def _report_equivocations(self, job_id: int, committee: Any) -> None:
        """Members whose signature is on another verdict than the accepted one are slashed
        (the reporter earns a bounty). A false-verdict adversary does not report."""
        from verimesh.verify.committee import Verdict

        if self.settings.behaviour is Behaviour.FALSE_VERDICT:
            return
        seat = self.journal.committee(job_id)
        mine = Verdict.model_validate_json(seat.verdict_json)
        if mine.guilty != committee.committee(job_id).guilty:
            log.warning("job %d: the accepted verdict is not ours; we report nobody", job_id)
            return
        # ours is the accepted verdict (honest members sign identical bytes): any other
        # verdict a member signed for this dispute is an equivocation
        for signer, verdict_json, signature in self.journal.signatures(job_id):
            verdict = Verdict.model_validate_json(verdict_json)
            if verdict == mine or committee.slashed(job_id, signer):
                continue
            try:
                committee.report_equivocation(verdict, signer, bytes.fromhex(signature[2:]))
                log.warning(
                    "job %d: reported member %s for signing a false verdict", job_id, signer
                )
            except ContractRevert as exc:
                log.info(
                    "job %d: equivocation report on %s reverted: %s", job_id, signer, exc.reason
                )

    def signatures(self, job_id: int) -> list[Any]:
        from verimesh.node.evidence import SignedVerdict
        from verimesh.verify.committee import Verdict

        return [SignedVerdict(verdict=Verdict.model_validate_json(v), signer=a, signature=sg)
                for a, v, sg in self.journal.signatures(job_id)]  # fmt: skip

    def receive_signature(self, signed: Any) -> None:
        """Keep a member's signature if it verifies (raises ValueError / LookupError if not)."""
        from verimesh.node.evidence import signature_valid

        seat = self.journal.committee(signed.verdict.job_id)
        if seat is None or seat.members is None:
            raise LookupError(
                f"no committee of job {signed.verdict.job_id} is known to this validator (yet)"
            )
        members = {m.lower() for m in json.loads(seat.members)}
        if signed.signer.lower() not in members:
            raise ValueError(f"{signed.signer} is not on job {signed.verdict.job_id}'s committee")
        if signed.verdict.dispute_round != seat.dispute_round:
            raise ValueError(
                f"the verdict is for dispute round {signed.verdict.dispute_round}, not {seat.dispute_round}"
            )
        with self._chain_lock:
            domain = self.committee_client().domain()
        if not signature_valid(domain, signed.verdict, seat.deadline, signed.as_signature()):
            raise ValueError(
                "the signature does not match this verdict, signer and committee deadline"
            )
        self.journal.add_signature(
            signed.verdict.job_id, signed.signer, signed.verdict.model_dump_json(), signed.signature
        )

    def may_read_evidence(self, job_id: int, reader: str) -> bool:
        """The dispute's parties, the requester and any registered validator (committee members
        are validators; our evidence is no secret to them)."""
        with self._chain_lock:
            net = self.network()
            posted = self.journal.posted(job_id)
            if posted is not None and posted.requester.lower() == reader.lower():
                return True
            if reader.lower() in {a.lower() for a in net.job_market.assigned(job_id)}:
                return True
            member = net.registry.members(reader)
        return member.role == Role.VALIDATOR and member.active

    def _withdraw(self) -> None:
        jm = self.network().job_market
        balance = jm.balances(self.address)
        if balance > 0:
            jm.withdraw(balance)
            log.info("withdrew %g VMT", balance / VMT)

    # -- HTTP -----------------------------------------------------------------------------------------
    def info(self) -> dict[str, Any]:
        return {
            "address": self.address,
            "role": "validator",
            "chain_id": self.deployment.chain_id,
            "job_market": self.deployment.contracts.job_market,
            "endpoint": self.settings.public_endpoint,
            "status": self._status,
            "working": self._backoff == 0.0,
            "duties": self.journal.counts(),
            "audit_depth": self.settings.audit_depth,
            "audits": dict(self.audits),
        }

    def start_http(self) -> None:
        import uvicorn

        from verimesh.node.evidence import create_validator_app

        config = uvicorn.Config(create_validator_app(self), host=self.settings.host, port=self.settings.port,
                                log_level="warning", lifespan="off", timeout_graceful_shutdown=2)  # fmt: skip
        self._server = uvicorn.Server(config)
        thread = threading.Thread(target=self._server.run, name="validator-http", daemon=True)
        thread.start()
        deadline = time.monotonic() + 15
        while not self._server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(
                    f"the validator API could not start on {self.settings.host}:{self.settings.port} "
                    "(port in use?); pick another with --port"
                )
            time.sleep(0.01)
        log.info(
            "serving the validator API on http://%s:%d", self.settings.host, self.settings.port
        )

    def stop_http(self) -> None:
        if self._server is not None:
            self._server.should_exit = True


def serve_forever(daemon: ValidatorDaemon, stop: threading.Event) -> None:
    """Start the API, then run the loop until ``stop``; the API stops with it."""
    daemon.start_http()
    try:
        daemon.run(stop)
    finally:
        daemon.stop_http()
        daemon._pool.shutdown(wait=True, cancel_futures=True)
        daemon.journal.close()
        daemon.http.close()


def _guilty_name(code: int) -> str:
    return {1: "the defender", 2: "the challenger", 3: "both parties"}.get(code, f"code {code}")


def _b(hex_value: str | None) -> bytes:
    assert hex_value is not None
    return bytes.fromhex(hex_value[2:])


def _one_line(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:200]
