"""`recoverscore train`: package, metrics.json, and its one-line errors."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from recoverscore.cli import EXIT_ERROR, app
from tests.conftest import SAMPLE_DIR

runner = CliRunner()


def test_train_without_registry_writes_the_package_and_metrics(tmp_path):
    out = tmp_path / "model"
    result = runner.invoke(
        app,
        ["train", "--data", str(SAMPLE_DIR / "sample.parquet"), "--out", str(out), "--no-register"],
    )
    assert result.exit_code == 0, result.output
    assert {"metrics.json", "package.json", "package.sha256"} <= {p.name for p in out.iterdir()}
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["test_auc"] > metrics["scorecard_auc"] - 0.02
    assert 0.75 < metrics["bayes_limit_auc"] < 0.9 and metrics["rejected_rows"] == 0
    assert "test-set quality" in result.output and "Bayes limit" in result.output
    assert "predicted vs true P(recover)" in result.output
    metadata = json.loads((out / "package.json").read_text())["metadata"]  # the backtest's
    assert {k: metadata[k] for k in ("test_auc", "test_brier", "test_ece")} == {  # reference
        k: metrics[k] for k in ("test_auc", "test_brier", "test_ece")
    }


@pytest.mark.parametrize(
    ("yaml_text", "message"),
    [
        ("data: {target: paid_back}\n", "the data has no column 'paid_back' (set by data.target)"),
        ("data: {min_rows: 100000}\n", "too few rows to train"),
        ("model: {calibration: magic}\n", "model.calibration"),
        ("features: {disabled: [charm]}\n", "features.disabled names unknown"),
    ],
)
def test_train_errors_are_one_line(tmp_path, yaml_text, message):
    config = tmp_path / "train.yaml"
    config.write_text(yaml_text)
    result = runner.invoke(
        app,
        [
            "train",
            "--data",
            str(SAMPLE_DIR / "sample.parquet"),
            "--config",
            str(config),
            "--out",
            str(tmp_path / "m"),
            "--no-register",
        ],
    )
    assert result.exit_code == EXIT_ERROR, result.output
    assert message in result.output and len(result.output.strip().splitlines()) == 1


def test_unreachable_tracking_server_fails_before_training(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")
    result = runner.invoke(
        app, ["train", "--data", str(SAMPLE_DIR / "sample.parquet"), "--out", str(tmp_path / "m")]
    )
    assert result.exit_code == EXIT_ERROR
    assert "cannot reach the MLflow tracking server" in result.output
    assert not (tmp_path / "m").exists()


def test_models_and_promote_on_an_empty_registry(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    listing = runner.invoke(app, ["models"])
    assert listing.exit_code == 0 and "no registered versions yet" in listing.output
    result = runner.invoke(app, ["promote", "3"])
    assert result.exit_code == EXIT_ERROR
    assert "model recoverscore has no version 3" in result.output


def test_an_own_file_trains_with_cv_and_its_contract_validates_new_cases(tmp_path):
    examples = SAMPLE_DIR.parent / "examples"
    config = tmp_path / "cases.yaml"
    config.write_text(
        "data: {id_column: case_no, target: paid, tier_column: action}\n"
        "features: {standard: [log_principal], extra_numeric: [days_overdue, bureau_score],"
        " extra_categorical: [product]}\n"
    )
    out = tmp_path / "model"
    data = str(examples / "cases.csv")
    trained = runner.invoke(
        app, ["train", "--data", data, "--config", str(config), "--out", str(out), "--cv", "3",
              "--no-register"],
    )  # fmt: skip
    assert trained.exit_code == 0, trained.output
    assert "cross-validation, same folds" in trained.output
    metrics = json.loads((out / "metrics.json").read_text())
    assert {"cv_model_auc_mean", "cv_scorecard_auc_sd"} <= set(metrics)
    assert "TIME_BARRED" in trained.output  # the guardrails this file cannot feed are named
    schema = runner.invoke(app, ["schema", "--model", str(out)])
    assert "| `case_no` | str | yes |" in schema.output and "debtor_id" not in schema.output
    new = tmp_path / "new.csv"
    lines = (examples / "new_cases.csv").read_text().splitlines()
    lines[3] = lines[3].rsplit(",", 2)[0] + ",lots,1"  # bureau_score "lots": not a number
    new.write_text("\n".join(lines) + "\n")
    checked = runner.invoke(app, ["validate", str(new), "--model", str(out)])
    assert checked.exit_code == 1, checked.output
    assert "bureau_score" in checked.output and "1 of 300 rows fail" in checked.output


def test_evaluate_policy_judges_policies_on_a_logged_history(tmp_path):
    from recoverscore.data.synthetic import generate_frame
    from recoverscore.data.tables import write_table

    out = tmp_path / "model"
    data = str(SAMPLE_DIR / "sample.parquet")
    trained = runner.invoke(app, ["train", "--data", data, "--out", str(out), "--no-register"])
    assert trained.exit_code == 0, trained.output
    assert "off-policy estimates on" in trained.output
    assert "overlap: " in trained.output or "No support (fewer than" in trained.output
    history = tmp_path / "later.csv"
    write_table(generate_frame(3_000, seed=77, as_of="2026-06-30"), history)
    result = runner.invoke(
        app,
        ["evaluate-policy", "--history", str(history), "--model", str(out), "--policy", "safe",
         "--policy", "matrix", "--folds", "3", "--resamples", "200", "--no-track"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "propensities recorded" in result.output
    for text in ("safe", "matrix", "DR", "true value", "3,000 debts judged"):
        assert text in result.output, text
    missing = runner.invoke(
        app, ["evaluate-policy", "--history", str(SAMPLE_DIR / "sample.csv"), "--model", str(out),
              "--policy", "best"],
    )  # fmt: skip
    assert missing.exit_code == EXIT_ERROR
