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
from recoverscore.scoring.policy_evaluation import (
    NET_COLUMNS,
    PolicyEvaluation,
    evaluate_policies,
)
from recoverscore.strategy import comparison, logging_policy
from recoverscore.strategy.policy import PolicyConfig, load_policy_config

_SHAP_ROWS = 2_000  # debtors in the SHAP plots of a training run
LOGGING_ROWS = 60_000  # training rows the logging policy is learnt from (a fixed sample)


@dataclass
class TrainingResult:
    """What a training run produced: the package, its evaluation and the data it saw."""

    package: ModelPackage
    evaluation: Evaluation
    data: TrainingData
    comparison: pd.DataFrame | None = None
    cv: pd.DataFrame | None = None
    overlap: logging_policy.Overlap | None = None
    policies: PolicyEvaluation | None = None

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
    history_policy, overlap = None, None
    if config.data.tier_column is not None:
        on_stage("learning how the history chose tiers (logging policy, overlap)")
        history_policy, overlap = fit_history_policy(
            model, train_rows.frame, config, policy.safe.min_support
        )
        evaluation.tables["overlap"] = overlap.table
        evaluation.figures |= {
            figure_name("overlap", language): logging_policy.overlap_figure(overlap, language)
            for language in explain.LANGUAGES
        }
        evaluation.metrics["unsupported_segment_tiers"] = float(len(overlap.unsupported))
    on_stage("packaging")
    package = ModelPackage.build(
        model,
        id_column=config.data.id_column,
        policy=policy,
        costs=costs,
        texts=texts,
        training=train_rows.frame,
        logging_policy=history_policy,
        metadata={
            "data_digest": data_digest(data.frame),
            "data_rows": len(data.frame) + len(data.rejected),
            "decision_dates": decision_dates(data.frame),
            "training_rows": len(train_rows.frame),
            "test_auc": evaluation.metrics["test_auc"],
            "test_brier": evaluation.metrics["test_brier"],  # the backtest's reference figures
            "test_ece": evaluation.metrics["test_ece"],
            "scorecard_auc": evaluation.metrics["scorecard_auc"],
            "kind": model.kind_,
        },
    )
    table = policies = None
    if history_policy is not None and set(NET_COLUMNS) <= set(test_rows.frame.columns):
        on_stage("judging the policies on the held-out history (off-policy estimates)")
        policies = evaluate_policies(
            test_rows.frame,
            package,
            fitted="package",
            segments=tuple(config.data.segments),
            target=config.data.target,
        )
        evaluation.tables["off_policy"] = policies.table
        for row in policies.table[policies.table["estimator"] == "dr"].itertuples():
            evaluation.metrics[f"ope_dr_{row.reward}_{row.policy}"] = float(row.estimate)
    if "bayes_limit_auc" in evaluation.metrics:
        on_stage("valuing the policies with the synthetic truth")
        table = _compare_policies(package, test_rows.frame, evaluation, texts)
    return TrainingResult(package, evaluation, data, table, cv_table, overlap, policies)


def recorded_propensity(history: pd.DataFrame) -> pd.Series | None:
    """The propensity a history recorded: its ``propensity`` column, else the design propensity
    of experiment cells that scored it (``assignment_propensity``), else none."""
    for column in ("propensity", "assignment_propensity"):
        if column in history.columns:
            return pd.to_numeric(history[column], errors="coerce")
    return None


def fit_history_policy(
    model, train: pd.DataFrame, config: TrainConfig, min_support: float
) -> tuple[logging_policy.LoggingPolicyModel, logging_policy.Overlap]:
    """How the history's collectors chose tiers, learnt from (a sample of) the training rows,
    and the support of every tier in every segment."""
    rows = train.sample(n=min(len(train), LOGGING_ROWS), random_state=config.model.seed)
    facts = model.features_.facts(rows)
    features = model.features_.transform(rows, facts)
    given = rows[config.data.tier_column].to_numpy(dtype=object)
    recorded = recorded_propensity(rows)
    fit = logging_policy.fit_logging_policy(
        features, given, recorded, seed=config.model.seed, clip=min_support / 10
    )
    segments = logging_policy.default_segments(facts, rows, tuple(config.data.segments))
    return fit.model, logging_policy.overlap_table(segments, given, fit.probabilities)


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
    package: ModelPackage, test: pd.DataFrame, evaluation: Evaluation, texts: ReasonTexts | None
) -> pd.DataFrame:
    """On synthetic truth: the policy comparison, tier mix and SHAP plots, added to the
    evaluation (SHAP plots only here, where no row is a real debtor)."""
    model = package.model
    table, decisions = comparison.policy_comparison(
        test, model, package.policy, package.costs, support=package.logging_policy
    )
    facts = model.features_.facts(test)
    mix = comparison.tier_mix(decisions["safe"], facts)
    evaluation.tables["policy_comparison"] = table.reset_index()
    evaluation.tables["tier_mix_safe_policy"] = mix.reset_index()
    recommended = decisions["safe"]["recommended_tier"].to_numpy()
    sample = test.head(_SHAP_ROWS)
    tiers = recommended[:_SHAP_ROWS]
    for language in explain.LANGUAGES:
        drawn = {
            "tier_mix_safe_policy": comparison.tier_mix_figure(mix, language=language),
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
    for name in ("safe", "value"):
        evaluation.metrics[f"policy_{name}_vs_oracle"] = float(table.loc[name, "vs_oracle"])
        evaluation.metrics[f"policy_{name}_vs_staircase"] = float(table.loc[name, "vs_staircase"])
    return table
