"""The requester SDK: ``Client(deployment, wallet).submit(...)`` -> ``JobHandle.result()``.

See docs/client.md for the hello world and what happens behind each call.
"""

from verimesh.client.sdk import (
    Client,
    JobFailed,
    JobHandle,
    JobOutput,
    JobStatus,
    JobTimeout,
    Refund,
    ResultError,
    VerificationMode,
    audit,
    replicate,
)
from verimesh.node.jobs import JobSpec, make_spec

__all__ = [
    "Client",
    "JobFailed",
    "JobHandle",
    "JobOutput",
    "JobSpec",
    "JobStatus",
    "JobTimeout",
    "Refund",
    "ResultError",
    "VerificationMode",
    "audit",
    "make_spec",
    "replicate",
]
