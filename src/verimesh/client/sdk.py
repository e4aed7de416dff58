"""The requester SDK: submit a job, await a result you can trust, or get your money back.

    client = Client.from_devnet("dev1")
    job = client.submit(model="minilm", task="embed", input=["hello world"], mode=replicate(2))
    print(job.result(timeout=120).output)

What ``submit`` does: builds the ``JobSpec`` and input blob; picks the price (``max_price``,
or the lowest price at which enough providers are registered) and the deadlines; approves
the market once (infinite allowance) when needed; posts the job (the chain draws the
providers by stake, price and randomness); uploads spec + input to each drawn provider as
a signed request. ``JobHandle.result`` waits until every replica revealed, pulls the output
from a provider with a signed ``JobResultRequest``, checks it hashes to the revealed
``output_root`` and returns it. If a deadline passes first, it calls ``timeout`` on chain and
raises ``JobFailed`` carrying the refund receipt.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from verimesh.chain import ContractRevert, Deployment, JobState, Mode, Network, Role, Signer
from verimesh.client.outputs import decode_output
from verimesh.crypto.eip712 import Domain
from verimesh.crypto.envelope import seal
from verimesh.crypto.merkle import blob_root
from verimesh.crypto.messages import JobResultRequest
from verimesh.crypto.messages import Request as SignedRequest
from verimesh.crypto.wallet import Wallet, WalletStore
from verimesh.node.jobs import JobResultBody, JobSpec, JobUpload, hex_root, make_spec
from verimesh.runtime.tensor import from_canonical_bytes

ENVELOPE_HEADER = "x-verimesh-envelope"
VMT = 10**18
# Seconds of chain time. The commit window bounds how long a provider may take to fetch the
# model and run the job; the challenge window is the contracts' minimum (60 s).
log = logging.getLogger("verimesh.client")

DEFAULT_COMMIT_WINDOW = 300
AUDITOR_SHARE_SECONDS = 10.0  # how long the SDK retries handing the auditor a job it has not seen yet
DEFAULT_REVEAL_WINDOW = 120
DEFAULT_CHALLENGE_WINDOW = 60
_POLL = 0.02  # seconds between chain polls while waiting: anvil answers in < 1 ms
PRICE_TTL = 30.0  # seconds a read of the providers' prices is reused


@dataclass(frozen=True)
class VerificationMode:
    """How the job is checked: ``audit(p)`` or ``replicate(k)``."""

    mode: Mode
    param: int

    @property
    def replicas(self) -> int:
        return self.param if self.mode == Mode.REPLICATE else 1

    def __str__(self) -> str:
        if self.mode == Mode.AUDIT:
            return f"audit({self.param / 10_000:g})"
        return f"replicate({self.param})"


def audit(p: float) -> VerificationMode:
    """One provider; with probability ``p`` (0..1) a drawn validator recomputes the job."""
    if not 0 <= p <= 1:
        raise ValueError(f"audit probability must be in [0, 1], got {p}")
    return VerificationMode(Mode.AUDIT, round(p * 10_000))


def replicate(k: int) -> VerificationMode:
    """``k`` providers (1..8) run the job; their committed roots must agree."""
    if not 1 <= k <= 8:
        raise ValueError(f"replicate(k) needs 1 <= k <= 8, got {k}")
    return VerificationMode(Mode.REPLICATE, k)


class JobFailed(RuntimeError):
    """The job ended without a result. ``refund`` says what came back and in which tx."""

    def __init__(self, job_id: int, reason: str, refund: Refund | None = None) -> None:
        text = f"job {job_id} failed: {reason}"
        if refund is not None:
            text += (
                f"; refund of {refund.amount / VMT:g} VMT credited to your JobMarket balance "
                f"(tx {refund.tx_hash or 'by someone else'}); it pays for your next job or "
                "can be withdrawn"
            )
        super().__init__(text)
        self.job_id = job_id
        self.reason = reason
        self.refund = refund


class JobTimeout(TimeoutError):
    """``result(timeout)`` ran out while the job is still within its deadlines."""


class ResultError(RuntimeError):
    """No provider served bytes matching the revealed output root."""


class _Unavailable(Exception):
    """A provider could not serve the result now (down, restarting, not ready): ask again."""


class _Lied(Exception):
    """A provider served a result that fails verification: never ask it again for this job."""


@dataclass(frozen=True)
class Refund:
    amount: int
    tx_hash: str | None
    block: int


@dataclass(frozen=True)
class JobOutput:
    """A verified result: ``data`` hashes to ``output_root``, revealed on chain.

    ``output`` is what to read: the embedding (a vector, or one per text of a batch) decoded
    from the verified tensor, or the generated text (the provider's decoding of the
    verified token ids in ``tensor``); see ``client.outputs``.
    """

    job_id: int
    task: str
    data: bytes
    output_root: str
    trace_root: str
    provider: str
    output: Any

    @property
    def tensor(self) -> np.ndarray:
        """The exact output tensor (int32 embeddings at 2^-15, or int64 token ids)."""
        return from_canonical_bytes(self.data)


@dataclass
class JobStatus:
    job_id: int
    state: JobState
    providers: list[str]
    committed: int
    revealed: int
    commit_deadline: int
    reveal_deadline: int
    challenge_deadline: int
    progress: dict[str, str] = field(default_factory=dict)  # provider -> step on its node

    def line(self) -> str:
        n = len(self.providers)
        steps = ", ".join(sorted(set(self.progress.values()))) or "?"
        return (
            f"job {self.job_id}: {self.state.name.lower()} | committed {self.committed}/{n}, "
            f"revealed {self.revealed}/{n} | nodes: {steps}"
        )


class Client:
    """A requester on one deployment, paying and signing with ``wallet``."""

    def __init__(self, deployment: Deployment | Path | str, wallet: Wallet, *, http_timeout: float = 30.0) -> None:
        self.deployment = deployment if isinstance(deployment, Deployment) else Deployment.load(Path(deployment).expanduser())
        self.wallet = wallet
        self.signer = Signer.from_wallet(wallet)
        self.net = Network.connect(self.deployment, self.signer)
        self.domain = Domain(chain_id=self.deployment.chain_id, verifying_contract=self.deployment.contracts.job_market)
        self.http = httpx.Client(timeout=http_timeout)
        self._prices: dict[int, tuple[int, float]] = {}
        self._infinite_allowance = False

    @classmethod
    def from_devnet(cls, account: str = "dev1", state_dir: Path | str | None = None) -> Client:
        """A client for the local devnet (`verimesh devnet up`), paying as a dev account."""
        from verimesh.chain.devnet import default_state_dir

        base = Path(state_dir).expanduser() if state_dir else default_state_dir()
        deployment = Deployment.load(base / "deployment.json")
        wallet = WalletStore(base / "wallets").load(account, deployment.dev_password or "")
        return cls(deployment, wallet)

    def close(self) -> None:
        self.http.close()

    # -- submit -------------------------------------------------------------------------
    def submit(
        self,
        spec: JobSpec | None = None,
        *,
        model: str | None = None,
        task: str | None = None,
        input: str | list[str] | None = None,
        params: dict[str, Any] | None = None,
        input_bytes: bytes | None = None,
        mode: VerificationMode | None = None,
        max_price: int | None = None,
        commit_window: int = DEFAULT_COMMIT_WINDOW,
        reveal_window: int = DEFAULT_REVEAL_WINDOW,
        challenge_window: int = DEFAULT_CHALLENGE_WINDOW,
        upload_budget: float = 30.0,
    ) -> JobHandle:
        """Post a job and hand its input to the drawn providers. Pass a ``JobSpec`` with its
        ``input_bytes``, or the convenience arguments ``model``, ``task``, ``input``, ``params``."""
        mode = mode or replicate(1)
        if spec is None:
            if model is None or task is None or input is None:
                raise ValueError("pass a JobSpec, or model=, task= and input=")
            spec, input_bytes = make_spec(resolve_model(model), task, input, params)
        elif input_bytes is None or blob_root(input_bytes) != spec.input_root_bytes:
            raise ValueError("with a JobSpec pass input_bytes= whose blob_root is spec.input_root")
        jm = self.net.job_market
        price = max_price if max_price is not None else self.market_price(mode.replicas)
        self._ensure_allowance()
        try:
            posted = jm.post_job(
                spec.hash(), spec.model_root_bytes, spec.input_root_bytes, mode.mode, mode.param,
                price, commit_window, reveal_window, challenge_window,
            )  # fmt: skip
        except ContractRevert as exc:
            raise JobFailed(0, f"the market refused the job: {exc.reason}; raise max_price, lower the "
                               "replicas, or retry when providers' bonds of running jobs are released") from None  # fmt: skip
        handle = JobHandle(self, posted.job_id, posted.providers, posted.tx.block_number, spec)
        handle.timings["posted"] = time.time()
        handle.upload(spec, input_bytes, upload_budget)
        handle.timings["uploaded"] = time.time()
        return handle

    def _ensure_allowance(self) -> None:
        """Approve the market once with an infinite allowance (the token never decreases it),
        so each job costs only its post transaction."""
        if self._infinite_allowance:
            return
        jm = self.net.job_market
        if self.net.token.allowance(self.signer.address, jm.address) < 2**255:
            self.net.token.approve(jm.address, 2**256 - 1)
        self._infinite_allowance = True

    def job(self, job_id: int) -> JobHandle:
        """A handle for a job posted earlier (by this wallet), e.g. from another process."""
        jm = self.net.job_market
        providers = jm.assigned(job_id)
        if not providers:
            raise ValueError(f"job {job_id} does not exist on this deployment")
        posted = jm.get_events("JobPosted", self.deployment.block)
        block = next((e.block_number for e in posted if e["job_id"] == job_id), self.deployment.block)
        return JobHandle(self, job_id, providers, block, None)

    def market_price(self, replicas: int) -> int:
        """The lowest price at which ``replicas`` active providers accept jobs (the registry
        is read at most every ``PRICE_TTL`` seconds: one read per job would double its cost)."""
        cached = self._prices.get(replicas)
        if cached is not None and time.monotonic() - cached[1] < PRICE_TTL:
            return cached[0]
        price = self._read_market_price(replicas)
        self._prices[replicas] = (price, time.monotonic())
        return price

    def _read_market_price(self, replicas: int) -> int:
        reg = self.net.registry
        prices = sorted(
            m.price
            for m in (reg.members(a) for a in reg.providers())
            if m.active and m.role == Role.PROVIDER
        )
        if len(prices) < replicas:
            raise JobFailed(0, f"only {len(prices)} active providers are registered; {replicas} needed")
        return prices[replicas - 1]

    def route(self, arena_address: str, last_epochs: int = 3, min_quality_bps: int = 5_000) -> list:
        """Registered providers ranked by quality-adjusted price (arena quality from the
        chain, prices from the registry), best first; pass ``max_price=ranked[0].price`` to
        ``submit`` to offer the best one's price. See ``verimesh.client.routing``."""
        from verimesh.chain.arena import ArenaClient
        from verimesh.chain.compile import load_artifacts
        from verimesh.client.routing import arena_quality, rank_providers

        arena = ArenaClient(self.net.backend, arena_address, load_artifacts(names=["Arena"])["Arena"].abi)
        reg = self.net.registry
        prices = {a: m.price for a in reg.providers() if (m := reg.members(a)).active and m.role == Role.PROVIDER}
        return rank_providers(arena_quality(arena, last_epochs), prices, min_quality_bps)

    def endpoint(self, provider: str) -> str:
        return self.net.registry.members(provider).endpoint.rstrip("/")

    def chain_now(self) -> int:
        return self.net.backend.now()

    def signed_post(self, url: str, path: str, body: bytes) -> httpx.Response:
        envelope = seal(self.wallet, SignedRequest.for_http("POST", path, body), self.domain)
        headers = {ENVELOPE_HEADER: envelope.model_dump_json(), "content-type": "application/json"}
        return self.http.post(url + path, content=body, headers=headers)


