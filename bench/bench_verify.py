"""Verification figures: audit economics simulation, dispute cost, honest-case overhead.

Run: .venv/bin/python bench/bench_verify.py [--trials 20000] [--tokens 16] [--write docs/bench-verify.md]

(a) 1,000 jobs with 10% cheating providers under audit(p), with JobMarket's devnet
    parameters (price 2 VMT, bond max(10 VMT, 2 x price), audit fee 100% of the price,
    slash split 50% bounty / 30% requester / 20% burned, provider stake 200 VMT, minimum
    100 VMT: a provider is ejected once slashes take its stake below the minimum).
    Vectorised over --trials independent markets.
(b) Dispute cost on real traces (tiny decoder "tiny-shakespeare", MiniLM "minilm"): moves
    of the bisection, referee CPU time for the one-op recompute vs CPU time of the whole
    job, and the program's op in an instruction dispute, replayed vs resumed at its layer vs
    walked to and recomputed alone, in step 0 and deep in a generation; gas of a whole
    dispute with the DisputeCommittee (challenge, the bisection's moves, refer_dispute,
    request_committee, draw_committee, submit_verdict) on a deploy_network deployment on
    the in-process EVM, played by the nodes' own DisputePlayer and ruling.
(c) Honest-case verification overhead per mode: CPU-seconds verifying / computing, for
    full re-execution and for the validator's spot audits (generations: every token and
    two traced steps; embedding batches: sampled rows, one audit in four in full).
"""

from __future__ import annotations

import argparse
import gc
import os
import random
import time
from dataclasses import replace
from itertools import zip_longest
from pathlib import Path

# One BLAS thread for every run measured here (set before numpy loads BLAS): CPU-seconds of
# a multi-threaded BLAS include its worker threads' spin-waits, which inflate batched
# forwards (a spot audit's cache rebuild) far more than one-token steps, so ratios of CPU
# time would measure BLAS scheduling, not work. A node's worker runs on its capped cores too.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np

from verimesh.benchinfo import machine
from verimesh.chain.accounts import Signer, dev_signer
from verimesh.chain.backends.base import Receipt
from verimesh.chain.backends.boa import BoaBackend
from verimesh.chain.client import Network
from verimesh.chain.deploy import deploy_network, fund_accounts
from verimesh.chain.job_market import JobState, Mode, Turn, commitment
from verimesh.chain.lifecycle import CAPABILITIES, VMT, WINDOW, register_providers
from verimesh.chain.registry import Role
from verimesh.crypto.merkle import blob_root
from verimesh.models.api import load_model
from verimesh.node.dispute import DisputePlayer, replay_game
from verimesh.node.evidence import PostedJob, rule, verdict_of
from verimesh.node.execute import execute
from verimesh.node.jobs import decode_input, hex_root, make_spec
from verimesh.runtime import ExecutionContext, canonical_bytes
from verimesh.runtime.tensor import from_canonical_bytes, tensor_hash
from verimesh.runtime.trace import recompute
from verimesh.verify import adversary
from verimesh.verify.bisection import Dispute, HonestParty, play
from verimesh.verify.committee import GUILTY_DEFENDER, aggregate, sign_verdict
from verimesh.verify.economics import (
    BondRule,
    detection_probability,
    detection_with_colluding_auditors,
    expected_cheat_profit,
)
from verimesh.verify.referee import decide
from verimesh.verify.replay import JobRun
from verimesh.verify.spot import (
    EMBED_FULL_SHARE,
    SpotUnavailable,
    rows_to_check,
    spot_check,
    spot_check_embeddings,
)

ROOT = Path(__file__).resolve().parent.parent
HEADER = """# Verification benchmarks (bench/bench_verify.py)

What the figures mean and how the game works: docs/verification.md. Everything below is
the output of one run of the command on the first line.

"""

# JobMarket / Registry devnet parameters (docs/contracts.md, tests/contracts/contract_world.py)
PRICE = 2.0
BOND = BondRule(min_bond=10.0, multiplier_bps=20_000).bond(PRICE)
AUDIT_FEE = PRICE
BOUNTY, REQUESTER_SHARE = 0.5, 0.3
STAKE, MIN_STAKE = 200.0, 100.0
# The disputed job's committee: drawn from this many staked validators (size and threshold
# are deploy_network's defaults, NetworkParams.committee_size / committee_threshold).
DISPUTE_VALIDATORS = 7
COMMITTEE_TXS = ("refer_dispute", "request_committee", "draw_committee", "submit_verdict")
SPOT_PROMPT = "ROMEO: But soft, what light through yonder window breaks?"


