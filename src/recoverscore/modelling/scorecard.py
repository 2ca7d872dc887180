"""The WoE scorecard: the industry's baseline, and on small files often the better model.

Each feature is cut into optimal bins (``optbinning``), each bin replaced by its weight of
evidence, and a logistic regression weighs the features: log-odds = intercept + sum of points,
a feature's points being its coefficient times its bin's WoE. Fitting uses optbinning and
scikit-learn; what is kept is plain numbers (the bins, their WoE, the coefficients), so the
scorecard is saved as JSON, never pickled, and scored with a few array lookups here.

Missing values get the WoE of their own bin (optbinning's "empirical" missing metric, so a
missing income counts as what missing incomes were in training); levels never seen in training
get 0, the population's average evidence. A tier-aware scorecard takes the tier as one more
categorical feature, so tiers shift every debtor's log-odds by the same points.

Reasons are a feature's points against its training average: ``coef * (woe(x) - mean woe)``,
which for an additive model are exactly its Shapley values, adding up with the base value to
the log-odds.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.linear_model import LogisticRegression
from sklearn.utils.validation import check_is_fitted

from recoverscore.data.schemas import TIERS, probability_column
from recoverscore.modelling.features import DebtorFeatures

TIER_FEATURE = "tier"
MISSING_LEVEL = "missing"  # categorical missing values are a level of their own


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _categorical_text(column: pd.Series) -> np.ndarray:
    values = column.astype(object)
    return values.where(values.notna(), MISSING_LEVEL).astype(str).to_numpy(dtype=object)


def _woe_column(spec: dict, column: pd.Series) -> np.ndarray:
    """One feature's WoE per row from its saved bins."""
    woe = np.asarray(spec["woe"], dtype=float)
    if spec["kind"] == "categorical":
        lookup = {level: woe[b] for b, levels in enumerate(spec["bins"]) for level in levels}
        codes, levels = pd.factorize(_categorical_text(column))
        return np.array([lookup.get(level, 0.0) for level in levels], dtype=float)[codes]
    x = pd.to_numeric(column, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    out = woe[np.searchsorted(np.asarray(spec["splits"], dtype=float), x, side="right")]
    return np.where(np.isnan(x), spec["missing_woe"], out)


class ScorecardModel(ClassifierMixin, BaseEstimator):
    """Optimal-binning WoE features into a logistic regression, with the tier as an input.

    features: a ``DebtorFeatures`` transformer (cloned settings; fitted here).
    tier_column: column of ``X`` with the tier each case was given, or ``None``.
    max_n_prebins: optbinning's pre-bins per feature (fewer: coarser, steadier bins).
    C: inverse L2 strength of the logistic regression.
    """

    def __init__(
        self,
        features: DebtorFeatures | None = None,
        tier_column: str | None = "given_tier",
        max_n_prebins: int = 20,
        C: float = 1.0,
    ) -> None:
        self.features = features
        self.tier_column = tier_column
        self.max_n_prebins = max_n_prebins
        self.C = C

    # -- the design: features plus the tier, categoricals as text --

    def _design(self, features: pd.DataFrame, tier: object) -> pd.DataFrame:
        design = features.copy(deep=False)
        if self.tier_column is not None:
            values = [tier] * len(features) if isinstance(tier, str) else tier
            design[TIER_FEATURE] = np.asarray(values, dtype=object)
        return design

    def fit(self, X: pd.DataFrame, y: np.ndarray) -> ScorecardModel:
        """Fit the features, the bins (optbinning) and the logistic regression on WoE."""
        from optbinning import BinningProcess  # heavy (ortools, cvxpy): only when fitting

        self.features_ = clone(self.features or DebtorFeatures()).fit(X)
        tiers = X[self.tier_column].to_numpy(dtype=object) if self.tier_column else None
        design = self._design(self.features_.transform(X), tiers)
        categorical = [*self.features_.categorical_features()]
        if self.tier_column is not None:
            categorical.append(TIER_FEATURE)
        for name in categorical:
            design[name] = _categorical_text(design[name])
        binning = BinningProcess(
            list(design.columns),
            categorical_variables=categorical,
            max_n_prebins=self.max_n_prebins,
        )
        y = np.asarray(y, dtype=int)
        with warnings.catch_warnings():  # optbinning warns per feature it cannot split
            warnings.simplefilter("ignore")
            binning.fit(design, y)
        self.bins_ = {name: _bins(binning.get_binned_variable(name)) for name in design.columns}
        woe = self._woe(design)
        regression = LogisticRegression(C=self.C, max_iter=1000).fit(woe, y)
        self.coef_ = regression.coef_[0].astype(float)
        self.intercept_ = float(regression.intercept_[0])
        self.woe_means_ = woe.mean(axis=0)
        self.feature_names_ = list(design.columns)
        self.feature_names_in_ = self.features_.feature_names_in_
        self.n_features_in_ = self.features_.n_features_in_
        self.classes_ = np.array([0, 1])
        return self

    def _woe(self, design: pd.DataFrame) -> np.ndarray:
        return np.column_stack([_woe_column(self.bins_[c], design[c]) for c in design.columns])

    # -- predicting from already-built features --

    def points(self, features: pd.DataFrame, tier: object) -> np.ndarray:
        """Each feature's points (coefficient x WoE) per row, in ``feature_names_`` order."""
        check_is_fitted(self, "coef_")
        return self._woe(self._design(features, tier)) * self.coef_

    def raw_score(self, features: pd.DataFrame, tier: object) -> np.ndarray:
        """Log-odds of recovery under ``tier`` (a name or one per row)."""
        return self.intercept_ + self.points(features, tier).sum(axis=1)

    def tier_probabilities(self, features: pd.DataFrame) -> pd.DataFrame:
        """P(recover) under every tier (one column ``p_<tier>`` each)."""
        if self.tier_column is None:  # one answer for every tier
            p = _sigmoid(self.raw_score(features, None))
            return pd.DataFrame({probability_column(t): p for t in TIERS}, index=features.index)
        columns = {probability_column(t): _sigmoid(self.raw_score(features, t)) for t in TIERS}
        return pd.DataFrame(columns, index=features.index)

    def contributions(self, features: pd.DataFrame, tier: object) -> tuple[list[str], np.ndarray]:
        """Points against their training average per feature, and the base value last."""
        centred = self.points(features, tier) - self.woe_means_ * self.coef_
        base = self.intercept_ + float(self.woe_means_ @ self.coef_)
        values = np.column_stack([centred, np.full(len(features), base)])
        return list(self.feature_names_), values

    # -- X in, like any scikit-learn classifier --

    def recovery_probability(self, X: pd.DataFrame, tier: object = None) -> np.ndarray:
        """Calibrated P(recover | X, tier); ``tier`` a name or one per row, else ``X``'s column."""
        check_is_fitted(self, "coef_")
        if tier is None and self.tier_column is not None:
            tier = X[self.tier_column].to_numpy(dtype=object)
        return _sigmoid(self.raw_score(self.features_.transform(X), tier))

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        p = self.recovery_probability(X)
        return np.column_stack([1 - p, p])

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return (self.recovery_probability(X) >= 0.5).astype(int)

    # -- JSON state for the model package --

    def state(self) -> dict:
        """Everything needed to score, as plain JSON numbers and strings."""
        check_is_fitted(self, "coef_")
        return {
            "bins": self.bins_,
            "coef": self.coef_.tolist(),
            "intercept": self.intercept_,
            "woe_means": self.woe_means_.tolist(),
            "feature_names": self.feature_names_,
        }

    @classmethod
    def from_state(
        cls, state: dict, features: DebtorFeatures, tier_column: str | None
    ) -> ScorecardModel:
        """Rebuild a fitted scorecard from ``state()`` and fitted features."""
        model = cls(features=features, tier_column=tier_column)
        model.features_ = features
        model.bins_ = state["bins"]
        model.coef_ = np.asarray(state["coef"], dtype=float)
        model.intercept_ = float(state["intercept"])
        model.woe_means_ = np.asarray(state["woe_means"], dtype=float)
        model.feature_names_ = list(state["feature_names"])
        model.feature_names_in_ = features.feature_names_in_
        model.n_features_in_ = features.n_features_in_
        model.classes_ = np.array([0, 1])
        return model


def _bins(binned: object) -> dict:
    """One optbinning variable as JSON: splits (or level groups), WoE per bin, missing WoE."""
    table = binned.binning_table.build()
    n_bins = len(binned.splits) + (1 if binned.dtype == "numerical" else 0)
    woe = table["WoE"].iloc[:n_bins].astype(float).tolist()
    missing = float(table["WoE"].iloc[n_bins + 1])  # the rows after the bins: Special, Missing
    if binned.dtype == "categorical":
        groups = [[str(level) for level in group] for group in binned.splits]
        return {"kind": "categorical", "bins": groups, "woe": woe, "missing_woe": missing}
    return {
        "kind": "numeric",
        "splits": [float(s) for s in binned.splits],
        "woe": woe,
        "missing_woe": missing,
    }
