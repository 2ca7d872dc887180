"""Judging policies on a logged history: what each would have earned, and whether we can tell.

A history records one tier per debt, chosen by the collectors' own (age-driven) policy, and what
happened. ``evaluate_policies`` replays a model package's decisions on those debts (the safe
policy, the unconstrained value policy, the matrix or staircase, today's baseline, exactly as
scoring would make them) and estimates each one's net recovery and recovery rate with the
off-policy estimators of ``strategy.offpolicy`` (IPS, self-normalised IPS, direct method and
doubly robust, each with a bootstrap interval and the effective sample size), beside the logged
policy's realised value. Where the history never tried what a policy does, the estimate says so
instead of printing a confident number.

The ingredients:

- **propensities and support**: the history's recorded ``propensity`` when present and valid,
  otherwise an estimate; P(tier | x) under the history's policy is the support the overlap check
  reads. For a history the package has not seen (``fitted="package"``, e.g. the held-out test
  split at training, or a fresh month of the same collections) both come from the package's own
  logging policy and recovery model. For an arbitrary history (``"cross-fit"``, the default)
  they come from a calibrated multiclass model of the given tier and a recovery model with the
  package's settings, both cross-fitted on the history, so no debt's estimate comes from a model
  that saw it;
- **net value**: the policy's expected net value without discounting (a history's realised net
  recovery, amount recovered minus costs, is not discounted either).

On synthetic data, where the true probabilities are known, each policy's true expected value
is added beside its estimates.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.model_selection import StratifiedKFold

from recoverscore.data.facts import DebtFacts
from recoverscore.data.schemas import TIERS, probability_column, tier_codes, true_probability_column
from recoverscore.errors import RecoverscoreError
from recoverscore.modelling.model import binary_target
from recoverscore.scoring.package import ModelPackage
from recoverscore.scoring.pipeline import decision_dates
from recoverscore.strategy import logging_policy, offpolicy
from recoverscore.strategy.policy import POLICIES, Cases, decide, economics

NET_COLUMNS = ("amount_recovered", "costs")  # net recovery = amount recovered - costs


@dataclass(frozen=True)
class PolicyEvaluation:
    """Estimates per policy and estimator, the overlap of the history, and where they came from.

    table: one row per policy, reward and estimator (``offpolicy.RESULT_COLUMNS`` plus
        ``policy`` and, on synthetic data, ``truth``).
    overlap: support of every tier in every segment of the history.
    propensity_source: ``recorded`` or ``estimated``, and ``note`` why.
    """

    table: pd.DataFrame
    overlap: logging_policy.Overlap
    propensity_source: str
    note: str
    rows: int
    rejected: int

    def lines(self) -> list[str]:
        """A report: per policy, each estimate with its interval, or why there is none."""
        out = []
        for name, part in self.table.groupby("policy", sort=False):
            out.append(f"{name}:")
            out += [f"  {line}" for line in offpolicy.describe(part)]
        return out


def _history_rows(
    history: pd.DataFrame, package: ModelPackage, target: str
) -> tuple[pd.DataFrame, np.ndarray, int]:
    """The history's rows that pass the package's contract and carry a tier and outcomes."""
    tier_column = package.model.tier_column
    if tier_column is None:
        raise RecoverscoreError(
            "the model has no tier input: policies can only be judged with a tier-aware model"
        )
    needed = [tier_column, target, *NET_COLUMNS]
    missing = [c for c in needed if c not in history.columns]
    if missing:
        raise RecoverscoreError(f"the history lacks column(s) {missing} needed to judge policies")
    report = package.contract.validate(decision_dates(history, None))
    valid = report.valid
    unknown = ~valid[tier_column].isin(TIERS)
    if unknown.any():
        raise RecoverscoreError(
            f"column {tier_column!r} holds unknown tiers; allowed: {list(TIERS)}"
        )
    numbers = {}
    for column in ("amount_recovered", "costs", "propensity", "assignment_propensity"):
        if column in valid.columns:
            numbers[column] = pd.to_numeric(valid[column], errors="coerce")
            if numbers[column].isna().any() and column in NET_COLUMNS:
                raise RecoverscoreError(f"column {column!r} holds values that are not numbers")
    valid = valid.assign(**numbers)
    return valid, binary_target(valid[target], target), len(report.rejected_rows)


def _cross_fitted_probabilities(
    package: ModelPackage, frame: pd.DataFrame, y: np.ndarray, folds: int, seed: int
) -> pd.DataFrame:
    """P(recover | x, tier) for every tier from models that never saw the debt's outcome."""
    out = pd.DataFrame(index=frame.index, columns=[probability_column(t) for t in TIERS])
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    for train, held_out in splitter.split(np.zeros(len(y)), y):
        model = clone(package.model).fit(frame.iloc[train], y[train])
        out.iloc[held_out] = model.tier_probabilities(frame.iloc[held_out]).to_numpy()
    return out.astype(float)


