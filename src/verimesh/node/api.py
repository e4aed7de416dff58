"""The node's HTTP API (FastAPI; the OpenAPI schema is served at ``/openapi.json``).

Routes:
- ``GET  /v1/info``                  who this node is: address, capabilities, benchmark, prices, models.
- ``GET  /v1/blobs/...``             content-addressed blobs with chunk proofs (``store.http``).
- ``GET  /v1/jobs/{id}``             public progress of a job on this node (step only).
- ``POST /v1/jobs/{id}/input``       the requester uploads spec + input (signed ``Request``
                                      envelope in the ``x-verimesh-envelope`` header).
- ``POST /v1/jobs/{id}/result``      the output, to the job's requester or its drawn validator
                                      (body: signed ``JobResultRequest`` envelope).
- ``POST /v1/jobs/{id}/trace``       dispute evidence: one trace leaf with its Merkle proof and
                                      the op's inputs (body: signed ``DisputeDataRequest``;
                                      ``?tensors=false``: without the inputs, only their hashes).
- ``POST /v1/jobs/{id}/evidence``    this node's final evidence in the job's dispute, once the
                                      bisection found its leaf (``DisputePlayer.evidence_json``;
                                      same signed body and access rule as ``/trace``).

Every bad input is a 4xx whose ``detail`` says what is wrong, and nothing is written for it:
bodies are size-checked before they are read, envelopes are verified (chain, contract,
expiry, signature, then nonce) before anything else, and only then does a handler touch the
journal or the store. Handlers are plain ``def``: chain calls and disk I/O run in the pool.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, ValidationError
from starlette.concurrency import run_in_threadpool

from verimesh import __version__
from verimesh.crypto.envelope import (
    BadSignatureError,
    EnvelopeError,
    ExpiredError,
    ReplayedNonceError,
    Verifier,
)
from verimesh.crypto.messages import DisputeDataRequest, JobResultRequest
from verimesh.crypto.messages import Request as SignedRequest
from verimesh.node.jobs import JobResultBody, JobSpec, JobSpecError, JobUpload
from verimesh.node.journal import Journal
from verimesh.store.http import blob_router
from verimesh.store.local import BlobStore

ENVELOPE_HEADER = "x-verimesh-envelope"
# Uploads carry at most 1 MiB of input (base64: 1.4 MiB); envelopes are < 1 KiB.
MAX_BODY_BYTES = 2 * 1024 * 1024
_MAX_ENVELOPE_HEADER = 4096


class NodeInfo(BaseModel):
    """``GET /v1/info``: what a requester or a peer needs to know about this node."""

    address: str
    chain_id: int
    job_market: str
    endpoint: str
    version: str = __version__
    runtime_version: str
    tasks: list[str]
    capabilities_hash: str = Field(description="the capabilities bytes32 registered on chain")
    benchmark: dict[str, Any] = Field(description="measured at start; what capabilities advertise")
    price: int = Field(description="price per job in token base units, as registered")
    models: list[str] = Field(description="roots of the models this node holds")
    working: bool = Field(description="False while the idle policy keeps the node paused")
    status: str = Field(description="human text: why the node is or is not working")


class JobProgress(BaseModel):
    job_id: int
    step: str
    error: str | None = None
    times: dict[str, float] = Field(default_factory=dict, description="unix time each step was reached")


class AccessDenied(Exception):
    """The signer may not see this (HTTP 403)."""


class Rejected(Exception):
    """A request that is well-formed but cannot be served now; ``status`` is the HTTP code."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


@dataclass
class NodeServices:
    """What the API needs from the daemon (the daemon builds one; tests may build their own)."""

    info: Callable[[], NodeInfo]
    journal: Journal
    store: BlobStore
    verifier: Verifier
    # (job_id, signer, upload) -> None; raises Rejected / JobSpecError
    accept_upload: Callable[[int, str, JobUpload], None]
    # job_id -> addresses besides the requester allowed to read results (drawn validator)
    result_readers: Callable[[int], set[str]]
    # job_id -> addresses allowed to read dispute data (requester, validator, replicas, referee)
    dispute_readers: Callable[[int], set[str]]
    # (job_id, leaf_index, with the input tensors) -> evidence dict; raises Rejected
    dispute_data: Callable[[int, int, bool], dict[str, Any]]
    # job_id -> this node's final dispute evidence (PartyEvidence JSON + party); raises Rejected
    dispute_evidence: Callable[[int], dict[str, Any]] | None = None


_ENVELOPE_STATUS: list[tuple[type[EnvelopeError], int]] = [
    (BadSignatureError, 401),
    (ExpiredError, 401),
    (ReplayedNonceError, 409),
]


