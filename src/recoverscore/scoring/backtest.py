"""The backtest: realised outcomes joined to the scored files, set against what the model said.

Monitoring features for drift cannot see a tier that stops working the way it used to; realised
outcomes can. ``run_backtest`` joins an outcomes file (``schemas.Outcomes``) to one or more
scored files and reports

- realised against predicted recovery by tier, by score decile and by experiment cell;
- AUC, Brier score and calibration error (ECE) on the realised outcomes, beside the model's
  training figures (from its package's metadata);
- realised net recovery (amount recovered minus costs) per debtor in each cell with its
  interval, and each challenger cell's difference to the champion cell with its interval and
  p-value;
- warnings when calibration, or a tier's realised recovery, departs from the model's beyond
  chance *and* by a margin that matters.

Everything here is a pure function of frames; files, MLflow and the terminal stay in the CLI
and ``registry.log_backtest``. No table or plot carries an id.

**Joining.** The id column is the scored files' first column (the model's own id name); the
outcomes name it alike. Each scored file is one scoring run. A debt scored in several runs
(daily scoring, reruns) is joined to its *latest scoring on or before the outcome date*: that
is the decision the collectors were acting on when the outcome came. Two scorings of the same
debt on the same date: the file given last wins (a rerun replaces the run it repeats). An
outcome with no such scoring, or whose id no scored file has, is rejected with the reason, like
a row that breaks the contract; a scored debt without an outcome is still open and only counted.
The tier worked is the outcome's ``given_tier`` where given, else the recommended tier.

**Which test for cells, and why.** A challenger is compared with the champion by Welch's
two-sample t-test on realised net recovery per debtor (``scipy.stats.ttest_ind`` with unequal
variances): its p-value and interval. Net recovery is heavy-tailed (lognormal principals, an
enterprise debt worth a hundred individual ones), so the t-test rests on the central limit
theorem for the cell means. At the cell sizes an experiment needs (``experiment_size``, which
uses the same normal approximation, so sizing and testing agree) that holds: the benchmark
``bench_experiments.py`` measures the test's false-alarm rate on equal challengers and its power
on the synthetic world. A percentile bootstrap interval of the difference
(``scipy.stats.bootstrap``, resampling each cell) is shown beside it as a check that needs no
normality; when the two disagree on whether the difference could be zero, a note says so and
the cells are too small, or too skewed, to trust either alone. The cells' own intervals are
t-intervals of their means. Cells were assigned at random (a keyed hash of the id), so a cell's
plain mean is an unbiased estimate of its strategy's value: no weighting is needed.

**Warnings.** A tier's realised recovery is compared with the mean predicted probability of
the debts worked in it by ``z = (recovered - sum p) / sqrt(sum p(1 - p))``, the standardised
count of recoveries if the model's probabilities were true (independent Bernoulli outcomes);
the same statistic per score decile, squared and summed, is a Hosmer-Lemeshow-type test with
as many degrees of freedom as deciles (the model was not fitted on these outcomes, so none are
spent), p-value from ``scipy.stats.chi2``. On a portfolio of 100,000 debts any departure is
significant, so a warning needs both: a p-value below ``alpha`` (Bonferroni-adjusted over the
tiers) and a gap in recovery rate of at least ``tolerance`` (0.02 by default: two points of
recovery move a tier's value by more than the typical gap between tiers).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pandera.pandas as pa
from matplotlib.figure import Figure
from scipy import stats

from recoverscore.data.schemas import (
    TIERS,
    Outcomes,
    Scored,
    as_schema,
    probability_column,
    tier_codes,
    value_column,
    with_id_column,
)
from recoverscore.data.validation import validate
from recoverscore.errors import RecoverscoreError
from recoverscore.modelling.evaluate import binary_metrics, calibration_figure
from recoverscore.modelling.explain import tier_names
from recoverscore.scoring.package import ModelPackage

SCORED_COLUMNS: tuple[str, ...] = (
    "as_of",
    "model_version",
    "recommended_tier",
    "expected_net_value",
    *(probability_column(t) for t in TIERS),
    *(value_column(t) for t in TIERS),
)
"""What the backtest reads of a scored file, besides its id (the first column)."""

EXPERIMENT_COLUMNS: tuple[str, ...] = ("cell", "assignment_propensity", "champion_tier")
"""What scoring with an experiment adds to each scored row (all optional here)."""

_EXPERIMENT_FALLBACK = {  # until the scored contract defines them; its definitions win
    "cell": pa.Column(str, nullable=True, required=False),
    "assignment_propensity": pa.Column(
        float, pa.Check.in_range(0, 1, include_min=False), nullable=True, required=False
    ),
    "champion_tier": pa.Column(str, pa.Check.isin(list(TIERS)), nullable=True, required=False),
}

NO_CELL = ""
"""The cell of a debt scored without an experiment."""

QUALITY_METRICS: tuple[str, ...] = ("auc", "brier", "ece")
CELL_COLUMNS = [
    "cell",
    "debts",
    "share",
    "realised_rate",
    "predicted_rate",
    "net_per_debt",
    "net_ci_low",
    "net_ci_high",
    "expected_net_per_debt",
]
COMPARISON_COLUMNS = [
    "challenger",
    "champion",
    "debts",
    "difference",
    "ci_low",
    "ci_high",
    "lift",
    "t",
    "p_value",
    "boot_ci_low",
    "boot_ci_high",
]


# --- reading the inputs --------------------------------------------------------------------------


def check_scored(
    frame: pd.DataFrame,
    name: str = "the scored file",
    columns: Sequence[str] = SCORED_COLUMNS,
) -> pd.DataFrame:
    """A scored file's rows, typed: its id (the first column), ``columns`` (by default what the
    backtest reads) and the experiment columns it has; bad ones are an error.

    A scored file is recoverscore's own output, so a row that breaks its contract means the
    file is not what it seems, and stops the work in one line.
    """
    if frame.shape[1] == 0:
        raise RecoverscoreError(f"{name} has no columns: not a scored file")
    id_column = str(frame.columns[0])
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise RecoverscoreError(
            f"{name} is not a scored file: it lacks {', '.join(missing)} "
            f"(its id column is taken to be its first, {id_column!r})"
        )
    scored = as_schema(Scored)
    schema = with_id_column(Scored, id_column, ["debtor_id", *columns])
    for column in EXPERIMENT_COLUMNS:
        if column in frame.columns:
            schema = schema.add_columns(
                {column: scored.columns.get(column, _EXPERIMENT_FALLBACK[column])}
            )
    report = validate(frame, schema)
    if not report.is_valid:
        first = report.failures.iloc[0]
        raise RecoverscoreError(
            f"{name}: {len(report.rejected_rows):,} of {report.n_rows:,} rows break the scored "
            f"contract (first: row {first['row']}, {first['column']}: {first['check']}); "
            "give the files recoverscore score wrote"
        )
    return report.valid


def outcomes_contract(id_column: str = "debtor_id") -> pa.DataFrameSchema:
    """The outcomes contract with the id under the scored files' id name."""
    return with_id_column(Outcomes, id_column)


