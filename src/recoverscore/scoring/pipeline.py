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
6. applies the package's guardrails and policy to the facts and probabilities (the why line and
   the contact plan in the scoring language),
7. explains the recommended tier from the same features (``RecoveryModel.contributions``),
8. counts the features and scores for the drift check,

so nothing is computed twice and the answers agree row for row whichever way they are asked.

**The decision date.** ``as_of`` given to the call (``--as-of``, ``score(as_of=...)``, the
serving parameter ``as_of``) is every row's decision date, replacing any ``as_of`` column;
without it each row's own ``as_of`` column is used; without that, today.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property, lru_cache

import numpy as np
import pandas as pd
import pyarrow as pa

from recoverscore.data.checking import reject_duplicates
from recoverscore.data.contract import STANDARD_ID
from recoverscore.data.parsing import iso_date, text_cells
from recoverscore.data.schemas import TIERS, Scored, column_kinds, tier_codes, value_column
from recoverscore.errors import RecoverscoreError
from recoverscore.modelling import explain
from recoverscore.scoring.drift import DriftCounter
from recoverscore.scoring.package import ModelPackage
from recoverscore.strategy import experiment, policy

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

    as_of: every row's decision date (replaces the rows' ``as_of``), a date or ``YYYY-MM-DD``
        text (nothing else: a guessed format picks the wrong day); ``None``: the rows' own
        ``as_of`` column, else today.
    policy: the decision rule: ``safe`` (the default: the best-valued tier among those the
        history supports for debts like this one, else today's), ``value`` (the best-valued
        allowed tier), ``matrix`` (score band x aging bucket), ``baseline`` (today's tier).
    explain, top_k, language: SHAP reasons, how many, in ``en`` or ``zh``.
    capacity: per-tier caps for the value policy within each batch (``None``: the package's).
    """

    as_of: pd.Timestamp | str | None = None
    policy: str = "safe"
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
            object.__setattr__(self, "as_of", iso_date(self.as_of, "as_of"))

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

    ``challengers``: the packages of experiment cells that name another model (``model:
    challenger``), by that name, loaded at the edge (``registry.load_package``).
    ``tally``: count the batch (tier mix, checks, decision dates) and its drift, as the batch
    job reports them; ``score()`` and the served model return rows only and skip it.
    """

    package: ModelPackage
    options: ScoringOptions = field(default_factory=ScoringOptions)
    version: str | None = None  # the registry version; ``None``: the package's own label
    challengers: dict[str, ModelPackage] = field(default_factory=dict)
    tally: bool = True

    def __post_init__(self) -> None:
        experiment = self.package.policy.experiment
        wanted = {c.model for c in experiment.cells if c.model} if experiment else set()
        missing = sorted(wanted - set(self.challengers))
        if missing:
            raise RecoverscoreError(f"the experiment's model cells need packages for {missing}")

    @cached_property
    def label(self) -> str:
        """The version label scored rows carry."""
        return self.version or self.package.label

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

        ``duplicates``: ``checking.id_hashes`` of ids seen more than once in the whole input;
        every copy is rejected, as validation does within one batch. ``malformed``: records the
        reader could not split into columns, as rejects (``row``, ``failed_checks``,
        ``raw_record``).
        """
        seconds: dict[str, float] = {}
        clock = time.perf_counter()
        rows = np.arange(1, len(raw) + 1) if rows is None else np.asarray(rows, dtype=np.int64)
        frame = decision_dates(raw, self.options.as_of)
        report = self.package.contract.validate(frame, rows=rows)
        failures, valid = report.failures, report.valid
        if duplicates is not None:
            failures, valid = reject_duplicates(
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

    def _strategy(self, cases: policy.Cases, rule: str, capacity: dict | None) -> pd.DataFrame:
        """One strategy's decisions: this package's rule, with ``capacity`` as given."""
        columns = _decisions(self.package, cases, rule, capacity, self.options.language)
        return pd.DataFrame(columns, index=cases.index)

    def _decide(self, cases: policy.Cases, valid: pd.DataFrame) -> Mapping[str, object]:
        """The champion's decisions, or, with an experiment, each cell's (see ``experiment``):
        the decision columns by name."""
        options, settings = self.options, self.package.policy
        design = settings.experiment
        if design is None:  # arrays by name: a frame costs more than one row's policy
            columns = _decisions(
                self.package, cases, options.policy, options.capacity, options.language
            )
            return {
                **columns,
                "cell": None,
                "assignment_propensity": 1.0,
                "champion_tier": columns["recommended_tier"],
            }
        champion = self._strategy(cases, options.policy, options.capacity)
        ids = valid[self.id_column]
        cells = experiment.assign_cells(ids, design)
        limits = settings.capacity if options.capacity is None else options.capacity
        champion_codes = _codes(champion)
        words = getattr(self.package.texts.words, options.language)
        lawful = cases.allowed(settings, self.package.costs)
        court_open = lawful[:, tier_codes(policy.COURT_TIERS)].any(axis=1)
        explorable = lawful & ~_capped(limits)
        none = ~explorable.any(axis=1)  # only capped tiers allowed: exploration keeps today's
        explorable[none, champion_codes[none]] = True
        out = champion.copy()
        choices: list[np.ndarray | None] = [champion_codes]
        assigned = champion_codes.copy()
        for code, cell in enumerate(design.cells, start=1):
            mine = np.flatnonzero(cells == code)
            if cell.explore:
                tiers = experiment.explore_tiers(ids, design.name, explorable)
                choices.append(None)
                assigned[mine] = tiers[mine]
                rows = _explored(champion.iloc[mine], tiers[mine], settings.safe.code, words)
                rows["contact_plan"] = policy.contact_texts(
                    rows["recommended_tier"].to_numpy(), court_open[mine], settings.contact, words
                )
                rows = _tagged(rows, design.name, cell.name, words)
                out.iloc[mine] = rows.to_numpy()
                continue
            decided = self._cell_decisions(cell, cases, valid)
            choices.append(_codes(decided))
            within = decided.iloc[mine]
            if limits:  # each cell keeps its share of each capacity
                within = self._cell_decisions(
                    cell, cases.take(mine), valid.iloc[mine], _share(limits, cell.share)
                )
            assigned[mine] = _codes(within)
            out.iloc[mine] = _tagged(within, design.name, cell.name, words).to_numpy()
        champion_rows = np.flatnonzero(cells == 0)
        if limits and len(champion_rows):
            share = _share(limits, design.champion_share)
            kept = self._strategy(cases.take(champion_rows), options.policy, share)
            assigned[champion_rows] = _codes(kept)
            out.iloc[champion_rows] = kept.to_numpy()
        out["cell"] = np.asarray(design.names, dtype=object)[cells]
        out["assignment_propensity"] = experiment.design_propensity(
            assigned, choices, design.shares, explorable
        )
        out["champion_tier"] = champion["recommended_tier"].to_numpy()
        return out

    def _cell_decisions(
        self,
        cell: experiment.Cell,
        cases: policy.Cases,
        valid: pd.DataFrame,
        capacity: dict | None = None,
    ) -> pd.DataFrame:
        """A challenger cell's decisions: another rule, or another model version's package."""
        rule = cell.policy or self.options.policy
        if cell.model is None:
            return self._strategy(cases, rule, capacity if capacity is not None else {})
        other = self.challengers[cell.model]
        features = other.model.features_.transform(valid, cases.facts)
        support = None if other.logging_policy is None else other.logging_policy.predict(features)
        probabilities = other.model.tier_probabilities(features=features)
        other_cases = policy.Cases.build(cases.facts, probabilities, support)
        columns = _decisions(other, other_cases, rule, capacity or {}, self.options.language)
        return pd.DataFrame(columns, index=cases.index)

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
        support = (
            None if package.logging_policy is None else package.logging_policy.predict(features)
        )
        cases = policy.Cases.build(facts, probabilities, support)
        decision = self._decide(cases, valid)
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
        tiers = np.asarray(decision["recommended_tier"], dtype=object)
        explained = pd.notna(tiers) | (model.tier_column is None)  # no tier, nothing to explain
        if options.explain and explained.any():
            every = explained.all()  # usually: no copy of the features, no masked writes
            text = explain.reasons(
                model,
                features if every else features[explained],
                None if model.tier_column is None else tiers[explained],
                options.top_k,
                options.language,
                package.texts,
            )
            for column in ("top_reasons", "reason_codes"):
                if every:
                    out[column] = text[column].to_numpy()
                else:
                    out.loc[explained, column] = text[column].to_numpy()
        seconds["explain"] = seconds.get("explain", 0.0) + time.perf_counter() - clock
        counter = None
        if package.reference is not None and self.tally:
            counter = DriftCounter(package.reference).add(features, probabilities)
        return out, counter


def _decisions(
    package: ModelPackage,
    cases: policy.Cases,
    rule: str,
    capacity: dict | None,
    language: str,
) -> dict[str, np.ndarray]:
    """A package's decision columns in ``language``, naming the rules this batch's data cannot
    check (its own: an optional column such as ``evidence_complete`` may be absent)."""
    return policy.decision_columns(
        cases,
        package.policy,
        package.costs,
        rule,
        capacity,
        unchecked=policy.unchecked_rules(package.policy, cases.facts.available()),
        language=language,
        texts=package.texts,
    )


def _codes(decision: pd.DataFrame) -> np.ndarray:
    return tier_codes(decision["recommended_tier"].to_numpy(dtype=object))


def _share(limits: dict[str, int | None], share: float) -> dict[str, int | None]:
    """A cell's share of each capacity (rounded down, so the cells never exceed the whole)."""
    return {tier: None if cap is None else int(cap * share) for tier, cap in limits.items()}


def _capped(limits: dict[str, int | None]) -> np.ndarray:
    """Tiers with a capacity limit: exploration leaves them to the deterministic cells."""
    return np.array([limits.get(t) is not None for t in TIERS])


def _tagged(decision: pd.DataFrame, name: str, cell: str, words: explain.Words) -> pd.DataFrame:
    """A cell's decisions with the experiment named at the head of each why line."""
    template = words.policy.experiment
    why = [template.format(name=name, cell=cell, why=w) for w in decision["why"].astype(str)]
    return decision.assign(why=why)


def _explored(
    champion: pd.DataFrame, tiers: np.ndarray, low_support: str, words: explain.Words
) -> pd.DataFrame:
    """Rows of an exploration cell: a tier drawn among the lawful ones, valued as the champion
    values it, and why (exploration is how a tier gains support, so low support rules nothing
    out here)."""
    names = np.asarray(TIERS, dtype=object)[tiers]
    values = champion[[value_column(t) for t in TIERS]].to_numpy()
    policy_words = words.policy
    why = policy_words.explored + policy_words.separator + champion["why"].astype(str)
    excluded = (
        champion["excluded_tiers"]
        .fillna("")
        .map(lambda text: ";".join(e for e in text.split(";") if e and not e.endswith(low_support)))
    )
    return champion.assign(
        recommended_tier=names,
        expected_net_value=values[np.arange(len(tiers)), tiers],
        excluded_tiers=excluded.to_numpy(),
        why=why.to_numpy(),
    )


@dataclass(frozen=True)
class BatchResult:
    """One scored batch: output rows, rejected rows and additive counts (``merge_stats``)."""

    scored: pd.DataFrame
    rejects: pd.DataFrame
    stats: dict


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
    chosen = raw.loc[bad]
    out = pd.DataFrame({c: text_cells(chosen[c]) for c in chosen.columns}).reset_index(drop=True)
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
    flags = scored["flags"].dropna().str.split(";").explode()
    return {
        "rows_in": rows_in,
        "scored": len(scored),
        "rejected": len(rejects),
        "unrecommended": int(scored["recommended_tier"].isna().sum()),
        "as_of": _date_counts(scored["as_of"]),
        "cells": {str(k): int(v) for k, v in scored["cell"].dropna().value_counts().items()},
        "tiers": {t: int(by_tier["size"].get(t, 0)) for t in TIERS},
        "net_value": {t: float(by_tier["sum"].get(t, 0.0)) for t in TIERS},
        "checks": {k: int(v) for k, v in per_check.items()},
        "flags": {k: int(v) for k, v in flags[flags != ""].value_counts().items()},
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
    policy: str = "safe",
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
        as_of=as_of,
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
