"""A committee member's work on one dispute: fetch both parties' evidence, rule, and the
validator's HTTP API where members publish and collect verdict signatures.

Ruling (``rule``), in order, each case deterministic so that every honest member signs the
very same ``Verdict``:
1. a party whose move broke the game's rules (``GameState.violation``) lied: guilty;
2. a party that referred the game to the referee before it was over conceded: guilty;
3. both parties claim the same trace but different outputs: the member reads the job's
   answer off that trace (its answer ops, fetched from the parties, proven under the root
   and recomputed: ``Architecture.answer``) or, if no such leaf is served, re-executes the
   job, and blames whoever claimed another output root;
4. otherwise ``verify.referee.decide`` on both evidences: one op recomputed (when the
   leaves differ in the instruction, the program's instruction there is found from the
   agreed leaves the parties serve), or the program run to the disputed op.
   A party that serves no valid evidence cannot back its claims: guilty.

The job itself (spec + input, for replays) comes with a party's evidence; it is used only
after checking the spec against the chain's ``spec_hash`` and the input against its root.

On-chain op proofs (``provable_wrong_op``, ``OpProofs``): when case 4 recomputes one op and
finds exactly one party's output wrong, and the op is small enough for the EVM
(``chain.op_check_spec.checkable``), nobody needs a committee: ``OpReferee.prove_wrong_op``
checks that leaf under the party's committed trace root, recomputes the op and settles the
dispute. The parties try it as soon as the game ends at its leaf, validators before they
summon a committee and members before they sign; the first proof settles the dispute, the
others revert harmlessly. Whatever cannot be proven (another case, a big op, a revert) goes
to the committee as before.

HTTP (FastAPI, served by ``ValidatorDaemon``):
- ``GET  /v1/info``                           who this validator is and what it is doing.
- ``POST /v1/jobs/{id}/evidence``             our evidence in a dispute we play (signed
                                              ``DisputeDataRequest`` envelope, as on provider nodes).
- ``POST /v1/jobs/{id}/trace``                one leaf of our trace in a dispute we play, with its
                                              proof and inputs (same envelope; as on provider nodes).
- ``GET  /v1/committee/{id}/signatures``      the verdict signatures we hold for a dispute.
- ``POST /v1/committee/{id}/signatures``      a member hands us its signature; it is kept only
                                              if it is a valid EIP-712 signature of a drawn member.
Signatures are self-authenticating (EIP-712 over the whole verdict, checked against the
committee contract's domain), so the signature routes need no envelope.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Protocol

import httpx
from fastapi import FastAPI, HTTPException, Request
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from verimesh import __version__
from verimesh.chain.errors import ContractRevert
from verimesh.crypto.eip712 import Domain, fast_digest
from verimesh.crypto.envelope import EnvelopeError, ecdsa_signature_checker, seal
from verimesh.crypto.merkle import blob_root, leaf_hash
from verimesh.crypto.messages import DisputeDataRequest
from verimesh.node.api import parse_upload, verify_signed_request
from verimesh.node.dispute import GameState
from verimesh.node.jobs import JobSpec, JobSpecError, decode_input, hex_root
from verimesh.node.journal import crash_point
from verimesh.runtime.tensor import canonical_bytes
from verimesh.runtime.trace import OpRecord, TraceProof, verify_trace_proof
from verimesh.verify.bisection import (
    Dispute,
    DisputeError,
    OutcomeKind,
    Party,
    PartyEvidence,
    path_blocks,
)
from verimesh.verify.committee import VERDICT_NONCE, Verdict, VerdictSignature, leaf_index
from verimesh.verify.onchain_op import WrongOp, convicts, wrong_op
from verimesh.verify.referee import ZERO, Method, Ruling, decide
from verimesh.verify.replay import AgreedLeaves, JobRun

if TYPE_CHECKING:
    from verimesh.chain import Network
    from verimesh.node.validator import ValidatorDaemon

log = logging.getLogger("verimesh.evidence")


class PostedJob(BaseModel):
    """What the chain says the job is (``JobPosted``)."""

    spec_hash: str
    model_root: str
    input_root: str


def fetch_evidence(
    http: httpx.Client, signer: Any, domain: Domain, endpoint: str, job_id: int, replica: int = 0
) -> tuple[dict[str, Any] | None, str]:
    """One party's evidence body from its node, or (None, why not)."""
    return _fetch(http, signer, domain, endpoint, "evidence", DisputeDataRequest(job_id=job_id, replica=replica,
                                                                                leaf_index=0))  # fmt: skip