@dataclass(frozen=True)
class Joined:
    """Outcomes matched to the scoring each debt was worked on.

    ``frame``: one row per matched outcome (the id, the scoring's columns, the outcome's, and
    ``tier`` worked, ``predicted`` P(recover) of that tier, ``expected_net`` its expected net
    value, ``net`` = amount recovered minus costs, ``cell``, ``run`` = which scored file).
    ``rejects``: outcome rows not used, with their row number, reasons and cells as given.
    """

    frame: pd.DataFrame
    rejects: pd.DataFrame
    id_column: str
    counts: dict[str, int]


def join_outcomes(
    scored: Sequence[pd.DataFrame], outcomes: pd.DataFrame, names: Sequence[str] | None = None
) -> Joined:
    """Join outcomes to the scored runs (see the module docstring: latest scoring on or before
    the outcome date; the file given last wins a tie). ``names`` label the runs in errors."""
    if not scored:
        raise RecoverscoreError("give at least one scored file")
    names = (
        list(names) if names is not None else [f"scored file {i + 1}" for i in range(len(scored))]
    )
    runs = [check_scored(frame, name) for frame, name in zip(scored, names, strict=True)]
    id_column = str(runs[0].columns[0])
    other = [n for run, n in zip(runs, names, strict=True) if run.columns[0] != id_column]
    if other:
        raise RecoverscoreError(
            f"the scored files name their id column differently ({id_column!r} in {names[0]}, "
            f"not in {', '.join(other)}): give the runs of one model"
        )
    report = validate(outcomes, outcomes_contract(id_column))
    whole = report.failures[report.failures["row"].isna()]
    if not whole.empty:
        raise RecoverscoreError(
            f"the outcomes lack {', '.join(whole['column'].astype(str))} (the id column is "
            f"{id_column!r}, as in the scored files)"
        )
    scorings = _latest_first(runs, id_column)
    kept = [id_column, *(c for c in Outcomes.to_schema().columns if c != "debtor_id")]
    valid = report.valid.reindex(columns=[c for c in kept if c in report.valid.columns])
    valid = valid.rename_axis("row").reset_index().astype({id_column: object})
    matched = pd.merge_asof(
        valid.sort_values("outcome_date", kind="stable"),
        scorings.sort_values("as_of", kind="stable"),
        left_on="outcome_date",
        right_on="as_of",
        by=id_column,
        direction="backward",
    )
    known = matched[id_column].isin(scorings[id_column])
    unscored = matched["as_of"].isna()
    tier = matched.get("given_tier", pd.Series(pd.NA, index=matched.index, dtype="string"))
    tier = tier.astype("string").fillna(matched["recommended_tier"].astype("string"))
    untiered = ~unscored & tier.isna()
    reasons = pd.concat(
        [
            report.row_failures(),
            _reasons(matched, unscored & ~known, f"{id_column}: not among the scored debts"),
            _reasons(matched, unscored & known, "outcome_date: no scoring on or before it"),
            _reasons(matched, untiered, "recommended_tier: none, and no given_tier"),
        ],
        ignore_index=True,
    )
    used = matched[~unscored & ~untiered].assign(tier=tier[~unscored & ~untiered])
    if used.empty:
        raise RecoverscoreError(
            f"none of the {report.n_rows:,} outcomes matches a debt scored on or before its "
            f"outcome date (id column {id_column!r}): are these the outcomes of these scored files?"
        )
    frame = _derived(used.sort_values("row", kind="stable").reset_index(drop=True))
    counts = {
        "outcomes_in": report.n_rows,
        "matched": len(frame),
        "rejected": int(reasons["row"].nunique()),
        "runs": len(runs),
        "scored_rows": int(sum(len(r) for r in runs)),
        "scored_debts": int(scorings[id_column].nunique()),
        "scored_without_outcome": int(
            (~scorings[id_column].drop_duplicates().isin(frame[id_column])).sum()
        ),
        "scored_in_several_runs": int(frame[id_column].isin(_repeated(scorings, id_column)).sum()),
    }
    return Joined(frame, _rejects(outcomes, reasons), id_column, counts)


