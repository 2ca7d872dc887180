"""SHAP reasons: rows per second of ``contributions`` and ``reasons`` beside raw LightGBM.

Prints figures, never pass/fail. The baselines run in the same process on the same design matrix:
LightGBM's own ``predict(pred_contrib=True)`` (the exact TreeSHAP that ``contributions`` wraps)
and a plain ``predict``. The ratios show what the wrapper (features, frame) and the text cost on
top of TreeSHAP, and what TreeSHAP costs on top of scoring.

    .venv/bin/python benchmarks/bench_explain.py [--rows 100000] [--train-rows 50000]

TreeSHAP dominates: its cost grows with trees x leaves x depth squared per row, so the run takes
a few minutes at the defaults (three TreeSHAP passes over the rows).
"""

from __future__ import annotations

import argparse

from recoverscore.data.synthetic import generate_frame
from recoverscore.modelling.explain import contributions, reasons
from recoverscore.modelling.model import RecoveryModel, load_train_config
from timing import timed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--train-rows", type=int, default=50_000)
    parser.add_argument("--k", type=int, default=3)
    args = parser.parse_args()

    config = load_train_config()
    history = generate_frame(args.train_rows, seed=1, as_of="2026-06-30")
    model = RecoveryModel(config.features.transformer(), "given_tier", config.model)
    _, fit_s = timed(lambda: model.fit(history, history["recovered"].to_numpy(int)))
    frame = generate_frame(args.rows, seed=2, as_of="2026-06-30")
    tier = "mediation"
    booster, rounds = model.booster_, model.best_iteration_
    depth = booster.trees_to_dataframe().groupby("tree_index")["node_depth"].max()

    design, design_s = timed(lambda: model._design(frame, tier))
    _, predict_s = timed(lambda: booster.predict(design, num_iteration=rounds))
    _, treeshap_s = timed(lambda: booster.predict(design, pred_contrib=True, num_iteration=rounds))
    shap_values, contrib_s = timed(lambda: contributions(model, frame, tier))
    _, reasons_s = timed(lambda: reasons(model, frame, tier, k=args.k))
    _, text_s = timed(lambda: reasons(model, frame, tier, k=args.k, shap_values=shap_values))
    _, zh_s = timed(
        lambda: reasons(model, frame, tier, k=args.k, language="zh", shap_values=shap_values)
    )

    n = len(frame)
    print(
        f"model: {args.train_rows:,} training rows, fit {fit_s:.1f} s, {rounds} trees, "
        f"{config.model.lightgbm.num_leaves} leaves max, depth {depth.mean():.1f} mean / "
        f"{depth.max()} max, {config.model.num_threads} threads"
    )
    print(f"explaining {n:,} rows under tier {tier!r}, k={args.k}")
    rows = [
        ("features + tier (_design)", design_s),
        ("raw booster.predict", predict_s),
        ("raw booster.predict(pred_contrib)", treeshap_s),
        ("contributions", contrib_s),
        ("reasons (en)", reasons_s),
        ("reasons (en), given contributions", text_s),
        ("reasons (zh), given contributions", zh_s),
    ]
    for name, seconds in rows:
        print(
            f"  {name:36s} {seconds:7.2f} s  {n / seconds:>12,.0f} rows/s   "
            f"x{seconds / treeshap_s:5.2f} of pred_contrib   x{seconds / predict_s:6.1f} of predict"
        )
    print(
        f"  text alone: {text_s / n * 1e6:.1f} us per row for {args.k} reasons; TreeSHAP "
        f"{treeshap_s / n * 1e6:.0f} us per row, plain predict {predict_s / n * 1e6:.1f} us per row"
    )


if __name__ == "__main__":
    main()
