"""End to end on a real anvil devnet: a requester posts an audit(100%) job through the SDK,
a real provider node computes it (honestly or as a cheat), real validator daemons audit,
dispute, rule as a committee and get the liar slashed; the honest side is never slashed."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner
from validator_devnet import start_provider, start_validator, wait_until, wallet

from verimesh.chain import Deployment, JobState, Network, devnet
from verimesh.chain.devnet import free_port
from verimesh.cli import validator as validator_cli
from verimesh.client.sdk import Client, audit
from verimesh.verify.adversary import Behaviour

pytestmark = pytest.mark.devnet


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, artifacts, pytestconfig: pytest.Config):
    """VERIMESH_HOME with the tiny model and the compiled contracts; a fresh devnet."""
    from verimesh.models.registry import bundled
    from verimesh.models.store import ModelStore

    home = tmp_path / "home"
    monkeypatch.setenv("VERIMESH_HOME", str(home))
    shutil.copytree(pytestconfig.cache.mkdir("verimesh-artifacts"), home / "artifacts")
    root = (
        "0x"
        + ModelStore(home / "models")
        .put_bytes(bundled("tiny-shakespeare").build().to_bytes(), "tiny-shakespeare")
        .hex()
    )
    state = tmp_path / "devnet"
    devnet.up(state, port=free_port())
    daemons = []
    try:
        yield state, root, daemons
    finally:
        for d in reversed(daemons):
            d.close()
        devnet.down(state)


def _post(state: Path, root: str):
    client = Client(state / "deployment.json", wallet(state, "dev1"))
    job = client.submit(model=root, task="generate", input="ROMEO:", params={"max_tokens": 3},
                        mode=audit(1.0), challenge_window=300)  # fmt: skip
    return client, job


def _settle(net: Network, job_id: int) -> None:
    """Wait for the committee's verdict (or an annulment)."""
    wait_until(lambda: net.job_market.jobs(job_id).state in (JobState.FINALIZED, JobState.REFUNDED),
               f"job {job_id}'s dispute to be decided", timeout=300)  # fmt: skip


def test_a_cheating_provider_is_caught_by_the_audit_and_slashed(env, tmp_path):
    state, root, daemons = env
    net = Network.connect(Deployment.load(state / "deployment.json"))
    daemons.append(start_provider(state, tmp_path / "provider", "dev2", root, Behaviour.ONE_BAD_OP))
    auditor = start_validator(state, tmp_path / "v3", "dev3")
    daemons.append(auditor)
    stakes = {
        a: net.registry.members(a).stake
        for a in (auditor.daemon.address, daemons[0].daemon.address)
    }
    client, job = _post(state, root)
    assert net.job_market.audits(job.job_id).validator == auditor.daemon.address or wait_until(
        lambda: net.job_market.audits(job.job_id).validator == auditor.daemon.address,
        "the audit draw",
    )
    # committee members join once the auditor is drawn (it is excluded from the committee):
    # two honest ones and one that signs the opposite verdict
    daemons += [start_validator(state, tmp_path / f"v{i}", f"dev{i}") for i in (4, 5)]
    liar = start_validator(state, tmp_path / "v6", "dev6", Behaviour.FALSE_VERDICT)
    daemons.append(liar)
    liar_stake = net.registry.members(liar.daemon.address).stake
    wait_until(
        lambda: net.job_market.jobs(job.job_id).state == JobState.DISPUTED,
        "the audit to open a dispute",
    )
    # the auditor is stopped mid-game and restarted from its home: it carries on
    wait_until(lambda: net.job_market.disputes(job.job_id).round >= 4, "a few dispute moves")
    auditor.close()
    assert net.job_market.jobs(job.job_id).state == JobState.DISPUTED  # undecided without it
    auditor = start_validator(state, tmp_path / "v3", "dev3")
    daemons.append(auditor)
    _settle(net, job.job_id)
    resolved = [
        e for e in net.job_market.get_events("DisputeResolved") if e["job_id"] == job.job_id
    ]
    assert resolved and resolved[-1]["defender_at_fault"] is True
    assert resolved[-1]["winner"] == auditor.daemon.address
    provider = daemons[0].daemon.address
    assert net.registry.members(provider).stake < stakes[provider]  # the cheat paid
    assert net.registry.members(auditor.daemon.address).stake == stakes[auditor.daemon.address]
    wait_until(
        lambda: auditor.daemon.journal.duty(job.job_id).step == "done", "the auditor to finish"
    )
    # the minority's false signature is proof enough to slash it
    committee = net.committee
    assert liar.daemon.address in committee.members(job.job_id)
    wait_until(lambda: committee.slashed(job.job_id, liar.daemon.address), "the liar's slash")
    assert net.registry.members(liar.daemon.address).stake < liar_stake
    client.close()


