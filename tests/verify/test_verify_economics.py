import pytest

from verimesh.verify.economics import (
    BondRule,
    audit_probability_for,
    cheating_loses,
    detection_probability,
    detection_with_colluding_auditors,
    expected_cheat_profit,
    jobs_to_detect,
    min_audit_probability,
    min_stake,
    required_bond_multiplier_bps,
    seats_captured_probability,
)


@pytest.mark.parametrize("p", [0.01, 0.05, 0.1, 0.25, 1.0])
@pytest.mark.parametrize("reward", [0.1, 1.0, 50.0])
def test_min_stake_is_the_break_even_point(p, reward):
    gain = reward  # skip all the work
    s = min_stake(p, reward, gain)
    assert cheating_loses(p, s, reward, gain)
    assert abs(expected_cheat_profit(p, s, reward, gain)) < 1e-9 or s == 0
    if s > 0:
        assert not cheating_loses(p, s * 0.99, reward, gain)


def test_detection_curve_and_its_inverses():
    assert detection_probability(0.1, 0) == 0
    assert detection_probability(0.1, 70) > 0.999
    assert detection_probability(0.09, 70) < 0.999
    assert jobs_to_detect(0.1, 0.999) == 66
    assert detection_probability(0.1, 66) >= 0.999 > detection_probability(0.1, 65)
    p = audit_probability_for(70, 0.999)
    assert 0.0939 < p < 0.0940 and detection_probability(p, 70) == pytest.approx(0.999)
    assert min_audit_probability(9, 1, 1) == pytest.approx(0.1)


def test_bond_multiplier_for_the_contract():
    rule = BondRule()
    assert rule.bond(1.0) == 10.0 and rule.bond(20.0) == 40.0
    bps = required_bond_multiplier_bps(0.1)
    assert bps == 90_000
    assert cheating_loses(0.1, 20.0 * bps / 10_000, 20.0, 20.0)
    # the devnet 2x multiplier deters a full skip only at p >= 1/3 (for jobs above the min bond)
    assert not cheating_loses(0.3, BondRule().bond(20.0), 20.0, 20.0)
    assert cheating_loses(1 / 3, BondRule().bond(20.0), 20.0, 20.0)


@pytest.mark.parametrize("bad", [0, -0.1, 1.5])
def test_bad_probabilities_are_refused(bad):
    with pytest.raises(ValueError, match="audit probability"):
        min_stake(bad, 1, 1)


def test_a_cartel_holds_every_seat_of_a_replicated_job_about_f_to_the_k():
    assert seats_captured_probability(3, 20, 3) == pytest.approx(1 / 1140)  # the registry test's cartel
    assert seats_captured_probability(10, 100, 1) == pytest.approx(0.1)
    assert seats_captured_probability(10, 100, 2) == pytest.approx(10 * 9 / (100 * 99))
    assert seats_captured_probability(1, 100, 2) == 0
    assert seats_captured_probability(100, 100, 3) == 1
    with pytest.raises(ValueError, match="cartel <= eligible"):
        seats_captured_probability(5, 4, 1)
    with pytest.raises(ValueError, match="seats <= eligible"):
        seats_captured_probability(1, 4, 5)


def test_colluding_auditors_scale_the_audit_probability_down():
    assert detection_with_colluding_auditors(0.1, 0.0, 70) == detection_probability(0.1, 70)
    assert detection_with_colluding_auditors(0.1, 0.2, 70) == pytest.approx(1 - 0.92**70)
    assert detection_with_colluding_auditors(0.1, 0.2, 70) < 0.999  # 70 cheats no longer suffice
    assert detection_with_colluding_auditors(0.1, 1.0, 1000) == 0
    with pytest.raises(ValueError, match="colluding share"):
        detection_with_colluding_auditors(0.1, 1.5, 1)


def test_probing_the_auditors_pays_only_when_most_of_them_are_lazy():
    from verimesh.chain.deployment import NetworkParams
    from verimesh.verify.economics import probe_break_even, probe_profit

    params = NetworkParams()
    bounty, share = params.bounty_bps / 10_000, params.requester_share_bps / 10_000
    assert probe_profit(1.0, bounty, share) == pytest.approx(0.6)  # both bonds slashed to the prober
    assert probe_profit(0.0, bounty, share) == pytest.approx(-0.7)  # its own bond, less its share
    v = probe_break_even(bounty, share)
    assert v == pytest.approx(0.7 / 1.3)
    assert probe_profit(v, bounty, share) == pytest.approx(0.0, abs=1e-12)
    assert probe_profit(v - 0.01, bounty, share) < 0 < probe_profit(v + 0.01, bounty, share)
    assert probe_profit(0.0, bounty, share, audit_fee=0.5) == pytest.approx(-1.2)  # and the fee it paid
    assert probe_break_even(bounty, share, 0.5) == pytest.approx(1.2 / 1.8)
    assert probe_break_even(0.0, 0.0) == 1.0  # nothing paid out: never
    with pytest.raises(ValueError, match="lazy share"):
        probe_profit(1.5)
    with pytest.raises(ValueError, match="cannot exceed"):
        probe_profit(0.5, 0.8, 0.3)
    with pytest.raises(ValueError, match="fee cannot be negative"):
        probe_profit(0.5, audit_fee=-1)
