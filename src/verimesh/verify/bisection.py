"""The bisection game: two parties with conflicting traces of one job narrow their
disagreement down to the FIRST op leaf where they differ, in O(log steps + log ops) moves.

A trace has two Merkle levels (``verimesh.runtime.trace``): step roots under the trace
root, op leaves under each step root. Both levels are ``crypto.merkle`` trees, where pairs
are hashed bottom-up and an odd last node is carried up. In such a tree every COMPLETE
aligned block of leaves ``[j * 2^k, (j + 1) * 2^k)`` is a node whose hash depends on those
leaves only, whatever the leaf count. The game is a binary search over those blocks, so it
also works when the parties disagree on how many steps or ops there are.

Moves (each is one ``bytes32``, exactly what ``JobMarket.dispute_move(job_id, data)``
carries; defender first, then challenger, alternating like the contract's turns):

1. Both reveal their step count (uint256, big endian).
2. While the search range ``[lo, lo + size)`` (size a power of two) has size > 1: if its left
   half is complete in both trees, both reveal that block's node hash. Different: the first
   difference is inside it (go left); equal: those leaves agree (go right). A left half
   incomplete in the shorter tree costs no move: the first difference is in it or at the
   shorter tree's end.
3. The step found is the disputed step; 1-2 repeat over the ops of that step.

Nothing a party reveals is trusted until the end: the final ``PartyEvidence`` carries the
proven leaf with its Merkle proofs, and every revealed count and block hash must be the
count or a node (or a node's sibling) on that proof's path. A party that lied in an earlier
round, or changed an earlier claim, cannot produce such evidence and loses; so does one
that goes silent (``Dispute.timeout``).

The game ends with an ``Outcome``: either both parties hold a leaf at the same position and
the leaves differ (the referee recomputes that one op), or one trace has a step or op the
other lacks while everything before agrees (the referee replays the program to that point).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum, IntEnum
from typing import Any

from ..crypto.merkle import (
    MerkleError,
    MerkleProof,
    MerkleTree,
    leaf_hash,
    proof_nodes,
)
from ..runtime.trace import OpRecord, Trace, TraceError


class DisputeError(ValueError):
    """A move or evidence that breaks the rules of the game (the mover loses)."""


class Party(IntEnum):
    DEFENDER = 0
    CHALLENGER = 1

    @property
    def other(self) -> Party:
        return Party(1 - self)


class Level(Enum):
    STEPS = "steps"
    OPS = "ops"


class OutcomeKind(Enum):
    LEAF = "leaf"  # both hold a leaf at (step, index) and the leaves differ
    LENGTH = "length"  # one tree is longer; everything both hold agrees up to the shorter end


@dataclass(frozen=True)
class Query:
    """What the next two moves reveal: a count (``size == 0``) or a block's node hash."""

    level: Level
    step: int  # the disputed step at the op level; 0 at the step level
    start: int = 0
    size: int = 0

    @property
    def is_count(self) -> bool:
        return self.size == 0


@dataclass(frozen=True)
class Outcome:
    kind: OutcomeKind
    level: Level  # where the game ended (LENGTH can end at either level)
    step: int
    index: int  # op index in the step (LEAF), or the first position the shorter tree lacks
    counts: tuple[int, int]  # (defender, challenger) step or op counts at that level


def _u256(data: bytes) -> int:
    return int.from_bytes(data, "big")


def count_word(n: int) -> bytes:
    if not 0 <= n < 2**64:
        raise DisputeError(f"count {n} does not fit in 64 bits")
    return n.to_bytes(32, "big")


