"""Debt facts: what a debt *is* as of a decision date, worked out once per batch.

Debt age, aging bucket, limitation expiry, time-barred status, assets, contactability: the model's
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
ASSET_COLUMNS: tuple[str, ...] = ("owns_real_estate", "owns_vehicle", "has_equity_holdings")
LIMITATION_COLUMNS: tuple[str, ...] = ("due_date", "last_acknowledgment_date")


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
    "lost_contact": ("contact_status",),
    "disputed": ("disputes_debt",),
    "disaster": ("disaster_affected",),
    "elderly": ("is_elderly",),
}
"""The columns each fact is worked out from."""


def facts_from_columns(columns: set[str]) -> set[str]:
    """The facts a frame with ``columns`` yields (what ``DebtFacts.compute`` will fill)."""
    return {fact for fact, needs in FACT_COLUMNS.items() if set(needs) <= set(columns)}


def _has(frame: pd.DataFrame, *columns: str) -> bool:
    return all(c in frame.columns for c in columns)


def _flag(frame: pd.DataFrame, column: str) -> np.ndarray | None:
    return frame[column].to_numpy(dtype=bool) if column in frame.columns else None


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
    has_assets: np.ndarray | None
    lost_contact: np.ndarray | None
    disputed: np.ndarray | None
    disaster: np.ndarray | None
    elderly: np.ndarray | None

    @classmethod
    def compute(cls, frame: pd.DataFrame, limitation_years: int) -> DebtFacts:
        """Every fact the frame's columns allow; dates are read from ``frame['as_of']``."""
        as_of = frame["as_of"] if "as_of" in frame.columns else None
        days = expiry = left = barred = bucket = None
        if as_of is not None and "due_date" in frame.columns:
            days = days_past_due(frame["due_date"], as_of)
        if _has(frame, *LIMITATION_COLUMNS):
            expiry = limitation_expiry(
                frame["due_date"], frame["last_acknowledgment_date"], limitation_years
            )
            if as_of is not None:
                left = (expiry - as_of).dt.days.to_numpy(dtype=float)
                barred = (as_of > expiry).to_numpy()
        if days is not None and barred is not None:
            bucket = aging_bucket_codes(days, barred)
        contact = frame["contact_status"] if "contact_status" in frame.columns else None
        principal = (
            frame["principal"].to_numpy(dtype=float) if "principal" in frame.columns else None
        )
        claim = principal
        if principal is not None and "accrued_interest" in frame.columns:
            interest = frame["accrued_interest"].to_numpy(dtype=float, na_value=np.nan)
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
                np.logical_or.reduce([frame[c].to_numpy(dtype=bool) for c in ASSET_COLUMNS])
                if _has(frame, *ASSET_COLUMNS)
                else None
            ),
            lost_contact=None if contact is None else (contact == "lost").to_numpy(dtype=bool),
            disputed=_flag(frame, "disputes_debt"),
            disaster=_flag(frame, "disaster_affected"),
            elderly=_flag(frame, "is_elderly"),
        )

    def available(self) -> set[str]:
        """Names of the facts this frame has."""
        return {f.name for f in fields(self) if f.name != "n" and getattr(self, f.name) is not None}

    def bucket_labels(self) -> np.ndarray | None:
        """Aging bucket labels (``None`` without due dates)."""
        if self.aging_bucket is None:
            return None
        return np.asarray(AGING_BUCKETS, dtype=object)[self.aging_bucket]
