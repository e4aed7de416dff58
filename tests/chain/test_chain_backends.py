"""The contract layer behaves the same on the in-process EVM and over JSON-RPC (anvil)."""

from __future__ import annotations

import time

import pytest

from verimesh.chain.accounts import dev_signer
from verimesh.chain.backends.boa import BoaBackend
from verimesh.chain.backends.rpc import RpcBackend
from verimesh.chain.contract import ContractClient
from verimesh.chain.devnet import start_anvil
from verimesh.chain.errors import ChainError, ContractRevert

WINDOW = 1_000


@pytest.fixture
def probe(backend, probe_artifacts):
    client, tx = ContractClient.deploy(backend, dev_signer(0), probe_artifacts["Probe"], WINDOW)
    assert tx.receipt.contract_address == client.address
    return client


def test_views_structs_and_imports(probe):
    assert probe.call("owner") == dev_signer(0).address
    assert probe.call("doubled", 21) == 42
    assert probe.call("entry", 7) == {"owner": "0x" + "00" * 20, "value": 0, "note": ""}


def test_transaction_decodes_events_and_charges_gas(probe, backend):
    alice = dev_signer(1)
    before = backend.block_number()
    tx = probe.as_signer(alice).transact("store", 7, 99, "hello")
    ev = tx.event("Stored")
    assert ev.args == {"key": 7, "owner": alice.address, "value": 99, "note": "hello"}
    assert tx.block_number == before + 1
    assert 21_000 < tx.gas_used < 200_000
    assert probe.call("entry", 7) == {"owner": alice.address, "value": 99, "note": "hello"}
    assert probe.call("all_keys") == [7]


def test_revert_reason_is_decoded_for_transactions_and_calls(probe):
    with pytest.raises(ContractRevert, match="probe: value must be positive") as info:
        probe.transact("store", 1, 0, "zero")
    assert info.value.reason == "probe: value must be positive"
    assert info.value.function == "store"
    assert probe.call("all_keys") == []  # nothing changed


def test_time_travel_moves_block_timestamp(probe, backend):
    start = backend.timestamp()
    backend.advance_time(WINDOW + 10)
    assert backend.timestamp() >= start + WINDOW + 10
    with pytest.raises(ContractRevert, match="probe: deadline passed"):
        probe.transact("store", 1, 5, "late")


def test_now_is_the_next_blocks_timestamp(backend):
    assert backend.now() >= backend.timestamp()
    backend.advance_time(WINDOW)
    predicted = backend.now()
    backend.advance_time(0)  # mine the next block
    assert predicted <= backend.timestamp() <= predicted + 5


@pytest.mark.devnet
def test_now_counts_devnet_time_travel_that_no_block_has_shown_yet(anvil):
    backend = RpcBackend(anvil.url)
    latest = backend.timestamp()
    backend._rpc("evm_increaseTime", [50_000])  # anvil: the offset applies from the next block
    assert backend.timestamp() == latest
    predicted = backend.now()
    assert predicted >= latest + 50_000
    assert predicted >= int(time.time()) + 50_000
    backend._rpc("evm_mine", [])
    assert predicted <= backend.timestamp() <= predicted + 5


def test_get_events_by_block_range(probe, backend):
    first = probe.transact("store", 1, 10, "a").block_number
    second = probe.transact("store", 2, 20, "b").block_number
    assert [e["key"] for e in probe.get_events("Stored", first)] == [1, 2]
    assert [e["key"] for e in probe.get_events("Stored", second, second)] == [2]
    assert [e.name for e in probe.get_all_events(first)] == ["Stored", "Stored"]
    assert probe.get_events("Stored", second + 1) == []


def test_payable_value_moves_eth(probe, backend):
    sender = dev_signer(2)
    if hasattr(backend, "set_eth_balance"):
        backend.set_eth_balance(sender.address, 10**18)
    before = backend.eth_balance(probe.address)
    probe.as_signer(sender).transact("deposit", value=12345)
    assert backend.eth_balance(probe.address) == before + 12345


def test_bad_arguments_say_what_to_fix(probe):
    with pytest.raises(ChainError, match="bad arguments for store"):
        probe.transact("store", "seven", 1, "x")
    with pytest.raises(ChainError, match="store takes \\[3\\] arguments, got 1"):
        probe.transact("store", 1)
    with pytest.raises(ChainError, match="has no function 'nope'"):
        probe.call("nope")


def test_transact_without_signer_is_refused(backend, probe):
    reader = ContractClient(backend, probe.address, probe.abi)
    with pytest.raises(ChainError, match="needs a signer"):
        reader.transact("store", 1, 1, "x")


def test_too_little_gas_is_reported_as_out_of_gas(probe):
    with pytest.raises(ContractRevert, match="out of gas") as info:
        probe.transact("store", 3, 1, "x" * 40, gas=40_000)
    assert info.value.function == "store"
    assert probe.call("all_keys") == []


@pytest.mark.devnet
def test_estimated_gas_reverts_before_sending(anvil, probe_artifacts):
    backend = RpcBackend(anvil.url)  # no explicit limit: estimate each transaction
    sender = dev_signer(4)
    probe, _ = ContractClient.deploy(backend, sender, probe_artifacts["Probe"], WINDOW)
    nonce = backend.w3.eth.get_transaction_count(sender.address)
    with pytest.raises(ContractRevert, match="probe: value must be positive"):
        probe.transact("store", 1, 0, "zero")
    assert backend.w3.eth.get_transaction_count(sender.address) == nonce  # nothing was sent
    assert probe.transact("store", 1, 2, "ok").gas_used > 21_000


@pytest.mark.devnet
def test_in_process_gas_matches_the_devnet(anvil, probe_artifacts):
    """BoaBackend charges gas as anvil does, so in-process gas figures mean something."""
    used = []
    for backend in (BoaBackend(), RpcBackend(anvil.url, gas_limit=1_000_000)):
        sender = dev_signer(5)
        probe, deploy_tx = ContractClient.deploy(backend, sender, probe_artifacts["Probe"], WINDOW)
        first = probe.transact("store", 9, 12345, "gas parity").gas_used
        overwrite = probe.transact("store", 9, 1, "").gas_used  # refunds for cleared storage
        used.append((deploy_tx.gas_used, first, overwrite))
    assert used[0] == used[1]


def test_calling_an_address_without_code_says_so(backend, probe):
    ghost = ContractClient(backend, "0x" + "12" * 20, probe.abi)
    with pytest.raises(ChainError, match="no contract at 0x1212"):
        ghost.call("doubled", 2)


@pytest.mark.devnet
def test_a_stopped_node_is_a_clear_error():
    node = start_anvil()
    backend = RpcBackend(node.url)
    node.stop()
    with pytest.raises(ChainError, match=f"the node at {node.url} does not answer"):
        backend.block_number()
    with pytest.raises(ChainError, match="no EVM node answers"):
        RpcBackend(node.url)
