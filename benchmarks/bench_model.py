"""Recovery model: quality against the Bayes limit and the scorecard, and training speed.

Prints figures, never pass/fail. Baselines run in the same process on the same rows: the WoE
scorecard (quality) and raw LightGBM with library defaults and no calibration (speed, quality).

    .venv/bin/python benchmarks/bench_model.py [--rows 200000] [--speed-rows 1000000]

Targets (issue 3): test AUC within 0.005 of the Bayes limit, ECE <= 0.01, above the scorecard,
1M rows trained in <= 60 s on 2 cores.
"""

from __future__ import annotations

import argparse

import lightgbm as lgb
from sklearn.metrics import roc_auc_score

from recoverscore.data.synthetic import generate_frame
from recoverscore.modelling.evaluate import bayes_limit_auc, binary_metrics, truth_metrics
from recoverscore.modelling.model import RecoveryModel, load_train_config
from recoverscore.modelling.scorecard import ScorecardModel
from timing import timed


def raw_lightgbm(model: RecoveryModel, train, test) -> tuple[float, float]:
    """Library-default LightGBM (100 rounds) on the same design matrix: seconds and test AUC."""
    x_train, x_test = model._design(train), model._design(test)
    params = {"objective": "binary", "verbosity": -1, "num_threads": 2, "seed": 1}
    booster, seconds = timed(
        lambda: lgb.train(params, lgb.Dataset(x_train, train["recovered"].to_numpy(int)))
    )
    return seconds, roc_auc_score(test["recovered"], booster.predict(x_test))


def quality(rows: int) -> None:
    config = load_train_config()
    frame = generate_frame(rows, seed=1, as_of="2026-06-30")
    test = frame.sample(frac=0.2, random_state=0)
    train = frame.drop(test.index)
    y_train, y_test = train["recovered"].to_numpy(int), test["recovered"].to_numpy(int)
    model = config.estimator()
    _, fit_s = timed(lambda: model.fit(train, y_train))
    metrics = binary_metrics(y_test, model.recovery_probability(test))
    card, card_s = timed(lambda: ScorecardModel(model.features_, "given_tier").fit(train, y_train))
    card_auc = roc_auc_score(y_test, card.recovery_probability(test))
    raw_s, raw_auc = raw_lightgbm(model, train, test)
    bayes = bayes_limit_auc(test)
    truth = truth_metrics(model.tier_probabilities(test), test)
    print(f"quality on {rows:,} rows ({len(train):,} train / {len(test):,} test)")
    print(f"  Bayes-limit AUC          {bayes:.4f}")
    print(
        f"  model AUC                {metrics['auc']:.4f}   gap {bayes - metrics['auc']:+.5f}"
        f" (target <= 0.005)   fit {fit_s:.1f} s, {model.best_iteration_} rounds, "
        f"{model.calibration_['method']} calibration"
    )
    print(
        f"  model ECE                {metrics['ece']:.4f}   (target <= 0.01)   "
        f"Brier {metrics['brier']:.4f}  PR-AUC {metrics['pr_auc']:.4f}  KS {metrics['ks']:.4f}"
    )
    print(
        f"  scorecard AUC            {card_auc:.4f}   "
        f"model - scorecard {metrics['auc'] - card_auc:+.4f}   fit {card_s:.1f} s"
    )
    print(
        f"  raw LightGBM AUC         {raw_auc:.4f}   (defaults, uncalibrated)   fit {raw_s:.1f} s"
    )
    print("  predicted vs true P(recover), all test debts, every tier:")
    print(truth.to_string(float_format="{:.4f}".format).replace("\n", "\n    "))


def speed(rows: int) -> None:
    config = load_train_config()
    frame = generate_frame(rows, seed=2, as_of="2026-06-30")
    y = frame["recovered"].to_numpy(int)
    model = config.estimator()
    _, fit_s = timed(lambda: model.fit(frame, y))
    raw_s, _ = raw_lightgbm(model, frame, frame.head(1000))
    print(f"speed on {rows:,} rows, 2 threads")
    print(
        f"  RecoveryModel.fit        {fit_s:6.1f} s   (target <= 60 s; {model.best_iteration_} "
        f"rounds, features + early stopping + calibration)"
    )
    print(f"  raw LightGBM, 100 rounds {raw_s:6.1f} s   ratio {fit_s / raw_s:.1f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--speed-rows", type=int, default=1_000_000)
    args = parser.parse_args()
    quality(args.rows)
    speed(args.speed_rows)


if __name__ == "__main__":
    main()
