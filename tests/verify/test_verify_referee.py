"""Real traces of the tiny decoder: honest vs each cheat, bisected to one op, liar named."""

import numpy as np
import pytest

from verimesh.runtime import ExecutionContext
from verimesh.runtime.tensor import tensor_hash
from verimesh.verify import adversary
from verimesh.verify.bisection import Dispute, HonestParty, Level, OutcomeKind, Party, play
from verimesh.verify.referee import Method, decide
from verimesh.verify.replay import JobRun


@pytest.fixture(scope="module")
def job(tiny_model):
    return JobRun(tiny_model, "generate", "ROMEO:", {"max_tokens": 3})


@pytest.fixture(scope="module")
def honest(job):
    return job.trace()


def dispute_between(defender_trace, challenger_trace, job, tensors=True):
    """Bisect, then rule; ``tensors=False``: the parties' final leaves come without their
    input tensors, so the referee cannot recompute the disputed op from them alone."""
    from dataclasses import replace

    dispute = Dispute(defender_trace.root, challenger_trace.root)
    d, c = HonestParty(defender_trace), HonestParty(challenger_trace)
    outcome = play(dispute, d, c)
    evidence = [d.evidence(dispute), c.evidence(dispute)]
    if not tensors:
        evidence = [replace(e, record=e.record and replace(e.record, inputs=None)) for e in evidence]
    ruling = decide(dispute, *evidence, job)
    return dispute, outcome, ruling


@pytest.mark.parametrize(
    "ctx",
    [
        lambda: ExecutionContext(path="reference", keep_tensors=True),
        lambda: ExecutionContext(background_hashing=True),
        lambda: ExecutionContext(),
    ],
    ids=["reference-path", "background-hashing", "no-kept-tensors"],
)
def test_honest_runs_agree_across_configurations_so_no_dispute(job, honest, ctx):
    again = job.trace(ctx())
    assert again.root == honest.root
    with pytest.raises(ValueError, match="nothing to dispute"):
        Dispute(honest.root, again.root)


@pytest.mark.parametrize("target", [0, 40, 151, -1])
def test_one_wrong_op_is_found_and_recomputed(job, honest, target):
    target = target % honest.op_count
    cheat = job.trace(adversary.WrongOpContext(target))
    for cheater in Party:
        traces = (cheat, honest) if cheater is Party.DEFENDER else (honest, cheat)
        dispute, outcome, ruling = dispute_between(*traces, job=None)
        assert outcome.kind is OutcomeKind.LEAF and outcome.level is Level.OPS
        assert (outcome.step, outcome.index) == honest.position(target)
        assert ruling.method is Method.RECOMPUTE
        assert ruling.guilty == {cheater}
        assert ruling.recomputed_output == honest.leaf(outcome.step, outcome.index).output_hash
        steps, ops = len(honest.steps), len(honest.steps[outcome.step])
        assert dispute.rounds <= 2 * (2 + (steps - 1).bit_length() + (ops - 1).bit_length())


MODEL_CHEATS = pytest.mark.parametrize(
    "make",
    [adversary.skip_last_layer, adversary.swap_layers, adversary.lower_precision],
    ids=["skipped-layer", "model-swap", "lower-precision"],
)


def first_difference(honest, cheat) -> int:
    return next(
        i for i, (a, b) in enumerate(zip(honest.records(), cheat.records(), strict=False))
        if a.leaf_hash() != b.leaf_hash()
    )


@MODEL_CHEATS
def test_model_level_cheats_are_found_by_replay(job, honest, make):
    cheat_job = adversary.cheat_run(job, make(job.model))
    cheat = cheat_job.trace()
    assert cheat.root != honest.root
    for cheater in Party:
        traces = (cheat, honest) if cheater is Party.DEFENDER else (honest, cheat)
        _dispute, outcome, ruling = dispute_between(*traces, job=job)
        assert ruling.guilty == {cheater}, ruling.reasons
        assert ruling.method is Method.REPLAY
        assert (outcome.step, outcome.index) == honest.position(first_difference(honest, cheat))


def serving(trace, asked=None):
    """A party serving its trace's leaves by their index over all steps (as its node does)."""

    def leaf(leaf_index):
        if asked is not None:
            asked.append(trace.position(leaf_index))
        return trace.leaf(*trace.position(leaf_index))

    return leaf