def _latest_first(runs: list[pd.DataFrame], id_column: str) -> pd.DataFrame:
    """Every scoring of every debt, one per debt and date: a later file replaces an earlier
    one's scoring of the same debt on the same date."""
    columns = [id_column, *SCORED_COLUMNS, *EXPERIMENT_COLUMNS]
    frames = [
        run.reindex(columns=[c for c in columns if c in run.columns]).assign(run=k)
        for k, run in enumerate(runs)
    ]
    every = pd.concat(frames, ignore_index=True)
    every[id_column] = every[id_column].astype(object)  # hashed lookups (Arrow's isin loops)
    every = every.sort_values([id_column, "as_of", "run"], kind="stable")
    return every.drop_duplicates([id_column, "as_of"], keep="last").reset_index(drop=True)


def _repeated(scorings: pd.DataFrame, id_column: str) -> pd.Series:
    counts = scorings[id_column].value_counts()
    return pd.Series(counts.index[counts > 1])


def _reasons(frame: pd.DataFrame, mask: pd.Series, text: str) -> pd.DataFrame:
    return pd.DataFrame({"row": frame.loc[mask, "row"].astype(int), "failed_checks": text})


def _rejects(outcomes: pd.DataFrame, reasons: pd.DataFrame) -> pd.DataFrame:
    """Rejected outcome rows as given (text), with their 1-based row and every reason."""
    text = reasons.groupby("row")["failed_checks"].agg("; ".join)
    rows = text.index.to_numpy(dtype=np.int64)
    out = outcomes.reset_index(drop=True).iloc[rows - 1].astype("string").reset_index(drop=True)
    out.insert(0, "failed_checks", text.to_numpy())
    out.insert(0, "row", rows)
    return out


