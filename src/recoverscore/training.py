"""Training end to end, as a notebook or the CLI runs it: history in, a model package out.

``train`` chains the pure stages: the history checked against the contract derived from its own
columns, an optional k-fold comparison with the scorecard (``cv``), a stratified test split, the
model fitted (LightGBM or, on small files where it ranks better out of fold, the scorecard),
its evaluation beside the scorecard and, on synthetic data, the truth and the policy
comparison, and finally the self-contained package. Files and MLflow stay outside: the CLI saves
the package and ``registry.log_training`` logs the result.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd

from recoverscore.data.costs import CostConfig, load_costs
from recoverscore.modelling import explain
from recoverscore.modelling.evaluate import Evaluation, evaluate_model
from recoverscore.modelling.explain import ReasonTexts
from recoverscore.modelling.model import (
    RoundCallback,
    TrainConfig,
    TrainingData,
    cross_validate,
    data_digest,
    prepare_training_data,
)
from recoverscore.modelling.plotting import figure_name
from recoverscore.scoring.package import ModelPackage
from recoverscore.strategy import comparison
from recoverscore.strategy.policy import PolicyConfig, load_policy_config

_SHAP_ROWS = 2_000  # debtors in the SHAP plots of a training run


@dataclass
class TrainingResult:
    """What a training run produced: the package, its evaluation and the data it saw."""

    package: ModelPackage
    evaluation: Evaluation
    data: TrainingData
    comparison: pd.DataFrame | None = None
    cv: pd.DataFrame | None = None

    @property
    def metrics(self) -> dict[str, float]:
        """Every figure of the run: test metrics, CV, policy values, rejected rows."""
        return {**self.evaluation.metrics, "rejected_rows": float(len(self.data.rejected))}


def train(
    history: pd.DataFrame,
    config: TrainConfig,
    *,
    cv: int | None = None,
    policy: PolicyConfig | None = None,
    costs: CostConfig | None = None,
    texts: ReasonTexts | None = None,
    on_stage: Callable[[str], None] = lambda stage: None,
    on_round: RoundCallback | None = None,
) -> TrainingResult:
    """Train, evaluate and package a model on a labelled history (see the module docstring).

    ``cv``: also compare the model with the WoE scorecard on ``cv`` stratified folds of the
    whole file (out-of-fold AUC, mean and standard deviation). ``on_stage(text)`` is told as
    each stage starts and ``on_round(done, most)`` after each boosting round of the fit, for
    progress displays.
    """
    policy, costs = policy or load_policy_config(), costs or load_costs()
    on_stage("checking the history against its contract")
    data = prepare_training_data(history, config)
    cv_table = None
    if cv:
        on_stage(f"{cv}-fold comparison with the scorecard")
        cv_table = cross_validate(data.frame, data.y, config.estimator(), cv)
    train_rows, test_rows = data.split(config.data, config.model.seed)
    on_stage(f"fitting on {len(train_rows.frame):,} rows")
    model = config.estimator().fit(train_rows.frame, train_rows.y, on_round=on_round)
    on_stage(f"evaluating on {len(test_rows.frame):,} held-out rows")
    evaluation = evaluate_model(model, train_rows.frame, test_rows.frame, config.data.target)
    if cv_table is not None:
        for candidate, row in cv_table.iterrows():
            evaluation.metrics[f"cv_{candidate}_auc_mean"] = float(row["auc_mean"])
            evaluation.metrics[f"cv_{candidate}_auc_sd"] = float(row["auc_sd"])
        evaluation.tables["cross_validation"] = cv_table.reset_index()
    table = None
    if "bayes_limit_auc" in evaluation.metrics:
        on_stage("valuing the policies with the synthetic truth")
        table = _compare_policies(model, test_rows.frame, evaluation, policy, costs, texts)
    on_stage("packaging")
    package = ModelPackage.build(
        model,
        id_column=config.data.id_column,
        policy=policy,
        costs=costs,
        texts=texts,
        training=train_rows.frame,
        metadata={
            "data_digest": data_digest(data.frame),
            "data_rows": len(data.frame) + len(data.rejected),
            "decision_dates": decision_dates(data.frame),
            "training_rows": len(train_rows.frame),
            "test_auc": evaluation.metrics["test_auc"],
            "scorecard_auc": evaluation.metrics["scorecard_auc"],
            "kind": model.kind_,
        },
    )
    return TrainingResult(package, evaluation, data, table, cv_table)


def decision_dates(frame: pd.DataFrame) -> str | None:
    """The decision dates (``as_of``) a history spans: one date, or the first and last."""
    if "as_of" not in frame.columns:
        return None
    dates = pd.to_datetime(frame["as_of"], errors="coerce").dropna()
    if dates.empty:
        return None
    first, last = f"{dates.min():%Y-%m-%d}", f"{dates.max():%Y-%m-%d}"
    return first if first == last else f"{first} to {last}"


def _compare_policies(
    model,
    test: pd.DataFrame,
    evaluation: Evaluation,
    policy: PolicyConfig,
    costs: CostConfig,
    texts: ReasonTexts | None,
) -> pd.DataFrame:
    """On synthetic truth: the policy comparison, tier mix and SHAP plots, added to the
    evaluation (SHAP plots only here, where no row is a real debtor)."""
    table, decisions = comparison.policy_comparison(test, model, policy, costs)
    facts = model.features_.facts(test)
    mix = comparison.tier_mix(decisions["value"], facts)
    evaluation.tables["policy_comparison"] = table.reset_index()
    evaluation.tables["tier_mix_value_policy"] = mix.reset_index()
    recommended = decisions["value"]["recommended_tier"].to_numpy()
    sample = test.head(_SHAP_ROWS)
    tiers = recommended[:_SHAP_ROWS]
    for language in explain.LANGUAGES:
        drawn = {
            "tier_mix_value_policy": comparison.tier_mix_figure(mix, language=language),
            "shap_beeswarm": explain.beeswarm_figure(
                model, sample, tiers, language=language, texts=texts
            ),
            "shap_importance": explain.importance_bar_figure(
                model, sample, tiers, language=language, texts=texts
            ),
            "shap_waterfall_one_debtor": explain.waterfall_figure(
                model, test.head(1), recommended[:1], language=language, texts=texts
            ),
        }
        evaluation.figures |= {figure_name(name, language): fig for name, fig in drawn.items()}
    for name, row in table.iterrows():
        evaluation.metrics[f"policy_net_per_1000_{name}"] = float(row["net_per_1000_cny"])
    evaluation.metrics["policy_value_vs_oracle"] = float(table.loc["value", "vs_oracle"])
    evaluation.metrics["policy_value_vs_staircase"] = float(table.loc["value", "vs_staircase"])
    return table
