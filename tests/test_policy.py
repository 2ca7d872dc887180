"""The policy: guardrails never violated, choices optimal, capacity exact, contact lawful."""

from __future__ import annotations

import itertools
from datetime import date

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recoverscore.config import parse_config
from recoverscore.data.costs import load_costs
from recoverscore.data.facts import DebtFacts
from recoverscore.data.schemas import TIERS, Portfolio, probability_column, value_column
from recoverscore.data.synthetic import generate_frame, legacy_tier, load_synthetic_config
from recoverscore.data.validation import validate
from recoverscore.errors import RecoverscoreError
from recoverscore.modelling.explain import load_reasons
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
AS_OF = "2026-06-30"
ZH_VALUES = "各方式预期净回款：提醒催收（短信/语音）"
ZH_UNCHECKED = "因缺少数据未核查：债务人对债务有异议"


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


def _expiry(due: pd.Timestamp, ack: pd.Timestamp, disaster: pd.Timestamp) -> pd.Timestamp:
    """Civil Code art. 188 and 194, one debt at a time: three years from the due date or the
    last interruption; a disaster in the last six months suspends the period, which then ends
    six months after the 30-day obstacle ends."""
    end = (ack if pd.notna(ack) and ack > due else due) + pd.DateOffset(years=3)
    if pd.notna(disaster):
        obstacle_over = disaster + pd.Timedelta(days=30)
        if disaster <= end and obstacle_over >= end - pd.DateOffset(months=6):
            end = obstacle_over + pd.DateOffset(months=6)
    return end


def _raw(frame: pd.DataFrame) -> dict[str, np.ndarray]:
    """What the law looks at, worked out from the raw columns, independently of the code."""
    disaster = frame.get("disaster_date", pd.Series(pd.NaT, index=frame.index))
    rows = zip(frame["due_date"], frame["last_acknowledgment_date"], disaster, strict=True)
    expiry = pd.Series([_expiry(*r) for r in rows], index=frame.index)
    since = (frame["as_of"] - disaster).dt.days
    grace = np.where(
        disaster.notna(), (since >= 0) & (since < 30), frame["disaster_affected"].to_numpy()
    )
    floor = COSTS.enforceable
    property_ = frame[["owns_real_estate", "owns_vehicle", "has_equity_holdings"]].any(axis=1)
    income = frame["monthly_income"].fillna(0) > floor.monthly_income_above
    bank = frame.get("bank_balance", pd.Series(0.0, index=frame.index)).fillna(0)
    evidence = frame.get("evidence_complete", pd.Series(pd.NA, index=frame.index))
    return {
        "barred": (frame["as_of"] > expiry).to_numpy(),
        "grace": np.asarray(grace, dtype=bool),
        "enforceable": (property_ | income | (bank > floor.bank_balance_above)).to_numpy(),
        "lost": (frame["contact_status"] == "lost").to_numpy(),
        "disputed": frame["disputes_debt"].to_numpy(dtype=bool),
        "unevidenced": evidence.astype("boolean").eq(False).fillna(False).to_numpy(dtype=bool),
    }


