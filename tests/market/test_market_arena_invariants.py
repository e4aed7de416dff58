"""Arena.vy under random call sequences (hypothesis stateful): whatever anyone does, in any
order and at any time, the arena holds exactly what it owes and its slot books stay
consistent. Calls that revert are part of the sequence: a revert must move nothing."""

from __future__ import annotations

import boa
from boa import BoaError
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule
from test_market_arena_contract import COMMIT, EPOCH, MIN_STAKE, SLOTS, WINDOW, ZERO, Arena, E

SALT = b"\x33" * 32


class ArenaMachine(RuleBasedStateMachine):
    @initialize()
    def deploy(self) -> None:
        self.w = Arena()
        self.people = [self.w.actor(10_000 * E) for _ in range(6)]
        self.posted: dict[int, tuple] = {}
        # start from a populated arena so short sequences reach settlements
        for who in self.people[:2]:
            with boa.env.prank(who):
                self.w.arena.register_provider(MIN_STAKE)
        for who in self.people[2:4]:
            with boa.env.prank(who):
                self.w.arena.register_validator(MIN_STAKE)
        with boa.env.prank(self.people[5]):
            for epoch in range(3):
                self.w.arena.fund(epoch, 10**20 + epoch)

    def _try(self, who: str, fn, *args) -> bool:
        before = self.w.token.balanceOf(self.w.arena.address)
        try:
            with boa.env.prank(who):
                fn(*args)
            return True
        except BoaError:
            assert self.w.token.balanceOf(self.w.arena.address) == before
            return False

    @rule(i=st.integers(0, 5), extra=st.integers(0, 50))
    def register_provider(self, i, extra):
        self._try(self.people[i], self.w.arena.register_provider, MIN_STAKE + extra * E)

    @rule(i=st.integers(0, 5))
    def leave(self, i):
        self._try(self.people[i], self.w.arena.leave)

    @rule(i=st.integers(0, 5), extra=st.integers(0, 50))
    def register_validator(self, i, extra):
        self._try(self.people[i], self.w.arena.register_validator, MIN_STAKE + extra * E)

    @rule(i=st.integers(0, 5))
    def leave_validator(self, i):
        self._try(self.people[i], self.w.arena.leave_validator)

    @rule(i=st.integers(0, 5), ahead=st.integers(0, 2), amount=st.integers(1, 10**21))
    def fund(self, i, ahead, amount):
        self._try(self.people[i], self.w.arena.fund, self.w.arena.current_epoch() + ahead, amount)

    @rule(i=st.integers(0, 5), scores=st.lists(st.integers(0, 9), min_size=SLOTS, max_size=SLOTS))
    def commit_and_reveal(self, i, scores):
        epoch = self.w.arena.current_epoch()
        who = self.people[i]
        commitment = self.w.arena.score_commitment(epoch, who, scores, SALT)
        self._try(who, self.w.arena.commit_scores, epoch, commitment)
        self._try(who, self.w.arena.reveal_scores, epoch, scores, SALT)

    @rule(seconds=st.sampled_from([COMMIT // 2, COMMIT, EPOCH, WINDOW]))
    def wait(self, seconds):
        boa.env.time_travel(seconds=seconds)

    @rule()
    def wait_out_the_window(self):
        boa.env.time_travel(seconds=WINDOW)

    @rule(i=st.integers(0, 5), back=st.integers(1, 3), cut=st.integers(0, 100), wrong=st.booleans())
    def post(self, i, back, cut, wrong):
        if self.w.arena.current_epoch() < back:
            boa.env.time_travel(seconds=EPOCH * back)
        epoch = self.w.arena.current_epoch() - back
        pool = self.w.arena.pool(epoch)
        providers = [self.w.arena.slot_provider(k) for k in range(SLOTS)]
        live = [k for k, p in enumerate(providers) if p != ZERO]
        validators = [self.w.arena.validator_at(k) for k in range(self.w.arena.validator_count())]
        rewards = [0] * SLOTS
        to_providers = pool * cut // 100 if live else 0
        for n, k in enumerate(live):
            rewards[k] = to_providers // len(live) + (to_providers % len(live) if n == 0 else 0)
        v_rewards = [(pool - to_providers) // len(validators)] * len(validators) if validators else []
        carry = pool - sum(rewards) - sum(v_rewards) + (1 if wrong else 0)
        payouts = (providers, rewards, [r + 1 for r in rewards], validators, v_rewards, carry)
        if self._try(self.people[i], self.w.arena.post_settlement, epoch, *payouts):
            assert not wrong
            self.posted[epoch] = payouts

    @rule(i=st.integers(0, 5), data=st.data())
    def challenge(self, i, data):
        if self.posted:
            epoch = data.draw(st.sampled_from(sorted(self.posted)))
            self._try(self.people[i], self.w.arena.challenge, epoch)

    @rule(data=st.data(), right=st.booleans())
    def resolve(self, data, right):
        if self.posted:
            epoch = data.draw(st.sampled_from(sorted(self.posted)))
            if self._try(self.w.arbiter, self.w.arena.resolve, epoch, right) and not right:
                del self.posted[epoch]

    @rule(i=st.integers(0, 5), data=st.data())
    def finalize(self, i, data):
        if self.posted:
            epoch = data.draw(st.sampled_from(sorted(self.posted)))
            self._try(self.people[i], self.w.arena.finalize, epoch, *self.posted[epoch])

    @rule(i=st.integers(0, 5))
    def claim(self, i):
        self._try(self.people[i], self.w.arena.claim)

    @invariant()
    def conserved(self):
        self.w.assert_conserved(epochs=self.w.arena.current_epoch() + 4)

    @invariant()
    def slot_books_agree(self):
        occupied = [self.w.arena.slot_provider(k) for k in range(SLOTS)]
        assert self.w.arena.provider_count() == sum(p != ZERO for p in occupied)
        assert len(set(p for p in occupied if p != ZERO)) == sum(p != ZERO for p in occupied)
        assert all(self.w.arena.provider_stake(p) >= MIN_STAKE for p in occupied if p != ZERO)


ArenaMachine.TestCase.settings = settings(
    max_examples=12, stateful_step_count=30, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
TestArenaInvariants = ArenaMachine.TestCase
