"""Shared fixtures: one synthetic world per session, generated once."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from recoverscore.synthetic import generate_frame, load_synthetic_config

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
