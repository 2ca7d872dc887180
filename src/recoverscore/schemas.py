"""Column contracts: the raw portfolio, the labelled history and the scored output.

The pandera ``DataFrameModel`` classes here are the single source of truth for column names,
types, ranges and allowed categories; the README's input-format table is generated from them.
Validation runs in two phases so that one bad cell never hides another and never crashes a check:

1. ``parse_columns`` turns each cell into the schema's type (files arrive as text or with loose
   types) and records cells that cannot be parsed or are missing where a value is required;
2. pandera validates the rows that parsed, lazily, so every range, category, uniqueness and
   cross-column failure is reported at once.

Both phases feed one failure table with a row number, column, check and offending value.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pandas as pd
import pandera.pandas as pa
from pandera.typing import Series

TIERS: tuple[str, ...] = ("soft_reminder", "mediation", "payment_order", "litigation")
"""Collection tiers in order of escalation and cost."""

DEBTOR_TYPES: tuple[str, ...] = ("individual", "enterprise")
CONTACT_STATUSES: tuple[str, ...] = ("reachable", "intermittent", "lost")

FAILURE_COLUMNS = ["row", "column", "check", "value"]


def true_probability_column(tier: str) -> str:
    """Column of the synthetic world's true P(recover | row, tier)."""
    return f"p_true_{tier}"


def probability_column(tier: str) -> str:
    """Column of the model's P(recover | row, tier) in the scored output."""
    return f"p_{tier}"


def value_column(tier: str) -> str:
    """Column of the expected net value of a tier in the scored output."""
    return f"ev_{tier}"


# Cross-column checks are reported against one column, the one a user would fix.
_PRIMARY_COLUMN: dict[str, str] = {}


def _row_check(name: str, primary: str) -> Callable:
    """Register a row-wise dataframe check whose failures are reported on ``primary``."""
    _PRIMARY_COLUMN[name] = primary
    return pa.dataframe_check(name=name)


def _on_or_before(early: pd.Series, late: pd.Series) -> pd.Series:
    """True where ``early <= late`` or either is missing (missing values are checked elsewhere)."""
    return early.isna() | late.isna() | (early <= late)


class Portfolio(pa.DataFrameModel):
    """One row per delinquent debt: the input contract for scoring.

    ``as_of`` is the date the snapshot describes; readers fill it from ``--as-of`` when a file
    has no such column. Income applies to individuals, revenue and tax status to enterprises.
    """

    debtor_id: Series[str] = pa.Field(unique=True, str_length={"min_value": 1})
    as_of: Series[pa.DateTime]
    debtor_type: Series[str] = pa.Field(isin=list(DEBTOR_TYPES))
    region: Series[str] = pa.Field(str_length={"min_value": 1})
    industry: Series[str] = pa.Field(str_length={"min_value": 1})
    principal: Series[float] = pa.Field(gt=0)
    due_date: Series[pa.DateTime]
    last_payment_date: Series[pa.DateTime] = pa.Field(nullable=True)
    n_partial_payments: Series[int] = pa.Field(ge=0)
    n_broken_promises: Series[int] = pa.Field(ge=0)
    last_acknowledgment_date: Series[pa.DateTime] = pa.Field(nullable=True)
    contact_status: Series[str] = pa.Field(isin=list(CONTACT_STATUSES))
    disputes_debt: Series[bool]
    n_prior_lawsuits: Series[int] = pa.Field(ge=0)
    n_prior_judgments: Series[int] = pa.Field(ge=0)
    on_dishonest_list: Series[bool]
    n_prior_enforcements: Series[int] = pa.Field(ge=0)
    owns_real_estate: Series[bool]
    owns_vehicle: Series[bool]
    has_equity_holdings: Series[bool]
    monthly_income: Series[float] = pa.Field(ge=0, nullable=True)
    annual_revenue: Series[float] = pa.Field(ge=0, nullable=True)
    pays_tax: Series[pd.BooleanDtype] = pa.Field(nullable=True)
    is_elderly: Series[bool]
    disaster_affected: Series[bool]

    class Config:
        coerce = True
        strict = False  # users' own extra columns pass through

    @_row_check("due_date on or before as_of", "due_date")
    def _due_before_as_of(cls, df: pd.DataFrame) -> pd.Series:
        return _on_or_before(df["due_date"], df["as_of"])

    @_row_check("last_payment_date within [due_date, as_of]", "last_payment_date")
    def _payment_window(cls, df: pd.DataFrame) -> pd.Series:
        paid = df["last_payment_date"]
        return _on_or_before(df["due_date"], paid) & _on_or_before(paid, df["as_of"])

    @_row_check("last_payment_date present exactly when n_partial_payments > 0", "n_partial_payments")
    def _payment_count_matches_date(cls, df: pd.DataFrame) -> pd.Series:
        return df["last_payment_date"].notna() == (df["n_partial_payments"] > 0)

    @_row_check("last_acknowledgment_date within [due_date, as_of]", "last_acknowledgment_date")
    def _acknowledgment_window(cls, df: pd.DataFrame) -> pd.Series:
        ack = df["last_acknowledgment_date"]
        return _on_or_before(df["due_date"], ack) & _on_or_before(ack, df["as_of"])

    @_row_check(
        "last_acknowledgment_date on or after last_payment_date (a payment interrupts limitation)",
        "last_acknowledgment_date",
    )
    def _payment_interrupts(cls, df: pd.DataFrame) -> pd.Series:
        paid, ack = df["last_payment_date"], df["last_acknowledgment_date"]
        return paid.isna() | (ack.notna() & (paid <= ack))

    @_row_check("n_prior_judgments at most n_prior_lawsuits", "n_prior_judgments")
    def _judgments_need_lawsuits(cls, df: pd.DataFrame) -> pd.Series:
        return df["n_prior_judgments"] <= df["n_prior_lawsuits"]

    @_row_check("monthly_income only for individuals", "monthly_income")
    def _income_individual(cls, df: pd.DataFrame) -> pd.Series:
        return df["monthly_income"].isna() | (df["debtor_type"] == "individual")

    @_row_check("annual_revenue and pays_tax only for enterprises", "annual_revenue")
    def _revenue_enterprise(cls, df: pd.DataFrame) -> pd.Series:
        enterprise_only = df["annual_revenue"].notna() | df["pays_tax"].notna()
        return ~enterprise_only | (df["debtor_type"] == "enterprise")

    @_row_check("is_elderly only for individuals", "is_elderly")
    def _elderly_individual(cls, df: pd.DataFrame) -> pd.Series:
        return ~df["is_elderly"] | (df["debtor_type"] == "individual")


