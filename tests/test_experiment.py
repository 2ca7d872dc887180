"""Strategy experiments at scoring: stable hashed cells, lawful exploration, design propensities."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recoverscore.config import parse_config
from recoverscore.data.schemas import TIERS, Portfolio, Scored
from recoverscore.data.synthetic import generate_frame
from recoverscore.data.validation import validate
from recoverscore.errors import RecoverscoreError
from recoverscore.scoring.package import ModelPackage
from recoverscore.scoring.pipeline import Scorer, ScoringOptions
from recoverscore.strategy.experiment import (
    Experiment,
    assign_cells,
    design_propensity,
    explore_tiers,
)
from recoverscore.strategy.policy import PolicyConfig

DESIGN = Experiment.model_validate(
    {
        "name": "q4-2026",
        "cells": [
            {"name": "value", "share": 0.1, "policy": "value"},
            {"name": "explore", "share": 0.05, "explore": True},
        ],
    }
)


@pytest.fixture(scope="module")
def package(model_dir) -> ModelPackage:
    return ModelPackage.load(model_dir).with_experiment(DESIGN)


@pytest.fixture(scope="module")
def portfolio() -> pd.DataFrame:
    return generate_frame(3_000, seed=31, as_of="2026-06-30")[list(Portfolio.to_schema().columns)]


@settings(max_examples=10, deadline=None)
@given(name=st.text(min_size=1, max_size=20))
def test_cell_shares_follow_the_design_and_a_debtor_keeps_its_cell(name):
    ids = pd.Series([f"D{i:07d}" for i in range(100_000)])
    design = DESIGN.model_copy(update={"name": name})
    cells = assign_cells(ids, design)
    shares = np.bincount(cells, minlength=3) / len(ids)
    np.testing.assert_allclose(shares, design.shares, atol=0.01)
    shuffled = ids.sample(frac=1, random_state=1)
    np.testing.assert_array_equal(assign_cells(shuffled, design), cells[shuffled.index])
    padded = assign_cells(" " + ids.head(1_000) + " ", design)
    np.testing.assert_array_equal(padded, cells[:1_000])  # ids compared as validation strips them


def test_another_experiment_name_reshuffles():
    ids = pd.Series([f"D{i}" for i in range(20_000)])
    first = assign_cells(ids, DESIGN)
    second = assign_cells(ids, DESIGN.model_copy(update={"name": "q1-2027"}))
    together = pd.crosstab(first, second, normalize=True).to_numpy()
    expected = np.outer(DESIGN.shares, DESIGN.shares)
    np.testing.assert_allclose(together, expected, atol=0.01)  # independent draws


def test_exploration_draws_uniformly_among_the_allowed_tiers():
    ids = pd.Series([f"D{i}" for i in range(40_000)])
    allowed = np.zeros((len(ids), len(TIERS)), dtype=bool)
    allowed[:, [0, 2, 3]] = True
    allowed[::2, 3] = False  # half the debts may not be sued
    tiers = explore_tiers(ids, DESIGN.name, allowed)
    assert allowed[np.arange(len(ids)), tiers].all()
    odd = np.bincount(tiers[1::2], minlength=4) / (len(ids) / 2)
    even = np.bincount(tiers[::2], minlength=4) / (len(ids) / 2)
    np.testing.assert_allclose(odd, [1 / 3, 0, 1 / 3, 1 / 3], atol=0.015)
    np.testing.assert_allclose(even, [1 / 2, 0, 1 / 2, 0], atol=0.015)


def test_design_propensity_by_hand():
    # champion 0.85 chose tier 0 for debt a, tier 2 for debt b; the value cell (0.10) chose
    # tier 2 for both; exploration (0.05) draws among 2 allowed tiers for a, 4 for b
    assigned = np.array([2, 2])
    choices = [np.array([0, 2]), np.array([2, 2]), None]
    allowed = np.array([[True, False, True, False], [True, True, True, True]])
    p = design_propensity(assigned, choices, np.array([0.85, 0.10, 0.05]), allowed)
    np.testing.assert_allclose(p, [0.10 + 0.05 / 2, 0.85 + 0.10 + 0.05 / 4])


@pytest.mark.parametrize(
    ("cells", "message"),
    [
        (
            [
                {"name": "a", "share": 0.6, "policy": "value"},
                {"name": "b", "share": 0.4, "explore": True},
            ],
            "less than 1",
        ),
        ([{"name": "champion", "share": 0.1, "policy": "value"}], "everyone else"),
        ([{"name": "a", "share": 0.1}], "give a policy, a model or explore"),
        ([{"name": "a", "share": 0.1, "explore": True, "policy": "value"}], "takes no policy"),
        ([{"name": "a", "share": 0.1, "policy": "hunch"}], "unknown policy 'hunch'"),
    ],
)
def test_bad_designs_are_refused_naming_the_key(model_dir, cells, message):
    settings_ = ModelPackage.load(model_dir).policy.model_dump()
    with pytest.raises(RecoverscoreError, match=message):
        parse_config({**settings_, "experiment": {"name": "x", "cells": cells}}, PolicyConfig)


def test_scoring_with_cells(package, portfolio, model_dir):
    plain = (
        Scorer(ModelPackage.load(model_dir), ScoringOptions(explain=False))
        .score_batch(portfolio)
        .scored
    )
    result = Scorer(package, ScoringOptions(explain=False)).score_batch(portfolio)
    scored = result.scored
    assert validate(scored, Scored).is_valid
    assert (scored["champion_tier"] == plain["recommended_tier"]).all()
    cells = scored["cell"]
    assert set(cells) == {"champion", "value", "explore"}
    champion = cells == "champion"
    pd.testing.assert_series_equal(
        scored.loc[champion, "recommended_tier"], plain.loc[champion, "recommended_tier"]
    )
    # the value cell gets what the value policy gives, exploration stays lawful
    valued = Scorer(ModelPackage.load(model_dir), ScoringOptions(policy="value", explain=False))
    value = valued.score_batch(portfolio).scored
    in_value = cells == "value"
    pd.testing.assert_series_equal(
        scored.loc[in_value, "recommended_tier"], value.loc[in_value, "recommended_tier"]
    )
    explored = scored[cells == "explore"]
    for tier, excluded in zip(
        explored["recommended_tier"], explored["excluded_tiers"], strict=True
    ):
        legal = ";".join(e for e in excluded.split(";") if not e.endswith("LOW_SUPPORT"))
        assert f"{tier}:" not in legal
    assert explored["why"].str.startswith("experiment q4-2026, cell explore:").all()
    # every cell's contact plan follows the tier it got (issue 14: the plan is part of the output)
    np.testing.assert_array_equal(
        scored["contact_plan"].notna(), scored["recommended_tier"] == "soft_reminder"
    )
    # the design propensity from the cells' choices, computed here independently
    same_champion = scored["recommended_tier"] == plain["recommended_tier"]
    same_value = scored["recommended_tier"] == value["recommended_tier"]
    excluded = scored["excluded_tiers"].fillna("")
    lawful = np.array(
        [
            [
                f"{t}:" not in ";".join(e for e in x.split(";") if not e.endswith("LOW_SUPPORT"))
                for t in TIERS
            ]
            for x in excluded
        ]
    )
    explore_part = 0.05 / lawful.sum(axis=1)
    expected = 0.85 * same_champion + 0.10 * same_value + explore_part
    np.testing.assert_allclose(scored["assignment_propensity"], expected)
    again = Scorer(package, ScoringOptions(explain=False)).score_batch(portfolio).scored
    pd.testing.assert_frame_equal(again, scored)
    assert (scored["overrides"].str.startswith("policy sha:")).all()


def test_capacity_holds_across_cells(package, portfolio):
    options = ScoringOptions(explain=False, capacity={"litigation": 40})
    scored = Scorer(package, options).score_batch(portfolio).scored
    assert (scored["recommended_tier"] == "litigation").sum() <= 40
    explored = scored[scored["cell"] == "explore"]
    assert not (explored["recommended_tier"] == "litigation").any()  # capped: not explored


def test_a_model_cell_needs_its_package(model_dir):
    design = Experiment.model_validate(
        {"name": "m", "cells": [{"name": "v2", "share": 0.1, "model": "challenger"}]}
    )
    package = ModelPackage.load(model_dir).with_experiment(design)
    with pytest.raises(RecoverscoreError, match="need packages for \\['challenger'\\]"):
        Scorer(package)
    scorer = Scorer(package, ScoringOptions(explain=False), challengers={"challenger": package})
    scored = scorer.score_batch(generate_frame(500, seed=3, as_of="2026-06-30")).scored
    assert set(scored["cell"]) == {"champion", "v2"}
