"""Reading portfolio files in numbered record batches: the one reader of CSV and Parquet.

A file (CSV, Parquet, or a folder of Parquet files) is read as Arrow record batches and cut into
numbered batches of ``batch_size`` rows, so memory stays flat however large the file. CSV cells
arrive as text (the contracts parse them cell by cell) and records the CSV parser cannot split
into the header's columns come back with their raw text instead of being lost. ``validate`` and
``score`` both read through here, so they see the same rows, numbered alike.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pv
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from recoverscore.data.tables import table_format
from recoverscore.errors import RecoverscoreError

BATCH_SIZE = 100_000
_CSV_BLOCK = 4 << 20  # bytes of CSV parsed at a time
_HASH_BLOCK = 1 << 20  # bytes hashed at a time
MALFORMED = "(record)"
"""The column name failures of a whole CSV record carry (it could not be split into cells)."""


@dataclass(frozen=True)
class Batch:
    """Numbered input rows (``rows``: 1-based data row numbers) and unsplittable CSV records."""

    index: int
    frame: pd.DataFrame
    rows: np.ndarray
    malformed: pd.DataFrame | None = None


def first_invalid_utf8(path: Path) -> tuple[int, int] | None:
    """The byte offset and line (both from the file's start; line 1-based) of the first byte
    that is not UTF-8, or ``None`` if the whole file is UTF-8."""
    decode = codecs.getincrementaldecoder("utf-8")()
    offset, lines = 0, 1
    with path.open("rb") as handle:
        while True:
            block = handle.read(_HASH_BLOCK)
            pending = decode.getstate()[0]  # bytes of a split character held from the last block
            try:
                decode.decode(block, final=not block)
            except UnicodeDecodeError as error:
                data = pending + block
                where = offset - len(pending) + error.start
                return where, lines + data[: error.start].count(b"\n")
            if not block:
                return None
            offset += len(block)
            lines += block.count(b"\n")


def _read_error(path: Path, error: Exception) -> RecoverscoreError:
    text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    if "invalid UTF8" in text or isinstance(error, UnicodeDecodeError):
        where = first_invalid_utf8(path) if path.is_file() else None
        at = "" if where is None else f" (byte {where[0]:,}, line {where[1]:,})"
        return RecoverscoreError(f"{path} is not UTF-8 text{at}: re-save it as UTF-8 CSV")
    if "Empty CSV file" in text:
        return RecoverscoreError(f"{path} is empty: expected a header row and data")
    return RecoverscoreError(f"cannot read {path}: {text}")


def _check_names(path: Path, names: list[str]) -> None:
    """Every column needs its own name: a repeated one would make one of them invisible."""
    repeated = [name for name, n in Counter(names).items() if n > 1]
    if repeated:
        where = [i + 1 for i, name in enumerate(names) if name == repeated[0]]
        raise RecoverscoreError(
            f"{path} has {len(where)} columns named {repeated[0]!r} (columns "
            f"{', '.join(map(str, where))}): give each column its own name"
        )


class Source:
    """An input file (CSV, Parquet, or a folder of Parquet files) read in record batches."""

    def __init__(self, path: str | Path, required: list[str] | tuple[str, ...] = ()) -> None:
        self.path = Path(path)
        if not self.path.exists():
            raise RecoverscoreError(f"file not found: {self.path}")
        self.format = table_format(self.path)
        self.columns = self._columns()
        self.require(required)

    def require(self, columns: Iterable[str]) -> None:
        """Refuse a file without every one of ``columns``, naming the missing ones."""
        missing = [c for c in columns if c not in self.columns]
        if missing:
            raise RecoverscoreError(f"{self.path} lacks required column(s) {missing}")

    def _files(self) -> list[Path]:
        if not self.path.is_dir():
            return [self.path]
        files = sorted(self.path.rglob("*.parquet"))
        if not files:
            raise RecoverscoreError(f"{self.path} is a folder with no .parquet files")
        return files

    def _columns(self) -> list[str]:
        try:
            if self.format == "parquet":
                files = self._files()
                _check_names(files[0], pq.read_schema(files[0]).names)
                return list(ds.dataset(files, format="parquet").schema.names)
            # utf-8-sig: Excel's "CSV UTF-8" starts with a byte-order mark (Arrow skips it too)
            with self.path.open(encoding="utf-8-sig", newline="") as handle:
                header = next(csv.reader(handle), None)
        except (UnicodeDecodeError, csv.Error, pa.ArrowException, OSError) as error:
            raise _read_error(self.path, error) from None
        if not header:
            raise RecoverscoreError(f"{self.path} is empty: expected a header row and data")
        _check_names(self.path, header)
        return header

    def fingerprint(self) -> dict:
        """What identifies this input for ``resume``: the SHA-256 of every file's bytes (read
        in blocks), so an edit is seen whatever it does to the file's size or time."""
        files = []
        for file in self._files():
            sha = hashlib.sha256()
            try:
                with file.open("rb") as handle:
                    while block := handle.read(_HASH_BLOCK):
                        sha.update(block)
            except OSError as error:
                raise _read_error(file, error) from None
            name = file.relative_to(self.path).as_posix() if self.path.is_dir() else file.name
            files.append([name, sha.hexdigest()])
        return {"format": self.format, "files": files}

    def row_count(self) -> int | None:
        """The number of rows when the file says it without a read (Parquet's metadata), else
        ``None`` (a CSV has to be read to be counted)."""
        if self.format != "parquet":
            return None
        try:
            return sum(pq.read_metadata(f).num_rows for f in self._files())
        except (pa.ArrowException, OSError) as error:
            raise _read_error(self.path, error) from None

    def _arrow_batches(
        self, columns: list[str] | None, on_invalid: Callable
    ) -> Iterator[pa.RecordBatch]:
        if self.format == "parquet":
            # Arrow's defaults grow memory with the file: read-ahead of 16 batches and 4 files
            # decoded ahead of the scorer, and pre-buffering, which keeps every row group's
            # compressed bytes until the end. One batch ahead and no pre-buffering stay flat.
            parquet = ds.ParquetFileFormat(
                default_fragment_scan_options=ds.ParquetFragmentScanOptions(pre_buffer=False)
            )
            scanner = ds.Scanner.from_dataset(
                ds.dataset(self._files(), format=parquet),
                columns=columns,
                batch_size=BATCH_SIZE,
                batch_readahead=1,
                fragment_readahead=1,
                use_threads=False,
            )
            yield from scanner.to_batches()
            return
        names = columns or self.columns
        reader = pv.open_csv(
            self.path,
            read_options=pv.ReadOptions(block_size=_CSV_BLOCK, use_threads=False),
            parse_options=pv.ParseOptions(newlines_in_values=True, invalid_row_handler=on_invalid),
            convert_options=pv.ConvertOptions(
                column_types={c: pa.string() for c in self.columns},
                include_columns=names,
                strings_can_be_null=True,
                null_values=[""],
                quoted_strings_can_be_null=True,
            ),
        )
        yield from reader

    def batches(
        self, batch_size: int = BATCH_SIZE, columns: list[str] | None = None
    ) -> Iterator[Batch]:
        """Numbered batches of exactly ``batch_size`` rows (the last may be shorter).

        Records the CSV parser cannot split into the header's columns (a truncated last line,
        a stray delimiter) are not lost: they come back in ``malformed`` of the batch whose
        rows surround them, with their raw text. A file without a single data row is an error.
        """
        skipped: list[tuple[int, str, int, int]] = []

        def on_invalid(row: pv.InvalidRow) -> str:
            skipped.append((row.number - 1, row.text, row.expected_columns, row.actual_columns))
            return "skip"

        pending: list[pa.Table] = []
        held = 0
        next_row, taken, index = 1, 0, 0
        try:
            for record_batch in self._arrow_batches(columns, on_invalid):
                pending.append(pa.Table.from_batches([record_batch]))
                held += record_batch.num_rows
                while held >= batch_size:
                    table = pa.concat_tables(pending)
                    pending, held = [table.slice(batch_size)], held - batch_size
                    batch, next_row, taken = _numbered(
                        index, table.slice(0, batch_size), next_row, skipped, taken
                    )
                    yield batch
                    index += 1
        except (pa.ArrowException, OSError) as error:
            raise _read_error(self.path, error) from None
        table = pa.concat_tables(pending) if pending else None
        if index == 0 and (table is None or not table.num_rows) and not skipped:
            raise RecoverscoreError(f"{self.path} has a header but no data rows")
        if (table is not None and table.num_rows) or taken < len(skipped):
            if table is None:
                table = pa.table({c: pa.array([], pa.string()) for c in columns or self.columns})
            batch, _, _ = _numbered(index, table, next_row, skipped, taken, last=True)
            yield batch