class History(Portfolio):
    """A portfolio snapshot with what happened next: the labelled data a model trains on.

    ``as_of`` is the decision date; ``given_tier`` the tier the legacy policy chose with
    probability ``propensity``; ``recovered`` whether the debt was recovered within the horizon,
    ``amount_recovered`` how much (CNY) and ``costs`` what the collection cost (CNY).
    """

    given_tier: Series[str] = pa.Field(isin=list(TIERS))
    propensity: Series[float] = pa.Field(gt=0, le=1)
    recovered: Series[bool]
    amount_recovered: Series[float] = pa.Field(ge=0)
    costs: Series[float] = pa.Field(ge=0)

    @_row_check("amount_recovered at most principal", "amount_recovered")
    def _recovery_capped(cls, df: pd.DataFrame) -> pd.Series:
        return df["amount_recovered"] <= df["principal"] * (1 + 1e-9)

    @_row_check("amount_recovered > 0 exactly when recovered", "amount_recovered")
    def _recovered_has_amount(cls, df: pd.DataFrame) -> pd.Series:
        return df["recovered"] == (df["amount_recovered"] > 0)


def _extend(base: type[pa.DataFrameModel], name: str, doc: str, columns: dict) -> type:
    """Subclass a model with generated per-tier columns, so a new tier only touches ``TIERS``."""
    annotations = {column: annotation for column, (annotation, _) in columns.items()}
    fields = {column: field for column, (_, field) in columns.items()}
    return type(name, (base,), {"__annotations__": annotations, "__doc__": doc, **fields})


SyntheticHistory: type[History] = _extend(
    History,
    "SyntheticHistory",
    "History from the synthetic world, with the true P(recover | row, tier) for every tier.",
    {
        true_probability_column(t): (Series[float], pa.Field(ge=0, le=1))
        for t in TIERS
    },
)


class _ScoredBase(pa.DataFrameModel):
    """Per-debtor recommendation; per-tier columns are added below from ``TIERS``."""

    debtor_id: Series[str] = pa.Field(unique=True)
    as_of: Series[pa.DateTime]
    model_version: Series[str] = pa.Field(str_length={"min_value": 1})
    recommended_tier: Series[str] = pa.Field(isin=list(TIERS))
    expected_net_value: Series[float]
    excluded_tiers: Series[str] = pa.Field(nullable=True)
    top_reasons: Series[str] = pa.Field(nullable=True)

    class Config:
        coerce = True
        strict = False

    @_row_check("recommended_tier not among excluded_tiers", "recommended_tier")
    def _recommended_allowed(cls, df: pd.DataFrame) -> pd.Series:
        excluded = df["excluded_tiers"].fillna("").astype(str)
        tier = df["recommended_tier"].astype(str)
        return pd.Series(
            [f"{t}:" not in e for t, e in zip(tier, excluded, strict=True)], index=df.index
        )


