"""The referee: from the final evidence of a bisection, decide who lied.

The common case costs ONE op: both parties hold the same instruction at the first
differing leaf (same op, params and input hashes, so their inputs are agreed) and differ
only in its output; the referee recomputes that op with the runtime's reference path
(``runtime.trace.recompute``) and whoever claimed another output hash lied (both, if
neither matches).

When the leaves differ in the instruction itself (a skipped layer, a swapped model or a
changed requantization shift shows up as another op, other params or other input hashes
at that position), or one trace is longer than the other, recomputing the op proves
nothing: each party's op may be computed correctly from its own inputs. The referee then
needs the PROGRAM's op there (``JobRun.program_op``), and the party whose leaf is not the
program's lied. With the agreed leaves before it served, that is one op again: the
program's instruction walked from the op's layer without computing, its input hashes read
off the agreed leaves, the op recomputed on the honest party's tensors; else that layer run
from the agreed state entering it; else, in a generation with a claimed output the program
confirms, the disputed step after one batched forward over the tokens before it; else the
job's prefix up to that op (docs/verification.md, "Referee cost").

A party whose evidence does not bind its earlier moves (``Dispute.check_evidence``) lied in
the game itself and is guilty whatever the op says.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from enum import Enum

from ..runtime.tensor import tensor_hash
from ..runtime.trace import OpRecord, TraceError, recompute
from .bisection import Dispute, DisputeError, Level, OutcomeKind, Party, PartyEvidence
from .replay import JobRun


class Method(Enum):
    RECOMPUTE = "recompute"  # one op recomputed
    REPLAY = "replay"  # program replayed to the disputed op
    FORWARD = "forward"  # the disputed step alone, after a claimed generation the program confirms
    RESUME = "resume"  # the disputed layer alone, from the agreed state entering it
    INSTRUCTION = "instruction"  # the program's instruction walked, its inputs agreed: one op recomputed
    ANSWER = "answer"  # one trace, two outputs: the trace's answer ops recomputed
    EVIDENCE = "evidence"  # decided by the evidence check alone


@dataclass(frozen=True)
class Ruling:
    guilty: frozenset[Party]
    step: int
    index: int
    method: Method
    recomputed_output: bytes  # hash the referee computed for the op (32 zero bytes if none)
    reasons: tuple[str, ...]
    seconds: float  # referee CPU work for this ruling

    @property
    def guilty_code(self) -> int:
        """1 = defender, 2 = challenger, 3 = both (the ``Verdict.guilty`` field)."""
        return sum(1 << int(p) for p in self.guilty)


ZERO = bytes(32)


def _instruction(record: OpRecord) -> tuple[str, bytes, tuple[bytes, ...]]:
    return record.op, record.params_json, record.input_hashes


def decide(
    dispute: Dispute,
    defender: PartyEvidence,
    challenger: PartyEvidence,
    job: JobRun | None = None,
) -> Ruling:
    """Rule on a finished bisection. ``job`` is needed only when the leaves differ in the
    instruction or in length (then the referee replays the program)."""
    outcome = dispute.outcome
    if outcome is None:
        raise DisputeError("the bisection is not over; the referee rules on final evidence only")
    start = time.process_time()
    evidence = (defender, challenger)
    guilty: set[Party] = set()
    reasons: list[str] = []
    for party in Party:
        try:
            dispute.check_evidence(party, evidence[party])
        except DisputeError as exc:
            guilty.add(party)
            reasons.append(str(exc))
    if guilty:
        return Ruling(frozenset(guilty), outcome.step, outcome.index, Method.EVIDENCE, ZERO, tuple(reasons),
                      time.process_time() - start)

    records = (defender.record, challenger.record)
    if outcome.kind is OutcomeKind.LEAF:
        a, b = records
        assert a is not None and b is not None
        if _instruction(a) == _instruction(b):
            output = _recompute_agreed(a, b)
            for party in Party:
                if records[party].output_hash != output:  # type: ignore[union-attr]
                    guilty.add(party)
                    reasons.append(f"{party.name.lower()} claimed another output for op {a.op!r}")
            return Ruling(frozenset(guilty), outcome.step, outcome.index, Method.RECOMPUTE, output,
                          tuple(reasons), time.process_time() - start)
    if job is None:
        raise DisputeError(
            "the parties disagree on the instruction or the length of the trace, not only on an "
            "op's output: pass the job (JobRun) so the referee can replay the program"
        )
    program = job.program_op(outcome.step, outcome.index, records)
    expected = program.record
    if outcome.kind is OutcomeKind.LEAF:
        for party in Party:
            record = records[party]
            if expected is None or record is None or record.leaf_hash() != expected.leaf_hash():
                guilty.add(party)
                reasons.append(f"{party.name.lower()}'s op {outcome.step}/{outcome.index} is not the program's")
    else:
        position = outcome.step if outcome.level is Level.STEPS else outcome.index
        longer = Party.DEFENDER if outcome.counts[Party.DEFENDER] > position else Party.CHALLENGER
        if expected is None:
            guilty.add(longer)
            reasons.append(f"{longer.name.lower()}'s trace has ops the program never runs")
        else:
            guilty.add(longer.other)
            reasons.append(f"{longer.other.name.lower()}'s trace stops before op {outcome.step}/{outcome.index}")
            record = records[longer]
            if outcome.level is Level.OPS and (record is None or record.leaf_hash() != expected.leaf_hash()):
                guilty.add(longer)
                reasons.append(f"{longer.name.lower()}'s op {outcome.step}/{outcome.index} is not the program's")
    output = expected.output_hash if expected is not None else ZERO
    method = Method(program.via)
    return Ruling(frozenset(guilty), outcome.step, outcome.index, method, output, tuple(reasons),
                  time.process_time() - start)


def _recompute_agreed(a: OpRecord, b: OpRecord) -> bytes:
    """Recompute the agreed instruction from whichever party supplied inputs matching the
    committed input hashes (a party cannot block the ruling by withholding its tensors)."""
    errors = []
    for record in (a, b):
        try:
            return tensor_hash(recompute(record, path="reference"))
        except TraceError as exc:
            errors.append(str(exc))
    raise DisputeError("neither party supplied the op's input tensors: " + "; ".join(errors))
