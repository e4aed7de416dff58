"""The typed messages nodes and clients sign for each other (not the on-chain calls).

Blob chunks are public and self-verifying (Merkle proofs), so fetching them is unsigned.
What is signed: asking for a paid job's result, asking for dispute evidence, and any other
state-changing HTTP request (``Request`` binds method, path and body). Add a new message by
subclassing ``TypedMessage``: the name and the field order become part of the signature.
"""

from __future__ import annotations

import hashlib
from typing import ClassVar

from verimesh.crypto.eip712 import Address, Bytes32, String, TypedMessage, Uint256


class JobResultRequest(TypedMessage):
    """A requester asks a provider for the output of a job it paid for."""

    eip712_type: ClassVar[str] = "JobResultRequest"

    job_id: Uint256
    requester: Address


class DisputeDataRequest(TypedMessage):
    """A party of a dispute (or the referee) asks a provider for one trace leaf and its proof.

    ``replica`` picks the provider's replica in replicate mode (0 in audit mode);
    ``leaf_index`` is the operation index bisection has narrowed the dispute to.
    """

    eip712_type: ClassVar[str] = "DisputeDataRequest"

    job_id: Uint256
    replica: Uint256
    leaf_index: Uint256


class Request(TypedMessage):
    """Any HTTP request signed as a whole: method, path (with query) and sha256 of the body."""

    eip712_type: ClassVar[str] = "Request"

    method: String
    path: String
    body_hash: Bytes32

    @classmethod
    def for_http(cls, method: str, path: str, body: bytes = b"") -> Request:
        """The message for one concrete request; the server rebuilds it from what it got."""
        return cls(method=method.upper(), path=path, body_hash=hashlib.sha256(body).digest())
