"""What a job is, between the requester, the chain and the provider.

A job is a ``JobSpec`` = (model_root, input_root, task, params, runtime_version). Its hash
(sha256 of the spec's canonical JSON) is the ``spec_hash`` posted on chain with the model and
input roots, so the chain pins exactly what was asked for.

How the provider gets the spec and the input (the design, and why):
the requester posts the job, learns on chain which providers were drawn, and UPLOADS
``JobUpload(spec, input)`` to each of them (``POST /v1/jobs/{id}/input``, an EIP-712 signed
request). The provider accepts it only if the signer is the job's requester on chain, the
spec hashes to the posted ``spec_hash`` and the input bytes hash to the posted
``input_root``; then it stores both before answering. Uploading beats a blob server in the
SDK: requesters behind NAT or in a notebook need no open port, and the provider gets the
input in one round trip instead of polling somebody else's server. Inputs are small (text),
models are big: models are blobs the provider holds or fetches from its peers by root.

The input blob is canonical JSON of the input: a string (generation prompt) or a list of
strings (texts to embed). The output blob is what ``run_job`` committed to as
``output_root`` (``output_bytes``).
"""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from verimesh.crypto.merkle import blob_root
from verimesh.models.store import ModelStore
from verimesh.store.fetch import fetch
from verimesh.store.local import BlobStore

HexRoot = Annotated[str, Field(pattern=r"^0x[0-9a-f]{64}$", description="0x + 64 lowercase hex")]
# Tasks the runtime knows; the models' ``run_job`` refuses anything else.
TASKS = ("embed", "generate")
RUNTIME_VERSION = "verimesh-runtime/1"
# Inputs are text: 1 MiB of it is far beyond any prompt or embedding batch we serve.
MAX_INPUT_BYTES = 1024 * 1024
ParamValue = int | str | bool | list[int] | list[str] | None


class JobSpecError(ValueError):
    """A job spec or input that cannot be run as given (the message says what to fix)."""


def canonical_json(value: Any) -> bytes:
    """Sorted keys, no spaces, UTF-8: the one byte form every party hashes."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def hex_root(root: bytes) -> str:
    return "0x" + root.hex()


class JobSpec(BaseModel):
    """One job: which model, on which input, doing what, in which runtime."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    model_root: HexRoot
    input_root: HexRoot
    task: str = Field(description="embed | generate")
    params: dict[str, ParamValue] = Field(default_factory=dict)
    runtime_version: str = RUNTIME_VERSION

    @field_validator("task")
    @classmethod
    def _known_task(cls, task: str) -> str:
        if task not in TASKS:
            raise ValueError(f"unknown task {task!r}: use one of {', '.join(TASKS)}")
        return task

    @field_validator("params")
    @classmethod
    def _no_floats(cls, params: dict[str, ParamValue]) -> dict[str, ParamValue]:
        # Exact execution means exact parameters: a float prints differently across languages.
        for key, value in params.items():
            if isinstance(value, float):
                raise ValueError(f"param {key} is a float; use integers (e.g. temperature_milli=700)")
        return params

    def canonical(self) -> bytes:
        return canonical_json(self.model_dump(mode="json"))

    def hash(self) -> bytes:
        """The ``spec_hash`` posted on chain: sha256 of the canonical JSON."""
        return hashlib.sha256(self.canonical()).digest()

    @property
    def model_root_bytes(self) -> bytes:
        return bytes.fromhex(self.model_root[2:])

    @property
    def input_root_bytes(self) -> bytes:
        return bytes.fromhex(self.input_root[2:])


def encode_input(value: str | list[str]) -> bytes:
    """The input blob: canonical JSON of a prompt (str) or of texts to embed (list of str)."""
    check_input_value(value)
    return canonical_json(value)


def check_input_value(value: Any) -> str | list[str]:
    if isinstance(value, str):
        return value
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return value
    raise JobSpecError("a job input is a string (prompt) or a non-empty list of strings (texts)")


def decode_input(data: bytes) -> str | list[str]:
    """Inverse of ``encode_input``; refuses bytes that are not its canonical output."""
    if len(data) > MAX_INPUT_BYTES:
        raise JobSpecError(f"input is {len(data)} bytes; at most {MAX_INPUT_BYTES} are accepted")
    try:
        value = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise JobSpecError(f"input blob is not UTF-8 JSON: {exc}") from None
    value = check_input_value(value)
    if canonical_json(value) != data:
        raise JobSpecError("input blob is not canonical JSON: build it with encode_input()")
    return value


