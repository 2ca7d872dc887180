"""The recovery model: P(recover | features, tier) from a calibrated LightGBM or a scorecard.

History was logged under an old policy, so to compare tiers for one debtor the model takes the
tier as a categorical input and answers for tiers the debtor never got (``tier_probabilities``).
Monotone constraints encode what must hold (recovery never rises with days past due, never falls
with assets or partial payments), and a calibration map makes the probabilities mean what they
say, which the expected-value policy needs.

Large files train as before: early stopping and calibration on holdouts. Small files (below
``small_data_rows``) cannot spare holdouts: the number of boosting rounds comes from k-fold
cross-validation, calibration is fitted on the out-of-fold predictions, and every row trains the
final booster. On small files ``kind="auto"`` also fits the WoE scorecard on the same folds and
keeps whichever ranks better out of fold: on a thousand rows a scorecard often wins.

``RecoveryModel`` follows scikit-learn's contract (every hyperparameter is an ``__init__``
argument, so ``GridSearchCV`` and ``cross_val_score`` work). Its fitted state is LightGBM's
native text model plus JSON (``state``), or the scorecard's JSON: nothing is pickled.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import lightgbm as lgb
import numpy as np
import pandas as pd
from pydantic import Field, model_validator
from scipy.special import expit
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold, train_test_split
from sklearn.utils.validation import check_is_fitted

from recoverscore.config import StrictModel, default_config_path, load_config
from recoverscore.data.contract import InputContract
from recoverscore.data.schemas import TIERS, probability_column, tier_codes
from recoverscore.errors import RecoverscoreError
from recoverscore.modelling.calibration import (
    apply_calibration,
    choose_calibration,
    fit_calibration,
)
from recoverscore.modelling.features import STANDARD_FEATURES, DebtorFeatures
from recoverscore.modelling.scorecard import ScorecardModel
from recoverscore.modelling.tree_predict import TierPredictor
from recoverscore.modelling.treeshap import TreeShapKernel, UnsupportedModel

TIER_FEATURE = "tier"
KINDS = ("auto", "lightgbm", "scorecard")
# Below this much work (rows, a TreeSHAP row counting as _CONTRIB_COST) LightGBM predicts on one
# thread; above it on OpenMP's default.
_SERIAL_WORK = 2_000
_CONTRIB_COST = 50
_CACHES = ("_shap_kernel", "_explainer", "_predictor")  # per process, built from the booster


# --- configuration ------------------------------------------------------------------------------


class DataConfig(StrictModel):
    id_column: str = "debtor_id"
    target: str = "recovered"
    tier_column: str | None = "given_tier"
    segments: list[str] = Field(default_factory=list)  # extra columns the overlap table splits by
    test_fraction: float = Field(default=0.2, gt=0, lt=1)
    min_rows: int = Field(default=200, ge=20)


class FeatureConfig(StrictModel):
    """Which features the model reads: the standard ones (all but ``disabled``, or exactly
    ``standard`` when given) and the user's own columns."""

    limitation_years: int = Field(default=3, gt=0)
    standard: list[str] | None = None
    disabled: list[str] = Field(default_factory=list)
    extra_numeric: list[str] = Field(default_factory=list)
    extra_categorical: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _one_way(self) -> FeatureConfig:
        if self.standard is not None and self.disabled:
            raise ValueError("give standard (the features to use) or disabled, not both")
        unknown = sorted(set(self.standard or ()) - set(STANDARD_FEATURES))
        if unknown:
            raise ValueError(f"standard: unknown feature(s) {unknown}")
        return self

    def transformer(self) -> DebtorFeatures:
        disabled = self.disabled
        if self.standard is not None:
            disabled = [name for name in STANDARD_FEATURES if name not in self.standard]
        return DebtorFeatures(
            limitation_years=self.limitation_years,
            disabled=tuple(disabled),
            extra_numeric=tuple(self.extra_numeric),
            extra_categorical=tuple(self.extra_categorical),
        )


class LightGBMConfig(StrictModel):
    learning_rate: float = Field(default=0.04, gt=0, le=1)
    num_leaves: int = Field(default=31, ge=2)
    min_data_in_leaf: int = Field(default=100, ge=1)
    lambda_l2: float = Field(default=1.0, ge=0)
    feature_fraction: float = Field(default=0.9, gt=0, le=1)
    bagging_fraction: float = Field(default=0.8, gt=0, le=1)
    bagging_freq: int = Field(default=1, ge=0)
    max_bin: int = Field(default=127, ge=2)
    cat_smooth: float = Field(default=10.0, ge=0)
    max_rounds: int = Field(default=3000, ge=1)
    early_stopping_rounds: int = Field(default=100, ge=1)


