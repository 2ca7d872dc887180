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

import datetime
import math
import re
import weakref
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pandera.pandas as pa
from pandera.typing import Series

from recoverscore.errors import RecoverscoreError

TIERS: tuple[str, ...] = ("soft_reminder", "mediation", "payment_order", "litigation")
"""Collection tiers in order of escalation and cost."""
_TIER_INDEX = pd.Index(TIERS)  # built once: tier_codes runs for every batch and request
_TIER_POSITION = {tier: code for code, tier in enumerate(TIERS)}
_HASHED_FROM = 256  # fewer names are looked up one by one: an index lookup's fixed cost is more

DEBTOR_TYPES: tuple[str, ...] = ("individual", "enterprise")
CONTACT_STATUSES: tuple[str, ...] = ("reachable", "intermittent", "lost")

FAILURE_COLUMNS = ["row", "column", "check", "value"]

MAX_CNY = 1e12
"""The largest amount of money a cell may hold (one trillion CNY): far above any real claim,
income or cost, and far below what the fee, value and reason arithmetic can carry exactly."""
MAX_REVENUE_CNY = 1e14
"""The largest annual revenue (the largest enterprises report a few trillion CNY)."""
MAX_COUNT = 1_000_000
"""The largest count (payments, promises, lawsuits, judgments, enforcements) a cell may hold."""


def tier_codes(tiers: object) -> np.ndarray:
    """Position of each tier name in ``TIERS``; an unknown name is a ``ValueError``."""
    values = np.asarray(tiers, dtype=object)
    flat = values.ravel()
    if len(flat) < _HASHED_FROM:
        codes = np.fromiter(
            (_TIER_POSITION.get(v, -1) if isinstance(v, str) else -1 for v in flat),
            dtype=np.intp,
            count=len(flat),
        )
    else:
        codes = _TIER_INDEX.get_indexer(flat).astype(np.intp)
    unknown = codes < 0
    if unknown.any():
        names = sorted({str(v) for v in flat[unknown]})
        raise ValueError(f"unknown tier(s) {names}; expected one of {list(TIERS)}")
    return codes.reshape(values.shape)


def true_probability_column(tier: str) -> str:
    """Column of the synthetic world's true P(recover | row, tier)."""
    return f"p_true_{tier}"


def probability_column(tier: str) -> str:
    """Column of the model's P(recover | row, tier) in the scored output."""
    return f"p_{tier}"


def value_column(tier: str) -> str:
    """Column of the expected net value of a tier in the scored output."""
    return f"ev_{tier}"


@dataclass(frozen=True)
class RowRule:
    """A cross-column check: the columns it reads, the one a user would fix, what it says, and
    its test (``test(None, columns)``: pandera passes a DataFrame, small frames a dict of
    NumPy arrays, so the tests use ``pd.isna``/``pd.notna`` and operators only)."""

    columns: frozenset[str]
    primary: str
    description: str
    test: Callable


# Row-wise cross-column checks by method name. They are keyed by method name because pandera
# drops a check's ``name=`` in subclassed models.
_ROW_CHECKS: dict[str, RowRule] = {}


def _row_check(description: str, primary: str, *others: str) -> Callable:
    """Register a row-wise dataframe check reading ``primary`` and ``others``; its failures are
    reported on ``primary``."""

    def register(method: Callable) -> classmethod:
        _ROW_CHECKS[method.__name__] = RowRule(
            frozenset((primary, *others)), primary, description, method
        )
        return pa.dataframe_check(method)

    return register


def _on_or_before(early: pd.Series, late: pd.Series) -> pd.Series:
    """True where ``early <= late`` or either is missing (missing values are checked elsewhere)."""
    return pd.isna(early) | pd.isna(late) | (early <= late)


def _amount_matches_recovered(df: pd.DataFrame) -> pd.Series:
    """A recovered debt returned some money, and an unrecovered one none."""
    return df["recovered"] == (df["amount_recovered"] > 0)


