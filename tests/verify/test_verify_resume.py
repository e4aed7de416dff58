"""A committee member settles an instruction dispute from agreed leaves a party serves
(``node.evidence.agreed_leaves``): it walks the program's instruction from the disputed
layer and recomputes that one op on the inputs the agreed leaves name, or, when the parties'
leaves carry no input tensors, resumes at that layer. Nothing served is trusted until it is
proven under that party's committed trace root, at the position asked, before the first
difference."""

from dataclasses import replace

import numpy as np
import pytest

from verimesh.node.evidence import agreed_leaves
from verimesh.node.execute import leaf_evidence
from verimesh.runtime import ExecutionContext
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


def without_tensors(evidence):
    """The parties' final leaves without their input tensors: the disputed op cannot be
    recomputed from them alone."""
    return [replace(e, record=e.record and replace(e.record, inputs=None)) for e in evidence]


def test_the_defenders_proven_leaves_are_taken_and_the_ruling_recomputes_one_op(job, game):
    dispute, traces, evidence = game
    asked = []
    ruling = decide(dispute, *evidence, replace(job, agreed=agreed_leaves(dispute, serving(traces, asked))))
    assert ruling.method is Method.INSTRUCTION and ruling.guilty == {Party.DEFENDER}
    assert asked and all(party is Party.DEFENDER and index < dispute.outcome.index for party, index in asked)
    asked.clear()
    ruling = decide(dispute, *without_tensors(evidence), replace(job, agreed=agreed_leaves(dispute, serving(traces, asked))))
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


def test_a_leaf_served_without_its_tensors_is_still_proven_and_names_its_inputs(game):
    """What ``/trace?tensors=false`` serves is the full leaf without its input tensors: a
    leaf the member proves and reads hashes off."""
    dispute, traces, _ = game
    index = dispute.outcome.index - 1
    full = leaf_evidence(traces[Party.CHALLENGER], index)
    bare = leaf_evidence(traces[Party.CHALLENGER], index, tensors=False)
    stripped = {**full, "record": {k: v for k, v in full["record"].items() if k != "inputs"}}
    assert "inputs" in full["record"] and stripped == bare and "inputs" not in bare["record"]
    leaf = agreed_leaves(dispute, lambda party, i: bare)(index)
    assert leaf is not None and leaf.inputs is None
    assert leaf.leaf_hash() == traces[Party.CHALLENGER].leaf(0, index).leaf_hash()


def test_leaves_from_the_first_difference_on_are_refused_though_proven(game):
    """Only leaves before the first difference are in both traces: one at or after it is
    proven under its party's root, yet is no agreed leaf."""
    dispute, traces, _ = game
    leaf = agreed_leaves(dispute, serving(traces, []))
    first = dispute.outcome.index
    assert leaf(first - 1) is not None
    for index in (first, first + 1, len(traces[Party.DEFENDER].steps[0]), -1):
        assert leaf(index) is None


class CoarserLinearFrom(ExecutionContext):
    """Honest until op ``start`` (counted over the trace), then every linear op's shift + 1."""

    def __init__(self, start):
        super().__init__(keep_tensors=True)
        self.start = start

    def call(self, op_name, *inputs, **params):
        if op_name == "linear" and self.trace.op_count >= self.start:
            inputs = (*inputs[:3], np.asarray(inputs[3] + 1, dtype=inputs[3].dtype))
        return super().call(op_name, *inputs, **params)


@pytest.mark.parametrize("case", ["one-sentence", "second-bucket"])
def test_an_embedding_job_is_settled_at_its_layer_in_its_bucket(minilm_model, case):
    """A MiniLM batch that another program computed (a skipped last layer; coarser linear
    layers from the second bucket's forward on: a batch of more than 16 texts runs one
    forward per bucket): the referee walks from, or resumes at, the norm that enters the
    disputed layer, in whichever bucket's forward the op is, with the ruling of the prefix
    replay."""
    impl = minilm_model.impl
    per_forward = impl.forward_ops()
    texts = 1 if case == "one-sentence" else 20
    sentences = [f"Sentence number {i} is about {'cats' if i % 2 else 'the weather today'}." for i in range(texts)]
    job = JobRun(minilm_model, "embed", sentences[0], {"texts": sentences} if texts > 1 else {})
    honest = job.trace()
    if case == "one-sentence":
        cheat = adversary.cheat_run(job, adversary.skip_last_layer(job.model)).trace()
    else:
        cheat = job.trace(CoarserLinearFrom(per_forward + impl.PREFIX_OPS + 2 * impl.LAYER_OPS))
    dispute = Dispute(cheat.root, honest.root)
    d, c = HonestParty(cheat), HonestParty(honest)
    play(dispute, d, c)
    evidence = (d.evidence(dispute), c.evidence(dispute))
    instructed = decide(dispute, *evidence, replace(job, agreed=agreed_leaves(dispute, serving((cheat, honest), []))))
    asked = []
    leaf = agreed_leaves(dispute, serving((cheat, honest), asked))
    resumed = decide(dispute, *without_tensors(evidence), replace(job, agreed=leaf))
    replayed = decide(dispute, *evidence, job)
    assert (instructed.method, resumed.method, replayed.method) == (Method.INSTRUCTION, Method.RESUME, Method.REPLAY)
    assert instructed.guilty == resumed.guilty == replayed.guilty == {Party.DEFENDER}
    assert instructed.recomputed_output == resumed.recomputed_output == replayed.recomputed_output == (
        honest.leaf(0, dispute.outcome.index).output_hash
    )
    assert dispute.outcome.index // per_forward == (0 if case == "one-sentence" else 1)
    (_party, at), = asked
    assert honest.leaf(0, at).op == "layernorm" and at < dispute.outcome.index


