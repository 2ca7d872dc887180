"""The synthetic world: deterministic, schema-valid, and its truth encodes the domain."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recoverscore.config import parse_config
from recoverscore.data.costs import load_costs
from recoverscore.data.facts import AGING_BUCKETS, is_time_barred
from recoverscore.data.schemas import TIERS, History, SyntheticHistory, true_probability_column
from recoverscore.data.synthetic import (
    SyntheticConfig,
    generate_frame,
    legacy_probabilities,
    legacy_tier,
    true_probabilities,
    voluntary_probability,
)
from recoverscore.data.tables import read_table
from recoverscore.data.validation import validate
from recoverscore.errors import RecoverscoreError
from recoverscore.modelling.evaluate import bayes_limit_auc, given_tier_truth, history_buckets
from tests.conftest import AS_OF, SAMPLE_DIR

P = {t: true_probability_column(t) for t in TIERS}


def test_same_seed_same_world_other_seed_other_world(world_config):
    a = generate_frame(3_000, seed=5, as_of=AS_OF, config=world_config)
    b = generate_frame(3_000, seed=5, as_of=AS_OF, config=world_config)
    c = generate_frame(3_000, seed=6, as_of=AS_OF, config=world_config)
    pd.testing.assert_frame_equal(a, b)
    assert not a["principal"].equals(c["principal"])


def test_chunks_are_seeded_independently_of_the_chunk_count(world_config):
    small_chunks = world_config.model_copy(update={"rows_per_chunk": 1_000})
    whole = generate_frame(2_500, seed=3, as_of=AS_OF, config=small_chunks)
    assert whole["debtor_id"].is_unique and len(whole) == 2_500
    first_two = generate_frame(2_000, seed=3, as_of=AS_OF, config=small_chunks)
    pd.testing.assert_frame_equal(whole.head(2_000), first_two)


def test_world_is_valid_and_spans_six_years(world):
    assert validate(world, SyntheticHistory).is_valid
    days = (world["as_of"] - world["due_date"]).dt.days
    assert days.min() == 0 and days.max() > 5.5 * 365
    ratio = (world.groupby("debtor_type")["principal"].median()).to_dict()
    assert 5 < ratio["enterprise"] / ratio["individual"] < 20


def test_outcomes_are_drawn_from_the_truth_of_the_given_tier(world):
    p = given_tier_truth(world)
    deciles = pd.qcut(p, 10, labels=False)
    observed = world["recovered"].groupby(deciles).mean()
    expected = pd.Series(p).groupby(deciles).mean()
    n = world.groupby(deciles).size()
    se = np.sqrt(expected * (1 - expected) / n)
    assert (np.abs(observed - expected) < 4 * se + 1e-3).all()


def test_bayes_limit_is_neither_trivial_nor_hopeless(world):
    assert 0.75 < bayes_limit_auc(world) < 0.90


def test_every_tier_is_tried_in_every_aging_bucket(world):
    buckets = history_buckets(world)
    mix = pd.crosstab(buckets, world["given_tier"], normalize="index")
    assert list(mix.index) == list(AGING_BUCKETS)
    assert (mix.reindex(columns=list(TIERS)) >= 0.05).all().all(), mix


def test_propensity_is_the_legacy_policy_probability(world, world_config):
    policy = world_config.legacy_policy
    days = (world["as_of"] - world["due_date"]).dt.days.to_numpy()
    staircase = legacy_tier(days, policy)
    on_stair = world["given_tier"].to_numpy() == staircase
    expected = np.where(
        on_stair, 1 - policy.exploration + policy.exploration / 4, policy.exploration / 4
    )
    np.testing.assert_allclose(world["propensity"], expected)
    assert on_stair.mean() == pytest.approx(1 - 0.75 * policy.exploration, abs=0.01)


# Two deviations from the staircase, as collectors make them: large enterprise debts are
# escalated a tier early, and lost-contact debts skip mediation.
BIG = 500_000
DEVIATIONS = [
    {
        "name": "large_enterprise_escalated_early",
        "when": {"debtor_type": ["enterprise"], "principal_at_least": BIG},
        "shift": 1,
        "probability": 0.6,
    },
    {
        "name": "lost_contact_skips_mediation",
        "when": {"contact_status": ["lost"], "tiers": ["mediation"]},
        "to": "payment_order",
        "probability": 0.8,
    },
]


def _legacy(world_config, **changes) -> SyntheticConfig:
    data = world_config.model_dump()
    data["legacy_policy"].update(changes)
    return parse_config(data, SyntheticConfig)


def _stair_codes(frame: pd.DataFrame) -> np.ndarray:
    """The staircase tier code, written out from the aging rules (not from ``legacy_tier``)."""
    days = (frame["as_of"] - frame["due_date"]).dt.days.to_numpy()
    return np.select([days <= 30, days <= 90, days <= 180], [0, 1, 2], default=3)


def _rule_facts(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    big = ((frame["debtor_type"] == "enterprise") & (frame["principal"] >= BIG)).to_numpy()
    return big, (frame["contact_status"] == "lost").to_numpy()


def test_no_exploration_gives_the_staircase_with_propensity_one(world_config):
    config = _legacy(world_config, exploration=0.0)
    with warnings.catch_warnings(), np.errstate(all="raise"):
        warnings.simplefilter("error")
        frame = generate_frame(5_000, seed=4, as_of=AS_OF, config=config)
    codes = pd.Categorical(frame["given_tier"], categories=TIERS).codes
    np.testing.assert_array_equal(codes, _stair_codes(frame))
    assert (frame["propensity"] == 1.0).all()
    assert validate(frame, SyntheticHistory).is_valid


def test_no_exploration_is_exactly_the_staircase_plus_deviations(world_config):
    certain = [{**rule, "probability": 1.0} for rule in DEVIATIONS]
    config = _legacy(world_config, exploration=0.0, deviations=certain)
    frame = generate_frame(40_000, seed=5, as_of=AS_OF, config=config)
    big, lost = _rule_facts(frame)
    expected = _stair_codes(frame)
    expected = np.where(big, np.minimum(expected + 1, 3), expected)  # rule 1: one tier up
    expected = np.where(lost & (expected == 1), 2, expected)  # rule 2, on rule 1's result
    given = pd.Categorical(frame["given_tier"], categories=TIERS).codes
    np.testing.assert_array_equal(given, expected)
    assert (frame["propensity"] == 1.0).all()
    assert big.mean() > 0.01 and (lost & (expected == 2) & (_stair_codes(frame) == 1)).any()


def test_deviations_happen_only_where_their_rule_says(world_config):
    config = _legacy(world_config, exploration=0.0, deviations=DEVIATIONS)
    frame = generate_frame(60_000, seed=6, as_of=AS_OF, config=config)
    big, lost = _rule_facts(frame)
    stair = _stair_codes(frame)
    given = pd.Categorical(frame["given_tier"], categories=TIERS).codes
    moved = given != stair
    mediation_lost = lost & (stair == 1)
    assert not moved[~big & ~mediation_lost].any()
    # rule 1 alone: one tier up with probability 0.6 (litigation has nowhere to go)
    only_big = big & ~lost & (stair < 3)
    assert set(given[only_big] - stair[only_big]) == {0, 1}
    share, n = moved[only_big].mean(), only_big.sum()
    assert abs(share - 0.6) < 4 * np.sqrt(0.24 / n)
    # rule 2 alone: mediation to payment order with probability 0.8
    only_lost = mediation_lost & ~big
    assert set(given[only_lost]) == {1, 2}
    share, n = moved[only_lost].mean(), only_lost.sum()
    assert abs(share - 0.8) < 4 * np.sqrt(0.16 / n)


def test_legacy_probabilities_by_hand(world_config):
    """A large lost enterprise debt 60 days past due, 10% exploration:
    staircase mediation; rule 1 moves 0.6 to payment order; rule 2 moves 0.8 of the remaining
    0.4 of mediation to payment order: payment order 0.92, mediation 0.08. Exploration:
    0.9 * p + 0.1 / 4, so (soft, mediation, payment order, litigation) =
    (0.025, 0.097, 0.853, 0.025). An individual's (reachable) 60-day debt: (0.025, 0.925, ...)."""
    config = _legacy(world_config, exploration=0.1, deviations=DEVIATIONS)
    row = generate_frame(1, seed=1, as_of=AS_OF).iloc[[0, 0]].reset_index(drop=True)
    row["due_date"] = row["as_of"] - pd.Timedelta(days=60)
    row.loc[0, ["debtor_type", "principal", "contact_status"]] = ["enterprise", 2e6, "lost"]
    row.loc[1, ["debtor_type", "principal", "contact_status"]] = ["individual", 2e4, "reachable"]
    got = legacy_probabilities(row, config.legacy_policy)
    np.testing.assert_allclose(got.iloc[0], [0.025, 0.097, 0.853, 0.025])
    np.testing.assert_allclose(got.iloc[1], [0.025, 0.925, 0.025, 0.025])
    assert list(got.columns) == list(TIERS)