class Portfolio(pa.DataFrameModel):
    """One row per delinquent debt: the input contract for scoring.

    ``as_of`` is the date the snapshot describes; readers fill it from ``--as-of`` when a file
    has no such column. Income applies to individuals, revenue and tax status to enterprises.
    """

    debtor_id: Series[str] = pa.Field(
        unique=True, str_length={"min_value": 1}, description="Case identifier, unique in the file"
    )
    as_of: Series[pa.DateTime] = pa.Field(
        description="Snapshot (decision) date; filled from --as-of when the file has none"
    )
    debtor_type: Series[str] = pa.Field(isin=list(DEBTOR_TYPES), description="Who owes")
    region: Series[str] = pa.Field(
        str_length={"min_value": 1}, description="Region of the debtor (free text)"
    )
    industry: Series[str] = pa.Field(
        str_length={"min_value": 1}, description="Industry of the debtor or employer (free text)"
    )
    principal: Series[float] = pa.Field(gt=0, le=MAX_CNY, description="Outstanding principal, CNY")
    accrued_interest: Series[float] = pa.Field(
        ge=0,
        le=MAX_CNY,
        nullable=True,
        required=False,
        description="Optional: accrued interest and penalties, CNY; court fees are on "
        "principal plus this (missing: 0)",
    )
    due_date: Series[pa.DateTime] = pa.Field(description="Date the debt fell due")
    last_payment_date: Series[pa.DateTime] = pa.Field(
        nullable=True, description="Last partial payment since the due date"
    )
    n_partial_payments: Series[int] = pa.Field(
        ge=0, le=MAX_COUNT, description="Partial payments since due"
    )
    n_broken_promises: Series[int] = pa.Field(
        ge=0, le=MAX_COUNT, description="Promises to pay not kept"
    )
    last_acknowledgment_date: Series[pa.DateTime] = pa.Field(
        nullable=True,
        description="Last interruption of limitation: signed demand, acknowledgment or payment",
    )
    contact_status: Series[str] = pa.Field(
        isin=list(CONTACT_STATUSES), description="Can the debtor be reached"
    )
    disputes_debt: Series[bool] = pa.Field(description="The debtor disputes the debt")
    evidence_complete: Series[pd.BooleanDtype] = pa.Field(
        nullable=True,
        required=False,
        description="Optional: the debt is fully evidenced (contract and transfer records); "
        "false removes payment order and litigation (missing: not known)",
    )
    n_prior_lawsuits: Series[int] = pa.Field(
        ge=0, le=MAX_COUNT, description="Prior lawsuits as defendant"
    )
    n_prior_judgments: Series[int] = pa.Field(
        ge=0, le=MAX_COUNT, description="Prior judgments against"
    )
    on_dishonest_list: Series[bool] = pa.Field(description="Listed as dishonest judgment debtor")
    n_prior_enforcements: Series[int] = pa.Field(
        ge=0, le=MAX_COUNT, description="Prior enforcement cases"
    )
    owns_real_estate: Series[bool] = pa.Field(description="Attachable real estate")
    owns_vehicle: Series[bool] = pa.Field(description="Attachable vehicle")
    has_equity_holdings: Series[bool] = pa.Field(description="Attachable equity holdings")
    monthly_income: Series[float] = pa.Field(
        ge=0, le=MAX_CNY, nullable=True, description="Individuals: monthly income, CNY"
    )
    annual_revenue: Series[float] = pa.Field(
        ge=0, le=MAX_REVENUE_CNY, nullable=True, description="Enterprises: annual revenue, CNY"
    )
    pays_tax: Series[pd.BooleanDtype] = pa.Field(
        nullable=True, description="Enterprises: files and pays tax"
    )
    bank_balance: Series[float] = pa.Field(
        ge=0,
        le=MAX_CNY,
        nullable=True,
        required=False,
        description="Optional: known balance of the debtor's bank accounts, CNY (enforceable)",
    )
    is_elderly: Series[bool] = pa.Field(description="Individuals: elderly (dialect-speaking staff)")
    disaster_affected: Series[bool] = pa.Field(
        description="Hit by a natural disaster; without disaster_date, taken to be in the 30-day "
        "grace period"
    )
    disaster_date: Series[pa.DateTime] = pa.Field(
        nullable=True,
        required=False,
        description="Optional: date of that disaster; the grace period runs 30 days from it, "
        "and it suspends a limitation period in its last 6 months",
    )

    class Config:
        coerce = True
        strict = False  # users' own extra columns pass through

    @_row_check("due_date on or before as_of", "due_date", "as_of")
    def _due_before_as_of(cls, df: pd.DataFrame) -> pd.Series:
        return _on_or_before(df["due_date"], df["as_of"])

    @_row_check(
        "last_payment_date within [due_date, as_of]", "last_payment_date", "due_date", "as_of"
    )
    def _payment_window(cls, df: pd.DataFrame) -> pd.Series:
        paid = df["last_payment_date"]
        return _on_or_before(df["due_date"], paid) & _on_or_before(paid, df["as_of"])

    @_row_check(
        "last_payment_date present exactly when n_partial_payments > 0",
        "n_partial_payments",
        "last_payment_date",
    )
    def _payment_count_matches_date(cls, df: pd.DataFrame) -> pd.Series:
        return pd.notna(df["last_payment_date"]) == (df["n_partial_payments"] > 0)

    @_row_check(
        "last_acknowledgment_date within [due_date, as_of]",
        "last_acknowledgment_date",
        "due_date",
        "as_of",
    )
    def _acknowledgment_window(cls, df: pd.DataFrame) -> pd.Series:
        ack = df["last_acknowledgment_date"]
        return _on_or_before(df["due_date"], ack) & _on_or_before(ack, df["as_of"])

    @_row_check(
        "last_acknowledgment_date on or after last_payment_date (a payment interrupts limitation)",
        "last_acknowledgment_date",
        "last_payment_date",
    )
    def _payment_interrupts(cls, df: pd.DataFrame) -> pd.Series:
        paid, ack = df["last_payment_date"], df["last_acknowledgment_date"]
        return pd.isna(paid) | (pd.notna(ack) & (paid <= ack))

    @_row_check(
        "n_prior_judgments at most n_prior_lawsuits", "n_prior_judgments", "n_prior_lawsuits"
    )
    def _judgments_need_lawsuits(cls, df: pd.DataFrame) -> pd.Series:
        return df["n_prior_judgments"] <= df["n_prior_lawsuits"]

    @_row_check("monthly_income only for individuals", "monthly_income", "debtor_type")
    def _income_individual(cls, df: pd.DataFrame) -> pd.Series:
        return pd.isna(df["monthly_income"]) | (df["debtor_type"] == "individual")

    @_row_check(
        "annual_revenue and pays_tax only for enterprises",
        "annual_revenue",
        "pays_tax",
        "debtor_type",
    )
    def _revenue_enterprise(cls, df: pd.DataFrame) -> pd.Series:
        enterprise_only = pd.notna(df["annual_revenue"]) | pd.notna(df["pays_tax"])
        return ~enterprise_only | (df["debtor_type"] == "enterprise")

    @_row_check("is_elderly only for individuals", "is_elderly", "debtor_type")
    def _elderly_individual(cls, df: pd.DataFrame) -> pd.Series:
        return ~df["is_elderly"] | (df["debtor_type"] == "individual")

    @_row_check(
        "disaster_date only where disaster_affected, on or before as_of",
        "disaster_date",
        "disaster_affected",
        "as_of",
    )
    def _disaster_dated(cls, df: pd.DataFrame) -> pd.Series:
        if "disaster_date" not in df:  # an optional column (small frames skip the rule then)
            return pd.Series(True, index=df.index)
        date = df["disaster_date"]
        return pd.isna(date) | (df["disaster_affected"] & _on_or_before(date, df["as_of"]))


