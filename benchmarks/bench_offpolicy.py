"""Safe strategies learnt from age-assigned history, and off-policy estimates, against the truth.

Prints figures, never pass/fail. For each kind of logged history (200,000-debt synthetic worlds:
the aging staircase with 0% exploration on several seeds, 5% and 30% exploration, and a legacy
policy with feature-driven deviations whose propensities are hidden from the file), a model is
trained on 80% of the debts exactly as ``recoverscore train`` does (recovery model, the history's
logging policy, the package), and its policies are valued with the *true* probabilities on the
other 20%: the legacy staircase (no guardrails), the lawful staircase (guardrails applied,
removed tiers falling back: the matrix policy), the safe value policy (the default), the
unconstrained value policy and the oracle.

Then the doubly robust estimate of the safe policy's net recovery is checked against the truth
on fresh 200,000-debt histories of the same world, one per seed (the package never saw them):
its error and whether its 95% interval covers the true value.

    .venv/bin/python benchmarks/bench_offpolicy.py [--rows 200000] [--zero-seeds 10]
        [--coverage-seeds 20] [--resamples 500]

Targets (issue 11): 0% exploration: safe >= 99% of the lawful staircase on every seed, never
collapsing onto one tier; 5%: safe >= +15% over the staircase; 30%: safe >= 97% of the oracle;
feature-driven legacy with hidden propensities at 5%: >= +10% over the staircase. DR within +-3%
of the truth at 5% and 30%, its interval covering the truth in >= 90% of seeds.
"""

from __future__ import annotations

import argparse

import pandas as pd

from recoverscore.data.synthetic import SyntheticConfig, generate_frame, load_synthetic_config
from recoverscore.modelling.model import load_train_config
from recoverscore.scoring.package import ModelPackage
from recoverscore.scoring.policy_evaluation import evaluate_policies
from recoverscore.strategy.comparison import policy_comparison
from recoverscore.strategy.policy import load_policy_config
from recoverscore.training import fit_history_policy
from timing import timed

AS_OF = "2026-06-30"
DEVIATIONS = [
    {
        "name": "large_enterprise_escalated_early",
        "when": {"debtor_type": ["enterprise"], "principal_at_least": 300_000},
        "shift": 1,
        "probability": 0.6,
    },
    {
        "name": "lost_contact_skips_mediation",
        "when": {"contact_status": ["lost"], "tiers": ["mediation"]},
        "to": "payment_order",
        "probability": 0.8,
    },
]


def world(exploration: float, deviations: bool = False, hidden: bool = False) -> SyntheticConfig:
    base = load_synthetic_config()
    legacy = base.legacy_policy.model_validate(
        {
            **base.legacy_policy.model_dump(),
            "exploration": exploration,
            "deviations": DEVIATIONS if deviations else [],
            "record_propensity": not hidden,
        }
    )
    return base.model_copy(update={"legacy_policy": legacy})


def train(config: SyntheticConfig, rows: int, seed: int) -> tuple[ModelPackage, pd.DataFrame]:
    """A package trained as ``recoverscore train`` does, and the held-out 20% of its world."""
    history = generate_frame(rows, seed=seed, as_of=AS_OF, config=config)
    test = history.sample(frac=0.2, random_state=seed)
    train_rows = history.drop(test.index)
    cfg = load_train_config()
    model = cfg.estimator().fit(train_rows, train_rows["recovered"].to_numpy(int))
    support = load_policy_config().safe.min_support
    logging, _ = fit_history_policy(model, train_rows, cfg, support)
    return ModelPackage.build(model, logging_policy=logging), test


def valued(package: ModelPackage, test: pd.DataFrame) -> dict[str, float]:
    """Each policy's true net recovery per 1,000 debtors and its shares, on the test debts."""
    table, _ = policy_comparison(
        test, package.model, package.policy, package.costs, support=package.logging_policy
    )
    net = table["net_per_1000_cny"]
    shares = table.loc["safe", [c for c in table.columns if c.startswith("share_")]]
    return {
        "safe / lawful staircase": net["safe"] / net["matrix"],
        "safe vs staircase": net["safe"] / net["staircase"] - 1,
        "safe vs lawful staircase": net["safe"] / net["matrix"] - 1,
        "safe / oracle": net["safe"] / net["oracle"],
        "value vs staircase": net["value"] / net["staircase"] - 1,
        "value / oracle": net["value"] / net["oracle"],
        "safe: largest tier share": float(shares.max()),
    }


