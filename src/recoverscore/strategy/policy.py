"""From recovery probabilities to one legal, worthwhile tier per debtor.

Three steps, each driven by ``configs/policy.yaml``:

1. **Guardrails** remove tiers the law or plain economics rule out (docs/domain.md §4: a
   time-barred debt goes to no court; a disputed or incompletely evidenced one gets no payment
   order; a debtor who cannot be found gets no payment order and no mediation; litigation needs
   something to enforce against, property, wages or a bank balance, and expected recovery above
   its court costs; a disaster grace period allows no court tier). Each rule is a small function
   in ``GUARDRAILS``; the YAML says which tiers it removes and the reason code reported, so a new
   rule touches this registry, one YAML entry and the code's meaning in ``configs/reasons.yaml``.
   **Flags** route a case without removing tiers: care notices (dialect-speaking staff,
   supportive contact) and ``NO_POSITIVE_TIER`` where no allowed tier is worth its cost.
2. **Expected value** of every tier: ``P(recover | x, tier) x principal x recovery share``,
   discounted over the tier's duration, minus the expected costs (handling, court fees,
   commission), with costs from ``configs/costs.yaml``; a lawsuit against a debtor who cannot be
   found is served by public notice, which costs a fee and time.
3. **A rule picks the tier**: the *matrix* (score band x aging bucket, the collectors' way; its
   default is the aging staircase) or the *value* policy (the allowed tier worth the most), the
   latter optionally under per-tier capacity, solved exactly as a linear assignment problem.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import AfterValidator, Field, field_validator, model_validator
from scipy import sparse
from scipy.optimize import linprog

from recoverscore.config import PerTier, StrictModel, Tier, default_config_path, load_config
from recoverscore.data.costs import CostConfig
from recoverscore.data.facts import AGING_BUCKETS, DebtFacts
from recoverscore.data.schemas import TIERS, probability_column, value_column
from recoverscore.errors import RecoverscoreError
from recoverscore.modelling.explain import (
    LANGUAGES,
    SMALL_TEXT_ROWS,
    ReasonTexts,
    Words,
    check_language,
    fill_one,
    fill_text,
    format_amounts,
    load_reasons,
)
from recoverscore.strategy.experiment import Experiment

_TIER_INDEX = {t: i for i, t in enumerate(TIERS)}
_OVERFLOW = 1e12  # CNY: an unsupported tier is used under capacity only when nothing else fits

POLICIES = ("safe", "value", "matrix", "baseline")
"""Decision rules: ``safe`` (the default) departs from the baseline only where the history
supports it; ``value`` picks the best-valued allowed tier; ``matrix`` follows the score x aging
matrix (by default the aging staircase); ``baseline`` keeps what the history's collectors did."""
COURT_TIERS = ("payment_order", "litigation")
CHANNELS: dict[str, str] = {
    "sms": "message",
    "voice_reminder": "call",
    "human_call": "call",
    "letter": "letter",
    "legal_notice_letter": "legal_notice",
}
"""Contact channels and their kind: calls count against the daily limit and the call window; a
legal notice announces court action, so it goes out only where a court tier is still open
(docs/domain.md §4.4)."""
CALL_CHANNELS = frozenset(c for c, kind in CHANNELS.items() if kind == "call")
LEGAL_NOTICE_CHANNELS = frozenset(c for c, kind in CHANNELS.items() if kind == "legal_notice")


# --- guardrails and flags: small rules behind a registry -----------------------------------------


@dataclass(frozen=True)
class Rule:
    """Where a guardrail applies (True: its tiers are removed), from the facts it ``needs``."""

    needs: tuple[str, ...]
    applies: Callable[[Cases, Economics], np.ndarray]


@dataclass(frozen=True)
class Flag:
    """Where a flag applies, from the facts it ``needs``, the economics and the tiers the
    guardrails allow (n x tiers)."""

    needs: tuple[str, ...]
    applies: Callable[[Cases, Economics, np.ndarray], np.ndarray]


