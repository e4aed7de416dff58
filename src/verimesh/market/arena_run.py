"""Run an arena with real models, epoch after epoch, on a chain (in-process EVM or devnet).

One epoch, in chain time (E = epoch length, C = commit phase, C/2 = answer deadline):

    [0, C/2)   providers answer the epoch's public pool with their model in the exact
               runtime and commit the Merkle root of their answers (Arena.commit_answers)
    C/2        anyone reveals the challenge seed (Arena.reveal_seed); it picks the scored
               items; providers open those answers with Merkle proofs
    [C/2, C)   validators check the openings against the committed roots, audit a few of
               them by recomputing them with the committed model, score exactly, commit
               their score vectors (Arena.commit_scores)
    [C, E)     validators reveal the score vectors
    after E    anyone posts the consensus settlement (arena_epoch.settlement_from_history)
               with a bond; after the challenge window it is finalized and paid

Providers and validators are played here in one process, each with its own account; what
they exchange off chain (the openings) is a pydantic message, and everything that decides
money goes through the contract.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from pydantic import BaseModel

from verimesh.chain.accounts import Signer
from verimesh.chain.arena import ZERO_ADDRESS, ArenaClient, ArenaSettlement
from verimesh.chain.backends.base import Backend
from verimesh.chain.errors import ContractRevert
from verimesh.market.answers import (
    AnswerOpening,
    AnswerSheet,
    compute_answers,
    decode_embedding,
    verify_openings,
)
from verimesh.market.arena_epoch import settlement_from_history
from verimesh.market.arena_models import load_arena_model
from verimesh.market.challenges import (
    PARTICIPATION,
    Challenge,
    ChallengeError,
    Pool,
    TaskSpec,
    draw,
    draw_challenges,
    epoch_pool,
    opened_items,
    score_answers,
    score_retrieval,
)
from verimesh.models.api import LoadedModel, load_model
from verimesh.models.bundle import root_hex

Log = Callable[[str], None]


class ChainClock:
    """Waits for chain time. ``fast_forward`` moves the chain's clock (in-process EVM or a
    private devnet); otherwise it sleeps in wall time until the chain gets there."""

    def __init__(self, backend: Backend, fast_forward: bool) -> None:
        self.backend, self.fast_forward = backend, fast_forward

    def now(self) -> int:
        """Chain time now. A devnet's latest block can be older than its clock: fast-forward
        mines an empty block first; otherwise wall time is a lower bound (as in the SDK)."""
        if self.fast_forward:
            self.backend.advance_time(0)
            return self.backend.timestamp()
        return max(self.backend.timestamp(), int(time.time()))

    def wait_until(self, timestamp: int) -> None:
        gap = timestamp - self.now()
        if gap <= 0:
            return
        if self.fast_forward:
            self.backend.advance_time(gap)
            return
        time.sleep(gap)
        while self.now() < timestamp:  # the next block carries the new time
            self.backend.advance_time(0)


@dataclass
class ArenaProvider:
    """A provider serving ``model_name`` at ``price`` (token base units per job)."""

    signer: Signer
    model_name: str
    price: int
    sheets: dict[int, AnswerSheet] = field(default_factory=dict)
    _model: LoadedModel | None = None

    @property
    def address(self) -> str:
        return self.signer.address

    @property
    def model(self) -> LoadedModel:
        if self._model is None:
            self._model = load_arena_model(self.model_name)
        return self._model

    def prepare(self, epoch: int, pool: Pool) -> AnswerSheet:
        """Answer the epoch's public pool (ahead of the epoch is fine: the seed comes later)."""
        self.sheets[epoch] = AnswerSheet(compute_answers(self.model, pool.spec, pool.inputs))
        return self.sheets[epoch]

    def commit(self, arena: ArenaClient, epoch: int) -> None:
        arena.commit_answers(epoch, self.model.root, self.sheets[epoch].root, signer=self.signer)

    def open(self, epoch: int, items: list[int]) -> list[AnswerOpening]:
        return self.sheets[epoch].open(items)


class ProviderScore(BaseModel):
    slot: int
    provider: str
    score: int
    audited: int = 0
    failed: str | None = None  # why the provider got 0 (bad opening, failed audit, ...)


