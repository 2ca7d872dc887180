"""The logging policy: cross-fitted propensities against the synthetic world's exact ones, the
portable final model, and the overlap diagnostics."""

from __future__ import annotations

import io
import json
import warnings

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from scipy.special import softmax
from sklearn.model_selection import StratifiedKFold

from recoverscore.config import parse_config
from recoverscore.data.costs import load_costs
from recoverscore.data.facts import DebtFacts
from recoverscore.data.schemas import TIERS, probability_column, tier_codes
from recoverscore.data.synthetic import SyntheticConfig, generate_frame, legacy_probabilities
from recoverscore.errors import RecoverscoreError
from recoverscore.modelling.features import DebtorFeatures
from recoverscore.strategy import logging_policy as lp
from recoverscore.strategy.offpolicy import evaluate_policy
from recoverscore.strategy.policy import Cases, economics, load_policy_config
from tests.conftest import AS_OF, no_missing_glyphs

DEVIATIONS = [
    {
        "name": "large_enterprise_escalated_early",
        "when": {"debtor_type": ["enterprise"], "principal_at_least": 500_000},
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


def _config(world_config, **legacy) -> SyntheticConfig:
    data = world_config.model_dump()
    data["legacy_policy"].update(legacy)
    return parse_config(data, SyntheticConfig)


def _world(world_config, rows: int, seed: int, **legacy) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A history, its features, and (through the config) its exact logging policy."""
    config = _config(world_config, **legacy)
    history = generate_frame(rows, seed=seed, as_of=AS_OF, config=config)
    return history, DebtorFeatures().fit(history).transform(history)


@pytest.fixture(scope="module")
def deviating(world_config):
    """4,000 debts, 10% exploration, two deviations, propensity hidden; fitted once."""
    config = _config(world_config, exploration=0.1, deviations=DEVIATIONS, record_propensity=False)
    history = generate_frame(4_000, seed=31, as_of=AS_OF, config=config)
    features = DebtorFeatures().fit(history).transform(history)
    fit = lp.fit_logging_policy(features, history["given_tier"], seed=3)
    return config, history, features, fit


# --- the estimate --------------------------------------------------------------------------------


def test_estimate_approaches_the_exact_logging_policy(deviating):
    config, history, _, fit = deviating
    exact = legacy_probabilities(history, config.legacy_policy)
    y = tier_codes(history["given_tier"])
    rows = np.arange(len(y))
    assert fit.source == "estimated" and "no propensity was recorded" in fit.note
    assert list(fit.probabilities.columns) == list(TIERS)
    assert fit.probabilities.index.equals(history.index)
    exact_loss = -np.log(exact.to_numpy()[rows, y]).mean()
    assert exact_loss < fit.log_loss < exact_loss + 0.05
    error = np.abs(fit.propensity.to_numpy() - exact.to_numpy()[rows, y])
    assert np.median(error) < 0.02 and error.mean() < 0.05
    assert (fit.probabilities.to_numpy() >= 0.01).all()
    np.testing.assert_array_equal(fit.propensity, fit.probabilities.to_numpy()[rows, y])


def test_final_model_predicts_new_debts_and_survives_json(deviating, world_config):
    config, _, _, fit = deviating
    fresh = generate_frame(3_000, seed=32, as_of=AS_OF, config=config)
    new_features = DebtorFeatures().fit(fresh).transform(fresh)
    support = fit.model.predict(new_features)
    exact = legacy_probabilities(fresh, config.legacy_policy)
    assert np.abs(support.to_numpy() - exact.to_numpy()).mean() < 0.03
    assert (support.to_numpy() >= fit.model.clip).all() and list(support.columns) == list(TIERS)
    payload = json.loads(json.dumps(fit.model.to_dict()))
    back = lp.LoggingPolicyModel.from_dict(payload)
    pd.testing.assert_frame_equal(back.predict(new_features), support)
    shuffled = new_features[list(reversed(new_features.columns))]  # columns found by name
    pd.testing.assert_frame_equal(back.predict(shuffled), support)


def test_each_debt_is_predicted_by_a_model_that_never_saw_it(deviating):
    _, history, features, fit = deviating
    y = tier_codes(history["given_tier"])
    splits = list(StratifiedKFold(5, shuffle=True, random_state=3).split(np.zeros(len(y)), y))
    rebuilt = np.empty((len(y), len(TIERS)))
    for train, test in splits:
        booster = lp._train(features.iloc[train], y[train], 3, 1)
        rebuilt[test] = booster.predict(features.iloc[test], raw_score=True)
    if fit.temperature_used:  # each fold scaled by a temperature from the other folds
        expected = lp._cross_fitted_temperature(rebuilt, y, splits)
    else:
        expected = softmax(rebuilt, axis=1)
    np.testing.assert_allclose(fit.probabilities, np.maximum(expected, 0.01))


def test_temperature_recovers_a_known_overconfidence():
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 2, size=(20_000, len(TIERS)))
    y = (softmax(logits / 2.5, axis=1).cumsum(axis=1) > rng.random(20_000)[:, None]).argmax(axis=1)
    assert lp._temperature(logits, y) == pytest.approx(2.5, rel=0.05)


def test_same_seed_same_fit(world_config):
    history, features = _world(world_config, 1_000, seed=33)
    a = lp.fit_logging_policy(features, history["given_tier"], seed=5)
    b = lp.fit_logging_policy(features, history["given_tier"], seed=5)
    pd.testing.assert_frame_equal(a.probabilities, b.probabilities)
    assert a.model.to_dict() == b.model.to_dict()
    c = lp.fit_logging_policy(features, history["given_tier"], seed=6)
    assert not np.allclose(a.probabilities, c.probabilities)


def test_recorded_propensity_is_used_when_valid_and_replaced_when_not(world_config):
    history, features = _world(world_config, 1_000, seed=34)
    fit = lp.fit_logging_policy(features, history["given_tier"], history["propensity"], seed=1)
    assert fit.source == "recorded" and "used as recorded" in fit.note
    pd.testing.assert_series_equal(
        fit.propensity, history["propensity"], check_names=False, check_exact=True
    )
    for bad in (0.0, 1.5, np.nan, "n/a"):
        recorded = history["propensity"].astype(object)
        recorded.iloc[[3, 9]] = bad
        fit = lp.fit_logging_policy(features, history["given_tier"], recorded, seed=1)
        assert fit.source == "estimated"
        assert "has 2 of 1,000 values missing or outside (0, 1]" in fit.note
        rows = np.arange(len(history))
        expected = fit.probabilities.to_numpy()[rows, tier_codes(history["given_tier"])]
        np.testing.assert_array_equal(fit.propensity, expected)


def test_no_exploration_gives_certain_propensities_and_no_support_elsewhere(world_config):
    history, features = _world(world_config, 3_000, seed=35, exploration=0.0)
    with warnings.catch_warnings(), np.errstate(divide="raise", invalid="raise"):
        warnings.simplefilter("error")
        fit = lp.fit_logging_policy(features, history["given_tier"], history["propensity"])
    assert fit.source == "recorded" and (fit.propensity == 1.0).all()
    y = tier_codes(history["given_tier"])
    estimated = fit.probabilities.to_numpy()
    assert np.median(estimated[np.arange(len(y)), y]) > 0.99
    others = np.ones_like(estimated, dtype=bool)
    others[np.arange(len(y)), y] = False
    assert np.median(estimated[others]) == 0.01  # floored, not renormalised
    overlap = lp.overlap_table(
        lp.default_segments(DebtFacts.compute(history, 3), history),
        history["given_tier"],
        estimated,
    )
    # every bucket has one tier only: three unsupported tiers in each of 12 segments
    assert len(overlap.unsupported) == 3 * 12
    assert "litigation was never given to 0-30 day enterprise debts" in overlap.message
    result = evaluate_policy(
        history["amount_recovered"] - history["costs"],
        history["recovered"],
        history["given_tier"],
        fit.propensity,
        np.full(len(history), "litigation"),
        fit.probabilities,
        n_resamples=50,
    )
    estimators = result[result["estimator"] != "logged"]
    assert (estimators["status"] == "insufficient_overlap").all()
    assert estimators["reason"].str.contains("with probability at most 0.01").all()


def test_doubly_robust_with_estimated_propensities_finds_the_truth(world_config):
    """Propensities hidden: DR with the cross-fitted estimate and a deliberately wrong direct
    model still finds the true value of the oracle policy (see test_offpolicy for the truth)."""
    history, features = _world(world_config, 10_000, seed=36, record_propensity=False)
    fit = lp.fit_logging_policy(features, history["given_tier"], seed=2)
    assert fit.source == "estimated"
    truth = history[[f"p_true_{t}" for t in TIERS]].set_axis(
        [probability_column(t) for t in TIERS], axis=1
    )
    rate_truth = truth.to_numpy()
    settings_ = load_policy_config().model_copy(
        update={
            "discount_rate": 0.0,
            "recovery_share": {t: world_config.recovery_share[t].mean for t in TIERS},
        }
    )
    value = economics(
        Cases.build(DebtFacts.compute(history, 3), truth), settings_, load_costs()
    ).value
    target = value.argmax(axis=1)
    result = evaluate_policy(
        history["amount_recovered"] - history["costs"],
        history["recovered"],
        history["given_tier"],
        fit.propensity,
        target,
        fit.probabilities,
        direct_recovered=rate_truth * 0.8,
        n_resamples=300,
        seed=4,
    )
    dr = result[(result["reward"] == "recovery_rate") & (result["estimator"] == "dr")].iloc[0]
    true_rate = rate_truth[np.arange(len(target)), target].mean()
    dm = result[(result["reward"] == "recovery_rate") & (result["estimator"] == "dm")].iloc[0]
    assert dr["reliable"] and dr["ci_low"] <= true_rate <= dr["ci_high"]
    assert abs(dr["estimate"] - true_rate) < 0.05 * true_rate
    assert abs(dr["estimate"] - true_rate) < 0.25 * abs(dm["estimate"] - true_rate)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda f, t: lp.fit_logging_policy(f.to_numpy(), t), r"features must be a DataFrame"),
        (lambda f, t: lp.fit_logging_policy(f, t[:-1]), r"one tier per row of features \(200\)"),
        (
            lambda f, t: lp.fit_logging_policy(f, t.replace({"mediation": "prayer"})),
            r"given_tier: unknown tier\(s\) \['prayer'\]",
        ),
        (lambda f, t: lp.fit_logging_policy(f, t, folds=1), r"folds must be at least 2"),
        (lambda f, t: lp.fit_logging_policy(f, t, folds=25), r"need at least 250 for 25 folds"),
        (lambda f, t: lp.fit_logging_policy(f, t, clip=0.3), r"clip must be in \(0, 0.25\)"),
        (lambda f, t: lp.fit_logging_policy(f, t, clip=0.0), r"clip must be in"),
        (
            lambda f, t: lp.fit_logging_policy(f, t, np.ones(3)),
            r"recorded propensity has 3 values for 200 debts",
        ),
    ],
)
def test_bad_inputs_are_one_clear_error(world_config, call, message):
    history, features = _world(world_config, 200, seed=37)
    with pytest.raises(RecoverscoreError, match=message):
        call(features, history["given_tier"])


def test_model_payload_of_another_kind_is_refused(deviating):
    payload = deviating[3].model.to_dict()
    with pytest.raises(RecoverscoreError, match="not a logging-policy model"):
        lp.LoggingPolicyModel.from_dict({**payload, "format_version": 99})
    with pytest.raises(RecoverscoreError, match="fitted for tiers"):
        lp.LoggingPolicyModel.from_dict({**payload, "tiers": ["soft_reminder"]})
    with pytest.raises(RecoverscoreError, match=r"lack column\(s\) \['region'\]"):
        deviating[3].model.predict(deviating[2].drop(columns="region"))


# --- overlap -------------------------------------------------------------------------------------


def _segments_by_hand() -> tuple[pd.DataFrame, list[str], np.ndarray]:
    """Two segments. A: 12 debts, soft reminder 11 times and mediation once. B: 10 debts, all
    litigation. Propensities: row i gives every tier 0.01 * (i + 1), except a soft reminder in A
    and litigation in B, which get the rest."""
    segments = pd.DataFrame({"aging_bucket": ["0-30"] * 12 + ["1-3y"] * 10, "debtor_type": "x"})
    given = ["soft_reminder"] * 11 + ["mediation"] + ["litigation"] * 10
    p = np.tile(0.01 * (np.arange(22) + 1)[:, None], (1, 4))
    p[:12, 0] = 1 - p[:12, 1:].sum(axis=1)
    p[12:, 3] = 1 - p[12:, :3].sum(axis=1)
    return segments, given, p


def test_overlap_table_by_hand():
    segments, given, p = _segments_by_hand()
    overlap = lp.overlap_table(segments, given, p)
    table = overlap.table.set_index(["aging_bucket", "tier"])
    assert list(overlap.table.columns) == [
        "aging_bucket",
        "debtor_type",
        "tier",
        "debts",
        "count",
        "share",
        "min_propensity",
        "supported",
    ]
    assert len(table) == 2 * 4
    a = table.loc["0-30"]
    assert a["count"].tolist() == [11, 1, 0, 0] and (a["debts"] == 12).all()
    np.testing.assert_allclose(a["share"], [11 / 12, 1 / 12, 0, 0])
    # smallest in A: soft reminder 1 - 3 * 0.12 (row 11), the others 0.01 (row 0)
    np.testing.assert_allclose(a["min_propensity"], [1 - 0.36, 0.01, 0.01, 0.01])
    assert a["supported"].tolist() == [True, False, False, False]
    b = table.loc["1-3y"]
    assert b["count"].tolist() == [0, 0, 0, 10] and b["supported"].tolist() == [0, 0, 0, 1]
    np.testing.assert_allclose(b["min_propensity"], [0.13, 0.13, 0.13, 1 - 3 * 0.22])
    assert len(overlap.unsupported) == 6
    assert overlap.message == (
        "No support (fewer than 10 debts) in 6 segment and tier cell(s): "
        "mediation was given to only 1 of 12 0-30 day x debts; "
        "payment order was never given to 0-30 day x debts; "
        "litigation was never given to 0-30 day x debts; "
        "soft reminder was never given to 1-3 year x debts; "
        "mediation was never given to 1-3 year x debts; "
        "payment order was never given to 1-3 year x debts"
    )
    relaxed = lp.overlap_table(segments, given, pd.DataFrame(p, columns=TIERS), min_count=1)
    assert len(relaxed.unsupported) == 5 and "only" not in relaxed.message


def test_overlap_with_extra_segments_and_full_support(world):
    history = world.head(20_000)
    segments = lp.default_segments(DebtFacts.compute(history, 3), history, ("contact_status",))
    assert list(segments.columns) == ["aging_bucket", "debtor_type", "contact_status"]
    p = legacy_probabilities(history, parse_config(_default(), SyntheticConfig).legacy_policy)
    overlap = lp.overlap_table(segments[["aging_bucket"]], history["given_tier"], p)
    assert overlap.unsupported.empty
    assert overlap.message == "Every tier was given to at least 10 debts in every segment."
    # 30% exploration: 0.3 / 4 for every tier, plus 0.7 for the staircase's, in every bucket
    smallest = overlap.table.groupby("aging_bucket", observed=True)["min_propensity"]
    assert smallest.apply(lambda m: sorted(m.round(12)) == [0.075] * 3 + [0.775]).all()
    fine = lp.overlap_table(segments, history["given_tier"], p)
    assert fine.table.groupby(list(segments.columns), observed=True)["count"].sum().sum() == len(
        history
    )
    assert "unreachable (contact lost)" in fine.message


def _default() -> dict:
    from recoverscore.data.synthetic import load_synthetic_config

    return load_synthetic_config().model_dump()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((pd.DataFrame(index=range(22)),), r"at least one column"),
        ((None, ["mediation"] * 21), r"one tier per debt \(22\)"),
        ((None, ["court"] * 22), r"given_tier: unknown tier\(s\) \['court'\]"),
        ((None, None, np.full((22, 3), 0.3)), r"debts x tiers = \(22, 4\)"),
        ((None, None, pd.DataFrame(np.full((22, 4), 0.25))), r"exactly the tier columns"),
    ],
)
def test_overlap_bad_inputs(args, message):
    segments, given, p = _segments_by_hand()
    full = [segments, given, p]
    full[: len(args)] = [a if a is not None else d for a, d in zip(args, full, strict=False)]
    with pytest.raises(RecoverscoreError, match=message):
        lp.overlap_table(*full)


def test_overlap_figure_is_labelled_for_people():
    segments, given, p = _segments_by_hand()
    overlap = lp.overlap_table(segments, given, p)
    fig = lp.overlap_figure(overlap, "en")
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == [
        "soft reminder",
        "mediation",
        "payment order",
        "litigation",
    ]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["0-30 day x", "1-3 year x"]
    assert sorted(t.get_text() for t in ax.texts) == sorted(["11", "1"] + ["0"] * 5 + ["10"])
    outlined = [p for p in ax.patches if isinstance(p, Rectangle) and not p.fill]
    assert len(outlined) == len(overlap.unsupported) == 6
    assert ax.get_xlabel() == "collection tier"
    with no_missing_glyphs():
        figure = lp.overlap_figure(overlap, "zh")
        figure.savefig(io.BytesIO(), format="png")
    zh = figure.axes[0]
    assert zh.get_xticklabels()[0].get_text() == "提醒催收（短信/语音）"
    assert zh.get_yticklabels()[0].get_text() == "0-30天·x"
    with pytest.raises(RecoverscoreError, match="unknown language"):
        lp.overlap_figure(overlap, "fr")


def test_a_missing_segment_value_is_a_segment_of_its_own():
    segments, given, p = _segments_by_hand()
    segments["debtor_type"] = ["individual"] * 6 + [None] * 16
    overlap = lp.overlap_table(segments, given, p, min_count=1)
    assert overlap.table.groupby(["aging_bucket", "debtor_type"], dropna=False).ngroups == 3
    assert "never given to 0-30 day missing debts" in overlap.message
    ax = lp.overlap_figure(overlap, "en").axes[0]
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels == ["0-30 day individual", "0-30 day missing", "1-3 year missing"]
    assert sorted(int(t.get_text()) for t in ax.texts if t.get_text() != "0") == [1, 5, 6, 10]
