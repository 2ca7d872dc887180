"""Scoring a portfolio: validated rows in, one recommendation per debtor out.

``score`` is the one call a notebook needs: the model's probabilities under every tier, the
policy's choice with its guardrails, and the SHAP reasons, in the columns of ``schemas.Scored``.
``score_batch`` is the same work for one batch of a file that may hold bad rows: it never
raises for a row, it splits the batch into scored rows and rejected rows with their reasons,
and counts what a run summary and a drift check need. The batch job, the Dask engine and the
served model all call it, so they agree row for row.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import pandas as pd
import pyarrow as pa

from recoverscore.data.costs import CostConfig, load_costs
from recoverscore.data.schemas import TIERS, Portfolio, Scored, column_kinds, validate
from recoverscore.errors import RecoverscoreError
from recoverscore.modelling import explain
from recoverscore.modelling.model import RecoveryModel
from recoverscore.scoring.drift import DriftCounter
from recoverscore.strategy import policy

OUTPUT_COLUMNS = list(Scored.to_schema().columns)
REJECT_COLUMNS = ["row", "reasons"]  # then the input's own columns, as text
_ARROW_TYPES = {"str": pa.string(), "float": pa.float64(), "date": pa.date32()}


def output_schema() -> pa.Schema:
    """Arrow types of the scored output, fixed so every batch and every engine write alike."""
    kinds = column_kinds(Scored)
    return pa.schema([(name, _ARROW_TYPES[kinds[name]]) for name in OUTPUT_COLUMNS])


@dataclass(frozen=True)
class ScoringOptions:
    """How to score: the decision date, the rule and what to explain.

    as_of: snapshot date for rows (or files) without an ``as_of`` column; when given it also
        overrides the file's column. ``None`` with no column means today.
    rule: ``value`` (expected net value) or ``matrix`` (score band x aging bucket).
    capacity: per-tier caps for the value rule, applied within each batch (``None``: config's).
    """

    as_of: pd.Timestamp | None = None
    rule: str = "value"
    explain: bool = True
    top_k: int = 3
    language: str = "en"
    capacity: dict[str, int | None] | None = None
    model_version: str | None = None

    def __post_init__(self) -> None:
        if self.rule not in policy.POLICIES:
            raise RecoverscoreError(
                f"unknown policy {self.rule!r}; choose one of {policy.POLICIES}"
            )
        if self.top_k < 1:
            raise RecoverscoreError(f"top_k must be at least 1 (got {self.top_k})")
        explain.check_language(self.language)


# What a serving request may set in ``params``, with the defaults batch scoring uses.
SERVING_PARAMS = {"explain": True, "top_k": 3, "language": "en", "policy": "value"}


@dataclass
class Scorer:
    """A model with the settings to score it: what each batch (or Dask worker) needs."""

    model: RecoveryModel
    options: ScoringOptions = field(default_factory=ScoringOptions)
    settings: policy.PolicyConfig = field(default_factory=policy.load_policy_config)
    costs: CostConfig = field(default_factory=load_costs)

    @cached_property
    def texts(self) -> explain.ReasonTexts:
        return explain.load_reasons()

    @cached_property
    def version(self) -> str:
        """The label scored rows carry (hashing the model text costs a few ms: once)."""
        return self.options.model_version or f"sha:{self.model.fingerprint[:12]}"

    def score_valid(
        self, valid: pd.DataFrame, seconds: dict[str, float] | None = None
    ) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Score rows that passed validation: (the ``Scored`` frame, the model's features)."""
        seconds = {} if seconds is None else seconds
        if valid.empty:  # LightGBM cannot predict zero rows
            return output_schema().empty_table().to_pandas(), pd.DataFrame(index=valid.index)
        clock = time.perf_counter()
        features = self.model.features_.transform(valid)
        matrix = self.model.tier_matrix(valid, features)
        cases = policy.Cases.build(valid, matrix, self.settings.limitation_years)
        decision = policy.decide(
            cases, self.settings, self.costs, self.options.rule, self.options.capacity
        )
        out = pd.concat([valid[["debtor_id", "as_of"]], matrix, decision], axis=1)
        out["model_version"] = self.version
        seconds["score"] = seconds.get("score", 0.0) + time.perf_counter() - clock
        clock = time.perf_counter()
        out["top_reasons"] = None
        out["reason_codes"] = None
        if self.options.explain and len(valid):
            text = explain.reasons(
                self.model,
                valid,
                decision["recommended_tier"].to_numpy(),
                self.options.top_k,
                self.options.language,
                self.texts,
            )
            out["top_reasons"] = text["top_reasons"].to_numpy()
            out["reason_codes"] = text["reason_codes"].to_numpy()
        seconds["explain"] = seconds.get("explain", 0.0) + time.perf_counter() - clock
        return out[OUTPUT_COLUMNS], features

    def score_batch(
        self,
        raw: pd.DataFrame,
        rows: np.ndarray,
        duplicates: np.ndarray | None = None,
        malformed: pd.DataFrame | None = None,
    ) -> BatchResult:
        """Score one batch of raw rows numbered ``rows``; bad rows become rejects, never errors.

        ``duplicates``: ``id_hashes`` of ids seen more than once in the whole input; every copy
        is rejected, as ``schemas.validate`` does within one frame. ``malformed``: records the
        reader could not split into columns, as rejects (``row``, ``reasons``, ``raw_record``).
        """
        seconds: dict[str, float] = {}
        clock = time.perf_counter()
        rows = np.asarray(rows, dtype=np.int64)
        frame = raw if self.options.as_of is None else raw.drop(columns="as_of", errors="ignore")
        report = validate(frame, Portfolio, as_of=self.options.as_of or _today(), rows=rows)
        failures, valid = report.failures, report.valid
        if duplicates is not None and len(duplicates) and "debtor_id" in raw.columns:
            ids = raw["debtor_id"]
            repeated = np.isin(id_hashes(ids), duplicates) & ids.notna().to_numpy()
            if repeated.any():
                extra = pd.DataFrame(
                    {
                        "row": rows[repeated],
                        "column": "debtor_id",
                        "check": "field_uniqueness",
                        "value": ids[repeated].astype("string").to_numpy(dtype=object),
                    }
                )
                failures = (
                    pd.concat([failures, extra], ignore_index=True)
                    .drop_duplicates(subset=["row", "column", "check"])
                    .sort_values(["row", "column"], kind="stable", ignore_index=True)
                )
                valid = valid.drop(index=rows[repeated], errors="ignore")
        seconds["validate"] = time.perf_counter() - clock
        scored, features = self.score_valid(valid, seconds)
        rejects = _rejects(raw, rows, failures, malformed)
        stats = _stats(scored, rejects, failures, len(rows) + _count(malformed))
        if self.model.reference_ is not None:
            probabilities = scored[[f"p_{t}" for t in TIERS]]
            stats["drift"] = (
                DriftCounter(self.model.reference_).add(features, probabilities).to_json()
            )
        stats["seconds"] = seconds
        return BatchResult(scored.reset_index(drop=True), rejects, stats)


@dataclass(frozen=True)
class BatchResult:
    """One scored batch: output rows, rejected rows and additive counts (``merge_stats``)."""

    scored: pd.DataFrame
    rejects: pd.DataFrame
    stats: dict


def id_hashes(ids: pd.Series) -> np.ndarray:
    """64-bit hashes of debtor ids as text: 80 MB for 10M ids where a set of strings takes GBs.

    Two different ids share a hash with odds of about n^2 / 2^65 (3e-6 for 10M ids).
    """
    return pd.util.hash_array(ids.astype("string").to_numpy(dtype=object, na_value=""))


def _count(frame: pd.DataFrame | None) -> int:
    return 0 if frame is None else len(frame)


def _today() -> pd.Timestamp:
    return pd.Timestamp.today().normalize()


def _rejects(
    raw: pd.DataFrame, rows: np.ndarray, failures: pd.DataFrame, malformed: pd.DataFrame | None
) -> pd.DataFrame:
    """Rejected rows as the input had them (as text), with their row number and reasons."""
    cells = failures.dropna(subset=["row"])
    reasons = (
        (cells["column"].astype(str) + ": " + cells["check"].astype(str))
        .groupby(cells["row"].astype(np.int64).to_numpy())
        .agg("; ".join)
    )
    bad = np.isin(rows, reasons.index.to_numpy())
    text = raw.loc[bad].astype("string").reset_index(drop=True)
    text.insert(0, "reasons", reasons.loc[rows[bad]].to_numpy())
    text.insert(0, "row", rows[bad])
    text["raw_record"] = pd.Series(pd.NA, index=text.index, dtype="string")
    if malformed is not None and len(malformed):
        text = pd.concat([text, malformed], ignore_index=True)
        text = text.sort_values("row", kind="stable", ignore_index=True)
    columns = [*REJECT_COLUMNS, *raw.columns, "raw_record"]
    return text.reindex(columns=columns).astype({c: "string" for c in columns[1:]})


def _stats(
    scored: pd.DataFrame, rejects: pd.DataFrame, failures: pd.DataFrame, rows_in: int
) -> dict:
    by_tier = scored.groupby("recommended_tier")["expected_net_value"].agg(["size", "sum"])
    checks = failures.dropna(subset=["row"])
    per_check = (checks["column"].astype(str) + ": " + checks["check"].astype(str)).value_counts()
    malformed = int(rejects["raw_record"].notna().sum())
    if malformed:
        per_check["(record): malformed CSV record"] = malformed
    return {
        "rows_in": rows_in,
        "scored": len(scored),
        "rejected": len(rejects),
        "tiers": {t: int(by_tier["size"].get(t, 0)) for t in TIERS},
        "net_value": {t: float(by_tier["sum"].get(t, 0.0)) for t in TIERS},
        "checks": {k: int(v) for k, v in per_check.items()},
    }


def merge_stats(total: dict, part: dict) -> dict:
    """Add one batch's counts into ``total`` (numbers add up, nested dicts key by key)."""
    for key, value in part.items():
        if isinstance(value, dict):
            merge_stats(total.setdefault(key, {}), value)
        elif isinstance(value, list):
            total[key] = (
                (np.asarray(total[key]) + np.asarray(value)).tolist()
                if key in total
                else list(value)
            )
        else:
            total[key] = total.get(key, 0) + value
    return total


def score(
    portfolio: pd.DataFrame,
    model: RecoveryModel,
    as_of: str | pd.Timestamp | None = None,
    rule: str = "value",
    policy_config: policy.PolicyConfig | None = None,
    costs: CostConfig | None = None,
    capacity: dict[str, int | None] | None = None,
    reasons: bool = True,
    top_k: int = 3,
    language: str = "en",
    model_version: str | None = None,
) -> pd.DataFrame:
    """Recommend a tier for every debtor of ``portfolio`` and say why.

    ``as_of`` overrides the file's snapshot date (or supplies it). Rows that break the portfolio
    contract are a ``RecoverscoreError`` here; use ``schemas.validate`` to split them off first,
    or ``Scorer.score_batch`` to get them back as rejects.
    """
    options = ScoringOptions(
        as_of=None if as_of is None else pd.Timestamp(as_of).normalize(),
        rule=rule,
        explain=reasons,
        top_k=top_k,
        language=language,
        capacity=capacity,
        model_version=model_version,
    )
    scorer = Scorer(
        model,
        options,
        policy_config or policy.load_policy_config(),
        costs or load_costs(),
    )
    frame = portfolio if as_of is None else portfolio.drop(columns="as_of", errors="ignore")
    report = validate(frame, Portfolio, as_of=as_of)
    if not report.is_valid:
        first = report.failures.iloc[0]
        raise RecoverscoreError(
            f"{len(report.rejected_rows)} of {report.n_rows} rows break the portfolio contract "
            f"(first: row {first['row']}, {first['column']}: {first['check']}); "
            "split them off with schemas.validate"
        )
    scored, _ = scorer.score_valid(report.valid)
    return Scored.validate(scored.reset_index(drop=True))
