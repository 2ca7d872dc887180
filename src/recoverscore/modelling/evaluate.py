"""Measuring recovery data and models, and, against the synthetic truth, how close they get.

The Bayes limit is the AUC of the true probability of the tier each debt was given against what
happened: no model of the portfolio row can rank recoveries better than the truth itself.
"""

from __future__ import annotations

from collections.abc import Mapping
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
from recoverscore.modelling.explain import LANGUAGES, check_language, feature_label
from recoverscore.modelling.model import RecoveryModel, binary_target
from recoverscore.modelling.plotting import figure_name, use_language
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

_WORDS = {
    "en": {
        "model": "model",
        "scorecard": "scorecard",
        "perfect": "perfect calibration",
        "random": "random order",
        "calibration": "Calibration on the test set",
        "predicted": "predicted P(recover)",
        "observed": "observed recovery rate",
        "roc": "ROC on the test set",
        "fpr": "false positive rate",
        "tpr": "true positive rate",
        "gains": "Cumulative gains on the test set",
        "worked": "share of debts worked, highest score first",
        "captured": "share of recoveries captured",
        "importance": "Feature importance",
        "gain": "importance (LightGBM: total gain)",
    },
    "zh": {
        "model": "模型",
        "scorecard": "评分卡",
        "perfect": "完全校准",
        "random": "随机顺序",
        "calibration": "测试集上的校准情况",
        "predicted": "预测回款概率",
        "observed": "实际回款率",
        "roc": "测试集ROC曲线",
        "fpr": "假阳性率",
        "tpr": "真阳性率",
        "gains": "测试集累计增益",
        "worked": "已处理债务占比（按分数从高到低）",  # noqa: RUF001
        "captured": "已获回款占比",
        "importance": "特征重要性",
        "gain": "重要性（LightGBM总增益）",  # noqa: RUF001
    },
}


def _series(name: str, language: str) -> str:
    """A curve's legend name in ``language`` (``model`` and ``scorecard`` are translated)."""
    return _WORDS[language].get(name, name) if name in ("model", "scorecard") else name


def calibration_figure(
    y: np.ndarray,
    scores: dict[str, np.ndarray],
    bins: int = 10,
    language: str = "en",
    title: str | None = None,
) -> Figure:
    """Observed recovery rate against mean prediction, per equal-frequency bin (``title``:
    the test set's calibration unless said otherwise, e.g. on realised outcomes)."""
    words = _WORDS[check_language(language)]
    fig = Figure(figsize=(5.5, 5))
    ax = fig.subplots()
    ax.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1, label=words["perfect"])
    for name, p in scores.items():
        order = np.argsort(p, kind="stable")
        parts = [part for part in np.array_split(order, bins) if len(part)]
        ax.plot(
            [p[i].mean() for i in parts],
            [y[i].mean() for i in parts],
            marker="o",
            label=_series(name, language),
        )
    ax.set(
        xlabel=words["predicted"],
        ylabel=words["observed"],
        title=title or words["calibration"],
        xlim=(0, 1),
        ylim=(0, 1),
    )
    ax.legend(loc="upper left")
    use_language(fig, language)
    fig.tight_layout()
    return fig


def roc_figure(y: np.ndarray, scores: dict[str, np.ndarray], language: str = "en") -> Figure:
    """ROC curves of several scores on the same outcomes, AUC in the legend."""
    words = _WORDS[check_language(language)]
    fig = Figure(figsize=(5.5, 5))
    ax = fig.subplots()
    ax.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1)
    for name, p in scores.items():
        fpr, tpr, _ = roc_curve(y, p)
        ax.plot(fpr, tpr, label=f"{_series(name, language)} (AUC {roc_auc_score(y, p):.3f})")
    ax.set(xlabel=words["fpr"], ylabel=words["tpr"], title=words["roc"])
    ax.legend(loc="lower right")
    use_language(fig, language)
    fig.tight_layout()
    return fig


def gains_figure(tables: Mapping[str, pd.DataFrame], language: str = "en") -> Figure:
    """Cumulative share of recoveries captured by working the highest scores first, one curve
    per ``gains_table`` (the model beside the scorecard)."""
    words = _WORDS[check_language(language)]
    fig = Figure(figsize=(5.5, 5))
    ax = fig.subplots()
    for name, table in tables.items():
        share = table["debts"].cumsum() / table["debts"].sum()
        capture = [0, *table["cumulative_capture"]]
        ax.plot([0, *share], capture, marker="o", label=_series(name, language))
    ax.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1, label=words["random"])
    ax.set(xlabel=words["worked"], ylabel=words["captured"], title=words["gains"])
    ax.legend(loc="lower right")
    use_language(fig, language)
    fig.tight_layout()
    return fig


def importance_figure(importance: pd.DataFrame, top: int = 20, language: str = "en") -> Figure:
    """Total split gain of the most useful features, by their labels in ``language``."""
    words = _WORDS[check_language(language)]
    head = importance.head(top).iloc[::-1]
    fig = Figure(figsize=(6, 0.3 * len(head) + 1.2))
    ax = fig.subplots()
    ax.barh([feature_label(name, language) for name in head["feature"]], head["importance"])
    ax.set(xlabel=words["gain"], title=words["importance"])
    use_language(fig, language)
    fig.tight_layout()
    return fig


def _figures(
    y: np.ndarray,
    scores: dict[str, np.ndarray],
    gains: dict[str, pd.DataFrame],
    importance: pd.DataFrame,
) -> dict[str, Figure]:
    """The evaluation's plots in English, and in Chinese under ``zh/<name>``."""
    figures = {}
    for language in LANGUAGES:
        drawn = {
            "calibration": calibration_figure(y, scores, language=language),
            "roc": roc_figure(y, scores, language=language),
            "gains": gains_figure(gains, language=language),
            "feature_importance": importance_figure(importance, language=language),
        }
        figures |= {figure_name(name, language): fig for name, fig in drawn.items()}
    return figures


# --- one evaluation of a trained model ---------------------------------------------------------


@dataclass
class Evaluation:
    """Everything measured about a trained model on its held-out test rows."""

    metrics: dict[str, float]
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    figures: dict[str, Figure] = field(default_factory=dict)
    """Plots by name; the Chinese version of a plot is ``zh/<name>``."""


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
    scores = {"model": p_model, "scorecard": p_card}
    curves = {"model": gains, "scorecard": gains_table(y_test, p_card)}
    evaluation = Evaluation(
        metrics,
        tables={"gains": gains, "feature_importance": importance},
        figures=_figures(y_test, scores, curves, importance),
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
