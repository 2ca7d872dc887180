"""Checking a whole file the way the batch job does, so ``validate`` and ``score`` agree.

Both commands read the file through ``reader.Source`` in the same numbered batches, check each
batch against the contract, reject every copy of an id that occurs more than once anywhere in
the file (ids compared as validation reads them: without surrounding spaces), and count records
the CSV parser could not split into cells as failures of their own row. A row is bad for one
command exactly when it is bad for the other, whatever the batch size.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from recoverscore.data.parsing import text_cells
from recoverscore.data.reader import BATCH_SIZE, MALFORMED, Source
from recoverscore.data.schemas import FAILURE_COLUMNS
from recoverscore.data.validation import ValidationReport

BatchCheck = Callable[[pd.DataFrame, np.ndarray], ValidationReport]
"""Validates one batch (its raw rows and their row numbers) against a contract."""


def id_hashes(ids: pd.Series) -> np.ndarray:
    """64-bit hashes of debtor ids as validation reads them (text without surrounding spaces):
    80 MB for 10M ids where a set of strings takes GBs.

    Two different ids share a hash with odds of about n^2 / 2^65 (3e-6 for 10M ids).
    """
    text = text_cells(ids).str.strip()
    return pd.util.hash_array(text.to_numpy(dtype=object, na_value=""))


def duplicate_hashes(
    source: Source, id_column: str, batch_size: int = BATCH_SIZE
) -> tuple[np.ndarray, int]:
    """Hashes of ids that occur more than once in the whole input (one cheap pass), and the
    number of records the pass read (what the scoring pass will count as rows in)."""
    hashes, records = [], 0
    for batch in source.batches(batch_size, columns=[id_column]):
        hashes.append(id_hashes(batch.frame[id_column].dropna()))
        records += len(batch.frame) + (0 if batch.malformed is None else len(batch.malformed))
    values, counts = np.unique(
        np.concatenate(hashes) if hashes else np.array([], np.uint64), return_counts=True
    )
    return values[counts > 1], records


def reject_duplicates(
    raw: pd.DataFrame,
    rows: np.ndarray,
    failures: pd.DataFrame,
    valid: pd.DataFrame,
    duplicates: np.ndarray,
    id_column: str,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every copy of an id repeated anywhere in the input fails ``field_uniqueness``."""
    if not len(duplicates) or id_column not in raw.columns:
        return failures, valid
    ids = raw[id_column]
    repeated = np.isin(id_hashes(ids), duplicates) & ids.notna().to_numpy()
    if not repeated.any():
        return failures, valid
    extra = pd.DataFrame(
        {
            "row": rows[repeated],
            "column": id_column,
            "check": "field_uniqueness",
            "value": text_cells(ids[repeated]).to_numpy(dtype=object),
        }
    )
    failures = (
        pd.concat([failures, extra], ignore_index=True)
        .drop_duplicates(subset=["row", "column", "check"])
        .sort_values(["row", "column"], kind="stable", ignore_index=True)
    )
    return failures, valid.drop(index=rows[repeated], errors="ignore")


@dataclass(frozen=True)
class FileReport:
    """Every failure of a file (``row``, ``column``, ``check``, ``value`` as text) and its
    number of data rows (records the reader could not split included)."""

    n_rows: int
    failures: pd.DataFrame

    @property
    def is_valid(self) -> bool:
        return self.failures.empty

    @property
    def rejected_rows(self) -> np.ndarray:
        return np.sort(self.failures["row"].dropna().astype(np.int64).unique())


def check_file(
    source: Source, check: BatchCheck, id_column: str, batch_size: int = BATCH_SIZE
) -> FileReport:
    """Check ``source`` batch by batch as the batch job does (see the module docstring)."""
    duplicates, _ = duplicate_hashes(source, id_column, batch_size)
    parts, n_rows = [pd.DataFrame({c: pd.Series(dtype=object) for c in FAILURE_COLUMNS})], 0
    for batch in source.batches(batch_size):
        report = check(batch.frame, batch.rows)
        failures, _ = reject_duplicates(
            batch.frame, batch.rows, report.failures, report.valid, duplicates, id_column
        )
        parts.append(failures)
        n_rows += len(batch.rows)
        if batch.malformed is not None:
            n_rows += len(batch.malformed)
            parts.append(_malformed_failures(batch.malformed))
    failures = pd.concat([p.astype(object) for p in parts], ignore_index=True)
    failures = failures.astype(
        {"row": "Int64", "column": "string", "check": "string", "value": "string"}
    )
    failures = failures.sort_values(["row", "column"], kind="stable", ignore_index=True)
    return FileReport(n_rows, failures[FAILURE_COLUMNS])


def _malformed_failures(malformed: pd.DataFrame) -> pd.DataFrame:
    """A record the reader could not split into cells: one failure carrying its raw text."""
    return pd.DataFrame(
        {
            "row": malformed["row"].to_numpy(),
            "column": MALFORMED,
            "check": malformed["failed_checks"].str.removeprefix(f"{MALFORMED}: ").to_numpy(),
            "value": malformed["raw_record"].to_numpy(),
        }
    )
