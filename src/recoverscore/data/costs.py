"""What collection costs: court fees by statutory bracket, lawyers, handling and commission.

All figures come from ``configs/costs.yaml``; this module only knows their shapes. Functions are
vectorised over numpy arrays so the synthetic world and the policy can cost millions of cases.
"""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path

import numpy as np
from pydantic import Field, model_validator

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
        for bracket in self.brackets:
            upper = np.inf if bracket.up_to is None else bracket.up_to
            fee += bracket.rate * np.clip(amount - lower, 0.0, upper - lower)
            lower = upper
        if self.cap is not None:
            fee = np.minimum(fee, self.cap)
        return fee


class ClaimRate(StrictModel):
    up_to: float | None = Field(default=None, gt=0)
    rate: float = Field(ge=0, le=1)


class Commission(StrictModel):
    by_claim: list[ClaimRate] = Field(min_length=1)
    age_free_days: int = Field(ge=0)
    points_per_year: float = Field(ge=0, le=1)
    lost_contact_points: float = Field(ge=0, le=1)
    cap: float = Field(gt=0, le=1)

    @model_validator(mode="after")
    def _last_open(self) -> Commission:
        if self.by_claim[-1].up_to is not None:
            raise ValueError("by_claim: the last entry must have up_to null")
        return self

    def rate(self, principal: ArrayLike, days_past_due: ArrayLike, lost: ArrayLike) -> np.ndarray:
        """Commission rate: base by claim size, plus age and lost-contact points, capped."""
        principal = np.asarray(principal, dtype=float)
        limits = [np.inf if b.up_to is None else b.up_to for b in self.by_claim]
        rates = np.array([b.rate for b in self.by_claim])
        base = rates[np.searchsorted(limits, principal, side="left")]
        years_over = np.maximum(np.asarray(days_past_due, float) - self.age_free_days, 0) / 365.0
        rate = base + self.points_per_year * years_over
        rate = rate + self.lost_contact_points * np.asarray(lost, dtype=float)
        return np.minimum(rate, self.cap)


class LawyerFee(StrictModel):
    rate: float = Field(ge=0, le=1)
    min: float = Field(ge=0)
    max: float = Field(ge=0)

    def fee(self, claim: ArrayLike) -> np.ndarray:
        return np.clip(self.rate * np.asarray(claim, dtype=float), self.min, self.max)


class CostConfig(StrictModel):
    acceptance_fee: BracketSchedule
    payment_order_fraction: float = Field(gt=0, le=1)
    simplified_procedure_fraction: float = Field(gt=0, le=1)
    simplified_procedure_max_claim: float = Field(ge=0)
    enforcement_fee: BracketSchedule
    preservation_fee: BracketSchedule
    lawyer_fee: LawyerFee
    handling_cost: PerTier[float]
    duration_days: PerTier[float]
    commission: Commission

    def lawsuit_acceptance_fee(self, claim: ArrayLike) -> np.ndarray:
        """Acceptance fee of a lawsuit, halved for small claims under simplified procedure."""
        claim = np.asarray(claim, dtype=float)
        fee = self.acceptance_fee.fee(claim)
        simplified = claim <= self.simplified_procedure_max_claim
        return np.where(simplified, fee * self.simplified_procedure_fraction, fee)

    def payment_order_fee(self, claim: ArrayLike) -> np.ndarray:
        """A payment-order application costs a fraction of the full acceptance fee (art. 14)."""
        return self.acceptance_fee.fee(claim) * self.payment_order_fraction

    def court_fees(
        self,
        tier: str | np.ndarray,
        principal: ArrayLike,
        amount_recovered: ArrayLike,
        has_attachable_assets: ArrayLike,
    ) -> np.ndarray:
        """Court and lawyer costs of each case in its tier.

        A payment order pays its fee. A lawsuit pays the acceptance fee, the lawyer, a
        preservation fee when there are assets to freeze, and an enforcement fee on the amount
        enforced. Other tiers go to no court.
        """
        tier = np.asarray(tier)
        principal = np.asarray(principal, dtype=float)
        recovered = np.asarray(amount_recovered, dtype=float)
        order = np.where(tier == "payment_order", self.payment_order_fee(principal), 0.0)
        lawsuit = (
            self.lawsuit_acceptance_fee(principal)
            + self.lawyer_fee.fee(principal)
            + np.where(has_attachable_assets, self.preservation_fee.fee(principal), 0.0)
            + np.where(recovered > 0, self.enforcement_fee.fee(recovered), 0.0)
        )
        return order + np.where(tier == "litigation", lawsuit, 0.0)

    def incurred(
        self,
        tier: str | np.ndarray,
        principal: ArrayLike,
        amount_recovered: ArrayLike,
        days_past_due: ArrayLike,
        lost_contact: ArrayLike,
        has_attachable_assets: ArrayLike,
    ) -> np.ndarray:
        """Realised cost of working each case in its tier (one for all, or one per case).

        Every tier pays its handling cost and the commission on the recovery, plus its court fees.
        """
        tier = np.asarray(tier)
        recovered = np.asarray(amount_recovered, dtype=float)
        handling = np.array([self.handling_cost[t] for t in TIERS])[tier_codes(tier)]
        commission = self.commission.rate(principal, days_past_due, lost_contact) * recovered
        court = self.court_fees(tier, principal, recovered, has_attachable_assets)
        return handling + commission + court


def load_costs(path: str | Path | None = None) -> CostConfig:
    """Load ``configs/costs.yaml`` (or ``path``) into a validated ``CostConfig``."""
    return load_config(path or default_config_path("costs.yaml"), CostConfig)
