"""What collection costs the creditor: court fees by statutory bracket, lawyers, handling and
commission.

All figures come from ``configs/costs.yaml``; this module only knows their shapes. Functions are
vectorised over numpy arrays so the synthetic world and the policy can cost millions of cases.

Court fees are computed on the **claim**: principal plus accrued interest and penalties where the
portfolio has them (``claim_amount``). Who bears them follows the Measures on the Payment of
Litigation Costs: the creditor prepays the acceptance, payment-order and preservation fees and
the loser bears them (art. 29); the enforcement fee is not prepaid (art. 20) and is the judgment
debtor's (art. 38). So the creditor's cost depends on the outcome. **Assumption: the fees are
recovered from the debtor exactly when the debt is recovered.** A recovered case costs the
creditor handling, its lawyer and the commission; a case that fails (lost, or won against a
debtor with nothing to take) costs handling, the lawyer and the prepaid court fees. The
enforcement fee never enters the creditor's cost: it is collected from the debtor on top of the
debt, and nothing is charged when nothing is enforced.

A lawsuit against a debtor who cannot be found is served by public notice, which adds its fee and
its days (docs/domain.md §4.2); enforcement reaches wages and bank balances as well as property
(§4.3, ``enforceable_assets``).
"""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path

import numpy as np
import pandas as pd
from pydantic import Field, field_validator, model_validator

from recoverscore.config import PerTier, StrictModel, default_config_path, load_config
from recoverscore.data.schemas import TIERS, tier_codes

ArrayLike = np.ndarray | float


class Bracket(StrictModel):
    up_to: float | None = Field(default=None, gt=0)
    rate: float = Field(ge=0, le=1)


class BracketSchedule(StrictModel):
    """A flat fee for the first ``flat_up_to`` of the amount, then a rate on each further part."""

    flat: float = Field(ge=0)
    flat_up_to: float = Field(gt=0)
    brackets: list[Bracket] = Field(min_length=1)
    cap: float | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _ordered(self) -> BracketSchedule:
        bounds = [self.flat_up_to] + [b.up_to for b in self.brackets]
        if any(b is None for b in bounds[:-1]):
            raise ValueError("brackets: only the last bracket may have up_to null")
        if bounds[-1] is None:
            bounds.pop()
        if any(lo >= hi for lo, hi in pairwise(bounds)):
            raise ValueError("brackets: up_to must increase and start above flat_up_to")
        return self

    def fee(self, amount: ArrayLike) -> np.ndarray:
        """Cumulative fee: the flat part plus each bracket's rate on the slice of the amount."""
        amount = np.asarray(amount, dtype=float)
        fee = np.full_like(amount, self.flat)
        lower = self.flat_up_to
        for bracket in self.brackets:  # ufuncs, not np.clip: its wrapper costs more than the work
            upper = np.inf if bracket.up_to is None else bracket.up_to
            fee += bracket.rate * np.minimum(np.maximum(amount - lower, 0.0), upper - lower)
            lower = upper
        if self.cap is not None:
            fee = np.minimum(fee, self.cap)
        return fee


class ClaimRate(StrictModel):
    up_to: float | None = Field(default=None, gt=0)
    rate: float = Field(ge=0, le=1)


class AgePoints(StrictModel):
    days: int = Field(ge=0)
    points: float = Field(ge=0, le=1)


