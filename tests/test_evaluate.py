"""Evaluation metrics against independent computations."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import ks_2samp

from recoverscore.data.schemas import TIERS
from recoverscore.modelling.evaluate import (
    binary_metrics,
    calibration_figure,
    expected_calibration_error,
    gains_figure,
    gains_table,
    given_tier_truth,
    importance_figure,
    ks_statistic,
    roc_figure,
)
from tests.conftest import no_missing_glyphs


def brute_force_auc(y: np.ndarray, p: np.ndarray) -> float:
    """Share of (recovered, unrecovered) pairs ranked correctly, ties counting half."""
    pos, neg = p[y == 1], p[y == 0]
    wins = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    return wins / (len(pos) * len(neg))


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.floats(0, 1)), min_size=4, max_size=60))
def test_auc_and_ks_match_independent_computations(pairs):
    y = np.array([int(a) for a, _ in pairs])
    p = np.array([b for _, b in pairs])
    if y.min() == y.max():
        return
    metrics = binary_metrics(y, p)
    assert metrics["auc"] == pytest.approx(brute_force_auc(y, p))
    assert ks_statistic(y, p) == pytest.approx(ks_2samp(p[y == 1], p[y == 0]).statistic)
    assert metrics["brier"] == pytest.approx(np.mean((p - y) ** 2))


def test_ece_is_zero_when_calibrated_and_matches_a_loop():
    rng = np.random.default_rng(0)
    p = rng.random(20_000)
    y = (rng.random(20_000) < p).astype(int)
    assert expected_calibration_error(y, p) < 0.01
    assert expected_calibration_error(y, np.clip(p + 0.2, 0, 1)) > 0.15
    order = np.argsort(p, kind="stable")
    expected = sum(len(b) * abs(y[b].mean() - p[b].mean()) for b in np.array_split(order, 10))
    assert expected_calibration_error(y, p) == pytest.approx(expected / len(p))


def test_gains_table_accounts_for_every_debt():
    rng = np.random.default_rng(1)
    p = rng.random(1_003)
    y = (rng.random(1_003) < p).astype(int)
    table = gains_table(y, p)
    assert table["debts"].sum() == 1_003 and table["recovered"].sum() == y.sum()
    assert table["cumulative_capture"].iloc[-1] == pytest.approx(1.0)
    assert (table["mean_score"].diff().dropna() <= 0).all()
    assert np.average(table["lift"], weights=table["debts"]) == pytest.approx(1.0)
    assert table["lift"].iloc[0] > 1.5  # an informative score concentrates recoveries


def test_given_tier_truth_picks_the_given_tiers_column(small_world):
    picked = given_tier_truth(small_world)
    for i in range(20):
        tier = small_world["given_tier"].iloc[i]
        assert picked[i] == small_world[f"p_true_{tier}"].iloc[i]
    assert set(small_world["given_tier"]) <= set(TIERS)


@pytest.mark.parametrize("language", ["en", "zh"])
def test_plots_render_to_png_in_both_languages(language):
    rng = np.random.default_rng(2)
    p = rng.random(400)
    y = (rng.random(400) < p).astype(int)
    card = np.clip(p + rng.normal(0, 0.3, 400), 0, 1)
    scores = {"model": p, "scorecard": card}
    gains = {"model": gains_table(y, p), "scorecard": gains_table(y, card)}
    importance = pd.DataFrame({"feature": ["days_past_due", "tier"], "importance": [3.0, 1.0]})
    with no_missing_glyphs():
        figures = [
            calibration_figure(y, scores, language=language),
            roc_figure(y, scores, language=language),
            gains_figure(gains, language=language),
            importance_figure(importance, language=language),
        ]
        for figure in figures:
            buffer = io.BytesIO()
            figure.savefig(buffer, format="png")
            assert buffer.getvalue()[:4] == b"\x89PNG"
    for figure in figures[:3]:
        assert figure.axes[0].get_legend() is not None and figure.axes[0].get_title()
    legend = [t.get_text() for t in figures[2].axes[0].get_legend().get_texts()]
    names = {"en": ["model", "scorecard"], "zh": ["模型", "评分卡"]}[language]
    assert legend[:2] == names  # the gains chart has the scorecard beside the model
    curves = [line.get_ydata() for line in figures[2].axes[0].get_lines()[:2]]
    np.testing.assert_allclose(curves[1][1:], gains["scorecard"]["cumulative_capture"])
    bars = [t.get_text() for t in figures[3].axes[0].get_yticklabels()]
    assert (
        bars
        == {"en": ["collection tier", "days past due"], "zh": ["催收方式", "逾期天数"]}[language]
    )