def _numbered(
    index: int,
    table: pa.Table,
    next_row: int,
    skipped: list[tuple[int, str, int, int]],
    taken: int,
    last: bool = False,
) -> tuple[Batch, int, int]:
    """Give the table's rows their data row numbers, stepping over skipped records."""
    n = table.num_rows
    rows = np.arange(next_row, next_row + n, dtype=np.int64)
    mine = []
    while taken < len(skipped) and (last or (n and skipped[taken][0] <= rows[-1])):
        number = skipped[taken][0]
        rows[rows >= number] += 1
        mine.append(skipped[taken])
        taken += 1
    end = int(rows[-1]) + 1 if n else next_row + len(mine)
    malformed = _malformed(mine, table.column_names) if mine else None
    frame = table.to_pandas()
    return Batch(index, frame, rows, malformed), end, taken


def _malformed(records: list[tuple[int, str, int, int]], columns: list[str]) -> pd.DataFrame:
    """Rejects for records with the wrong number of fields: fields placed as far as they go."""
    rows = []
    for number, text, expected, actual in records:
        try:
            fields = next(csv.reader([text]), [])
        except csv.Error:  # a field beyond the csv module's limit: the raw text still shows it
            fields = []
        entry = dict(zip(columns, fields, strict=False))
        entry.update(
            row=number,
            failed_checks=f"{MALFORMED}: {malformed_check(actual, expected)}",
            raw_record=text,
        )
        rows.append(entry)
    return pd.DataFrame(rows)


def malformed_check(actual: int, expected: int) -> str:
    """The failed check of a CSV record with the wrong number of fields."""
    return f"malformed CSV record, {actual} fields where the header has {expected}"
