"""The daily batch job: a portfolio file in, a scored file, a rejects file and a drift report out.

An edge module (files only; MLflow stays in ``registry``, the terminal in ``cli``). The input is
read as Arrow record batches and cut into numbered batches of ``batch_size`` rows, so memory
stays flat however large the file. Each finished batch lands in a work folder beside the output
(``.<output name>.parts/``): its scored rows, its rejects, and last a JSON of its counts that
marks it complete. Only when every batch is in are the parts streamed into the output and
rejects files (each written under a temporary name and renamed), the drift report written and the
work folder removed. A killed job therefore leaves no output that looks finished, and
``resume=True`` scores only the batches that had not landed: the result is byte for byte what an
uninterrupted run writes.

With ``engine="dask"`` the numbered batches are staged as Parquet parts in the work folder and
read back as a Dask DataFrame, one partition per batch, scored on the cluster's workers and
written in order by the same code; the workers must see the work folder (a shared file system
on a real cluster). Both engines call ``Scorer.score_batch``, so their outputs are identical.
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pv
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from recoverscore.data.schemas import Portfolio, required_columns
from recoverscore.data.tables import table_format, write_chunks, write_json, write_table
from recoverscore.errors import RecoverscoreError
from recoverscore.scoring import drift
from recoverscore.scoring.pipeline import (
    REJECT_COLUMNS,
    BatchResult,
    Scorer,
    id_hashes,
    merge_stats,
    output_schema,
)

BATCH_SIZE = 100_000
ENGINES = ("local", "dask")
_JOB_FORMAT = 1
_CSV_BLOCK = 4 << 20  # bytes of CSV parsed at a time
# Spreadsheets run a cell that starts with one of these as a formula (OWASP: CSV injection).
_FORMULA = re.compile(r"^[=+\-@\t\r]")
_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


# --- reading ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Batch:
    """Numbered input rows (``rows``: 1-based data row numbers) and unsplittable CSV records."""

    index: int
    frame: pd.DataFrame
    rows: np.ndarray
    malformed: pd.DataFrame | None = None


def _read_error(path: Path, error: Exception) -> RecoverscoreError:
    text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    if "invalid UTF8" in text or isinstance(error, UnicodeDecodeError):
        return RecoverscoreError(f"{path} is not UTF-8 text ({text}): re-save it as UTF-8 CSV")
    if "Empty CSV file" in text:
        return RecoverscoreError(f"{path} is empty: expected a header row and data")
    return RecoverscoreError(f"cannot read {path}: {text}")


class Source:
    """An input file (CSV, Parquet, or a folder of Parquet files) read in record batches."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not self.path.exists():
            raise RecoverscoreError(f"file not found: {self.path}")
        self.format = table_format(self.path)
        self.columns = self._columns()
        required = [c for c in required_columns(Portfolio) if c != "as_of"]
        missing = [c for c in required if c not in self.columns]
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
                return list(ds.dataset(self._files(), format="parquet").schema.names)
            # utf-8-sig: Excel's "CSV UTF-8" starts with a byte-order mark (Arrow skips it too)
            with self.path.open(encoding="utf-8-sig", newline="") as handle:
                header = next(csv.reader(handle), None)
        except UnicodeDecodeError as error:
            raise _read_error(self.path, error) from None
        except (pa.ArrowException, OSError) as error:
            raise _read_error(self.path, error) from None
        if not header:
            raise RecoverscoreError(f"{self.path} is empty: expected a header row and data")
        return header

    def fingerprint(self) -> dict:
        """What identifies this input for ``resume``: names, sizes and modification times."""
        return {
            "path": str(self.path.resolve()),
            "files": [(str(f), f.stat().st_size, f.stat().st_mtime_ns) for f in self._files()],
        }

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
        rows surround them, with their raw text.
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
        if (table is not None and table.num_rows) or taken < len(skipped) or index == 0:
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
        fields = next(csv.reader([text]), [])
        entry = dict(zip(columns, fields, strict=False))
        entry.update(
            row=number,
            reasons=f"(record): malformed CSV record, {actual} fields where the header has "
            f"{expected}",
            raw_record=text,
        )
        rows.append(entry)
    return pd.DataFrame(rows)


