"""File I/O: atomic writes, and CSV and Parquet carrying the same data."""

from __future__ import annotations

import pandas as pd
import pytest

from recoverscore.data.schemas import SyntheticHistory
from recoverscore.data.tables import read_table, write_chunks, write_table
from recoverscore.data.validation import validate


def test_csv_and_parquet_round_trip_to_the_same_typed_frame(tmp_path, small_world):
    write_table(small_world, tmp_path / "w.parquet")
    write_table(small_world, tmp_path / "w.csv")
    from_parquet = validate(read_table(tmp_path / "w.parquet"), SyntheticHistory).valid
    from_csv = validate(read_table(tmp_path / "w.csv"), SyntheticHistory).valid
    pd.testing.assert_frame_equal(from_parquet, from_csv, check_dtype=False, rtol=1e-12)
    pd.testing.assert_frame_equal(read_table(tmp_path / "w.parquet"), small_world)


def test_a_folder_of_parquet_parts_reads_as_one_table(tmp_path, small_world):
    (tmp_path / "parts").mkdir()
    write_table(small_world.head(100), tmp_path / "parts" / "a.parquet")
    write_table(small_world.tail(200), tmp_path / "parts" / "b.parquet")
    assert len(read_table(tmp_path / "parts")) == 300


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_an_interrupted_write_leaves_no_file_and_keeps_the_old_one(tmp_path, small_world, suffix):
    target = tmp_path / f"out{suffix}"
    write_table(small_world.head(3), target)
    before = target.read_bytes()

    def chunks():
        yield small_world.head(100)
        raise KeyboardInterrupt  # the job is killed mid-write

    with pytest.raises(KeyboardInterrupt):
        write_chunks(chunks(), target)
    assert target.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == [target.name]


def test_chunks_stream_into_one_file(tmp_path, small_world):
    seen = []
    write_chunks(
        (small_world.iloc[i : i + 100] for i in range(0, 300, 100)),
        tmp_path / "s.csv",
        on_chunk=seen.append,
    )
    assert seen == [100, 100, 100]
    assert len(read_table(tmp_path / "s.csv")) == 300
