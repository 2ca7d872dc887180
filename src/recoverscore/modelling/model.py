"""The recovery model: P(recover | features, tier) from one calibrated LightGBM.

History was logged under an old policy, so to compare tiers for one debtor the model takes the
tier as a categorical input and answers for tiers the debtor never got (``tier_matrix``). Early
stopping on a validation split and regularised defaults let the same settings work on a thousand
rows and on a million. Monotone constraints encode what must hold (recovery never rises with days
past due, never falls with assets or partial payments). A calibration map, isotonic or Platt,
chosen by held-out log loss, makes the probabilities mean what they say, which the expected-value
policy needs. The saved package is LightGBM's native text model plus JSON: no pickle.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Literal

import lightgbm as lgb
import numpy as np
import pandas as pd
from pydantic import Field
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss
from sklearn.model_selection import StratifiedKFold, train_test_split
from sklearn.utils.validation import check_is_fitted

from recoverscore.config import StrictModel, default_config_path, load_config
from recoverscore.data.schemas import (
    TIERS,
    Portfolio,
    probability_column,
    required_columns,
    validate,
)
from recoverscore.data.tables import write_text
from recoverscore.errors import RecoverscoreError
from recoverscore.modelling.features import DebtorFeatures
from recoverscore.scoring import drift

TIER_FEATURE = "tier"
FORMAT_VERSION = 1
REFERENCE_ROWS = 50_000  # training rows profiled for drift checks (deciles need no more)
_EPS = 1e-6


# --- configuration ------------------------------------------------------------------------------


class DataConfig(StrictModel):
    id_column: str = "debtor_id"
    target: str = "recovered"
    tier_column: str | None = "given_tier"
    test_fraction: float = Field(default=0.2, gt=0, lt=1)
    min_rows: int = Field(default=200, ge=20)


class FeatureConfig(StrictModel):
    limitation_years: int = Field(default=3, gt=0)
    disabled: list[str] = Field(default_factory=list)
    extra_numeric: list[str] = Field(default_factory=list)
    extra_categorical: list[str] = Field(default_factory=list)

    def transformer(self) -> DebtorFeatures:
        return DebtorFeatures(
            limitation_years=self.limitation_years,
            disabled=tuple(self.disabled),
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
    seed: int = 42
    validation_fraction: float = Field(default=0.1, gt=0, lt=0.5)
    calibration_fraction: float = Field(default=0.1, gt=0, lt=0.5)
    min_holdout_rows: int = Field(default=200, ge=10)
    calibration: Literal["auto", "isotonic", "platt", "none"] = "auto"
    num_threads: int = Field(default=2, ge=1)
    lightgbm: LightGBMConfig = LightGBMConfig()
    monotone: dict[str, Literal[-1, 1]] = Field(default_factory=dict)


class TrainConfig(StrictModel):
    data: DataConfig = DataConfig()
    features: FeatureConfig = FeatureConfig()
    model: ModelConfig = ModelConfig()


def load_train_config(path: str | Path | None = None) -> TrainConfig:
    """Load ``configs/train.yaml`` (or ``path``) into a validated ``TrainConfig``."""
    return load_config(path or default_config_path("train.yaml"), TrainConfig)


# --- training data ------------------------------------------------------------------------------


@dataclass(frozen=True)
class TrainingData:
    """Rows fit to train on, their 0/1 target, and how many input rows were rejected."""

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

    A file with every portfolio column is validated against the portfolio contract and its bad
    rows are set aside (counted, with reasons). A user's own file with other columns needs only
    the columns its enabled features read, an id, the target and (if configured) the tier.
    """
    data = config.data
    for column, key in ((data.id_column, "data.id_column"), (data.target, "data.target")):
        if column not in frame.columns:
            raise RecoverscoreError(f"the data has no column {column!r} (set by {key})")
    if data.tier_column is not None and data.tier_column not in frame.columns:
        raise RecoverscoreError(
            f"the data has no tier column {data.tier_column!r}: set data.tier_column to null "
            "to train a plain recovery model"
        )
    rejected = pd.DataFrame(columns=["row", "reasons"])
    if all(c in frame.columns for c in required_columns(Portfolio)):
        report = validate(frame, Portfolio)
        frame, rejected = report.valid, report.reasons()
    else:
        config.features.transformer().check_columns(frame)
        if frame[data.id_column].duplicated().any():
            raise RecoverscoreError(f"column {data.id_column!r} has duplicate ids")
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