def _envelope_error(exc: EnvelopeError) -> HTTPException:
    for cls, status in _ENVELOPE_STATUS:
        if isinstance(exc, cls):
            return HTTPException(status, str(exc))
    return HTTPException(400, str(exc))


def create_app(services: NodeServices) -> FastAPI:
    """The node's ASGI app."""
    app = FastAPI(
        title="verimesh node",
        version=__version__,
        description="A verimesh provider: blobs, job inputs, results and dispute evidence.",
    )

    @app.middleware("http")
    async def limit_body(request: Request, call_next):
        length = request.headers.get("content-length")
        if length is not None:
            if not length.isdigit():
                return JSONResponse({"detail": "content-length is not a number"}, 400)
            if int(length) > MAX_BODY_BYTES:
                return JSONResponse(
                    {"detail": f"body of {length} bytes exceeds the limit of {MAX_BODY_BYTES} bytes"}, 413
                )
        elif request.method in ("POST", "PUT") and "chunked" in request.headers.get("transfer-encoding", ""):
            return JSONResponse({"detail": "send a content-length; chunked bodies are refused"}, 411)
        return await call_next(request)

    app.include_router(blob_router(services.store))

    @app.get("/v1/info", response_model=NodeInfo, tags=["node"])
    def info() -> NodeInfo:
        """Address, capabilities, measured benchmark, price and models held."""
        return services.info()

    @app.get("/v1/jobs/{job_id}", response_model=JobProgress, tags=["jobs"],
             responses={404: {"description": "not a job of this node"}})  # fmt: skip
    def job_progress(job_id: int) -> JobProgress:
        """Where this node is with a job (public: no result, no salt)."""
        duty = _duty(job_id)
        return JobProgress(
            job_id=job_id, step=duty.step, error=duty.error, times=services.journal.step_times(job_id)
        )

    @app.post("/v1/jobs/{job_id}/input", status_code=202, tags=["jobs"],
              responses={400: {}, 401: {}, 403: {}, 404: {}, 409: {}, 413: {}})  # fmt: skip
    async def upload_input(job_id: int, request: Request) -> dict[str, Any]:
        """The requester's spec and input for a job assigned to this node.

        Signed as a whole: header ``x-verimesh-envelope`` = an envelope of
        ``Request(method, path, sha256(body))``; body = ``JobUpload`` JSON.
        """
        body = await request.body()
        signer = verify_signed_request(services.verifier, request, body)
        upload = parse_upload(body)
        try:
            await run_in_threadpool(services.accept_upload, job_id, signer, upload)
        except JobSpecError as exc:
            raise HTTPException(400, str(exc)) from None
        except AccessDenied as exc:
            raise HTTPException(403, str(exc)) from None
        except Rejected as exc:
            raise HTTPException(exc.status, exc.detail) from None
        return {"job_id": job_id, "accepted": True}

    @app.post("/v1/jobs/{job_id}/result", response_model=JobResultBody, tags=["jobs"],
              responses={400: {}, 401: {}, 403: {}, 404: {}, 409: {}})  # fmt: skip
    def job_result(job_id: int, envelope: dict[str, Any]) -> JobResultBody:
        """The output of a job: only for its requester or its drawn validator."""
        verified = _open(envelope, JobResultRequest)
        message = verified.message
        if message.job_id != job_id:
            raise HTTPException(400, f"envelope asks for job {message.job_id}, the URL for job {job_id}")
        if message.requester.lower() != verified.signer.lower():
            raise HTTPException(403, "the envelope's requester field must be its signer")
        duty = _duty(job_id)
        signer = verified.signer.lower()
        if signer != duty.requester.lower() and signer not in {a.lower() for a in services.result_readers(job_id)}:
            raise HTTPException(
                403, f"{verified.signer} is neither the requester nor a validator of job {job_id}"
            )
        if duty.output_root is None or duty.step in ("assigned", "ready", "executed"):
            raise HTTPException(409, f"no result yet: job {job_id} is at step {duty.step!r}; retry after reveal")
        try:
            data = services.store.get(duty.output_root)
        except Exception as exc:  # the blob went missing on disk: say so, do not 500
            raise HTTPException(410, f"output blob of job {job_id} is gone from this node: {exc}") from None
        spec = JobSpec.model_validate_json(duty.spec_json or "{}")
        return JobResultBody(
            job_id=job_id,
            task=spec.task,
            spec=spec,
            output_root=duty.output_root,
            trace_root=duty.trace_root or "",
            step_roots=json.loads(duty.step_roots) if duty.step_roots else None,
            output_b64=base64.b64encode(data).decode(),
            output=json.loads(duty.output_json) if duty.output_json else None,
        )

    @app.post("/v1/jobs/{job_id}/trace", tags=["disputes"],
              responses={400: {}, 401: {}, 403: {}, 404: {}, 409: {}})  # fmt: skip
    def dispute_data(job_id: int, envelope: dict[str, Any], tensors: bool = True) -> dict[str, Any]:
        """One trace leaf of a job with its proof and op inputs (``tensors=false``: without
        the inputs, only their hashes), for a dispute party."""
        verified = _open(envelope, DisputeDataRequest)
        message = verified.message
        if message.job_id != job_id:
            raise HTTPException(400, f"envelope asks for job {message.job_id}, the URL for job {job_id}")
        duty = _duty(job_id)
        allowed = {a.lower() for a in services.dispute_readers(job_id)} | {duty.requester.lower()}
        if verified.signer.lower() not in allowed:
            raise HTTPException(403, f"{verified.signer} is not a party of job {job_id}'s verification")
        if duty.replica != message.replica:
            raise HTTPException(404, f"this node holds replica {duty.replica} of job {job_id}, not {message.replica}")
        try:
            return services.dispute_data(job_id, message.leaf_index, tensors)
        except Rejected as exc:
            raise HTTPException(exc.status, exc.detail) from None

    @app.post("/v1/jobs/{job_id}/evidence", tags=["disputes"],
              responses={400: {}, 401: {}, 403: {}, 404: {}, 409: {}})  # fmt: skip
    def dispute_evidence(job_id: int, envelope: dict[str, Any]) -> dict[str, Any]:
        """This node's final evidence in the dispute of a job (its proven leaf with Merkle
        proofs and op inputs), for the committee; 409 until the bisection found its leaf."""
        verified = _open(envelope, DisputeDataRequest)
        if verified.message.job_id != job_id:
            raise HTTPException(400, f"envelope asks for job {verified.message.job_id}, the URL for job {job_id}")
        duty = _duty(job_id)
        allowed = {a.lower() for a in services.dispute_readers(job_id)} | {duty.requester.lower()}
        if verified.signer.lower() not in allowed:
            raise HTTPException(403, f"{verified.signer} is not a party of job {job_id}'s verification")
        if services.dispute_evidence is None:
            raise HTTPException(404, "this node does not play disputes")
        try:
            return services.dispute_evidence(job_id)
        except Rejected as exc:
            raise HTTPException(exc.status, exc.detail) from None

    def _duty(job_id: int):
        duty = services.journal.job(job_id)
        if duty is None:
            raise HTTPException(404, f"job {job_id} is not assigned to this node (or not seen yet)")
        return duty

    def _open(envelope: dict[str, Any], expect: type):
        try:
            return services.verifier.verify(envelope, expect)
        except EnvelopeError as exc:
            raise _envelope_error(exc) from None
        except Rejected as exc:  # e.g. a contract signer's wallet cannot be read right now
            raise HTTPException(exc.status, exc.detail) from None

    return app


