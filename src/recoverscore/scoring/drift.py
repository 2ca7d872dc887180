"""Population stability: how far a scoring run's debtors have moved from the training data.

Training stores a reference profile in the model package (plain JSON): the bins of every model
feature and of the predicted P(recover) under every tier, with the training share per bin and
the number of rows profiled. Scoring only counts rows per bin, batch by batch, so the check
streams, merges across Dask partitions, and needs no row kept.

Bins follow what a column is, so no level can hide in another's bin:

- ``categorical`` (category or text columns): one bin per level;
- ``levels`` (numeric columns with at most ``MAX_LEVELS`` distinct values in the reference:
  binary flags such as ``time_barred``, ordinals such as ``aging_bucket``, small counts): one
  bin per value, because quantile edges collapse on them and merge 0 with 1;
- ``numeric`` (genuinely continuous columns): quantile bins;

and every column has a bin for missing values, level columns one more for levels the reference
never saw. Per column the report gives the population stability index,
``sum((a - e) * ln(a / e))`` over the bins, actual share ``a`` against expected share ``e``
(below 0.1 stable, 0.1 to 0.25 moderate, above 0.25 a shift to act on), and beside it Pearson's
chi-square test of homogeneity of the run's counts against the reference's (for a binary flag
the square of the two-proportion z-test). PSI says how large a shift is, the test whether it
could be chance; on millions of rows the test flags shifts too small to matter, on a few rows
PSI is noisy, so both are shown and the reading follows PSI.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from scipy.stats import chi2_contingency

from recoverscore.modelling.explain import check_language, feature_label, tier_names
from recoverscore.modelling.plotting import use_language

if TYPE_CHECKING:
    from matplotlib.figure import Figure

WARN_PSI = 0.25
MODERATE_PSI = 0.10
N_BINS = 10
MAX_LEVELS = 12  # a numeric column with at most this many distinct values is profiled by level
TOP = 10  # columns shown in the chart and named in summaries when nothing has moved
_FLOOR = 1e-4  # share given to an empty bin so the logarithm stays finite
REPORT_COLUMNS = ["group", "column", "kind", "psi", "status", "chi2", "p_value"]


def _numeric(values: pd.Series | np.ndarray) -> np.ndarray:
    return pd.to_numeric(pd.Series(np.asarray(values)), errors="coerce").to_numpy(dtype=float)


def bin_counts(spec: Mapping, values: pd.Series | np.ndarray) -> np.ndarray:
    """Rows per bin of ``spec``, missing values in the last bin.

    Level kinds (``categorical``, ``levels``) count one bin per level, then unseen levels;
    ``numeric`` counts the intervals between its edges.
    """
    if spec["kind"] == "categorical":
        labels = pd.Series(np.asarray(values, dtype=object))
        missing = labels.isna().to_numpy()
        codes = pd.Index(spec["levels"]).get_indexer(labels[~missing].astype(str))
        n = len(spec["levels"])
        inner = np.bincount(np.where(codes < 0, n, codes), minlength=n + 1)
        return np.append(inner, missing.sum())
    x = _numeric(values)
    missing = np.isnan(x)
    present = x[~missing]
    if spec["kind"] == "levels":
        levels = np.asarray(spec["levels"], dtype=float)
        position = np.searchsorted(levels, present).clip(max=len(levels) - 1)
        codes = np.where(levels[position] == present, position, len(levels))
        inner = np.bincount(codes, minlength=len(levels) + 1)
    else:
        edges = np.asarray(spec["edges"], dtype=float)
        inner = np.bincount(np.searchsorted(edges, present, side="right"), minlength=len(edges) + 1)
    return np.append(inner, missing.sum())


def profile(values: pd.Series, bins: int = N_BINS, max_levels: int = MAX_LEVELS) -> dict:
    """Bins of one column (its levels, or quantile edges) with the reference share per bin."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        spec: dict = {"kind": "categorical", "levels": [str(c) for c in values.cat.categories]}
    elif pd.api.types.is_object_dtype(values) or pd.api.types.is_string_dtype(values):
        spec = {"kind": "categorical", "levels": sorted(values.dropna().astype(str).unique())}
    else:
        x = _numeric(values)
        present = x[~np.isnan(x)]
        distinct = np.unique(present)
        if len(distinct) <= max_levels:
            spec = {"kind": "levels", "levels": distinct.tolist()}
        else:
            quantiles = np.quantile(present, np.linspace(0, 1, bins + 1)[1:-1])
            spec = {"kind": "numeric", "edges": np.unique(quantiles).tolist()}
    counts = bin_counts(spec, values)
    spec["rows"] = int(counts.sum())
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