class JobHandle:
    """A posted job: ``status()``, ``result(timeout)``."""

    def __init__(self, client: Client, job_id: int, providers: list[str], block: int, spec: JobSpec | None) -> None:
        self.client = client
        self.job_id = job_id
        self.providers = providers
        self.block = block
        self.spec = spec
        self.unreached: list[str] = []  # providers the upload never reached
        self._upload_body: bytes | None = None  # the signed upload's body, for the auditor
        self._auditor_served = False
        # unix time of each client-side milestone (posted, uploaded, revealed, fetched)
        self.timings: dict[str, float] = {}

    def __repr__(self) -> str:
        return f"JobHandle(job_id={self.job_id}, providers={len(self.providers)})"

    def upload(self, spec: JobSpec, input_bytes: bytes, budget: float = 30.0) -> None:
        """Give spec + input to every drawn provider; retries for ``budget`` seconds while a
        node is busy or restarting. A provider that never gets it cannot commit: the job
        then refunds at its commit deadline (``result`` reports it)."""
        body = JobUpload.build(spec, input_bytes).model_dump_json().encode()
        self._upload_body = body  # the drawn auditor gets the same (see _share_with_auditor)
        path = f"/v1/jobs/{self.job_id}/input"
        pending = list(self.providers)
        deadline = time.monotonic() + budget
        pause = 0.05
        while True:
            for provider in list(pending):
                try:
                    r = self.client.signed_post(self.client.endpoint(provider), path, body)
                except httpx.HTTPError:
                    continue
                if r.status_code == 202:
                    pending.remove(provider)
                elif r.status_code < 500 and r.status_code != 404:
                    raise JobFailed(self.job_id, f"provider {provider} refused the input: {_detail(r)}")
            if not pending or time.monotonic() + pause > deadline:
                break
            time.sleep(pause)
            pause = min(2.0, pause * 2)
        self.unreached = pending

    def _share_with_auditor(self) -> None:
        """Hand spec + input to the validator drawn to audit this job (once, best effort).

        The validator re-executes from them; without this a provider could escape its audit
        by refusing the auditor the spec or the input. Only a handle that uploaded the job
        holds them (one re-attached with ``Client.job`` does not).
        """
        if self._upload_body is None or self._auditor_served:
            return
        validator = self.client.net.job_market.audits(self.job_id).validator
        if int(validator, 16) == 0:
            return
        path = f"/v1/jobs/{self.job_id}/input"
        endpoint = self.client.endpoint(validator)
        deadline = time.monotonic() + AUDITOR_SHARE_SECONDS
        while True:  # the auditor may not have read the job's events yet (404): a few tries
            try:
                r = self.client.signed_post(endpoint, path, self._upload_body)
            except httpx.HTTPError:
                r = None
            if (r is not None and r.status_code != 404) or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        if r is None:
            return  # unreachable now: asked again on the next poll
        self._auditor_served = r.status_code == 202 or r.status_code in (400, 403)
        if r.status_code != 202:
            log.warning("job %d: the auditor %s did not take the input: HTTP %d %s",
                        self.job_id, validator, r.status_code, _detail(r))  # fmt: skip

    def status(self, with_nodes: bool = True) -> JobStatus:
        jm = self.client.net.job_market
        job = jm.jobs(self.job_id)
        status = JobStatus(
            job_id=self.job_id, state=job.state, providers=self.providers,
            committed=bin(job.committed_mask).count("1"), revealed=bin(job.revealed_mask).count("1"),
            commit_deadline=job.commit_deadline, reveal_deadline=job.reveal_deadline,
            challenge_deadline=job.challenge_deadline,
        )  # fmt: skip
        if with_nodes:
            for provider in self.providers:
                try:
                    r = self.client.http.get(f"{self.client.endpoint(provider)}/v1/jobs/{self.job_id}", timeout=2)
                    status.progress[provider] = r.json().get("step", "?") if r.status_code == 200 else "unknown"
                except httpx.HTTPError:
                    status.progress[provider] = "unreachable"
        return status

    def wait_revealed(
        self,
        timeout: float | None = None,
        on_status: Callable[[JobStatus], None] | None = None,
        final: bool = False,
    ) -> tuple[str, str]:
        """Block until every replica revealed (or, with ``final``, until the job is settled:
        audit and challenge windows over, any dispute decided); returns (output_root, trace_root)."""
        jm = self.client.net.job_market
        deadline = None if timeout is None else time.monotonic() + timeout
        last_report = 0.0
        ready = (JobState.FINALIZED,) if final else (JobState.REVEALED, JobState.AUDITING, JobState.FINALIZED)
        while True:
            job = jm.jobs(self.job_id)
            if job.state == JobState.AUDITING:
                self._share_with_auditor()
            if job.state in ready:
                return self.revealed_roots()
            if job.state == JobState.REFUNDED:
                raise JobFailed(self.job_id, "a provider missed its deadline, a dispute was annulled or the audit was abandoned",
                                self._refund_record())  # fmt: skip
            if job.state == JobState.DISPUTED and not final:
                raise JobFailed(self.job_id, "replicas disagree; the dispute decides who is paid "
                                             "and you are refunded if no honest result exists")  # fmt: skip
            now = self.client.chain_now()
            missed = (job.state == JobState.ASSIGNED and now > job.commit_deadline) or (
                job.state == JobState.COMMITTED and now > job.reveal_deadline
            )
            if missed:
                raise JobFailed(self.job_id, "a provider missed its deadline", self.claim_refund())
            if on_status and time.monotonic() - last_report > 0.5:
                on_status(self.status())
                last_report = time.monotonic()
            if deadline is not None and time.monotonic() > deadline:
                raise JobTimeout(
                    f"job {self.job_id} is still {job.state.name.lower()} after {timeout} s; call "
                    f"result() again (the reveal deadline is in {max(0, job.reveal_deadline - now)} s; "
                    "after it you are refunded)"
                    if job.state in (JobState.ASSIGNED, JobState.COMMITTED) else
                    f"job {self.job_id} is still {job.state.name.lower()} after {timeout} s; call "
                    "result() again: it settles when its audit and challenge windows close or its "
                    "dispute is decided"
                )  # fmt: skip
            time.sleep(_POLL)

    def revealed_roots(self) -> tuple[str, str]:
        """The roots to fetch: the agreed reveal, or after a dispute the winner's reveal.

        Replicas that reveal different roots never reach REVEALED (the job goes to a
        dispute), so before a dispute every reveal carries the same roots. After one, only
        the roots of the provider the dispute proved right may be accepted: the other
        reveal is a proven lie whose provider still serves bytes that match it. When no
        provider won (a validator proved the only result wrong, or every side was at fault)
        there is no correct result to fetch and the requester has been refunded.
        """
        jm = self.client.net.job_market
        events = [e for e in jm.get_events("Revealed", self.block) if e["job_id"] == self.job_id]
        if not events:
            raise ResultError(f"job {self.job_id} is revealed but no Revealed event was found from block {self.block}")
        resolved = [e for e in jm.get_events("DisputeResolved", self.block) if e["job_id"] == self.job_id]
        if resolved:
            winner = resolved[-1]["winner"].lower()
            won = [e for e in events if e["provider"].lower() == winner]
            if not won:
                raise JobFailed(
                    self.job_id,
                    "a dispute proved the providers' result wrong; the escrow went back to you",
                    self._refund_record(),
                )
            events = won
        return hex_root(events[-1]["output_root"]), hex_root(events[-1]["trace_root"])

    def result(
        self,
        timeout: float | None = 600,
        on_status: Callable[[JobStatus], None] | None = None,
        final: bool = False,
    ) -> JobOutput:
        """The output checked against the roots revealed on chain. By default it comes as soon
        as every replica revealed (replicas agree; an audit or a challenge may still prove it
        wrong, which slashes the provider and refunds you). ``final=True`` waits until the job
        is settled and returns only a result no dispute can overturn any more (after a dispute,
        the winner's). Raises ``JobFailed`` (with the refund), ``JobTimeout``, or
        ``ResultError`` when no provider serves matching bytes within ``timeout``."""
        started = time.monotonic()
        output_root, trace_root = self.wait_revealed(timeout, on_status, final)
        self.timings["revealed"] = time.time()
        liars: set[str] = set()  # served bytes that do not match: never asked again
        pause = 0.05
        while True:
            problems: list[str] = []
            for provider in self.providers:
                if provider in liars:
                    continue
                try:
                    output = self._fetch(provider, output_root, trace_root)
                except _Unavailable as exc:
                    problems.append(f"{provider}: {exc}")
                    continue
                except _Lied as exc:
                    problems.append(f"{provider}: {exc}")
                    liars.add(provider)
                    continue
                self.timings["fetched"] = time.time()
                return output
            # Providers that are restarting or briefly unreachable: ask again until the timeout.
            out_of_time = timeout is not None and time.monotonic() - started + pause > timeout
            if len(liars) == len(self.providers) or out_of_time:
                raise ResultError(f"no provider served job {self.job_id}'s output: " + "; ".join(problems))
            time.sleep(pause)
            pause = min(2.0, pause * 2)

    def _fetch(self, provider: str, output_root: str, trace_root: str) -> JobOutput:
        """Ask one provider for the output (a fresh signed request each time: nonces are
        single-use). Raises ``_Unavailable`` (ask again later) or ``_Lied`` (never again)."""
        envelope = seal(
            self.client.wallet,
            JobResultRequest(job_id=self.job_id, requester=self.client.signer.address),
            self.client.domain,
        )
        url = f"{self.client.endpoint(provider)}/v1/jobs/{self.job_id}/result"
        try:
            r = self.client.http.post(url, content=envelope.model_dump_json(), headers={"content-type": "application/json"})
        except httpx.HTTPError as exc:
            raise _Unavailable(str(exc) or type(exc).__name__) from None
        if r.status_code != 200:
            raise _Unavailable(f"HTTP {r.status_code} {_detail(r)}")
        try:
            served = JobResultBody.model_validate_json(r.content)
            data = served.output_bytes()
        except ValueError as exc:
            raise _Lied(f"malformed result body ({str(exc)[:200]})") from None
        if hex_root(blob_root(data)) != output_root:
            raise _Lied("served bytes that do not hash to the revealed output root")
        try:
            output = decode_output(served.task, from_canonical_bytes(data), served.output)
        except ValueError as exc:
            raise _Lied(f"output blob is not a canonical tensor ({exc})") from None
        return JobOutput(self.job_id, served.task, data, output_root, trace_root, provider, output)

    def claim_refund(self) -> Refund:
        """Call ``timeout`` on chain (after a missed deadline) and return the refund."""
        jm = self.client.net.job_market
        try:
            tx = jm.timeout(self.job_id)
        except ContractRevert as exc:
            if "no missed deadline" in (exc.reason or "") and jm.jobs(self.job_id).state == JobState.REFUNDED:
                return self._refund_record()  # someone else (a provider) was faster
            raise
        event = tx.event("Refunded", jm.address)
        return Refund(event["amount"], "0x" + tx.receipt.tx_hash.hex(), tx.block_number)

    def _refund_record(self) -> Refund:
        jm = self.client.net.job_market
        # A timed-out job logs Refunded; a job settled by a dispute logs what went back to
        # the requester in Finalized.refunded.
        for name, amount_field in (("Refunded", "amount"), ("Finalized", "refunded")):
            for e in jm.get_events(name, self.block):
                if e["job_id"] == self.job_id:
                    tx = "0x" + e.tx_hash.hex() if isinstance(e.tx_hash, bytes) else e.tx_hash
                    return Refund(e[amount_field], tx, e.block_number)
        return Refund(0, None, 0)


def resolve_model(name_or_root: str) -> str:
    """A model root (0x hex) from a root or a name in the local model store."""
    text = name_or_root.strip()
    if text.startswith("0x") and len(text) == 66:
        return text.lower()
    from verimesh.models.store import ModelStore

    return hex_root(ModelStore().resolve(text))


def _detail(r: httpx.Response) -> str:
    try:
        return str(r.json().get("detail", r.text))[:300]
    except (json.JSONDecodeError, ValueError, AttributeError):
        return r.text[:300]


__all__ = [
    "Client",
    "JobFailed",
    "JobHandle",
    "JobOutput",
    "JobStatus",
    "JobTimeout",
    "Refund",
    "ResultError",
    "VerificationMode",
    "audit",
    "replicate",
]
