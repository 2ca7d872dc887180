"""Debt facts: what a debt *is* as of a decision date, worked out once per batch.

Debt age, aging bucket, limitation expiry (suspended by a disaster in its last six months),
time-barred status, assets, income and bank balance, contactability, evidence, disaster grace: the
model's
features, the policy's guardrails and economics, the explanations and the drift counter all need
them. ``DebtFacts.compute`` derives each one once from a validated frame and hands the same arrays
to every stage, so no stage works them out again (and no two stages can disagree on them).

A fact whose columns a file does not have is ``None``: a user's own file without due dates has no
debt age, and the stages that need it say so instead of guessing.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
import pandas as pd

AGING_BUCKETS: tuple[str, ...] = ("0-30", "31-90", "91-180", "181-365", "1-3y", "time_barred")
"""Aging buckets; ``1-3y`` holds every debt over a year old that is still within limitation
(a written acknowledgment or a partial payment can keep an old debt alive)."""

_BUCKET_EDGES = np.array([30, 90, 180, 365])
DISASTER_GRACE_DAYS = 30
"""A debtor hit by a natural disaster gets this many days of grace from its date
(docs/domain.md §4.8)."""
SUSPENSION_MONTHS = 6
"""Force majeure in the last six months of the limitation period suspends it; the period then
ends six months after the obstacle ends (Civil Code art. 194, docs/domain.md §4.1)."""
ASSET_COLUMNS: tuple[str, ...] = ("owns_real_estate", "owns_vehicle", "has_equity_holdings")
LIMITATION_COLUMNS: tuple[str, ...] = ("due_date", "last_acknowledgment_date")


Dates = pd.Series | pd.Timestamp


def numbers(column: pd.Series) -> np.ndarray:
    """A numeric or boolean column as floats, NaN where missing.

    A NumPy-backed column is read directly: pandas' missing-value handling costs tens of
    microseconds a call, and scoring one served debtor reads dozens of columns.
    """
    if isinstance(column.dtype, np.dtype) and column.dtype.kind in "biuf":
        return column.values.astype(float)
    return column.to_numpy(dtype=float, na_value=np.nan)


def dates(column: Dates) -> np.ndarray:
    """Dates as NumPy datetime64 (a single date as a 0-d array: it broadcasts); read directly
    from a NumPy-backed column, as ``numbers``."""
    if not isinstance(column, pd.Series):
        return np.asarray(pd.Timestamp(column).to_datetime64())
    return column.values if isinstance(column.dtype, np.dtype) else column.to_numpy()


def whole_days(delta: np.ndarray) -> np.ndarray:
    """Timedeltas in whole days, floored as pandas' ``.dt.days``: integers, or floats with NaN
    where a date is missing."""
    missing = np.isnat(delta)
    with np.errstate(invalid="ignore"):  # NaT // 1 day: replaced by NaN below
        days = delta // np.timedelta64(1, "D")
    if not missing.any():
        return days
    days = days.astype(float)
    days[missing] = np.nan
    return days


def add_months(dates: np.ndarray, months: int) -> np.ndarray:
    """``dates + pd.DateOffset(months=months)``: the same day of the month (its last day when the
    month is shorter) and time of day; NaT stays NaT. In NumPy, because pandas' offsets cost
    about a millisecond per call however few the dates (a served request scores one debt)."""
    days = dates.astype("datetime64[D]")
    month = days.astype("datetime64[M]")
    target = month + np.timedelta64(months, "M")
    length = (target + np.timedelta64(1, "M")).astype("datetime64[D]") - target.astype(
        "datetime64[D]"
    )
    day = np.minimum(days - month.astype("datetime64[D]"), length - np.timedelta64(1, "D"))
    return dates + (target.astype("datetime64[D]") + day - days)


def days_past_due(due_date: pd.Series, as_of: Dates) -> np.ndarray:
    """Whole days from due date to the as-of date (0 on the due date)."""
    return whole_days(dates(as_of) - dates(due_date))


def _expiry(
    due: np.ndarray, acknowledged: np.ndarray, years: int, disaster: np.ndarray | None
) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        start = np.where(acknowledged > due, acknowledged, due)  # NaT compares False
    expiry = add_months(start, 12 * years)
    if disaster is None:
        return expiry
    ends = disaster + np.timedelta64(DISASTER_GRACE_DAYS, "D")
    last_months = add_months(expiry, -SUSPENSION_MONTHS)
    suspended = (disaster <= expiry) & (ends >= last_months)  # False where NaT
    return np.where(suspended, add_months(ends, SUSPENSION_MONTHS), expiry)


def limitation_expiry(
    due_date: pd.Series,
    last_acknowledgment_date: pd.Series,
    years: int,
    disaster_date: pd.Series | None = None,
) -> pd.Series:
    """The day the limitation period ends: ``years`` after the due date or last interruption,
    later where a disaster suspended it.

    A disaster that stops the creditor during the period's last ``SUSPENSION_MONTHS`` suspends
    it, and the period then ends ``SUSPENSION_MONTHS`` after the obstacle ends (Civil Code art.
    194). Assumption: the obstacle lasts the debtor's grace period (``DISASTER_GRACE_DAYS``).
    """
    disaster = None if disaster_date is None else dates(disaster_date)
    expiry = _expiry(dates(due_date), dates(last_acknowledgment_date), years, disaster)
    return pd.Series(expiry, index=due_date.index)


def is_time_barred(
    due_date: pd.Series,
    last_acknowledgment_date: pd.Series,
    as_of: Dates,
    years: int,
    disaster_date: pd.Series | None = None,
) -> np.ndarray:
    """True where the limitation period ended before the as-of date."""
    expiry = limitation_expiry(due_date, last_acknowledgment_date, years, disaster_date)
    return dates(as_of) > dates(expiry)


def in_disaster_grace(
    disaster_affected: pd.Series,
    as_of: Dates | None,
    disaster_date: pd.Series | None = None,
) -> np.ndarray:
    """True where a disaster-hit debtor is in the grace period: within ``DISASTER_GRACE_DAYS``
    of the disaster's date, or, where the date is not known, whenever hit."""
    affected = numbers(disaster_affected) == 1
    if disaster_date is None or as_of is None:
        return affected
    when = dates(disaster_date)
    since = whole_days(dates(as_of) - when)
    with np.errstate(invalid="ignore"):  # NaN where the date is not known: not within
        within = (since >= 0) & (since < DISASTER_GRACE_DAYS)
    return np.where(np.isnat(when), affected, within)