def proportions_test(spec: Mapping, counts: np.ndarray) -> tuple[float, float]:
    """Pearson's chi-square statistic and p-value: are the run's shares the reference's?

    A test of homogeneity on the 2 x bins table of reference and run counts (both samples carry
    noise), over the bins either sample uses; for a binary flag it is the two-proportion z-test
    squared. No continuity correction, so it matches the textbook statistic.
    """
    expected = np.rint(np.asarray(spec["expected"], dtype=float) * spec["rows"])
    table = np.vstack([expected, np.asarray(counts, dtype=float)])
    if table[0].sum() == 0 or table[1].sum() == 0:
        return float("nan"), float("nan")
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2:  # both samples in one bin: identical shares
        return 0.0, 1.0
    result = chi2_contingency(table, correction=False)
    return float(result.statistic), float(result.pvalue)


def status(value: float) -> str:
    """The usual reading of a PSI value (``no data`` when the run had no rows for it)."""
    if np.isnan(value):
        return "no data"
    return "drift" if value > WARN_PSI else "moderate" if value > MODERATE_PSI else "stable"


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
        """Per column: its bin kind, PSI and reading, and the chi-square test; largest PSI first."""
        rows = []
        for (group, name), counts in self.counts.items():
            spec = self.reference[group][name]
            value = psi(np.asarray(spec["expected"]), counts)
            statistic, p_value = proportions_test(spec, counts)
            rows.append(
                {
                    "group": group.removesuffix("s"),
                    "column": name,
                    "kind": spec["kind"],
                    "psi": value,
                    "status": status(value),
                    "chi2": statistic,
                    "p_value": p_value,
                }
            )
        frame = pd.DataFrame(rows, columns=REPORT_COLUMNS)
        return frame.sort_values("psi", ascending=False, ignore_index=True, na_position="last")


def notable(report: pd.DataFrame, top: int = TOP) -> pd.DataFrame:
    """The columns worth a look: every drifted or moderate one, else the ``top`` largest PSI."""
    ranked = report.dropna(subset=["psi"]).sort_values("psi", ascending=False)
    moved = ranked[ranked["status"].isin(["moderate", "drift"])]
    return (moved if len(moved) else ranked.head(top)).reset_index(drop=True)


def summary(report: pd.DataFrame, top: int = TOP) -> dict:
    """Run-level drift metrics: the largest PSI, how many columns drifted, the top drifted."""
    drifted = report[report["status"] == "drift"].sort_values("psi", ascending=False)
    largest = report["psi"].max()
    return {
        "psi_max": None if pd.isna(largest) else float(largest),
        "n_drifted": len(drifted),
        "n_moderate": int((report["status"] == "moderate").sum()),
        "top_drifted": drifted["column"].head(top).tolist(),
    }


_WORDS = {
    "en": {
        "score": "P(recover) if {tier}",
        "moderate": "{value}: moderate shift, watch",
        "drift": "{value}: drift, act",
        "readings": {"stable": "stable", "moderate": "moderate", "drift": "drift"},
        "legend": "reading",
        "moved": "Drift from training: {moved} of {total} columns moved",
        "calm": "No drift from training: the {shown} largest of {total} columns",
        "axis": "population stability index (scoring run vs training)",
    },
    "zh": {
        "score": "若采用{tier}的回款概率",
        "moderate": "{value}：中度偏移，需关注",  # noqa: RUF001
        "drift": "{value}：显著漂移，需处理",  # noqa: RUF001
        "readings": {"stable": "稳定", "moderate": "中度偏移", "drift": "显著漂移"},
        "legend": "解读",
        "moved": "与训练数据相比：{total}列中有{moved}列发生偏移",  # noqa: RUF001
        "calm": "与训练数据相比无漂移：{total}列中PSI最大的{shown}列",  # noqa: RUF001
        "axis": "群体稳定性指数（本次评分与训练数据对比）",  # noqa: RUF001
    },
}


