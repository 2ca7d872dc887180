"""Court fees against DOMAIN.md's table, computed independently of the config and the code."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from recoverscore.config import parse_config
from recoverscore.data.costs import CostConfig, load_costs
from recoverscore.errors import RecoverscoreError

# DOMAIN.md, art. 13: (lower, upper, rate) of each part of the claim above the flat 10,000.
ART13 = [
    (10_000, 100_000, 0.025),
    (100_000, 200_000, 0.02),
    (200_000, 500_000, 0.015),
    (500_000, 1_000_000, 0.01),
    (1_000_000, 2_000_000, 0.009),
    (2_000_000, 5_000_000, 0.008),
    (5_000_000, 10_000_000, 0.007),
    (10_000_000, 20_000_000, 0.006),
    (20_000_000, float("inf"), 0.005),
]


def reference_fee(claim: float) -> float:
    """Acceptance fee by walking the statutory table part by part."""
    fee = 50.0
    for lower, upper, rate in ART13:
        if claim > lower:
            fee += (min(claim, upper) - lower) * rate
    return fee


@pytest.fixture(scope="module")
def costs() -> CostConfig:
    return load_costs()


def test_domain_example_100k_costs_2300(costs):
    assert costs.acceptance_fee.fee(100_000) == pytest.approx(2_300.0)


@pytest.mark.parametrize("edge", [10_000] + [upper for _, upper, _ in ART13[:-1]])
@pytest.mark.parametrize("offset", [-1.0, 0.0, 1.0])
def test_every_bracket_edge_matches_the_statute(costs, edge, offset):
    claim = edge + offset
    assert costs.acceptance_fee.fee(claim) == pytest.approx(reference_fee(claim), abs=1e-6)


def test_bracket_edges_have_the_cumulative_values(costs):
    # hand-computed: 50 + 2,250 = 2,300; + 2,000 = 4,300; + 4,500 = 8,800; + 5,000 = 13,800
    expected = {
        10_000: 50,
        100_000: 2_300,
        200_000: 4_300,
        500_000: 8_800,
        1_000_000: 13_800,
        2_000_000: 22_800,
        5_000_000: 46_800,
        10_000_000: 81_800,
        20_000_000: 141_800,
    }
    for claim, fee in expected.items():
        assert costs.acceptance_fee.fee(claim) == pytest.approx(fee)


@given(st.floats(min_value=1, max_value=1e9, allow_nan=False))
def test_fee_matches_reference_everywhere(claim):
    assert load_costs().acceptance_fee.fee(claim) == pytest.approx(reference_fee(claim))


@given(st.floats(min_value=1, max_value=1e8), st.floats(min_value=0, max_value=1e6))
def test_fees_never_fall_as_the_claim_grows(claim, extra):
    c = load_costs()
    for schedule in (c.acceptance_fee, c.enforcement_fee, c.preservation_fee):
        assert schedule.fee(claim + extra) >= schedule.fee(claim) - 1e-9


def test_payment_order_costs_a_third_and_small_lawsuits_half(costs):
    assert costs.payment_order_fee(100_000) == pytest.approx(2_300 / 3)
    assert costs.lawsuit_acceptance_fee(100_000) == pytest.approx(1_150)
    assert costs.lawsuit_acceptance_fee(100_001) == pytest.approx(reference_fee(100_001))


def test_enforcement_and_preservation_fees(costs):
    enforcement = costs.enforcement_fee.fee(np.array([5_000, 10_000, 500_000, 1_500_000]))
    np.testing.assert_allclose(
        enforcement, [50, 50, 50 + 490_000 * 0.015, 50 + 490_000 * 0.015 + 1_000_000 * 0.005]
    )
    preservation = costs.preservation_fee.fee(np.array([500, 1_000, 100_000, 500_000, 5e6]))
    np.testing.assert_allclose(preservation, [30, 30, 30 + 990, 30 + 990 + 2_000, 5_000])


def test_commission_follows_claim_size_age_and_contact(costs):
    rate = costs.commission.rate
    assert rate(50_000, 0, False) == pytest.approx(0.15)
    assert rate(2_000_000, 0, False) == pytest.approx(0.08)
    assert rate(50_000, 180 + 365, False) == pytest.approx(0.20)
    assert rate(50_000, 0, True) == pytest.approx(0.21)
    assert rate(50_000, 10 * 365, True) == pytest.approx(0.30)  # capped


def test_incurred_costs_by_tier(costs):
    tiers = np.array(["soft_reminder", "mediation", "payment_order", "litigation"])
    principal = np.full(4, 100_000.0)
    recovered = np.array([0.0, 0.0, 0.0, 80_000.0])
    got = costs.incurred(
        tiers, principal, recovered, np.zeros(4), np.zeros(4, bool), np.ones(4, bool)
    )
    lawsuit = 1_150 + 3_000 + (30 + 990) + (50 + 70_000 * 0.015) + 0.15 * 80_000
    np.testing.assert_allclose(got, [60, 1_200, 1_500 + 2_300 / 3, 2_500 + lawsuit])


def test_unknown_tier_is_an_error(costs):
    with pytest.raises(ValueError, match="unknown tier"):
        costs.incurred(np.array(["phone_call"]), 1.0, 0.0, 0, False, False)


def test_config_errors_name_the_key():
    data = load_costs().model_dump()
    data["acceptance_fee"]["brackets"][1]["rate"] = 2.0
    with pytest.raises(RecoverscoreError, match=r"acceptance_fee\.brackets\.1\.rate"):
        parse_config(data, CostConfig)
    data = load_costs().model_dump()
    data["handling_cost"].pop("mediation")
    with pytest.raises(RecoverscoreError, match=r"handling_cost: .*mediation"):
        parse_config(data, CostConfig)
    data = load_costs().model_dump()
    data["lawyer_fees"] = {}
    with pytest.raises(RecoverscoreError, match="lawyer_fees: Extra inputs"):
        parse_config(data, CostConfig)