def _derived(frame: pd.DataFrame) -> pd.DataFrame:
    """The columns every report reads: tier worked, its prediction and value, net, cell."""
    n = len(frame)
    codes = tier_codes(frame["tier"].to_numpy(dtype=object))
    p = frame[[probability_column(t) for t in TIERS]].to_numpy(dtype=float)
    ev = frame[[value_column(t) for t in TIERS]].to_numpy(dtype=float)
    cell = frame["cell"] if "cell" in frame.columns else pd.Series(NO_CELL, index=frame.index)
    return frame.assign(
        tier=frame["tier"].astype(str),
        predicted=p[np.arange(n), codes],
        expected_net=ev[np.arange(n), codes],
        net=frame["amount_recovered"].to_numpy(dtype=float) - frame["costs"].to_numpy(dtype=float),
        recovered=frame["recovered"].astype(bool),
        cell=cell.astype("string").fillna(NO_CELL).astype(str),
    )


# --- statistics ----------------------------------------------------------------------------------


def bernoulli_z(recovered: np.ndarray, predicted: np.ndarray) -> tuple[float, float]:
    """How far the recoveries are from what the probabilities predict: (z, two-sided p-value).

    ``z = (sum y - sum p) / sqrt(sum p (1 - p))``: under the model, recoveries are independent
    Bernoulli draws with these probabilities, so the count has that mean and variance.
    """
    y = np.asarray(recovered, dtype=float)
    p = np.asarray(predicted, dtype=float)
    variance = float(np.sum(p * (1 - p)))
    if variance <= 0:
        return float("nan"), float("nan")
    z = float((y.sum() - p.sum()) / np.sqrt(variance))
    return z, float(2 * stats.norm.sf(abs(z)))


def _rate_interval(recovered: np.ndarray, confidence: float) -> tuple[float, float]:
    result = stats.binomtest(int(np.sum(recovered)), len(recovered))
    interval = result.proportion_ci(confidence, method="wilson")
    return float(interval.low), float(interval.high)


def by_tier(frame: pd.DataFrame, confidence: float = 0.95) -> pd.DataFrame:
    """Per tier worked: realised against predicted recovery (with the z test), and net."""
    rows = []
    for tier in TIERS:
        part = frame[frame["tier"] == tier]
        if part.empty:
            continue
        y, p = part["recovered"].to_numpy(), part["predicted"].to_numpy()
        z, p_value = bernoulli_z(y, p)
        low, high = _rate_interval(y, confidence)
        rows.append(
            {
                "tier": tier,
                "debts": len(part),
                "share": len(part) / len(frame),
                "realised_rate": y.mean(),
                "rate_ci_low": low,
                "rate_ci_high": high,
                "predicted_rate": p.mean(),
                "realised_over_predicted": y.mean() / p.mean() if p.mean() > 0 else np.nan,
                "z": z,
                "p_value": p_value,
                "realised_net_per_debt": part["net"].mean(),
                "expected_net_per_debt": part["expected_net"].mean(),
            }
        )
    return pd.DataFrame(rows).set_index("tier")