Scored: type[_ScoredBase] = _extend(
    _ScoredBase,
    "Scored",
    """Scored output, one row per debtor.

    ``p_<tier>``: P(recover | row, tier); ``ev_<tier>``: expected net value (CNY) of the tier;
    ``excluded_tiers``: ``tier:REASON`` pairs joined by ``;`` for tiers a guardrail removed;
    ``top_reasons``: the SHAP reason texts behind the recommendation, joined by `` | ``.
    """,
    {
        **{probability_column(t): (Series[float], pa.Field(ge=0, le=1)) for t in TIERS},
        **{value_column(t): (Series[float], pa.Field(nullable=True)) for t in TIERS},
    },
)


# --- phase 1: parsing cells into the schema's types -------------------------------------------

_TRUE = {"true", "1", "yes", "y", "t"}
_FALSE = {"false", "0", "no", "n", "f"}


def column_kinds(model: type[pa.DataFrameModel]) -> dict[str, str]:
    """Map each column to one of ``str``, ``float``, ``int``, ``bool``, ``date``."""
    kinds = {}
    for name, column in model.to_schema().columns.items():
        dtype = str(column.dtype)
        if dtype.startswith("datetime"):
            kinds[name] = "date"
        elif dtype in ("bool", "boolean"):
            kinds[name] = "bool"
        elif dtype.startswith("int"):
            kinds[name] = "int"
        elif dtype.startswith("float"):
            kinds[name] = "float"
        else:
            kinds[name] = "str"
    return kinds


def _blank(series: pd.Series) -> np.ndarray:
    """Missing cells: nulls and empty or whitespace-only text."""
    missing = series.isna().to_numpy(copy=True)
    if series.dtype == object or pd.api.types.is_string_dtype(series):
        text = series.astype("string").str.strip()
        missing |= (text == "").fillna(True).to_numpy(dtype=bool)
    return missing


def _parse(series: pd.Series, kind: str) -> pd.Series:
    """Convert one column; unparseable cells become missing (the caller reports them)."""
    if kind == "str":
        return series.astype("string").str.strip()
    if kind == "date":
        if pd.api.types.is_datetime64_any_dtype(series):
            return series.astype("datetime64[ns]")
        return pd.to_datetime(
            series.astype("string").str.strip(), errors="coerce", format="ISO8601"
        ).astype("datetime64[ns]")
    if kind == "bool":
        if pd.api.types.is_bool_dtype(series):
            return series.astype("boolean")
        text = series.astype("string").str.strip().str.lower()
        out = pd.Series(pd.NA, index=series.index, dtype="boolean")
        out[text.isin(_TRUE).fillna(False)] = True
        out[text.isin(_FALSE).fillna(False)] = False
        return out
    if pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series):
        numbers = series.astype("float64")
    else:
        numbers = pd.to_numeric(series.astype("string").str.strip(), errors="coerce").astype(
            "float64"
        )
    numbers = numbers.where(np.isfinite(numbers))
    if kind == "int":
        numbers = numbers.where(numbers == np.round(numbers))
    return numbers


