"""Debt facts' date arithmetic (in NumPy for speed) against pandas' own offsets and ``.dt.days``."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from recoverscore.data.facts import (
    DISASTER_GRACE_DAYS,
    SUSPENSION_MONTHS,
    add_months,
    days_past_due,
    in_disaster_grace,
    is_time_barred,
    limitation_expiry,
)

# month ends, leap days and ordinary days, 1990-2040, some with a time of day, some missing
_DAY = st.datetimes(min_value=pd.Timestamp("1990-01-01"), max_value=pd.Timestamp("2040-12-31"))
_EDGES = st.sampled_from(
    ["2024-02-29", "2023-02-28", "2024-01-31", "2024-08-31", "2023-12-31", "2024-03-31"]
).map(pd.Timestamp)
_DATES = st.lists(
    st.one_of(_DAY.map(pd.Timestamp), _EDGES, st.just(pd.NaT)), min_size=1, max_size=30
)


def _series(values: list, n: int) -> pd.Series:
    return pd.Series((values * n)[:n], dtype="datetime64[ns]")


def _pandas_expiry(due, acknowledged, years, disaster):
    """The pandas formulation (DateOffset arithmetic on Series) the NumPy one replaces."""
    start = acknowledged.where(acknowledged.notna() & (acknowledged > due), due)
    expiry = start + pd.DateOffset(years=years)
    if disaster is None:
        return expiry
    ends = disaster + pd.Timedelta(days=DISASTER_GRACE_DAYS)
    last_months = expiry - pd.DateOffset(months=SUSPENSION_MONTHS)
    suspended = disaster.notna() & (disaster <= expiry) & (ends >= last_months)
    return expiry.where(~suspended, ends + pd.DateOffset(months=SUSPENSION_MONTHS))


@settings(max_examples=200, deadline=None)
@given(dates=_DATES, months=st.integers(-60, 60))
def test_add_months_is_pandas_date_offset(dates, months):
    series = _series(dates, len(dates))
    expected = (series + pd.DateOffset(months=months)).to_numpy()
    np.testing.assert_array_equal(add_months(series.to_numpy(), months), expected)


@settings(max_examples=150, deadline=None)
@given(
    due=_DATES,
    acknowledged=_DATES,
    disaster=st.one_of(st.none(), _DATES),
    as_of=st.one_of(_DAY.map(pd.Timestamp), _DATES),
    years=st.integers(1, 5),
)
def test_limitation_and_ages_equal_pandas(due, acknowledged, disaster, as_of, years):
    n = len(due)
    due = _series(due, n).fillna(pd.Timestamp("2020-05-31"))  # a debt always has a due date
    acknowledged = _series(acknowledged, n)
    disaster = None if disaster is None else _series(disaster, n)
    if isinstance(as_of, list):
        as_of = _series(as_of, n).fillna(pd.Timestamp("2026-06-30"))
    expected = _pandas_expiry(due, acknowledged, years, disaster)
    expiry = limitation_expiry(due, acknowledged, years, disaster)
    np.testing.assert_array_equal(expiry.to_numpy(), expected.to_numpy())
    barred = is_time_barred(due, acknowledged, as_of, years, disaster)
    np.testing.assert_array_equal(barred, (pd.to_datetime(as_of) > expected).to_numpy())
    np.testing.assert_array_equal(
        days_past_due(due, as_of), (pd.to_datetime(as_of) - due).dt.days.to_numpy()
    )
    if disaster is not None:
        affected = pd.Series(np.arange(n) % 2 == 0)
        since = (pd.to_datetime(as_of) - disaster).dt.days
        within = ((since >= 0) & (since < DISASTER_GRACE_DAYS)).to_numpy(dtype=bool)
        expected_grace = np.where(disaster.notna().to_numpy(), within, affected.to_numpy())
        np.testing.assert_array_equal(in_disaster_grace(affected, as_of, disaster), expected_grace)


def test_a_leap_day_debt_expires_on_the_last_day_of_february():
    due = pd.Series(pd.to_datetime(["2024-02-29", "2023-08-31"]))
    expiry = limitation_expiry(due, pd.Series([pd.NaT, pd.NaT], dtype="datetime64[ns]"), 3)
    assert list(expiry) == [pd.Timestamp("2027-02-28"), pd.Timestamp("2026-08-31")]
