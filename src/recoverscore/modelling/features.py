"""Debtor features as of a date: the model's inputs, built from a frame and its debt facts.

Debt age, limitation status and assets are ``DebtFacts`` (``recoverscore.data.facts``), worked
out once per batch; the standard features here read them, and users' own columns pass through.
``DebtorFeatures`` is a scikit-learn transformer (``get_params``, ``set_output``,
``get_feature_names_out``); the scoring pipeline hands it the batch's facts so nothing is
computed twice.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from recoverscore.data.facts import (
    ASSET_COLUMNS,
    LIMITATION_COLUMNS,
    DebtFacts,
    dates,
    numbers,
    whole_days,
)
from recoverscore.errors import RecoverscoreError

AMOUNT_BANDS: tuple[str, ...] = ("<10k", "10k-100k", "100k-1M", ">=1M")
LOOKUP_ROWS = 64
"""Up to this many rows, categorical levels are looked up in a dict rather than an index."""
_AMOUNT_EDGES = np.array([10_000, 100_000, 1_000_000])


# --- the standard features ----------------------------------------------------------------------


@dataclass(frozen=True)
class _Feature:
    """One standard feature: the raw columns it needs and how it is computed from them."""

    needs: tuple[str, ...]
    compute: Callable[[pd.DataFrame, DebtFacts], object]
    categories: tuple[str, ...] | None = None  # fixed levels; None: numeric or learned levels
    learned: bool = False  # categorical whose levels are learned in fit
    dated: bool = False  # needs each row's as_of (the decision date)


def _flag(column: str) -> _Feature:
    return _Feature((column,), lambda df, f: numbers(df[column]))


def _count(column: str) -> _Feature:
    return _Feature((column,), lambda df, f: numbers(df[column]))


def _ratio(column: str, scale: float) -> Callable:
    def compute(df: pd.DataFrame, facts: DebtFacts) -> np.ndarray:
        means = numbers(df[column]) * scale
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.log(np.maximum(means, 1.0) / facts.principal)

    return compute


def _bank_ratio(df: pd.DataFrame, facts: DebtFacts) -> np.ndarray:
    if facts.bank_balance is None:  # an optional column: missing where a file lacks it
        return np.full(facts.n, np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.log(np.maximum(facts.bank_balance, 1.0) / facts.principal)


def _evidence(df: pd.DataFrame, facts: DebtFacts) -> np.ndarray:
    """1 complete, 0 incomplete; missing where not known or a file lacks the optional column."""
    if "evidence_complete" not in df.columns:
        return np.full(facts.n, np.nan)
    return numbers(df["evidence_complete"])


def _assets(df: pd.DataFrame) -> np.ndarray:
    return sum(numbers(df[c]) for c in ASSET_COLUMNS)


STANDARD_FEATURES: dict[str, _Feature] = {
    "days_past_due": _Feature(("due_date",), lambda df, f: f.days_past_due, dated=True),
    "aging_bucket": _Feature(  # ordinal 0 (0-30) .. 5 (time-barred), so it can be constrained
        LIMITATION_COLUMNS, lambda df, f: f.aging_bucket, dated=True
    ),
    "time_barred": _Feature(LIMITATION_COLUMNS, lambda df, f: f.time_barred, dated=True),
    "days_left_in_limitation": _Feature(
        LIMITATION_COLUMNS, lambda df, f: f.days_left_in_limitation, dated=True
    ),
    "log_principal": _Feature(("principal",), lambda df, f: np.log(f.principal)),
    "amount_band": _Feature(
        ("principal",),
        lambda df, f: np.asarray(AMOUNT_BANDS, dtype=object)[
            np.searchsorted(_AMOUNT_EDGES, f.principal, side="right")
        ],
        categories=AMOUNT_BANDS,
    ),
    "days_since_last_payment": _Feature(
        ("last_payment_date",),
        lambda df, f: whole_days(dates(f.as_of) - dates(df["last_payment_date"])).astype(float),
        dated=True,
    ),
    "n_partial_payments": _count("n_partial_payments"),
    "n_broken_promises": _count("n_broken_promises"),
    "contact_status": _Feature(
        ("contact_status",),
        lambda df, f: df["contact_status"],
        categories=("reachable", "intermittent", "lost"),
    ),
    "disputes_debt": _flag("disputes_debt"),
    # the optional evidence_complete column: missing where a file lacks it
    "evidence_complete": _Feature(("principal",), _evidence),
    "n_prior_lawsuits": _count("n_prior_lawsuits"),
    "n_prior_judgments": _count("n_prior_judgments"),
    "on_dishonest_list": _flag("on_dishonest_list"),
    "n_prior_enforcements": _count("n_prior_enforcements"),
    "owns_real_estate": _flag("owns_real_estate"),
    "owns_vehicle": _flag("owns_vehicle"),
    "has_equity_holdings": _flag("has_equity_holdings"),
    "n_assets": _Feature(ASSET_COLUMNS, lambda df, f: _assets(df)),
    "has_attachable_asset": _Feature(ASSET_COLUMNS, lambda df, f: f.has_assets.astype(float)),
    "log_income_to_principal": _Feature(
        ("monthly_income", "principal"), _ratio("monthly_income", 12.0)
    ),
    "log_revenue_to_principal": _Feature(
        ("annual_revenue", "principal"), _ratio("annual_revenue", 1.0)
    ),
    # the optional bank_balance column: the feature is missing where a file lacks it
    "log_bank_balance_to_principal": _Feature(("principal",), _bank_ratio),
    "pays_tax": _Feature(("pays_tax",), lambda df, f: numbers(df["pays_tax"])),
    "debtor_type": _Feature(
        ("debtor_type",),
        lambda df, f: df["debtor_type"],
        categories=("individual", "enterprise"),
    ),
    "region": _Feature(("region",), lambda df, f: df["region"], learned=True),
    "industry": _Feature(("industry",), lambda df, f: df["industry"], learned=True),
    "is_elderly": _flag("is_elderly"),
    "disaster_affected": _flag("disaster_affected"),
}
"""The standard debtor features, each computed from named raw portfolio columns."""


def _check_frame(X: object, method: str) -> None:
    if not isinstance(X, pd.DataFrame):
        raise RecoverscoreError(
            f"DebtorFeatures.{method} needs a pandas DataFrame with named columns, got "
            f"{type(X).__name__}: features are computed from columns by name"
        )


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

    def dated_features(self) -> list[str]:
        """Enabled features that need each row's decision date (``as_of``)."""
        return [name for name, f in self._standard().items() if f.dated]

    def required_columns(self) -> list[str]:
        """Raw columns the enabled features read, in a stable order.

        ``as_of`` is among them only when a dated feature is on and no fixed date was given.
        """
        needed = {c for f in self._standard().values() for c in f.needs}
        needed |= set(self.extra_numeric) | set(self.extra_categorical)
        if self.as_of is None and self.dated_features():
            needed.add("as_of")
        return sorted(needed)

    def check_columns(self, frame: pd.DataFrame) -> None:
        """A one-line error naming missing raw columns and the features that need them."""
        missing = [c for c in self.required_columns() if c not in frame.columns]
        if not missing:
            return
        if missing == ["as_of"]:
            raise RecoverscoreError(
                "the data lacks column 'as_of' (each case's decision date), needed by the date "
                f"features {self.dated_features()}: add it, or switch them off in "
                "features.disabled"
            )
        users = [name for name, f in self._standard().items() if set(f.needs) & set(missing)]
        hint = f"; or switch off features {users} in features.disabled" if users else ""
        raise RecoverscoreError(f"the data lacks column(s) {missing}{hint}")

    def facts(self, X: pd.DataFrame) -> DebtFacts:
        """The debt facts of ``X`` as these features see them (``as_of`` applied)."""
        if self.as_of is not None:
            X = X.assign(as_of=pd.Timestamp(self.as_of))
        return DebtFacts.compute(X, self.limitation_years)

    def fit(self, X: pd.DataFrame, y: object = None) -> DebtorFeatures:
        """Learn the levels of free-text categoricals (region, industry, users' own)."""
        _check_frame(X, "fit")
        self.check_columns(X)
        learned = [k for k, f in self._standard().items() if f.learned]
        for cache in ("_dtypes", "_codes", "_columns"):  # built from what is learned here
            self.__dict__.pop(cache, None)
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
        self.feature_names_in_ = np.asarray(self.required_columns(), dtype=object)
        self.n_features_in_ = len(self.feature_names_in_)
        return self

    def transform(self, X: pd.DataFrame, facts: DebtFacts | None = None) -> pd.DataFrame:
        """Features for every row; categoricals carry the levels seen in fit (others: missing).

        ``facts``: ``self.facts(X)`` when the caller has them already (the scoring pipeline).
        """
        check_is_fitted(self, "feature_names_out_")
        _check_frame(X, "transform")
        self.check_columns(X)
        facts = self.facts(X) if facts is None else facts
        columns = {}
        for name, feature in self._standard().items():
            columns[name] = feature.compute(X, facts)
        for name in self.extra_numeric:
            columns[name] = pd.to_numeric(X[name], errors="coerce").to_numpy(dtype=float)
        for name in self.extra_categorical:
            columns[name] = X[name].astype("string").to_numpy(dtype=object, na_value=None)
        out = {}
        for name in self.feature_names_out_:
            if name in self.categories_:  # unseen levels become missing (code -1)
                dtype, values = self._dtypes[name], np.asarray(columns[name], dtype=object)
                if len(values) <= LOOKUP_ROWS:  # a dict: the index's lookup costs 75 us a call
                    level = self._codes[name]
                    codes = np.fromiter((level.get(v, -1) for v in values), np.intp, len(values))
                else:
                    codes = dtype.categories.get_indexer(values)
                out[name] = pd.Categorical.from_codes(codes, dtype=dtype)
            else:
                out[name] = np.asarray(columns[name], dtype=float)
        return pd.DataFrame(out, index=X.index, columns=self._columns, copy=False)

    @cached_property
    def _dtypes(self) -> dict[str, pd.CategoricalDtype]:
        """The categoricals' dtypes, built once (a served request transforms one row)."""
        return {name: pd.CategoricalDtype(levels) for name, levels in self.categories_.items()}

    @cached_property
    def _codes(self) -> dict[str, dict[str, int]]:
        """Each categorical's level -> code, for the few rows of a served request."""
        return {
            name: {v: i for i, v in enumerate(levels)} for name, levels in self.categories_.items()
        }

    @cached_property
    def _columns(self) -> pd.Index:
        """The output's column labels, built once; plain objects, because pandas reads columns
        by label many times faster from them than from an Arrow-backed string index."""
        return pd.Index(list(self.feature_names_out_), dtype=object)

    def get_feature_names_out(self, input_features: object = None) -> np.ndarray:
        check_is_fitted(self, "feature_names_out_")
        return self.feature_names_out_.copy()

    def categorical_features(self) -> list[str]:
        """Names of the categorical output features."""
        check_is_fitted(self, "categories_")
        return [c for c in self.feature_names_out_ if c in self.categories_]
