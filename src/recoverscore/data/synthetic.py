"""A synthetic world of delinquent debts whose true recovery probabilities are known.

The generating story, one debt at a time (all parameters in ``configs/synthetic.yaml``):

1. **Who owes.** The debtor is an individual or an enterprise, in a region and an industry. Two
   latent traits are drawn, correlated: *willingness* to pay and *ability* to pay. The collector
   never sees them; every observable column below is drawn from them.
2. **The debt.** The principal is lognormal (enterprises about ten times larger, able debtors were
   lent more). Days past due come from a mixture that fills every aging bucket up to six years.
3. **What ability shows.** Monthly income (individuals), annual revenue and tax status
   (enterprises), the attachable assets: real estate, vehicles, equity holdings, and a bank
   balance where asset investigation found one.
4. **What willingness shows.** Contact status decays with age and rises with willingness;
   willing debtors make partial payments (recently) and acknowledge the debt in writing,
   unwilling ones break promises, dispute and leave the evidence incomplete. A partial payment or
   an acknowledgment restarts the limitation period, so an old debt can be alive and a younger
   one time-barred. Some debtors were hit by a natural disaster in the last weeks; a disaster in
   the period's last six months suspends it (Civil Code art. 194).
5. **Litigation history** with other creditors: lawsuits, judgments, enforcement cases and the
   dishonest-debtor list, more likely for the unwilling and the unable.
6. **The truth.** From the observable row, the world computes the probability that the debtor
   repays within the horizon with no action (``P0``) and the lift ``L`` of each tier, both
   logistic in the row's signals (``SIGNALS``), and ``P(tier) = 1 - (1 - P0)(1 - L(tier))``.
   Soft reminders lift willing, reachable, young debts; mediation lifts the willing but unable
   and supports a disaster-hit debtor; a payment order collapses on a disputed debt and has no
   lift at all where it cannot be served (lost contact) or the evidence is incomplete
   (``no_lift_when``); litigation lifts where enforcement has something to reach: property,
   wages, a bank balance; every lift decays with age; a judicial tier's lift is exactly zero on a
   time-barred debt, so its probability falls back to ``P0``. The truth conditions on the
   observable row only: latent traits reach the outcome through what they make visible. So the
   recorded probability is the best any model of the row can do, and its AUC is a true Bayes
   limit.
7. **What happened.** A legacy policy gives each debt a tier with a known propensity: the aging
   staircase, then the configured *deviations* in order (collectors departing from it on
   observed facts, e.g. escalating large enterprise debts early), then a share of uniform
   exploration. ``legacy_probabilities`` is that policy exactly, so the recorded propensity is
   exact under the whole design; ``record_propensity: false`` leaves it out of the history, as
   in most real collection files. The outcome is drawn from that tier's true probability; a
   recovery returns a Beta-distributed share of the principal; costs follow the court-fee
   schedule and commission rules in ``configs/costs.yaml``. ``draw_outcomes`` is that draw,
   also used for the outcomes of scored debts in the synthetic loop (``scoring.simulate``).

Generation runs in fixed-size chunks, each with its own random stream derived from the seed, so
a seed fixes the data whatever the total size, and memory stays flat for any number of rows.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import Field, field_validator, model_validator

from recoverscore.config import PerTier, StrictModel, Tier, default_config_path, load_config
from recoverscore.data.costs import CostConfig, claim_amount, load_costs
from recoverscore.data.facts import ASSET_COLUMNS, days_past_due, is_time_barred
from recoverscore.data.schemas import (
    TIERS,
    Portfolio,
    SyntheticHistory,
    tier_codes,
    true_probability_column,
)

SIGNALS: tuple[str, ...] = (
    "age",  # log(1 + days past due / 30)
    "lost",  # contact lost
    "intermittent",  # contact intermittent
    "disputed",  # the debtor disputes the debt
    "recent_payment",  # exp(-days since last partial payment / 90), 0 if none
    "partial_payments",  # partial payments, capped at 5
    "broken_promises",  # broken promises to pay, capped at 5
    "assets",  # number of attachable asset kinds (real estate, vehicle, equity)
    "has_assets",  # any attachable asset
    "capacity",  # log(yearly means to pay / principal), clipped to [-4, 3]
    "wage_cover",  # individuals: share of the principal a year of withheld wages covers, <= 1
    "bank_cover",  # share of the principal the known bank balance covers, <= 1 (0 if unknown)
    "evidence_gap",  # the file says the evidence is incomplete
    "enterprise",  # the debtor is an enterprise
    "dishonest",  # on the dishonest-judgment-debtor list
    "judgments",  # prior judgments as defendant, capped at 3
    "elderly",  # elderly individual
    "disaster",  # hit by a natural disaster
    "log_principal",  # log(principal / 10,000)
)
"""Signals of the observable row that the truth is logistic in."""


# --- configuration ------------------------------------------------------------------------------


class Population(StrictModel):
    enterprise_share: float = Field(ge=0, le=1)
    elderly_share: float = Field(ge=0, le=1)
    latent_correlation: float = Field(ge=-1, le=1)
    disaster_within_days: int = Field(gt=0)  # a hit debtor was hit up to this many days ago


class Region(StrictModel):
    name: str = Field(min_length=1)
    weight: float = Field(gt=0)
    court_effect: float
    disaster_share: float = Field(ge=0, le=1)


class Industry(StrictModel):
    name: str = Field(min_length=1)
    weight: float = Field(gt=0)
    risk: float


class Lognormal(StrictModel):
    median: float = Field(gt=0)
    sigma: float = Field(ge=0)


class Principal(StrictModel):
    individual: Lognormal
    enterprise: Lognormal
    ability_loading: float


class AgeSegment(StrictModel):
    min: int = Field(ge=0)
    max: int = Field(ge=0)
    weight: float = Field(gt=0)

    @model_validator(mode="after")
    def _ordered(self) -> AgeSegment:
        if self.max < self.min:
            raise ValueError(f"max ({self.max}) is below min ({self.min})")
        return self


class Scaled(StrictModel):
    """A lognormal quantity: median x exp(ability loading x ability + noise x N(0, 1))."""

    median: float = Field(gt=0)
    ability: float
    noise: float = Field(ge=0)


class Logit(StrictModel):
    """Logistic / log-linear link in the latent traits and the debtor type."""

    intercept: float = 0.0
    willingness: float = 0.0
    ability: float = 0.0
    enterprise: float = 0.0


class BankBalance(StrictModel):
    """A bank balance, found by asset investigation for ``known_share`` of the debtors."""

    known_share: float = Field(ge=0, le=1)
    individual: Scaled
    enterprise: Scaled


class AssetLink(StrictModel):
    individual: float
    enterprise: float
    ability: float


class Contact(StrictModel):
    willingness: float
    age: float
    lost_below: float
    intermittent_below: float

    @model_validator(mode="after")
    def _thresholds(self) -> Contact:
        if self.lost_below >= self.intermittent_below:
            raise ValueError("lost_below must be below intermittent_below")
        return self


class Observables(StrictModel):
    monthly_income: Scaled
    revenue_multiple: Scaled
    pays_tax: Logit
    real_estate: AssetLink
    vehicle: AssetLink
    equity: AssetLink
    bank_balance: BankBalance
    contact: Contact
    disputes: Logit
    evidence_complete: Logit
    partial_payments: Logit
    broken_promises: Logit
    acknowledgment: Logit
    lawsuits: Logit
    judgment_rate: float = Field(ge=0, le=1)
    enforcement: Logit
    dishonest: Logit


class Linear(StrictModel):
    """A logit: intercept plus coefficients on named signals (see ``SIGNALS``)."""

    intercept: float
    coefficients: dict[str, float]

    @field_validator("coefficients")
    @classmethod
    def _known_signals(cls, value: dict[str, float]) -> dict[str, float]:
        unknown = sorted(set(value) - set(SIGNALS))
        if unknown:
            raise ValueError(f"unknown signal(s) {unknown}; allowed: {list(SIGNALS)}")
        return value


class TierTruth(Linear):
    """A tier's lift; ``judicial`` tiers add the region's court effect and lift nothing on a
    time-barred debt, and no tier lifts anything where a signal in ``no_lift_when`` is set."""

    judicial: bool
    no_lift_when: list[str] = Field(default_factory=list)

    @field_validator("no_lift_when")
    @classmethod
    def _known(cls, value: list[str]) -> list[str]:
        unknown = sorted(set(value) - set(SIGNALS))
        if unknown:
            raise ValueError(f"unknown signal(s) {unknown}; allowed: {list(SIGNALS)}")
        return value


class Capacity(StrictModel):
    income_share: float = Field(gt=0, le=1)  # share of income available for repayment
    revenue_margin: float = Field(gt=0, le=1)  # share of revenue available for repayment


class Truth(StrictModel):
    capacity: Capacity
    voluntary: Linear
    tiers: PerTier[TierTruth]


class Step(StrictModel):
    max_days: int | None = Field(default=None, ge=0)
    tier: Tier


class When(StrictModel):
    """Observed facts a deviation looks at; it applies where every fact given holds.

    ``tiers`` is the tier the debt holds when the rule is reached (the staircase's, or an
    earlier rule's); ``*_at_least`` and ``days_at_most`` are inclusive, ``principal_below``
    exclusive.
    """

    tiers: list[Tier] | None = Field(default=None, min_length=1)
    debtor_type: list[Literal["individual", "enterprise"]] | None = Field(
        default=None, min_length=1
    )
    contact_status: list[Literal["reachable", "intermittent", "lost"]] | None = Field(
        default=None, min_length=1
    )
    principal_at_least: float | None = Field(default=None, ge=0)
    principal_below: float | None = Field(default=None, gt=0)
    days_at_least: int | None = Field(default=None, ge=0)
    days_at_most: int | None = Field(default=None, ge=0)
    disputes_debt: bool | None = None
    has_attachable_asset: bool | None = None


class Deviation(StrictModel):
    """Collectors departing from the staircase where observed facts say so.

    Where ``when`` holds, with ``probability`` the debt moves ``to`` a tier, or ``shift`` steps
    along ``TIERS`` (+1 escalates one tier; the ladder's ends hold).
    """

    name: str = Field(min_length=1)
    when: When = When()
    to: Tier | None = None
    shift: int | None = None
    probability: float = Field(gt=0, le=1)

    @model_validator(mode="after")
    def _one_move(self) -> Deviation:
        if (self.to is None) == (self.shift is None):
            raise ValueError("give exactly one of to (a tier) or shift (steps along TIERS)")
        if self.shift == 0:
            raise ValueError("shift: 0 moves nothing; use +1 to escalate, -1 to de-escalate")
        return self


class LegacyPolicy(StrictModel):
    """The policy that logged the history: staircase, then deviations in order, then
    exploration; ``record_propensity: false`` leaves the propensity out of the history."""

    exploration: float = Field(ge=0, le=1)
    staircase: list[Step] = Field(min_length=1)
    deviations: list[Deviation] = Field(default_factory=list)
    record_propensity: bool = True

    @model_validator(mode="after")
    def _open_last_step(self) -> LegacyPolicy:
        bounds = [s.max_days for s in self.staircase]
        if bounds[-1] is not None or any(b is None for b in bounds[:-1]):
            raise ValueError("staircase: only the last step has max_days null, and it must")
        if bounds[:-1] != sorted(set(bounds[:-1])):
            raise ValueError("staircase: max_days must increase")
        names = [d.name for d in self.deviations]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"deviations: names must be unique; repeated {repeated}")
        return self


class Share(StrictModel):
    mean: float = Field(gt=0, lt=1)
    concentration: float = Field(gt=0)


class SyntheticConfig(StrictModel):
    rows_per_chunk: int = Field(gt=0)
    horizon_days: int = Field(gt=0)
    limitation_years: int = Field(gt=0)
    population: Population
    regions: list[Region] = Field(min_length=1)
    industries: list[Industry] = Field(min_length=1)
    principal: Principal
    days_past_due: list[AgeSegment] = Field(min_length=1)
    observables: Observables
    truth: Truth
    legacy_policy: LegacyPolicy
    recovery_share: PerTier[Share]


def load_synthetic_config(path: str | Path | None = None) -> SyntheticConfig:
    """Load ``configs/synthetic.yaml`` (or ``path``) into a validated ``SyntheticConfig``."""
    return load_config(path or default_config_path("synthetic.yaml"), SyntheticConfig)


# --- the truth: a pure function of the observable row -----------------------------------------


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def signals(frame: pd.DataFrame, truth: Truth) -> pd.DataFrame:
    """The signals of each row that the truth is logistic in (see ``SIGNALS``)."""
    age_days = days_past_due(frame["due_date"], frame["as_of"])
    since_payment = (frame["as_of"] - frame["last_payment_date"]).dt.days.to_numpy(dtype=float)
    asset_flags = frame[["owns_real_estate", "owns_vehicle", "has_equity_holdings"]]
    n_assets = asset_flags.to_numpy(dtype=float).sum(axis=1)
    enterprise = (frame["debtor_type"] == "enterprise").to_numpy()
    principal = frame["principal"].to_numpy(dtype=float)
    means = np.where(
        enterprise,
        frame["annual_revenue"].to_numpy(dtype=float, na_value=np.nan)
        * truth.capacity.revenue_margin,
        12
        * frame["monthly_income"].to_numpy(dtype=float, na_value=np.nan)
        * truth.capacity.income_share,
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        capacity = np.clip(np.log(means / principal), -4.0, 3.0)
    wages = np.where(enterprise, np.nan, means)  # an individual's yearly means are wages
    bank = _optional(frame, "bank_balance", np.nan).to_numpy(dtype=float, na_value=np.nan)
    evidence = _optional(frame, "evidence_complete", pd.NA).astype("boolean")
    contact = frame["contact_status"].to_numpy()
    return pd.DataFrame(
        {
            "age": np.log1p(age_days / 30.0),
            "lost": (contact == "lost").astype(float),
            "intermittent": (contact == "intermittent").astype(float),
            "disputed": frame["disputes_debt"].to_numpy(dtype=float),
            "recent_payment": np.nan_to_num(np.exp(-since_payment / 90.0), nan=0.0),
            "partial_payments": np.minimum(frame["n_partial_payments"].to_numpy(), 5),
            "broken_promises": np.minimum(frame["n_broken_promises"].to_numpy(), 5),
            "assets": n_assets,
            "has_assets": (n_assets > 0).astype(float),
            "capacity": np.nan_to_num(capacity, nan=0.0),
            "wage_cover": np.nan_to_num(np.minimum(wages / principal, 1.0), nan=0.0),
            "bank_cover": np.nan_to_num(np.minimum(bank / principal, 1.0), nan=0.0),
            "evidence_gap": evidence.eq(False).to_numpy(dtype=float, na_value=0.0),
            "enterprise": enterprise.astype(float),
            "dishonest": frame["on_dishonest_list"].to_numpy(dtype=float),
            "judgments": np.minimum(frame["n_prior_judgments"].to_numpy(), 3),
            "elderly": frame["is_elderly"].to_numpy(dtype=float),
            "disaster": frame["disaster_affected"].to_numpy(dtype=float),
            "log_principal": np.log(principal / 10_000.0),
        },
        index=frame.index,
    ).astype(float)


def _optional(frame: pd.DataFrame, column: str, missing: object) -> pd.Series:
    """An optional portfolio column, or ``missing`` everywhere where the frame lacks it."""
    if column in frame.columns:
        return frame[column]
    return pd.Series(missing, index=frame.index, dtype=object)


def _logit(linear: Linear, sig: pd.DataFrame) -> np.ndarray:
    out = np.full(len(sig), linear.intercept)
    for name, coefficient in linear.coefficients.items():
        out += coefficient * sig[name].to_numpy()
    return out


def _effects(frame: pd.DataFrame, config: SyntheticConfig) -> tuple[np.ndarray, np.ndarray]:
    """Industry risk and regional court effect of each row (unknown names count as zero)."""
    risk = frame["industry"].map({i.name: i.risk for i in config.industries})
    court = frame["region"].map({r.name: r.court_effect for r in config.regions})
    return risk.fillna(0.0).to_numpy(dtype=float), court.fillna(0.0).to_numpy(dtype=float)


def _truth(frame: pd.DataFrame, config: SyntheticConfig) -> tuple[np.ndarray, pd.DataFrame]:
    """Voluntary repayment P0 and every tier's P, from one pass over the signals."""
    sig = signals(frame, config.truth)
    risk, court = _effects(frame, config)
    barred = is_time_barred(
        frame["due_date"],
        frame["last_acknowledgment_date"],
        frame["as_of"],
        config.limitation_years,
        frame.get("disaster_date"),
    )
    voluntary = _sigmoid(_logit(config.truth.voluntary, sig) + risk)
    columns = {}
    for tier in TIERS:
        spec = config.truth.tiers[tier]
        lift = _sigmoid(_logit(spec, sig) + (court if spec.judicial else 0.0))
        if spec.judicial:
            lift = np.where(barred, 0.0, lift)
        for name in spec.no_lift_when:
            lift = np.where(sig[name].to_numpy() > 0, 0.0, lift)
        columns[true_probability_column(tier)] = 1.0 - (1.0 - voluntary) * (1.0 - lift)
    return voluntary, pd.DataFrame(columns, index=frame.index)


def voluntary_probability(frame: pd.DataFrame, config: SyntheticConfig) -> np.ndarray:
    """True P(recover within the horizon | row) with no collection action at all."""
    return _truth(frame, config)[0]


def true_probabilities(frame: pd.DataFrame, config: SyntheticConfig) -> pd.DataFrame:
    """True P(recover within the horizon | row, tier) for every tier, one column per tier.

    A pure function of the observable portfolio columns, so tests can move one column and watch
    the truth respond (optional columns a frame lacks count as unknown). A tier's probability is
    ``1 - (1 - P0)(1 - lift)``: it never falls below voluntary repayment, and equals it where the
    tier has no lift (judicial tiers once the debt is time-barred; a payment order that cannot be
    served).
    """
    return _truth(frame, config)[1]


# --- generation ----------------------------------------------------------------------------------


def _choice(rng: np.random.Generator, names: list[str], weights: list[float], n: int) -> np.ndarray:
    p = np.asarray(weights, dtype=float)
    return np.asarray(names, dtype=object)[rng.choice(len(names), size=n, p=p / p.sum())]


def _dates(as_of: np.datetime64, days_before: np.ndarray) -> np.ndarray:
    """``as_of`` minus a number of days, NaT where the number is missing (negative)."""
    out = (as_of - days_before.clip(min=0).astype("timedelta64[D]")).astype("datetime64[ns]")
    return np.where(days_before < 0, np.datetime64("NaT"), out)


class _Debtors:
    """Who owes in one chunk: type, place, and the latent traits everything else is drawn from."""

    def __init__(self, rng: np.random.Generator, n: int, config: SyntheticConfig) -> None:
        pop = config.population
        self.n = n
        self.enterprise = rng.random(n) < pop.enterprise_share
        self.region = _choice(
            rng, [r.name for r in config.regions], [r.weight for r in config.regions], n
        )
        self.industry = _choice(
            rng, [i.name for i in config.industries], [i.weight for i in config.industries], n
        )
        z = rng.standard_normal((n, 2))
        rho = pop.latent_correlation
        self.willing = z[:, 0]
        self.able = rho * z[:, 0] + np.sqrt(1 - rho**2) * z[:, 1]

    def draw(self, rng: np.random.Generator, link: Logit) -> np.ndarray:
        """Bernoulli draws whose log-odds are linear in the traits and the debtor type."""
        return rng.random(self.n) < _sigmoid(self.linear(link))

    def linear(self, link: Logit) -> np.ndarray:
        return (
            link.intercept
            + link.willingness * self.willing
            + link.ability * self.able
            + link.enterprise * self.enterprise
        )


def _debt(rng: np.random.Generator, who: _Debtors, config: SyntheticConfig) -> dict:
    """Principal (lognormal, larger for the able and for enterprises) and days past due."""
    spec = config.principal
    median = np.where(who.enterprise, spec.enterprise.median, spec.individual.median)
    sigma = np.where(who.enterprise, spec.enterprise.sigma, spec.individual.sigma)
    noise = sigma * rng.standard_normal(who.n) + spec.ability_loading * who.able
    principal = np.maximum(np.round(median * np.exp(noise), 2), 100.0)
    segments = config.days_past_due
    weights = np.array([s.weight for s in segments])
    seg = rng.choice(len(segments), size=who.n, p=weights / weights.sum())
    lo = np.array([s.min for s in segments])[seg]
    hi = np.array([s.max for s in segments])[seg]
    return {"principal": principal, "days": rng.integers(lo, hi + 1)}


def _ability(
    rng: np.random.Generator, who: _Debtors, principal: np.ndarray, obs: Observables
) -> dict:
    """What ability shows: income or revenue and tax, and the attachable assets."""
    income, rev = obs.monthly_income, obs.revenue_multiple
    monthly = income.median * np.exp(
        income.ability * who.able + income.noise * rng.standard_normal(who.n)
    )
    revenue = (
        principal
        * rev.median
        * np.exp(rev.ability * who.able + rev.noise * rng.standard_normal(who.n))
    )
    pays_tax = who.draw(rng, obs.pays_tax)

    def asset(link: AssetLink) -> np.ndarray:
        base = np.where(who.enterprise, link.enterprise, link.individual)
        return rng.random(who.n) < _sigmoid(base + link.ability * who.able)

    def scaled(spec: Scaled) -> np.ndarray:
        noise = spec.noise * rng.standard_normal(who.n)
        return spec.median * np.exp(spec.ability * who.able + noise)

    found = rng.random(who.n) < obs.bank_balance.known_share
    balance = np.where(
        who.enterprise, scaled(obs.bank_balance.enterprise), scaled(obs.bank_balance.individual)
    )
    return {
        "owns_real_estate": asset(obs.real_estate),
        "owns_vehicle": asset(obs.vehicle),
        "has_equity_holdings": asset(obs.equity),
        "monthly_income": np.where(who.enterprise, np.nan, np.round(monthly, 0)),
        "annual_revenue": np.where(who.enterprise, np.round(revenue, 0), np.nan),
        "pays_tax": pd.Series(pays_tax, dtype="boolean").where(who.enterprise, pd.NA).array,
        "bank_balance": np.where(found, np.round(balance, 0), np.nan),
    }


def _willingness(
    rng: np.random.Generator, who: _Debtors, days: np.ndarray, obs: Observables
) -> dict:
    """What willingness shows: contact, disputes, evidence, payments, promises, acknowledgments.

    Days are counted back from the as-of date; -1 means the event never happened.
    """
    c = obs.contact
    reach = c.willingness * who.willing + c.age * np.log1p(days / 30.0) + rng.logistic(size=who.n)
    contact = np.where(
        reach < c.lost_below,
        "lost",
        np.where(reach < c.intermittent_below, "intermittent", "reachable"),
    )
    exposure = np.minimum(days, 365) / 365.0  # more time overdue, more chances to pay or promise
    n_paid = rng.poisson(np.exp(who.linear(obs.partial_payments)) * exposure)
    recency = rng.beta(
        1.0, 2.0 + 0.8 * np.clip(who.willing, -1.5, 2.0)
    )  # the willing paid recently
    since_paid = np.where(n_paid > 0, np.minimum((recency * days).astype(int), days - 1), -1)
    n_broken = rng.poisson(np.exp(who.linear(obs.broken_promises)) * exposure)
    acknowledged = (days > 0) & who.draw(rng, obs.acknowledgment)
    since_ack = np.where(acknowledged, (rng.random(who.n) * days).astype(int), -1)
    # the limitation period restarts at the later of an acknowledgment and a partial payment
    both = (since_ack >= 0) & (since_paid >= 0)
    since_interruption = np.where(
        both, np.minimum(since_ack, since_paid), np.maximum(since_ack, since_paid)
    )
    return {
        "contact_status": contact,
        "disputes_debt": who.draw(rng, obs.disputes),
        "evidence_complete": who.draw(rng, obs.evidence_complete),
        "n_partial_payments": n_paid,
        "n_broken_promises": n_broken,
        "since_paid": since_paid,
        "since_interruption": since_interruption,
    }


def _litigation_history(rng: np.random.Generator, who: _Debtors, obs: Observables) -> dict:
    """Lawsuits by other creditors, their judgments, enforcement, and the dishonest list."""
    lawsuits = rng.poisson(np.exp(who.linear(obs.lawsuits)))
    judgments = rng.binomial(lawsuits, obs.judgment_rate)
    enforcements = rng.binomial(judgments, _sigmoid(who.linear(obs.enforcement)))
    return {
        "n_prior_lawsuits": lawsuits,
        "n_prior_judgments": judgments,
        "on_dishonest_list": (enforcements > 0) & who.draw(rng, obs.dishonest),
        "n_prior_enforcements": enforcements,
    }


def _portfolio(
    rng: np.random.Generator,
    start: int,
    n: int,
    as_of: pd.Timestamp,
    config: SyntheticConfig,
    id_prefix: str = "D",
) -> pd.DataFrame:
    """Observable portfolio columns for debts ``start .. start + n - 1``, story step by step."""
    obs = config.observables
    who = _Debtors(rng, n, config)
    debt = _debt(rng, who, config)
    ability = _ability(rng, who, debt["principal"], obs)
    willingness = _willingness(rng, who, debt["days"], obs)
    history = _litigation_history(rng, who, obs)
    elderly = ~who.enterprise & (rng.random(n) < config.population.elderly_share)
    disaster_share = pd.Series(who.region).map({r.name: r.disaster_share for r in config.regions})
    disaster = rng.random(n) < disaster_share.to_numpy(dtype=float)
    since_disaster = rng.integers(0, config.population.disaster_within_days, n)

    day = np.datetime64(as_of.date(), "D")
    numbers = pd.Series(np.arange(start, start + n)).astype(str).str.zfill(9)
    columns = {
        "debtor_id": (id_prefix + numbers).array,
        "as_of": np.full(n, day).astype("datetime64[ns]"),
        "debtor_type": np.where(who.enterprise, "enterprise", "individual"),
        "region": who.region,
        "industry": who.industry,
        "principal": debt["principal"],
        "accrued_interest": np.zeros(n),  # no interest accrues in this world: claim = principal
        "due_date": _dates(day, debt["days"]),
        "last_payment_date": _dates(day, willingness.pop("since_paid")),
        "last_acknowledgment_date": _dates(day, willingness.pop("since_interruption")),
        **willingness,
        **history,
        **ability,
        "is_elderly": elderly,
        "disaster_affected": disaster,
        "disaster_date": _dates(day, np.where(disaster, since_disaster, -1)),
    }
    return pd.DataFrame(columns)[list(Portfolio.to_schema().columns)]


def legacy_tier(days: np.ndarray, policy: LegacyPolicy) -> np.ndarray:
    """The tier the aging staircase gives a debt of this age, before deviations and exploration."""
    bounds = np.array([s.max_days for s in policy.staircase[:-1]])
    tiers = np.array([s.tier for s in policy.staircase], dtype=object)
    return tiers[np.searchsorted(bounds, days, side="left")]


def _deviation_applies(portfolio: pd.DataFrame, when: When) -> np.ndarray:
    """Where a deviation's observed facts hold (its ``tiers`` condition aside)."""
    days = days_past_due(portfolio["due_date"], portfolio["as_of"])
    principal = portfolio["principal"].to_numpy(dtype=float)
    assets = portfolio[["owns_real_estate", "owns_vehicle", "has_equity_holdings"]].any(axis=1)
    facts = {
        "debtor_type": lambda v: portfolio["debtor_type"].isin(v).to_numpy(),
        "contact_status": lambda v: portfolio["contact_status"].isin(v).to_numpy(),
        "principal_at_least": lambda v: principal >= v,
        "principal_below": lambda v: principal < v,
        "days_at_least": lambda v: days >= v,
        "days_at_most": lambda v: days <= v,
        "disputes_debt": lambda v: portfolio["disputes_debt"].to_numpy(dtype=bool) == v,
        "has_attachable_asset": lambda v: assets.to_numpy(dtype=bool) == v,
    }
    holds = np.ones(len(portfolio), dtype=bool)
    for key, value in when:
        if key != "tiers" and value is not None:
            holds &= facts[key](value)
    return holds


def _moves(rule: Deviation) -> tuple[np.ndarray, np.ndarray]:
    """For each tier code: whether the rule looks at it, and where it sends it."""
    codes = np.arange(len(TIERS))
    eligible = np.ones(len(TIERS), dtype=bool)
    if rule.when.tiers is not None:
        eligible = np.isin(codes, tier_codes(rule.when.tiers))
    if rule.to is not None:
        target = np.full(len(TIERS), tier_codes([rule.to])[0])
    else:
        target = np.clip(codes + rule.shift, 0, len(TIERS) - 1)
    return eligible, target


def legacy_probabilities(portfolio: pd.DataFrame, policy: LegacyPolicy) -> pd.DataFrame:
    """P(legacy policy gives tier | row) for every tier: the exact logging policy.

    The staircase tier carries all the mass; each deviation in turn moves ``probability`` of the
    mass held by its eligible tiers, where its facts hold, to its target; exploration then mixes
    in ``exploration / len(TIERS)`` of every tier. This follows the draws of ``_history`` step by
    step, so the propensity recorded there is exact under the whole design.
    """
    days = days_past_due(portfolio["due_date"], portfolio["as_of"])
    n = len(portfolio)
    mass = np.zeros((n, len(TIERS)))
    mass[np.arange(n), tier_codes(legacy_tier(days, policy))] = 1.0
    for rule in policy.deviations:
        eligible, target = _moves(rule)
        moved = mass * (rule.probability * _deviation_applies(portfolio, rule.when))[:, None]
        moved[:, ~eligible] = 0.0
        mass -= moved
        for code in np.flatnonzero(eligible):
            mass[:, target[code]] += moved[:, code]
    mixed = (1 - policy.exploration) * mass + policy.exploration / len(TIERS)
    return pd.DataFrame(mixed, index=portfolio.index, columns=list(TIERS))


def _legacy_decision(
    rng: np.random.Generator, portfolio: pd.DataFrame, policy: LegacyPolicy
) -> tuple[np.ndarray, np.ndarray]:
    """Draw the legacy tier of each debt and its exact propensity (tier names, floats).

    Deviation draws come only when deviations are configured, so a world without them draws
    exactly the numbers it always did.
    """
    n = len(portfolio)
    days = days_past_due(portfolio["due_date"], portfolio["as_of"])
    codes = tier_codes(legacy_tier(days, policy))
    if policy.deviations:
        draws = rng.random((n, len(policy.deviations)))
        for k, rule in enumerate(policy.deviations):
            eligible, target = _moves(rule)
            move = (
                _deviation_applies(portfolio, rule.when)
                & eligible[codes]
                & (draws[:, k] < rule.probability)
            )
            codes = np.where(move, target[codes], codes)
    explore = rng.random(n) < policy.exploration
    codes = np.where(explore, rng.integers(0, len(TIERS), n), codes)
    propensity = legacy_probabilities(portfolio, policy).to_numpy()[np.arange(n), codes]
    return np.asarray(TIERS, dtype=object)[codes], propensity


def _history(
    rng: np.random.Generator, portfolio: pd.DataFrame, config: SyntheticConfig, costs: CostConfig
) -> pd.DataFrame:
    """Add the legacy decision, the truth, and what happened under the given tier."""
    n = len(portfolio)
    given, propensity = _legacy_decision(rng, portfolio, config.legacy_policy)
    truth = true_probabilities(portfolio, config)
    p_given = truth.to_numpy()[np.arange(n), tier_codes(given)]
    outcomes = draw_outcomes(rng, portfolio, given, p_given, config, costs)
    labels = pd.concat(
        [
            pd.DataFrame(
                {"given_tier": given.astype(str), "propensity": propensity}, index=portfolio.index
            ),
            outcomes,
        ],
        axis=1,
    )
    if not config.legacy_policy.record_propensity:
        labels = labels.drop(columns="propensity")
    return pd.concat([portfolio, labels, truth], axis=1)


def _cost_facts(portfolio: pd.DataFrame, costs: CostConfig) -> dict[str, np.ndarray]:
    """What the cost schedules read of each debt: its claim, age, lost contact and whether
    enforcement has something to reach (property, wages, a bank balance)."""
    assets = costs.enforceable_assets(
        portfolio[list(ASSET_COLUMNS)].any(axis=1),
        portfolio["monthly_income"].to_numpy(dtype=float, na_value=np.nan),
        _optional(portfolio, "bank_balance", np.nan).to_numpy(dtype=float, na_value=np.nan),
    )
    return {
        "claim": claim_amount(portfolio["principal"], portfolio.get("accrued_interest")),
        "days_past_due": days_past_due(portfolio["due_date"], portfolio["as_of"]),
        "lost_contact": (portfolio["contact_status"] == "lost").to_numpy(),
        "has_attachable_assets": assets,
    }


def draw_outcomes(
    rng: np.random.Generator,
    portfolio: pd.DataFrame,
    tiers: np.ndarray,
    p_recover: np.ndarray,
    config: SyntheticConfig,
    costs: CostConfig,
) -> pd.DataFrame:
    """What happened to each debt worked in ``tiers``: ``recovered``, ``amount_recovered``,
    ``costs``.

    The world's one outcome draw, used by the histories ``generate`` writes and by the simulated
    outcomes of scored debts (``scoring.simulate``), so both follow the same story: recovered
    with probability ``p_recover`` (the truth of the tier worked), a Beta-distributed share of
    the principal when recovered (``recovery_share``), and the creditor's costs of that tier and
    outcome from ``configs/costs.yaml``.
    """
    n = len(portfolio)
    codes = tier_codes(tiers)
    recovered = rng.random(n) < p_recover
    mean = np.array([config.recovery_share[t].mean for t in TIERS])[codes]
    conc = np.array([config.recovery_share[t].concentration for t in TIERS])[codes]
    share = rng.beta(mean * conc, (1 - mean) * conc)
    principal = portfolio["principal"].to_numpy()
    amount = np.where(recovered, np.maximum(np.round(principal * share, 2), 0.01), 0.0)
    amount = np.minimum(amount, principal)
    incurred = costs.incurred(
        np.asarray(tiers), amount_recovered=amount, **_cost_facts(portfolio, costs)
    )
    return pd.DataFrame(
        {"recovered": recovered, "amount_recovered": amount, "costs": np.round(incurred, 2)},
        index=portfolio.index,
    )


def expected_net_recovery(
    portfolio: pd.DataFrame,
    probabilities: pd.DataFrame,
    config: SyntheticConfig,
    costs: CostConfig,
) -> pd.DataFrame:
    """Expected amount recovered minus costs of each debt under each tier (one column a tier):
    the mean of what ``draw_outcomes`` draws, given the true ``p_true_<tier>`` columns.

    Costs are affine in the amount once the outcome is fixed (the commission is a rate), so the
    expectation is exact up to the cent rounding of the drawn amounts: ``p`` times the net of a
    recovery of the mean share, plus ``1 - p`` times the net of a failure. Undiscounted, like
    realised outcomes (the policy's ``economics`` discounts over each tier's duration).
    """
    facts = _cost_facts(portfolio, costs)
    principal = portfolio["principal"].to_numpy(dtype=float)
    columns = {}
    for tier in TIERS:
        p = probabilities[true_probability_column(tier)].to_numpy(dtype=float)
        amount = principal * config.recovery_share[tier].mean
        success = amount - costs.incurred(tier, amount_recovered=amount, **facts)
        failure = -costs.incurred(tier, amount_recovered=0.0, **facts)
        columns[tier] = p * success + (1 - p) * failure
    return pd.DataFrame(columns, index=portfolio.index)


def generate(
    rows: int,
    seed: int,
    as_of: str | pd.Timestamp,
    config: SyntheticConfig | None = None,
    costs: CostConfig | None = None,
    id_prefix: str = "D",
) -> Iterator[pd.DataFrame]:
    """Yield the synthetic history in chunks of ``config.rows_per_chunk`` rows.

    Chunk ``k`` draws from its own stream seeded by ``(seed, k)``, so the same seed and size
    always give the same rows, and a million rows never sit in memory at once. Ids are
    ``id_prefix`` and a nine-digit row number: another prefix keeps ids apart when worlds are
    put together (a history enlarged by later months' debts).
    """
    if rows < 1:
        raise ValueError("rows must be at least 1")
    config = config or load_synthetic_config()
    costs = costs or load_costs()
    as_of = pd.Timestamp(as_of).normalize()
    for k, start in enumerate(range(0, rows, config.rows_per_chunk)):
        rng = np.random.default_rng([seed, k])
        n = min(config.rows_per_chunk, rows - start)
        yield _history(rng, _portfolio(rng, start, n, as_of, config, id_prefix), config, costs)


def generate_frame(
    rows: int,
    seed: int,
    as_of: str | pd.Timestamp,
    config: SyntheticConfig | None = None,
    costs: CostConfig | None = None,
    id_prefix: str = "D",
) -> pd.DataFrame:
    """The whole synthetic history as one validated-typed DataFrame (for notebooks and tests)."""
    chunks = generate(rows, seed, as_of, config, costs, id_prefix)
    frame = pd.concat(list(chunks), ignore_index=True)
    return frame[[c for c in SyntheticHistory.to_schema().columns if c in frame.columns]]