class History(Portfolio):
    """A portfolio snapshot with what happened next: the labelled data a model trains on.

    ``as_of`` is the decision date; ``given_tier`` the tier the legacy policy chose with
    probability ``propensity``; ``recovered`` whether the debt was recovered within the horizon,
    ``amount_recovered`` how much (CNY) and ``costs`` what the collection cost (CNY).
    ``propensity`` may be left out, since few collection files record it (it is then estimated,
    see ``strategy.logging_policy``); when present it is checked.
    """

    given_tier: Series[str] = pa.Field(isin=list(TIERS), description="Tier the case was given")
    propensity: Series[float] = pa.Field(
        gt=0,
        le=1,
        required=False,
        description="Probability the old policy gave that tier (optional column)",
    )
    recovered: Series[bool] = pa.Field(description="Recovered within the horizon")
    amount_recovered: Series[float] = pa.Field(
        ge=0, le=MAX_CNY, description="Amount recovered, CNY"
    )
    costs: Series[float] = pa.Field(ge=0, le=MAX_CNY, description="Collection costs incurred, CNY")
    cell: Series[str] = pa.Field(
        nullable=True, required=False, description="Experiment cell the debt was in (optional)"
    )
    assignment_propensity: Series[float] = pa.Field(
        gt=0,
        le=1,
        nullable=True,
        required=False,
        description="The scored output's design propensity, taken as the propensity when that "
        "column is absent (optional)",
    )
    champion_tier: Series[str] = pa.Field(
        isin=list(TIERS),
        nullable=True,
        required=False,
        description="The champion's tier when the debt was scored (optional)",
    )

    @_row_check("amount_recovered at most principal", "amount_recovered", "principal")
    def _recovery_capped(cls, df: pd.DataFrame) -> pd.Series:
        return df["amount_recovered"] <= df["principal"] * (1 + 1e-9)

    @_row_check("amount_recovered > 0 exactly when recovered", "amount_recovered", "recovered")
    def _recovered_has_amount(cls, df: pd.DataFrame) -> pd.Series:
        return _amount_matches_recovered(df)


class Outcomes(pa.DataFrameModel):
    """What happened to scored debts: the realised outcomes a backtest joins to scored files.

    One row per debt worked. The id column takes the scored file's id name (its first column,
    ``debtor_id`` for the standard portfolio); ``recovered``, ``amount_recovered`` and ``costs``
    mean what they mean in a history, so outcomes beside the portfolio rows are a history for
    the next training. ``given_tier`` is optional: the tier actually worked where collectors
    departed from the recommendation (missing: the recommended tier).
    """

    debtor_id: Series[str] = pa.Field(
        unique=True,
        str_length={"min_value": 1},
        description="Case identifier, named as in the scored file; one outcome per debt",
    )
    recovered: Series[bool] = pa.Field(description="Recovered within the horizon")
    amount_recovered: Series[float] = pa.Field(ge=0, description="Amount recovered, CNY")
    costs: Series[float] = pa.Field(ge=0, description="Collection costs incurred, CNY")
    outcome_date: Series[pa.DateTime] = pa.Field(
        description="Date the outcome was known; it is joined to the latest scoring of the debt "
        "on or before it"
    )
    given_tier: Series[str] = pa.Field(
        isin=list(TIERS),
        nullable=True,
        required=False,
        description="Optional: the tier worked, where it was not the recommended one",
    )

    class Config:
        coerce = True
        strict = False

    @_row_check("amount_recovered > 0 exactly when recovered", "amount_recovered", "recovered")
    def _outcome_has_amount(cls, df: pd.DataFrame) -> pd.Series:
        return _amount_matches_recovered(df)


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
        true_probability_column(t): (
            Series[float],
            pa.Field(ge=0, le=1, description=f"True P(recover within horizon) under {t}"),
        )
        for t in TIERS
    },
)


class _ScoredBase(pa.DataFrameModel):
    """Per-debtor recommendation; per-tier columns are added below from ``TIERS``."""

    debtor_id: Series[str] = pa.Field(unique=True, description="Case identifier")
    as_of: Series[pa.DateTime] = pa.Field(description="Date the features were computed for")
    model_version: Series[str] = pa.Field(
        str_length={"min_value": 1}, description="Registered model version that scored the row"
    )
    recommended_tier: Series[str] = pa.Field(
        isin=list(TIERS),
        nullable=True,
        description="Tier to work (empty only when the model's input has no principal to value "
        "tiers with)",
    )
    expected_net_value: Series[float] = pa.Field(
        nullable=True, description="Expected net value of the recommended tier, CNY"
    )
    excluded_tiers: Series[str] = pa.Field(
        nullable=True, description="tier:REASON pairs removed by guardrails, joined by ;"
    )
    top_reasons: Series[str] = pa.Field(
        nullable=True,
        description="Reason texts behind the recommendation, joined by a vertical bar",
    )
    reason_codes: Series[str] = pa.Field(
        nullable=True,
        description="Reason codes, CODE+ raising and CODE- lowering recovery, joined by ;",
    )
    flags: Series[str] = pa.Field(
        nullable=True,
        description="Flags joined by ;: care notices (DIALECT_STAFF, SUPPORTIVE_CONTACT), "
        "NO_POSITIVE_TIER where no allowed tier is worth its cost",
    )
    why: Series[str] = pa.Field(
        nullable=True,
        description="Expected net value of each allowed tier, what was removed and why, care "
        "notices, in the scoring language",
    )
    contact_plan: Series[str] = pa.Field(
        nullable=True,
        description="For tiers worked by the contact plan (soft reminders): its steps, day, time "
        "and channel; the legal notice only where a court tier is still open",
    )
    overrides: Series[str] = pa.Field(
        nullable=True,
        description="Policy or cost settings that replaced the model package's, with their "
        "fingerprints (empty: the package's own)",
    )
    cell: Series[str] = pa.Field(
        nullable=True, description="Strategy-experiment cell of the debtor (empty: no experiment)"
    )
    assignment_propensity: Series[float] = pa.Field(
        gt=0, le=1, description="Probability the debtor got this tier under the whole design"
    )
    champion_tier: Series[str] = pa.Field(
        isin=list(TIERS), nullable=True, description="The tier the champion strategy gives"
    )

    class Config:
        coerce = True
        strict = False

    @_row_check("recommended_tier not among excluded_tiers", "recommended_tier", "excluded_tiers")
    def _recommended_allowed(cls, df: pd.DataFrame) -> pd.Series:
        excluded, tier = df["excluded_tiers"], df["recommended_tier"]
        allowed = [
            not (isinstance(t, str) and isinstance(e, str) and f"{t}:" in e)
            for t, e in zip(tier, excluded, strict=True)
        ]
        if isinstance(excluded, pd.Series):
            return pd.Series(allowed, index=excluded.index)
        return np.asarray(allowed, dtype=bool)


