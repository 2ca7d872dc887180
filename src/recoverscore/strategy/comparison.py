"""Policies side by side, valued with the synthetic world's truth.

On synthetic data the true P(recover | row, tier) is known, so every policy's choices can be
priced with it: what each would really earn per 1,000 debtors, against the aging staircase it
replaces and against the oracle that chooses with the truth. Training prints this table and
logs it to MLflow; notebooks draw the tier mix.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from recoverscore.data.costs import CostConfig
from recoverscore.data.facts import AGING_BUCKETS, DebtFacts
from recoverscore.data.schemas import TIERS, probability_column, tier_codes, true_probability_column
from recoverscore.data.synthetic import legacy_tier, load_synthetic_config
from recoverscore.modelling.explain import check_language, load_reasons, tier_names
from recoverscore.modelling.model import RecoveryModel
from recoverscore.modelling.plotting import use_language
from recoverscore.strategy.logging_policy import LoggingPolicyModel
from recoverscore.strategy.policy import Cases, PolicyConfig, decide, economics

_MIX_WORDS = {
    "en": {"title": "Recommended tier by aging bucket", "share": "share of debts"},
    "zh": {"title": "各账龄段的推荐催收方式", "share": "债务占比"},
}


def true_probabilities(history: pd.DataFrame) -> pd.DataFrame:
    """The synthetic truth as ``p_<tier>`` columns, the shape the policy takes."""
    return history[[true_probability_column(t) for t in TIERS]].set_axis(
        [probability_column(t) for t in TIERS], axis=1
    )


def policy_comparison(
    history: pd.DataFrame,
    model: RecoveryModel,
    settings: PolicyConfig,
    costs: CostConfig,
    capacity: dict[str, int | None] | None = None,
    support: LoggingPolicyModel | None = None,
) -> tuple[pd.DataFrame, dict[str, pd.DataFrame]]:
    """Net recovery per 1,000 debtors of each policy, valued with the synthetic truth.

    The policies: the legacy aging staircase (no guardrails), the matrix policy (by default the
    lawful staircase: guardrails applied, removed tiers falling back), the safe value policy
    (with ``support``, the history's logging policy; without it, it keeps the matrix's tier),
    the unconstrained value policy, the value policy under ``capacity`` (default: half the
    litigation it wants), and the oracle, which chooses with the truth under the same
    guardrails. Also returns the decisions.
    """
    facts = model.features_.facts(history)
    true_cases = Cases.build(facts, true_probabilities(history))
    true_value = economics(true_cases, settings, costs).value
    features = model.features_.transform(history, facts)
    logged = None if support is None else support.predict(features)
    cases = Cases.build(facts, model.tier_probabilities(features=features), logged)
    stair = legacy_tier(facts.days_past_due, load_synthetic_config().legacy_policy)
    decisions = {
        "staircase": pd.DataFrame({"recommended_tier": stair}, index=history.index),
        "matrix": decide(cases, settings, costs, "matrix"),
        "safe": decide(cases, settings, costs, "safe", capacity={}),
        "value": decide(cases, settings, costs, "value", capacity={}),
    }
    if capacity is None:
        wanted = int((decisions["value"]["recommended_tier"] == "litigation").sum())
        capacity = {"litigation": wanted // 2}
    decisions["value_capacity"] = decide(cases, settings, costs, "value", capacity=capacity)
    decisions["oracle"] = decide(true_cases, settings, costs, "value", capacity={})
    rows = []
    for name, decision in decisions.items():
        codes = tier_codes(decision["recommended_tier"])
        net = true_value[np.arange(len(codes)), codes].mean() * 1000
        shares = np.bincount(codes, minlength=len(TIERS)) / len(codes)
        rows.append(
            {
                "policy": name,
                "net_per_1000_cny": net,
                **{f"share_{t}": s for t, s in zip(TIERS, shares, strict=True)},
            }
        )
    table = pd.DataFrame(rows).set_index("policy")
    table.insert(
        1, "vs_oracle", table["net_per_1000_cny"] / table.loc["oracle", "net_per_1000_cny"]
    )
    table.insert(
        2,
        "vs_staircase",
        table["net_per_1000_cny"] / table.loc["staircase", "net_per_1000_cny"] - 1,
    )
    table.attrs["capacity"] = capacity
    return table, decisions


def tier_mix(decision: pd.DataFrame, facts: DebtFacts) -> pd.DataFrame:
    """Share of each recommended tier within each aging bucket."""
    buckets = pd.Categorical(facts.bucket_labels(), categories=AGING_BUCKETS)
    tiers = pd.Categorical(decision["recommended_tier"], categories=TIERS)
    table = pd.crosstab(buckets, tiers, normalize="index", dropna=False, colnames=["tier"])
    return table.reindex(columns=list(TIERS), fill_value=0.0).rename_axis("aging_bucket")


def tier_mix_figure(mix: pd.DataFrame, title: str | None = None, language: str = "en") -> Figure:
    """Stacked bars: how the recommended tiers split within each aging bucket, tiers and buckets
    named as a collections team says them in ``language``."""
    words = _MIX_WORDS[check_language(language)]
    names = tier_names(language)
    buckets = getattr(load_reasons().features["aging_bucket"], language).levels
    fig = Figure(figsize=(8.5, 4.5))
    ax = fig.subplots()
    bottom = np.zeros(len(mix))
    labels = [buckets.get(str(b), str(b)) for b in mix.index]
    for tier in mix.columns:
        ax.bar(labels, mix[tier], bottom=bottom, label=names.get(tier, tier))
        bottom += mix[tier].to_numpy()
    ax.set(ylabel=words["share"], title=title or words["title"], ylim=(0, 1))
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)  # beside, not over, bars
    use_language(fig, language)
    fig.tight_layout()
    return fig