def _violations(frame: pd.DataFrame, decision: pd.DataFrame) -> list[str]:
    """Guardrails and the legal-notice rule checked straight from the raw columns,
    independently of the policy code (docs/domain.md §4)."""
    law = _raw(frame)
    tiers = decision["recommended_tier"].to_numpy()
    court = np.isin(tiers, ["payment_order", "litigation"])
    checks = {
        "time-barred debt sent to court": law["barred"] & court,
        "disputed debt given a payment order": law["disputed"] & (tiers == "payment_order"),
        "incompletely evidenced debt sent to court": law["unevidenced"] & court,
        "litigation with nothing to enforce against": ~law["enforceable"] & (tiers == "litigation"),
        "payment order or mediation for a debtor who cannot be found": law["lost"]
        & np.isin(tiers, ["payment_order", "mediation"]),
        "court tier in disaster grace": law["grace"] & court,
    }
    problems = [name for name, hit in checks.items() if hit.any()]
    # a legal notice only where a court tier is still open: never where the law closes both
    closed = law["barred"] | law["grace"] | law["unevidenced"]
    closed |= (law["disputed"] | law["lost"]) & ~law["enforceable"]
    plan = decision["contact_plan"].fillna("")
    notice = plan.str.contains("legal notice").to_numpy()
    if (notice & closed).any():
        problems.append("legal notice where no court tier is open")
    # closed by a guardrail (low support in the history is no reason in law)
    excluded = decision["excluded_tiers"].str.replace(r"[a-z_]+:LOW_SUPPORT", "", regex=True)
    excluded = excluded.to_numpy(dtype=str)
    both_out = np.char.find(excluded, "payment_order:") >= 0
    both_out &= np.char.find(excluded, "litigation:") >= 0
    soft = (tiers == "soft_reminder") & (plan != "").to_numpy()
    if (soft & (notice == both_out)).any():
        problems.append("legal notice not exactly where a court tier is open")
    if (plan != "").to_numpy().tolist() != (tiers == "soft_reminder").tolist():
        problems.append("contact plan not exactly for soft reminders")
    return problems


def _scrambled(frame: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """The same debts with the facts the new rules read redrawn at random (valid rows still):
    contact, evidence, income, bank balance, disasters near the limitation expiry or today."""
    n = len(frame)
    out = frame.copy()
    out["contact_status"] = rng.choice(["reachable", "intermittent", "lost"], n)
    out["evidence_complete"] = pd.array(rng.choice([True, False, None], n), dtype="boolean")
    individual = (out["debtor_type"] == "individual").to_numpy()
    income = np.where(rng.random(n) < 0.5, rng.uniform(0, 5_000, n), rng.uniform(0, 40_000, n))
    out["monthly_income"] = np.where(individual & (rng.random(n) < 0.9), income, np.nan)
    out["bank_balance"] = np.where(rng.random(n) < 0.6, rng.uniform(0, 5_000, n), np.nan)
    start = frame["last_acknowledgment_date"].fillna(frame["due_date"])
    expiry = start.where(start > frame["due_date"], frame["due_date"]) + pd.DateOffset(years=3)
    # most debts whose limitation ends around now are hit, in the period's last months
    ending = ((expiry - frame["as_of"]).dt.days.abs() < 240).to_numpy()
    hit = rng.random(n) < np.where(ending, 0.9, 0.3)
    near_expiry = expiry - pd.to_timedelta(rng.integers(-30, 220, n), unit="D")
    recent = frame["as_of"] - pd.to_timedelta(rng.integers(0, 60, n), unit="D")
    dated = pd.Series(np.where(ending, near_expiry, recent), index=frame.index)
    dated = dated.astype("datetime64[ns]").clip(upper=frame["as_of"])
    out["disaster_affected"] = hit
    out["disaster_date"] = dated.where(hit & (rng.random(n) < 0.8))
    return out


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 10_000),
    rule=st.sampled_from(["value", "matrix", "safe", "baseline"]),
    noise=st.floats(0, 1),
    cap=st.one_of(st.none(), st.integers(0, 40)),
    scramble=st.booleans(),
)
def test_no_guardrail_is_ever_violated(seed, rule, noise, cap, scramble):
    frame = generate_frame(400, seed=seed, as_of=AS_OF)
    rng = np.random.default_rng(seed)
    if scramble:
        frame = _scrambled(frame, rng)
        assert validate(frame, Portfolio).is_valid
    truth = frame[[f"p_true_{t}" for t in TIERS]].to_numpy()
    p = np.clip((1 - noise) * truth + noise * rng.random(truth.shape), 0, 1)
    capacity = None if cap is None else {"litigation": cap, "payment_order": cap}
    decision = decide(_cases(frame, p), POLICY, COSTS, rule, capacity=capacity)
    assert _violations(frame, decision) == []
    tiers = decision["recommended_tier"].to_numpy()
    for tier, excluded in zip(tiers, decision["excluded_tiers"], strict=True):
        assert f"{tier}:" not in excluded
    if cap is not None and rule in ("value", "safe"):
        assert (tiers == "litigation").sum() <= cap and (tiers == "payment_order").sum() <= cap


