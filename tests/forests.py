"""Data and rows for testing code that must reproduce LightGBM's trees exactly (TreeSHAP, the
tier predictor): every kind of column and the values LightGBM routes by special rules."""

from __future__ import annotations

import lightgbm as lgb
import numpy as np

QUIET = {"verbosity": -1, "num_threads": 1}  # one thread: LightGBM's OpenMP spins on a busy machine


def make_data(rng: np.random.Generator, n: int, n_numeric: int, categories: list[int], nan: float):
    """Numeric columns (continuous, integer-valued with ties, zero-heavy) and categorical codes,
    with NaN at rate ``nan``; a label driven by several of them."""
    columns = []
    for j in range(n_numeric):
        kind = j % 3
        if kind == 0:
            x = rng.normal(size=n)
        elif kind == 1:
            x = rng.integers(-3, 6, size=n).astype(float)
        else:
            x = np.where(rng.random(n) < 0.4, 0.0, rng.exponential(size=n))
        columns.append(x)
    for k in categories:
        columns.append(rng.integers(0, k, size=n).astype(float))
    X = np.column_stack(columns)
    X[rng.random(X.shape) < nan] = np.nan
    signal = np.nansum(np.sin(3 * np.nan_to_num(X[:, : max(n_numeric, 1)])), axis=1)
    for j in range(n_numeric, X.shape[1]):
        signal += np.where(np.nan_to_num(X[:, j], nan=-1) % 3 == 1, 1.0, -0.5)
    y = (signal + rng.normal(scale=0.7, size=n) > np.median(signal)).astype(int)
    return X, y


def awkward_rows(model: lgb.Booster, X: np.ndarray, n_numeric: int) -> np.ndarray:
    """Rows holding the values LightGBM routes by special rules: split thresholds themselves and
    the next float up, 0, -0, |x| <= 1e-35, NaN, +-inf, and for categoricals negative,
    fractional, unseen, NaN and huge codes."""
    thresholds: dict[int, list[float]] = {}

    def walk(node: dict) -> None:
        if "split_index" in node:
            if node["decision_type"] == "<=":
                thresholds.setdefault(node["split_feature"], []).append(node["threshold"])
            walk(node["left_child"])
            walk(node["right_child"])

    for tree in model.dump_model()["tree_info"]:
        walk(tree["tree_structure"])
    rng = np.random.default_rng(7)
    rows = X[rng.integers(0, len(X), size=200)].copy()
    numeric = [0.0, -0.0, 1e-36, -1e-36, 1e-35, 2e-35, np.nan, np.inf, -np.inf]
    categorical = [np.nan, -1.0, -0.5, 0.4, 2.7, 64.0, 70.0, 1000.0, 1e10, -1e10, np.inf]
    for i, row in enumerate(rows):
        for j in range(X.shape[1]):
            if rng.random() < 0.5:
                continue
            if j >= n_numeric:
                row[j] = categorical[rng.integers(len(categorical))]
            elif thresholds.get(j) and rng.random() < 0.6:
                t = thresholds[j][rng.integers(len(thresholds[j]))]
                row[j] = t if i % 2 else np.nextafter(t, np.inf)
            else:
                row[j] = numeric[rng.integers(len(numeric))]
    return np.vstack([X, rows])
