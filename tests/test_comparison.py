"""The tier mix by aging bucket, counted and drawn for people in English and Chinese."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest

from recoverscore.data.facts import AGING_BUCKETS
from recoverscore.modelling.features import DebtorFeatures
from recoverscore.strategy import comparison
from tests.conftest import no_missing_glyphs


@pytest.fixture(scope="module")
def mix(world) -> pd.DataFrame:
    rows = world.head(2_000)
    facts = DebtorFeatures().fit(rows).facts(rows)
    decision = pd.DataFrame({"recommended_tier": rows["given_tier"]}, index=rows.index)
    return comparison.tier_mix(decision, facts)


def test_tier_mix_is_each_buckets_share_of_each_tier(world, mix):
    rows = world.head(2_000)
    buckets = DebtorFeatures().fit(rows).facts(rows).bucket_labels()
    by_hand = pd.crosstab(buckets, rows["given_tier"].to_numpy(), normalize="index")
    assert list(mix.index) == list(AGING_BUCKETS)
    np.testing.assert_allclose(mix.sum(axis=1), 1.0)
    for bucket in by_hand.index:
        for tier in by_hand.columns:
            assert mix.loc[bucket, tier] == pytest.approx(by_hand.loc[bucket, tier])


@pytest.mark.parametrize(
    ("language", "tiers", "bucket"),
    [
        ("en", ["soft reminder", "mediation", "payment order", "litigation"], "1-3 year"),
        ("zh", ["提醒催收（短信/语音）", "调解", "支付令", "诉讼"], "1-3年"),
    ],
)
def test_tier_mix_figure_names_tiers_and_buckets_as_people_do(mix, language, tiers, bucket):
    with no_missing_glyphs():
        figure = comparison.tier_mix_figure(mix, language=language)
        figure.savefig(io.BytesIO(), format="png")
    ax = figure.axes[0]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == tiers
    assert bucket in [t.get_text() for t in ax.get_xticklabels()]
    assert ax.get_title()