def fetch_leaf(
    http: httpx.Client, signer: Any, domain: Domain, endpoint: str, job_id: int, replica: int, leaf_index: int,
    tensors: bool = True,
) -> tuple[dict[str, Any] | None, str]:
    """One leaf of a party's trace (``/v1/jobs/{id}/trace``; ``tensors=False``: without its
    input tensors), or (None, why not)."""
    return _fetch(http, signer, domain, endpoint, "trace", DisputeDataRequest(job_id=job_id, replica=replica,
                                                                             leaf_index=leaf_index),
                  {} if tensors else {"tensors": "false"})  # fmt: skip


def _fetch(
    http: httpx.Client, signer: Any, domain: Domain, endpoint: str, route: str, request: DisputeDataRequest,
    query: dict[str, str] | None = None,
) -> tuple[dict[str, Any] | None, str]:
    envelope = seal(signer, request, domain)
    try:
        r = http.post(f"{endpoint.rstrip('/')}/v1/jobs/{request.job_id}/{route}", content=envelope.model_dump_json(),
                      headers={"content-type": "application/json"}, params=query)  # fmt: skip
    except httpx.HTTPError as exc:
        return None, f"unreachable: {exc}"
    if r.status_code != 200:
        return None, f"HTTP {r.status_code}: {r.text[:300]}"
    try:
        return r.json(), ""
    except ValueError:
        return None, f"the {route} body is not JSON"


# (party, leaf index counted over all steps) -> that party's /v1/jobs/{id}/trace body, or None
# (with the leaf's input tensors, or, for a source of bare leaves, without)
LeafSource = Callable[[Party, int], "dict[str, Any] | None"]


def agreed_leaves(dispute: Dispute, source: LeafSource) -> AgreedLeaves:
    """The leaves before the first difference of a finished bisection, as either party
    serves them, kept only when proven under that party's committed trace root: such a
    leaf is in both traces (every block before the difference was agreed), so the referee
    may resume from it whoever served it (verify/replay.py). Each leaf is fetched once per
    ruling: the walk and, if it cannot end in a recompute, the resume ask for the same ones."""
    outcome = dispute.outcome

    @functools.cache
    def leaf(leaf_index: int) -> OpRecord | None:
        if outcome is None:
            return None
        return _proven(source, leaf_index, dispute.roots, lambda r: (r.step, r.index) < (outcome.step, outcome.index))

    return leaf


def with_agreed_leaves(run: JobRun, dispute: Dispute, leaves: LeafSource, bare: LeafSource | None = None) -> JobRun:
    """``run`` deciding from the agreed leaves its parties serve: ``leaves`` with their input
    tensors, ``bare`` without them (for the leaves whose hashes are all the walk reads).
    Without ``bare`` the walk reads the same cached leaves as the resume."""
    return replace(run, agreed=agreed_leaves(dispute, leaves),
                   agreed_hashes=None if bare is None else agreed_leaves(dispute, bare))  # fmt: skip


def committed_leaves(trace_root: bytes, source: LeafSource) -> AgreedLeaves:
    """The leaves of the one trace both parties committed to, as either party serves them,
    kept only when proven under that root."""
    return lambda leaf_index: _proven(source, leaf_index, (trace_root, trace_root), lambda r: True)


def _proven(
    source: LeafSource, leaf_index: int, roots: tuple[bytes, bytes], keep: Callable[[OpRecord], bool]
) -> OpRecord | None:
    """Leaf ``leaf_index`` from the first party that serves it proven under its own root."""
    if leaf_index < 0:
        return None
    for party in Party:
        body = source(party, leaf_index)
        try:
            record = OpRecord.from_json(body["record"])  # type: ignore[index]
            proof = TraceProof.from_json(body["proof"])  # type: ignore[index]
        except (TypeError, KeyError, ValueError):
            continue  # nothing served, or not a leaf
        if keep(record) and verify_trace_proof(roots[party], record, proof):
            return record
    return None