# --- calibration ----------------------------------------------------------------------------------


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, _EPS, 1 - _EPS)
    return np.log(p / (1 - p))


def _fit_calibration(method: str, raw: np.ndarray, y: np.ndarray) -> dict:
    """A calibration map as plain JSON-able numbers."""
    if method == "isotonic":
        iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(raw, y)
        return {
            "method": "isotonic",
            "x": iso.X_thresholds_.tolist(),
            "y": iso.y_thresholds_.tolist(),
        }
    if method == "platt":
        lr = LogisticRegression(C=1e6).fit(_logit(raw).reshape(-1, 1), y)
        return {"method": "platt", "a": float(lr.coef_[0, 0]), "b": float(lr.intercept_[0])}
    return {"method": "none"}


def apply_calibration(calibration: dict, raw: np.ndarray) -> np.ndarray:
    """Map raw LightGBM probabilities through a fitted calibration; monotone non-decreasing."""
    method = calibration["method"]
    if method == "isotonic":
        return np.interp(raw, calibration["x"], calibration["y"])
    if method == "platt":
        return 1.0 / (1.0 + np.exp(-(calibration["a"] * _logit(raw) + calibration["b"])))
    return np.asarray(raw, dtype=float)


def _choose_calibration(raw: np.ndarray, y: np.ndarray, seed: int) -> tuple[str, dict]:
    """Isotonic or Platt, whichever has the lower 2-fold cross-validated log loss."""
    losses = {}
    folds = StratifiedKFold(n_splits=2, shuffle=True, random_state=seed)
    for method in ("isotonic", "platt"):
        pred = np.empty_like(raw)
        for fit_idx, eval_idx in folds.split(raw, y):
            cal = _fit_calibration(method, raw[fit_idx], y[fit_idx])
            pred[eval_idx] = apply_calibration(cal, raw[eval_idx])
        losses[method] = log_loss(y, np.clip(pred, _EPS, 1 - _EPS), labels=[0, 1])
    return min(losses, key=losses.get), losses


# --- the model ----------------------------------------------------------------------------------


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


def _holdout_rows(n: int, fraction: float, minimum: int) -> int:
    """Rows for a holdout: the fraction, but at least ``minimum`` and at most 30% of ``n``."""
    return int(min(max(round(fraction * n), minimum), 0.3 * n))


