"""Off-policy evaluation: what a new tier policy would have earned, judged on another's history.

The history was logged by the legacy policy ``mu`` (the aging staircase and its exceptions); a
target policy ``pi`` (deterministic, or a probability per tier) is judged on the same debts with
four estimators of its value ``V(pi) = mean_i sum_k pi(k | x_i) E[reward | x_i, k]``:

- **IPS** (inverse propensity): ``mean(w_i r_i)`` with ``w_i = pi(a_i | x_i) / mu(a_i | x_i)``;
  unbiased where ``mu`` gives every tier ``pi`` uses a chance, high variance when weights are big.
- **SNIPS** (self-normalised IPS): ``sum(w_i r_i) / sum(w_i)``; a little bias, far less variance,
  and exactly the mean reward when the target is the logging policy.
- **DM** (direct method): ``mean_i sum_k pi(k | x_i) q(x_i, k)`` from a reward model ``q``; low
  variance, but only as right as the model, which extrapolates where the log is silent.
- **DR** (doubly robust): ``DM + mean(w_i (r_i - q(x_i, a_i)))``; unbiased if either the
  propensities or the reward model is right, and the one to read first.

Beside them stands the logged policy's realised value ``mean(r_i)``. Every estimate carries a
percentile bootstrap interval and the Kish effective sample size of the weights
``(sum w)^2 / sum w^2``: the number of debts the weighted estimate effectively rests on.

**Honesty.** No estimator can see the value of a tier in a place the legacy policy never used it
(IPS gets weight zero there, DM and DR rest on extrapolation). So each estimate has a ``status``:
``insufficient_overlap`` when more than ``Thresholds.max_unsupported_share`` of the target's
decisions fall on tiers the logging policy gave those debts with probability at most
``Thresholds.min_propensity`` (every estimator), or when the effective sample is below
``Thresholds.min_ess`` (the weighting estimators IPS, SNIPS and DR). The number is kept, but
``reliable`` is False and ``reason`` says why in one sentence starting "insufficient overlap:",
which is what a report should print in its place.

The bootstrap is written here rather than taken from ``scipy.stats.bootstrap``: one set of
resamples serves every estimator and both rewards (paired, so intervals are comparable), each
batch of resamples becomes per-debt counts and one matrix product, and a 200,000-debt history
takes seconds in bounded memory; scipy's version gathers the data again for every resample (a
third more time at that size) and its percentile interval turns one undefined SNIPS resample
into an undefined interval. Intervals are percentile intervals: BCa needs a jackknife of ``n``
statistics (``O(n^2)`` work, out of reach at portfolio sizes), and where percentile intervals
are least trustworthy, with few effective debts, the estimate is already marked unreliable.

Example (the lead's wiring)::

    from recoverscore.strategy.offpolicy import describe, evaluate_policy

    result = evaluate_policy(
        net_recovery=(history["amount_recovered"] - history["costs"]).to_numpy(),
        recovered=history["recovered"].to_numpy(),
        action=history["given_tier"],
        propensity=fit.propensity,                 # logging_policy.fit_logging_policy(...)
        target=decisions["recommended_tier"],      # or an n x tiers probability matrix
        support=fit.probabilities,                 # P(tier | x) under the logging policy
        direct_net=cross_fitted_net_values,        # n x tiers, optional (enables DM and DR)
        direct_recovered=cross_fitted_probabilities,
        seed=7,
    )
    for line in describe(result):
        print(line)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from recoverscore.data.schemas import TIERS, tier_codes
from recoverscore.errors import RecoverscoreError

ESTIMATORS: tuple[str, ...] = ("logged", "ips", "snips", "dm", "dr")
"""Rows of a result, in order: the logged policy's realised value, then the estimators."""

WEIGHTED = frozenset({"ips", "snips", "dr"})
"""Estimators whose variance is driven by the importance weights (checked against ``min_ess``)."""

RESULT_COLUMNS = (
    "reward",
    "unit",
    "estimator",
    "estimate",
    "ci_low",
    "ci_high",
    "confidence",
    "ess",
    "n",
    "reliable",
    "status",
    "reason",
)

OK = "ok"
INSUFFICIENT = "insufficient_overlap"

_BATCH_CELLS = 1 << 22  # resampled rows held at once (indices and counts: about 100 MB)


