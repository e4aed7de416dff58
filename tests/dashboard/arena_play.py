"""Play settled arena epochs on a chain with given score vectors (no models: the dashboard
tests only need an arena with history; real-model arenas are tested in tests/market)."""

from __future__ import annotations

from verimesh.chain.accounts import Signer
from verimesh.chain.arena import ArenaClient
from verimesh.chain.compile import load_artifacts
from verimesh.chain.contract import checksum
from verimesh.chain.lifecycle import VMT
from verimesh.market.arena_epoch import settlement_from_history

EPOCH, COMMIT, WINDOW = 200, 120, 20


def deploy_arena(net, owner: Signer, slots: int = 4) -> ArenaClient:
    art = load_artifacts(names=["Arena"])["Arena"]
    arena, _ = ArenaClient.deploy(
        net.backend, owner, art, net.token.address, checksum(owner.address), b"\x01" * 32, b"\x02" * 32,
        slots, 10 * VMT, 10 * VMT, 1, EPOCH, COMMIT, VMT, WINDOW,
    )
    return arena


def play_epochs(net, arena: ArenaClient, owner: Signer, providers: list[Signer], validators: list[Signer],
                score_rows: list[list[int]]) -> None:
    """Providers and validators join; one epoch per row of ``score_rows`` (every validator
    reveals that row), each funded with 10 VMT, then all settled and finalized."""
    for who in [owner, *providers, *validators]:
        net.token.approve(arena.address, 2**255, signer=who)
    for p in providers:
        arena.register_provider(10 * VMT, signer=p)
    for v in validators:
        arena.register_validator(10 * VMT, signer=v)
    genesis = arena.call("genesis")
    epochs = []
    for row in score_rows:
        epoch = (net.backend.timestamp() - genesis) // EPOCH
        if (net.backend.timestamp() - genesis) % EPOCH >= COMMIT - 5:
            epoch += 1
            net.backend.advance_time(genesis + epoch * EPOCH - net.backend.timestamp())
        arena.fund(epoch, 10 * VMT, signer=owner)
        vector = row + [0] * (arena.max_providers() - len(row))
        salts = [arena.commit_scores(epoch, vector, signer=v)[1] for v in validators]
        net.backend.advance_time(genesis + epoch * EPOCH + COMMIT - net.backend.timestamp())
        for v, salt in zip(validators, salts, strict=True):
            arena.reveal_scores(epoch, vector, salt, signer=v)
        net.backend.advance_time(genesis + (epoch + 1) * EPOCH - net.backend.timestamp())
        epochs.append(epoch)
    for epoch in epochs:
        arena.post_settlement(epoch, settlement_from_history(arena, epoch), signer=owner)
    net.backend.advance_time(WINDOW)
    for epoch in epochs:
        arena.finalize(epoch, settlement_from_history(arena, epoch), signer=owner)