def aging_bucket_codes(days: np.ndarray, time_barred: np.ndarray) -> np.ndarray:
    """Ordinal bucket of each debt: 0 (0-30 days) .. 4 (1-3y) by age, 5 when time-barred."""
    codes = np.searchsorted(_BUCKET_EDGES, np.asarray(days), side="left")
    return np.where(np.asarray(time_barred, dtype=bool), len(AGING_BUCKETS) - 1, codes)


def aging_bucket(days: np.ndarray, time_barred: np.ndarray) -> np.ndarray:
    """Bucket label for each debt: by days past due, or ``time_barred`` whatever its age."""
    return np.asarray(AGING_BUCKETS, dtype=object)[aging_bucket_codes(days, time_barred)]


FACT_COLUMNS: dict[str, tuple[str, ...]] = {
    "as_of": ("as_of",),
    "days_past_due": ("as_of", "due_date"),
    "limitation_expiry": LIMITATION_COLUMNS,
    "days_left_in_limitation": ("as_of", *LIMITATION_COLUMNS),
    "time_barred": ("as_of", *LIMITATION_COLUMNS),
    "aging_bucket": ("as_of", *LIMITATION_COLUMNS),
    "principal": ("principal",),
    "claim": ("principal",),
    "has_assets": ASSET_COLUMNS,
    "monthly_income": ("monthly_income",),
    "bank_balance": ("bank_balance",),
    "lost_contact": ("contact_status",),
    "disputed": ("disputes_debt",),
    "evidence_incomplete": ("evidence_complete",),
    "disaster": ("disaster_affected",),
    "disaster_grace": ("disaster_affected",),
    "elderly": ("is_elderly",),
}
"""The columns each fact is worked out from (the optional ``disaster_date`` refines the
limitation expiry and the disaster grace where a file has it)."""


def facts_from_columns(columns: set[str]) -> set[str]:
    """The facts a frame with ``columns`` yields (what ``DebtFacts.compute`` will fill)."""
    return {fact for fact, needs in FACT_COLUMNS.items() if set(needs) <= set(columns)}


def _has(frame: pd.DataFrame, *columns: str) -> bool:
    return all(c in frame.columns for c in columns)


def _flag(frame: pd.DataFrame, column: str) -> np.ndarray | None:
    return numbers(frame[column]) == 1 if column in frame.columns else None