def duplicate_hashes(source: Source, batch_size: int = BATCH_SIZE) -> np.ndarray:
    """Hashes of debtor ids that occur more than once in the whole input (one cheap pass)."""
    hashes = [
        id_hashes(batch.frame["debtor_id"].dropna())
        for batch in source.batches(batch_size, columns=["debtor_id"])
    ]
    values, counts = np.unique(
        np.concatenate(hashes) if hashes else np.array([], np.uint64), return_counts=True
    )
    return values[counts > 1]


# --- writing ----------------------------------------------------------------------------------


def neutralise_formulas(frame: pd.DataFrame) -> pd.DataFrame:
    """Text cells a spreadsheet would run as a formula get a leading apostrophe.

    Plain numbers such as ``-5`` are left alone: they are values, not formulas.
    """
    out = frame.copy()
    for name in out.columns:
        column = out[name]
        if not (pd.api.types.is_string_dtype(column) or column.dtype == object):
            continue
        text = column.astype("string")
        risky = text.str.match(_FORMULA).fillna(False) & ~text.str.match(_NUMBER).fillna(False)
        if risky.any():
            out[name] = text.where(~risky, "'" + text)
    return out


def _csv_safe(frames: Iterator[pd.DataFrame], path: Path) -> Iterator[pd.DataFrame]:
    return (neutralise_formulas(f) for f in frames) if table_format(path) == "csv" else frames


# --- the job ----------------------------------------------------------------------------------


@dataclass
class JobResult:
    """What a run produced and counted; ``stats`` adds up every batch (see ``merge_stats``)."""

    output: Path
    rejects: Path
    report: Path | None
    stats: dict
    drift: pd.DataFrame | None
    resumed_batches: int
    seconds: float

    @property
    def reconciled(self) -> bool:
        return self.stats["rows_in"] == self.stats["scored"] + self.stats["rejected"]


def default_rejects_path(output: Path) -> Path:
    return output.with_name(f"{output.stem}.rejects{output.suffix}")


def default_report_path(output: Path) -> Path:
    return output.with_name(f"{output.stem}.drift.json")


def _identity(source: Source, scorer: Scorer, batch_size: int, engine: str) -> dict:
    options = scorer.options
    return {
        "format": _JOB_FORMAT,
        "input": source.fingerprint(),
        "model": scorer.model.fingerprint,
        "model_version": scorer.version,
        "options": {
            "as_of": None if options.as_of is None else str(options.as_of.date()),
            "rule": options.rule,
            "explain": options.explain,
            "top_k": options.top_k,
            "language": options.language,
            "capacity": options.capacity,
        },
        "policy": hashlib.sha256(scorer.settings.model_dump_json().encode()).hexdigest(),
        "costs": hashlib.sha256(scorer.costs.model_dump_json().encode()).hexdigest(),
        "batch_size": batch_size,
        "engine": engine,
    }


def _prepare_work(work: Path, identity: dict, resume: bool) -> set[int]:
    """The indices of batches already done (resume), after checking it is the same job."""
    job_file = work / "job.json"
    identity = json.loads(json.dumps(identity))  # as it reads back: tuples become lists
    if resume and job_file.is_file():
        previous = json.loads(job_file.read_text(encoding="utf-8"))
        changed = sorted(k for k in identity if previous.get(k) != identity[k])
        if changed:
            raise RecoverscoreError(
                f"cannot resume: {', '.join(changed)} changed since the interrupted run; "
                "run again without --resume"
            )
        return {int(p.name.split("-")[1].split(".")[0]) for p in work.glob("batch-*.json")}
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    write_json(identity, job_file)
    return set()


def _part(work: Path, index: int, kind: str) -> Path:
    return work / f"batch-{index:06d}.{kind}"


def _save_batch(work: Path, index: int, result: BatchResult) -> None:
    """Scored rows, rejects, then the counts JSON that marks the batch complete."""
    write_table(result.scored, _part(work, index, "scored.parquet"), schema=output_schema())
    if len(result.rejects):
        write_table(result.rejects, _part(work, index, "rejects.parquet"))
    write_json(result.stats, _part(work, index, "json"))


def _scored_parts(work: Path, indices: list[int]) -> Iterator[pd.DataFrame]:
    for index in indices:
        yield pq.read_table(_part(work, index, "scored.parquet")).to_pandas()


def _reject_parts(work: Path, indices: list[int], columns: list[str]) -> Iterator[pd.DataFrame]:
    yield pd.DataFrame({c: pd.Series(dtype="Int64" if c == "row" else "string") for c in columns})
    for index in indices:
        path = _part(work, index, "rejects.parquet")
        if path.is_file():
            yield pd.read_parquet(path).reindex(columns=columns)