class ModelConfig(StrictModel):
    kind: Literal["auto", "lightgbm", "scorecard"] = "auto"
    seed: int = 42
    validation_fraction: float = Field(default=0.1, gt=0, lt=0.5)
    calibration_fraction: float = Field(default=0.1, gt=0, lt=0.5)
    min_holdout_rows: int = Field(default=200, ge=10)
    small_data_rows: int = Field(default=20_000, ge=0)
    cv_folds: int = Field(default=5, ge=2, le=20)
    calibration: Literal["auto", "isotonic", "platt", "none"] = "auto"
    num_threads: int = Field(default=2, ge=1)
    lightgbm: LightGBMConfig = LightGBMConfig()
    monotone: dict[str, Literal[-1, 1]] = Field(default_factory=dict)

    def estimator(
        self, features: DebtorFeatures | None = None, tier_column: str | None = "given_tier"
    ) -> RecoveryModel:
        """A ``RecoveryModel`` with these settings."""
        settings = self.model_dump(exclude={"lightgbm"})
        return RecoveryModel(features, tier_column, **settings, **self.lightgbm.model_dump())


class TrainConfig(StrictModel):
    data: DataConfig = DataConfig()
    features: FeatureConfig = FeatureConfig()
    model: ModelConfig = ModelConfig()

    def estimator(self) -> RecoveryModel:
        """The model these settings describe, unfitted."""
        return self.model.estimator(self.features.transformer(), self.data.tier_column)


def load_train_config(path: str | Path | None = None) -> TrainConfig:
    """Load ``configs/train.yaml`` (or ``path``) into a validated ``TrainConfig``."""
    return load_config(path or default_config_path("train.yaml"), TrainConfig)


# --- training data ------------------------------------------------------------------------------


@dataclass(frozen=True)
class TrainingData:
    """Rows fit to train on, their 0/1 target, and the rows rejected with their failed checks."""

    frame: pd.DataFrame
    y: np.ndarray
    rejected: pd.DataFrame

    def split(self, data: DataConfig, seed: int) -> tuple[TrainingData, TrainingData]:
        """Stratified train / test split; the test rows are never seen in training."""
        train_idx, test_idx = train_test_split(
            np.arange(len(self.frame)),
            test_size=data.test_fraction,
            stratify=self.y,
            random_state=seed,
        )
        train_idx, test_idx = np.sort(train_idx), np.sort(test_idx)
        none = self.rejected.iloc[0:0]
        return (
            TrainingData(self.frame.iloc[train_idx], self.y[train_idx], none),
            TrainingData(self.frame.iloc[test_idx], self.y[test_idx], none),
        )


def prepare_training_data(frame: pd.DataFrame, config: TrainConfig) -> TrainingData:
    """Check a labelled file against the training config; every problem is one clear line.

    The input contract is derived from the file: the standard portfolio columns it has (or its
    features need), its own extra columns and its id column. Rows that break it are set aside
    and counted with their failed checks; a missing column is an error naming the features that
    need it.
    """
    data, features = config.data, config.features
    for column, key in ((data.id_column, "data.id_column"), (data.target, "data.target")):
        if column not in frame.columns:
            raise RecoverscoreError(f"the data has no column {column!r} (set by {key})")
    if data.tier_column is not None and data.tier_column not in frame.columns:
        raise RecoverscoreError(
            f"the data has no tier column {data.tier_column!r}: set data.tier_column to null "
            "to train a plain recovery model"
        )
    transformer = features.transformer()
    transformer.check_columns(frame)
    contract = InputContract.derive(
        frame.columns,
        transformer.required_columns(),
        id_column=data.id_column,
        extra_numeric=features.extra_numeric,
        extra_categorical=features.extra_categorical,
    )
    if "as_of" not in frame.columns:  # no dated feature needs it (checked above)
        contract = contract.model_copy(
            update={"standard": [c for c in contract.standard if c != "as_of"]}
        )
    report = contract.validate(frame)
    frame, rejected = report.valid, report.row_failures()
    if data.tier_column is not None:
        unknown = ~frame[data.tier_column].isin(TIERS)
        if unknown.any():
            shown = sorted(set(frame.loc[unknown, data.tier_column].astype(str).head(5)))
            raise RecoverscoreError(
                f"column {data.tier_column!r} holds unknown tiers {shown}; allowed: {list(TIERS)}"
            )
    y = binary_target(frame[data.target], data.target)
    if len(frame) < data.min_rows:
        raise RecoverscoreError(
            f"too few rows to train: {len(frame)} valid, need at least {data.min_rows} "
            "(data.min_rows)"
        )
    if len(np.unique(y)) < 2:
        raise RecoverscoreError(f"target {data.target!r} has a single class: nothing to learn")
    return TrainingData(frame, y, rejected)


