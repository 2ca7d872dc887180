"""`recoverscore.score`: a raw portfolio and a model in, the scored-output contract out."""

from __future__ import annotations

import numpy as np
import pytest

from recoverscore import score
from recoverscore.data.schemas import TIERS, Portfolio, Scored, probability_column, validate
from recoverscore.data.synthetic import generate_frame
from recoverscore.errors import RecoverscoreError
from recoverscore.modelling.model import RecoveryModel, load_train_config


@pytest.fixture(scope="module")
def model():
    history = generate_frame(4_000, seed=3, as_of="2026-06-30")
    cfg = load_train_config()
    return RecoveryModel(cfg.features.transformer(), "given_tier", cfg.model).fit(
        history, history["recovered"].to_numpy(int)
    )


@pytest.fixture(scope="module")
def portfolio():
    frame = generate_frame(600, seed=4, as_of="2026-06-30")
    return frame[list(Portfolio.to_schema().columns)]


def test_every_debtor_gets_an_allowed_tier_with_reasons(model, portfolio):
    scored = score(portfolio, model)
    assert validate(scored, Scored).is_valid
    assert scored["debtor_id"].tolist() == portfolio["debtor_id"].tolist()
    for tier, excluded in zip(scored["recommended_tier"], scored["excluded_tiers"], strict=True):
        assert f"{tier}:" not in excluded
    assert scored["top_reasons"].str.len().gt(0).all()
    assert scored["model_version"].str.startswith("sha:").all()
    np.testing.assert_allclose(
        scored[[probability_column(t) for t in TIERS]].to_numpy(),
        model.tier_matrix(portfolio).to_numpy(),
    )
    best = scored[[f"ev_{t}" for t in TIERS]].to_numpy()
    allowed = np.array([[f"{t}:" not in e for t in TIERS] for e in scored["excluded_tiers"]])
    np.testing.assert_allclose(
        scored["expected_net_value"], np.where(allowed, best, -np.inf).max(axis=1)
    )


def test_matrix_rule_chinese_reasons_and_a_later_as_of(model, portfolio):
    scored = score(
        portfolio.head(100),
        model,
        as_of="2027-06-30",
        rule="matrix",
        language="zh",
        model_version="7",
    )
    assert (scored["as_of"] == "2027-06-30").all() and (scored["model_version"] == "7").all()
    assert scored["top_reasons"].str.contains(r"[\u4e00-\u9fff]").all()
    older = score(portfolio.head(100), model)
    assert (scored["p_soft_reminder"] <= older["p_soft_reminder"] + 1e-12).all()


def test_invalid_rows_are_a_clear_error(model, portfolio):
    bad = portfolio.head(10).copy()
    bad.loc[bad.index[2], "principal"] = -5.0
    with pytest.raises(RecoverscoreError, match=r"1 of 10 rows break the portfolio contract"):
        score(bad, model)