GUARDRAILS: dict[str, Rule] = {
    # docs/domain.md §4.1: no court for a time-barred debt (the limitation expiry allows for a
    # disaster's suspension, Civil Code art. 194)
    "time_barred": Rule(("time_barred",), lambda c, e: c.facts.time_barred),
    # §4.2: a payment order needs an undisputed, fully evidenced debt
    "disputed": Rule(("disputed",), lambda c, e: c.facts.disputed),
    "evidence_incomplete": Rule(("evidence_incomplete",), lambda c, e: c.facts.evidence_incomplete),
    # §4.3: enforcement reaches property, wages and bank balances
    "no_attachable_assets": Rule(("has_assets",), lambda c, e: ~e.enforceable),
    # §4.2: a payment order must be served; mediation needs a debtor who can be reached
    "lost_contact": Rule(("lost_contact",), lambda c, e: c.facts.lost_contact),
    "court_costs_exceed_recovery": Rule(
        ("principal",),
        lambda c, e: (
            e.court[:, _TIER_INDEX["litigation"]] > e.recovery[:, _TIER_INDEX["litigation"]]
        ),
    ),
    # §4.8: 30 days' grace from the disaster's date
    "disaster_grace": Rule(("disaster_grace",), lambda c, e: c.facts.disaster_grace),
}
"""Guardrails by name (True where the rule's tiers are removed for that debt)."""

FLAGS: dict[str, Flag] = {
    # §4.8: duties of care, shown as neutral care notices
    "elderly": Flag(("elderly",), lambda c, e, allowed: c.facts.elderly),
    "disaster": Flag(("disaster",), lambda c, e, allowed: c.facts.disaster),
    # nothing allowed is worth its cost: a case for write-off or sale
    "no_positive_tier": Flag(
        ("principal",), lambda c, e, allowed: ~(allowed & (e.value > 0)).any(axis=1)
    ),
}
"""Flags by name (True where the case gets the flag's notice)."""


# --- configuration -------------------------------------------------------------------------------


def _registered(registry: dict[str, Rule], kind: str) -> AfterValidator:
    """A validator that accepts only names with code behind them in ``registry``."""

    def check(value: str) -> str:
        if value not in registry:
            raise ValueError(f"unknown {kind} {value!r}; known: {sorted(registry)}")
        return value

    return AfterValidator(check)


Code = Annotated[str, Field(pattern=r"^[A-Z][A-Z0-9_]*$")]


class GuardrailRule(StrictModel):
    rule: Annotated[str, _registered(GUARDRAILS, "guardrail")]
    code: Code
    excludes: list[Tier] = Field(min_length=1)


class FlagRule(StrictModel):
    rule: Annotated[str, _registered(FLAGS, "flag")]
    code: Code


class Matrix(StrictModel):
    score_tier: Tier
    bands: list[float]
    cells: dict[str, list[Tier]]

    @model_validator(mode="after")
    def _shape(self) -> Matrix:
        if any(not 0 < b < 1 for b in self.bands) or self.bands != sorted(set(self.bands)):
            raise ValueError("bands: increasing probabilities strictly between 0 and 1")
        if set(self.cells) != set(AGING_BUCKETS):
            raise ValueError(f"cells: needs exactly the buckets {list(AGING_BUCKETS)}")
        wrong = [b for b, row in self.cells.items() if len(row) != len(self.bands) + 1]
        if wrong:
            raise ValueError(
                f"cells: buckets {wrong} need {len(self.bands) + 1} tiers (one a band)"
            )
        return self


_CLOCK = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")


class ContactStep(StrictModel):
    day: int = Field(ge=0)
    time: str
    channel: str = Field(min_length=1)

    @field_validator("time")
    @classmethod
    def _clock(cls, value: str) -> str:
        if not _CLOCK.match(value):
            raise ValueError(f"time {value!r} is not HH:MM")
        return value

    @field_validator("channel")
    @classmethod
    def _known_channel(cls, value: str) -> str:
        if value not in CHANNELS:
            raise ValueError(f"unknown channel {value!r}; known: {sorted(CHANNELS)}")
        return value


class Contact(StrictModel):
    """Contact rules: calls a day and the hours calls are allowed, checked at load time; the
    tiers the plan works (``applies_to``)."""

    max_calls_per_day: int = Field(ge=1, le=3)  # the law allows at most 3 a day
    window_start: str = "08:00"
    window_end: str = "22:00"
    applies_to: list[Tier] = Field(min_length=1)
    steps: list[ContactStep] = Field(min_length=1)

    @model_validator(mode="after")
    def _lawful(self) -> Contact:
        for clock in (self.window_start, self.window_end):
            if not _CLOCK.match(clock):
                raise ValueError(f"window {clock!r} is not HH:MM")
        if not ("08:00" <= self.window_start < self.window_end <= "22:00"):
            raise ValueError("the call window must lie within 08:00-22:00")
        calls = [s for s in self.steps if s.channel in CALL_CHANNELS]
        outside = [s.time for s in calls if not self.window_start <= s.time < self.window_end]
        if outside:
            raise ValueError(f"steps: calls at {outside} fall outside the call window")
        per_day = pd.Series([s.day for s in calls]).value_counts()
        if len(per_day) and per_day.max() > self.max_calls_per_day:
            raise ValueError(f"steps: more than {self.max_calls_per_day} calls on one day")
        return self