Scored: type[_ScoredBase] = _extend(
    _ScoredBase,
    "Scored",
    """Scored output, one row per debtor.

    ``p_<tier>``: P(recover | row, tier); ``ev_<tier>``: expected net value (CNY) of the tier;
    ``excluded_tiers``: ``tier:REASON`` pairs joined by ``;`` for tiers a guardrail removed;
    ``top_reasons``: the SHAP reason texts behind the recommendation, joined by `` | ``.
    """,
    {
        **{
            probability_column(t): (
                Series[float],
                pa.Field(ge=0, le=1, description=f"P(recover) under {t}"),
            )
            for t in TIERS
        },
        **{
            value_column(t): (
                Series[float],
                pa.Field(nullable=True, description=f"Expected net value of {t}, CNY"),
            )
            for t in TIERS
        },
    },
)


# --- phase 1: parsing cells into the schema's types -------------------------------------------

_TRUE = {"true", "1", "yes", "y", "t"}
_FALSE = {"false", "0", "no", "n", "f"}


Contract = type[pa.DataFrameModel] | pa.DataFrameSchema
"""A file contract: one of the models here, or a schema derived from one (a model package's)."""


def as_schema(contract: Contract) -> pa.DataFrameSchema:
    """The pandera schema of a contract (models are converted, schemas pass through)."""
    return contract if isinstance(contract, pa.DataFrameSchema) else contract.to_schema()


def required_columns(contract: Contract) -> list[str]:
    """Columns a file must have (``as_of`` is filled from the decision date when absent)."""
    schema = as_schema(contract)
    return [name for name, column in schema.columns.items() if column.required and name != "as_of"]


def column_kinds(contract: Contract) -> dict[str, str]:
    """Map each column to one of ``str``, ``float``, ``int``, ``bool``, ``date``."""
    kinds = {}
    for name, column in as_schema(contract).columns.items():
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


def text_cells(series: pd.Series, strict: bool = False) -> pd.Series:
    """Cells as pandas text; bytes (a Parquet binary column) are decoded as UTF-8.

    Bytes that are not UTF-8 become missing when ``strict`` (so a parser reports the cell as
    unreadable), else show with replacement characters (in messages and rejects).
    """
    try:
        return series.astype("string")
    except UnicodeDecodeError:
        return series.map(lambda v: _decoded(v, strict), na_action="ignore").astype("string")


def _decoded(value: object, strict: bool) -> object:
    if not isinstance(value, bytes | bytearray | memoryview):
        return value
    try:
        return bytes(value).decode("utf-8")
    except UnicodeDecodeError:
        return pd.NA if strict else bytes(value).decode("utf-8", errors="replace")


def _blank(series: pd.Series) -> np.ndarray:
    """Missing cells: nulls and empty or whitespace-only text."""
    missing = series.isna().to_numpy(copy=True)
    if series.dtype == object or pd.api.types.is_string_dtype(series):
        text = text_cells(series).str.strip()
        missing |= (text == "").fillna(True).to_numpy(dtype=bool)
    return missing


_EARLIEST, _LATEST = pd.Timestamp("1900-01-01"), pd.Timestamp("2200-12-31")
_INT64_LIMIT = 2.0**63
# A time of day followed by a UTC offset (Z, +08:00, +0800, +08): the offset is dropped.
_OFFSET = r"^(.*\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?)\s*(?:Z|[+-]\d{2}(?::?\d{2})?)$"
_ISO_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


def iso_date(value: object, what: str = "date") -> pd.Timestamp:
    """A ``YYYY-MM-DD`` text (or a date object) as a timestamp; anything else is an error.

    Options such as ``--as-of`` accept ISO dates only: ``11/12/2026`` could be November or
    December, and a guess silently scores every debt as of the wrong day.
    """
    if isinstance(value, pd.Timestamp | datetime.date):
        return pd.Timestamp(value).normalize()
    text = str(value).strip()
    try:
        if not _ISO_DAY.fullmatch(text):
            raise ValueError
        return pd.Timestamp(datetime.date.fromisoformat(text))
    except ValueError:
        raise RecoverscoreError(f"{what} {text!r} is not a date: use YYYY-MM-DD") from None


def _parse_dates(series: pd.Series) -> pd.Series:
    """ISO dates as naive datetime64[ns] days; dates outside 1900-2200 count as unreadable.

    Every column here is a date: a time of day is dropped. A cell with a UTC offset keeps the
    date it was written with (the offset is dropped, as a time-zone-aware column's is), so one
    offset never makes the column unreadable.
    """
    if pd.api.types.is_datetime64_any_dtype(series):
        dates = series.dt.tz_localize(None) if series.dt.tz is not None else series
    else:
        text = text_cells(series, strict=True).str.strip().str.replace(_OFFSET, r"\1", regex=True)
        dates = pd.to_datetime(text, errors="coerce", format="ISO8601")
    plausible = (dates >= _EARLIEST) & (dates <= _LATEST)
    return dates.where(plausible).astype("datetime64[ns]").dt.normalize()