def job_from_bodies(
    bodies: list[dict[str, Any] | None], posted: PostedJob
) -> tuple[JobSpec, bytes] | None:
    """The job's spec and input from any party's body, checked against the chain."""
    for body in bodies:
        if not body or not body.get("spec") or not body.get("input_hex"):
            continue
        try:
            spec = JobSpec.model_validate(body["spec"])
            data = bytes.fromhex(body["input_hex"])
        except ValueError:
            continue
        if (hex_root(spec.hash()), spec.model_root, spec.input_root) != (
            posted.spec_hash, posted.model_root, posted.input_root,
        ) or hex_root(blob_root(data)) != posted.input_root:  # fmt: skip
            continue
        return spec, data
    return None


def _ruling(guilty: set[Party], reasons: list[str], state: GameState, started: float,
            method: Method = Method.EVIDENCE, output: bytes = ZERO) -> Ruling:  # fmt: skip
    outcome = state.dispute.outcome if state.dispute is not None else None
    step, index = (outcome.step, outcome.index) if outcome is not None else (0, 0)
    return Ruling(
        frozenset(guilty),
        step,
        index,
        method,
        output,
        tuple(reasons),
        time.process_time() - started,
    )


def rule(
    state: GameState,
    bodies: tuple[dict[str, Any] | None, dict[str, Any] | None],
    posted: PostedJob,
    leaves: LeafSource | None = None,
    bare: LeafSource | None = None,
) -> Ruling:
    """The member's ruling on a referred dispute (module docstring, cases 1-4). ``leaves``
    fetches a leaf of a party's trace with its input tensors, ``bare`` the same without
    them (for leaves whose hashes are all the member reads; default: ``leaves``): the
    agreed leaves an instruction dispute is settled from by one op; without them the
    member fast-forwards or replays."""
    started = time.process_time()
    if state.violation is not None:
        party, why = state.violation
        return _ruling(
            {party}, [f"{party.name.lower()} broke the game's rules: {why}"], state, started
        )
    if state.conceded is not None:
        party = state.conceded
        return _ruling(
            {party}, [f"{party.name.lower()} referred the game before it was over"], state, started
        )
    job = job_from_bodies(list(bodies), posted)
    if state.dispute is None:
        if job is None:
            raise DisputeError(
                "both claim the same trace; a party must serve the job to read its answer off it"
            )
        answer = None
        if leaves is not None and state.defender_root is not None:
            answer = _job_run(*job).answer(committed_leaves(state.defender_root, leaves))
        if answer is not None:  # the trace's answer ops, recomputed
            output_root, method = blob_root(canonical_bytes(answer)), Method.ANSWER
        else:  # no leaf served that holds: the whole job again
            from verimesh.node.execute import execute

            output_root, method = execute(job[0], decode_input(job[1]))[0].output_root, Method.REPLAY
        guilty = {p for p in Party if state.output_roots[p] != output_root}
        return _ruling(guilty, ["claimed another output root than the job's"], state, started, method, output_root)
    evidence: list[PartyEvidence | None] = []
    reasons: list[str] = []
    for party, body in zip(Party, bodies, strict=True):
        try:
            evidence.append(PartyEvidence.from_json(body["evidence"]) if body else None)
        except (DisputeError, KeyError, TypeError) as exc:
            evidence.append(None)
            reasons.append(f"{party.name.lower()}'s evidence is malformed: {exc}")
    dispute = state.dispute
    challenger = evidence[Party.CHALLENGER]
    if state.challenger_root is None and challenger is not None:  # outside challenger
        try:
            root = path_blocks(leaf_hash(challenger.step_root), challenger.step_proof).root
            dispute = state.replayed(root)
        except (DisputeError, ValueError) as exc:
            evidence[Party.CHALLENGER] = None
            reasons.append(f"challenger's evidence is unusable: {exc}")
    missing = {p for p in Party if evidence[p] is None}
    if missing:
        reasons += [f"{p.name.lower()} served no evidence" for p in missing]
        return _ruling(missing, reasons, state, started)
    run = None
    try:
        return decide(dispute, evidence[0], evidence[1])
    except DisputeError:
        if job is None:
            raise
        run = _job_run(*job, claims=served_claims(bodies))
    if leaves is not None:
        run = with_agreed_leaves(run, dispute, leaves, bare)
    return decide(dispute, evidence[0], evidence[1], run)