def evaluate_policies(
    history: pd.DataFrame,
    package: ModelPackage,
    policies: tuple[str, ...] = POLICIES,
    *,
    fitted: str = "cross-fit",
    folds: int = 5,
    segments: tuple[str, ...] = (),
    target: str = "recovered",
    n_resamples: int = 1000,
    seed: int = 0,
) -> PolicyEvaluation:
    """Off-policy estimates of each of ``policies`` on ``history`` (see the module docstring)."""
    unknown = sorted(set(policies) - set(POLICIES))
    if unknown:
        raise RecoverscoreError(f"unknown policy {unknown}; choose from {list(POLICIES)}")
    if fitted not in ("cross-fit", "package"):
        raise RecoverscoreError(f"fitted must be 'cross-fit' or 'package', got {fitted!r}")
    frame, y, rejected = _history_rows(history, package, target)
    model = package.model
    facts = model.features_.facts(frame)
    features = model.features_.transform(frame, facts)
    given = frame[model.tier_column].to_numpy(dtype=object)
    support = None if package.logging_policy is None else package.logging_policy.predict(features)
    if fitted == "package" and support is not None:
        logged, probabilities = support, model.tier_probabilities(features=features)
        propensity, source, note = _propensity(frame, given, logged)
    else:
        recorded = frame.get("propensity", frame.get("assignment_propensity"))
        fit = logging_policy.fit_logging_policy(
            features, given, recorded, folds=folds, seed=seed,
            clip=package.policy.safe.min_support / 10,
        )  # fmt: skip
        logged, propensity, source, note = fit.probabilities, fit.propensity, fit.source, fit.note
        probabilities = _cross_fitted_probabilities(package, frame, y, folds, seed)
    overlap = logging_policy.overlap_table(
        logging_policy.default_segments(facts, frame, segments), given, logged
    )
    cases = Cases.build(facts, model.tier_probabilities(features=features), support)
    undiscounted = package.policy.model_copy(update={"discount_rate": 0.0})
    direct_net = economics(Cases.build(facts, probabilities), undiscounted, package.costs).value
    truth = _true_values(frame, facts, undiscounted, package)
    thresholds = offpolicy.Thresholds(min_propensity=package.policy.safe.min_support)
    net = (frame["amount_recovered"] - frame["costs"]).to_numpy(dtype=float)
    parts = []
    for name in policies:
        decision = decide(cases, package.policy, package.costs, name)
        chosen = decision["recommended_tier"].to_numpy(dtype=object)
        result = offpolicy.evaluate_policy(
            net,
            y,
            given,
            np.asarray(propensity, dtype=float),
            chosen,
            logged,
            direct_net=direct_net,
            direct_recovered=probabilities[[probability_column(t) for t in TIERS]].to_numpy(),
            thresholds=thresholds,
            n_resamples=n_resamples,
            seed=seed,
        )
        result.insert(0, "policy", name)
        if truth is not None:  # each estimate's target: the policy's, or the logged tiers'
            result["truth"] = [
                _true_mean(truth, given if row.estimator == "logged" else chosen, row.reward)
                for row in result.itertuples(index=False)
            ]
        parts.append(result)
    return PolicyEvaluation(
        pd.concat(parts, ignore_index=True), overlap, source, note, len(frame), rejected
    )


def _propensity(
    frame: pd.DataFrame, given: np.ndarray, support: pd.DataFrame
) -> tuple[np.ndarray, str, str]:
    """The recorded propensity where valid, else the package's logging policy's estimate."""
    recorded = frame.get("propensity", frame.get("assignment_propensity"))
    if recorded is not None:
        values = pd.to_numeric(recorded, errors="coerce").to_numpy(dtype=float)
        if ((values > 0) & (values <= 1)).all():
            return values, "recorded", "the history's propensity column"
    estimated = support.to_numpy()[np.arange(len(given)), tier_codes(given)]
    return estimated, "estimated", "the package's logging policy (learnt at training)"


def _true_mean(truth: tuple[np.ndarray, np.ndarray], tiers: np.ndarray, reward: str) -> float:
    """The true mean reward of giving each debt the tier in ``tiers``, in the reward's units."""
    codes = tier_codes(tiers)
    rows = np.arange(len(codes))
    if reward == offpolicy.NET_RECOVERY.name:
        return float(truth[0][rows, codes].mean() * offpolicy.NET_RECOVERY.scale)
    return float(truth[1][rows, codes].mean())


def _true_values(
    frame: pd.DataFrame, facts: DebtFacts, undiscounted, package: ModelPackage
) -> tuple[np.ndarray, np.ndarray] | None:
    """The synthetic world's true expected net value and P(recover) of every tier, if known."""
    columns = [true_probability_column(t) for t in TIERS]
    if not all(c in frame.columns for c in columns):
        return None
    truth = frame[columns].set_axis([probability_column(t) for t in TIERS], axis=1)
    value = economics(Cases.build(facts, truth), undiscounted, package.costs).value
    return value, truth.to_numpy(dtype=float)