@dataclass(frozen=True)
class Thresholds:
    """When an estimate rests on too little of the log to be shown as a number.

    min_propensity: a tier the logging policy gave a debt with probability at or below this is
        unsupported for that debt (0.01: a weight of 100 or more; set it at least at the
        logging policy's clip, so clipped estimates count as unsupported).
    max_unsupported_share: the share of target decisions (probability mass over debts) allowed
        on unsupported tiers before every estimate is marked unreliable (0.05: beyond it the
        part of the value nobody observed can move the answer more than typical policy gaps).
    min_ess: the Kish effective sample below which IPS, SNIPS and DR are marked unreliable
        (100 debts: below that a percentile interval of a weighted mean is itself unstable).
    """

    min_propensity: float = 0.01
    max_unsupported_share: float = 0.05
    min_ess: float = 100.0

    def __post_init__(self) -> None:
        if not 0 <= self.min_propensity < 1:
            raise RecoverscoreError(f"min_propensity must be in [0, 1), got {self.min_propensity}")
        if not 0 <= self.max_unsupported_share <= 1:
            raise RecoverscoreError(
                f"max_unsupported_share must be in [0, 1], got {self.max_unsupported_share}"
            )
        if self.min_ess < 0:
            raise RecoverscoreError(f"min_ess must be at least 0, got {self.min_ess}")


@dataclass(frozen=True)
class Reward:
    """A reward's name in the result, its unit, and the factor from per-debt to reported value."""

    name: str
    unit: str
    scale: float = 1.0


NET_RECOVERY = Reward("net_recovery", "CNY per 1,000 debtors", 1000.0)
RECOVERY_RATE = Reward("recovery_rate", "rate")


# --- input checks --------------------------------------------------------------------------------


def _vector(values: object, name: str, n: int | None = None) -> np.ndarray:
    try:
        array = np.asarray(values, dtype=float)
    except (TypeError, ValueError):
        raise RecoverscoreError(f"{name} must be numbers, one per debt") from None
    if array.ndim != 1:
        raise RecoverscoreError(f"{name} must be one value per debt (1-d), got shape {array.shape}")
    if n is not None and len(array) != n:
        raise RecoverscoreError(f"{name} has {len(array)} values for {n} debts")
    bad = ~np.isfinite(array)
    if bad.any():
        raise RecoverscoreError(f"{name} has {bad.sum()} missing or infinite value(s)")
    return array


def _actions(values: object, name: str, n: int) -> np.ndarray:
    """Tier codes from tier names or from integer positions in ``TIERS``."""
    array = np.asarray(values)
    if array.ndim != 1 or len(array) != n:
        raise RecoverscoreError(f"{name} must be one tier per debt ({n}), got shape {array.shape}")
    if array.dtype.kind in "iu":
        outside = (array < 0) | (array >= len(TIERS))
        if outside.any():
            raise RecoverscoreError(
                f"{name} holds tier position(s) {sorted(set(array[outside].tolist()))[:5]}; "
                f"positions run from 0 to {len(TIERS) - 1} ({list(TIERS)})"
            )
        return array.astype(np.intp)
    try:
        return tier_codes(array)
    except ValueError as error:
        raise RecoverscoreError(f"{name}: {error}") from None


def _matrix(values: object, name: str, n: int) -> np.ndarray:
    """An n x tiers matrix; a DataFrame must have exactly the tiers as columns (any order)."""
    if isinstance(values, pd.DataFrame):
        if set(values.columns) != set(TIERS):
            raise RecoverscoreError(
                f"{name} needs exactly the tier columns {list(TIERS)}, got {list(values.columns)}"
            )
        values = values[list(TIERS)]
    array = np.asarray(values, dtype=float)
    if array.shape != (n, len(TIERS)):
        raise RecoverscoreError(
            f"{name} must be debts x tiers = ({n}, {len(TIERS)}), got shape {array.shape}"
        )
    bad = ~np.isfinite(array)
    if bad.any():
        raise RecoverscoreError(f"{name} has {bad.sum()} missing or infinite value(s)")
    return array


def _probabilities(values: object, name: str, n: int) -> np.ndarray:
    array = _matrix(values, name, n)
    if ((array < 0) | (array > 1)).any():
        raise RecoverscoreError(f"{name} must hold probabilities in [0, 1]")
    return array


def _target(values: object, n: int) -> np.ndarray:
    """The target policy as an n x tiers probability matrix (one-hot when deterministic)."""
    is_matrix = isinstance(values, pd.DataFrame) or np.ndim(values) == 2
    if not is_matrix:
        matrix = np.zeros((n, len(TIERS)))
        matrix[np.arange(n), _actions(values, "target", n)] = 1.0
        return matrix
    matrix = _probabilities(values, "target", n)
    off = np.abs(matrix.sum(axis=1) - 1) > 1e-6
    if off.any():
        raise RecoverscoreError(
            f"target rows must sum to 1 (a distribution over tiers); {off.sum()} do not"
        )
    return matrix


def _propensity(values: object, n: int) -> np.ndarray:
    array = _vector(values, "propensity", n)
    outside = (array <= 0) | (array > 1)
    if outside.any():
        raise RecoverscoreError(
            f"propensity must lie in (0, 1]; {outside.sum()} value(s) do not "
            f"(e.g. {array[outside][0]:g}): a tier given with probability 0 cannot have been given"
        )
    return array