class OtherInput(ExecutionContext):
    """The program, except that op ``target`` (counted over the trace) reads its first input
    with one low bit flipped: that leaf's instruction (an input hash) is not the program's,
    and every later op computes honestly from what it read."""

    def __init__(self, target):
        super().__init__(keep_tensors=True)
        self.target = target

    def call(self, op_name, *inputs, **params):
        if self.trace.op_count == self.target:
            first = np.array(inputs[0], copy=True)
            first.reshape(-1)[0] ^= 1
            inputs = (first, *inputs[1:])
        return super().call(op_name, *inputs, **params)


@pytest.mark.parametrize("seed", [None, 5], ids=["greedy", "sampled"])
def test_one_op_resume_and_replay_rule_alike_wherever_the_instruction_differs(job, seed):
    """At ops spread over every step of a generation (the prefix, inside layers before and
    after the cache reads, the head, the token choice), the program's op the referee finds
    by walking to its instruction and recomputing it, or by resuming at its layer, is the
    one the replay finds, and the cheat is guilty as either party."""
    job = replace(job, params={**job.params, "seed": seed})
    honest = job.trace()
    impl = job.model.impl
    targets = sorted({int(t) for t in np.linspace(0, honest.op_count - 1, 15)} | {len(honest.steps[0]) + 17})
    resumed_somewhere = set()
    for target in targets:
        cheat = job.trace(OtherInput(target))
        step, index = honest.position(target)
        for cheater in Party:
            roots = (cheat, honest) if cheater is Party.DEFENDER else (honest, cheat)
            dispute = Dispute(roots[0].root, roots[1].root)
            d, c = HonestParty(roots[0]), HonestParty(roots[1])
            play(dispute, d, c)
            assert (dispute.outcome.step, dispute.outcome.index) == (step, index)
            evidence = (d.evidence(dispute), c.evidence(dispute))
            agreed = replace(job, agreed=lambda i: honest.leaf(*honest.position(i)))
            instructed, replayed = decide(dispute, *evidence, agreed), decide(dispute, *evidence, job)
            resumed = decide(dispute, *without_tensors(evidence), agreed)
            assert instructed.guilty == resumed.guilty == replayed.guilty == {cheater}, (target, resumed.reasons)
            assert instructed.recomputed_output == resumed.recomputed_output == replayed.recomputed_output
            assert instructed.method is Method.INSTRUCTION, target
            assert resumed.method is (Method.RESUME if index >= impl.PREFIX_OPS else replayed.method), target
            if resumed.method is Method.RESUME:
                resumed_somewhere.add((step, step > 0 and index >= impl.PREFIX_OPS + impl.cache_reads(1)))
    assert {step for step, _ in resumed_somewhere} == set(range(len(honest.steps)))
    assert (1, True) in resumed_somewhere  # a layer that read its cache, resumed with the agreed one


@pytest.mark.parametrize("case", ["greedy", "sampled", "one-sentence", "two-buckets"])
def test_the_answer_read_off_a_trace_is_the_jobs_output(tiny_model, minilm_model, case):
    """What a member reads off the one trace both parties committed to (its answer ops,
    recomputed) is the job's output tensor; a missing or altered answer leaf gives nothing."""
    if case in ("greedy", "sampled"):
        job = JobRun(tiny_model, "generate", "ROMEO:", {"max_tokens": 4, "seed": 5 if case == "sampled" else None})
    else:
        texts = [f"Text {i} says {'hello' * (i % 3 + 1)}." for i in range(1 if case == "one-sentence" else 20)]
        job = JobRun(minilm_model, "embed", texts[0], {"texts": texts} if len(texts) > 1 else {})
    ctx = ExecutionContext(keep_tensors=True)
    output = job.run(ctx).tensor
    trace = ctx.trace
    asked = []

    def leaf(leaf_index):
        asked.append(leaf_index)
        return trace.leaf(*trace.position(leaf_index))

    answer = job.answer(leaf)
    assert answer is not None and answer.dtype == output.dtype and np.array_equal(answer, output)
    assert len(asked) == len(trace.steps)  # one answer op per step
    last = asked[-1]
    assert job.answer(lambda i: None if i == last else leaf(i)) is None
    assert job.answer(lambda i: replace(leaf(i), output_hash=bytes(32)) if i == last else leaf(i)) is None
