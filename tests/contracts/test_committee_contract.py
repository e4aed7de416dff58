"""DisputeCommittee.vy: the draw (and that Python draws the same committee), m-of-n verdicts
with every revert, GUILTY_BOTH, a minority's false verdict rejected and slashed, a silent
committee annulled by JobMarket's timeout."""

from __future__ import annotations

import hashlib

import boa
import pytest
from committee_world import (
    LEAF,
    OUTPUT_HASH,
    PENALTY,
    VALIDATOR_STAKE,
    CommitteeWorld,
    deploy_committee_world,
    validator_keys,
)
from contract_world import (
    BURN,
    CHALLENGE_BOND,
    DISPUTED,
    FINALIZED,
    JOB_PRICE,
    MIN_BOND,
    MODE_REPLICATE,
    REFUNDED,
    ROUND_WINDOW,
    E,
    load,
)

from verimesh.verify.committee import (
    GUILTY_BOTH,
    GUILTY_CHALLENGER,
    GUILTY_DEFENDER,
    Validator,
    VerdictSignature,
    committee_threshold,
    draw_committee,
    expected_committee,
    scan_pool,
)

OTHER = b"\x0c" * 32
THIRD = b"\x0d" * 32
TURN_REFEREE = 2
SEED = hashlib.sha256(b"verimesh committee test vector").digest()
# The shared test vector: 10 validators (validator_keys), stakes 100, 150, ... 550 VMT, this
# seed, 5 members (VECTOR_MEMBERS below).
VECTOR_STAKES = [(100 + 50 * i) * E for i in range(10)]


@pytest.fixture(scope="module")
def cw() -> CommitteeWorld:
    return deploy_committee_world()


def test_shared_draw_vector_python_equals_contract(cw: CommitteeWorld) -> None:
    keys = validator_keys(10)
    pool = [Validator(address=k.address, stake=s) for k, s in zip(keys, VECTOR_STAKES, strict=True)]
    python = draw_committee(SEED, pool, 5)
    ordered = sorted(pool, key=lambda v: int(v.address, 16))
    chain = cw.committee.internal._draw(SEED, [v.address for v in ordered], [v.stake for v in ordered], 5)
    assert [str(a) for a in chain] == python
    assert python == VECTOR_MEMBERS


# Keys: committee_world.validator_keys(10) (sha256("committee validator %d")), stake of
# key i = (100 + 50 i) VMT. Pinned, so the Python draw and the contract's cannot drift
# together unnoticed.
VECTOR_MEMBERS = [
    "0xD81AbE8F6B8027FA2B56693c6Ad3Cdf55d15d1Ee",  # key 2
    "0x683753afE0AD0495214cf596042032f88F2007A0",  # key 6
    "0x48891c60645FfE8C75fC9e2c694c8A4D70EC97C0",  # key 9
    "0x19400313A5ba197f2AF77978B1A31d29667BbB4c",  # key 3
    "0xc970C4A765124489E400Cd2C83D2D18a82422c2c",  # key 4
]


def test_draw_from_the_registry_matches_python(cw: CommitteeWorld) -> None:
    job_id, provider = cw.referred_dispute()
    listed, free = cw.snapshot()
    tx_block = boa.env.evm.patch.block_number
    cw.committee.request_committee(job_id)
    assert cw.committee.request_block(job_id) == tx_block
    boa.env.time_travel(blocks=1)
    members = list(cw.committee.draw_committee(job_id))
    (event,) = [e for e in cw.committee.get_logs() if type(e).__name__ == "CommitteeDrawn"]
    info = cw.committee.committees(job_id)
    exclude = [cw.world.requester, provider, cw.world.challenger]
    assert [str(m) for m in members] == expected_committee(info.seed, listed, free, exclude, 5)
    assert len(members) == 5 and len(set(members)) == 5
    assert info.size == 5 and info.threshold == 3
    assert info.deadline == cw.market.disputes(job_id).deadline
    assert info.dispute_round == 0 and not info.accepted
    assert all(cw.committee.is_member(job_id, m) for m in members)
    assert list(cw.committee.members(job_id)) == members
    assert list(event.members) == members and event.threshold == 3