# --- the estimators ------------------------------------------------------------------------------


def _estimates(sums: np.ndarray, n: float) -> np.ndarray:
    """Estimator values from column sums, ``[r, w r, w, dm, dr]`` per reward along the last axis;
    out come ``len(ESTIMATORS)`` values per reward, in ESTIMATORS order."""
    sums = sums.reshape(*sums.shape[:-1], -1, 5)
    with np.errstate(divide="ignore", invalid="ignore"):
        snips = np.where(sums[..., 2] > 0, sums[..., 1] / sums[..., 2], np.nan)
    out = np.stack(
        [sums[..., 0] / n, sums[..., 1] / n, snips, sums[..., 3] / n, sums[..., 4] / n], axis=-1
    )
    return out.reshape(*out.shape[:-2], -1)


def _bootstrap(
    rows: np.ndarray, n_resamples: int, confidence: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Percentile intervals of every estimator (low, high), from shared resamples of the debts.

    Each batch of resamples becomes a count of every debt in every resample and one matrix
    product with the per-debt columns; memory stays at ``_BATCH_CELLS`` counts whatever ``n``.
    """
    n = len(rows)
    rng = np.random.default_rng(seed)
    batch = max(1, _BATCH_CELLS // n)
    distribution = np.empty((n_resamples, rows.shape[1]))
    for start in range(0, n_resamples, batch):
        size = min(batch, n_resamples - start)
        index = rng.integers(0, n, size=(size, n))
        index += np.arange(size)[:, None] * n  # resample k counts into cells k*n .. k*n + n - 1
        counts = np.bincount(index.ravel(), minlength=size * n).reshape(size, n)
        distribution[start : start + size] = _estimates(counts @ rows, n)
    tail = 100 * (1 - confidence) / 2
    # nan-aware: a resample without one weighted debt leaves SNIPS undefined, not the interval;
    # an estimator undefined in every resample has no interval
    low, high = np.full((2, rows.shape[1] // 5 * len(ESTIMATORS)), np.nan)
    defined = ~np.isnan(distribution).all(axis=0)
    low[defined], high[defined] = np.nanpercentile(
        distribution[:, defined], [tail, 100 - tail], axis=0
    )
    return low, high


def _unsupported(target: np.ndarray, support: np.ndarray, threshold: float) -> np.ndarray:
    """Per tier, the share of debts (target probability mass) the log does not support."""
    return (target * (support <= threshold)).mean(axis=0)


def _overlap_reasons(
    by_tier: np.ndarray, ess: float, n: int, thresholds: Thresholds
) -> tuple[str, str]:
    """Why every estimator, and why the weighting estimators, are unreliable ("" when not)."""
    every = ""
    share = by_tier.sum()
    if share > thresholds.max_unsupported_share:
        worst = [
            f"{TIERS[k].replace('_', ' ')} {by_tier[k]:.1%}"
            for k in np.argsort(-by_tier)
            if by_tier[k] > 0
        ]
        every = (
            f"insufficient overlap: the target policy puts {share:.1%} of debts in tiers the "
            f"logging policy gave them with probability at most {thresholds.min_propensity:g} "
            f"(allowed: {thresholds.max_unsupported_share:.0%}); {', '.join(worst)}"
        )
    weighted = every
    if not weighted and ess < thresholds.min_ess:
        weighted = (
            f"insufficient overlap: the importance weights leave an effective sample of "
            f"{ess:,.1f} of {n:,} debts, below the {thresholds.min_ess:,.0f} needed"
        )
    return every, weighted


def _evaluate(
    rewards: list[tuple[object, object | None, Reward]],
    action: object,
    propensity: object,
    target: object,
    support: object,
    thresholds: Thresholds | None,
    n_resamples: int,
    confidence: float,
    seed: int,
) -> pd.DataFrame:
    """Every estimator for every (reward, direct model, kind), on one shared set of resamples."""
    thresholds = thresholds or Thresholds()
    if n_resamples < 1:
        raise RecoverscoreError(f"n_resamples must be at least 1, got {n_resamples}")
    if not 0 < confidence < 1:
        raise RecoverscoreError(f"confidence must be strictly between 0 and 1, got {confidence}")
    n = np.shape(action)[0] if np.ndim(action) == 1 else -1
    if n == -1:
        raise RecoverscoreError(f"action must be one tier per debt (1-d), got {np.shape(action)}")
    if n < 2:
        raise RecoverscoreError(f"need at least 2 debts to evaluate on, got {n}")
    a = _actions(action, "action", n)
    p = _propensity(propensity, n)
    pi = _target(target, n)
    mu = _probabilities(support, "support", n)
    rows = np.arange(n)
    w = pi[rows, a] / p
    columns = []
    for reward, direct, kind in rewards:
        r = _vector(reward, "reward" if len(rewards) == 1 else f"{kind.name} reward", n)
        dm = dr = np.zeros(n)
        if direct is not None:
            q = _matrix(direct, f"direct model of {kind.name}", n)
            dm = (pi * q).sum(axis=1)
            dr = dm + w * (r - q[rows, a])
        columns += [r, w * r, w, dm, dr]
    values = np.column_stack(columns)
    point = _estimates(values.sum(axis=0), n)
    low, high = _bootstrap(values, n_resamples, confidence, seed)
    ess = float(w.sum() ** 2 / (w @ w)) if (w > 0).any() else 0.0
    unsupported = _unsupported(pi, mu, thresholds.min_propensity)
    every, weighted = _overlap_reasons(unsupported, ess, n, thresholds)
    records = []
    for m, (_, direct, kind) in enumerate(rewards):
        for j, name in enumerate(ESTIMATORS):
            if name in ("dm", "dr") and direct is None:
                continue
            reason = "" if name == "logged" else weighted if name in WEIGHTED else every
            at = m * len(ESTIMATORS) + j
            records.append(
                {
                    "reward": kind.name,
                    "unit": kind.unit,
                    "estimator": name,
                    "estimate": point[at] * kind.scale,
                    "ci_low": low[at] * kind.scale,
                    "ci_high": high[at] * kind.scale,
                    "confidence": confidence,
                    "ess": float(n) if name == "logged" else ess if name in WEIGHTED else np.nan,
                    "n": n,
                    "reliable": not reason,
                    "status": INSUFFICIENT if reason else OK,
                    "reason": reason,
                }
            )
    return pd.DataFrame.from_records(records, columns=list(RESULT_COLUMNS))


def estimate_value(
    reward: object,
    action: object,
    propensity: object,
    target: object,
    support: object,
    direct: object | None = None,
    *,
    kind: Reward = RECOVERY_RATE,
    thresholds: Thresholds | None = None,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> pd.DataFrame:
    """Value of ``target`` for one reward by every estimator, with intervals and honesty.

    reward: realised reward of each logged debt (n). action: tier given (names or positions in
        ``TIERS``). propensity: logging probability of that tier, in (0, 1]. target: tier per
        debt, or an n x tiers probability matrix (rows sum to 1). support: the logging policy's
        P(tier | x), n x tiers, for the overlap check. direct: a reward model's prediction for
        every tier (n x tiers, cross-fitted), which adds DM and DR.
    Returns one row per estimator (``RESULT_COLUMNS``), values multiplied by ``kind.scale``.
    """
    return _evaluate(
        [(reward, direct, kind)],
        action,
        propensity,
        target,
        support,
        thresholds,
        n_resamples,
        confidence,
        seed,
    )


def evaluate_policy(
    net_recovery: object,
    recovered: object,
    action: object,
    propensity: object,
    target: object,
    support: object,
    *,
    direct_net: object | None = None,
    direct_recovered: object | None = None,
    thresholds: Thresholds | None = None,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> pd.DataFrame:
    """Both rewards that matter, from one set of resamples: net recovery (amount recovered minus
    costs, reported in CNY per 1,000 debtors) and recovery (0/1, reported as a rate).

    ``direct_net`` / ``direct_recovered``: a reward model's predictions for every tier (expected
    net value in CNY, P(recover)); each adds DM and DR for its reward.
    """
    return _evaluate(
        [
            (net_recovery, direct_net, NET_RECOVERY),
            (np.asarray(recovered, dtype=float), direct_recovered, RECOVERY_RATE),
        ],
        action,
        propensity,
        target,
        support,
        thresholds,
        n_resamples,
        confidence,
        seed,
    )


ESTIMATOR_NAMES = {
    "logged": "logged policy",
    "ips": "IPS",
    "snips": "SNIPS",
    "dm": "DM",
    "dr": "DR",
}


def describe(result: pd.DataFrame) -> list[str]:
    """One line per row for a report: the number with its interval, or why there is none."""
    lines = []
    for row in result.itertuples(index=False):
        head = f"{ESTIMATOR_NAMES[row.estimator]}, {row.reward.replace('_', ' ')}: "
        if not row.reliable:
            lines.append(head + row.reason)
            continue
        if row.unit == NET_RECOVERY.unit:
            number = (
                f"{row.estimate:,.0f} {row.unit} "
                f"({row.confidence:.0%} interval {row.ci_low:,.0f} to {row.ci_high:,.0f})"
            )
        else:
            number = (
                f"{row.estimate:.1%} "
                f"({row.confidence:.0%} interval {row.ci_low:.1%} to {row.ci_high:.1%})"
            )
        weighted = row.estimator in WEIGHTED
        ess = f"; effective sample {row.ess:,.0f} of {row.n:,}" if weighted else ""
        lines.append(head + number + ess)
    return lines
