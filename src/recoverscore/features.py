"""Debtor features as of a date.

Debt age and limitation status are computed here once and used everywhere: by the synthetic
world's truth, by the aging buckets that reports and the matrix policy use, and by the model.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

AGING_BUCKETS: tuple[str, ...] = ("0-30", "31-90", "91-180", "181-365", "1-3y", "time_barred")
"""Aging buckets; ``1-3y`` holds every debt over a year old that is still within limitation
(a written acknowledgment or a partial payment can keep an old debt alive)."""

_BUCKET_EDGES = np.array([30, 90, 180, 365])


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