class Safe(StrictModel):
    """The safe value policy's support threshold (see ``decide``)."""

    min_support: float = Field(gt=0, lt=1)
    code: Code = "LOW_SUPPORT"


class PolicyConfig(StrictModel):
    safe: Safe
    discount_rate: float = Field(ge=0, lt=1)
    recovery_share: PerTier[float]
    guardrails: list[GuardrailRule]
    flags: list[FlagRule] = Field(default_factory=list)
    matrix: Matrix
    capacity: dict[Tier, int | None] = Field(default_factory=dict)
    contact: Contact
    experiment: Experiment | None = None

    @field_validator("experiment")
    @classmethod
    def _known_rules(cls, value: Experiment | None) -> Experiment | None:
        for cell in value.cells if value is not None else []:
            if cell.policy is not None and cell.policy not in POLICIES:
                raise ValueError(
                    f"cells: {cell.name}: unknown policy {cell.policy!r}; known: {list(POLICIES)}"
                )
        return value

    @field_validator("capacity")
    @classmethod
    def _non_negative(cls, value: dict[str, int | None]) -> dict[str, int | None]:
        if any(v is not None and v < 0 for v in value.values()):
            raise ValueError("capacity: counts must be >= 0 (or null for unlimited)")
        return value


def load_policy_config(path: str | Path | None = None) -> PolicyConfig:
    """Load ``configs/policy.yaml`` (or ``path``) into a validated ``PolicyConfig``."""
    return load_config(path or default_config_path("policy.yaml"), PolicyConfig)


# --- the cases and their economics ---------------------------------------------------------------


@dataclass(frozen=True)
class Cases:
    """What the policy weighs for each debt: its facts and P(recover | x, tier) per tier."""

    facts: DebtFacts
    probabilities: np.ndarray  # n x tiers
    index: pd.Index
    support: np.ndarray | None = None  # n x tiers: P(the history's policy gives tier | x)

    @classmethod
    def build(
        cls,
        facts: DebtFacts,
        probabilities: pd.DataFrame,
        support: pd.DataFrame | None = None,
    ) -> Cases:
        """From a batch's facts and its ``p_<tier>`` columns (the model's or the truth), and,
        for the safe policy, the logging policy's P(tier | x) (one column per tier)."""
        columns = [probability_column(t) for t in TIERS]
        if list(probabilities.columns) != columns:  # as tier_probabilities gives them: no copy
            probabilities = probabilities[columns]
        logged = None if support is None else support[list(TIERS)].to_numpy(dtype=float)
        return cls(facts, probabilities.to_numpy(dtype=float), probabilities.index, logged)

    @property
    def n(self) -> int:
        return self.facts.n

    def take(self, rows: np.ndarray) -> Cases:
        """Some of the cases (positions), e.g. one experiment cell's."""
        support = None if self.support is None else self.support[rows]
        return Cases(self.facts.take(rows), self.probabilities[rows], self.index[rows], support)

    def allowed(self, policy: PolicyConfig, costs: CostConfig) -> np.ndarray:
        """The tiers the guardrails allow each debt (n x tiers)."""
        return apply_guardrails(self, economics(self, policy, costs), policy).mask


@dataclass(frozen=True)
class Economics:
    """Per debt and tier (n x tiers): expected recovery, expected cost, expected net value, and
    expected court fees (what the ``court_costs_exceed_recovery`` guardrail weighs); per debt,
    whether enforcement has something to reach (property, wages or a bank balance)."""

    recovery: np.ndarray
    cost: np.ndarray
    value: np.ndarray
    court: np.ndarray
    enforceable: np.ndarray


