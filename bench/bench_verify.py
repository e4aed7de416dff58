"""Verification figures: audit economics simulation, dispute cost, honest-case overhead.

Run: .venv/bin/python bench/bench_verify.py [--trials 20000] [--tokens 16] [--write docs/bench-verify.md]

(a) 1,000 jobs with 10% cheating providers under audit(p), with JobMarket's devnet
    parameters (price 2 VMT, bond max(10 VMT, 2 x price), audit fee 100% of the price,
    slash split 50% bounty / 30% requester / 20% burned, provider stake 200 VMT, minimum
    100 VMT: a provider is ejected once slashes take its stake below the minimum).
    Vectorised over --trials independent markets.
(b) Dispute cost on real traces (tiny decoder "tiny-shakespeare", MiniLM "minilm"): moves
    of the bisection, referee CPU time for the one-op recompute vs CPU time of the whole
    job, and (decoder) the replay a referee needs for a skipped layer; gas of a whole
    dispute from JobMarket.dispute_move measured on titanoboa (tests/contracts helpers).
(c) Honest-case verification overhead per mode: CPU-seconds verifying / computing.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from verimesh.benchinfo import machine
from verimesh.models.api import load_model
from verimesh.runtime import ExecutionContext
from verimesh.runtime.tensor import tensor_hash
from verimesh.runtime.trace import recompute
from verimesh.verify import adversary
from verimesh.verify.bisection import Dispute, HonestParty, play
from verimesh.verify.economics import BondRule, detection_probability, expected_cheat_profit
from verimesh.verify.referee import decide
from verimesh.verify.replay import JobRun

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


def simulate(p: float, trials: int, jobs: int = 1000, providers: int = 10, cheaters: int = 1,
             compute_cost: float = 1.0, seed: int = 1) -> dict[str, float]:
    """Markets of ``jobs`` jobs spread uniformly over ``providers``; ``cheaters`` of them
    skip the work on every job (gain = compute_cost). An audited cheat is always caught
    (bisection + referee), slashing the bond; a provider is ejected below the min stake."""
    rng = np.random.default_rng(seed)
    assign = rng.integers(0, providers, size=(trials, jobs))
    audited = rng.random((trials, jobs)) < p
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
        "analytic_70": detection_probability(p, 70),
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
    return {
        "ops": honest.op_count,
        "steps": len(honest.steps),
        "job_cpu": job_cpu,
        "rounds_max": max(rounds),
        "rounds_mean": float(np.mean(rounds)),
        "referee_fraction_max": max(fractions),
        "referee_fraction_mean": float(np.mean(fractions)),
        "ops_checked": ", ".join(sorted(set(ops))),
    }


def replay_cost(job: JobRun) -> dict[str, float]:
    job_cpu = job_cpu_seconds(job)
    honest = job.trace()
    cheat = adversary.cheat_run(job, adversary.skip_last_layer(job.model)).trace()
    dispute = Dispute(cheat.root, honest.root)
    d, c = HonestParty(cheat), HonestParty(honest)
    play(dispute, d, c)
    seconds, ruling = cpu(lambda: decide(dispute, d.evidence(dispute), c.evidence(dispute), job))
    assert ruling.guilty_code == 1
    return {"rounds": dispute.rounds, "fraction": seconds / job_cpu, "at": f"{ruling.step}/{ruling.index}"}


def dispute_gas(moves: int) -> dict[str, float]:
    """Gas of challenge + ``moves`` dispute moves + resolve_dispute, as real transactions."""
    sys.path.insert(0, str(ROOT / "tests" / "contracts"))
    import boa
    from contract_world import deploy, tx_gas

    with boa.swap_env(boa.Env()):
        world = deploy(providers=3, validators=1)
        m = world.market
        gas_moves = []
        for _ in range(2):  # the second job is the steady state (warm accounts)
            job_id = world.post()
            (provider,) = m.assigned(job_id)
            world.commit_reveal_all(job_id)
            with boa.env.prank(world.challenger):
                challenge = tx_gas(m, lambda job_id=job_id: m.challenge(job_id, 0))
            gas_moves = []
            for i in range(moves):
                who = provider if i % 2 == 0 else world.challenger
                data = (i + 1).to_bytes(32, "big")
                with boa.env.prank(who):
                    gas_moves.append(tx_gas(m, lambda job_id=job_id, data=data: m.dispute_move(job_id, data)))
            with boa.env.prank(world.owner):
                resolve = tx_gas(m, lambda job_id=job_id: m.resolve_dispute(job_id, True))
    return {
        "challenge": challenge,
        "move_mean": float(np.mean(gas_moves)),
        "move_first": gas_moves[0],
        "moves": moves,
        "resolve": resolve,
        "total": challenge + sum(gas_moves) + resolve,
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--trials", type=int, default=20_000)
    ap.add_argument("--tokens", type=int, default=16)
    ap.add_argument("--write", type=Path)
    args = ap.parse_args()
    lines: list[str] = []

    def out(s: str = "") -> None:
        print(s, flush=True)
        lines.append(s)

    out(f"machine: {machine()}; command: .venv/bin/python bench/bench_verify.py --trials {args.trials} "
        f"--tokens {args.tokens}")
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
    rc = replay_cost(decoder)
    out(f"Skipped last layer (decoder): {rc['rounds']} moves, ends at op {rc['at']}; the referee replays the "
        f"program up to that op: {100 * rc['fraction']:.1f}% of the job's CPU (instruction disputes need the "
        "program, not one op).")
    out()
    moves = max(r["rounds_max"] for r in results.values())
    g = dispute_gas(moves)
    out(f"Gas on titanoboa (JobMarket.vy, tx_gas = intrinsic + execution - capped refund, steady state): "
        f"challenge {g['challenge']:,}, dispute_move {g['move_first']:,} first / {g['move_mean']:,.0f} mean, "
        f"resolve_dispute {g['resolve']:,}; whole dispute with {moves} moves: **{g['total']:,} gas** "
        "(plus the job's own post/commit/reveal).")
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
    if args.write:
        args.write.write_text(HEADER + "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