def _one(world: pd.DataFrame, **columns) -> pd.DataFrame:
    """One reachable, undisputed, evidenced individual with real estate, with ``columns`` set."""
    row = world[
        (world["debtor_type"] == "individual")
        & world["owns_real_estate"]
        & (world["contact_status"] == "reachable")
        & ~world["disputes_debt"]
        & ~world["disaster_affected"]
    ].head(1)
    row = row.assign(
        principal=50_000.0,
        due_date=pd.Timestamp("2026-01-01"),
        last_acknowledgment_date=pd.NaT,
        last_payment_date=pd.NaT,
        n_partial_payments=0,
        evidence_complete=True,
    )
    return row.assign(**columns)


def _decide(frame: pd.DataFrame, p: list[float]) -> pd.DataFrame:
    return decide(_cases(frame, np.array([p] * len(frame))), POLICY, COSTS, "value")


def _excluded(frame: pd.DataFrame, p: list[float]) -> set[str]:
    return set(_decide(frame, p)["excluded_tiers"].iloc[0].split(";")) - {""}


def test_lost_contact_removes_payment_order_and_mediation_not_litigation(world):
    lost = _excluded(_one(world, contact_status="lost"), [0.5, 0.5, 0.5, 0.6])
    assert lost == {"mediation:LOST_CONTACT", "payment_order:LOST_CONTACT"}


def test_a_lawsuit_served_by_public_notice_costs_its_fee_and_its_days(world):
    p = np.array([[0.5, 0.4, 0.3, 0.2]])
    reachable = _one(world)
    lost = reachable.assign(contact_status="lost")
    values = [economics(_cases(r, p), POLICY, COSTS).value[0, 3] for r in (reachable, lost)]
    principal, share = 50_000.0, POLICY.recovery_share["litigation"]
    days = (lost["as_of"] - lost["due_date"]).dt.days.iloc[0]

    def by_hand(notice_days: float, notice_fee: float, lost_points: bool) -> float:
        amount = principal * share
        years = (COSTS.duration_days["litigation"] + notice_days) / 365
        commission = COSTS.commission.rate(principal, days, lost_points) * amount
        prepaid = COSTS.lawsuit_acceptance_fee(principal) + COSTS.preservation_fee.fee(principal)
        cost = (
            COSTS.handling_cost["litigation"]
            + COSTS.lawyer_fee.fee(principal)
            + notice_fee
            + 0.8 * prepaid
            + 0.2 * commission
        )
        return 0.2 * amount * 1.10 ** (-years) - cost

    assert values[0] == pytest.approx(float(by_hand(0, 0, False)))
    notice = COSTS.public_notice
    assert notice.fee > 0 and notice.days > 0
    assert values[1] == pytest.approx(float(by_hand(notice.days, notice.fee, True)))


@pytest.mark.parametrize(
    ("columns", "no_assets"),
    [
        ({"owns_real_estate": True}, False),
        ({"monthly_income": 6_000.0}, False),  # wages are withheld above living expenses
        ({"monthly_income": 1_500.0}, True),
        ({"monthly_income": np.nan, "bank_balance": 20_000.0}, False),  # a balance is frozen
        ({"monthly_income": 1_500.0, "bank_balance": 500.0}, True),
    ],
)
def test_wages_and_bank_balances_are_enforceable_assets(world, columns, no_assets):
    row = _one(
        world,
        owns_real_estate=False,
        owns_vehicle=False,
        has_equity_holdings=False,
        bank_balance=np.nan,
    )
    excluded = _excluded(row.assign(**columns), [0.2, 0.2, 0.2, 0.9])
    assert ("litigation:NO_ASSETS" in excluded) == no_assets