def coverage(package: ModelPackage, config: SyntheticConfig, rows: int, seeds: int, resamples: int):
    """DR's error and interval coverage on fresh histories of the same world."""
    records = []
    for seed in range(1_000, 1_000 + seeds):
        fresh = generate_frame(rows, seed=seed, as_of=AS_OF, config=config)
        result = evaluate_policies(
            fresh, package, ("safe",), fitted="package", n_resamples=resamples, seed=seed
        ).table
        dr = result[(result["estimator"] == "dr") & (result["reward"] == "net_recovery")].iloc[0]
        records.append(
            {
                "error": dr["estimate"] / dr["truth"] - 1,
                "covered": dr["ci_low"] <= dr["truth"] <= dr["ci_high"],
                "half_width": (dr["ci_high"] - dr["ci_low"]) / 2 / dr["truth"],
                "reliable": bool(dr["reliable"]),
            }
        )
    frame = pd.DataFrame(records)
    return {
        "seeds": len(frame),
        "mean |error|": frame["error"].abs().mean(),
        "max |error|": frame["error"].abs().max(),
        "coverage": frame["covered"].mean(),
        "mean interval half-width": frame["half_width"].mean(),
        "reliable": frame["reliable"].mean(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--zero-seeds", type=int, default=10)
    parser.add_argument("--coverage-seeds", type=int, default=20)
    parser.add_argument("--resamples", type=int, default=500)
    args = parser.parse_args()
    pd.set_option("display.width", 200)
    rows = {}
    packages = {}
    for seed in range(1, args.zero_seeds + 1):
        (package, test), seconds = timed(lambda s=seed: train(world(0.0), args.rows, s))
        rows[f"0% exploration, seed {seed}"] = valued(package, test)
        print(f"0% seed {seed}: trained and valued in {seconds:.0f} s", flush=True)
    for label, config in (
        ("5% exploration", world(0.05)),
        ("30% exploration", world(0.30)),
        ("deviations, hidden propensities, 5%", world(0.05, deviations=True, hidden=True)),
    ):
        (package, test), seconds = timed(lambda c=config: train(c, args.rows, 1))
        rows[label] = valued(package, test)
        packages[label] = (package, config)
        print(f"{label}: trained and valued in {seconds:.0f} s", flush=True)
    table = pd.DataFrame(rows).T
    print("\npolicies valued with the truth on the held-out 20% (net recovery per 1,000 debtors)")
    print(table.to_string(float_format="{:.3f}".format))
    zero = table[table.index.str.startswith("0%")]
    print(
        f"\n0% exploration, {len(zero)} seeds: safe / lawful staircase min "
        f"{zero['safe / lawful staircase'].min():.4f} (target >= 0.99 on every seed); "
        f"largest single-tier share max {zero['safe: largest tier share'].max():.1%}; "
        f"unconstrained value policy vs staircase from {zero['value vs staircase'].min():+.1%} "
        f"to {zero['value vs staircase'].max():+.1%}, safe from "
        f"{zero['safe vs staircase'].min():+.1%} to {zero['safe vs staircase'].max():+.1%}"
    )
    results = {}
    for label in ("5% exploration", "30% exploration"):
        package, config = packages[label]
        results[label], seconds = timed(
            lambda p=package, c=config: coverage(
                p, c, args.rows, args.coverage_seeds, args.resamples
            )
        )
        print(f"{label}: coverage study in {seconds:.0f} s", flush=True)
    print(
        "\ndoubly robust estimate of the safe policy's net recovery vs the truth, fresh histories"
    )
    print(pd.DataFrame(results).T.to_string(float_format="{:.4f}".format))
    print("targets: |error| <= 0.03, coverage >= 0.90")


if __name__ == "__main__":
    main()