@dataclass(frozen=True)
class CalibrationTest:
    """Observed against predicted recoveries by score decile: chi-square with ``df`` groups."""

    statistic: float
    df: int
    p_value: float
    largest_gap: float  # the largest |realised - predicted| rate over the groups


def by_decile(frame: pd.DataFrame, groups: int = 10) -> tuple[pd.DataFrame, CalibrationTest]:
    """Deciles of the predicted probability (1 = highest), realised against predicted, and the
    Hosmer-Lemeshow-type test over them (see the module docstring)."""
    p = frame["predicted"].to_numpy(dtype=float)
    y = frame["recovered"].to_numpy(dtype=float)
    order = np.argsort(-p, kind="stable")
    rows = []
    for k, part in enumerate(np.array_split(order, min(groups, len(p))), start=1):
        z, p_value = bernoulli_z(y[part], p[part])
        rows.append(
            {
                "decile": k,
                "debts": len(part),
                "predicted_rate": p[part].mean(),
                "realised_rate": y[part].mean(),
                "z": z,
                "p_value": p_value,
            }
        )
    table = pd.DataFrame(rows).set_index("decile")
    tested = table["z"].dropna()
    statistic = float((tested**2).sum())
    test = CalibrationTest(
        statistic=statistic,
        df=len(tested),
        p_value=float(stats.chi2.sf(statistic, len(tested))) if len(tested) else float("nan"),
        largest_gap=float((table["realised_rate"] - table["predicted_rate"]).abs().max()),
    )
    return table, test


def mean_interval(values: np.ndarray, confidence: float = 0.95) -> tuple[float, float]:
    """The t-interval of a mean (NaN with fewer than two values)."""
    values = np.asarray(values, dtype=float)
    if len(values) < 2:
        return float("nan"), float("nan")
    interval = stats.ttest_1samp(values, 0.0).confidence_interval(confidence)
    return float(interval.low), float(interval.high)


def by_cell(frame: pd.DataFrame, confidence: float = 0.95) -> pd.DataFrame:
    """Per experiment cell: debts, recovery, and realised net per debtor with its interval."""
    rows = []
    for cell, part in frame.groupby("cell", sort=True):
        low, high = mean_interval(part["net"].to_numpy(), confidence)
        rows.append(
            {
                "cell": cell,
                "debts": len(part),
                "share": len(part) / len(frame),
                "realised_rate": part["recovered"].mean(),
                "predicted_rate": part["predicted"].mean(),
                "net_per_debt": part["net"].mean(),
                "net_ci_low": low,
                "net_ci_high": high,
                "expected_net_per_debt": part["expected_net"].mean(),
            }
        )
    return pd.DataFrame(rows, columns=CELL_COLUMNS).set_index("cell")


def compare_cells(
    frame: pd.DataFrame,
    champion: str = "champion",
    confidence: float = 0.95,
    resamples: int = 1000,
    seed: int = 0,
) -> pd.DataFrame:
    """Each challenger cell's realised net per debtor against the champion cell's.

    ``difference`` = challenger mean - champion mean, its Welch interval and p-value
    (``scipy.stats.ttest_ind``, unequal variances), ``lift`` = difference / champion mean, and
    with ``resamples`` > 0 a percentile bootstrap interval of the difference beside them.
    """
    base = frame.loc[frame["cell"] == champion, "net"].to_numpy(dtype=float)
    rng = np.random.default_rng(seed)
    rows = []
    for cell in sorted(set(frame["cell"]) - {champion}):
        other = frame.loc[frame["cell"] == cell, "net"].to_numpy(dtype=float)
        row = {"challenger": cell, "champion": champion, "debts": len(other)}
        row |= {k: np.nan for k in ("difference", "ci_low", "ci_high", "lift", "t", "p_value")}
        row |= {"boot_ci_low": np.nan, "boot_ci_high": np.nan}
        if len(other) >= 2 and len(base) >= 2:
            test = stats.ttest_ind(other, base, equal_var=False)
            interval = test.confidence_interval(confidence)
            difference = other.mean() - base.mean()
            row |= {
                "difference": difference,
                "ci_low": float(interval.low),
                "ci_high": float(interval.high),
                "lift": difference / base.mean() if base.mean() != 0 else np.nan,
                "t": float(test.statistic),
                "p_value": float(test.pvalue),
            }
            if resamples > 0:
                row["boot_ci_low"], row["boot_ci_high"] = _bootstrap_difference(
                    other, base, confidence, resamples, rng
                )
        rows.append(row)
    return pd.DataFrame(rows, columns=COMPARISON_COLUMNS).set_index("challenger")