def _parse(series: pd.Series, kind: str) -> pd.Series:
    """Convert one column; unparseable cells become missing (the caller reports them)."""
    if kind == "str":
        return text_cells(series, strict=True).str.strip()
    if kind == "date":
        return _parse_dates(series)
    if kind == "bool":
        if pd.api.types.is_bool_dtype(series):
            return series.astype("boolean")
        text = text_cells(series, strict=True).str.strip().str.lower()
        out = pd.Series(pd.NA, index=series.index, dtype="boolean")
        out[text.isin(_TRUE).fillna(False)] = True
        out[text.isin(_FALSE).fillna(False)] = False
        return out
    if pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series):
        numbers = series.astype("float64")
    else:
        numbers = pd.to_numeric(
            text_cells(series, strict=True).str.strip(), errors="coerce"
        ).astype("float64")
    numbers = numbers.where(np.isfinite(numbers))
    if kind == "int":  # a count beyond int64 (1e19) is unreadable, never wrapped to a negative
        fits = (numbers >= -_INT64_LIMIT) & (numbers < _INT64_LIMIT)
        numbers = numbers.where((numbers == np.round(numbers)) & fits)
    return numbers


def parse_columns(frame: pd.DataFrame, contract: Contract) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Parse the model's columns in ``frame``; return the parsed frame and cell failures.

    Extra columns are left as they are. A failure is a cell that holds text the type cannot read,
    or a missing value in a column the schema does not allow to be null.
    """
    schema = as_schema(contract)
    parsed = frame.copy()
    failures = []
    for name, kind in column_kinds(schema).items():
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
            "value": text_cells(raw[mask]).to_numpy(dtype=object),
        }
    )


def _concat_failures(parts: list[pd.DataFrame]) -> pd.DataFrame:
    parts = [p for p in parts if len(p)]
    if not parts:
        return _NO_FAILURES.copy(deep=False)  # building it costs more than a row's checks
    return pd.concat(parts, ignore_index=True)[FAILURE_COLUMNS]


_NO_FAILURES = pd.DataFrame({c: pd.Series(dtype=object) for c in FAILURE_COLUMNS})


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
    rows: np.ndarray | None = None  # the input's row numbers, when not 1..n_rows

    @property
    def is_valid(self) -> bool:
        return self.failures.empty

    @property
    def rejected_rows(self) -> np.ndarray:
        rows = self.failures["row"].dropna().astype(int).unique()
        if self.failures["row"].isna().any():  # a file-level failure rejects every row
            return np.arange(1, self.n_rows + 1) if self.rows is None else np.sort(self.rows)
        return np.sort(rows)

    def row_failures(self) -> pd.DataFrame:
        """One line per rejected row: its row number and its failed checks joined by ``; ``."""
        cells = self.failures.dropna(subset=["row"])
        text = cells["column"].astype(str) + ": " + cells["check"].astype(str)
        return (
            text.groupby(cells["row"].astype(int))
            .agg("; ".join)
            .rename("failed_checks")
            .rename_axis("row")
            .reset_index()
        )


def _schema_failures(cases: pd.DataFrame, frame: pd.DataFrame) -> pd.DataFrame:
    """pandera's failure cases as (row, column, check, value).

    pandera reports a failed row-wise dataframe check once per column of the frame; it is kept
    once per row, on the check's primary column, with that column's value.
    """
    row_level = cases["check"].isin(_ROW_CHECKS) & cases["index"].notna()
    cross = cases[row_level].drop_duplicates(subset=["index", "check"])
    columns = cross["check"].map(lambda name: _ROW_CHECKS[name].primary)
    cross_rows = pd.DataFrame(
        {
            "row": cross["index"].to_numpy(),
            "column": columns.to_numpy(),
            "check": cross["check"].map(lambda name: _ROW_CHECKS[name].description).to_numpy(),
            "value": [frame.at[i, c] for i, c in zip(cross["index"], columns, strict=True)],
        }
    )
    column_rows = cases[~row_level].rename(columns={"index": "row", "failure_case": "value"})
    return _concat_failures([column_rows[FAILURE_COLUMNS], cross_rows])


def _column_checks(schema: pa.DataFrameSchema) -> pa.DataFrameSchema:
    """The per-column checks alone, on already-parsed columns where nulls are allowed."""
    return pa.DataFrameSchema(
        {
            name: pa.Column(
                checks=column.checks, nullable=True, unique=column.unique, required=False
            )
            for name, column in schema.columns.items()
        }
    )


def validate(
    frame: pd.DataFrame,
    contract: Contract = Portfolio,
    as_of: pd.Timestamp | str | None = None,
    rows: np.ndarray | None = None,
) -> ValidationReport:
    """Validate ``frame`` against ``contract`` lazily; split it into valid rows and failures.

    ``as_of`` fills the ``as_of`` column when the frame has none (a portfolio file usually
    does not carry its snapshot date). Rows keep their 1-based input row number as index;
    ``rows`` gives those numbers when the frame is one batch of a larger file.
    """
    frame = frame.reset_index(drop=True)
    if rows is None:
        frame.index = pd.RangeIndex(1, len(frame) + 1, name="row")
    else:
        frame.index = pd.Index(np.asarray(rows, dtype=np.int64), name="row")
    if as_of is not None and "as_of" not in frame.columns:
        frame = frame.assign(as_of=pd.Timestamp(as_of))
    schema = as_schema(contract)
    missing = [
        name for name, column in schema.columns.items() if column.required and name not in frame
    ]
    if missing:
        failures = pd.DataFrame(
            {"row": pd.NA, "column": missing, "check": "column_in_dataframe", "value": None}
        )[FAILURE_COLUMNS]
        return ValidationReport(frame.iloc[0:0], failures, len(frame), rows)
    small = compiled(schema) if len(frame) <= SMALL_FRAME_ROWS else None
    if small is not None and small.supported:
        valid, failures = small.validate(frame)
        if not failures.empty:
            failures = failures.sort_values(["row", "column"], kind="stable").reset_index(drop=True)
        return ValidationReport(valid, failures, len(frame), rows)
    parsed, cell_failures = parse_columns(frame, schema)
    bad_cells = cell_failures["row"].unique()
    readable = parsed.drop(index=bad_cells)
    try:
        valid = schema.validate(readable, lazy=True)
        schema_failures = _concat_failures([])
    except pa.errors.SchemaErrors as errors:
        schema_failures = _schema_failures(errors.failure_cases, readable)
        rejected = schema_failures["row"].dropna().unique()
        valid = schema.validate(readable.drop(index=rejected), lazy=True)
    # rows with unreadable cells still get every column check; cross-column checks need all
    # their inputs, so those wait until the row reads
    try:
        _column_checks(schema).validate(parsed.loc[bad_cells], lazy=True)
    except pa.errors.SchemaErrors as errors:
        schema_failures = _concat_failures(
            [schema_failures, _schema_failures(errors.failure_cases, parsed)]
        )
    failures = _concat_failures([cell_failures, schema_failures])
    if not failures.empty:
        failures = failures.sort_values(["row", "column"], kind="stable").reset_index(drop=True)
    return ValidationReport(valid, failures, len(frame), rows)


# --- small frames: the same two phases without pandera's fixed costs ---------------------------

SMALL_FRAME_ROWS = 64
"""Frames up to this many rows (a served request, a tiny file) are validated by
``CompiledContract``: cell by cell and with NumPy, because pandera's lazy validation costs tens
of milliseconds however few the rows. Larger frames go through pandera. Both report the same
failures with the same texts and return the same typed rows (a property test holds them equal)."""

_PLAIN_DATE = re.compile(r"\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?)?")
"""An ISO day, perhaps with a time of day and no offset: NumPy reads these as pandas does."""
_PLAIN_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
_SCALARS = (str, bool, int, float, np.bool_, np.integer, np.floating)
_FIRST_DAY, _LAST_DAY = (np.datetime64(day.date(), "D") for day in (_EARLIEST, _LATEST))
_SCALAR_CHECKS: dict[str, Callable[[dict], Callable[[object], bool]]] = {
    "greater_than": lambda s: lambda x: x > s["min_value"],
    "greater_than_or_equal_to": lambda s: lambda x: x >= s["min_value"],
    "less_than": lambda s: lambda x: x < s["max_value"],
    "less_than_or_equal_to": lambda s: lambda x: x <= s["max_value"],
    "isin": lambda s: frozenset(s["allowed_values"]).__contains__,
    "str_length": lambda s: lambda x: _length_ok(len(x), s),
}
"""pandera's built-in checks the contracts use, as predicates on one non-missing value."""