def economics(cases: Cases, policy: PolicyConfig, costs: CostConfig) -> Economics:
    """Expected money of every tier: discounted expected recovery minus expected creditor cost.

    Handling and the lawyer are paid whatever happens, the commission only on success; the
    prepaid court fees come back from the debtor on success, so they count only on failure; a
    lawsuit against a debtor who cannot be found is served by public notice (its fee, and its
    days before the money comes). Fees are on the claim (principal plus accrued interest where
    the portfolio has it). Needs the principal; facts a file lacks (age, contact, assets,
    income, bank balance) count as absent.
    """
    facts = cases.facts
    principal, claim = facts.principal, facts.claim
    n, k = cases.n, len(TIERS)
    days = facts.days_past_due if facts.days_past_due is not None else np.zeros(n)
    lost = facts.lost_contact if facts.lost_contact is not None else np.zeros(n, dtype=bool)
    property_ = facts.has_assets if facts.has_assets is not None else np.zeros(n, dtype=bool)
    enforceable = costs.enforceable_assets(property_, facts.monthly_income, facts.bank_balance)

    # every (debt, tier) pair at once, debt-major: a few calls on n x tiers values instead of a
    # few per tier (their fixed costs are most of the work for a served request's one debt)
    def each(values: np.ndarray) -> np.ndarray:
        return np.repeat(values, k)

    tiers = np.tile(np.asarray(TIERS, dtype=object), n)
    amount = principal[:, None] * np.array([policy.recovery_share[t] for t in TIERS])
    duration = np.column_stack([np.broadcast_to(costs.duration(t, lost), n) for t in TIERS])
    discount = (1 + policy.discount_rate) ** (-duration / 365.0)
    claims, ages, unreachable, reachable_assets = (
        each(claim),
        each(days),
        each(lost),
        each(enforceable),
    )
    success = costs.incurred(tiers, claims, amount.ravel(), ages, unreachable, reachable_assets)
    failure = costs.incurred(tiers, claims, 0.0, ages, unreachable, reachable_assets)
    court_success = costs.court_fees(tiers, claims, True, reachable_assets, unreachable)
    court_failure = costs.court_fees(tiers, claims, False, reachable_assets, unreachable)
    p = cases.probabilities
    recovery = p * amount * discount
    cost = p * success.reshape(n, k) + (1 - p) * failure.reshape(n, k)
    court = p * court_success.reshape(n, k) + (1 - p) * court_failure.reshape(n, k)
    return Economics(recovery, cost, recovery - cost, court, enforceable)


@dataclass(frozen=True)
class Allowed:
    """Which tiers each debt may get (n x tiers), why the others were removed and which flags
    it carries: as codes (``tier:CODE;tier:CODE``, ``CODE;CODE``; "" when none) and as the
    rules that hit each debt (for the why line's words)."""

    mask: np.ndarray
    excluded: np.ndarray
    flags: np.ndarray
    removed_by: list[tuple[np.ndarray, GuardrailRule]]
    flagged_by: list[tuple[np.ndarray, FlagRule]]


Text = str | pa.Array  # one text for every debt, or one per debt


def _join(parts: list[tuple[np.ndarray, Text]], n: int, separator: str = ";") -> pa.Array:
    """Per debt, the texts of the parts whose mask is true, joined by ``separator``.

    Vectorised in Arrow: present texts get the separator in front, all are concatenated and the
    leading separator is cut off (a Python loop per debt cost more than the tier prediction).
    A few rows (a served request) are joined in Python: each Arrow call has a fixed cost.
    """
    if not parts:
        return pa.array([""] * n, pa.string())
    if n <= SMALL_TEXT_ROWS:
        rows: list[list[str]] = [[] for _ in range(n)]
        for present, text in parts:
            texts = [text] * n if isinstance(text, str) else text.to_pylist()
            for i in np.flatnonzero(present):
                rows[i].append(texts[i])
        return pa.array([separator.join(row) for row in rows], pa.string())
    prefixed = [
        pc.if_else(
            pa.array(np.asarray(present, dtype=bool)),
            pc.binary_join_element_wise(separator, text, ""),
            "",
        )
        for present, text in parts
    ]
    joined = pc.binary_join_element_wise(*prefixed, "")
    return pc.utf8_slice_codeunits(joined, len(separator))


def _objects(texts: pa.Array) -> np.ndarray:
    return texts.to_numpy(zero_copy_only=False)


def apply_guardrails(cases: Cases, econ: Economics, policy: PolicyConfig) -> Allowed:
    """The tiers each debt may get and its flags; rules whose facts the data lack are skipped
    (see ``unchecked_rules``)."""
    n = cases.n
    mask = np.ones((n, len(TIERS)), dtype=bool)
    have = cases.facts.available()
    reasons, removed_by = [], []
    for rule in policy.guardrails:
        if not set(GUARDRAILS[rule.rule].needs) <= have:
            continue
        hit = np.asarray(GUARDRAILS[rule.rule].applies(cases, econ), dtype=bool)
        removed_by.append((hit, rule))
        for tier in rule.excludes:
            mask[hit, _TIER_INDEX[tier]] = False
            reasons.append((hit, f"{tier}:{rule.code}"))
    if not mask.any(axis=1).all():
        raise RecoverscoreError("guardrails in policy.yaml leave some debts no tier at all")
    flagged_by = [
        (np.asarray(FLAGS[f.rule].applies(cases, econ, mask), dtype=bool), f)
        for f in policy.flags
        if set(FLAGS[f.rule].needs) <= have
    ]
    flags = _join([(hit, f.code) for hit, f in flagged_by], n)
    return Allowed(mask, _objects(_join(reasons, n)), _objects(flags), removed_by, flagged_by)


