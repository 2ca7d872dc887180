"""Shared fixtures: one synthetic world per session, generated once."""

from __future__ import annotations

import contextlib
import re
import socket
import warnings
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from recoverscore.data.synthetic import generate_frame, load_synthetic_config

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