def test_recorded_propensity_is_the_frequency_within_design_cells(world_config):
    config = _legacy(world_config, exploration=0.1, deviations=DEVIATIONS)
    frame = generate_frame(200_000, seed=7, as_of=AS_OF, config=config)
    big, lost = _rule_facts(frame)
    cell = pd.Series(_stair_codes(frame) * 4 + big * 2 + lost, index=frame.index)
    design = legacy_probabilities(frame, config.legacy_policy)
    given = pd.Categorical(frame["given_tier"], categories=TIERS)
    np.testing.assert_array_equal(
        frame["propensity"], design.to_numpy()[np.arange(len(frame)), given.codes]
    )
    frequency = pd.crosstab(cell, given, normalize="index", dropna=False)
    size = cell.value_counts()
    checked = 0
    for c, n in size[size >= 500].items():
        p = design[cell == c]
        assert np.ptp(p.to_numpy(), axis=0).max() < 1e-12  # one propensity vector a cell
        p = p.iloc[0].to_numpy()
        se = np.sqrt(p * (1 - p) / n)
        assert (np.abs(frequency.loc[c].to_numpy() - p) < 4.5 * se).all(), (c, p)
        checked += 1
    assert checked >= 10


def test_hidden_propensity_leaves_no_column(world_config):
    shown = generate_frame(2_000, seed=8, as_of=AS_OF, config=_legacy(world_config))
    hidden_config = _legacy(world_config, record_propensity=False)
    hidden = generate_frame(2_000, seed=8, as_of=AS_OF, config=hidden_config)
    assert "propensity" not in hidden.columns
    pd.testing.assert_frame_equal(hidden, shown.drop(columns="propensity"))
    assert validate(hidden, History).is_valid and validate(hidden, SyntheticHistory).is_valid


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"shift": 0}, r"deviations\.0: .*shift: 0"),
        ({"to": "litigation"}, r"deviations\.0: .*exactly one of to"),
        ({"shift": None}, r"deviations\.0: .*exactly one of to"),
        ({"probability": 0.0}, r"deviations\.0\.probability"),
        ({"when": {"debtor_type": ["trust"]}}, r"deviations\.0\.when\.debtor_type\.0.*trust"),
        ({"when": {"mood": "bad"}}, r"deviations\.0\.when\.mood"),
        ({"when": {"tiers": ["prayer"]}}, r"deviations\.0\.when\.tiers\.0.*prayer"),
        ({"name": "lost_contact_skips_mediation"}, r"names must be unique"),
    ],
)
def test_deviation_errors_name_the_key(world_config, change, message):
    rules = [{**DEVIATIONS[0], **change}, DEVIATIONS[1]]
    with pytest.raises(RecoverscoreError, match=message):
        _legacy(world_config, deviations=rules)


