"""A token and an Arena on the in-process EVM, with funded dev accounts: the world the
real-model arena tests play in."""

from __future__ import annotations

from verimesh.chain.accounts import dev_signer
from verimesh.chain.arena import ArenaClient
from verimesh.chain.backends.boa import BoaBackend
from verimesh.chain.compile import load_artifacts
from verimesh.chain.token import TokenClient

VMT = 10**18
EPOCH, COMMIT, WINDOW, BOND = 1000, 600, 300, 10 * VMT


def arena_world(cache_dir, slots: int = 4):
    arts = load_artifacts(cache_dir=cache_dir, names=["Token", "Arena"])
    backend = BoaBackend()
    owner = dev_signer(0)
    token, _ = TokenClient.deploy(backend, owner, arts["Token"], "VMT", "VMT", 18, owner.address)
    arena, _ = ArenaClient.deploy(
        backend, owner, arts["Arena"], token.address, owner.address, b"\x01" * 32, b"\x02" * 32,
        slots, 100 * VMT, 100 * VMT, 2, EPOCH, COMMIT, BOND, WINDOW,
    )
    actors = [dev_signer(i) for i in range(1, 9)]
    for a in [owner, *actors]:
        token.mint(a.address, 10_000 * VMT)
        token.approve(arena.address, 2**256 - 1, signer=a)
    return backend, token, arena, owner, actors