def test_a_cartel_registered_in_a_row_does_not_fill_the_pool_of_a_long_list() -> None:
    """200 validators, 20 of them (10 %) registered one after another: a window of 32
    neighbours would hand the cartel a majority of the pool (and so most likely of the
    committee) for about 1 start in 10; probed at hashed positions, its share of every
    pool stays near its 10 % of the list. The contract's pool is the Python twin's."""
    big = deploy_committee_world(validators=200)
    listed, free = big.snapshot()
    cartel = set(listed[90:110])
    shares = []
    for n in range(100):
        seed = hashlib.sha256(b"pool seed %d" % n).digest()
        pool = scan_pool(seed, listed, free, [])
        assert len({v.address for v in pool}) == len(pool) > 16
        if n < 5:
            chain, weights = big.committee.internal._scan(seed, [])
            ordered = sorted(pool, key=lambda v: int(v.address, 16))
            assert [str(a) for a in chain] == [v.address for v in ordered]
            assert list(weights) == [v.stake for v in ordered]
        shares.append(sum(v.address in cartel for v in pool) / len(pool))
    assert max(shares) < 0.5
    assert 0.05 < sum(shares) / len(shares) < 0.15


def test_parties_are_never_drawn_and_zero_free_stake_is_skipped(cw: CommitteeWorld) -> None:
    """The challenger here is a validator; a validator with everything locked is skipped."""
    w = cw.world
    challenger_key = next(iter(cw.keys.values()))
    challenger = challenger_key.address
    job_id = w.post()
    (provider,) = w.market.assigned(job_id)
    w.commit_reveal_all(job_id)
    with boa.env.prank(challenger):
        w.token.approve(w.market.address, 2**256 - 1)
        w.market.challenge(job_id, 0)
    with boa.env.prank(provider):
        w.market.refer_dispute(job_id)
    listed, free = cw.snapshot()
    pool = scan_pool(SEED, listed, free, [challenger])
    assert challenger not in [v.address for v in pool] and len(pool) == len(listed) - 1
    members = cw.draw(job_id)
    assert challenger not in members
    seed = cw.committee.committees(job_id).seed
    assert members == expected_committee(seed, listed, free, [w.requester, provider, challenger], 5)


def test_threshold_rounding_matches_python(cw: CommitteeWorld) -> None:
    for size in range(1, 6):
        assert cw.committee.threshold_for(size) == committee_threshold(size, 5, 3)
    assert [committee_threshold(s, 5, 3) for s in range(1, 6)] == [1, 2, 2, 3, 3]


def test_small_committee_when_few_validators_are_eligible() -> None:
    cw = deploy_committee_world(validators=2)
    job_id, _ = cw.referred_dispute()
    members = cw.draw(job_id)
    assert len(members) == 2
    assert cw.committee.committees(job_id).threshold == 2


def test_honest_majority_verdict_resolves_the_dispute(cw: CommitteeWorld) -> None:
    w, m = cw.world, cw.market
    job_id, provider = cw.referred_dispute()
    members = cw.draw(job_id)
    verdict = cw.verdict(job_id, GUILTY_DEFENDER)
    cw.submit(verdict, cw.sign(members[:3], verdict))
    assert w.state(job_id) == FINALIZED
    info = cw.committee.committees(job_id)
    assert info.accepted and info.guilty == GUILTY_DEFENDER
    assert m.balances(w.challenger) == CHALLENGE_BOND + 5 * E
    assert w.member(provider).stake == 200 * E - MIN_BOND
    with boa.reverts("dispute_committee: verdict already accepted"):
        cw.submit(verdict, cw.sign(members[:3], verdict))
    w.assert_conserved()


def test_all_signatures_of_the_committee_also_pass(cw: CommitteeWorld) -> None:
    job_id, provider = cw.referred_dispute()
    members = cw.draw(job_id)
    verdict = cw.verdict(job_id, GUILTY_CHALLENGER)
    cw.submit(verdict, cw.sign(members, verdict))
    assert cw.market.balances(provider) == JOB_PRICE + CHALLENGE_BOND // 2
    cw.world.assert_conserved()


def test_verdict_digest_matches_python_signing(cw: CommitteeWorld) -> None:
    from verimesh.crypto.eip712 import fast_digest

    job_id, _ = cw.referred_dispute()
    members = cw.draw(job_id)
    verdict = cw.verdict(job_id, GUILTY_BOTH)
    deadline = cw.committee.committees(job_id).deadline
    assert cw.committee.verdict_digest(job_id, GUILTY_BOTH, LEAF, OUTPUT_HASH, members[0]) == fast_digest(
        cw.domain(), verdict, members[0], 0, deadline)