@pytest.mark.parametrize(
    ("behaviour", "tokens", "audits", "agrees", "checked"),
    [
        (Behaviour.HONEST, 10, {"spot passed": 1}, True, r"spot check of steps \d, 9"),
        (Behaviour.MODEL_SWAP, 10, {"spot failed": 1, "full": 1}, False,
         r"whole job re-run: spot check of steps \d, 9 failed"),
        (Behaviour.HONEST, 3, {"full": 1}, True, "whole job re-run"),
    ],
    ids=["honest", "model-swap", "too-short-to-spot"],
)
def test_a_spot_audit_agrees_with_an_honest_generation_and_reruns_a_cheats_in_full(env, tmp_path, behaviour, tokens,
                                                                                    audits, agrees, checked):  # fmt: skip
    """A 10-token generation is spot-checked (the last step and one other, not the whole
    job): an honest result is agreed with from the sample alone; a model swap fails the
    sample, the validator re-runs the whole job and its different roots open the dispute.
    A 3-token job is below the spot minimum: it is re-run in full."""
    state, root, daemons = env
    net = Network.connect(Deployment.load(state / "deployment.json"))
    daemons.append(start_provider(state, tmp_path / "provider", "dev2", root, behaviour))
    auditor = start_validator(state, tmp_path / "v3", "dev3")
    daemons.append(auditor)
    client = Client(state / "deployment.json", wallet(state, "dev1"))
    job = client.submit(model=root, task="generate", input="ROMEO:", params={"max_tokens": tokens},
                        mode=audit(1.0), challenge_window=300)  # fmt: skip
    duty = wait_until(lambda: (d := auditor.daemon.journal.duty(job.job_id)) and d.agrees is not None and d,
                      "the audit report")  # fmt: skip
    assert bool(duty.agrees) is agrees
    assert auditor.daemon.info()["audits"] == audits
    assert re.fullmatch(checked, duty.checked), duty.checked  # journaled: what the audit re-ran
    state_now = net.job_market.jobs(job.job_id).state
    assert state_now == (JobState.REVEALED if agrees else JobState.DISPUTED)
    client.close()


def test_an_abandon_whose_journal_write_was_lost_is_recognised_on_the_next_poll(env, tmp_path):
    """The provider withholds the job and the requester never hands it over, so the auditor
    abandons the audit (its margin covers the whole window: at once). The journal write
    after the transaction is lost (as in a kill between the two): the duty stays at
    ``drawn``, the chain says REFUNDED. The next poll finds our AuditAbandoned event and
    journals the duty as abandoned, not as a job that left its audit."""
    import sqlite3

    state, root, daemons = env
    net = Network.connect(Deployment.load(state / "deployment.json"))
    daemons.append(start_provider(state, tmp_path / "provider", "dev2", root, Behaviour.HONEST, withhold=True))
    auditor = start_validator(state, tmp_path / "v3", "dev3", abandon_margin=10_000.0)
    daemons.append(auditor)
    journal = auditor.daemon.journal
    real_advance, lost = journal.advance, []

    def lose_the_abandon_write(job_id, from_steps, to_step, **fields):
        if str(fields.get("error", "")).startswith("audit abandoned:") and not lost:
            lost.append(job_id)
            raise sqlite3.OperationalError("disk I/O error (test: the write after the abandon is lost)")
        return real_advance(job_id, from_steps, to_step, **fields)

    journal.advance = lose_the_abandon_write
    client = Client(state / "deployment.json", wallet(state, "dev1"))
    job = client.submit(model=root, task="generate", input="ROMEO:", params={"max_tokens": 3},
                        mode=audit(1.0), challenge_window=300)  # fmt: skip
    wait_until(lambda: (d := journal.duty(job.job_id)) and d.step == "done", "the duty to be journaled done")
    assert lost == [job.job_id]
    assert journal.duty(job.job_id).error == "audit abandoned (found on chain)"
    assert net.job_market.jobs(job.job_id).state == JobState.REFUNDED
    client.close()


def test_a_griefing_validator_loses_and_the_honest_provider_is_paid(env, tmp_path):
    state, root, daemons = env
    net = Network.connect(Deployment.load(state / "deployment.json"))
    daemons.append(start_provider(state, tmp_path / "provider", "dev2", root, Behaviour.HONEST))
    griefer = start_validator(state, tmp_path / "v3", "dev3", Behaviour.GRIEFING_CHALLENGER)
    daemons.append(griefer)
    provider = daemons[0].daemon.address
    stakes = {a: net.registry.members(a).stake for a in (provider, griefer.daemon.address)}
    client, job = _post(state, root)
    daemons += [start_validator(state, tmp_path / f"v{i}", f"dev{i}") for i in (4, 5)]
    wait_until(
        lambda: net.job_market.jobs(job.job_id).state == JobState.DISPUTED, "the griefer's dispute"
    )
    _settle(net, job.job_id)
    resolved = [
        e for e in net.job_market.get_events("DisputeResolved") if e["job_id"] == job.job_id
    ]
    assert resolved and resolved[-1]["defender_at_fault"] is False
    assert net.registry.members(provider).stake == stakes[provider]  # never slashed
    assert net.registry.members(griefer.daemon.address).stake < stakes[griefer.daemon.address]
    output = job.result(timeout=60)  # the requester still gets the (honest) result
    assert output.provider == provider
    wait_until(
        lambda: griefer.daemon.journal.duty(job.job_id).step == "failed", "the griefer to give up"
    )
    # A late reader of the decided dispute is served from a player rebuilt on demand; the
    # live players hold only undecided disputes, and a few rebuilt ones are kept, not all.
    first = griefer.daemon.leaf_for(job.job_id, 0)
    assert job.job_id not in griefer.daemon.players and list(griefer.daemon.decided) == [job.job_id]
    assert griefer.daemon.leaf_for(job.job_id, 0) == first
    griefer.close()  # `verimesh validator status` reads its journal
    shown = CliRunner().invoke(
        validator_cli.app, ["status", "--home", str(tmp_path / "v3")], terminal_width=200
    )
    assert shown.exit_code == 0 and "dispute lost" in shown.output, shown.output
    client.close()