def verify_signed_request(verifier: Verifier, request: Request, body: bytes) -> str:
    """The signer of an HTTP request signed as a whole (header ``x-verimesh-envelope`` = an
    envelope of ``Request(method, path, sha256(body))``), or the HTTP error to answer."""
    raw = request.headers.get(ENVELOPE_HEADER)
    if raw is None:
        raise HTTPException(401, f"missing {ENVELOPE_HEADER} header: sign the request (Client does)")
    if len(raw) > _MAX_ENVELOPE_HEADER:
        raise HTTPException(400, f"{ENVELOPE_HEADER} header is too long")
    try:
        envelope = json.loads(raw)
    except json.JSONDecodeError:
        raise HTTPException(400, f"{ENVELOPE_HEADER} header is not JSON") from None
    try:
        verified = verifier.verify(envelope, SignedRequest)
    except EnvelopeError as exc:
        raise _envelope_error(exc) from None
    except Rejected as exc:  # e.g. a contract signer's wallet cannot be read right now
        raise HTTPException(exc.status, exc.detail) from None
    expected = SignedRequest.for_http(request.method, request.url.path, body)
    if verified.message != expected:
        raise HTTPException(
            401, "the signed request does not match this request (method, path or body changed)"
        )
    return verified.signer


def parse_upload(body: bytes) -> JobUpload:
    """The ``JobUpload`` in a request body, or the 422 to answer."""
    try:
        return JobUpload.model_validate_json(body)
    except ValidationError as exc:
        raise HTTPException(422, f"body is not a valid JobUpload: {_short(exc)}") from None


def _short(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()[:5])