@MODEL_CHEATS
def test_an_instruction_dispute_in_step_0_is_settled_by_one_op_or_its_layer(job, honest, make):
    """Served the agreed leaves before the difference (by either party: they are in both
    traces), the referee walks the program's instruction from the disputed layer without
    computing, checks that the inputs of the honest party's leaf are the agreed outputs it
    names, and recomputes that one op. Without the parties' input tensors it recomputes the
    agreed residual entering the layer and runs that layer alone. Both give the ruling and
    the program op of the replay of the whole prefix."""
    from dataclasses import replace

    cheat = adversary.cheat_run(job, make(job.model)).trace()
    asked, walked = [], []
    for cheater in Party:
        traces = (cheat, honest) if cheater is Party.DEFENDER else (honest, cheat)
        # the cheat's copy of an agreed leaf is the honest one
        _d, outcome, instructed = dispute_between(*traces, job=replace(job, agreed=serving(cheat, walked)))
        _d, _o, resumed = dispute_between(*traces, job=replace(job, agreed=serving(cheat, asked)), tensors=False)
        _d, _o, replayed = dispute_between(*traces, job=job)
        assert outcome.step == 0
        if outcome.index < job.model.impl.PREFIX_OPS:  # a swapped model differs from its first ops
            assert instructed.method is resumed.method is Method.REPLAY and not asked and not walked
            continue
        assert (instructed.method, resumed.method, replayed.method) == (Method.INSTRUCTION, Method.RESUME, Method.REPLAY)
        assert instructed.guilty == resumed.guilty == replayed.guilty == {cheater}
        assert instructed.recomputed_output == resumed.recomputed_output == replayed.recomputed_output == (
            honest.leaf(0, outcome.index).output_hash
        )
        (step, at), = asked
        assert step == 0 and at < outcome.index and honest.leaf(0, at).op in ("add", "mul")
        assert walked[0] == (step, at) and all(s == 0 and i < outcome.index for s, i in walked)
        asked.clear(), walked.clear()


class CoarserAttentionFrom(ExecutionContext):
    """Honest until ``step``, then every attention op's output shift + 1: an instruction
    difference after a layer has read its cache."""

    def __init__(self, step):
        super().__init__(keep_tensors=True)
        self.step = step

    def call(self, op_name, *inputs, **params):
        if op_name == "attention" and self.trace.next_position()[0] >= self.step:
            inputs = (*inputs[:7], np.asarray(inputs[7] + 1, dtype=inputs[7].dtype))
        return super().call(op_name, *inputs, **params)


@pytest.mark.parametrize(
    ("cheat_from", "reads_cache"),
    [(adversary.LowerPrecisionFrom, False), (CoarserAttentionFrom, True)],
    ids=["first-linear-op", "attention-after-the-cache"],
)
def test_a_late_instruction_dispute_is_settled_at_its_layer_with_the_agreed_cache(job, cheat_from, reads_cache):
    """Deep in a generation the disputed layer may read its cached keys and values: the
    referee then takes them from the layer's two agreed concats, and recomputes the one op
    (or, without the parties' tensors, runs that layer alone), with the ruling the
    fast-forward and the replay of steps 0-4 give."""
    from dataclasses import replace

    long = replace(job, params={"max_tokens": 6})
    honest, cheat = long.trace(), long.trace(cheat_from(4))
    claims = (_tokens(long),)
    for cheater in Party:
        traces = (cheat, honest) if cheater is Party.DEFENDER else (honest, cheat)
        asked = []
        _d, outcome, instructed = dispute_between(*traces, job=replace(long, agreed=serving(honest)))
        _d, _o, resumed = dispute_between(*traces, job=replace(long, agreed=serving(honest, asked)), tensors=False)
        _d, _o, forwarded = dispute_between(*traces, job=replace(long, claims=claims))
        _d, _o, replayed = dispute_between(*traces, job=long)
        assert outcome.step == 4
        assert (instructed.method, resumed.method, forwarded.method, replayed.method) == (
            Method.INSTRUCTION, Method.RESUME, Method.FORWARD, Method.REPLAY,
        )
        assert instructed.guilty == resumed.guilty == forwarded.guilty == replayed.guilty == {cheater}
        assert instructed.recomputed_output == resumed.recomputed_output == replayed.recomputed_output == (
            honest.leaf(4, outcome.index).output_hash
        )
        assert all(step == 4 for step, _ in asked)
        anchor, *cache = [honest.leaf(*at).op for at in asked]  # the residual entering the layer, its cache
        assert anchor in ("add", "mul") and cache == (["concat", "concat"] if reads_cache else [])


def test_an_agreed_leaf_that_does_not_hold_sends_the_referee_back_to_the_replay(job, honest):
    """Nothing a party serves is trusted: an agreed leaf that is missing, at another
    position, or whose tensors do not recompute to its output hash only costs the referee
    the prefix replay, and the ruling stays the program's."""
    from dataclasses import replace

    cheat = adversary.cheat_run(job, adversary.skip_last_layer(job.model)).trace()

    def agreed(change):
        def leaf(leaf_index):
            return change(honest.leaf(*honest.position(leaf_index)))
        return leaf

    def other_inputs(record):
        return replace(record, inputs=(record.inputs[0] + 1, *record.inputs[1:]))

    def other_position(record):
        return honest.leaf(record.step, record.index - 1)

    for change in (lambda record: None, lambda record: replace(record, output_hash=bytes(32)), other_inputs,
                   other_position):  # fmt: skip
        _d, outcome, ruling = dispute_between(cheat, honest, job=replace(job, agreed=agreed(change)))
        assert outcome.step == 0 and ruling.method is Method.REPLAY
        assert ruling.guilty == {Party.DEFENDER}