class RecoveryModel(ClassifierMixin, BaseEstimator):
    """Calibrated LightGBM of recovery, with the collection tier as an input when given.

    features: a ``DebtorFeatures`` transformer (cloned settings; fitted here).
    tier_column: column of ``X`` holding the tier each case was given, or ``None`` for a plain
        recovery model that ignores tiers.
    config: model settings (``ModelConfig``).
    """

    def __init__(
        self,
        features: DebtorFeatures | None = None,
        tier_column: str | None = "given_tier",
        config: ModelConfig | None = None,
    ) -> None:
        self.features = features
        self.tier_column = tier_column
        self.config = config

    # -- fitting --

    def _design(
        self, X: pd.DataFrame, tier: object = None, features: pd.DataFrame | None = None
    ) -> pd.DataFrame:
        """Feature frame (``features`` if already built), plus the tier column if tier-aware.

        The tier comes from ``tier`` (one name or one per row) or else from ``X``.
        """
        design = self.features_.transform(X) if features is None else features.copy(deep=False)
        if self.tier_column is not None:
            values = X[self.tier_column] if tier is None else tier
            if isinstance(values, str):
                values = [values] * len(X)
            tiers = pd.Categorical(np.asarray(values, dtype=object), categories=list(TIERS))
            if pd.isna(tiers).any():
                raise RecoverscoreError(f"unknown tier in {self.tier_column!r}; use {TIERS}")
            design[TIER_FEATURE] = tiers
        return design

    def _params(self, names: list[str]) -> dict:
        cfg = self.config_
        lgbm = cfg.lightgbm.model_dump()
        monotone = [cfg.monotone.get(n, 0) for n in names]
        return {
            "objective": "binary",
            "metric": "binary_logloss",
            "verbosity": -1,
            "seed": cfg.seed,
            "deterministic": True,
            "force_col_wise": True,
            "num_threads": cfg.num_threads,
            "monotone_constraints": monotone,
            "monotone_constraints_method": "basic",  # the only method exact in LightGBM 4.7 here
            **{k: v for k, v in lgbm.items() if k not in ("max_rounds", "early_stopping_rounds")},
        }

    def fit(self, X: pd.DataFrame, y: np.ndarray) -> RecoveryModel:
        """Fit features on the training rows, LightGBM with early stopping, then calibration."""
        self.config_ = self.config or ModelConfig()
        cfg = self.config_
        y = np.asarray(y, dtype=int)
        if len(np.unique(y)) < 2:
            raise RecoverscoreError("the target has a single class: nothing to learn")
        n_valid = _holdout_rows(len(X), cfg.validation_fraction, cfg.min_holdout_rows)
        n_calib = _holdout_rows(len(X), cfg.calibration_fraction, cfg.min_holdout_rows)
        train_idx, rest_idx = train_test_split(
            np.arange(len(X)), test_size=n_valid + n_calib, stratify=y, random_state=cfg.seed
        )
        valid_idx, calib_idx = train_test_split(
            rest_idx, test_size=n_calib, stratify=y[rest_idx], random_state=cfg.seed
        )
        self.features_ = clone(self.features or DebtorFeatures()).fit(X.iloc[train_idx])
        design = self._design(X)
        names = list(design.columns)
        params = self._params(names)
        train_set = lgb.Dataset(design.iloc[train_idx], y[train_idx], free_raw_data=True)
        valid_set = lgb.Dataset(design.iloc[valid_idx], y[valid_idx], reference=train_set)
        self.booster_ = lgb.train(
            params,
            train_set,
            num_boost_round=cfg.lightgbm.max_rounds,
            valid_sets=[valid_set],
            callbacks=[lgb.early_stopping(cfg.lightgbm.early_stopping_rounds, verbose=False)],
        )
        raw = self.booster_.predict(
            design.iloc[calib_idx], num_iteration=self.booster_.best_iteration
        )
        method = cfg.calibration
        self.calibration_losses_ = {}
        if method == "auto":
            method, self.calibration_losses_ = _choose_calibration(raw, y[calib_idx], cfg.seed)
        self.calibration_ = _fit_calibration(method, raw, y[calib_idx])
        self.feature_names_ = names
        self.classes_ = np.array([0, 1])
        self.n_training_rows_ = len(X)
        sample = design.iloc[train_idx].sample(
            n=min(len(train_idx), REFERENCE_ROWS), random_state=cfg.seed
        )
        features = sample.drop(columns=TIER_FEATURE, errors="ignore")
        self.reference_ = drift.reference(features, self.tier_matrix(features, features))
        return self

    # -- predicting --

    def _as_matrix(self, design: pd.DataFrame) -> np.ndarray:
        """The design as LightGBM's float matrix: categoricals as codes, unknown ones missing.

        What ``Booster.predict`` does to a DataFrame on every call, done once per batch: it
        costs about a third of a prediction, and ``tier_matrix`` predicts four times.
        """
        stored = self.booster_.pandas_categorical or []
        columns = [c for c in design.columns if isinstance(design[c].dtype, pd.CategoricalDtype)]
        if [list(design[c].cat.categories) for c in columns] != stored:
            raise RecoverscoreError("the features' categories differ from the trained model's")
        codes = {}
        for column in columns:
            values = design[column].cat.codes.to_numpy(np.float64)
            values[values < 0] = np.nan
            codes[column] = values
        return design.assign(**codes).to_numpy(dtype=np.float64, na_value=np.nan)

    def _predict(self, matrix: np.ndarray) -> np.ndarray:
        return self.booster_.predict(matrix, num_iteration=self.best_iteration_)

    def raw_probability(self, X: pd.DataFrame, tier: object = None) -> np.ndarray:
        """LightGBM's uncalibrated P(recover) (what SHAP contributions explain)."""
        check_is_fitted(self, "booster_")
        return self._predict(self._as_matrix(self._design(X, tier)))

    @property
    def fingerprint(self) -> str:
        """SHA-256 of the LightGBM text model: names this exact model in scored output."""
        check_is_fitted(self, "booster_")
        text = self.booster_.model_to_string(num_iteration=self.best_iteration_)
        return hashlib.sha256(text.encode()).hexdigest()

    @property
    def best_iteration_(self) -> int:
        return self.booster_.best_iteration or self.booster_.current_iteration()

    def recovery_probability(self, X: pd.DataFrame, tier: object = None) -> np.ndarray:
        """Calibrated P(recover | X, tier); ``tier`` a name or one per row, else ``X``'s column."""
        return apply_calibration(self.calibration_, self.raw_probability(X, tier))

    def predict_proba(self, X: pd.DataFrame, tier: object = None) -> np.ndarray:
        """scikit-learn's two columns: P(not recovered), P(recovered)."""
        p = self.recovery_probability(X, tier)
        return np.column_stack([1 - p, p])

    def predict(self, X: pd.DataFrame, tier: object = None) -> np.ndarray:
        return (self.recovery_probability(X, tier) >= 0.5).astype(int)

    def tier_matrix(self, X: pd.DataFrame, features: pd.DataFrame | None = None) -> pd.DataFrame:
        """One column ``p_<tier>`` per tier: the counterfactual P(recover) under each.

        ``features``: ``features_.transform(X)`` when the caller has it already.
        """
        check_is_fitted(self, "booster_")
        design = self._design(X, TIERS[0], features)
        matrix = self._as_matrix(design)  # features once; only the tier column changes
        position = list(design.columns).index(TIER_FEATURE) if self.tier_column else None
        columns = {}
        for code, tier in enumerate(TIERS):
            if position is not None:
                matrix[:, position] = code
            if position is not None or code == 0:
                p = apply_calibration(self.calibration_, self._predict(matrix))
            columns[probability_column(tier)] = p
        return pd.DataFrame(columns, index=X.index)

    def feature_importance(self) -> pd.DataFrame:
        """Total gain and split count per feature, largest gain first."""
        check_is_fitted(self, "booster_")
        return pd.DataFrame(
            {
                "feature": self.booster_.feature_name(),
                "gain": self.booster_.feature_importance("gain"),
                "splits": self.booster_.feature_importance("split"),
            }
        ).sort_values("gain", ascending=False, ignore_index=True)

    # -- the package: native text model plus JSON --

    def save(self, directory: str | Path) -> Path:
        """Write ``model.txt`` (LightGBM text) and ``package.json``; nothing pickled."""
        check_is_fitted(self, "booster_")
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        text = self.booster_.model_to_string(num_iteration=self.best_iteration_)
        write_text(text, directory / "model.txt")
        package = {
            "format_version": FORMAT_VERSION,
            "tiers": list(TIERS),
            "tier_column": self.tier_column,
            "features": {
                "params": {
                    k: list(v) if isinstance(v, tuple) else v
                    for k, v in self.features_.get_params().items()
                },
                "categories": self.features_.categories_,
                "names": list(self.features_.feature_names_out_),
            },
            "feature_names": self.feature_names_,
            "calibration": self.calibration_,
            "calibration_losses": self.calibration_losses_,
            "config": self.config_.model_dump(),
            "n_training_rows": self.n_training_rows_,
            "reference": self.reference_,
            "model_sha256": hashlib.sha256(text.encode()).hexdigest(),
            "versions": {
                p: version(p)
                for p in ("recoverscore", "lightgbm", "scikit-learn", "pandas", "numpy")
            },
        }
        # package.json last: it names the model's hash, so a package is complete once it lands
        write_text(json.dumps(package, indent=2), directory / "package.json")
        return directory

    @classmethod
    def load(cls, directory: str | Path) -> RecoveryModel:
        """Rebuild a fitted model from a package directory written by ``save``."""
        directory = Path(directory)
        try:
            package = json.loads((directory / "package.json").read_text(encoding="utf-8"))
            text = (directory / "model.txt").read_text(encoding="utf-8")
        except FileNotFoundError as error:
            raise RecoverscoreError(
                f"not a recoverscore model package: {error.filename} is missing"
            ) from None
        if package.get("format_version") != FORMAT_VERSION:
            raise RecoverscoreError(
                f"{directory}: unsupported package format {package.get('format_version')!r}"
            )
        if hashlib.sha256(text.encode()).hexdigest() != package["model_sha256"]:
            raise RecoverscoreError(f"{directory}/model.txt does not match its package.json")
        spec = package["features"]
        features = DebtorFeatures(
            **{k: tuple(v) if isinstance(v, list) else v for k, v in spec["params"].items()}
        )
        features.categories_ = spec["categories"]
        features.feature_names_out_ = np.asarray(spec["names"], dtype=object)
        model = cls(
            features=features,
            tier_column=package["tier_column"],
            config=ModelConfig.model_validate(package["config"]),
        )
        model.config_ = model.config
        model.features_ = features
        model.booster_ = lgb.Booster(model_str=text)
        model.calibration_ = package["calibration"]
        model.calibration_losses_ = package["calibration_losses"]
        model.feature_names_ = package["feature_names"]
        model.classes_ = np.array([0, 1])
        model.n_training_rows_ = package["n_training_rows"]
        model.reference_ = package.get("reference")  # packages before drift checks have none
        return model