class Commission(StrictModel):
    """The agency's share of what it recovers: a base rate by claim band, points for debt age
    and for lost contact, capped.

    Age points are linear in days past due between the listed ages and flat outside them, so a
    day more never jumps the rate; the claim bands follow how agencies quote their rates.
    """

    by_claim: list[ClaimRate] = Field(min_length=1)
    age_points: list[AgePoints] = Field(min_length=1)
    lost_contact_points: float = Field(ge=0, le=1)
    cap: float = Field(gt=0, le=1)

    @field_validator("by_claim")
    @classmethod
    def _bands(cls, value: list[ClaimRate]) -> list[ClaimRate]:
        limits = [b.up_to for b in value]
        if limits[-1] is not None or any(u is None for u in limits[:-1]):
            raise ValueError("only the last entry has up_to null, and it must")
        if any(lo >= hi for lo, hi in pairwise(limits[:-1])):
            raise ValueError("up_to must increase")
        return value

    @field_validator("age_points")
    @classmethod
    def _ages(cls, value: list[AgePoints]) -> list[AgePoints]:
        if any(a.days >= b.days for a, b in pairwise(value)):
            raise ValueError("days must increase")
        return value

    def rate(self, claim: ArrayLike, days_past_due: ArrayLike, lost: ArrayLike) -> np.ndarray:
        """Commission rate: base by claim band, plus age and lost-contact points, capped."""
        claim = np.asarray(claim, dtype=float)
        limits = [np.inf if b.up_to is None else b.up_to for b in self.by_claim]
        rates = np.array([b.rate for b in self.by_claim])
        base = rates[np.searchsorted(limits, claim, side="left")]
        age = np.interp(
            np.asarray(days_past_due, dtype=float),
            [a.days for a in self.age_points],
            [a.points for a in self.age_points],
        )
        rate = base + age + self.lost_contact_points * np.asarray(lost, dtype=float)
        return np.minimum(rate, self.cap)


class LawyerFee(StrictModel):
    rate: float = Field(ge=0, le=1)
    min: float = Field(ge=0)
    max: float = Field(ge=0)

    @model_validator(mode="after")
    def _range(self) -> LawyerFee:
        if self.max < self.min:
            raise ValueError(f"max ({self.max}) is below min ({self.min})")
        return self

    def fee(self, claim: ArrayLike) -> np.ndarray:
        return np.clip(self.rate * np.asarray(claim, dtype=float), self.min, self.max)


class PublicNotice(StrictModel):
    """Service by public notice for a debtor who cannot be found: its fee and the days it adds."""

    fee: float = Field(ge=0)
    days: float = Field(ge=0)


class Enforceable(StrictModel):
    """What enforcement can reach beyond property: wages and bank balances above these."""

    monthly_income_above: float = Field(ge=0)
    bank_balance_above: float = Field(ge=0)


