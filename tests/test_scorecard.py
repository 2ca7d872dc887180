"""The WoE scorecard's own inference from JSON against optbinning's and scikit-learn's."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from optbinning import BinningProcess
from sklearn.linear_model import LogisticRegression

from recoverscore.data.synthetic import generate_frame
from recoverscore.modelling.features import DebtorFeatures
from recoverscore.modelling.scorecard import TIER_FEATURE, ScorecardModel, _categorical_text


@pytest.fixture(scope="module")
def history() -> pd.DataFrame:
    return generate_frame(3_000, seed=13, as_of="2026-06-30")


@pytest.fixture(scope="module")
def card(history) -> ScorecardModel:
    return ScorecardModel(DebtorFeatures(), "given_tier").fit(
        history, history["recovered"].to_numpy(int)
    )


def _design(card: ScorecardModel, frame: pd.DataFrame) -> pd.DataFrame:
    design = card.features_.transform(frame).assign(
        **{TIER_FEATURE: frame["given_tier"].to_numpy(dtype=object)}
    )
    for name in [*card.features_.categorical_features(), TIER_FEATURE]:
        design[name] = _categorical_text(design[name])
    return design


def test_woe_and_probabilities_equal_optbinning_and_scikit_learns(card, history):
    design = _design(card, history)
    categorical = [*card.features_.categorical_features(), TIER_FEATURE]
    binning = BinningProcess(list(design.columns), categorical_variables=categorical)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", module="optbinning")  # the reference's own pandas use
        binning.fit(design, history["recovered"].to_numpy(int))
        theirs = binning.transform(design, metric="woe", metric_missing="empirical")
    ours = card._woe(design)
    np.testing.assert_allclose(ours, theirs.to_numpy(dtype=float), atol=1e-12)
    regression = LogisticRegression(max_iter=1000).fit(theirs, history["recovered"])
    np.testing.assert_allclose(
        card.recovery_probability(history), regression.predict_proba(theirs)[:, 1], atol=1e-9
    )


def test_unseen_levels_count_as_neutral_and_missing_numbers_as_their_bin(card, history):
    rows = history.head(5).assign(region="atlantis", monthly_income=np.nan)
    design = _design(card, rows)
    woe = card._woe(design)
    region = card.feature_names_.index("region")
    income = card.feature_names_.index("log_income_to_principal")
    assert (woe[:, region] == 0.0).all()
    assert (woe[:, income] == card.bins_["log_income_to_principal"]["missing_woe"]).all()


def test_tiers_shift_every_debtor_by_the_same_points(card, history):
    features = card.features_.transform(history.head(50))
    gaps = card.raw_score(features, "litigation") - card.raw_score(features, "mediation")
    np.testing.assert_allclose(gaps, gaps[0], atol=1e-12)