def _length_ok(length: int, stats: dict) -> bool:
    if stats.get("exact_value") is not None:
        return length == stats["exact_value"]
    low, high = stats.get("min_value"), stats.get("max_value")
    return (low or 0) <= length and (high is None or length <= high)


def _text(value: object) -> object:
    """A failing cell as the failure table shows it (pandas' ``astype("string")``)."""
    return pd.NA if _missing(value) else str(value)


def _missing(value: object) -> bool:
    """``pd.isna`` for one cell, without its fixed cost on the common types."""
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    if isinstance(value, float):
        return value != value
    if isinstance(value, str | bool | int):
        return False
    return pd.api.types.is_scalar(value) and bool(pd.isna(value))


# --- reading one cell: a value, _BLANK, _UNREADABLE, or _NotPlain for pandas' column parser ---

_BLANK = object()
_UNREADABLE = object()


class _NotPlain(Exception):
    """A cell the cell readers leave to ``_parse`` (a datetime, bytes, "1_000"...); its whole
    column is then parsed by pandas, so both paths read every value alike."""


def _read_str(cell: object) -> object:
    if isinstance(cell, str):
        return cell.strip() or _BLANK
    if _missing(cell):
        return _BLANK
    if isinstance(cell, _SCALARS):
        return str(cell).strip()
    raise _NotPlain


def _read_date(cell: object) -> object:
    """A plain ISO text as a day (a time of day is dropped); dates outside 1900-2200 are
    unreadable."""
    if isinstance(cell, str):
        text = cell.strip()
        if not text:
            return _BLANK
        if _PLAIN_DATE.fullmatch(text):
            try:
                day = np.datetime64(text).astype("datetime64[D]")
            except ValueError:  # 2026-02-30, 25:00: unreadable, as in pandas
                return _UNREADABLE
            return day if _FIRST_DAY <= day <= _LAST_DAY else _UNREADABLE
    elif _missing(cell):
        return _BLANK
    raise _NotPlain


def _read_bool(cell: object) -> object:
    if cell is True or cell is np.True_:
        return True
    if (isinstance(cell, str) and not cell.strip()) or _missing(cell):
        return _BLANK
    if not isinstance(cell, _SCALARS):
        raise _NotPlain
    text = str(cell).strip().lower()
    return True if text in _TRUE else False if text in _FALSE else _UNREADABLE


def _read_number(cell: object, whole: bool) -> object:
    """A number; a whole one for an int column, within int64 (a count of 1e19 is unreadable,
    never wrapped around to a negative number)."""
    if isinstance(cell, str):
        text = cell.strip()
        if not text:
            return _BLANK
        if not _PLAIN_NUMBER.fullmatch(text):
            raise _NotPlain
        value = float(text)
    elif isinstance(cell, bool | np.bool_):
        raise _NotPlain
    elif _missing(cell):
        return _BLANK
    elif isinstance(cell, int | float | np.integer | np.floating):
        value = float(cell)
    else:
        raise _NotPlain
    if not math.isfinite(value) or (whole and not _whole_int64(value)):
        return _UNREADABLE
    return value


def _whole_int64(value: float) -> bool:
    return value.is_integer() and -_INT64_LIMIT <= value < _INT64_LIMIT


_READERS: dict[str, Callable[[object], object]] = {
    "str": _read_str,
    "date": _read_date,
    "bool": _read_bool,
    "float": lambda cell: _read_number(cell, whole=False),
    "int": lambda cell: _read_number(cell, whole=True),
}


