"""EventCursor returns every event once, in order, on both backends."""

from __future__ import annotations

import pytest

from verimesh.chain.accounts import dev_signer
from verimesh.chain.contract import ContractClient
from verimesh.chain.errors import ChainError
from verimesh.chain.follow import EventCursor


@pytest.fixture
def probe(backend, probe_artifacts):
    return ContractClient.deploy(backend, dev_signer(0), probe_artifacts["Probe"], 10_000)[0]


def test_cursor_sees_each_event_once(probe, backend):
    cursor = EventCursor(probe, from_block=backend.block_number() + 1, max_range=2)
    assert cursor.poll() == []
    for key in (1, 2, 3):
        probe.transact("store", key, 10 * key, "x")
    assert [e["key"] for e in cursor.poll()] == [1, 2, 3]  # across several ranges of 2 blocks
    assert cursor.poll() == []
    probe.transact("store", 4, 40, "y")
    assert [e["key"] for e in cursor.poll()] == [4]


def test_cursor_rejects_unknown_event_names(probe):
    with pytest.raises(ChainError, match="no event 'Nope'"):
        EventCursor(probe, names=["Nope"])