class _Search:
    """Binary search over aligned blocks of one tree level, for two leaf counts."""

    def __init__(self, n_defender: int, n_challenger: int) -> None:
        self.counts = (n_defender, n_challenger)
        self.shortest = min(self.counts)
        size = 1
        while size < max(self.counts):
            size *= 2
        self.lo, self.size = 0, size
        self.revealed: dict[tuple[int, int], tuple[bytes, bytes]] = {}
        self._skip_incomplete()

    def _skip_incomplete(self) -> None:
        while self.size > 1 and self.lo + self.size // 2 > self.shortest:
            self.size //= 2  # the left half is incomplete in the shorter tree: no move

    @property
    def done(self) -> bool:
        return self.size == 1

    def block(self) -> tuple[int, int]:
        return self.lo, self.size // 2

    def answer(self, defender: bytes, challenger: bytes) -> None:
        start, half = self.block()
        self.revealed[(start, half)] = (defender, challenger)
        if defender == challenger:
            self.lo += half
        self.size = half
        self._skip_incomplete()

    @property
    def candidate(self) -> int:
        """First differing position; == shortest when only the lengths differ."""
        return self.lo


class Dispute:
    """The referee-side state machine: checks every move and, at the end, the evidence.

    Pure and deterministic: no chain, no clock. ``timeout()`` says who loses if the game
    stalls now (the party due to move), mirroring ``JobMarket.dispute_timeout``.
    """

    def __init__(self, defender_root: bytes, challenger_root: bytes) -> None:
        for name, root in (("defender", defender_root), ("challenger", challenger_root)):
            if len(root) != 32:
                raise DisputeError(f"{name} trace root must be 32 bytes, got {len(root)}")
        if defender_root == challenger_root:
            raise DisputeError("the trace roots are equal: there is nothing to dispute")
        self.roots = (defender_root, challenger_root)
        self.moves: list[tuple[Party, bytes]] = []
        self._pending: bytes | None = None  # the defender's half of the current query
        self._step_search: _Search | None = None
        self._op_search: _Search | None = None
        self._step: int | None = None
        self.outcome: Outcome | None = None

    # -- whose turn, asking what ------------------------------------------------------------
    @property
    def turn(self) -> Party | None:
        if self.outcome is not None:
            return None
        return Party.DEFENDER if self._pending is None else Party.CHALLENGER

    def query(self) -> Query | None:
        """The question the next move answers, or None once the game is over."""
        if self.outcome is not None:
            return None
        if self._step_search is None:
            return Query(Level.STEPS, 0)
        if not self._step_search.done:
            start, size = self._step_search.block()
            return Query(Level.STEPS, 0, start, size)
        assert self._step is not None
        if self._op_search is None:
            return Query(Level.OPS, self._step)
        start, size = self._op_search.block()
        return Query(Level.OPS, self._step, start, size)

    def timeout(self) -> Party | None:
        """The party that loses if nobody moves before the round deadline."""
        return self.turn

    @property
    def rounds(self) -> int:
        return len(self.moves)

    # -- moves --------------------------------------------------------------------------------
    def move(self, party: Party, data: bytes) -> None:
        """Apply one move; raises ``DisputeError`` (move rejected, no state change)."""
        if self.outcome is not None:
            raise DisputeError("the bisection is over; submit the final evidence instead")
        if party != self.turn:
            raise DisputeError(f"it is the {self.turn.name.lower()}'s turn, not the {party.name.lower()}'s")
        if not isinstance(data, bytes | bytearray) or len(data) != 32:
            raise DisputeError("a move is exactly 32 bytes (one bytes32)")
        query = self.query()
        assert query is not None
        data = bytes(data)
        if query.is_count:
            n = _u256(data)
            if n >= 2**64:
                raise DisputeError(f"count {n} is not a 64-bit number")
            if query.level is Level.STEPS and n == 0:
                raise DisputeError("a trace has at least one step")
        if party is Party.DEFENDER:
            self._pending = data
            self.moves.append((party, data))
            return
        defender, self._pending = self._pending, None
        assert defender is not None
        self.moves.append((party, data))
        self._answer(query, defender, data)

    def _answer(self, query: Query, defender: bytes, challenger: bytes) -> None:
        if query.is_count:
            search = _Search(_u256(defender), _u256(challenger))
            if query.level is Level.STEPS:
                self._step_search = search
            else:
                self._op_search = search
        else:
            search = self._step_search if query.level is Level.STEPS else self._op_search
            assert search is not None
            search.answer(defender, challenger)
        self._advance()

    def _advance(self) -> None:
        steps = self._step_search
        if steps is None or not steps.done:
            return
        if self._step is None:
            if steps.candidate >= steps.shortest:
                self.outcome = Outcome(OutcomeKind.LENGTH, Level.STEPS, steps.candidate, 0, steps.counts)
                return
            self._step = steps.candidate
        ops = self._op_search
        if ops is None or not ops.done:
            return
        kind = OutcomeKind.LENGTH if ops.candidate >= ops.shortest else OutcomeKind.LEAF
        self.outcome = Outcome(kind, Level.OPS, self._step, ops.candidate, ops.counts)

    # -- final evidence ---------------------------------------------------------------------
    def check_evidence(self, party: Party, evidence: PartyEvidence) -> None:
        """Raise ``DisputeError`` unless ``evidence`` binds every claim ``party`` made."""
        outcome = self.outcome
        if outcome is None:
            raise DisputeError("the bisection is not over yet; evidence comes after the last round")
        steps = self._step_search
        assert steps is not None
        who = party.name.lower()
        n_steps = steps.counts[party]
        step = _proven_position(steps.candidate, n_steps)
        if evidence.step_proof.index != step:
            raise DisputeError(f"{who}: evidence must prove step {step}, not {evidence.step_proof.index}")
        if evidence.step_proof.leaf_count != n_steps:
            raise DisputeError(f"{who}: step proof is for {evidence.step_proof.leaf_count} steps, you claimed {n_steps}")
        step_leaf = leaf_hash(evidence.step_root)
        try:
            blocks = path_blocks(step_leaf, evidence.step_proof)
        except MerkleError as exc:
            raise DisputeError(f"{who}: malformed step proof: {exc}") from exc
        if blocks.root != self.roots[party]:
            raise DisputeError(f"{who}: step proof does not lead to your trace root")
        _check_revealed(who, "step", steps, party, blocks)
        if outcome.level is Level.STEPS:
            return
        ops = self._op_search
        assert ops is not None
        n_ops = ops.counts[party]
        if n_ops == 0:
            if evidence.step_root != MerkleTree([]).root or evidence.record is not None:
                raise DisputeError(f"{who}: you claimed an empty step; its root must be the empty tree's")
            return
        record, op_proof = evidence.record, evidence.op_proof
        if record is None or op_proof is None:
            raise DisputeError(f"{who}: evidence needs the op record and its proof")
        index = _proven_position(ops.candidate, n_ops)
        if (record.step, record.index, op_proof.index) != (outcome.step, index, index):
            raise DisputeError(f"{who}: evidence must prove op {outcome.step}/{index}")
        if op_proof.leaf_count != n_ops:
            raise DisputeError(f"{who}: op proof is for {op_proof.leaf_count} ops, you claimed {n_ops}")
        try:
            op_blocks = path_blocks(record.leaf_hash(), op_proof)
        except (MerkleError, TraceError) as exc:
            raise DisputeError(f"{who}: malformed op proof: {exc}") from exc
        if op_blocks.root != evidence.step_root:
            raise DisputeError(f"{who}: op proof does not lead to the proven step root")
        _check_revealed(who, "op", ops, party, op_blocks)