def simulate(p: float, trials: int, jobs: int = 1000, providers: int = 10, cheaters: int = 1,
             compute_cost: float = 1.0, seed: int = 1, colluding: float = 0.0) -> dict[str, float]:
    """Markets of ``jobs`` jobs spread uniformly over ``providers``; ``cheaters`` of them
    skip the work on every job (gain = compute_cost). An audited cheat is always caught
    (bisection + referee), slashing the bond; a provider is ejected below the min stake.
    ``colluding``: the share of audits drawn to a validator that agrees without checking
    (the cheats' accomplice, or a lazy one): such an audit catches nothing."""
    rng = np.random.default_rng(seed)
    assign = rng.integers(0, providers, size=(trials, jobs))
    audited = rng.random((trials, jobs)) < p
    if colluding:
        audited &= rng.random((trials, jobs)) >= colluding
    max_catches = int((STAKE - MIN_STAKE) // BOND) + 1  # slashes until ejected
    cheat_net = np.zeros(trials)
    caught_any = np.zeros((trials, cheaters), dtype=bool)
    by70, with70 = 0, 0
    undetected = np.zeros(trials)
    cheated = np.zeros(trials)
    rerouted = np.zeros(trials)
    for c in range(cheaters):
        mine = assign == c
        catch = mine & audited
        catches_before = np.cumsum(catch, axis=1) - catch
        active = mine & (catches_before < max_catches)
        rerouted += (mine & ~active).sum(axis=1)  # ejected: its later jobs go to honest nodes
        caught = active & audited
        passed = active & ~audited
        cheat_net += passed.sum(axis=1) * PRICE - caught.sum(axis=1) * BOND
        undetected += passed.sum(axis=1)
        cheated += active.sum(axis=1)
        caught_any[:, c] = caught.any(axis=1)
        # target: a provider cheating on >= 70 jobs is caught within its first 70 cheats
        order = np.cumsum(mine, axis=1)
        has70 = order[:, -1] >= 70
        first70 = mine & (order <= 70)
        with70 += int(has70.sum())
        by70 += int(((first70 & audited).any(axis=1) & has70).sum())
    honest_jobs = jobs - cheated
    audits = audited.sum(axis=1)
    honest_net = honest_jobs * (PRICE - compute_cost)
    return {
        "p": p,
        "detected_providers": float(caught_any.mean()),
        "detected_by_70": by70 / with70 if with70 else float("nan"),
        "samples_70": with70,
        "analytic_70": detection_with_colluding_auditors(p, colluding, 70),
        "undetected_wrong_jobs": float(undetected.mean()),
        "cheat_net": float(cheat_net.mean()),
        "cheat_if_honest": float((cheated * (PRICE - compute_cost)).mean()),
        "honest_net": float(honest_net.mean()),
        "rerouted": float(rerouted.mean()),
        "validator_net": float((audits * (AUDIT_FEE - compute_cost)).mean()),
        "expected_profit_per_cheat": expected_cheat_profit(p, BOND, PRICE, compute_cost),
    }


def cpu(fn):
    start = time.process_time()
    out = fn()
    return time.process_time() - start, out


def job_cpu_seconds(job: JobRun, reps: int = 5) -> float:
    """Best-of-``reps`` CPU time of the provider's traced run (the machine is shared)."""
    return min(cpu(lambda: job.run(ExecutionContext()))[0] for _ in range(reps))


def dispute_cost(job: JobRun, targets: list[int]) -> dict[str, float]:
    job_cpu = job_cpu_seconds(job)
    honest = job.trace()
    rounds, fractions, ops = [], [], []
    for t in targets:
        cheat = job.trace(adversary.WrongOpContext(t))
        dispute = Dispute(cheat.root, honest.root)
        d, c = HonestParty(cheat), HonestParty(honest)
        outcome = play(dispute, d, c)
        ruling = decide(dispute, d.evidence(dispute), c.evidence(dispute))
        assert ruling.guilty_code == 1, ruling
        record = honest.leaf(outcome.step, outcome.index)
        seconds, out = min(
            (cpu(lambda record=record: [recompute(record) for _ in range(20)]) for _ in range(3)),
            key=lambda pair: pair[0],
        )
        assert tensor_hash(out[0]) == record.output_hash
        rounds.append(dispute.rounds)
        fractions.append(seconds / 20 / job_cpu)
        ops.append(record.op)
        if dispute.rounds == max(rounds):
            longest = cheat
    return {
        "ops": honest.op_count,
        "steps": len(honest.steps),
        "job_cpu": job_cpu,
        "rounds_max": max(rounds),
        "rounds_mean": float(np.mean(rounds)),
        "referee_fraction_max": max(fractions),
        "referee_fraction_mean": float(np.mean(fractions)),
        "ops_checked": ", ".join(sorted(set(ops))),
        "honest": honest,
        "longest": longest,  # the cheat trace whose bisection took the most moves
    }


STEP0_CHEATS = (
    ("skipped last layer", adversary.skip_last_layer),
    ("model swap (half the layers)", adversary.smaller_model),
    ("lower precision (one shift + 2)", adversary.lower_precision),
)


def without_tensors(evidence):
    """The parties' final leaves without their input tensors: what makes the referee resume
    at the disputed layer instead of recomputing the one op (verify/replay.py)."""
    return [replace(e, record=e.record and replace(e.record, inputs=None)) for e in evidence]


def instruction_rulings(job: JobRun, honest, evidence, claim=None) -> dict[str, tuple]:
    """How a referee finds the program's op in an instruction dispute, cheapest first, each
    as (job, evidence) for ``decide``: walked to and recomputed alone (served the agreed
    leaves), resumed at its layer (the same leaves, but no party tensors for the op), fast-
    forwarded to its step (``claim``: a served output the program confirms), replayed."""
    agreed = replace(job, agreed=lambda i: honest.leaf(*honest.position(i)))
    ways = {"one op": (agreed, evidence), "resume": (agreed, without_tensors(evidence))}
    if claim is not None:
        ways["forward"] = (replace(job, claims=(claim,)), evidence)
    ways["replay"] = (job, evidence)
    return ways


def step0_instruction_cost(job: JobRun, make, reps: int = 3) -> dict[str, float]:
    """A cheat that runs another program from step 0 on (every step differs, so the first
    differing leaf is in step 0): the referee's best-of-``reps`` CPU for the program's op
    there, replaying the prefix of step 0 vs resuming at the disputed layer from the agreed
    leaf before it vs walking to the op's instruction and recomputing it alone (leaves
    served here from the honest trace), as a share of the job's CPU."""
    gc.collect()  # the garbage of earlier traces is not this measurement's work
    job_cpu = job_cpu_seconds(job)
    honest = job.trace()
    cheat = adversary.cheat_run(job, make(job.model)).trace()
    dispute = Dispute(cheat.root, honest.root)
    d, c = HonestParty(cheat), HonestParty(honest)
    play(dispute, d, c)
    evidence = (d.evidence(dispute), c.evidence(dispute))
    figures: dict[str, float] = {"rounds": dispute.rounds}
    outputs = set()
    for name, (run, given) in instruction_rulings(job, honest, evidence).items():
        best = None
        for _ in range(reps):
            seconds, ruling = cpu(lambda run=run, given=given: decide(dispute, *given, run))
            assert ruling.guilty_code == 1 and ruling.step == 0, ruling
            best = seconds if best is None else min(best, seconds)
        outputs.add(ruling.recomputed_output)
        figures[name] = best / job_cpu
        figures[name + "_method"] = ruling.method.value
    assert len(outputs) == 1, "every way finds the same program op"
    figures["at"] = f"{ruling.step}/{ruling.index} of {len(honest.steps[0])}"
    return figures


def answer_cost(job: JobRun, reps: int = 3) -> float:
    """One trace, two outputs: the member's best-of-``reps`` CPU to read the job's answer
    off the trace (each step's answer op recomputed, ``JobRun.answer``), as a share of the
    job's CPU (what re-executing it would cost)."""
    gc.collect()
    job_cpu = job_cpu_seconds(job)
    trace = job.trace()
    expected = job.run(ExecutionContext(trace=False)).tensor
    best = None
    for _ in range(reps):
        seconds, answer = cpu(lambda: job.answer(lambda i: trace.leaf(*trace.position(i))))
        assert answer is not None and np.array_equal(answer, expected)
        best = seconds if best is None else min(best, seconds)
    return best / job_cpu


def zoo_games(model, reps: int = 5) -> list[tuple[str, int, str, float, float, float]]:
    """The model-level games the zoo plays (tiny decoder, 3 tokens, seed 5, as
    tests/zoo/test_zoo_replicate.py), and its fabricated trace: (cheat, moves, where the
    game ends, referee ms recomputing the one op, resuming at its layer (the replay where
    no layer comes before the op), replaying), best of ``reps`` each."""
    job = JobRun(model, "generate", "ROMEO:", {"max_tokens": 3, "seed": 5})
    honest = job.trace()
    cheats = {
        "model-swap": adversary.cheat_run(job, adversary.smaller_model(model)).trace(),
        "skip-layers": adversary.cheat_run(job, adversary.skip_last_layer(model)).trace(),
        "lower-precision": adversary.cheat_run(job, adversary.lower_precision(model)).trace(),
        "lower-precision-late": job.trace(adversary.LowerPrecisionFrom(2)),
        "random-output": adversary.random_output(model, job.task, job.params, b"bench")[2],
    }
    rows = []
    for name, cheat in cheats.items():
        dispute = Dispute(cheat.root, honest.root)
        d, c = HonestParty(cheat), HonestParty(honest)
        outcome = play(dispute, d, c)
        evidence = (d.evidence(dispute), c.evidence(dispute))
        best = {}
        for label, (run, given) in instruction_rulings(job, honest, evidence).items():
            best[label] = min(cpu(lambda r=run, g=dispute, e=given: decide(g, *e, r))[0] for _ in range(reps))
        rows.append((name, dispute.rounds, f"{outcome.step}/{outcome.index}",
                     *(1000 * best[label] for label in ("one op", "resume", "replay"))))
    return rows


def late_replay_cost(job: JobRun, reps: int = 3) -> dict[str, float]:
    """An instruction dispute in the LAST step (lower precision from there on): the referee
    replays every step before it, or, with the defender's served output confirmed by one
    batched forward, runs the last step alone (``JobRun.claims``), or, served the agreed
    residual entering the disputed layer, runs that layer alone (``JobRun.agreed``), or,
    served the agreed leaves and the parties' tensors, recomputes the one op."""
    gc.collect()
    job_cpu = job_cpu_seconds(job)
    honest = job.trace()
    last = len(honest.steps) - 1
    cheat_ctx = adversary.LowerPrecisionFrom(last)
    claim = tuple(int(t) for t in job.run(cheat_ctx).tensor)
    cheat = cheat_ctx.trace
    assert cheat is not None
    dispute = Dispute(cheat.root, honest.root)
    d, c = HonestParty(cheat), HonestParty(honest)
    play(dispute, d, c)
    evidence = (d.evidence(dispute), c.evidence(dispute))
    figures: dict[str, float] = {"step": last, "rounds": dispute.rounds}
    for name, (run, given) in instruction_rulings(job, honest, evidence, claim).items():
        best = None
        for _ in range(reps):
            seconds, ruling = cpu(lambda run=run, given=given: decide(dispute, *given, run))
            assert ruling.guilty_code == 1 and ruling.step == last
            best = seconds if best is None else min(best, seconds)
        figures[name] = best / job_cpu
        figures[name + "_method"] = ruling.method.value
    return figures


class MeteredBackend(BoaBackend):
    """The in-process EVM, keeping (function, gas used) of every transaction it mines."""

    def __init__(self) -> None:
        super().__init__()
        self.gas: list[tuple[str, int]] = []

    def transact(self, sender: Signer, to: str, data: bytes, value: int = 0, gas: int | None = None,
                 function: str | None = None) -> Receipt:
        receipt = super().transact(sender, to, data, value, gas, function)
        self.gas.append((function or "?", receipt.gas_used))
        return receipt


def dispute_world() -> tuple[MeteredBackend, Network, dict]:
    """A deployment as ``verimesh devnet up`` makes it (the DisputeCommittee is JobMarket's
    referee) with a requester, a provider, an outside challenger and 7 staked validators."""
    backend = MeteredBackend()
    deployer = dev_signer(0)
    net = deploy_network(backend, deployer)
    requester, provider, challenger = dev_signer(1), dev_signer(2), dev_signer(3)
    validators = [dev_signer(i) for i in range(4, 4 + DISPUTE_VALIDATORS)]
    everyone = [requester, provider, challenger, *validators]
    fund_accounts(net, deployer, [a.address for a in everyone], 10_000 * VMT)
    register_providers(net, [provider], 200 * VMT, 2 * VMT)
    for v in validators:
        net.token.approve(net.registry.address, 200 * VMT, signer=v)
        net.registry.register(Role.VALIDATOR, 200 * VMT, "http://127.0.0.1:9100", CAPABILITIES, 0, signer=v)
    for account in (requester, challenger):
        net.token.approve(net.job_market.address, 10_000 * VMT, signer=account)
    people = {"requester": requester, "provider": provider, "challenger": challenger, "validators": validators}
    return backend, net, people


def one_dispute(backend: MeteredBackend, net: Network, people: dict, cheat, honest) -> list[tuple[str, int]]:
    """An audit(0) job whose provider committed ``cheat``, challenged from outside by a holder
    of ``honest``; both sides play the bisection with the nodes' DisputePlayer, the committee
    members rule as node.evidence does and 3 of the 5 drawn sign; returns the dispute's
    transactions from the challenge on, each with its gas."""
    jm, committee = net.job_market, net.committee
    requester, provider, challenger = people["requester"], people["provider"], people["challenger"]
    spec, model, data = (blob_root(b"bench_verify %s" % x) for x in (b"spec", b"model", b"input"))
    posted = jm.post_job(spec, model, data, Mode.AUDIT, 0, int(PRICE * VMT), WINDOW, WINDOW, WINDOW,
                         signer=requester)
    job_id, output_root, salt = posted.job_id, blob_root(b"the provider's output"), bytes(32)
    jm.commit(job_id, commitment(job_id, provider.address, output_root, cheat.root, salt), signer=provider)
    jm.reveal(job_id, output_root, cheat.root, salt, signer=provider)
    first = len(backend.gas)
    jm.challenge(job_id, 0, signer=challenger)
    clock = backend.timestamp
    players = [DisputePlayer(jm.as_signer(who), job_id, trace, clock=clock)
               for who, trace in ((provider, cheat), (challenger, honest))]
    for _ in range(200):  # until the party due to move after the leaf refers the game
        statuses = [p.tick() for p in players]
        if jm.disputes(job_id).turn == Turn.REFEREE:
            break
    assert all(s.phase == "over" for s in statuses), statuses
    state = replay_game(jm, job_id)
    posted_job = PostedJob(spec_hash=hex_root(spec), model_root=hex_root(model), input_root=hex_root(data))
    ruling = rule(state, (players[0].evidence_json(), players[1].evidence_json()), posted_job)
    assert ruling.guilty_code == GUILTY_DEFENDER, ruling
    committee.request_committee(job_id, signer=requester)
    drawn = committee.draw_committee(job_id, signer=requester)
    keys = {v.address: v for v in people["validators"]}
    verdict = verdict_of(ruling, job_id, drawn.dispute_round)
    signatures = [sign_verdict(keys[m], verdict, committee.domain(), drawn.deadline)
                  for m in drawn.members[:drawn.threshold]]
    tx = committee.submit_verdict(aggregate(verdict, drawn.deadline, signatures), signer=requester)
    assert tx.event("DisputeResolved", jm.address)["winner"] == challenger.address
    assert jm.jobs(job_id).state == JobState.FINALIZED
    return backend.gas[first:]


def dispute_gas(cheat, honest) -> dict[str, float]:
    """Gas of a whole dispute with the committee, as real transactions on a deployment of the
    package (``deploy_network``); the second of two disputes is measured (warm accounts, as on
    a live market)."""
    backend, net, people = dispute_world()
    one_dispute(backend, net, people, cheat, honest)
    txs = one_dispute(backend, net, people, cheat, honest)
    by_function: dict[str, list[int]] = {}
    for function, gas in txs:
        by_function.setdefault(function, []).append(gas)
    moves = by_function["dispute_move"]
    committee = sum(sum(by_function[f]) for f in COMMITTEE_TXS)
    return {
        "challenge": by_function["challenge"][0],
        "moves": len(moves),
        "move_first": moves[0],
        "move_mean": float(np.mean(moves)),
        "moves_total": sum(moves),
        **{f: by_function[f][0] for f in COMMITTEE_TXS},
        "committee": committee,
        "members": net.committee.committee_size(),
        "threshold": net.committee.threshold(),
        "total": sum(gas for _, gas in txs),
    }


def overhead(job: JobRun, reps: int = 15) -> dict[str, float]:
    """The provider's traced run + trace root (what it reveals) vs a validator's re-run +
    root (compared with the revealed one), interleaved, median of ``reps``. Same work: the
    ratio is ~1 up to timing noise; the overhead of a mode is how often it is paid."""
    computes, verifies = [], []
    revealed = job.trace(ExecutionContext()).root
    for _ in range(reps):
        computes.append(cpu(lambda: job.trace(ExecutionContext()).root)[0])
        verifies.append(cpu(lambda: job.trace(ExecutionContext()).root == revealed)[0])
    return {"compute": float(np.median(computes)), "reexecute": float(np.median(verifies))}


def spot_overhead(job: JobRun, reps: int) -> dict[str, float]:
    """The provider's traced run vs a validator's spot audit of its claim (every token, the
    trace at the last step and one sampled other, verify/spot.py), interleaved, median of
    ``reps``; every audit must pass (an honest claim)."""
    ctx = ExecutionContext()
    out = job.run(ctx)
    assert ctx.trace is not None
    data, roots = canonical_bytes(out.tensor), ctx.trace.step_roots
    output_root, trace_root = blob_root(data), ctx.trace.root  # the claim's revealed roots
    computes, spots = [], []
    for i in range(reps):
        computes.append(cpu(lambda: job.trace(ExecutionContext()).root)[0])
        seconds, result = cpu(lambda i=i: spot_check(job.model.impl, job.text, job.params, data, output_root,
                                                     trace_root, roots, random.Random(i)))  # fmt: skip
        assert result.ok, result.mismatch
        spots.append(seconds)
    return {"compute": float(np.median(computes)), "spot": float(np.median(spots))}


def spot_detection(model_root: str, params: dict, audits: int) -> dict[str, tuple[float, int]]:
    """Per provider cheat: the share of ``audits`` spot audits (each with its own random
    steps) that catch it, and how many steps of its claim differ from the honest trace."""
    honest, _ = execute(*_spec(model_root, params), behaviour=adversary.Behaviour.HONEST)
    impl = load_model(model_root).impl
    found = {}
    for behaviour in sorted(b for b in adversary.PROVIDER_BEHAVIOURS if b.computes_wrong):
        claim, _ = execute(*_spec(model_root, params), behaviour=behaviour)
        differ = sum(a != b for a, b in zip_longest(honest.step_roots, claim.step_roots))  # missing = differs
        caught = 0
        for i in range(audits):
            try:
                caught += not spot_check(impl, SPOT_PROMPT, params, claim.output_bytes,
                                         claim.output_root, claim.trace_root, list(claim.step_roots),
                                         random.Random(i)).ok  # fmt: skip
            except SpotUnavailable:  # not even spot-checkable: the validator re-runs the job in full
                caught += 1
        found[behaviour.value] = (caught / audits, differ)
    return found


def embedding_batch(rows: int) -> list[str]:
    """``rows`` sentences of MiniLM's evaluation set (the same ones for every run)."""
    from verimesh.models.minilm import DATA

    sentences = [s for s in (DATA / "minilm_eval_sentences.txt").read_text().splitlines() if s]
    return sentences[:rows]


def embedding_spot_overhead(texts: list[str], reps: int) -> dict[str, float]:
    """A MiniLM batch: the provider's traced run vs a spot audit of its claim (sampled rows
    re-embedded untraced; the full-rerun coin set to 0 so each audit samples), interleaved,
    median of ``reps``; every audit must pass (an honest claim)."""
    job = JobRun(load_model("minilm"), "embed", texts[0], {"texts": texts})
    ctx = ExecutionContext()
    out = job.run(ctx)
    assert ctx.trace is not None
    data, roots = canonical_bytes(out.tensor), ctx.trace.step_roots
    output_root, trace_root = blob_root(data), ctx.trace.root
    computes, spots = [], []
    for i in range(reps):
        computes.append(cpu(lambda: job.trace(ExecutionContext()).root)[0])
        seconds, result = cpu(lambda i=i: spot_check_embeddings(job.model.impl, job.text, job.params, data, output_root,
                                                                trace_root, roots, random.Random(i), full_share=0))  # fmt: skip
        assert result.ok, result.mismatch
        spots.append(seconds)
    return {"compute": float(np.median(computes)), "spot": float(np.median(spots))}


def embedding_spot_detection(texts: list[str], audits: int) -> dict[str, float]:
    """Per provider cheat on a MiniLM batch: the share of ``audits`` spot audits (their own
    rows and full-rerun coin each) that catch it; a full re-run draw counts as caught (it
    compares both roots). Plus a lie in one row only."""
    root = load_model("minilm").root_hex
    spec, data = make_spec(root, "embed", texts)
    impl = load_model(root).impl
    params = {"texts": texts}

    def caught_share(claim) -> float:
        caught = 0
        for i in range(audits):
            try:
                caught += not spot_check_embeddings(impl, texts[0], params, claim.output_bytes, claim.output_root,
                                                    claim.trace_root, list(claim.step_roots), random.Random(i)).ok  # fmt: skip
            except SpotUnavailable:
                caught += 1
        return caught / audits

    found = {}
    for behaviour in sorted(b for b in adversary.PROVIDER_BEHAVIOURS if b.computes_wrong):
        try:
            claim, _ = execute(spec, decode_input(data), behaviour=behaviour)
        except ValueError:  # a cheat with no meaning for an encoder (none today)
            continue
        found[behaviour.value] = caught_share(claim)
    honest, _ = execute(spec, decode_input(data), behaviour=adversary.Behaviour.HONEST)
    rows = from_canonical_bytes(honest.output_bytes).copy()
    rows[len(texts) // 2, 0] ^= 1
    lie = canonical_bytes(rows)
    found["one row off by one bit (not a zoo member)"] = caught_share(replace(honest, output_bytes=lie, output_root=blob_root(lie)))
    return found


def _spec(model_root: str, params: dict) -> tuple:
    spec, data = make_spec(model_root, "generate", SPOT_PROMPT, params)
    return spec, decode_input(data)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--trials", type=int, default=20_000)
    ap.add_argument("--tokens", type=int, default=16)
    ap.add_argument("--spot-reps", type=int, default=9, help="runs per spot-audit overhead figure")
    ap.add_argument("--spot-audits", type=int, default=100, help="spot audits per cheat for its detection rate")
    ap.add_argument("--write", type=Path)
    args = ap.parse_args()
    lines: list[str] = []

    def out(s: str = "") -> None:
        print(s, flush=True)
        lines.append(s)

    out(f"machine: {machine()}; command: .venv/bin/python bench/bench_verify.py --trials {args.trials} "
        f"--tokens {args.tokens}; BLAS threads: {os.environ['OPENBLAS_NUM_THREADS']}")
    out()
    out(f"## (a) 1,000 jobs, 10% cheating providers, audit(p) ({args.trials:,} simulated markets)")
    out()
    out(f"price {PRICE:g} VMT, bond {BOND:g} VMT, audit fee {AUDIT_FEE:g} VMT, compute cost 1 VMT per job "
        "(= a cheat's gain g); cheaters skip the work on every job.")
    out()
    for providers, cheaters in ((10, 1), (50, 5)):
        out(f"### {providers} providers, {cheaters} cheating (~{1000 // providers} jobs each)")
        out()
        out("| p | cheaters caught | caught within 70 cheats (sim / 1-(1-p)^70) | wrong results delivered (of 1000) "
            "| cheaters' net VMT (honest would earn) | honest providers' net VMT | validators' net VMT "
            "| g - p(S+R) per cheat |")
        out("|---:|---:|---:|---:|---:|---:|---:|---:|")
        for p in (0.05, 0.1, 0.2):
            r = simulate(p, args.trials, providers=providers, cheaters=cheaters)
            within = (f"{100 * r['detected_by_70']:.3f}% / {100 * r['analytic_70']:.3f}%"
                      if r["samples_70"] else "n/a (no cheater gets 70 jobs)")
            out(f"| {p:.0%} | {100 * r['detected_providers']:.2f}% | {within} | {r['undetected_wrong_jobs']:.1f} "
                f"| {r['cheat_net']:.1f} ({r['cheat_if_honest']:.1f}) | {r['honest_net']:.1f} "
                f"| {r['validator_net']:.1f} | {r['expected_profit_per_cheat']:+.2f} |")
        out()

    out("### Colluding or lazy validators (10 providers, 1 cheating, p = 10%)")
    out()
    out("A share v of the audits goes to a validator that agrees without checking: the cheat's accomplice, "
        "or one too lazy to re-run (the provider's roots are public once revealed). Such an audit catches "
        "nothing (docs/verification.md, \"Collusion\"); formula 1-(1-p(1-v))^70.")
    out()
    out("| v | cheaters caught | caught within 70 cheats (sim / formula) | wrong results delivered (of 1000) "
        "| cheaters' net VMT (honest would earn) |")
    out("|---:|---:|---:|---:|---:|")
    for v in (0.0, 0.1, 0.2, 0.3):
        r = simulate(0.1, args.trials, colluding=v)
        out(f"| {v:.0%} | {100 * r['detected_providers']:.2f}% | {100 * r['detected_by_70']:.3f}% / "
            f"{100 * r['analytic_70']:.3f}% | {r['undetected_wrong_jobs']:.1f} | {r['cheat_net']:.1f} "
            f"({r['cheat_if_honest']:.1f}) |")
    out()

    model = load_model("tiny-shakespeare")
    decoder = JobRun(model, "generate", "ROMEO:", {"max_tokens": args.tokens})
    encoder = JobRun(load_model("minilm"), "embed", "A man is eating food.")
    out("## (b) Dispute cost on real traces (one wrong op, at 7 positions spread over the trace)")
    out()
    out("| job | ops | steps | job CPU s | bisection moves (max / mean) | referee recompute / job CPU (max / mean) "
        "| ops recomputed |")
    out("|---|---:|---:|---:|---:|---:|---|")
    results = {}
    for name, job in ((f"tiny decoder, {args.tokens} tokens", decoder), ("MiniLM, 1 sentence", encoder)):
        n = job.trace(ExecutionContext()).op_count
        targets = sorted({int(x) for x in np.linspace(0, n - 1, 7)})
        r = dispute_cost(job, targets)
        results[name] = r
        out(f"| {name} | {r['ops']:,} | {r['steps']} | {r['job_cpu']:.3f} | {r['rounds_max']} / {r['rounds_mean']:.1f} "
            f"| {100 * r['referee_fraction_max']:.3f}% / {100 * r['referee_fraction_mean']:.3f}% | {r['ops_checked']} |")
    out()
    late = late_replay_cost(decoder)  # before the SmolLM2 traces below leave the collector more to walk
    out("Instruction disputes in step 0 (a cheat that runs another program: every step differs, so the first "
        "differing leaf is in step 0, where the leaves differ in op, params or inputs and the referee needs the "
        "program's op). Replay: the prefix of step 0 up to that op, untraced. Resume: the agreed leaf that ends "
        "the layer before (served by a party, proven under its trace root) recomputed, then that layer alone "
        "(`LlamaModel.resume`, `BertModel.resume`). One op: the program's instruction walked from that layer "
        "without computing (`runtime.program`), its inputs' hashes read off the agreed leaves, and the op "
        "recomputed on the honest party's input tensors, which carry exactly those hashes. Lower precision "
        "raises `blk.0.ffn_down.shift` (decoders) or the first shift tensor by name (MiniLM). Best of 3, as a "
        "share of the job's CPU:")
    out()
    out("| job | cheat | moves | first differing op (step/index of ops in step 0) | replay / job CPU "
        "| resume / job CPU | one op / job CPU |")
    out("|---|---|---:|---|---:|---:|---:|")
    smollm2 = JobRun(load_model("smollm2"), "generate", SPOT_PROMPT, {"max_tokens": args.tokens})
    step0_jobs = ((f"tiny decoder, {args.tokens} tokens", decoder), (f"SmolLM2-135M, {args.tokens} tokens", smollm2),
                  ("MiniLM, 1 sentence", encoder))  # fmt: skip
    for name, job in step0_jobs:
        for cheat, make in STEP0_CHEATS:
            r = step0_instruction_cost(job, make)
            out(f"| {name} | {cheat} | {r['rounds']} | {r['at']} | {100 * r['replay']:.2f}% "
                f"(`{r['replay_method']}`) | {100 * r['resume']:.2f}% (`{r['resume_method']}`) "
                f"| {100 * r['one op']:.3f}% (`{r['one op_method']}`) |")
    out()
    out(f"Lower precision from the last step on (decoder, step {late['step']}): {late['rounds']} moves; the first "
        f"wrong op differs in an input, so the referee needs the program's op there. Replaying steps 0-{late['step']} "
        f"costs {100 * late['replay']:.1f}% of the job's CPU; fast-forwarding after the defender's served output "
        f"(one batched forward confirms every claimed token, then the disputed step runs alone; "
        f"`Method.{late['forward_method'].upper()}`) costs {100 * late['forward']:.1f}%; resuming at the disputed "
        f"layer from the agreed residual (`Method.{late['resume_method'].upper()}`) costs "
        f"{100 * late['resume']:.2f}%; recomputing the one op (`Method.{late['one op_method'].upper()}`) costs "
        f"{100 * late['one op']:.3f}%.")
    out()
    shares = ", ".join(f"{name} {100 * answer_cost(job):.2f}%" for name, job in step0_jobs)
    out(f"One trace, two outputs (nothing to bisect): reading the job's answer off the committed trace, each "
        f"step's answer op recomputed (`Method.ANSWER`), costs, as a share of the job's CPU (re-executing it: "
        f"100%): {shares}.")
    out()
    out("The zoo's model-level games (tiny decoder, 3 tokens, seed 5; docs/node.md), referee CPU, best of 5:")
    out()
    out("| cheat | moves | ends at (step/op) | one op recomputed | resumed at its layer | replayed to the op |")
    out("|---|---:|---|---:|---:|---:|")
    for name, moves, at, one, resumed, replayed in zoo_games(model):
        out(f"| `{name}` | {moves} | {at} | {one:.2f} ms | {resumed:.2f} ms | {replayed:.2f} ms |")
    out()
    longest = max(results.values(), key=lambda r: r["rounds_max"])
    g = dispute_gas(longest["longest"], longest["honest"])
    out(f"Gas of a whole dispute with the committee (JobMarket's referee in every deployment), as real "
        f"transactions on the in-process EVM (`deploy_network` on `BoaBackend`: receipt gas = intrinsic + "
        f"execution - capped refund), the second of two disputes (warm accounts): the longest game "
        f"above ({g['moves']} moves), an outside challenger, both sides played by the nodes' `DisputePlayer`, the members' ruling "
        f"as `node.evidence.rule` makes it, {g['threshold']} of {g['members']} drawn members signing.")
    out()
    out("| transaction | gas |")
    out("|---|---:|")
    out(f"| challenge | {g['challenge']:,} |")
    out(f"| dispute_move x{g['moves']} ({g['move_first']:,} first, {g['move_mean']:,.0f} mean) "
        f"| {g['moves_total']:,} |")
    for function in COMMITTEE_TXS:
        out(f"| {function} | {g[function]:,} |")
    out(f"| committee part (refer + request + draw + verdict) | {g['committee']:,} |")
    out(f"| **whole dispute** | **{g['total']:,}** |")
    out()
    out("Not counted: the job's own post/commit/reveal, approvals.")
    out()
    out("## (c) Honest-case verification overhead (CPU-seconds verifying / computing)")
    out()
    out("Median of 15 interleaved runs each. The validator's re-run is the provider's program, so the ratio "
        "re-execution / compute is 1 up to timing noise on a shared machine; a mode's overhead is that ratio "
        "times how often it is paid (p for audit(p), k - 1 for replicate(k)).")
    out()
    out("| job | compute CPU s | re-execution CPU s | ratio | audit(5%) | audit(10%) | replicate(2) | replicate(3) |")
    out("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, job in ((f"tiny decoder, {args.tokens} tokens", decoder), ("MiniLM, 1 sentence", encoder)):
        o = overhead(job)
        ratio = o["reexecute"] / o["compute"]
        out(f"| {name} | {o['compute']:.3f} | {o['reexecute']:.3f} | {ratio:.2f} | {0.05 * ratio:.1%} | {0.10 * ratio:.1%} "
            f"| {1 * ratio:.0%} | {2 * ratio:.0%} |")
    out()
    out("### Spot audits of generation jobs (the validator's default, `--audit-depth spot`)")
    out()
    out(f"One batched untraced forward over the claimed tokens checks every step's token choice and builds the "
        f"KV cache; the last step and one step drawn by cost weight are re-run traced on the cache cut to them "
        f"and their step roots compared with the provider's (verify/spot.py). Median of {args.spot_reps} "
        f"interleaved runs each (SmolLM2: {max(3, args.spot_reps // 3)}); every spot audit passed (honest "
        "claims). audit(p) costs p x the spot ratio.")
    out()
    out("| job | compute CPU s | spot audit CPU s | ratio | audit(5%) | audit(10%) | audit(20%) |")
    out("|---|---:|---:|---:|---:|---:|---:|")
    spot_jobs = ((f"tiny decoder, {args.tokens} tokens", decoder, args.spot_reps),
                 (f"SmolLM2-135M, {args.tokens} tokens", smollm2, max(3, args.spot_reps // 3)))  # fmt: skip
    for name, job, reps in spot_jobs:
        o = spot_overhead(job, reps)
        ratio = o["spot"] / o["compute"]
        out(f"| {name} | {o['compute']:.3f} | {o['spot']:.3f} | {ratio:.2f} | {0.05 * ratio:.1%} "
            f"| {0.10 * ratio:.1%} | {0.20 * ratio:.1%} |")
    out()
    audits = args.spot_audits
    found = spot_detection(model.root_hex, {"max_tokens": args.tokens}, audits)
    out(f"Caught by one spot audit (tiny decoder, {args.tokens} tokens, {audits} audits with their own random "
        "steps per cheat; a claim that cannot be spot-checked at all counts as caught, since the validator "
        "then re-runs the whole job):")
    out()
    out("| provider cheat | steps that differ from the honest trace | caught by a spot audit | caught within 70 "
        "cheats at p = 10% |")
    out("|---|---:|---:|---:|")
    for name, (share, differ) in found.items():
        out(f"| {name} | {differ} of {args.tokens} | {share:.1%} | {detection_probability(0.10 * share, 70):.2%} |")
    out()
    out("### Spot audits of embedding batches (the validator's default, `--audit-depth spot`)")
    out()
    out(f"A text's embedding does not depend on the rest of its batch, so the auditor re-embeds "
        f"max(2, rows / 8) sampled rows untraced and compares them byte for byte; {EMBED_FULL_SHARE:.0%} of "
        "embedding audits are drawn for a full re-run instead (the sample cannot see the trace root; "
        "verify/spot.py). Batches under 8 texts are audited in full. Median of "
        f"{args.spot_reps} interleaved runs each; every spot audit passed (honest claims). The expected "
        f"cost of one audit is {EMBED_FULL_SHARE:.2f} x the full re-run (~1 job) + {1 - EMBED_FULL_SHARE:.2f} x the "
        "spot ratio; audit(p) costs p x that.")
    out()
    out("| MiniLM batch | rows re-embedded | compute CPU s | spot audit CPU s | spot ratio | expected audit cost "
        "(x job) | audit(5%) | audit(10%) |")
    out("|---|---:|---:|---:|---:|---:|---:|---:|")
    for rows in (8, 16, 64, 256):
        texts = embedding_batch(rows)
        o = embedding_spot_overhead(texts, args.spot_reps)
        ratio = o["spot"] / o["compute"]
        expected = EMBED_FULL_SHARE + (1 - EMBED_FULL_SHARE) * ratio
        out(f"| {rows} texts | {rows_to_check(rows)} | {o['compute']:.3f} | {o['spot']:.3f} | {ratio:.2f} | "
            f"{expected:.2f} | {0.05 * expected:.1%} | {0.10 * expected:.1%} |")
    out()
    batch = embedding_batch(16)
    efound = embedding_spot_detection(batch, audits)
    out(f"Caught by one embedding audit (MiniLM, 16 texts, {audits} audits with their own rows and full-rerun "
        "coin per cheat; a full re-run counts as caught):")
    out()
    out("| provider cheat | caught by one audit | caught within 70 cheats at p = 10% |")
    out("|---|---:|---:|")
    for name, share in efound.items():
        out(f"| {name} | {share:.1%} | {detection_probability(0.10 * share, 70):.2%} |")
    out()
    if args.write:
        args.write.write_text(HEADER + "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