def served_claims(bodies: Sequence[dict[str, Any] | None]) -> tuple[tuple[int, ...], ...]:
    """The generated tokens each party's served output claims. Unchecked: the referee uses
    one only if the program confirms every token of it (verify/replay.py)."""
    from verimesh.verify.spot import SpotUnavailable, claimed_tokens

    claims = []
    for body in bodies:
        try:
            claims.append(tuple(claimed_tokens(bytes.fromhex(body["output_hex"]))))  # type: ignore[index]
        except (TypeError, KeyError, ValueError, SpotUnavailable):
            continue  # no body, no output served, or not a generation's tokens
    return tuple(claims)


def _job_run(spec: JobSpec, input_bytes: bytes, claims: tuple[tuple[int, ...], ...] = ()) -> JobRun:
    from verimesh.models.api import load_model
    from verimesh.node.execute import job_arguments

    text, params = job_arguments(spec, decode_input(input_bytes))
    return JobRun(load_model(spec.model_root, auto_import=False), spec.task, text, params, claims)


# -- on-chain op proofs --------------------------------------------------------------------------
@dataclass(frozen=True)
class OpProof:
    """A dispute's wrong op (``verify.onchain_op.WrongOp``: the accused, its leaf with input
    tensors, the leaf's proof) and the accused's committed roots, which the contract checks
    the proof against: all ``OpReferee.prove_wrong_op`` takes besides the job."""

    wrong: WrongOp
    output_root: bytes  # revealed by a replica, or reported by the auditing validator
    trace_root: bytes

    @property
    def accused(self) -> Party:
        return Party(int(self.wrong.accused) - 1)


def provable_wrong_op(
    state: GameState, bodies: tuple[dict[str, Any] | None, dict[str, Any] | None]
) -> OpProof | None:
    """The proof that ends this dispute on chain, if there is one: the game ended at a leaf
    with no broken rule and no concession, both parties served evidence, the one-op ruling
    convicts exactly one of them of an op the EVM can recompute (``verify.onchain_op``), that
    party's roots are on chain (an outside challenger's are not) and the leaf checks under
    them as the contract will check it (``convicts``). None otherwise: the committee rules
    (``rule``). Cheap: it never replays the program."""
    dispute = state.dispute
    outcome = dispute.outcome if dispute is not None else None
    if state.violation is not None or state.conceded is not None:
        return None
    if outcome is None or outcome.kind is not OutcomeKind.LEAF or None in bodies:
        return None
    try:
        evidence = [PartyEvidence.from_json(body["evidence"]) for body in bodies]  # type: ignore[index]
    except (DisputeError, KeyError, TypeError):
        return None
    wrong = wrong_op(dispute, evidence[0], evidence[1])  # type: ignore[arg-type]
    if wrong is None:
        return None
    accused = Party(int(wrong.accused) - 1)
    output_root = state.output_roots[accused]
    trace_root = (state.defender_root, state.challenger_root)[accused]
    if output_root is None or trace_root is None:
        return None
    if not convicts(trace_root, wrong.record, wrong.proof):  # what the contract will find
        return None
    return OpProof(wrong, output_root, trace_root)


ASK_EVERY = 1.0  # seconds between requests for the other party's evidence
ASK_FOR = 30.0  # seconds a party asks before leaving the dispute to the committee


class MetaStore(Protocol):
    """The key-value table of a daemon's journal."""

    def get_meta(self, key: str) -> str | None: ...

    def set_meta(self, key: str, value: str) -> None: ...