def make_spec(
    model_root: bytes | str, task: str, input_value: str | list[str], params: dict[str, Any] | None = None
) -> tuple[JobSpec, bytes]:
    """A spec for ``input_value`` and the input blob it points at."""
    data = encode_input(input_value)
    model_hex = model_root if isinstance(model_root, str) else hex_root(model_root)
    spec = JobSpec(
        model_root=model_hex.lower(),
        input_root=hex_root(blob_root(data)),
        task=task,
        params=params or {},
    )
    return spec, data


class JobUpload(BaseModel):
    """Requester -> provider: the spec and input of a job it posted (body of a signed request)."""

    model_config = ConfigDict(extra="forbid")

    spec: JobSpec
    input_b64: str = Field(max_length=(MAX_INPUT_BYTES * 4) // 3 + 8)
    # Base URLs of nodes that hold the model, for a provider that lacks it (may be empty).
    model_peers: list[Annotated[str, Field(max_length=256)]] = Field(default_factory=list, max_length=16)

    @classmethod
    def build(cls, spec: JobSpec, input_bytes: bytes, model_peers: list[str] | None = None) -> JobUpload:
        return cls(spec=spec, input_b64=base64.b64encode(input_bytes).decode(), model_peers=model_peers or [])

    def input_bytes(self) -> bytes:
        try:
            return base64.b64decode(self.input_b64, validate=True)
        except ValueError:
            raise JobSpecError("input_b64 is not valid base64") from None

    def check(self, spec_hash: bytes, input_root: bytes, model_root: bytes) -> bytes:
        """The input bytes if spec and input match what was posted on chain, else an error."""
        if self.spec.hash() != spec_hash:
            raise JobSpecError(
                "spec does not hash to the spec_hash posted on chain: upload the exact JobSpec you posted"
            )
        if self.spec.input_root_bytes != input_root or self.spec.model_root_bytes != model_root:
            raise JobSpecError("spec roots differ from the model/input roots posted on chain")
        data = self.input_bytes()
        if blob_root(data) != input_root:
            raise JobSpecError("input bytes do not hash to the posted input_root")
        decode_input(data)
        return data


class JobResultBody(BaseModel):
    """Provider -> requester/validator: the output blob of a job and the roots it revealed.

    ``output_b64`` (canonical bytes of the output tensor) is what ``output_root`` commits to;
    ``output`` is the provider's decoding of it (embedding floats, generated text), which
    the SDK checks against the tensor wherever it can (see ``client.outputs``).
    """

    job_id: int
    task: str
    spec: JobSpec | None = Field(None, description="the job spec (a validator re-executes it; hashes to spec_hash)")
    output_root: HexRoot
    trace_root: HexRoot
    step_roots: list[HexRoot] | None = Field(
        None,
        description="the roots of the trace's generation steps, in order: their Merkle root "
        "(crypto.merkle.merkle_root) is trace_root, so a validator can re-run single steps "
        "against them instead of the whole job (None: a node that did not publish them)",
    )
    output_b64: str
    output: Any = None

    def output_bytes(self) -> bytes:
        return base64.b64decode(self.output_b64, validate=True)


def publish_models(store: BlobStore, models: ModelStore, roots: list[str]) -> None:
    """Put the served models into the blob store, so peers can fetch them by root.

    The model store keeps one verified file per model; the blob store adds the chunk index
    and proofs the HTTP blob router serves. (A copy on disk: simple, and models are read
    through the model store's file.)
    """
    for root in roots:
        if not store.has(root):
            store.put(models.path_for(bytes.fromhex(root[2:])), pin=True)


def ensure_model(store: BlobStore, models: ModelStore, root: str, peers: list[str]) -> bool:
    """Make sure model ``root`` is in the local model store, fetching it from ``peers``
    (verifying every chunk against the root) when it is not. True if it was fetched."""
    raw = bytes.fromhex(root[2:])
    if models.has(raw):
        return False
    if not peers:
        raise JobSpecError(f"model {root} is not held here and no peer is known to serve it")
    fetch(store, root, peers, pin=True)
    models.put_bytes(store.get(root))
    return True
