"""The command line: generate, validate, describe, and every error a user can hit."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

import recoverscore
from recoverscore.cli import EXIT_ERROR, EXIT_INVALID
from recoverscore.data.schemas import Portfolio
from recoverscore.data.tables import read_table
from tests.conftest import SAMPLE_DIR, one_line_error, run


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_generate_then_validate(tmp_path, suffix):
    out = tmp_path / f"world{suffix}"
    result = run("generate", "--rows", 1200, "--seed", 4, "--as-of", "2026-01-31", "--out", out)
    assert result.exit_code == 0, result.output
    frame = read_table(out)
    assert len(frame) == 1200 and frame["debtor_id"].is_unique
    assert set(frame["as_of"].astype(str).str[:10]) == {"2026-01-31"}
    result = run("validate", out)
    assert (
        result.exit_code == 0 and "1,200 rows valid against the synthetic schema" in result.output
    )


def test_generate_is_deterministic(tmp_path):
    for name in ("a", "b"):
        run("generate", "--rows", 500, "--seed", 9, "--out", tmp_path / f"{name}.csv")
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()


def test_validate_reports_every_failure_with_row_numbers(tmp_path):
    frame = read_table(SAMPLE_DIR / "sample.csv").head(200)
    frame.loc[4, "principal"] = "-10"
    frame.loc[9, "contact_status"] = "vanished"
    frame.loc[9, "due_date"] = "yesterday"
    frame.loc[20, "debtor_id"] = frame.loc[21, "debtor_id"]
    bad = tmp_path / "bad.csv"
    frame.to_csv(bad, index=False)
    failures = tmp_path / "failures.csv"
    result = run("validate", bad, "--failures-out", failures)
    assert result.exit_code == EXIT_INVALID, result.output
    expected = {
        (5, "principal"),
        (10, "contact_status"),
        (10, "due_date"),
        (21, "debtor_id"),
        (22, "debtor_id"),
        (5, "amount_recovered"),
    }  # a negative principal is below it
    table = pd.read_csv(failures)
    assert set(zip(table["row"], table["column"], strict=True)) == expected
    assert len(table) == len(expected)
    assert f"4 of 200 rows fail the synthetic schema ({len(expected)} failures)" in result.output
    assert "vanished" in result.output and "yesterday" in result.output


def test_validate_portfolio_without_snapshot_date_uses_as_of(tmp_path):
    frame = read_table(SAMPLE_DIR / "sample.csv").head(50)
    portfolio = frame[[c for c in Portfolio.to_schema().columns if c != "as_of"]]
    path = tmp_path / "portfolio.csv"
    portfolio.to_csv(path, index=False)
    assert run("validate", path).exit_code == 0  # default: today, after every date
    result = run("validate", path, "--as-of", "2020-01-01")
    assert result.exit_code == EXIT_INVALID
    assert "due_date on or before as_of" in result.output


def test_validate_a_missing_column_is_an_input_error_naming_it(tmp_path):
    """A file without a required column is the wrong file, not bad rows: exit 2, as score."""
    path = tmp_path / "short.csv"
    read_table(SAMPLE_DIR / "sample.csv").head(10).drop(columns="principal").to_csv(
        path, index=False
    )
    text = one_line_error(run("validate", path, "--schema", "portfolio"))
    assert "lacks required column(s) ['principal']" in text


def test_describe_prints_recovery_and_the_bayes_limit():
    result = run("describe", SAMPLE_DIR / "sample.parquet")
    assert result.exit_code == 0, result.output
    assert "recovery by given tier" in result.output and "time_barred" in result.output
    auc = float(result.output.rsplit("Bayes-limit AUC", 1)[1])
    assert 0.75 < auc < 0.90


@pytest.mark.parametrize(
    ("setup", "args", "message"),
    [
        (None, ("validate", "{tmp}/nope.csv"), "file not found"),
        ("text", ("validate", "{tmp}/notes.txt"), "unsupported file type '.txt'"),
        ("garbage", ("validate", "{tmp}/broken.parquet"), "cannot read"),
        ("gbk", ("validate", "{tmp}/gbk.csv"), "is not UTF-8"),
        ("empty", ("validate", "{tmp}/empty.csv"), "is empty"),
        (None, ("validate", "{sample}", "--as-of", "someday"), "--as-of 'someday' is not a date"),
        (None, ("generate", "--rows", "5", "--out", "{tmp}/x.xlsx"), "unsupported file type"),
        (None, ("generate", "--rows", "5", "--out", "{tmp}/no/such/x.csv"), "folder does not"),
        (
            "badyaml",
            ("generate", "--rows", "5", "--out", "{tmp}/x.csv", "--config", "{tmp}/bad.yaml"),
            "legacy_policy.exploration",
        ),
        (
            None,
            ("generate", "--rows", "5", "--out", "{tmp}/x.csv", "--config", "{tmp}/none.yaml"),
            "config file not found",
        ),
        ("portfolio", ("describe", "{tmp}/portfolio.csv"), "not a labelled history"),
        (None, ("schema", "ledger"), "unknown schema 'ledger'"),
    ],
)
def test_user_errors_are_one_clear_line(tmp_path, setup, args, message):
    if setup == "text":
        (tmp_path / "notes.txt").write_text("hello")
    elif setup == "garbage":
        (tmp_path / "broken.parquet").write_bytes(b"PAR1 this is not parquet at all")
    elif setup == "gbk":  # what Excel saves on a Chinese Windows machine
        (tmp_path / "gbk.csv").write_bytes("debtor_id,region\nD1,浙江\n".encode("gbk"))
    elif setup == "empty":
        (tmp_path / "empty.csv").write_bytes(b"")
    elif setup == "badyaml":
        text = (Path(__file__).parents[1] / "configs" / "synthetic.yaml").read_text()
        (tmp_path / "bad.yaml").write_text(text.replace("exploration: 0.3", "exploration: 3"))
    elif setup == "portfolio":
        read_table(SAMPLE_DIR / "sample.csv").head(5)[list(Portfolio.to_schema().columns)].to_csv(
            tmp_path / "portfolio.csv", index=False
        )
    filled = [a.format(tmp=tmp_path, sample=SAMPLE_DIR / "sample.csv") for a in args]
    assert message in one_line_error(run(*filled))


def test_schema_prints_the_contract_as_markdown():
    result = run("schema", "scored")
    assert result.exit_code == 0
    assert "| `recommended_tier` | str | no |" in result.output
    assert "`p_litigation`" in result.output and "not among excluded_tiers" in result.output


def test_console_script_prints_no_traceback(tmp_path):
    exe = shutil.which("recoverscore", path=str(Path(sys.executable).parent)) or "recoverscore"
    done = subprocess.run(
        [exe, "validate", str(tmp_path / "missing.parquet")],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert done.returncode == EXIT_ERROR
    assert done.stderr.strip().startswith("error: file not found")
    assert "Traceback" not in done.stderr and done.stdout == ""


def test_version_and_shell_completion():
    result = run("--version")
    assert result.exit_code == 0
    assert re.fullmatch(
        r"recoverscore \S+ \(mlflow \S+, lightgbm \S+, pandas \S+, Python 3\.\d+\.\d+\)\n",
        result.output,
    ), result.output
    shown = run("--help").output
    assert "--install-completion" in shown and "--show-completion" in shown


def _as_a_user(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """``python -m recoverscore.cli`` on this checkout, MLflow left to its own defaults."""
    source = Path(recoverscore.__file__).resolve().parents[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    return subprocess.run(
        [sys.executable, "-m", "recoverscore.cli", *args],
        cwd=cwd,
        env={**env, "PYTHONPATH": str(source), "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_mlflow_speaks_only_with_verbose(tmp_path):
    quiet = _as_a_user("models", cwd=tmp_path)  # a new store: MLflow creates its tables
    assert quiet.returncode == 0, quiet.stderr
    assert "no registered versions yet" in quiet.stdout and quiet.stderr == ""
    (tmp_path / "mlflow.db").unlink()
    verbose = _as_a_user("--verbose", "models", cwd=tmp_path)
    assert verbose.returncode == 0, verbose.stderr
    assert "INFO mlflow" in verbose.stderr and "Creating initial MLflow database" in verbose.stderr
