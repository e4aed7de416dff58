"""Errors raised by the chain layer.

Every backend maps its own failure types onto these few classes, so code above the chain
layer (nodes, SDK, CLI) handles a revert the same way whether it ran in-process or on a
devnet.
"""

from __future__ import annotations


class ChainError(Exception):
    """Base class: something on the chain side failed; the message says what to do."""


class ContractRevert(ChainError):
    """A call or transaction was reverted by a contract.

    ``reason`` is the contract's revert string (``"job_market: deadline passed"``) when the
    contract gave one, else a short description (``"out of gas"``, ``"no reason given"``).
    A reverted transaction moves no token, so the caller may fix the input and retry.
    """

    def __init__(self, reason: str, *, function: str | None = None, data: bytes = b"") -> None:
        self.reason = reason
        self.function = function
        self.data = data
        where = f"{function}: " if function else ""
        super().__init__(f"{where}reverted: {reason}")


class CompileError(ChainError):
    """A Vyper source did not compile; the message carries the compiler's diagnostic."""


class DeploymentError(ChainError):
    """deployment.json is missing, malformed, or points at a chain that does not match it."""


class DevnetError(ChainError):
    """The local devnet node could not be found, started, reached or stopped."""
