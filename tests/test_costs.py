"""Court fees and commission against docs/domain.md §5, computed apart from the config and code.

Every expected number is either written out by hand (with its arithmetic in a comment) or found
by walking the statute's table below part by part; none comes from ``configs/costs.yaml``.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from recoverscore.config import parse_config
from recoverscore.data.costs import CostConfig, claim_amount, load_costs
from recoverscore.errors import RecoverscoreError

INF = float("inf")

# (lower, upper, rate) of each part above the flat first bracket, as docs/domain.md §5 states them.
ART13 = [  # case-acceptance fee, on the claim; 50 flat up to 10,000
    (10_000, 100_000, 0.025),
    (100_000, 200_000, 0.02),
    (200_000, 500_000, 0.015),
    (500_000, 1_000_000, 0.01),
    (1_000_000, 2_000_000, 0.009),
    (2_000_000, 5_000_000, 0.008),
    (5_000_000, 10_000_000, 0.007),
    (10_000_000, 20_000_000, 0.006),
    (20_000_000, INF, 0.005),
]
ENFORCEMENT = [  # art. 14, on the amount enforced; 50 flat up to 10,000
    (10_000, 500_000, 0.015),
    (500_000, 5_000_000, 0.01),
    (5_000_000, 10_000_000, 0.005),
    (10_000_000, INF, 0.001),
]
PRESERVATION = [  # art. 14, on the claim; 30 flat up to 1,000, at most 5,000
    (1_000, 100_000, 0.01),
    (100_000, INF, 0.005),
]


def walk(table: list[tuple[float, float, float]], flat: float, amount: float) -> float:
    """A cumulative fee found by walking the table part by part."""
    fee = flat
    for lower, upper, rate in table:
        if amount > lower:
            fee += (min(amount, upper) - lower) * rate
    return fee


def reference_fee(claim: float) -> float:
    return walk(ART13, 50.0, claim)


def edges(table: list[tuple[float, float, float]]) -> list[float]:
    return [table[0][0]] + [upper for _, upper, _ in table[:-1]]


@pytest.fixture(scope="module")
def costs() -> CostConfig:
    return load_costs()


def test_domain_example_100k_costs_2300(costs):
    assert costs.acceptance_fee.fee(100_000) == pytest.approx(2_300.0)


@pytest.mark.parametrize("edge", edges(ART13))
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


def test_acceptance_fee_inside_the_brackets(costs):
    # 50 + 40,000 x 2.5% = 1,050; 4,300 + 100,000 x 1.5% = 5,800; 141,800 + 10M x 0.5% = 191,800
    fees = costs.acceptance_fee.fee(np.array([5_000, 50_000, 300_000, 30_000_000]))
    np.testing.assert_allclose(fees, [50, 1_050, 5_800, 191_800])


def test_payment_order_costs_a_third_and_small_lawsuits_half(costs):
    # art. 14: a third of the acceptance fee; art. 16: half under simplified procedure
    np.testing.assert_allclose(
        costs.payment_order_fee(np.array([10_000, 100_000, 1_000_000, 20_000_000])),
        [50 / 3, 2_300 / 3, 13_800 / 3, 141_800 / 3],
    )
    np.testing.assert_allclose(
        costs.lawsuit_acceptance_fee(np.array([5_000, 50_000, 100_000])), [25, 525, 1_150]
    )
    # above the assumed simplified-procedure threshold the full fee applies
    assert costs.lawsuit_acceptance_fee(100_001) == pytest.approx(reference_fee(100_001))
    assert costs.lawsuit_acceptance_fee(1_000_000) == pytest.approx(13_800)


def test_enforcement_fee_at_the_statute_edges(costs):
    # 50; 50 + 490,000 x 1.5% = 7,400; + 4.5M x 1% = 52,400; + 5M x 0.5% = 77,400
    expected = {
        5_000: 50,
        10_000: 50,
        500_000: 7_400,
        1_000_000: 7_400 + 5_000,  # docs/domain.md §5.2 check: 12,400
        5_000_000: 52_400,
        10_000_000: 77_400,
        20_000_000: 77_400 + 10_000,  # 0.1% above 10M: 87,400
    }
    got = costs.enforcement_fee.fee(np.array(list(expected), dtype=float))
    np.testing.assert_allclose(got, list(expected.values()))
    # inside the brackets: 50 + 190,000 x 1.5%; 7,400 + 2.5M x 1%; 52,400 + 2M x 0.5%
    inside = costs.enforcement_fee.fee(np.array([200_000, 3_000_000, 7_000_000]))
    np.testing.assert_allclose(inside, [2_900, 32_400, 62_400])


@pytest.mark.parametrize(
    ("schedule", "table", "flat"),
    [("enforcement_fee", ENFORCEMENT, 50.0), ("preservation_fee", PRESERVATION, 30.0)],
)
@pytest.mark.parametrize("offset", [-1.0, 0.0, 1.0])
def test_enforcement_and_preservation_edges_match_the_statute(costs, schedule, table, flat, offset):
    for edge in edges(table):
        amount = edge + offset
        expected = walk(table, flat, amount)
        if schedule == "preservation_fee":
            expected = min(expected, 5_000.0)
        assert getattr(costs, schedule).fee(amount) == pytest.approx(expected, abs=1e-6)


def test_preservation_fee_and_its_cap(costs):
    # 30; 30 + 49,000 x 1% = 520; 30 + 990 = 1,020; 1,020 + 400,000 x 0.5% = 3,020;
    # 1,020 + 700,000 x 0.5% = 4,520; the cap of 5,000 is reached at 896,000
    amounts = np.array([500, 1_000, 50_000, 100_000, 500_000, 800_000, 896_000, 900_000, 5e6])
    np.testing.assert_allclose(
        costs.preservation_fee.fee(amounts),
        [30, 30, 520, 1_020, 3_020, 4_520, 5_000, 5_000, 5_000],
    )


def test_commission_reproduces_the_worked_examples(costs):
    rate = costs.commission.rate
    # a 500,000 debt: about 9% at half a year, about 22% at three years
    assert rate(500_000, 182, False) == pytest.approx(0.09)
    assert rate(500_000, 3 * 365, False) == pytest.approx(0.22)
    # claim size on a young debt: 8% above 1M, 15% under 100k
    assert rate(2_000_000, 30, False) == pytest.approx(0.08)
    assert rate(50_000, 30, False) == pytest.approx(0.15)
    # lost contact adds 5-8 points
    assert 0.05 <= rate(500_000, 182, True) - rate(500_000, 182, False) <= 0.08


def test_commission_bands_age_line_and_cap(costs):
    rate = costs.commission.rate
    claims = np.array([100_000, 100_001, 1_000_000, 1_000_001])
    np.testing.assert_allclose(rate(claims, 0, False), [0.15, 0.09, 0.09, 0.08])
    # age points rise linearly from 0 at 182 days to 13 at 1,095: half-way (638.5 days) 6.5
    assert rate(500_000, 638.5, False) == pytest.approx(0.09 + 0.065)
    assert rate(500_000, 6 * 365, False) == pytest.approx(0.22)  # flat after three years
    assert rate(50_000, 10 * 365, True) == pytest.approx(0.30)  # 15 + 13 + 6 = 34: capped


def test_creditor_costs_by_tier_and_outcome(costs):
    tiers = np.array(["soft_reminder", "mediation", "payment_order", "litigation"])
    claim = np.full(4, 100_000.0)

    def incurred(recovered: float, assets: bool) -> np.ndarray:
        return costs.incurred(
            tiers, claim, np.full(4, recovered), np.zeros(4), np.zeros(4, bool), np.full(4, assets)
        )

    # failure: handling; the payment-order fee (2,300 / 3); a lawsuit's half acceptance fee
    # (1,150), lawyer (3,000 floor) and preservation where there are assets (30 + 990)
    np.testing.assert_allclose(
        incurred(0.0, True), [60, 1_200, 1_500 + 2_300 / 3, 2_500 + 1_150 + 3_000 + 1_020]
    )
    np.testing.assert_allclose(incurred(0.0, False)[3], 2_500 + 1_150 + 3_000)
    # success: the debtor reimburses the prepaid fees and bears the enforcement fee, so the
    # creditor pays handling, the lawyer and 15% commission on the 80,000 recovered
    np.testing.assert_allclose(
        incurred(80_000.0, True), [60 + 12_000, 1_200 + 12_000, 1_500 + 12_000, 5_500 + 12_000]
    )


def test_court_fees_are_the_creditors_share_only(costs):
    lit = np.array(["litigation"] * 2)
    fees = costs.court_fees(lit, np.full(2, 1_000_000.0), np.array([False, True]), True)
    # failure: 13,800 acceptance + 10,000 lawyer (3% capped) + 5,000 preservation (capped)
    np.testing.assert_allclose(fees, [28_800, 10_000])
    assert costs.court_fees("mediation", 1_000_000.0, False, True) == 0


def test_fees_are_on_the_claim_with_accrued_interest(costs):
    claim = claim_amount(np.array([100_000.0, 100_000.0, 80_000.0]), [20_000.0, None, np.nan])
    np.testing.assert_allclose(claim, [120_000, 100_000, 80_000])
    np.testing.assert_allclose(claim_amount(np.array([5.0, 7.0])), [5, 7])
    # 120,000 is above the simplified-procedure threshold: 2,300 + 20,000 x 2% = 2,700
    failed = costs.incurred("litigation", claim[:1], 0.0, 0, False, False)
    np.testing.assert_allclose(failed, 2_500 + 2_700 + 3_600)  # lawyer 3% of 120,000


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
    data = load_costs().model_dump()
    data["commission"]["age_points"][1]["days"] = 100
    with pytest.raises(RecoverscoreError, match=r"commission\.age_points: .*days must increase"):
        parse_config(data, CostConfig)
    data = load_costs().model_dump()
    data["commission"]["by_claim"][1]["up_to"] = 50_000
    with pytest.raises(RecoverscoreError, match=r"commission\.by_claim: .*up_to must increase"):
        parse_config(data, CostConfig)
    data = load_costs().model_dump()
    data["commission"]["age_points"][0]["points"] = -0.1
    with pytest.raises(RecoverscoreError, match=r"commission\.age_points\.0\.points"):
        parse_config(data, CostConfig)
    data = load_costs().model_dump()
    data["lawyer_fee"]["max"] = 1_000
    with pytest.raises(RecoverscoreError, match=r"lawyer_fee: .*max \(1000.0\) is below min"):
        parse_config(data, CostConfig)


def test_a_lawsuit_served_by_public_notice_pays_the_notice_whatever_the_outcome(costs):
    """docs/domain.md §4.2: a debtor who cannot be found is sued all the same, served by public
    notice; its fee and days are an assumption of configs/costs.yaml."""
    notice = costs.public_notice
    assert notice.fee > 0 and notice.days >= 30  # a summons is deemed served after 30 days
    tiers = np.array(["soft_reminder", "mediation", "payment_order", "litigation"] * 2)
    claim = np.full(8, 100_000.0)
    outcome = np.repeat([False, True], 4)
    plain = costs.court_fees(tiers, claim, outcome, True)
    served = costs.court_fees(tiers, claim, outcome, True, served_by_notice=True)
    np.testing.assert_allclose(served - plain, np.where(tiers == "litigation", notice.fee, 0.0))
    lost = costs.incurred(tiers, claim, 0.0, 0, True, True)
    found = costs.incurred(tiers, claim, 0.0, 0, False, True)
    np.testing.assert_allclose(lost - found, np.where(tiers == "litigation", notice.fee, 0.0))
    for tier in ("soft_reminder", "mediation", "payment_order", "litigation"):
        extra = notice.days if tier == "litigation" else 0.0
        np.testing.assert_allclose(
            costs.duration(tier, np.array([False, True])),
            [costs.duration_days[tier], costs.duration_days[tier] + extra],
        )


def test_wages_and_bank_balances_are_enforceable_above_their_floors(costs):
    """docs/domain.md §4.3: enforcement reaches wages and bank balances, not only property."""
    income_floor = costs.enforceable.monthly_income_above
    bank_floor = costs.enforceable.bank_balance_above
    nan = np.nan
    cases = [  # (property, monthly income, bank balance) -> enforceable
        ((True, nan, nan), True),
        ((False, nan, nan), False),
        ((False, income_floor, nan), False),
        ((False, income_floor + 1, nan), True),
        ((False, nan, bank_floor), False),
        ((False, nan, bank_floor + 1), True),
        ((False, 0.0, 0.0), False),
    ]
    found = costs.enforceable_assets(
        np.array([c[0][0] for c in cases]),
        np.array([c[0][1] for c in cases]),
        np.array([c[0][2] for c in cases]),
    )
    np.testing.assert_array_equal(found, [c[1] for c in cases])
    # a file without the columns: property alone
    np.testing.assert_array_equal(costs.enforceable_assets(np.array([True, False])), [True, False])