@dataclass
class ArenaValidator:
    """A validator: checks openings, audits opened answers by recomputing them with the
    provider's committed model, scores exactly. ``audits`` = how many seed-drawn opened answers
    per provider (None: every opened answer, cheap for embeddings; a cheater that alters even
    one scored answer is then always caught)."""

    signer: Signer
    audits: int | None = None

    @property
    def address(self) -> str:
        return self.signer.address

    def score(
        self, arena: ArenaClient, epoch: int, pool: Pool, challenges: list[Challenge], seed: bytes,
        openings: dict[str, list[AnswerOpening]],
    ) -> list[ProviderScore]:
        committed = arena.answers(epoch)
        out = []
        for slot, provider in enumerate(arena.lineup()):
            if provider == ZERO_ADDRESS:
                continue
            commitment = committed.get(provider)
            if commitment is None:
                out.append(ProviderScore(slot=slot, provider=provider, score=0, failed="no answers committed"))
                continue
            try:
                answers = verify_openings(commitment.answers_root, openings.get(provider, []), pool.answer_count)
                missing = set(opened_items(pool, challenges)) - set(answers)
                if missing:
                    raise ChallengeError(f"answers {sorted(missing)} were not opened")
                audit_seed = seed + bytes.fromhex(provider[2:]) + bytes.fromhex(self.address[2:])
                audited = self._audit(commitment.model_root, pool, answers, audit_seed)
                if pool.spec.name == "embeddings":
                    points = score_retrieval({i: decode_embedding(a) for i, a in answers.items()}, pool, challenges)
                else:
                    points = score_answers({i: a.decode("utf-8") for i, a in answers.items()}, pool, challenges)
            except (ChallengeError, UnicodeDecodeError) as exc:
                out.append(ProviderScore(slot=slot, provider=provider, score=0, failed=str(exc)))
                continue
            out.append(ProviderScore(slot=slot, provider=provider, score=points + PARTICIPATION, audited=audited))
        return out

    def _audit(self, model_root: bytes, pool: Pool, answers: dict[int, bytes], seed: bytes) -> int:
        """Recompute ``audits`` seed-drawn opened answers with the committed model: a provider
        whose answers are not its model's exact outputs (a lookup table, another model) fails."""
        indices = sorted(answers)
        count = len(indices) if self.audits is None else min(self.audits, len(indices))
        if count <= 0:
            return 0
        picks = sorted(indices[k] for k in draw(seed, "audit", len(indices), count))
        model = load_model(root_hex(model_root), auto_import=False)
        inputs = pool.inputs
        recomputed = compute_answers(model, pool.spec, [inputs[i] for i in picks])  # one batch
        for i, expected in zip(picks, recomputed, strict=True):
            if expected != answers[i]:
                raise ChallengeError(f"audit of answer {i}: it is not the output of the committed model")
        return len(picks)


class EpochReport(BaseModel):
    epoch: int
    seed: str
    pool: list[int]
    challenges: list[int]
    scores: dict[str, list[ProviderScore]]  # validator -> scores
    rewards: dict[str, int] = {}  # provider -> reward (after finalization)
    ranks: dict[str, int] = {}  # provider -> 1-based rank by consensus incentive


class ArenaRunReport(BaseModel):
    arena: str
    task: str
    models: dict[str, str]  # provider -> model name
    prices: dict[str, int]  # provider -> price per job
    epochs: list[EpochReport]
    total_rewards: dict[str, int]
    epochs_to_rank_first: dict[str, int | None]  # model -> first epoch (1-based) it ranked first
    seconds_answering: dict[str, float]  # model -> wall seconds answering, all epochs


