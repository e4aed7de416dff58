"""The bisection game on synthetic traces: first differing leaf, rounds, rejected moves."""

import hashlib
import random
from dataclasses import replace

import pytest

from verimesh.runtime.trace import OpRecord, Trace
from verimesh.verify.bisection import (
    Dispute,
    DisputeError,
    HonestParty,
    Level,
    OutcomeKind,
    Party,
    count_word,
    play,
)


def h(*parts) -> bytes:
    return hashlib.sha256(repr(parts).encode()).digest()


def make_trace(shape, wrong=None, salt=0):
    """shape: ops per step. ``wrong`` = set of (step, index) whose output hash differs."""
    trace = Trace()
    for s, n in enumerate(shape):
        trace.begin_step()
        for i in range(n):
            bad = wrong is not None and (s, i) in wrong
            trace.append(OpRecord(s, i, "add", {"k": i}, (h("in", s, i),), h("out", s, i, salt if bad else 0)))
    return trace


def run(a, b):
    dispute = Dispute(a.root, b.root)
    outcome = play(dispute, HonestParty(a), HonestParty(b))
    return dispute, outcome


@pytest.mark.parametrize("seed", range(25))
def test_finds_the_first_differing_leaf_in_log_rounds(seed):
    rng = random.Random(seed)
    shape = [rng.randint(1, 70) for _ in range(rng.randint(1, 40))]
    positions = [(s, i) for s, n in enumerate(shape) for i in range(n)]
    wrong = set(rng.sample(positions, rng.randint(1, 3)))
    honest, cheat = make_trace(shape), make_trace(shape, wrong, salt=1)
    dispute, outcome = run(cheat, honest)
    assert outcome.kind is OutcomeKind.LEAF
    assert (outcome.step, outcome.index) == min(wrong)
    n_steps, n_ops = len(shape), shape[outcome.step]
    assert dispute.rounds <= 2 * (2 + (n_steps - 1).bit_length() + (n_ops - 1).bit_length())
    d, c = HonestParty(cheat), HonestParty(honest)
    dispute.check_evidence(Party.DEFENDER, d.evidence(dispute))
    dispute.check_evidence(Party.CHALLENGER, c.evidence(dispute))


@pytest.mark.parametrize(
    ("a", "b", "level", "where"),
    [
        ([5, 5, 5], [5, 5], Level.STEPS, (2, 0)),
        ([5, 5], [5, 5, 5, 5, 5], Level.STEPS, (2, 0)),
        ([5, 7, 5], [5, 4, 5], Level.OPS, (1, 4)),
        ([5, 1, 5], [5, 9, 5], Level.OPS, (1, 1)),
    ],
)
def test_different_lengths_end_at_the_shorter_end(a, b, level, where):
    dispute, outcome = run(make_trace(a), make_trace(b))
    assert outcome.kind is OutcomeKind.LENGTH and outcome.level is level
    assert (outcome.step, outcome.index) == where
    for party, trace in zip(Party, (make_trace(a), make_trace(b)), strict=True):
        dispute.check_evidence(party, HonestParty(trace).evidence(dispute))


def test_equal_roots_and_bad_roots_are_refused():
    t = make_trace([3])
    with pytest.raises(DisputeError, match="nothing to dispute"):
        Dispute(t.root, t.root)
    with pytest.raises(DisputeError, match="32 bytes"):
        Dispute(b"x", t.root)


def test_out_of_turn_malformed_and_late_moves_are_rejected_without_state_change():
    a, b = make_trace([4, 4]), make_trace([4, 4], {(1, 2)}, salt=1)
    dispute = Dispute(a.root, b.root)
    assert dispute.timeout() is Party.DEFENDER
    with pytest.raises(DisputeError, match="defender's turn"):
        dispute.move(Party.CHALLENGER, count_word(2))
    with pytest.raises(DisputeError, match="32 bytes"):
        dispute.move(Party.DEFENDER, b"\x02")
    with pytest.raises(DisputeError, match="at least one step"):
        dispute.move(Party.DEFENDER, count_word(0))
    with pytest.raises(DisputeError, match="64-bit"):
        dispute.move(Party.DEFENDER, b"\xff" * 32)
    assert dispute.rounds == 0
    dispute.move(Party.DEFENDER, count_word(2))
    assert dispute.timeout() is Party.CHALLENGER  # the silent party loses
    with pytest.raises(DisputeError, match="challenger's turn"):
        dispute.move(Party.DEFENDER, count_word(2))
    dispute.move(Party.CHALLENGER, count_word(2))
    while dispute.query() is not None:
        party = dispute.turn
        dispute.move(party, HonestParty((a, b)[party]).answer(dispute.query()))
    with pytest.raises(DisputeError, match="over"):
        dispute.move(Party.DEFENDER, bytes(32))
    assert dispute.timeout() is None


def test_evidence_before_the_end_is_refused():
    a, b = make_trace([4]), make_trace([4], {(0, 1)}, salt=1)
    dispute = Dispute(a.root, b.root)
    with pytest.raises(DisputeError, match="not over"):
        dispute.check_evidence(Party.DEFENDER, HonestParty(a).evidence(Dispute(a.root, b.root)))


class Liar(HonestParty):
    """Answers one block query with a made-up hash, otherwise honestly."""

    lie_at: int = 0
    asked: int = 0

    def answer(self, query):
        if not query.is_count:
            self.asked += 1
            if self.asked == self.lie_at:
                return h("lie")
        return super().answer(query)


@pytest.mark.parametrize("lie_at", [1, 2, 3, 5])
def test_a_party_that_lied_in_a_round_cannot_produce_evidence(lie_at):
    shape = [8] * 8
    honest, cheat = make_trace(shape), make_trace(shape, {(5, 3)}, salt=1)
    liar = Liar(cheat)
    liar.lie_at = lie_at
    dispute = Dispute(cheat.root, honest.root)
    play(dispute, liar, HonestParty(honest))
    with pytest.raises(DisputeError, match="revealed is not the one"):
        dispute.check_evidence(Party.DEFENDER, liar.evidence(dispute))
    dispute.check_evidence(Party.CHALLENGER, HonestParty(honest).evidence(dispute))


def test_forged_proofs_and_records_are_rejected():
    shape = [6, 6, 6]
    honest, cheat = make_trace(shape), make_trace(shape, {(1, 4)}, salt=1)
    dispute, _ = run(cheat, honest)
    good = HonestParty(cheat).evidence(dispute)
    forged_record = replace(good, record=replace(good.record, output_hash=h("other")))
    with pytest.raises(DisputeError):
        dispute.check_evidence(Party.DEFENDER, forged_record)
    other_step = HonestParty(honest).evidence(dispute)
    with pytest.raises(DisputeError, match=r"trace root|not the one"):
        dispute.check_evidence(Party.DEFENDER, replace(good, step_root=other_step.step_root))
    wrong_index = replace(good, op_proof=replace(good.op_proof, index=0))
    with pytest.raises(DisputeError, match="must prove op"):
        dispute.check_evidence(Party.DEFENDER, wrong_index)
    short = replace(good, op_proof=replace(good.op_proof, siblings=good.op_proof.siblings[:-1]))
    with pytest.raises(DisputeError, match="malformed op proof"):
        dispute.check_evidence(Party.DEFENDER, short)
    # the honest party's evidence, offered by the cheat, does not lead to the cheat's root
    with pytest.raises(DisputeError):
        dispute.check_evidence(Party.DEFENDER, other_step)