def test_the_recomputed_op_is_one_op_of_the_job(job, honest):
    record = honest.leaf(1, 5)
    from verimesh.runtime.trace import recompute

    assert tensor_hash(recompute(record)) == record.output_hash
    assert all(isinstance(t, np.ndarray) for t in record.inputs)


def test_committee_members_rule_independently_and_certify_the_verdict(job, honest):
    """Each drawn member re-plays the final evidence itself; the signed verdict names the
    cheat, and the certificate passes the m-of-n check."""
    import hashlib

    from eth_account import Account

    from verimesh.crypto.eip712 import Domain
    from verimesh.verify.committee import (
        Validator,
        Verdict,
        aggregate,
        check_certificate,
        default_threshold,
        draw_committee,
        leaf_index,
        sign_verdict,
    )

    keys = {k.address: k for k in (Account.from_key(hashlib.sha256(b"v%d" % i).digest()) for i in range(6))}
    members = draw_committee(hashlib.sha256(b"seed").digest(), [Validator(address=a, stake=100) for a in keys], 5)
    domain = Domain(chain_id=31337, verifying_contract="0x" + "22" * 20)
    cheat = job.trace(adversary.WrongOpContext(200))
    dispute = Dispute(cheat.root, honest.root)
    d, c = HonestParty(cheat), HonestParty(honest)
    play(dispute, d, c)
    signatures = []
    for member in members:
        ruling = decide(dispute, d.evidence(dispute), c.evidence(dispute))
        verdict = Verdict(job_id=3, dispute_round=dispute.rounds, guilty=ruling.guilty_code,
                          leaf_index=leaf_index(ruling.step, ruling.index),
                          recomputed_output=ruling.recomputed_output)
        signatures.append(sign_verdict(keys[member], verdict, domain, expiry=10**9))
    cert = aggregate(verdict, 10**9, signatures)
    assert cert.verdict.guilty == 1
    assert len(check_certificate(cert, domain, members, default_threshold(5), now=0)) == 5


def test_market_simulation_meets_the_detection_target():
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
    from bench_verify import simulate

    r = simulate(0.1, trials=3000)
    assert r["detected_by_70"] >= 0.998 and r["samples_70"] > 1000
    deterred = simulate(0.2, trials=500)
    assert deterred["cheat_net"] < deterred["cheat_if_honest"]


def test_evidence_survives_the_wire_and_still_convicts(job, honest):
    import json

    from verimesh.verify.bisection import DisputeError, PartyEvidence

    cheat = job.trace(adversary.WrongOpContext(77))
    dispute = Dispute(honest.root, cheat.root)
    d, c = HonestParty(honest), HonestParty(cheat)
    play(dispute, d, c)
    wire = [PartyEvidence.from_json(json.loads(json.dumps(p.evidence(dispute).to_json()))) for p in (d, c)]
    ruling = decide(dispute, *wire)
    assert ruling.guilty == {Party.CHALLENGER} and ruling.method is Method.RECOMPUTE
    with pytest.raises(DisputeError, match="malformed dispute evidence"):
        PartyEvidence.from_json({"step_root": "0x00"})


@pytest.mark.parametrize("tokens", [2, 4], ids=["stopped-early", "padded"])
def test_a_trace_with_missing_or_extra_steps_is_a_length_dispute(job, honest, tokens):
    """A node that generates fewer (or more) tokens than asked: the traces agree on every
    common step, the game ends at the shorter end, and the replay convicts the cheat."""
    from dataclasses import replace

    cheat = replace(job, params={"max_tokens": tokens}).trace()
    for cheater in Party:
        traces = (cheat, honest) if cheater is Party.DEFENDER else (honest, cheat)
        _dispute, outcome, ruling = dispute_between(*traces, job=job)
        assert outcome.kind is OutcomeKind.LENGTH and outcome.level is Level.STEPS
        assert outcome.step == min(len(cheat.steps), len(honest.steps))
        assert ruling.guilty == {cheater} and ruling.method is Method.REPLAY
        # served the agreed leaves, the referee walks to that step's first op: it is there
        # (the cheat stopped early), or the generation has only max_tokens steps (padded)
        _d, _o, walked = dispute_between(*traces, job=replace(job, agreed=serving(cheat)))
        assert walked.guilty == {cheater} and walked.method is Method.INSTRUCTION


