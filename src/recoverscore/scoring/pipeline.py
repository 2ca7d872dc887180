"""The scoring pipeline: raw portfolio rows in, one recommendation per debtor out.

``Scorer.score_batch`` is the one function every way of scoring calls: ``recoverscore.score()``
in a notebook, the batch job (local and on Dask workers) and the served MLflow model. For one
batch it

1. fixes each row's decision date (the one ``as_of`` rule, below),
2. validates the rows against the model package's input contract (bad rows become rejects with
   their failed checks, never errors),
3. works out the debt facts once (``DebtFacts``: age, bucket, limitation, assets, contact),
4. builds the model's features from the rows and those facts,
5. predicts P(recover) under every tier from those features,
6. applies the package's guardrails and policy to the facts and probabilities,
7. explains the recommended tier from the same features (``RecoveryModel.contributions``),
8. counts the features and scores for the drift check,

so nothing is computed twice and the answers agree row for row whichever way they are asked.

**The decision date.** ``as_of`` given to the call (``--as-of``, ``score(as_of=...)``, the
serving parameter ``as_of``) is every row's decision date, replacing any ``as_of`` column;
without it each row's own ``as_of`` column is used; without that, today.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from functools import cached_property, lru_cache

import numpy as np
import pandas as pd
import pyarrow as pa

from recoverscore.data.contract import STANDARD_ID
from recoverscore.data.schemas import TIERS, Scored, column_kinds
from recoverscore.errors import RecoverscoreError
from recoverscore.modelling import explain
from recoverscore.scoring.drift import DriftCounter
from recoverscore.scoring.package import ModelPackage
from recoverscore.strategy import policy

OUTPUT_COLUMNS = list(Scored.to_schema().columns)
FAILURE_COLUMNS = ["row", "failed_checks"]  # then the input's own columns, as text
_ARROW_TYPES = {"str": pa.string(), "float": pa.float64(), "date": pa.date32()}


def output_columns(id_column: str = STANDARD_ID) -> list[str]:
    """The scored output's columns, the id under the model's own id column name."""
    return [id_column if c == STANDARD_ID else c for c in OUTPUT_COLUMNS]


def output_schema(id_column: str = STANDARD_ID) -> pa.Schema:
    """Arrow types of the scored output, fixed so every batch and every engine write alike."""
    kinds = column_kinds(Scored)
    return pa.schema(
        [
            (name, _ARROW_TYPES[kinds[c]])
            for name, c in zip(output_columns(id_column), OUTPUT_COLUMNS, strict=True)
        ]
    )


@dataclass(frozen=True)
class ScoringOptions:
    """How to score; the same names in ``score()``, the CLI and the serving parameters.

    as_of: every row's decision date (replaces the rows' ``as_of``); ``None``: the rows' own
        ``as_of`` column, else today.
    policy: the decision rule, ``value`` (expected net value) or ``matrix`` (score band x
        aging bucket).
    explain, top_k, language: SHAP reasons, how many, in ``en`` or ``zh``.
    capacity: per-tier caps for the value policy within each batch (``None``: the package's).
    """

    as_of: pd.Timestamp | None = None
    policy: str = "value"
    explain: bool = True
    top_k: int = 3
    language: str = "en"
    capacity: dict[str, int | None] | None = None

    def __post_init__(self) -> None:
        if self.policy not in policy.POLICIES:
            raise RecoverscoreError(
                f"unknown policy {self.policy!r}; choose one of {list(policy.POLICIES)}"
            )
        if isinstance(self.top_k, bool) or not isinstance(self.top_k, int) or self.top_k < 1:
            raise RecoverscoreError(
                f"top_k must be a whole number, at least 1 (got {self.top_k!r})"
            )
        explain.check_language(self.language)
        if self.as_of is not None:
            object.__setattr__(self, "as_of", pd.Timestamp(self.as_of).normalize())

    def describe(self) -> dict:
        """The options as plain values (for run logs and resume checks)."""
        return {
            "as_of": None if self.as_of is None else str(self.as_of.date()),
            "policy": self.policy,
            "explain": self.explain,
            "top_k": self.top_k,
            "language": self.language,
            "capacity": self.capacity,
        }


def decision_dates(frame: pd.DataFrame, as_of: pd.Timestamp | None) -> pd.DataFrame:
    """``frame`` with its ``as_of`` column set by the one rule (see the module docstring)."""
    if as_of is not None:
        return frame.assign(as_of=as_of)
    if "as_of" in frame.columns:
        return frame
    return frame.assign(as_of=pd.Timestamp.today().normalize())


@dataclass
class Scorer:
    """A model package with the options to score it: what each batch (or worker) needs.

    ``tally``: count the batch (tier mix, checks, decision dates) and its drift, as the batch
    job reports them; ``score()`` and the served model return rows only and skip it.
    """

    package: ModelPackage
    options: ScoringOptions = field(default_factory=ScoringOptions)
    version: str | None = None  # the registry version; ``None``: the package's own label
    tally: bool = True

    @cached_property
    def label(self) -> str:
        """The version label scored rows carry."""
        return self.version or self.package.label

    @cached_property
    def unchecked(self) -> list[str]:
        return self.package.unchecked_rules()

    @property
    def id_column(self) -> str:
        return self.package.contract.id_column

    def score_batch(
        self,
        raw: pd.DataFrame,
        rows: np.ndarray | None = None,
        duplicates: np.ndarray | None = None,
        malformed: pd.DataFrame | None = None,
    ) -> BatchResult:
        """Score one batch of raw rows numbered ``rows`` (default 1..n); bad rows become
        rejects, never errors.

        ``duplicates``: ``id_hashes`` of ids seen more than once in the whole input; every copy
        is rejected, as validation does within one batch. ``malformed``: records the reader
        could not split into columns, as rejects (``row``, ``failed_checks``, ``raw_record``).
        """
        seconds: dict[str, float] = {}
        clock = time.perf_counter()
        rows = np.arange(1, len(raw) + 1) if rows is None else np.asarray(rows, dtype=np.int64)
        frame = decision_dates(raw, self.options.as_of)
        report = self.package.contract.validate(frame, rows=rows)
        failures, valid = report.failures, report.valid
        if duplicates is not None and len(duplicates) and self.id_column in raw.columns:
            failures, valid = _reject_duplicates(
                raw, rows, failures, valid, duplicates, self.id_column
            )
        seconds["validate"] = time.perf_counter() - clock
        scored, counter = self._score_valid(valid, seconds)
        rejects = _rejects(raw, rows, failures, malformed)
        stats = (
            _stats(scored, rejects, failures, len(rows) + _count(malformed)) if self.tally else {}
        )
        if counter is not None:
            stats["drift"] = counter.to_json()
        stats["seconds"] = seconds
        return BatchResult(scored.reset_index(drop=True), rejects, stats)

    def _score_valid(
        self, valid: pd.DataFrame, seconds: dict[str, float]
    ) -> tuple[pd.DataFrame, DriftCounter | None]:
        """Steps 3-8 of the module docstring for rows that passed validation."""
        if valid.empty:  # LightGBM cannot predict zero rows
            return output_schema(self.id_column).empty_table().to_pandas(), None
        clock = time.perf_counter()
        package, options = self.package, self.options
        model = package.model
        facts = model.features_.facts(valid)
        features = model.features_.transform(valid, facts)
        probabilities = model.tier_probabilities(features=features)
        cases = policy.Cases.build(facts, probabilities)
        decision = policy.decide(
            cases,
            package.policy,
            package.costs,
            options.policy,
            options.capacity,
            unchecked=self.unchecked,
        )
        columns = {
            self.id_column: valid[self.id_column],
            "as_of": valid["as_of"],
            **probabilities,
            **decision,
            "model_version": self.label,
            "overrides": ";".join(f"{k} {v}" for k, v in sorted(package.overrides.items())) or None,
            "top_reasons": None,
            "reason_codes": None,
        }
        out = pd.DataFrame({c: columns[c] for c in output_columns(self.id_column)}, valid.index)
        seconds["score"] = seconds.get("score", 0.0) + time.perf_counter() - clock
        clock = time.perf_counter()
        tiers = decision["recommended_tier"].to_numpy(dtype=object)
        explained = pd.notna(tiers) | (model.tier_column is None)  # no tier, nothing to explain
        if options.explain and explained.any():
            text = explain.reasons(
                model,
                features[explained],
                None if model.tier_column is None else tiers[explained],
                options.top_k,
                options.language,
                package.texts,
            )
            out.loc[explained, "top_reasons"] = text["top_reasons"].to_numpy()
            out.loc[explained, "reason_codes"] = text["reason_codes"].to_numpy()
        seconds["explain"] = seconds.get("explain", 0.0) + time.perf_counter() - clock
        counter = None
        if package.reference is not None and self.tally:
            counter = DriftCounter(package.reference).add(features, probabilities)
        return out, counter


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


def _reject_duplicates(
    raw: pd.DataFrame,
    rows: np.ndarray,
    failures: pd.DataFrame,
    valid: pd.DataFrame,
    duplicates: np.ndarray,
    id_column: str,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every copy of an id repeated anywhere in the input fails ``field_uniqueness``."""
    ids = raw[id_column]
    repeated = np.isin(id_hashes(ids), duplicates) & ids.notna().to_numpy()
    if not repeated.any():
        return failures, valid
    extra = pd.DataFrame(
        {
            "row": rows[repeated],
            "column": id_column,
            "check": "field_uniqueness",
            "value": ids[repeated].astype("string").to_numpy(dtype=object),
        }
    )
    failures = (
        pd.concat([failures, extra], ignore_index=True)
        .drop_duplicates(subset=["row", "column", "check"])
        .sort_values(["row", "column"], kind="stable", ignore_index=True)
    )
    return failures, valid.drop(index=rows[repeated], errors="ignore")


def _count(frame: pd.DataFrame | None) -> int:
    return 0 if frame is None else len(frame)


def _rejects(
    raw: pd.DataFrame, rows: np.ndarray, failures: pd.DataFrame, malformed: pd.DataFrame | None
) -> pd.DataFrame:
    """Rejected rows as the input had them (as text), with their row number and failed checks."""
    columns = [*FAILURE_COLUMNS, *raw.columns, "raw_record"]
    if failures.empty and not _count(malformed):  # the usual case, and a served request's
        return _no_rejects(tuple(columns)).copy(deep=False)
    text = failures["column"].astype(str) + ": " + failures["check"].astype(str)
    whole = failures["row"].isna()
    if whole.any():  # a failure of the whole input (a missing column) rejects every row
        checks = pd.Series("; ".join(text[whole]), index=rows)
    else:
        checks = text.groupby(failures["row"].astype(np.int64).to_numpy()).agg("; ".join)
    bad = np.isin(rows, checks.index.to_numpy())
    out = raw.loc[bad].astype("string").reset_index(drop=True)
    out.insert(0, "failed_checks", checks.loc[rows[bad]].to_numpy())
    out.insert(0, "row", rows[bad])
    out["raw_record"] = pd.Series(pd.NA, index=out.index, dtype="string")
    if malformed is not None and len(malformed):
        out = pd.concat([out, malformed], ignore_index=True)
        out = out.sort_values("row", kind="stable", ignore_index=True)
    return out.reindex(columns=columns).astype({c: "string" for c in columns[1:]})


@lru_cache(maxsize=8)
def _no_rejects(columns: tuple[str, ...]) -> pd.DataFrame:
    """The empty rejects table of an input with these columns (built once per input layout)."""
    return pd.DataFrame({c: pd.Series(dtype=np.int64 if c == "row" else "string") for c in columns})


def _stats(
    scored: pd.DataFrame, rejects: pd.DataFrame, failures: pd.DataFrame, rows_in: int
) -> dict:
    by_tier = scored.groupby("recommended_tier")["expected_net_value"].agg(["size", "sum"])
    checks = failures.dropna(subset=["row"])
    per_check = (checks["column"].astype(str) + ": " + checks["check"].astype(str)).value_counts()
    whole = failures[failures["row"].isna()]
    for text in whole["column"].astype(str) + ": " + whole["check"].astype(str):
        per_check[text] = len(rejects)
    malformed = int(rejects["raw_record"].notna().sum())
    if malformed:
        per_check["(record): malformed CSV record"] = malformed
    return {
        "rows_in": rows_in,
        "scored": len(scored),
        "rejected": len(rejects),
        "unrecommended": int(scored["recommended_tier"].isna().sum()),
        "as_of": _date_counts(scored["as_of"]),
        "tiers": {t: int(by_tier["size"].get(t, 0)) for t in TIERS},
        "net_value": {t: float(by_tier["sum"].get(t, 0.0)) for t in TIERS},
        "checks": {k: int(v) for k, v in per_check.items()},
    }


def _date_counts(dates: pd.Series) -> dict[str, int]:
    """Rows per decision date (additive across batches, like every count here)."""
    if dates.empty:
        return {}
    days = pd.to_datetime(dates).dt.strftime("%Y-%m-%d")
    return {day: int(n) for day, n in days.value_counts().items()}


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


def as_package(model: object) -> ModelPackage:
    """A package as given, or a fitted ``RecoveryModel`` packaged with the installed settings."""
    if isinstance(model, ModelPackage):
        return model
    from recoverscore.modelling.model import RecoveryModel

    if isinstance(model, RecoveryModel):
        return ModelPackage.build(model)
    raise RecoverscoreError(
        f"expected a ModelPackage or a fitted RecoveryModel, got {type(model).__name__}"
    )


def score(
    portfolio: pd.DataFrame,
    model: object,
    *,
    as_of: str | pd.Timestamp | None = None,
    policy: str = "value",
    explain: bool = True,
    top_k: int = 3,
    language: str = "en",
    capacity: dict[str, int | None] | None = None,
    version: str | None = None,
) -> pd.DataFrame:
    """Recommend a tier for every debtor of ``portfolio`` and say why.

    ``model``: a ``ModelPackage`` (``registry.load_package``, ``ModelPackage.load``) or a
    fitted ``RecoveryModel`` (packaged with the installed policy, costs and texts). The
    options are those of ``ScoringOptions``. Rows that break the model's input contract are a
    ``RecoverscoreError`` naming the first; ``Scorer.score_batch`` returns them as rejects.
    """
    options = ScoringOptions(
        as_of=None if as_of is None else pd.Timestamp(as_of),
        policy=policy,
        explain=explain,
        top_k=top_k,
        language=language,
        capacity=capacity,
    )
    result = Scorer(as_package(model), options, version, tally=False).score_batch(portfolio)
    if len(result.rejects):
        first = result.rejects.iloc[0]
        raise RecoverscoreError(
            f"{len(result.rejects)} of {len(portfolio)} rows break the model's input contract "
            f"(first: row {first['row']}, {first['failed_checks']}); score them with "
            "Scorer.score_batch to get them back as rejects"
        )
    return result.scored
