"""Typed client of Arena.vy: provider slots, validator commit-reveal, bonded settlement."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from enum import IntEnum

from pydantic import BaseModel, Field

from verimesh.chain.accounts import Signer
from verimesh.chain.contract import ContractClient, Tx, checksum
from verimesh.chain.errors import ChainError

ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"


class SettlementStatus(IntEnum):
    NONE = 0
    POSTED = 1
    CHALLENGED = 2
    FINAL = 3


class ArenaSettlement(BaseModel):
    """The payouts of one epoch as posted on chain (same order as `post_settlement`).

    ``providers[k]`` is the provider of slot k (the zero address for an empty slot), and
    ``provider_rewards[k]``/``ranks[k]`` belong to it.
    """

    providers: list[str]
    provider_rewards: list[int]
    ranks: list[int]
    validators: list[str]
    validator_rewards: list[int]
    carry: int = Field(ge=0)

    def args(self) -> tuple:
        return (
            [checksum(p) for p in self.providers], self.provider_rewards, self.ranks,
            [checksum(v) for v in self.validators], self.validator_rewards, self.carry,
        )

    @property
    def total(self) -> int:
        return sum(self.provider_rewards) + sum(self.validator_rewards) + self.carry


class SettlementRecord(BaseModel):
    status: SettlementStatus
    poster: str
    challenger: str
    digest: bytes
    posted_at: int


class AnswerCommitment(BaseModel):
    """A provider's on-chain promise: these answers to the epoch's pool, made by this model."""

    provider: str
    slot: int
    model_root: bytes
    answers_root: bytes


class ArenaClient(ContractClient):
    """One arena. Amounts are token base units; epochs are numbers since the deploy."""

    # -- views -------------------------------------------------------------------------
    def current_epoch(self) -> int:
        return self.call("current_epoch")

    def max_providers(self) -> int:
        return self.call("max_providers")

    def provider_count(self) -> int:
        return self.call("provider_count")

    def slot_provider(self, slot: int) -> str:
        return self.call("slot_provider", slot)

    def lineup(self) -> list[str]:
        """The provider of every slot (zero address for a free slot)."""
        return [self.slot_provider(k) for k in range(self.max_providers())]

    def provider_stake(self, provider: str) -> int:
        return self.call("provider_stake", checksum(provider))

    def slot_rank(self, slot: int) -> int:
        return self.call("slot_rank", slot)

    def validator_count(self) -> int:
        return self.call("validator_count")

    def validators(self) -> list[str]:
        return [self.call("validator_at", i) for i in range(self.validator_count())]

    def validator_stake(self, validator: str) -> int:
        return self.call("validator_stake", checksum(validator))

    def pool(self, epoch: int) -> int:
        return self.call("pool", epoch)

    def claimable(self, account: str) -> int:
        return self.call("claimable", checksum(account))

    def settle_bond(self) -> int:
        return self.call("settle_bond")

    def challenge_window(self) -> int:
        return self.call("challenge_window")

    def settlement(self, epoch: int) -> SettlementRecord:
        return SettlementRecord.model_validate(self.call("settlements", epoch))

    def score_commitment(self, epoch: int, validator: str, scores: Sequence[int], salt: bytes) -> bytes:
        return self.call("score_commitment", epoch, checksum(validator), list(scores), salt)

    def answer_deadline(self, epoch: int) -> int:
        """Timestamp from which answers to ``epoch``'s pool are refused and its seed may be revealed."""
        return self.call("answer_deadline", epoch)

    def answers(self, epoch: int) -> dict[str, AnswerCommitment]:
        """provider -> its answer commitment of ``epoch`` (from AnswersCommitted events)."""
        return {
            e["provider"]: AnswerCommitment(
                provider=e["provider"], slot=e["slot"], model_root=e["model_root"], answers_root=e["answers_root"]
            )
            for e in self.get_events("AnswersCommitted") if e["epoch"] == epoch
        }  # fmt: skip

    def challenge_seed(self, epoch: int) -> bytes | None:
        """The revealed challenge seed of ``epoch``, or None while it is not revealed."""
        seed = self.call("challenge_seed", epoch)
        return None if seed == bytes(32) else seed

    def revealed_scores(self, epoch: int) -> dict[str, list[int]]:
        """validator -> revealed score vector of ``epoch`` (from ScoresRevealed events)."""
        return {e["validator"]: list(e["scores"]) for e in self.get_events("ScoresRevealed") if e["epoch"] == epoch}

    # -- transactions --------------------------------------------------------------------
    def register_provider(self, stake: int, *, signer: Signer | None = None) -> Tx:
        """Join with ``stake`` (needs a token allowance); may prune a non-immune provider."""
        return self.transact("register_provider", stake, signer=signer)

    def leave(self, *, signer: Signer | None = None) -> Tx:
        return self.transact("leave", signer=signer)

    def register_validator(self, stake: int, *, signer: Signer | None = None) -> Tx:
        return self.transact("register_validator", stake, signer=signer)

    def leave_validator(self, *, signer: Signer | None = None) -> Tx:
        return self.transact("leave_validator", signer=signer)

    def fund(self, epoch: int, amount: int, *, signer: Signer | None = None) -> Tx:
        return self.transact("fund", epoch, amount, signer=signer)

    def commit_answers(
        self, epoch: int, model_root: bytes, answers_root: bytes, *, signer: Signer | None = None
    ) -> Tx:
        """A provider commits the Merkle root of its answers to ``epoch``'s pool."""
        return self.transact("commit_answers", epoch, model_root, answers_root, signer=signer)

    def reveal_seed(self, epoch: int, *, signer: Signer | None = None) -> bytes:
        """Fix ``epoch``'s challenge seed (after its answer window); returns the seed."""
        self.transact("reveal_seed", epoch, signer=signer)
        seed = self.challenge_seed(epoch)
        assert seed is not None
        return seed

    def commit_scores(
        self, epoch: int, scores: Sequence[int], *, salt: bytes | None = None, signer: Signer | None = None
    ) -> tuple[Tx, bytes]:
        """Commit ``scores`` for ``epoch``; returns the tx and the salt to keep for the reveal."""
        signer = signer or self.signer
        if signer is None:
            raise ChainError("commit_scores needs a signer: use .as_signer(account)")
        salt = salt or secrets.token_bytes(32)
        commitment = self.score_commitment(epoch, signer.address, scores, salt)
        return self.transact("commit_scores", epoch, commitment, signer=signer), salt

    def reveal_scores(self, epoch: int, scores: Sequence[int], salt: bytes, *, signer: Signer | None = None) -> Tx:
        return self.transact("reveal_scores", epoch, list(scores), salt, signer=signer)

    def post_settlement(self, epoch: int, settlement: ArenaSettlement, *, signer: Signer | None = None) -> Tx:
        """Post payouts with the settle bond (needs a token allowance)."""
        return self.transact("post_settlement", epoch, *settlement.args(), signer=signer)

    def challenge(self, epoch: int, *, signer: Signer | None = None) -> Tx:
        return self.transact("challenge", epoch, signer=signer)

    def resolve(self, epoch: int, poster_was_right: bool, *, signer: Signer | None = None) -> Tx:
        return self.transact("resolve", epoch, poster_was_right, signer=signer)

    def finalize(self, epoch: int, settlement: ArenaSettlement, *, signer: Signer | None = None) -> Tx:
        return self.transact("finalize", epoch, *settlement.args(), signer=signer)

    def claim(self, *, signer: Signer | None = None) -> Tx:
        return self.transact("claim", signer=signer)