class OpProofs:
    """One daemon's attempts to end disputes with ``OpReferee.prove_wrong_op``, journaled so
    that a restart neither sends a proof twice nor forgets one.

    Per job, the journal key ``op-proof:{job}`` holds ``sending`` while a transaction is on
    its way, then how the attempt ended (``proved 0x..``, ``reverted: ..``, or ``no proof:
    ..`` when the dispute has none). A life killed while ``sending`` left the chain to say
    what happened: callers only ask while the job is still DISPUTED, and then the proof is
    simply sent again (should the first still land, the second reverts: nothing is lost).
    """

    def __init__(self, journal: MetaStore) -> None:
        self.journal = journal
        self._asked: dict[int, tuple[float, float]] = {}  # job -> (first, last) evidence request

    def may_ask(self, job_id: int) -> bool:
        """Pace the requests for the other party's evidence (one per ``ASK_EVERY`` seconds)."""
        first, last = self._asked.get(job_id, (time.monotonic(), 0.0))
        if time.monotonic() - last < ASK_EVERY:
            return False
        self._asked[job_id] = (first, time.monotonic())
        return True

    def unanswered(self, job_id: int, why: str) -> None:
        """The other party served no evidence; after ``ASK_FOR`` seconds stop asking."""
        first, _ = self._asked.get(job_id, (time.monotonic(), 0.0))
        if time.monotonic() - first > ASK_FOR:
            self.give_up(job_id, f"the other party served no evidence ({why})")

    @staticmethod
    def key(job_id: int) -> str:
        return f"op-proof:{job_id}"

    def outcome(self, job_id: int) -> str | None:
        """How this daemon's attempt on the job ended; None while none ended."""
        value = self.journal.get_meta(self.key(job_id))
        return None if value in (None, "sending") else value

    def due(self, job_id: int) -> bool:
        return self.outcome(job_id) is None

    def give_up(self, job_id: int, why: str) -> None:
        """No proof for this dispute (the committee rules): never look again."""
        self.journal.set_meta(self.key(job_id), f"no proof: {why}"[:500])

    def settle(
        self, net: Network, job_id: int, state: GameState,
        bodies: tuple[dict[str, Any] | None, dict[str, Any] | None], me: Party | None = None,
    ) -> bool:  # fmt: skip
        """Prove the dispute's wrong op on chain if there is one (``provable_wrong_op``), else
        give up on it for good; True if our transaction settled the dispute. ``me``: the
        party we play (a cheat never proves its own op wrong)."""
        proof = provable_wrong_op(state, bodies)
        if proof is None:
            self.give_up(job_id, "not an op the chain can recompute, or not a one-op ruling")
            return False
        if proof.accused is me:
            self.give_up(job_id, "our own op is the wrong one")
            return False
        return self.send(net, job_id, proof)

    def send(self, net: Network, job_id: int, proof: OpProof) -> bool:
        """Send ``proof``; True if this transaction settled the dispute."""
        referee = getattr(net, "op_referee", None)
        if referee is None:
            self.give_up(job_id, "this deployment has no OpReferee")
            return False
        self.journal.set_meta(self.key(job_id), "sending")
        try:
            tx = referee.prove_wrong_op(job_id, int(proof.wrong.accused), proof.wrong.record, proof.wrong.proof,
                                        proof.output_root, proof.trace_root)  # fmt: skip
        except ContractRevert as exc:  # settled already, or the chain disagrees: the committee goes on
            crash_point("after_op_proof_sent")
            self.journal.set_meta(self.key(job_id), f"reverted: {exc.reason}"[:500])
            log.info("job %d: the op proof reverted (%s); the committee path goes on", job_id, exc.reason)
            return False
        crash_point("after_op_proof_sent")
        tx_hash = getattr(tx.receipt, "tx_hash", b"")
        self.journal.set_meta(self.key(job_id), "proved " + (hex_root(tx_hash) if isinstance(tx_hash, bytes) else str(tx_hash)))
        record = proof.wrong.record
        log.warning("job %d: PROVED the %s's op %d/%d (%s) wrong on chain; the dispute is settled", job_id,
                    proof.accused.name.lower(), record.step, record.index, record.op)  # fmt: skip
        return True


def verdict_of(ruling: Ruling, job_id: int, dispute_round: int, lie: bool = False) -> Verdict:
    """The message a member signs; ``lie`` (the ``false-verdict`` adversary) blames the other side."""
    guilty = ruling.guilty_code
    if lie:
        guilty = {1: 2, 2: 1, 3: 2}[guilty]
    return Verdict(job_id=job_id, dispute_round=dispute_round, guilty=guilty,
                   leaf_index=leaf_index(ruling.step, ruling.index), recomputed_output=ruling.recomputed_output)  # fmt: skip


def signature_valid(domain: Domain, verdict: Verdict, expiry: int, sig: VerdictSignature) -> bool:
    digest = fast_digest(domain, verdict, sig.signer, VERDICT_NONCE, expiry)
    return ecdsa_signature_checker(sig.signer, digest, sig.signature)


# -- HTTP -----------------------------------------------------------------------------------------
class SignedVerdict(BaseModel):
    """A member's verdict signature as exchanged between members (and stored)."""

    verdict: Verdict
    signer: str
    signature: str = Field(pattern=r"^0x[0-9a-fA-F]{130}$", description="65 bytes r||s||v, 0x hex")

    def as_signature(self) -> VerdictSignature:
        return VerdictSignature(signer=self.signer, signature=bytes.fromhex(self.signature[2:]))


