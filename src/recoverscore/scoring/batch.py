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

A run owns its outputs: before any work it checks that no output is an input, another output or
inside an input folder, then holds an exclusive lock on every output (and so on its work
folder) until it ends; a second run on the same outputs is refused, naming the first. The work
folder's ``job.json`` records the run's id and identity (the SHA-256 of the input's bytes, the
package hash, the options): every part carries the run id, the merge reads only parts of its own
run, and a resume continues only the same job, naming what changed otherwise.

With ``engine="dask"`` the numbered batches are staged as Parquet parts in the work folder and
read back as a Dask DataFrame, one partition per batch, scored on the cluster's workers and
written in order by the same code; the workers must see the work folder (a shared file system
on a real cluster). Both engines call ``Scorer.score_batch``, so their outputs are identical.
"""

from __future__ import annotations

import json
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from recoverscore.data.checking import duplicate_hashes
from recoverscore.data.reader import BATCH_SIZE, Source
from recoverscore.data.tables import (
    check_paths,
    csv_safe,
    locked,
    table_format,
    write_chunks,
    write_error,
    write_json,
    write_table,
)
from recoverscore.errors import RecoverscoreError
from recoverscore.scoring import drift
from recoverscore.scoring.pipeline import (
    FAILURE_COLUMNS,
    BatchResult,
    Scorer,
    merge_stats,
    output_schema,
)

ENGINES = ("local", "dask")
_JOB_FORMAT = 3
_RUN_KEY = b"recoverscore.run"  # Parquet metadata: the run that wrote a part
# What a resume refusal calls each part of a job's identity (options by their CLI flags).
_IDENTITY_NAMES = {
    "format": "the work folder's format",
    "input": "the input's content",
    "package": "the model package",
    "overrides": "the policy or cost overrides",
    "model_version": "--model",
    "batch_size": "--batch-size",
    "engine": "--engine",
}
_OPTION_NAMES = {
    "as_of": "--as-of",
    "policy": "--policy",
    "explain": "--explain/--no-explain",
    "top_k": "--top-k",
    "language": "--language",
    "capacity": "the capacity",
}


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


def _changes(previous: dict, identity: dict) -> list[str]:
    """What differs between an interrupted run's identity and this one's, by name."""
    changes = []
    for key, value in identity.items():
        if key == "options":
            old = previous.get(key) or {}
            changes += [
                f"{_OPTION_NAMES.get(k, k)} ({old.get(k)!r} then, {v!r} now)"
                for k, v in value.items()
                if old.get(k) != v
            ]
        elif previous.get(key) != value:
            shown = key in ("model_version", "batch_size", "engine")
            detail = f" ({previous.get(key)!r} then, {value!r} now)" if shown else ""
            changes.append(_IDENTITY_NAMES.get(key, key) + detail)
    return changes


def _prepare_work(work: Path, identity: dict, resume: bool) -> tuple[str, set[int]]:
    """This run's id and the batches already done (resume, after checking it is the same job
    and keeping only parts its run wrote); a fresh run starts an empty work folder."""
    job_file = work / "job.json"
    identity = json.loads(json.dumps(identity))  # as it reads back: tuples become lists
    if resume and job_file.is_file():
        previous = json.loads(job_file.read_text(encoding="utf-8"))
        changed = _changes(previous, identity)
        if changed:
            raise RecoverscoreError(
                f"cannot resume: {'; '.join(changed)} changed since the interrupted run; "
                "run again without --resume"
            )
        run_id = previous["run"]
        done = {
            int(p.name.split("-")[1].split(".")[0])
            for p in work.glob("batch-*.json")
            if _marker(p).get("run") == run_id
        }
        return run_id, done
    try:
        if work.exists():
            shutil.rmtree(work)
        work.mkdir(parents=True)
    except OSError as error:
        raise write_error(work, error) from None
    run_id = uuid.uuid4().hex
    write_json({**identity, "run": run_id}, job_file)
    return run_id, set()


def _marker(path: Path) -> dict:
    """A batch's completion marker (its run and counts); unreadable: not complete."""
    try:
        marker = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return marker if isinstance(marker, dict) else {}


def _part(work: Path, index: int, kind: str) -> Path:
    return work / f"batch-{index:06d}.{kind}"


def _tagged(schema: pa.Schema, run_id: str) -> pa.Schema:
    return schema.with_metadata({**(schema.metadata or {}), _RUN_KEY: run_id.encode()})


