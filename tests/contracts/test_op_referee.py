"""OpReferee.vy: a dispute ends without a committee when one party's committed trace holds an
op whose output is not what the op computes from its own inputs. The contract rebuilds the
runtime's leaf, checks its Merkle proofs under the accused's committed roots, has OpCheck
recompute the op, and settles the dispute against that party through the DisputeCommittee.
Real traces: the tiny decoder with one flipped bit, and small requantize programs."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import boa
import numpy as np
import pytest
from contract_world import DISPUTED, FINALIZED, REVEALED, load
from op_programs import requantize_program
from referee_world import (
    CHALLENGER,
    DEFENDER,
    RefereeWorld,
    Run,
    cheated_leaf,
    deploy_referee_world,
    requantize_runs,
    run,
)

from verimesh.chain.op_check_spec import checkable
from verimesh.chain.op_referee import leaf_arg
from verimesh.runtime.trace import TraceProof
from verimesh.verify import adversary
from verimesh.verify.bisection import Dispute, HonestParty, Party, play
from verimesh.verify.committee import GUILTY_DEFENDER
from verimesh.verify.onchain_op import convicts, wrong_op
from verimesh.verify.replay import JobRun

PARTIES = ["challenger", "defender"]


# --- traces -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_job(tmp_path_factory) -> JobRun:
    from verimesh.models.api import load_model
    from verimesh.models.store import ModelStore

    store = ModelStore(tmp_path_factory.mktemp("op-referee-home") / "models")
    return JobRun(load_model("tiny-shakespeare", store=store), "generate", "ROMEO:", {"max_tokens": 3})


# The programs the main tests run, each as an honest run and a cheat with one flipped bit at
# an op the EVM can recompute: the tiny decoder's first argmax (the token of step 0: what a
# "wrong output" cheat changes) and first checkable add (a residual of step 1), and a
# program of requantize ops. Sorted (xdist).
PROGRAMS = ["decoder-add", "decoder-argmax", "requantize"]


@pytest.fixture(scope="module")
def programs(tiny_job) -> dict[str, tuple[Run, Run, int]]:
    """name -> (honest run, cheat, the global index of the cheat's wrong op)."""
    honest, cheat = requantize_runs([[4, 8, 16, 2], [16, 8, 4], [2, 2]], target=5)
    made = {"requantize": (honest, cheat, 5)}
    trace = tiny_job.trace()
    for op in ("add", "argmax"):
        target = next(i for i, r in enumerate(trace.records()) if r.op == op and checkable(r))
        # the cheat answers with the same output bytes: only its trace betrays it
        made[f"decoder-{op}"] = (run(trace, b"decoder"),
                                 run(tiny_job.trace(adversary.WrongOpContext(target)), b"decoder"), target)
    return made


# --- the chain --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def rw() -> Iterator[RefereeWorld]:
    """Deployed by (and owned by) an account of this module's own: its contracts then sit at
    addresses no other test module deploys to (titanoboa keeps storage traces per address
    across the anchors that roll tests back, see `contract_world.load`)."""
    original = boa.env.eoa
    boa.env.eoa = boa.env.generate_address("op referee world")
    try:
        yield deploy_referee_world()
    finally:
        boa.env.eoa = original


# --- the leaf, as the runtime commits it --------------------------------------------------------


def test_the_contract_hashes_leaves_exactly_like_the_runtime(rw, tiny_job):
    honest = tiny_job.trace()
    fitting = [r for r in honest.records() if len(r.input_hashes) <= 5 and len(r.params_json) <= 128]
    by_op = {r.op: r for r in fitting}  # one leaf of every op that fits: names, params, arity
    by_op["last"] = fitting[-1]
    assert len(by_op) >= 8
    for record in by_op.values():
        assert rw.referee.leaf_hash(leaf_arg(record)) == record.leaf_hash(), record.op


# --- proofs that settle a dispute --------------------------------------------------------------


@pytest.mark.parametrize("program", PROGRAMS)
@pytest.mark.parametrize("cheater", PARTIES)
def test_a_wrong_op_settles_a_replicated_job_against_the_cheat(rw, programs, program, cheater):
    honest, cheat, target = programs[program]
    record = cheated_leaf(honest, cheat, target)
    assert checkable(record)
    if cheater == "defender":
        job_id, cheat_provider, honest_provider = rw.replicate_dispute(defender=cheat, challenger=honest)
        accused = DEFENDER
    else:
        job_id, honest_provider, cheat_provider = rw.replicate_dispute(defender=honest, challenger=cheat)
        accused = CHALLENGER
    w, m = rw.w, rw.market
    stake_before = w.member(cheat_provider).stake
    paid_before = m.balances(honest_provider)
    requester_before = m.balances(w.requester)

    rw.prove(job_id, accused, cheat, record)

    assert w.state(job_id) == FINALIZED
    assert w.member(cheat_provider).stake < stake_before  # slashed
    assert m.balances(honest_provider) > paid_before  # paid its price (and bounty)
    assert m.balances(w.requester) > requester_before  # its share of the slash
    w.assert_conserved()


def test_the_wrong_op_proven_event_names_the_leaf(rw, programs):
    honest, cheat, target = programs[PROGRAMS[0]]
    record = cheated_leaf(honest, cheat, target)
    job_id, _cheat, _honest = rw.replicate_dispute(defender=cheat, challenger=honest)
    rw.prove(job_id, DEFENDER, cheat, record)
    (event,) = [e for e in rw.referee.get_logs() if type(e).__name__ == "WrongOpProven"]
    assert (event.job_id, event.accused, event.prover) == (job_id, DEFENDER, rw.w.outsider)
    assert (event.step, event.index, event.op) == (record.step, record.index, record.op)
    (ruled,) = [e for e in rw.referee.get_logs() if type(e).__name__ == "ResolvedByOpProof"]
    assert (ruled.job_id, ruled.guilty, ruled.op_referee) == (job_id, GUILTY_DEFENDER, rw.referee.address)


@pytest.mark.parametrize("program", PROGRAMS)
@pytest.mark.parametrize("cheater", ["provider", "validator"])
def test_a_wrong_op_settles_an_audit_against_the_cheat(rw, programs, program, cheater):
    honest, cheat, target = programs[program]
    record = cheated_leaf(honest, cheat, target)
    w, m = rw.w, rw.market
    if cheater == "provider":
        job_id, accused_account, winner = rw.audit_dispute(provider_run=cheat, validator_run=honest)
        accused = DEFENDER
    else:
        job_id, winner, accused_account = rw.audit_dispute(provider_run=honest, validator_run=cheat)
        accused = CHALLENGER
    stake_before = w.member(accused_account).stake
    rw.prove(job_id, accused, cheat, record)
    assert w.state(job_id) == FINALIZED
    assert w.member(accused_account).stake < stake_before
    assert m.balances(winner) > 0
    w.assert_conserved()


def test_a_proof_may_come_in_the_middle_of_the_game(rw):
    honest, cheat = requantize_runs([[4, 8, 16], [16, 4]], target=3)
    record = cheated_leaf(honest, cheat, 3)
    job_id, defender, challenger = rw.replicate_dispute(defender=honest, challenger=cheat)
    m = rw.market
    for mover, data in ((defender, b"\x01"), (challenger, b"\x02"), (defender, b"\x03")):
        with boa.env.prank(mover):
            m.dispute_move(job_id, data.rjust(32, b"\x00"))
    assert m.disputes(job_id).round == 3
    rw.prove(job_id, CHALLENGER, cheat, record, sender=defender)
    assert rw.w.state(job_id) == FINALIZED


def test_a_proof_beats_a_timeout_nobody_has_claimed_yet(rw):
    """The honest defender missed its round deadline; before anyone calls dispute_timeout
    (which would convict it), it proves the challenger's trace wrong."""
    honest, cheat = requantize_runs([[8, 4]], target=1)
    record = cheated_leaf(honest, cheat, 1)
    job_id, defender, _challenger = rw.replicate_dispute(defender=honest, challenger=cheat)
    boa.env.time_travel(seconds=rw.market.disputes(job_id).deadline - boa.env.evm.patch.timestamp + 1)
    rw.prove(job_id, CHALLENGER, cheat, record, sender=defender)
    assert rw.w.state(job_id) == FINALIZED
    with boa.reverts("job_market: job is not disputed"):
        rw.market.dispute_timeout(job_id)


def test_a_proof_overtakes_a_drawn_committee_which_then_cannot_rule(rw):
    honest, cheat = requantize_runs([[8, 8]], target=1)
    record = cheated_leaf(honest, cheat, 1)
    job_id, defender, _challenger = rw.replicate_dispute(defender=cheat, challenger=honest)
    with boa.env.prank(defender):
        rw.market.refer_dispute(job_id)
    members = rw.cw.draw(job_id)
    rw.prove(job_id, DEFENDER, cheat, record)
    assert rw.w.state(job_id) == FINALIZED
    verdict = rw.cw.verdict(job_id, GUILTY_DEFENDER)
    with boa.reverts("job_market: job is not disputed"):
        rw.cw.submit(verdict, rw.cw.sign(members[:3], verdict))


def test_without_a_proof_the_committee_still_decides(rw):
    job_id, _provider = rw.cw.referred_dispute()
    members = rw.cw.draw(job_id)
    verdict = rw.cw.verdict(job_id, GUILTY_DEFENDER)
    rw.cw.submit(verdict, rw.cw.sign(members[:3], verdict))
    assert rw.w.state(job_id) == FINALIZED
    assert rw.cw.committee.committees(job_id).accepted


@pytest.mark.parametrize("cheater", PARTIES)
def test_the_bisection_names_the_leaf_and_its_proof_settles_on_chain(rw, cheater):
    """The whole path an honest party takes: play the game off chain, find the cheat's leaf
    with `wrong_op`, check it with `convicts`, prove it on chain."""
    honest, cheat = requantize_runs([[4, 8, 16, 4, 2], [8, 16, 4]], target=6)
    traces = (cheat, honest) if cheater == "defender" else (honest, cheat)
    dispute = Dispute(traces[0].trace_root, traces[1].trace_root)
    d, c = HonestParty(traces[0].trace), HonestParty(traces[1].trace)
    play(dispute, d, c)
    found = wrong_op(dispute, d.evidence(dispute), c.evidence(dispute))
    assert found is not None
    guilty = Party.DEFENDER if cheater == "defender" else Party.CHALLENGER
    assert found.accused == int(guilty) + 1
    assert (found.record.step, found.record.index) == honest.trace.position(6)
    assert convicts(cheat.trace_root, found.record, found.proof)
    assert not convicts(honest.trace_root, honest.trace.leaf(1, 1), honest.trace.proof(1, 1))
    job_id, _defender, _challenger = rw.replicate_dispute(defender=traces[0], challenger=traces[1])
    rw.prove(job_id, found.accused, cheat, found.record, proof=found.proof)
    assert rw.w.state(job_id) == FINALIZED


def test_a_cheat_that_withholds_its_tensors_is_proven_wrong_with_the_others(rw):
    honest, cheat = requantize_runs([[4, 8], [8, 16]], target=2)
    stripped = cheat.trace.leaf(1, 0)
    stripped.inputs = None  # what a cheat publishes: the leaf, not the tensors
    dispute = Dispute(cheat.trace_root, honest.trace_root)
    d, c = HonestParty(cheat.trace), HonestParty(honest.trace)
    play(dispute, d, c)
    found = wrong_op(dispute, d.evidence(dispute), c.evidence(dispute))
    assert found is not None and found.record.inputs is not None
    assert found.record.leaf_hash() == stripped.leaf_hash()


def test_no_on_chain_proof_when_the_committee_must_replay_or_both_are_wrong(rw, tiny_job):
    skipped = adversary.cheat_run(tiny_job, adversary.skip_last_layer(tiny_job.model)).trace()
    honest = tiny_job.trace()
    dispute = Dispute(skipped.root, honest.root)
    d, c = HonestParty(skipped), HonestParty(honest)
    play(dispute, d, c)
    assert wrong_op(dispute, d.evidence(dispute), c.evidence(dispute)) is None  # another instruction
    sizes = [[8, 8]]
    one = requantize_program(adversary.WrongOpContext(1), sizes)
    two = requantize_program(adversary.TamperContext(lambda i, _o, _x, out: out ^ 3 if i == 1 else None,
                                                     keep_tensors=True), sizes)
    dispute = Dispute(one.root, two.root)
    d, c = HonestParty(one), HonestParty(two)
    play(dispute, d, c)
    assert wrong_op(dispute, d.evidence(dispute), c.evidence(dispute)) is None  # both wrong: the committee


# --- proofs that prove nothing -----------------------------------------------------------------


@pytest.mark.parametrize("program", PROGRAMS)
def test_an_honest_leaf_proves_nothing(rw, programs, program):
    honest, cheat, target = programs[program]
    step, index = honest.trace.position(target)
    job_id, _defender, _challenger = rw.replicate_dispute(defender=cheat, challenger=honest)
    before = rw.snapshot(job_id)
    with boa.reverts("op_referee: the op is correct"):
        rw.prove(job_id, CHALLENGER, honest, honest.trace.leaf(step, index))
    # every other checkable leaf of the honest trace too (a sample: first, middle, last)
    fitting = [r for r in honest.trace.records() if checkable(r)]
    for record in (fitting[0], fitting[len(fitting) // 2], fitting[-1]):
        with boa.reverts("op_referee: the op is correct"):
            rw.prove(job_id, CHALLENGER, honest, record)
    assert rw.snapshot(job_id) == before


def _flip(data: bytes) -> bytes:
    return bytes([data[0] ^ 1]) + data[1:]


def _with_op_proof(p: TraceProof, **changes) -> TraceProof:
    return replace(p, op_proof=replace(p.op_proof, **changes))


def _with_step_proof(p: TraceProof, **changes) -> TraceProof:
    return replace(p, step_proof=replace(p.step_proof, **changes))


# name -> (how the proof is spoiled, the revert reason); sorted for xdist
SPOILED = {
    "accused-is-nobody": "op_referee: accused must be 1 (defender) or 2 (challenger)",
    "accuses-the-honest-party": "op_referee: the roots are not the accused party's committed result",
    "another-output-root": "op_referee: the roots are not the accused party's committed result",
    "forged-output-hash": "op_referee: the op leaf is not under the step root",
    "forged-params": "op_referee: the op leaf is not under the step root",
    "forged-step-root": "op_referee: the op leaf is not under the step root",
    "op-proof-for-another-index": "op_referee: the op proof is not for the leaf's index",
    "op-proof-missing-a-sibling": "op_referee: the op leaf is not under the step root",
    "op-proof-wrong-leaf-count": "op_referee: the op leaf is not under the step root",
    "op-proof-wrong-sibling": "op_referee: the op leaf is not under the step root",
    "step-proof-for-another-step": "op_referee: the step proof is not for the leaf's step",
    "step-proof-wrong-sibling": "op_referee: the step root is not under the trace root",
    "wrong-input-tensor": "op_referee: an input tensor does not match the leaf's input hash",
    "missing-input-tensor": "op_referee: the number of input tensors differs from the leaf's",
    "leaf-moved-to-another-position": "op_referee: the op leaf is not under the step root",
}


@pytest.mark.parametrize("spoil", sorted(SPOILED))
def test_a_spoiled_proof_reverts_without_any_state_change(rw, spoil):
    honest, cheat = requantize_runs([[4, 8, 2], [8, 16, 4]], target=4)
    record = cheated_leaf(honest, cheat, 4)  # step 1, op 1
    proof = cheat.trace.proof(record.step, record.index)
    job_id, _defender, _challenger = rw.replicate_dispute(defender=cheat, challenger=honest)
    accused, result = DEFENDER, cheat
    inputs = list(record.inputs)
    if spoil == "accused-is-nobody":
        accused = 3
    elif spoil == "accuses-the-honest-party":
        accused = CHALLENGER
    elif spoil == "another-output-root":
        result = Run(cheat.trace, _flip(cheat.output_root))
    elif spoil == "forged-output-hash":
        record = replace(record, output_hash=_flip(record.output_hash))
    elif spoil == "forged-params":
        record = replace(record, params={"out_dtype": "int8"}, params_json=b"")
    elif spoil == "forged-step-root":
        proof = replace(proof, step_root=_flip(proof.step_root))
    elif spoil == "op-proof-for-another-index":
        proof = _with_op_proof(proof, index=0)
    elif spoil == "op-proof-missing-a-sibling":
        proof = _with_op_proof(proof, siblings=proof.op_proof.siblings[:-1])
    elif spoil == "op-proof-wrong-leaf-count":
        proof = _with_op_proof(proof, leaf_count=proof.op_proof.leaf_count + 1)
    elif spoil == "op-proof-wrong-sibling":
        proof = _with_op_proof(proof, siblings=(_flip(proof.op_proof.siblings[0]), *proof.op_proof.siblings[1:]))
    elif spoil == "step-proof-for-another-step":
        proof = _with_step_proof(proof, index=0)
    elif spoil == "step-proof-wrong-sibling":
        proof = _with_step_proof(proof, siblings=(_flip(proof.step_proof.siblings[0]),))
    elif spoil == "wrong-input-tensor":
        acc = np.array(inputs[0], copy=True)
        acc.reshape(-1)[0] ^= 1
        inputs[0] = acc
    elif spoil == "missing-input-tensor":
        inputs = inputs[:-1]
    elif spoil == "leaf-moved-to-another-position":
        record = replace(record, index=0)
        proof = _with_op_proof(proof, index=0)
    record = replace(record, inputs=tuple(inputs))
    before = rw.snapshot(job_id)
    with boa.reverts(SPOILED[spoil]):
        rw.prove(job_id, accused, result, record, proof=proof)
    assert rw.snapshot(job_id) == before
    rw.prove(job_id, DEFENDER, cheat, cheat.trace.leaf(1, 1))  # the unspoiled proof still works
    assert rw.w.state(job_id) == FINALIZED


def test_an_external_challenger_cannot_be_accused_but_its_defender_can(rw):
    honest, cheat = requantize_runs([[8, 8]], target=0)
    record = cheated_leaf(honest, cheat, 0)
    w, m = rw.w, rw.market
    job_id = w.post()
    (provider,) = m.assigned(job_id)
    w.commit(job_id, provider, output=cheat.output_root, trace=cheat.trace_root)
    w.reveal(job_id, provider, output=cheat.output_root, trace=cheat.trace_root)
    with boa.env.prank(w.challenger):
        m.challenge(job_id, 0)
    with boa.reverts("op_referee: an external challenger committed no trace to prove wrong"):
        rw.prove(job_id, CHALLENGER, cheat, record)
    with boa.reverts("op_referee: an external challenger committed no trace to prove wrong"):
        rw.referee.committed_digest(job_id, CHALLENGER)
    challenger_before = m.balances(w.challenger)
    rw.prove(job_id, DEFENDER, cheat, record)
    assert w.state(job_id) == FINALIZED
    assert m.balances(w.challenger) > challenger_before  # its bond back, and the bounty


def test_a_settled_or_undisputed_job_takes_no_proof(rw):
    honest, cheat = requantize_runs([[8, 8]], target=1)
    record = cheated_leaf(honest, cheat, 1)
    job_id, _defender, _challenger = rw.replicate_dispute(defender=cheat, challenger=honest)
    rw.prove(job_id, DEFENDER, cheat, record)
    with boa.reverts("op_referee: job is not disputed"):
        rw.prove(job_id, DEFENDER, cheat, record)
    w = rw.w
    revealed = w.post()
    w.commit_reveal_all(revealed)
    assert w.state(revealed) == REVEALED
    with boa.reverts("op_referee: job is not disputed"):
        rw.prove(revealed, DEFENDER, cheat, record)


# --- the DisputeCommittee hook ---------------------------------------------------------------


def test_only_the_op_referee_settles_through_the_hook(rw):
    job_id, _provider = rw.cw.referred_dispute()
    committee = rw.cw.committee
    assert committee.op_referee() == rw.referee.address
    with boa.env.prank(rw.w.outsider), boa.reverts("dispute_committee: caller is not the op referee"):
        committee.resolve_by_op_proof(job_id, GUILTY_DEFENDER)
    with boa.env.prank(rw.referee.address), boa.reverts("dispute_committee: guilty must be 1 or 2"):
        committee.resolve_by_op_proof(job_id, 3)
    assert rw.w.state(job_id) == DISPUTED


def test_the_op_referee_is_set_once_by_the_deployer(rw):
    committee = rw.cw.committee
    with boa.reverts("dispute_committee: op referee already set"):
        committee.set_op_referee(rw.w.outsider)
    fresh = load("DisputeCommittee.vy", rw.market.address, rw.cw.registry.address, rw.w.token.address, 5, 3,
                 10, 5_000, fresh=True)
    assert fresh.op_referee() == "0x" + "00" * 20
    with boa.env.prank(rw.w.outsider), boa.reverts("dispute_committee: caller is not the deployer"):
        fresh.set_op_referee(rw.referee.address)
    with boa.env.prank(fresh.deployer), boa.reverts("dispute_committee: op referee is the zero address"):
        fresh.set_op_referee("0x" + "00" * 20)
    with boa.env.prank(fresh.deployer):
        fresh.set_op_referee(rw.referee.address)
    # with no op referee, nobody may call the hook (not even from the zero address)
    unset = load("DisputeCommittee.vy", rw.market.address, rw.cw.registry.address, rw.w.token.address, 5, 3,
                 10, 5_000, fresh=True)
    with boa.env.prank("0x" + "00" * 20), boa.reverts("dispute_committee: caller is not the op referee"):
        unset.resolve_by_op_proof(1, GUILTY_DEFENDER)


def test_the_referee_refuses_zero_addresses():
    zero = "0x" + "00" * 20
    with boa.reverts("op_referee: committee is the zero address"):
        load("OpReferee.vy", zero, zero)


# --- gas --------------------------------------------------------------------------------------


def test_the_costliest_proof_of_the_gas_table_fits_a_transaction() -> None:
    """A proof on a requantize of 256 elements (the most OpCheck decodes for it) settles the
    dispute in one transaction well inside the devnet's gas limit. The whole table is
    bench/bench_op_gas.py's (docs/bench-op-gas.md)."""
    from contract_world import tx_gas

    from verimesh.chain.devnet import DEVNET_GAS_LIMIT

    with boa.swap_env(boa.Env()):
        rw = deploy_referee_world()
        honest, cheat = requantize_runs([[256] * 40] * 16, target=7 * 40 + 20)
        job_id, _record, built = rw.defender_proof(honest, cheat, 7 * 40 + 20)
        used = tx_gas(rw.referee, lambda: rw.referee.prove_wrong_op(*built.args()))
        assert rw.w.state(job_id) == FINALIZED
    assert used < DEVNET_GAS_LIMIT // 4, used
