"""When a finished dispute can be settled by an on-chain op proof (``node.evidence``), and how
a daemon's attempts are journaled: exactly one party's op at the leaf recomputes to another
output from its own inputs, and the op is small enough for the EVM; anything else is left
to the committee. Real traces of a small program (a small and a big requantize, a reshape),
played to their leaf with the real bisection rules; no chain."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

from verimesh.chain.errors import ContractRevert
from verimesh.chain.op_check_spec import checkable
from verimesh.node.dispute import GameState
from verimesh.node.evidence import OpProofs, provable_wrong_op
from verimesh.runtime import ExecutionContext
from verimesh.runtime.trace import Trace, verify_trace_proof
from verimesh.verify.adversary import TamperContext, flip_low_bit
from verimesh.verify.bisection import Dispute, HonestParty, Party, play

SMALL, BIG, RESHAPE = 0, 1, 2  # the program's ops, in order
OUT_HONEST, OUT_CHEAT = b"\x0a" * 32, b"\x0b" * 32


def _program(ctx: ExecutionContext) -> Trace:
    ctx.begin_step()
    small = np.arange(-8, 8, dtype=np.int64).reshape(2, 8) << 22
    big = np.arange(-512, 512, dtype=np.int64).reshape(4, 256) << 22
    m, s = np.array(1 << 30, dtype=np.int32), np.array(40, dtype=np.int32)
    x = ctx.call("requantize", small, m, s, out_dtype="int8")
    ctx.call("requantize", big, m, s, out_dtype="int8")
    ctx.call("reshape", x, shape=[16])
    assert ctx.trace is not None
    return ctx.trace


def _trace(flip: int | None = None) -> Trace:
    if flip is None:
        return _program(ExecutionContext(keep_tensors=True))
    return _program(TamperContext(flip_low_bit(flip), keep_tensors=True))


def _game(defender: Trace, challenger: Trace, *, outside: bool = False) -> tuple[GameState, tuple[dict, dict]]:
    """Both parties played the game to its leaf; the state as ``replay_game`` would give it and
    the bodies each party serves at ``/v1/jobs/{id}/evidence``."""
    dispute = Dispute(defender.root, challenger.root)
    parties = (HonestParty(defender), HonestParty(challenger))
    play(dispute, *parties)
    honest = _trace().root

    def output(trace: Trace) -> bytes:
        return OUT_HONEST if trace.root == honest else OUT_CHEAT

    state = GameState(
        job_id=7, job_state=None, chain=None, defender="0xd", challenger="0xc",  # type: ignore[arg-type]
        defender_root=defender.root, challenger_root=None if outside else challenger.root,
        output_roots=(output(defender), None if outside else output(challenger)), dispute=dispute,
    )  # fmt: skip
    bodies = tuple({"evidence": p.evidence(dispute).to_json()} for p in parties)
    return state, bodies  # type: ignore[return-value]


def test_a_wrong_small_op_of_the_defender_is_provable_on_chain() -> None:
    honest, cheat = _trace(), _trace(flip=SMALL)
    state, bodies = _game(cheat, honest)
    proof = provable_wrong_op(state, bodies)
    assert proof is not None
    assert (proof.accused, proof.wrong.accused) == (Party.DEFENDER, 1)  # the contract's 1 = defender
    record = proof.wrong.record
    assert (record.op, record.index) == ("requantize", SMALL)
    assert record.leaf_hash() == cheat.leaf(0, SMALL).leaf_hash()  # the accused's own leaf
    assert verify_trace_proof(cheat.root, record, proof.wrong.proof)  # under its committed root
    assert (proof.output_root, proof.trace_root) == (state.output_roots[0], cheat.root)
    assert checkable(record)


def test_a_wrong_small_op_of_the_challenger_is_provable_too() -> None:
    state, bodies = _game(_trace(), _trace(flip=SMALL))
    proof = provable_wrong_op(state, bodies)
    assert proof is not None and (proof.accused, proof.wrong.accused) == (Party.CHALLENGER, 2)


def test_the_accused_need_not_serve_its_inputs_the_agreed_ones_will_do() -> None:
    honest, cheat = _trace(), _trace(flip=SMALL)
    state, (accused, other) = _game(cheat, honest)
    del accused["evidence"]["record"]["inputs"]
    proof = provable_wrong_op(state, (accused, other))
    assert proof is not None and proof.wrong.record.inputs is not None
    assert verify_trace_proof(cheat.root, proof.wrong.record, proof.wrong.proof)


def test_an_op_too_big_for_the_evm_goes_to_the_committee() -> None:
    state, bodies = _game(_trace(flip=BIG), _trace())
    assert state.dispute.outcome.index == BIG
    assert provable_wrong_op(state, bodies) is None


def test_no_proof_without_both_bodies_an_outside_challenger_or_a_broken_rule() -> None:
    honest, cheat = _trace(), _trace(flip=SMALL)
    state, bodies = _game(cheat, honest)
    assert provable_wrong_op(state, (bodies[0], None)) is None
    assert provable_wrong_op(state, (bodies[0], {"evidence": {"step_root": "0x00"}})) is None  # malformed
    state.violation = (Party.CHALLENGER, "a step count of zero")
    assert provable_wrong_op(state, bodies) is None
    # an outside challenger's roots are not on chain: it cannot be accused there
    outside, bodies = _game(honest, cheat, outside=True)
    assert provable_wrong_op(outside, bodies) is None


def test_leaves_that_differ_in_the_instruction_are_no_one_op_ruling() -> None:
    def other_program(ctx: ExecutionContext) -> Trace:
        ctx.begin_step()
        ctx.call("reshape", np.arange(16, dtype=np.int8), shape=[2, 8])
        assert ctx.trace is not None
        return ctx.trace

    state, bodies = _game(other_program(ExecutionContext(keep_tensors=True)), _trace())
    assert provable_wrong_op(state, bodies) is None


# -- the journaled attempts ---------------------------------------------------------------------
class Meta(dict):
    def get_meta(self, key: str) -> str | None:
        return self.get(key)

    def set_meta(self, key: str, value: str) -> None:
        self[key] = value


@dataclass
class FakeReferee:
    revert: str | None = None
    calls: list[tuple[Any, ...]] | None = None

    def prove_wrong_op(self, *args: Any) -> Any:
        self.calls = [*(self.calls or []), args]
        if self.revert:
            raise ContractRevert(self.revert, function="prove_wrong_op")
        return type("Tx", (), {"receipt": type("Receipt", (), {"tx_hash": b"\x01" * 32})()})()


@dataclass
class FakeNet:
    op_referee: FakeReferee | None


@pytest.fixture
def cheat_game() -> tuple[GameState, tuple[dict, dict]]:
    return _game(_trace(flip=SMALL), _trace())


def test_a_proof_is_sent_once_and_journaled(cheat_game) -> None:
    state, bodies = cheat_game
    meta, referee = Meta(), FakeReferee()
    proofs = OpProofs(meta)
    assert proofs.due(7)
    assert proofs.settle(FakeNet(referee), 7, state, bodies, me=Party.CHALLENGER)
    (call,) = referee.calls
    assert call[:2] == (7, 1) and call[4:] == (OUT_CHEAT, state.defender_root)
    assert meta["op-proof:7"] == "proved 0x" + "01" * 32
    assert not proofs.due(7)  # never again, in this life or the next (same journal)
    assert not OpProofs(meta).due(7)


def test_a_reverted_proof_leaves_the_dispute_to_the_committee(cheat_game) -> None:
    state, bodies = cheat_game
    meta = Meta()
    assert not OpProofs(meta).settle(FakeNet(FakeReferee(revert="op_referee: job is not disputed")), 7, state, bodies)
    assert meta["op-proof:7"] == "reverted: op_referee: job is not disputed"
    assert not OpProofs(meta).due(7)


def test_a_cheat_never_proves_its_own_op_and_nothing_unprovable_is_sent(cheat_game) -> None:
    state, bodies = cheat_game
    referee = FakeReferee()
    assert not OpProofs(Meta()).settle(FakeNet(referee), 7, state, bodies, me=Party.DEFENDER)
    assert not OpProofs(Meta()).settle(FakeNet(referee), 7, state, (bodies[0], None))
    assert not OpProofs(meta := Meta()).settle(FakeNet(None), 7, state, bodies)  # no OpReferee deployed
    assert referee.calls is None and meta["op-proof:7"].startswith("no proof")


def test_an_attempt_cut_short_by_a_crash_is_made_again(cheat_game) -> None:
    """Killed after journaling ``sending`` (the transaction may or may not have left): the
    next life sends again while the job is still disputed; a second landing would revert."""
    state, bodies = cheat_game
    meta = Meta({"op-proof:7": "sending"})
    assert OpProofs(meta).due(7)
    assert OpProofs(meta).settle(FakeNet(FakeReferee()), 7, state, bodies)