def data_digest(frame: pd.DataFrame) -> str:
    """A fingerprint of the training rows for lineage: it identifies, it does not reveal."""
    hashed = pd.util.hash_pandas_object(frame, index=False).to_numpy()
    columns = ",".join(map(str, frame.columns)).encode()
    return hashlib.sha256(columns + hashed.tobytes()).hexdigest()


def binary_target(values: pd.Series, column: str) -> np.ndarray:
    """0/1 from booleans, 0/1 numbers or true/false text; anything else is a clear error."""
    if pd.api.types.is_bool_dtype(values):
        return values.to_numpy(dtype=int)
    text = values.astype("string").str.strip().str.lower()
    mapped = text.map(
        {"1": 1, "0": 0, "true": 1, "false": 0, "1.0": 1, "0.0": 0, "yes": 1, "no": 0}
    )
    bad = mapped.isna()
    if bad.any():
        shown = sorted(set(values[bad].astype(str).head(5)))
        raise RecoverscoreError(f"target column {column!r} must be binary (0/1); found {shown}")
    return mapped.to_numpy(dtype=int)


# --- the model ----------------------------------------------------------------------------------


RoundCallback = Callable[[int, int], None]
"""``on_round(done, most)``: boosting rounds done, and the most the run may take."""


def _reporting(on_round: RoundCallback) -> Callable[[lgb.callback.CallbackEnv], None]:
    """A LightGBM callback telling ``on_round`` after each boosting round."""

    def report(env: lgb.callback.CallbackEnv) -> None:
        on_round(env.iteration - env.begin_iteration + 1, env.end_iteration - env.begin_iteration)

    return report


def _holdout_rows(n: int, fraction: float, minimum: int) -> int:
    """Rows for a holdout: the fraction, but at least ``minimum`` and at most 30% of ``n``."""
    return int(min(max(round(fraction * n), minimum), 0.3 * n))


def _check_frame(X: object) -> None:
    if not isinstance(X, pd.DataFrame):
        raise RecoverscoreError(
            f"RecoveryModel needs a pandas DataFrame of portfolio rows, got {type(X).__name__}"
        )


def float_matrix(
    frame: pd.DataFrame,
    booster: lgb.Booster,
    columns: list[str] | None = None,
    tiers: np.ndarray | None = None,
) -> np.ndarray:
    """``frame``'s ``columns`` (default all) as ``booster`` predicts from them: categoricals as
    their codes, unknown ones missing, after checking the categories are the trained ones; with
    ``tiers`` (one tier code per row), the tier as a last column, as the design has it.

    What ``Booster.predict`` does to a DataFrame on every call; done once, it saves that cost
    on each later prediction, and its fixed cost on a served request's single row. Column by
    column, so no design frame or column subset is built for it.
    """
    names = list(frame.columns) if columns is None else columns
    matrix = np.empty((len(frame), len(names) + (tiers is not None)), dtype=np.float64)
    categories = []
    pairs = frame.items() if columns is None else ((name, frame[name]) for name in names)
    for position, (_, column) in enumerate(pairs):
        if isinstance(column.dtype, pd.CategoricalDtype):
            categories.append(list(column.dtype.categories))
            codes = column.array.codes.astype(np.float64)
            codes[codes < 0] = np.nan
            matrix[:, position] = codes
        else:
            matrix[:, position] = column.to_numpy(dtype=np.float64, na_value=np.nan)
    if tiers is not None:
        categories.append(list(TIERS))
        matrix[:, -1] = tiers
    if categories != (booster.pandas_categorical or []):
        raise RecoverscoreError("the features' categories differ from the trained model's")
    return matrix


