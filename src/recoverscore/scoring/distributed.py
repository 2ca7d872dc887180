"""Scoring on a Dask cluster: the batch job's batches as partitions of a Dask DataFrame.

The job's numbered batches are staged as Parquet files in its work folder (each with its row
numbers), read back with ``dd.from_map`` as one partition per batch, and every partition is
scored on a worker by the same ``Scorer.score_batch`` the local engine calls. Results come back
in batch order through a bounded window of futures, so the driver holds a few batches at most.
"""

from __future__ import annotations

import os
import shutil
from collections import deque
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd

from recoverscore.data.reader import Batch
from recoverscore.errors import RecoverscoreError
from recoverscore.scoring.pipeline import BatchResult, Scorer

_ROW = "__row__"


def _stage(batches: Iterator[Batch], folder: Path, done: set[int]) -> list[tuple[int, Path]]:
    """Write each batch still to score as ``<folder>/batch-<i>.parquet`` with its row numbers.

    Whatever an interrupted run left there is removed first.
    """
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    staged = []
    for batch in batches:
        if batch.index in done:
            continue
        path = folder / f"batch-{batch.index:06d}.parquet"
        batch.frame.assign(**{_ROW: batch.rows}).to_parquet(path, index=False)
        if batch.malformed is not None:
            batch.malformed.to_parquet(path.with_suffix(".malformed.parquet"), index=False)
        staged.append((batch.index, path))
    return staged


def _score_partition(
    frame: pd.DataFrame, scorer: Scorer, duplicates: np.ndarray, malformed_path: str
) -> BatchResult:
    """Runs on a worker: one staged partition through ``Scorer.score_batch``."""
    rows = frame.pop(_ROW).to_numpy(dtype=np.int64)
    malformed = pd.read_parquet(malformed_path) if Path(malformed_path).is_file() else None
    return scorer.score_batch(frame, rows, duplicates, malformed)


def connect(scheduler: str | None):
    """A client on the cluster at ``scheduler``, or on a new local cluster of two workers."""
    from distributed import Client, LocalCluster

    try:
        if scheduler:
            return Client(scheduler, timeout="10s")
        cluster = LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        )
        return Client(cluster)
    except (OSError, TimeoutError) as error:
        where = scheduler or "a local cluster"
        raise RecoverscoreError(
            f"cannot connect to the Dask scheduler at {where}: {error}"
        ) from None


def _check_visible(client, path: Path) -> None:
    """Refuse in one line when a worker cannot read the staged batches (no shared folder)."""
    seen = client.run(os.path.isfile, str(path))
    blind = sorted(worker for worker, visible in seen.items() if not visible)
    if blind:
        raise RecoverscoreError(
            f"{len(blind)} of {len(seen)} Dask workers cannot read the staged batches in "
            f"{path.parent}: put --output on a file system every worker mounts at the same path"
        )


def _result(index: int, future) -> BatchResult:
    """A batch's result; a cluster-side failure a user can act on is one line."""
    from distributed.client import FutureCancelledError
    from distributed.scheduler import KilledWorker

    try:
        return future.result()
    except (OSError, KilledWorker, FutureCancelledError) as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else ""
        raise RecoverscoreError(
            f"batch {index} failed on the Dask cluster: {type(error).__name__}: {reason}"
        ) from None


def score_on_dask(
    batches: Iterator[Batch],
    scorer: Scorer,
    duplicates: np.ndarray,
    work: Path,
    done: set[int],
    scheduler: str | None = None,
) -> Iterator[tuple[int, BatchResult]]:
    """Score the batches not yet ``done`` on Dask; yields ``(index, result)`` in batch order.

    The staged batches are named by absolute path (workers do not share the client's working
    folder) and removed when the run ends, finished or not.
    """
    folder = Path(work).resolve() / "staged"
    try:
        staged = _stage(batches, folder, done)
        if staged:
            yield from _score_staged(staged, scorer, duplicates, scheduler)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _score_staged(
    staged: list[tuple[int, Path]],
    scorer: Scorer,
    duplicates: np.ndarray,
    scheduler: str | None,
) -> Iterator[tuple[int, BatchResult]]:
    import dask.dataframe as dd

    frame = dd.from_map(pd.read_parquet, [str(path) for _, path in staged])
    partitions = frame.to_delayed()
    client = connect(scheduler)
    try:
        _check_visible(client, staged[0][1])
        shared = client.scatter([scorer, duplicates], broadcast=True)
        window = 2 * max(1, len(client.scheduler_info()["workers"]))
        pending: deque = deque()
        for (index, path), partition in zip(staged, partitions, strict=True):
            part = client.compute(partition)
            malformed = str(path.with_suffix(".malformed.parquet"))
            pending.append((index, client.submit(_score_partition, part, *shared, malformed)))
            if len(pending) >= window:
                first, future = pending.popleft()
                yield first, _result(first, future)
        while pending:
            first, future = pending.popleft()
            yield first, _result(first, future)
    finally:
        client.close()
        if scheduler is None and client.cluster is not None:
            client.cluster.close()