@pytest.mark.parametrize(
    ("days_ago", "in_grace"), [(0, True), (29, True), (30, False), (200, False), (None, True)]
)
def test_disaster_grace_is_30_days_from_the_disaster_and_keeps_mediation(world, days_ago, in_grace):
    date = pd.NaT if days_ago is None else pd.Timestamp(AS_OF) - pd.Timedelta(days=days_ago)
    row = _one(world, disaster_affected=True, disaster_date=date)
    excluded = _excluded(row, [0.3, 0.3, 0.9, 0.9])
    grace = {"payment_order:DISASTER_GRACE", "litigation:DISASTER_GRACE"}
    assert (grace <= excluded) == in_grace
    assert not any(e.startswith(("mediation:", "soft_reminder:")) for e in excluded)
    decision = _decide(row, [0.9, 0.1, 0.1, 0.1])
    assert decision["recommended_tier"].iloc[0] == "soft_reminder"
    assert ("legal notice" in decision["contact_plan"].iloc[0]) != in_grace
    assert "SUPPORTIVE_CONTACT" in decision["flags"].iloc[0]


@settings(max_examples=200, deadline=None)
@given(
    due=st.dates(min_value=date(2015, 1, 1), max_value=date(2026, 6, 30)),
    ack_after=st.one_of(st.none(), st.integers(0, 2_000)),
    disaster_after=st.one_of(st.none(), st.integers(0, 3_000)),
)
def test_a_disaster_in_the_last_six_months_suspends_the_limitation_period(
    due, ack_after, disaster_after
):
    as_of = pd.Timestamp(AS_OF)
    due = pd.Timestamp(due)
    ack = pd.NaT if ack_after is None else min(due + pd.Timedelta(days=ack_after), as_of)
    disaster = pd.NaT if disaster_after is None else due + pd.Timedelta(days=disaster_after)
    if pd.notna(disaster) and disaster > as_of:
        disaster = pd.NaT
    frame = pd.DataFrame(
        {
            "as_of": [as_of],
            "due_date": [due],
            "last_acknowledgment_date": pd.Series([ack], dtype="datetime64[ns]"),
            "disaster_affected": [pd.notna(disaster)],
            "disaster_date": pd.Series([disaster], dtype="datetime64[ns]"),
        }
    )
    facts = DebtFacts.compute(frame, 3)
    expiry = _expiry(due, ack, disaster)
    assert facts.limitation_expiry.iloc[0] == expiry
    assert bool(facts.time_barred[0]) == (as_of > expiry)


def test_no_positive_tier_is_flagged_and_stays_on_the_tier_that_loses_least(world):
    rows = world.head(2_000)
    decision = decide(_cases(rows), POLICY, COSTS, "value")
    ev = decision[[value_column(t) for t in TIERS]].to_numpy()
    allowed = np.array([[f"{t}:" not in e for t in TIERS] for e in decision["excluded_tiers"]])
    none_positive = ~(allowed & (ev > 0)).any(axis=1)
    flagged = decision["flags"].str.contains("NO_POSITIVE_TIER").to_numpy()
    np.testing.assert_array_equal(flagged, none_positive)
    assert 0 < flagged.sum() < len(rows)
    best = np.where(allowed, ev, -np.inf).max(axis=1)
    np.testing.assert_allclose(decision["expected_net_value"].to_numpy()[flagged], best[flagged])
    assert decision["why"][flagged].str.contains("consider write-off or sale").all()


def test_exclusions_name_their_reasons(world):
    rows = world.head(3_000)
    decision = decide(_cases(rows), POLICY, COSTS, "value")
    excluded = decision["excluded_tiers"]
    lost = (rows["contact_status"] == "lost").to_numpy()
    assert all("payment_order:LOST_CONTACT" in e for e in excluded[lost])
    assert not excluded.str.contains("litigation:LOST_CONTACT").any()
    disputed = rows["disputes_debt"].to_numpy()
    assert all("payment_order:DISPUTED" in e for e in excluded[disputed])
    unevidenced = (~rows["evidence_complete"]).to_numpy(dtype=bool)
    assert unevidenced.any()
    both = "payment_order:EVIDENCE_INCOMPLETE;litigation:EVIDENCE_INCOMPLETE"
    assert all(both in e for e in excluded[unevidenced])
    flags = decision["flags"].str.split(";")
    elderly = rows["is_elderly"].to_numpy()
    np.testing.assert_array_equal(flags.map(lambda f: "DIALECT_STAFF" in f).to_numpy(), elderly)
    hit = rows["disaster_affected"].to_numpy()
    np.testing.assert_array_equal(flags.map(lambda f: "SUPPORTIVE_CONTACT" in f).to_numpy(), hit)
    assert decision["why"].str.startswith("expected net value: soft reminder CNY ").all()
    assert decision["why"][elderly].str.contains("note: dialect-speaking staff").all()


