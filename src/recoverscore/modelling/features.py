"""Debtor features as of a date.

Debt age and limitation status are computed here once and used everywhere: by the synthetic
world's truth, by the aging buckets that reports and the matrix policy use, and by the model's
feature transformer ``DebtorFeatures``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pandera.pandas as pa
from pandera.typing import Series
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from recoverscore.errors import RecoverscoreError

AGING_BUCKETS: tuple[str, ...] = ("0-30", "31-90", "91-180", "181-365", "1-3y", "time_barred")
"""Aging buckets; ``1-3y`` holds every debt over a year old that is still within limitation
(a written acknowledgment or a partial payment can keep an old debt alive)."""

AMOUNT_BANDS: tuple[str, ...] = ("<10k", "10k-100k", "100k-1M", ">=1M")
_AMOUNT_EDGES = np.array([10_000, 100_000, 1_000_000])
_BUCKET_EDGES = np.array([30, 90, 180, 365])
_ASSET_COLUMNS = ("owns_real_estate", "owns_vehicle", "has_equity_holdings")


def days_past_due(due_date: pd.Series, as_of: pd.Series | pd.Timestamp) -> np.ndarray:
    """Whole days from due date to the as-of date (0 on the due date)."""
    return (pd.to_datetime(as_of) - due_date).dt.days.to_numpy()


def limitation_expiry(
    due_date: pd.Series, last_acknowledgment_date: pd.Series, years: int
) -> pd.Series:
    """The day the limitation period ends: ``years`` after the due date or last interruption."""
    start = last_acknowledgment_date.where(
        last_acknowledgment_date.notna() & (last_acknowledgment_date > due_date), due_date
    )
    return start + pd.DateOffset(years=years)


def is_time_barred(
    due_date: pd.Series,
    last_acknowledgment_date: pd.Series,
    as_of: pd.Series | pd.Timestamp,
    years: int,
) -> np.ndarray:
    """True where the limitation period ended before the as-of date."""
    expiry = limitation_expiry(due_date, last_acknowledgment_date, years)
    return (pd.to_datetime(as_of) > expiry).to_numpy()


def aging_bucket(days: np.ndarray, time_barred: np.ndarray) -> np.ndarray:
    """Bucket label for each debt: by days past due, or ``time_barred`` whatever its age."""
    index = np.searchsorted(_BUCKET_EDGES, np.asarray(days), side="left")
    labels = np.asarray(AGING_BUCKETS, dtype=object)[index]
    return np.where(np.asarray(time_barred, dtype=bool), AGING_BUCKETS[-1], labels)


# --- the standard features ----------------------------------------------------------------------


@dataclass(frozen=True)
class _Feature:
    """One standard feature: the raw columns it needs and how it is computed."""

    needs: tuple[str, ...]
    compute: Callable[[pd.DataFrame, pd.Series, int], object]
    categories: tuple[str, ...] | None = None  # fixed levels; None: numeric or learned levels
    learned: bool = False  # categorical whose levels are learned in fit


def _days(df: pd.DataFrame, as_of: pd.Series, years: int) -> np.ndarray:
    return days_past_due(df["due_date"], as_of)


def _barred(df: pd.DataFrame, as_of: pd.Series, years: int) -> np.ndarray:
    return is_time_barred(df["due_date"], df["last_acknowledgment_date"], as_of, years)


def _flag(column: str) -> _Feature:
    return _Feature((column,), lambda df, a, y: df[column].astype(float).to_numpy())


def _count(column: str) -> _Feature:
    return _Feature((column,), lambda df, a, y: df[column].to_numpy(dtype=float))


def _ratio(column: str, scale: float) -> Callable:
    def compute(df: pd.DataFrame, as_of: pd.Series, years: int) -> np.ndarray:
        means = df[column].to_numpy(dtype=float, na_value=np.nan) * scale
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.log(np.maximum(means, 1.0) / df["principal"].to_numpy(dtype=float))

    return compute


def _days_left(df: pd.DataFrame, as_of: pd.Series, years: int) -> np.ndarray:
    expiry = limitation_expiry(df["due_date"], df["last_acknowledgment_date"], years)
    return (expiry - as_of).dt.days.to_numpy(dtype=float)


def _assets(df: pd.DataFrame) -> np.ndarray:
    return df[list(_ASSET_COLUMNS)].to_numpy(dtype=float).sum(axis=1)


_LIMITATION = ("due_date", "last_acknowledgment_date")

STANDARD_FEATURES: dict[str, _Feature] = {
    "days_past_due": _Feature(("due_date",), _days),
    "aging_bucket": _Feature(  # ordinal 0 (0-30) .. 5 (time-barred), so it can be constrained
        _LIMITATION,
        lambda df, a, y: pd.Categorical(
            aging_bucket(_days(df, a, y), _barred(df, a, y)), categories=AGING_BUCKETS
        ).codes.astype(float),
    ),
    "time_barred": _Feature(_LIMITATION, lambda df, a, y: _barred(df, a, y).astype(float)),
    "days_left_in_limitation": _Feature(_LIMITATION, _days_left),
    "log_principal": _Feature(("principal",), lambda df, a, y: np.log(df["principal"])),
    "amount_band": _Feature(
        ("principal",),
        lambda df, a, y: np.asarray(AMOUNT_BANDS, dtype=object)[
            np.searchsorted(_AMOUNT_EDGES, df["principal"].to_numpy(), side="right")
        ],
        categories=AMOUNT_BANDS,
    ),
    "days_since_last_payment": _Feature(
        ("last_payment_date",),
        lambda df, a, y: (a - df["last_payment_date"]).dt.days.to_numpy(dtype=float),
    ),
    "n_partial_payments": _count("n_partial_payments"),
    "n_broken_promises": _count("n_broken_promises"),
    "contact_status": _Feature(
        ("contact_status",),
        lambda df, a, y: df["contact_status"],
        categories=("reachable", "intermittent", "lost"),
    ),
    "disputes_debt": _flag("disputes_debt"),
    "n_prior_lawsuits": _count("n_prior_lawsuits"),
    "n_prior_judgments": _count("n_prior_judgments"),
    "on_dishonest_list": _flag("on_dishonest_list"),
    "n_prior_enforcements": _count("n_prior_enforcements"),
    "owns_real_estate": _flag("owns_real_estate"),
    "owns_vehicle": _flag("owns_vehicle"),
    "has_equity_holdings": _flag("has_equity_holdings"),
    "n_assets": _Feature(_ASSET_COLUMNS, lambda df, a, y: _assets(df)),
    "has_attachable_asset": _Feature(
        _ASSET_COLUMNS, lambda df, a, y: (_assets(df) > 0).astype(float)
    ),
    "log_income_to_principal": _Feature(
        ("monthly_income", "principal"), _ratio("monthly_income", 12.0)
    ),
    "log_revenue_to_principal": _Feature(
        ("annual_revenue", "principal"), _ratio("annual_revenue", 1.0)
    ),
    "pays_tax": _Feature(
        ("pays_tax",), lambda df, a, y: df["pays_tax"].astype("Float64").to_numpy(na_value=np.nan)
    ),
    "debtor_type": _Feature(
        ("debtor_type",),
        lambda df, a, y: df["debtor_type"],
        categories=("individual", "enterprise"),
    ),
    "region": _Feature(("region",), lambda df, a, y: df["region"], learned=True),
    "industry": _Feature(("industry",), lambda df, a, y: df["industry"], learned=True),
    "is_elderly": _flag("is_elderly"),
    "disaster_affected": _flag("disaster_affected"),
}
"""The standard debtor features, each computed from named raw portfolio columns."""


class DebtorFeatures(TransformerMixin, BaseEstimator):
    """Turns a raw portfolio into model features as of each row's ``as_of`` date.

    Parameters follow scikit-learn's contract: stored untouched in ``__init__``, used in ``fit``.

    as_of: date to compute features for; ``None`` uses the frame's ``as_of`` column.
    limitation_years: the limitation period (3 years in PRC civil law).
    disabled: standard features to leave out, e.g. those a user's file has no columns for.
    extra_numeric, extra_categorical: users' own columns passed through as features.
    """

    def __init__(
        self,
        as_of: str | pd.Timestamp | None = None,
        limitation_years: int = 3,
        disabled: Sequence[str] = (),
        extra_numeric: Sequence[str] = (),
        extra_categorical: Sequence[str] = (),
    ) -> None:
        self.as_of = as_of
        self.limitation_years = limitation_years
        self.disabled = disabled
        self.extra_numeric = extra_numeric
        self.extra_categorical = extra_categorical

    def _standard(self) -> dict[str, _Feature]:
        unknown = sorted(set(self.disabled) - set(STANDARD_FEATURES))
        if unknown:
            raise RecoverscoreError(
                f"features.disabled names unknown feature(s) {unknown}; "
                f"standard features: {sorted(STANDARD_FEATURES)}"
            )
        return {k: f for k, f in STANDARD_FEATURES.items() if k not in set(self.disabled)}

    def required_columns(self) -> list[str]:
        """Raw columns the enabled features read, in a stable order."""
        needed = {c for f in self._standard().values() for c in f.needs}
        needed |= set(self.extra_numeric) | set(self.extra_categorical)
        if self.as_of is None:
            needed.add("as_of")
        return sorted(needed)

    def check_columns(self, frame: pd.DataFrame) -> None:
        """A one-line error naming missing raw columns and the features that need them."""
        missing = [c for c in self.required_columns() if c not in frame.columns]
        if missing:
            users = [name for name, f in self._standard().items() if set(f.needs) & set(missing)]
            hint = f"; or switch off features {users} in features.disabled" if users else ""
            raise RecoverscoreError(f"the data lacks column(s) {missing}{hint}")

    def fit(self, X: pd.DataFrame, y: object = None) -> DebtorFeatures:
        """Learn the levels of free-text categoricals (region, industry, users' own)."""
        self.check_columns(X)
        learned = [k for k, f in self._standard().items() if f.learned]
        self.categories_ = {}
        for name in learned + list(self.extra_categorical):
            values = X[name].dropna().astype(str)
            self.categories_[name] = sorted(values.unique().tolist())
        for name, feature in self._standard().items():
            if feature.categories is not None:
                self.categories_[name] = list(feature.categories)
        self.feature_names_out_ = np.asarray(
            list(self._standard()) + list(self.extra_numeric) + list(self.extra_categorical),
            dtype=object,
        )
        self.n_features_in_ = X.shape[1]
        return self

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        """Features for every row; categoricals carry the levels seen in fit (others: missing)."""
        check_is_fitted(self, "feature_names_out_")
        self.check_columns(X)
        as_of = X["as_of"] if self.as_of is None else pd.Series(pd.Timestamp(self.as_of), X.index)
        columns = {}
        for name, feature in self._standard().items():
            columns[name] = feature.compute(X, as_of, self.limitation_years)
        for name in self.extra_numeric:
            columns[name] = pd.to_numeric(X[name], errors="coerce").to_numpy(dtype=float)
        for name in self.extra_categorical:
            columns[name] = X[name]
        out = pd.DataFrame({k: np.asarray(v) for k, v in columns.items()}, index=X.index)
        for name, levels in self.categories_.items():
            known = out[name].where(out[name].isin(levels))  # unseen levels become missing
            out[name] = pd.Categorical(known, categories=levels)
        numeric = [c for c in out.columns if c not in self.categories_]
        out[numeric] = out[numeric].astype(float)
        return out[list(self.feature_names_out_)]

    def get_feature_names_out(self, input_features: object = None) -> np.ndarray:
        check_is_fitted(self, "feature_names_out_")
        return self.feature_names_out_.copy()

    def categorical_features(self) -> list[str]:
        """Names of the categorical output features."""
        check_is_fitted(self, "categories_")
        return [c for c in self.feature_names_out_ if c in self.categories_]


class FeatureFrame(pa.DataFrameModel):
    """Contract of the standard features ``DebtorFeatures`` emits (present columns only)."""

    days_past_due: Series[float] = pa.Field(ge=0, required=False)
    aging_bucket: Series[float] = pa.Field(
        isin=[float(i) for i in range(len(AGING_BUCKETS))], required=False
    )
    time_barred: Series[float] = pa.Field(isin=[0.0, 1.0], required=False)
    days_left_in_limitation: Series[float] = pa.Field(required=False)
    log_principal: Series[float] = pa.Field(required=False)
    amount_band: Series[pd.CategoricalDtype] = pa.Field(isin=list(AMOUNT_BANDS), required=False)
    days_since_last_payment: Series[float] = pa.Field(ge=0, nullable=True, required=False)
    n_partial_payments: Series[float] = pa.Field(ge=0, required=False)
    n_broken_promises: Series[float] = pa.Field(ge=0, required=False)
    disputes_debt: Series[float] = pa.Field(isin=[0.0, 1.0], required=False)
    n_prior_lawsuits: Series[float] = pa.Field(ge=0, required=False)
    n_prior_judgments: Series[float] = pa.Field(ge=0, required=False)
    on_dishonest_list: Series[float] = pa.Field(isin=[0.0, 1.0], required=False)
    n_prior_enforcements: Series[float] = pa.Field(ge=0, required=False)
    n_assets: Series[float] = pa.Field(ge=0, le=3, required=False)
    has_attachable_asset: Series[float] = pa.Field(isin=[0.0, 1.0], required=False)
    log_income_to_principal: Series[float] = pa.Field(nullable=True, required=False)
    log_revenue_to_principal: Series[float] = pa.Field(nullable=True, required=False)
    pays_tax: Series[float] = pa.Field(isin=[0.0, 1.0], nullable=True, required=False)

    class Config:
        strict = False
