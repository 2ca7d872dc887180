"""Shared fixtures: one synthetic world per session, generated once."""

from __future__ import annotations

import contextlib
import csv
import io
import re
import socket
import warnings
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from recoverscore.cli import EXIT_ERROR, app
from recoverscore.data.synthetic import generate_frame, load_synthetic_config
from recoverscore.data.tables import write_table
from recoverscore.scoring.pipeline import Scorer, ScoringOptions

ROOT = Path(__file__).resolve().parents[1]
SAMPLE_DIR = ROOT / "data" / "synthetic"
AS_OF = "2026-06-30"


@pytest.fixture(scope="session")
def world_config():
    return load_synthetic_config()


@pytest.fixture(scope="session")
def world(world_config) -> pd.DataFrame:
    """A 60,000-debt world: big enough for per-bucket shares and AUC to be stable."""
    return generate_frame(60_000, seed=11, as_of=AS_OF, config=world_config)


@pytest.fixture()
def small_world(world) -> pd.DataFrame:
    """A fresh copy of 300 rows that a test may corrupt."""
    return world.head(300).copy()


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory) -> Path:
    """A small trained LightGBM model package (with its drift reference), for scoring tests."""
    from recoverscore.modelling.model import load_train_config
    from recoverscore.scoring.package import ModelPackage

    history = generate_frame(4_000, seed=3, as_of=AS_OF)
    model = load_train_config().estimator().set_params(kind="lightgbm")
    model.fit(history, history["recovered"].to_numpy(int))
    package = ModelPackage.build(model, training=history)
    return package.save(tmp_path_factory.mktemp("model") / "package")


def free_port() -> int:
    """A loopback port nothing listens on now (for test servers)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def no_missing_glyphs() -> Iterator[None]:
    """Fail if a figure built or drawn in the block lacks a glyph (Chinese drawn as boxes).

    Every warning is recorded, none filtered: a missing CJK font or a glyph that falls back to
    a font without it fails the test (CI installs the Debian package ``fonts-noto-cjk``).
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    problems = [
        str(w.message) for w in caught if re.search(r"Glyph .* missing|no CJK font", str(w.message))
    ]
    assert not problems, f"{len(problems)} glyph warning(s), e.g. {problems[0]}"


@pytest.fixture(autouse=True)
def _mlflow_state_restored():
    """A test that points MLflow somewhere (in-process CLI calls do: MLflow keeps the URI and
    exports it to the environment) leaves the next test where it found it."""
    import os
    import sys

    names = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")
    saved = {name: os.environ.get(name) for name in names}
    yield
    if "mlflow" in sys.modules:
        import mlflow

        mlflow.set_tracking_uri(saved["MLFLOW_TRACKING_URI"])
        mlflow.set_registry_uri(saved["MLFLOW_REGISTRY_URI"])
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


# --- helpers shared by the CLI and batch tests --------------------------------------------------

runner = CliRunner()


def run(*args: object):
    """The CLI in-process, every argument as text."""
    return runner.invoke(app, [str(a) for a in args])


def one_line_error(result) -> str:
    """The output of a run that failed with exit 2 in one line and no traceback."""
    text = result.output.strip()
    assert result.exit_code == EXIT_ERROR, text
    assert "Traceback" not in text and len(text.splitlines()) == 1, text
    return text


def scorer(model, **options) -> Scorer:
    return Scorer(model, ScoringOptions(**{"explain": False, **options}))


def csv_lines(frame: pd.DataFrame, path: Path) -> list[str]:
    write_table(frame, path)
    return path.read_text(encoding="utf-8").splitlines()


def corrupt(lines: list[str], data_row: int, column: str, value: str) -> None:
    """Set one cell of a CSV data row (1-based) in place."""
    header = next(csv.reader([lines[0]]))
    fields = next(csv.reader([lines[data_row]]))
    fields[header.index(column)] = value
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="").writerow(fields)
    lines[data_row] = buffer.getvalue()
