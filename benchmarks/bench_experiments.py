"""Strategy experiments on the synthetic loop: cell shares, power and size, and what exploring buys.

Prints figures, never pass/fail. Three parts:

(a) **Cells.** Scoring-time cells (``recoverscore.strategy.experiment.assign_cells``, the
    pipeline's experiment) on 100,000 debts: each cell's share against the design, and whether
    every debtor gets the same cell on a second run, in another order and in a smaller batch.
(b) **Power and size.** The champion is today's strategy, the lawful aging staircase (the
    matrix policy of a model trained on the history); the challenger gives the oracle's tier
    (the allowed tier with the highest true expected net recovery) to a hash-chosen fraction of
    debts, the fraction chosen so that its true net recovery per debtor is ``--lift`` (5%)
    higher. ``experiment_size`` sizes the experiment from the history's realised net recovery;
    a world of that many debts is scored once, and for each seed the debts are split into
    cells under a new experiment name, outcomes are drawn from the truth
    (``simulate_outcomes``) and the backtest's Welch test judges the cells. An equal challenger
    (the champion's own tiers) in the same experiment gives the false-alarm rate.
(c) **Exploring.** A model is trained on an age-assigned history (0% exploration: the safe
    policy can only keep today's tiers). Two rounds follow, each a fresh month of debts scored
    by the current model's safe policy with a 5% cell exploring uniformly among the allowed
    tiers; outcomes are drawn, the debts appended to the history with their propensities, and
    the model retrained. Each model's safe policy is valued with the truth on held-out debts;
    a control retrains on the same rounds without exploration (only more data).

    .venv/bin/python benchmarks/bench_experiments.py [--history-rows 200000] [--seeds 25]
        [--share 0.5] [--lift 0.05] [--loop-rows 100000] [--loop-seeds 3]

Targets (issue 12): shares within +-1 point of the design on 100k debts and the same cell on
every run; a 5%-better challenger detected at p < 0.05 in >= 80% of >= 20 seeds at the size
experiment-size recommends, an equal one flagged in <= 5%; retraining on a history enlarged by
two rounds of 5% exploration raises the safe policy's true value on an age-assigned world.
About 15-20 minutes with the defaults on a quiet 2-core machine.
"""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd

import recoverscore
from recoverscore.data.costs import load_costs
from recoverscore.data.schemas import TIERS, Portfolio
from recoverscore.data.synthetic import (
    SyntheticConfig,
    expected_net_recovery,
    generate_frame,
    load_synthetic_config,
)
from recoverscore.modelling.model import load_train_config
from recoverscore.scoring.backtest import run_backtest
from recoverscore.scoring.package import ModelPackage
from recoverscore.scoring.simulate import (
    Cell,
    allowed_tiers,
    assign_design,
    simulate_outcomes,
)
from recoverscore.scoring.sizing import experiment_size, realised_net
from recoverscore.strategy.comparison import policy_comparison
from recoverscore.strategy.experiment import Experiment, assign_cells, keyed_uniform
from recoverscore.strategy.policy import load_policy_config
from recoverscore.training import fit_history_policy
from timing import timed

AS_OF = "2026-06-30"
PORTFOLIO = list(Portfolio.to_schema().columns)
DESIGN = {"champion": 0.80, "value": 0.15, "explore": 0.05}


# --- (a) cells -----------------------------------------------------------------------------------


