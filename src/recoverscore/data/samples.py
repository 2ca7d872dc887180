"""The synthetic sample that notebooks and examples start from, wherever recoverscore runs.

The committed ``data/synthetic/sample.parquet`` and ``sample.csv`` are ``make sample``'s output:
5,000 debts of the synthetic world, seed 20260630, as of 2026-06-30. The same rows come from
their seed, so ``history()`` needs no file and no checkout: a notebook opened from any folder
(or from an installed package) reads the sample the same way, and ``load(path)`` reads an
analyst's own file instead.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from recoverscore.data.synthetic import generate_frame
from recoverscore.data.tables import read_table

ROWS, SEED, AS_OF = 5_000, 20260630, "2026-06-30"
"""The sample's size, seed and decision date (``make sample``)."""


def history() -> pd.DataFrame:
    """The sample: the rows of ``data/synthetic/sample.parquet``, made from their seed."""
    return generate_frame(ROWS, seed=SEED, as_of=AS_OF)


def load(path: str | Path | None = None) -> pd.DataFrame:
    """The table at ``path`` (CSV or Parquet: an analyst's own file), or the sample when
    ``path`` is ``None``; a path that does not read is a one-line error naming it."""
    return history() if path is None else read_table(path)
