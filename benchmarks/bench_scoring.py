"""Batch-scoring throughput beside raw LightGBM, validation's share, and peak memory at scale.

Prints figures, never pass/fail. Baselines in the same run, on the same rows: raw LightGBM
``predict`` once per tier on a prebuilt design matrix (the least work that gives four tier
probabilities), and ``predict(pred_contrib=True)`` for the explained tier. Peak RSS comes from
running the real CLI (``recoverscore score --no-explain``) on a generated Parquet file in a
child process, read back with ``getrusage``.

    .venv/bin/python benchmarks/bench_scoring.py [--train-rows 200000] [--rows 100000]
        [--explain-rows 5000] [--rss-rows 10000000 1000000] [--skip-rss]

Targets (issue 5): score + policy >= 80% of raw predict throughput for the same number of tier
predictions; validation <= 10% of scoring time; 10M rows with --no-explain within 2 GB peak RSS.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from recoverscore.data.schemas import TIERS, Portfolio
from recoverscore.data.synthetic import generate_frame
from recoverscore.modelling.model import RecoveryModel, load_train_config
from recoverscore.scoring.package import ModelPackage
from recoverscore.scoring.pipeline import Scorer, ScoringOptions
from timing import best_of, timed

BIN = Path(sys.executable).parent


def raw_predict(model: RecoveryModel, frame, tiers, as_matrix: bool = False) -> float:
    """Seconds for raw LightGBM to predict ``tiers`` (one pass each) on a prebuilt design:
    the DataFrame a user would pass, or (``as_matrix``) the float matrix LightGBM makes of it."""
    features = model.features_.transform(frame)
    total = 0.0
    for tier in tiers:
        design = model._design(frame, tier, features)
        data = model._as_matrix(design) if as_matrix else design
        _, seconds = best_of(
            lambda d=data: model.booster_.predict(d, num_iteration=model.best_iteration_)
        )
        total += seconds
    return total


def in_memory(package: ModelPackage, rows: int, explain_rows: int) -> None:
    model = package.model
    portfolio = generate_frame(rows, seed=2, as_of="2026-06-30")[
        list(Portfolio.to_schema().columns)
    ]
    quiet = Scorer(package, ScoringOptions(explain=False))
    loud = Scorer(package, ScoringOptions(explain=True))
    numbers = np.arange(1, len(portfolio) + 1)
    quiet.score_batch(portfolio.head(1_000), numbers[:1_000])  # warm caches and imports
    # the TreeSHAP kernel compiles on its first call after an install (then numba's cache)
    _, first_s = timed(lambda: loud.score_batch(portfolio.head(100), numbers[:100]))
    print(f"first explained call (kernel compile or cache load): {first_s:.1f} s")
    frame_s = raw_predict(model, portfolio, TIERS)
    raw_s = raw_predict(model, portfolio, TIERS, as_matrix=True)
    _, matrix_s = best_of(lambda: model.tier_probabilities(portfolio))
    runs = [timed(lambda: quiet.score_batch(portfolio, numbers)) for _ in range(3)]
    result, batch_s = min(runs, key=lambda run: run[1])
    seconds = result.stats["seconds"]
    policy_s = seconds["score"]  # features, 4 tier predictions, calibration, policy, output
    validate_s = seconds["validate"]

    sample = portfolio.head(explain_rows)
    tiers = result.scored["recommended_tier"].to_numpy()[:explain_rows]
    explained, explain_total = timed(lambda: loud.score_batch(sample, numbers[:explain_rows]))
    design = model._design(sample, tiers)
    _, contrib_s = best_of(
        lambda: model.booster_.predict(
            design, num_iteration=model.best_iteration_, pred_contrib=True
        )
    )
    raw_sample_s = raw_predict(model, sample, TIERS, as_matrix=True)
    explain_s = explained.stats["seconds"]["score"] + explained.stats["seconds"]["explain"]

    n, k = len(portfolio), explain_rows
    print(f"\nin-memory throughput, {n:,} debts ({k:,} for explanations), rows/s")
    print(f"  raw LightGBM predict x4 tiers, DataFrame        {n / frame_s:>10,.0f}")
    print(f"  raw LightGBM predict x4 tiers, float matrix     {n / raw_s:>10,.0f}   (baseline)")
    print(
        f"  score only: features + 4 tiers + calibration    {n / matrix_s:>10,.0f}"
        f"   {raw_s / matrix_s:.0%} of raw"
    )
    print(
        f"  score + policy (Scorer, no explanations)        {n / policy_s:>10,.0f}"
        f"   {raw_s / policy_s:.0%} of raw (target >= 80%)"
    )
    print(
        f"  + validation (score_batch end to end)           {n / batch_s:>10,.0f}"
        f"   validation {validate_s / (validate_s + policy_s):.1%} of scoring time "
        "(target <= 10%)"
    )
    print(
        f"  raw predict x4 + pred_contrib (baseline)"
        f"        {k / (raw_sample_s + contrib_s):>10,.0f}"
    )
    print(
        f"  score + policy + top-3 SHAP reasons             {k / explain_s:>10,.0f}"
        f"   {(raw_sample_s + contrib_s) / explain_s:.0%} of raw"
    )
    print(f"  (score_batch with explanations, incl. validation: {k / explain_total:,.0f} rows/s)")


def peak_rss(package: Path, rows: int, folder: Path) -> None:
    """Run the CLI on ``rows`` generated debts; print its peak RSS and throughput."""
    data = folder / f"portfolio_{rows}.parquet"
    subprocess.run(
        [
            str(BIN / "recoverscore"),
            "generate",
            "--rows",
            str(rows),
            "--seed",
            "4",
            "--out",
            str(data),
        ],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    command = [
        str(BIN / "recoverscore"), "score", "--model", str(package), "--input", str(data),
        "--output", str(folder / f"scored_{rows}.parquet"), "--no-explain", "--no-track",
    ]  # fmt: skip
    _, seconds = timed(lambda: subprocess.run(command, check=True, stdout=subprocess.DEVNULL))
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    note = "" if peak_kb > before else " (an earlier child's peak; this run was no higher)"
    print(
        f"  {rows:>12,} rows: {seconds:7.1f} s, {rows / seconds:>9,.0f} rows/s end to end, "
        f"peak RSS {peak_kb / 1024**2:.2f} GB{note}"
    )
    data.unlink()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-rows", type=int, default=200_000)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--explain-rows", type=int, default=5_000)
    parser.add_argument("--rss-rows", type=int, nargs="*", default=[1_000_000, 10_000_000])
    parser.add_argument("--skip-rss", action="store_true")
    args = parser.parse_args()
    config = load_train_config()
    history = generate_frame(args.train_rows, seed=1, as_of="2026-06-30")
    model = config.estimator().fit(history, history["recovered"].to_numpy(int))
    print(
        f"model: {model.best_iteration_} trees of up to {config.model.lightgbm.num_leaves} leaves, "
        f"trained on {args.train_rows:,} rows"
    )
    package = ModelPackage.build(model, training=history)
    in_memory(package, args.rows, args.explain_rows)
    if args.skip_rss:
        return
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        saved = package.save(folder / "model")
        print("\nCLI on Parquet, --no-explain, batches of 100,000 (child process; ascending sizes)")
        for rows in sorted(args.rss_rows):
            peak_rss(saved, rows, folder)


if __name__ == "__main__":
    main()
