"""Measuring recovery data and models, and, against the synthetic truth, how close they get.

The Bayes limit is the AUC of the true probability of the tier each debt was given against what
happened: no model of the portfolio row can rank recoveries better than the truth itself.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import (
    average_precision_score,
    brier_score_loss,
    roc_auc_score,
    roc_curve,
)
from sklearn.pipeline import make_pipeline

from recoverscore.data.costs import CostConfig
from recoverscore.data.schemas import (
    TIERS,
    probability_column,
    tier_codes,
    true_probability_column,
)
from recoverscore.data.synthetic import legacy_tier, load_synthetic_config
from recoverscore.modelling.features import (
    AGING_BUCKETS,
    DebtorFeatures,
    aging_bucket,
    days_past_due,
    is_time_barred,
)
from recoverscore.modelling.model import RecoveryModel, binary_target
from recoverscore.strategy.policy import Cases, PolicyConfig, decide, economics


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


def truth_metrics(matrix: pd.DataFrame, history: pd.DataFrame) -> pd.DataFrame:
    """Per tier: correlation and mean absolute error between predicted and true P(recover).

    Measured on every debt, including those that were never given the tier: the
    counterfactual answers are what the policy uses.
    """
    rows = []
    for tier in TIERS:
        truth = history[true_probability_column(tier)].to_numpy()
        predicted = matrix[probability_column(tier)].to_numpy()
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


# --- the scorecard baseline -------------------------------------------------------------------


class Scorecard:
    """The industry baseline: optimal-binning WoE features into a logistic regression.

    It sees the same features and the same tier column as the model, on the same training rows,
    so the comparison isolates what gradient boosting adds.
    """

    def __init__(self, features: DebtorFeatures, tier_column: str | None) -> None:
        self.features = features
        self.tier_column = tier_column

    def _design(self, frame: pd.DataFrame) -> pd.DataFrame:
        design = self.features.transform(frame)
        categorical = self.features.categorical_features()
        if self.tier_column is not None:
            design["tier"] = frame[self.tier_column].astype(str).to_numpy()
            categorical = [*categorical, "tier"]
        for column in categorical:
            values = design[column].astype(object)
            design[column] = values.where(values.notna(), "missing").astype(str)
        self._categorical = categorical
        return design

    def fit(self, frame: pd.DataFrame, y: np.ndarray) -> Scorecard:
        from optbinning import BinningProcess  # heavy (ortools, cvxpy): only when fitting

        design = self._design(frame)
        binning = BinningProcess(
            list(design.columns), categorical_variables=self._categorical, max_n_prebins=20
        )
        self.pipeline_ = make_pipeline(binning, LogisticRegression(max_iter=1000))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.pipeline_.fit(design, np.asarray(y, dtype=int))
        return self

    def recovery_probability(self, frame: pd.DataFrame) -> np.ndarray:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return self.pipeline_.predict_proba(self._design(frame))[:, 1]


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
    ax.barh(head["feature"], head["gain"])
    ax.set(xlabel="total gain", title="Feature importance")
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
    scorecard = Scorecard(model.features_, model.tier_column).fit(train, y_train)
    p_card = scorecard.recovery_probability(test)
    metrics = {f"test_{k}": v for k, v in binary_metrics(y_test, p_model).items()}
    metrics |= {f"scorecard_{k}": v for k, v in binary_metrics(y_test, p_card).items()}
    metrics |= {
        "train_rows": float(len(train)),
        "test_rows": float(len(test)),
        "best_iteration": float(model.best_iteration_),
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
        truth = truth_metrics(model.tier_matrix(test), test)
        evaluation.metrics |= {
            "bayes_limit_auc": bayes,
            "gap_to_bayes_auc": bayes - metrics["test_auc"],
        }
        for tier, row in truth.iterrows():
            evaluation.metrics[f"truth_corr_{tier}"] = row["correlation"]
            evaluation.metrics[f"truth_mae_{tier}"] = row["mae"]
        evaluation.tables["truth_by_tier"] = truth.reset_index()
    return evaluation


# --- policies against the truth ------------------------------------------------------------------


def _true_probabilities(history: pd.DataFrame) -> pd.DataFrame:
    return history[[true_probability_column(t) for t in TIERS]].set_axis(
        [probability_column(t) for t in TIERS], axis=1
    )


def policy_comparison(
    history: pd.DataFrame,
    model: RecoveryModel,
    settings: PolicyConfig,
    costs: CostConfig,
    capacity: dict[str, int | None] | None = None,
) -> tuple[pd.DataFrame, dict[str, pd.DataFrame]]:
    """Net recovery per 1,000 debtors of each policy, valued with the synthetic truth.

    Every policy's choices are priced with the *true* probabilities, so the numbers say what each
    would really earn: the legacy aging staircase (no guardrails), the matrix policy, the value
    policy, the value policy under ``capacity`` (default: half the litigation it wants), and the
    oracle, which chooses with the truth under the same guardrails. Also returns the decisions.
    """
    years = settings.limitation_years
    true_cases = Cases.build(history, _true_probabilities(history), years)
    true_value = economics(true_cases, settings, costs).value
    cases = Cases.build(history, model.tier_matrix(history), years)
    world = load_synthetic_config().legacy_policy
    stair = legacy_tier(cases.days, world)
    decisions = {
        "staircase": pd.DataFrame({"recommended_tier": stair}, index=history.index),
        "matrix": decide(cases, settings, costs, "matrix"),
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


def tier_mix(
    decision: pd.DataFrame, history: pd.DataFrame, limitation_years: int = 3
) -> pd.DataFrame:
    """Share of each recommended tier within each aging bucket."""
    buckets = pd.Series(
        history_buckets(history, limitation_years), index=history.index, name="aging_bucket"
    )
    tiers = pd.Categorical(decision["recommended_tier"], categories=TIERS)
    return pd.crosstab(buckets, tiers, normalize="index", dropna=False, colnames=["tier"]).reindex(
        columns=list(TIERS), fill_value=0.0
    )


def tier_mix_figure(mix: pd.DataFrame, title: str = "Recommended tier by aging bucket") -> Figure:
    """Stacked bars: how the recommended tiers split within each aging bucket."""
    fig = Figure(figsize=(8.5, 4.5))
    ax = fig.subplots()
    bottom = np.zeros(len(mix))
    for tier in mix.columns:
        ax.bar(mix.index.astype(str), mix[tier], bottom=bottom, label=tier)
        bottom += mix[tier].to_numpy()
    ax.set(ylabel="share of debts", title=title, ylim=(0, 1))
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)  # beside, not over, bars
    fig.tight_layout()
    return fig
