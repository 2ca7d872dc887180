"""Column contracts: the raw portfolio, the labelled history and the scored output.

The pandera ``DataFrameModel`` classes here are the single source of truth for column names,
types, ranges, allowed categories and the rules across columns (``ROW_RULES``); the README's
input-format table is generated from them. Checking a file against them is ``validation``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pandera.pandas as pa
from pandera.typing import Series

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
ROW_RULES: dict[str, RowRule] = {}


def _row_check(description: str, primary: str, *others: str) -> Callable:
    """Register a row-wise dataframe check reading ``primary`` and ``others``; its failures are
    reported on ``primary``."""

    def register(method: Callable) -> classmethod:
        ROW_RULES[method.__name__] = RowRule(
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


# --- contracts as pandera schemas -------------------------------------------------------------

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
        ROW_RULES[c.name].description
        for c in schema.checks
        if c.name in ROW_RULES and c.name not in parent_checks
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
        if check.name in ROW_RULES and ROW_RULES[check.name].columns <= columns
    ]
