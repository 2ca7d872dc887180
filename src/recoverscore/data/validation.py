"""Checking a file against a contract, in two phases so that one bad cell never hides another
and never crashes a check:

1. ``parsing.parse_columns`` turns each cell into the schema's type (files arrive as text or with
   loose types) and records cells that cannot be parsed or are missing where a value is required;
2. pandera validates the rows that parsed, lazily, so every range, category, uniqueness and
   cross-column failure is reported at once.

Both phases feed one failure table with a row number, column, check and offending value. A small
frame (a served request) goes through ``small_frames`` instead: the same checks, without
pandera's fixed costs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pandera.pandas as pa

from recoverscore.data.parsing import concat_failures, parse_columns
from recoverscore.data.schemas import FAILURE_COLUMNS, ROW_RULES, Contract, Portfolio, as_schema
from recoverscore.data.small_frames import compiled

SMALL_FRAME_ROWS = 64
"""Frames up to this many rows (a served request, a tiny file) are validated by
``small_frames.CompiledContract``; larger frames go through pandera."""


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
    row_level = cases["check"].isin(ROW_RULES) & cases["index"].notna()
    cross = cases[row_level].drop_duplicates(subset=["index", "check"])
    columns = cross["check"].map(lambda name: ROW_RULES[name].primary)
    cross_rows = pd.DataFrame(
        {
            "row": cross["index"].to_numpy(),
            "column": columns.to_numpy(),
            "check": cross["check"].map(lambda name: ROW_RULES[name].description).to_numpy(),
            "value": [frame.at[i, c] for i, c in zip(cross["index"], columns, strict=True)],
        }
    )
    column_rows = cases[~row_level].rename(columns={"index": "row", "failure_case": "value"})
    return concat_failures([column_rows[FAILURE_COLUMNS], cross_rows])


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
    if rows is None:
        index = pd.RangeIndex(1, len(frame) + 1, name="row")
    else:
        index = pd.Index(np.asarray(rows, dtype=np.int64), name="row")
    if as_of is not None and "as_of" not in frame.columns:
        frame = frame.assign(as_of=pd.Timestamp(as_of))
    schema = as_schema(contract)
    present = set(frame.columns)
    missing = [
        name for name, column in schema.columns.items() if column.required and name not in present
    ]
    if missing:
        failures = pd.DataFrame(
            {"row": pd.NA, "column": missing, "check": "column_in_dataframe", "value": None}
        )[FAILURE_COLUMNS]
        return ValidationReport(frame.iloc[0:0].set_axis(index[:0]), failures, len(frame), rows)
    small = compiled(schema) if len(frame) <= SMALL_FRAME_ROWS else None
    if small is not None and small.supported:
        valid, failures = small.validate(frame, index)
        if not failures.empty:
            failures = failures.sort_values(["row", "column"], kind="stable").reset_index(drop=True)
        return ValidationReport(valid, failures, len(frame), rows)
    frame = frame.set_axis(index)
    parsed, cell_failures = parse_columns(frame, schema)
    bad_cells = cell_failures["row"].unique()
    readable = parsed.drop(index=bad_cells)
    try:
        valid = schema.validate(readable, lazy=True)
        schema_failures = concat_failures([])
    except pa.errors.SchemaErrors as errors:
        schema_failures = _schema_failures(errors.failure_cases, readable)
        rejected = schema_failures["row"].dropna().unique()
        valid = schema.validate(readable.drop(index=rejected), lazy=True)
    # rows with unreadable cells still get every column check; cross-column checks need all
    # their inputs, so those wait until the row reads
    try:
        _column_checks(schema).validate(parsed.loc[bad_cells], lazy=True)
    except pa.errors.SchemaErrors as errors:
        schema_failures = concat_failures(
            [schema_failures, _schema_failures(errors.failure_cases, parsed)]
        )
    failures = concat_failures([cell_failures, schema_failures])
    if not failures.empty:
        failures = failures.sort_values(["row", "column"], kind="stable").reset_index(drop=True)
    return ValidationReport(valid, failures, len(frame), rows)
