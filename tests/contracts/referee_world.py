"""The OpReferee's world, shared by its tests and bench/bench_op_gas.py: a committee world
(JobMarket, Registry, DisputeCommittee) with OpCheck and the OpReferee deployed and wired,
parties' runs (a trace and the roots they commit to), and disputes opened between them."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import boa
from committee_world import CommitteeWorld, deploy_committee_world
from contract_world import DISPUTED, MODE_AUDIT, MODE_REPLICATE, load
from op_programs import requantize_program

from verimesh.chain.op_referee import WrongOpProof
from verimesh.runtime import ExecutionContext
from verimesh.runtime.trace import OpRecord, Trace, TraceProof
from verimesh.verify import adversary

DEFENDER, CHALLENGER = 1, 2


@dataclass(frozen=True)
class Run:
    """One party's result: its trace and the roots it commits to."""

    trace: Trace
    output_root: bytes

    @property
    def trace_root(self) -> bytes:
        return self.trace.root


def run(trace: Trace, label: bytes) -> Run:
    return Run(trace, hashlib.sha256(b"output of " + label).digest())


def requantize_runs(sizes: list[list[int]], target: int) -> tuple[Run, Run]:
    honest = requantize_program(ExecutionContext(keep_tensors=True), sizes)
    cheat = requantize_program(adversary.WrongOpContext(target), sizes)
    return run(honest, b"requantize"), run(cheat, b"requantize")



@dataclass
class RefereeWorld:
    cw: CommitteeWorld
    op_check: Any
    referee: Any

    @property
    def w(self):
        return self.cw.world

    @property
    def market(self):
        return self.cw.market

    def replicate_dispute(self, defender: Run, challenger: Run) -> tuple[int, str, str]:
        """replicate(2): replica 0 challenges replica 1 when their reveals differ."""
        w = self.w
        job_id = w.post(mode=MODE_REPLICATE, param=2)
        p0, p1 = self.market.assigned(job_id)
        for provider, result in ((p0, challenger), (p1, defender)):
            w.commit(job_id, provider, output=result.output_root, trace=result.trace_root)
        for provider, result in ((p0, challenger), (p1, defender)):
            w.reveal(job_id, provider, output=result.output_root, trace=result.trace_root)
        assert w.state(job_id) == DISPUTED
        return job_id, p1, p0

    def defender_proof(self, honest: Run, cheat: Run, target: int) -> tuple[int, OpRecord, WrongOpProof]:
        """A replicate(2) dispute with ``cheat`` defending, and the proof of its wrong op
        ``target`` (the global index): (job id, the cheat's leaf, the proof)."""
        record = cheated_leaf(honest, cheat, target)
        job_id, _defender, _challenger = self.replicate_dispute(defender=cheat, challenger=honest)
        proof = cheat.trace.proof(record.step, record.index)
        return job_id, record, WrongOpProof.build(job_id, DEFENDER, record, proof, cheat.output_root, cheat.trace_root)

    def audit_dispute(self, provider_run: Run, validator_run: Run) -> tuple[int, str, str]:
        """audit(100%): the drawn validator reports other roots than the provider's."""
        w = self.w
        job_id = w.post(mode=MODE_AUDIT, param=10_000)
        (provider,) = self.market.assigned(job_id)
        w.commit(job_id, provider, output=provider_run.output_root, trace=provider_run.trace_root)
        w.reveal(job_id, provider, output=provider_run.output_root, trace=provider_run.trace_root)
        validator = self.market.audits(job_id).validator
        with boa.env.prank(validator):
            self.market.audit_report(job_id, validator_run.output_root, validator_run.trace_root)
        assert w.state(job_id) == DISPUTED
        return job_id, provider, validator

    def prove(self, job_id: int, accused: int, result: Run, record: OpRecord, proof: TraceProof | None = None,
              sender: str | None = None) -> None:
        proof = proof or result.trace.proof(record.step, record.index)
        built = WrongOpProof.build(job_id, DEFENDER, record, proof, result.output_root, result.trace_root)
        args = list(built.args())
        args[1] = accused  # also a party that does not exist, which the client refuses
        with boa.env.prank(sender or self.w.outsider):
            self.referee.prove_wrong_op(*args)

    def snapshot(self, job_id: int) -> tuple:
        """Everything a refused proof must leave unchanged."""
        w, m = self.w, self.market
        return (tuple(m.jobs(job_id)), tuple(m.disputes(job_id)),
                tuple(w.balance(a) for a in w.actors()), tuple(m.balances(a) for a in w.actors()),
                tuple(tuple(w.member(p)) for p in w.providers + w.validators))


def deploy_referee_world() -> RefereeWorld:
    cw = deploy_committee_world()
    op_check = load("OpCheck.vy")
    referee = load("OpReferee.vy", cw.committee.address, op_check.address)
    cw.committee.set_op_referee(referee.address)
    return RefereeWorld(cw, op_check, referee)


def cheated_leaf(honest: Run, cheat: Run, target: int) -> OpRecord:
    step, index = honest.trace.position(target)
    record = cheat.trace.leaf(step, index)
    assert record.output_hash != honest.trace.leaf(step, index).output_hash
    assert record.input_hashes == honest.trace.leaf(step, index).input_hashes
    return record
