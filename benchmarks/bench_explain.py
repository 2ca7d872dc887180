"""SHAP values: the numba TreeSHAP kernel beside LightGBM's pred_contrib and a plain predict.

Prints figures, never pass/fail. Two models are trained with ``configs/train.yaml`` on the same
synthetic history: the default (31 leaves) and a deeper one (63 leaves). For each, on the same
design matrix in the same process: ``booster.predict`` (raw score), ``predict(pred_contrib=True)``
(LightGBM's exact TreeSHAP) and ``TreeShapKernel.shap_values``, in microseconds per row and as a
ratio to pred_contrib, all with the config's thread count. Also: the model's trees, leaves and
depths, the kernel's pre-computation time and memory, the largest difference from pred_contrib,
the kernel on a small batch (fewer repeated split patterns to share), and numba's compile time
(or cache load) on the first call, reported apart.

    .venv/bin/python benchmarks/bench_explain.py [--rows 50000] [--train-rows 200000]
        [--small-batch 1000] [--repeats 1] [--cold-compile]

A few minutes at the defaults, most of it pred_contrib and training.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import tracemalloc

import numpy as np

from recoverscore.data.synthetic import generate_frame
from recoverscore.modelling.model import RecoveryModel, load_train_config
from timing import best_of, timed

AS_OF = "2026-06-30"
TIER = "mediation"


def _train(history, leaves: int) -> RecoveryModel:
    model = load_train_config().estimator().set_params(kind="lightgbm", num_leaves=leaves)
    return model.fit(history, history["recovered"].to_numpy(int))


def _line(name: str, seconds: float, rows: int, contrib_s: float, predict_s: float) -> str:
    return (
        f"  {name:34s} {seconds:8.2f} s  {seconds / rows * 1e6:9.1f} us/row   "
        f"x{contrib_s / seconds:6.1f} faster than pred_contrib   x{seconds / predict_s:6.1f} "
        "of predict"
    )


def _bench(name: str, model: RecoveryModel, frame, args, threads: int) -> None:
    from recoverscore.modelling.treeshap import TreeShapKernel

    booster, rounds = model.booster_, model.best_iteration_
    X = model._as_matrix(model._design(frame, TIER))
    n = len(X)

    kernel = TreeShapKernel.from_booster(booster, num_iteration=rounds)
    s = kernel.stats
    tracemalloc.start()  # a second build, traced (tracing slows it: not timed)
    TreeShapKernel.from_booster(booster, num_iteration=rounds)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()

    _, predict_s = best_of(lambda: booster.predict(X, num_iteration=rounds), args.repeats)
    expected, contrib_s = best_of(
        lambda: booster.predict(X, pred_contrib=True, num_iteration=rounds), args.repeats
    )
    values, kernel_s = best_of(lambda: kernel.shap_values(X, num_threads=threads), args.repeats)
    small = X[: args.small_batch]
    _, small_contrib_s = best_of(
        lambda: booster.predict(small, pred_contrib=True, num_iteration=rounds), args.repeats
    )
    _, small_kernel_s = best_of(
        lambda: kernel.shap_values(small, num_threads=threads), args.repeats
    )

    print(
        f"\n{name}: {s.trees} trees ({s.single_leaf_trees} single-leaf), {s.leaves:,} leaves, "
        f"depth {s.depth_mean:.1f} mean / {s.depth_max} max per tree, distinct features on a "
        f"leaf's path {s.path_features_mean:.1f} mean / {s.path_features_max} max"
    )
    print(
        f"  pre-computation {s.precompute_seconds:.2f} s (dump_model included), keeps "
        f"{s.bytes / 2**20:.1f} MiB ({s.table_bytes / 2**20:.1f} MiB leaf tables, "
        f"{s.tabulated_leaves:,} of {s.leaves:,} leaves tabulated), peak "
        f"{peak / 2**20:.1f} MiB traced while building"
    )
    print(f"  {n:,} rows, tier {TIER!r}, {threads} threads")
    print(
        f"  {'booster.predict':34s} {predict_s:8.2f} s  {predict_s / n * 1e6:9.1f} us/row   "
        f"x{contrib_s / predict_s:6.1f} faster than pred_contrib"
    )
    print(
        f"  {'booster.predict(pred_contrib)':34s} {contrib_s:8.2f} s  "
        f"{contrib_s / n * 1e6:9.1f} us/row   x{contrib_s / predict_s:6.1f} of predict"
    )
    print(_line("TreeShapKernel.shap_values", kernel_s, n, contrib_s, predict_s))
    m = len(small)
    print(
        f"  small batch, {m:,} rows: pred_contrib {small_contrib_s / m * 1e6:.1f} us/row, "
        f"kernel {small_kernel_s / m * 1e6:.1f} us/row (x{small_contrib_s / small_kernel_s:.1f})"
    )
    print(f"  max |kernel - pred_contrib| = {np.abs(values - expected).max():.2e}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--train-rows", type=int, default=200_000)
    parser.add_argument("--small-batch", type=int, default=1_000)
    parser.add_argument("--repeats", type=int, default=1, help="best of this many runs each")
    parser.add_argument(
        "--cold-compile",
        action="store_true",
        help="compile the kernel afresh into a temporary numba cache (else numba's cache is used)",
    )
    args = parser.parse_args()
    if args.cold_compile:
        os.environ["NUMBA_CACHE_DIR"] = tempfile.mkdtemp(prefix="numba-cache-")

    config = load_train_config()
    threads = config.model.num_threads
    history = generate_frame(args.train_rows, seed=1, as_of=AS_OF)
    frame = generate_frame(args.rows, seed=2, as_of=AS_OF)
    models = {}
    for name, leaves in (("default model (31 leaves)", 31), ("deeper model (63 leaves)", 63)):
        models[name], fit_s = timed(lambda leaves=leaves: _train(history, leaves))
        print(f"trained {name} on {args.train_rows:,} rows in {fit_s:.1f} s")

    import numba

    from recoverscore.modelling import treeshap, treeshap_kernel

    model = next(iter(models.values()))
    kernel = treeshap.TreeShapKernel.from_booster(model.booster_)
    X = model._as_matrix(model._design(frame.head(10), TIER))
    _, first_s = timed(lambda: kernel.shap_values(X, num_threads=threads))
    cached = sum(treeshap_kernel.explain.stats.cache_hits.values()) > 0
    print(
        f"numba {numba.__version__}, threading layer {numba.threading_layer()}: first call "
        f"{first_s:.2f} s ({'loaded from the cache' if cached else 'compiled'})"
    )
    for name, model in models.items():
        _bench(name, model, frame, args, threads)


if __name__ == "__main__":
    main()
