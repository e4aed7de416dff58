"""The SDK's failure paths on a real devnet: a provider that never answers costs the
requester nothing (timeout -> refund receipt), and bad requests fail before money moves."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent.parent / "node"))
from daemon_net import dev_wallet, devnet_dir

from verimesh.chain import JobState, Role, Signer
from verimesh.client import Client, JobFailed, JobTimeout, audit, make_spec, replicate

pytestmark = pytest.mark.devnet
MODEL = "0x" + "cd" * 32


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Client]]:
    with devnet_dir(tmp_path_factory.mktemp("client")) as state:
        client = Client(state / "deployment.json", dev_wallet(state, "dev1"))
        try:
            yield state, client
        finally:
            client.close()


def test_no_providers_is_a_clear_error(world) -> None:
    _, client = world
    with pytest.raises(JobFailed, match="only 0 active providers"):
        client.submit(model=MODEL, task="embed", input=["x"], mode=replicate(2))


def test_silent_provider_means_refund_with_receipt(world) -> None:
    state, client = world
    # A provider registered on chain whose node is not running (its endpoint refuses).
    silent = Signer.from_wallet(dev_wallet(state, "dev3"))
    net = client.net
    stake = net.registry.min_provider_stake()
    net.token.approve(net.registry.address, stake, signer=silent)
    net.registry.register(Role.PROVIDER, stake, "http://127.0.0.1:9", b"\x00" * 32, 10**18, signer=silent)

    balance = net.token.balance_of(client.signer.address)
    handle = client.submit(model=MODEL, task="embed", input=["nobody home"], mode=audit(0), upload_budget=0.2)
    assert handle.providers == [silent.address]
    assert handle.unreached == [silent.address]
    escrow = balance - net.token.balance_of(client.signer.address)
    assert escrow == net.job_market.escrow_for(0, 0, 10**18)

    with pytest.raises(JobTimeout, match="still assigned"):
        handle.result(timeout=0.2)
    net.backend.advance_time(301)  # past the commit deadline
    with pytest.raises(JobFailed, match="missed its deadline") as failure:
        handle.result(timeout=10)
    refund = failure.value.refund
    assert refund is not None and refund.tx_hash is not None
    # The escrow plus the silent provider's slashed bond share (the timeout bounty) are credited.
    assert refund.amount >= escrow
    assert net.job_market.jobs(handle.job_id).state == JobState.REFUNDED
    assert net.job_market.balances(client.signer.address) == refund.amount
    # Asking again reports the same refund instead of failing on chain.
    with pytest.raises(JobFailed) as again:
        handle.result(timeout=10)
    assert again.value.refund.amount == refund.amount


def test_modes_and_specs_are_checked(world) -> None:
    _, client = world
    with pytest.raises(ValueError, match="audit probability"):
        audit(1.5)
    with pytest.raises(ValueError, match="replicate"):
        replicate(9)
    with pytest.raises(ValueError, match="unknown task"):
        make_spec(MODEL, "paint", "x")
    with pytest.raises(ValueError, match="input"):
        make_spec(MODEL, "embed", [])
    spec, _data = make_spec(MODEL, "embed", ["a"])
    with pytest.raises(ValueError, match="input_bytes"):
        client.submit(spec, input_bytes=b"other")
    assert spec.hash() == make_spec(MODEL, "embed", ["a"])[0].hash()  # deterministic
