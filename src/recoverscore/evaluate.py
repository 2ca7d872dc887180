"""Measuring recovery data and, against the synthetic truth, how close anything gets to the best.

The Bayes limit is the AUC of the true probability of the tier each debt was given against what
happened: no model of the portfolio row can rank recoveries better than the truth itself.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from recoverscore.features import AGING_BUCKETS, aging_bucket, days_past_due, is_time_barred
from recoverscore.schemas import TIERS, true_probability_column


def given_tier_truth(history: pd.DataFrame) -> np.ndarray:
    """True P(recover) under the tier each debt was actually given."""
    truth = history[[true_probability_column(t) for t in TIERS]].to_numpy()
    codes = pd.Categorical(history["given_tier"], categories=TIERS).codes
    return truth[np.arange(len(history)), codes]


def bayes_limit_auc(history: pd.DataFrame) -> float:
    """AUC of the truth of the given tier against the realised outcome."""
    return float(roc_auc_score(history["recovered"], given_tier_truth(history)))


def history_buckets(history: pd.DataFrame, limitation_years: int = 3) -> pd.Categorical:
    """Aging bucket of each debt as of its decision date."""
    days = days_past_due(history["due_date"], history["as_of"])
    barred = is_time_barred(
        history["due_date"],
        history["last_acknowledgment_date"],
        history["as_of"],
        limitation_years,
    )
    return pd.Categorical(aging_bucket(days, barred), categories=AGING_BUCKETS)


def _recovery_table(history: pd.DataFrame, by: pd.Series | pd.Categorical) -> pd.DataFrame:
    grouped = history.assign(_net=history["amount_recovered"] - history["costs"]).groupby(
        by, observed=False
    )
    table = pd.DataFrame(
        {
            "debts": grouped.size(),
            "recovery_rate": grouped["recovered"].mean(),
            "recovered_cny": grouped["amount_recovered"].sum(),
            "costs_cny": grouped["costs"].sum(),
            "net_per_debt_cny": grouped["_net"].mean(),
        }
    )
    table.insert(1, "share", table["debts"] / len(history))
    return table


def history_summary(history: pd.DataFrame, limitation_years: int = 3) -> dict[str, object]:
    """Recovery by given tier and by aging bucket, plus the Bayes limit where truth exists."""
    buckets = pd.Series(
        history_buckets(history, limitation_years), index=history.index, name="aging_bucket"
    )
    tiers = pd.Series(
        pd.Categorical(history["given_tier"], categories=TIERS),
        index=history.index,
        name="given_tier",
    )
    by_tier = _recovery_table(history, tiers)
    summary: dict[str, object] = {
        "rows": len(history),
        "recovery_rate": float(history["recovered"].mean()),
        "by_tier": by_tier,
        "by_bucket": _recovery_table(history, buckets),
        "tier_mix_by_bucket": pd.crosstab(
            buckets, history["given_tier"], normalize="index"
        ).reindex(columns=list(TIERS), fill_value=0.0),
    }
    if all(true_probability_column(t) in history.columns for t in TIERS):
        summary["bayes_limit_auc"] = bayes_limit_auc(history)
        summary["true_p_by_bucket"] = (
            history[[true_probability_column(t) for t in TIERS]]
            .groupby(buckets, observed=False)
            .mean()
            .rename(columns=lambda c: c.removeprefix("p_true_"))
        )
    return summary
