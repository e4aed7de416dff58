"""Committee draw and m-of-n verdict certificates."""

import hashlib
from collections import Counter

import pytest
from eth_account import Account

from verimesh.crypto.eip712 import Domain
from verimesh.verify.committee import (
    GUILTY_CHALLENGER,
    GUILTY_DEFENDER,
    CommitteeError,
    Validator,
    Verdict,
    aggregate,
    check_certificate,
    default_threshold,
    draw_committee,
    leaf_index,
    sign_verdict,
)

KEYS = [Account.from_key(hashlib.sha256(b"validator%d" % i).digest()) for i in range(12)]
VALIDATORS = [Validator(address=k.address, stake=100 + 50 * i) for i, k in enumerate(KEYS)]
BY_ADDRESS = {k.address: k for k in KEYS}
DOMAIN = Domain(chain_id=31337, verifying_contract="0x" + "11" * 20)
EXPIRY = 2_000_000_000
SEED = hashlib.sha256(b"prevrandao").digest()

TRUE = Verdict(job_id=7, dispute_round=12, guilty=GUILTY_DEFENDER, leaf_index=leaf_index(1, 40),
               recomputed_output=b"\x01" * 32)
FALSE = TRUE.model_copy(update={"guilty": GUILTY_CHALLENGER})


def committee(size=7):
    return draw_committee(SEED, VALIDATORS, size)


def sign_all(members, verdict, domain=DOMAIN):
    return [sign_verdict(BY_ADDRESS[a], verdict, domain, EXPIRY) for a in members]


def test_draw_is_deterministic_distinct_and_stake_weighted():
    members = committee()
    assert members == draw_committee(SEED, list(reversed(VALIDATORS)), 7)  # order of the list is irrelevant
    assert len(set(members)) == 7
    assert members != draw_committee(hashlib.sha256(b"other").digest(), VALIDATORS, 7)
    counts = Counter()
    for i in range(600):
        counts.update(draw_committee(hashlib.sha256(b"%d" % i).digest(), VALIDATORS, 1))
    assert counts[KEYS[-1].address] > 2 * counts[KEYS[0].address]  # 650 vs 100 stake


@pytest.mark.parametrize(
    ("validators", "size", "match"),
    [(VALIDATORS, 13, "cannot draw"), (VALIDATORS, 0, "cannot draw"), (VALIDATORS + VALIDATORS[:1], 3, "twice")],
)
def test_bad_draws_are_refused(validators, size, match):
    with pytest.raises(CommitteeError, match=match):
        draw_committee(SEED, validators, size)


def test_threshold_of_honest_members_is_accepted():
    members = committee()
    t = default_threshold(len(members))
    assert t == 5
    cert = aggregate(TRUE, EXPIRY, sign_all(members[:t], TRUE))
    assert set(check_certificate(cert, DOMAIN, members, t, now=EXPIRY - 1)) == set(members[:t])


def test_a_minority_signing_a_false_verdict_cannot_reach_the_threshold():
    members = committee()
    t = default_threshold(len(members))
    corrupt, honest = members[: len(members) - t + 1], members[len(members) - t + 1 :]
    false_cert = aggregate(FALSE, EXPIRY, sign_all(corrupt, FALSE))
    with pytest.raises(CommitteeError, match="signatures, 5 needed"):
        check_certificate(false_cert, DOMAIN, members, t, now=0)
    # honest signatures on the true verdict cannot be reused for the false one
    stolen = aggregate(FALSE, EXPIRY, sign_all(corrupt, FALSE) + sign_all(honest, TRUE))
    with pytest.raises(CommitteeError, match="does not match this verdict"):
        check_certificate(stolen, DOMAIN, members, t, now=0)
    true_cert = aggregate(TRUE, EXPIRY, sign_all(honest, TRUE))
    with pytest.raises(CommitteeError, match="needed"):  # the honest ones alone: 4 of 7 here
        check_certificate(true_cert, DOMAIN, members, t, now=0)


def test_duplicates_outsiders_wrong_domain_and_expiry_are_rejected():
    members = committee()
    t = default_threshold(len(members))
    sigs = sign_all(members[:t], TRUE)
    dup = aggregate(TRUE, EXPIRY, [*sigs, sigs[0]])
    with pytest.raises(CommitteeError, match="repeated"):
        check_certificate(dup, DOMAIN, members, t, now=0)
    outsider = next(a for a in BY_ADDRESS if a not in members)
    with pytest.raises(CommitteeError, match="not a member"):
        check_certificate(aggregate(TRUE, EXPIRY, [*sigs, *sign_all([outsider], TRUE)]), DOMAIN, members, t, now=0)
    other_chain = Domain(chain_id=1, verifying_contract=DOMAIN.verifying_contract)
    with pytest.raises(CommitteeError, match="does not match"):
        check_certificate(aggregate(TRUE, EXPIRY, sign_all(members[:t], TRUE, other_chain)), DOMAIN, members, t, 0)
    with pytest.raises(CommitteeError, match="expired"):
        check_certificate(aggregate(TRUE, EXPIRY, sigs), DOMAIN, members, t, now=EXPIRY + 1)
    with pytest.raises(CommitteeError, match="impossible"):
        check_certificate(aggregate(TRUE, EXPIRY, sigs), DOMAIN, members, 8, now=0)
