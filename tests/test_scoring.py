"""The one scoring pipeline: `recoverscore.score`, `Scorer.score_batch` and their agreement."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recoverscore import score
from recoverscore.data.costs import load_costs
from recoverscore.data.schemas import TIERS, Portfolio, Scored, probability_column
from recoverscore.data.synthetic import generate_frame
from recoverscore.data.validation import validate
from recoverscore.errors import RecoverscoreError
from recoverscore.modelling.model import load_train_config
from recoverscore.scoring.package import ModelPackage, settings_digest
from recoverscore.scoring.pipeline import Scorer, ScoringOptions, decision_dates
from recoverscore.strategy.policy import load_policy_config


@pytest.fixture(scope="module")
def model():
    history = generate_frame(4_000, seed=3, as_of="2026-06-30")
    return (
        load_train_config()
        .estimator()
        .set_params(kind="lightgbm")
        .fit(history, history["recovered"].to_numpy(int))
    )


@pytest.fixture(scope="module")
def package(model) -> ModelPackage:
    return ModelPackage.build(model)


@pytest.fixture(scope="module")
def portfolio():
    frame = generate_frame(600, seed=4, as_of="2026-06-30")
    return frame[list(Portfolio.to_schema().columns)]


def test_every_debtor_gets_an_allowed_tier_with_reasons(model, package, portfolio):
    scored = score(portfolio, package)
    assert validate(scored, Scored).is_valid
    assert scored["debtor_id"].tolist() == portfolio["debtor_id"].tolist()
    for tier, excluded in zip(scored["recommended_tier"], scored["excluded_tiers"], strict=True):
        assert f"{tier}:" not in excluded
    assert scored["top_reasons"].str.len().gt(0).all()
    assert (scored["model_version"] == package.label).all() and scored["overrides"].isna().all()
    np.testing.assert_allclose(
        scored[[probability_column(t) for t in TIERS]].to_numpy(),
        model.tier_probabilities(portfolio).to_numpy(),
    )
    best = scored[[f"ev_{t}" for t in TIERS]].to_numpy()
    allowed = np.array([[f"{t}:" not in e for t in TIERS] for e in scored["excluded_tiers"]])
    np.testing.assert_allclose(
        scored["expected_net_value"], np.where(allowed, best, -np.inf).max(axis=1)
    )


def test_a_bare_model_is_scored_like_its_package(model, package, portfolio):
    pd.testing.assert_frame_equal(
        score(portfolio.head(50), model).drop(columns="model_version"),
        score(portfolio.head(50), package).drop(columns="model_version"),
    )


def test_score_and_score_batch_are_the_same_pipeline(package, portfolio):
    options = ScoringOptions(policy="matrix", language="zh", top_k=2)
    batch = Scorer(package, options, version="7").score_batch(portfolio.head(80))
    direct = score(
        portfolio.head(80), package, policy="matrix", language="zh", top_k=2, version="7"
    )
    pd.testing.assert_frame_equal(batch.scored, direct)
    assert batch.stats["rows_in"] == batch.stats["scored"] == 80
    assert (direct["model_version"] == "7").all()
    assert direct["top_reasons"].str.contains(r"[\u4e00-\u9fff]").all()


def test_one_as_of_rule(portfolio):
    today = pd.Timestamp.today().normalize()
    rows = portfolio.head(3).assign(as_of=pd.Timestamp("2026-06-30"))
    given = pd.Timestamp("2027-01-31")
    assert (decision_dates(rows, given)["as_of"] == given).all()  # the call's date wins
    assert (decision_dates(rows, None)["as_of"] == pd.Timestamp("2026-06-30")).all()
    assert (decision_dates(rows.drop(columns="as_of"), None)["as_of"] == today).all()


def test_a_later_as_of_ages_every_debt(package, portfolio):
    rows = portfolio.head(100)
    later = score(rows, package, as_of="2027-06-30")
    now = score(rows.drop(columns="as_of"), package, as_of="2026-06-30")
    assert (later["as_of"] == "2027-06-30").all() and (now["as_of"] == "2026-06-30").all()
    assert (later["p_soft_reminder"] <= now["p_soft_reminder"] + 1e-12).all()


def test_a_frame_without_as_of_is_scored_as_of_today(package, portfolio):
    scored = score(portfolio.head(20).drop(columns="as_of"), package)
    assert (scored["as_of"] == pd.Timestamp.today().normalize()).all()


def test_overridden_costs_are_an_explicit_choice_the_output_records(package, portfolio):
    costs = load_costs()
    dearer = costs.model_copy(
        update={"handling_cost": {t: v * 5 for t, v in costs.handling_cost.items()}}
    )
    overridden = package.with_settings(costs=dearer)
    assert package.with_settings(costs=costs).overrides == {}
    scored = score(portfolio.head(50), overridden)
    assert (scored["overrides"] == f"costs {settings_digest(dearer)}").all()
    plain = score(portfolio.head(50), package)
    assert (scored["ev_mediation"] < plain["ev_mediation"]).all()
    assert overridden.policy == load_policy_config()


def test_invalid_rows_are_a_clear_error(package, portfolio):
    bad = portfolio.head(10).copy()
    bad.loc[bad.index[2], "principal"] = -5.0
    with pytest.raises(RecoverscoreError, match=r"1 of 10 rows break the model's input contract"):
        score(bad, package)


def test_bad_options_are_clear_errors(package, portfolio):
    with pytest.raises(RecoverscoreError, match="unknown policy 'best'"):
        score(portfolio.head(5), package, policy="best")
    with pytest.raises(RecoverscoreError, match="top_k must be a whole number"):
        score(portfolio.head(5), package, top_k=0)
    with pytest.raises(RecoverscoreError, match="unknown language 'fr'"):
        score(portfolio.head(5), package, language="fr")
    with pytest.raises(RecoverscoreError, match="expected a ModelPackage or a fitted"):
        score(portfolio.head(5), "champion")


def test_facts_are_worked_out_once_per_batch(package, portfolio, monkeypatch):
    from recoverscore.data import facts as facts_module

    calls = []
    real = facts_module.DebtFacts.compute.__func__

    def counting(cls, frame, years):
        calls.append(len(frame))
        return real(cls, frame, years)

    monkeypatch.setattr(facts_module.DebtFacts, "compute", classmethod(counting))
    Scorer(package, ScoringOptions()).score_batch(portfolio.head(40))
    assert calls == [40]


def test_the_contact_plan_and_the_flags_reach_the_scored_output(package, portfolio):
    result = Scorer(package, ScoringOptions(language="zh")).score_batch(portfolio)
    scored = result.scored
    soft = (scored["recommended_tier"] == "soft_reminder").to_numpy()
    assert soft.any() and not soft.all()
    np.testing.assert_array_equal(scored["contact_plan"].notna().to_numpy(), soft)
    plans = scored["contact_plan"][soft]
    assert plans.str.startswith("第0天10:00智能语音提醒").all()
    lawful = scored["excluded_tiers"].str.replace(r"[a-z_]+:LOW_SUPPORT", "", regex=True)
    court_open = ~(lawful.str.contains("payment_order:") & lawful.str.contains("litigation:"))
    np.testing.assert_array_equal(plans.str.contains("法律告知函"), court_open[soft])
    counted = {
        code: int(scored["flags"].str.split(";").map(lambda f, c=code: c in f).sum())
        for code in ("DIALECT_STAFF", "SUPPORTIVE_CONTACT", "NO_POSITIVE_TIER")
    }
    assert result.stats["flags"] == {code: n for code, n in counted.items() if n}
    assert counted["DIALECT_STAFF"] > 0


def test_rules_an_optional_column_feeds_are_named_where_a_batch_lacks_it(package, portfolio):
    rows = portfolio.head(30)
    note = "not checked, no data: the evidence of the debt is incomplete"
    assert not score(rows, package)["why"].str.contains(note).any()
    assert score(rows.drop(columns="evidence_complete"), package)["why"].str.contains(note).all()