class RecoveryModel(ClassifierMixin, BaseEstimator):
    """Calibrated LightGBM (or WoE scorecard) of recovery, with the tier as an input when given.

    features: a ``DebtorFeatures`` transformer (cloned settings; fitted here).
    tier_column: column of ``X`` holding the tier each case was given, or ``None`` for a plain
        recovery model that ignores tiers.
    kind: ``lightgbm``, ``scorecard``, or ``auto`` (LightGBM on large files; on files below
        ``small_data_rows`` whichever has the better out-of-fold AUC on the same folds).
    The LightGBM settings, ``monotone`` (feature to +1 / -1), ``calibration`` and the holdout and
    cross-validation sizes are as in ``configs/train.yaml``'s ``model`` section.
    """

    def __init__(
        self,
        features: DebtorFeatures | None = None,
        tier_column: str | None = "given_tier",
        *,
        kind: str = "auto",
        seed: int = 42,
        validation_fraction: float = 0.1,
        calibration_fraction: float = 0.1,
        min_holdout_rows: int = 200,
        small_data_rows: int = 20_000,
        cv_folds: int = 5,
        calibration: str = "auto",
        num_threads: int = 2,
        monotone: dict[str, int] | None = None,
        learning_rate: float = 0.04,
        num_leaves: int = 31,
        min_data_in_leaf: int = 100,
        lambda_l2: float = 1.0,
        feature_fraction: float = 0.9,
        bagging_fraction: float = 0.8,
        bagging_freq: int = 1,
        max_bin: int = 127,
        cat_smooth: float = 10.0,
        max_rounds: int = 3000,
        early_stopping_rounds: int = 100,
    ) -> None:
        self.features = features
        self.tier_column = tier_column
        self.kind = kind
        self.seed = seed
        self.validation_fraction = validation_fraction
        self.calibration_fraction = calibration_fraction
        self.min_holdout_rows = min_holdout_rows
        self.small_data_rows = small_data_rows
        self.cv_folds = cv_folds
        self.calibration = calibration
        self.num_threads = num_threads
        self.monotone = monotone
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.min_data_in_leaf = min_data_in_leaf
        self.lambda_l2 = lambda_l2
        self.feature_fraction = feature_fraction
        self.bagging_fraction = bagging_fraction
        self.bagging_freq = bagging_freq
        self.max_bin = max_bin
        self.cat_smooth = cat_smooth
        self.max_rounds = max_rounds
        self.early_stopping_rounds = early_stopping_rounds

    # -- the design: features plus the tier --

    def _tiers(self, X: pd.DataFrame | None, tier: object, n: int) -> np.ndarray | None:
        """One tier name per row: ``tier`` (one name or one per row), else ``X``'s column."""
        if self.tier_column is None:
            return None
        values = X[self.tier_column] if tier is None else tier
        if isinstance(values, str):
            values = [values] * n
        values = np.asarray(values, dtype=object)
        if not np.isin(values, TIERS).all():
            raise RecoverscoreError(f"unknown tier in {self.tier_column!r}; use {TIERS}")
        return values

    def _design(
        self, X: pd.DataFrame | None, tier: object = None, features: pd.DataFrame | None = None
    ) -> pd.DataFrame:
        """Feature frame (``features`` if already built), plus the tier column if tier-aware."""
        design = self.features_.transform(X) if features is None else features.copy(deep=False)
        tiers = self._tiers(X, tier, len(design))
        if tiers is not None:
            design[TIER_FEATURE] = pd.Categorical(tiers, categories=list(TIERS))
        return design

    def _params(self, names: list[str]) -> dict:
        monotone = self.monotone or {}
        return {
            "objective": "binary",
            "metric": "binary_logloss",
            "verbosity": -1,
            "seed": self.seed,
            "deterministic": True,
            "force_col_wise": True,
            "num_threads": self.num_threads,
            "monotone_constraints": [monotone.get(n, 0) for n in names],
            "monotone_constraints_method": "basic",  # the only method exact in LightGBM 4.7 here
            "learning_rate": self.learning_rate,
            "num_leaves": self.num_leaves,
            "min_data_in_leaf": self.min_data_in_leaf,
            "lambda_l2": self.lambda_l2,
            "feature_fraction": self.feature_fraction,
            "bagging_fraction": self.bagging_fraction,
            "bagging_freq": self.bagging_freq,
            "max_bin": self.max_bin,
            "cat_smooth": self.cat_smooth,
        }

    # -- fitting --

    def fit(
        self, X: pd.DataFrame, y: np.ndarray, on_round: RoundCallback | None = None
    ) -> RecoveryModel:
        """Fit the features, then LightGBM (holdouts or k-fold) or the scorecard.

        ``on_round(done, most)`` is told after each boosting round (for progress displays):
        rounds done so far and the most this boosting run may take (early stopping may end it
        sooner).
        """
        _check_frame(X)
        if self.kind not in KINDS:
            raise RecoverscoreError(f"unknown model kind {self.kind!r}; choose one of {KINDS}")
        y = np.asarray(y, dtype=int)
        if len(np.unique(y)) < 2:
            raise RecoverscoreError("the target has a single class: nothing to learn")
        for cache in _CACHES:  # built from the previous booster, if any
            self.__dict__.pop(cache, None)
        self.features_ = clone(self.features or DebtorFeatures()).fit(X)
        self.feature_names_in_ = self.features_.feature_names_in_
        self.n_features_in_ = self.features_.n_features_in_
        self.input_columns_ = [str(c) for c in X.columns]
        self.classes_ = np.array([0, 1])
        self.n_training_rows_ = len(X)
        self.cv_ = {}
        small = len(X) < self.small_data_rows
        if self.kind == "scorecard":
            self.kind_ = "scorecard"
        elif self.kind == "lightgbm" or not small:
            self.kind_ = "lightgbm"
        else:  # auto on a small file: both on the same folds, the better out of fold wins
            self.kind_ = "auto"
        callbacks = [] if on_round is None else [_reporting(on_round)]
        if self.kind_ != "scorecard" and small:
            self._fit_boosted_cv(X, y, callbacks)
        elif self.kind_ != "scorecard":
            self._fit_boosted_holdout(X, y, callbacks)
        if self.kind_ == "auto":
            oof = _scorecard_oof(X, y, self._scorecard(), self._folds(y))
            self.cv_["scorecard_oof_auc"] = auc(y, oof)
            better = self.cv_["scorecard_oof_auc"] > self.cv_["lightgbm_oof_auc"]
            self.kind_ = "scorecard" if better else "lightgbm"
        if self.kind_ == "scorecard":
            self.scorecard_ = self._scorecard().fit(X, y)
            for name in ("booster_", "calibration_", "calibration_losses_", "feature_names_"):
                self.__dict__.pop(name, None)
        return self

    def _scorecard(self) -> ScorecardModel:
        return ScorecardModel(self.features_, self.tier_column)

    def _folds(self, y: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
        folds = min(self.cv_folds, int(np.bincount(y).min()))
        if folds < 2:
            raise RecoverscoreError("too few rows of the rarer outcome for cross-validation")
        splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=self.seed)
        return list(splitter.split(np.zeros(len(y)), y))

    def _fit_calibration(self, raw: np.ndarray, y: np.ndarray) -> None:
        method = self.calibration
        self.calibration_losses_ = {}
        if method == "auto":
            method, self.calibration_losses_ = choose_calibration(raw, y, self.seed)
        self.calibration_ = fit_calibration(method, raw, y)

    def _fit_boosted_holdout(self, X: pd.DataFrame, y: np.ndarray, callbacks: list) -> None:
        """Early stopping and calibration on holdouts of the training rows (large files)."""
        n_valid = _holdout_rows(len(X), self.validation_fraction, self.min_holdout_rows)
        n_calib = _holdout_rows(len(X), self.calibration_fraction, self.min_holdout_rows)
        train_idx, rest_idx = train_test_split(
            np.arange(len(X)), test_size=n_valid + n_calib, stratify=y, random_state=self.seed
        )
        valid_idx, calib_idx = train_test_split(
            rest_idx, test_size=n_calib, stratify=y[rest_idx], random_state=self.seed
        )
        design = self._design(X)
        params = self._params(list(design.columns))
        train_set = lgb.Dataset(design.iloc[train_idx], y[train_idx], free_raw_data=True)
        valid_set = lgb.Dataset(design.iloc[valid_idx], y[valid_idx], reference=train_set)
        self.booster_ = lgb.train(
            params,
            train_set,
            num_boost_round=self.max_rounds,
            valid_sets=[valid_set],
            callbacks=[lgb.early_stopping(self.early_stopping_rounds, verbose=False), *callbacks],
        )
        raw = self.booster_.predict(
            design.iloc[calib_idx], num_iteration=self.booster_.best_iteration
        )
        self._fit_calibration(raw, y[calib_idx])
        self.feature_names_ = list(design.columns)

    def _fit_boosted_cv(self, X: pd.DataFrame, y: np.ndarray, callbacks: list) -> None:
        """Rounds from k-fold CV, calibration on out-of-fold predictions, every row trains."""
        folds = self._folds(y)
        design = self._design(X)
        # a small file is quicker on one thread: the threads' start-up costs more than each
        # round's work (and stalls badly when another process holds the cores)
        params = {**self._params(list(design.columns)), "num_threads": 1}
        dataset = lgb.Dataset(design, y, free_raw_data=False)
        result = lgb.cv(
            params,
            dataset,
            num_boost_round=self.max_rounds,
            folds=folds,
            callbacks=[lgb.early_stopping(self.early_stopping_rounds, verbose=False), *callbacks],
            return_cvbooster=True,
        )
        rounds = len(result["valid binary_logloss-mean"])
        oof = np.empty(len(y))
        for booster, (_, held_out) in zip(result["cvbooster"].boosters, folds, strict=True):
            oof[held_out] = booster.predict(design.iloc[held_out], num_iteration=rounds)
        self.cv_ = {"folds": len(folds), "rounds": rounds, "lightgbm_oof_auc": auc(y, oof)}
        self._fit_calibration(oof, y)
        self.booster_ = lgb.train(params, dataset, num_boost_round=rounds, callbacks=callbacks)
        self.feature_names_ = list(design.columns)

    # -- predicting from already-built features --

    def _as_matrix(self, design: pd.DataFrame) -> np.ndarray:
        """The design as LightGBM's float matrix (``float_matrix``), once per batch: converting
        costs about a third of a prediction."""
        return float_matrix(design, self.booster_)

    def _matrix(self, features: pd.DataFrame, tier: object) -> np.ndarray:
        """``_as_matrix(_design(None, tier, features))`` without building the design frame."""
        tiers = self._tiers(None, tier, len(features))
        if tiers is None:
            return float_matrix(features, self.booster_)
        return float_matrix(features, self.booster_, tiers=tier_codes(tiers).astype(np.float64))

    @property
    def best_iteration_(self) -> int:
        check_is_fitted(self, "booster_")
        return self.booster_.best_iteration or self.booster_.current_iteration()

    def _predict(self, matrix: np.ndarray, raw: bool = False, contrib: bool = False) -> np.ndarray:
        """LightGBM's prediction, on one thread for small work (a served request's rows).

        A thread team costs more than a few rows' trees, and on a busy machine each call
        waits for the other threads to be scheduled: single-row predictions took 20 ms with
        two threads on a loaded 2-core machine and 0.03 ms with one. ``0``: OpenMP's default.
        """
        work = len(matrix) * (_CONTRIB_COST if contrib else 1)
        return self.booster_.predict(
            matrix,
            num_iteration=self.best_iteration_,
            raw_score=raw,
            pred_contrib=contrib,
            num_threads=1 if work < _SERIAL_WORK else 0,
        )

    def raw_score(self, features: pd.DataFrame, tier: object) -> np.ndarray:
        """Log-odds before calibration under ``tier`` (what the contributions add up to)."""
        check_is_fitted(self, "kind_")
        if self.kind_ == "scorecard":
            return self.scorecard_.raw_score(features, tier)
        return self._predict(self._matrix(features, tier), raw=True)

    def probability_of_log_odds(self, raw: np.ndarray) -> np.ndarray:
        """The calibrated P(recover) that raw log-odds (``raw_score``, SHAP sums) stand for."""
        check_is_fitted(self, "kind_")
        p = expit(np.asarray(raw, dtype=float))
        return p if self.kind_ == "scorecard" else apply_calibration(self.calibration_, p)

    def tier_probabilities(
        self, X: pd.DataFrame | None = None, features: pd.DataFrame | None = None
    ) -> pd.DataFrame:
        """One column ``p_<tier>`` per tier: the counterfactual P(recover) under each.

        ``features``: ``features_.transform(X)`` when the caller has it already (then ``X`` may
        be omitted).
        """
        check_is_fitted(self, "kind_")
        if features is None:
            _check_frame(X)
            features = self.features_.transform(X)
        if self.kind_ == "scorecard":
            return self.scorecard_.tier_probabilities(features)
        matrix = self._matrix(features, TIERS[0])
        predictor = self._tier_predictor()
        if predictor is not None:  # every tier in one walk of the trees
            p = predictor.probabilities(matrix)
        else:  # features once; only the tier column changes
            p = np.empty((len(matrix), len(TIERS) if self.tier_column else 1))
            for code in range(p.shape[1]):
                if self.tier_column:
                    matrix[:, -1] = code  # the tier is the matrix's last column
                p[:, code] = self._predict(matrix)
        p = apply_calibration(self.calibration_, p)
        return pd.DataFrame(
            {
                probability_column(tier): p[:, min(k, p.shape[1] - 1)]
                for k, tier in enumerate(TIERS)
            },
            index=features.index,
        )

    def _tier_predictor(self) -> TierPredictor | None:
        """The one-walk predictor of every tier, built once per loaded model (never saved or
        pickled), or ``None`` where it cannot reproduce LightGBM (then ``predict`` per tier)."""
        if "_predictor" not in self.__dict__:
            position = self.feature_names_.index(TIER_FEATURE) if self.tier_column else None
            try:
                self._predictor = TierPredictor.from_booster(
                    self.booster_, self.best_iteration_, position, len(TIERS)
                )
            except UnsupportedModel:
                self._predictor = None
        return self._predictor

    @property
    def input_names(self) -> list[str]:
        """The model's inputs, in the order of ``contributions``: features, then the tier."""
        check_is_fitted(self, "kind_")
        if self.kind_ == "scorecard":
            return list(self.scorecard_.feature_names_)
        return list(self.feature_names_)

    def contributions(
        self, features: pd.DataFrame, tier: object = None
    ) -> tuple[list[str], np.ndarray]:
        """Exact SHAP values of the log-odds under ``tier`` on already-built ``features``.

        Returns the input names (the tier among them for a tier-aware model) and an
        ``n x (inputs + 1)`` array whose last column is the base value; each row adds up to
        ``raw_score``. LightGBM's TreeSHAP for boosted models, centred points for a scorecard.
        """
        check_is_fitted(self, "kind_")
        if self.kind_ == "scorecard":
            return self.scorecard_.contributions(features, tier)
        names = list(self.feature_names_)
        if len(features) == 0:
            return names, np.empty((0, len(names) + 1))
        matrix = self._matrix(features, tier)
        kernel = self._kernel()
        if kernel is not None:
            return names, kernel.shap_values(matrix, self.num_threads)
        return names, np.asarray(self._predict(matrix, contrib=True), dtype=float)

    def _kernel(self) -> TreeShapKernel | None:
        """The fast TreeSHAP kernel of this booster, built once and kept on the model (never
        saved or pickled), or ``None`` where it cannot be exact (then ``pred_contrib``)."""
        if "_shap_kernel" not in self.__dict__:
            try:
                self._shap_kernel = TreeShapKernel.from_booster(
                    self.booster_, num_iteration=self.best_iteration_
                )
                self._explainer = "recoverscore TreeSHAP kernel"
            except UnsupportedModel as error:
                self._shap_kernel = None
                self._explainer = f"LightGBM pred_contrib ({error.reason})"
        return self._shap_kernel

    @property
    def explainer(self) -> str:
        """What computes this model's SHAP values: the kernel, or why LightGBM's own."""
        check_is_fitted(self, "kind_")
        if self.kind_ == "scorecard":
            return "scorecard points"
        self._kernel()
        return self._explainer

    def __getstate__(self) -> dict:
        """Pickled (e.g. sent to Dask workers) without the kernels: each process builds its own."""
        state = super().__getstate__()
        for cache in _CACHES:
            state.pop(cache, None)
        return state

    # -- X in, like any scikit-learn classifier --

    def recovery_probability(self, X: pd.DataFrame, tier: object = None) -> np.ndarray:
        """Calibrated P(recover | X, tier); ``tier`` a name or one per row, else ``X``'s column."""
        check_is_fitted(self, "kind_")
        _check_frame(X)
        if self.kind_ == "scorecard":
            return self.scorecard_.recovery_probability(X, tier)
        raw = self._predict(self._as_matrix(self._design(X, tier)))
        return apply_calibration(self.calibration_, raw)

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        """scikit-learn's two columns: P(not recovered), P(recovered)."""
        p = self.recovery_probability(X)
        return np.column_stack([1 - p, p])

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return (self.recovery_probability(X) >= 0.5).astype(int)

    def feature_importance(self) -> pd.DataFrame:
        """Importance per input, largest first: LightGBM's total gain, or a scorecard's
        coefficient times the spread of its WoE."""
        check_is_fitted(self, "kind_")
        if self.kind_ == "scorecard":
            card = self.scorecard_
            spread = [
                np.ptp(card.bins_[name]["woe"]) if card.bins_[name]["woe"] else 0.0
                for name in card.feature_names_
            ]
            importance = np.abs(card.coef_) * np.asarray(spread)
            names = card.feature_names_
        else:
            importance = self.booster_.feature_importance("gain")
            names = self.booster_.feature_name()
        return pd.DataFrame({"feature": names, "importance": importance}).sort_values(
            "importance", ascending=False, ignore_index=True
        )

    # -- state for the model package: LightGBM text and JSON --

    def state(self) -> tuple[str | None, dict]:
        """The LightGBM text model (``None`` for a scorecard) and everything else as JSON."""
        check_is_fitted(self, "kind_")
        state = {
            "kind": self.kind_,
            "params": {k: v for k, v in self.get_params(deep=False).items() if k != "features"},
            "features": {
                "params": {
                    k: list(v) if isinstance(v, tuple) else v
                    for k, v in self.features_.get_params().items()
                },
                "categories": self.features_.categories_,
                "names": list(self.features_.feature_names_out_),
            },
            "input_columns": self.input_columns_,
            "n_training_rows": self.n_training_rows_,
            "cv": self.cv_,
        }
        if self.kind_ == "scorecard":
            return None, {**state, "scorecard": self.scorecard_.state()}
        text = self.booster_.model_to_string(num_iteration=self.best_iteration_)
        boosted = {
            "feature_names": self.feature_names_,
            "calibration": self.calibration_,
            "calibration_losses": self.calibration_losses_,
        }
        return text, {**state, **boosted}

    @classmethod
    def from_state(cls, text: str | None, state: dict) -> RecoveryModel:
        """Rebuild a fitted model from ``state()`` (LightGBM text checked by the caller)."""
        spec = state["features"]
        features = DebtorFeatures(
            **{k: tuple(v) if isinstance(v, list) else v for k, v in spec["params"].items()}
        )
        features.categories_ = spec["categories"]
        features.feature_names_out_ = np.asarray(spec["names"], dtype=object)
        features.feature_names_in_ = np.asarray(features.required_columns(), dtype=object)
        features.n_features_in_ = len(features.feature_names_in_)
        model = cls(features=features, **state["params"])
        model.features_ = features
        model.feature_names_in_ = features.feature_names_in_
        model.n_features_in_ = features.n_features_in_
        model.input_columns_ = list(state["input_columns"])
        model.classes_ = np.array([0, 1])
        model.n_training_rows_ = state["n_training_rows"]
        model.cv_ = state["cv"]
        model.kind_ = state["kind"]
        if model.kind_ == "scorecard":
            model.scorecard_ = ScorecardModel.from_state(
                state["scorecard"], features, model.tier_column
            )
        else:
            model.booster_ = lgb.Booster(model_str=text)
            model.feature_names_ = list(state["feature_names"])
            model.calibration_ = state["calibration"]
            model.calibration_losses_ = state["calibration_losses"]
        return model

    def input_contract(self, id_column: str = "debtor_id") -> InputContract:
        """The contract of the columns this model was trained on (for a package)."""
        check_is_fitted(self, "kind_")
        return InputContract.derive(
            self.input_columns_,
            self.features_.required_columns(),
            id_column=id_column,
            extra_numeric=self.features_.extra_numeric,
            extra_categorical=self.features_.extra_categorical,
        )