@dataclass
class ArenaRun:
    """Plays ``epochs`` epochs of ``arena`` for ``providers`` and ``validators``."""

    arena: ArenaClient
    spec: TaskSpec
    providers: list[ArenaProvider]
    validators: list[ArenaValidator]
    funder: Signer
    fund_per_epoch: int
    clock: ChainClock
    log: Log = lambda message: None

    def run(self, epochs: int) -> ArenaRunReport:
        if not self.validators:
            raise ValueError("an arena run needs at least one validator")
        params = {k: self.arena.call(k) for k in ("genesis", "epoch_length", "commit_length", "challenge_window")}
        reports: list[EpochReport] = []
        seconds: dict[str, float] = {}
        pending: list[tuple[int, ArenaSettlement]] = []
        for _ in range(epochs):
            epoch, pool = self._prepare_next_epoch(params, seconds)
            reports.append(self._play(epoch, pool, params))
            self.clock.wait_until(params["genesis"] + (epoch + 1) * params["epoch_length"])
            settlement = settlement_from_history(self.arena, epoch)
            self.arena.post_settlement(epoch, settlement, signer=self.funder)
            pending.append((epoch, settlement))
            self.log(f"epoch {epoch}: settlement posted")
        if pending:
            self.clock.wait_until(self.clock.now() + params["challenge_window"])
        for epoch, settlement in pending:
            self.arena.finalize(epoch, settlement, signer=self.funder)
        for report, (_, settlement) in zip(reports, pending, strict=True):
            live = [(k, p) for k, p in enumerate(settlement.providers) if p != ZERO_ADDRESS]
            report.rewards = {p: settlement.provider_rewards[k] for k, p in live}
            order = sorted(live, key=lambda kp: (-settlement.ranks[kp[0]], kp[0]))
            report.ranks = {p: position for position, (_, p) in enumerate(order, start=1)}
        return self._report(reports, seconds)

    def _prepare_next_epoch(self, params: dict, seconds: dict[str, float]) -> tuple[int, Pool]:
        """Providers answer the next epoch's public pool ahead of time, then the epoch starts.
        An epoch whose answer window would close before the answers are in is skipped."""
        genesis, length, commit = params["genesis"], params["epoch_length"], params["commit_length"]
        margin = max(1, commit // 8)  # time to send the commit transactions
        while True:
            elapsed = self.clock.now() - genesis
            epoch = elapsed // length + (1 if elapsed % length > commit // 4 else 0)
            pool = epoch_pool(self.spec, self.arena.address, epoch)
            for p in self.providers:
                start = time.perf_counter()
                p.prepare(epoch, pool)
                seconds[p.model_name] = seconds.get(p.model_name, 0.0) + time.perf_counter() - start
            if self.clock.now() < genesis + epoch * length + commit // 2 - margin:
                break
            self.log(f"epoch {epoch}: answering took past its answer window; moving to the next epoch")
        self.clock.wait_until(genesis + epoch * length)
        return epoch, pool

    def _play(self, epoch: int, pool: Pool, params: dict) -> EpochReport:
        arena = self.arena
        if self.fund_per_epoch:
            arena.fund(epoch, self.fund_per_epoch, signer=self.funder)
        for p in self.providers:
            try:
                p.commit(arena, epoch)
            except ContractRevert as exc:  # too late: validators score it 0 ("no answers committed")
                self.log(f"epoch {epoch}: {p.model_name} could not commit: {exc.reason}")
                continue
            self.log(f"epoch {epoch}: {p.model_name} committed its answers")
        self.clock.wait_until(arena.answer_deadline(epoch))
        seed = arena.reveal_seed(epoch, signer=self.validators[0].signer)
        challenges = draw_challenges(pool, seed)
        items = opened_items(pool, challenges)
        openings = {p.address: p.open(epoch, items) for p in self.providers}
        scores, salts = {}, {}
        for v in self.validators:
            row = v.score(arena, epoch, pool, challenges, seed, openings)
            vector = [0] * arena.max_providers()
            for s in row:
                vector[s.slot] = s.score
            _, salts[v.address] = arena.commit_scores(epoch, vector, signer=v.signer)
            scores[v.address] = row
        self.log(f"epoch {epoch}: scores committed")
        self.clock.wait_until(params["genesis"] + epoch * params["epoch_length"] + params["commit_length"])
        for v in self.validators:
            vector = [0] * arena.max_providers()
            for s in scores[v.address]:
                vector[s.slot] = s.score
            arena.reveal_scores(epoch, vector, salts[v.address], signer=v.signer)
        return EpochReport(
            epoch=epoch, seed="0x" + seed.hex(), pool=list(pool.items), challenges=[c.item for c in challenges],
            scores=scores,
        )

    def _report(self, reports: list[EpochReport], seconds: dict[str, float]) -> ArenaRunReport:
        models = {p.address: p.model_name for p in self.providers}
        totals = {p.address: sum(r.rewards.get(p.address, 0) for r in reports) for p in self.providers}
        first: dict[str, int | None] = {}
        for p in self.providers:
            first[p.model_name] = next(
                (n for n, r in enumerate(reports, start=1) if r.ranks.get(p.address) == 1), None
            )
        return ArenaRunReport(
            arena=self.arena.address, task=self.spec.name, models=models,
            prices={p.address: p.price for p in self.providers}, epochs=reports, total_rewards=totals,
            epochs_to_rank_first=first, seconds_answering={k: round(v, 2) for k, v in seconds.items()},
        )