def test_staircase_follows_the_aging_rules(world_config):
    days = np.array([0, 30, 31, 90, 91, 180, 181, 2000])
    assert legacy_tier(days, world_config.legacy_policy).tolist() == [
        "soft_reminder",
        "soft_reminder",
        "mediation",
        "mediation",
        "payment_order",
        "payment_order",
        "litigation",
        "litigation",
    ]


def test_time_barred_debts_gain_nothing_from_judicial_tiers(world, world_config):
    barred = is_time_barred(
        world["due_date"],
        world["last_acknowledgment_date"],
        world["as_of"],
        world_config.limitation_years,
        world["disaster_date"],
    )
    assert 0.02 < barred.mean() < 0.2
    voluntary = voluntary_probability(world, world_config)
    unserved = (world["contact_status"] == "lost") | ~world["evidence_complete"].astype(bool)
    for tier in ("payment_order", "litigation"):
        np.testing.assert_allclose(world.loc[barred, P[tier]], voluntary[barred], rtol=1e-12)
        live = ~barred & ~(unserved.to_numpy() & (tier == "payment_order"))
        assert (world.loc[live, P[tier]].to_numpy() > voluntary[live]).all()
    for tier in ("soft_reminder", "mediation"):  # persuasion still works a little
        assert (world.loc[barred, P[tier]].to_numpy() > voluntary[barred]).all()


