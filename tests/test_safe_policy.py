"""The safe value policy: it never leaves today's tier for a tier the history does not support,
and where the history supports everything it is the value policy."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recoverscore.data.costs import load_costs
from recoverscore.data.facts import DebtFacts
from recoverscore.data.schemas import TIERS, probability_column
from recoverscore.errors import RecoverscoreError
from recoverscore.strategy.policy import Cases, decide, fall_back, load_policy_config

POLICY = load_policy_config()
COSTS = load_costs()
MIN = POLICY.safe.min_support


def _cases(frame: pd.DataFrame, p: np.ndarray, support: np.ndarray | None) -> Cases:
    probabilities = pd.DataFrame(
        p, columns=[probability_column(t) for t in TIERS], index=frame.index
    )
    logged = (
        None if support is None else pd.DataFrame(support, columns=list(TIERS), index=frame.index)
    )
    return Cases.build(DebtFacts.compute(frame, 3), probabilities, logged)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    seed=st.integers(0, 10_000),
    rows=st.integers(1, 60),
    sparsity=st.floats(0, 1),
)
def test_never_leaves_todays_tier_without_support(world, seed, rows, sparsity):
    rng = np.random.default_rng(seed)
    frame = world.sample(n=rows, random_state=seed)
    p = rng.uniform(0.01, 0.99, size=(rows, len(TIERS)))
    support = rng.dirichlet(np.ones(len(TIERS)), size=rows)
    support[rng.random(support.shape) < sparsity] = MIN / 3  # no support for these tiers
    cases = _cases(frame, p, support)
    safe = decide(cases, POLICY, COSTS, "safe", capacity={})
    value = decide(cases, POLICY, COSTS, "value", capacity={})
    lawful = decide(cases, POLICY, COSTS, "baseline")  # today's tier, guardrail fallbacks
    chosen = pd.Index(TIERS).get_indexer(safe["recommended_tier"])
    today = pd.Index(TIERS).get_indexer(lawful["recommended_tier"])
    supported = support[np.arange(rows), chosen] >= MIN
    assert ((chosen == today) | supported).all()
    # and it is the best-valued tier among today's and the supported allowed ones
    values = safe[[f"ev_{t}" for t in TIERS]].to_numpy()
    allowed = np.array([[f"{t}:" not in e.replace(f"{t}:LOW_SUPPORT", "") for t in TIERS]
                        for e in safe["excluded_tiers"]])  # fmt: skip
    candidates = allowed & ((support >= MIN) | (np.arange(len(TIERS)) == today[:, None]))
    best = np.where(candidates, values, -np.inf).max(axis=1)
    np.testing.assert_allclose(safe["expected_net_value"], best)
    # never better valued (by the model) than the unconstrained rule, which sees every tier
    assert (safe["expected_net_value"] <= value["expected_net_value"] + 1e-9).all()


def test_low_support_tiers_are_named_and_explained(world):
    frame = world.head(200)
    rng = np.random.default_rng(1)
    p = rng.uniform(0.05, 0.95, size=(len(frame), len(TIERS)))
    support = np.full((len(frame), len(TIERS)), MIN / 10)
    support[:, 0] = 0.97  # the history only ever sent soft reminders
    safe = decide(_cases(frame, p, support), POLICY, COSTS, "safe", capacity={})
    lawful_today = fall_back(np.zeros(len(frame), dtype=int), np.ones((len(frame), 4), bool))
    assert (safe["recommended_tier"] == np.asarray(TIERS)[lawful_today]).all()
    for tier in TIERS[1:]:  # every other tier is out: by law, or for want of support
        assert safe["excluded_tiers"].str.contains(f"{tier}:").all()
    assert safe["excluded_tiers"].str.contains("mediation:LOW_SUPPORT").any()
    value = decide(_cases(frame, p, support), POLICY, COSTS, "value", capacity={})
    differs = value["recommended_tier"] != "soft_reminder"
    assert differs.any()
    assert safe.loc[differs, "why"].str.contains(r"kept soft reminder: debts like this one").all()


def test_with_full_support_it_is_the_value_policy(world):
    frame = world.head(300)
    p = np.random.default_rng(2).uniform(0.05, 0.95, size=(len(frame), len(TIERS)))
    support = np.full((len(frame), len(TIERS)), 0.25)
    cases = _cases(frame, p, support)
    safe = decide(cases, POLICY, COSTS, "safe", capacity={})
    value = decide(cases, POLICY, COSTS, "value", capacity={})
    pd.testing.assert_series_equal(safe["recommended_tier"], value["recommended_tier"])
    assert not safe["excluded_tiers"].str.contains("LOW_SUPPORT").any()


def test_without_a_logging_policy_today_is_the_matrix_and_nothing_else(world):
    frame = world.head(300)
    p = np.random.default_rng(3).uniform(0.05, 0.95, size=(len(frame), len(TIERS)))
    cases = _cases(frame, p, None)
    safe = decide(cases, POLICY, COSTS, "safe", capacity={})
    matrix = decide(cases, POLICY, COSTS, "matrix")
    pd.testing.assert_series_equal(safe["recommended_tier"], matrix["recommended_tier"])


def test_baseline_needs_a_logging_policy_or_ages(world):
    frame = world.head(5).drop(columns=["due_date", "as_of"])
    p = np.full((5, len(TIERS)), 0.5)
    with pytest.raises(RecoverscoreError, match="baseline policy needs"):
        decide(_cases(frame, p, None), POLICY, COSTS, "baseline")
    safe = decide(_cases(frame, p, None), POLICY, COSTS, "safe")
    assert safe["why"].str.contains("no baseline known: valued choice").all()
