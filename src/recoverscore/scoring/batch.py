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

import json
import re
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from recoverscore.data.reader import BATCH_SIZE, Source
from recoverscore.data.tables import table_format, write_chunks, write_json, write_table
from recoverscore.errors import RecoverscoreError
from recoverscore.scoring import drift
from recoverscore.scoring.pipeline import (
    FAILURE_COLUMNS,
    BatchResult,
    Scorer,
    id_hashes,
    merge_stats,
    output_schema,
)

ENGINES = ("local", "dask")
_JOB_FORMAT = 2
# Spreadsheets run a cell that starts with one of these as a formula (OWASP: CSV injection).
_FORMULA = re.compile(r"^[=+\-@\t\r]")
_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


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
    return {
        "format": _JOB_FORMAT,
        "input": source.fingerprint(),
        "package": scorer.package.digest,
        "overrides": scorer.package.overrides,
        "model_version": scorer.label,
        "options": scorer.options.describe(),
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


def _save_batch(work: Path, index: int, result: BatchResult, id_column: str) -> None:
    """Scored rows, rejects, then the counts JSON that marks the batch complete."""
    schema = output_schema(id_column)
    write_table(result.scored, _part(work, index, "scored.parquet"), schema=schema)
    if len(result.rejects):
        write_table(result.rejects, _part(work, index, "rejects.parquet"))
    write_json(result.stats, _part(work, index, "json"))


def _batch_stats(work: Path, index: int) -> dict:
    return json.loads(_part(work, index, "json").read_text(encoding="utf-8"))


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
    on_stage: Callable[[str, int | None], None] | None = None,
) -> JobResult:
    """Score ``input_path`` into ``output`` (and ``rejects``); see the module docstring.

    For progress displays: ``on_stage(text, rows)`` is told as each pass over the input starts
    (the duplicate-id check, then scoring) with the number of rows when known (a Parquet
    file's metadata says it at once; a CSV's is counted by the first pass), and ``on_rows(n)``
    as each batch lands (batches kept from an interrupted run count at the start).
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
    contract = scorer.package.contract
    source = Source(input_path, required=contract.required)
    work = output.with_name(f".{output.name}.parts")
    done = _prepare_work(work, _identity(source, scorer, batch_size, engine), resume)
    resumed = len(done)
    if on_stage is not None:
        on_stage("checking ids for duplicates", source.row_count())
    duplicates, records = duplicate_hashes(source, contract.id_column, batch_size)
    if on_stage is not None:
        on_stage("scoring", records)
    if on_rows is not None and done:
        on_rows(sum(_batch_stats(work, index)["rows_in"] for index in done))
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
        _save_batch(work, index, result, contract.id_column)
        done.add(index)
        if on_rows is not None:
            on_rows(result.stats["rows_in"])
    indices = sorted(done)
    stats: dict = {}
    for index in indices:
        merge_stats(stats, _batch_stats(work, index))
    if stats["rows_in"] != stats["scored"] + stats["rejected"]:
        raise RecoverscoreError(
            f"internal error: {stats['rows_in']} rows read but {stats['scored']} scored and "
            f"{stats['rejected']} rejected"
        )
    if stats["rows_in"] == 0:
        shutil.rmtree(work)
        raise RecoverscoreError(f"{source.path} has a header but no data rows: nothing to score")
    write_chunks(_csv_safe(_scored_parts(work, indices), output), output)
    columns = [*FAILURE_COLUMNS, *source.columns, "raw_record"]
    write_chunks(_csv_safe(_reject_parts(work, indices, columns), rejects), rejects)
    drift_table = None
    if scorer.package.reference is not None and "drift" in stats:
        counter = drift.DriftCounter(scorer.package.reference).add_json(stats["drift"])
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


def decision_dates_text(stats: dict) -> str | None:
    """The decision dates of a run's scored rows: one date, or the first and last."""
    dates = sorted(stats.get("as_of", {}))
    if not dates:
        return None
    return dates[0] if len(dates) == 1 else f"{dates[0]} to {dates[-1]}"


def drift_report(table: pd.DataFrame, stats: dict, scorer: Scorer) -> dict:
    """The JSON drift report: the run's summary, and per column PSI with its reading and the
    chi-square test of proportions (missing values as null)."""

    def number(value: float) -> float | None:
        return None if pd.isna(value) else float(value)

    return {
        "model_version": scorer.label,
        "explainer": scorer.package.model.explainer if scorer.options.explain else None,
        "as_of": decision_dates_text(stats),
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
