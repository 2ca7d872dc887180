"""Synthetic world: generation, write and validation speed, and the truth's headline figures.

Prints figures, never pass/fail. The baseline, run in the same process on the same machine, is
the floor for any generator: drawing an equally wide table of plain random numbers and writing it.

    .venv/bin/python benchmarks/bench_synthetic.py [--rows 1000000] [--seed 1]
"""

from __future__ import annotations

import argparse
import resource
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from recoverscore.data.schemas import SyntheticHistory
from recoverscore.data.synthetic import generate, load_synthetic_config
from recoverscore.data.tables import write_chunks
from recoverscore.data.validation import validate
from recoverscore.modelling.evaluate import history_summary
from timing import timed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    config = load_synthetic_config()
    rows = args.rows

    chunks, gen_s = timed(lambda: list(generate(rows, args.seed, "2026-06-30", config)))
    frame = pd.concat(chunks, ignore_index=True)
    width = frame.shape[1]

    rng = np.random.default_rng(args.seed)
    baseline, base_s = timed(
        lambda: pd.DataFrame(rng.random((rows, width)), columns=[f"c{i}" for i in range(width)])
    )
    with tempfile.TemporaryDirectory() as tmp:
        _, parquet_s = timed(lambda: write_chunks(chunks, Path(tmp) / "w.parquet"))
        _, csv_s = timed(lambda: write_chunks(chunks, Path(tmp) / "w.csv"))
        _, base_write_s = timed(lambda: write_chunks([baseline], Path(tmp) / "b.parquet"))
    report, validate_s = timed(lambda: validate(frame, SyntheticHistory))
    summary = history_summary(frame)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    print(f"rows                          {rows:>12,}   columns {width}")
    print(f"generate                      {gen_s:>10.2f} s   {rows / gen_s:>12,.0f} rows/s")
    print(f"  baseline: random table      {base_s:>10.2f} s   ratio {gen_s / base_s:.1f}x")
    print(f"generate + write parquet      {gen_s + parquet_s:>10.2f} s   (target < 60 s)")
    print(
        f"  baseline: random + parquet  {base_s + base_write_s:>10.2f} s   ratio "
        f"{(gen_s + parquet_s) / (base_s + base_write_s):.1f}x"
    )
    print(f"generate + write csv          {gen_s + csv_s:>10.2f} s")
    print(f"validate (SyntheticHistory)   {validate_s:>10.2f} s   valid={report.is_valid}")
    print(f"peak RSS                      {peak_mb:>10,.0f} MB")
    print(f"recovery rate                 {summary['recovery_rate']:>10.3f}")
    print(f"Bayes-limit AUC               {summary['bayes_limit_auc']:>10.4f}")
    for title in ("by_tier", "by_bucket", "true_p_by_bucket"):
        print(f"\n{title}\n{summary[title].to_string(float_format='{:,.3f}'.format)}")


if __name__ == "__main__":
    main()