def _amount(frame: pd.DataFrame, column: str) -> np.ndarray | None:
    if column not in frame.columns:
        return None
    return numbers(frame[column])


@dataclass(frozen=True)
class DebtFacts:
    """Facts of each debt in a validated frame (arrays aligned with its rows; ``None``: the
    frame lacks the columns)."""

    n: int
    as_of: pd.Series | None
    days_past_due: np.ndarray | None
    limitation_expiry: pd.Series | None
    days_left_in_limitation: np.ndarray | None
    time_barred: np.ndarray | None
    aging_bucket: np.ndarray | None  # ordinal codes into AGING_BUCKETS
    principal: np.ndarray | None
    claim: np.ndarray | None  # principal plus accrued interest and penalties, where known
    has_assets: np.ndarray | None  # real estate, a vehicle or equity
    monthly_income: np.ndarray | None  # NaN where not known
    bank_balance: np.ndarray | None  # NaN where not known
    lost_contact: np.ndarray | None
    disputed: np.ndarray | None
    evidence_incomplete: np.ndarray | None  # the file says evidence is incomplete
    disaster: np.ndarray | None  # hit by a natural disaster
    disaster_grace: np.ndarray | None  # within the grace period after it
    elderly: np.ndarray | None

    @classmethod
    def compute(cls, frame: pd.DataFrame, limitation_years: int) -> DebtFacts:
        """Every fact the frame's columns allow; dates are read from ``frame['as_of']``."""
        as_of = frame["as_of"] if "as_of" in frame.columns else None
        disaster_date = frame["disaster_date"] if "disaster_date" in frame.columns else None
        days = expiry = left = barred = bucket = None
        if as_of is not None and "due_date" in frame.columns:
            days = days_past_due(frame["due_date"], as_of)
        if _has(frame, *LIMITATION_COLUMNS):
            expiry = limitation_expiry(
                frame["due_date"],
                frame["last_acknowledgment_date"],
                limitation_years,
                disaster_date,
            )
            if as_of is not None:
                left = whole_days(dates(expiry) - dates(as_of)).astype(float)
                barred = dates(as_of) > dates(expiry)
        if days is not None and barred is not None:
            bucket = aging_bucket_codes(days, barred)
        contact = frame["contact_status"] if "contact_status" in frame.columns else None
        principal = numbers(frame["principal"]) if "principal" in frame.columns else None
        claim = principal
        if principal is not None and "accrued_interest" in frame.columns:
            interest = numbers(frame["accrued_interest"])
            claim = principal + np.nan_to_num(interest, nan=0.0)
        return cls(
            n=len(frame),
            as_of=as_of,
            days_past_due=days,
            limitation_expiry=expiry,
            days_left_in_limitation=left,
            time_barred=barred,
            aging_bucket=bucket,
            principal=principal,
            claim=claim,
            has_assets=(
                np.logical_or.reduce([numbers(frame[c]) == 1 for c in ASSET_COLUMNS])
                if _has(frame, *ASSET_COLUMNS)
                else None
            ),
            monthly_income=_amount(frame, "monthly_income"),
            bank_balance=_amount(frame, "bank_balance"),
            lost_contact=None if contact is None else contact.to_numpy(dtype=object) == "lost",
            disputed=_flag(frame, "disputes_debt"),
            evidence_incomplete=(
                numbers(frame["evidence_complete"]) == 0  # False; NaN (not known) is not
                if "evidence_complete" in frame.columns
                else None
            ),
            disaster=_flag(frame, "disaster_affected"),
            disaster_grace=(
                in_disaster_grace(frame["disaster_affected"], as_of, disaster_date)
                if "disaster_affected" in frame.columns
                else None
            ),
            elderly=_flag(frame, "is_elderly"),
        )

    def available(self) -> set[str]:
        """Names of the facts this frame has."""
        return {f.name for f in fields(self) if f.name != "n" and getattr(self, f.name) is not None}

    def take(self, rows: np.ndarray) -> DebtFacts:
        """The facts of some of the debts (positions), e.g. one experiment cell's."""
        values = {"n": len(rows)}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name != "n" and value is not None:
                value = value.iloc[rows] if isinstance(value, pd.Series) else value[rows]
            values.setdefault(f.name, value)
        return DebtFacts(**values)

    def bucket_labels(self) -> np.ndarray | None:
        """Aging bucket labels (``None`` without due dates)."""
        if self.aging_bucket is None:
            return None
        return np.asarray(AGING_BUCKETS, dtype=object)[self.aging_bucket]