def test_no_tier_is_ever_worse_than_doing_nothing(world, world_config):
    voluntary = voluntary_probability(world, world_config)
    for tier in TIERS:
        assert (world[P[tier]].to_numpy() >= voluntary - 1e-12).all()


@settings(max_examples=25, deadline=None)
@given(extra_days=st.integers(1, 1500), start=st.integers(0, 2_000))
def test_recovery_never_rises_with_debt_age(extra_days, start):
    config = _config()
    rows = _rows(start)
    older = rows.assign(due_date=rows["due_date"] - pd.Timedelta(days=extra_days))
    before, after = true_probabilities(rows, config), true_probabilities(older, config)
    assert (after.to_numpy() <= before.to_numpy() + 1e-12).all()
    assert (after.to_numpy() < before.to_numpy()).mean() > 0.9  # and it does fall


def test_recovery_falls_with_age_on_average(world):
    means = world[list(P.values())].groupby(history_buckets(world), observed=False).mean()
    live = means.drop(index="time_barred")
    assert (live.diff().dropna() < 0).all().all(), live


def test_disputes_sink_payment_orders(world, world_config):
    rows = world.head(5_000)
    disputed = true_probabilities(rows.assign(disputes_debt=True), world_config)
    undisputed = true_probabilities(rows.assign(disputes_debt=False), world_config)
    drop = undisputed[P["payment_order"]] - disputed[P["payment_order"]]
    assert (drop >= 0).all()
    for tier in ("soft_reminder", "mediation", "litigation"):
        assert drop.mean() > (undisputed[P[tier]] - disputed[P[tier]]).mean()
    by_flag = world.groupby("disputes_debt")[P["payment_order"]].mean()
    assert by_flag[True] < 0.5 * by_flag[False]


def test_litigation_pays_only_with_something_to_enforce_against(world, world_config):
    assert (world.groupby("owns_real_estate")[P["litigation"]].mean().diff().iloc[-1]) > 0.1
    rows = world.head(5_000)
    none = rows.assign(
        owns_real_estate=False,
        owns_vehicle=False,
        has_equity_holdings=False,
        monthly_income=rows["monthly_income"] * 0,  # individuals: no wages; enterprises: NaN
        bank_balance=np.nan,
    )
    house = none.assign(owns_real_estate=True)
    lift_none = true_probabilities(none, world_config)[P["litigation"]] - voluntary_probability(
        none, world_config
    )
    lift_house = true_probabilities(house, world_config)[P["litigation"]] - voluntary_probability(
        house, world_config
    )
    barred = _time_barred(rows, world_config)
    assert (lift_house[~barred] > lift_none[~barred]).all()
    assert np.allclose(lift_house[barred], 0, atol=1e-12)
    assert np.allclose(lift_none[barred], 0, atol=1e-12)
    assert lift_none.mean() < 0.5 * lift_house.mean()


def test_soft_reminders_work_early_and_on_the_willing(world):
    buckets = history_buckets(world)
    soft = world[P["soft_reminder"]].groupby(buckets, observed=False).mean()
    assert soft["0-30"] > 3 * soft["1-3y"]
    best_early = world.loc[buckets == "0-30", list(P.values())].mean().idxmax()
    assert best_early == P["soft_reminder"]
    by_contact = world.groupby("contact_status")[P["soft_reminder"]].mean()
    assert by_contact["reachable"] > by_contact["intermittent"] > by_contact["lost"]
    promises = world.groupby(world["n_broken_promises"] > 0)[P["soft_reminder"]].mean()
    assert promises[True] < promises[False]