def _bootstrap_difference(
    a: np.ndarray, b: np.ndarray, confidence: float, resamples: int, rng: np.random.Generator
) -> tuple[float, float]:
    """Percentile bootstrap interval of mean(a) - mean(b), each cell resampled on its own, in
    batches that hold about four million resampled debts at a time."""
    result = stats.bootstrap(
        (a, b),
        lambda x, y, axis: x.mean(axis=axis) - y.mean(axis=axis),
        n_resamples=resamples,
        batch=max(1, (1 << 22) // (len(a) + len(b))),
        vectorized=True,
        confidence_level=confidence,
        method="percentile",
        rng=rng,
    )
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def quality(frame: pd.DataFrame, package: ModelPackage | None = None) -> pd.DataFrame:
    """AUC, Brier and ECE on the realised outcomes beside the model's own test figures (from
    the package's metadata, where it has them)."""
    y = frame["recovered"].to_numpy(dtype=int)
    if 0 < y.sum() < len(y):
        realised = binary_metrics(y, frame["predicted"].to_numpy(dtype=float))
    else:  # one class only: no ranking to measure
        realised = {m: np.nan for m in QUALITY_METRICS}
    metadata = package.metadata if package is not None else {}
    return pd.DataFrame(
        {
            "realised": [realised[m] for m in QUALITY_METRICS],
            "training": [float(metadata.get(f"test_{m}", np.nan)) for m in QUALITY_METRICS],
        },
        index=pd.Index(QUALITY_METRICS, name="metric"),
    )


# --- the whole backtest --------------------------------------------------------------------------


@dataclass
class Backtest:
    """A backtest's tables, tests and messages (``joined`` holds ids: never log it)."""

    joined: Joined
    quality: pd.DataFrame
    by_tier: pd.DataFrame
    by_decile: pd.DataFrame
    calibration: CalibrationTest
    by_cell: pd.DataFrame
    comparison: pd.DataFrame
    champion: str
    model_versions: list[str]
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def counts(self) -> dict[str, int]:
        return self.joined.counts

    def figures(self) -> dict[str, Figure]:
        """The plots: calibration on the outcomes, lift by tier and, with cells, their means."""
        frame = self.joined.frame
        figures = {
            "calibration_on_outcomes": calibration_figure(
                frame["recovered"].to_numpy(dtype=int),
                {"model": frame["predicted"].to_numpy(dtype=float)},
                title="Calibration on realised outcomes",
            ),
            "lift_by_tier": lift_figure(self.by_tier),
        }
        if not self.by_cell.empty:
            figures["cells"] = cells_figure(self.by_cell, self.champion)
        return figures

    def metrics(self) -> dict[str, float]:
        """Aggregate figures for a run log (cell names made safe for MLflow keys)."""
        out: dict[str, float] = {f"count_{k}": float(v) for k, v in self.counts.items()}
        for name, row in self.quality.iterrows():
            out[f"realised_{name}"] = row["realised"]
            out[f"training_{name}"] = row["training"]
        out["calibration_chi2"] = self.calibration.statistic
        out["calibration_p_value"] = self.calibration.p_value
        for tier, row in self.by_tier.iterrows():
            out[f"tier_{tier}_realised_rate"] = row["realised_rate"]
            out[f"tier_{tier}_predicted_rate"] = row["predicted_rate"]
            out[f"tier_{tier}_z"] = row["z"]
            out[f"tier_{tier}_net_per_debt"] = row["realised_net_per_debt"]
        for cell, row in self.by_cell.iterrows():
            out[f"cell_{_key(cell)}_net_per_debt"] = row["net_per_debt"]
            out[f"cell_{_key(cell)}_debts"] = row["debts"]
        for cell, row in self.comparison.iterrows():
            out[f"vs_champion_{_key(cell)}_difference"] = row["difference"]
            out[f"vs_champion_{_key(cell)}_p_value"] = row["p_value"]
        out["warnings"] = float(len(self.warnings))
        return {k: float(v) for k, v in out.items() if np.isfinite(v)}


def _key(name: str) -> str:
    return re.sub(r"[^0-9A-Za-z_.\-]", "_", name) or "none"


def run_backtest(
    scored: Sequence[pd.DataFrame],
    outcomes: pd.DataFrame,
    *,
    package: ModelPackage | None = None,
    version: str | None = None,
    names: Sequence[str] | None = None,
    champion: str = "champion",
    alpha: float = 0.01,
    tolerance: float = 0.02,
    confidence: float = 0.95,
    resamples: int = 1000,
    seed: int = 0,
) -> Backtest:
    """Join ``outcomes`` to the ``scored`` runs and report (see the module docstring).

    ``package`` (with its registry ``version``): the model that scored them, for its training
    figures; ``champion``: the cell the challengers are compared with; ``alpha`` and
    ``tolerance``: when a departure is worth a warning; ``resamples``: bootstrap resamples for
    the interval shown beside Welch's (0: none); ``seed`` fixes them.
    """
    _check_settings(alpha, tolerance, confidence, resamples)
    joined = join_outcomes(scored, outcomes, names)
    frame = joined.frame
    versions = sorted(frame["model_version"].astype(str).unique())
    tiers = by_tier(frame, confidence)
    deciles, calibration = by_decile(frame)
    experiment = bool((frame["cell"] != NO_CELL).any())
    cells = by_cell(frame if experiment else frame.iloc[:0], confidence)
    compared = experiment and champion in cells.index
    comparison = compare_cells(
        frame if compared else frame.iloc[:0], champion, confidence, resamples, seed
    )
    result = Backtest(
        joined=joined,
        quality=quality(frame, package),
        by_tier=tiers,
        by_decile=deciles,
        calibration=calibration,
        by_cell=cells,
        comparison=comparison,
        champion=champion,
        model_versions=versions,
    )
    result.warnings.extend(_warnings(result, alpha, tolerance))
    result.notes.extend(_notes(result, package, version, experiment))
    return result


def _check_settings(alpha: float, tolerance: float, confidence: float, resamples: int) -> None:
    if not 0 < alpha < 1:
        raise RecoverscoreError(f"alpha must be between 0 and 1, got {alpha}")
    if not 0 <= tolerance < 1:
        raise RecoverscoreError(f"tolerance must be in [0, 1), got {tolerance}")
    if not 0 < confidence < 1:
        raise RecoverscoreError(f"confidence must be between 0 and 1, got {confidence}")
    if resamples < 0:
        raise RecoverscoreError(f"resamples must be at least 0, got {resamples}")


def _warnings(result: Backtest, alpha: float, tolerance: float) -> list[str]:
    """Departures beyond chance (p below alpha, Bonferroni over tiers) and beyond tolerance."""
    out = []
    test = result.calibration
    if test.p_value < alpha and test.largest_gap >= tolerance:
        out.append(
            f"calibration: realised recovery departs from the predictions by score decile "
            f"(chi-square {test.statistic:.1f} on {test.df} deciles, p = {test.p_value:.2g}; "
            f"largest gap {test.largest_gap:.3f}): the model's probabilities no longer mean "
            "what they say; retrain it on recent outcomes"
        )
    tested = result.by_tier.dropna(subset=["p_value"])
    for tier, row in tested.iterrows():
        gap = row["realised_rate"] - row["predicted_rate"]
        if row["p_value"] < alpha / len(tested) and abs(gap) >= tolerance:
            out.append(
                f"{tier_names('en')[tier]}: realised recovery {row['realised_rate']:.3f} against "
                f"{row['predicted_rate']:.3f} predicted on {int(row['debts']):,} debts "
                f"(z = {row['z']:.1f}): the tier works {'better' if gap > 0 else 'worse'} than "
                "the model thinks, so its recommendations of it are mispriced"
            )
    return out


def _notes(
    result: Backtest, package: ModelPackage | None, version: str | None, experiment: bool
) -> list[str]:
    notes = []
    if len(result.model_versions) > 1:
        notes.append(
            f"the debts were scored by {len(result.model_versions)} model versions "
            f"({', '.join(result.model_versions)}); the figures pool them"
        )
    if package is not None:
        label = version or package.label
        if label not in result.model_versions:
            notes.append(
                f"the model given ({label}) did not score these debts "
                f"({', '.join(result.model_versions)}): its training figures may not apply"
            )
    if not experiment:
        notes.append("no experiment cells in the scored files: no cell comparison")
    elif result.champion not in result.by_cell.index:
        notes.append(
            f"no cell is named {result.champion!r}: the cells are described but not compared "
            f"(cells: {', '.join(result.by_cell.index)})"
        )
    for cell, row in result.comparison.iterrows():
        if np.isnan(row["p_value"]):
            notes.append(f"cell {cell}: too few debts to compare with the champion")
            continue
        if np.isnan(row["boot_ci_low"]):
            continue
        welch = row["ci_low"] <= 0 <= row["ci_high"]
        boot = row["boot_ci_low"] <= 0 <= row["boot_ci_high"]
        if welch != boot:
            notes.append(
                f"cell {cell}: Welch's and the bootstrap interval disagree on whether the "
                "difference could be zero: the cells are too small or too skewed to trust either"
            )
    return notes


# --- plots ---------------------------------------------------------------------------------------


def lift_figure(table: pd.DataFrame) -> Figure:
    """Realised recovery of each tier worked (with its 95% interval) beside the model's mean
    prediction for the same debts."""
    fig = Figure(figsize=(6.5, 4.2))
    ax = fig.subplots()
    x = np.arange(len(table))
    realised = table["realised_rate"].to_numpy()
    errors = np.vstack([realised - table["rate_ci_low"], table["rate_ci_high"] - realised])
    ax.bar(x - 0.2, realised, width=0.4, yerr=errors, capsize=3, label="realised")
    ax.bar(x + 0.2, table["predicted_rate"], width=0.4, label="predicted by the model")
    ax.set_xticks(x, [tier_names("en").get(t, t) for t in table.index])
    ax.set(ylabel="recovery rate", title="Realised and predicted recovery by tier worked")
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    return fig


def cells_figure(table: pd.DataFrame, champion: str = "champion") -> Figure:
    """Realised net recovery per debtor in each cell with its 95% interval, champion first."""
    order = sorted(table.index, key=lambda c: (c != champion, c))
    table = table.loc[order]
    fig = Figure(figsize=(6.5, 4.2))
    ax = fig.subplots()
    mean = table["net_per_debt"].to_numpy()
    errors = np.vstack([mean - table["net_ci_low"], table["net_ci_high"] - mean])
    colours = ["tab:grey" if c == champion else "tab:blue" for c in table.index]
    ax.bar(np.arange(len(table)), mean, yerr=errors, capsize=4, color=colours)
    labels = [f"{c}\n{int(n):,} debts" for c, n in zip(table.index, table["debts"], strict=True)]
    ax.set_xticks(np.arange(len(table)), labels)
    ax.set(ylabel="realised net recovery per debtor, CNY", title="Experiment cells (95% intervals)")
    fig.tight_layout()
    return fig
