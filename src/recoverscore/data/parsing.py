"""Validation's first phase: each cell read into its column's type.

Files arrive as text or with loose types (a CSV reader's strings, a Parquet file's own types, a
JSON request's values). Whatever a parser here cannot read becomes a missing value, which the
caller reports as ``parse as <type>`` for that cell instead of failing; blank cells are told
apart from unreadable ones.
"""

from __future__ import annotations

import datetime
import re

import numpy as np
import pandas as pd

from recoverscore.data.schemas import FAILURE_COLUMNS, Contract, as_schema, column_kinds
from recoverscore.errors import RecoverscoreError

TRUE_WORDS = {"true", "1", "yes", "y", "t"}
FALSE_WORDS = {"false", "0", "no", "n", "f"}


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


def blank_cells(series: pd.Series) -> np.ndarray:
    """Missing cells: nulls and empty or whitespace-only text."""
    missing = series.isna().to_numpy(copy=True)
    if series.dtype == object or pd.api.types.is_string_dtype(series):
        text = text_cells(series).str.strip()
        missing |= (text == "").fillna(True).to_numpy(dtype=bool)
    return missing


EARLIEST, LATEST = pd.Timestamp("1900-01-01"), pd.Timestamp("2200-12-31")
INT64_LIMIT = 2.0**63
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
    plausible = (dates >= EARLIEST) & (dates <= LATEST)
    return dates.where(plausible).astype("datetime64[ns]").dt.normalize()


def parse_column(series: pd.Series, kind: str) -> pd.Series:
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
        out[text.isin(TRUE_WORDS).fillna(False)] = True
        out[text.isin(FALSE_WORDS).fillna(False)] = False
        return out
    if pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series):
        numbers = series.astype("float64")
    else:
        numbers = pd.to_numeric(
            text_cells(series, strict=True).str.strip(), errors="coerce"
        ).astype("float64")
    numbers = numbers.where(np.isfinite(numbers))
    if kind == "int":  # a count beyond int64 (1e19) is unreadable, never wrapped to a negative
        fits = (numbers >= -INT64_LIMIT) & (numbers < INT64_LIMIT)
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
        blank = blank_cells(raw)
        values = parse_column(raw, kind)
        unreadable = values.isna().to_numpy() & ~blank
        if unreadable.any():
            failures.append(_cells(raw, unreadable, name, f"parse as {kind}"))
        if not schema.columns[name].nullable and blank.any():
            failures.append(_cells(raw, blank, name, "not_nullable"))
        parsed[name] = values
    return parsed, concat_failures(failures)


def _cells(raw: pd.Series, mask: np.ndarray, column: str, check: str) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "row": raw.index[mask].to_numpy(),
            "column": column,
            "check": check,
            "value": text_cells(raw[mask]).to_numpy(dtype=object),
        }
    )


def concat_failures(parts: list[pd.DataFrame]) -> pd.DataFrame:
    parts = [p for p in parts if len(p)]
    if not parts:
        return _NO_FAILURES.copy(deep=False)  # building it costs more than a row's checks
    return pd.concat(parts, ignore_index=True)[FAILURE_COLUMNS]


_NO_FAILURES = pd.DataFrame({c: pd.Series(dtype=object) for c in FAILURE_COLUMNS})