def run(
    input_path: str | Path,
    output: str | Path,
    scorer: Scorer,
    *,
    rejects: str | Path | None = None,
    report: str | Path | None = None,
    batch_size: int = BATCH_SIZE,
    resume: bool = False,
    engine: str = "local",
    scheduler: str | None = None,
    on_rows: Callable[[int], None] | None = None,
) -> JobResult:
    """Score ``input_path`` into ``output`` (and ``rejects``); see the module docstring.

    ``on_rows(n)`` is called as each batch lands (for a progress bar).
    """
    started = time.perf_counter()
    output = Path(output)
    table_format(output)
    if engine not in ENGINES:
        raise RecoverscoreError(f"unknown engine {engine!r}; choose one of {list(ENGINES)}")
    if batch_size < 1:
        raise RecoverscoreError(f"batch size must be at least 1 (got {batch_size})")
    rejects = Path(rejects) if rejects is not None else default_rejects_path(output)
    report = Path(report) if report is not None else default_report_path(output)
    for path in (output, rejects, report):
        if not path.parent.is_dir():
            raise RecoverscoreError(f"folder does not exist: {path.parent}")
    table_format(rejects)
    source = Source(input_path)
    work = output.with_name(f".{output.name}.parts")
    done = _prepare_work(work, _identity(source, scorer, batch_size, engine), resume)
    resumed = len(done)
    duplicates = duplicate_hashes(source, batch_size)
    batches = source.batches(batch_size)
    if engine == "dask":
        from recoverscore.scoring.distributed import score_on_dask

        results = score_on_dask(batches, scorer, duplicates, work, done, scheduler)
    else:
        results = (
            (b.index, scorer.score_batch(b.frame, b.rows, duplicates, b.malformed))
            for b in batches
            if b.index not in done
        )
    for index, result in results:
        _save_batch(work, index, result)
        done.add(index)
        if on_rows is not None:
            on_rows(result.stats["rows_in"])
    indices = sorted(done)
    stats: dict = {}
    for index in indices:
        merge_stats(stats, json.loads(_part(work, index, "json").read_text(encoding="utf-8")))
    if stats["rows_in"] != stats["scored"] + stats["rejected"]:
        raise RecoverscoreError(
            f"internal error: {stats['rows_in']} rows read but {stats['scored']} scored and "
            f"{stats['rejected']} rejected"
        )
    if stats["rows_in"] == 0:
        shutil.rmtree(work)
        raise RecoverscoreError(f"{source.path} has a header but no data rows: nothing to score")
    write_chunks(_csv_safe(_scored_parts(work, indices), output), output)
    columns = [*REJECT_COLUMNS, *source.columns, "raw_record"]
    write_chunks(_csv_safe(_reject_parts(work, indices, columns), rejects), rejects)
    drift_table = None
    if scorer.model.reference_ is not None and "drift" in stats:
        counter = drift.DriftCounter(scorer.model.reference_).add_json(stats["drift"])
        drift_table = counter.report()
        write_json(drift_report(drift_table, stats, scorer), report)
    else:
        report = None
    shutil.rmtree(work)
    return JobResult(
        output=output,
        rejects=rejects,
        report=report,
        stats=stats,
        drift=drift_table,
        resumed_batches=resumed,
        seconds=time.perf_counter() - started,
    )


def drift_report(table: pd.DataFrame, stats: dict, scorer: Scorer) -> dict:
    """The JSON drift report: the run's summary, and per column PSI with its reading and the
    chi-square test of proportions (missing values as null)."""

    def number(value: float) -> float | None:
        return None if pd.isna(value) else float(value)

    return {
        "model_version": scorer.version,
        "as_of": None if scorer.options.as_of is None else str(scorer.options.as_of.date()),
        "rows_scored": stats["scored"],
        "warn_above": drift.WARN_PSI,
        **drift.summary(table),
        "drifted": table.loc[table["status"] == "drift", "column"].tolist(),
        "psi": [
            {
                **row,
                "psi": None if pd.isna(row["psi"]) else round(float(row["psi"]), 6),
                "chi2": number(row["chi2"]),
                "p_value": number(row["p_value"]),
            }
            for row in table.to_dict(orient="records")
        ],
    }
