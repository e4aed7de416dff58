"""Gas of settling a dispute on chain by one op: OpCheck's `recompute` by op and tensor size,
and the OpReferee's whole `prove_wrong_op` on real traces.

Run: .venv/bin/python bench/bench_op_gas.py [--write docs/bench-op-gas.md]

Every figure is a real transaction on titanoboa's in-process EVM (`tx_gas`: intrinsic cost
with calldata, execution, the capped refund; each call its own transaction, so accounts and
slots start cold). The worlds and traces are the contract tests' own (tests/contracts):
the tests check the bounds (every op below 2M gas at the element bound, the costliest proof
inside a transaction); this script measures the tables docs/op-proofs.md and
docs/verification.md quote.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "contracts"))

import boa  # noqa: E402
from contract_world import FINALIZED, load, tx_gas  # noqa: E402
from op_programs import calls_of_size  # noqa: E402
from referee_world import Run, deploy_referee_world, requantize_runs, run  # noqa: E402

from verimesh.benchinfo import machine  # noqa: E402
from verimesh.chain.op_check_spec import MAX_ELEMENTS, checkable, tensor_arg  # noqa: E402
from verimesh.runtime.trace import canonical_params  # noqa: E402
from verimesh.verify import adversary  # noqa: E402
from verimesh.verify.replay import JobRun  # noqa: E402

SIZES = (16, 128, MAX_ELEMENTS)
COMMITTEE_GAS = 571_587  # refer + request + draw + 3-of-5 verdict (docs/bench-verify.md, part (b))


def recompute_table() -> dict[str, dict[int, int]]:
    """op -> elements of its largest tensor -> gas of `recompute` as a transaction."""
    with boa.swap_env(boa.Env()):
        c = load("OpCheck.vy")
        gas: dict[str, dict[int, int]] = {}
        for n in SIZES:
            for op, (params, inputs) in calls_of_size(n).items():
                args = [tensor_arg(t) for t in inputs]
                gas.setdefault(op, {})[n] = tx_gas(
                    c, lambda op=op, p=params, a=args: c.recompute(op, canonical_params(p), a)
                )
    return gas


def proof_cases(home: Path) -> dict[str, tuple[Run, Run, int]]:
    """name -> (honest run, the cheat with one wrong op, that op's global index): requantize
    programs of three sizes, the first checkable leaf of every op in a tiny-decoder decode
    step, and two leaves of a 16-token job (deeper proofs, same ops)."""
    from verimesh.models.api import load_model
    from verimesh.models.store import ModelStore

    cases: dict[str, tuple[Run, Run, int]] = {}
    target = 7 * 40 + 20
    for n in (16, 64, 256):
        honest, cheat = requantize_runs([[n] * 40] * 16, target=target)
        cases[f"`requantize` {n} elements (int32, per-channel)"] = (honest, cheat, target)
    model = load_model("tiny-shakespeare", store=ModelStore(home / "models"))
    job = JobRun(model, "generate", "ROMEO:", {"max_tokens": 3})
    trace = job.trace()
    first: dict[str, int] = {}  # each op's first checkable leaf in a decode step, else the prompt's
    for i, r in sorted(enumerate(trace.records()), key=lambda ir: (ir[1].step == 0, ir[0])):
        if checkable(r) and r.op not in first:
            first[r.op] = i
    for op, i in sorted(first.items()):
        cases[f"decoder `{op}`"] = (run(trace, b"decoder"), run(job.trace(adversary.WrongOpContext(i)), b"decoder"), i)
    long_job = JobRun(model, "generate", "ROMEO:", {"max_tokens": 16})
    long_trace = long_job.trace()
    records = long_trace.records()
    last_argmax = max(i for i, r in enumerate(records) if r.op == "argmax")
    middle_add = next(i for i, r in enumerate(records) if r.op == "add" and r.step == 8 and checkable(r))
    for op, i in (("add", middle_add), ("argmax", last_argmax)):
        cases[f"decoder `{op}`, 16-token job"] = (
            run(long_trace, b"long"), run(long_job.trace(adversary.WrongOpContext(i)), b"long"), i)  # fmt: skip
    return cases


def proof_table(cases: dict[str, tuple[Run, Run, int]]) -> list[tuple[str, str, int, int]]:
    """(case, leaf position, `prove_wrong_op` gas, `recompute` alone), the accused the
    defender of a replicate(2) job. Every case runs twice and the second pass is reported:
    the first warms the accounts and balances a live market has used before."""
    rows = []
    with boa.swap_env(boa.Env()):
        rw = deploy_referee_world()
        for report in (False, True):
            for name, (honest, cheat, target) in cases.items():
                job_id, record, built = rw.defender_proof(honest, cheat, target)
                recompute = tx_gas(rw.op_check, lambda r=record, b=built: rw.op_check.recompute(
                    r.op, r.params_json, b.inputs))  # fmt: skip
                used = tx_gas(rw.referee, lambda b=built: rw.referee.prove_wrong_op(*b.args()))
                assert rw.w.state(job_id) == FINALIZED, name
                if report:
                    steps = cheat.trace.steps
                    rows.append((name, f"{record.step}/{len(steps)}, {record.index}/{len(steps[record.step])}",
                                 used, recompute))  # fmt: skip
    return sorted(rows, key=lambda row: row[2])


def report(recompute: dict[str, dict[int, int]], proofs: list[tuple[str, str, int, int]], command: str) -> str:
    lines = [
        "# On-chain op checks: gas of `recompute` and of a whole `prove_wrong_op`",
        "",
        f"Command: `{command}`",
        "",
        f"Machine: {machine()}. Gas does not depend on the machine.",
        "",
        "## OpCheck `recompute` by op and size",
        "",
        "One call of each op as its own transaction (intrinsic cost included). `add`, `requantize`",
        "and `rmsnorm` on int32 `(1, n)` tensors (per-tensor multipliers); `mul`, `argmax`,",
        "`reshape`, `slice` and `rope` on int16 ones (`slice` a `(2, n/2)` tensor cut along its",
        "last axis, the non-contiguous path; `rope` a `(1, 1, n)` head); n the elements of the",
        "largest tensor.",
        "",
        "| op | " + " | ".join(f"n = {n}" for n in SIZES) + " |",
        "|---|" + "---:|" * len(SIZES),
    ]
    for op in sorted(recompute, key=lambda o: recompute[o][SIZES[-1]]):
        lines.append(f"| {op} | " + " | ".join(f"{recompute[op][n]:,}" for n in SIZES) + " |")
    lines += [
        "",
        "## `prove_wrong_op` on real traces",
        "",
        "The accused is the defender of a replicate(2) job; the figure includes JobMarket's whole",
        "settlement (slash, bounty, payment). The recompute column is OpCheck's part, measured",
        "as a transaction of its own (so with its own 21k base). The committee's path for the",
        f"same dispute costs {COMMITTEE_GAS:,} gas in four transactions (docs/bench-verify.md).",
        "",
        "| disputed op | leaf (step / op of the trace) | `prove_wrong_op` | `recompute` alone | vs committee |",
        "|---|---|---:|---:|---:|",
    ]
    for name, leaf, used, alone in proofs:
        lines.append(f"| {name} | {leaf} | {used:,} | {alone:,} | {used / COMMITTEE_GAS:.0%} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", type=Path, default=ROOT / "docs" / "bench-op-gas.md",
                        help="the markdown report (default: docs/bench-op-gas.md)")  # fmt: skip
    args = parser.parse_args()
    recompute = recompute_table()
    with tempfile.TemporaryDirectory() as home:
        proofs = proof_table(proof_cases(Path(home)))
    command = ".venv/bin/python bench/bench_op_gas.py"
    text = report(recompute, proofs, command)
    print(text)
    args.write.write_text(text)
    print(f"wrote {args.write}")


if __name__ == "__main__":
    main()