def headline(report: pd.DataFrame, top: int = 5) -> str:
    """A run's drift in one line: ``12 of 32 columns drifted (PSI > 0.25): time_barred 11.11,
    aging_bucket 9.70, ...``, or that none did, with the largest PSI."""
    overview = summary(report, top)
    if not overview["n_drifted"]:
        largest = overview["psi_max"]
        return (
            f"no column of {len(report)} drifted (PSI > {WARN_PSI}), {overview['n_moderate']} "
            f"moderate; largest PSI {'none' if largest is None else f'{largest:.3f}'}"
        )
    psi = report.drop_duplicates("column").set_index("column")["psi"]
    named = ", ".join(f"{c} {psi[c]:.2f}" for c in overview["top_drifted"])
    more = overview["n_drifted"] - len(overview["top_drifted"])
    return (
        f"{overview['n_drifted']} of {len(report)} columns drifted (PSI > {WARN_PSI}): {named}"
        + (f" and {more} more" if more > 0 else "")
    )


def label(group: str, column: str, language: str = "en") -> str:
    """A column as a person reads it: ``time-barred``, ``P(recover) if litigation``."""
    if group == "score" and column.startswith("p_"):
        tier = column.removeprefix("p_")
        return _WORDS[language]["score"].format(tier=tier_names(language).get(tier, tier))
    return feature_label(column, language)


def psi_figure(report: pd.DataFrame, top: int = TOP, language: str = "en") -> Figure:
    """Horizontal PSI bars of the columns that matter (``notable``), with the reading lines;
    labels in ``language``."""
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    words = _WORDS[check_language(language)]
    shown = notable(report, top).iloc[::-1]
    colours = {"stable": "#4c72b0", "moderate": "#dd8452", "drift": "#c44e52"}
    figure = Figure(figsize=(9, 0.32 * len(shown) + 2.0))
    ax = figure.subplots()
    labels = [label(g, c, language) for g, c in zip(shown["group"], shown["column"], strict=True)]
    ax.barh(labels, shown["psi"], color=shown["status"].map(colours))
    for y, value in enumerate(shown["psi"]):
        ax.annotate(
            f"{value:.2f}",
            (value, y),
            xytext=(3, 0),
            textcoords="offset points",
            va="center",
            fontsize=8,
        )
    ax.axvline(MODERATE_PSI, color="#dd8452", linestyle="--", linewidth=0.9)
    ax.axvline(WARN_PSI, color="#c44e52", linestyle="--", linewidth=0.9)
    ax.set_xlim(0, max(WARN_PSI, float(shown["psi"].max()) if len(shown) else 0.0) * 1.15)
    lines = (("moderate", MODERATE_PSI), ("drift", WARN_PSI))
    ax.legend(
        handles=[
            *(
                Line2D([], [], color=colours[r], linestyle="--", label=words[r].format(value=v))
                for r, v in lines
            ),
            *(Patch(color=c, label=words["readings"][s]) for s, c in colours.items()),
        ],
        loc="upper left",
        bbox_to_anchor=(1.01, 1.0),
        fontsize=8,
        title=words["legend"],
        title_fontsize=8,
    )
    moved = report["status"].isin(["moderate", "drift"]).sum()
    ax.set_title(
        words["moved"].format(moved=moved, total=len(report))
        if moved
        else words["calm"].format(shown=len(shown), total=len(report))
    )
    ax.set_xlabel(words["axis"])
    use_language(figure, language)
    figure.tight_layout()
    return figure
