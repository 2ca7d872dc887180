"""The feature transformer: scikit-learn's contract, independent checks, no truth leakage."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.utils.estimator_checks import (
    check_get_params_invariance,
    check_no_attributes_set_in_init,
    check_parameters_default_constructible,
    check_set_params,
)

from recoverscore.data.facts import AGING_BUCKETS, DebtFacts
from recoverscore.data.schemas import TIERS, true_probability_column
from recoverscore.errors import RecoverscoreError
from recoverscore.modelling import features as features_module
from recoverscore.modelling.features import DebtorFeatures

GROUND_TRUTH = [true_probability_column(t) for t in TIERS] + [
    "recovered",
    "amount_recovered",
    "costs",
    "given_tier",
    "propensity",
]


@pytest.mark.parametrize(
    "check",
    [check_no_attributes_set_in_init, check_get_params_invariance, check_set_params],
)
def test_scikit_learn_estimator_contract(check):
    check("DebtorFeatures", DebtorFeatures(disabled=("region",), extra_numeric=("x",)))


def test_default_constructible():
    check_parameters_default_constructible("DebtorFeatures", DebtorFeatures())


def test_fit_returns_self_and_names_match_columns(small_world):
    transformer = DebtorFeatures()
    assert transformer.fit(small_world) is transformer
    out = transformer.transform(small_world)
    assert list(out.columns) == list(transformer.get_feature_names_out())
    assert out.index.equals(small_world.index)
    categorical = set(transformer.categorical_features())
    for name in out.columns:
        expected = "category" if name in categorical else "float64"
        assert str(out[name].dtype) == expected, name
    assert list(transformer.feature_names_in_) == transformer.required_columns()
    fitted_clone = clone(transformer).fit(small_world).transform(small_world)
    pd.testing.assert_frame_equal(fitted_clone, out)
    assert transformer.set_output(transform="pandas").transform(small_world).equals(out)


def test_ground_truth_never_reaches_the_features(world):
    rows = world.head(2_000)
    transformer = DebtorFeatures().fit(rows)
    out = transformer.transform(rows)
    assert not set(out.columns) & set(GROUND_TRUTH)
    assert not any(c.startswith("p_true") for c in transformer.required_columns())
    scrambled = rows.copy()
    rng = np.random.default_rng(0)
    for column in GROUND_TRUTH:
        scrambled[column] = rng.permutation(scrambled[column].to_numpy())
    pd.testing.assert_frame_equal(transformer.transform(scrambled), out)
    pd.testing.assert_frame_equal(transformer.transform(rows.drop(columns=GROUND_TRUTH)), out)


def _debt(due: str, ack: str | None = None, paid: str | None = None, **extra) -> dict:
    return {
        "due_date": pd.Timestamp(due),
        "last_acknowledgment_date": pd.Timestamp(ack) if ack else pd.NaT,
        "last_payment_date": pd.Timestamp(paid) if paid else pd.NaT,
        **extra,
    }


def test_age_limitation_and_buckets_against_hand_computed_values(small_world):
    as_of = "2026-06-30"
    rows = pd.DataFrame(
        [
            _debt("2026-06-30"),  # due today: 0 days
            _debt("2026-05-31"),  # 30 days: last day of 0-30
            _debt("2026-05-30"),  # 31 days
            _debt("2025-06-30"),  # 365 days
            _debt("2025-06-29"),  # 366 days: 1-3y
            _debt("2023-06-30"),  # limitation ends 2026-06-30: not yet barred
            _debt("2023-06-29"),  # ended 2026-06-29: barred
            _debt("2020-01-01", ack="2025-01-01"),  # old but acknowledged: alive
            _debt("2023-02-28", paid="2024-03-01", ack="2024-03-01"),  # payment restarted it
        ]
    )
    template = (
        small_world.drop(columns=["due_date", "last_acknowledgment_date", "last_payment_date"])
        .head(len(rows))
        .reset_index(drop=True)
    )
    frame = pd.concat([template, rows], axis=1)
    out = DebtorFeatures(as_of=as_of).fit(frame).transform(frame)
    assert out["days_past_due"].tolist() == [0, 30, 31, 365, 366, 1096, 1097, 2372, 1218]
    assert out["time_barred"].tolist() == [0, 0, 0, 0, 0, 0, 1, 0, 0]
    names = [AGING_BUCKETS[int(c)] for c in out["aging_bucket"]]
    assert names == [
        "0-30",
        "0-30",
        "31-90",
        "181-365",
        "1-3y",
        "1-3y",
        "time_barred",
        "1-3y",
        "1-3y",
    ]
    assert out["days_left_in_limitation"].tolist()[5:] == [0, -1, 550, 244]
    assert np.isnan(out["days_since_last_payment"].iloc[0])
    assert out["days_since_last_payment"].iloc[8] == 851


def test_assets_income_and_categories(small_world):
    out = DebtorFeatures().fit(small_world).transform(small_world)
    flags = small_world[["owns_real_estate", "owns_vehicle", "has_equity_holdings"]]
    np.testing.assert_array_equal(out["n_assets"], flags.sum(axis=1))
    np.testing.assert_array_equal(out["has_attachable_asset"], flags.any(axis=1))
    individual = small_world["debtor_type"] == "individual"
    expected = np.log(
        12
        * small_world.loc[individual, "monthly_income"].clip(lower=1 / 12)
        / small_world.loc[individual, "principal"]
    )
    np.testing.assert_allclose(out.loc[individual, "log_income_to_principal"], expected)
    assert out.loc[~individual, "log_income_to_principal"].isna().all()
    assert str(out["region"].dtype) == "category"


def test_unseen_category_becomes_missing(small_world):
    transformer = DebtorFeatures().fit(small_world)
    other = small_world.head(3).assign(region="atlantis")
    assert transformer.transform(other)["region"].isna().all()


def test_users_own_columns_and_switched_off_features(small_world):
    own = small_world.drop(columns=["monthly_income", "annual_revenue", "pays_tax"]).assign(
        bureau_score=np.linspace(300, 850, len(small_world)),
        channel=np.where(np.arange(len(small_world)) % 2 == 0, "bank", "telecom"),
    )
    with pytest.raises(RecoverscoreError, match=r"lacks column\(s\) \['annual_revenue'"):
        DebtorFeatures().fit(own)
    transformer = DebtorFeatures(
        disabled=("log_income_to_principal", "log_revenue_to_principal", "pays_tax"),
        extra_numeric=("bureau_score",),
        extra_categorical=("channel",),
    ).fit(own)
    out = transformer.transform(own)
    assert {"bureau_score", "channel"} <= set(out.columns)
    assert "pays_tax" not in out.columns and "channel" in transformer.categorical_features()
    np.testing.assert_allclose(out["bureau_score"], own["bureau_score"])


def test_unknown_disabled_feature_is_named():
    with pytest.raises(RecoverscoreError, match=r"features\.disabled names unknown.*'charm'"):
        DebtorFeatures(disabled=("charm",)).required_columns()


def test_numpy_input_is_a_clear_error(small_world):
    transformer = DebtorFeatures().fit(small_world)
    with pytest.raises(RecoverscoreError, match=r"needs a pandas DataFrame.*ndarray"):
        transformer.transform(small_world.to_numpy())
    with pytest.raises(RecoverscoreError, match="needs a pandas DataFrame"):
        DebtorFeatures().fit(small_world.to_numpy())


def test_as_of_is_needed_only_by_date_features(small_world):
    undated = small_world.drop(columns="as_of")
    with pytest.raises(RecoverscoreError, match=r"'as_of'.*date features \['days_past_due'"):
        DebtorFeatures().fit(undated)
    dated = ("days_past_due", "aging_bucket", "time_barred", "days_left_in_limitation")
    transformer = DebtorFeatures(disabled=(*dated, "days_since_last_payment"))
    assert "as_of" not in transformer.required_columns()
    out = transformer.fit(undated).transform(undated)
    assert not set(dated) & set(out.columns)


def test_facts_handed_in_give_the_same_features(small_world):
    transformer = DebtorFeatures().fit(small_world)
    facts = DebtFacts.compute(small_world, transformer.limitation_years)
    pd.testing.assert_frame_equal(
        transformer.transform(small_world, facts), transformer.transform(small_world)
    )


def test_numeric_coded_own_categories_keep_their_levels(small_world):
    own = small_world.assign(grade=np.arange(len(small_world)) % 3)
    transformer = DebtorFeatures(extra_categorical=("grade",)).fit(own)
    out = transformer.transform(own)
    assert transformer.categories_["grade"] == ["0", "1", "2"]
    assert out["grade"].notna().all()
    assert (out["grade"].astype(str) == (own["grade"] % 3).astype(str)).all()


def test_a_few_rows_get_the_features_a_large_batch_gives_them(small_world):
    """Levels of a few rows are looked up in a dict, of many in the categories' index: the same
    codes, unseen and missing levels included."""
    own = small_world.assign(grade=np.arange(len(small_world)) % 3)
    transformer = DebtorFeatures(extra_categorical=("grade",)).fit(own)
    rows = own.head(300).copy()
    rows.iloc[::7, rows.columns.get_loc("region")] = "atlantis"
    rows.iloc[::11, rows.columns.get_loc("industry")] = None
    rows.iloc[::13, rows.columns.get_loc("grade")] = 7
    whole = transformer.transform(rows)
    assert len(rows) > features_module.LOOKUP_ROWS
    pieces = pd.concat([transformer.transform(rows.iloc[i : i + 5]) for i in range(0, 300, 5)])
    pd.testing.assert_frame_equal(pieces, whole)
    assert whole["region"].isna().sum() == len(range(0, 300, 7))