def _proven_position(candidate: int, count: int) -> int:
    """The leaf a party proves: the candidate if it has it, else its last one."""
    return candidate if candidate < count else count - 1


def _check_revealed(who: str, what: str, search: _Search, party: Party, blocks: PathBlocks) -> None:
    for (start, size), pair in search.revealed.items():
        proven = blocks.nodes.get((start, size))
        if proven != pair[party]:
            raise DisputeError(
                f"{who}: the {what} block [{start}, {start + size}) you revealed is not the one "
                "your proof commits to (an earlier claim was false or changed)"
            )


@dataclass(frozen=True)
class PathBlocks:
    root: bytes
    nodes: dict[tuple[int, int], bytes]  # (start, size) of complete aligned blocks -> hash


def path_blocks(leaf_digest: bytes, proof: MerkleProof) -> PathBlocks:
    """Every complete aligned block a Merkle proof reveals: the path nodes and their
    siblings, keyed by (first leaf, leaf count)."""
    root, revealed = proof_nodes(leaf_digest, proof)
    nodes: dict[tuple[int, int], bytes] = {}
    for level, position, digest in revealed:
        size = 1 << level
        if (position + 1) * size <= proof.leaf_count:  # only complete blocks compare across trees
            nodes[(position * size, size)] = digest
    return PathBlocks(root, nodes)


