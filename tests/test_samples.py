"""The sample notebooks start from: the committed file's rows, with no file or checkout needed."""

from __future__ import annotations

import pandas as pd
import pytest

from recoverscore.data import samples
from recoverscore.data.tables import read_table, write_table
from recoverscore.errors import RecoverscoreError
from tests.conftest import SAMPLE_DIR


def test_the_sample_is_the_committed_file():
    pd.testing.assert_frame_equal(samples.history(), read_table(SAMPLE_DIR / "sample.parquet"))
    pd.testing.assert_frame_equal(samples.load(), samples.history())


def test_an_own_file_is_read_from_its_path_and_a_wrong_path_named(tmp_path):
    own = samples.history().head(3)
    write_table(own, tmp_path / "own.parquet")
    pd.testing.assert_frame_equal(samples.load(tmp_path / "own.parquet"), own)
    with pytest.raises(RecoverscoreError, match=r"file not found: .*missing\.csv"):
        samples.load(tmp_path / "missing.csv")