@dataclass(frozen=True)
class _CompiledColumn:
    name: str
    kind: str
    nullable: bool
    unique: bool
    dtype: object  # what pandera coerces the column to
    checks: tuple[tuple[str, Callable[[object], bool]], ...]  # (pandera's text, test)

    def read(self, frame: pd.DataFrame, cells: np.ndarray) -> tuple[list, list[int], list[int]]:
        """The column's values (``None`` where missing), its blank cells and unreadable cells.

        Plain Python values (text, numbers, booleans: what a JSON request or a CSV holds) are
        read cell by cell; a column with any other value goes through ``_parse`` whole.
        """
        read = _READERS[self.kind]
        try:
            values = [read(cell) for cell in cells]
        except _NotPlain:
            return self._parse(frame[self.name])
        if not any(value is _BLANK or value is _UNREADABLE for value in values):
            return values, [], []
        blank = [i for i, value in enumerate(values) if value is _BLANK]
        unreadable = [i for i, value in enumerate(values) if value is _UNREADABLE]
        for i in blank + unreadable:  # blank text stays text, as pandas' ``str.strip`` has it
            text = self.kind == "str" and isinstance(cells[i], str)
            values[i] = cells[i].strip() if text else None
        return values, blank, unreadable

    def _parse(self, raw: pd.Series) -> tuple[list, list[int], list[int]]:
        parsed = _parse(raw, self.kind)
        blank = _blank(raw)
        missing = parsed.isna().to_numpy()
        values = [None if gone else value for value, gone in zip(parsed, missing, strict=True)]
        unreadable = missing & ~blank
        return values, np.flatnonzero(blank).tolist(), np.flatnonzero(unreadable).tolist()

    def checked(self, values: list) -> list:
        """Readable values as pandera checks them (whole numbers as integers)."""
        if self.kind == "int" and not self.nullable:
            return [int(v) for v in values]
        return values

    def array(self, values: list) -> np.ndarray:
        """Checked values as the cross-column rules read them: NumPy, missing as NaN or NaT
        (text and nullable booleans as objects, missing as ``None``)."""
        if self.kind in ("float", "int", "date") or (self.kind == "bool" and not self.nullable):
            return np.array(values, dtype=self.dtype)
        return np.array(values, dtype=object)

    def typed(self, array: np.ndarray) -> object:
        """Valid values as pandera's coercion leaves them: the valid frame's column."""
        if isinstance(self.dtype, np.dtype):
            return array.astype(self.dtype, copy=False)
        if isinstance(self.dtype, pd.BooleanDtype):
            missing = np.equal(array, None)
            return pd.arrays.BooleanArray(np.equal(array, True), missing)
        if isinstance(self.dtype, pd.StringDtype):
            return self.dtype.construct_array_type()._from_sequence(array, dtype=self.dtype)
        return pd.array(array, self.dtype)