def test_mediation_helps_the_willing_but_unable(world, world_config):
    rows = world[(world["debtor_type"] == "individual") & (world["contact_status"] != "lost")]
    rows = rows.head(3_000)
    poor = true_probabilities(rows.assign(monthly_income=rows["monthly_income"] / 8), world_config)
    rich = true_probabilities(rows.assign(monthly_income=rows["monthly_income"] * 8), world_config)
    mediation_edge_poor = (poor[P["mediation"]] - poor[P["soft_reminder"]]).mean()
    mediation_edge_rich = (rich[P["mediation"]] - rich[P["soft_reminder"]]).mean()
    assert mediation_edge_poor > mediation_edge_rich + 0.05


def test_costs_follow_the_fee_schedule(world):
    costs = load_costs()
    lit = world[world["given_tier"] == "litigation"]
    principal = lit["principal"].to_numpy()
    # something to freeze: property, wages above the floor, a bank balance above the floor
    assets = lit[["owns_real_estate", "owns_vehicle", "has_equity_holdings"]].any(axis=1)
    assets |= lit["monthly_income"].fillna(0) > costs.enforceable.monthly_income_above
    assets |= lit["bank_balance"].fillna(0) > costs.enforceable.bank_balance_above
    days = (lit["as_of"] - lit["due_date"]).dt.days.to_numpy()
    lost = (lit["contact_status"] == "lost").to_numpy()
    # a debtor who cannot be found is served by public notice, paid whatever the outcome
    notice = np.where(lost, costs.public_notice.fee, 0.0)
    base = costs.handling_cost["litigation"] + costs.lawyer_fee.fee(principal) + notice
    # not recovered: the prepaid acceptance and preservation fees are the creditor's loss
    prepaid = costs.lawsuit_acceptance_fee(principal) + np.where(
        assets, costs.preservation_fee.fee(principal), 0.0
    )
    # recovered: the debtor reimburses them; the creditor pays commission on what came back
    commission = costs.commission.rate(principal, days, lost) * lit["amount_recovered"]
    expected = base + np.where(lit["recovered"], commission, prepaid)
    np.testing.assert_allclose(lit["costs"], expected, atol=0.01)
    soft = world[(world["given_tier"] == "soft_reminder") & ~world["recovered"]]
    assert (soft["costs"] == costs.handling_cost["soft_reminder"]).all()


def test_a_payment_order_lifts_nothing_where_it_cannot_be_served_or_is_unevidenced(
    world, world_config
):
    rows = world.head(5_000)
    for unserved in (
        rows.assign(contact_status="lost"),
        rows.assign(evidence_complete=pd.array([False] * len(rows), dtype="boolean")),
    ):
        truth = true_probabilities(unserved, world_config)
        np.testing.assert_allclose(
            truth[P["payment_order"]], voluntary_probability(unserved, world_config), rtol=1e-12
        )
        assert (
            truth[P["litigation"]] > voluntary_probability(unserved, world_config) + 1e-6
        ).mean() > 0.5
    evidenced = rows.assign(evidence_complete=pd.array([True] * len(rows), dtype="boolean"))
    reachable = evidenced.assign(contact_status="reachable")
    assert (
        true_probabilities(reachable, world_config)[P["payment_order"]]
        > voluntary_probability(reachable, world_config)
    ).mean() > 0.9
    # unknown evidence (a file without the column) is no gap
    unknown = true_probabilities(reachable.drop(columns="evidence_complete"), world_config)
    pd.testing.assert_frame_equal(unknown, true_probabilities(reachable, world_config))