@dataclass(frozen=True)
class PartyEvidence:
    """A party's last word: the proven step (root + proof under the trace root) and, at the
    op level, the proven op record (with its input tensors) + proof under that step root."""

    step_root: bytes
    step_proof: MerkleProof
    record: OpRecord | None = None
    op_proof: MerkleProof | None = None

    def to_json(self) -> dict[str, Any]:
        """Wire form (what a party publishes for the referee/committee); tensors base64."""
        return {
            "step_root": "0x" + self.step_root.hex(),
            "step_proof": self.step_proof.to_json(),
            "record": None if self.record is None else self.record.to_json(),
            "op_proof": None if self.op_proof is None else self.op_proof.to_json(),
        }

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> PartyEvidence:
        try:
            record, op_proof = obj.get("record"), obj.get("op_proof")
            return cls(
                bytes.fromhex(str(obj["step_root"]).removeprefix("0x")),
                MerkleProof.from_json(obj["step_proof"]),
                None if record is None else OpRecord.from_json(record),
                None if op_proof is None else MerkleProof.from_json(op_proof),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise DisputeError(f"malformed dispute evidence: {exc}") from exc


@dataclass
class HonestParty:
    """Plays the game truthfully from a full trace (the honest strategy)."""

    trace: Trace
    _trees: dict[int, MerkleTree] = field(default_factory=dict, repr=False)

    def _step_tree(self) -> MerkleTree:
        if -1 not in self._trees:
            self._trees[-1] = MerkleTree([leaf_hash(r) for r in self.trace.step_roots])
        return self._trees[-1]

    def _op_tree(self, step: int) -> MerkleTree:
        if step not in self._trees:
            self._trees[step] = MerkleTree([r.leaf_hash() for r in self.trace.steps[step]])
        return self._trees[step]

    def answer(self, query: Query) -> bytes:
        tree = self._step_tree() if query.level is Level.STEPS else self._op_tree(query.step)
        if query.is_count:
            return count_word(tree.leaf_count)
        return block_hash(tree, query.start, query.size)

    def evidence(self, dispute: Dispute) -> PartyEvidence:
        outcome = dispute.outcome
        if outcome is None:
            raise DisputeError("the bisection is not over yet")
        steps = self._step_tree()
        s = _proven_position(outcome.step, steps.leaf_count) if outcome.level is Level.STEPS else outcome.step
        step_root = self.trace.step_roots[s]
        if outcome.level is Level.STEPS:
            return PartyEvidence(step_root, steps.proof(s))
        ops = self._op_tree(s)
        if ops.leaf_count == 0:
            return PartyEvidence(step_root, steps.proof(s))
        i = _proven_position(outcome.index, ops.leaf_count)
        return PartyEvidence(step_root, steps.proof(s), self.trace.leaf(s, i), ops.proof(i))


def block_hash(tree: MerkleTree, start: int, size: int) -> bytes:
    """Node hash of the complete aligned block [start, start + size) of ``tree``."""
    if size <= 0 or size & (size - 1) or start % size or start + size > tree.leaf_count:
        raise DisputeError(f"[{start}, {start + size}) is not a complete aligned block of {tree.leaf_count} leaves")
    # a complete aligned block is a node of the tree: the top of a tree over its leaves
    return MerkleTree([tree.leaf(i) for i in range(start, start + size)]).top


def play(dispute: Dispute, defender: HonestParty, challenger: HonestParty) -> Outcome:
    """Run the game to its end with two players (honest or not); returns the outcome."""
    players = (defender, challenger)
    while (query := dispute.query()) is not None:
        party = dispute.turn
        assert party is not None
        dispute.move(party, players[party].answer(query))
    assert dispute.outcome is not None
    return dispute.outcome
