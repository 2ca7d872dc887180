"""Policies valued with the synthetic truth, and decision and explanation throughput.

Prints figures, never pass/fail. Every policy's choices are priced with the true probabilities.
Baselines in the same run: the legacy aging staircase (value), and raw LightGBM ``predict`` and
``predict(pred_contrib=True)`` on the same rows (throughput).

    .venv/bin/python benchmarks/bench_policy.py [--rows 200000]

Targets (issue 4): value policy >= 95% of the oracle's net recovery and >= 15% above the staircase.
"""

from __future__ import annotations

import argparse

from recoverscore.data.costs import load_costs
from recoverscore.data.synthetic import generate_frame
from recoverscore.modelling import explain
from recoverscore.modelling.model import load_train_config
from recoverscore.strategy.comparison import policy_comparison
from recoverscore.strategy.policy import Cases, decide, load_policy_config
from timing import timed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    args = parser.parse_args()
    config, settings, costs = load_train_config(), load_policy_config(), load_costs()
    frame = generate_frame(args.rows, seed=1, as_of="2026-06-30")
    test = frame.sample(frac=0.2, random_state=0)
    train = frame.drop(test.index)
    model = config.estimator().fit(train, train["recovered"].to_numpy(int))

    table, _ = policy_comparison(test, model, settings, costs)
    print(
        f"policies on {len(test):,} test debts, valued with the truth "
        f"(capacity {table.attrs['capacity']})"
    )
    print(table.to_string(float_format="{:,.3f}".format))
    value = table.loc["value"]
    print(
        f"value policy: {value['vs_oracle']:.1%} of the oracle (target >= 95%), "
        f"{value['vs_staircase']:+.1%} vs the staircase (target >= +15%)"
    )

    n = len(test)
    facts = model.features_.facts(test)
    features = model.features_.transform(test, facts)
    matrix, matrix_s = timed(lambda: model.tier_probabilities(features=features))
    cases = Cases.build(facts, matrix)
    _, value_s = timed(lambda: decide(cases, settings, costs, "value"))
    _, cap_s = timed(
        lambda: decide(cases, settings, costs, "value", capacity=table.attrs["capacity"])
    )
    tiers = decide(cases, settings, costs, "value")["recommended_tier"].to_numpy()
    _, reasons_s = timed(lambda: explain.reasons(model, features, tiers, 3, "en"))
    design = model._design(test, tiers)
    _, raw_s = timed(lambda: model.booster_.predict(design, num_iteration=model.best_iteration_))
    _, contrib_s = timed(
        lambda: model.booster_.predict(
            design, num_iteration=model.best_iteration_, pred_contrib=True
        )
    )
    print(f"\nthroughput on {n:,} debts (rows/s)")
    print(f"  tier probabilities (4 predictions + calibration) {n / matrix_s:>12,.0f}")
    print(
        f"  raw LightGBM predict, 1 tier                     {n / raw_s:>12,.0f}"
        f"   matrix per tier prediction: {4 * raw_s / matrix_s:.0%} of raw"
    )
    print(f"  value policy (guardrails, economics, choice)     {n / value_s:>12,.0f}")
    print(f"  value policy under capacity (LP)                 {n / cap_s:>12,.0f}")
    print(f"  SHAP reasons, top 3                              {n / reasons_s:>12,.0f}")
    print(
        f"  raw LightGBM pred_contrib                        {n / contrib_s:>12,.0f}"
        f"   reasons: {contrib_s / reasons_s:.0%} of raw"
    )


if __name__ == "__main__":
    main()
