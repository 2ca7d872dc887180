"""The batch job: every row scored or rejected, crash-safe resume, formula-safe CSV, drift."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from recoverscore.cli import EXIT_ERROR, EXIT_INVALID, app
from recoverscore.data.schemas import TIERS, Portfolio, probability_column
from recoverscore.data.synthetic import generate_frame
from recoverscore.data.tables import neutralise_formulas, read_table, write_table
from recoverscore.errors import RecoverscoreError
from recoverscore.scoring import batch, drift
from recoverscore.scoring.package import ModelPackage
from recoverscore.scoring.pipeline import OUTPUT_COLUMNS, score
from tests.conftest import corrupt, csv_lines, scorer

AS_OF = "2026-06-30"
PORTFOLIO = list(Portfolio.to_schema().columns)
runner = CliRunner()


@pytest.fixture(scope="module")
def model(model_dir) -> ModelPackage:
    return ModelPackage.load(model_dir)


@pytest.fixture(scope="module")
def portfolio() -> pd.DataFrame:
    return generate_frame(1_200, seed=21, as_of=AS_OF)[PORTFOLIO]


@pytest.fixture(scope="module")
def seeded(portfolio, tmp_path_factory):
    """A CSV with bad rows of every kind, and the data row numbers that must be rejected."""
    folder = tmp_path_factory.mktemp("seeded")
    lines = csv_lines(portfolio, folder / "clean.csv")
    bad = {
        5: ("principal", "-100", "principal: greater_than(0)"),
        17: ("due_date", "31/12/2025", "due_date: parse as date"),
        260: ("contact_status", "vanished", "contact_status: isin"),
        301: ("n_broken_promises", "", "n_broken_promises: not_nullable"),
        555: ("due_date", "2027-01-01", "due_date"),  # after as_of: a cross-column rule
        700: ("disputes_debt", "maybe", "disputes_debt: parse as bool"),
        888: ("n_partial_payments", "2.5", "n_partial_payments: parse as int"),
    }
    for row, (column, value, _) in bad.items():
        corrupt(lines, row, column, value)
    # the same id three times, in different batches: every copy is rejected
    duplicate = next(csv.reader([lines[40]]))[0]
    for row in (41, 900):
        corrupt(lines, row, "debtor_id", duplicate)
    malformed = {
        1000: lines[1000].rsplit(",", 3)[0],  # too few fields
        1001: lines[1001] + ",extra",  # too many
    }
    lines[1000], lines[1001] = malformed[1000], malformed[1001]
    lines[-1] = lines[-1][: len(lines[-1]) // 2]  # a truncated last line
    malformed[len(lines) - 1] = lines[-1]
    path = folder / "seeded.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    expected = {row: reason for row, (_, _, reason) in bad.items()}
    expected.update({r: "debtor_id: field_uniqueness" for r in (40, 41, 900)})
    expected.update({r: "malformed CSV record" for r in malformed})
    return path, expected, malformed, len(lines) - 1


def test_every_row_ends_scored_or_rejected(model, portfolio, seeded, tmp_path):
    path, expected, malformed, n_rows = seeded
    result = batch.run(path, tmp_path / "out.parquet", scorer(model), batch_size=250)
    scored = pd.read_parquet(result.output)
    rejects = pd.read_parquet(result.rejects)
    assert result.stats["rows_in"] == n_rows
    assert len(scored) + len(rejects) == n_rows  # every data row lands in one file or the other
    assert result.stats["scored"] == len(scored) == n_rows - len(expected)
    assert sorted(rejects["row"]) == sorted(expected)
    for row, reason in expected.items():
        assert reason in rejects.set_index("row").at[row, "failed_checks"], row
    for row, text in malformed.items():
        assert rejects.set_index("row").at[row, "raw_record"] == text
    # the scored rows are exactly the untouched rows, in input order, scored as score() does
    kept = [r for r in range(1, n_rows + 1) if r not in expected]
    clean = portfolio.iloc[np.array(kept) - 1]
    assert scored["debtor_id"].tolist() == clean["debtor_id"].tolist()
    reference = score(clean, model, explain=False)
    for column in ["recommended_tier", *(probability_column(t) for t in TIERS)]:
        np.testing.assert_array_equal(scored[column].to_numpy(), reference[column].to_numpy())
    assert list(scored.columns) == OUTPUT_COLUMNS
    assert set(scored["model_version"]) == {scorer(model).label}
    assert not (tmp_path / ".out.parquet.parts").exists()


def test_parquet_csv_and_a_folder_of_parts_score_alike(model, portfolio, tmp_path):
    write_table(portfolio, tmp_path / "in.parquet")
    write_table(portfolio, tmp_path / "in.csv")
    (tmp_path / "parts").mkdir()
    for i, start in enumerate(range(0, len(portfolio), 500)):
        write_table(portfolio.iloc[start : start + 500], tmp_path / "parts" / f"p{i}.parquet")
    outputs = [
        pd.read_parquet(
            batch.run(tmp_path / name, tmp_path / f"{name}.out.parquet", scorer(model)).output
        )
        for name in ("in.parquet", "in.csv", "parts")
    ]
    for other in outputs[1:]:
        pd.testing.assert_frame_equal(outputs[0], other)


def test_csv_output_neutralises_formulas(model, portfolio, tmp_path):
    write_table(portfolio.head(50), tmp_path / "clean.csv")
    frame = read_table(tmp_path / "clean.csv")  # every cell as text
    frame.loc[0, "debtor_id"] = '=HYPERLINK("http://x")'
    frame.loc[1, "debtor_id"] = "+1+1"
    frame.loc[2, "debtor_id"] = "@SUM(A1)"
    frame.loc[3, "debtor_id"] = "-5"
    frame.loc[4, "principal"] = "-7"  # rejected; the number stays a number
    frame.loc[5, "region"] = "=cmd|' /C calc'!A0"
    frame.loc[5, "principal"] = "0"  # rejected, with its formula in a text cell
    write_table(frame, tmp_path / "in.csv")
    result = batch.run(tmp_path / "in.csv", tmp_path / "out.csv", scorer(model))
    out = pd.read_csv(result.output, dtype=str, keep_default_na=False)
    assert out["debtor_id"].head(4).tolist() == [
        '\'=HYPERLINK("http://x")',
        "'+1+1",
        "'@SUM(A1)",
        "-5",
    ]
    rejects = pd.read_csv(result.rejects, dtype=str, keep_default_na=False).set_index("row")
    assert rejects.at["5", "principal"] == "-7"
    assert rejects.at["6", "region"] == "'=cmd|' /C calc'!A0"
    assert neutralise_formulas(pd.DataFrame({"a": ["\tx", "1e5", "x=1"]}))["a"].tolist() == [
        "'\tx",
        "1e5",
        "x=1",
    ]


def test_killed_run_resumes_to_the_same_output(model_dir, tmp_path):
    frame = generate_frame(6_000, seed=8, as_of=AS_OF)[PORTFOLIO]
    write_table(frame, tmp_path / "in.csv")
    command = [
        str(Path(sys.executable).with_name("recoverscore")), "score", "--model", str(model_dir),
        "--input", str(tmp_path / "in.csv"), "--batch-size", "300", "--no-track",
    ]  # fmt: skip
    output = tmp_path / "killed.csv"
    work = tmp_path / ".killed.csv.parts"
    process = subprocess.Popen([*command, "--output", str(output)], stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while not (work / "batch-000002.json").exists():
        assert process.poll() is None, "the run ended before it could be killed"
        assert time.monotonic() < deadline
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert not output.exists(), "a killed run must not leave an output that looks finished"
    done = len(list(work.glob("batch-*.json")))
    resumed = subprocess.run(
        [*command, "--output", str(output), "--resume"], capture_output=True, text=True
    )
    assert resumed.returncode == 0, resumed.stderr
    assert f"{done} batches kept from the interrupted run" in resumed.stdout
    fresh = subprocess.run(
        [*command, "--output", str(tmp_path / "fresh.csv")], capture_output=True, text=True
    )
    assert fresh.returncode == 0, fresh.stderr
    assert output.read_bytes() == (tmp_path / "fresh.csv").read_bytes()
    assert not work.exists()


def test_resume_refuses_a_changed_input(model, portfolio, tmp_path):
    write_table(portfolio, tmp_path / "in.parquet")
    job = scorer(model)
    work = tmp_path / ".out.parquet.parts"
    batch._prepare_work(
        work, batch._identity(batch.Source(tmp_path / "in.parquet"), job, 100, "local"), False
    )
    write_table(portfolio.head(10), tmp_path / "in.parquet")
    with pytest.raises(RecoverscoreError, match="cannot resume: the input's content changed"):
        batch.run(
            tmp_path / "in.parquet", tmp_path / "out.parquet", job, batch_size=100, resume=True
        )


def test_dask_engine_equals_local(model, seeded, tmp_path):
    path = seeded[0]
    local = batch.run(path, tmp_path / "local.parquet", scorer(model, explain=True), batch_size=300)
    dask = batch.run(
        path, tmp_path / "dask.parquet", scorer(model, explain=True), batch_size=300, engine="dask"
    )
    pd.testing.assert_frame_equal(pd.read_parquet(local.output), pd.read_parquet(dask.output))
    pd.testing.assert_frame_equal(pd.read_parquet(local.rejects), pd.read_parquet(dask.rejects))
    assert local.stats["tiers"] == dask.stats["tiers"]
    pd.testing.assert_frame_equal(local.drift, dask.drift)


def test_drift_is_flat_on_training_like_data_and_flags_a_shift(model, portfolio, tmp_path):
    write_table(portfolio, tmp_path / "same.parquet")
    same = batch.run(tmp_path / "same.parquet", tmp_path / "same.out.parquet", scorer(model))
    assert same.drift["psi"].max() < 0.1
    later = portfolio.assign(as_of=pd.Timestamp("2028-06-30"))  # two years older debts
    write_table(later, tmp_path / "later.parquet")
    moved = batch.run(tmp_path / "later.parquet", tmp_path / "later.out.parquet", scorer(model))
    flagged = set(moved.drift.loc[moved.drift["status"] == "drift", "column"])
    assert {"days_past_due", "aging_bucket"} <= flagged
    report = json.loads(moved.report.read_text(encoding="utf-8"))
    assert set(report["drifted"]) == flagged and report["rows_scored"] == len(portfolio)


def test_psi_matches_a_hand_computation():
    spec = {"kind": "numeric", "edges": [1.0, 2.0], "expected": [0.5, 0.3, 0.2, 0.0]}
    counts = drift.bin_counts(spec, np.array([0.5, 1.5, 1.7, 2.5, np.nan]))
    assert counts.tolist() == [1, 2, 1, 1]
    a = np.array([0.2, 0.4, 0.2, 0.2])
    e = np.array([0.5, 0.3, 0.2, 1e-4])
    assert drift.psi(spec["expected"], counts) == pytest.approx(np.sum((a - e) * np.log(a / e)))


@settings(max_examples=50, deadline=None)
@given(
    st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=20, max_size=300),
    st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=1, max_size=300),
)
def test_psi_counts_every_value_and_is_zero_only_on_the_same_shares(train, scored):
    spec = drift.profile(pd.Series(train))
    counts = drift.bin_counts(spec, np.array(scored))
    assert counts.sum() == len(scored)
    assert drift.psi(spec["expected"], drift.bin_counts(spec, np.array(train))) == pytest.approx(0)
    assert drift.psi(spec["expected"], counts) >= 0


# --- the command line ---------------------------------------------------------------------


def cli(*args):
    return runner.invoke(app, ["score", *(str(a) for a in args)])


def test_cli_exit_codes_summary_and_mlflow_run(model_dir, seeded, portfolio, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_table(portfolio, tmp_path / "clean.parquet")
    clean = cli(
        "--model",
        model_dir,
        "--input",
        "clean.parquet",
        "--output",
        "clean.out.csv",
        "--no-explain",
    )
    assert clean.exit_code == 0, clean.output
    assert "yes: every row scored or rejected" in clean.output
    rejected = cli(
        "--model",
        model_dir,
        "--input",
        seeded[0],
        "--output",
        "seeded.out.parquet",
        "--no-explain",
        "--batch-size",
        400,
    )
    assert rejected.exit_code == EXIT_INVALID, rejected.output
    assert "rejected rows by failed check" in rejected.output
    from mlflow import MlflowClient

    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("recoverscore-scoring").experiment_id])
    assert len(runs) == 2
    logged = {r.data.metrics["rows_rejected"] for r in runs}
    assert logged == {0.0, float(len(seeded[1]))}
    names = {r.info.run_name for r in runs}
    assert names == {f"score {AS_OF} clean.parquet", f"score {AS_OF} {seeded[0].name}"}
    assert all(
        r.data.tags["mlflow.note.content"].startswith("Scored with an unregistered") for r in runs
    )
    assert "model_version" not in runs[0].data.tags  # a package folder has no registry version
    link = f"MLflow run http://127.0.0.1:5000/#/experiments/{runs[0].info.experiment_id}/runs/"
    assert link in clean.output and "workflowType=machine_learning" in clean.output
    profile = ModelPackage.load(model_dir).reference
    columns = len(profile["features"]) + len(profile["scores"])
    assert f"drift: no column of {columns} drifted" in clean.output
    ids = set(portfolio["debtor_id"])
    for run in runs:
        texts = [*map(str, run.data.params.values())]
        root = Path(run.info.artifact_uri.removeprefix("file://"))
        texts += [
            p.read_text(errors="ignore") for p in root.rglob("*") if p.suffix in (".csv", ".json")
        ]
        assert not any(i in text for text in texts for i in ids)
        assert str(seeded[0]) not in " ".join(texts)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: None, "file not found"),
        (lambda p: p.write_bytes(b""), "is empty"),
        (
            lambda p: p.write_text("debtor_id,principal\n", encoding="utf-8"),
            "lacks required column",
        ),
        (lambda p: p.write_bytes(",".join(PORTFOLIO).encode() + b"\n"), "no data rows"),
        (
            lambda p: p.write_bytes(
                ",".join(PORTFOLIO).encode() + "\n张三".encode("gbk") + b",x\n"
            ),
            "not UTF-8",
        ),
    ],
)
def test_cli_bad_csv_inputs_are_one_line_errors(model_dir, tmp_path, make, message):
    path = tmp_path / "in.csv"
    make(path)
    result = cli(
        "--model", model_dir, "--input", path, "--output", tmp_path / "o.parquet", "--no-track"
    )
    text = result.output.strip()
    assert result.exit_code == EXIT_ERROR and len(text.splitlines()) == 1, text
    assert message in text
    assert not (tmp_path / "o.parquet").exists()


def test_cli_other_fatal_errors(model_dir, portfolio, tmp_path):
    write_table(portfolio, tmp_path / "in.parquet")
    truncated = tmp_path / "cut.parquet"
    truncated.write_bytes((tmp_path / "in.parquet").read_bytes()[:5000])
    cases = [
        (["--input", truncated, "--output", tmp_path / "o.parquet"], "cannot read"),
        (
            ["--input", tmp_path / "in.parquet", "--output", tmp_path / "o.xlsx"],
            "unsupported file type",
        ),
        (
            ["--input", tmp_path / "in.parquet", "--output", tmp_path / "no" / "o.csv"],
            "folder does not exist",
        ),
        (
            ["--input", tmp_path / "in.parquet", "--output", tmp_path / "o.csv", "--as-of", "soon"],
            "not a date",
        ),
    ]
    for args, message in cases:
        result = cli("--model", model_dir, *args, "--no-track")
        assert result.exit_code == EXIT_ERROR and message in result.output, result.output
    result = cli(
        "--model", tmp_path, "--input", tmp_path / "in.parquet", "--output", tmp_path / "o.csv"
    )
    assert result.exit_code == EXIT_ERROR and "not a recoverscore model package" in result.output


def test_excel_csv_with_a_byte_order_mark_scores(model, portfolio, tmp_path):
    """Excel's "CSV UTF-8" starts with a BOM, which must not become part of the first header."""
    write_table(portfolio.head(30), tmp_path / "plain.csv")
    text = (tmp_path / "plain.csv").read_text(encoding="utf-8")
    (tmp_path / "excel.csv").write_text(text, encoding="utf-8-sig")
    result = batch.run(tmp_path / "excel.csv", tmp_path / "out.parquet", scorer(model))
    assert result.stats["scored"] == 30
    ids = pd.read_parquet(result.output)["debtor_id"]
    assert ids.tolist() == portfolio["debtor_id"].head(30).tolist()