def test_wages_and_bank_balances_lift_litigation(world, world_config):
    rows = world[(world["debtor_type"] == "individual") & ~world["owns_real_estate"]].head(3_000)
    bare = rows.assign(owns_vehicle=False, has_equity_holdings=False, bank_balance=np.nan)
    low, high = bare.assign(monthly_income=500.0), bare.assign(monthly_income=30_000.0)
    banked = low.assign(bank_balance=rows["principal"] * 2)
    lit = {
        name: true_probabilities(f, world_config)[P["litigation"]]
        for name, f in (("low", low), ("high", high), ("banked", banked))
    }
    barred = _time_barred(rows, world_config)
    assert (lit["high"][~barred] > lit["low"][~barred]).all()
    assert (lit["banked"][~barred] > lit["low"][~barred]).all()
    assert (lit["high"] - lit["low"]).mean() > 0.02 and (lit["banked"] - lit["low"]).mean() > 0.02


def test_disasters_are_recent_and_dated_and_suspend_the_limitation(world, world_config):
    hit = world["disaster_affected"].to_numpy()
    assert 0.005 < hit.mean() < 0.1
    np.testing.assert_array_equal(world["disaster_date"].notna().to_numpy(), hit)
    since = (world["as_of"] - world["disaster_date"]).dt.days[hit]
    assert since.between(0, world_config.population.disaster_within_days - 1).all()
    # a debt whose limitation ran out last month, hit by a disaster two months before that:
    # suspended (Civil Code art. 194), so the courts still lift it
    rows = world[~world["disaster_affected"]].head(300)
    due = rows["as_of"] - pd.DateOffset(years=3) - pd.Timedelta(days=30)
    expired = rows.assign(
        due_date=due,
        last_acknowledgment_date=pd.NaT,
        last_payment_date=pd.NaT,
        n_partial_payments=0,
        contact_status="reachable",
    )
    suspended = expired.assign(
        disaster_affected=True, disaster_date=due + pd.DateOffset(years=3) - pd.Timedelta(days=60)
    )
    voluntary = voluntary_probability(expired, world_config)
    np.testing.assert_allclose(
        true_probabilities(expired, world_config)[P["litigation"]], voluntary
    )
    lifted = true_probabilities(suspended, world_config)[P["litigation"]]
    assert (lifted > voluntary_probability(suspended, world_config)).all()


def test_sample_is_reproducible_from_its_documented_command():
    """`make sample` wrote data/synthetic/; the same seed must give the same rows."""
    expected = generate_frame(5_000, seed=20260630, as_of="2026-06-30")
    parquet = read_table(SAMPLE_DIR / "sample.parquet")
    pd.testing.assert_frame_equal(parquet, expected)
    csv = validate(read_table(SAMPLE_DIR / "sample.csv"), SyntheticHistory)
    assert csv.is_valid
    pd.testing.assert_frame_equal(
        csv.valid.reset_index(drop=True), expected, check_dtype=False, rtol=1e-9
    )


def test_config_errors_name_the_key(world_config):
    data = world_config.model_dump()
    data["legacy_policy"]["exploration"] = 1.5
    with pytest.raises(RecoverscoreError, match=r"legacy_policy\.exploration"):
        parse_config(data, SyntheticConfig)
    data = world_config.model_dump()
    data["truth"]["tiers"]["litigation"]["coefficients"]["charm"] = 1.0
    with pytest.raises(RecoverscoreError, match=r"truth\.tiers\.litigation\.coefficients.*charm"):
        parse_config(data, SyntheticConfig)
    data = world_config.model_dump()
    data["legacy_policy"]["staircase"][0]["tier"] = "prayer"
    with pytest.raises(RecoverscoreError, match=r"staircase\.0\.tier.*prayer"):
        parse_config(data, SyntheticConfig)


_CACHE: dict[str, object] = {}


def _config() -> SyntheticConfig:
    from recoverscore.data.synthetic import load_synthetic_config

    return _CACHE.setdefault("config", load_synthetic_config())


def _rows(start: int) -> pd.DataFrame:
    frame = _CACHE.setdefault("rows", generate_frame(2_500, seed=99, as_of=AS_OF))
    return frame.iloc[start : start + 500]


def _time_barred(rows: pd.DataFrame, world_config) -> np.ndarray:
    """The world's own limitation rule, from the raw columns."""
    return is_time_barred(
        rows["due_date"],
        rows["last_acknowledgment_date"],
        rows["as_of"],
        world_config.limitation_years,
        rows["disaster_date"],
    )