def parse_columns(
    frame: pd.DataFrame, model: type[pa.DataFrameModel]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Parse the model's columns in ``frame``; return the parsed frame and cell failures.

    Extra columns are left as they are. A failure is a cell that holds text the type cannot read,
    or a missing value in a column the schema does not allow to be null.
    """
    schema = model.to_schema()
    parsed = frame.copy()
    failures = []
    for name, kind in column_kinds(model).items():
        if name not in frame.columns:
            continue
        raw = frame[name]
        blank = _blank(raw)
        values = _parse(raw, kind)
        unreadable = values.isna().to_numpy() & ~blank
        if unreadable.any():
            failures.append(_cells(raw, unreadable, name, f"parse as {kind}"))
        if not schema.columns[name].nullable and blank.any():
            failures.append(_cells(raw, blank, name, "not_nullable"))
        parsed[name] = values
    return parsed, _concat_failures(failures)


def _cells(raw: pd.Series, mask: np.ndarray, column: str, check: str) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "row": raw.index[mask].to_numpy(),
            "column": column,
            "check": check,
            "value": raw[mask].astype("string").to_numpy(dtype=object),
        }
    )


def _concat_failures(parts: list[pd.DataFrame]) -> pd.DataFrame:
    parts = [p for p in parts if len(p)]
    if not parts:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in FAILURE_COLUMNS})
    return pd.concat(parts, ignore_index=True)[FAILURE_COLUMNS]


# --- phase 2: pandera on the parsed rows --------------------------------------------------------


@dataclass(frozen=True)
class ValidationReport:
    """The outcome of validating a frame: typed valid rows and one table of every failure.

    ``failures.row`` is the 1-based data row of the input (header not counted), or missing for a
    failure of the whole file such as a missing column. Every input row is either in ``valid``
    or named in ``failures``.
    """

    valid: pd.DataFrame
    failures: pd.DataFrame
    n_rows: int

    @property
    def is_valid(self) -> bool:
        return self.failures.empty

    @property
    def rejected_rows(self) -> np.ndarray:
        rows = self.failures["row"].dropna().astype(int).unique()
        if self.failures["row"].isna().any():  # a file-level failure rejects every row
            return np.arange(1, self.n_rows + 1)
        return np.sort(rows)

    def reasons(self) -> pd.DataFrame:
        """One line per rejected row: its row number and its failed checks joined by ``; ``."""
        cells = self.failures.dropna(subset=["row"])
        text = cells["column"].astype(str) + ": " + cells["check"].astype(str)
        return (
            text.groupby(cells["row"].astype(int))
            .agg("; ".join)
            .rename("reasons")
            .rename_axis("row")
            .reset_index()
        )


class _Failures:
    """Collects pandera's failure cases and maps them to (row, column, check, value)."""

    primary: ClassVar[dict[str, str]] = _PRIMARY_COLUMN

    @classmethod
    def from_pandera(cls, cases: pd.DataFrame, frame: pd.DataFrame) -> pd.DataFrame:
        cases = cases.copy()
        row_level = cases["check"].isin(cls.primary) & cases["index"].notna()
        cross = cases[row_level].drop_duplicates(subset=["index", "check"])
        cross_rows = pd.DataFrame(
            {
                "row": cross["index"].to_numpy(),
                "column": cross["check"].map(cls.primary).to_numpy(),
                "check": cross["check"].to_numpy(),
            }
        )
        cross_rows["value"] = [
            frame.at[i, c] for i, c in zip(cross_rows["row"], cross_rows["column"], strict=True)
        ]
        column_rows = cases[~row_level].rename(columns={"index": "row", "failure_case": "value"})
        return _concat_failures([column_rows[FAILURE_COLUMNS], cross_rows])


def validate(
    frame: pd.DataFrame,
    model: type[pa.DataFrameModel] = Portfolio,
    as_of: pd.Timestamp | str | None = None,
) -> ValidationReport:
    """Validate ``frame`` against ``model`` lazily and split it into valid rows and failures.

    ``as_of`` fills the ``as_of`` column when the frame has none (a portfolio file usually
    does not carry its snapshot date). Rows keep their 1-based input row number as index.
    """
    frame = frame.reset_index(drop=True)
    frame.index = pd.RangeIndex(1, len(frame) + 1, name="row")
    if as_of is not None and "as_of" not in frame.columns:
        frame = frame.assign(as_of=pd.Timestamp(as_of))
    missing = [c for c in model.to_schema().columns if c not in frame.columns]
    if missing:
        failures = pd.DataFrame(
            {"row": pd.NA, "column": missing, "check": "column_in_dataframe", "value": None}
        )[FAILURE_COLUMNS]
        return ValidationReport(frame.iloc[0:0], failures, len(frame))
    parsed, cell_failures = parse_columns(frame, model)
    bad_cells = cell_failures["row"].unique()
    candidates = parsed.drop(index=bad_cells)
    try:
        valid = model.validate(candidates, lazy=True)
        schema_failures = _concat_failures([])
    except pa.errors.SchemaErrors as errors:
        schema_failures = _Failures.from_pandera(errors.failure_cases, candidates)
        rejected = schema_failures["row"].dropna().unique()
        valid = model.validate(candidates.drop(index=rejected), lazy=True)
    failures = _concat_failures([cell_failures, schema_failures])
    if not failures.empty:
        failures = failures.sort_values(["row", "column"], kind="stable").reset_index(drop=True)
    return ValidationReport(valid, failures, len(frame))