class CompiledContract:
    """A pandera schema's checks compiled once into cell readers and predicates.

    ``supported`` is false when the schema uses a check this does not know; ``validate`` then
    uses pandera whatever the frame's size.
    """

    def __init__(self, schema: pa.DataFrameSchema) -> None:
        kinds = column_kinds(schema)
        self.columns: list[_CompiledColumn] = []
        self.supported = True
        for name, column in schema.columns.items():
            checks = []
            for check in column.checks:
                make = _SCALAR_CHECKS.get(check.name)
                if make is None:
                    self.supported = False
                    continue
                checks.append((check.error, make(check.statistics or {})))
            dtype = column.dtype.type if column.dtype is not None else None
            self.columns.append(
                _CompiledColumn(
                    name, kinds[name], column.nullable, column.unique, dtype, tuple(checks)
                )
            )
        self.by_name = {c.name: c for c in self.columns}
        self.rules = [_ROW_CHECKS.get(check.name) for check in schema.checks]
        if None in self.rules or not schema.coerce or schema.parsers:
            self.supported = False

    def validate(self, frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Typed valid rows and every failure of a (small) frame, as ``validate`` reports them.

        ``frame`` is indexed by row number and has every required column. Values stay Python
        lists until the valid rows are known: NumPy's fixed cost per call is more than a
        request's whole column.
        """
        rows = frame.index.tolist()
        # one conversion, columns read by position; a lone row's cells come cheaper by iloc
        cells = frame.iloc[0].to_numpy()[None, :] if len(frame) == 1 else frame.to_numpy(object)
        position = {name: j for j, name in enumerate(frame.columns.tolist())}
        parsed: dict[str, list] = {}
        cell_failures = []
        for column in self.columns:
            if column.name not in position:
                continue
            column_cells = cells[:, position[column.name]]
            values, blank, unreadable = column.read(frame, column_cells)
            cell_failures += [
                (rows[i], column.name, f"parse as {column.kind}", _text(column_cells[i]))
                for i in unreadable
            ]
            if not column.nullable:
                cell_failures += [
                    (rows[i], column.name, "not_nullable", _text(column_cells[i])) for i in blank
                ]
            parsed[column.name] = values
        bad = {failure[0] for failure in cell_failures}
        readable = [i for i, row in enumerate(rows) if row not in bad]
        checked = {
            name: self.by_name[name].checked([values[i] for i in readable])
            for name, values in parsed.items()
        }
        failures = self._column_checks(checked, [rows[i] for i in readable])
        arrays = {name: self.by_name[name].array(values) for name, values in checked.items()}
        failures += self._row_rules(arrays, np.array([rows[i] for i in readable], dtype=np.int64))
        if bad:  # rows with unreadable cells still get every column check (values as parsed);
            # cross-column checks need all their inputs, so those wait until the row reads
            unread = [i for i, row in enumerate(rows) if row in bad]
            failures += self._column_checks(
                {name: [values[i] for i in unread] for name, values in parsed.items()},
                [rows[i] for i in unread],
            )
        rejected = {failure[0] for failure in failures}
        keep = np.array([i for i in readable if rows[i] not in rejected], dtype=np.intp)
        if len(keep) < len(readable):
            kept = np.isin(np.array([rows[i] for i in readable]), list(rejected), invert=True)
            arrays = {name: array[kept] for name, array in arrays.items()}
        extra = frame.iloc[keep] if len(parsed) < frame.shape[1] else None  # as they came
        data = {
            name: self.by_name[name].typed(arrays[name]) if name in arrays else extra[name]
            for name in frame.columns
        }
        valid = pd.DataFrame(data, index=frame.index[keep], copy=False)
        return valid, _failure_table(cell_failures + failures)

    def _column_checks(self, columns: dict[str, list], rows: list) -> list[tuple]:
        """(row, column, check, value) for every failed column check."""
        failures: list[tuple] = []
        for name, values in columns.items():
            column = self.by_name[name]
            if not (column.checks or column.unique):
                continue
            present = [(row, v) for row, v in zip(rows, values, strict=True) if v is not None]
            if column.unique:
                counts = Counter(value for _, value in present)
                failures += [
                    (row, name, "field_uniqueness", _value(value))
                    for row, value in present
                    if counts[value] > 1
                ]
            failures += [
                (row, name, text, _value(value))
                for text, test in column.checks
                for row, value in present
                if not test(value)
            ]
        return failures

    def _row_rules(self, columns: dict[str, np.ndarray], rows: np.ndarray) -> list[tuple]:
        """(row, column, check, value) for every failed cross-column rule."""
        failures: list[tuple] = []
        if not len(rows):
            return failures
        for rule in self.rules:
            if not rule.columns <= columns.keys():
                continue
            failed = ~np.asarray(rule.test(None, columns), dtype=bool)
            if failed.any():
                failures += [
                    (row, rule.primary, rule.description, _value(value))
                    for row, value in zip(
                        rows[failed].tolist(), columns[rule.primary][failed], strict=True
                    )
                ]
        return failures


def _failure_table(found: list[tuple]) -> pd.DataFrame:
    """(row, column, check, value) tuples as ``validate``'s failure table."""
    if not found:
        return _concat_failures([])
    row, column, check, value = zip(*found, strict=True)
    return pd.DataFrame(
        {
            "row": np.asarray(row, dtype=np.int64),
            "column": pd.Series(column, dtype=object),
            "check": pd.Series(check, dtype=object),
            "value": pd.Series(value, dtype=object),
        }
    )


def _value(value: object) -> object:
    """A checked value as pandera's failure cases hold it."""
    if isinstance(value, np.datetime64):
        return pd.Timestamp(value)
    return value


_COMPILED: dict[int, tuple[weakref.ref, CompiledContract]] = {}


def compiled(schema: pa.DataFrameSchema) -> CompiledContract:
    """The schema's ``CompiledContract``, built once per schema object (and dropped with it;
    pandera's schemas are unhashable, hence the id)."""
    entry = _COMPILED.get(id(schema))
    if entry is not None and entry[0]() is schema:
        return entry[1]
    contract = CompiledContract(schema)
    _COMPILED[id(schema)] = (weakref.ref(schema), contract)
    weakref.finalize(schema, _COMPILED.pop, id(schema), None)
    return contract


# --- documentation generated from the models ----------------------------------------------------

_CHECK_TEXT = {
    "greater_than": "> {min_value:g}",
    "greater_than_or_equal_to": ">= {min_value:g}",
    "less_than_or_equal_to": "<= {max_value:g}",
    "in_range": "{min_value:g} to {max_value:g}",
}


def _check_text(check: pa.Check) -> str:
    stats = check.statistics or {}
    if check.name == "isin":
        return "one of " + ", ".join(f"`{v}`" for v in stats["allowed_values"])
    if check.name == "str_length":
        return "non-empty"
    return _CHECK_TEXT.get(check.name, check.name).format(**stats)


def schema_reference(contract: Contract, since: Contract | None = None) -> str:
    """A Markdown table of the contract's columns and cross-column rules, for the README.

    With ``since``, only what ``contract`` adds to that parent contract.
    """
    kinds = column_kinds(contract)
    schema = as_schema(contract)
    parent = as_schema(since) if since is not None else pa.DataFrameSchema()
    lines = [
        "| column | type | value required | allowed values | meaning |",
        "|---|---|---|---|---|",
    ]
    for name, column in schema.columns.items():
        if name in parent.columns:
            continue
        rules = [_check_text(c) for c in column.checks] + (["unique"] if column.unique else [])
        lines.append(
            f"| `{name}` | {kinds[name]} | {'no' if column.nullable else 'yes'} "
            f"| {'; '.join(rules)} | {column.description or ''} |"
        )
    parent_checks = {c.name for c in parent.checks}
    rules = [
        _ROW_CHECKS[c.name].description
        for c in schema.checks
        if c.name in _ROW_CHECKS and c.name not in parent_checks
    ]
    if rules:
        lines += ["", "Rules across columns: " + "; ".join(rules) + "."]
    return "\n".join(lines)


def with_id_column(
    contract: Contract, id_column: str, columns: Iterable[str] | None = None
) -> pa.DataFrameSchema:
    """The contract with its ``debtor_id`` column named ``id_column`` (a model's own id name),
    keeping ``columns`` only (default: all) and the cross-column rules they can still feed."""
    schema = as_schema(contract)
    keep = list(schema.columns) if columns is None else list(columns)
    renamed = {name: schema.columns[name] for name in keep}
    if "debtor_id" in renamed:
        renamed = {
            (id_column if name == "debtor_id" else name): (
                column.set_name(id_column) if name == "debtor_id" else column
            )
            for name, column in renamed.items()
        }
    return pa.DataFrameSchema(
        renamed,
        checks=row_checks_within(contract, set(keep)),
        coerce=True,
        strict=False,
        name=schema.name,
    )


def row_checks_within(contract: Contract, columns: set[str]) -> list[pa.Check]:
    """The contract's cross-column checks that read only ``columns``."""
    return [
        check
        for check in as_schema(contract).checks
        if check.name in _ROW_CHECKS and _ROW_CHECKS[check.name].columns <= columns
    ]