def test_a_generation_past_its_stop_token_is_convicted_by_the_choice_before(job):
    """The model's stop token ends the honest generation early: a trace that runs on past
    it has a step the program never runs. The referee reads that from the choice the step
    before makes on its agreed logits (one op), and walks nothing else."""
    import copy
    from dataclasses import replace

    four = replace(job, text="To be, or not", params={"max_tokens": 4, "seed": 5})
    tokens = _tokens(four)
    last = next(i for i in range(1, 4) if tokens[i] not in tokens[:i])
    impl = copy.copy(job.model.impl)
    impl.cfg = replace(impl.cfg, eos_token_id=tokens[last])  # a token first chosen at step `last` stops it
    stopping = replace(four, model=replace(job.model, impl=impl))
    honest, runs_on = stopping.trace(), four.trace()
    assert len(honest.steps) == last + 1 and len(runs_on.steps) == 4
    for cheater in Party:
        traces = (runs_on, honest) if cheater is Party.DEFENDER else (honest, runs_on)
        _d, outcome, walked = dispute_between(*traces, job=replace(stopping, agreed=serving(honest)))
        _d, _o, replayed = dispute_between(*traces, job=stopping)
        assert outcome.kind is OutcomeKind.LENGTH and outcome.step == last + 1
        assert (walked.method, replayed.method) == (Method.INSTRUCTION, Method.REPLAY)
        assert walked.guilty == replayed.guilty == {cheater}, walked.reasons


def _tokens(job) -> tuple[int, ...]:
    return tuple(int(t) for t in job.run(ExecutionContext(trace=False)).tensor)


def test_a_late_instruction_dispute_runs_only_its_step_after_a_confirmed_claim(job):
    """The referee needs the program's op at step 4: with a claimed generation that one
    batched forward confirms, it runs step 4 alone (Method.FORWARD) and rules exactly as
    the replay of steps 0-4 does."""
    from dataclasses import replace

    long = replace(job, params={"max_tokens": 6})
    honest, cheat = long.trace(), long.trace(adversary.LowerPrecisionFrom(4))
    claims = (_tokens(long), tuple(int(t) for t in long.run(adversary.LowerPrecisionFrom(4)).tensor))
    for cheater in Party:
        traces = (cheat, honest) if cheater is Party.DEFENDER else (honest, cheat)
        _d, outcome, forwarded = dispute_between(*traces, job=replace(long, claims=claims))
        _d, _o, replayed = dispute_between(*traces, job=long)
        assert outcome.kind is OutcomeKind.LEAF and outcome.step == 4
        assert forwarded.method is Method.FORWARD and replayed.method is Method.REPLAY
        assert forwarded.guilty == replayed.guilty == {cheater}
        assert forwarded.recomputed_output == replayed.recomputed_output == honest.leaf(4, outcome.index).output_hash


def test_a_claim_the_program_does_not_confirm_falls_back_to_the_full_replay(job):
    from dataclasses import replace

    long = replace(job, params={"max_tokens": 6})
    honest, cheat = long.trace(), long.trace(adversary.LowerPrecisionFrom(4))
    vocab = long.model.impl.cfg.vocab_size
    right = _tokens(long)
    wrong_first = ((right[0] + 1) % vocab, *right[1:])
    for claims in [(wrong_first,), (right[:2],), ()]:  # not the program's; too short; none
        _d, _o, ruling = dispute_between(cheat, honest, job=replace(long, claims=claims))
        assert ruling.method is Method.REPLAY and ruling.guilty == {Party.DEFENDER}
    _d, _o, ruling = dispute_between(cheat, honest, job=replace(long, claims=(wrong_first, right)))
    assert ruling.method is Method.FORWARD and ruling.guilty == {Party.DEFENDER}  # the second one serves


def test_the_program_op_is_the_traced_runs_leaf_at_every_kind_of_position(job, honest):
    """The referee finds the program's op by an untraced run that numbers ops as a trace
    does: its leaf is the traced run's, bit for bit, at the first op, inside a step, at a
    step's last op and at the job's last op; past the end there is none."""
    steps = honest.steps
    positions = [(0, 0), (0, len(steps[0]) // 2), (1, len(steps[1]) - 1), (len(steps) - 1, len(steps[-1]) - 1)]
    for step, index in positions:
        found = job.program_op(step, index)
        assert found.record is not None and found.via == "replay"
        assert found.record.leaf_hash() == honest.leaf(step, index).leaf_hash(), (step, index)
        assert found.record.inputs is not None and len(found.record.inputs) == len(found.record.input_hashes)
    assert job.program_op(len(steps) - 1, len(steps[-1])).record is None
    assert job.program_op(len(steps), 0).record is None