def auc(y: np.ndarray, p: np.ndarray) -> float:
    return float(roc_auc_score(y, p))


def _scorecard_oof(
    X: pd.DataFrame,
    y: np.ndarray,
    card: ScorecardModel,
    folds: list[tuple[np.ndarray, np.ndarray]],
) -> np.ndarray:
    """Out-of-fold P(recover) of a scorecard under the given tiers (empty folds: nothing)."""
    oof = np.empty(len(y))
    for train_idx, held_out in folds:
        fitted = clone(card).fit(X.iloc[train_idx], y[train_idx])
        oof[held_out] = fitted.recovery_probability(X.iloc[held_out])
    return oof


# --- cross-validated comparison (recoverscore train --cv K) -----------------------------------


def cross_validate(
    frame: pd.DataFrame, y: np.ndarray, model: RecoveryModel, folds: int = 5
) -> pd.DataFrame:
    """Out-of-fold AUC of ``model`` and of the WoE scorecard on the same stratified folds.

    One row per candidate: mean and standard deviation of the per-fold AUC and the AUC of the
    pooled out-of-fold predictions.
    """
    y = np.asarray(y, dtype=int)
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=model.seed)
    card = ScorecardModel(model.features, model.tier_column)
    per_fold: dict[str, list[float]] = {"model": [], "scorecard": []}
    pooled = {name: np.empty(len(y)) for name in per_fold}
    for train_idx, held_out in splitter.split(np.zeros(len(y)), y):
        train, test = frame.iloc[train_idx], frame.iloc[held_out]
        for name, candidate in (("model", model), ("scorecard", card)):
            fitted = clone(candidate).fit(train, y[train_idx])
            p = fitted.recovery_probability(test)
            pooled[name][held_out] = p
            per_fold[name].append(auc(y[held_out], p))
    return pd.DataFrame(
        {
            "candidate": list(per_fold),
            "auc_mean": [float(np.mean(v)) for v in per_fold.values()],
            "auc_sd": [float(np.std(v, ddof=1)) for v in per_fold.values()],
            "oof_auc": [auc(y, pooled[name]) for name in per_fold],
            "folds": folds,
        }
    ).set_index("candidate")