def test_submit_verdict_reverts_leave_no_trace(cw: CommitteeWorld) -> None:
    w = cw.world
    job_id, _ = cw.referred_dispute()
    verdict0 = cw.verdict(job_id, GUILTY_DEFENDER)
    with boa.reverts("dispute_committee: committee not drawn"):
        cw.committee.submit_verdict(job_id, 1, LEAF, OUTPUT_HASH, [])
    members = cw.draw(job_id)
    outsider = next(a for a in cw.keys if a not in members)
    verdict = cw.verdict(job_id, GUILTY_DEFENDER)
    assert verdict == verdict0.model_copy(update={"dispute_round": 0})
    good = cw.sign(members[:3], verdict)
    for bad_guilty in (0, 4):
        with boa.reverts("dispute_committee: guilty must be 1, 2 or 3"):
            cw.committee.submit_verdict(job_id, bad_guilty, LEAF, OUTPUT_HASH,
                                        [(s.signer, s.signature) for s in good])
    with boa.reverts("dispute_committee: too few signatures"):
        cw.submit(verdict, good[:2])
    ordered = sorted(good, key=lambda s: int(s.signer, 16))
    with boa.reverts("dispute_committee: signers not in strictly ascending order (duplicate?)"):
        cw.submit(verdict, [ordered[0], ordered[0], ordered[1]], sort=False)
    with boa.reverts("dispute_committee: signers not in strictly ascending order (duplicate?)"):
        cw.submit(verdict, list(reversed(ordered)), sort=False)
    with boa.reverts("dispute_committee: signer is not on the committee"):
        cw.submit(verdict, good[:2] + cw.sign([outsider], verdict))
    other = cw.verdict(job_id, GUILTY_CHALLENGER)  # honest signatures of another verdict
    with boa.reverts("dispute_committee: signature does not match this verdict"):
        cw.submit(verdict, good[:2] + cw.sign([members[3]], other))
    forged = VerdictSignature(signer=members[3], signature=good[0].signature)  # someone else's
    with boa.reverts("dispute_committee: signature does not match this verdict"):
        cw.submit(verdict, [*good[:2], forged])
    s = good[2]
    malformed = {
        "short": s.signature[:64],
        "v": s.signature[:64] + b"\x00",
        "high s": _high_s(s.signature),
    }
    for sig in malformed.values():
        with boa.reverts("dispute_committee: malformed signature"):
            cw.submit(verdict, [*good[:2], VerdictSignature(signer=s.signer, signature=sig)])
    assert w.state(job_id) == DISPUTED and not cw.committee.committees(job_id).accepted
    boa.env.time_travel(seconds=ROUND_WINDOW + 1)
    with boa.reverts("dispute_committee: verdict deadline passed"):
        cw.submit(verdict, good)


def _high_s(signature: bytes) -> bytes:
    n = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
    s = int.from_bytes(signature[32:64], "big")
    v = signature[64]
    return signature[:32] + (n - s).to_bytes(32, "big") + bytes([55 - v])


def test_request_and_draw_reverts(cw: CommitteeWorld) -> None:
    w, c = cw.world, cw.committee
    revealed = w.post()
    w.commit_reveal_all(revealed)
    with boa.reverts("dispute_committee: job is not disputed"):
        c.request_committee(revealed)
    job_id = w.post()
    (provider,) = w.market.assigned(job_id)
    w.commit_reveal_all(job_id)
    with boa.env.prank(w.challenger):
        w.market.challenge(job_id, 0)
    with boa.reverts("dispute_committee: dispute has not reached the referee turn"):
        c.request_committee(job_id)
    with boa.env.prank(provider):
        w.market.refer_dispute(job_id)
    with boa.reverts("dispute_committee: committee not requested"):
        c.draw_committee(job_id)
    c.request_committee(job_id)
    with boa.reverts("dispute_committee: wait one block after the request"):
        c.draw_committee(job_id)
    with boa.reverts("dispute_committee: committee already requested"):
        c.request_committee(job_id)
    boa.env.time_travel(blocks=257)
    with boa.reverts("dispute_committee: seed block too old; request again"):
        c.draw_committee(job_id)
    c.request_committee(job_id)  # an expired request may be renewed
    boa.env.time_travel(blocks=1)
    c.draw_committee(job_id)
    with boa.reverts("dispute_committee: committee already drawn"):
        c.draw_committee(job_id)
    with boa.reverts("dispute_committee: committee already drawn"):
        c.request_committee(job_id)


