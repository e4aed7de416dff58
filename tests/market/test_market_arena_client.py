"""ArenaClient + compute_settlement against the real Arena.vy on the in-process EVM: an
epoch scored with commit-reveal, settled from the chain's own reveals, paid and claimed."""

from __future__ import annotations

import pytest

from verimesh.chain.accounts import dev_signer
from verimesh.chain.arena import ArenaClient, SettlementStatus
from verimesh.chain.backends.boa import BoaBackend
from verimesh.chain.compile import load_artifacts
from verimesh.chain.errors import ContractRevert
from verimesh.chain.token import TokenClient
from verimesh.market.arena_epoch import compute_settlement

VMT = 10**18
EPOCH, COMMIT, WINDOW, BOND = 1000, 600, 300, 10 * VMT


@pytest.fixture
def chain(pytestconfig):
    arts = load_artifacts(cache_dir=pytestconfig.cache.mkdir("verimesh-artifacts"), names=["Token", "Arena"])
    backend = BoaBackend()
    owner = dev_signer(0)
    token, _ = TokenClient.deploy(backend, owner, arts["Token"], "VMT", "VMT", 18, owner.address)
    arena, _ = ArenaClient.deploy(
        backend, owner, arts["Arena"], token.address, owner.address, b"\x01" * 32, b"\x02" * 32,
        4, 100 * VMT, 100 * VMT, 2, EPOCH, COMMIT, BOND, WINDOW,
    )
    actors = [dev_signer(i) for i in range(1, 8)]
    for a in [owner, *actors]:
        token.mint(a.address, 10_000 * VMT)
        token.approve(arena.address, 2**256 - 1, signer=a)
    return backend, token, arena, owner, actors


def test_epoch_from_commit_to_claim(chain):
    backend, token, arena, owner, actors = chain
    providers, validators = actors[:3], actors[3:6]
    for p in providers:
        arena.register_provider(100 * VMT, signer=p)
    for v, stake in zip(validators, (300, 200, 100), strict=True):
        arena.register_validator(stake * VMT, signer=v)
    arena.fund(0, 900 * VMT, signer=owner)
    rows = [[60, 30, 10, 0], [50, 40, 10, 0], [0, 10, 90, 0]]
    salts = [arena.commit_scores(0, row, signer=v)[1] for v, row in zip(validators, rows, strict=True)]
    backend.advance_time(COMMIT)
    with pytest.raises(ContractRevert, match="arena: reveal does not match the commitment"):
        arena.reveal_scores(0, [1, 1, 1, 0], salts[0], signer=validators[0])
    for v, row, salt in zip(validators, rows, salts, strict=True):
        arena.reveal_scores(0, row, salt, signer=v)
    assert arena.revealed_scores(0) == {v.address: row for v, row in zip(validators, rows, strict=True)}
    backend.advance_time(EPOCH - COMMIT)

    settlement, out, bonds = compute_settlement(arena, 0)
    assert out is not None and settlement.total == 900 * VMT
    assert settlement.provider_rewards[3] == 0  # the empty slot
    poster = actors[6]
    arena.post_settlement(0, settlement, signer=poster)
    assert arena.settlement(0).status is SettlementStatus.POSTED
    backend.advance_time(WINDOW)
    arena.finalize(0, settlement, signer=poster)
    assert arena.pool(1) == settlement.carry
    for p, reward in zip(providers, settlement.provider_rewards[:3], strict=True):
        before = token.balance_of(p.address)
        arena.claim(signer=p)
        assert token.balance_of(p.address) - before == reward
    assert bonds and all(b > 0 for (v, p), b in bonds.items() if v == validators[0].address)


def test_epoch_without_reveals_carries_the_whole_pool(chain):
    backend, _, arena, owner, actors = chain
    arena.register_provider(100 * VMT, signer=actors[0])
    arena.fund(0, 5 * VMT, signer=owner)
    backend.advance_time(EPOCH)
    settlement, out, _ = compute_settlement(arena, 0)
    assert out is None and settlement.carry == 5 * VMT and settlement.validators == []
    arena.post_settlement(0, settlement, signer=actors[1])
    backend.advance_time(WINDOW)
    arena.finalize(0, settlement)
    assert arena.pool(1) == 5 * VMT


def test_epoch_inputs_do_not_change_when_members_join_later(chain):
    backend, _, arena, owner, actors = chain
    arena.register_provider(100 * VMT, signer=actors[0])
    arena.register_validator(150 * VMT, signer=actors[3])
    arena.fund(0, 90 * VMT, signer=owner)
    salt = arena.commit_scores(0, [5, 0, 0, 0], signer=actors[3])[1]
    backend.advance_time(COMMIT)
    arena.reveal_scores(0, [5, 0, 0, 0], salt, signer=actors[3])
    backend.advance_time(EPOCH - COMMIT)
    before, _, _ = compute_settlement(arena, 0)
    # epoch 1: the provider leaves, another joins, the validator leaves, another joins
    arena.leave(signer=actors[0])
    arena.register_provider(100 * VMT, signer=actors[1])
    arena.leave_validator(signer=actors[3])
    arena.register_validator(100 * VMT, signer=actors[4])
    after, _, _ = compute_settlement(arena, 0)
    assert after == before
    assert before.providers[0] == actors[0].address and before.provider_rewards[0] > 0
    assert before.validators == [actors[3].address]


def test_history_replay_gives_the_same_settlement_before_and_after_finalization(chain):
    """Bonds carry across epochs: the settlement of epoch 1 depends on epoch 0's reveals, and
    anyone replaying the chain gets the same numbers, before or after epoch 1 is paid."""
    from verimesh.market.arena_epoch import settlement_from_history

    backend, _, arena, owner, actors = chain
    for p in actors[:2]:
        arena.register_provider(100 * VMT, signer=p)
    validators = actors[3:5]
    for v, stake in zip(validators, (200, 100), strict=True):
        arena.register_validator(stake * VMT, signer=v)
    for epoch, rows in enumerate(([[9, 1, 0, 0], [1, 9, 0, 0]], [[5, 5, 0, 0], [5, 5, 0, 0]])):
        arena.fund(epoch, 100 * VMT + 3, signer=owner)
        salts = [arena.commit_scores(epoch, r, signer=v)[1] for v, r in zip(validators, rows, strict=True)]
        backend.advance_time(COMMIT)
        for v, r, s in zip(validators, rows, salts, strict=True):
            arena.reveal_scores(epoch, r, s, signer=v)
        backend.advance_time(EPOCH - COMMIT)
    first = settlement_from_history(arena, 1)
    alone, _, _ = compute_settlement(arena, 1)  # without epoch 0's bonds: different dividends
    assert first.provider_rewards == alone.provider_rewards
    assert first.validator_rewards != alone.validator_rewards
    # settle epoch 1 before epoch 0: each carry joins the epoch running when it is finalized
    # (1's in epoch 2, 0's in epoch 3), never an epoch already posted
    zero = settlement_from_history(arena, 0)
    arena.post_settlement(1, first, signer=actors[6])
    arena.post_settlement(0, zero, signer=actors[6])
    backend.advance_time(WINDOW)
    arena.finalize(1, first)
    backend.advance_time(EPOCH)
    arena.finalize(0, zero)
    assert arena.pool(0) == arena.pool(1) == 0
    assert (arena.pool(2), arena.pool(3)) == (first.carry, zero.carry)
    assert settlement_from_history(arena, 1) == first
    assert settlement_from_history(arena, 0) == zero
