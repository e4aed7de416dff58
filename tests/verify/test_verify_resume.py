"""A committee member resumes an instruction dispute at its layer from agreed leaves a
party serves (``node.evidence.agreed_leaves``): nothing served is trusted until it is
proven under that party's committed trace root, at the position asked, before the first
difference."""

from dataclasses import replace

import pytest

from verimesh.node.evidence import agreed_leaves
from verimesh.node.execute import leaf_evidence
from verimesh.verify import adversary
from verimesh.verify.bisection import Dispute, HonestParty, Party, play
from verimesh.verify.referee import Method, decide
from verimesh.verify.replay import JobRun


@pytest.fixture(scope="module")
def job(tiny_model):
    return JobRun(tiny_model, "generate", "ROMEO:", {"max_tokens": 3})


@pytest.fixture(scope="module")
def game(job):
    """A skipped last layer (the defender) against the honest trace, bisected to its leaf."""
    honest = job.trace()
    cheat = adversary.cheat_run(job, adversary.skip_last_layer(job.model)).trace()
    dispute = Dispute(cheat.root, honest.root)
    d, c = HonestParty(cheat), HonestParty(honest)
    outcome = play(dispute, d, c)
    assert outcome.step == 0
    return dispute, (cheat, honest), (d.evidence(dispute), c.evidence(dispute))


def serving(traces, asked, tamper=None):
    """Each party serves its own trace's leaves, as ``/v1/jobs/{id}/trace`` does."""

    def source(party, index):
        asked.append((party, index))
        body = leaf_evidence(traces[party], index)
        return tamper(party, body) if tamper else body

    return source


def test_the_defenders_proven_leaf_is_taken_and_the_ruling_resumes(job, game):
    dispute, traces, evidence = game
    asked = []
    ruling = decide(dispute, *evidence, replace(job, agreed=agreed_leaves(dispute, serving(traces, asked))))
    assert ruling.method is Method.RESUME and ruling.guilty == {Party.DEFENDER}
    (party, index), = asked
    assert party is Party.DEFENDER and index < dispute.outcome.index


def test_a_leaf_proven_under_no_committed_root_is_refused_and_the_other_party_asked(game):
    dispute, traces, _ = game
    index = dispute.outcome.index - 1

    def forged(party, body):  # the defender serves its leaf under another trace's proof
        if party is Party.DEFENDER:
            body = dict(body, proof=leaf_evidence(traces[Party.CHALLENGER], index + 1)["proof"])
        return body

    asked = []
    leaf = agreed_leaves(dispute, serving(traces, asked, forged))
    assert leaf(index).leaf_hash() == traces[Party.CHALLENGER].leaf(0, index).leaf_hash()
    assert asked == [(Party.DEFENDER, index), (Party.CHALLENGER, index)]


@pytest.mark.parametrize(
    "tamper",
    [
        lambda party, body: None,  # nobody serves
        lambda party, body: {"record": "not a record"},  # garbage
        lambda party, body: dict(body, record=dict(body["record"], op="mul")),  # a leaf its proof does not hold
    ],
    ids=["none-served", "garbage", "altered-record"],
)
def test_nothing_usable_served_leaves_the_referee_the_replay(job, game, tamper):
    dispute, traces, evidence = game
    asked = []
    leaf = agreed_leaves(dispute, serving(traces, asked, tamper))
    assert leaf(dispute.outcome.index - 1) is None
    ruling = decide(dispute, *evidence, replace(job, agreed=leaf))
    assert ruling.method is Method.REPLAY and ruling.guilty == {Party.DEFENDER}


def test_leaves_from_the_first_difference_on_are_refused_though_proven(game):
    """Only leaves before the first difference are in both traces: one at or after it is
    proven under its party's root, yet is no agreed leaf."""
    dispute, traces, _ = game
    leaf = agreed_leaves(dispute, serving(traces, []))
    first = dispute.outcome.index
    assert leaf(first - 1) is not None
    for index in (first, first + 1, len(traces[Party.DEFENDER].steps[0]), -1):
        assert leaf(index) is None