def create_validator_app(daemon: ValidatorDaemon) -> FastAPI:
    app = FastAPI(title="verimesh validator", version=__version__,
                  description="A verimesh validator: dispute evidence and committee verdict signatures.")  # fmt: skip

    @app.get("/v1/info", tags=["validator"])
    def info() -> dict[str, Any]:
        """Address, chain, status and duties of this validator."""
        return daemon.info()

    def _reader(job_id: int, envelope: dict[str, Any]) -> DisputeDataRequest:
        """The signed request, once its signer may read this dispute's evidence."""
        try:
            verified = daemon.verifier.verify(envelope, DisputeDataRequest)
        except EnvelopeError as exc:
            raise HTTPException(401, str(exc)) from None
        if verified.message.job_id != job_id:
            raise HTTPException(
                400, f"envelope asks for job {verified.message.job_id}, the URL for job {job_id}"
            )
        if not daemon.may_read_evidence(job_id, verified.signer):
            raise HTTPException(
                403,
                f"{verified.signer} is neither a party nor a validator of job {job_id}'s dispute",
            )
        return verified.message

    @app.post(
        "/v1/jobs/{job_id}/evidence",
        tags=["disputes"],
        responses={400: {}, 401: {}, 403: {}, 404: {}, 409: {}},
    )
    def evidence(job_id: int, envelope: dict[str, Any]) -> dict[str, Any]:
        """Our final evidence in the dispute of a job we play (committee members, the parties)."""
        _reader(job_id, envelope)
        try:
            return daemon.evidence_for(job_id)
        except LookupError as exc:
            raise HTTPException(404, str(exc)) from None
        except (DisputeError, RuntimeError) as exc:
            raise HTTPException(409, str(exc)) from None

    @app.post("/v1/jobs/{job_id}/trace", tags=["disputes"],
              responses={400: {}, 401: {}, 403: {}, 404: {}})  # fmt: skip
    def trace_leaf(job_id: int, envelope: dict[str, Any], tensors: bool = True) -> dict[str, Any]:
        """One leaf of our trace (``leaf_index`` of the signed request, counted over all
        steps) with its proof and input tensors (``tensors=false``: only their hashes), as
        provider nodes serve theirs: a member asks for the agreed leaves before the disputed
        op."""
        message = _reader(job_id, envelope)
        try:
            return daemon.leaf_for(job_id, message.leaf_index, tensors)
        except LookupError as exc:  # no dispute of ours, or a leaf past our trace's end
            raise HTTPException(404, str(exc)) from None

    @app.post("/v1/jobs/{job_id}/input", status_code=202, tags=["audits"],
              responses={400: {}, 401: {}, 403: {}, 404: {}, 422: {}})  # fmt: skip
    async def upload_input(job_id: int, request: Request) -> dict[str, Any]:
        """The requester's spec and input of a job this validator was drawn to audit (signed
        like a node's upload), so that a provider cannot stall the audit by withholding them."""
        body = await request.body()
        signer = verify_signed_request(daemon.verifier, request, body)
        upload = parse_upload(body)
        try:
            await run_in_threadpool(daemon.accept_upload, job_id, signer, upload)
        except JobSpecError as exc:
            raise HTTPException(400, str(exc)) from None
        except PermissionError as exc:
            raise HTTPException(403, str(exc)) from None
        except LookupError as exc:
            raise HTTPException(404, str(exc)) from None
        return {"job_id": job_id, "accepted": True}

    @app.get(
        "/v1/committee/{job_id}/signatures", response_model=list[SignedVerdict], tags=["committee"]
    )
    def signatures(job_id: int) -> list[SignedVerdict]:
        """Every valid member signature we hold for the dispute of ``job_id``."""
        return daemon.signatures(job_id)

    @app.post("/v1/committee/{job_id}/signatures", status_code=202, tags=["committee"],
              responses={400: {}, 404: {}})  # fmt: skip
    def receive(job_id: int, signed: SignedVerdict) -> dict[str, Any]:
        """A committee member's signature; kept if it verifies for a drawn member."""
        if signed.verdict.job_id != job_id:
            raise HTTPException(
                400, f"the verdict is for job {signed.verdict.job_id}, the URL for job {job_id}"
            )
        try:
            daemon.receive_signature(signed)
        except LookupError as exc:
            raise HTTPException(404, str(exc)) from None
        except ValueError as exc:
            raise HTTPException(400, str(exc)) from None
        return {"accepted": True}

    return app