def test_no_eligible_validator() -> None:
    cw = deploy_committee_world(validators=1)
    (only,) = cw.keys
    job_id = cw.world.post()
    (provider,) = cw.market.assigned(job_id)
    cw.world.commit_reveal_all(job_id)
    with boa.env.prank(only):
        cw.world.token.approve(cw.market.address, 2**256 - 1)
        cw.market.challenge(job_id, 0)
    with boa.env.prank(provider):
        cw.market.refer_dispute(job_id)
    cw.committee.request_committee(job_id)
    boa.env.time_travel(blocks=1)
    with boa.reverts("dispute_committee: no eligible validator"):
        cw.committee.draw_committee(job_id)


def test_minority_false_verdict_is_rejected_then_slashed(cw: CommitteeWorld) -> None:
    w, c = cw.world, cw.committee
    job_id, provider = cw.referred_dispute()
    members = cw.draw(job_id)
    corrupt, honest = members[:2], members[2:]
    false = cw.verdict(job_id, GUILTY_CHALLENGER)  # acquits the cheating provider
    true = cw.verdict(job_id, GUILTY_DEFENDER)
    false_sigs = cw.sign(corrupt, false)
    with boa.reverts("dispute_committee: too few signatures"):
        cw.submit(false, false_sigs)
    with boa.reverts("dispute_committee: signature does not match this verdict"):
        cw.submit(false, false_sigs + cw.sign(honest[:1], true))  # cannot borrow honest signatures
    with boa.reverts("dispute_committee: no accepted verdict to compare with"):
        c.report_equivocation(job_id, false.guilty, LEAF, OUTPUT_HASH, corrupt[0], false_sigs[0].signature)
    cw.submit(true, cw.sign(honest, true))
    assert w.state(job_id) == FINALIZED and w.member(provider).stake == 200 * E - MIN_BOND

    reporter = w.outsider
    before = w.balance(reporter), w.balance(BURN)
    honest_sig = cw.sign(honest[:1], true)[0]
    with boa.env.prank(reporter):
        with boa.reverts("dispute_committee: that is the accepted verdict"):
            c.report_equivocation(job_id, true.guilty, LEAF, OUTPUT_HASH, honest[0], honest_sig.signature)
        with boa.reverts("dispute_committee: not a committee member"):
            c.report_equivocation(job_id, false.guilty, LEAF, OUTPUT_HASH, w.challenger, false_sigs[0].signature)
        with boa.reverts("dispute_committee: signature does not match this verdict"):
            c.report_equivocation(job_id, false.guilty, LEAF, OUTPUT_HASH, corrupt[1], false_sigs[0].signature)
        with boa.reverts("dispute_committee: malformed signature"):
            c.report_equivocation(job_id, false.guilty, LEAF, OUTPUT_HASH, corrupt[0], b"\x01" * 65)
        for member, sig in zip(corrupt, false_sigs, strict=True):
            c.report_equivocation(job_id, false.guilty, LEAF, OUTPUT_HASH, member, sig.signature)
        with boa.reverts("dispute_committee: member already slashed for this job"):
            c.report_equivocation(job_id, false.guilty, LEAF, OUTPUT_HASH, corrupt[0], false_sigs[0].signature)
    for member in corrupt:
        assert w.member(member).stake == VALIDATOR_STAKE - PENALTY
        assert c.slashed(job_id, member)
    for member in honest:
        assert w.member(member).stake == VALIDATOR_STAKE
    assert w.balance(reporter) == before[0] + 2 * PENALTY // 2
    assert w.balance(BURN) == before[1] + 2 * PENALTY // 2
    assert w.balance(c.address) == 0
    w.assert_conserved()