def _save_batch(work: Path, index: int, result: BatchResult, id_column: str, run_id: str) -> None:
    """Scored rows, rejects, then the marker JSON that makes the batch complete; every part
    carries the run's id, and the merge reads only parts of its own run."""
    write_table(
        result.scored,
        _part(work, index, "scored.parquet"),
        schema=_tagged(output_schema(id_column), run_id),
    )
    if len(result.rejects):
        schema = pa.Schema.from_pandas(result.rejects, preserve_index=False)
        write_table(result.rejects, _part(work, index, "rejects.parquet"), _tagged(schema, run_id))
    write_json({"run": run_id, "stats": result.stats}, _part(work, index, "json"))


def _own(path: Path, run_id: str) -> pa.Table:
    """A part of this run; one written by any other run is refused, never merged."""
    table = pq.read_table(path)
    if (table.schema.metadata or {}).get(_RUN_KEY) != run_id.encode():
        raise RecoverscoreError(
            f"{path} was not written by this run: another process wrote into the work folder; "
            "run again without --resume"
        )
    return table


def _scored_parts(work: Path, indices: list[int], run_id: str) -> Iterator[pd.DataFrame]:
    for index in indices:
        yield _own(_part(work, index, "scored.parquet"), run_id).to_pandas()


def _reject_parts(
    work: Path, indices: list[int], columns: list[str], run_id: str
) -> Iterator[pd.DataFrame]:
    yield pd.DataFrame({c: pd.Series(dtype="Int64" if c == "row" else "string") for c in columns})
    for index in indices:
        path = _part(work, index, "rejects.parquet")
        if path.is_file():
            yield _own(path, run_id).to_pandas().reindex(columns=columns)


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
    model_dir: str | Path | None = None,
) -> JobResult:
    """Score ``input_path`` into ``output`` (and ``rejects``); see the module docstring.

    Before any work the output paths are checked (none may be the input, ``model_dir`` (the
    package folder scored from, if any), another output, or inside an input folder) and locked
    for the run: a second run on the same outputs is refused, naming this one.
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
    inputs = {"input": Path(input_path)}
    if model_dir is not None:
        inputs["model package"] = Path(model_dir)
    check_paths(inputs, {"output": output, "rejects file": rejects, "drift report": report})
    with locked([output, rejects, report]):
        stats, resumed = _score(
            Source(input_path, required=scorer.package.contract.required),
            output,
            scorer,
            rejects,
            batch_size,
            resume,
            engine,
            scheduler,
            on_rows,
            on_stage or (lambda text, rows: None),
        )
        drift_table = None
        if scorer.package.reference is not None and "drift" in stats:
            counter = drift.DriftCounter(scorer.package.reference).add_json(stats["drift"])
            drift_table = counter.report()
            write_json(drift_report(drift_table, stats, scorer), report)
        else:
            report = None
        shutil.rmtree(_work_folder(output))
    return JobResult(
        output=output,
        rejects=rejects,
        report=report,
        stats=stats,
        drift=drift_table,
        resumed_batches=resumed,
        seconds=time.perf_counter() - started,
    )


def _work_folder(output: Path) -> Path:
    return output.with_name(f".{output.name}.parts")


def _score(
    source: Source,
    output: Path,
    scorer: Scorer,
    rejects: Path,
    batch_size: int,
    resume: bool,
    engine: str,
    scheduler: str | None,
    on_rows: Callable[[int], None] | None,
    on_stage: Callable[[str, int | None], None],
) -> tuple[dict, int]:
    """Score every batch not done into the work folder, then merge the parts into the output
    and rejects files; returns the run's counts and how many batches a resume kept."""
    id_column = scorer.package.contract.id_column
    on_stage("checking ids for duplicates", source.row_count())
    duplicates, records = duplicate_hashes(source, id_column, batch_size)  # any rows at all?
    work = _work_folder(output)
    run_id, done = _prepare_work(work, _identity(source, scorer, batch_size, engine), resume)
    resumed = len(done)
    on_stage("scoring", records)
    if on_rows is not None and done:
        on_rows(sum(_marker(_part(work, i, "json"))["stats"]["rows_in"] for i in done))
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
        _save_batch(work, index, result, id_column, run_id)
        done.add(index)
        if on_rows is not None:
            on_rows(result.stats["rows_in"])
    indices = sorted(done)
    stats: dict = {}
    for index in indices:
        merge_stats(stats, _marker(_part(work, index, "json"))["stats"])
    if stats["rows_in"] != stats["scored"] + stats["rejected"]:
        raise RuntimeError(
            f"{stats['rows_in']} rows read but {stats['scored']} scored and "
            f"{stats['rejected']} rejected"
        )
    write_chunks(csv_safe(_scored_parts(work, indices, run_id), output), output)
    columns = [*FAILURE_COLUMNS, *source.columns, "raw_record"]
    write_chunks(csv_safe(_reject_parts(work, indices, columns, run_id), rejects), rejects)
    return stats, resumed


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
