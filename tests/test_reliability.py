"""Reliability under misuse (issue 13): no run writes a wrong file with exit 0.

Each test names the defect of the issue it pins (D1-D14, U1-U3): two runs on one output, path
collisions, cells beyond what the arithmetic holds, time-zone dates, repeated headers, ids that
differ by spaces, unwritable folders, formulas in failure tables, one reader for validate and
score, content-hashed resume, tampered packages, empty requests, stale temporaries, empty and
non-UTF-8 inputs, strict dates, checked aliases, and exit codes 0/1/2/3.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

import recoverscore
from recoverscore.cli import EXIT_ERROR, EXIT_INTERNAL, EXIT_INVALID, app
from recoverscore.data import reader
from recoverscore.data.schemas import Portfolio
from recoverscore.data.synthetic import generate_frame
from recoverscore.data.tables import lock_path, read_table, write_table
from recoverscore.errors import RecoverscoreError
from recoverscore.scoring import batch
from recoverscore.scoring.package import HASH_FILE, MODEL_FILE, PACKAGE_FILE, ModelPackage
from recoverscore.scoring.pipeline import Scorer
from recoverscore.scoring.pyfunc_model import RecoverscorePyfunc, options_from_params
from tests.conftest import corrupt, csv_lines, scorer

AS_OF = "2026-06-30"
PORTFOLIO = list(Portfolio.to_schema().columns)
CONSOLE_SCRIPT = str(Path(sys.executable).with_name("recoverscore"))
runner = CliRunner()


@pytest.fixture(scope="module")
def model(model_dir) -> ModelPackage:
    return ModelPackage.load(model_dir)


@pytest.fixture(scope="module")
def portfolio() -> pd.DataFrame:
    return generate_frame(600, seed=31, as_of=AS_OF)[PORTFOLIO]


def cli(*args) -> object:
    return runner.invoke(app, [str(a) for a in args])


def one_line(result, code: int = EXIT_ERROR) -> str:
    text = result.output.strip()
    assert result.exit_code == code, text
    assert "Traceback" not in text and len(text.splitlines()) == 1, text
    return text


def score_cli(model_dir, source, output, *args):
    return cli("score", "--model", model_dir, "--input", source, "--output", output,
               "--no-track", "--no-explain", *args)  # fmt: skip


def write_lines(lines: list[str], path: Path) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def rejected_rows(path: Path) -> list[int]:
    return sorted(pd.read_csv(path, dtype=str)["row"].astype(int).unique())


class Stop(Exception):
    """Stands in for a run killed after some batches landed."""


def interrupt(source: Path, output: Path, job: Scorer, after: int, **kwargs) -> None:
    """Run the batch job and stop it once ``after`` batches are in its work folder."""
    landed = []

    def count(rows: int) -> None:
        landed.append(rows)
        if len(landed) == after:
            raise Stop

    with pytest.raises(Stop):
        batch.run(source, output, job, on_rows=count, **kwargs)


# --- D1: one run owns its outputs ---------------------------------------------------------------


def test_d1_a_second_run_on_the_same_output_is_refused_naming_the_first(model_dir, tmp_path):
    """Cron and a manual rerun on one output: the second is refused naming the first run's pid
    and start; once the first dies (kill -9), its lock is recognised as stale and taken over."""
    frame = generate_frame(6_000, seed=8, as_of=AS_OF)[PORTFOLIO]
    write_table(frame, tmp_path / "in.csv")
    output = tmp_path / "scored.csv"
    first = subprocess.Popen(
        [CONSOLE_SCRIPT, "score", "--model", str(model_dir), "--input", str(tmp_path / "in.csv"),
         "--output", str(output), "--batch-size", "300", "--no-track"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 300
        while not (tmp_path / ".scored.csv.parts" / "job.json").exists():
            assert first.poll() is None, "the first run ended before the second could start"
            assert time.monotonic() < deadline
            time.sleep(0.02)
        os.kill(first.pid, signal.SIGSTOP)  # frozen while it holds the lock
        holder = json.loads(lock_path(output).read_text(encoding="utf-8"))
        assert holder["pid"] == first.pid
        second = score_cli(model_dir, tmp_path / "in.csv", output)
        text = one_line(second)
        assert f"pid {first.pid}, started {holder['started']}" in text
        assert "being written by another recoverscore run" in text
    finally:
        os.kill(first.pid, signal.SIGKILL)
        first.wait()
    assert lock_path(output).exists() and not output.exists()  # a dead run's lock file stays
    third = score_cli(model_dir, tmp_path / "in.csv", output)
    assert third.exit_code == 0, third.output
    assert not lock_path(output).exists()
    clean = score_cli(model_dir, tmp_path / "in.csv", tmp_path / "clean.csv")
    assert clean.exit_code == 0, clean.output
    assert output.read_bytes() == (tmp_path / "clean.csv").read_bytes()


def test_d1_parts_of_another_run_are_never_merged(model, portfolio, tmp_path):
    """A part another run left in the work folder is not trusted: its batch is scored again."""
    write_table(portfolio, tmp_path / "mine.csv")
    write_table(generate_frame(600, seed=99, as_of=AS_OF)[PORTFOLIO], tmp_path / "other.csv")
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    interrupt(tmp_path / "mine.csv", tmp_path / "a" / "out.parquet", scorer(model), 2,
              batch_size=200)  # fmt: skip
    interrupt(tmp_path / "other.csv", tmp_path / "b" / "out.parquet", scorer(model), 2,
              batch_size=200)  # fmt: skip
    mine, other = (tmp_path / d / ".out.parquet.parts" for d in ("a", "b"))
    for part in other.glob("batch-000000.*"):
        shutil.copy(part, mine / part.name)
    resumed = batch.run(tmp_path / "mine.csv", tmp_path / "a" / "out.parquet", scorer(model),
                        batch_size=200, resume=True)  # fmt: skip
    assert resumed.resumed_batches == 1  # batch 1 kept; batch 0 was another run's
    fresh = batch.run(tmp_path / "mine.csv", tmp_path / "fresh.parquet", scorer(model),
                      batch_size=200)  # fmt: skip
    pd.testing.assert_frame_equal(pd.read_parquet(resumed.output), pd.read_parquet(fresh.output))


# --- D2: path rules -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["score", "--output", "{input}"], "the output {input} is the input"),
        (["score", "--output", "{tmp}/out.csv", "--rejects", "{tmp}/out.csv"], "are the same"),
        (["score", "--output", "{tmp}/o.csv", "--drift-report", "{input}"], "drift report"),
        (["score", "--output", "{tmp}/o.csv", "--rejects", "{link}"], "is the input"),
        (["score", "--output", "{hard}"], "is the input"),
        (["score", "--output", "{tmp}/o.csv", "--drift-report", "{model}/package.json"], "inside"),
        (["validate", "--failures-out", "{input}"], "the failures file {input} is the input"),
    ],
)
def test_d2_an_output_onto_an_input_or_another_output_is_refused(
    model_dir, portfolio, tmp_path, args, message
):
    source = tmp_path / "in.csv"
    write_table(portfolio.head(20), source)
    os.symlink(source, tmp_path / "link.csv")
    os.link(source, tmp_path / "hard.csv")
    package = tmp_path / "package"
    shutil.copytree(model_dir, package)
    before = {p: p.read_bytes() for p in (source, *package.iterdir())}
    names = {"input": source, "tmp": tmp_path, "link": tmp_path / "link.csv",
             "hard": tmp_path / "hard.csv", "model": package}  # fmt: skip
    filled = [a.format(**names) for a in args]
    if filled[0] == "score":
        command = ["score", "--model", package, "--input", source, "--no-track", *filled[1:]]
    else:
        command = ["validate", source, *filled[1:]]
    assert message.format(**names) in one_line(cli(*command))
    assert {p: p.read_bytes() for p in before} == before
    assert not list(tmp_path.glob("o*.csv")) and not list(tmp_path.glob(".*"))


def test_d2_an_output_inside_the_input_folder_is_refused(model_dir, portfolio, tmp_path):
    (tmp_path / "parts").mkdir()
    write_table(portfolio.head(20), tmp_path / "parts" / "p0.parquet")
    text = one_line(score_cli(model_dir, tmp_path / "parts", tmp_path / "parts" / "out.parquet"))
    assert "is inside the input folder" in text
    assert [p.name for p in (tmp_path / "parts").iterdir()] == ["p0.parquet"]


# --- D3, D4, D5, D6: a bad cell rejects its row, never the job; ids as validation reads them -----


@pytest.mark.parametrize(
    ("column", "value", "check"),
    [
        ("principal", "2e19", "principal: less_than_or_equal_to"),
        ("principal", "1e300", "principal: less_than_or_equal_to"),
        ("accrued_interest", "1e300", "accrued_interest: less_than_or_equal_to"),
        ("monthly_income", "1e300", "monthly_income: less_than_or_equal_to"),
        ("n_broken_promises", "1e19", "n_broken_promises: parse as int"),  # never wrapped
    ],
)
def test_d3_values_beyond_the_arithmetic_are_rejected_cells(
    model_dir, portfolio, tmp_path, column, value, check
):
    lines = csv_lines(portfolio.head(40), tmp_path / "clean.csv")
    row = int(np.flatnonzero(portfolio.head(40)["debtor_type"] == "individual")[0]) + 1
    corrupt(lines, row, column, value)
    source = write_lines(lines, tmp_path / "big.csv")
    validated = cli("validate", source, "--failures-out", tmp_path / "failures.csv")
    assert validated.exit_code == EXIT_INVALID, validated.output
    assert rejected_rows(tmp_path / "failures.csv") == [row]
    for output in ("out.csv", "out.parquet"):
        scored = score_cli(model_dir, source, tmp_path / output)
        assert scored.exit_code == EXIT_INVALID, scored.output
        assert "Traceback" not in scored.output
    rejects = pd.read_csv(tmp_path / "out.rejects.csv", dtype=str)
    assert rejects["row"].tolist() == [str(row)] and check in rejects.at[0, "failed_checks"]
    assert len(pd.read_csv(tmp_path / "out.csv")) == 39


def test_d4_a_date_with_a_utc_offset_is_read_as_the_date_written(model_dir, portfolio, tmp_path):
    frame = portfolio.head(30)
    plain = csv_lines(frame, tmp_path / "plain.csv")
    lines = list(plain)
    corrupt(lines, 3, "due_date", f"{frame['due_date'].iloc[2]:%Y-%m-%d}T00:00:00+08:00")
    corrupt(lines, 5, "due_date", f"{frame['due_date'].iloc[4]:%Y-%m-%d}T00:00:00Z")
    corrupt(lines, 7, "as_of", f"{AS_OF}T23:30:00-05:00")
    source = write_lines(lines, tmp_path / "zoned.csv")
    assert cli("validate", source).exit_code == 0
    assert score_cli(model_dir, source, tmp_path / "zoned.out.csv").exit_code == 0
    assert score_cli(model_dir, tmp_path / "plain.csv", tmp_path / "plain.out.csv").exit_code == 0
    zoned = pd.read_csv(tmp_path / "zoned.out.csv")
    pd.testing.assert_frame_equal(zoned, pd.read_csv(tmp_path / "plain.out.csv"))
    table = pa.Table.from_pandas(frame, preserve_index=False)
    at = table.schema.get_field_index("due_date")  # midnight in Beijing: 16:00 UTC the day before
    zone = pc.assume_timezone(table["due_date"], "Asia/Shanghai")
    pq.write_table(table.set_column(at, "due_date", zone), tmp_path / "aware.parquet")
    assert score_cli(model_dir, tmp_path / "aware.parquet", tmp_path / "aware.csv").exit_code == 0
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "aware.csv"), zoned)


def test_d5_a_repeated_column_name_is_an_input_error_for_both(model_dir, portfolio, tmp_path):
    lines = csv_lines(portfolio.head(10), tmp_path / "clean.csv")
    lines = [f"{line},{line.split(',')[5]}" for line in lines]  # principal again, at the end
    source = write_lines(lines, tmp_path / "twice.csv")
    header = lines[0].split(",")
    message = f"has 2 columns named 'principal' (columns 6, {len(header)})"
    assert message in one_line(cli("validate", source))
    assert message in one_line(score_cli(model_dir, source, tmp_path / "out.csv"))


@pytest.mark.parametrize("batch_size", [1, 7, 1000])
def test_d6_ids_that_differ_by_spaces_are_one_id_in_every_batch(
    model_dir, portfolio, tmp_path, batch_size
):
    lines = csv_lines(portfolio.head(12), tmp_path / "clean.csv")
    copied = next(csv.reader([lines[2]]))[0]
    corrupt(lines, 11, "debtor_id", f"  {copied} ")
    source = write_lines(lines, tmp_path / "spaced.csv")
    scored = score_cli(model_dir, source, tmp_path / "out.csv", "--batch-size", batch_size)
    assert scored.exit_code == EXIT_INVALID, scored.output
    assert rejected_rows(tmp_path / "out.rejects.csv") == [2, 11]
    validated = cli("validate", source, "--failures-out", tmp_path / "failures.csv")
    assert validated.exit_code == EXIT_INVALID
    assert rejected_rows(tmp_path / "failures.csv") == [2, 11]


# --- D7, D8, D9: write errors, formula cells, one reader ---------------------------------------


@pytest.fixture()
def unwritable(tmp_path) -> Path:
    """A folder no one may write into (chmod; as root, the immutable attribute)."""
    folder = tmp_path / "locked"
    folder.mkdir()
    folder.chmod(0o555)
    immutable = False
    try:
        (folder / "probe").touch()
    except PermissionError:
        pass
    else:  # root ignores modes
        (folder / "probe").unlink()
        try:
            done = subprocess.run(["chattr", "+i", str(folder)], capture_output=True)
            immutable = done.returncode == 0
        except FileNotFoundError:
            immutable = False
        if not immutable:
            folder.chmod(0o755)
            pytest.skip("cannot make a folder unwritable here")
    yield folder
    if immutable:
        subprocess.run(["chattr", "-i", str(folder)], check=True)
    folder.chmod(0o755)


def test_d7_an_unwritable_folder_is_one_line(model_dir, portfolio, tmp_path, unwritable):
    bad = portfolio.head(10).copy()
    bad["principal"] = bad["principal"].astype(object)
    bad.loc[bad.index[0], "principal"] = "-1"
    write_table(bad, tmp_path / "in.csv")
    text = one_line(score_cli(model_dir, tmp_path / "in.csv", unwritable / "out.csv"))
    assert "cannot write" in text and str(unwritable) in text
    text = one_line(cli("validate", tmp_path / "in.csv", "--failures-out", unwritable / "f.csv"))
    assert "cannot write" in text and str(unwritable) in text


def test_d8_the_failures_table_neutralises_formulas(portfolio, tmp_path):
    lines = csv_lines(portfolio.head(10), tmp_path / "clean.csv")
    corrupt(lines, 2, "contact_status", '=HYPERLINK("http://x","y")')
    corrupt(lines, 3, "due_date", "@SUM(A1)")
    corrupt(lines, 4, "debtor_id", "+cmd")
    corrupt(lines, 5, "debtor_id", "+cmd")
    corrupt(lines, 6, "principal", "-7")
    source = write_lines(lines, tmp_path / "formulas.csv")
    result = cli("validate", source, "--failures-out", tmp_path / "failures.csv")
    assert result.exit_code == EXIT_INVALID
    table = pd.read_csv(tmp_path / "failures.csv", dtype=str).set_index(["row", "column"])
    assert table.at[("2", "contact_status"), "value"] == '\'=HYPERLINK("http://x","y")'
    assert table.at[("3", "due_date"), "value"] == "'@SUM(A1)"
    assert table.at[("4", "debtor_id"), "value"] == "'+cmd"
    assert float(table.at[("6", "principal"), "value"]) == -7  # a number stays a number


def test_d9_validate_and_score_agree_on_malformed_records(model_dir, portfolio, tmp_path):
    lines = csv_lines(portfolio.head(30), tmp_path / "clean.csv")
    lines[4] += ",extra"
    lines[9] = lines[9].rsplit(",", 2)[0]
    lines[20] = lines[20].replace(",", ',"', 1)  # an unterminated quote runs to the end
    source = write_lines(lines, tmp_path / "malformed.csv")
    validated = cli("validate", source, "--failures-out", tmp_path / "failures.csv")
    scored = score_cli(model_dir, source, tmp_path / "out.csv")
    assert validated.exit_code == scored.exit_code == EXIT_INVALID, validated.output
    assert rejected_rows(tmp_path / "failures.csv") == rejected_rows(tmp_path / "out.rejects.csv")
    assert rejected_rows(tmp_path / "failures.csv") == [4, 9, 20]
    assert "3 of 20 rows fail" in validated.output  # the quote swallowed the rest: 20 records
    assert len(pd.read_csv(tmp_path / "out.csv")) == 17


# --- D10, U3: resume by content, naming what changed ------------------------------------------


def test_d10_resume_sees_a_same_size_edit_with_its_time_restored(model, portfolio, tmp_path):
    source = tmp_path / "in.csv"
    write_table(portfolio, source)
    interrupt(source, tmp_path / "out.parquet", scorer(model), 1, batch_size=200)
    stat = source.stat()
    data = bytearray(source.read_bytes())
    at = data.index(b"individual")
    data[at : at + 10] = b"enterprise"  # same size
    source.write_bytes(bytes(data))
    os.utime(source, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert source.stat().st_size == stat.st_size
    with pytest.raises(RecoverscoreError, match="cannot resume: the input's content changed"):
        batch.run(source, tmp_path / "out.parquet", scorer(model), batch_size=200, resume=True)


def test_u3_a_resume_refusal_names_the_option_that_changed(model_dir, model, portfolio, tmp_path):
    source = tmp_path / "in.csv"
    write_table(portfolio, source)
    interrupt(source, tmp_path / "out.csv", scorer(model, language="en"), 1, batch_size=200)
    args = ["--resume", "--batch-size", 250, "--language", "zh"]
    text = one_line(score_cli(model_dir, source, tmp_path / "out.csv", *args))
    assert "--language ('en' then, 'zh' now)" in text and "--batch-size (200 then, 250 now)" in text


def test_u3_no_arguments_is_a_usage_error():
    result = cli()
    assert result.exit_code == EXIT_ERROR and "Usage" in result.output


# --- D11, D12, D3: tampered packages, empty and extreme requests ------------------------------


def _resign(folder: Path, text: str) -> None:
    from recoverscore.scoring.package import _digest

    (folder / MODEL_FILE).write_text(text)
    document = (folder / PACKAGE_FILE).read_bytes()
    (folder / HASH_FILE).write_text(_digest(text, document) + "\n")


def test_d11_a_tampered_package_is_one_line_never_an_abort(model_dir, portfolio, tmp_path):
    write_table(portfolio.head(10), tmp_path / "in.csv")
    edited = tmp_path / "edited"
    shutil.copytree(model_dir, edited)
    document = json.loads((edited / PACKAGE_FILE).read_text())
    document["model"]["calibration"] = None
    (edited / PACKAGE_FILE).write_text(json.dumps(document, indent=1))
    assert "changed after it was saved" in one_line(
        score_cli(edited, tmp_path / "in.csv", tmp_path / "a.csv")
    )
    resigned = tmp_path / "resigned"
    shutil.copytree(model_dir, resigned)
    text = (resigned / MODEL_FILE).read_text()
    _resign(resigned, text.replace("leaf_value=", "leaf_value=0.5 0.25 ", 1))  # longer
    done = subprocess.run(
        [CONSOLE_SCRIPT, "score", "--model", str(resigned), "--input", str(tmp_path / "in.csv"),
         "--output", str(tmp_path / "b.csv"), "--no-track"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == EXIT_ERROR, done.stderr
    assert "not a valid LightGBM model" in done.stderr and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    broken = tmp_path / "broken"
    shutil.copytree(model_dir, broken)
    document["contract"] = 5
    (broken / PACKAGE_FILE).write_text(json.dumps(document))
    _resign(broken, text)
    assert "does not describe a model package" in one_line(
        score_cli(broken, tmp_path / "in.csv", tmp_path / "c.csv")
    )


@pytest.fixture(scope="module")
def served(model) -> RecoverscorePyfunc:
    pyfunc = RecoverscorePyfunc()
    pyfunc.package = model
    return pyfunc


def _request(frame: pd.DataFrame, folder: Path) -> pd.DataFrame:
    """Rows as a serving request carries them: the text cells of a CSV file."""
    write_table(frame, folder / "request.csv")
    return read_table(folder / "request.csv")


def test_d12_and_d3_requests_get_a_clear_400_without_stack_or_values(served, portfolio, tmp_path):
    with pytest.raises(mlflow.exceptions.MlflowException, match="no rows") as caught:
        served.predict(None, portfolio.head(0))
    assert caught.value.get_http_status_code() == 400
    rows = _request(portfolio.head(4), tmp_path)
    rows.loc[1, "principal"] = "2e19"
    with pytest.raises(mlflow.exceptions.MlflowException) as caught:
        served.predict(None, rows)
    message = caught.value.message
    assert caught.value.get_http_status_code() == 400
    assert "row 2: principal: less_than_or_equal_to" in message
    assert "2e19" not in message and "Traceback" not in message and "\n" not in message


def test_an_internal_error_in_serving_is_generic_and_logged_without_values(
    served, portfolio, tmp_path, monkeypatch, caplog
):
    secret = str(portfolio["debtor_id"].iloc[0])

    def broken(*args, **kwargs):
        raise KeyError(secret)

    monkeypatch.setattr(Scorer, "score_batch", broken)
    with caplog.at_level(logging.ERROR), pytest.raises(mlflow.exceptions.MlflowException) as e:
        served.predict(None, _request(portfolio.head(3), tmp_path))
    assert e.value.get_http_status_code() == 400
    assert "internal error" in e.value.message and secret not in e.value.message
    assert "Traceback" not in e.value.message and "\n" not in e.value.message
    logged = caplog.text
    assert "in broken" in logged
    assert "builtins.KeyError: (message withheld)" in logged and secret not in logged


# --- D13, D14: stale temporaries, empty and non-UTF-8 inputs ------------------------------------


def test_d13_temporaries_of_killed_runs_are_removed_by_the_next_run(model_dir, portfolio, tmp_path):
    write_table(portfolio.head(20), tmp_path / "in.csv")
    gone = subprocess.Popen(["true"])
    gone.wait()
    alive = subprocess.Popen(["sleep", "60"])
    try:
        stale = tmp_path / f".out.csv.{gone.pid}.tmp"
        stale_rejects = tmp_path / f".out.rejects.csv.{gone.pid}.tmp"
        live = tmp_path / f".out.csv.{alive.pid}.tmp"
        for path in (stale, stale_rejects, live):
            path.write_text("half a file")
        assert score_cli(model_dir, tmp_path / "in.csv", tmp_path / "out.csv").exit_code == 0
        assert not stale.exists() and not stale_rejects.exists()
        assert live.exists()  # a running writer's file is not touched
    finally:
        alive.kill()
        alive.wait()


def test_d14_an_empty_folder_is_an_input_error_for_both(model_dir, tmp_path):
    (tmp_path / "empty").mkdir()
    assert "no .parquet files" in one_line(cli("validate", tmp_path / "empty"))
    assert "no .parquet files" in one_line(
        score_cli(model_dir, tmp_path / "empty", tmp_path / "out.csv")
    )


def test_d14_a_header_only_file_is_an_input_error_for_both(model_dir, tmp_path):
    for name in ("header.csv", "header.parquet"):
        source = tmp_path / name
        if name.endswith(".csv"):
            source.write_text(",".join(PORTFOLIO) + "\n", encoding="utf-8")
        else:
            write_table(generate_frame(3, seed=1, as_of=AS_OF)[PORTFOLIO].head(0), source)
        assert "has a header but no data rows" in one_line(cli("validate", source))
        assert "has a header but no data rows" in one_line(
            score_cli(model_dir, source, tmp_path / "out.csv")
        )


@pytest.mark.parametrize("encoding", ["gbk", "latin-1"])
def test_d14_a_non_utf8_file_names_the_true_byte(model_dir, portfolio, tmp_path, encoding):
    lines = csv_lines(portfolio.head(12), tmp_path / "clean.csv")
    corrupt(lines, 7, "region", "浙江" if encoding == "gbk" else "Zürich")
    text = "\n".join(lines) + "\n"
    data = text.encode(encoding)
    offset = len(text[: text.index("浙" if encoding == "gbk" else "ü")].encode(encoding))
    assert data[:offset].decode("utf-8")  # everything before it is UTF-8
    source = tmp_path / f"{encoding}.csv"
    source.write_bytes(data)
    where = f"byte {offset:,}, line 8"
    assert where in one_line(cli("validate", source))
    assert where in one_line(score_cli(model_dir, source, tmp_path / "out.csv"))


@settings(max_examples=80, deadline=None)
@given(
    before=st.text(max_size=30),
    junk=st.binary(min_size=1, max_size=3),
    after=st.text(max_size=10),
    block=st.integers(1, 9),
)
def test_d14_the_first_non_utf8_byte_is_found_across_read_blocks(before, junk, after, block):
    """The offset reported is the one Python's own decoder finds, however the reads split a
    character (blocks of a few bytes here, a megabyte in use)."""
    data = before.encode() + junk + after.encode()
    try:
        data.decode("utf-8")
        expected = None
    except UnicodeDecodeError as error:
        expected = (error.start, data[: error.start].count(b"\n") + 1)
    with tempfile.TemporaryDirectory() as folder, pytest.MonkeyPatch.context() as patch:
        patch.setattr(reader, "_HASH_BLOCK", block)
        path = Path(folder) / "x.csv"
        path.write_bytes(data)
        assert reader.first_invalid_utf8(path) == expected


def test_a_huge_bad_cell_is_shortened_on_screen_and_kept_whole_in_the_file(portfolio, tmp_path):
    lines = csv_lines(portfolio.head(5), tmp_path / "clean.csv")
    corrupt(lines, 2, "contact_status", "lost" * 25_000)
    source = write_lines(lines, tmp_path / "huge.csv")
    result = cli("validate", source, "--failures-out", tmp_path / "failures.csv")
    assert result.exit_code == EXIT_INVALID and "lostlost" in result.output
    assert "lost" * 100 not in result.output and "…" in result.output
    failures = pd.read_csv(tmp_path / "failures.csv", dtype=str)
    assert failures["value"].tolist() == ["lost" * 25_000]


# --- U1, exit 3: strict dates; internal errors --------------------------------------------------


@pytest.mark.parametrize("value", ["11/12/2026", "24/11/2026", "2026-11-12T00:00", "20261112"])
def test_u1_dates_are_iso_only(model_dir, model, portfolio, tmp_path, value):
    write_table(portfolio.head(5), tmp_path / "in.csv")
    message = f"--as-of {value!r} is not a date: use YYYY-MM-DD"
    assert message in one_line(
        score_cli(model_dir, tmp_path / "in.csv", tmp_path / "o.csv", "--as-of", value)
    )
    assert message in one_line(cli("validate", tmp_path / "in.csv", "--as-of", value))
    assert message in one_line(
        cli("generate", "--rows", 5, "--out", tmp_path / "g.csv", "--as-of", value)
    )
    assert not (tmp_path / "o.csv").exists() and not (tmp_path / "g.csv").exists()
    with pytest.raises(RecoverscoreError, match="is not a date"):
        recoverscore.score(portfolio.head(5), model, as_of=value)
    with pytest.raises(mlflow.exceptions.MlflowException, match="is not a date"):
        options_from_params({"as_of": value})


def test_exit_3_an_internal_error_names_a_log_without_values(
    model_dir, portfolio, tmp_path, monkeypatch
):
    write_table(portfolio.head(5), tmp_path / "in.csv")
    secret = str(portfolio["debtor_id"].iloc[0])

    def broken(*args, **kwargs):
        raise ValueError(f"cannot handle {secret}")

    monkeypatch.setattr(Scorer, "score_batch", broken)
    text = one_line(score_cli(model_dir, tmp_path / "in.csv", tmp_path / "o.csv"), EXIT_INTERNAL)
    assert "internal error (ValueError) in score" in text and secret not in text
    log = Path(text.rsplit(" ", 1)[1])
    report = log.read_text(encoding="utf-8")
    log.unlink()
    assert "in broken" in report and "builtins.ValueError: (message withheld)" in report
    assert secret not in report
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "no-such-folder"))
    text = one_line(score_cli(model_dir, tmp_path / "in.csv", tmp_path / "o.csv"), EXIT_INTERNAL)
    assert "no log could be written; rerun with --debug" in text
    debug = cli("--debug", "score", "--model", model_dir, "--input", tmp_path / "in.csv",
                "--output", tmp_path / "o2.csv", "--no-track")  # fmt: skip
    assert debug.exit_code == EXIT_INTERNAL
    assert "Traceback" in debug.output and secret in debug.output
