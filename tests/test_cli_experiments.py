"""The loop on the command line: score, simulate-outcomes, backtest (logged to MLflow),
experiment-size, and the errors a user can hit on the way."""

from __future__ import annotations

from pathlib import Path

import mlflow
import pytest

from recoverscore import registry
from recoverscore.cli import EXIT_INVALID
from recoverscore.data.schemas import SyntheticHistory
from recoverscore.data.tables import read_table
from recoverscore.data.validation import validate
from tests.conftest import one_line_error, run


@pytest.fixture(scope="module")
def loop(tmp_path_factory, model_dir) -> Path:
    """A month generated, scored and observed with the command line."""
    work = tmp_path_factory.mktemp("loop")
    steps = [
        ("generate", "--rows", 1500, "--seed", 4, "--id-prefix", "M1-", "--out",
         work / "world.parquet"),
        ("score", "--model", model_dir, "--input", work / "world.parquet", "--output",
         work / "scored.csv", "--no-explain", "--no-track"),
        ("simulate-outcomes", "--scored", work / "scored.csv", "--world", work / "world.parquet",
         "--out", work / "outcomes.csv", "--history-out", work / "round.parquet", "--seed", 3),
    ]  # fmt: skip
    for step in steps:
        result = run(*step)
        assert result.exit_code == 0, result.output
    return work


def test_simulate_outcomes_writes_outcomes_and_history_rows(loop):
    outcomes = read_table(loop / "outcomes.csv")
    assert outcomes.columns.tolist() == [
        "debtor_id", "recovered", "amount_recovered", "costs", "outcome_date"
    ]  # fmt: skip
    assert len(outcomes) == 1500 and outcomes["debtor_id"].str.startswith("M1-").all()
    history = read_table(loop / "round.parquet")
    assert validate(history, SyntheticHistory).is_valid
    result = run("validate", loop / "outcomes.csv")
    assert result.exit_code == 0 and "valid against the outcomes schema" in result.output


def test_backtest_prints_the_tables_and_logs_aggregates_to_mlflow(loop, model_dir, monkeypatch):
    uri = f"sqlite:///{loop / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("MLFLOW_REGISTRY_URI", uri)
    monkeypatch.chdir(loop)
    result = run(
        "backtest", "--scored", loop / "scored.csv", "--outcomes", loop / "outcomes.csv",
        "--model", model_dir, "--resamples", 100,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    for text in (
        "outcomes joined to the scored runs",
        "model quality",
        "recovery by tier worked",
        "by score decile",
        "no experiment cells in the scored files",
        "backtested 1,500 of 1,500 outcomes",
        "MLflow run",
    ):
        assert text in result.output, text
    client = mlflow.MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name(registry.BACKTEST_EXPERIMENT)
    (logged,) = client.search_runs([experiment.experiment_id])
    package_label = read_table(loop / "scored.csv")["model_version"].iloc[0]
    assert logged.data.params["model_version"] == package_label
    assert logged.data.params["reference_model"] == package_label
    assert logged.data.metrics["count_matched"] == 1500
    artifacts = Path(
        mlflow.artifacts.download_artifacts(run_id=logged.info.run_id, tracking_uri=uri)
    )
    files = sorted(p.relative_to(artifacts).as_posix() for p in artifacts.rglob("*") if p.is_file())
    assert "plots/lift_by_tier.png" in files and "tables/by_tier.csv" in files
    ids = set(read_table(loop / "outcomes.csv")["debtor_id"])
    for path in artifacts.rglob("*.csv"):
        text = path.read_text()
        assert not any(i in text for i in list(ids)[:200]), path.name
    mlflow.set_tracking_uri(None)
    mlflow.set_registry_uri(None)


def test_backtest_of_two_runs_with_spoiled_outcomes_rejects_and_exits_1(loop):
    scored = read_table(loop / "scored.csv")
    later = scored.head(500).assign(as_of="2026-09-30", recommended_tier="mediation")
    later.to_csv(loop / "later.csv", index=False)
    outcomes = read_table(loop / "outcomes.csv")
    outcomes.loc[0, "costs"] = "-3"
    outcomes.loc[1, "debtor_id"] = "NOBODY"
    outcomes.to_csv(loop / "spoiled.csv", index=False)
    result = run(
        "backtest", "--scored", loop / "scored.csv", "--scored", loop / "later.csv",
        "--outcomes", loop / "spoiled.csv", "--rejects", loop / "rejects.csv", "--no-track",
        "--resamples", 0,
    )  # fmt: skip
    assert result.exit_code == EXIT_INVALID, result.output
    assert "2 rejected" in result.output
    rejects = read_table(loop / "rejects.csv")
    assert rejects["row"].tolist() == ["1", "2"]
    assert rejects["failed_checks"].tolist() == [
        "costs: greater_than_or_equal_to(0)",
        "debtor_id: not among the scored debts",
    ]
    assert "500" in result.output  # debts scored in both runs


def test_backtest_errors_are_one_line(loop, tmp_path):
    outcomes = read_table(loop / "outcomes.csv").drop(columns="outcome_date")
    outcomes.to_csv(tmp_path / "no_date.csv", index=False)
    cases = [
        (("--outcomes", tmp_path / "missing.csv"), "file not found"),
        (("--outcomes", tmp_path / "no_date.csv"), "lack outcome_date"),
        (("--outcomes", loop / "outcomes.csv", "--alpha", "0"), "alpha must be between"),
        (("--outcomes", loop / "outcomes.csv", "--model", tmp_path), "not a recoverscore model"),
    ]
    for extra, message in cases:
        result = run("backtest", "--scored", loop / "scored.csv", *extra, "--no-track")
        assert message in one_line_error(result)


def test_simulate_outcomes_errors_are_one_line(loop, tmp_path):
    world = read_table(loop / "world.parquet").drop(columns="p_true_mediation")
    world.to_parquet(tmp_path / "no_truth.parquet")
    result = run(
        "simulate-outcomes", "--scored", loop / "scored.csv", "--world",
        tmp_path / "no_truth.parquet", "--out", tmp_path / "o.csv",
    )  # fmt: skip
    assert "p_true_mediation" in one_line_error(result)
    result = run(
        "simulate-outcomes", "--scored", loop / "scored.csv", "--world", loop / "world.parquet",
        "--out", tmp_path / "o.txt",
    )  # fmt: skip
    assert "unsupported file type" in one_line_error(result)


def test_experiment_size_answers_in_a_sentence(loop):
    result = run(
        "experiment-size", "--history", loop / "round.parquet", "--lift", 0.2, "--monthly",
        100_000, "--months", 6,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "debts needed by challenger share" in result.output
    assert "With 100,000 debts a month, a 20% lift in net recovery per debtor" in result.output
    assert "1,500 debts" in result.output
    result = run("experiment-size", "--history", loop / "scored.csv")
    assert "lacks amount_recovered, costs" in one_line_error(result)


def test_outcomes_schema_is_documented_and_detected(loop):
    result = run("schema", "outcomes")
    assert result.exit_code == 0 and "| `outcome_date` | date | yes |" in result.output
    described = run("describe", loop / "outcomes.csv")
    assert "not a labelled history" in one_line_error(described)
    frame = read_table(loop / "outcomes.csv")
    frame.loc[3, "recovered"] = "maybe"
    frame.to_csv(loop / "bad_outcomes.csv", index=False)
    result = run("validate", loop / "bad_outcomes.csv")
    assert result.exit_code == EXIT_INVALID and "fail the outcomes schema" in result.output
