"""Population stability: how far a scoring run's debtors have moved from the training data.

Training stores a reference profile in the model package: decile edges (or category levels) of
every model feature and of the predicted P(recover) under every tier, with the training shares
per bin. Scoring only counts rows per bin, batch by batch, so the check streams, merges across
Dask partitions, and needs no row kept. The population stability index of a column is
``sum((a - e) * ln(a / e))`` over its bins, actual share ``a`` against expected share ``e``;
the usual reading is below 0.1 stable, 0.1 to 0.25 moderate, above 0.25 a shift to act on.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from matplotlib.figure import Figure

WARN_PSI = 0.25
MODERATE_PSI = 0.10
N_BINS = 10
_FLOOR = 1e-4  # share given to an empty bin so the logarithm stays finite


def _numeric(values: pd.Series | np.ndarray) -> np.ndarray:
    return pd.to_numeric(pd.Series(np.asarray(values)), errors="coerce").to_numpy(dtype=float)


def bin_counts(spec: Mapping, values: pd.Series | np.ndarray) -> np.ndarray:
    """Rows per bin of ``spec``; the last bin holds missing values (and unseen categories)."""
    if spec["kind"] == "categorical":
        codes = pd.Categorical(np.asarray(values, dtype=object), categories=spec["levels"]).codes
        return np.bincount(
            np.where(codes < 0, len(spec["levels"]), codes), minlength=len(spec["levels"]) + 1
        )
    x = _numeric(values)
    missing = np.isnan(x)
    edges = np.asarray(spec["edges"], dtype=float)
    inner = np.bincount(np.searchsorted(edges, x[~missing], side="right"), minlength=len(edges) + 1)
    return np.append(inner, missing.sum())


def profile(values: pd.Series, bins: int = N_BINS) -> dict:
    """Bins of one column (quantile edges, or its categories) and the training share per bin."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        spec: dict = {"kind": "categorical", "levels": [str(c) for c in values.cat.categories]}
        values = values.astype(object).where(values.notna(), None)
    else:
        x = _numeric(values)
        quantiles = (
            np.quantile(x[~np.isnan(x)], np.linspace(0, 1, bins + 1)[1:-1])
            if (~np.isnan(x)).any()
            else []
        )
        spec = {"kind": "numeric", "edges": np.unique(quantiles).tolist()}
    counts = bin_counts(spec, values)
    spec["expected"] = (counts / max(counts.sum(), 1)).tolist()
    return spec


def reference(features: pd.DataFrame, scores: pd.DataFrame) -> dict:
    """The profile a model package stores: every feature column and every score column."""
    return {
        "features": {name: profile(features[name]) for name in features.columns},
        "scores": {name: profile(scores[name]) for name in scores.columns},
    }


def psi(expected: np.ndarray, counts: np.ndarray) -> float:
    """Population stability index of observed bin ``counts`` against ``expected`` shares."""
    total = counts.sum()
    if total == 0:
        return float("nan")
    actual = np.maximum(counts / total, _FLOOR)
    expected = np.maximum(np.asarray(expected, dtype=float), _FLOOR)
    return float(np.sum((actual - expected) * np.log(actual / expected)))


class DriftCounter:
    """Bin counts of a scoring run against a reference profile, added batch by batch."""

    def __init__(self, reference_profile: Mapping) -> None:
        self.reference = reference_profile
        self.counts = {
            (group, name): np.zeros(len(spec["expected"]), dtype=np.int64)
            for group in ("features", "scores")
            for name, spec in reference_profile[group].items()
        }

    def add(self, features: pd.DataFrame, scores: pd.DataFrame) -> DriftCounter:
        for (group, name), counts in self.counts.items():
            frame = features if group == "features" else scores
            if name in frame.columns:
                counts += bin_counts(self.reference[group][name], frame[name])
        return self

    def to_json(self) -> dict[str, list[int]]:
        """Counts keyed ``group/name``, for a checkpoint file."""
        return {f"{g}/{n}": c.tolist() for (g, n), c in self.counts.items()}

    def add_json(self, counts: Mapping[str, list[int]]) -> DriftCounter:
        """Add counts saved by ``to_json`` (another batch, or another worker's partition)."""
        for key, values in counts.items():
            group, name = key.split("/", 1)
            self.counts[(group, name)] += np.asarray(values, dtype=np.int64)
        return self

    def report(self) -> pd.DataFrame:
        """PSI per column, largest first, with its reading (stable, moderate, drift)."""
        rows = []
        for (group, name), counts in self.counts.items():
            value = psi(np.asarray(self.reference[group][name]["expected"]), counts)
            status = (
                "drift" if value > WARN_PSI else "moderate" if value > MODERATE_PSI else "stable"
            )
            rows.append(
                {"group": group.removesuffix("s"), "column": name, "psi": value, "status": status}
            )
        frame = pd.DataFrame(rows, columns=["group", "column", "psi", "status"])
        return frame.sort_values("psi", ascending=False, ignore_index=True, na_position="last")


def psi_figure(report: pd.DataFrame) -> Figure:
    """Horizontal bars of PSI per column with the 0.1 and 0.25 reading lines."""
    from matplotlib.figure import Figure

    shown = report.dropna(subset=["psi"]).iloc[::-1]
    figure = Figure(figsize=(7, 0.28 * len(shown) + 1.2))
    ax = figure.subplots()
    colours = shown["status"].map({"stable": "#4c72b0", "moderate": "#dd8452", "drift": "#c44e52"})
    labels = shown["group"] + ": " + shown["column"]
    ax.barh(labels, shown["psi"], color=colours)
    for line in (MODERATE_PSI, WARN_PSI):
        ax.axvline(line, color="grey", linestyle="--", linewidth=0.8)
    ax.set_xlabel("population stability index (scoring run vs training)")
    ax.set_title("Drift by column")
    figure.tight_layout()
    return figure
