"""A reveal always has the gas it needs, whichever replica's reveal lands last.

The last reveal of a job closes its reveal phase (compares the replicas' digests and opens a
dispute on a mismatch, or draws the auditor in audit mode), but replicas reveal
concurrently: an estimate taken before the others' reveals land prices a plain reveal.
Reveals are therefore sent with one fixed limit, ``REVEAL_GAS``, that covers the worst case.
"""

from __future__ import annotations

import os
import threading

import pytest

from verimesh.chain.accounts import Signer, dev_signer
from verimesh.chain.backends.base import Backend
from verimesh.chain.backends.boa import BoaBackend
from verimesh.chain.backends.rpc import RpcBackend
from verimesh.chain.client import CONTRACTS, Network
from verimesh.chain.compile import load_artifacts
from verimesh.chain.contract import Tx
from verimesh.chain.deploy import deploy_network, fund_accounts
from verimesh.chain.devnet import start_anvil
from verimesh.chain.job_market import REVEAL_GAS, JobState, Mode, commitment
from verimesh.chain.lifecycle import CAPABILITIES, VMT, WINDOW, register_providers
from verimesh.chain.registry import Role

OUTPUT, TRACE, OTHER_TRACE = b"\x0a" * 32, b"\x0b" * 32, b"\x0c" * 32
SALT = os.urandom(32)
MARGIN = 1.2  # REVEAL_GAS stays this far above the worst reveal measured here


def _network(backend: Backend, artifact_cache, providers: int) -> tuple[Network, Signer, dict[str, Signer]]:
    deployer, requester = dev_signer(0), dev_signer(1)
    net = deploy_network(backend, deployer, artifacts=load_artifacts(cache_dir=artifact_cache, names=CONTRACTS))
    signers = [dev_signer(2 + i) for i in range(providers)]
    fund_accounts(net, deployer, [requester.address, *(p.address for p in signers)], 100_000 * VMT)
    register_providers(net, signers, 10_000 * VMT, price=5 * VMT)
    net.token.approve(net.job_market.address, 100_000 * VMT, signer=requester)
    return net, requester, {p.address: p for p in signers}


def _committed_job(net: Network, requester: Signer, providers: dict[str, Signer], mode: Mode, param: int,
                   price: int = 5 * VMT, odd_one_out: bool = False) -> tuple[int, list[str], dict[str, bytes]]:
    """A posted job whose replicas all committed; with ``odd_one_out`` the last replica's
    trace differs from the others' (its reveal then opens a dispute)."""
    jm = net.job_market
    posted = jm.post_job(os.urandom(32), b"\x01" * 32, b"\x02" * 32, mode, param, price, WINDOW, WINDOW, WINDOW,
                         signer=requester)
    traces = {a: TRACE for a in posted.providers}
    if odd_one_out:
        traces[posted.providers[-1]] = OTHER_TRACE
    for a in posted.providers:
        jm.commit(posted.job_id, commitment(posted.job_id, a, OUTPUT, traces[a], SALT), signer=providers[a])
    return posted.job_id, posted.providers, traces


def _reveal_all(net: Network, job_id: int, order: list[str], traces: dict[str, bytes],
                providers: dict[str, Signer]) -> list[Tx]:
    return [net.job_market.reveal(job_id, OUTPUT, traces[a], SALT, signer=providers[a]) for a in order]


def test_a_last_reveal_that_opens_a_dispute_among_eight_replicas_fits_the_reveal_gas(artifact_cache):
    net, requester, providers = _network(BoaBackend(), artifact_cache, providers=8)
    job_id, order, traces = _committed_job(net, requester, providers, Mode.REPLICATE, 8, odd_one_out=True)
    txs = _reveal_all(net, job_id, order, traces, providers)
    assert net.job_market.jobs(job_id).state == JobState.DISPUTED
    assert txs[-1].gas_used > 2 * txs[0].gas_used  # the closing reveal does much more
    assert txs[-1].gas_used * MARGIN <= REVEAL_GAS


def test_a_last_reveal_that_scans_the_whole_validator_window_fits_the_reveal_gas(artifact_cache):
    """Audit draws scan up to 32 validators; here all but one cannot cover the bond, so the
    scan is long whatever the seed, and the longest of many draws is kept."""
    net, requester, providers = _network(BoaBackend(), artifact_cache, providers=1)
    price = 60 * VMT
    bond = net.job_market.bond_for(price)
    validators = [dev_signer(10 + i) for i in range(33)]
    fund_accounts(net, dev_signer(0), [v.address for v in validators], 100_000 * VMT)
    for i, v in enumerate(validators):
        stake = 50 * bond if i == len(validators) - 1 else net.registry.min_validator_stake()
        assert i == len(validators) - 1 or stake < bond
        net.token.approve(net.registry.address, stake, signer=v)
        net.registry.register(Role.VALIDATOR, stake, "http://127.0.0.1:9100", CAPABILITIES, 0, signer=v)
    used = []
    for _ in range(40):
        job_id, order, traces = _committed_job(net, requester, providers, Mode.AUDIT, 10_000, price=price)
        (tx,) = _reveal_all(net, job_id, order, traces, providers)
        used.append(tx.gas_used)
        # AUDITING, or REVEALED when the 32 entries scanned were all short of the bond
        assert net.job_market.jobs(job_id).state in (JobState.AUDITING, JobState.REVEALED)
    # some draws scanned far: a scan of one entry costs ~97k, of the whole window ~287k. The
    # scan starts at a random offset, so over 40 draws the longest is 25 entries or more (>=
    # 2 x the shortest) except with odds below 1e-4; 3 x failed once (the ~97k + 32 x 6k
    # window is just under 3 x a one-entry scan)
    assert max(used) > 2 * min(used)
    assert max(used) * MARGIN <= REVEAL_GAS


@pytest.mark.devnet
def test_replicas_revealing_in_the_same_block_all_reveal_first_try(artifact_cache, tmp_path):
    """replicate(3) on anvil without a configured gas limit (gas is estimated, as on a real
    chain): the three reveals wait in the pool and are mined in one block, so whichever comes
    last closes the reveal phase, here by opening a dispute. None runs out of gas."""
    node = start_anvil(log_path=tmp_path / "anvil.log")
    try:
        backend = RpcBackend(node.url)
        net, requester, providers = _network(backend, artifact_cache, providers=3)
        job_id, order, traces = _committed_job(net, requester, providers, Mode.REPLICATE, 3, odd_one_out=True)
        backend.w3.provider.make_request("evm_setAutomine", [False])
        outcomes: dict[str, object] = {}

        def reveal(address: str) -> None:
            try:
                outcomes[address] = _reveal_all(net, job_id, [address], traces, providers)[0]
            except Exception as exc:
                outcomes[address] = exc

        threads = [threading.Thread(target=reveal, args=(a,)) for a in order]
        for t in threads:
            t.start()
        while int(backend.w3.provider.make_request("txpool_status", [])["result"]["pending"], 16) < len(order):
            if not any(t.is_alive() for t in threads):
                break
            threading.Event().wait(0.01)
        backend.w3.provider.make_request("evm_mine", [])
        for t in threads:
            t.join(timeout=60)
        assert all(isinstance(outcome, Tx) for outcome in outcomes.values()), outcomes
        assert len({outcome.block_number for outcome in outcomes.values()}) == 1  # type: ignore[union-attr]
        assert net.job_market.jobs(job_id).state == JobState.DISPUTED
    finally:
        node.stop()