def cells_part(rows: int = 100_000) -> None:
    design = Experiment.model_validate(
        {
            "name": "bench-cells",
            "cells": [
                {"name": "value", "share": DESIGN["value"], "policy": "value"},
                {"name": "explore", "share": DESIGN["explore"], "explore": True},
            ],
        }
    )

    def assign(ids: pd.Series) -> np.ndarray:
        return np.asarray(design.names, dtype=object)[assign_cells(ids, design)]

    ids = pd.Series([f"D{i:09d}" for i in range(rows)])
    first, seconds = timed(lambda: assign(ids))
    shares = pd.Series(first).value_counts(normalize=True)
    gaps = {name: shares.get(name, 0.0) - share for name, share in DESIGN.items()}
    again = assign(ids)
    order = np.random.default_rng(0).permutation(rows)
    shuffled = pd.Series(assign(ids.iloc[order]), index=order).sort_index().to_numpy()
    part = assign(ids.iloc[: rows // 7])
    same = (
        (again == first).all() and (shuffled == first).all() and (part == first[: rows // 7]).all()
    )
    print(f"(a) cells on {rows:,} debts ({seconds:.2f} s):")
    for name, share in DESIGN.items():
        print(
            f"    {name:9s} design {share:.1%}  got {shares.get(name, 0):.2%}  ({gaps[name]:+.2%})"
        )
    print(
        f"    largest gap {max(abs(g) for g in gaps.values()):.2%} (target <= 1 point); same cell "
        f"on a rerun, in another order and in a smaller batch: {same}"
    )


# --- (b) power and size --------------------------------------------------------------------------


def _fit(history: pd.DataFrame, logging: bool) -> ModelPackage:
    """Model (and, for the safe policy, the history's logging policy) as training fits them."""
    cfg = load_train_config()
    model = cfg.estimator().fit(history, history["recovered"].to_numpy(int))
    support = None
    if logging:
        support, _ = fit_history_policy(model, history, cfg, load_policy_config().safe.min_support)
    return ModelPackage.build(model, training=history, logging_policy=support)


def _challenger(
    world: pd.DataFrame, champion: pd.DataFrame, lift: float
) -> tuple[np.ndarray, float, float]:
    """Champion tiers, except the oracle's for the hash-chosen debts that lift the true
    expected net recovery per debtor by ``lift``: (tiers, fraction moved, true lift)."""
    expected = expected_net_recovery(world, world, load_synthetic_config(), load_costs())
    values = expected.to_numpy()
    allowed = allowed_tiers(champion)
    oracle = np.where(allowed, values, -np.inf).argmax(axis=1)
    base = np.array([TIERS.index(t) for t in champion["recommended_tier"]])
    gain = values[np.arange(len(world)), oracle] - values[np.arange(len(world)), base]
    u = keyed_uniform(champion["debtor_id"], "oracle-share", "cell")
    order = np.argsort(u)
    reached = np.searchsorted(
        np.cumsum(gain[order]), lift * values[np.arange(len(world)), base].sum()
    )
    if reached >= len(order):
        raise SystemExit(f"the oracle is not {lift:.0%} better than the champion on this world")
    moved = np.zeros(len(world), dtype=bool)
    moved[order[: reached + 1]] = True
    tiers = np.where(moved, oracle, base)
    true = values[np.arange(len(world)), tiers].mean() / values[np.arange(len(world)), base].mean()
    return np.asarray(TIERS, dtype=object)[tiers], moved.mean(), true - 1


def power_part(history_rows: int, seeds: int, share: float, lift: float) -> None:
    history = generate_frame(history_rows, seed=1, as_of=AS_OF)
    size = experiment_size(realised_net(history), lift, share=share)
    print(f"\n(b) {size.sentence()}")
    package, seconds = timed(lambda: _fit(history, logging=False))
    print(f"    model trained on the {history_rows:,}-debt history in {seconds:.0f} s")
    # one simulated experiment per seed holds both challengers, each beside the champion at
    # exactly the recommended sizes: champion (1 - share) N, better and equal share x N each
    rows = size.debts + size.challenger_debts
    world = generate_frame(rows, seed=2, as_of=AS_OF, id_prefix="B-")
    champion, seconds = timed(
        lambda: recoverscore.score(world[PORTFOLIO], package, policy="matrix", explain=False)
    )
    print(f"    {rows:,} debts scored with the lawful staircase in {seconds:.0f} s")
    better, moved, true_lift = _challenger(world, champion, lift)
    print(
        f"    better challenger: the oracle's tier for {moved:.1%} of debts, true lift "
        f"{true_lift:+.2%} in net recovery per debtor; equal challenger: the champion's tiers"
    )
    tiers = champion["recommended_tier"].to_numpy(dtype=object)
    allowed = allowed_tiers(champion)
    cells = [
        Cell("champion", (1 - share) / (1 + share), tiers),
        Cell("better", share / (1 + share), better),
        Cell("equal", share / (1 + share), tiers),
    ]
    records = []
    for seed in range(1, seeds + 1):
        design = assign_design(champion, f"bench-power-{seed}", cells, allowed)
        outcomes = simulate_outcomes(design, world, seed=seed).outcomes
        result = run_backtest([design], outcomes, resamples=0).comparison
        records.append(result[["p_value", "lift"]].unstack())
        print(
            f"    seed {seed}: better p = {result.loc['better', 'p_value']:.3g} (measured lift "
            f"{result.loc['better', 'lift']:+.1%}), equal p = {result.loc['equal', 'p_value']:.3g}",
            flush=True,
        )
    frame = pd.DataFrame(records)
    detected = ((frame[("p_value", "better")] < 0.05) & (frame[("lift", "better")] > 0)).mean()
    flagged = (frame[("p_value", "equal")] < 0.05).mean()
    half = 1.96 * np.sqrt(detected * (1 - detected) / len(frame))
    print(
        f"    {len(frame)} seeds: {lift:.0%}-better challenger detected at p < 0.05 in "
        f"{detected:.0%} (+-{half:.0%}; target >= 80%, promised {size.power:.0%}); equal "
        f"challenger flagged in {flagged:.0%} (target <= 5%); measured lift "
        f"{frame[('lift', 'better')].mean():+.2%} on average"
    )


# --- (c) exploring -------------------------------------------------------------------------------


def age_assigned() -> SyntheticConfig:
    """The default world with its legacy policy exploring nothing: the aging staircase only."""
    base = load_synthetic_config()
    legacy = base.legacy_policy.model_copy(update={"exploration": 0.0})
    return base.model_copy(update={"legacy_policy": legacy})


def _round(package: ModelPackage, month: pd.DataFrame, explore: float, name: str, seed: int):
    """One month scored with the safe policy, ``explore`` of it exploring; its history rows."""
    scored = recoverscore.score(month[PORTFOLIO], package, explain=False)
    tiers = scored["recommended_tier"].to_numpy(dtype=object)
    cells = [Cell("champion", 1 - explore, tiers)] + ([Cell("explore", explore)] if explore else [])
    design = assign_design(scored, name, cells)
    return simulate_outcomes(design, month, seed=seed).history


def _safe_value(package: ModelPackage, test: pd.DataFrame) -> pd.Series:
    table, _ = policy_comparison(
        test, package.model, package.policy, package.costs, support=package.logging_policy
    )
    net = table["net_per_1000_cny"]
    return pd.Series(
        {
            "safe net per 1,000": net["safe"],
            "safe / lawful staircase": net["safe"] / net["matrix"],
            "safe / oracle": net["safe"] / net["oracle"],
        }
    )


def exploring_part(rows: int, seeds: int) -> None:
    world = age_assigned()
    print(f"\n(c) {rows:,}-debt age-assigned history, two rounds of {rows:,} debts each")
    results = []
    for seed in range(1, seeds + 1):
        history = generate_frame(rows, seed=seed, as_of=AS_OF, config=world)
        test = generate_frame(rows, seed=10_000 + seed, as_of=AS_OF, config=world, id_prefix="T-")
        start, seconds = timed(lambda h=history: _fit(h, logging=True))
        print(f"    seed {seed}: first model in {seconds:.0f} s", flush=True)
        row = {"seed": seed, "before": _safe_value(start, test)}
        for label, explore in (("5% exploration", 0.05), ("no exploration", 0.0)):
            package, enlarged = start, history
            for k in (1, 2):
                month = generate_frame(
                    rows, seed=100 * seed + k, as_of=AS_OF, config=world, id_prefix=f"R{k}-"
                )
                enlarged = pd.concat(
                    [enlarged, _round(package, month, explore, f"round-{seed}-{k}", seed + k)],
                    ignore_index=True,
                )
                package, seconds = timed(lambda e=enlarged: _fit(e, logging=True))
                print(
                    f"      {label}, round {k}: retrained on {len(enlarged):,} in {seconds:.0f} s"
                )
            row[label] = _safe_value(package, test)
        results.append(row)
    for key in ("before", "5% exploration", "no exploration"):
        table = pd.DataFrame({r["seed"]: r[key] for r in results}).T
        print(f"    {key}:\n" + table.to_string(float_format="{:,.4f}".format))
    gains = [
        r["5% exploration"]["safe net per 1,000"] / r["before"]["safe net per 1,000"] - 1
        for r in results
    ]
    control = [
        r["no exploration"]["safe net per 1,000"] / r["before"]["safe net per 1,000"] - 1
        for r in results
    ]
    print(
        f"    safe policy's true value after two 5%-exploration rounds: {np.mean(gains):+.1%} on "
        f"average (from {min(gains):+.1%} to {max(gains):+.1%}); the same rounds without "
        f"exploration: {np.mean(control):+.1%}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cell-rows", type=int, default=100_000)
    parser.add_argument("--history-rows", type=int, default=200_000)
    parser.add_argument("--seeds", type=int, default=25)
    parser.add_argument("--share", type=float, default=0.5)
    parser.add_argument("--lift", type=float, default=0.05)
    parser.add_argument("--loop-rows", type=int, default=100_000)
    parser.add_argument("--loop-seeds", type=int, default=3)
    parser.add_argument("--parts", default="abc", help="Which parts to run, e.g. 'bc'.")
    args = parser.parse_args()
    pd.set_option("display.width", 200)
    if "a" in args.parts:
        _, seconds = timed(lambda: cells_part(args.cell_rows))
        print(f"    part (a) in {seconds:.0f} s")
    if "b" in args.parts:
        _, seconds = timed(lambda: power_part(args.history_rows, args.seeds, args.share, args.lift))
        print(f"    part (b) in {seconds:.0f} s")
    if "c" in args.parts:
        _, seconds = timed(lambda: exploring_part(args.loop_rows, args.loop_seeds))
        print(f"    part (c) in {seconds:.0f} s")


if __name__ == "__main__":
    main()