def test_a_member_that_signed_another_leaf_or_output_also_equivocated(cw: CommitteeWorld) -> None:
    job_id, _ = cw.referred_dispute()
    members = cw.draw(job_id)
    true = cw.verdict(job_id, GUILTY_DEFENDER)
    cw.submit(true, cw.sign(members[:3], true))
    sneaky = cw.verdict(job_id, GUILTY_DEFENDER, output=b"\x01" * 32)
    (sig,) = cw.sign(members[3:4], sneaky)
    cw.committee.report_equivocation(job_id, GUILTY_DEFENDER, LEAF, b"\x01" * 32, members[3], sig.signature)
    assert cw.world.member(members[3]).stake == VALIDATOR_STAKE - PENALTY


def test_published_signatures_are_checked_and_logged(cw: CommitteeWorld) -> None:
    c = cw.committee
    job_id, _ = cw.referred_dispute()
    members = cw.draw(job_id)
    verdict = cw.verdict(job_id, GUILTY_DEFENDER)
    (sig,) = cw.sign(members[:1], verdict)
    with boa.env.prank(members[1]), boa.reverts("dispute_committee: signature does not match this verdict"):
        c.publish_signature(job_id, GUILTY_DEFENDER, LEAF, OUTPUT_HASH, sig.signature)
    with boa.env.prank(cw.world.outsider), boa.reverts("dispute_committee: signer is not on the committee"):
        c.publish_signature(job_id, GUILTY_DEFENDER, LEAF, OUTPUT_HASH, sig.signature)
    with boa.env.prank(members[0]):
        c.publish_signature(job_id, GUILTY_DEFENDER, LEAF, OUTPUT_HASH, sig.signature)
    (event,) = [e for e in c.get_logs() if type(e).__name__ == "VerdictSigned"]
    assert event.signer == members[0] and event.signature == sig.signature


def test_guilty_both_slashes_both_replicas_and_refunds_the_requester(cw: CommitteeWorld) -> None:
    w, m = cw.world, cw.market
    job_id = w.post(mode=MODE_REPLICATE, param=3)
    p0, p1, p2 = m.assigned(job_id)
    w.commit_reveal_all(job_id, outputs={p0: OTHER, p1: THIRD})  # p2 is right, nobody disputes it
    d = m.disputes(job_id)
    assert (d.challenger, d.defender_replica) == (p0, 1)
    with boa.env.prank(p1):  # the defender is due and ends the game at once
        m.refer_dispute(job_id)
    members = cw.draw(job_id)
    assert not {p0, p1} & set(members)
    verdict = cw.verdict(job_id, GUILTY_BOTH)
    burned = w.balance(BURN)
    cw.submit(verdict, cw.sign(members[:3], verdict))
    assert w.state(job_id) == FINALIZED
    for liar in (p0, p1):
        assert w.member(liar).stake == 200 * E - MIN_BOND and m.balances(liar) == 0
    assert w.member(p2).locked == 0 and m.balances(p2) == 0  # released unpaid
    # every price back plus bounty (5) and share (3) of each 10 VMT slash
    assert m.balances(w.requester) == 3 * JOB_PRICE + 2 * 8 * E
    assert w.balance(BURN) == burned + 2 * 2 * E
    w.assert_conserved()


def test_guilty_both_with_an_outside_challenger_splits_its_bond(cw: CommitteeWorld) -> None:
    w, m = cw.world, cw.market
    job_id, provider = cw.referred_dispute()
    members = cw.draw(job_id)
    verdict = cw.verdict(job_id, GUILTY_BOTH)
    cw.submit(verdict, cw.sign(members[:3], verdict))
    assert w.member(provider).stake == 200 * E - MIN_BOND
    assert m.balances(w.challenger) == 0
    # price back + (bounty + share) of the bond slash (8) and of the challenge bond (40)
    assert m.balances(w.requester) == JOB_PRICE + 8 * E + CHALLENGE_BOND * 8 // 10
    w.assert_conserved()


def test_silent_committee_lets_the_dispute_be_annulled(cw: CommitteeWorld) -> None:
    w, m = cw.world, cw.market
    job_id, provider = cw.referred_dispute()
    members = cw.draw(job_id)
    assert m.disputes(job_id).turn == TURN_REFEREE
    boa.env.time_travel(seconds=ROUND_WINDOW + 1)
    m.dispute_timeout(job_id)
    assert w.state(job_id) == REFUNDED
    assert m.balances(w.requester) == JOB_PRICE and m.balances(w.challenger) == CHALLENGE_BOND
    assert w.member(provider).locked == 0
    verdict = cw.verdict(job_id, GUILTY_DEFENDER)
    with boa.reverts("dispute_committee: verdict deadline passed"):
        cw.submit(verdict, cw.sign(members[:3], verdict))
    w.assert_conserved()