def test_chinese_why_and_contact_plan_have_no_english(world):
    rows = world.head(2_000)
    for rule in ("value", "matrix"):
        decision = decide(_cases(rows), POLICY, COSTS, rule, language="zh", unchecked=["DISPUTED"])
        for column in ("why", "contact_plan"):
            text = decision[column].dropna()
            assert len(text) and not text.str.contains(r"[A-Za-z_]").any()
        assert decision["why"].str.startswith(ZH_VALUES).all()
        assert decision["why"].str.contains(ZH_UNCHECKED).all()
    amounts = decision["why"].str.extractall(r"(-?[\d,.]+)(万?)元")
    assert not amounts[0].str.contains(",").any()  # 1369, never 1,369
    in_wan = amounts[1].eq("万").to_numpy()  # an empty group reads as missing
    wan, plain = amounts[0][in_wan].astype(float), amounts[0][~in_wan].astype(float)
    assert len(wan) and len(plain) and (plain.abs() < 10_000).all()


def test_legal_notice_only_where_a_court_tier_is_open():
    ids = pd.Series(["a", "b", "c"])
    plan = contact_plan(ids, pd.Timestamp(AS_OF), POLICY.contact, np.array([True, False, True]))
    letters = plan[plan["channel"] == "legal_notice_letter"]["debtor_id"].tolist()
    assert letters == ["a", "c"]
    assert plan.groupby("debtor_id").size().to_dict() == {"a": 4, "b": 3, "c": 4}


def test_every_code_needs_its_meaning(world):
    texts = load_reasons().model_copy(deep=True)
    del texts.codes["NO_POSITIVE_TIER"]
    with pytest.raises(RecoverscoreError, match=r"codes: no meaning for \['NO_POSITIVE_TIER'\]"):
        decide(_cases(world.head(5)), POLICY, COSTS, texts=texts)


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
        (
            lambda d: d["contact"]["steps"].append(
                {"day": 9, "time": "10:00", "channel": "doorstep_visit"}
            ),
            "unknown channel 'doorstep_visit'",
        ),
        (lambda d: d["contact"].__setitem__("applies_to", ["phone"]), "applies_to"),
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


@pytest.mark.parametrize("rule", ["safe", "value", "matrix"])
@pytest.mark.parametrize("language", ["en", "zh"])
def test_a_few_rows_get_the_texts_a_large_batch_gives_them(world, rule, language):
    """Texts of small batches are built in Python, of large ones in Arrow: the same words."""
    rows = world.sample(400, random_state=3)
    cases = _cases(rows)
    rng = np.random.default_rng(5)
    support = rng.dirichlet(np.ones(len(TIERS)), size=len(rows))
    support[rng.random(support.shape) < 0.3] = POLICY.safe.min_support / 3  # unsupported tiers
    cases = Cases(cases.facts, cases.probabilities, cases.index, support)
    batch = decide(cases, POLICY, COSTS, rule, language=language, unchecked=["DISPUTED"])
    assert batch["why"].str.contains(ZH_UNCHECKED if language == "zh" else "disputes").all()
    for first in range(0, len(rows), 7):
        positions = np.arange(first, min(first + 7, len(rows)))
        few = decide(
            cases.take(positions), POLICY, COSTS, rule, language=language, unchecked=["DISPUTED"]
        )
        expected = batch.iloc[positions]
        plain = [f.astype(object).where(f.notna(), None) for f in (few, expected)]  # str dtype
        pd.testing.assert_frame_equal(*plain)
