"""The Dask engine against a scheduler of its own: relative paths, failures, no staging left."""

from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest
from typer.testing import CliRunner

from recoverscore.cli import EXIT_ERROR, app
from recoverscore.data.schemas import Portfolio
from recoverscore.data.synthetic import generate_frame
from recoverscore.data.tables import write_table
from recoverscore.errors import RecoverscoreError
from recoverscore.scoring import batch, distributed
from recoverscore.scoring.package import ModelPackage
from recoverscore.scoring.pipeline import Scorer, ScoringOptions

runner = CliRunner()


@pytest.fixture(scope="module")
def scheduler(tmp_path_factory: pytest.TempPathFactory):
    """A one-worker cluster whose worker runs in another folder than the tests will."""
    from distributed import LocalCluster

    started_in = tmp_path_factory.mktemp("cluster_home")
    before = Path.cwd()
    os.chdir(started_in)  # the worker process keeps this working folder
    try:
        cluster = LocalCluster(
            n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None
        )
    finally:
        os.chdir(before)
    try:
        yield cluster.scheduler_address
    finally:
        cluster.close()


def test_relative_paths_with_a_scheduler_score_like_local(
    model_dir, scheduler, tmp_path, monkeypatch
):
    portfolio = generate_frame(500, seed=4, as_of="2026-06-30")[list(Portfolio.to_schema().columns)]
    monkeypatch.chdir(tmp_path)
    write_table(portfolio, Path("portfolio.csv"))
    Path("sched").mkdir()
    common = ["score", "--model", str(model_dir), "--input", "portfolio.csv", "--no-explain",
              "--no-track", "--batch-size", "200"]  # fmt: skip
    local = runner.invoke(app, [*common, "--output", "local.parquet"])
    assert local.exit_code == 0, local.output
    dask = runner.invoke(
        app,
        [*common, "--output", "sched/out.parquet", "--engine", "dask", "--scheduler", scheduler],
    )
    assert dask.exit_code == 0, dask.output
    pd.testing.assert_frame_equal(
        pd.read_parquet("local.parquet"), pd.read_parquet("sched/out.parquet")
    )
    assert sorted(p.name for p in Path("sched").iterdir()) == [
        "out.drift.json",
        "out.parquet",
        "out.rejects.parquet",
    ]  # no staging or work folder left


def test_workers_that_cannot_see_the_batches_are_refused_in_one_line(tmp_path):
    client = SimpleNamespace(run=lambda *_: {"tcp://a:1": True, "tcp://b:1": False})
    with pytest.raises(RecoverscoreError, match=r"1 of 2 Dask workers cannot read the staged"):
        distributed._check_visible(client, tmp_path / "staged" / "batch-000000.parquet")


class _Failed:
    def __init__(self, error: BaseException) -> None:
        self.error = error

    def result(self) -> object:
        raise self.error


def test_a_cluster_side_failure_is_one_line_naming_the_batch():
    from distributed.client import FutureCancelledError

    for error in (FileNotFoundError(2, "No such file", "/x/batch-000003.parquet"),
                  FutureCancelledError("score-3", "scheduler-connection-lost")):  # fmt: skip
        with pytest.raises(RecoverscoreError, match=r"^batch 3 failed on the Dask cluster: \w+"):
            distributed._result(3, _Failed(error))
    with pytest.raises(ZeroDivisionError):  # an internal error is not dressed up as a user's
        distributed._result(3, _Failed(ZeroDivisionError("bug")))


def test_a_failed_run_leaves_no_staged_batches_and_exits_2(model_dir, tmp_path, monkeypatch):
    def fail(*_args, **_kwargs):
        raise RecoverscoreError("batch 0 failed on the Dask cluster: OSError: disk gone")
        yield  # a generator, like the real one

    monkeypatch.setattr(distributed, "_score_staged", fail)
    portfolio = generate_frame(50, seed=4, as_of="2026-06-30")[list(Portfolio.to_schema().columns)]
    write_table(portfolio, tmp_path / "in.csv")
    result = runner.invoke(
        app,
        ["score", "--model", str(model_dir), "--input", str(tmp_path / "in.csv"), "--output",
         str(tmp_path / "out.parquet"), "--engine", "dask", "--no-track"],
    )  # fmt: skip
    assert result.exit_code == EXIT_ERROR
    assert "batch 0 failed on the Dask cluster" in result.output
    assert not (tmp_path / ".out.parquet.parts" / "staged").exists()
    assert not (tmp_path / "out.parquet").exists()
    with pytest.raises(RecoverscoreError):  # and the API says the same
        batch.run(
            tmp_path / "in.csv",
            tmp_path / "out.parquet",
            Scorer(ModelPackage.load(model_dir), ScoringOptions(explain=False)),
            engine="dask",
        )
