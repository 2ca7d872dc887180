"""Drift monitoring: bins that see flags, levels and categories; PSI and the proportions test."""

from __future__ import annotations

import io
import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from recoverscore.data.facts import AGING_BUCKETS
from recoverscore.data.schemas import TIERS
from recoverscore.modelling.features import DebtorFeatures
from recoverscore.scoring import drift
from tests.conftest import no_missing_glyphs


@pytest.fixture(scope="module")
def data(world) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Model features of the world and its true probabilities standing in for the scores."""
    features = DebtorFeatures().fit(world).transform(world)
    scores = pd.DataFrame(
        {f"p_{t}": world[f"p_true_{t}"].to_numpy() for t in TIERS}, index=world.index
    )
    return features, scores


@pytest.fixture(scope="module")
def ref(data) -> dict:
    return drift.reference(*data)


def run(ref: dict, features: pd.DataFrame, scores: pd.DataFrame) -> pd.DataFrame:
    return drift.DriftCounter(ref).add(features, scores).report().set_index("column")


def test_bins_follow_what_the_column_is(ref):
    spec = ref["features"]
    for flag in ("time_barred", "is_elderly", "disaster_affected", "on_dishonest_list"):
        assert spec[flag]["kind"] == "levels" and spec[flag]["levels"] == [0.0, 1.0]
        assert len(spec[flag]["expected"]) == 4  # no, yes, unseen, missing
    assert spec["aging_bucket"]["levels"] == [float(i) for i in range(len(AGING_BUCKETS))]
    assert spec["contact_status"]["kind"] == "categorical"
    assert spec["contact_status"]["levels"] == ["reachable", "intermittent", "lost"]
    assert len(spec["contact_status"]["expected"]) == 5
    assert spec["days_past_due"]["kind"] == "numeric"
    assert len(spec["days_past_due"]["edges"]) == drift.N_BINS - 1
    assert len(spec["days_past_due"]["expected"]) == drift.N_BINS + 1
    # the reference shares are the data's, level by level
    barred = ref["features"]["time_barred"]
    assert barred["rows"] > 0 and 0 < barred["expected"][1] < 0.5


def test_level_columns_up_to_max_levels_and_continuous_beyond():
    assert drift.profile(pd.Series(np.arange(12.0)))["kind"] == "levels"
    assert drift.profile(pd.Series(np.arange(13.0)))["kind"] == "numeric"
    spec = drift.profile(pd.Series([0.0, 1.0, 1.0, 0.0, np.nan]))
    assert spec["levels"] == [0.0, 1.0] and spec["rows"] == 5
    np.testing.assert_allclose(spec["expected"], [0.4, 0.4, 0.0, 0.2])
    text = drift.profile(pd.Series(["b", "a", None, "a"], dtype=object))
    assert text["kind"] == "categorical" and text["levels"] == ["a", "b"]
    np.testing.assert_allclose(text["expected"], [0.5, 0.25, 0.0, 0.25])


def test_missing_values_and_unseen_levels_get_their_own_bins(ref, world):
    # pays_tax is missing exactly for individuals
    pays_tax = ref["features"]["pays_tax"]
    individuals = (world["debtor_type"] == "individual").mean()
    assert pays_tax["expected"][-1] == pytest.approx(individuals)
    assert pays_tax["expected"][-2] == 0.0  # no unseen level in the reference itself
    flags = drift.bin_counts(ref["features"]["time_barred"], np.array([0, 1, 1, 2, np.nan]))
    assert flags.tolist() == [1, 2, 1, 1]
    contact = ref["features"]["contact_status"]
    counts = drift.bin_counts(contact, pd.Series(["lost", "gone", None, "lost", "reachable"]))
    assert counts.tolist() == [1, 0, 2, 1, 1]


def test_a_batch_of_time_barred_debts_is_flagged(ref, data):
    features, scores = data
    barred = features["time_barred"] == 1
    report = run(ref, features[barred], scores[barred])
    for column in ("time_barred", "aging_bucket"):
        assert report.loc[column, "status"] == "drift"
        assert report.loc[column, "psi"] > 5  # every debt in one level the reference gives ~10%
        assert report.loc[column, "p_value"] < 1e-12
    assert report.loc["debtor_type", "psi"] < drift.MODERATE_PSI  # who owes has not moved


def test_the_reference_data_itself_is_stable_on_every_column(ref, data):
    report = run(ref, *data)
    assert (report["status"] == "stable").all()
    np.testing.assert_allclose(report["psi"], 0.0, atol=1e-12)
    np.testing.assert_allclose(report["p_value"], 1.0)
    half = data[0].sample(frac=0.5, random_state=1).index
    sampled = run(ref, data[0].loc[half], data[1].loc[half])
    assert sampled["psi"].max() < drift.MODERATE_PSI
    assert drift.summary(sampled.reset_index())["n_drifted"] == 0


def test_merging_counts_of_two_batches_equals_counting_them_together(ref, data):
    features, scores = data
    first, second = features.index[:25_000], features.index[25_000:]
    worker = drift.DriftCounter(ref).add(features.loc[second], scores.loc[second])
    merged = drift.DriftCounter(ref).add(features.loc[first], scores.loc[first])
    merged.add_json(json.loads(json.dumps(worker.to_json())))
    together = drift.DriftCounter(ref).add(features, scores)
    assert merged.to_json() == together.to_json()
    assert json.loads(json.dumps(ref)) == ref  # the profile is plain JSON


def test_proportions_test_agrees_with_a_hand_computation(ref, data):
    features, scores = data
    batch = features[features["contact_status"] == "lost"]
    report = run(ref, batch, scores.loc[batch.index])
    # a binary flag: the two-proportion z-test, squared
    x1, n1 = (features["time_barred"] == 1).sum(), len(features)
    x2, n2 = (batch["time_barred"] == 1).sum(), len(batch)
    pooled = (x1 + x2) / (n1 + n2)
    z = (x1 / n1 - x2 / n2) / np.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    assert report.loc["time_barred", "chi2"] == pytest.approx(z**2)
    assert report.loc["time_barred", "p_value"] == pytest.approx(2 * stats.norm.sf(abs(z)))
    # a categorical column: Pearson's statistic on the 2 x levels table built from the data
    table = np.array(
        [
            features["amount_band"].value_counts(sort=False).to_numpy(),
            batch["amount_band"].value_counts(sort=False).to_numpy(),
        ],
        dtype=float,
    )
    table = table[:, table.sum(axis=0) > 0]
    expected = np.outer(table.sum(axis=1), table.sum(axis=0)) / table.sum()
    statistic = ((table - expected) ** 2 / expected).sum()
    dof = table.shape[1] - 1
    assert report.loc["amount_band", "chi2"] == pytest.approx(statistic)
    assert report.loc["amount_band", "p_value"] == pytest.approx(stats.chi2.sf(statistic, dof))


def test_summary_and_chart_show_what_moved(ref, data):
    features, scores = data
    barred = features["time_barred"] == 1
    report = drift.DriftCounter(ref).add(features[barred], scores[barred]).report()
    overview = drift.summary(report, top=3)
    drifted = report[report["psi"] > drift.WARN_PSI].sort_values("psi", ascending=False)
    assert overview["psi_max"] == pytest.approx(report["psi"].max())
    assert overview["n_drifted"] == len(drifted)
    assert overview["top_drifted"] == drifted["column"].head(3).tolist()
    figure = drift.psi_figure(report)
    ax = figure.axes[0]
    shown = [t.get_text() for t in ax.get_yticklabels()]
    moved = report[report["psi"] > drift.MODERATE_PSI]
    assert len(shown) == len(moved)
    assert "time-barred" in shown and "P(recover) if litigation" in shown
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert any(text.startswith("0.1:") for text in legend)
    assert any(text.startswith("0.25:") for text in legend)
    calm = drift.psi_figure(drift.DriftCounter(ref).add(*data).report())
    assert len(calm.axes[0].get_yticklabels()) == drift.TOP
    with no_missing_glyphs():
        chinese = drift.psi_figure(report, language="zh")
        chinese.savefig(io.BytesIO(), format="png")
    shown = [t.get_text() for t in chinese.axes[0].get_yticklabels()]
    assert "已过诉讼时效" in shown and "若采用诉讼的回款概率" in shown


def test_headline_names_the_drifted_columns_or_says_none_moved(ref, data):
    features, scores = data
    barred = features["time_barred"] == 1
    report = drift.DriftCounter(ref).add(features[barred], scores[barred]).report()
    drifted = report[report["psi"] > drift.WARN_PSI]
    line = drift.headline(report, top=2)
    first, second = drifted.iloc[0], drifted.iloc[1]
    assert line == (
        f"{len(drifted)} of {len(report)} columns drifted (PSI > 0.25): "
        f"{first['column']} {first['psi']:.2f}, {second['column']} {second['psi']:.2f} "
        f"and {len(drifted) - 2} more"
    )
    calm = drift.DriftCounter(ref).add(*data).report()
    assert drift.headline(calm) == (
        f"no column of {len(calm)} drifted (PSI > 0.25), 0 moderate; largest PSI 0.000"
    )
