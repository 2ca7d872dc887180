"""Reading and writing portfolio files (CSV, Parquet, a folder of Parquet files).

This is an edge module: the only place besides the CLI that touches the file system. Reading
never guesses types (CSV cells arrive as text and the schemas parse them, cell by cell), and
writing is atomic: a file is written under a temporary name and renamed only when complete, so an
interrupted job never leaves a truncated file that looks finished.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from recoverscore.errors import RecoverscoreError

FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}


def table_format(path: str | Path) -> str:
    """``csv`` or ``parquet`` from the extension (a folder holds Parquet parts)."""
    path = Path(path)
    if path.is_dir():
        return "parquet"
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise RecoverscoreError(
            f"unsupported file type {path.suffix or '(none)'!r} for {path}: use .csv or .parquet"
        )
    return fmt


def read_table(path: str | Path) -> pd.DataFrame:
    """Read a whole table; any failure to read is a one-line ``RecoverscoreError``."""
    path = Path(path)
    if not path.exists():
        raise RecoverscoreError(f"file not found: {path}")
    fmt = table_format(path)
    try:
        if fmt == "csv":
            return pd.read_csv(
                path, dtype=str, keep_default_na=False, na_values=[""], encoding="utf-8"
            )
        return pd.read_parquet(path)
    except UnicodeDecodeError as error:
        raise RecoverscoreError(
            f"{path} is not UTF-8 text (byte {error.start}): re-save it as UTF-8 CSV"
        ) from None
    except pd.errors.EmptyDataError:
        raise RecoverscoreError(f"{path} is empty: expected a header row and data") from None
    except pd.errors.ParserError as error:
        first = str(error).strip().splitlines()[0]
        raise RecoverscoreError(f"{path} is not a well-formed CSV file: {first}") from None
    except (pa.ArrowException, OSError) as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise RecoverscoreError(f"cannot read {path} as {fmt}: {first}") from None


def _temporary(path: Path) -> Path:
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


def write_text(text: str, path: str | Path) -> Path:
    """Write a UTF-8 text file atomically: readers see the old file or the whole new one."""
    path = Path(path)
    tmp = _temporary(path)
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def write_json(data: object, path: str | Path) -> Path:
    """Write JSON atomically (for metrics and reports that scripts read)."""
    return write_text(json.dumps(data, indent=2, sort_keys=True), path)


def write_table(frame: pd.DataFrame, path: str | Path, schema: pa.Schema | None = None) -> Path:
    """Write one frame atomically."""
    return write_chunks([frame], path, schema=schema)


def write_chunks(
    chunks: Iterable[pd.DataFrame],
    path: str | Path,
    on_chunk: Callable[[int], None] | None = None,
    schema: pa.Schema | None = None,
) -> Path:
    """Stream frames into one CSV or Parquet file, atomically; ``on_chunk(rows)`` per chunk.

    Dates are written as ISO dates in CSV; Parquet keeps every type, cast to ``schema`` when
    given (else to the first chunk's).
    """
    path = Path(path)
    fmt = table_format(path)
    if path.is_dir():
        raise RecoverscoreError(f"{path} is a folder: give a .csv or .parquet file to write")
    if not path.parent.exists():
        raise RecoverscoreError(f"folder does not exist: {path.parent}")
    tmp = _temporary(path)
    writer: pq.ParquetWriter | None = None
    try:
        for index, chunk in enumerate(chunks):
            if fmt == "parquet":
                table = pa.Table.from_pandas(chunk, preserve_index=False)
                if writer is None:
                    writer = pq.ParquetWriter(tmp, schema or table.schema)
                writer.write_table(table.cast(writer.schema))
            else:
                chunk.to_csv(
                    tmp,
                    mode="w" if index == 0 else "a",
                    header=index == 0,
                    index=False,
                    date_format="%Y-%m-%d",
                    encoding="utf-8",
                )
            if on_chunk is not None:
                on_chunk(len(chunk))
        if writer is not None:
            writer.close()
            writer = None
        os.replace(tmp, path)
    except BaseException:
        if writer is not None:
            writer.close()
        tmp.unlink(missing_ok=True)
        raise
    return path
