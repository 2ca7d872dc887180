"""The policy: guardrails never violated, choices optimal, capacity exact, contact lawful."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recoverscore.config import parse_config
from recoverscore.data.costs import load_costs
from recoverscore.data.facts import DebtFacts
from recoverscore.data.schemas import TIERS, probability_column
from recoverscore.data.synthetic import generate_frame, legacy_tier, load_synthetic_config
from recoverscore.errors import RecoverscoreError
from recoverscore.strategy.policy import (
    Cases,
    PolicyConfig,
    assign_with_capacity,
    best_allowed,
    contact_plan,
    decide,
    economics,
    fall_back,
    load_policy_config,
)

POLICY = load_policy_config()
COSTS = load_costs()


def _cases(frame: pd.DataFrame, p: np.ndarray | None = None) -> Cases:
    if p is None:
        p = frame[[f"p_true_{t}" for t in TIERS]].to_numpy()
    probabilities = pd.DataFrame(
        p, columns=[probability_column(t) for t in TIERS], index=frame.index
    )
    return Cases.build(DebtFacts.compute(frame, 3), probabilities)


def test_default_matrix_is_the_aging_staircase(world):
    rows = world.head(5_000)
    decision = decide(_cases(rows), POLICY, COSTS, "matrix", guardrails=False)
    days = (rows["as_of"] - rows["due_date"]).dt.days.to_numpy()
    staircase = legacy_tier(days, load_synthetic_config().legacy_policy)
    np.testing.assert_array_equal(decision["recommended_tier"].to_numpy(), staircase)


def _violations(frame: pd.DataFrame, tiers: np.ndarray) -> list[str]:
    """Guardrails checked straight from the raw columns, independently of the policy code."""
    start = frame["last_acknowledgment_date"].where(
        frame["last_acknowledgment_date"] > frame["due_date"], frame["due_date"]
    )
    barred = (frame["as_of"] > start + pd.DateOffset(years=3)).to_numpy()
    assets = frame[["owns_real_estate", "owns_vehicle", "has_equity_holdings"]].any(axis=1)
    judicial = np.isin(tiers, ["payment_order", "litigation"])
    problems = []
    if (barred & judicial).any():
        problems.append("time-barred debt sent to court")
    if (frame["disputes_debt"].to_numpy() & (tiers == "payment_order")).any():
        problems.append("disputed debt given a payment order")
    if ((~assets.to_numpy()) & (tiers == "litigation")).any():
        problems.append("litigation without attachable assets")
    if ((frame["contact_status"] == "lost").to_numpy() & (tiers == "litigation")).any():
        problems.append("litigation with lost contact")
    if (frame["disaster_affected"].to_numpy() & (tiers != "soft_reminder")).any():
        problems.append("more than a soft reminder in disaster grace")
    return problems


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 10_000),
    rule=st.sampled_from(["value", "matrix"]),
    noise=st.floats(0, 1),
    cap=st.one_of(st.none(), st.integers(0, 40)),
)
def test_no_guardrail_is_ever_violated(seed, rule, noise, cap):
    frame = generate_frame(400, seed=seed, as_of="2026-06-30")
    rng = np.random.default_rng(seed)
    truth = frame[[f"p_true_{t}" for t in TIERS]].to_numpy()
    p = np.clip((1 - noise) * truth + noise * rng.random(truth.shape), 0, 1)
    capacity = None if cap is None else {"litigation": cap, "payment_order": cap}
    decision = decide(_cases(frame, p), POLICY, COSTS, rule, capacity=capacity)
    tiers = decision["recommended_tier"].to_numpy()
    assert _violations(frame, tiers) == []
    for tier, excluded in zip(tiers, decision["excluded_tiers"], strict=True):
        assert f"{tier}:" not in excluded
    if cap is not None and rule == "value":
        assert (tiers == "litigation").sum() <= cap and (tiers == "payment_order").sum() <= cap


def test_exclusions_name_their_reasons(world):
    rows = world.head(3_000)
    decision = decide(_cases(rows), POLICY, COSTS, "value")
    lost = (rows["contact_status"] == "lost").to_numpy()
    assert all("litigation:LOST_CONTACT" in e for e in decision["excluded_tiers"][lost])
    disputed = rows["disputes_debt"].to_numpy()
    assert all("payment_order:DISPUTED" in e for e in decision["excluded_tiers"][disputed])
    elderly = rows["is_elderly"].to_numpy()
    assert (decision["flags"][elderly] == "DIALECT_STAFF").all()
    assert (decision["flags"][~elderly] == "").all()
    assert decision["why"].str.startswith("expected net CNY: soft_reminder").all()


def test_court_costs_guardrail_spares_small_claims_from_court(world):
    rows = world[world["owns_real_estate"] & (world["contact_status"] == "reachable")].head(50)
    tiny = rows.assign(principal=500.0)
    decision = decide(_cases(tiny), POLICY, COSTS)
    assert decision["excluded_tiers"].str.contains("litigation:COSTS_EXCEED_RECOVERY").all()


def test_expected_value_by_hand(world):
    row = world[world["owns_real_estate"] & (world["contact_status"] == "reachable")].head(1)
    p = np.array([[0.5, 0.4, 0.3, 0.2]])
    econ = economics(_cases(row, p), POLICY, COSTS)
    principal = row["principal"].iloc[0]
    days = (row["as_of"] - row["due_date"]).dt.days.iloc[0]
    share, duration = POLICY.recovery_share["litigation"], COSTS.duration_days["litigation"]
    amount = principal * share
    # the creditor always pays handling and its lawyer; the prepaid court fees only when the
    # debt is not recovered (else the debtor reimburses them); the commission only on success
    prepaid = COSTS.lawsuit_acceptance_fee(principal) + COSTS.preservation_fee.fee(principal)
    commission = COSTS.commission.rate(principal, days, False) * amount
    expected_cost = (
        COSTS.handling_cost["litigation"]
        + COSTS.lawyer_fee.fee(principal)
        + 0.8 * prepaid
        + 0.2 * commission
    )
    expected = 0.2 * amount * 1.10 ** (-duration / 365) - expected_cost
    assert econ.value[0, 3] == pytest.approx(float(expected))


def test_fees_follow_the_claim_with_accrued_interest(world):
    row = world[world["owns_real_estate"] & (world["contact_status"] == "reachable")].head(1)
    row = row.assign(principal=400_000.0)
    p = np.array([[0.5, 0.4, 0.3, 0.2]])
    plain = economics(_cases(row, p), POLICY, COSTS)
    interest = economics(_cases(row.assign(accrued_interest=100_000.0), p), POLICY, COSTS)
    # claim 500,000 instead of 400,000: acceptance fee +1,500 (1.5% bracket), lawyer stays at
    # its 10,000 ceiling, preservation +500 (0.5%), all lost only when the debt is not recovered
    np.testing.assert_allclose(plain.value[0, 3] - interest.value[0, 3], 0.8 * (1_500 + 500))
    # a payment order's fee is a third of the acceptance fee, lost with probability 0.7
    np.testing.assert_allclose(plain.value[0, 2] - interest.value[0, 2], 0.7 * 1_500 / 3)


@settings(max_examples=60, deadline=None)
@given(
    values=st.lists(st.lists(st.floats(-1e4, 1e4), min_size=4, max_size=4), min_size=1, max_size=6),
    allowed=st.lists(st.lists(st.booleans(), min_size=4, max_size=4), min_size=6, max_size=6),
    caps=st.tuples(st.integers(0, 6), st.integers(0, 6)),
)
def test_capacity_assignment_is_optimal_by_brute_force(values, allowed, caps):
    v = np.array(values)
    n = len(v)
    mask = np.array(allowed[:n])
    mask[:, 0] = True  # soft reminders are never capped here, so a solution exists
    capacity = {"payment_order": caps[0], "litigation": caps[1]}
    chosen = assign_with_capacity(v, mask, capacity)
    assert mask[np.arange(n), chosen].all()
    assert (chosen == 2).sum() <= caps[0] and (chosen == 3).sum() <= caps[1]
    best = -np.inf
    for combo in itertools.product(range(4), repeat=n):
        c = np.array(combo)
        if mask[np.arange(n), c].all() and (c == 2).sum() <= caps[0] and (c == 3).sum() <= caps[1]:
            best = max(best, v[np.arange(n), c].sum())
    assert v[np.arange(n), chosen].sum() == pytest.approx(best, abs=1e-6)
    unlimited = assign_with_capacity(v, mask, {})
    np.testing.assert_array_equal(unlimited, best_allowed(v, mask))


def test_capacity_that_cannot_be_met_is_a_clear_error():
    mask = np.array([[False, False, False, True]] * 3)
    with pytest.raises(RecoverscoreError, match="cannot be met"):
        assign_with_capacity(np.ones((3, 4)), mask, {"litigation": 1})


@settings(max_examples=60, deadline=None)
@given(wanted=st.lists(st.integers(0, 3), min_size=1, max_size=20), data=st.data())
def test_fall_back_takes_the_nearest_allowed_tier_down_then_up(wanted, data):
    mask = np.array(
        [data.draw(st.lists(st.booleans(), min_size=4, max_size=4).filter(any)) for _ in wanted]
    )
    got = fall_back(np.array(wanted), mask)
    for w, m, g in zip(wanted, mask, got, strict=True):
        lower = [t for t in range(4) if m[t] and t <= w]
        assert g == (max(lower) if lower else min(t for t in range(4) if m[t]))


@settings(max_examples=30, deadline=None)
@given(
    start=st.dates(
        min_value=pd.Timestamp("2020-01-01").date(), max_value=pd.Timestamp("2030-12-31").date()
    ),
    n=st.integers(1, 30),
)
def test_contact_plan_is_always_lawful(start, n):
    ids = pd.Series([f"D{i}" for i in range(n)])
    plan = contact_plan(ids, pd.Timestamp(start), POLICY.contact)
    calls = plan[plan["channel"].isin(["voice_reminder", "human_call"])]
    hours = calls["when"].dt.hour
    assert ((hours >= 8) & (hours < 22)).all()
    assert calls.groupby(["debtor_id", calls["when"].dt.date]).size().max() <= 3
    assert set(plan["debtor_id"]) == set(ids)
    assert (plan.groupby("debtor_id")["channel"].first() == "voice_reminder").all()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda d: d["guardrails"].append(
                {"rule": "bad_mood", "code": "MOOD", "excludes": ["litigation"]}
            ),
            "unknown guardrail",
        ),
        (lambda d: d["matrix"]["cells"].pop("1-3y"), "matrix: .*cells"),
        (lambda d: d["matrix"]["cells"].__setitem__("0-30", ["soft_reminder"]), "one a band"),
        (
            lambda d: d["contact"]["steps"].append(
                {"day": 0, "time": "23:00", "channel": "human_call"}
            ),
            "outside the call",
        ),
        (
            lambda d: d["contact"]["steps"].extend(
                [{"day": 3, "time": "09:00", "channel": "human_call"}] * 2
            ),
            "more than 3",
        ),
        (lambda d: d["contact"].__setitem__("max_calls_per_day", 5), "max_calls_per_day"),
        (lambda d: d["capacity"].__setitem__("litigation", -1), "capacity"),
        (lambda d: d["recovery_share"].pop("mediation"), "recovery_share"),
    ],
)
def test_policy_config_errors_name_the_key(change, message):
    data = POLICY.model_dump()
    change(data)
    with pytest.raises(RecoverscoreError, match=message):
        parse_config(data, PolicyConfig)


def test_unknown_rule_is_refused(world):
    with pytest.raises(RecoverscoreError, match="unknown policy 'hunch'"):
        decide(_cases(world.head(10)), POLICY, COSTS, "hunch")
