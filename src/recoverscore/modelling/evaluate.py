"""Measuring recovery data and models, and, against the synthetic truth, how close they get.

The Bayes limit is the AUC of the true probability of the tier each debt was given against what
happened: no model of the portfolio row can rank recoveries better than the truth itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from sklearn.metrics import (
    average_precision_score,
    brier_score_loss,
    roc_auc_score,
    roc_curve,
)

from recoverscore.data.facts import AGING_BUCKETS, aging_bucket, days_past_due, is_time_barred
from recoverscore.data.schemas import TIERS, probability_column, tier_codes, true_probability_column
from recoverscore.modelling.model import RecoveryModel, binary_target
from recoverscore.modelling.scorecard import ScorecardModel


def given_tier_truth(history: pd.DataFrame) -> np.ndarray:
    """True P(recover) under the tier each debt was actually given."""
    truth = history[[true_probability_column(t) for t in TIERS]].to_numpy()
    codes = tier_codes(history["given_tier"])
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
        history.get("disaster_date"),
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


# --- model quality --------------------------------------------------------------------------------


def expected_calibration_error(y: np.ndarray, p: np.ndarray, bins: int = 10) -> float:
    """Count-weighted mean |observed rate - mean prediction| over equal-frequency bins."""
    order = np.argsort(p, kind="stable")
    total = 0.0
    for part in np.array_split(order, bins):
        if len(part):
            total += len(part) * abs(y[part].mean() - p[part].mean())
    return float(total / len(p))


def ks_statistic(y: np.ndarray, p: np.ndarray) -> float:
    """Largest gap between the score distributions of recovered and unrecovered debts."""
    fpr, tpr, _ = roc_curve(y, p)
    return float(np.max(np.abs(tpr - fpr)))


def binary_metrics(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    """ROC-AUC, PR-AUC, KS, Brier score and ECE of probabilities ``p`` for outcomes ``y``."""
    y = np.asarray(y, dtype=int)
    p = np.asarray(p, dtype=float)
    return {
        "auc": float(roc_auc_score(y, p)),
        "pr_auc": float(average_precision_score(y, p)),
        "ks": ks_statistic(y, p),
        "brier": float(brier_score_loss(y, p)),
        "ece": expected_calibration_error(y, p),
    }


def gains_table(y: np.ndarray, p: np.ndarray, bins: int = 10) -> pd.DataFrame:
    """Deciles from the highest score down: debts, recoveries, rate, capture and lift."""
    y = np.asarray(y, dtype=int)
    order = np.argsort(-np.asarray(p), kind="stable")
    rows = []
    for k, part in enumerate(np.array_split(order, bins), start=1):
        rows.append(
            {
                "decile": k,
                "debts": len(part),
                "recovered": int(y[part].sum()),
                "mean_score": float(np.asarray(p)[part].mean()),
            }
        )
    table = pd.DataFrame(rows)
    table["recovery_rate"] = table["recovered"] / table["debts"]
    table["cumulative_capture"] = table["recovered"].cumsum() / max(y.sum(), 1)
    table["lift"] = table["recovery_rate"] / y.mean()
    return table


def truth_metrics(probabilities: pd.DataFrame, history: pd.DataFrame) -> pd.DataFrame:
    """Per tier: correlation and mean absolute error between predicted and true P(recover).

    Measured on every debt, including those that were never given the tier: the
    counterfactual answers are what the policy uses.
    """
    rows = []
    for tier in TIERS:
        truth = history[true_probability_column(tier)].to_numpy()
        predicted = probabilities[probability_column(tier)].to_numpy()
        rows.append(
            {
                "tier": tier,
                "correlation": float(np.corrcoef(truth, predicted)[0, 1]),
                "mae": float(np.abs(truth - predicted).mean()),
                "mean_true": float(truth.mean()),
                "mean_predicted": float(predicted.mean()),
            }
        )
    return pd.DataFrame(rows).set_index("tier")


# --- plots ---------------------------------------------------------------------------------------


def calibration_figure(y: np.ndarray, scores: dict[str, np.ndarray], bins: int = 10) -> Figure:
    """Observed recovery rate against mean prediction, per equal-frequency bin."""
    fig = Figure(figsize=(5.5, 5))
    ax = fig.subplots()
    ax.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1, label="perfect")
    for name, p in scores.items():
        order = np.argsort(p, kind="stable")
        parts = [part for part in np.array_split(order, bins) if len(part)]
        ax.plot([p[i].mean() for i in parts], [y[i].mean() for i in parts], marker="o", label=name)
    ax.set(
        xlabel="predicted P(recover)",
        ylabel="observed recovery rate",
        title="Calibration on the test set",
        xlim=(0, 1),
        ylim=(0, 1),
    )
    ax.legend(loc="upper left")
    fig.tight_layout()
    return fig


def roc_figure(y: np.ndarray, scores: dict[str, np.ndarray]) -> Figure:
    """ROC curves of several scores on the same outcomes, AUC in the legend."""
    fig = Figure(figsize=(5.5, 5))
    ax = fig.subplots()
    ax.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1)
    for name, p in scores.items():
        fpr, tpr, _ = roc_curve(y, p)
        ax.plot(fpr, tpr, label=f"{name} (AUC {roc_auc_score(y, p):.3f})")
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC on the test set")
    ax.legend(loc="lower right")
    fig.tight_layout()
    return fig


def gains_figure(table: pd.DataFrame) -> Figure:
    """Cumulative share of recoveries captured by working the highest scores first."""
    fig = Figure(figsize=(5.5, 5))
    ax = fig.subplots()
    share = table["debts"].cumsum() / table["debts"].sum()
    ax.plot([0, *share], [0, *table["cumulative_capture"]], marker="o", label="model")
    ax.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1, label="random")
    ax.set(
        xlabel="share of debts worked",
        ylabel="share of recoveries captured",
        title="Cumulative gains",
    )
    ax.legend(loc="lower right")
    fig.tight_layout()
    return fig


def importance_figure(importance: pd.DataFrame, top: int = 20) -> Figure:
    """Total split gain of the most useful features."""
    head = importance.head(top).iloc[::-1]
    fig = Figure(figsize=(6, 0.3 * len(head) + 1.2))
    ax = fig.subplots()
    ax.barh(head["feature"], head["importance"])
    ax.set(xlabel="importance (LightGBM: total gain)", title="Feature importance")
    fig.tight_layout()
    return fig


# --- one evaluation of a trained model ---------------------------------------------------------


@dataclass
class Evaluation:
    """Everything measured about a trained model on its held-out test rows."""

    metrics: dict[str, float]
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    figures: dict[str, Figure] = field(default_factory=dict)


def evaluate_model(
    model: RecoveryModel, train: pd.DataFrame, test: pd.DataFrame, target: str
) -> Evaluation:
    """Test metrics of the model beside the scorecard, and against the truth where it exists.

    The scorecard is fitted here on the model's own training rows (same features, same tier
    input). Where the synthetic truth is present the Bayes-limit AUC and per-tier truth errors
    are added.
    """
    y_train = binary_target(train[target], target)
    y_test = binary_target(test[target], target)
    p_model = model.recovery_probability(test)
    if model.kind_ == "scorecard":  # the model is the scorecard: no second fit
        p_card = p_model
    else:
        scorecard = ScorecardModel(model.features_, model.tier_column).fit(train, y_train)
        p_card = scorecard.recovery_probability(test)
    metrics = {f"test_{k}": v for k, v in binary_metrics(y_test, p_model).items()}
    metrics |= {f"scorecard_{k}": v for k, v in binary_metrics(y_test, p_card).items()}
    metrics |= {
        "train_rows": float(len(train)),
        "test_rows": float(len(test)),
        **({"best_iteration": float(model.best_iteration_)} if model.kind_ != "scorecard" else {}),
        **{f"cv_{k}": float(v) for k, v in model.cv_.items()},
        "kind_scorecard": float(model.kind_ == "scorecard"),
    }
    gains = gains_table(y_test, p_model)
    importance = model.feature_importance()
    evaluation = Evaluation(
        metrics,
        tables={"gains": gains, "feature_importance": importance},
        figures={
            "calibration": calibration_figure(y_test, {"model": p_model, "scorecard": p_card}),
            "roc": roc_figure(y_test, {"model": p_model, "scorecard": p_card}),
            "gains": gains_figure(gains),
            "feature_importance": importance_figure(importance),
        },
    )
    if all(true_probability_column(t) in test.columns for t in TIERS) and "given_tier" in test:
        bayes = bayes_limit_auc(test)
        truth = truth_metrics(model.tier_probabilities(test), test)
        evaluation.metrics |= {
            "bayes_limit_auc": bayes,
            "gap_to_bayes_auc": bayes - metrics["test_auc"],
        }
        for tier, row in truth.iterrows():
            evaluation.metrics[f"truth_corr_{tier}"] = row["correlation"]
            evaluation.metrics[f"truth_mae_{tier}"] = row["mae"]
        evaluation.tables["truth_by_tier"] = truth.reset_index()
    return evaluation