def test_unreachable_dask_scheduler_is_one_clear_error(model, portfolio, tmp_path):
    write_table(portfolio.head(20), tmp_path / "in.parquet")
    with pytest.raises(RecoverscoreError, match="cannot connect to the Dask scheduler at tcp://"):
        batch.run(
            tmp_path / "in.parquet",
            tmp_path / "out.parquet",
            scorer(model),
            engine="dask",
            scheduler="tcp://127.0.0.1:1",
        )
    assert not (tmp_path / "out.parquet").exists()


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_progress_knows_the_total_before_scoring(model, portfolio, tmp_path, suffix):
    """Parquet says its row count at once; a CSV's is counted by the duplicate-id pass."""
    write_table(portfolio, tmp_path / f"in{suffix}")
    stages, rows = [], []
    batch.run(
        tmp_path / f"in{suffix}",
        tmp_path / "out.parquet",
        scorer(model),
        batch_size=500,
        on_stage=lambda text, total: stages.append((text, total)),
        on_rows=rows.append,
    )
    first = len(portfolio) if suffix == ".parquet" else None
    assert stages == [("checking ids for duplicates", first), ("scoring", len(portfolio))]
    assert rows == [500, 500, 200]


def test_progress_of_a_resumed_run_counts_the_kept_batches_first(model, portfolio, tmp_path):
    write_table(portfolio, tmp_path / "in.parquet")
    job = scorer(model)
    first = batch.run(tmp_path / "in.parquet", tmp_path / "a.parquet", job, batch_size=500)
    work = tmp_path / ".b.parquet.parts"
    identity = batch._identity(batch.Source(tmp_path / "in.parquet"), job, 500, "local")
    run_id, _ = batch._prepare_work(work, identity, resume=False)
    part = scorer(model).score_batch(portfolio.iloc[:500].reset_index(drop=True))
    batch._save_batch(work, 0, part, "debtor_id", run_id)  # batch 0 landed before the interruption
    rows = []
    resumed = batch.run(
        tmp_path / "in.parquet",
        tmp_path / "b.parquet",
        job,
        batch_size=500,
        resume=True,
        on_rows=rows.append,
    )
    assert resumed.resumed_batches == 1 and rows == [500, 500, 200]
    assert resumed.stats["scored"] == first.stats["scored"]