def unchecked_rules(policy: PolicyConfig, facts: set[str]) -> list[str]:
    """Codes of the guardrails and flags that data with only ``facts`` cannot check."""
    return [
        rule.code
        for rule, registry in [(g, GUARDRAILS) for g in policy.guardrails]
        + [(f, FLAGS) for f in policy.flags]
        if not set(registry[rule.rule].needs) <= facts
    ]


def check_texts(policy: PolicyConfig, texts: ReasonTexts) -> None:
    """Every code and contact channel of ``policy`` has its words in ``texts``, in every
    language: a person never reads a bare code."""
    codes = [r.code for r in policy.guardrails] + [f.code for f in policy.flags]
    missing = [code for code in [*codes, policy.safe.code] if code not in texts.codes]
    if missing:
        raise RecoverscoreError(f"reasons.yaml codes: no meaning for {missing} (policy.yaml)")
    channels = {step.channel for step in policy.contact.steps}
    for language in LANGUAGES:
        words = getattr(texts.words, language)
        for key, needed, named in (
            ("contact.channels", channels, words.contact.channels),
            ("policy.rule_names", {"matrix", "baseline"}, words.policy.rule_names),
        ):
            unnamed = sorted(needed - set(named))
            if unnamed:
                raise RecoverscoreError(
                    f"reasons.yaml words.{language}.{key}: no name for {unnamed}"
                )


# --- choosing ------------------------------------------------------------------------------------


def matrix_tiers(cases: Cases, matrix: Matrix) -> np.ndarray:
    """The matrix's pick for each debt, before guardrails (tier indices)."""
    score = cases.probabilities[:, _TIER_INDEX[matrix.score_tier]]
    band = np.searchsorted(np.asarray(matrix.bands), score, side="right")
    table = np.array([[_TIER_INDEX[t] for t in matrix.cells[b]] for b in AGING_BUCKETS])
    if cases.facts.aging_bucket is None:
        raise RecoverscoreError("the matrix policy needs debt ages: the data have no due_date")
    return table[cases.facts.aging_bucket, band]