def test_constructor_and_wiring_reverts(cw: CommitteeWorld) -> None:
    w = cw.world
    args = [w.market.address, w.registry.address, w.token.address]
    for size, threshold in ((0, 0), (17, 9), (5, 2), (4, 2), (5, 6)):
        with boa.reverts():
            load("DisputeCommittee.vy", *args, size, threshold, PENALTY, 0)
    with boa.reverts("dispute_committee: threshold must be a majority of the committee size"):
        load("DisputeCommittee.vy", *args, 4, 2, PENALTY, 0)
    with boa.reverts("dispute_committee: committee size must be between 1 and 16"):
        load("DisputeCommittee.vy", *args, 17, 9, PENALTY, 0)
    with boa.reverts("dispute_committee: reporter bounty above 10000 bps"):
        load("DisputeCommittee.vy", *args, 5, 3, PENALTY, 10_001)
    zero = "0x" + "00" * 20
    with boa.reverts("dispute_committee: job market is the zero address"):
        load("DisputeCommittee.vy", zero, *args[1:], 5, 3, PENALTY, 0)
    with boa.reverts("registry: slasher already set"):
        w.registry.set_slasher(w.outsider)
    with boa.env.prank(w.outsider), boa.reverts("registry: caller is not the job market or the slasher"):
        w.registry.slash(w.providers[0], 1, w.outsider)


DECODER_MOVES = 26  # a 16-token decoder job's bisection (docs/verification.md)


@pytest.mark.ignore_isolation
def test_gas_of_a_whole_dispute_with_the_committee() -> None:
    """challenge + 26 moves + refer + request + draw (5 of 7 validators) + 3-of-5 verdict,
    as real transactions (tx_gas); figures recorded in docs/verification.md."""
    from contract_world import tx_gas

    with boa.swap_env(boa.Env()):
        cw = deploy_committee_world()
        w, m, c = cw.world, cw.market, cw.committee
        for _ in range(2):  # warm: accounts and balances used before, as on a live market
            job_id, _ = cw.referred_dispute()
            members = cw.draw(job_id)
            verdict = cw.verdict(job_id, GUILTY_DEFENDER)
            cw.submit(verdict, cw.sign(members[:3], verdict))
        job_id = w.post()
        (provider,) = m.assigned(job_id)
        w.commit_reveal_all(job_id)
        gas: dict[str, int] = {}
        with boa.env.prank(w.challenger):
            gas["challenge"] = tx_gas(m, lambda: m.challenge(job_id, 0))
        movers = [provider, w.challenger]
        moves = []
        for i in range(DECODER_MOVES):
            with boa.env.prank(movers[i % 2]):
                moves.append(tx_gas(m, lambda i=i: m.dispute_move(job_id, (i + 1).to_bytes(32, "big"))))
        gas["dispute_move x26"] = sum(moves)
        with boa.env.prank(movers[DECODER_MOVES % 2]):
            gas["refer_dispute"] = tx_gas(m, lambda: m.refer_dispute(job_id))
        gas["request_committee"] = tx_gas(c, lambda: c.request_committee(job_id))
        boa.env.time_travel(blocks=1)
        gas["draw_committee"] = tx_gas(c, lambda: c.draw_committee(job_id))
        members = list(c.members(job_id))
        verdict = cw.verdict(job_id, GUILTY_DEFENDER)
        signatures = cw.sign(members[:3], verdict)
        gas["submit_verdict (3 signatures)"] = tx_gas(c, lambda: cw.submit(verdict, signatures))
        assert w.state(job_id) == FINALIZED
        gas["committee part"] = (gas["refer_dispute"] + gas["request_committee"] + gas["draw_committee"]
                                 + gas["submit_verdict (3 signatures)"])
        gas["whole dispute"] = gas["challenge"] + gas["dispute_move x26"] + gas["committee part"]
        print("\ndispute gas:", gas)
        assert gas["committee part"] < 700_000, gas
