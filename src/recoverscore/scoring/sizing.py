"""How many debts a strategy experiment needs: the challenger's share and the months it runs.

**The formula.** The two-sample comparison of means with unequal allocation (Chow, Shao and
Wang, *Sample Size Calculations in Clinical Research*, 2nd ed., 2008, section 3.2.1): to detect
a difference ``delta`` in mean net recovery per debtor between a challenger cell holding a share
``s`` of the debts compared and the champion holding ``1 - s``, at two-sided significance
``alpha`` with probability ``power``, the two cells together need

    N = (z_{1 - alpha/2} + z_{power})^2 * sigma^2 * (1/s + 1/(1 - s)) / delta^2

debts, with ``z`` the standard normal quantiles (``scipy.stats.norm.ppf``). ``delta`` is the
relative ``lift`` times the portfolio's mean net recovery per debtor, and both cells are taken
to have the portfolio's standard deviation ``sigma``. It is the normal approximation behind
Welch's test, which the backtest uses to compare cells, so sizing and testing agree; the
benchmark ``bench_experiments.py`` checks the power it promises on the synthetic world.

**Whose variance.** The realised net recovery (amount recovered minus costs) of a labelled
history or an outcomes file: its spread includes whether each debt was recovered, which is
the noise the test must see through. A scored file's expected values would leave that noise
out (each debt's expected value varies far less than its outcome) and promise the power with
too few debts. The history's policy is usually today's, i.e. the champion's, which is the
cell whose mean the lift is relative to.

**Months.** With ``monthly`` debts a month entering the two cells, the experiment runs
``N / monthly`` months; given a number of ``months`` instead of a share, the smallest
challenger share that fits is ``s = (1 - sqrt(1 - 4 / R)) / 2`` with
``R = monthly * months * delta^2 / ((z_{1 - alpha/2} + z_{power})^2 sigma^2)``, the root of
``1/s + 1/(1 - s) = R`` (none when ``R < 4``: not even an even split fits).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from recoverscore.errors import RecoverscoreError

SHARES: tuple[float, ...] = (0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5)
"""Challenger shares tabulated beside the answer."""


def realised_net(frame: pd.DataFrame, name: str = "the file") -> np.ndarray:
    """Amount recovered minus costs per debt, from a history or an outcomes file."""
    missing = [c for c in ("amount_recovered", "costs") if c not in frame.columns]
    if missing:
        raise RecoverscoreError(
            f"{name} lacks {', '.join(missing)}: give a history or outcomes file with "
            "realised amounts and costs"
        )
    amounts = frame[["amount_recovered", "costs"]].apply(pd.to_numeric, errors="coerce")
    unreadable = ~np.isfinite(amounts.to_numpy(dtype=float, na_value=np.nan)).all(axis=1)
    if unreadable.any():
        raise RecoverscoreError(
            f"{name}: {unreadable.sum():,} rows have no readable amount_recovered or costs "
            "(run recoverscore validate on it)"
        )
    return (amounts["amount_recovered"] - amounts["costs"]).to_numpy(dtype=float)


@dataclass(frozen=True)
class ExperimentSize:
    """The debts an experiment needs (see the module docstring), and the same for other shares.

    ``share``: the challenger's share of the debts in the two cells; ``debts``: both cells
    together; ``months``: at ``monthly`` debts a month (``None`` without it); ``fits``: False
    when ``months`` were asked for and not even an even split fits in them.
    """

    lift: float
    power: float
    alpha: float
    mean: float
    sd: float
    observed: int
    share: float
    debts: int
    challenger_debts: int
    monthly: int | None
    months: float | None
    fits: bool
    table: pd.DataFrame

    @property
    def difference(self) -> float:
        """The difference in net recovery per debtor to detect, CNY."""
        return self.lift * self.mean

    def sentence(self) -> str:
        """The answer in one sentence, as a collections manager would ask it."""
        head = (
            f"a {self.lift:.0%} lift in net recovery per debtor ({self.difference:,.0f} CNY on "
            f"{self.mean:,.0f}) at {self.power:.0%} power and {self.alpha:g} significance needs "
            f"{self.debts:,} debts in the two cells, {self.challenger_debts:,} of them in a "
            f"challenger cell of {self.share:.1%}"
        )
        if self.monthly is None:
            return head[0].upper() + head[1:]
        start = f"With {self.monthly:,} debts a month, "
        months = math.ceil(self.months * 10) / 10  # rounded up: 6.03 months is not 6.0
        if not self.fits:
            return f"{start}{head}: even an even split takes {months:.1f} months, longer than asked"
        return f"{start}{head}, for {months:.1f} months"


def experiment_size(
    net: np.ndarray,
    lift: float,
    *,
    power: float = 0.8,
    alpha: float = 0.05,
    monthly: int | None = None,
    share: float | None = None,
    months: float | None = None,
) -> ExperimentSize:
    """Debts, challenger share and months to detect ``lift`` (0.05: 5% more net recovery per
    debtor) from the realised net recovery ``net`` of the portfolio's history.

    Give the challenger ``share`` to get the months it takes, or ``months`` (with ``monthly``)
    to get the smallest share that fits; neither: an even split, which needs the fewest debts.
    """
    net = np.asarray(net, dtype=float)
    _check(net, lift, power, alpha, monthly, share, months)
    mean, sd = float(net.mean()), float(net.std(ddof=1))
    if mean <= 0:
        raise RecoverscoreError(
            f"the mean net recovery per debtor is {mean:,.0f} CNY: a relative lift of a "
            "mean that is not positive means nothing"
        )
    z = stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(power)
    unit = (z * sd / (lift * mean)) ** 2  # N = unit * (1/s + 1/(1 - s))

    def needed(s: float) -> int:
        return math.ceil(unit * (1 / s + 1 / (1 - s)))

    fits = True
    if share is None and months is not None:
        ratio = monthly * months / unit
        fits = ratio >= 4
        share = math.ceil(1000 * (1 - math.sqrt(1 - 4 / ratio)) / 2) / 1000 if fits else 0.5
    share = 0.5 if share is None else share
    debts = needed(share)
    table = pd.DataFrame(
        {
            "debts": [needed(s) for s in SHARES],
            "challenger_debts": [math.ceil(s * needed(s)) for s in SHARES],
        },
        index=pd.Index(SHARES, name="challenger_share"),
    )
    if monthly is not None:
        table["months"] = table["debts"] / monthly
    return ExperimentSize(
        lift=lift,
        power=power,
        alpha=alpha,
        mean=mean,
        sd=sd,
        observed=len(net),
        share=share,
        debts=debts,
        challenger_debts=math.ceil(share * debts),
        monthly=monthly,
        months=None if monthly is None else debts / monthly,
        fits=fits,
        table=table,
    )


def _check(
    net: np.ndarray,
    lift: float,
    power: float,
    alpha: float,
    monthly: int | None,
    share: float | None,
    months: float | None,
) -> None:
    if net.ndim != 1 or len(net) < 2 or not np.isfinite(net).all():
        raise RecoverscoreError("net recovery needs at least two finite values, one per debt")
    if not lift > 0:
        raise RecoverscoreError(f"lift must be above 0 (0.05 is 5%), got {lift}")
    if not 0 < power < 1:
        raise RecoverscoreError(f"power must be between 0 and 1, got {power}")
    if not 0 < alpha < 1:
        raise RecoverscoreError(f"alpha must be between 0 and 1, got {alpha}")
    if share is not None and not 0 < share < 1:
        raise RecoverscoreError(f"share must be between 0 and 1, got {share}")
    if share is not None and months is not None:
        raise RecoverscoreError("give a challenger share or a number of months, not both")
    if monthly is not None and monthly < 1:
        raise RecoverscoreError(f"monthly must be at least 1 debt, got {monthly}")
    if months is not None and (monthly is None or not months > 0):
        raise RecoverscoreError("months needs monthly (debts a month) and must be above 0")