class CostConfig(StrictModel):
    """The cost schedules of ``configs/costs.yaml``. ``enforcement_fee`` is the statute's
    schedule for the record: the judgment debtor bears it, so no creditor cost includes it."""

    acceptance_fee: BracketSchedule
    payment_order_fraction: float = Field(gt=0, le=1)
    simplified_procedure_fraction: float = Field(gt=0, le=1)
    simplified_procedure_max_claim: float = Field(ge=0)
    enforcement_fee: BracketSchedule
    preservation_fee: BracketSchedule
    public_notice: PublicNotice
    enforceable: Enforceable
    lawyer_fee: LawyerFee
    handling_cost: PerTier[float]
    duration_days: PerTier[float]
    commission: Commission

    def lawsuit_acceptance_fee(self, claim: ArrayLike) -> np.ndarray:
        """Acceptance fee of a lawsuit, halved for claims assumed to go through simplified
        procedure (up to ``simplified_procedure_max_claim``)."""
        claim = np.asarray(claim, dtype=float)
        fee = self.acceptance_fee.fee(claim)
        simplified = claim <= self.simplified_procedure_max_claim
        return np.where(simplified, fee * self.simplified_procedure_fraction, fee)

    def payment_order_fee(self, claim: ArrayLike) -> np.ndarray:
        """A payment-order application costs a fraction of the full acceptance fee (art. 14)."""
        return self.acceptance_fee.fee(claim) * self.payment_order_fraction

    def enforceable_assets(
        self,
        has_property: ArrayLike,
        monthly_income: ArrayLike | None = None,
        bank_balance: ArrayLike | None = None,
    ) -> np.ndarray:
        """Whether enforcement has something to reach: real estate, a vehicle or equity, wages
        above ``enforceable.monthly_income_above`` or a balance above ``bank_balance_above``
        (docs/domain.md §4.3). Missing income or balance counts as none."""
        found = np.asarray(has_property, dtype=bool).copy()
        for amount, floor in (
            (monthly_income, self.enforceable.monthly_income_above),
            (bank_balance, self.enforceable.bank_balance_above),
        ):
            if amount is not None:
                found |= np.nan_to_num(np.asarray(amount, dtype=float), nan=-np.inf) > floor
        return found

    def duration(self, tier: str, served_by_notice: ArrayLike = False) -> np.ndarray:
        """Days from decision to money: the tier's duration, longer for a lawsuit served by
        public notice on a debtor who cannot be found."""
        notice = self.public_notice.days if tier == "litigation" else 0.0
        return self.duration_days[tier] + notice * np.asarray(served_by_notice, dtype=float)

    def court_fees(
        self,
        tier: str | np.ndarray,
        claim: ArrayLike,
        recovered: ArrayLike,
        has_attachable_assets: ArrayLike,
        served_by_notice: ArrayLike = False,
    ) -> np.ndarray:
        """Court and lawyer costs the creditor bears for each case in its tier and outcome.

        A payment order prepays its fee; a lawsuit prepays the acceptance fee and, where there
        are assets to freeze, the preservation fee, and pays its lawyer. Where the debt is
        ``recovered`` the debtor reimburses the prepaid fees, so only the lawyer remains. A
        lawsuit against a debtor who cannot be found (``served_by_notice``) also pays for
        service by public notice, whatever the outcome. Other tiers go to no court.
        """
        tier = np.asarray(tier)
        claim = np.asarray(claim, dtype=float)
        failed = ~np.asarray(recovered, dtype=bool)
        ordered, sued = tier == "payment_order", tier == "litigation"
        zero = np.zeros(np.broadcast(claim, tier).shape)
        # a schedule is worked out only when some case's tier uses it (economics asks for every
        # tier of every case, and a served request is one case)
        order = np.where(ordered, self.payment_order_fee(claim), 0.0) if ordered.any() else zero
        lawsuit = lawyer = zero
        if sued.any():
            prepaid = self.lawsuit_acceptance_fee(claim) + np.where(
                has_attachable_assets, self.preservation_fee.fee(claim), 0.0
            )
            notice = self.public_notice.fee * np.asarray(served_by_notice, dtype=float)
            lawsuit = np.where(sued, prepaid, 0.0)
            lawyer = np.where(sued, self.lawyer_fee.fee(claim) + notice, 0.0)
        return lawyer + np.where(failed, order + lawsuit, 0.0)

    def incurred(
        self,
        tier: str | np.ndarray,
        claim: ArrayLike,
        amount_recovered: ArrayLike,
        days_past_due: ArrayLike,
        lost_contact: ArrayLike,
        has_attachable_assets: ArrayLike,
    ) -> np.ndarray:
        """What working each case in its tier costs the creditor (one tier for all, or per case).

        Every tier pays its handling cost, the commission on what is recovered, and its court
        fees for the outcome (recovered exactly when ``amount_recovered > 0``); a lawsuit
        against a lost-contact debtor is served by public notice.
        """
        tier = np.asarray(tier)
        recovered = np.asarray(amount_recovered, dtype=float)
        handling = np.array([self.handling_cost[t] for t in TIERS])[tier_codes(tier)]
        commission = self.commission.rate(claim, days_past_due, lost_contact) * recovered
        court = self.court_fees(
            tier, claim, recovered > 0, has_attachable_assets, served_by_notice=lost_contact
        )
        return handling + commission + court


def claim_amount(
    principal: ArrayLike | pd.Series, accrued_interest: ArrayLike | pd.Series | None = None
) -> np.ndarray:
    """The claim court fees are computed on: principal plus accrued interest and penalties.

    ``accrued_interest`` is the portfolio's optional column; absent or missing counts as 0.
    """
    claim = np.asarray(principal, dtype=float)
    if accrued_interest is None:
        return claim
    accrued = pd.array(np.atleast_1d(np.asarray(accrued_interest, dtype=object)), dtype="Float64")
    return claim + accrued.fillna(0.0).to_numpy(dtype=float)


def load_costs(path: str | Path | None = None) -> CostConfig:
    """Load ``configs/costs.yaml`` (or ``path``) into a validated ``CostConfig``."""
    return load_config(path or default_config_path("costs.yaml"), CostConfig)