def fall_back(wanted: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Each wanted tier if allowed, else the nearest allowed tier below it, else above it."""
    order = np.arange(mask.shape[1])
    below = np.where(mask & (order[None, :] <= wanted[:, None]), order[None, :], -1).max(axis=1)
    above = np.where(mask & (order[None, :] > wanted[:, None]), order[None, :], len(order))
    above = above.min(axis=1)
    return np.where(below >= 0, below, above)


def best_allowed(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The allowed tier worth the most for each debt (ties go to the milder tier)."""
    return np.where(mask, values, -np.inf).argmax(axis=1)


def assign_with_capacity(
    values: np.ndarray, mask: np.ndarray, capacity: dict[str, int | None]
) -> np.ndarray:
    """Exact best assignment when some tiers take at most ``capacity[tier]`` debts.

    A transportation problem: maximise total value, one tier a debt, tier totals capped. Its
    constraint matrix is totally unimodular, so the simplex optimum is integral; HiGHS's dual
    simplex returns such a vertex.
    """
    limits = {t: c for t, c in capacity.items() if c is not None}
    if not limits:
        return best_allowed(values, mask)
    n = mask.shape[0]
    rows, cols = np.nonzero(mask)
    m = len(rows)
    one_each = sparse.csr_matrix((np.ones(m), (rows, np.arange(m))), shape=(n, m))
    capped = [_TIER_INDEX[t] for t in limits]
    cap_rows = sparse.vstack(
        [sparse.csr_matrix((cols == j).astype(float)[None, :]) for j in capped]
    )
    result = linprog(
        -values[rows, cols],
        A_ub=cap_rows,
        b_ub=np.array([limits[TIERS[j]] for j in capped]),
        A_eq=one_each,
        b_eq=np.ones(n),
        bounds=(0, 1),
        method="highs-ds",
    )
    if result.status == 2:
        raise RecoverscoreError(
            f"capacity {limits} cannot be met: too few debts may go to the uncapped tiers"
        )
    if result.status != 0:
        raise RecoverscoreError(f"capacity assignment failed: {result.message}")
    chosen = np.full(n, -1)
    picked = result.x > 0.5
    chosen[rows[picked]] = cols[picked]
    if (chosen < 0).any() or not np.allclose(result.x, np.round(result.x), atol=1e-6):
        raise RecoverscoreError("capacity assignment returned a fractional solution")
    return chosen


# --- the decision --------------------------------------------------------------------------------


def baseline_tiers(cases: Cases, policy: PolicyConfig) -> np.ndarray | None:
    """Today's tier for each debt, before guardrails: the history's most frequent tier for
    debts like it (the logging policy), else the matrix's pick; ``None`` when neither is known
    (no logging policy and no debt ages)."""
    if cases.support is not None:
        return cases.support.argmax(axis=1)
    if cases.facts.aging_bucket is not None:
        return matrix_tiers(cases, policy.matrix)
    return None


def _safe(
    cases: Cases,
    econ: Economics,
    mask: np.ndarray,
    policy: PolicyConfig,
    limits: dict[str, int | None],
    wording: _Wording,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The safe value policy: (chosen tiers, tiers ruled out for low support, a note per debt).

    In the spirit of safe policy improvement with baseline bootstrapping (Laroche, Trichelair and
    Tachet des Combes, ICML 2019): an allowed tier other than today's may be chosen only where the
    history gave debts like this one that tier at least ``safe.min_support`` of the time; where
    it did not, the model's value of that tier is extrapolation and today's tier is kept.
    Without a logging policy every tier but today's lacks support.
    """
    n = len(mask)
    baseline = baseline_tiers(cases, policy)
    note = np.full(n, "", dtype=object)
    if baseline is None:  # nothing to stay with: the valued choice, said so
        note[:] = wording.words.policy.no_baseline
        return assign_with_capacity(econ.value, mask, limits), np.zeros_like(mask), note
    today = fall_back(baseline, mask)
    supported = (
        cases.support >= policy.safe.min_support
        if cases.support is not None
        else np.zeros_like(mask)
    )
    supported[np.arange(n), today] = True
    candidates = mask & supported
    capped = np.array([limits.get(t) is not None for t in TIERS])
    if capped.any():  # overflow from a full tier may go to any lawful uncapped one, if it must
        values = np.where(candidates, econ.value, econ.value - _OVERFLOW)
        chosen = assign_with_capacity(values, candidates | (mask & ~capped), limits)
    else:
        chosen = assign_with_capacity(econ.value, candidates, limits)
    low = mask & ~candidates
    low[np.arange(n), chosen] = False
    wanted = best_allowed(econ.value, mask)
    kept = (wanted != chosen) & low[np.arange(n), wanted]
    note[kept] = _objects(
        fill_text(
            wording.words.policy.kept,
            {
                "chosen": pa.array(wording.tiers[chosen[kept]], pa.string()),
                "wanted": pa.array(wording.tiers[wanted[kept]], pa.string()),
            },
            int(kept.sum()),
        )
    )
    return chosen, low, note


@dataclass(frozen=True)
class _Wording:
    """The why line's words in one language: its pieces, tier names, code meanings."""

    words: Words
    tiers: np.ndarray  # tier names in TIERS order
    meaning: dict[str, str]

    @classmethod
    def of(cls, texts: ReasonTexts, language: str) -> _Wording:
        words = getattr(texts.words, language)
        tiers = np.array([words.tier_levels[t] for t in TIERS], dtype=object)
        meaning = {code: getattr(text, language) for code, text in texts.codes.items()}
        return cls(words, tiers, meaning)

    def removed(self, tiers: np.ndarray, code: str) -> pa.Array:
        """Per debt, "no <the tiers marked in ``tiers`` (n x tiers)>: <what ``code`` means>"."""
        n = len(tiers)
        separator = self.words.policy.tier_separator
        names = _join([(tiers[:, j], self.tiers[j]) for j in range(len(TIERS))], n, separator)
        return fill_text(
            self.words.policy.removed, {"tiers": names, "reason": self.meaning[code]}, n
        )

    def removed_all(self, tiers: list[str], code: str) -> str:
        """``removed`` for a rule that takes the same ``tiers`` from every debt it hits: one
        text, worked out once instead of once per debt."""
        separator = self.words.policy.tier_separator
        names = separator.join(self.tiers[j] for j, t in enumerate(TIERS) if t in tiers)
        return fill_one(self.words.policy.removed, {"tiers": names, "reason": self.meaning[code]})


def _why(
    values: np.ndarray,
    mask: np.ndarray,
    removed: list[tuple[np.ndarray, Text]],
    flagged: list[tuple[np.ndarray, FlagRule]],
    note: np.ndarray,
    wording: _Wording,
) -> np.ndarray:
    """One line per debt: the expected net value of each allowed tier, the tiers ``removed`` and
    why, the notices of the flags that apply, and ``note``."""
    n = len(values)
    words = wording.words.policy
    amounts = format_amounts(values.ravel(order="F"), wording.words)
    items = _join(
        [
            (
                mask[:, j],
                fill_text(
                    words.item,
                    {"tier": wording.tiers[j], "amount": amounts[j * n : (j + 1) * n]},
                    n,
                ),
            )
            for j in range(len(TIERS))
        ],
        n,
        words.list_separator,
    )
    notices = _join([(hit, wording.meaning[f.code]) for hit, f in flagged], n, words.list_separator)
    parts = [
        (np.ones(n, dtype=bool), fill_text(words.values, {"items": items}, n)),
        *removed,
        (_objects(notices) != "", fill_text(words.notices, {"items": notices}, n)),
        (note != "", pa.array(note, pa.string())),
    ]
    return _objects(_join(parts, n, words.separator))


def contact_texts(
    tiers: np.ndarray, court_open: np.ndarray, contact: Contact, words: Words
) -> np.ndarray:
    """The contact plan of each debt whose tier it works (``contact.applies_to``), as text; the
    legal notice only where a court tier is open (docs/domain.md §4.4). ``None`` elsewhere."""
    plans = {
        legal: words.contact.separator.join(
            words.contact.step.format(
                day=s.day, time=s.time, channel=words.contact.channels[s.channel]
            )
            for s in _steps(contact, legal)
        )
        for legal in (True, False)
    }
    worked = np.isin(tiers, contact.applies_to)
    return np.where(worked, np.where(court_open, plans[True], plans[False]), None)


def decision_columns(
    cases: Cases,
    policy: PolicyConfig,
    costs: CostConfig,
    rule: str = "safe",
    capacity: dict[str, int | None] | None = None,
    guardrails: bool = True,
    unchecked: list[str] | None = None,
    language: str = "en",
    texts: ReasonTexts | None = None,
) -> dict[str, np.ndarray]:
    """Recommended tier for every debt, with values, exclusions, flags, a why line and the
    contact plan where one applies: ``decide``'s columns as arrays (the scoring pipeline builds
    its output from them without a frame in between).

    ``rule`` is one of ``POLICIES``; ``capacity`` (safe and value rules) overrides the config's;
    ``guardrails=False`` shows what a rule would do without them (the staircase baseline);
    ``unchecked``: guardrail codes the data could not check, named in every why line. The why
    line and the contact plan are in ``language``, worded by ``texts`` (default
    ``configs/reasons.yaml``).
    """
    if rule not in POLICIES:
        raise RecoverscoreError(f"unknown policy {rule!r}; choose one of {list(POLICIES)}")
    check_language(language)
    texts = texts or load_reasons()
    check_texts(policy, texts)
    wording = _Wording.of(texts, language)
    if cases.facts.principal is None:
        return _unvalued(cases.n, wording.words)
    econ = economics(cases, policy, costs)
    allowed = apply_guardrails(cases, econ, policy)
    mask = allowed.mask if guardrails else np.ones_like(allowed.mask)
    excluded = allowed.excluded if guardrails else np.full(len(mask), "", dtype=object)
    note = np.full(len(mask), "", dtype=object)
    removed = [  # why each guardrail's tiers went
        (hit, wording.removed_all(rule.excludes, rule.code))
        for hit, rule in (allowed.removed_by if guardrails else [])
    ]
    court_open = mask[:, [_TIER_INDEX[t] for t in COURT_TIERS]].any(axis=1)  # lawfully (§4.4)
    limits = policy.capacity if capacity is None else capacity
    if rule in ("matrix", "baseline"):
        wanted = (
            matrix_tiers(cases, policy.matrix)
            if rule == "matrix"
            else baseline_tiers(cases, policy)
        )
        if wanted is None:
            raise RecoverscoreError(
                "the baseline policy needs the history's logging policy or debt ages"
            )
        chosen = fall_back(wanted, mask)
        moved = chosen != wanted
        note[moved] = _objects(
            fill_text(
                wording.words.policy.fell_back,
                {
                    "rule": wording.words.policy.rule_names[rule],
                    "wanted": pa.array(wording.tiers[wanted[moved]], pa.string()),
                    "chosen": pa.array(wording.tiers[chosen[moved]], pa.string()),
                },
                int(moved.sum()),
            )
        )
    elif rule == "safe":
        chosen, low, note = _safe(cases, econ, mask, policy, limits, wording)
        code = policy.safe.code
        low_text = _join([(low[:, j], f"{tier}:{code}") for j, tier in enumerate(TIERS)], len(mask))
        excluded = _objects(
            _join(
                [
                    (excluded != "", pa.array(excluded, pa.string())),
                    (_objects(low_text) != "", low_text),
                ],
                len(mask),
            )
        )
        removed.append((low.any(axis=1), wording.removed(low, code)))
        mask = mask & ~low
    else:
        chosen = assign_with_capacity(econ.value, mask, limits)
    if unchecked:
        policy_words = wording.words.policy
        meanings = policy_words.list_separator.join(wording.meaning[c] for c in unchecked)
        note = _append(note, policy_words.unchecked.format(items=meanings), policy_words.separator)
    tiers = np.asarray(TIERS, dtype=object)[chosen]
    return {
        "recommended_tier": tiers,
        "expected_net_value": econ.value[np.arange(len(chosen)), chosen],
        **{value_column(t): econ.value[:, j] for j, t in enumerate(TIERS)},
        "excluded_tiers": excluded,
        "flags": allowed.flags,
        "why": _why(econ.value, mask, removed, allowed.flagged_by, note, wording),
        "contact_plan": contact_texts(tiers, court_open, policy.contact, wording.words),
    }


def decide(
    cases: Cases,
    policy: PolicyConfig,
    costs: CostConfig,
    rule: str = "safe",
    capacity: dict[str, int | None] | None = None,
    guardrails: bool = True,
    unchecked: list[str] | None = None,
    language: str = "en",
    texts: ReasonTexts | None = None,
) -> pd.DataFrame:
    """``decision_columns`` as a frame indexed like the cases (see there for the arguments)."""
    columns = decision_columns(
        cases, policy, costs, rule, capacity, guardrails, unchecked, language, texts
    )
    return pd.DataFrame(columns, index=cases.index)


def _append(notes: np.ndarray, text: str, separator: str) -> np.ndarray:
    """``text`` added to every note (after ``separator`` where a note is already there)."""
    return np.where(notes == "", text, notes + separator + text)


def _unvalued(n: int, words: Words) -> dict[str, np.ndarray]:
    """No tier recommended: without an amount no tier can be weighed against its costs."""
    missing = np.full(n, np.nan)
    return {
        "recommended_tier": np.full(n, None, dtype=object),
        "expected_net_value": missing,
        **{value_column(t): missing for t in TIERS},
        "excluded_tiers": np.full(n, "", dtype=object),
        "flags": np.full(n, "", dtype=object),
        "why": np.full(n, words.policy.unvalued, dtype=object),
        "contact_plan": np.full(n, None, dtype=object),
    }


# --- contact plan --------------------------------------------------------------------------------


def _steps(contact: Contact, legal_notice: bool) -> list[ContactStep]:
    """The plan's steps; without ``legal_notice``, those that announce court action left out."""
    return [s for s in contact.steps if legal_notice or s.channel not in LEGAL_NOTICE_CHANNELS]


def contact_plan(
    debtor_ids: pd.Series,
    start: pd.Timestamp,
    contact: Contact,
    court_open: np.ndarray | None = None,
) -> pd.DataFrame:
    """The reminder schedule for soft-reminder debtors: one row per contact attempt.

    Built from the configured steps, which were checked at load time against the daily call
    limit and the call window; the plan is checked again here, so an unlawful plan is never
    returned. ``court_open``: per debtor, whether a court tier is still allowed; where it is
    not, the legal notice is left out (no threat of action that will not be taken, docs/domain.md
    §4.4). Default: open for all.
    """
    start = pd.Timestamp(start).normalize()
    steps = contact.steps
    offsets = [pd.Timedelta(days=s.day) + pd.Timedelta(s.time + ":00") for s in steps]
    ids = np.repeat(debtor_ids.to_numpy(), len(offsets))
    plan = pd.DataFrame(
        {
            "debtor_id": ids,
            "when": np.tile(
                np.array([start + o for o in offsets], dtype="datetime64[ns]"), len(debtor_ids)
            ),
            "channel": np.tile([s.channel for s in steps], len(debtor_ids)),
        }
    )
    if court_open is not None:
        open_ = np.repeat(np.asarray(court_open, dtype=bool), len(offsets))
        plan = plan[open_ | ~plan["channel"].isin(LEGAL_NOTICE_CHANNELS).to_numpy()]
    calls = plan[plan["channel"].isin(CALL_CHANNELS)]
    clock = calls["when"].dt.strftime("%H:%M")
    if ((clock < contact.window_start) | (clock >= contact.window_end)).any():
        raise RecoverscoreError("contact plan would call outside the allowed hours")
    per_day = calls.groupby(["debtor_id", calls["when"].dt.normalize()]).size()
    if len(per_day) and per_day.max() > contact.max_calls_per_day:
        raise RecoverscoreError("contact plan would exceed the daily call limit")
    return plan.sort_values(["debtor_id", "when"], ignore_index=True)
